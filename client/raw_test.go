package client

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestDo(t *testing.T) {
	tests := []struct {
		name       string
		stub       *stub
		method     string
		path       string
		body       []byte
		token      string
		wantStatus int
		wantBody   string
		wantErr    error // sentinel; nil means success
		wantReq    seen
	}{
		{
			name: "GET with token", stub: jsonStub(200, `{"logged_in_as":"ada"}`),
			method: "GET", path: "/auth/protected", token: testAccess,
			wantStatus: 200, wantBody: `{"logged_in_as":"ada"}`,
			wantReq: seen{Method: "GET", Path: "/auth/protected", Auth: "Bearer " + testAccess},
		},
		{
			name: "POST with body, no token", stub: jsonStub(201, `{"user_id":7}`),
			method: "POST", path: "/auth/register", body: []byte(`{"username":"ada"}`),
			wantStatus: 201, wantBody: `{"user_id":7}`,
			wantReq: seen{Method: "POST", Path: "/auth/register", ContentType: "application/json",
				Body: map[string]any{"username": "ada"}},
		},
		{
			name: "query string kept", stub: jsonStub(200, `{}`),
			method: "GET", path: "/auth/sessions?limit=5", token: testAccess,
			wantStatus: 200, wantBody: `{}`,
			wantReq: seen{Method: "GET", Path: "/auth/sessions?limit=5", Auth: "Bearer " + testAccess},
		},
		{
			name: "204", stub: &stub{status: 204},
			method: "DELETE", path: "/auth/sessions/s1", token: testAccess,
			wantStatus: 204,
			wantReq:    seen{Method: "DELETE", Path: "/auth/sessions/s1", Auth: "Bearer " + testAccess},
		},
		{
			name: "problem comes back as APIError with the body",
			stub: problemStub(401, `{"type":"urn:latch:problem:unauthorized","title":"Unauthorized","status":401}`,
				map[string]string{"WWW-Authenticate": `Bearer error="invalid_token"`}),
			method: "GET", path: "/auth/me", token: testAccess,
			wantStatus: 401, wantBody: `{"type":"urn:latch:problem:unauthorized","title":"Unauthorized","status":401}`,
			wantErr: ErrUnauthorized,
			wantReq: seen{Method: "GET", Path: "/auth/me", Auth: "Bearer " + testAccess},
		},
		{
			name:   "HTML 200 is flagged but returned",
			stub:   &stub{status: 200, ctype: "text/html", body: "<html>hi</html>"},
			method: "GET", path: "/", wantStatus: 200, wantBody: "<html>hi</html>",
			wantErr: ErrBadResponse,
			wantReq: seen{Method: "GET", Path: "/"},
		},
		{
			name:   "too large",
			stub:   jsonStub(200, `"`+strings.Repeat("x", 2<<20)+`"`),
			method: "GET", path: "/big",
			wantErr: ErrBadResponse,
			wantReq: seen{Method: "GET", Path: "/big"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newServer(t, tt.stub, Options{})
			status, header, body, err := c.Do(t.Context(), tt.method, tt.path, tt.body, tt.token)
			if tt.wantErr == nil && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			assertNoSecrets(t, err)
			if status != tt.wantStatus || string(body) != tt.wantBody {
				t.Errorf("got %d %q, want %d %q", status, body, tt.wantStatus, tt.wantBody)
			}
			if status != 0 && header == nil {
				t.Error("header is nil")
			}
			reqs := tt.stub.requests()
			if len(reqs) != 1 {
				t.Fatalf("server saw %d requests, want 1", len(reqs))
			}
			tt.wantReq.UserAgent = "latch/dev"
			if !reflect.DeepEqual(reqs[0], tt.wantReq) {
				t.Errorf("request\n got  %+v\n want %+v", reqs[0], tt.wantReq)
			}
		})
	}
}

// TestDoRefusesToLeaveTheServer: nothing given as a path may point the
// request, and its token, at another host.
func TestDoRefusesToLeaveTheServer(t *testing.T) {
	s := jsonStub(200, `{}`)
	c, _ := newServer(t, s, Options{})
	for _, tt := range []struct{ method, path string }{
		{"GET", "https://evil.example/auth/me"},
		{"GET", "http://127.0.0.1:1/auth/me"},
		{"GET", "//evil.example/auth/me"},
		{"GET", "auth/me"},
		{"GET", ""},
		{"GET", "/\\evil.example"},
		{"GET", "/auth/me\r\nX-Evil: 1"},
		{"GET", "@evil.example/x"},
		{"", "/auth/me"},
		{"GET /x", "/auth/me"},
		{"GET\n", "/auth/me"},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			status, _, _, err := c.Do(t.Context(), tt.method, tt.path, nil, testAccess)
			if err == nil || status != 0 {
				t.Fatalf("Do(%q, %q) = %d, %v; want refusal", tt.method, tt.path, status, err)
			}
			assertNoSecrets(t, err)
		})
	}
	if n := len(s.requests()); n != 0 {
		t.Errorf("server saw %d requests, want 0", n)
	}
}

func TestDoMethods(t *testing.T) {
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		s := &stub{status: 204}
		c, _ := newServer(t, s, Options{})
		if _, _, _, err := c.Do(t.Context(), m, "/x", []byte(`{}`), ""); err != nil {
			t.Errorf("%s: %v", m, err)
		}
		if r := s.requests(); len(r) != 1 || r[0].Method != m {
			t.Errorf("%s: server saw %+v", m, r)
		}
	}
}
