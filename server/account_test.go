package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestRegister(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	cases := []struct {
		name       string
		body       any
		status     int
		wantType   string
		wantFields []string
	}{
		{"ok", map[string]string{"username": "alice.b-c_d", "email": "alice@example.com", "password": goodPassword}, 201, "", nil},
		{"missing all", map[string]string{}, 400, probValidation, []string{"username", "email", "password"}},
		{"username short", map[string]string{"username": "al", "email": "al@example.com", "password": goodPassword}, 400, probValidation, []string{"username"}},
		{"username long", map[string]string{"username": long(81), "email": "x@example.com", "password": goodPassword}, 400, probValidation, []string{"username"}},
		{"username 80 ok", map[string]string{"username": long(80), "email": "y@example.com", "password": goodPassword}, 201, "", nil},
		{"username chars", map[string]string{"username": "al ice", "email": "z@example.com", "password": goodPassword}, 400, probValidation, []string{"username"}},
		{"username unicode", map[string]string{"username": "ålice", "email": "z@example.com", "password": goodPassword}, 400, probValidation, []string{"username"}},
		{"email invalid", map[string]string{"username": "bob", "email": "bob@", "password": goodPassword}, 400, probValidation, []string{"email"}},
		{"email with name", map[string]string{"username": "bob", "email": "Bob <bob@example.com>", "password": goodPassword}, 400, probValidation, []string{"email"}},
		{"email no dot", map[string]string{"username": "bob", "email": "bob@localhost", "password": goodPassword}, 400, probValidation, []string{"email"}},
		{"email too long", map[string]string{"username": "bob", "email": long(110) + "@example.com", "password": goodPassword}, 400, probValidation, []string{"email"}},
		{"password short", map[string]string{"username": "bob", "email": "bob@example.com", "password": "Xq9!"}, 400, probValidation, []string{"password"}},
		{"password long", map[string]string{"username": "bob", "email": "bob@example.com", "password": long(129)}, 400, probValidation, []string{"password"}},
		{"password guessable", map[string]string{"username": "bob", "email": "bob@example.com", "password": "password1"}, 400, probValidation, []string{"password"}},
		{"password from email", map[string]string{"username": "bob", "email": "zanzibar.qu@example.com", "password": "zanzibar.qu2026"}, 400, probValidation, []string{"password"}},
		{"password has username", map[string]string{"username": "bobcat", "email": "bob@example.com", "password": "xX-BobCat-glacier-91"}, 400, probValidation, []string{"password"}},
		{"taken username, other case", map[string]string{"username": "ALICE.B-C_D", "email": "new@example.com", "password": goodPassword}, 409, probConflict, []string{"username"}},
		{"taken email, other case", map[string]string{"username": "carol", "email": "Alice@Example.com", "password": goodPassword}, 409, probConflict, []string{"email"}},
		{"not json", "username=bob", 400, probMalformed, nil},
		{"trailing data", `{"username":"bob"} {}`, 400, probMalformed, nil},
		{"wrong type", `{"username": 5}`, 400, probMalformed, nil},
	}
	e := newEnv(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", "/auth/register", tc.body)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			if tc.status == 201 {
				if id, _ := r.json(t)["user_id"].(float64); id < 1 {
					t.Fatalf("no user_id: %s", r.Body)
				}
				return
			}
			if got := r.problemType(t); got != tc.wantType {
				t.Fatalf("type %s, want %s", got, tc.wantType)
			}
			fields, _ := r.json(t)["errors"].(map[string]any)
			if len(fields) != len(tc.wantFields) {
				t.Fatalf("errors = %v, want fields %v", fields, tc.wantFields)
			}
			for _, f := range tc.wantFields {
				if msg, _ := fields[f].(string); msg == "" {
					t.Errorf("no message for %s: %v", f, fields)
				}
			}
		})
	}
}

func TestRegisterConcurrentSameName(t *testing.T) {
	e := newEnv(t)
	statuses := make(chan int, 8)
	for i := range 8 {
		go func() {
			r := e.do("POST", "/auth/register", map[string]string{
				"username": "dup", "email": strings.Repeat("d", i+1) + "@example.com", "password": goodPassword})
			statuses <- r.Status
		}()
	}
	created := 0
	for range 8 {
		switch s := <-statuses; s {
		case 201:
			created++
		case 409:
		default:
			t.Errorf("status %d", s)
		}
	}
	if created != 1 {
		t.Fatalf("%d accounts created for one username", created)
	}
}

