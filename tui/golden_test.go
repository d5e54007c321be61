package tui

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/server"
	"github.com/latch-dev/latch/vault"
)

// Golden screens: each test runs the real program (teatest) at 80×24, takes
// it to one screen, waits until the screen shows wants, and compares what a
// person sees (the frame without colours) with testdata/<test>.golden.
// Regenerate with go test ./tui -run Golden -update.

// probeMsg asks the running program for its current screen.
type probeMsg struct{}

// goldenRun is the real program under teatest, read through probes.
type goldenRun struct {
	t       *testing.T
	tm      *teatest.TestModel
	screens chan string
	screen  string
}

func startGolden(t *testing.T, app *App, w, h int) *goldenRun {
	g := &goldenRun{t: t, screens: make(chan string, 1)}
	// The filter sees every message with the model as it stands, inside the
	// program's loop: a probe reads the screen without racing the program.
	// Spinners stay on their first frame: their frames follow the wall clock.
	filter := func(m tea.Model, msg tea.Msg) tea.Msg {
		switch msg.(type) {
		case probeMsg:
			g.screens <- ansi.Strip(m.(*App).render())
		case spinner.TickMsg:
			return nil
		}
		return msg
	}
	g.tm = teatest.NewTestModel(t, app, teatest.WithInitialTermSize(w, h),
		teatest.WithProgramOptions(tea.WithFilter(filter)))
	return g
}

// wait returns once the screen shows every want, or fails after 15 s.
func (g *goldenRun) wait(wants ...string) {
	g.t.Helper()
	deadline := time.After(15 * time.Second)
	for g.screen = ""; !containsAll(g.screen, wants); {
		g.tm.Send(probeMsg{})
		select {
		case g.screen = <-g.screens:
		case <-deadline:
			g.t.Fatalf("the screen never showed %q; last:\n%s", wants, g.screen)
		}
	}
}

// finish quits and compares the last screen with the golden file.
func (g *goldenRun) finish() { g.t.Helper(); g.finishMasked(nil) }

// finishMasked is finish for a screen with parts that differ from run to
// run: mask, if given, replaces them before the comparison.
func (g *goldenRun) finishMasked(mask func(string) string) {
	g.t.Helper()
	if err := g.tm.Quit(); err != nil {
		g.t.Fatal(err)
	}
	final := ansi.Strip(g.tm.FinalModel(g.t, teatest.WithFinalTimeout(10*time.Second)).(*App).render())
	if final != g.screen {
		g.t.Fatalf("the screen changed after it was read:\n%s\n---\n%s", g.screen, final)
	}
	if mask != nil {
		final = mask(final)
	}
	golden.RequireEqual(g.t, trimLines(final)+"\n")
}

// runGolden drives the program at 80×24, waits for wants, and compares.
func runGolden(t *testing.T, app *App, drive func(tm *teatest.TestModel), wants ...string) {
	t.Helper()
	g := startGolden(t, app, 80, 24)
	if drive != nil {
		drive(g.tm)
	}
	g.wait(wants...)
	g.finish()
}

// trimLines drops the spaces that pad each line to the terminal's width.
func trimLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

