package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/latch-dev/latch/server"
)

// auditHarness is a harness where alice is the bootstrap superadmin, with
// events from this terminal, from another session and a failed login.
func auditHarness(t *testing.T) (*harness, string) {
	t.Helper()
	h := newHarness(t, func(c *server.Config) { c.BootstrapAdmin = "alice" })
	p := h.signup("demo")
	c, _ := h.env.Client(testURL)
	h.clock.Advance(2 * time.Minute)
	if _, err := c.Login(h.ctx, "alice", "not the password"); err == nil {
		t.Fatal("a wrong password logged in")
	}
	h.clock.Advance(time.Minute)
	if _, err := c.Login(h.ctx, "alice", testPassword); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Minute)
	if _, err := c.Register(h.ctx, "bob", "bob@example.com", testPassword); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Minute)
	return h, p.Name
}

func TestGoldenActivity(t *testing.T) {
	h, name := auditHarness(t)
	p, _ := h.env.Profile(name)
	g := startGolden(t, h.app(name, demoBanner), 80, 24)
	g.tm.Send(NavigateMsg{To: pageActivity, Profile: p})
	g.wait("login.failed", "signup")
	g.finish()
}

func TestGoldenUsers(t *testing.T) {
	h, name := auditHarness(t)
	p, _ := h.env.Profile(name)
	g := startGolden(t, h.app(name, demoBanner), 80, 24)
	g.tm.Send(NavigateMsg{To: pageUsers, Profile: p})
	g.wait("bob@example.com", "2 accounts")
	g.tm.Type("jx")
	g.wait("Lock bob?")
	g.finish()
}

// The marks: this terminal's own sign-in is plain, another session's
// sign-in and a failure are marked.
func TestActivityMarksForeignEvents(t *testing.T) {
	h, name := auditHarness(t)
	p, _ := h.env.Profile(name)
	d := newDriver(t, h.app(name, ""), 80, 24)
	d.send(NavigateMsg{To: pageActivity, Profile: p})
	d.wantScreen("Activity of alice")
	var marked, plain []string
	for _, line := range strings.Split(d.screen(), "\n") {
		l := strings.TrimSpace(line)
		if !strings.Contains(l, "login.") && !strings.Contains(l, "signup") {
			continue
		}
		if strings.HasPrefix(l, "! ") {
			marked = append(marked, l)
		} else {
			plain = append(plain, l)
		}
	}
	if len(marked) != 2 || !strings.Contains(marked[0], "login.ok") || !strings.Contains(marked[1], "login.failed") {
		t.Errorf("marked = %q, want the other session's login.ok and the login.failed", marked)
	}
	if len(plain) != 2 || !strings.Contains(plain[0], "login.ok") || !strings.Contains(plain[1], "signup") {
		t.Errorf("plain = %q, want this terminal's login.ok and the signup", plain)
	}
}

// The Users screen: search, then lock and unlock bob, grant and revoke a
// role, each after a yes; the server's state follows.
func TestUsersScreenActions(t *testing.T) {
	h, name := auditHarness(t)
	p, _ := h.env.Profile(name)
	d := newDriver(t, h.app(name, ""), 80, 24)
	d.send(NavigateMsg{To: pageUsers, Profile: p})
	d.wantScreen("2 accounts", "bob@example.com")
	d.keys("/")
	d.typ("bob")
	d.keys("enter")
	d.wantScreen("1 account", "search: bob")
	d.notScreen("alice@example.com")

	steps := []struct {
		keys   []string
		ask    string
		check  func() bool
		detail string
	}{
		{[]string{"x"}, "Lock bob?", func() bool { u, _ := h.env.AdminUser(h.ctx, name, "bob"); return u.Locked }, "locked"},
		{[]string{"x"}, "Unlock bob?", func() bool { u, _ := h.env.AdminUser(h.ctx, name, "bob"); return !u.Locked }, "unlocked"},
		{[]string{"+"}, "Grant bob the role editor?", func() bool {
			u, _ := h.env.AdminUser(h.ctx, name, "bob")
			return strings.Join(u.Roles, ",") == "viewer,editor"
		}, "editor granted"},
		{[]string{"-"}, "Revoke bob's role editor?", func() bool {
			u, _ := h.env.AdminUser(h.ctx, name, "bob")
			return strings.Join(u.Roles, ",") == "viewer"
		}, "editor revoked"},
	}
	for _, s := range steps {
		d.keys(s.keys...)
		d.wantScreen(s.ask)
		d.keys("y")
		d.wantScreen("✓ bob")
		if !s.check() {
			t.Fatalf("after %q the server's bob is not %s", s.ask, s.detail)
		}
	}
}

// The dashboard's keys: a opens Activity for everyone; U opens Users only
// for an administrator (the server would refuse the others anyway).
func TestDashboardAuditKeys(t *testing.T) {
	tests := []struct {
		name      string
		bootstrap string
		wantUsers bool
	}{
		{"superadmin", "alice", true},
		{"viewer", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(c *server.Config) { c.BootstrapAdmin = tt.bootstrap })
			p := h.signup("demo")
			d := newDriver(t, h.app("demo", ""), 80, 24)
			d.send(NavigateMsg{To: pageDashboard, Profile: p})
			d.keys("a")
			d.wantScreen("Activity of alice", "signup")
			d.keys("esc", "U")
			if tt.wantUsers {
				d.wantScreen("Users on", "alice@example.com")
			} else {
				d.notScreen("Users on")
			}
		})
	}
}