func TestLogin(t *testing.T) {
	e := newEnv(t)
	e.register("alice", "alice@example.com")
	cases := []struct {
		name, identifier, password string
		status                     int
		wantType                   string
	}{
		{"username", "alice", goodPassword, 200, ""},
		{"email", "alice@example.com", goodPassword, 200, ""},
		{"email other case", "ALICE@EXAMPLE.COM", goodPassword, 200, ""},
		{"wrong password", "alice", goodPassword + "!", 401, probCredentials},
		{"unknown user", "mallory", goodPassword, 401, probCredentials},
		{"missing identifier", "", goodPassword, 400, probValidation},
		{"missing password", "alice", "", 400, probValidation},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", "/auth/login", map[string]string{"identifier": tc.identifier, "password": tc.password})
			if r.Status != tc.status {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			if tc.status == 200 {
				decodePair(t, r)
				return
			}
			if got := r.problemType(t); got != tc.wantType {
				t.Fatalf("type %s, want %s", got, tc.wantType)
			}
		})
	}
}

// TestLoginUnknownUserSpendsAHash: an unknown identifier is verified against
// a dummy hash, so that it costs what a wrong password costs (the timing
// itself is measured by BenchmarkLogin, not asserted here).
func TestLoginUnknownUserSpendsAHash(t *testing.T) {
	e := newEnv(t)
	e.register("alice", "alice@example.com")
	for _, id := range []string{"mallory", "alice"} {
		before := e.srv.hasher.verifies.Load()
		r := e.do("POST", "/auth/login", map[string]string{"identifier": id, "password": "wrong-password-1"})
		if r.Status != 401 {
			t.Fatalf("%s: %d", id, r.Status)
		}
		if got := e.srv.hasher.verifies.Load() - before; got != 1 {
			t.Fatalf("%s: %d hash verifications, want 1", id, got)
		}
	}
	// Both failures read the same.
	a := e.do("POST", "/auth/login", map[string]string{"identifier": "mallory", "password": "x"})
	b := e.do("POST", "/auth/login", map[string]string{"identifier": "alice", "password": "x"})
	if string(a.Body) != string(b.Body) {
		t.Fatalf("unknown user and wrong password differ:\n%s\n%s", a.Body, b.Body)
	}
}

func TestLoginMFARequiredShape(t *testing.T) {
	e := newEnv(t)
	e.register("alice", "alice@example.com")
	e.srv.st.db.Exec("UPDATE users SET mfa_enabled = 1")
	r := e.do("POST", "/auth/login", map[string]string{"identifier": "alice", "password": goodPassword})
	m := r.json(t)
	if r.Status != 200 || m["mfa_required"] != true || m["access_token"] != nil {
		t.Fatalf("MFA login: %d %s", r.Status, r.Body)
	}
	if tok, _ := m["mfa_token"].(string); !strings.HasPrefix(tok, "lmfa_") {
		t.Fatalf("mfa_token = %v", m["mfa_token"])
	}
	if methods, _ := m["mfa_methods"].([]any); len(methods) == 0 {
		t.Fatalf("mfa_methods = %v", m["mfa_methods"])
	}
}

