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
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/zalando/go-keyring"
	ss "github.com/zalando/go-keyring/secret_service"
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

	// The big value really is spread over small entries, and a new value
	// leaves none of the previous generation's behind.
	header := func() chunks {
		t.Helper()
		s, err := keyring.Get(keyringService, keys[2])
		c, ok := parseHeader(s)
		if err != nil || !ok || c.gen == "" {
			t.Fatalf("entry of the big value = %.40q, %v; want a chunk header with a generation", s, err)
		}
		return c
	}
	stored := func(c chunks) int {
		n := 0
		for i := 1; i <= maxChunks; i++ {
			if _, err := keyring.Get(keyringService, c.key(keys[2], i)); err == nil {
				n++
			}
		}
		return n
	}
	first := header()
	if n := stored(first); first.n != 6 || n != 6 {
		t.Fatalf("big value stored in %d chunks (header says %d), want 6", n, first.n)
	}
	if err := k.Set(ctx, keys[2], big[:3000]); err != nil {
		t.Fatal(err)
	}
	second := header()
	if n := stored(second); second.n != 2 || n != 2 {
		t.Fatalf("after shrinking, %d chunks are stored (header says %d), want 2", n, second.n)
	}
	if n := stored(first); n != 0 {
		t.Fatalf("after shrinking, %d chunks of the previous value remain", n)
	}
	if err := k.Delete(ctx, keys[2]); err != nil {
		t.Fatal(err)
	}
	if n := stored(second); n != 0 {
		t.Fatalf("after Delete, %d chunks remain", n)
	}
	if _, err := k.Get(ctx, keys[2]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
	}
	if err := k.Delete(ctx, keys[2]); err != nil {
		t.Fatalf("Delete(absent) = %v", err)
	}

	_, c, err := Open(ctx, ModeAuto, t.TempDir(), Options{Passphrase: staticPass(testPass)})
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

// crashValues are the two values the crash helper alternates between: 4 and
// 3 chunks, so that every set both replaces and drops chunks.
func crashValues() [2][]byte {
	return [2][]byte{
		bytes.Repeat([]byte("A-latch-crash\x00"), 430)[:6000],
		bytes.Repeat([]byte("B-latch-crash\xff"), 330)[:4500],
	}
}

// runKeyringWriter is the crash test's child: it sets HELPER_KEY in the real
// keyring under service HELPER_SERVICE to each crash value in turn, printing
// "ready" after the first set, until it is killed.
func runKeyringWriter() int {
	service, key := os.Getenv("HELPER_SERVICE"), os.Getenv("HELPER_KEY")
	if service == "" || key == "" {
		fmt.Fprintln(os.Stderr, "keyring writer: bad helper arguments")
		return 2
	}
	k := newKeyringSecrets(systemKeyring{})
	k.service = service
	values := crashValues()
	for i := 1; ; i++ {
		if err := k.Set(context.Background(), key, values[i%2]); err != nil {
			fmt.Fprintln(os.Stderr, "keyring writer:", err)
			return 1
		}
		if i == 1 {
			fmt.Println("ready")
		}
	}
}

// TestRealKeyringCrash kills a process that is rewriting a chunked value, at
// random moments, and reads the value after every kill: it must be one of
// the two values written, never corrupt.
func TestRealKeyringCrash(t *testing.T) {
	k := realKeyring(t)
	ctx := context.Background()
	b := make([]byte, 6)
	rand.Read(b)
	k.service = "latch-test-crash-" + hex.EncodeToString(b)
	const key = "session"
	t.Cleanup(func() {
		if err := keyring.DeleteAll(k.service); err != nil {
			t.Errorf("cleaning up %s: %v", k.service, err)
		}
	})
	values := crashValues()
	if err := k.Set(ctx, key, values[0]); err != nil {
		t.Fatal(err)
	}

	const kills = 40
	deadline := time.Now().Add(25 * time.Second)
	var rounds, corrupt int
	seen := [2]int{}
	for rounds < kills && time.Now().Before(deadline) {
		rounds++
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"=keyring-writer", "HELPER_SERVICE="+k.service, "HELPER_KEY="+key)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan bool, 1)
		go func() {
			line, _ := bufio.NewReader(stdout).ReadString('\n')
			ready <- line == "ready\n"
		}()
		select {
		case ok := <-ready:
			if !ok {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("round %d: the writer stopped before its first set:\n%s", rounds, &stderr)
			}
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: the writer did not start writing:\n%s", rounds, &stderr)
		}
		// The random wait is the point of the test: where in a set the
		// kill lands.
		time.Sleep(time.Duration(5+mrand.IntN(76)) * time.Millisecond)
		cmd.Process.Kill()
		if err := cmd.Wait(); !isKilled(err) {
			t.Fatalf("round %d: the writer ended on its own (%v) before the kill:\n%s", rounds, err, &stderr)
		}

		got, err := k.Get(ctx, key)
		switch {
		case err == nil && bytes.Equal(got, values[0]):
			seen[0]++
		case err == nil && bytes.Equal(got, values[1]):
			seen[1]++
		default:
			corrupt++
			t.Logf("round %d: after the kill Get = %d bytes, %v", rounds, len(got), err)
		}
	}
	t.Logf("%d kills: %d left value A, %d value B, %d an unreadable entry; %d keyring items remain under the service",
		rounds, seen[0], seen[1], corrupt, countItems(t, k.service))
	if corrupt > 0 {
		t.Errorf("%d of %d kills left the entry unreadable, want 0", corrupt, rounds)
	}
	if rounds < 10 {
		t.Errorf("only %d kills within the time bound, want at least 10", rounds)
	}
}

func isKilled(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// countItems returns how many Secret Service items service has, chunks of
// every generation included.
func countItems(t *testing.T, service string) int {
	t.Helper()
	svc, err := ss.NewSecretService()
	if err != nil {
		t.Fatal(err)
	}
	items, err := svc.SearchItems(svc.GetLoginCollection(), map[string]string{"service": service})
	if err != nil {
		t.Fatal(err)
	}
	return len(items)
}

// TestRealKeyringConcurrentProbes probes the real keyring from several
// backends at once, as several latch processes starting together do.
func TestRealKeyringConcurrentProbes(t *testing.T) {
	realKeyring(t)
	const n = 10
	errs := make(chan error, n)
	start := make(chan struct{})
	for range n {
		go func() {
			<-start
			errs <- newKeyringSecrets(systemKeyring{}).probe(context.Background())
		}()
	}
	close(start)
	failed := 0
	for range n {
		if err := <-errs; err != nil {
			failed++
			t.Errorf("probe: %v", err)
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d concurrent probes failed", failed, n)
	}
}
