package tui

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/internal/fakeidp"
)

// fakeIssuer is the fake OpenID provider's address as the interface sees
// it. Like testURL for the latch server, every request is dialled to the
// provider's real listener, so that screens (and goldens) show a fixed URL.
const fakeIssuer = "http://127.0.0.1:9090"

// provider starts a fake OpenID provider that calls itself fakeIssuer, and
// points the Env's discovery at it.
func (h *harness) provider(configure ...func(*fakeidp.Config)) *fakeidp.IdP {
	h.t.Helper()
	idp := fakeidp.New(h.t, configure...)
	addr := idp.Server.Listener.Addr().String()
	// Set before the first request: the provider's handlers read it then.
	idp.URL = fakeIssuer
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	h.t.Cleanup(tr.CloseIdleConnections)
	h.env.Discover = func(ctx context.Context, cfg client.ProviderConfig) (*client.Provider, error) {
		return client.NewProvider(ctx, cfg, client.Options{Transport: tr})
	}
	return idp
}

// browser is the user's browser for the fake provider: it follows an
// authorization URL to latch's callback, and hands back the last page.
func browser(ctx context.Context, idp *fakeidp.IdP, pages chan<- *fakeidp.Page) func(string) error {
	return func(u string) error {
		go func() {
			p, err := fakeidp.Browse(ctx, strings.Replace(u, fakeIssuer, idp.Server.URL, 1))
			if err != nil {
				p = &fakeidp.Page{Body: "browse: " + err.Error()}
			}
			pages <- p
		}()
		return nil
	}
}

// oauthApp is the interface with an OAuth method and a browser opener.
func (h *harness) oauthApp(method string, open func(string) error) *App {
	return New(h.ctx, Options{Env: h.env, NoColor: true, OAuthMethod: method, OpenBrowser: open,
		Tick: func(time.Duration, func(time.Time) tea.Msg) tea.Cmd { return nil }})
}

// live runs a model the way tea.Program does: every command in its own
// goroutine, their messages fed back one at a time on the test's
// goroutine. Unlike driver, a login that waits does not block the test,
// which can press esc meanwhile.
type live struct {
	t    *testing.T
	m    tea.Model
	msgs chan tea.Msg
	seen []tea.Msg // every message the model got
}

func newLive(t *testing.T, m tea.Model, w, h int) *live {
	l := &live{t: t, m: m, msgs: make(chan tea.Msg, 256)}
	l.update(tea.WindowSizeMsg{Width: w, Height: h})
	l.exec(m.Init())
	return l
}

func (l *live) exec(cmd tea.Cmd) {
	if cmd != nil {
		go func() { l.msgs <- cmd() }()
	}
}

func (l *live) update(msg tea.Msg) {
	switch msg := msg.(type) {
	case nil, spinner.TickMsg, tea.QuitMsg:
		return
	case tea.BatchMsg:
		for _, c := range msg {
			l.exec(c)
		}
		return
	}
	l.seen = append(l.seen, msg)
	var cmd tea.Cmd
	l.m, cmd = l.m.Update(msg)
	l.exec(cmd)
}

// keys presses keys by name (see keyMsg), typ types text.
func (l *live) keys(names ...string) {
	for _, n := range names {
		l.update(keyMsg(n))
	}
}

