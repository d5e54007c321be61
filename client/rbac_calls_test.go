package client

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The answers below follow the issue-16 HTTP contract byte for byte.
const (
	noteJSON       = `{"id":7,"owner":3,"owner_name":"alice","note":"buy milk","created_at":"2026-11-30T10:00:00Z","updated_at":"2026-11-30T10:05:00Z"}`
	userJSON       = `{"id":3,"username":"alice","email":"a@example.com","email_verified":true,"roles":["viewer","editor"],"mfa":false,"locked":true,"created_at":"2026-11-30T09:00:00Z"}`
	auditEventJSON = `{"id":11,"time":"2026-11-30T10:00:00Z","type":"login.failed","user_id":3,"username":"alice","actor_id":0,"actor_name":"","ip":"127.0.0.1","user_agent":"latch/dev","session_id":"","request_id":"rq1","detail":{"reason":"bad_credentials"}}`
)

func TestRBACCalls(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		status     int
		body       string
		call       func(c *Client) (any, error)
		wantMethod string
		wantPath   string
		wantBody   map[string]any
		want       any
	}{
		{"notes list", 200, `{"notes":[` + noteJSON + `]}`,
			func(c *Client) (any, error) { return c.Notes(ctx, testAccess) }, "GET", "/api/notes", nil,
			[]Note{{ID: "7", Owner: "3", OwnerName: "alice", Note: "buy milk",
				CreatedAt: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC), UpdatedAt: time.Date(2026, 11, 30, 10, 5, 0, 0, time.UTC)}}},
		{"note add", 201, noteJSON,
			func(c *Client) (any, error) { n, err := c.AddNote(ctx, testAccess, "buy milk"); return n.ID, err },
			"POST", "/api/notes", map[string]any{"note": "buy milk"}, "7"},
		{"note show", 200, noteJSON,
			func(c *Client) (any, error) { n, err := c.Note(ctx, testAccess, "7"); return n.OwnerName, err },
			"GET", "/api/notes/7", nil, "alice"},
		{"note edit", 200, noteJSON,
			func(c *Client) (any, error) { n, err := c.EditNote(ctx, testAccess, "7", "x"); return n.Note, err },
			"PATCH", "/api/notes/7", map[string]any{"note": "x"}, "buy milk"},
		{"note delete", 204, "",
			func(c *Client) (any, error) { return nil, c.DeleteNote(ctx, testAccess, "7") }, "DELETE", "/api/notes/7", nil, nil},
		{"users list", 200, `{"users":[` + userJSON + `],"total":41}`,
			func(c *Client) (any, error) {
				p, err := c.AdminUsers(ctx, testAccess, "al ice", 50, 10)
				return []any{p.Total, p.Users[0].ID, p.Users[0].Roles, p.Users[0].Locked}, err
			}, "GET", "/admin/users?limit=50&offset=10&q=al+ice", nil, []any{41, "3", []string{"viewer", "editor"}, true}},
		{"user show", 200, strings.TrimSuffix(userJSON, "}") +
			`,"sessions":[{"id":"s9","created_at":"2026-11-30T09:00:00Z","last_used_at":"2026-11-30T09:30:00Z","user_agent":"curl","client_id":"cli"}]}`,
			func(c *Client) (any, error) {
				u, err := c.AdminUser(ctx, testAccess, "3")
				return []string{u.Username, u.Sessions[0].ID, u.Sessions[0].ClientID}, err
			}, "GET", "/admin/users/3", nil, []string{"alice", "s9", "cli"}},
		{"lock", 204, "", func(c *Client) (any, error) { return nil, c.LockUser(ctx, testAccess, "3") },
			"POST", "/admin/users/3/lock", nil, nil},
		{"unlock", 204, "", func(c *Client) (any, error) { return nil, c.UnlockUser(ctx, testAccess, "3") },
			"POST", "/admin/users/3/unlock", nil, nil},
		{"require reset", 204, "", func(c *Client) (any, error) { return nil, c.RequirePasswordReset(ctx, testAccess, "3") },
			"POST", "/admin/users/3/require-password-reset", nil, nil},
		{"grant", 200, `{"roles":["viewer","admin"]}`,
			func(c *Client) (any, error) { return c.GrantRole(ctx, testAccess, "3", "admin") },
			"PUT", "/admin/users/3/roles/admin", nil, []string{"viewer", "admin"}},
		{"revoke", 200, `{"roles":["viewer"]}`,
			func(c *Client) (any, error) { return c.RevokeRole(ctx, testAccess, "3", "admin") },
			"DELETE", "/admin/users/3/roles/admin", nil, []string{"viewer"}},
		{"admin session revoke", 204, "", func(c *Client) (any, error) { return nil, c.AdminRevokeSession(ctx, testAccess, "s/9") },
			"DELETE", "/admin/sessions/s%2F9", nil, nil},
		{"own events", 200, `{"events":[` + auditEventJSON + `],"next":"c2"}`,
			func(c *Client) (any, error) {
				p, err := c.Events(ctx, testAccess, EventQuery{Limit: 5, Before: "c1", Type: "ignored"})
				e := p.Events[0]
				return []string{p.Next, e.ID, e.Type, e.UserID, e.ActorID, e.RequestID, string(e.Detail)}, err
			}, "GET", "/auth/events?before=c1&limit=5", nil,
			[]string{"c2", "11", "login.failed", "3", "", "rq1", `{"reason":"bad_credentials"}`}},
		{"admin events", 200, `{"events":[],"next":""}`,
			func(c *Client) (any, error) {
				p, err := c.AdminEvents(ctx, testAccess, EventQuery{User: "bob", Type: "logout",
					Since: time.Date(2026, 11, 1, 0, 0, 0, 0, time.FixedZone("x", 3600)), Limit: 2})
				return len(p.Events), err
			}, "GET", "/admin/events?limit=2&since=2026-10-31T23%3A00%3A00Z&type=logout&user=bob", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := jsonStub(tt.status, tt.body)
			if tt.body == "" {
				s.ctype = ""
			}
			c, _ := newServer(t, s, Options{})
			got, err := tt.call(c)
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
			reqs := s.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != tt.wantMethod || r.Path != tt.wantPath {
				t.Errorf("request %s %s, want %s %s", r.Method, r.Path, tt.wantMethod, tt.wantPath)
			}
			if r.Auth != "Bearer "+testAccess {
				t.Errorf("Authorization = %q", r.Auth)
			}
			if tt.wantBody != nil && !reflect.DeepEqual(r.Body, tt.wantBody) {
				t.Errorf("body = %v, want %v", r.Body, tt.wantBody)
			}
		})
	}
}

