package server

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

func wantRoles(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s roles = %v, want %v", what, got, want)
	}
}

func TestNewAccountsAndBootstrapAdmin(t *testing.T) {
	// The flag's case need not be the signup's: usernames are unique
	// regardless of case, and the start-up grant matches them so.
	for _, flag := range []string{"root", "Root"} {
		t.Run(flag, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.BootstrapAdmin = flag })
			e.register("alice", "alice@example.com")
			e.register("root", "root@example.com")
			for name, want := range map[string][]string{"alice": {roleViewer}, "root": {roleViewer, roleSuperadmin}} {
				p := e.login(name)
				wantRoles(t, name+" access token", rolesIn(claims(t, p.AccessToken)["roles"]), want)
				wantRoles(t, name+" /auth/me", rolesIn(e.bearer("GET", "/auth/me", p.AccessToken, nil).json(t)["roles"]), want)
			}
		})
	}
}

func TestBootstrapAdminAtStart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "latch.db")
	e := newEnv(t, func(c *Config) { c.DBPath = db })
	e.register("boss", "boss@example.com")
	e.srv.Close()
	e2 := newEnv(t, func(c *Config) { c.DBPath = db; c.BootstrapAdmin = "boss" })
	wantRoles(t, "boss", rolesIn(claims(t, e2.login("boss").AccessToken)["roles"]), []string{roleViewer, roleSuperadmin})
}

func TestDevFirstAccountIsSuperadmin(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Dev = true })
	e.register("first", "first@example.com")
	e.register("second", "second@example.com")
	wantRoles(t, "first", rolesIn(claims(t, e.login("first").AccessToken)["roles"]), []string{roleViewer, roleSuperadmin})
	wantRoles(t, "second", rolesIn(claims(t, e.login("second").AccessToken)["roles"]), []string{roleViewer})
}

func TestRoleChanges(t *testing.T) {
	e := newEnv(t)
	rootID, root := e.userWithRoles("root", roleViewer, roleSuperadmin)
	aliceID, alice := e.userWithRoles("alice", roleViewer, roleEditor)
	at := root.AccessToken
	rolePath := func(uid int64, role string) string { return fmt.Sprintf("/admin/users/%d/roles/%s", uid, role) }

	// A grant takes effect at the next refresh.
	r := e.bearer("PUT", rolePath(aliceID, roleAdmin), at, nil)
	if r.Status != 200 {
		t.Fatalf("grant: %d %s", r.Status, r.Body)
	}
	wantRoles(t, "grant answer", rolesIn(r.json(t)["roles"]), []string{roleViewer, roleEditor, roleAdmin})
	if r := e.bearer("GET", "/admin/users", alice.AccessToken, nil); r.Status != 403 {
		t.Errorf("old token after grant: %d, want 403 until refresh", r.Status)
	}
	p := decodePair(t, e.refresh(alice.RefreshToken))
	wantRoles(t, "refreshed token", rolesIn(claims(t, p.AccessToken)["roles"]), []string{roleViewer, roleEditor, roleAdmin})
	if r := e.bearer("GET", "/admin/users", p.AccessToken, nil); r.Status != 200 {
		t.Errorf("refreshed token after grant: %d", r.Status)
	}
	// Granting again changes nothing and ends nothing.
	if r := e.bearer("PUT", rolePath(aliceID, roleAdmin), at, nil); r.Status != 200 {
		t.Errorf("grant again: %d", r.Status)
	}
	if r := e.bearer("GET", "/auth/me", p.AccessToken, nil); r.Status != 200 {
		t.Errorf("token after a repeated grant: %d", r.Status)
	}

	// Removing a role ends every session of the account.
	r = e.bearer("DELETE", rolePath(aliceID, roleAdmin), at, nil)
	if r.Status != 200 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	wantRoles(t, "revoke answer", rolesIn(r.json(t)["roles"]), []string{roleViewer, roleEditor})
	if r := e.bearer("GET", "/auth/me", p.AccessToken, nil); r.Status != 401 {
		t.Errorf("token after role removal: %d, want 401", r.Status)
	}
	if r := e.refresh(p.RefreshToken); r.Status != 401 {
		t.Errorf("refresh after role removal: %d, want 401", r.Status)
	}

	// Unknown roles and accounts.
	if r := e.bearer("PUT", rolePath(aliceID, "root"), at, nil); r.Status != 400 || r.problemType(t) != probValidation {
		t.Errorf("unknown role: %d %s", r.Status, r.Body)
	}
	if r := e.bearer("PUT", rolePath(9999, roleEditor), at, nil); r.Status != 404 {
		t.Errorf("unknown account: %d %s", r.Status, r.Body)
	}

	// The last superadmin stays.
	if r := e.bearer("DELETE", rolePath(rootID, roleSuperadmin), at, nil); r.Status != 409 || r.problemType(t) != probConflict {
		t.Fatalf("removing the last superadmin: %d %s", r.Status, r.Body)
	}
	if r := e.bearer("GET", "/auth/me", at, nil); r.Status != 200 {
		t.Errorf("the refused removal ended root's session: %d", r.Status)
	}
	if r := e.bearer("PUT", rolePath(aliceID, roleSuperadmin), at, nil); r.Status != 200 {
		t.Fatalf("grant superadmin: %d", r.Status)
	}
	if r := e.bearer("DELETE", rolePath(rootID, roleSuperadmin), at, nil); r.Status != 200 {
		t.Errorf("removing one of two superadmins: %d %s", r.Status, r.Body)
	}
	alice = e.login("alice")
	if r := e.bearer("DELETE", rolePath(aliceID, roleSuperadmin), alice.AccessToken, nil); r.Status != 409 {
		t.Errorf("removing the last superadmin (herself): %d %s", r.Status, r.Body)
	}

	// A locked superadmin does not count: with root superadmin again but
	// locked, alice is still the last one who can sign in.
	if r := e.bearer("PUT", rolePath(rootID, roleSuperadmin), alice.AccessToken, nil); r.Status != 200 {
		t.Fatalf("grant superadmin back to root: %d %s", r.Status, r.Body)
	}
	if r := e.bearer("POST", fmt.Sprintf("/admin/users/%d/lock", rootID), alice.AccessToken, nil); r.Status != 204 {
		t.Fatalf("lock root: %d %s", r.Status, r.Body)
	}
	if r := e.bearer("DELETE", rolePath(aliceID, roleSuperadmin), alice.AccessToken, nil); r.Status != 409 {
		t.Errorf("removing the last unlocked superadmin (herself): %d %s", r.Status, r.Body)
	}
	// Removing the locked one's role is fine: alice remains.
	if r := e.bearer("DELETE", rolePath(rootID, roleSuperadmin), alice.AccessToken, nil); r.Status != 200 {
		t.Errorf("removing a locked superadmin while alice remains: %d %s", r.Status, r.Body)
	}
}

