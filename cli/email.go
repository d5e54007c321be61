package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/flows"
)

func newEmailCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "email",
		Short: "Verify the account's email address, or change it",
		Long: `The account's email address is where password resets and security notices
go, so the server asks you to prove it is yours: it mails a single-use token
(valid 24 hours) on signup and on every change. Open the link in the mail, or
give the token to latch email verify --token-stdin. latch status shows
whether the address is verified.`,
		Example: `  latch email verify --token-stdin            # paste the token from the mail
  latch email resend
  latch email change bob@example.com`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newEmailVerifyCmd(g), newEmailResendCmd(g), newEmailChangeCmd(g))
	return cmd
}

func newEmailVerifyCmd(g *globals) *cobra.Command {
	var server string
	var tokenStdin bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Confirm the email address with the token from the verification mail",
		Long: `Confirm an email address with the token from the verification mail. The
token comes from the first line of stdin (--token-stdin) or a masked prompt,
never a flag value. It needs no login: the token alone proves the mail was
read. The server is the profile's, or --server.`,
		Example: `  latch email verify --token-stdin
  pbpaste | latch email verify --token-stdin --server https://auth.example.com`,
		Args: cobra.NoArgs,
		RunE: g.withEnv(func(ctx context.Context, e *flows.Env, _ []string) error {
			if server != "" {
				if err := g.checkURL("server", server); err != nil {
					return err
				}
			}
			token, err := g.secretInput(tokenStdin, "--token-stdin", "token", "Verification token from the mail: ")
			if err != nil {
				return err
			}
			st, err := e.VerifyEmail(ctx, g.profile, server, token)
			if err != nil {
				if errors.Is(err, flows.ErrNoTarget) {
					return usageError{err}
				}
				if errors.Is(err, client.ErrTokenExpired) || errors.Is(err, client.ErrTokenUsed) {
					return fmt.Errorf("%w (latch email resend mails a new one)", err)
				}
				return err
			}
			fmt.Fprintf(g.out, "Email %s is verified.\n", st.Email)
			return nil
		}),
	}
	cmd.Flags().StringVar(&server, "server", "", "URL of the latch server (default: the profile's)")
	cmd.Flags().BoolVar(&tokenStdin, "token-stdin", false, "read the token from the first line of stdin")
	return cmd
}

func newEmailResendCmd(g *globals) *cobra.Command {
	var server, identifier string
	cmd := &cobra.Command{
		Use:   "resend",
		Short: "Mail a new verification token",
		Long: `Ask the server for a new verification mail for the profile's account. A
server that refuses login until the address is verified leaves you without a
session: then name the account with -u (and --server), and the server answers
the same whether or not it exists.`,
		Example: `  latch email resend
  latch email resend -u alice --server https://auth.example.com   # not logged in`,
		Args: cobra.NoArgs,
		RunE: g.withEnv(func(ctx context.Context, e *flows.Env, _ []string) error {
			if server != "" {
				if err := g.checkURL("server", server); err != nil {
					return err
				}
				if identifier == "" {
					return usagef("--server needs -u USERNAME_OR_EMAIL: without a login, name the account")
				}
			}
			t := flows.RecoveryTarget{Profile: g.profile, Server: server, Identifier: identifier}
			if err := e.ResendVerification(ctx, t); err != nil {
				return recoveryUsage(err)
			}
			if identifier != "" {
				fmt.Fprintf(g.out, "If %s has an unverified account, a new verification mail is on its way.\n", identifier)
			} else {
				to := "the account's address"
				if p, err := e.Profile(g.profile); err == nil && p.Email != "" {
					to = p.Email
				}
				fmt.Fprintf(g.out, "A new verification mail is on its way to %s.\n", to)
			}
			fmt.Fprintln(g.out, "Then run: latch email verify --token-stdin   (and paste the token from the mail), or open its link.")
			return nil
		}),
	}
	cmd.Flags().StringVar(&server, "server", "", "URL of the latch server (with -u, when not logged in)")
	cmd.Flags().StringVarP(&identifier, "username", "u", "", "username or email of an account you cannot log in to yet")
	return cmd
}

func newEmailChangeCmd(g *globals) *cobra.Command {
	var newEmail string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "change [NEW_EMAIL]",
		Short: "Change the account's email address",
		Long: `Change the logged-in account's email address to NEW_EMAIL (or --email). The
account's password confirms it: from a masked prompt, or the first line of
stdin with --password-stdin. The new address is unverified until you confirm
the mail sent there; the old address gets a notice.`,
		Example: `  latch email change bob@example.com
  printf '%s\n' "$PASSWORD" | latch email change --email bob@example.com --password-stdin`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if len(args) == 1 {
				if newEmail != "" && newEmail != args[0] {
					return usagef("give the new address once: as an argument or with --email")
				}
				newEmail = args[0]
			}
			newEmail, err := g.value(strings.TrimSpace(newEmail), "email", "New email address: ")
			if err != nil {
				return err
			}
			e, err := g.openEnv(ctx)
			if err != nil {
				return err
			}
			pw, err := g.password(passwordStdin, "Password: ")
			if err != nil {
				return err
			}
			st, err := e.ChangeEmail(ctx, g.profile, newEmail, pw)
			if err != nil {
				if errors.Is(err, client.ErrInvalidCredentials) {
					return fmt.Errorf("the password is wrong; the address was not changed: %w", err)
				}
				return err
			}
			if !strings.EqualFold(st.Email, strings.TrimSpace(newEmail)) {
				fmt.Fprintf(g.out, "The account's email is still %s: the server did not move it to %s. If that address "+
					"already has an account, its owner was told.\n", st.Email, strings.TrimSpace(newEmail))
				return nil
			}
			fmt.Fprintf(g.out, "Email changed to %s (not verified yet). A verification mail went there: open its link, or run latch email verify --token-stdin.\n", st.Email)
			fmt.Fprintln(g.out, "The old address got a notice of the change.")
			return nil
		},
	}
	cmd.Flags().StringVar(&newEmail, "email", "", "the new email address")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of stdin")
	return cmd
}
