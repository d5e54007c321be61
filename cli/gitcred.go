package cli

import "github.com/spf13/cobra"

// newGitCmd is a placeholder, being built.
func newGitCmd(g *globals) *cobra.Command { return &cobra.Command{Use: "newGitCmd", Hidden: true} }

// newCredentialGitCmd is a placeholder, being built.
func newCredentialGitCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "newCredentialGitCmd", Hidden: true}
}
