package client

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

const (
	testMailToken = "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6"
	testNewPass   = "a-new-long-passphrase-42"
)

// TestRecoveryRequests checks each call sends what the contract says, to
// the right path, and reads the answer the contract promises.
func TestRecoveryRequests(t *testing.T) {
	f := false
	tests := []struct {
		name     string
		stub     *stub
		call     func(c *Client) (any, error)
		wantPath string
		wantAuth string
		wantBody map[string]any
		want     any
	}{
		{"verify", jsonStub(200, `{"email":"a@example.com","email_verified":true}`),
			func(c *Client) (any, error) { return c.VerifyEmail(context.Background(), testMailToken) },
			"/auth/email/verify", "", map[string]any{"token": testMailToken},
			&EmailState{Email: "a@example.com", Verified: true}},
		{"resend with a session", jsonStub(202, `{}`),
			func(c *Client) (any, error) { return nil, c.ResendVerification(context.Background(), testAccess) },
			"/auth/email/resend", "Bearer " + testAccess, nil, nil},
		{"resend without a session", jsonStub(202, `{}`),
			func(c *Client) (any, error) { return nil, c.ResendVerificationFor(context.Background(), "alice") },
			"/auth/email/resend", "", map[string]any{"identifier": "alice"}, nil},
		{"change email", jsonStub(202, `{"email":"b@example.com","email_verified":false}`),
			func(c *Client) (any, error) {
				return c.ChangeEmail(context.Background(), testAccess, "b@example.com", testPassword)
			},
			"/auth/email/change", "Bearer " + testAccess, map[string]any{"new_email": "b@example.com", "password": testPassword},
			&EmailState{Email: "b@example.com", Verified: false}},
		{"forgot", jsonStub(202, `{}`),
			func(c *Client) (any, error) { return nil, c.ForgotPassword(context.Background(), "alice@example.com") },
			"/auth/password/forgot", "", map[string]any{"identifier": "alice@example.com"}, nil},
		{"reset without a code", &stub{status: 204},
			func(c *Client) (any, error) {
				return nil, c.ResetPassword(context.Background(), testMailToken, testNewPass, "")
			},
			"/auth/password/reset", "", map[string]any{"token": testMailToken, "new_password": testNewPass}, nil},
		{"reset with a code", &stub{status: 204},
			func(c *Client) (any, error) {
				return nil, c.ResetPassword(context.Background(), testMailToken, testNewPass, "123456")
			},
			"/auth/password/reset", "", map[string]any{"token": testMailToken, "new_password": testNewPass, "code": "123456"}, nil},
		{"mfa enable ending others", jsonStub(200, `{"backup_codes":["aaaa-bbbb"],"other_sessions":0}`),
			func(c *Client) (any, error) {
				return c.MFAEnableSessions(context.Background(), testAccess, "123456", true)
			},
			"/auth/mfa/enable", "Bearer " + testAccess, map[string]any{"code": "123456", "end_other_sessions": true},
			&MFAChange{BackupCodes: []string{"aaaa-bbbb"}, OtherSessions: 0}},
		{"mfa enable keeping others", jsonStub(200, `{"backup_codes":["aaaa-bbbb"],"other_sessions":2}`),
			func(c *Client) (any, error) {
				return c.MFAEnableSessions(context.Background(), testAccess, "123456", false)
			},
			"/auth/mfa/enable", "Bearer " + testAccess, map[string]any{"code": "123456"},
			&MFAChange{BackupCodes: []string{"aaaa-bbbb"}, OtherSessions: 2}},
		{"mfa disable answering 200", jsonStub(200, `{"other_sessions":3}`),
			func(c *Client) (any, error) {
				return c.MFADisableSessions(context.Background(), testAccess, "123456", false)
			},
			"/auth/mfa/disable", "Bearer " + testAccess, map[string]any{"code": "123456"},
			&MFAChange{OtherSessions: 3}},
		{"mfa disable from an older server", &stub{status: 204},
			func(c *Client) (any, error) {
				return c.MFADisableSessions(context.Background(), testAccess, "123456", true)
			},
			"/auth/mfa/disable", "Bearer " + testAccess, map[string]any{"code": "123456", "end_other_sessions": true},
			&MFAChange{OtherSessions: -1}},
		{"me with email_verified", jsonStub(200, `{"id":1,"username":"alice","email":"a@example.com","email_verified":false}`),
			func(c *Client) (any, error) {
				u, err := c.Me(context.Background(), testAccess)
				if err != nil {
					return nil, err
				}
				return u.EmailVerified, nil
			},
			"/auth/me", "Bearer " + testAccess, nil, &f},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newServer(t, tt.stub, Options{})
			got, err := tt.call(c)
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			reqs := tt.stub.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Path != tt.wantPath || r.Auth != tt.wantAuth {
				t.Errorf("sent %s auth %q, want %s auth %q", r.Path, r.Auth, tt.wantPath, tt.wantAuth)
			}
			if tt.wantBody != nil && !reflect.DeepEqual(r.Body, tt.wantBody) {
				t.Errorf("body %v, want %v", r.Body, tt.wantBody)
			}
		})
	}
}

