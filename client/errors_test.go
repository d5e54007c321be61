package client

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

var sentinels = map[string]error{
	"ErrInvalidCredentials":  ErrInvalidCredentials,
	"ErrReuseDetected":       ErrReuseDetected,
	"ErrInvalidRefreshToken": ErrInvalidRefreshToken,
	"ErrUnauthorized":        ErrUnauthorized,
	"ErrRateLimited":         ErrRateLimited,
	"ErrNotFound":            ErrNotFound,
	"ErrConflict":            ErrConflict,
	"ErrValidation":          ErrValidation,
	"ErrMFARequired":         ErrMFARequired,
	"ErrInvalidCode":         ErrInvalidCode,
	"ErrMFAChallengeExpired": ErrMFAChallengeExpired,
	"ErrMFAAlreadyEnabled":   ErrMFAAlreadyEnabled,
	"ErrMFANotEnabled":       ErrMFANotEnabled,
	"ErrMFASetupRequired":    ErrMFASetupRequired,
	"ErrUnreachable":         ErrUnreachable,
	"ErrBadResponse":         ErrBadResponse,
}

// TestProblemMapping: every problem type of the contract becomes an *APIError
// that matches exactly its sentinel and reads well.
func TestProblemMapping(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		headers  map[string]string
		call     string // which method to call
		want     string // sentinel name; "" for none
		wantAPI  APIError
		wantMsgs []string
	}{
		{
			name:   "validation with fields",
			status: 400,
			body: `{"type":"urn:latch:problem:validation","title":"Invalid input","status":400,
				"detail":"2 fields are invalid","errors":{"username":"must be 3-32 characters","email":"not an email address"}}`,
			call: "register", want: "ErrValidation",
			wantAPI: APIError{Status: 400, Type: typeValidation, Title: "Invalid input", Detail: "2 fields are invalid",
				Fields: map[string]string{"username": "must be 3-32 characters", "email": "not an email address"}},
			wantMsgs: []string{"rejected the input: email: not an email address; username: must be 3-32 characters"},
		},
		{
			name:   "conflict with fields",
			status: 409,
			body:   `{"type":"urn:latch:problem:conflict","title":"Conflict","status":409,"errors":{"username":"already taken"}}`,
			call:   "register", want: "ErrConflict",
			wantAPI: APIError{Status: 409, Type: typeConflict, Title: "Conflict",
				Fields: map[string]string{"username": "already taken"}},
			wantMsgs: []string{"username: already taken"},
		},
		{
			name:     "invalid credentials",
			status:   401,
			body:     `{"type":"urn:latch:problem:invalid-credentials","title":"Invalid credentials","status":401}`,
			call:     "login",
			want:     "ErrInvalidCredentials",
			wantAPI:  APIError{Status: 401, Type: typeInvalidCredentials, Title: "Invalid credentials"},
			wantMsgs: []string{"wrong username, email or password"},
		},
		{
			name:     "token reused",
			status:   401,
			body:     `{"type":"urn:latch:problem:token-reused","title":"Refresh token reused","status":401}`,
			call:     "refresh",
			want:     "ErrReuseDetected",
			wantAPI:  APIError{Status: 401, Type: typeTokenReused, Title: "Refresh token reused"},
			wantMsgs: []string{"revoked", "log in again"},
		},
		{
			name:     "invalid refresh token",
			status:   401,
			body:     `{"type":"urn:latch:problem:invalid-refresh-token","title":"Invalid refresh token","status":401}`,
			call:     "refresh",
			want:     "ErrInvalidRefreshToken",
			wantAPI:  APIError{Status: 401, Type: typeInvalidRefreshToken, Title: "Invalid refresh token"},
			wantMsgs: []string{"log in again"},
		},
		{
			name:     "unauthorized bearer",
			status:   401,
			body:     `{"type":"urn:latch:problem:unauthorized","title":"Unauthorized","status":401,"detail":"token expired"}`,
			headers:  map[string]string{"WWW-Authenticate": `Bearer error="invalid_token"`},
			call:     "me",
			want:     "ErrUnauthorized",
			wantAPI:  APIError{Status: 401, Type: typeUnauthorized, Title: "Unauthorized", Detail: "token expired"},
			wantMsgs: []string{"log in again"},
		},
		{
			name:     "rate limited, body member wins",
			status:   429,
			body:     `{"type":"urn:latch:problem:rate-limited","title":"Too many requests","status":429,"retry_after":30}`,
			headers:  map[string]string{"Retry-After": "31"},
			call:     "login",
			want:     "ErrRateLimited",
			wantAPI:  APIError{Status: 429, Type: typeRateLimited, Title: "Too many requests", RetryAfter: 30 * time.Second},
			wantMsgs: []string{"too many requests; try again in 30s"},
		},
		{
			name:     "rate limited, header only",
			status:   429,
			body:     `{"type":"urn:latch:problem:rate-limited","title":"Too many requests","status":429}`,
			headers:  map[string]string{"Retry-After": "12"},
			call:     "login",
			want:     "ErrRateLimited",
			wantAPI:  APIError{Status: 429, Type: typeRateLimited, Title: "Too many requests", RetryAfter: 12 * time.Second},
			wantMsgs: []string{"try again in 12s"},
		},
		{
			name:     "not found",
			status:   404,
			body:     `{"type":"urn:latch:problem:not-found","title":"Not found","status":404,"detail":"no such session"}`,
			call:     "revoke",
			want:     "ErrNotFound",
			wantAPI:  APIError{Status: 404, Type: typeNotFound, Title: "Not found", Detail: "no such session"},
			wantMsgs: []string{"not found: no such session"},
		},
		{
			name:     "internal",
			status:   500,
			body:     `{"type":"urn:latch:problem:internal","title":"Internal Server Error","status":500}`,
			call:     "me",
			wantAPI:  APIError{Status: 500, Type: typeInternal, Title: "Internal Server Error"},
			wantMsgs: []string{"internal error; try again later"},
		},
		{
			name:     "body too large",
			status:   413,
			body:     `{"type":"urn:latch:problem:body-too-large","title":"Too large","status":413,"detail":"limit is 1 MiB"}`,
			call:     "register",
			wantAPI:  APIError{Status: 413, Type: typeBodyTooLarge, Title: "Too large", Detail: "limit is 1 MiB"},
			wantMsgs: []string{"too large for the server: limit is 1 MiB"},
		},
		{
			name:     "malformed request",
			status:   400,
			body:     `{"type":"urn:latch:problem:malformed-request","title":"Malformed","status":400}`,
			call:     "login",
			wantAPI:  APIError{Status: 400, Type: typeMalformed, Title: "Malformed"},
			wantMsgs: []string{"bug in latch"},
		},
		{
			name:     "unsupported media type",
			status:   415,
			body:     `{"type":"urn:latch:problem:unsupported-media-type","title":"Unsupported","status":415}`,
			call:     "login",
			wantAPI:  APIError{Status: 415, Type: typeUnsupportedMedia, Title: "Unsupported"},
			wantMsgs: []string{"content type"},
		},
		{
			name:     "about:blank falls back to the status",
			status:   404,
			body:     `{"title":"Not Found","status":404}`,
			call:     "me",
			want:     "ErrNotFound",
			wantAPI:  APIError{Status: 404, Type: "about:blank", Title: "Not Found"},
			wantMsgs: []string{"Not Found"},
		},
		{
			name:     "unknown type keeps the server's words",
			status:   403,
			body:     `{"type":"urn:other:forbidden","title":"Forbidden","status":403,"detail":"account locked"}`,
			call:     "me",
			wantAPI:  APIError{Status: 403, Type: "urn:other:forbidden", Title: "Forbidden", Detail: "account locked"},
			wantMsgs: []string{"Forbidden: account locked"},
		},
		{
			name:   "echoed secrets are redacted",
			status: 400,
			body: fmt.Sprintf(`{"type":"urn:latch:problem:validation","title":"Bad %s","status":400,"detail":"x",
				"errors":{"password":"%s is too common"}}`, testPassword, testPassword),
			call: "register", want: "ErrValidation",
			wantAPI: APIError{Status: 400, Type: typeValidation, Title: "Bad [redacted]", Detail: "x",
				Fields: map[string]string{"password": "[redacted] is too common"}},
			wantMsgs: []string{"password: [redacted] is too common"},
		},
		{
			name:   "invalid code, attempts left",
			status: 401,
			body: `{"type":"urn:latch:problem:invalid-mfa-code","title":"Invalid code","status":401,
				"detail":"The code is wrong.","attempts_left":3}`,
			call: "verify", want: "ErrInvalidCode",
			wantAPI:  APIError{Status: 401, Type: typeInvalidCode, Title: "Invalid code", Detail: "The code is wrong.", AttemptsLeft: 3},
			wantMsgs: []string{"code is wrong or was already used", "; 3 attempts left"},
		},
		{
			name:   "invalid code echoing the code",
			status: 401,
			body: `{"type":"urn:latch:problem:invalid-mfa-code","title":"Invalid code","status":401,
				"detail":"123456 is wrong","attempts_left":"many"}`,
			call: "enable", want: "ErrInvalidCode",
			wantAPI:  APIError{Status: 401, Type: typeInvalidCode, Title: "Invalid code", Detail: "[redacted] is wrong"},
			wantMsgs: []string{"authenticator app, or a backup code"},
		},
		{
			name:     "mfa challenge expired",
			status:   401,
			body:     `{"type":"urn:latch:problem:mfa-challenge-expired","title":"Login step expired","status":401}`,
			call:     "verify",
			want:     "ErrMFAChallengeExpired",
			wantAPI:  APIError{Status: 401, Type: typeMFAChallengeExpired, Title: "Login step expired"},
			wantMsgs: []string{"log in again with your password"},
		},
		{
			name:     "mfa attempts exceeded",
			status:   401,
			body:     `{"type":"urn:latch:problem:mfa-attempts-exceeded","title":"Too many wrong codes","status":401}`,
			call:     "verify",
			want:     "ErrMFAChallengeExpired",
			wantAPI:  APIError{Status: 401, Type: typeMFAAttemptsExceeded, Title: "Too many wrong codes"},
			wantMsgs: []string{"too many wrong codes; log in again"},
		},
		{
			name:     "mfa already enabled",
			status:   409,
			body:     `{"type":"urn:latch:problem:mfa-already-enabled","title":"Two-factor already on","status":409}`,
			call:     "setup",
			want:     "ErrMFAAlreadyEnabled",
			wantAPI:  APIError{Status: 409, Type: typeMFAAlreadyEnabled, Title: "Two-factor already on"},
			wantMsgs: []string{"already on; turn it off first"},
		},
		{
			name:     "mfa not enabled",
			status:   409,
			body:     `{"type":"urn:latch:problem:mfa-not-enabled","title":"Two-factor is off","status":409}`,
			call:     "disable",
			want:     "ErrMFANotEnabled",
			wantAPI:  APIError{Status: 409, Type: typeMFANotEnabled, Title: "Two-factor is off"},
			wantMsgs: []string{"not on for this account"},
		},
		{
			name:     "mfa setup required",
			status:   409,
			body:     `{"type":"urn:latch:problem:mfa-setup-required","title":"No enrolment in progress","status":409}`,
			call:     "enable",
			want:     "ErrMFASetupRequired",
			wantAPI:  APIError{Status: 409, Type: typeMFASetupRequired, Title: "No enrolment in progress"},
			wantMsgs: []string{"start the setup again"},
		},
		{
			name:     "status line wins over the body",
			status:   409,
			body:     `{"type":"urn:latch:problem:conflict","title":"Conflict","status":200}`,
			call:     "register",
			want:     "ErrConflict",
			wantAPI:  APIError{Status: 409, Type: typeConflict, Title: "Conflict"},
			wantMsgs: []string{"already in use"},
		},
	}
	calls := map[string]func(*Client) error{
		"register": func(c *Client) error { _, err := c.Register(t.Context(), "ada", "a@b.c", testPassword); return err },
		"login":    func(c *Client) error { _, err := c.Login(t.Context(), "ada", testPassword); return err },
		"refresh":  func(c *Client) error { _, err := c.Refresh(t.Context(), testRefresh); return err },
		"me":       func(c *Client) error { _, err := c.Me(t.Context(), testAccess); return err },
		"revoke":   func(c *Client) error { return c.RevokeSession(t.Context(), testAccess, "s1") },
		"setup":    func(c *Client) error { _, err := c.MFASetup(t.Context(), testAccess); return err },
		"enable":   func(c *Client) error { _, err := c.MFAEnable(t.Context(), testAccess, "123456"); return err },
		"verify":   func(c *Client) error { _, err := c.MFAVerify(t.Context(), testMFAToken, "123456"); return err },
		"disable":  func(c *Client) error { return c.MFADisable(t.Context(), testAccess, "123456") },
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newServer(t, problemStub(tt.status, tt.body, tt.headers), Options{})
			err := calls[tt.call](c)
			var apiErr *APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %T %v, want *APIError", err, err)
			}
			if !reflect.DeepEqual(*apiErr, tt.wantAPI) {
				t.Errorf("APIError\n got  %+v\n want %+v", *apiErr, tt.wantAPI)
			}
			for name, s := range sentinels {
				if got := errors.Is(err, s); got != (name == tt.want) {
					t.Errorf("errors.Is(err, %s) = %v", name, got)
				}
			}
			for _, m := range tt.wantMsgs {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("message %q does not contain %q", err, m)
				}
			}
			assertNoSecrets(t, err)
		})
	}
}

