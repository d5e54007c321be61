package tui

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/vault"
)

const vaultPass = "open sesame, please"

// useFileVault gives the harness a file vault in a new home, opened the way
// the CLI opens it for the interface: it can never ask for its passphrase,
// so a locked vault fails with vault.ErrLocked. With create, the vault is
// first made with vaultPass by another Env and holds a secret; nothing
// caches its key, so it is locked for the Env the harness keeps.
func (h *harness) useFileVault(create bool, cache vault.Cache) {
	h.t.Helper()
	dir := h.t.TempDir()
	if create {
		e, err := flows.OpenEnv(h.ctx, dir, flows.VaultOptions{Mode: vault.ModeFile,
			Passphrase: func() ([]byte, error) { return []byte(vaultPass), nil }})
		if err != nil {
			h.t.Fatal(err)
		}
		if err := e.Secrets.Set(h.ctx, "test/secret", []byte("kept")); err != nil {
			h.t.Fatal(err)
		}
	}
	e, err := flows.OpenEnv(h.ctx, dir, flows.VaultOptions{Mode: vault.ModeFile, Cache: cache,
		Passphrase: func() ([]byte, error) { return nil, vault.ErrLocked }})
	if err != nil {
		h.t.Fatal(err)
	}
	e.Now, e.Client = h.env.Now, h.env.Client
	h.env = e
}

// testCache is a session cache in memory, standing in for the kernel
// keyring or the latch agent.
type testCache struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (c *testCache) Get(_ context.Context, name string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[name]
	if !ok {
		return nil, fmt.Errorf("cache entry %s: %w", name, vault.ErrNotFound)
	}
	return append([]byte(nil), v...), nil
}

func (c *testCache) Put(_ context.Context, name string, value []byte, _ time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string][]byte{}
	}
	c.m[name] = append([]byte(nil), value...)
	return nil
}

func (c *testCache) Touch(ctx context.Context, name string, _ time.Duration) error {
	_, err := c.Get(ctx, name)
	return err
}

func (c *testCache) Delete(_ context.Context, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, name)
	return nil
}

func (c *testCache) Clear(_ context.Context, prefix string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name := range c.m {
		if strings.HasPrefix(name, prefix) {
			delete(c.m, name)
		}
	}
	return nil
}

func (c *testCache) Where() string { return "test memory" }

func (d *driver) app() *App { return d.m.(*App) }

func TestUnlockWrongThenRight(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cache vault.Cache
		hint  string   // on the screen before unlocking
		note  []string // on home after
	}{
		{"with a session cache", &testCache{}, "kept in test memory until it goes 12 h unused",
			[]string{"Vault unlocked. The key is kept in test memory", "12 h unused"}},
		{"without one", nil, "No session cache here",
			[]string{"Vault unlocked. There is no session cache here", "while this window is open"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.useFileVault(true, tc.cache)
			h.profile("demo")
			d := newDriver(t, h.app("demo", ""), 80, 24)
			if _, ok := d.top().(*unlock); !ok || len(d.app().stack) != 2 {
				t.Fatalf("a locked vault opened on %T (%d screens), want the unlock screen over home:\n%s",
					d.top(), len(d.app().stack), d.screen())
			}
			if d.app().stack[0].(*home).loaded {
				t.Fatal("home read the profiles before the vault was unlocked")
			}
			// A long path keeps its end.
			d.wantScreen("Unlock the vault", filepath.Join(filepath.Base(h.env.Home), "secrets.age"), tc.hint)

			d.typ("hunter2")
			d.notScreen("hunter2")
			d.wantScreen("•••••••")
			d.keys("enter")
			if _, ok := d.top().(*unlock); !ok {
				t.Fatalf("after a wrong passphrase the screen is %T, want the unlock screen", d.top())
			}
			d.wantScreen("Wrong passphrase: the vault stays locked. Type it again.")
			if v := d.top().(*unlock).form.value("passphrase"); v != "" {
				t.Fatalf("the field still holds %q after a wrong passphrase", v)
			}

			d.typ(vaultPass)
			d.notScreen("Wrong passphrase") // typing clears it
			d.keys("enter")
			if _, ok := d.top().(*home); !ok {
				t.Fatalf("after the right passphrase the screen is %T, want home:\n%s", d.top(), d.screen())
			}
			d.wantScreen(append(tc.note, "demo", "logged out")...)
			if got, err := h.env.Secrets.Get(h.ctx, "test/secret"); err != nil || string(got) != "kept" {
				t.Fatalf("after unlocking, the secret reads %q, %v", got, err)
			}
		})
	}
}