func TestRBACProblems(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		s          *stub
		call       func(c *Client) error
		want       error
		wantInText string
	}{
		{"forbidden names the permission", problemStub(403,
			`{"type":"urn:latch:problem:forbidden","title":"Forbidden","status":403,"detail":"needs notes:write (or owning the note)"}`, nil),
			func(c *Client) error { _, err := c.EditNote(ctx, testAccess, "7", "x"); return err },
			ErrForbidden, "needs notes:write (or owning the note)"},
		{"missing note", problemStub(404, `{"type":"urn:latch:problem:not-found","title":"Not Found","status":404,"detail":"no note 9"}`, nil),
			func(c *Client) error { _, err := c.Note(ctx, testAccess, "9"); return err }, ErrNotFound, "no note 9"},
		{"last superadmin", problemStub(409, `{"type":"urn:latch:problem:conflict","title":"Conflict","status":409,"detail":"the last superadmin"}`, nil),
			func(c *Client) error { _, err := c.RevokeRole(ctx, testAccess, "1", "superadmin"); return err }, ErrConflict, ""},
		{"locked login", problemStub(403, `{"type":"urn:latch:problem:account-locked","title":"Locked","status":403}`, nil),
			func(c *Client) error { _, err := c.Login(ctx, "alice", testPassword); return err }, ErrAccountLocked, "locked"},
		{"reset required", problemStub(403, `{"type":"urn:latch:problem:password-reset-required","title":"Reset","status":403}`, nil),
			func(c *Client) error { _, err := c.Login(ctx, "alice", testPassword); return err }, ErrPasswordResetRequired, "latch password forgot"},
		{"notes without list", jsonStub(200, `{}`),
			func(c *Client) error { _, err := c.Notes(ctx, testAccess); return err }, ErrBadResponse, "no notes list"},
		{"note without text", jsonStub(201, `{"id":1}`),
			func(c *Client) error { _, err := c.AddNote(ctx, testAccess, "x"); return err }, ErrBadResponse, "no note id or text"},
		{"event without type", jsonStub(200, `{"events":[{"id":1,"time":"2026-11-30T10:00:00Z"}]}`),
			func(c *Client) error { _, err := c.Events(ctx, testAccess, EventQuery{}); return err }, ErrBadResponse, "without type"},
		{"roles without list", jsonStub(200, `{}`),
			func(c *Client) error { _, err := c.GrantRole(ctx, testAccess, "1", "admin"); return err }, ErrBadResponse, "no roles list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newServer(t, tt.s, Options{})
			err := tt.call(c)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.wantInText) {
				t.Errorf("err = %q, want it to say %q", err, tt.wantInText)
			}
			assertNoSecrets(t, err)
		})
	}
}

func TestRBACNoTokenNoRequest(t *testing.T) {
	s := jsonStub(http.StatusOK, `{"notes":[]}`)
	c, _ := newServer(t, s, Options{})
	if _, err := c.Notes(context.Background(), ""); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("err = %v, want ErrUnauthorized", err)
	}
	if n := len(s.requests()); n != 0 {
		t.Errorf("%d requests sent without a token", n)
	}
}
