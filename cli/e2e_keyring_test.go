package cli

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The session on the real system keyring: chosen by auto, remembered, and
// used by later processes without probing. Skips without a Secret Service,
// unless LATCH_REQUIRE_KEYRING=1 (CI), when it fails.
func TestE2EKeyring(t *testing.T) {
	bus := os.Getenv("DBUS_SESSION_BUS_ADDRESS")
	if bus == "" {
		if os.Getenv("LATCH_REQUIRE_KEYRING") == "1" {
			t.Fatal("LATCH_REQUIRE_KEYRING=1 but DBUS_SESSION_BUS_ADDRESS is not set")
		}
		t.Skip("no D-Bus session; run under dbus-run-session with gnome-keyring unlocked (see vault/keyring_real_test.go)")
	}
	e := newE2E(t, 2*time.Second)
	keyringEnv := func(args ...string) result {
		t.Helper()
		cmd := e.command(e2ePassword+"\n", args...)
		env := []string{"DBUS_SESSION_BUS_ADDRESS=" + bus, "LATCH_VAULT=auto"}
		for _, kv := range cmd.Env {
			if !strings.HasPrefix(kv, "LATCH_VAULT") { // no passphrase: the file vault cannot be used
				env = append(env, kv)
			}
		}
		cmd.Env = env
		return runCmd(t, cmd)
	}
	r := keyringEnv("status", "--json")
	if !strings.Contains(r.stdout, `"backend": "keyring"`) {
		if os.Getenv("LATCH_REQUIRE_KEYRING") == "1" {
			t.Fatalf("auto did not choose the keyring: %s %s", r.stdout, r.stderr)
		}
		t.Skipf("the keyring is not usable here: %s", r.stdout)
	}
	if r := keyringEnv("signup", "--server", e.srv.URL, "-u", "kim", "--email", "kim@example.com", "--password-stdin"); r.code != 0 {
		t.Fatalf("signup: %d %s", r.code, r.stderr)
	}
	tok := keyringEnv("token")
	if tok.code != 0 {
		t.Fatalf("token: %d %s", tok.code, tok.stderr)
	}
	e.checkToken(strings.TrimSpace(tok.stdout), "kim")
	st := keyringEnv("status")
	if st.code != 0 || !strings.Contains(st.stdout, "vault: keyring") || !strings.Contains(st.stdout, "remembered") {
		t.Fatalf("status: %d\n%s", st.code, st.stdout)
	}
	if r := keyringEnv("logout"); r.code != 0 {
		t.Fatalf("logout: %d %s", r.code, r.stderr)
	}
	if r := keyringEnv("token"); r.code != exitLogin {
		t.Fatalf("token after logout: %d %s", r.code, r.stderr)
	}
	// Many explicit keyring runs at once: none may fail (each probed with a
	// shared entry before, and deleted the others').
	os.WriteFile(filepath.Join(e.home, "config.json"), []byte(`{"profiles":[]}`), 0o600)
	var wg sync.WaitGroup
	fails := make(chan string, 10)
	for range 10 {
		wg.Go(func() {
			if r := keyringEnv("--vault", "keyring", "profile", "list"); r.code != 0 {
				fails <- r.stderr
			}
		})
	}
	wg.Wait()
	close(fails)
	for f := range fails {
		t.Errorf("a concurrent --vault keyring run failed: %s", f)
	}
	// An explicit --vault keyring probes once, like auto, and remembers it.
	if cfg, err := os.ReadFile(filepath.Join(e.home, "config.json")); err != nil || !strings.Contains(string(cfg), `"keyring_checked": true`) {
		t.Fatalf("the explicit keyring's probe was not remembered: %v\n%s", err, cfg)
	}
}
