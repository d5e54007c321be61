package tui

import (
	"reflect"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/latch-dev/latch/flows"
)

// The authorization URL is one link however many lines it takes: every
// line of it is an OSC 8 hyperlink to the whole URL, with nothing else on
// the line; c puts the whole URL on the clipboard with OSC 52 and says so.
func TestOAuthBrowserLinksAndCopiesTheURL(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {60, 20}} {
		h := newHarness(t)
		h.provider()
		l := newLive(t, h.oauthApp("browser", func(string) error { return flows.ErrNoBrowser }), size[0], size[1])
		l.update(NavigateMsg{To: pageOAuthBrowser, OAuth: &flows.OAuthRequest{Issuer: fakeIssuer, ClientID: "latch-cli"}})
		l.waitScreen("Waiting for the browser…", "c copies the URL")
		app := l.m.(*App)
		url := l.top().(*oauthBrowser).login.URL

		link := ansi.SetHyperlink(url, "id=latch-authorize")
		var pieces strings.Builder
		n := 0
		for _, line := range strings.Split(app.render(), "\n") {
			if !strings.Contains(line, link) {
				continue
			}
			n++
			piece := strings.TrimSpace(ansi.Strip(line))
			if !strings.Contains(url, piece) {
				t.Errorf("%dx%d: a linked line holds more than the URL: %q", size[0], size[1], piece)
			}
			pieces.WriteString(piece)
		}
		if n < 2 || pieces.String() != url {
			t.Fatalf("%dx%d: %d linked lines hold\n%s\nwant\n%s", size[0], size[1], n, pieces.String(), url)
		}

		_, cmd := app.Update(keyMsg("c"))
		if !sends(cmd, tea.SetClipboard(url)()) {
			t.Fatalf("%dx%d: c does not put the URL on the clipboard", size[0], size[1])
		}
		l.waitScreen("Copied the URL to the clipboard")
	}
}

// sends reports whether cmd, or a command of its batch, yields want.
func sends(cmd tea.Cmd, want tea.Msg) bool {
	if cmd == nil {
		return false
	}
	msg := cmd()
	if b, ok := msg.(tea.BatchMsg); ok {
		for _, c := range b {
			if sends(c, want) {
				return true
			}
		}
		return false
	}
	return reflect.DeepEqual(msg, want)
}