func (l *live) typ(s string) {
	for _, r := range s {
		l.update(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
}

// until handles messages until cond holds, failing after 15 s.
func (l *live) until(what string, cond func() bool) {
	l.t.Helper()
	deadline := time.After(15 * time.Second)
	for !cond() {
		select {
		case msg := <-l.msgs:
			l.update(msg)
		case <-deadline:
			l.t.Fatalf("never %s; the screen:\n%s", what, l.screen())
		}
	}
}

// waitScreen handles messages until the screen shows every want.
func (l *live) waitScreen(wants ...string) {
	l.t.Helper()
	l.until("showed "+strings.Join(wants, ", "), func() bool { return containsAll(l.screen(), wants) })
}

func (l *live) screen() string { return ansi.Strip(l.m.(*App).render()) }

func (l *live) top() Component { return l.m.(*App).top() }

// back presses esc and waits for the OAuth screen.
func (l *live) back() {
	l.t.Helper()
	l.keys("esc")
	l.until("went back to the OAuth screen", func() bool { _, ok := l.top().(*oauth); return ok })
}

// chooseProvider fills the OAuth screen for any provider: the fake one.
func (l *live) chooseProvider() {
	l.keys("tab", "right", "tab")
	l.typ(fakeIssuer)
	l.keys("tab")
	l.typ("latch-cli")
}

func TestOAuthBrowserLoginOpensTheDashboard(t *testing.T) {
	h := newHarness(t)
	idp := h.provider()
	pages := make(chan *fakeidp.Page, 1)
	l := newLive(t, h.oauthApp("browser", browser(h.ctx, idp, pages)), 80, 24)
	l.waitScreen("No profiles yet")
	l.keys("o")
	l.waitScreen("Log in with OAuth", "● browser", "○ device", "● latch server")
	l.chooseProvider()
	l.keys("enter")
	l.until("reached the dashboard", func() bool { _, ok := l.top().(*dashboard); return ok })
	l.waitScreen("Logged in as ada through "+fakeIssuer+" (profile default).", "ada@example.com",
		"Provider      "+fakeIssuer+" (client latch-cli)", "signed in at an OpenID provider")
	if page := <-pages; !strings.Contains(page.Body, "Logged in") {
		t.Fatalf("the browser ended on %d: %s", page.Status, page.Body)
	}
	if n := len(l.m.(*App).stack); n != 2 {
		t.Fatalf("stack holds %d screens after the login, want home and the dashboard", n)
	}

	// The account API's actions are a latch server's: not offered here.
	lines := strings.Split(strings.TrimSpace(l.screen()), "\n")
	if help := lines[len(lines)-1]; strings.Contains(help, "sessions") || strings.Contains(help, "protected") {
		t.Fatalf("the help offers account actions to a provider's profile:\n%s", l.screen())
	}
	for _, k := range []string{"s", "p", "m", "b"} {
		l.keys(k)
		if _, ok := l.top().(*dashboard); !ok {
			t.Fatalf("%s opened %T on a provider's profile", k, l.top())
		}
		l.waitScreen("Not available for this provider")
	}

	// The inspector shows the ID token's claims on request.
	l.keys("t")
	l.waitScreen("Access token", "i shows the ID token")
	l.keys("i")
	l.waitScreen("ID token", "preferred_username", "ada", "nonce")

	// Logging out revokes at the provider; logging in again goes back to
	// the same provider, into the same profile.
	l.keys("esc")
	l.until("went back to the dashboard", func() bool { _, ok := l.top().(*dashboard); return ok })
	l.keys("o")
	l.until("went home", func() bool { _, ok := l.top().(*home); return ok })
	l.waitScreen("Logged out of default: the provider revoked the session.", "logged out")
	if n := len(idp.Stats().Revocations); n != 1 {
		t.Fatalf("the provider revoked %d tokens, want 1", n)
	}
	l.keys("enter")
	l.until("opened the OAuth screen", func() bool { _, ok := l.top().(*oauth); return ok })
	l.waitScreen("profile default", "● other OpenID provider", "Issuer      "+fakeIssuer, "Client ID   latch-cli")
	l.keys("enter")
	l.until("reached the dashboard again", func() bool { _, ok := l.top().(*dashboard); return ok })
	l.waitScreen("(profile default)")
}

func TestOAuthBrowserShowsTheURLAndEscCloses(t *testing.T) {
	h := newHarness(t)
	h.provider()
	l := newLive(t, h.oauthApp("browser", func(string) error { return flows.ErrNoBrowser }), 80, 24)
	l.update(NavigateMsg{To: pageOAuth})
	l.update(NavigateMsg{To: pageOAuthBrowser, OAuth: &flows.OAuthRequest{Issuer: fakeIssuer, ClientID: "latch-cli"}})
	l.waitScreen("Not opening a browser (LATCH_BROWSER=none)", "Waiting for the browser…")
	b := l.top().(*oauthBrowser).login

	// The whole URL is on the screen, cut at the width and nothing else.
	var got strings.Builder
	in := false
	for _, line := range strings.Split(l.screen(), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, fakeIssuer+"/authorize?"):
			in = true
		case line == "":
			in = false
		}
		if in {
			got.WriteString(line)
		}
	}
	if got.String() != b.URL {
		t.Fatalf("the screen shows the URL\n%s\nwant\n%s", got.String(), b.URL)
	}

	u, err := url.Parse(b.RedirectURI)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatalf("the callback does not listen while the login waits: %v", err)
	}
	conn.Close()

	l.keys("esc")
	l.until("went back to the OAuth screen", func() bool { _, ok := l.top().(*oauth); return ok })
	// The login ends as cancelled, and the callback closes.
	l.until("ended the login", func() bool {
		for _, m := range l.seen {
			if d, ok := m.(OAuthDoneMsg); ok && d.Err != nil {
				return true
			}
		}
		return false
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(b.RedirectURI + "?state=x&code=y")
		if err != nil {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("the callback still answers after esc")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOAuthBrowserFailures(t *testing.T) {
	tamper := func(u string) string { // another login's answer
		parsed, _ := url.Parse(u)
		q := parsed.Query()
		q.Set("state", "not-this-login")
		parsed.RawQuery = q.Encode()
		return parsed.String()
	}
	for _, tc := range []struct {
		name      string
		configure func(*fakeidp.Config)
		url       func(string) string
		wait      time.Duration
		open      bool
		want      []string
	}{
		{name: "denied", configure: func(c *fakeidp.Config) { c.AuthorizeError = "access_denied" }, open: true,
			want: []string{"✗ Access denied", "denied in the browser"}},
		{name: "state mismatch", url: tamper, open: true,
			want: []string{"✗ The answer does not belong to this login", "use only the newest browser tab"}},
		{name: "timeout", wait: 100 * time.Millisecond,
			want: []string{"✗ No answer from the browser", "within 100ms"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			var configure []func(*fakeidp.Config)
			if tc.configure != nil {
				configure = append(configure, tc.configure)
			}
			idp := h.provider(configure...)
			pages := make(chan *fakeidp.Page, 4)
			open := func(string) error { return errors.New("no display") }
			if tc.open {
				b := browser(h.ctx, idp, pages)
				open = func(u string) error {
					if tc.url != nil {
						u = tc.url(u)
					}
					return b(u)
				}
			}
			app := h.oauthApp("browser", open)
			app.common.browserWait = tc.wait
			l := newLive(t, app, 80, 24)
			l.update(NavigateMsg{To: pageOAuth})
			l.update(NavigateMsg{To: pageOAuthBrowser, OAuth: &flows.OAuthRequest{Issuer: fakeIssuer, ClientID: "latch-cli"}})
			l.waitScreen(tc.want...)
			l.waitScreen("enter starts again · esc goes back")
			if tc.name != "denied" {
				return
			}
			// Starting again works once the provider lets the user in.
			idp.Configure(func(c *fakeidp.Config) { c.AuthorizeError = "" })
			l.keys("enter")
			l.until("reached the dashboard", func() bool { _, ok := l.top().(*dashboard); return ok })
		})
	}
}

// deviceApp opens the device screen for the fake provider, which keeps the
// code pending until the test says otherwise.
func deviceApp(t *testing.T, configure ...func(*fakeidp.Config)) (*harness, *fakeidp.IdP, *live) {
	h := newHarness(t)
	idp := h.provider(append([]func(*fakeidp.Config){func(c *fakeidp.Config) { c.DevicePending = 1 << 30 }}, configure...)...)
	l := newLive(t, h.oauthApp("device", nil), 80, 24)
	l.waitScreen("No profiles yet")
	l.keys("o")
	l.waitScreen("● device", "Shows a code to enter on any device")
	l.chooseProvider()
	l.keys("enter")
	return h, idp, l
}

func TestOAuthDeviceLoginCountsDownAndOpensTheDashboard(t *testing.T) {
	h, idp, l := deviceApp(t)
	l.waitScreen("On any device, open "+fakeIssuer+"/activate", "█",
		"Or open "+fakeIssuer+"/activate?user_code=WDJB-0001", "The code expires in 10m 00s (14:10:00).", "Waiting for approval…")

	h.clock.Advance(90 * time.Second)
	l.update(TickMsg{})
	l.waitScreen("The code expires in 8m 30s (14:10:00).")
	h.clock.Advance(8*time.Minute + 15*time.Second)
	l.update(TickMsg{})
	l.waitScreen("The code expires in 15s")

	idp.Configure(func(c *fakeidp.Config) { c.DevicePending = 0 })
	l.until("reached the dashboard", func() bool { _, ok := l.top().(*dashboard); return ok })
	l.waitScreen("Logged in as ada through "+fakeIssuer, "ada@example.com")
}

func TestOAuthDeviceEscCancels(t *testing.T) {
	_, _, l := deviceApp(t)
	l.waitScreen("Waiting for approval…")
	l.keys("esc")
	l.until("went back to the OAuth screen", func() bool { _, ok := l.top().(*oauth); return ok })
	// The polling stops: the login ends as cancelled.
	l.until("stopped polling", func() bool {
		for _, m := range l.seen {
			if d, ok := m.(OAuthDoneMsg); ok && errors.Is(d.Err, context.Canceled) {
				return true
			}
		}
		return false
	})
	if _, ok := l.top().(*oauth); !ok {
		t.Fatalf("the cancelled login moved the interface to %T", l.top())
	}
}

func TestOAuthDeviceRefusals(t *testing.T) {
	for _, tc := range []struct {
		result string
		want   []string
	}{
		{fakeidp.DeviceAccessDenied, []string{"✗ Access denied", "refused on the other device"}},
		{fakeidp.DeviceExpired, []string{"✗ The code expired", "WDJB-0001 was not entered in time"}},
	} {
		t.Run(tc.result, func(t *testing.T) {
			_, idp, l := deviceApp(t, func(c *fakeidp.Config) { c.DeviceResult = tc.result })
			l.waitScreen("Waiting for approval…")
			idp.Configure(func(c *fakeidp.Config) { c.DevicePending = 0 })
			l.waitScreen(tc.want...)
			l.waitScreen("enter starts again · esc goes back")
			// Starting again asks for a new code.
			idp.Configure(func(c *fakeidp.Config) { c.DevicePending = 1 << 30 })
			l.keys("enter")
			l.waitScreen("user_code=WDJB-0002", "The code expires in 10m 00s")
		})
	}
}

func TestOAuthLayoutFitsTheTerminal(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {50, 24}, {100, 40}, {160, 60}} {
		h := newHarness(t)
		h.provider(func(c *fakeidp.Config) { c.DevicePending = 1 << 30 })
		req := &flows.OAuthRequest{Issuer: fakeIssuer, ClientID: "latch-cli"}
		l := newLive(t, h.oauthApp("browser", func(string) error { return flows.ErrNoBrowser }), size[0], size[1])
		check := func(what string) {
			t.Helper()
			lines := strings.Split(l.screen(), "\n")
			if len(lines) != size[1] {
				t.Errorf("%dx%d %s: %d lines", size[0], size[1], what, len(lines))
			}
			for i, line := range lines {
				if w := ansi.StringWidth(line); w > size[0] {
					t.Errorf("%dx%d %s: line %d is %d cells wide: %q", size[0], size[1], what, i, w, line)
				}
			}
		}
		l.keys("o")
		l.waitScreen("Log in with OAuth")
		check("chooser")
		l.keys("tab", "right")
		check("chooser, other provider")
		l.update(NavigateMsg{To: pageOAuthBrowser, OAuth: req})
		l.waitScreen("Waiting for the browser…")
		check("browser")
		if size[1] >= 60 && !strings.Contains(l.screen(), "▀") {
			t.Errorf("%dx%d: no QR code of the URL:\n%s", size[0], size[1], l.screen())
		}
		l.back()
		l.update(NavigateMsg{To: pageOAuthDevice, OAuth: req})
		l.waitScreen("Waiting for approval…")
		check("device")
		if size[0] >= 100 && !strings.Contains(l.screen(), "▀") {
			t.Errorf("%dx%d: no QR code of the link:\n%s", size[0], size[1], l.screen())
		}
		if size[0] < 60 {
			l.waitScreen("WDJB-0001") // too narrow for large letters
		}
		l.back()
	}
}
