package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
)

// rule is how a route is guarded.
type rule struct {
	kind string // "public", "authed" (any valid token), "perm" (perm needed), "owner" (the note's owner, or perm)
	perm string
}

// routeRules is the permission table of every route. A route the server
// serves without a rule here fails TestPermissionMatrix: deciding who may
// call it is part of adding it.
var routeRules = map[string]rule{
	"GET /auth/config":                              {kind: "public"},
	"POST /auth/register":                           {kind: "public"},
	"POST /auth/login":                              {kind: "public"},
	"POST /auth/refresh":                            {kind: "public"},
	"POST /auth/logout":                             {kind: "public"},
	"GET /auth/me":                                  {kind: "authed"},
	"GET /auth/protected":                           {kind: "authed"},
	"GET /auth/sessions":                            {kind: "authed"},
	"DELETE /auth/sessions/{id}":                    {kind: "authed"},
	"POST /auth/password":                           {kind: "authed"},
	"POST /auth/mfa/setup":                          {kind: "authed"},
	"POST /auth/mfa/enable":                         {kind: "authed"},
	"POST /auth/mfa/verify":                         {kind: "public"},
	"POST /auth/mfa/disable":                        {kind: "authed"},
	"POST /auth/mfa/backup-codes":                   {kind: "authed"},
	"POST /auth/email/verify":                       {kind: "public"},
	"POST /auth/email/resend":                       {kind: "public"},
	"POST /auth/email/change":                       {kind: "authed"},
	"POST /auth/password/forgot":                    {kind: "public"},
	"POST /auth/password/reset":                     {kind: "public"},
	"GET /dev/mail":                                 {kind: "public"},
	"GET /auth/events":                              {kind: "authed"},
	"GET /api/notes":                                {kind: "perm", perm: permNotesRead},
	"POST /api/notes":                               {kind: "perm", perm: permNotesWrite},
	"GET /api/notes/{id}":                           {kind: "perm", perm: permNotesRead},
	"PATCH /api/notes/{id}":                         {kind: "owner", perm: permNotesWrite},
	"DELETE /api/notes/{id}":                        {kind: "owner", perm: permNotesDelete},
	"GET /admin/users":                              {kind: "perm", perm: permUsersRead},
	"GET /admin/users/{id}":                         {kind: "perm", perm: permUsersRead},
	"POST /admin/users/{id}/lock":                   {kind: "perm", perm: permUsersWrite},
	"POST /admin/users/{id}/unlock":                 {kind: "perm", perm: permUsersWrite},
	"POST /admin/users/{id}/require-password-reset": {kind: "perm", perm: permUsersWrite},
	"PUT /admin/users/{id}/roles/{role}":            {kind: "perm", perm: permRolesAssign},
	"DELETE /admin/users/{id}/roles/{role}":         {kind: "perm", perm: permRolesAssign},
	"DELETE /admin/sessions/{id}":                   {kind: "perm", perm: permSessionsRevoke},
	"GET /admin/events":                             {kind: "perm", perm: permAuditRead},
	"GET /auth/jwks.json":                           {kind: "public"},
	"GET /.well-known/jwks.json":                    {kind: "public"},
	"GET /healthz":                                  {kind: "public"},
	"GET /metrics":                                  {kind: "public"},
	"GET /openapi.yaml":                             {kind: "public"},
}

// userWithRoles registers name with exactly roles and returns its id and
// the token pair of a fresh session (roles are read when tokens are issued).
func (e *env) userWithRoles(name string, roles ...string) (int64, tokenPair) {
	e.t.Helper()
	e.register(name, name+"@example.com")
	uid := e.uid(name)
	ctx := context.Background()
	if _, err := e.srv.st.db.ExecContext(ctx, "DELETE FROM user_roles WHERE user_id = ?", uid); err != nil {
		e.t.Fatal(err)
	}
	for _, r := range roles {
		if _, err := e.srv.st.db.ExecContext(ctx, "INSERT INTO user_roles (user_id, role, granted_at) VALUES (?, ?, 0)", uid, r); err != nil {
			e.t.Fatal(err)
		}
	}
	return uid, e.login(name)
}

func (e *env) uid(name string) int64 {
	e.t.Helper()
	var uid int64
	if err := e.srv.st.db.QueryRow("SELECT id FROM users WHERE username = ?", name).Scan(&uid); err != nil {
		e.t.Fatalf("user %s: %v", name, err)
	}
	return uid
}

