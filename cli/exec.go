package cli

import "github.com/spf13/cobra"

// newExecCmd is a placeholder, being built.
func newExecCmd(g *globals) *cobra.Command { return &cobra.Command{Use: "newExecCmd", Hidden: true} }
