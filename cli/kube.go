package cli

import "github.com/spf13/cobra"

// newKubeCmd is a placeholder, being built.
func newKubeCmd(g *globals) *cobra.Command { return &cobra.Command{Use: "newKubeCmd", Hidden: true} }

// newCredentialKubernetesCmd is a placeholder, being built.
func newCredentialKubernetesCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "newCredentialKubernetesCmd", Hidden: true}
}
