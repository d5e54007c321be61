package tui

import (
	"context"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/internal/fakeidp"
)

// traced sends every exchange, step and check of the harness's flows to a
// feed for the interface, as latch does, with each event's time on the
// harness's clock and each exchange's duration and Date header pinned, so
// that screens do not depend on the wall clock. The flows' progress goes
// to the feed too.
func (h *harness) traced() *TraceFeed {
	h.t.Helper()
	feed := NewTraceFeed()
	pin := func(ev client.Event) {
		ev.Time = h.clock.Now()
		if x := ev.Exchange; x != nil {
			c := *x
			c.Duration = 3 * time.Millisecond
			if c.ResponseHeader.Get("Date") != "" {
				c.ResponseHeader = c.ResponseHeader.Clone()
				c.ResponseHeader.Set("Date", "Sun, 22 Nov 2026 14:00:00 GMT")
			}
			ev.Exchange = &c
		}
		feed.Trace(ev)
	}
	h.env.Trace, h.env.Progress = pin, feed.Progress
	tr := dialTo(h.t, h.srv.Listener.Addr().String())
	h.env.Client = func(server string) (*client.Client, error) {
		return client.New(server, client.Options{Transport: tr, Trace: pin})
	}
	return feed
}

// tracedProvider is provider with its exchanges traced (see traced).
func (h *harness) tracedProvider(configure ...func(*fakeidp.Config)) *fakeidp.IdP {
	h.t.Helper()
	idp := h.provider(configure...)
	tr, trace := dialTo(h.t, idp.Server.Listener.Addr().String()), h.env.Trace
	h.env.Discover = func(ctx context.Context, cfg client.ProviderConfig) (*client.Provider, error) {
		return client.NewProvider(ctx, cfg, client.Options{Transport: tr, Trace: trace})
	}
	return idp
}

// dialTo is a transport that dials addr whatever the URL says.
func dialTo(t *testing.T, addr string) *http.Transport {
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// tracedApp is the interface over the harness with the feed brought in as
// Run brings it, and saved traces going to a temporary directory.
func (h *harness) tracedApp(feed *TraceFeed, method string, open func(string) error) *App {
	return New(h.ctx, Options{Env: h.env, NoColor: true, OAuthMethod: method, OpenBrowser: open,
		Trace: feed, TraceDir: h.t.TempDir(),
		Tick: func(time.Duration, func(time.Time) tea.Msg) tea.Cmd { return nil }})
}

// startTraced runs app under teatest with the feed forwarded to it.
func startTraced(t *testing.T, app *App, feed *TraceFeed) *goldenRun {
	g := startGolden(t, app, 80, 24)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go feed.forward(ctx, g.tm.Send)
	return g
}

var shownToken = regexp.MustCompile(`([a-z]+_)?[A-Za-z0-9_.-]+…\(`)

var wallTime = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)`)

var ctrlT = tea.KeyPressMsg{Code: 't', Mod: tea.ModCtrl}

// A browser login whose provider puts another nonce into the ID token: the
// pane shows the steps, the exchanges, the checks that passed, and the one
// that failed with what it compared.
func TestGoldenTraceBrowser(t *testing.T) {
	h := newHarness(t)
	feed := h.traced()
	idp := h.tracedProvider(func(c *fakeidp.Config) { c.WrongNonce = true })
	pages := make(chan *fakeidp.Page, 1)
	g := startTraced(t, h.tracedApp(feed, "browser", browser(h.ctx, idp, pages)), feed)
	g.tm.Send(NavigateMsg{To: pageOAuthBrowser, OAuth: &flows.OAuthRequest{Issuer: fakeIssuer, ClientID: "latch-cli"}})
	g.wait("✗ The login failed")
	g.tm.Send(ctrlT)
	g.wait("Trace of the browser login", "✗ ID token nonce")
	g.finishMasked(maskRandom)
}

// A device login waiting for approval: the code was asked for, and the
// pane shows its answer opened, the device code masked.
func TestGoldenTraceDevice(t *testing.T) {
	h := newHarness(t)
	feed := h.traced()
	// No poll within the test: the first one waits an interval.
	h.tracedProvider(func(c *fakeidp.Config) { c.DeviceInterval, c.DeviceExpiresIn = time.Hour, 2*time.Hour })
	g := startTraced(t, h.tracedApp(feed, "device", nil), feed)
	g.tm.Send(NavigateMsg{To: pageOAuthDevice, OAuth: &flows.OAuthRequest{Issuer: fakeIssuer, ClientID: "latch-cli"}})
	g.wait("Waiting for approval")
	g.tm.Send(ctrlT)
	g.wait("Trace of the device login", "POST /device")
	g.tm.Send(keyMsg("end"))
	g.tm.Send(keyMsg("up"))
	g.wait("▸ POST /device")
	g.tm.Send(keyMsg("enter"))
	g.wait(`"device_code"`)
	g.finishMasked(maskRandom)
}

// A password login to an account with two-factor on, on its second step
// after a wrong code: both steps' exchanges are in the one trace.
func TestGoldenTraceMFA(t *testing.T) {
	h := newHarness(t)
	h.signup("demo")
	secret, _ := h.enableMFA("demo")
	if _, err := h.env.Logout(h.ctx, "demo", false, false); err != nil {
		t.Fatal(err)
	}
	feed := h.traced()
	g := startTraced(t, h.tracedApp(feed, "", nil), feed)
	g.wait("logged out")
	g.tm.Send(keyMsg("enter"))
	g.wait("Log in to")
	g.tm.Type(testPassword)
	g.tm.Send(keyMsg("enter"))
	g.wait("The password was right")
	g.tm.Type(wrongCode(h.code(secret)))
	g.tm.Send(keyMsg("enter"))
	g.wait("attempts left")
	g.tm.Send(ctrlT)
	g.wait("Trace of the password login", "POST /auth/login", "▸ POST /auth/mfa")
	g.tm.Send(keyMsg("enter"))
	g.wait("▾ POST /auth/mfa", "< 401")
	g.finishMasked(maskRandom)
}

// maskRandom hides what differs on every run: the random values an
// authorization request carries (state, nonce, PKCE challenge), the
// loopback callback's port, and the first characters of tokens.
func maskRandom(s string) string {
	// A token shows its first characters, random but for its kind's prefix.
	s = shownToken.ReplaceAllString(s, "${1}«random»…(")
	// The fake provider's tokens expire on the wall clock.
	s = wallTime.ReplaceAllString(s, "«time»")
	for _, key := range []string{"state=", "nonce=", "code_challenge=", "127.0.0.1%3A", "127.0.0.1:"} {
		var out strings.Builder
		for {
			i := strings.Index(s, key)
			if i < 0 {
				out.WriteString(s)
				break
			}
			i += len(key)
			out.WriteString(s[:i])
			j := i
			for j < len(s) && strings.IndexByte("&\" \n…)", s[j]) < 0 {
				j++
			}
			if key == "127.0.0.1:" && s[i:j] != "" && (strings.HasPrefix(s[i:j], "8080") || strings.HasPrefix(s[i:j], "9090")) {
				out.WriteString(s[i:j])
			} else if j > i {
				out.WriteString("«random»")
			}
			s = s[j:]
		}
		s = out.String()
	}
	return s
}