// TestErrorBodies: error statuses whose body is not a problem still give a
// clear, classified error.
func TestErrorBodies(t *testing.T) {
	tests := []struct {
		name            string
		stub            *stub
		wantUnreachable bool
		wantMsg         string
	}{
		{"proxy HTML 502", &stub{status: 502, ctype: "text/html",
			body: "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>"}, true, "HTML page instead of JSON"},
		{"HTML without content type", &stub{status: 503, body: "<html><body>down</body></html>"}, true, "HTML page"},
		{"plain text 404", &stub{status: 404, ctype: "text/plain; charset=utf-8", body: "404 page not found\n"},
			false, `wrong content type "text/plain"`},
		{"empty 500", &stub{status: 500}, false, "empty response body"},
		{"truncated problem", &stub{status: 400, ctype: "application/problem+json", body: `{"type":"urn:latch:pro`},
			false, "malformed or truncated"},
		{"JSON that is not a problem", jsonStub(500, `{"error":"boom"}`), false, "not an RFC 9457 problem"},
		{"504 without body", &stub{status: 504}, true, "HTTP 504"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newServer(t, tt.stub, Options{})
			_, err := c.Me(t.Context(), testAccess)
			var re *ResponseError
			if !errors.As(err, &re) || re.Status != tt.stub.status {
				t.Fatalf("err = %T %v, want *ResponseError with status %d", err, err, tt.stub.status)
			}
			if !errors.Is(err, ErrBadResponse) {
				t.Error("not ErrBadResponse")
			}
			if got := errors.Is(err, ErrUnreachable); got != tt.wantUnreachable {
				t.Errorf("errors.Is(err, ErrUnreachable) = %v, want %v", got, tt.wantUnreachable)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("message %q does not contain %q", err, tt.wantMsg)
			}
			if !strings.Contains(err.Error(), "GET /auth/me") {
				t.Errorf("message %q does not name the call", err)
			}
			assertNoSecrets(t, err)
		})
	}
}
