package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/flows"
)

func newPasswordCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "password",
		Short: "Reset a forgotten password, or change the current one",
		Long: `Recover an account whose password is lost, or change the password of the
account you are logged in to.

A reset takes two steps: latch password forgot asks the server to mail a
single-use token (valid 30 minutes) to the account's address; latch password
reset --token-stdin takes that token and a new password. A reset ends every
session of the account, on every device: log in again afterwards.`,
		Example: `  latch password forgot -u alice --server https://auth.example.com
  latch password reset --token-stdin          # paste the token from the mail
  latch password change`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newPasswordForgotCmd(g), newPasswordResetCmd(g), newPasswordChangeCmd(g))
	return cmd
}

func newPasswordForgotCmd(g *globals) *cobra.Command {
	var server, identifier string
	cmd := &cobra.Command{
		Use:   "forgot",
		Short: "Mail a password-reset token to the account's address",
		Long: `Ask the server to mail a password-reset token to the account named by -u
(a username or email; default: the profile's). The server answers the same
whether or not the account exists, so latch cannot tell you either: if no
mail arrives within a few minutes, check the name and the spam folder.`,
		Example: `  latch password forgot -u alice@example.com --server https://auth.example.com
  latch password forgot                       # the current profile's account`,
		Args: cobra.NoArgs,
		RunE: g.withEnv(func(ctx context.Context, e *flows.Env, _ []string) error {
			if server != "" {
				if err := g.checkURL("server", server); err != nil {
					return err
				}
			}
			t := flows.RecoveryTarget{Profile: g.profile, Server: server, Identifier: identifier}
			t, err := e.ForgotPassword(ctx, t)
			if err != nil {
				return recoveryUsage(err)
			}
			fmt.Fprintf(g.out, "If %s has an account on %s, a reset mail is on its way to its address.\n", t.Identifier, t.Server)
			fmt.Fprintln(g.out, "Then run: latch password reset --token-stdin   (and paste the token from the mail; it works once, for 30 minutes)")
			return nil
		}),
	}
	cmd.Flags().StringVar(&server, "server", "", "URL of the latch server (default: the profile's)")
	cmd.Flags().StringVarP(&identifier, "username", "u", "", "username or email of the account (default: the profile's)")
	return cmd
}

// recoveryUsage turns flows' "name the server or account" errors into
// usage errors (exit 2); anything else, a server's answer above all, stays
// what it is.
func recoveryUsage(err error) error {
	if errors.Is(err, flows.ErrNoTarget) {
		return usageError{err}
	}
	return err
}

type resetOptions struct {
	server        string
	tokenStdin    bool
	passwordStdin bool
	code          string
	useBackupCode bool
}

