package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newLogoutCmd(g *globals) *cobra.Command {
	var all, local bool
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "End the session on the server, then delete it from the vault",
		Long: `Revoke the profile's session on the server, then delete its tokens from the
vault. The profile itself stays, so latch login needs no --server next time
(remove it with latch profile rm).

--all ends every session of the account, on every device. If the server
cannot be reached the tokens are kept, because deleting them would leave a
session nobody can end; --local forgets the session on this machine only.`,
		Example: `  latch logout
  latch logout --all            # log out everywhere
  latch logout --local          # the server is gone for good`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if all && local {
				return usagef("--all and --local exclude each other")
			}
			ctx := cmd.Context()
			e, err := g.openEnv(ctx)
			if err != nil {
				return err
			}
			res, err := e.Logout(ctx, g.profile, all, local)
			if err != nil {
				return err
			}
			switch {
			case local:
				fmt.Fprintf(g.out, "Forgot the session of profile %q on this machine; it was not ended on the server.\n", res.Profile.Name)
			case res.ProviderNotTold != "":
				fmt.Fprintf(g.out, "Logged out of profile %q on this machine: %s.\n", res.Profile.Name, res.ProviderNotTold)
			case res.Revoked == 0:
				fmt.Fprintf(g.out, "Logged out of profile %q (the session had already ended on the server).\n", res.Profile.Name)
			case all:
				fmt.Fprintf(g.out, "Logged out of profile %q: ended %d session(s) on %s.\n", res.Profile.Name, res.Revoked, res.Profile.Server)
			default:
				fmt.Fprintf(g.out, "Logged out of profile %q.\n", res.Profile.Name)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "end every session of the account, not only this one")
	cmd.Flags().BoolVar(&local, "local", false, "forget the session here without telling the server")
	return cmd
}