// addNote stores a note of owner directly.
func (e *env) addNote(owner int64, text string) int64 {
	e.t.Helper()
	var id int64
	err := e.srv.st.db.QueryRow("INSERT INTO notes (owner, note, created_at, updated_at) VALUES (?, ?, 1, 1) RETURNING id",
		owner, text).Scan(&id)
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// tablePerms reads the permission table from the database.
func tablePerms(t *testing.T, e *env) map[string]map[string]bool {
	t.Helper()
	rows, err := e.srv.st.db.Query("SELECT role, permission FROM role_permissions")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[string]map[string]bool{}
	for rows.Next() {
		var role, perm string
		if err := rows.Scan(&role, &perm); err != nil {
			t.Fatal(err)
		}
		if m[role] == nil {
			m[role] = map[string]bool{}
		}
		m[role][perm] = true
	}
	return m
}

func TestPermissionTableMatchesDatabase(t *testing.T) {
	e := newEnv(t)
	db := tablePerms(t, e)
	for _, role := range roleOrder {
		var got []string
		for p := range db[role] {
			got = append(got, p)
		}
		sort.Strings(got)
		want := slices.Sorted(slices.Values(rolePerms[role]))
		if !slices.Equal(got, want) {
			t.Errorf("role %s: role_permissions %v, rolePerms %v", role, got, want)
		}
	}
	// Each role holds every permission of the roles before it.
	for i := 1; i < len(roleOrder); i++ {
		for p := range db[roleOrder[i-1]] {
			if !db[roleOrder[i]][p] {
				t.Errorf("%s lacks %s, which %s has", roleOrder[i], p, roleOrder[i-1])
			}
		}
	}
}

// TestPermissionMatrix calls every route as every role (and without a
// token), expecting what the permission table says: 2xx with the
// permission, 403 naming it without, 401 without a token.
func TestPermissionMatrix(t *testing.T) {
	e := newEnv(t)
	perms := tablePerms(t, e)
	actors := map[string]tokenPair{}
	ids := map[string]int64{}
	for _, role := range roleOrder {
		ids[role], actors[role] = e.userWithRoles("as-"+role, role)
	}
	n := 0
	// fresh makes the objects a request acts on, new for each request so
	// that one request's change (a lock, a deleted note) spoils no other.
	fresh := func(path string, owner int64) (string, any) {
		n++
		target := fmt.Sprintf("target%d", n)
		tid, tp := e.userWithRoles(target, roleViewer, roleEditor)
		var sid string
		e.srv.st.db.QueryRow("SELECT id FROM sessions WHERE user_id = ?", tid).Scan(&sid)
		_ = tp
		note := e.addNote(owner, "a note")
		p := strings.NewReplacer("{role}", roleEditor).Replace(path)
		switch {
		case strings.HasPrefix(p, "/api/notes/"):
			p = strings.Replace(p, "{id}", fmt.Sprint(note), 1)
		case strings.HasPrefix(p, "/admin/sessions/"):
			p = strings.Replace(p, "{id}", sid, 1)
		default:
			p = strings.Replace(p, "{id}", fmt.Sprint(tid), 1)
		}
		return p, map[string]string{"note": "changed"}
	}
	other, _ := e.userWithRoles("author", roleEditor)
	for _, rt := range e.srv.routes() {
		key := rt.method + " " + rt.path
		rl, ok := routeRules[key]
		if !ok {
			t.Errorf("%s has no rule in the permission table (routeRules): say who may call it", key)
			continue
		}
		if rl.kind == "public" {
			continue
		}
		t.Run(strings.ReplaceAll(key, "/", "_"), func(t *testing.T) {
			path, body := fresh(rt.path, other)
			if r := e.do(rt.method, path, body); r.Status != http.StatusUnauthorized {
				t.Errorf("no token: %d, want 401", r.Status)
			}
			for _, role := range roleOrder {
				owners := []int64{other}
				if rl.kind == "owner" {
					owners = append(owners, ids[role])
				}
				for _, owner := range owners {
					path, body := fresh(rt.path, owner)
					r := e.bearer(rt.method, path, actors[role].AccessToken, body)
					allowed := rl.kind == "authed" || perms[role][rl.perm] || rl.kind == "owner" && owner == ids[role]
					what := fmt.Sprintf("%s (own object: %v) %s %s", role, owner == ids[role], rt.method, path)
					switch {
					case rl.kind == "authed":
						if r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden {
							t.Errorf("%s: %d, want neither 401 nor 403: %s", what, r.Status, short(r.Body))
						}
					case allowed:
						if r.Status/100 != 2 {
							t.Errorf("%s: %d, want 2xx: %s", what, r.Status, short(r.Body))
						}
					default:
						if r.Status != http.StatusForbidden || r.problemType(t) != probForbidden {
							t.Errorf("%s: %d, want 403 forbidden: %s", what, r.Status, short(r.Body))
							continue
						}
						if d, _ := r.json(t)["detail"].(string); !strings.Contains(d, rl.perm) {
							t.Errorf("%s: detail %q does not name %s", what, d, rl.perm)
						} else if grant := leastRoleWith(rl.perm); !strings.Contains(d, "the "+grant+" role has it") {
							t.Errorf("%s: detail %q does not say that the %s role has %s", what, d, grant, rl.perm)
						}
					}
				}
			}
		})
	}
	for key := range routeRules {
		if !slices.ContainsFunc(e.srv.routes(), func(rt route) bool { return rt.method+" "+rt.path == key }) {
			t.Errorf("routeRules has %s, which the server does not serve", key)
		}
	}
}

// leastRoleWith is the least role that has perm (rolePerms, which
// TestPermissionTableMatchesDatabase holds equal to the database's).
func leastRoleWith(perm string) string {
	for _, r := range roleOrder {
		if slices.Contains(rolePerms[r], perm) {
			return r
		}
	}
	return "(none)"
}

// claims decodes a JWT's payload without checking it (the server checked).
func claims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func rolesIn(v any) []string {
	list, _ := v.([]any)
	out := []string{}
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func jsonDecode(res *http.Response, v any) error {
	defer res.Body.Close()
	return json.NewDecoder(res.Body).Decode(v)
}

func TestRBACProblemsDocumented(t *testing.T) {
	for _, typ := range []string{probForbidden, probAccountLocked, probPasswordResetRequired} {
		if !strings.Contains(string(openapiDoc), "`"+typ+"`") {
			t.Errorf("problem type %s is not documented in openapi.yaml", typ)
		}
	}
}

// short cuts a response body for a failure message.
func short(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}
