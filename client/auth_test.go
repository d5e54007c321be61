package client

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestEndpoints(t *testing.T) {
	created := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tokenPair := fmt.Sprintf(`{"access_token":%q,"token_type":"Bearer","expires_in":900,"refresh_token":%q,"refresh_expires_in":2592000}`,
		testAccess, testRefresh)
	wantTokens := &Tokens{AccessToken: testAccess, TokenType: "Bearer", ExpiresIn: 15 * time.Minute,
		RefreshToken: testRefresh, RefreshExpiresIn: 720 * time.Hour}

	tests := []struct {
		name     string
		stub     *stub
		call     func(*Client) (any, error)
		want     any
		wantReq  seen
		wantBody map[string]any
	}{
		{
			name: "config",
			stub: jsonStub(200, `{"issuer":"https://id.example","jwks_uri":"https://id.example/jwks",
				"username":{"min_length":3,"max_length":32,"pattern":"^[a-z0-9_]+$"},"email":{"max_length":254},
				"password":{"min_length":12,"max_length":128,"min_score":3},"mfa_methods":["totp"],
				"access_token_ttl":900,"refresh_token_ttl":2592000,"session_max_age":7776000,"reuse_grace":2.5}`),
			call: func(c *Client) (any, error) { return c.Config(t.Context()) },
			want: &AuthConfig{Issuer: "https://id.example", JWKSURI: "https://id.example/jwks",
				Username:       UsernamePolicy{MinLength: 3, MaxLength: 32, Pattern: "^[a-z0-9_]+$"},
				EmailMaxLength: 254, Password: PasswordPolicy{MinLength: 12, MaxLength: 128, MinScore: 3},
				MFAMethods: []string{"totp"}, AccessTokenTTL: 15 * time.Minute, RefreshTokenTTL: 720 * time.Hour,
				SessionMaxAge: 2160 * time.Hour, ReuseGrace: 2500 * time.Millisecond},
			wantReq: seen{Method: "GET", Path: "/auth/config"},
		},
		{
			name:     "register",
			stub:     jsonStub(201, `{"user_id":42}`),
			call:     func(c *Client) (any, error) { return c.Register(t.Context(), "ada", "ada@example.com", testPassword) },
			want:     int64(42),
			wantReq:  seen{Method: "POST", Path: "/auth/register", ContentType: "application/json"},
			wantBody: map[string]any{"username": "ada", "email": "ada@example.com", "password": testPassword},
		},
		{
			name:     "login",
			stub:     jsonStub(200, tokenPair),
			call:     func(c *Client) (any, error) { return c.Login(t.Context(), "ada", testPassword) },
			want:     wantTokens,
			wantReq:  seen{Method: "POST", Path: "/auth/login", ContentType: "application/json"},
			wantBody: map[string]any{"identifier": "ada", "password": testPassword},
		},
		{
			name:     "refresh",
			stub:     jsonStub(200, tokenPair),
			call:     func(c *Client) (any, error) { return c.Refresh(t.Context(), testRefresh) },
			want:     wantTokens,
			wantReq:  seen{Method: "POST", Path: "/auth/refresh", ContentType: "application/json"},
			wantBody: map[string]any{"refresh_token": testRefresh},
		},
		{
			name:     "logout",
			stub:     &stub{status: 204},
			call:     func(c *Client) (any, error) { return nil, c.Logout(t.Context(), testRefresh) },
			wantReq:  seen{Method: "POST", Path: "/auth/logout", ContentType: "application/json"},
			wantBody: map[string]any{"refresh_token": testRefresh},
		},
		{
			name: "me",
			stub: jsonStub(200, `{"id":42,"username":"ada","email":"ada@example.com",
				"created_at":"2025-03-01T12:00:00Z","updated_at":"2025-03-01T12:00:00Z","mfa_enabled":true}`),
			call: func(c *Client) (any, error) { return c.Me(t.Context(), testAccess) },
			want: &User{ID: 42, Username: "ada", Email: "ada@example.com", CreatedAt: created, UpdatedAt: created,
				MFAEnabled: true},
			wantReq: seen{Method: "GET", Path: "/auth/me", Auth: "Bearer " + testAccess},
		},
		{
			name:    "protected",
			stub:    jsonStub(200, `{"logged_in_as":"ada"}`),
			call:    func(c *Client) (any, error) { return c.Protected(t.Context(), testAccess) },
			want:    "ada",
			wantReq: seen{Method: "GET", Path: "/auth/protected", Auth: "Bearer " + testAccess},
		},
		{
			name: "sessions with string and number ids",
			stub: jsonStub(200, `{"sessions":[
				{"id":"s1","created_at":"2025-03-01T12:00:00Z","last_used_at":"2025-03-01T12:00:00Z",
				 "expires_at":"2025-03-01T12:00:00Z","user_agent":"latch/dev","current":true},
				{"id":7,"created_at":"2025-03-01T12:00:00Z","last_used_at":null,
				 "expires_at":"2025-03-01T12:00:00Z","user_agent":"","current":false}]}`),
			call: func(c *Client) (any, error) { return c.Sessions(t.Context(), testAccess) },
			want: []Session{
				{ID: "s1", CreatedAt: created, LastUsedAt: created, ExpiresAt: created, UserAgent: "latch/dev", Current: true},
				{ID: "7", CreatedAt: created, ExpiresAt: created},
			},
			wantReq: seen{Method: "GET", Path: "/auth/sessions", Auth: "Bearer " + testAccess},
		},
		{
			name:    "sessions empty",
			stub:    jsonStub(200, `{"sessions":[]}`),
			call:    func(c *Client) (any, error) { return c.Sessions(t.Context(), testAccess) },
			want:    []Session{},
			wantReq: seen{Method: "GET", Path: "/auth/sessions", Auth: "Bearer " + testAccess},
		},
		{
			name:    "revoke session escapes the id",
			stub:    &stub{status: 204},
			call:    func(c *Client) (any, error) { return nil, c.RevokeSession(t.Context(), testAccess, "a/b?c") },
			wantReq: seen{Method: "DELETE", Path: "/auth/sessions/a%2Fb%3Fc", Auth: "Bearer " + testAccess},
		},
		{
			name: "change password",
			stub: &stub{status: 204},
			call: func(c *Client) (any, error) {
				return nil, c.ChangePassword(t.Context(), testAccess, testPassword, "new-"+testPassword)
			},
			wantReq: seen{Method: "POST", Path: "/auth/password", Auth: "Bearer " + testAccess,
				ContentType: "application/json"},
			wantBody: map[string]any{"current_password": testPassword, "new_password": "new-" + testPassword},
		},
		{
			name:    "mfa setup",
			stub:    jsonStub(200, `{"secret":"JBSWY3DPEHPK3PXP","uri":"otpauth://totp/latch:ada?secret=JBSWY3DPEHPK3PXP"}`),
			call:    func(c *Client) (any, error) { return c.MFASetup(t.Context(), testAccess) },
			want:    &MFASetup{Secret: "JBSWY3DPEHPK3PXP", URI: "otpauth://totp/latch:ada?secret=JBSWY3DPEHPK3PXP"},
			wantReq: seen{Method: "POST", Path: "/auth/mfa/setup", Auth: "Bearer " + testAccess},
		},
		{
			name:     "mfa enable",
			stub:     jsonStub(200, `{"backup_codes":["aaaaa-bbbbb","ccccc-ddddd"]}`),
			call:     func(c *Client) (any, error) { return c.MFAEnable(t.Context(), testAccess, "123456") },
			want:     []string{"aaaaa-bbbbb", "ccccc-ddddd"},
			wantReq:  seen{Method: "POST", Path: "/auth/mfa/enable", Auth: "Bearer " + testAccess, ContentType: "application/json"},
			wantBody: map[string]any{"code": "123456"},
		},
		{
			name:     "mfa verify",
			stub:     jsonStub(200, tokenPair),
			call:     func(c *Client) (any, error) { return c.MFAVerify(t.Context(), testMFAToken, "123456") },
			want:     wantTokens,
			wantReq:  seen{Method: "POST", Path: "/auth/mfa/verify", ContentType: "application/json"},
			wantBody: map[string]any{"mfa_token": testMFAToken, "code": "123456"},
		},
		{
			name:     "mfa disable",
			stub:     &stub{status: 204},
			call:     func(c *Client) (any, error) { return nil, c.MFADisable(t.Context(), testAccess, "aaaaa-bbbbb") },
			wantReq:  seen{Method: "POST", Path: "/auth/mfa/disable", Auth: "Bearer " + testAccess, ContentType: "application/json"},
			wantBody: map[string]any{"code": "aaaaa-bbbbb"},
		},
		{
			name:     "mfa backup codes",
			stub:     jsonStub(200, `{"backup_codes":["eeeee-fffff"]}`),
			call:     func(c *Client) (any, error) { return c.MFABackupCodes(t.Context(), testAccess, "654321") },
			want:     []string{"eeeee-fffff"},
			wantReq:  seen{Method: "POST", Path: "/auth/mfa/backup-codes", Auth: "Bearer " + testAccess, ContentType: "application/json"},
			wantBody: map[string]any{"code": "654321"},
		},
		{
			name:    "health",
			stub:    jsonStub(200, `{"status":"ok"}`),
			call:    func(c *Client) (any, error) { return nil, c.Health(t.Context()) },
			wantReq: seen{Method: "GET", Path: "/healthz"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newServer(t, tt.stub, Options{Version: "1.2.3"})
			got, err := tt.call(c)
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v\nwant %#v", got, tt.want)
			}
			reqs := tt.stub.requests()
			if len(reqs) != 1 {
				t.Fatalf("server saw %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			tt.wantReq.UserAgent = "latch/1.2.3"
			tt.wantReq.Body = tt.wantBody
			if !reflect.DeepEqual(r, tt.wantReq) {
				t.Errorf("request\n got  %+v\n want %+v", r, tt.wantReq)
			}
		})
	}
}

func TestLoginMFAChallenge(t *testing.T) {
	c, _ := newServer(t, jsonStub(200, fmt.Sprintf(`{"mfa_required":true,"mfa_token":%q,"mfa_methods":["totp","webauthn"]}`,
		testMFAToken)), Options{})
	tok, err := c.Login(t.Context(), "ada", testPassword)
	if tok != nil {
		t.Errorf("tokens = %v, want nil", tok)
	}
	if !errors.Is(err, ErrMFARequired) {
		t.Fatalf("err = %v, want ErrMFARequired", err)
	}
	var mfa *MFARequiredError
	if !errors.As(err, &mfa) || mfa.Token != testMFAToken || !reflect.DeepEqual(mfa.Methods, []string{"totp", "webauthn"}) {
		t.Fatalf("MFARequiredError = %+v", mfa)
	}
	if !strings.Contains(err.Error(), "totp, webauthn") {
		t.Errorf("message %q does not name the methods", err)
	}
	assertNoSecrets(t, err)
}

// TestShapeErrors: a 2xx whose JSON lacks what the contract promises is an
// ErrBadResponse, never a half-filled result.
func TestShapeErrors(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		status  int
		call    func(*Client) error
		wantMsg string
	}{
		{"login without tokens or mfa", `{"token_type":"Bearer"}`, 200,
			func(c *Client) error { _, err := c.Login(t.Context(), "ada", testPassword); return err }, "no access_token"},
		{"login mfa without token", `{"mfa_required":true,"mfa_methods":["totp"]}`, 200,
			func(c *Client) error { _, err := c.Login(t.Context(), "ada", testPassword); return err }, "no mfa_token"},
		{"login without refresh token", `{"access_token":"` + testAccess + `","token_type":"Bearer","expires_in":900}`, 200,
			func(c *Client) error { _, err := c.Login(t.Context(), "ada", testPassword); return err }, "no refresh_token"},
		{"refresh with wrong token type", `{"access_token":"a","refresh_token":"b","token_type":"mac","expires_in":9}`, 200,
			func(c *Client) error { _, err := c.Refresh(t.Context(), testRefresh); return err }, `token_type "mac"`},
		{"refresh without expiry", `{"access_token":"a","refresh_token":"b","token_type":"Bearer"}`, 200,
			func(c *Client) error { _, err := c.Refresh(t.Context(), testRefresh); return err }, "expires_in"},
		{"expires_in as string", `{"access_token":"a","refresh_token":"b","token_type":"Bearer","expires_in":"900"}`, 200,
			func(c *Client) error { _, err := c.Refresh(t.Context(), testRefresh); return err }, "not a number of seconds"},
		{"register with user_id 0", `{"user_id":0}`, 201,
			func(c *Client) error { _, err := c.Register(t.Context(), "ada", "a@b.c", testPassword); return err }, "not positive"},
		{"register with 200", `{"user_id":1}`, 200,
			func(c *Client) error { _, err := c.Register(t.Context(), "ada", "a@b.c", testPassword); return err }, "never answers"},
		{"me without id", `{"username":"ada"}`, 200,
			func(c *Client) error { _, err := c.Me(t.Context(), testAccess); return err }, "no id"},
		{"me with id as string", `{"id":"42","username":"ada"}`, 200,
			func(c *Client) error { _, err := c.Me(t.Context(), testAccess); return err }, `field "id"`},
		{"me as JSON array", `[]`, 200,
			func(c *Client) error { _, err := c.Me(t.Context(), testAccess); return err }, "wrong JSON type"},
		{"protected without name", `{}`, 200,
			func(c *Client) error { _, err := c.Protected(t.Context(), testAccess); return err }, "logged_in_as"},
		{"sessions missing", `{}`, 200,
			func(c *Client) error { _, err := c.Sessions(t.Context(), testAccess); return err }, "no sessions"},
		{"session without id", `{"sessions":[{"current":true}]}`, 200,
			func(c *Client) error { _, err := c.Sessions(t.Context(), testAccess); return err }, "without id"},
		{"config without bounds", `{"issuer":"x"}`, 200,
			func(c *Client) error { _, err := c.Config(t.Context()); return err }, "username length"},
		{"config without token ttl", `{"username":{"min_length":1,"max_length":9},"password":{"min_length":8}}`, 200,
			func(c *Client) error { _, err := c.Config(t.Context()); return err }, "access_token_ttl"},
		{"config with negative ttl", `{"username":{"max_length":9},"password":{"min_length":8},"access_token_ttl":-1}`, 200,
			func(c *Client) error { _, err := c.Config(t.Context()); return err }, "out of range"},
		{"health not ok", `{"status":"degraded"}`, 200,
			func(c *Client) error { return c.Health(t.Context()) }, `"degraded"`},
		{"logout answers 200", `{}`, 200,
			func(c *Client) error { return c.Logout(t.Context(), testRefresh) }, "never answers"},
		{"mfa setup without uri", `{"secret":"JBSWY3DPEHPK3PXP"}`, 200,
			func(c *Client) error { _, err := c.MFASetup(t.Context(), testAccess); return err }, "otpauth://"},
		{"mfa setup with an https uri", `{"secret":"JBSWY3DPEHPK3PXP","uri":"https://evil.example/"}`, 200,
			func(c *Client) error { _, err := c.MFASetup(t.Context(), testAccess); return err }, "otpauth://"},
		{"mfa enable without codes", `{"backup_codes":[]}`, 200,
			func(c *Client) error { _, err := c.MFAEnable(t.Context(), testAccess, "123456"); return err }, "no backup_codes"},
		{"mfa backup codes with an empty one", `{"backup_codes":["aaaaa-bbbbb",""]}`, 200,
			func(c *Client) error { _, err := c.MFABackupCodes(t.Context(), testAccess, "123456"); return err }, "index 1"},
		{"mfa verify without tokens", `{"mfa_required":true}`, 200,
			func(c *Client) error { _, err := c.MFAVerify(t.Context(), testMFAToken, "123456"); return err }, "no access_token"},
		// 200 with other_sessions is the contract since issue 15, 204 before it.
		{"mfa disable answers 201", `{}`, 201,
			func(c *Client) error { return c.MFADisable(t.Context(), testAccess, "123456") }, "never answers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newServer(t, jsonStub(tt.status, tt.body), Options{})
			err := tt.call(c)
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("err = %v, want ErrBadResponse", err)
			}
			if errors.Is(err, ErrUnreachable) {
				t.Errorf("a 2xx shape error must not look like an outage: %v", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("message %q does not contain %q", err, tt.wantMsg)
			}
			assertNoSecrets(t, err)
		})
	}
}