// TestRecoveryProblems checks the new problem types map to their sentinels
// and that no secret the call sent comes back in the message.
func TestRecoveryProblems(t *testing.T) {
	problem := func(status int, typ string) *stub {
		// The server echoes the secrets into its detail: they must not
		// reach the user's screen or a log.
		return problemStub(status, `{"type":"`+typ+`","title":"x","status":400,"detail":"`+testMailToken+` `+testNewPass+`"}`, nil)
	}
	reset := func(c *Client) error {
		return c.ResetPassword(context.Background(), testMailToken, testNewPass, "")
	}
	tests := []struct {
		name    string
		stub    *stub
		call    func(c *Client) error
		want    error
		wantMsg string
	}{
		{"invalid", problem(400, "urn:latch:problem:token-invalid"), reset, ErrTokenInvalid, "copy it again"},
		{"expired", problem(400, "urn:latch:problem:token-expired"), reset, ErrTokenExpired, "latch password forgot"},
		{"used", problem(400, "urn:latch:problem:token-used"), reset, ErrTokenUsed, "works once"},
		{"mfa required", problem(401, "urn:latch:problem:mfa-required"), reset, ErrMFARequired, "--code"},
		{"wrong code", problem(401, "urn:latch:problem:invalid-mfa-code"), reset, ErrInvalidCode, "backup code"},
		{"weak password", problemStub(400, `{"type":"urn:latch:problem:validation","title":"x","status":400,"errors":{"new_password":"too weak"}}`, nil),
			reset, ErrValidation, "new_password: too weak"},
		{"verify expired", problem(400, "urn:latch:problem:token-expired"),
			func(c *Client) error { _, err := c.VerifyEmail(context.Background(), testMailToken); return err },
			ErrTokenExpired, "expired"},
		{"login unverified", problem(403, "urn:latch:problem:email-unverified"),
			func(c *Client) error { _, err := c.Login(context.Background(), "alice", testPassword); return err },
			ErrEmailUnverified, "latch email resend"},
		{"resend verified", problem(409, "urn:latch:problem:conflict"),
			func(c *Client) error { return c.ResendVerification(context.Background(), testAccess) },
			ErrConflict, "already"},
		{"change email wrong password", problem(401, "urn:latch:problem:invalid-credentials"),
			func(c *Client) error {
				_, err := c.ChangeEmail(context.Background(), testAccess, "b@example.com", testPassword)
				return err
			},
			ErrInvalidCredentials, "wrong"},
		{"forgot limited", problemStub(429, `{"type":"urn:latch:problem:rate-limited","title":"x","status":429,"retry_after":30}`, nil),
			func(c *Client) error { return c.ForgotPassword(context.Background(), "alice") },
			ErrRateLimited, "try again in 30s"},
		{"no dev mailbox", problemStub(404, `{"type":"urn:latch:problem:not-found","title":"Not found","status":404}`, nil),
			func(c *Client) error { _, err := c.DevMail(context.Background()); return err },
			ErrNotFound, "not found"},
		{"verify answer without the flag", jsonStub(200, `{"email":"a@example.com"}`),
			func(c *Client) error { _, err := c.VerifyEmail(context.Background(), testMailToken); return err },
			ErrBadResponse, "email_verified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newServer(t, tt.stub, Options{})
			err := tt.call(c)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("message %q lacks %q", err, tt.wantMsg)
			}
			for _, s := range append(allSecrets, testMailToken, testNewPass) {
				if strings.Contains(err.Error(), s) {
					t.Errorf("message leaks a secret: %q", err)
				}
			}
		})
	}
}

