package cli

import "github.com/spf13/cobra"

// newCredentialCmd groups the credential helpers other tools call on every
// run: kubectl's exec plugin and git's credential helper.
func newCredentialCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "credential",
		Short: "Credential helpers for kubectl and git (called by those tools)",
		Example: `  latch kube setup --profile work     # makes kubectl run latch credential kubernetes
  latch git setup --host https://git.example.com --profile work
  latch credential kubernetes --profile work | jq .status.expirationTimestamp`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newCredentialKubernetesCmd(g), newCredentialGitCmd(g))
	return cmd
}
