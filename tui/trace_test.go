package tui

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/internal/fakeidp"
)

// The feed never waits for the interface: what it cannot hold it drops and
// counts, and it keeps only the last progress messages.
func TestTraceFeedIsBounded(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		events, progress      int
		wantEvents, wantDrops int
		wantProgress          int
	}{
		{"under the bound", 10, 1, 10, 0, 1},
		{"at the bound", feedLimit, 0, feedLimit, 0, 0},
		{"over the bound", feedLimit + 7, 20, feedLimit, 7, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewTraceFeed()
			for i := range tc.events {
				f.Trace(client.Event{Note: "step " + string(rune('a'+i%26))})
			}
			for range tc.progress {
				f.Progress("waiting")
			}
			evs, progress, dropped := f.take()
			if len(evs) != tc.wantEvents || dropped != tc.wantDrops || len(progress) != tc.wantProgress {
				t.Fatalf("took %d events, %d progress, %d dropped; want %d, %d, %d",
					len(evs), len(progress), dropped, tc.wantEvents, tc.wantProgress, tc.wantDrops)
			}
			if evs, _, dropped := f.take(); len(evs) != 0 || dropped != 0 {
				t.Fatalf("a second take found %d events, %d dropped", len(evs), dropped)
			}
		})
	}
}

// A flow's trace keeps its newest events when it outgrows logLimit.
func TestTraceLogKeepsTheNewest(t *testing.T) {
	l := &traceLog{}
	l.begin("test")
	for i := range logLimit + 10 {
		l.add([]client.Event{{Note: "n" + string(rune('0'+i%10))}}, 0)
	}
	if len(l.events) != logLimit || l.dropped != 10 {
		t.Fatalf("%d events, %d dropped; want %d, 10", len(l.events), l.dropped, logLimit)
	}
	l.begin("next")
	if len(l.events) != 0 || l.dropped != 0 || l.title != "next" {
		t.Fatalf("begin left %d events, %d dropped, title %q", len(l.events), l.dropped, l.title)
	}
}

// loggedOut is alice's account with no session, and the interface on its
// login screen, its flows traced.
func loggedOut(t *testing.T) (*harness, *TraceFeed, *driver) {
	h := newHarness(t)
	h.signup("demo")
	if _, err := h.env.Logout(h.ctx, "demo", false, false); err != nil {
		t.Fatal(err)
	}
	feed := h.traced()
	d := newDriver(t, h.tracedApp(feed, "", nil), 80, 24)
	d.keys("enter")
	if _, ok := d.top().(*login); !ok {
		t.Fatalf("enter on home opened %T", d.top())
	}
	return h, feed, d
}

// ctrl+t opens the pane over a flow screen whose fields take t; it shows
// the flow's exchanges, opens one to its headers and bodies, and esc or
// ctrl+t close it without leaving the screen.
func TestTracePaneTogglesOverTheLoginForm(t *testing.T) {
	_, _, d := loggedOut(t)
	d.typ("t")
	d.notScreen("Trace of")
	d.keys("ctrl+t")
	d.wantScreen("Trace · 0 events", "Nothing traced yet", "ctrl+t close")
	d.keys("ctrl+t")
	d.notScreen("Trace of")

	d.erase(1)
	d.typ("wrong password")
	d.keys("enter")
	d.wantScreen("Check both")
	d.keys("ctrl+t")
	d.wantScreen("Trace of the password login at "+testURL, "▸ POST /auth/login → 401 (3ms)")
	d.notScreen("Content-Type")
	d.keys("enter")
	d.wantScreen("▾ POST /auth/login", "POST "+testURL+"/auth/login", "> Content-Type: application/json", "< 401 Unauthorized")
	d.notScreen("wrong password")
	d.keys("left")
	d.notScreen("Content-Type")
	d.keys("esc")
	if _, ok := d.top().(*login); !ok {
		t.Fatalf("esc on the pane left the login for %T", d.top())
	}
	d.notScreen("Trace of")
	d.wantScreen("Log in to")
}

// A new flow starts a new trace; what the interface does on screens that
// run no flow is not traced.
func TestTraceBelongsToOneFlow(t *testing.T) {
	_, feed, d := loggedOut(t)
	d.keys("esc")
	feed.Trace(client.Event{Note: "a reload of home"})
	d.send(TraceMsg{})
	d.keys("enter")
	d.erase(1)
	d.typ("wrong password")
	d.keys("enter", "enter") // the password was cleared: the second says so
	d.typ("wrong again")
	d.keys("enter", "ctrl+t")
	d.wantScreen("1 event", "POST /auth/login → 401")
	d.notScreen("a reload of home")
}

// A flow's last events are in its trace before its result moves the
// interface on: after a login the dashboard's ctrl+t shows the whole
// login (its password exchange and its read of the account), and nothing
// of the dashboard's own calls (another read of the account).
func TestTraceOfALoginThatSucceeded(t *testing.T) {
	_, _, d := loggedOut(t)
	d.typ(testPassword)
	d.keys("enter")
	if _, ok := d.top().(*dashboard); !ok {
		t.Fatalf("the login went to %T:\n%s", d.top(), d.screen())
	}
	d.notScreen("Trace of")
	d.keys("ctrl+t")
	d.wantScreen("Trace of the password login", "2 events", "POST /auth/login → 200", "▸ GET /auth/me → 200")
	d.keys("esc")
	d.wantScreen("Logged in as alice")
}

