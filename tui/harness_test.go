package tui

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/server"
	"github.com/latch-dev/latch/vault"
)

func TestMain(m *testing.M) {
	// Goldens show local times: pin the zone.
	time.Local = time.UTC
	// File vaults made here derive their keys in milliseconds, and no
	// identity from the environment unlocks them behind the tests' backs.
	vault.ScryptWorkFactor = 10
	for _, v := range []string{vault.WorkFactorEnv, vault.IdentityEnv, vault.IdentityFileEnv} {
		os.Unsetenv(v)
	}
	os.Exit(m.Run())
}

// testURL is the server's address as the interface sees it. Every request
// is dialled to the test's real listener, so goldens show a fixed URL.
const testURL = "http://127.0.0.1:8080"

// fakeClock is one settable time for the test, its server and its Env.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// harness is a real latch server on loopback, an Env with a memory vault,
// and one fake clock for both.
type harness struct {
	t     *testing.T
	ctx   context.Context
	clock *fakeClock
	env   *flows.Env
	srv   *httptest.Server
}

func newHarness(t *testing.T, mod ...func(*server.Config)) *harness {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	clk := &fakeClock{t: time.Date(2026, 11, 22, 14, 0, 0, 0, time.UTC)}
	cfg := server.Config{
		DBPath: server.MemoryDB, Issuer: testURL, SecretKey: bytes.Repeat([]byte{7}, 32),
		AccessTTL: 15 * time.Minute, RefreshTTL: 7 * 24 * time.Hour, Now: clk.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, f := range mod {
		f(&cfg)
	}
	srv, err := server.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	env, err := flows.OpenEnv(ctx, t.TempDir(), flows.VaultOptions{Mode: vault.ModeMemory})
	if err != nil {
		t.Fatal(err)
	}
	env.Now = clk.Now
	addr := hs.Listener.Addr().String()
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	env.Client = func(server string) (*client.Client, error) {
		return client.New(server, client.Options{Transport: tr})
	}
	return &harness{t: t, ctx: ctx, clock: clk, env: env, srv: hs}
}

// app builds the interface on the harness, with time driven by hand: no
// tick fires unless the test sends one.
func (h *harness) app(profile, banner string) *App {
	return New(h.ctx, Options{Env: h.env, Profile: profile, Banner: banner, NoColor: true,
		Tick: func(time.Duration, func(time.Time) tea.Msg) tea.Cmd { return nil }})
}

// profile records a profile without a session, as latch demo does.
func (h *harness) profile(name string) vault.Profile {
	h.t.Helper()
	p := vault.Profile{Name: name, Server: testURL, Kind: vault.KindAccount}
	err := vault.UpdateConfig(h.ctx, h.env.Home, func(c *vault.Config) error {
		c.Current = name
		return c.Put(p)
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

const testPassword = "correct horse battery staple"

// signup creates alice's account and logs her in to profile.
func (h *harness) signup(profile string) vault.Profile {
	h.t.Helper()
	res, err := h.env.Signup(h.ctx, flows.SignupRequest{Profile: profile, Server: testURL,
		Username: "alice", Email: "alice@example.com", Password: testPassword})
	if err != nil {
		h.t.Fatal(err)
	}
	return res.Profile
}

// driver runs a model the way tea.Program does, but synchronously: each
// message's commands run to completion and their messages are fed back,
// until nothing is left. Spinner frames are dropped, as they would tick
// forever.
type driver struct {
	t     *testing.T
	m     tea.Model
	quit  bool
	width int
}

func newDriver(t *testing.T, m tea.Model, w, h int) *driver {
	d := &driver{t: t, m: m, width: w}
	d.send(tea.WindowSizeMsg{Width: w, Height: h})
	d.run(m.Init())
	return d
}

func (d *driver) send(msgs ...tea.Msg) {
	d.t.Helper()
	queue := append([]tea.Msg(nil), msgs...)
	for len(queue) > 0 {
		msg := queue[0]
		queue = queue[1:]
		switch msg := msg.(type) {
		case nil, spinner.TickMsg:
			continue
		case tea.QuitMsg:
			d.quit = true
			continue
		case tea.BatchMsg:
			for _, c := range msg {
				queue = append(queue, d.exec(c))
			}
			continue
		}
		var cmd tea.Cmd
		d.m, cmd = d.m.Update(msg)
		queue = append(queue, d.exec(cmd))
	}
}

func (d *driver) run(cmd tea.Cmd) { d.send(d.exec(cmd)) }

// exec runs one command, bounded in time.
func (d *driver) exec(cmd tea.Cmd) tea.Msg {
	d.t.Helper()
	if cmd == nil {
		return nil
	}
	ch := make(chan tea.Msg, 1)
	go func() { ch <- cmd() }()
	select {
	case msg := <-ch:
		return msg
	case <-time.After(20 * time.Second):
		d.t.Fatal("a command did not return within 20s")
		return nil
	}
}

// keys types s, one key per rune, or names keys: "enter", "tab", "esc",
// "shift+tab", "ctrl+c", "up", "down", "left", "right", "backspace", "f1",
// "pgup", "pgdown", "home", "end", "ctrl+t".
func (d *driver) keys(names ...string) {
	d.t.Helper()
	for _, n := range names {
		d.send(keyMsg(n))
	}
}

// erase presses backspace n times.
func (d *driver) erase(n int) {
	d.t.Helper()
	for range n {
		d.keys("backspace")
	}
}

func (d *driver) typ(s string) {
	d.t.Helper()
	for _, r := range s {
		d.send(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
}

func keyMsg(name string) tea.KeyPressMsg {
	switch name {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "tab":
		return tea.KeyPressMsg{Code: tea.KeyTab}
	case "shift+tab":
		return tea.KeyPressMsg{Code: tea.KeyTab, Mod: tea.ModShift}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "ctrl+c":
		return tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	case "up":
		return tea.KeyPressMsg{Code: tea.KeyUp}
	case "down":
		return tea.KeyPressMsg{Code: tea.KeyDown}
	case "backspace":
		return tea.KeyPressMsg{Code: tea.KeyBackspace}
	case "left":
		return tea.KeyPressMsg{Code: tea.KeyLeft}
	case "right":
		return tea.KeyPressMsg{Code: tea.KeyRight}
	case "f1":
		return tea.KeyPressMsg{Code: tea.KeyF1}
	case "pgup":
		return tea.KeyPressMsg{Code: tea.KeyPgUp}
	case "pgdown":
		return tea.KeyPressMsg{Code: tea.KeyPgDown}
	case "home":
		return tea.KeyPressMsg{Code: tea.KeyHome}
	case "end":
		return tea.KeyPressMsg{Code: tea.KeyEnd}
	case "ctrl+t":
		return tea.KeyPressMsg{Code: 't', Mod: tea.ModCtrl}
	}
	r := []rune(name)[0]
	return tea.KeyPressMsg{Code: r, Text: string(r)}
}

// screen is what a person sees: the view without colours or styles.
func (d *driver) screen() string { return ansi.Strip(d.m.(*App).render()) }

func (d *driver) top() Component { return d.m.(*App).top() }

// wantScreen fails unless every want is on the screen.
func (d *driver) wantScreen(wants ...string) {
	d.t.Helper()
	s := d.screen()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			d.t.Fatalf("screen lacks %q:\n%s", w, s)
		}
	}
}

// notScreen fails if any of bad is on the screen.
func (d *driver) notScreen(bad ...string) {
	d.t.Helper()
	s := d.screen()
	for _, b := range bad {
		if strings.Contains(s, b) {
			d.t.Fatalf("screen shows %q:\n%s", b, s)
		}
	}
}