func TestLockAndRequireReset(t *testing.T) {
	e := newEnv(t)
	mb := e.mailbox()
	_, admin := e.userWithRoles("admin", roleViewer, roleAdmin)
	bobID, bob := e.userWithRoles("bob", roleViewer)
	_, root := e.userWithRoles("root", roleViewer, roleSuperadmin)
	at := admin.AccessToken
	login := func(pw string) *resp {
		return e.do("POST", "/auth/login", map[string]string{"identifier": "bob", "password": pw})
	}
	checkLogin := func(what string, wantStatus int, wantType string) {
		t.Helper()
		r := login(goodPassword)
		if r.Status != wantStatus || wantType != "" && r.problemType(t) != wantType {
			t.Errorf("%s: login %d %s, want %d %s", what, r.Status, r.Body, wantStatus, wantType)
		}
		// A wrong password never tells the account's state.
		if r := login("wrong password entirely"); r.Status != 401 || r.problemType(t) != probCredentials {
			t.Errorf("%s: wrong password %d %s, want 401 invalid-credentials", what, r.Status, r.Body)
		}
	}

	if r := e.bearer("POST", fmt.Sprintf("/admin/users/%d/lock", bobID), at, nil); r.Status != 204 {
		t.Fatalf("lock: %d %s", r.Status, r.Body)
	}
	if r := e.bearer("GET", "/auth/me", bob.AccessToken, nil); r.Status != 401 {
		t.Errorf("bob's session after the lock: %d, want 401", r.Status)
	}
	checkLogin("locked", 403, probAccountLocked)
	if u := e.bearer("GET", fmt.Sprintf("/admin/users/%d", bobID), at, nil).json(t); u["locked"] != true {
		t.Errorf("admin view of a locked account: %v", u)
	}
	if r := e.bearer("POST", fmt.Sprintf("/admin/users/%d/unlock", bobID), at, nil); r.Status != 204 {
		t.Fatalf("unlock: %d %s", r.Status, r.Body)
	}
	checkLogin("unlocked", 200, "")

	// An admin may not lock a superadmin, nor herself.
	rootID := e.uid("root")
	if r := e.bearer("POST", fmt.Sprintf("/admin/users/%d/lock", rootID), at, nil); r.Status != 403 {
		t.Errorf("admin locks superadmin: %d %s", r.Status, r.Body)
	}
	if r := e.bearer("POST", fmt.Sprintf("/admin/users/%d/lock", e.uid("admin")), at, nil); r.Status != 409 {
		t.Errorf("admin locks herself: %d %s", r.Status, r.Body)
	}
	if r := e.bearer("GET", "/auth/me", root.AccessToken, nil); r.Status != 200 {
		t.Errorf("root after the refused lock: %d", r.Status)
	}

	bob = e.login("bob")
	if r := e.bearer("POST", fmt.Sprintf("/admin/users/%d/require-password-reset", bobID), at, nil); r.Status != 204 {
		t.Fatalf("require reset: %d %s", r.Status, r.Body)
	}
	if r := e.bearer("GET", "/auth/me", bob.AccessToken, nil); r.Status != 401 {
		t.Errorf("bob's session after require-reset: %d, want 401", r.Status)
	}
	checkLogin("reset required", 403, probPasswordResetRequired)
	tok := mb.token(t, purposeReset, "bob@example.com")
	newPW := "a brand new passphrase, long and odd"
	if r := e.do("POST", "/auth/password/reset", map[string]string{"token": tok, "new_password": newPW}); r.Status/100 != 2 {
		t.Fatalf("reset: %d %s", r.Status, r.Body)
	}
	if r := login(newPW); r.Status != 200 {
		t.Errorf("login after the reset: %d %s", r.Status, r.Body)
	}
}