// s writes the trace, as latch --debug prints it, to a new file only its
// owner can read, and the pane says where.
func TestTraceSaved(t *testing.T) {
	_, _, d := loggedOut(t)
	dir := d.m.(*App).common.traceDir
	d.erase(1)
	d.typ("wrong password")
	d.keys("enter", "ctrl+t", "s")
	d.wantScreen("Saved the trace to", "(readable by you only)")
	files, err := filepath.Glob(filepath.Join(dir, "latch-trace-*.txt"))
	if err != nil || len(files) != 1 {
		t.Fatalf("saved files: %v, %v", files, err)
	}
	st, err := os.Stat(files[0])
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the trace file: %v, %v", st.Mode(), err)
	}
	text, _ := os.ReadFile(files[0])
	for _, want := range []string{"# latch trace of the password login at " + testURL, "> POST " + testURL + "/auth/login",
		"< HTTP 401 Unauthorized"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("the saved trace lacks %q:\n%s", want, text)
		}
	}
	d.keys("s") // a second save never replaces the first
	if files, _ := filepath.Glob(filepath.Join(dir, "latch-trace-*.txt")); len(files) != 2 {
		t.Fatalf("after two saves: %v", files)
	}
}

// The pane fits any terminal: a long trace scrolls, at 80×24 and narrower.
func TestTracePaneFits(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {50, 16}, {30, 10}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			_, feed, d := loggedOut(t)
			d.send(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
			d.erase(1)
			d.typ("wrong password")
			d.keys("enter")
			for i := range 40 {
				feed.Trace(client.Event{Check: &client.Check{Name: "check " + string(rune('a'+i%26)), OK: i%2 == 0,
					Detail: strings.Repeat("a long detail ", 8)}})
			}
			d.send(TraceMsg{})
			d.keys("ctrl+t")
			d.wantScreen("more lines")
			checkFits(t, d, size[0], size[1])
			d.keys("home", "enter")
			d.wantScreen("▾ POST")
			checkFits(t, d, size[0], size[1])
			d.keys("end")
			d.wantScreen("✗ check")
			checkFits(t, d, size[0], size[1])
		})
	}
}

// The browser login says, while still waiting, that a provider may be
// showing its own error page, and keeps the URL on screen.
func TestBrowserSaysWhenTheCallbackIsSlow(t *testing.T) {
	h := newHarness(t)
	feed := h.traced()
	h.tracedProvider()
	app := h.tracedApp(feed, "browser", func(string) error { return flows.ErrNoBrowser })
	app.common.browserSlow = 1 // as soon as the wait starts
	l := newLive(t, app, 80, 24)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go feed.forward(ctx, func(m tea.Msg) { l.msgs <- m })
	l.update(NavigateMsg{To: pageOAuthBrowser, OAuth: &flows.OAuthRequest{Issuer: fakeIssuer, ClientID: "latch-cli"}})
	l.waitScreen("Still waiting for the browser", "unknown client id", "check the client id", fakeIssuer+"/authorize?", "Waiting for the browser")
	if strings.Contains(l.screen(), "--client-id") {
		t.Fatalf("the interface names a flag:\n%s", l.screen())
	}
}

// The pane open over a browser login that then succeeds gives way to the
// dashboard; the login's trace, its token exchange included, is still one
// ctrl+t away there.
func TestTracePaneClosesWhenTheLoginEnds(t *testing.T) {
	h := newHarness(t)
	feed := h.traced()
	idp := h.tracedProvider()
	gate, pages := make(chan struct{}), make(chan *fakeidp.Page, 1)
	follow := browser(h.ctx, idp, pages)
	app := h.tracedApp(feed, "browser", func(u string) error {
		go func() {
			select {
			case <-gate:
				follow(u)
			case <-h.ctx.Done():
			}
		}()
		return nil
	})
	l := newLive(t, app, 80, 24)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go feed.forward(ctx, func(m tea.Msg) { l.msgs <- m })
	l.update(NavigateMsg{To: pageOAuthBrowser, OAuth: &flows.OAuthRequest{Issuer: fakeIssuer, ClientID: "latch-cli"}})
	l.waitScreen("Waiting for the browser")
	l.keys("ctrl+t")
	l.waitScreen("Trace of the browser login", "GET /.well-known/openid-configuration → 200")
	close(gate)
	l.until("reached the dashboard", func() bool { _, ok := l.top().(*dashboard); return ok })
	l.waitScreen("Logged in as ada")
	if s := l.screen(); strings.Contains(s, "Trace of") {
		t.Fatalf("the pane stayed open over the dashboard:\n%s", s)
	}
	l.keys("ctrl+t")
	l.waitScreen("Trace of the browser login", "POST /token → 200", "✓ ID token nonce")
}
