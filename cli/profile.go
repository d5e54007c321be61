package cli

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/latch-dev/latch/flows"
)

// profilesJSON is latch profile list --json: latch status --json without
// the vault.
type profilesJSON struct {
	Profiles []profileJSON `json:"profiles"`
}

func newProfileCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "profile",
		Short: "List, switch and remove profiles",
		Long:  "A profile is one account on one server: its URL and user name. Its tokens live in the vault.",
		Args:  cobra.NoArgs,
	}
	var asJSON bool
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the profiles and their state",
		Example: "  latch profile list\n  latch profile list --json",
		Args:    cobra.NoArgs,
		RunE: g.withEnv(func(ctx context.Context, e *flows.Env, args []string) error {
			list, err := e.Status(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				// The shape of latch status --json, so one jq filter
				// (.profiles[]) reads both.
				out := profilesJSON{Profiles: []profileJSON{}}
				for _, st := range list {
					out.Profiles = append(out.Profiles, toProfileJSON(st))
				}
				return writeJSON(g.out, out)
			}
			if len(list) == 0 {
				fmt.Fprintln(g.out, "No profiles yet. "+firstLogin)
				return nil
			}
			tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "\tNAME\tSERVER OR ISSUER\tUSER\tSTATE")
			for _, st := range list {
				mark := ""
				if st.Current {
					mark = "*"
				}
				where := st.Profile.Server
				if where == "" {
					where = st.Profile.Issuer
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", mark, st.Profile.Name, where, st.Profile.Username, stateText[st.State])
			}
			return tw.Flush()
		}),
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	use := &cobra.Command{
		Use:     "use NAME",
		Short:   "Make a profile the current one",
		Example: "  latch profile use work",
		Args:    cobra.ExactArgs(1),
		RunE: g.withEnv(func(ctx context.Context, e *flows.Env, args []string) error {
			if err := e.UseProfile(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "Now using profile %q.\n", args[0])
			return nil
		}),
	}

	var force bool
	rm := &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a profile",
		Long: `Remove a profile. A profile that is logged in is refused: log out first, so
the session ends on the server, or pass --force to forget it anyway.`,
		Example: "  latch logout --profile old && latch profile rm old",
		Args:    cobra.ExactArgs(1),
		RunE: g.withEnv(func(ctx context.Context, e *flows.Env, args []string) error {
			if err := e.RemoveProfile(ctx, args[0], force); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "Removed profile %q.\n", args[0])
			return nil
		}),
	}
	rm.Flags().BoolVar(&force, "force", false, "remove a logged-in profile, deleting its tokens without logging out")
	cmd.AddCommand(list, use, rm)
	return cmd
}
