package tui

import (
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"

	"github.com/latch-dev/latch/vault"
)

// At 40×12 the token with its signature is taller than the room: the screen
// says so, and pgdn, pgup and the arrows reach every line of it.
func TestScrollReachesEveryLineOfTheToken(t *testing.T) {
	h := newHarness(t)
	p := h.signup("demo")
	d := newDriver(t, h.app("demo", demoBanner), 40, 12)
	d.send(NavigateMsg{To: pageInspector, Profile: p})
	d.keys("s")
	d.wantScreen("Access token", "more lines · pgdn")
	checkFits(t, d, 40, 12)

	body := strings.Split(strings.TrimRight(ansi.Strip(d.top().View()), "\n"), "\n")
	seen := map[string]bool{}
	look := func() {
		for _, l := range strings.Split(d.screen(), "\n") {
			seen[strings.TrimSpace(l)] = true
		}
	}
	look()
	for range len(body) {
		if !strings.Contains(d.screen(), "pgdn") {
			break
		}
		d.keys("pgdown")
		look()
	}
	d.wantScreen("more lines · pgup")
	d.notScreen("↓")
	for _, l := range body {
		if l := strings.TrimSpace(ansi.Truncate(l, 38, "…")); !seen[l] {
			t.Errorf("no scroll position shows the line %q", l)
		}
	}

	// The inspector takes no arrows: they scroll, a line at a time.
	before := d.screen()
	d.keys("up")
	if d.screen() == before {
		t.Fatalf("↑ did not scroll:\n%s", before)
	}
	d.wantScreen("· ↓ 1 more lines · pgup/pgdn")
	d.keys("pgup", "pgup", "pgup", "pgup", "pgup", "pgup")
	d.wantScreen("Access token", "more lines · pgdn")
	d.notScreen("↑")
}

// At 40×12 sign-up is taller than the room: the window follows the focused
// field, and says what is below it.
func TestSignupScrollsToTheFocusedField(t *testing.T) {
	h := newHarness(t)
	d := newDriver(t, h.app("", ""), 40, 12)
	d.send(NavigateMsg{To: pageSignup, Profile: vault.Profile{Server: testURL}})
	d.wantScreen("Create an account", "more lines · pgdn")
	d.keys("tab", "tab", "tab")
	d.wantScreen("Confirm")
	d.notScreen("Create an account")
	d.typ("x")
	d.wantScreen("Confirm", "x")
	d.keys("shift+tab", "shift+tab", "shift+tab")
	d.wantScreen("Username")
	checkFits(t, d, 40, 12)
}

// A screen that fits shows no scroll line, and the arrows stay the
// screen's.
func TestNoScrollWhenTheScreenFits(t *testing.T) {
	h := newHarness(t)
	h.signup("demo")
	h.profile("work")
	d := newDriver(t, h.app("demo", ""), 80, 24)
	d.notScreen("more lines")
	d.keys("down")
	if got := d.top().(*home).cursor; got != 1 {
		t.Fatalf("↓ moved the home cursor to %d, want 1", got)
	}
}

// At 40×12 two-factor setup starts at the secret, and typing the code
// brings the code field into the window.
func TestTwoFactorSetupScrollsToTheCode(t *testing.T) {
	h := newHarness(t)
	p := h.signup("demo")
	d := newDriver(t, h.app("demo", ""), 40, 12)
	d.send(NavigateMsg{To: pageMFASetup, Profile: p})
	d.wantScreen("Set up two-factor", "more lines · pgdn")
	d.notScreen("Code ")
	d.typ("1")
	d.wantScreen("Code    1")
	checkFits(t, d, 40, 12)
}
