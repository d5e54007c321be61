package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/latch-dev/latch/server"
)

// openSignup starts on home with a fresh "demo" profile and opens signup.
func openSignup(t *testing.T, h *harness) *driver {
	t.Helper()
	h.profile("demo")
	d := newDriver(t, h.app("demo", ""), 80, 24)
	d.keys("s")
	return d
}

// underField is the line shown under a signup field.
func underField(t *testing.T, d *driver, label string) string {
	t.Helper()
	lines := strings.Split(d.screen(), "\n")
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), label) && i+1 < len(lines) {
			return strings.TrimSpace(lines[i+1])
		}
	}
	t.Fatalf("no %s field on screen:\n%s", label, d.screen())
	return ""
}

func TestSignupLiveValidation(t *testing.T) {
	d := openSignup(t, newHarness(t))

	// Nothing typed yet: no complaint.
	d.notScreen("is required")
	// A value is judged as it is typed, against the server's policy.
	d.typ("al")
	if got := underField(t, d, "Username"); got != "✗ must be 3 to 80 characters" {
		t.Fatalf("under username: %q", got)
	}
	d.typ("ice")
	if got := underField(t, d, "Username"); got != "✓" {
		t.Fatalf("under a valid username: %q", got)
	}
	// Leaving a field empty makes "is required" show, and only then.
	d.keys("tab")
	d.notScreen("is required")
	d.keys("tab")
	if got := underField(t, d, "Email"); got != "✗ is required" {
		t.Fatalf("under an email left empty: %q", got)
	}
	d.keys("shift+tab")
	d.typ("alice@example")
	if got := underField(t, d, "Email"); got != "✗ is not a valid email address" {
		t.Fatalf("under a bad email: %q", got)
	}
	d.typ(".com")

	// The strength meter follows the password.
	d.keys("tab")
	d.typ("alice2026")
	d.wantScreen("✗ must not contain the username")
	d.erase(len("alice2026"))
	d.typ("password")
	d.wantScreen("very weak · 0/4 (needs 3)", "✗ is too easy to guess")
	d.erase(len("password"))
	d.typ(testPassword)
	d.wantScreen("very strong · 4/4 (needs 3)")
	d.notScreen(testPassword)
	su := d.top().(*signup)

	d.keys("tab")
	d.typ("correct horse")
	if got := underField(t, d, "Confirm"); got != "✗ does not match the password" {
		t.Fatalf("under a wrong confirmation: %q", got)
	}

	// enter with a problem left sends nothing and takes the user to it.
	d.keys("enter")
	if su.work.active() {
		t.Fatal("a form with problems was sent")
	}
	if su.form.names[su.form.focus] != "confirm" {
		t.Fatalf("focus is on %s, want the confirmation", su.form.names[su.form.focus])
	}
	d.typ(testPassword[len("correct horse"):])
	d.keys("enter")
	if _, ok := d.top().(*dashboard); !ok {
		t.Fatalf("a valid signup led to %T:\n%s", d.top(), d.screen())
	}
	d.wantScreen("Welcome, alice: your account is ready and you are logged in.", "alice@example.com")
}

func TestSignupShowsServerFieldErrorsOnTheirFields(t *testing.T) {
	h := newHarness(t)
	h.signup("first") // alice exists
	d := newDriver(t, h.app("", ""), 80, 24)
	d.keys("a")
	d.typ(testURL)
	d.keys("enter", "s")
	d.typ("Alice")
	d.keys("tab")
	d.typ("someone@example.com")
	d.keys("tab")
	d.typ("violet staple orbit canyon")
	d.keys("tab")
	d.typ("violet staple orbit canyon")
	d.keys("enter")
	if _, ok := d.top().(*signup); !ok {
		t.Fatalf("a refused signup left the form for %T", d.top())
	}
	if got := underField(t, d, "Username"); !strings.Contains(got, "✗") || !strings.Contains(got, "taken") {
		t.Fatalf("under username after a conflict: %q\n%s", got, d.screen())
	}
	su := d.top().(*signup)
	if su.form.names[su.form.focus] != "username" {
		t.Fatalf("focus on %s, want the field the server refused", su.form.names[su.form.focus])
	}
	// Editing the field clears the server's word until the next answer.
	d.typ("2")
	if got := underField(t, d, "Username"); got != "✓" {
		t.Fatalf("under username after an edit: %q", got)
	}
	d.keys("enter")
	d.wantScreen("Welcome, Alice2")
}

func TestLoginFailureAndRateLimitCountdown(t *testing.T) {
	h := newHarness(t, func(c *server.Config) { c.RateAccount = -1; c.RateIP = -1 })
	p := h.signup("demo")
	if _, err := h.env.Logout(h.ctx, p.Name, false, false); err != nil {
		t.Fatal(err)
	}
	d := newDriver(t, h.app("demo", ""), 80, 24)
	d.keys("l")
	d.keys("enter")
	d.wantScreen("Type your password.")

	// A wrong password reads as the server says it, with what to do next.
	d.typ("wrong password here")
	d.keys("enter")
	d.wantScreen("Wrong username, email or password. Check both and press enter to try again.")
	lg := d.top().(*login)
	if lg.form.value("password") != "" {
		t.Fatal("the refused password stays in the field")
	}

	// Failures in a row lock the identifier: the wait counts down.
	for range 6 {
		if _, ok := d.top().(*login); !ok || lg.waiting() > 0 {
			break
		}
		d.typ("wrong password here")
		d.keys("enter")
	}
	if lg.waiting() == 0 {
		t.Fatalf("no rate limit after repeated failures:\n%s", d.screen())
	}
	wait := lg.waiting()
	d.wantScreen("The server is limiting login attempts. Try again in " + short(wait) + ".")
	d.typ(testPassword)
	d.keys("enter") // refused locally while the wait lasts
	if lg.work.active() || lg.err == nil {
		t.Fatal("a login was sent during the wait")
	}
	h.clock.Advance(wait - time.Second)
	d.send(TickMsg{})
	d.wantScreen("Try again in 1s.")
	h.clock.Advance(time.Second)
	d.send(TickMsg{})
	d.wantScreen("You can try again now.")
	d.keys("enter")
	if _, ok := d.top().(*dashboard); !ok {
		t.Fatalf("after the wait the login led to %T:\n%s", d.top(), d.screen())
	}
}

func TestLoginUnreachableServerSaysWhatToDo(t *testing.T) {
	h := newHarness(t)
	h.profile("demo")
	h.srv.Close()
	d := newDriver(t, h.app("demo", ""), 80, 24)
	d.keys("l")
	d.typ("alice")
	d.keys("tab")
	d.typ(testPassword)
	d.keys("enter")
	d.wantScreen("cannot reach 127.0.0.1:8080", "the server is running")
	if _, ok := d.top().(*login); !ok {
		t.Fatalf("a failed login left the form for %T", d.top())
	}
}
