package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/tui"
	"github.com/latch-dev/latch/vault"
)

// Without a terminal there is nobody to walk through the interface: latch
// prints its help and exits 2, and so does latch demo.
func TestNoTerminalNoInterface(t *testing.T) {
	e := newE2E(t, time.Minute)
	r := e.run("")
	if r.code != exitUsage || !strings.Contains(r.stdout, "Usage:") || !strings.Contains(r.stdout, "demo") {
		t.Fatalf("latch without a terminal: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = e.run("", "demo")
	if r.code != exitUsage || !strings.Contains(r.stderr, "needs a terminal") {
		t.Fatalf("latch demo without a terminal: exit %d, stderr %q", r.code, r.stderr)
	}
}

// latch demo wires a real server, a temporary home and the memory vault
// into the interface, and removes them all when the interface ends.
func TestDemoSetsUpAndRemovesEverything(t *testing.T) {
	t.Setenv("LATCH_HOME", "/nonexistent/outer-home")
	t.Setenv("TMPDIR", t.TempDir())
	var home string
	var got tui.Options
	g := newGlobals()
	g.bind(&cobra.Command{}) // the flags' defaults
	o := &demoOptions{g: g, Addr: "127.0.0.1:0", AccessTTL: 30 * time.Second, RefreshTTL: time.Hour,
		run: func(ctx context.Context, opts tui.Options) error {
			got = opts
			home = os.Getenv("LATCH_HOME")
			p, err := opts.Env.Profile(opts.Profile)
			if err != nil {
				return err
			}
			// The interface's signup, through the same flow, against the demo server.
			_, err = opts.Env.Signup(ctx, flows.SignupRequest{Profile: p.Name, Server: p.Server,
				Username: "alice", Email: "alice@example.com", Password: e2ePassword})
			return err
		}}
	if err := demoRun(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if got.Profile != demoProfile || !strings.Contains(got.Banner, "DEMO") || !strings.Contains(got.Banner, "http://127.0.0.1:") {
		t.Fatalf("interface options: profile %q, banner %q", got.Profile, got.Banner)
	}
	if got.Env.Vault.Backend != vault.ModeMemory {
		t.Fatalf("vault %q without --vault, want memory", got.Env.Vault.Backend)
	}
	if filepath.Dir(filepath.Dir(home)) != filepath.Clean(os.Getenv("TMPDIR")) {
		t.Fatalf("demo home %q is not a temporary directory", home)
	}
	if _, err := os.Stat(home); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the demo home is still there after exit: %v", err)
	}
	if h := os.Getenv("LATCH_HOME"); h != "/nonexistent/outer-home" {
		t.Fatalf("LATCH_HOME is %q after the demo, want it restored", h)
	}
	if left, _ := os.ReadDir(os.Getenv("TMPDIR")); len(left) != 0 {
		t.Fatalf("the demo left %s behind", left[0].Name())
	}
}

func TestDemoRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{{"--addr", "0.0.0.0:0"}, {"--access-ttl", "1s"}, {"--refresh-ttl", "10s"}} {
		var out, errb bytes.Buffer
		cmd := NewRootCmd()
		cmd.SetArgs(append([]string{"demo"}, args...))
		cmd.SetOut(&out)
		cmd.SetErr(&errb)
		var ue usageError
		if err := cmd.Execute(); !errors.As(err, &ue) || strings.Contains(err.Error(), "terminal") {
			t.Errorf("demo %v: %v, want a usage error about the flag", args, err)
		}
	}
}

// The interface takes over the trace and the progress messages: nothing a
// flow reports reaches the terminal it draws on, unless --debug's output
// goes to a file, which then gets the trace too.
func TestInterfaceTakesTheTrace(t *testing.T) {
	for _, tc := range []struct {
		name      string
		debug     bool
		wantDebug int
	}{
		{"no --debug", false, 0},
		{"--debug to a file", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			g := newGlobals()
			g.err = &stderr
			debugged := 0
			if tc.debug {
				g.trace = func(client.Event) { debugged++ }
			}
			e := &flows.Env{Progress: func(msg string) { stderr.WriteString(msg) }}
			var o tui.Options
			g.traceInto(e, &o)
			if o.Trace == nil {
				t.Fatal("no feed for the interface")
			}
			g.traceEvent(client.Event{Note: "a step"})
			e.Progress("waiting")
			if stderr.Len() != 0 || debugged != tc.wantDebug {
				t.Fatalf("stderr %q, --debug got %d events; want nothing on stderr and %d", stderr.String(), debugged, tc.wantDebug)
			}
		})
	}
}