func TestBcryptMigration(t *testing.T) {
	for _, prefix := range []string{"$2a$", "$2b$"} {
		t.Run(prefix, func(t *testing.T) {
			e := newEnv(t)
			h, err := bcrypt.GenerateFromPassword([]byte(goodPassword), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			legacy := prefix + string(h[4:])
			e.srv.st.db.Exec(`INSERT INTO users (username, email, password_hash, created_at, updated_at)
				VALUES ('legacy', 'legacy@example.com', ?, 0, 0)`, legacy)

			if r := e.do("POST", "/auth/login", map[string]string{"identifier": "legacy", "password": "nope-nope-nope"}); r.Status != 401 {
				t.Fatalf("wrong password on bcrypt hash: %d", r.Status)
			}
			e.login("legacy")
			var stored string
			e.srv.st.db.QueryRow("SELECT password_hash FROM users WHERE username = 'legacy'").Scan(&stored)
			if !strings.HasPrefix(stored, "$argon2id$v=19$") {
				t.Fatalf("bcrypt hash not upgraded: %s", stored[:10])
			}
			e.login("legacy") // and the new hash works
		})
	}
}

func TestArgonRehashOnParameterChange(t *testing.T) {
	old := newHasher(argonParams{Memory: 32, Time: 1, Threads: 1})
	cur := newHasher(testArgon)
	enc, err := old.Hash(context.Background(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	ok, rehash, err := cur.Verify(context.Background(), enc, "pw")
	if !ok || !rehash || err != nil {
		t.Fatalf("old params: ok=%v rehash=%v err=%v", ok, rehash, err)
	}
	enc, _ = cur.Hash(context.Background(), "pw")
	if ok, rehash, _ := cur.Verify(context.Background(), enc, "pw"); !ok || rehash {
		t.Fatalf("current params: ok=%v rehash=%v", ok, rehash)
	}
	if ok, _, _ := cur.Verify(context.Background(), enc, "pW"); ok {
		t.Fatal("wrong password accepted")
	}
	for _, bad := range []string{"", "plain", "$argon2id$v=19$m=0,t=1,p=1$AAAA$AAAA", "$argon2id$v=18$m=64,t=1,p=1$AAAAAAAA$" + strings.Repeat("A", 43)} {
		if _, _, err := cur.Verify(context.Background(), bad, "pw"); err == nil {
			t.Errorf("malformed hash %q accepted", bad)
		}
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("PHC string %q", enc)
	}
}

func TestMeAndProtected(t *testing.T) {
	e := newEnv(t)
	e.register("alice", "alice@example.com")
	p := e.login("alice")
	r := e.bearer("GET", "/auth/me", p.AccessToken, nil)
	m := r.json(t)
	if r.Status != 200 || m["username"] != "alice" || m["email"] != "alice@example.com" || m["mfa_enabled"] != false || m["id"] != float64(1) {
		t.Fatalf("me: %d %s", r.Status, r.Body)
	}
	if _, err := time.Parse(time.RFC3339, m["created_at"].(string)); err != nil {
		t.Fatalf("created_at: %v", err)
	}
	r = e.bearer("GET", "/auth/protected", p.AccessToken, nil)
	if r.Status != 200 || r.json(t)["logged_in_as"] != "alice" {
		t.Fatalf("protected: %d %s", r.Status, r.Body)
	}
}

func TestChangePassword(t *testing.T) {
	e := newEnv(t)
	e.register("alice", "alice@example.com")
	p := e.login("alice")
	other := e.login("alice")
	const next = "tangerine orbit quietly jumps"

	bad := []struct {
		body     map[string]string
		status   int
		wantType string
	}{
		{map[string]string{"current_password": "wrong", "new_password": next}, 401, probCredentials},
		{map[string]string{"current_password": goodPassword, "new_password": "short"}, 400, probValidation},
		{map[string]string{"current_password": goodPassword, "new_password": goodPassword}, 400, probValidation},
		{map[string]string{"current_password": goodPassword, "new_password": "alice-" + next}, 400, probValidation},
		{map[string]string{"new_password": next}, 400, probValidation},
	}
	for _, tc := range bad {
		r := e.bearer("POST", "/auth/password", p.AccessToken, tc.body)
		if r.Status != tc.status || r.problemType(t) != tc.wantType {
			t.Errorf("%v: %d %s", tc.body, r.Status, r.Body)
		}
		if r.Status == 401 && r.Header.Get("WWW-Authenticate") != "" {
			t.Error("a wrong current password is not a bad bearer token")
		}
	}
	r := e.bearer("POST", "/auth/password", p.AccessToken, map[string]string{"current_password": goodPassword, "new_password": next})
	if r.Status != http.StatusNoContent {
		t.Fatalf("change: %d %s", r.Status, r.Body)
	}
	if r := e.refresh(other.RefreshToken); r.Status != 401 {
		t.Fatalf("other session survived a password change: %d", r.Status)
	}
	decodePair(t, e.refresh(p.RefreshToken)) // the current one lives on
	if r := e.do("POST", "/auth/login", map[string]string{"identifier": "alice", "password": goodPassword}); r.Status != 401 {
		t.Fatalf("old password still works: %d", r.Status)
	}
	if r := e.do("POST", "/auth/login", map[string]string{"identifier": "alice", "password": next}); r.Status != 200 {
		t.Fatalf("new password: %d", r.Status)
	}
}
