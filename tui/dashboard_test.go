package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/latch-dev/latch/flows"
)

// openDashboard logs alice in and opens her dashboard.
func openDashboard(t *testing.T, h *harness) (*driver, *dashboard) {
	t.Helper()
	p := h.signup("demo")
	d := newDriver(t, h.app("demo", ""), 80, 24)
	d.send(NavigateMsg{To: pageDashboard, Profile: p})
	db, ok := d.top().(*dashboard)
	if !ok {
		t.Fatalf("opened %T, want the dashboard", d.top())
	}
	return d, db
}

func TestDashboardRotatesInTheBackground(t *testing.T) {
	h := newHarness(t)
	d, db := openDashboard(t, h)
	d.wantScreen("alice", "alice@example.com", "id 1", "Server        "+testURL,
		"Vault         memory", "Access token  expires in 15m 00s", "Rotations     0 this session",
		"Next rotation due in 14m 00s", "Last error    none")

	// Time passes without reaching the rotation: ticks only redraw.
	h.clock.Advance(10 * time.Minute)
	d.send(TickMsg{})
	d.wantScreen("expires in 5m 00s", "due in 4m 00s", "Rotations     0 this session")

	// At the rotation time the tick runs the token manager, which rotates.
	h.clock.Advance(4 * time.Minute)
	d.send(TickMsg{})
	if db.ts.Rotations != 1 {
		t.Fatalf("rotations = %d after the due tick, want 1:\n%s", db.ts.Rotations, d.screen())
	}
	d.wantScreen("Rotations     1 this session", "expires in 15m 00s", "due in 14m 00s",
		"✓ Rotated in the background at 14:14:00: rotation 1 of this session.")
	st, err := h.env.Tokens().Status(h.ctx, "demo")
	if err != nil || st.Rotations != 1 {
		t.Fatalf("the vault holds %d rotations (%v), want 1: the dashboard must rotate through the token manager", st.Rotations, err)
	}

	// Another tick before the next due time does nothing.
	h.clock.Advance(time.Minute)
	d.send(TickMsg{})
	if db.ts.Rotations != 1 || db.rotating {
		t.Fatalf("an early tick rotated (rotations %d, rotating %v)", db.ts.Rotations, db.rotating)
	}

	// Refresh now rotates at once, through the same manager.
	d.keys("r")
	d.wantScreen("Rotations     2 this session", "Refreshed now: rotation 2 of this session.")
}

func TestDashboardStopsRotatingWhenTheSessionEnds(t *testing.T) {
	h := newHarness(t)
	d, db := openDashboard(t, h)
	// The session is revoked elsewhere (another terminal, an admin).
	list, err := h.env.Sessions(h.ctx, "demo")
	if err != nil || len(list) != 1 {
		t.Fatalf("sessions: %v %v", list, err)
	}
	c, _ := h.env.Client(testURL)
	tok, _ := h.env.Token(h.ctx, "demo")
	if err := c.RevokeSession(h.ctx, tok, list[0].ID); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(14 * time.Minute)
	d.send(TickMsg{})
	if !db.ended {
		t.Fatalf("a refused refresh did not end the background rotation:\n%s", d.screen())
	}
	d.wantScreen("Next rotation stopped: the session has ended", "Log in again (l).")
	if !strings.Contains(d.screen(), "l log in") {
		t.Fatalf("the help does not offer to log in again:\n%s", d.screen())
	}
	h.clock.Advance(time.Minute)
	d.send(TickMsg{})
	if db.rotating {
		t.Fatal("the dashboard keeps trying to rotate a session that has ended")
	}
	d.keys("l")
	if lg, ok := d.top().(*login); !ok || lg.form.value("identifier") != "alice" {
		t.Fatalf("l opened %T, want login for alice", d.top())
	}
}

func TestDashboardBacksOffAfterAFailedRotation(t *testing.T) {
	h := newHarness(t)
	d, db := openDashboard(t, h)
	h.srv.Close() // the server goes away
	h.clock.Advance(14 * time.Minute)
	d.send(TickMsg{})
	if db.lastErr == nil || db.ended {
		t.Fatalf("unreachable server: lastErr %v, ended %v", db.lastErr, db.ended)
	}
	d.wantScreen("Last error    14:14:00", "retrying in 10s")
	h.clock.Advance(5 * time.Second)
	d.send(TickMsg{})
	d.wantScreen("retrying in 5s")
	if db.rotating {
		t.Fatal("retried before the back-off ended")
	}
}

func TestDashboardProtectedRouteAndErrors(t *testing.T) {
	h := newHarness(t)
	d, _ := openDashboard(t, h)
	d.keys("p")
	d.wantScreen("GET /auth/protected answered: logged in as alice.")
}

