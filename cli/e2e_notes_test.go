package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/server"
)

// newRBACE2E is newE2E with root as the bootstrap superadmin.
func newRBACE2E(t *testing.T) *e2e {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	hs := httptest.NewUnstartedServer(nil)
	srv, err := server.New(ctx, server.Config{
		DBPath:         server.MemoryDB,
		Issuer:         "http://" + hs.Listener.Addr().String(),
		SecretKey:      bytes.Repeat([]byte{9}, 32),
		AccessTTL:      time.Minute,
		RateIP:         -1,
		RateAccount:    -1,
		BootstrapAdmin: "root",
	})
	if err != nil {
		hs.Close()
		t.Fatal(err)
	}
	hs.Config.Handler = srv.Handler()
	hs.Start()
	t.Cleanup(func() { hs.Close(); srv.Close() })
	cl, err := client.New(hs.URL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &e2e{t: t, ctx: ctx, bin: latchBinary(t), home: newHome(t), srv: hs, client: cl}
}

// notes is `latch notes list --json`.
func (e *e2e) notes() []client.Note {
	e.t.Helper()
	var v struct{ Notes []client.Note }
	if err := json.Unmarshal([]byte(e.must("", "notes", "list", "--json")), &v); err != nil {
		e.t.Fatal(err)
	}
	return v.Notes
}

// addNote is latch notes add, returning the new note's id.
func (e *e2e) addNote(text string) string {
	e.t.Helper()
	out := e.must("", "notes", "add", text)
	id, ok := strings.CutPrefix(strings.TrimSpace(out), "Added note ")
	if !ok {
		e.t.Fatalf("notes add: %q", out)
	}
	return strings.TrimSuffix(id, ".")
}

// The seeds' CRUD flow through latch notes, with the object-level rules:
// every account reads every note, writing one takes notes:write (editor),
// its owner may always change it, whatever their role now, and a viewer
// cannot change another's (the refusal names the permission).
func TestE2ENotesCRUD(t *testing.T) {
	root := newRBACE2E(t)
	root.signup(root.srv.URL, "root")
	alice, bob := root.machine(), root.machine()
	alice.signup(root.srv.URL, "alice")
	bob.signup(root.srv.URL, "bob")

	if out := alice.must("", "notes", "list"); !strings.Contains(out, "No notes yet") {
		t.Fatalf("empty list: %s", out)
	}
	if r := alice.run("", "notes", "add", "buy milk"); r.code != exitError || !strings.Contains(r.stderr, "notes:write") {
		t.Fatalf("a viewer adds a note: exit %d %s", r.code, r.stderr)
	}
	// alice writes a note as an editor, then is a viewer again: still its owner.
	root.must("", "admin", "roles", "grant", "alice", "editor")
	alice.must(e2ePassword+"\n", "login", "--password-stdin")
	if st := alice.status(); strings.Join(st.Roles, ",") != "viewer,editor" {
		t.Fatalf("alice's roles after the grant = %v", st.Roles)
	}
	a := alice.addNote("buy milk")
	r0 := root.addNote("root's note")
	root.must("", "admin", "roles", "revoke", "alice", "editor")
	// Revoking the role ended alice's sessions: her next call needs a login.
	if r := alice.run("", "notes", "list"); r.code != exitLogin {
		t.Fatalf("after the role was revoked: exit %d %s", r.code, r.stderr)
	}
	alice.must(e2ePassword+"\n", "login", "--password-stdin")

	list := bob.notes()
	if len(list) != 2 || list[0].ID != r0 || list[1].ID != a || list[1].OwnerName != "alice" || list[1].Note != "buy milk" {
		t.Fatalf("notes list (newest first) = %+v", list)
	}
	if out := bob.must("", "notes", "show", a); !strings.Contains(out, "by alice") || !strings.Contains(out, "buy milk") {
		t.Fatalf("bob reads alice's note: %s", out)
	}

	refusals := []struct {
		name string
		who  *e2e
		args []string
		perm string
	}{
		{"viewer edits another's note", bob, []string{"notes", "edit", a, "bob was here"}, "notes:write"},
		{"viewer deletes another's note", bob, []string{"notes", "rm", a}, "notes:delete"},
		{"owner-viewer edits another's note", alice, []string{"notes", "edit", r0, "alice was here"}, "notes:write"},
		{"viewer lists users", bob, []string{"admin", "users", "list"}, "users:read"},
		{"viewer locks a user", bob, []string{"admin", "users", "lock", "1"}, "users:write"},
		{"viewer reads all events", bob, []string{"events", "--all"}, "audit:read"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.who.run("", tt.args...)
			if r.code != exitError || !strings.Contains(r.stderr, tt.perm) {
				t.Fatalf("latch %v: exit %d, stderr %q; want exit 1 naming %s", tt.args, r.code, r.stderr, tt.perm)
			}
		})
	}
	if r := bob.run("", "events", "--user", "alice"); r.code != exitUsage || !strings.Contains(r.stderr, "--all") {
		t.Fatalf("events --user without --all: exit %d %s", r.code, r.stderr)
	}
	if n := bob.notes(); n[1].Note != "buy milk" || n[0].Note != "root's note" {
		t.Fatalf("a refused edit changed a note: %+v", n)
	}

	// The owner, a viewer now, edits their own; bad input names the rule.
	alice.must("", "notes", "edit", a, "buy oat milk")
	if r := alice.run("", "notes", "edit", a, ""); r.code != exitError || !strings.Contains(r.stderr, "note") {
		t.Fatalf("an empty note: exit %d %s", r.code, r.stderr)
	}
	if r := alice.run("", "notes", "edit", a, strings.Repeat("x", 10001)); r.code != exitError {
		t.Fatalf("a 10001-character note: exit %d %s", r.code, r.stderr)
	}

	// An editor changes anyone's.
	root.must("", "admin", "roles", "grant", "bob", "editor")
	bob.must(e2ePassword+"\n", "login", "--password-stdin")
	bob.must("", "notes", "edit", a, "edited by an editor")
	var shown client.Note
	if err := json.Unmarshal([]byte(alice.must("", "notes", "show", a, "--json")), &shown); err != nil {
		t.Fatal(err)
	}
	if shown.Note != "edited by an editor" || shown.OwnerName != "alice" {
		t.Fatalf("after the editor's edit: %+v", shown)
	}
	bob.must("", "notes", "rm", r0)
	alice.must("", "notes", "rm", a)
	if r := alice.run("", "notes", "show", a); r.code != exitError || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("a deleted note: exit %d %s", r.code, r.stderr)
	}
	if n := alice.notes(); len(n) != 0 {
		t.Fatalf("notes left: %+v", n)
	}
	// The last superadmin stays.
	if r := root.run("", "admin", "roles", "revoke", "root", "superadmin"); r.code != exitError {
		t.Fatalf("removing the last superadmin: exit %d %s", r.code, r.stderr)
	}
}
