package vault

// These tests talk to the real Secret Service. Without one they skip, unless
// LATCH_REQUIRE_KEYRING=1, when they fail: CI sets it so that a broken
// keyring setup cannot pass silently. To run them on Linux:
//
//	apt-get install -y gnome-keyring dbus dbus-x11 libsecret-tools
//	dbus-run-session -- sh -c 'export XDG_DATA_HOME="$(mktemp -d)"; printf latch-ci | gnome-keyring-daemon --unlock --components=secrets >/dev/null; LATCH_REQUIRE_KEYRING=1 go test -race ./vault/'
//
// The password must be non-empty: with an empty one gnome-keyring creates no
// login collection and wants a prompt, so every call fails as locked.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/zalando/go-keyring"
)

const howToRun = `to run it: dbus-run-session -- sh -c 'export XDG_DATA_HOME="$(mktemp -d)"; ` +
	`printf latch-ci | gnome-keyring-daemon --unlock --components=secrets >/dev/null; go test ./vault/'`

func requireKeyring() bool { return os.Getenv("LATCH_REQUIRE_KEYRING") == "1" }

// skipOrFail skips, or fails when the environment promises a keyring.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if requireKeyring() {
		t.Fatalf("LATCH_REQUIRE_KEYRING=1 but "+format, args...)
	}
	t.Skipf(format, args...)
}

// realKeyring returns the real keyring backend, or skips (fails) when it is
// not usable.
func realKeyring(t *testing.T) *keyringSecrets {
	t.Helper()
	if requireKeyring() {
		waitForSecretService(t)
	}
	k := newKeyringSecrets(systemKeyring{})
	if err := k.probe(context.Background()); err != nil {
		skipOrFail(t, "no usable Secret Service (%v); %s", err, howToRun)
	}
	return k
}

// waitForSecretService waits, bounded, until a Secret Service owns its bus
// name. gnome-keyring-daemon --unlock returns before the daemon it forks has
// claimed the name, and a call made in that window makes D-Bus activate a
// second, locked daemon instead.
func waitForSecretService(t *testing.T) {
	t.Helper()
	conn, err := dbus.SessionBus()
	if err != nil {
		return // the probe reports it
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var owned bool
		err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0,
			"org.freedesktop.secrets").Store(&owned)
		if err == nil && owned {
			return
		}
		select {
		case <-ctx.Done():
			return // the probe reports it
		case <-tick.C:
		}
	}
}

func TestRealKeyring(t *testing.T) {
	k := realKeyring(t)
	ctx := context.Background()
	b := make([]byte, 6)
	rand.Read(b)
	prefix := "test-" + hex.EncodeToString(b) + "/"
	keys := []string{prefix + "small", prefix + "binary", prefix + "big"}
	t.Cleanup(func() {
		for _, key := range keys {
			k.Delete(context.Background(), key)
		}
	})
	big := bytes.Repeat([]byte("0123456789abcdef\x00\xff"), 500) // 9000 bytes

	values := map[string][]byte{
		keys[0]: []byte("refresh-token"),
		keys[1]: {0, 1, 2, 0xfe, 0xff},
		keys[2]: big,
	}
	for key, v := range values {
		if err := k.Set(ctx, key, v); err != nil {
			t.Fatalf("Set(%q) = %v", key, err)
		}
		got, err := k.Get(ctx, key)
		if err != nil || !bytes.Equal(got, v) {
			t.Fatalf("Get(%q) = %d bytes, %v; want %d bytes", key, len(got), err, len(v))
		}
	}

	// The big value really is spread over small entries.
	chunks := func() int {
		n := 0
		for i := 1; i <= maxChunks; i++ {
			if _, err := keyring.Get(keyringService, chunkKey(keys[2], i)); err == nil {
				n++
			}
		}
		return n
	}
	if n := chunks(); n != 6 {
		t.Fatalf("big value stored in %d chunks, want 6", n)
	}
	if err := k.Set(ctx, keys[2], big[:3000]); err != nil {
		t.Fatal(err)
	}
	if n := chunks(); n != 2 {
		t.Fatalf("after shrinking, %d chunks remain, want 2", n)
	}
	if err := k.Delete(ctx, keys[2]); err != nil {
		t.Fatal(err)
	}
	if n := chunks(); n != 0 {
		t.Fatalf("after Delete, %d chunks remain", n)
	}
	if _, err := k.Get(ctx, keys[2]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
	}
	if err := k.Delete(ctx, keys[2]); err != nil {
		t.Fatalf("Delete(absent) = %v", err)
	}

	_, c, err := Open(ctx, ModeAuto, t.TempDir(), staticPass(testPass))
	if err != nil || c.Backend != ModeKeyring {
		t.Fatalf("Open(auto) = %+v, %v; want the keyring", c, err)
	}
}

