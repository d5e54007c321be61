package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/internal/mailpit"
	"github.com/latch-dev/latch/server"
)

// readEvents is `latch events --json` with args, decoded.
func (e *e2e) readEvents(args ...string) []client.AuditEvent {
	e.t.Helper()
	out := e.must("", append([]string{"events", "--json", "--limit", "500"}, args...)...)
	var v struct {
		Events []client.AuditEvent `json:"events"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		e.t.Fatalf("events --json: %v\n%s", err, out)
	}
	return v.Events
}

// Every audit event type, each produced through the built binary (refresh
// reuse through the client library: latch itself never replays a refresh
// token), then read back with latch events --all --json as a superadmin.
func TestE2EAuditEveryEvent(t *testing.T) {
	mp := mailpit.Start(t)
	e := newMailE2E(t, mp, func(c *server.Config) { c.BootstrapAdmin = "root"; c.ReuseGrace = -1 })
	e.signup(e.srv.URL, "root")
	if st := e.status(); !strings.Contains(strings.Join(st.Roles, ","), "superadmin") {
		t.Fatalf("bootstrap admin's status roles = %v", st.Roles)
	}
	if out := e.must("", "status"); !strings.Contains(out, "roles:      ") || !strings.Contains(out, "superadmin") {
		t.Fatalf("status text has no roles:\n%s", out)
	}

	alice := e.machine()
	alice.signup(e.srv.URL, "alice") // signup, login.ok
	if st := alice.status(); strings.Join(st.Roles, ",") != "viewer" {
		t.Fatalf("a new account's roles = %v, want [viewer]", st.Roles)
	}
	alice.must(mailToken(t, mp, "alice@example.com", "confirm your email")+"\n", "email", "verify", "--token-stdin") // email.verified
	if r := alice.run("wrong password\n", "login", "--password-stdin"); r.code == 0 {                                // login.failed
		t.Fatalf("a wrong password logged in:\n%s", r.stdout)
	}
	alice.must(e2ePassword+"\n"+e2eNewPassword+"\n", "password", "change", "--password-stdin") // password.changed

	// mfa.failed, then mfa.ok on the next login.
	var setup struct{ Secret string }
	if err := json.Unmarshal([]byte(alice.must("", "mfa", "setup", "--json")), &setup); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	code, _ := totp.GenerateCode(setup.Secret, now)
	alice.must("", "mfa", "enable", "--code", code)
	alice.must("", "logout") // logout
	wrong := "000000"
	if wrong == code {
		wrong = "111111"
	}
	if r := alice.run(e2eNewPassword+"\n", "login", "--password-stdin", "--code", wrong); r.code == 0 {
		t.Fatal("a wrong TOTP code logged in")
	}
	next, _ := totp.GenerateCode(setup.Secret, now.Add(30*time.Second))
	alice.must(e2eNewPassword+"\n", "login", "--password-stdin", "--code", next)

	// refresh.reuse_detected: a refresh token presented twice.
	reuse, err := e.client.Login(e.ctx, "root", e2ePassword)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Refresh(e.ctx, reuse.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Refresh(e.ctx, reuse.RefreshToken); err == nil {
		t.Fatal("a reused refresh token was accepted")
	}

	// Admin changes: role.changed, account.locked/unlocked, session.revoked.
	e.must("", "admin", "roles", "grant", "alice", "editor")
	var shown client.AdminUser
	if err := json.Unmarshal([]byte(e.must("", "admin", "users", "show", "alice", "--json")), &shown); err != nil {
		t.Fatal(err)
	}
	if len(shown.Sessions) != 1 || !shown.MFA || !shown.EmailVerified {
		t.Fatalf("admin users show alice: %+v", shown)
	}
	e.must("", "admin", "sessions", "revoke", shown.Sessions[0].ID)
	if r := alice.run("", "notes", "list"); r.code != exitLogin {
		t.Fatalf("alice's revoked session still works: exit %d %s", r.code, r.stderr)
	}
	e.must("", "admin", "users", "lock", "alice")
	if r := alice.run(e2eNewPassword+"\n", "login", "--password-stdin", "--code", "123456"); r.code == 0 ||
		!strings.Contains(r.stderr, "locked") {
		t.Fatalf("a locked account's login: exit %d %s", r.code, r.stderr)
	}
	e.must("", "admin", "users", "unlock", "alice")
	// password.reset, by the mailed link.
	e.must("", "admin", "users", "require-reset", "alice")
	tok := mailToken(t, mp, "alice@example.com", "reset your password")
	alice.must(tok+"\n"+e2ePassword+"\n", "password", "reset", "--token-stdin", "--password-stdin", "--use-backup-code")

	e.must(e2ePassword+"\n", "login", "--password-stdin", "-u", "root")
	events := e.readEvents("--all")
	byType := map[string]client.AuditEvent{}
	for _, ev := range events {
		if _, ok := byType[ev.Type]; !ok {
			byType[ev.Type] = ev
		}
		if ev.RequestID == "" {
			t.Errorf("event %s %s has no request id", ev.ID, ev.Type)
		}
	}
	for _, typ := range []string{"signup", "login.ok", "login.failed", "mfa.ok", "mfa.failed", "refresh.reuse_detected",
		"logout", "session.revoked", "password.changed", "password.reset", "email.verified", "role.changed",
		"account.locked", "account.unlocked"} {
		if _, ok := byType[typ]; !ok {
			t.Errorf("no %s event in latch events --all --json", typ)
		}
	}
	if ev := byType["role.changed"]; ev.Username != "alice" || ev.ActorName != "root" {
		t.Errorf("role.changed: user %q actor %q, want alice by root", ev.Username, ev.ActorName)
	}
	if ev := byType["session.revoked"]; ev.ActorName != "root" {
		t.Errorf("session.revoked: actor %q, want root", ev.ActorName)
	}
	// Filters reach the server: only alice's lock events.
	for _, ev := range e.readEvents("--all", "--user", "alice", "--type", "account.locked") {
		if ev.Type != "account.locked" || ev.Username != "alice" {
			t.Errorf("filtered events hold %s of %s", ev.Type, ev.Username)
		}
	}

	// Someone without audit:read (alice is an editor) reads only their own
	// events, and --all is refused with the permission named.
	alice.must(e2ePassword+"\n", "login", "--password-stdin", "--use-backup-code")
	for _, ev := range alice.readEvents() {
		if ev.UserID != byType["role.changed"].UserID {
			t.Errorf("alice's own events hold %s of %q", ev.Type, ev.Username)
		}
	}
	if r := alice.run("", "events", "--all"); r.code != exitError || !strings.Contains(r.stderr, "audit:read") {
		t.Fatalf("an editor's events --all: exit %d %s", r.code, r.stderr)
	}
	if out := alice.must("", "events"); !strings.Contains(out, "login.ok") {
		t.Fatalf("latch events text:\n%s", out)
	}
}
