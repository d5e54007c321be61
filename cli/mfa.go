package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/internal/textart"
)

func newMFACmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mfa",
		Short: "Set up and manage two-factor login (TOTP and backup codes)",
		Long: `Two-factor login with an authenticator app (TOTP) and single-use backup codes.

Enrol in two steps: latch mfa setup shows a secret and a QR code for the app;
latch mfa enable --code CODE confirms it with the app's current code, turns
two-factor on, and saves the 10 backup codes in the vault.`,
		Example: `  latch mfa setup
  latch mfa enable --code 123456
  latch login --use-backup-code       # when the phone is away`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newMFASetupCmd(g), newMFAEnableCmd(g), newMFADisableCmd(g), newMFACodesCmd(g), newMFACodeCmd(g))
	return cmd
}

func newMFASetupCmd(g *globals) *cobra.Command {
	var asJSON, store bool
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Start enrolment: show the TOTP secret and its QR code",
		Long: `Ask the server for a new TOTP secret and show it: as an otpauth:// URI, a QR
code (on a terminal) and the secret in groups of four for typing in. Nothing
changes until latch mfa enable confirms a code.

--store-secret also keeps the secret in latch's vault, so that latch login and
latch mfa code can produce codes themselves. That makes this terminal a single
factor: meant for developers exercising the flows, not for real accounts.`,
		Example: "  latch mfa setup\n  latch mfa setup --json | jq -r .uri",
		Args:    cobra.NoArgs,
		RunE: g.withEnv(func(ctx context.Context, e *flows.Env, args []string) error {
			s, err := e.StartMFASetup(ctx, g.profile, store)
			if err != nil {
				return err
			}
			if store {
				fmt.Fprintln(g.err, "Warning: the TOTP secret is saved in the vault; this terminal alone can now pass the second factor.")
			}
			if asJSON {
				return writeJSON(g.out, map[string]string{"secret": s.Secret, "uri": s.URI})
			}
			if isTerminal(g.out) {
				fmt.Fprintln(g.out, "Scan this with your authenticator app:")
				fmt.Fprintln(g.out, textart.QR(s.URI))
			}
			fmt.Fprintf(g.out, "Secret: %s\nURI:    %s\n", s.Grouped(), s.URI)
			fmt.Fprintln(g.out, "Then confirm with: latch mfa enable --code CODE")
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the secret and URI as JSON")
	cmd.Flags().BoolVar(&store, "store-secret", false, "keep the secret in the vault (makes this terminal a single factor)")
	return cmd
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newMFAEnableCmd(g *globals) *cobra.Command {
	var code string
	var show, endOthers bool
	cmd := &cobra.Command{
		Use:   "enable",
		Short: "Confirm enrolment with a code; save the backup codes",
		Long: `Turn two-factor on with the authenticator app's current code. The server
answers with 10 single-use backup codes, shown only once: latch saves them in
the vault (latch mfa codes shows how many are left; --show-codes prints them
now as well).

Sessions opened before two-factor was on stay open: --end-other-sessions ends
them all but this one; without it, latch asks on a terminal when there are any.`,
		Example: "  latch mfa enable --code 123456\n  latch mfa enable --code 123456 --end-other-sessions",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			code, err := g.value(code, "code", "Code from the authenticator app: ")
			if err != nil {
				return err
			}
			e, err := g.openEnv(ctx)
			if err != nil {
				return err
			}
			res, err := e.EnableMFAEnding(ctx, g.profile, code, endOthers)
			if res != nil && (show || err != nil) {
				printCodes(g.out, res.BackupCodes)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "Two-factor login is on. %d backup codes saved to your vault (%s).\n", len(res.BackupCodes), e.Vault.Backend)
			return offerEndOthers(ctx, g, e, res.OtherSessions, endOthers)
		},
	}
	cmd.Flags().StringVar(&code, "code", "", "the authenticator app's current code")
	cmd.Flags().BoolVar(&endOthers, "end-other-sessions", false, "also end every other session of the account (on a terminal latch asks)")
	cmd.Flags().BoolVar(&show, "show-codes", false, "also print the backup codes (they are saved in the vault either way)")
	return cmd
}

func newMFADisableCmd(g *globals) *cobra.Command {
	var code string
	var endOthers bool
	cmd := &cobra.Command{
		Use:   "disable",
		Short: "Turn two-factor login off",
		Long: `Turn two-factor off with a current code, and forget the saved backup codes and
secret. --end-other-sessions also ends every other session of the account;
without it, latch asks on a terminal when there are any.`,
		Example: "  latch mfa disable --code 123456\n  latch mfa disable --code 123456 --end-other-sessions",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			code, err := g.value(code, "code", "Code from the authenticator app: ")
			if err != nil {
				return err
			}
			e, err := g.openEnv(ctx)
			if err != nil {
				return err
			}
			res, err := e.DisableMFAEnding(ctx, g.profile, code, endOthers)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.out, "Two-factor login is off.")
			return offerEndOthers(ctx, g, e, res.OtherSessions, endOthers)
		},
	}
	cmd.Flags().StringVar(&code, "code", "", "a current code from the authenticator app")
	cmd.Flags().BoolVar(&endOthers, "end-other-sessions", false, "also end every other session of the account (on a terminal latch asks)")
	return cmd
}