// TestRealKeyringUnavailable runs the real probe where no keyring can work,
// in child processes so their D-Bus environment is their own.
func TestRealKeyringUnavailable(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("D-Bus cases are Linux-only")
	}
	tests := []struct {
		name     string
		cmd      func(self string, env []string) (*exec.Cmd, bool)
		sentinel string
		reason   string
	}{
		{"no session bus", func(self string, env []string) (*exec.Cmd, bool) {
			cmd := exec.Command(self, "-test.run=^$")
			cmd.Env = append(env, "DBUS_SESSION_BUS_ADDRESS=unix:path="+filepath.Join(t.TempDir(), "no-bus"))
			return cmd, true
		}, "ErrNoKeyring", "keyring unavailable: no Secret Service on D-Bus (is gnome-keyring running?); using encrypted file vault"},
		{"no bus address", func(self string, env []string) (*exec.Cmd, bool) {
			if noSessionBus() == nil && os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
				return nil, false // this machine has a bus at /run/user/UID
			}
			// Without an address godbus would run dbus-launch and leave a
			// bus daemon behind; latch must report no keyring instead.
			cmd := exec.Command(self, "-test.run=^$")
			cmd.Env = env
			return cmd, true
		}, "ErrNoKeyring", "keyring unavailable: no Secret Service on D-Bus"},
		{"locked keyring", func(self string, env []string) (*exec.Cmd, bool) {
			for _, tool := range []string{"dbus-run-session", "gnome-keyring-daemon"} {
				if _, err := exec.LookPath(tool); err != nil {
					return nil, false
				}
			}
			// A fresh gnome-keyring with no login keyring and nobody to
			// answer its prompt: every call finds the collection locked.
			cmd := exec.Command("dbus-run-session", "--", "sh", "-c",
				`gnome-keyring-daemon --start --components=secrets >/dev/null 2>&1; exec "$0" -test.run='^$'`, self)
			cmd.Env = append(env, "XDG_DATA_HOME="+t.TempDir(), "XDG_RUNTIME_DIR="+t.TempDir())
			return cmd, true
		}, "ErrKeyringLocked", "keyring unavailable: it is locked; using encrypted file vault"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var env []string
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "DBUS_SESSION_BUS_ADDRESS=") && !strings.HasPrefix(kv, "DISPLAY=") {
					env = append(env, kv)
				}
			}
			env = append(env, helperEnv+"=probe", "GORACE=atexit_sleep_ms=0")
			cmd, ok := tt.cmd(os.Args[0], env)
			if !ok {
				skipOrFail(t, "this case cannot be set up here (dbus-run-session or gnome-keyring-daemon missing, or a user bus exists)")
			}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cmd.WaitDelay = 5 * time.Second // a stray daemon must not hold the pipes open
			done := make(chan error, 1)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("probe helper: %v\n%s%s", err, &stdout, &stderr)
				}
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatalf("probe helper did not finish\n%s%s", &stdout, &stderr)
			}
			lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
			if len(lines) != 3 || lines[0] != tt.sentinel || lines[1] != ModeFile || !strings.HasPrefix(lines[2], tt.reason) {
				t.Fatalf("got %q, want [%s file %q…]\nstderr:\n%s", lines, tt.sentinel, tt.reason, &stderr)
			}
		})
	}
}
