package cli

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latch-dev/latch/agent"
	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/vault"
)

func newVaultCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vault",
		Short: "Unlock, lock and inspect the encrypted file vault",
		Long: `Where there is no desktop keyring, latch keeps secrets in an encrypted file
vault. Its key is wrapped with your passphrase; 'latch vault unlock' unwraps it
once and keeps it for the login session in memory the OS protects (the
kernel keyring, or a latch agent where the kernel refuses), so later latch
commands need neither the passphrase nor a second of key derivation.

Exit code 5 means the vault is locked and nothing could unlock it.`,
		Example: `  latch vault unlock                       # asks for the passphrase once
  printf '%s\n' "$PW" | latch vault unlock --passphrase-stdin --for 8h
  latch vault status --json
  latch vault lock`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newVaultUnlockCmd(g), newVaultLockCmd(g), newVaultStatusCmd(g), newVaultPasswdCmd(g))
	return cmd
}

func newVaultUnlockCmd(g *globals) *cobra.Command {
	var fromStdin bool
	var idle time.Duration
	cmd := &cobra.Command{
		Use:   "unlock",
		Short: "Unlock the file vault for this login session",
		Long: `Unwrap the file vault's key with the passphrase and keep it in the session
cache until it has gone unused for --for (12 h by default; every command that
reads a secret starts the time again, 'status' commands do not). On Linux the
cache is the kernel keyring; where keyctl is refused, a latch agent is
started to hold it. A vault that does not exist yet is created with this
passphrase. The passphrase comes from a prompt, or the first line of stdin
with --passphrase-stdin, or LATCH_VAULT_PASSPHRASE.`,
		Example: `  latch vault unlock
  latch vault unlock --for 30m
  printf '%s\n' "$PW" | latch vault unlock --passphrase-stdin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if idle < 0 || (idle > 0 && idle < time.Second) {
				return usagef("--for must be at least 1s")
			}
			ctx := cmd.Context()
			g.startAgent = true
			e, err := g.openEnv(ctx)
			if err != nil {
				return err
			}
			if e.Vault.Backend != vault.ModeFile {
				fmt.Fprintf(g.out, "Nothing to unlock: secrets are in the %s vault (%s).\n", e.Vault.Backend, e.Vault.Reason)
				return nil
			}
			pass, err := g.vaultPassphrase(fromStdin, !e.VaultExists())
			if err != nil {
				return err
			}
			err = e.UnlockVault(ctx, pass, idle)
			if errors.Is(err, vault.ErrNoCache) {
				why := "no kernel keyring and no latch agent here"
				if v := os.Getenv(envCache); v != "" {
					why = envCache + "=" + v
				}
				return fmt.Errorf("the passphrase is right, but there is no session cache to keep the key in (%s): "+
					"every latch will ask for the passphrase", why)
			}
			if err != nil {
				return err
			}
			st := e.VaultState(ctx)
			fmt.Fprintf(g.out, "Vault unlocked: the key is kept in %s", cmp.Or(st.Cache, "this process only"))
			if l := st.Lock; l != nil && l.Idle > 0 {
				fmt.Fprintf(g.out, " until %s unused (%s)", l.Idle, l.Until.Local().Format("Mon 15:04"))
			}
			fmt.Fprintln(g.out, ". latch vault lock locks it now.")
			return nil
		},
	}
	cmd.Flags().BoolVar(&fromStdin, "passphrase-stdin", false, "read the passphrase from the first line of stdin")
	cmd.Flags().DurationVar(&idle, "for", vault.DefaultIdle, "lock again after this long without use")
	return cmd
}

func newVaultLockCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "lock",
		Short: "Lock the file vault and forget cached access tokens",
		Long: `Remove the vault's key and every cached access token of this latch home from
the session cache, and stop the latch agent if one holds them. Until the
next unlock, commands that need a secret ask for the passphrase on a
terminal, or exit 5 without one. Sessions stay logged in.`,
		Example: `  latch vault lock`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			e, err := g.openEnv(ctx)
			var ve *agent.VersionError
			if errors.As(err, &ve) {
				// An agent of another version holds the cache: stop it,
				// which every version understands, and lock with no cache.
				sock, serr := agent.SocketPath()
				if serr == nil {
					serr = agent.Stop(ctx, sock)
				}
				if serr != nil {
					return fmt.Errorf("stop the latch agent: %w", serr)
				}
				g.noCache = true
				e, err = g.openEnv(ctx)
			}
			if err != nil {
				return err
			}
			unsaved, err := e.LockVault(ctx)
			if err != nil {
				return fmt.Errorf("lock the vault: %w", err)
			}
			where := "this process"
			if e.Cache != nil {
				where = e.Cache.Where()
			}
			if a, ok := e.Cache.(*agent.Client); ok && len(unsaved) == 0 {
				if err := a.Stop(ctx); err != nil {
					fmt.Fprintf(g.err, "latch: the agent did not stop: %v\n", err)
				}
			}
			fmt.Fprintf(g.out, "Vault locked: the key and cached access tokens are gone from %s.\n", where)
			if len(unsaved) > 0 {
				fmt.Fprintf(g.err, "latch: warning: rotated tokens of %s could not be saved to the vault yet and stay in %s "+
					"until they are (removing them would end those sessions): free the disk, then run latch token --profile %s\n",
					strings.Join(unsaved, ", "), where, unsaved[0])
			}
			return nil
		},
	}
}

// vaultStatusJSON is latch vault status --json.
type vaultStatusJSON struct {
	Backend string     `json:"backend"`
	Reason  string     `json:"reason"`
	Format  int        `json:"format,omitempty"`
	State   string     `json:"state"`
	From    string     `json:"from,omitempty"`
	Cache   string     `json:"cache,omitempty"`
	Until   *time.Time `json:"until,omitempty"`
	Idle    int64      `json:"idle_seconds,omitempty"`
}

func newVaultStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the vault's backend, format and lock",
		Long: `Show where secrets are kept and, for the file vault, its format, whether it is
locked, where the unlocked key is cached and until when. It reads no secret
and does not restart the idle time.

Exit code 0 when unlocked, 5 when locked.`,
		Example: `  latch vault status
  latch vault status --json | jq -r .state`,
		Args: cobra.NoArgs,
		RunE: g.withEnv(func(ctx context.Context, e *flows.Env, _ []string) error {
			st := e.VaultState(ctx)
			out := vaultStatusJSON{Backend: st.Backend, Reason: st.Reason, State: "unlocked", Cache: st.Cache}
			if l := st.Lock; l != nil {
				out.Format, out.State, out.From, out.Until = l.Format, l.State, l.From, timePtr(l.Until)
				out.Idle = int64(l.Idle / time.Second)
			}
			if asJSON {
				if err := writeJSON(g.out, out); err != nil {
					return err
				}
			} else {
				printVaultStatus(g.out, out)
			}
			if st.Locked() {
				return quietLocked{}
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printVaultStatus(w io.Writer, s vaultStatusJSON) {
	fmt.Fprintf(w, "backend: %s — %s\n", s.Backend, s.Reason)
	if s.Backend == vault.ModeFile {
		switch s.Format {
		case 0:
			fmt.Fprintln(w, "format:  none yet (created at the first login)")
		case vault.Format1:
			fmt.Fprintln(w, "format:  1 (passphrase on every use; the next unlock upgrades it to 2)")
		default:
			fmt.Fprintf(w, "format:  %d\n", s.Format)
		}
	}
	state := s.State
	switch {
	case s.State == "locked":
		state += ": latch vault unlock, or LATCH_VAULT_PASSPHRASE / LATCH_VAULT_IDENTITY"
	case s.From != "":
		state += " (key from " + s.From + ")"
	}
	fmt.Fprintf(w, "state:   %s\n", state)
	if s.Until != nil {
		fmt.Fprintf(w, "until:   %s, if unused (idle limit %s)\n", s.Until.Local().Format(time.DateTime), time.Duration(s.Idle)*time.Second)
	}
	cache := s.Cache
	if cache == "" {
		cache = "none: each latch unlocks the vault itself"
	}
	fmt.Fprintf(w, "cache:   %s\n", cache)
}

func newVaultPasswdCmd(g *globals) *cobra.Command {
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "passwd",
		Short: "Change the file vault's passphrase",
		Long: `Rewrap the file vault's key with a new passphrase. The secrets are not
rewritten and an unlocked vault stays unlocked. With --passphrase-stdin the
first line of stdin is the current passphrase and the second the new one.`,
		Example: `  latch vault passwd
  printf '%s\n%s\n' "$OLD" "$NEW" | latch vault passwd --passphrase-stdin`,
		Args: cobra.NoArgs,
		RunE: g.withEnv(func(ctx context.Context, e *flows.Env, _ []string) error {
			if e.Vault.Backend != vault.ModeFile {
				return fmt.Errorf("the %s vault has no passphrase: only the file vault does", e.Vault.Backend)
			}
			var old, next []byte
			if fromStdin {
				var err error
				if old, err = g.stdinSecret("--passphrase-stdin", "current passphrase (first line)"); err != nil {
					return err
				}
				if next, err = g.stdinSecret("--passphrase-stdin", "new passphrase (second line)"); err != nil {
					return err
				}
			} else {
				if !g.tty() {
					return usagef("no terminal to ask for the passphrases: use --passphrase-stdin")
				}
				var err error
				if old, err = g.readSecret("Current vault passphrase: "); err != nil {
					return err
				}
				if next, err = g.newPassphrase("New vault passphrase: "); err != nil {
					return err
				}
			}
			if err := e.ChangeVaultPassphrase(ctx, old, next); err != nil {
				return err
			}
			fmt.Fprintln(g.out, "Vault passphrase changed.")
			return nil
		}),
	}
	cmd.Flags().BoolVar(&fromStdin, "passphrase-stdin", false, "read the current and new passphrases from stdin, one per line")
	return cmd
}

// vaultPassphrase reads the passphrase for unlocking: stdin's first line,
// LATCH_VAULT_PASSPHRASE, or a prompt (twice for a new vault).
func (g *globals) vaultPassphrase(fromStdin, isNew bool) ([]byte, error) {
	if fromStdin {
		return g.stdinSecret("--passphrase-stdin", "passphrase")
	}
	if p := os.Getenv(envPassphrase); p != "" {
		return []byte(p), nil
	}
	if !g.tty() {
		return nil, usagef("no terminal to ask for the vault passphrase: pipe it in with --passphrase-stdin")
	}
	if isNew {
		return g.newPassphrase("New vault passphrase: ")
	}
	return g.readSecret("Vault passphrase: ")
}

// newPassphrase asks for a new passphrase twice.
func (g *globals) newPassphrase(prompt string) ([]byte, error) {
	p, err := g.readSecret(prompt)
	if err != nil {
		return nil, err
	}
	if len(p) == 0 {
		return nil, usagef("empty passphrase")
	}
	again, err := g.readSecret("Repeat it: ")
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(p, again) {
		return nil, errors.New("the passphrases differ; nothing was saved or changed")
	}
	return p, nil
}