func TestUnlockNewVaultOnSignup(t *testing.T) {
	h := newHarness(t)
	h.useFileVault(false, nil)
	h.profile("demo")
	d := newDriver(t, h.app("demo", ""), 80, 24)
	if _, ok := d.top().(*home); !ok {
		t.Fatalf("with no vault yet the interface opened on %T, want home", d.top())
	}

	d.keys("s")
	d.typ("alice")
	d.keys("tab")
	d.typ("alice@example.com")
	d.keys("tab")
	d.typ(testPassword)
	d.keys("tab")
	d.typ(testPassword)
	d.keys("enter")
	if _, ok := d.top().(*unlock); !ok {
		t.Fatalf("a signup with no vault to save to left the screen on %T, want the unlock screen:\n%s", d.top(), d.screen())
	}
	d.wantScreen("Create the vault", "does not exist yet", "Repeat", filepath.Join(filepath.Base(h.env.Home), "secrets.age"))

	d.typ("one passphrase")
	d.keys("tab")
	d.typ("another one")
	d.keys("enter")
	d.wantScreen("The two passphrases differ; nothing was saved.")
	if h.env.VaultExists() {
		t.Fatal("mismatching passphrases created the vault")
	}
	u := d.top().(*unlock)
	if u.form.value("passphrase") != "" || u.form.value("repeat") != "" || u.form.focus != 0 {
		t.Fatalf("after a mismatch: fields %q %q, focus %d; want both empty, focus on the first",
			u.form.value("passphrase"), u.form.value("repeat"), u.form.focus)
	}

	d.typ(vaultPass)
	d.keys("tab")
	d.typ(vaultPass)
	d.keys("enter")
	if _, ok := d.top().(*signup); !ok {
		t.Fatalf("after creating the vault the screen is %T, want the signup form again:\n%s", d.top(), d.screen())
	}
	d.wantScreen("Vault created — try again.")
	if !h.env.VaultExists() {
		t.Fatal("the vault was not created")
	}

	d.keys("enter")
	if _, ok := d.top().(*dashboard); !ok {
		t.Fatalf("the second signup left the screen on %T, want the dashboard:\n%s", d.top(), d.screen())
	}
	d.wantScreen("Welcome, alice")
}

// A login that finds the vault locked brings the unlock screen up over the
// login form, and the user is back on the form after unlocking.
func TestUnlockAfterLockedLogin(t *testing.T) {
	h := newHarness(t)
	h.signup("demo") // the account, in the memory vault left behind
	h.useFileVault(true, nil)
	h.profile("demo")
	d := newDriver(t, h.app("demo", ""), 80, 24)

	// Not now: home shows, and loading it does not ask again.
	d.keys("esc")
	if _, ok := d.top().(*home); !ok {
		t.Fatalf("esc on the unlock screen went to %T, want home", d.top())
	}
	d.wantScreen("Profiles", "demo")

	d.keys("l")
	d.typ("alice")
	d.keys("tab")
	d.typ(testPassword)
	d.keys("enter")
	if _, ok := d.top().(*unlock); !ok {
		t.Fatalf("a login on a locked vault left the screen on %T, want the unlock screen:\n%s", d.top(), d.screen())
	}
	d.wantScreen("That step needs the vault, which is locked.")
	if n := len(d.app().stack); n != 3 {
		t.Fatalf("%d screens, want home, login and the unlock screen", n)
	}

	d.typ(vaultPass)
	d.keys("enter")
	if _, ok := d.top().(*login); !ok {
		t.Fatalf("after unlocking the screen is %T, want the login form again:\n%s", d.top(), d.screen())
	}
	d.wantScreen("Vault unlocked — try again.")

	// Coming back starts the form again, on its first field; the failure
	// emptied the password.
	d.keys("tab")
	d.typ(testPassword)
	d.keys("enter")
	if _, ok := d.top().(*dashboard); !ok {
		t.Fatalf("the second login left the screen on %T, want the dashboard:\n%s", d.top(), d.screen())
	}
}

