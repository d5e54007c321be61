package cli

import "github.com/spf13/cobra"

// newJWTCmd is a placeholder, being built.
func newJWTCmd(g *globals) *cobra.Command { return &cobra.Command{Use: "newJWTCmd", Hidden: true} }
