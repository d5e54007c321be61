package server

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestTextRefusedAlikeOnBothDatabases: a NUL character or invalid UTF-8,
// which PostgreSQL refuses as text and SQLite stores, is refused at every
// way in (JSON body, query, path, page form, a POSTed authorization
// request) with a 400 on both databases, never a 500 on one of them.
// Passwords are exempt: only their hashes are stored.
func TestTextRefusedAlikeOnBothDatabases(t *testing.T) {
	e := newOPEnv(t)
	e.register("alice", "alice@example.com")
	_, root := e.userWithRoles("root", roleViewer, roleSuperadmin)
	const cookie = "text-test-browser-0123456789abcdefghijklmnop"
	page := func(path string, form url.Values) *resp {
		t.Helper()
		req, _ := http.NewRequest("POST", e.http.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: browserCookie, Value: cookie})
		c := *e.http.Client()
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		return &resp{Status: res.StatusCode, Header: res.Header, Body: raw}
	}
	authorize := url.Values{"client_id": {CLIClientID}, "redirect_uri": {"http://127.0.0.1:5555/callback"},
		"response_type": {"code"}, "scope": {"openid"}, "code_challenge_method": {"S256"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}}
	with := func(v url.Values, k, val string) url.Values {
		c := url.Values{}
		for kk, vv := range v {
			c[kk] = vv
		}
		c.Set(k, val)
		return c
	}
	for _, tc := range []struct {
		name string
		send func() *resp
		want int
		in   string // the answer holds this
	}{
		{"JSON body", func() *resp {
			return e.do("POST", "/auth/login", map[string]string{"identifier": "ali\x00ce", "password": goodPassword})
		}, 400, probMalformed},
		{"JSON body, nested in a note", func() *resp {
			return e.bearer("POST", "/api/notes", root.AccessToken, map[string]string{"note": "a\x00b"})
		}, 400, probMalformed},
		{"password exempt", func() *resp {
			return e.do("POST", "/auth/login", map[string]string{"identifier": "alice", "password": "wrong\x00password"})
		}, 401, probCredentials},
		{"query", func() *resp { return e.bearer("GET", "/admin/users?q=%00", root.AccessToken, nil) }, 400, probMalformed},
		{"query, not UTF-8", func() *resp { return e.bearer("GET", "/admin/events?user=%FF", root.AccessToken, nil) }, 400, probMalformed},
		{"path", func() *resp { return e.bearer("DELETE", "/auth/sessions/a%00b", root.AccessToken, nil) }, 400, probMalformed},
		{"authorization request in the query", func() *resp {
			return e.do("GET", "/authorize?"+with(authorize, "state", "s\x00t").Encode(), nil)
		}, 400, probMalformed},
		{"page form", func() *resp {
			return page("/login", url.Values{"csrf": {e.srv.csrfToken(cookie)}, "request": {"x"},
				"username": {"ali\x00ce"}, "password": {goodPassword}})
		}, 400, "NUL characters"},
		{"page form, not UTF-8", func() *resp {
			return page("/device", url.Values{"csrf": {e.srv.csrfToken(cookie)}, "user_code": {"BCDF-\xff"}})
		}, 400, "NUL characters"},
		{"authorization request POSTed", func() *resp { return page("/authorize", with(authorize, "state", "s\x00t")) },
			http.StatusFound, "error=invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.send()
			if r.Status != tc.want || !strings.Contains(string(r.Body)+r.Header.Get("Location"), tc.in) {
				t.Fatalf("%d %s %s, want %d with %q", r.Status, r.Header.Get("Location"), r.Body, tc.want, tc.in)
			}
		})
	}
}