// offerEndOthers tells of the account's other sessions left open after a
// change of factors (ASVS V7.4.3) and, on a terminal, offers to end them.
func offerEndOthers(ctx context.Context, g *globals, e *flows.Env, others int, ended bool) error {
	switch {
	case ended && others <= 0:
		fmt.Fprintln(g.out, "Every other session of the account was ended.")
		return nil
	case others <= 0:
		return nil
	}
	if !g.tty() {
		fmt.Fprintf(g.out, "%d other session(s) of the account are still open. If someone else may know your password or codes, "+
			"end them now in latch's Sessions screen (run latch), or list them with latch api /auth/sessions and end each "+
			"with latch api -X DELETE /auth/sessions/ID; --end-other-sessions ends them along with the change.\n", others)
		return nil
	}
	fmt.Fprintf(g.err, "%d other session(s) of the account are still open. End them now? [y/N] ", others)
	line, err := g.readLine()
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
		fmt.Fprintln(g.out, "The other sessions stay open.")
		return nil
	}
	n, err := e.EndOtherSessions(ctx, g.profile)
	if err != nil {
		return fmt.Errorf("ended %d other session(s), then: %w", n, err)
	}
	fmt.Fprintf(g.out, "Ended %d other session(s).\n", n)
	return nil
}

func newMFACodesCmd(g *globals) *cobra.Command {
	var reveal, asJSON bool
	var regenerate string
	cmd := &cobra.Command{
		Use:   "codes",
		Short: "Show how many backup codes are left (or reveal, or regenerate them)",
		Example: `  latch mfa codes
  latch mfa codes --reveal
  latch mfa codes --regenerate 123456     # a new set; the old codes die`,
		Args: cobra.NoArgs,
		RunE: g.withEnv(func(ctx context.Context, e *flows.Env, args []string) error {
			if regenerate != "" {
				codes, err := e.RegenerateBackupCodes(ctx, g.profile, regenerate)
				if codes != nil && (reveal || err != nil) {
					printCodes(g.out, codes)
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(g.out, "%d new backup codes saved to your vault; the old ones no longer work.\n", len(codes))
				return nil
			}
			b, err := e.SavedBackupCodes(ctx, g.profile)
			if errors.Is(err, flows.ErrNoBackupCodes) {
				// None saved (two-factor off, or enabled elsewhere) is an
				// answer, not a failure: zero left.
				if !asJSON {
					fmt.Fprintln(g.out, "No backup codes saved in the vault for this profile; latch mfa enable saves them.")
					return nil
				}
				b, err = &flows.BackupCodes{}, nil
			}
			if err != nil {
				return err
			}
			return showCodes(g, b, reveal, asJSON)
		}),
	}
	cmd.Flags().BoolVar(&reveal, "reveal", false, "print the codes themselves")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&regenerate, "regenerate", "", "make a new set, confirmed with this authenticator `CODE`")
	return cmd
}