func TestSessionsRevokeAfterConfirming(t *testing.T) {
	h := newHarness(t)
	d, _ := openDashboard(t, h)
	// A second session of alice, from another client.
	c, _ := h.env.Client(testURL)
	h.clock.Advance(time.Minute)
	if _, err := c.Login(h.ctx, "alice", testPassword); err != nil {
		t.Fatal(err)
	}
	d.keys("s")
	d.wantScreen("Sessions of alice", "2 open", "(this terminal)")
	d.keys("down", "d")
	d.wantScreen("Revoke the session started", "y yes · n no")
	d.keys("n")
	d.notScreen("y yes · n no")
	list, _ := h.env.Sessions(h.ctx, "demo")
	if len(list) != 2 {
		t.Fatalf("n revoked a session: %d left", len(list))
	}
	d.keys("d", "y")
	d.wantScreen("✓ Session revoked.", "1 open")
	list, _ = h.env.Sessions(h.ctx, "demo")
	if len(list) != 1 || !list[0].Current {
		t.Fatalf("after revoking, the server has %+v", list)
	}

	// Revoking this terminal's own session says so, and logs out.
	d.keys("d")
	d.wantScreen("It is this terminal's own:", "you will be logged out.")
	d.keys("y")
	if _, ok := d.top().(*home); !ok {
		t.Fatalf("revoking our own session left %T", d.top())
	}
	d.wantScreen("Revoked this terminal's session: demo is logged out.")
	if st, _ := h.env.ProfileStatus(h.ctx, "demo"); st.State != flows.StateLoggedOut {
		t.Fatalf("state %s after revoking our own session", st.State)
	}
}

func TestInspectorHidesTheSignatureUnlessAsked(t *testing.T) {
	h := newHarness(t)
	d, _ := openDashboard(t, h)
	tok, err := h.env.Token(h.ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	sig := tok[strings.LastIndexByte(tok, '.')+1:]
	d.keys("t")
	d.wantScreen("alg        ES256", "exp            2026-11-22 14:15:00 UTC  (in 15m 00s)", "email_verified false",
		"iat            2026-11-22 14:00:00 UTC  (now)", "iss            "+testURL, "hidden: press s to show it")
	if strings.Contains(d.screen(), sig[:20]) {
		t.Fatal("the signature is on screen before it was asked for")
	}
	d.keys("s")
	if !strings.Contains(d.screen(), sig[:20]) {
		t.Fatalf("s did not show the signature:\n%s", d.screen())
	}
	d.keys("s")
	d.wantScreen("hidden: press s to show it")
}

func TestHomeAddServerSwitchAndRemove(t *testing.T) {
	h := newHarness(t)
	h.signup("demo")
	d := newDriver(t, h.app("", ""), 80, 24)

	// A URL that is not a latch server is refused where it was typed.
	d.keys("a")
	d.typ("http://127.0.0.1:8080/nothing-here")
	d.keys("enter")
	d.wantScreen("Add a server", "/auth/config")
	if hm := d.top().(*home); hm.addErr == nil || hm.mode != homeAdding {
		t.Fatalf("a bad server was accepted:\n%s", d.screen())
	}
	d.keys("esc", "a")
	d.typ(testURL + "/")
	d.keys("enter")
	d.wantScreen("+ server", "no account", "usernames 3–80 · passwords 8–128, strength ≥ 3/4",
		"Added "+testURL+": sign up (s) or log in (l).")

	// Log in to the added server as alice again, into a second profile.
	d.keys("l")
	d.typ("alice@example.com")
	d.keys("tab")
	d.typ(testPassword)
	d.keys("enter", "esc")
	cfg, _ := h.env.Config()
	if len(cfg.Profiles) != 2 || cfg.Current == "demo" {
		t.Fatalf("after logging in to the added server: profiles %+v, current %q", cfg.Profiles, cfg.Current)
	}
	d.wantScreen("› ● "+truncate(cfg.Current, 14), "demo")

	// Switch back to demo, then remove the other profile (it holds a
	// session, so the confirmation says what removing does not do).
	for d.top().(*home).cursor > 0 {
		d.keys("up")
	}
	d.keys("down", "u")
	d.wantScreen("Profile demo is now the current one.", "› ● demo")
	d.keys("down", "d")
	d.wantScreen("It holds a session", "does not", "y yes • n no")
	d.keys("y")
	d.wantScreen("Removed profile")
	if cfg, _ := h.env.Config(); len(cfg.Profiles) != 1 || cfg.Profiles[0].Name != "demo" {
		t.Fatalf("profiles left: %+v, want demo alone", cfg.Profiles)
	}
}