func TestAdminUsersAndSessions(t *testing.T) {
	e := newEnv(t)
	_, admin := e.userWithRoles("admin", roleViewer, roleAdmin)
	bobID, bob := e.userWithRoles("bob", roleViewer)
	e.userWithRoles("carol", roleViewer, roleEditor)
	at := admin.AccessToken
	r := e.bearer("GET", "/admin/users?q=EXAMPLE&limit=1&offset=1", at, nil)
	var list struct {
		Users []adminUser
		Total int
	}
	if err := jsonUnmarshal(r.Body, &list); err != nil || r.Status != 200 {
		t.Fatalf("list: %d %s", r.Status, r.Body)
	}
	if list.Total != 3 || len(list.Users) != 1 || list.Users[0].Username != "bob" {
		t.Errorf("q=EXAMPLE limit=1 offset=1: %+v", list)
	}
	if r := e.bearer("GET", "/admin/users?q=car", at, nil); r.json(t)["total"] != float64(1) || !strings.Contains(string(r.Body), `"carol"`) {
		t.Errorf("q=car: %s", r.Body)
	}
	if r := e.bearer("GET", "/admin/users?q=%25", at, nil); r.json(t)["total"] != float64(0) {
		t.Errorf("q=%% matched as a wildcard: %s", r.Body)
	}
	if r := e.bearer("GET", "/admin/users?limit=0", at, nil); r.Status != 400 {
		t.Errorf("limit=0: %d", r.Status)
	}
	u := e.bearer("GET", fmt.Sprintf("/admin/users/%d", bobID), at, nil).json(t)
	sessions, _ := u["sessions"].([]any)
	if len(sessions) != 1 || u["username"] != "bob" || u["mfa"] != false {
		t.Fatalf("bob: %v", u)
	}
	sid := sessions[0].(map[string]any)["id"].(string)
	if r := e.bearer("DELETE", "/admin/sessions/"+sid, at, nil); r.Status != 204 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	if r := e.bearer("GET", "/auth/me", bob.AccessToken, nil); r.Status != 401 {
		t.Errorf("bob after revoke: %d", r.Status)
	}
	if r := e.bearer("DELETE", "/admin/sessions/"+sid, at, nil); r.Status != 404 {
		t.Errorf("revoke again: %d", r.Status)
	}
	if r := e.bearer("GET", "/admin/users/x1", at, nil); r.Status != 404 {
		t.Errorf("bad id: %d", r.Status)
	}
}

