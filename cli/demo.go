package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/server"
	"github.com/latch-dev/latch/tui"
	"github.com/latch-dev/latch/vault"
)

// demoProfile is the profile latch demo opens on.
const demoProfile = "demo"

type demoOptions struct {
	g          *globals
	Addr       string
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	// vaultSet says --vault was given; otherwise the demo uses memory.
	vaultSet bool
	// run replaces the interface in tests; it gets the Env and the banner.
	run func(ctx context.Context, o tui.Options) error
}

func newDemoCmd(g *globals) *cobra.Command {
	o := &demoOptions{g: g}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Try latch: a throwaway server and the interface, in one command",
		Long: `Start a throwaway latch server in this process, on loopback with a temporary
database, and open the interface on a "demo" profile, with a temporary
LATCH_HOME and the memory vault (unless --vault says otherwise). Sign up,
watch the tokens rotate in the background, look at the sessions and the
token, log out. Mail the server would send (email verification, password
reset, security notices) lands in an in-memory mailbox instead, which the
interface shows.

Access tokens live 30 seconds here, so rotation is easy to watch. Quitting
removes everything the demo created: the server, its database, the home
directory, and any secrets it put in a keyring.`,
		Example: `  latch demo
  latch demo --access-ttl 10s        # rotate even more often
  latch demo --vault file            # use the encrypted file vault instead`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.vaultSet = cmd.Flags().Changed("vault")
			return demoRun(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Addr, "addr", "127.0.0.1:0", "loopback address for the demo server (port 0: any free port)")
	f.DurationVar(&o.AccessTTL, "access-ttl", 30*time.Second, "access-token lifetime on the demo server")
	f.DurationVar(&o.RefreshTTL, "refresh-ttl", server.DefaultRefreshTTL, "sliding idle lifetime of a demo session")
	return cmd
}

func demoRun(ctx context.Context, o *demoOptions) (err error) {
	g := o.g
	if o.AccessTTL < 2*time.Second || o.RefreshTTL <= o.AccessTTL {
		return usagef("--access-ttl must be at least 2s, and --refresh-ttl longer than it")
	}
	if loop, lerr := isLoopbackAddr(o.Addr); lerr != nil || !loop {
		return usagef("--addr %q: the demo serves only on loopback, like 127.0.0.1:0", o.Addr)
	}
	if o.run == nil && !g.interactive() {
		return usagef("latch demo opens the interface, so it needs a terminal; for a backend alone, run latch serve --dev")
	}
	if !o.vaultSet {
		g.vault = vault.ModeMemory
	}

	dir, err := os.MkdirTemp("", "latch-demo-")
	if err != nil {
		return fmt.Errorf("create the demo's directory: %w", err)
	}
	defer func() {
		if rerr := os.RemoveAll(dir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove the demo's directory %s: %w", dir, rerr))
		}
	}()
	home := filepath.Join(dir, "home")
	restore := setenvTemp("LATCH_HOME", home)
	defer restore()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	url, stop, err := startDemoServer(ctx, o, filepath.Join(dir, "server"))
	if err != nil {
		return err
	}
	defer stop()

	e, err := g.openEnv(ctx)
	if err != nil {
		return err
	}
	defer forgetAll(e)
	err = vault.UpdateConfig(ctx, e.Home, func(c *vault.Config) error {
		c.Current = demoProfile
		return c.Put(vault.Profile{Name: demoProfile, Server: url, Kind: vault.KindAccount})
	})
	if err != nil {
		return fmt.Errorf("create the demo profile: %w", err)
	}

	opts := tui.Options{Env: e, Profile: demoProfile,
		Banner: "DEMO · throwaway server " + url + " · removed on exit"}
	g.traceInto(e, &opts)
	if o.run != nil {
		return o.run(ctx, opts)
	}
	if err := tui.Run(ctx, opts, g.in, g.out); err != nil {
		return err
	}
	fmt.Fprintln(g.err, "latch demo: stopped the demo server and removed its database, home and secrets.")
	return nil
}

// startDemoServer runs a latch server in this process on a temporary
// database in dir, and returns its URL and how to stop it.
func startDemoServer(ctx context.Context, o *demoOptions, dir string) (string, func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("create the demo database directory: %w", err)
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return "", nil, fmt.Errorf("listen on %s: %w", o.Addr, err)
	}
	url := "http://" + ln.Addr().String()
	key := make([]byte, 32)
	rand.Read(key)
	// The interface owns the terminal: the server must not write to it,
	// nor the OpenID provider's library, which logs to slog's default.
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	slog.SetDefault(quiet)
	srv, err := server.New(ctx, server.Config{
		DBPath: filepath.Join(dir, "latch.db"), Issuer: url, SecretKey: key,
		AccessTTL: o.AccessTTL, RefreshTTL: o.RefreshTTL, Logger: quiet,
		// Mail stays in the dev mailbox, which the interface's Mailbox
		// screen reads at GET /dev/mail: the demo sends nothing.
		Mail: server.MailConfig{Dev: true},
	})
	if err != nil {
		ln.Close()
		return "", nil, fmt.Errorf("start the demo server: %w", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(sctx, ln, "", "")
	}()
	return url, func() {
		cancel()
		<-done
		srv.Close()
	}, nil
}

// forgetAll deletes the tokens of every profile the demo made, which
// matters when --vault put them in the system keyring.
func forgetAll(e *flows.Env) {
	cfg, err := e.Config()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, p := range cfg.Profiles {
		e.Tokens().Forget(ctx, p.Name) // a profile without tokens has nothing to forget
	}
}

// setenvTemp sets an environment variable until the returned func runs.
func setenvTemp(name, value string) func() {
	old, had := os.LookupEnv(name)
	os.Setenv(name, value)
	return func() {
		if had {
			os.Setenv(name, old)
		} else {
			os.Unsetenv(name)
		}
	}
}