// TestRecoveryRefusesEmptyInput checks nothing is sent for an empty token
// or identifier: the user gets a local error naming what is missing.
func TestRecoveryRefusesEmptyInput(t *testing.T) {
	s := jsonStub(202, `{}`)
	c, _ := newServer(t, s, Options{})
	ctx := context.Background()
	for name, err := range map[string]error{
		"forgot": c.ForgotPassword(ctx, " "),
		"resend": c.ResendVerificationFor(ctx, ""),
		"reset":  c.ResetPassword(ctx, "", testNewPass, ""),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := c.VerifyEmail(ctx, ""); !errors.Is(err, ErrTokenInvalid) {
		t.Errorf("verify: %v", err)
	}
	if n := len(s.requests()); n != 0 {
		t.Errorf("%d requests sent for empty input", n)
	}
}

func TestDevMail(t *testing.T) {
	s := jsonStub(http.StatusOK, `{"messages":[
		{"id":"2","to":"a@example.com","subject":"Reset your password","kind":"password-reset",
		 "text":"Open http://127.0.0.1:8080/password/reset?token=`+testMailToken+` within 30 minutes.\n\n`+testMailToken+`\n","created_at":"2026-11-30T12:00:00Z"},
		{"id":1,"to":"a@example.com","subject":"Verify","kind":"verify-email","text":"no link here","created_at":"2026-11-30T11:00:00Z"}]}`)
	c, _ := newServer(t, s, Options{})
	msgs, err := c.DevMail(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].ID != "2" || msgs[1].ID != "1" || msgs[0].Kind != "password-reset" {
		t.Fatalf("got %+v", msgs)
	}
	if got := msgs[0].Token(); got != testMailToken {
		t.Errorf("Token() = %q", got)
	}
	if got := msgs[1].Token(); got != "" {
		t.Errorf("Token() of a mail without one = %q", got)
	}
}

func TestMailToken(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"link", "Open https://x.test/email/verify?token=" + testMailToken + "&a=b now", testMailToken},
		{"line alone", "Your code:\n  " + testMailToken + "  \nThanks", testMailToken},
		{"short link value falls back to the line", "?token=abc\n" + testMailToken, testMailToken},
		{"none", "Hello, your password was changed.", ""},
		{"prose is no token", "this-line-is-definitely-long-but-has spaces in it", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MailToken(tt.text); got != tt.want {
				t.Errorf("MailToken = %q, want %q", got, tt.want)
			}
		})
	}
}

// A problem of a type latch does not know shows the server's detail: the
// token, new password and code it echoes must be scrubbed from it.
func TestRecoveryScrubsEchoedSecrets(t *testing.T) {
	s := problemStub(400, `{"type":"urn:example:odd","title":"Odd","status":400,"detail":"got `+testMailToken+` / `+testNewPass+` / 654321"}`, nil)
	c, _ := newServer(t, s, Options{})
	err := c.ResetPassword(context.Background(), testMailToken, testNewPass, "654321")
	var api *APIError
	if !errors.As(err, &api) || !strings.Contains(err.Error(), "Odd: got [redacted]") {
		t.Fatalf("err = %v", err)
	}
	for _, sec := range []string{testMailToken, testNewPass, "654321"} {
		if strings.Contains(err.Error(), sec) {
			t.Errorf("message leaks %q: %v", sec, err)
		}
	}
}
