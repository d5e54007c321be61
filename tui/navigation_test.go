package tui

import (
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
)

func TestNavigationHomeToFormsAndBack(t *testing.T) {
	h := newHarness(t)
	h.profile("demo")
	d := newDriver(t, h.app("demo", ""), 80, 24)
	d.wantScreen("Profiles", "demo", "logged out", "No account yet: sign up (s) or log in (l).")

	d.keys("s")
	if _, ok := d.top().(*signup); !ok {
		t.Fatalf("s opened %T, want the signup screen", d.top())
	}
	d.wantScreen("Create an account on "+testURL, "usernames 3–80")

	// tab and shift+tab move between fields; keys land in the focused one.
	d.typ("alice")
	d.keys("tab")
	d.typ("a@example.com")
	d.keys("shift+tab")
	d.typ("x")
	su := d.top().(*signup)
	if got := su.form.value("username"); got != "alicex" {
		t.Fatalf("username = %q, want alicex (shift+tab went back to it)", got)
	}
	if got := su.form.value("email"); got != "a@example.com" {
		t.Fatalf("email = %q", got)
	}

	// In a form, q and ? are text, not commands.
	d.typ("q?")
	if d.quit {
		t.Fatal("q in a text field quit the program")
	}
	if got := su.form.value("username"); got != "alicexq?" {
		t.Fatalf("username = %q, want q and ? typed into it", got)
	}

	d.keys("esc")
	if _, ok := d.top().(*home); !ok {
		t.Fatalf("esc went to %T, want home", d.top())
	}
	d.keys("l")
	if _, ok := d.top().(*login); !ok {
		t.Fatalf("l opened %T, want login", d.top())
	}
	d.keys("esc")

	// ? toggles the full help where no field has the keyboard.
	d.notScreen("make current")
	d.keys("?")
	d.wantScreen("make current", "remove")
	d.keys("?")
	d.notScreen("make current")

	// ctrl+c quits from a form, q from a list.
	d.keys("s", "ctrl+c")
	if !d.quit {
		t.Fatal("ctrl+c in the signup form did not quit")
	}
	d.quit = false
	d.keys("esc", "q")
	if !d.quit {
		t.Fatal("q on home did not quit")
	}
}

func TestNavigationLoginToDashboardAndLogout(t *testing.T) {
	h := newHarness(t)
	h.signup("demo")
	if _, err := h.env.Logout(h.ctx, "demo", false, false); err != nil {
		t.Fatal(err)
	}
	d := newDriver(t, h.app("demo", ""), 80, 24)
	d.wantScreen("logged out", "alice")
	d.keys("enter") // a logged-out profile opens the login form, for its user
	lg, ok := d.top().(*login)
	if !ok {
		t.Fatalf("enter opened %T, want login", d.top())
	}
	if got := lg.form.value("identifier"); got != "alice" {
		t.Fatalf("identifier = %q, want the profile's user", got)
	}
	d.typ(testPassword)
	d.notScreen(testPassword) // masked
	d.keys("enter")
	if _, ok := d.top().(*dashboard); !ok {
		t.Fatalf("after login the screen is %T, want the dashboard:\n%s", d.top(), d.screen())
	}
	d.wantScreen("Logged in as alice.", "alice@example.com")
	if n := len(d.m.(*App).stack); n != 2 {
		t.Fatalf("stack holds %d screens after login, want home and the dashboard", n)
	}

	d.keys("s")
	d.wantScreen("Sessions of alice", "(this terminal)")
	d.keys("esc", "t")
	d.wantScreen("Access token", "Claims", "sub")
	d.keys("esc", "o")
	if _, ok := d.top().(*home); !ok {
		t.Fatalf("after logout the screen is %T, want home", d.top())
	}
	d.wantScreen("Logged out of demo: the session was ended on the server.", "logged out")
}

func TestLayoutFitsTheTerminal(t *testing.T) {
	h := newHarness(t)
	h.signup("demo")
	for _, size := range [][2]int{{80, 24}, {50, 24}, {100, 40}} {
		d := newDriver(t, h.app("demo", "DEMO · throwaway server "+testURL+" · removed on exit"), size[0], size[1])
		for _, keys := range [][]string{nil, {"enter"}, {"s"}, {"esc", "t"}, {"esc", "esc", "s"}, {"esc", "enter", "m"}} {
			d.keys(keys...)
			lines := strings.Split(d.screen(), "\n")
			if len(lines) != size[1] {
				t.Errorf("%dx%d after %v: %d lines", size[0], size[1], keys, len(lines))
			}
			for i, l := range lines {
				if w := ansi.StringWidth(l); w > size[0] {
					t.Errorf("%dx%d after %v: line %d is %d cells wide: %q", size[0], size[1], keys, i, w, l)
				}
			}
		}
	}
}

// "Logged out of …" is news about a state: once the profile is logged in
// again, home no longer shows it.
func TestHomeDropsTheLogoutNoteAfterLoggingInAgain(t *testing.T) {
	h := newHarness(t)
	h.signup("demo")
	d := newDriver(t, h.app("demo", ""), 80, 24)
	d.keys("enter", "o")
	d.wantScreen("Logged out of demo", "logged out")
	d.keys("esc") // home is the root: esc stays, and the note with it
	d.wantScreen("Logged out of demo")

	d.keys("l")
	d.typ(testPassword)
	d.keys("enter")
	if _, ok := d.top().(*dashboard); !ok {
		t.Fatalf("after login the screen is %T, want the dashboard:\n%s", d.top(), d.screen())
	}
	d.keys("esc")
	if _, ok := d.top().(*home); !ok {
		t.Fatalf("esc from the dashboard went to %T, want home", d.top())
	}
	d.wantScreen("logged in")
	d.notScreen("Logged out of")
}