func TestBearerWithoutTokenSendsNothing(t *testing.T) {
	s := jsonStub(200, `{}`)
	c, _ := newServer(t, s, Options{})
	if _, err := c.Me(t.Context(), ""); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("err = %v, want ErrUnauthorized", err)
	}
	if err := c.RevokeSession(t.Context(), testAccess, ""); err == nil {
		t.Error("empty session id accepted")
	}
	if _, err := c.MFASetup(t.Context(), ""); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("MFASetup without a token: %v", err)
	}
	if _, err := c.MFAVerify(t.Context(), "", "123456"); !errors.Is(err, ErrMFAChallengeExpired) {
		t.Errorf("MFAVerify without an mfa token: %v", err)
	}
	if n := len(s.requests()); n != 0 {
		t.Errorf("server saw %d requests, want 0", n)
	}
}

func TestTokensNeverPrintSecrets(t *testing.T) {
	tok := Tokens{AccessToken: testAccess, TokenType: "Bearer", RefreshToken: testRefresh, ExpiresIn: time.Minute}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range []any{tok, &tok} {
			out := fmt.Sprintf(verb, v)
			if strings.Contains(out, testAccess) || strings.Contains(out, testRefresh) {
				t.Errorf("Sprintf(%q) leaks a token: %s", verb, out)
			}
		}
	}
	setup := MFASetup{Secret: "JBSWY3DPEHPK3PXP", URI: "otpauth://totp/latch:ada?secret=JBSWY3DPEHPK3PXP"}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range []any{setup, &setup} {
			if out := fmt.Sprintf(verb, v); strings.Contains(out, "JBSWY3DPEHPK3PXP") {
				t.Errorf("Sprintf(%q) leaks the TOTP secret: %s", verb, out)
			}
		}
	}
	mfa := &MFARequiredError{Token: testMFAToken}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(verb, mfa); strings.Contains(out, testMFAToken) {
			t.Errorf("Sprintf(%q) leaks the mfa token: %s", verb, out)
		}
	}
}
