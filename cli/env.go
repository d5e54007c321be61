package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/vault"
)

// Environment variables the client commands read.
const (
	envVault      = "LATCH_VAULT"
	envPassphrase = "LATCH_VAULT_PASSPHRASE"
	envProfile    = "LATCH_PROFILE"
	// envCache picks the session cache: auto (the kernel keyring, else a
	// running latch agent), kernel, agent, or none.
	envCache = "LATCH_VAULT_CACHE"
)

// globals are the persistent flags every client command shares, and the
// process's terminal, which tests replace.
type globals struct {
	profile  string
	vault    string
	insecure bool
	timeout  time.Duration

	in       io.Reader
	out, err io.Writer
	lines    *bufio.Reader // over in, shared so no prompt loses another's input
	// tty reports whether stdin is a terminal a prompt can use.
	tty func() bool
	// readSecret reads a line from the terminal without echo.
	readSecret func(prompt string) ([]byte, error)
	// env is set by tests that build their own Env.
	env *flows.Env
	// noPrompt keeps the vault from asking for its passphrase on the
	// terminal: the interface owns the terminal and asks on a screen.
	noPrompt bool
	// startAgent lets openEnv start a latch agent when the session cache
	// needs one (latch vault unlock).
	startAgent bool
	// noCache opens the vault without a session cache.
	noCache bool
	// trace, when set, receives every HTTP exchange and flow step of the
	// command, redacted: --debug's printer, or the interface's trace pane.
	trace client.Tracer
}

func newGlobals() *globals {
	return &globals{
		in: os.Stdin, out: os.Stdout, err: os.Stderr,
		tty: func() bool { return term.IsTerminal(int(os.Stdin.Fd())) },
		readSecret: func(prompt string) ([]byte, error) {
			fmt.Fprint(os.Stderr, prompt)
			defer fmt.Fprintln(os.Stderr)
			defer startPrompt(os.Stdin)()
			return term.ReadPassword(int(os.Stdin.Fd()))
		},
	}
}

func (g *globals) bind(root *cobra.Command) {
	f := root.PersistentFlags()
	f.StringVarP(&g.profile, "profile", "p", os.Getenv(envProfile), "profile to act on (env LATCH_PROFILE; default: the current profile)")
	def := os.Getenv(envVault)
	if def == "" {
		def = vault.ModeAuto
	}
	f.StringVar(&g.vault, "vault", def, "where secrets are kept: auto, keyring, file or memory (env LATCH_VAULT)")
	f.BoolVar(&g.insecure, "insecure", false, "allow plain http:// to servers that are not loopback")
	f.DurationVar(&g.timeout, "timeout", 10*time.Second, "bound on each call to the server")
	f.String("debug", "", debugHelp)
	debug := f.Lookup("debug")
	debug.NoOptDefVal = "api"
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		g.in, g.out, g.err = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
		return g.startDebug(debug)
	}
}

// openEnv opens latch's home and vault for a client command.
func (g *globals) openEnv(ctx context.Context) (*flows.Env, error) {
	if g.env != nil {
		return g.env, nil
	}
	if g.timeout <= 0 {
		return nil, usagef("--timeout must be positive")
	}
	switch g.vault {
	case vault.ModeAuto, vault.ModeKeyring, vault.ModeFile, vault.ModeMemory:
	default:
		return nil, usagef("--vault %q: use auto, keyring, file or memory", g.vault)
	}
	home, err := vault.Home()
	if err != nil {
		return nil, err
	}
	var cache vault.Cache
	if g.vault != vault.ModeMemory && !g.noCache {
		if cache, err = g.openCache(ctx, home); err != nil {
			return nil, err
		}
	}
	e, err := flows.OpenEnv(ctx, home, flows.VaultOptions{Mode: g.vault, Passphrase: g.passphrase(home), Cache: cache})
	if err != nil {
		return nil, err
	}
	e.Warn = func(msg string) { fmt.Fprintln(g.err, "latch: warning:", msg) }
	e.Progress = func(msg string) { fmt.Fprintln(g.err, msg) }
	e.Client = func(server string) (*client.Client, error) {
		return client.New(server, g.clientOptions())
	}
	e.Discover = func(ctx context.Context, cfg client.ProviderConfig) (*client.Provider, error) {
		opts := g.clientOptions()
		opts.CAFile = cfg.CAFile
		return client.NewProvider(ctx, cfg, opts)
	}
	e.Trace = g.traceEvent
	e.Forward = agentForward(home)
	g.env = e
	return e, nil
}

// clientOptions are the options of every client the command builds.
func (g *globals) clientOptions() client.Options {
	o := client.Options{Insecure: g.insecure, Version: Version, Timeout: g.timeout}
	if g.trace != nil { // untraced, a client builds none of the tracing
		o.Trace = g.traceEvent
	}
	return o
}

