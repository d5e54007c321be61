package cli

import "github.com/spf13/cobra"

// newDockerCmd is a placeholder, being built.
func newDockerCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "newDockerCmd", Hidden: true}
}
