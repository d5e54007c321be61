package tui

import (
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/internal/fakeidp"
)

func TestGoldenOAuth(t *testing.T) {
	h := newHarness(t)
	h.profile("demo")
	app := New(h.ctx, Options{Env: h.env, Profile: "demo", Banner: demoBanner, NoColor: true, OAuthMethod: "browser",
		OpenBrowser: func(string) error { return flows.ErrNoBrowser },
		Tick:        func(time.Duration, func(time.Time) tea.Msg) tea.Cmd { return nil }})
	g := startGolden(t, app, 80, 24)
	g.wait("logged out")
	g.tm.Type("o")
	g.wait("Log in with OAuth", "client id latch-cli")
	g.finish()
}

// The browser's screen holds the authorization URL, whose state, nonce,
// PKCE challenge and loopback port are new on every run: the golden holds
// the screen with the URL's lines masked, and
// TestOAuthBrowserShowsTheURLAndEscCloses checks that those lines are the
// whole URL.
func TestGoldenOAuthBrowser(t *testing.T) { goldenOAuthBrowser(t, 80, 24, "A larger window") }

// At 60×20 the screen is taller than the room: its end is a scroll away.
func TestGoldenOAuthBrowser60x20(t *testing.T) { goldenOAuthBrowser(t, 60, 20, "more lines · pgdn") }

func goldenOAuthBrowser(t *testing.T, w, hgt int, want string) {
	h := newHarness(t)
	h.provider()
	app := New(h.ctx, Options{Env: h.env, NoColor: true, OAuthMethod: "browser",
		OpenBrowser: func(string) error { return flows.ErrNoBrowser },
		Tick:        func(time.Duration, func(time.Time) tea.Msg) tea.Cmd { return nil }})
	g := startGolden(t, app, w, hgt)
	g.tm.Send(NavigateMsg{To: pageOAuthBrowser, OAuth: &flows.OAuthRequest{Issuer: fakeIssuer, ClientID: "latch-cli"}})
	g.wait("Not opening a browser", "c copies the URL", want)
	g.finishMasked(maskURL(fakeIssuer + "/authorize?"))
}

// maskURL replaces the lines of a URL that starts with prefix, up to the
// blank line after it.
func maskURL(prefix string) func(string) string {
	return func(s string) string {
		lines := strings.Split(s, "\n")
		in := false
		for i, l := range lines {
			switch t := strings.TrimSpace(l); {
			case strings.HasPrefix(t, prefix):
				in = true
			case t == "":
				in = false
			}
			if in {
				lines[i] = " «the authorization URL: differs on every run»"
			}
		}
		return strings.Join(lines, "\n")
	}
}

func TestGoldenOAuthDevice(t *testing.T) {
	h := newHarness(t)
	h.provider(func(c *fakeidp.Config) { c.DevicePending = 1 << 30 })
	app := New(h.ctx, Options{Env: h.env, NoColor: true, OAuthMethod: "device",
		Tick: func(time.Duration, func(time.Time) tea.Msg) tea.Cmd { return nil }})
	g := startGolden(t, app, 80, 24)
	g.tm.Send(NavigateMsg{To: pageOAuthDevice, OAuth: &flows.OAuthRequest{Issuer: fakeIssuer, ClientID: "latch-cli"}})
	g.wait("Waiting for approval", "10m 00s")
	g.finish()
}
