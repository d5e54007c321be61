package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/flows"
)

func newAdminCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Administer latch serve's accounts: users, roles, sessions",
		Long: `Administer the accounts of the profile's latch server. Each command needs a
role that grants it: admin reads users, locks them and ends their sessions;
superadmin also grants and revokes roles. A USER is a username or an account
id. Role changes reach the account's tokens at its next refresh; revoking a
role also ends the account's sessions.`,
		Example: `  latch admin users list --search ali
  latch admin users show alice
  latch admin roles grant alice editor
  latch admin sessions revoke SESSION_ID`,
		Args: cobra.NoArgs,
	}
	users := &cobra.Command{
		Use:     "users",
		Short:   "List, show, lock and unlock accounts",
		Example: "  latch admin users list\n  latch admin users lock alice",
		Args:    cobra.NoArgs,
	}
	users.AddCommand(newAdminUsersListCmd(g), newAdminUsersShowCmd(g),
		newAdminActionCmd(g, "lock", flows.ActionLock, "Lock an account and end its sessions", "locked; its sessions are ended"),
		newAdminActionCmd(g, "unlock", flows.ActionUnlock, "Let a locked account log in again", "unlocked"),
		newAdminActionCmd(g, "require-reset", flows.ActionRequireReset,
			"End an account's sessions and make it reset its password (a reset link is mailed)",
			"must reset its password; its sessions are ended and a reset link is mailed"))
	roles := &cobra.Command{
		Use:     "roles",
		Short:   "Grant or revoke an account's roles (viewer, editor, admin, superadmin)",
		Example: "  latch admin roles grant alice editor\n  latch admin roles revoke alice editor",
		Args:    cobra.NoArgs,
	}
	roles.AddCommand(newAdminRoleCmd(g, true), newAdminRoleCmd(g, false))
	sessions := &cobra.Command{
		Use:     "sessions",
		Short:   "End any account's session",
		Example: "  latch admin sessions revoke SESSION_ID",
		Args:    cobra.NoArgs,
	}
	sessions.AddCommand(&cobra.Command{
		Use:     "revoke ID",
		Short:   "End one session of any account (latch admin users show USER lists them)",
		Example: "  latch admin sessions revoke 5f3a…",
		Args:    cobra.ExactArgs(1),
		RunE: g.withEnv(func(ctx context.Context, e *flows.Env, args []string) error {
			if err := e.AdminRevokeSession(ctx, g.profile, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "Session %s ended.\n", args[0])
			return nil
		}),
	})
	cmd.AddCommand(users, roles, sessions)
	return cmd
}

func newAdminUsersListCmd(g *globals) *cobra.Command {
	var search string
	var limit, offset int
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List or search the accounts",
		Example: "  latch admin users list\n  latch admin users list --search example.com --json",
		Args:    cobra.NoArgs,
		RunE: g.withEnv(func(ctx context.Context, e *flows.Env, _ []string) error {
			if limit < 1 || offset < 0 {
				return usagef("--limit must be at least 1 and --offset not negative")
			}
			page, err := e.AdminUsers(ctx, g.profile, search, limit, offset)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.out, page)
			}
			printUsers(g.out, page, offset)
			return nil
		}),
	}
	cmd.Flags().StringVar(&search, "search", "", "only accounts whose name or email contains TEXT")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many accounts")
	cmd.Flags().IntVar(&offset, "offset", 0, "skip this many accounts first")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printUsers(w io.Writer, page *client.UserPage, offset int) {
	if len(page.Users) == 0 {
		fmt.Fprintln(w, "No accounts match.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSER\tEMAIL\tROLES\tMFA\tSTATE")
	for _, u := range page.Users {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", u.ID, u.Username, u.Email, strings.Join(u.Roles, ","),
			onOff(u.MFA), lockedText(u.Locked))
	}
	_ = tw.Flush()
	if shown := offset + len(page.Users); shown < page.Total {
		fmt.Fprintf(w, "%d of %d shown; --offset %d shows more.\n", len(page.Users), page.Total, shown)
	}
}

func newAdminUsersShowCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "show USER",
		Short:   "Show an account: roles, two-factor, email, lock and sessions",
		Example: "  latch admin users show alice\n  latch admin users show 42 --json",
		Args:    cobra.ExactArgs(1),
		RunE: g.withEnv(func(ctx context.Context, e *flows.Env, args []string) error {
			u, err := e.AdminUser(ctx, g.profile, args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.out, u)
			}
			verified := "not verified"
			if u.EmailVerified {
				verified = "verified"
			}
			fmt.Fprintf(g.out, "%s (id %s)\n  email:      %s (%s)\n  roles:      %s\n  two-factor: %s\n  state:      %s\n  created:    %s\n",
				u.Username, u.ID, u.Email, verified, strings.Join(u.Roles, ", "), onOff(u.MFA), lockedText(u.Locked),
				u.CreatedAt.Local().Format(time.DateTime))
			if len(u.Sessions) == 0 {
				fmt.Fprintln(g.out, "  sessions:   none")
				return nil
			}
			fmt.Fprintln(g.out, "  sessions:")
			tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			for _, s := range u.Sessions {
				fmt.Fprintf(tw, "    %s\t%s\tlast used %s\t%s\n", s.ID, s.ClientID, s.LastUsedAt.Local().Format(time.DateTime), s.UserAgent)
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newAdminActionCmd(g *globals, use, action, short, done string) *cobra.Command {
	return &cobra.Command{
		Use:     use + " USER",
		Short:   short,
		Example: fmt.Sprintf("  latch admin users %s alice", use),
		Args:    cobra.ExactArgs(1),
		RunE: g.withEnv(func(ctx context.Context, e *flows.Env, args []string) error {
			if _, err := e.AdminAction(ctx, g.profile, args[0], action); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "%s is %s.\n", args[0], done)
			return nil
		}),
	}
}

func newAdminRoleCmd(g *globals, grant bool) *cobra.Command {
	use, short := "grant", "Give an account a role"
	if !grant {
		use, short = "revoke", "Take a role from an account (this ends its sessions)"
	}
	return &cobra.Command{
		Use:       use + " USER ROLE",
		Short:     short,
		Example:   fmt.Sprintf("  latch admin roles %s alice editor", use),
		Args:      cobra.ExactArgs(2),
		ValidArgs: flows.Roles,
		RunE: g.withEnv(func(ctx context.Context, e *flows.Env, args []string) error {
			roles, err := e.SetRole(ctx, g.profile, args[0], args[1], grant)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "%s now has the roles: %s (in effect at its next token refresh).\n", args[0], strings.Join(roles, ", "))
			return nil
		}),
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func lockedText(locked bool) string {
	if locked {
		return "locked"
	}
	return "active"
}