func containsAll(s string, wants []string) bool {
	if s == "" {
		return false
	}
	for _, w := range wants {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

const demoBanner = "DEMO · throwaway server " + testURL + " · removed on exit"

func TestGoldenHome(t *testing.T) {
	h := newHarness(t)
	h.signup("demo")
	h.clock.Advance(90 * time.Second)
	h.profile("work")
	runGolden(t, h.app("demo", demoBanner), nil, "logged in 1m 30s ago", "work")
}

func TestGoldenHomeCompact(t *testing.T) {
	h := newHarness(t)
	h.signup("demo")
	g := startGolden(t, h.app("demo", demoBanner), 50, 24)
	g.wait("rotations")
	g.finish()
}

func TestGoldenHomeEmpty(t *testing.T) {
	h := newHarness(t)
	runGolden(t, h.app("", ""), func(tm *teatest.TestModel) { tm.Type("a") }, "No profiles yet", "Add a server")
}

func TestGoldenSignup(t *testing.T) {
	h := newHarness(t)
	h.profile("demo")
	runGolden(t, h.app("demo", demoBanner), func(tm *teatest.TestModel) {
		tm.Send(NavigateMsg{To: pageSignup, Profile: vault.Profile{Name: "demo", Server: testURL}})
		tm.Type("al")
		tm.Send(keyMsg("tab"))
		tm.Type("alice@example.com")
		tm.Send(keyMsg("tab"))
		tm.Type("password1")
		tm.Send(keyMsg("tab"))
		tm.Type("password2")
	}, "strength ≥ 3/4", "does not match")
}

func TestGoldenLoginRateLimited(t *testing.T) {
	h := newHarness(t, func(c *server.Config) { c.RateAccount, c.RateIP = -1, -1 })
	p := h.signup("demo")
	if _, err := h.env.Logout(h.ctx, p.Name, false, false); err != nil {
		t.Fatal(err)
	}
	// Nine failures in a row: the server then asks for 8 s between tries.
	for i := range 9 {
		if i > 5 {
			h.clock.Advance(time.Second << (i - 6))
		}
		if _, err := h.env.Login(h.ctx, vaultLogin(p, "wrong password here")); !errors.Is(err, client.ErrInvalidCredentials) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	g := startGolden(t, h.app("demo", demoBanner), 80, 24)
	g.wait("logged out")
	g.tm.Type("l")
	g.wait("Log in to")
	g.tm.Type("wrong again, sorry")
	g.tm.Send(keyMsg("enter"))
	g.wait("limiting login attempts")
	g.finish()
}

func TestGoldenMFA(t *testing.T) {
	h := newHarness(t)
	p := h.profile("demo")
	p.Username = "alice"
	runGolden(t, h.app("demo", ""), func(tm *teatest.TestModel) {
		tm.Send(NavigateMsg{To: pageMFA, Profile: p,
			Pending: &flows.LoginResult{Profile: p, MFA: &client.MFARequiredError{Methods: []string{"totp"}}}})
	}, "Second factor", "ctrl+o fills")
}

func TestGoldenDashboard(t *testing.T) {
	h := newHarness(t)
	p := h.signup("demo")
	h.clock.Advance(4*time.Minute + 30*time.Second)
	if err := h.env.RefreshNow(h.ctx, p.Name); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(25 * time.Second)
	runGolden(t, h.app("demo", demoBanner), func(tm *teatest.TestModel) {
		tm.Send(NavigateMsg{To: pageDashboard, Profile: p, Note: "Logged in as alice."})
	}, "alice@example.com", "1 this session")
}

func TestGoldenSessions(t *testing.T) {
	h := newHarness(t)
	p := h.signup("demo")
	c, _ := h.env.Client(testURL)
	h.clock.Advance(3 * time.Minute)
	if _, err := c.Login(h.ctx, "alice", testPassword); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Minute)
	g := startGolden(t, h.app("demo", demoBanner), 80, 24)
	g.tm.Send(NavigateMsg{To: pageSessions, Profile: p})
	g.wait("2 open")
	g.tm.Type("jd")
	g.wait("Revoke the session")
	g.finish()
}

func TestGoldenInspector(t *testing.T) {
	h := newHarness(t)
	p := h.profile("demo")
	// A fixed token, so that the golden does not depend on the server's
	// random signing key: the inspector decodes, it does not verify.
	enc := base64.RawURLEncoding.EncodeToString
	tok := enc([]byte(`{"alg":"ES256","kid":"k1","typ":"at+jwt"}`)) + "." +
		enc([]byte(`{"aud":"`+testURL+`","exp":1795356900,"iat":1795356000,"iss":"`+testURL+
			`","jti":"0f3c9a","sid":"s1","sub":"1","type":"access"}`)) + "." + enc([]byte("not-a-real-signature"))
	err := h.env.Tokens().Save(h.ctx, p.Name, &client.Tokens{AccessToken: tok, RefreshToken: "lrt_test",
		ExpiresIn: 15 * time.Minute, RefreshExpiresIn: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(3 * time.Minute)
	runGolden(t, h.app("demo", demoBanner), func(tm *teatest.TestModel) {
		tm.Send(NavigateMsg{To: pageInspector, Profile: p})
	}, "hidden: press s")
}

func vaultLogin(p vault.Profile, pw string) flows.LoginRequest {
	return flows.LoginRequest{Profile: p.Name, Server: p.Server, Identifier: p.Username, Password: pw}
}

// The key list (?) on the screen with the most keys, the dashboard: every
// column shows, wrapped into rows where the terminal is narrow.
func TestGoldenKeyList(t *testing.T)      { goldenKeyList(t, 80, 24) }
func TestGoldenKeyList60x20(t *testing.T) { goldenKeyList(t, 60, 20) }

func goldenKeyList(t *testing.T, w, h int) {
	hs := newHarness(t)
	p := hs.signup("demo")
	g := startGolden(t, hs.app("demo", demoBanner), w, h)
	g.tm.Send(NavigateMsg{To: pageDashboard, Profile: p})
	g.wait("Rotations", "id 1 · created") // the account read, which the golden shows
	g.tm.Type("?")
	g.wait("fewer keys", "ctrl+c quit", "call the protected route")
	g.finish()
}