func newPasswordResetCmd(g *globals) *cobra.Command {
	o := &resetOptions{}
	cmd := &cobra.Command{
		Use:   "reset",
		Short: "Set a new password with the token from a reset mail",
		Long: `Set a new password with the token that latch password forgot had mailed.
The token comes from the first line of stdin (--token-stdin) or a masked
prompt; the new password from a masked prompt (asked twice) or, with
--password-stdin, from the line after the token. Neither is ever a flag value.

An account with two-factor on also needs a code: --code CODE (from the
authenticator app, or a backup code) or --use-backup-code (the next one saved
in the vault); on a terminal latch asks for it.

A reset ends every session of the account. Profiles here whose session it
ended are logged out, and say so; log in again with the new password.`,
		Example: `  latch password reset --token-stdin
  printf '%s\n%s\n' "$TOKEN" "$NEW_PASSWORD" | latch password reset --token-stdin --password-stdin
  latch password reset --token-stdin --code 123456`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return resetRun(cmd.Context(), g, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.server, "server", "", "URL of the latch server (default: the profile's)")
	f.BoolVar(&o.tokenStdin, "token-stdin", false, "read the token from the first line of stdin")
	f.BoolVar(&o.passwordStdin, "password-stdin", false, "read the new password from stdin (the line after the token with --token-stdin)")
	f.StringVar(&o.code, "code", "", "the second factor, for an account with two-factor on: an authenticator or backup code")
	f.BoolVar(&o.useBackupCode, "use-backup-code", false, "answer the second factor with the next unused backup code saved in the vault")
	return cmd
}

func resetRun(ctx context.Context, g *globals, o *resetOptions) error {
	if o.code != "" && o.useBackupCode {
		return usagef("choose one of --code and --use-backup-code")
	}
	if o.server != "" {
		if err := g.checkURL("server", o.server); err != nil {
			return err
		}
	}
	e, err := g.openEnv(ctx)
	if err != nil {
		return err
	}
	token, err := g.secretInput(o.tokenStdin, "--token-stdin", "token", "Reset token from the mail: ")
	if err != nil {
		return err
	}
	pw, err := g.newPassword(o.passwordStdin, "New password: ")
	if err != nil {
		return err
	}
	req := flows.ResetRequest{Profile: g.profile, Server: o.server, Token: token, NewPassword: pw, Code: o.code,
		UseBackupCode: o.useBackupCode}
	res, err := e.ResetPassword(ctx, req)
	if errors.Is(err, client.ErrMFARequired) && g.tty() {
		if req.Code, err = g.value("", "code", "This account has two-factor on. Authenticator code (or a backup code): "); err != nil {
			return err
		}
		res, err = e.ResetPassword(ctx, req)
	}
	if err != nil {
		if errors.Is(err, flows.ErrNoTarget) {
			return usageError{err}
		}
		if errors.Is(err, client.ErrMFARequired) {
			// The token is not spent: the same one works with a code.
			return fmt.Errorf("%w (the token is still good: run again with the same token and --code CODE or --use-backup-code)", err)
		}
		return err
	}
	fmt.Fprintln(g.out, "Password reset. The server ended every session of the account, on every device.")
	for _, name := range res.LoggedOut {
		fmt.Fprintf(g.out, "Profile %q was logged out here: its session ended with the reset. Log in again with: latch login --profile %s\n", name, name)
	}
	for _, name := range res.Unchecked {
		fmt.Fprintf(g.err, "Could not check whether profile %q's session survived; if latch token fails with exit 4, run latch login --profile %s\n", name, name)
	}
	if len(res.LoggedOut) == 0 {
		fmt.Fprintf(g.out, "Log in with the new password: latch login --server %s\n", res.Server)
	}
	return nil
}

func newPasswordChangeCmd(g *globals) *cobra.Command {
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "change",
		Short: "Change the logged-in account's password",
		Long: `Change the password of the profile's account: the current password, then
the new one (asked twice), from masked prompts; with --password-stdin, the
first line of stdin is the current password and the second the new one. The
server mails a notice to the account's address. This session stays logged in.`,
		Example: `  latch password change
  printf '%s\n%s\n' "$OLD" "$NEW" | latch password change --password-stdin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			e, err := g.openEnv(ctx)
			if err != nil {
				return err
			}
			current, err := g.password(passwordStdin, "Current password: ")
			if err != nil {
				return err
			}
			next, err := g.newPassword(passwordStdin, "New password: ")
			if err != nil {
				return err
			}
			if err := e.ChangePassword(ctx, g.profile, current, next); err != nil {
				if errors.Is(err, client.ErrInvalidCredentials) {
					return fmt.Errorf("the current password is wrong; nothing changed (forgot it? latch password forgot): %w", err)
				}
				return err
			}
			fmt.Fprintln(g.out, "Password changed. A notice went to the account's email address.")
			return nil
		},
	}
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the current and the new password from the first two lines of stdin")
	return cmd
}

// secretInput reads a secret that is not a password (a mailed token): the
// next line of stdin with fromStdin, else a masked prompt on a terminal.
func (g *globals) secretInput(fromStdin bool, flag, what, prompt string) (string, error) {
	if fromStdin {
		b, err := g.stdinSecret(flag, what)
		return string(b), err
	}
	if !g.tty() {
		return "", usagef("no terminal to ask for the %s: pipe it in with %s", what, flag)
	}
	b, err := g.readSecret(prompt)
	if err != nil {
		return "", fmt.Errorf("read the %s: %w", what, err)
	}
	if len(b) == 0 {
		return "", usagef("empty %s", what)
	}
	return string(b), nil
}

// newPassword reads a new password: from stdin, or twice from a masked
// prompt so that a typo does not lock the user out.
func (g *globals) newPassword(fromStdin bool, prompt string) (string, error) {
	pw, err := g.password(fromStdin, prompt)
	if err != nil || fromStdin {
		return pw, err
	}
	again, err := g.password(false, "Repeat the new password: ")
	if err != nil {
		return "", err
	}
	if again != pw {
		return "", usagef("the passwords differ; nothing changed")
	}
	return pw, nil
}