func TestUnlockCtrlCQuitsWhileTyping(t *testing.T) {
	h := newHarness(t)
	h.useFileVault(true, nil)
	d := newDriver(t, h.app("", ""), 80, 24)
	d.typ("q?x")
	if d.quit {
		t.Fatal("q in the passphrase field quit the program")
	}
	if got := d.top().(*unlock).form.value("passphrase"); got != "q?x" {
		t.Fatalf("passphrase = %q, want q and ? typed into it", got)
	}
	d.keys("ctrl+c")
	if !d.quit {
		t.Fatal("ctrl+c on the unlock screen did not quit")
	}
}

func TestUnlockEscQuitsWhenAlone(t *testing.T) {
	h := newHarness(t)
	h.useFileVault(true, nil)
	d := newDriver(t, h.app("", ""), 80, 24)
	d.app().stack = d.app().stack[1:]
	d.keys("esc")
	if !d.quit {
		t.Fatal("esc on an unlock screen with nothing below did not quit")
	}
}

// The derivation takes a second: enter while it runs starts nothing more,
// and the passphrase has left the field by then.
func TestUnlockIgnoresEnterWhileRunning(t *testing.T) {
	h := newHarness(t)
	h.useFileVault(true, nil)
	c := h.app("", "").common
	u := newUnlock(c, readVaultInfo(h.ctx, h.env), false)
	u.SetSize(78, 20)
	u.Init()
	for _, r := range vaultPass {
		u.Update(keyMsg(string(r)))
	}
	_, cmd := u.Update(keyMsg("enter"))
	if cmd == nil || !u.work.active() {
		t.Fatal("enter did not start the unlock")
	}
	if v := u.form.value("passphrase"); v != "" {
		t.Fatalf("the field still holds %q while unlocking", v)
	}
	if !strings.Contains(ansi.Strip(u.View()), "Unlocking…") {
		t.Fatalf("no sign of the unlock running:\n%s", ansi.Strip(u.View()))
	}
	for _, k := range []string{"enter", "x", "esc"} {
		if _, cmd := u.Update(keyMsg(k)); cmd != nil {
			t.Fatalf("%s while unlocking returned a command", k)
		}
	}
}

func TestUnlockLayoutFits(t *testing.T) {
	for _, exists := range []bool{true, false} {
		for _, size := range [][2]int{{80, 24}, {50, 24}, {40, 16}} {
			h := newHarness(t)
			h.useFileVault(exists, nil)
			d := newDriver(t, h.app("", ""), size[0], size[1])
			if !exists {
				d.send(ErrorMsg{Err: vault.ErrLocked})
			}
			d.typ("x")
			d.keys("enter")
			d.wantScreen("Passphrase")
			lines := strings.Split(d.screen(), "\n")
			if len(lines) != size[1] {
				t.Errorf("exists=%v %dx%d: %d lines", exists, size[0], size[1], len(lines))
			}
			for i, l := range lines {
				if w := ansi.StringWidth(l); w > size[0] {
					t.Errorf("exists=%v %dx%d: line %d is %d cells wide: %q", exists, size[0], size[1], i, w, l)
				}
			}
		}
	}
}

// maskHome puts $LATCH_HOME where the test's temporary home is.
func maskHome(home string) func(string) string {
	return func(s string) string { return strings.ReplaceAll(s, home, "$LATCH_HOME") }
}

func TestGoldenUnlock(t *testing.T) {
	h := newHarness(t)
	h.useFileVault(true, &testCache{})
	g := startGolden(t, h.app("", ""), 80, 24)
	g.tm.Type("hunter2")
	g.wait("Unlock the vault", "•••••••")
	g.finishMasked(maskHome(h.env.Home))
}

func TestGoldenUnlockNewVault(t *testing.T) {
	h := newHarness(t)
	h.useFileVault(false, nil)
	g := startGolden(t, h.app("", ""), 80, 24)
	g.wait("No profiles yet")
	g.tm.Send(ErrorMsg{Err: fmt.Errorf("save the session: %w", vault.ErrLocked)})
	g.wait("Create the vault")
	g.tm.Type("one passphrase")
	g.tm.Send(keyMsg("tab"))
	g.tm.Type("another one")
	g.tm.Send(keyMsg("enter"))
	g.wait("nothing was saved")
	g.finishMasked(maskHome(h.env.Home))
}