// codesJSON is `latch mfa codes --json` and `latch codes list --json`.
type codesJSON struct {
	Label     string   `json:"label,omitempty"`
	Remaining int      `json:"remaining"`
	Total     int      `json:"total,omitempty"`
	Unused    []string `json:"unused,omitempty"` // with --reveal
}

func showCodes(g *globals, b *flows.BackupCodes, reveal, asJSON bool) error {
	out := codesJSON{Remaining: b.Remaining(), Total: len(b.Codes)}
	if reveal {
		for _, c := range b.Codes {
			if c.State == "" {
				out.Unused = append(out.Unused, c.Code)
			}
		}
	}
	if asJSON {
		return writeJSON(g.out, out)
	}
	fmt.Fprintf(g.out, "%d of %d backup codes left.\n", out.Remaining, out.Total)
	if reveal {
		printCodes(g.out, out.Unused)
	}
	return nil
}

func printCodes(w io.Writer, codes []string) {
	for _, c := range codes {
		fmt.Fprintf(w, "  %s\n", c)
	}
}

func newMFACodeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "code",
		Short:   "Print the current TOTP code from the secret saved by setup --store-secret",
		Example: "  latch login -u alice --password-stdin --code \"$(latch mfa code)\"",
		Args:    cobra.NoArgs,
		RunE: g.withEnv(func(ctx context.Context, e *flows.Env, args []string) error {
			code, err := e.TOTPCode(ctx, g.profile)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.out, code)
			return nil
		}),
	}
}

func newCodesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "codes",
		Short: "Keep other services' backup codes in the vault",
		Long: `Keep the backup codes of other services (GitHub, a bank…) in latch's vault,
under a label, and take them one at a time.`,
		Example: `  latch codes import --label github < github-recovery-codes.txt
  latch codes list
  latch codes use --label github`,
		Args: cobra.NoArgs,
	}
	var label string
	imp := &cobra.Command{
		Use:   "import",
		Short: "Read codes from stdin, one per line, into the vault under --label",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if label == "" {
				return usagef("missing --label")
			}
			raw, err := io.ReadAll(io.LimitReader(g.in, 64<<10))
			if err != nil {
				return err
			}
			e, err := g.openEnv(ctx)
			if err != nil {
				return err
			}
			n, err := e.ImportCodes(ctx, label, strings.Split(string(raw), "\n"))
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "Saved %d codes under %q in the %s vault.\n", n, label, e.Vault.Backend)
			return nil
		},
	}
	imp.Flags().StringVar(&label, "label", "", "name for the codes, e.g. github")

	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the labels and how many codes each has left",
		Args:  cobra.NoArgs,
		RunE: g.withEnv(func(ctx context.Context, e *flows.Env, args []string) error {
			labels, err := e.CodeLabels()
			if err != nil {
				return err
			}
			out := []codesJSON{}
			for _, l := range labels {
				b, err := e.LabelCodes(ctx, l)
				if errors.Is(err, flows.ErrNoBackupCodes) {
					continue
				}
				if err != nil {
					return err
				}
				out = append(out, codesJSON{Label: l, Remaining: b.Remaining(), Total: len(b.Codes)})
			}
			if asJSON {
				return writeJSON(g.out, out)
			}
			if len(out) == 0 {
				fmt.Fprintln(g.out, "No codes saved. Add some with latch codes import --label NAME < codes.txt")
			}
			for _, c := range out {
				fmt.Fprintf(g.out, "%-20s %d of %d left\n", c.Label, c.Remaining, c.Total)
			}
			return nil
		}),
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	use := &cobra.Command{
		Use:   "use",
		Short: "Print the next unused code under --label and mark it used",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if label == "" {
				return usagef("missing --label")
			}
			e, err := g.openEnv(ctx)
			if err != nil {
				return err
			}
			code, err := e.UseLabelCode(ctx, label)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.out, code)
			return nil
		},
	}
	use.Flags().StringVar(&label, "label", "", "the label the codes were imported under")
	cmd.AddCommand(imp, list, use)
	return cmd
}