// traceEvent hands ev to the command's tracer, if any.
func (g *globals) traceEvent(ev client.Event) {
	if g.trace != nil {
		g.trace(ev)
	}
}

// withEnv makes a RunE that opens latch's home and vault before run.
func (g *globals) withEnv(run func(ctx context.Context, e *flows.Env, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		e, err := g.openEnv(ctx)
		if err != nil {
			return err
		}
		return run(ctx, e, args)
	}
}

// passphrase returns the file vault's passphrase source: the environment, or
// a prompt on the terminal (asked twice when the vault is new).
func (g *globals) passphrase(home string) func() ([]byte, error) {
	return func() ([]byte, error) {
		if p := os.Getenv(envPassphrase); p != "" {
			return []byte(p), nil
		}
		if g.noPrompt || !g.tty() {
			return nil, vault.ErrLocked
		}
		if vault.FileVaultExists(home) {
			return g.readSecret("Vault passphrase: ")
		}
		return g.newPassphrase("New vault passphrase (encrypts " + filepath.Join(home, "secrets.age") + "): ")
	}
}

// password reads a password: the first line of stdin with --password-stdin,
// else a masked prompt on a terminal. It is never a flag value.
func (g *globals) password(fromStdin bool, prompt string) (string, error) {
	if fromStdin {
		b, err := g.stdinSecret("--password-stdin", "password")
		return string(b), err
	}
	if !g.tty() {
		return "", usagef("no terminal to ask for the password: pipe it in with --password-stdin")
	}
	b, err := g.readSecret(prompt)
	if err != nil {
		return "", fmt.Errorf("read the password: %w", err)
	}
	if len(b) == 0 {
		return "", usagef("empty password")
	}
	return string(b), nil
}

// stdinSecret reads the next line of stdin as a secret (a password, a
// passphrase) for flag; what names it in errors.
func (g *globals) stdinSecret(flag, what string) ([]byte, error) {
	line, err := g.readLine()
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read the %s from stdin: %w", what, err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return nil, usagef("%s: stdin held no %s", flag, what)
	}
	return []byte(line), nil
}

// value returns a flag's value, or prompts for it on a terminal, or fails
// naming the flag.
func (g *globals) value(v, flag, prompt string) (string, error) {
	if v != "" {
		return v, nil
	}
	if !g.tty() {
		return "", usagef("missing --%s (no terminal to ask on)", flag)
	}
	fmt.Fprint(g.err, prompt)
	line, err := g.readLine()
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimSpace(line)
	if line == "" {
		return "", usagef("missing --%s", flag)
	}
	return line, nil
}

// checkURL refuses a URL given on the command line (or typed at a prompt)
// that latch would refuse to talk to — malformed, not http(s), plain http://
// off loopback without --insecure — as a usage error naming the flag.
func (g *globals) checkURL(flag, raw string) error {
	if _, err := client.New(raw, client.Options{Insecure: g.insecure}); err != nil {
		return usageError{fmt.Errorf("--%s: %w", flag, err)}
	}
	return nil
}

func (g *globals) readLine() (string, error) {
	if g.lines == nil {
		g.lines = bufio.NewReader(g.in)
	}
	if f, ok := g.in.(*os.File); ok {
		defer startPrompt(f)()
	}
	return g.lines.ReadString('\n')
}

// prompt is the read from the terminal under way, if any, and the signal
// that interrupted latch, if any: a signal cannot cancel a read, so Execute
// ends the process instead (see interrupt).
var prompt struct {
	sync.Mutex
	blocked bool
	restore func()
	sig     os.Signal
}

// startPrompt records that latch is about to block reading f, and how f's
// terminal was before a prompt turned its echo off. The returned func ends
// the read. Once latch was interrupted, no read starts: latch exits.
func startPrompt(f *os.File) (done func()) {
	restore := func() {}
	if st, err := term.GetState(int(f.Fd())); err == nil {
		restore = func() { _ = term.Restore(int(f.Fd()), st) }
	}
	prompt.Lock()
	if prompt.sig != nil {
		os.Exit(signalExit(prompt.sig))
	}
	prompt.blocked, prompt.restore = true, restore
	prompt.Unlock()
	return func() {
		prompt.Lock()
		prompt.blocked, prompt.restore = false, nil
		prompt.Unlock()
	}
}

// interrupt records sig, and when latch is blocked reading the terminal,
// puts the terminal back as the prompt found it and exits.
func interrupt(sig os.Signal) {
	prompt.Lock()
	defer prompt.Unlock()
	prompt.sig = sig
	if prompt.blocked {
		prompt.restore()
		fmt.Fprintln(os.Stderr)
		os.Exit(signalExit(sig))
	}
}