func TestNotes(t *testing.T) {
	e := newEnv(t)
	edID, ed := e.userWithRoles("eddie", roleViewer, roleEditor)
	_, vi := e.userWithRoles("vivian", roleViewer)
	for _, body := range []string{"", strings.Repeat("é", maxNote+1)} {
		if r := e.bearer("POST", "/api/notes", ed.AccessToken, map[string]string{"note": body}); r.Status != 400 {
			t.Errorf("note of %d characters: %d", len([]rune(body)), r.Status)
		}
	}
	if r := e.bearer("POST", "/api/notes", ed.AccessToken, map[string]string{"note": strings.Repeat("é", maxNote)}); r.Status != 201 {
		t.Errorf("note of %d characters: %d", maxNote, r.Status)
	}
	r := e.bearer("POST", "/api/notes", ed.AccessToken, map[string]string{"note": "second"})
	n := r.json(t)
	if r.Status != 201 || n["owner"] != float64(edID) || n["owner_name"] != "eddie" || n["note"] != "second" {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	id := int64(n["id"].(float64))
	list := e.bearer("GET", "/api/notes", vi.AccessToken, nil).json(t)["notes"].([]any)
	if len(list) != 2 || list[0].(map[string]any)["note"] != "second" {
		t.Errorf("list, newest first: %v", list)
	}
	if r := e.bearer("PATCH", fmt.Sprintf("/api/notes/%d", id), vi.AccessToken, map[string]string{"note": "x"}); r.Status != 403 ||
		!strings.Contains(string(r.Body), "needs notes:write (or owning the note)") {
		t.Errorf("viewer edits another's note: %d %s", r.Status, r.Body)
	}
	if r := e.bearer("PATCH", fmt.Sprintf("/api/notes/%d", id), ed.AccessToken, map[string]string{"note": "third"}); r.json(t)["note"] != "third" {
		t.Errorf("owner edits: %d %s", r.Status, r.Body)
	}
	for _, p := range []string{"/api/notes/9999", "/api/notes/abc"} {
		if r := e.bearer("GET", p, vi.AccessToken, nil); r.Status != 404 {
			t.Errorf("GET %s: %d", p, r.Status)
		}
		if r := e.bearer("DELETE", p, ed.AccessToken, nil); r.Status != 404 {
			t.Errorf("DELETE %s: %d", p, r.Status)
		}
	}
	if r := e.bearer("DELETE", fmt.Sprintf("/api/notes/%d", id), ed.AccessToken, nil); r.Status != 204 {
		t.Errorf("delete: %d", r.Status)
	}
	if r := e.bearer("GET", fmt.Sprintf("/api/notes/%d", id), vi.AccessToken, nil); r.Status != 404 {
		t.Errorf("deleted note: %d", r.Status)
	}
}

// TestOIDCRolesScope: the roles claim is in the ID token and at userinfo
// when the roles scope is asked for, and not otherwise.
func TestOIDCRolesScope(t *testing.T) {
	e := newOPEnv(t, func(c *Config) {
		c.BootstrapAdmin = "alice"
		c.Clients = []ClientConfig{{ID: "rolesapp", RedirectURIs: []string{"http://127.0.0.1/cb"}, AccountAPI: true,
			Scopes: []string{"openid", "profile", scopeRoles}}}
	})
	e.register("alice", "alice@example.com")
	if r := e.do("GET", "/.well-known/openid-configuration", nil); !strings.Contains(string(r.Body), `"roles"`) {
		t.Errorf("scopes_supported lacks roles: %s", r.Body)
	}
	for _, scopes := range [][]string{{"openid", scopeRoles}, {"openid", "profile"}} {
		cfg := e.oauthConfig("rolesapp", "", "http://127.0.0.1:41234/cb")
		cfg.Scopes = scopes
		a := newAuthorization(cfg)
		q := e.codeFlow(t, a, "alice", nil)
		tok, err := cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(a.verifier))
		if err != nil {
			t.Fatal(err)
		}
		id := e.verifyID(t, tok, "rolesapp", a.nonce)
		var idc struct {
			Roles []string `json:"roles"`
		}
		id.Claims(&idc)
		want := []string{roleViewer, roleSuperadmin}
		if !slices.Contains(scopes, scopeRoles) {
			want = nil
		}
		wantRoles(t, fmt.Sprint(scopes, " ID token"), idc.Roles, want)
		req, _ := http.NewRequest("GET", e.srv.cfg.Issuer+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var ui struct {
			Roles []string `json:"roles"`
		}
		jsonDecode(res, &ui)
		wantRoles(t, fmt.Sprint(scopes, " userinfo"), ui.Roles, want)
		// First-party access tokens carry roles for the account API.
		wantRoles(t, "access token", rolesIn(claims(t, tok.AccessToken)["roles"]), []string{roleViewer, roleSuperadmin})
	}
}

// TestOIDCLoginRefusals: the provider's login page refuses a locked
// account, and one that must reset its password, after the password only.
func TestOIDCLoginRefusals(t *testing.T) {
	e := newOPEnv(t)
	e.register("alice", "alice@example.com")
	for _, c := range []struct{ column, want string }{{"locked", "locked"}, {"must_reset", "new password"}} {
		if _, err := e.srv.st.db.Exec("UPDATE users SET locked = 0, must_reset = 0"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.srv.st.db.Exec("UPDATE users SET " + c.column + " = 1"); err != nil {
			t.Fatal(err)
		}
		a := newAuthorization(e.cliConfig("127.0.0.1:41235"))
		b := e.newBrowser()
		p := submitLogin(t, b, b.Get(a.url()), "alice")
		if p.Redirect != nil || !strings.Contains(string(p.Body), c.want) {
			t.Errorf("%s: login page %d %s: %s", c.column, p.Status, p.URL, p.Body)
		}
		login := b.Get(a.url())
		wrong := b.Submit(login, map[string]string{"username": "alice", "password": "not the password at all"})
		if strings.Contains(string(wrong.Body), c.want) {
			t.Errorf("%s: a wrong password tells the account's state: %s", c.column, wrong.Body)
		}
	}
}

// TestAdminChangesAudited: each admin change records its event, naming
// the admin as actor, in the change's transaction.
func TestAdminChangesAudited(t *testing.T) {
	e := newEnv(t)
	rootID, root := e.userWithRoles("root", roleViewer, roleSuperadmin)
	bobID, _ := e.userWithRoles("bobby", roleViewer)
	var sid, sid2 string
	if err := e.srv.st.db.QueryRow("SELECT id FROM sessions WHERE user_id = ?", bobID).Scan(&sid); err != nil {
		t.Fatal(err)
	}
	at := root.AccessToken
	for _, c := range []struct{ method, path string }{
		{"DELETE", "/admin/sessions/" + sid},
		{"PUT", fmt.Sprintf("/admin/users/%d/roles/editor", bobID)},
		{"DELETE", fmt.Sprintf("/admin/users/%d/roles/editor", bobID)},
		{"LOGIN", ""},
		{"POST", fmt.Sprintf("/admin/users/%d/lock", bobID)},
		{"POST", fmt.Sprintf("/admin/users/%d/unlock", bobID)},
	} {
		if c.method == "LOGIN" {
			e.login("bobby")
			if err := e.srv.st.db.QueryRow("SELECT id FROM sessions WHERE user_id = ? AND revoked_at IS NULL", bobID).Scan(&sid2); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if r := e.bearer(c.method, c.path, at, nil); r.Status/100 != 2 {
			t.Fatalf("%s %s: %d %s", c.method, c.path, r.Status, r.Body)
		}
	}
	rows, err := e.srv.st.db.Query(`SELECT type, session_id, detail FROM audit_events
		WHERE user_id = ? AND actor_id = ? ORDER BY id`, bobID, rootID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var typ, s, detail string
		if err := rows.Scan(&typ, &s, &detail); err != nil {
			t.Fatal(err)
		}
		got = append(got, typ+" "+s+" "+detail)
	}
	want := []string{
		evSessionRevoked + " " + sid + " {}",
		evRoleChanged + `  {"change":"granted","role":"editor"}`,
		evRoleChanged + `  {"change":"revoked","role":"editor"}`,
		evSessionRevoked + " " + sid2 + ` {"reason":"locked"}`,
		evAccountLocked + "  {}",
		evAccountUnlocked + "  {}",
	}
	if !slices.Equal(got, want) {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestEndedByAdminSaysWhy: a refresh of a session an admin's change ended
// says which change, and what to do.
func TestEndedByAdminSaysWhy(t *testing.T) {
	for _, tc := range []struct{ name, method, path, want string }{
		{"lock", "POST", "/admin/users/%d/lock", "locked the account"},
		{"role removal", "DELETE", "/admin/users/%d/roles/editor", "removed one of the account's roles"},
		{"reset required", "POST", "/admin/users/%d/require-password-reset", "latch password forgot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			_, root := e.userWithRoles("root", roleViewer, roleSuperadmin)
			uid, p := e.userWithRoles("alice", roleViewer, roleEditor)
			if r := e.bearer(tc.method, fmt.Sprintf(tc.path, uid), root.AccessToken, nil); r.Status/100 != 2 {
				t.Fatalf("%s: %d %s", tc.name, r.Status, r.Body)
			}
			r := e.refresh(p.RefreshToken)
			if d, _ := r.json(t)["detail"].(string); r.Status != 401 || !strings.Contains(d, tc.want) {
				t.Errorf("refresh after %s: %d %q, want 401 saying %q", tc.name, r.Status, d, tc.want)
			}
		})
	}
}
