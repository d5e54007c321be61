package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// EmailState is the account's email address and whether it is proven to be
// the user's.
type EmailState struct {
	Email    string
	Verified bool
}

// VerifyEmail confirms an email address with the token from a verification
// mail. An unknown token matches ErrTokenInvalid, an old one
// ErrTokenExpired, a spent one ErrTokenUsed.
func (c *Client) VerifyEmail(ctx context.Context, token string) (*EmailState, error) {
	if strings.TrimSpace(token) == "" {
		return nil, fmt.Errorf("POST /auth/email/verify: %w: no token given", ErrTokenInvalid)
	}
	var w emailWire
	r, err := c.call(ctx, http.MethodPost, "/auth/email/verify", map[string]string{"token": token}, "",
		http.StatusOK, &w, token)
	if err != nil {
		return nil, err
	}
	return w.state(r, true)
}

// ResendVerification asks for a new verification mail for the logged-in
// account. An address already verified matches ErrConflict; too many
// requests ErrRateLimited.
func (c *Client) ResendVerification(ctx context.Context, accessToken string) error {
	_, err := c.bearerCall(ctx, http.MethodPost, "/auth/email/resend", struct{}{}, accessToken, http.StatusAccepted, nil)
	return err
}

// ResendVerificationFor asks for a new verification mail without a session,
// for an account that cannot log in until it is verified. The server
// answers the same whether or not the account exists.
func (c *Client) ResendVerificationFor(ctx context.Context, identifier string) error {
	if strings.TrimSpace(identifier) == "" {
		return fmt.Errorf("POST /auth/email/resend: %w: no username or email given", ErrValidation)
	}
	_, err := c.call(ctx, http.MethodPost, "/auth/email/resend", map[string]string{"identifier": identifier}, "",
		http.StatusAccepted, nil)
	return err
}

// ChangeEmail replaces the account's email address; the new one is
// unverified until the mail sent to it is confirmed. A wrong password
// matches ErrInvalidCredentials, a taken address ErrConflict.
func (c *Client) ChangeEmail(ctx context.Context, accessToken, newEmail, password string) (*EmailState, error) {
	var w emailWire
	r, err := c.bearerCall(ctx, http.MethodPost, "/auth/email/change",
		map[string]string{"new_email": newEmail, "password": password}, accessToken, http.StatusAccepted, &w, password)
	if err != nil {
		return nil, err
	}
	return w.state(r, false)
}

// ForgotPassword asks the server to mail a password-reset token for the
// account named by identifier (username or email). The answer is the same
// whether or not such an account exists, so success says nothing about it.
func (c *Client) ForgotPassword(ctx context.Context, identifier string) error {
	if strings.TrimSpace(identifier) == "" {
		return fmt.Errorf("POST /auth/password/forgot: %w: no username or email given", ErrValidation)
	}
	_, err := c.call(ctx, http.MethodPost, "/auth/password/forgot", map[string]string{"identifier": identifier}, "",
		http.StatusAccepted, nil)
	return err
}

// ResetPassword sets a new password with the token from a reset mail; the
// server then ends every session of the account. code is a TOTP or backup
// code, needed only when the account has two-factor on: without it the
// answer matches ErrMFARequired, with a wrong one ErrInvalidCode. A bad token
// matches ErrTokenInvalid, ErrTokenExpired or ErrTokenUsed; a password the
// policy refuses, ErrValidation.
func (c *Client) ResetPassword(ctx context.Context, token, newPassword, code string) error {
	if strings.TrimSpace(token) == "" {
		return fmt.Errorf("POST /auth/password/reset: %w: no token given", ErrTokenInvalid)
	}
	body := map[string]string{"token": token, "new_password": newPassword}
	if code != "" {
		body["code"] = code
	}
	_, err := c.call(ctx, http.MethodPost, "/auth/password/reset", body, "", http.StatusNoContent, nil,
		token, newPassword, code)
	return err
}

// MFAChange is the answer to turning two-factor on or off.
type MFAChange struct {
	// BackupCodes are the new backup codes (turning on only); the server
	// never shows them again.
	BackupCodes []string
	// OtherSessions counts the account's sessions other than the caller's
	// left after the call; -1 when the server did not say.
	OtherSessions int
}

// MFAEnableSessions is MFAEnable that can also end the account's other
// sessions, and says how many are left.
func (c *Client) MFAEnableSessions(ctx context.Context, accessToken, code string, endOthers bool) (*MFAChange, error) {
	body := map[string]any{"code": code}
	if endOthers {
		body["end_other_sessions"] = true
	}
	var w struct {
		Codes         []string `json:"backup_codes"`
		OtherSessions *int     `json:"other_sessions"`
	}
	r, err := c.bearerCall(ctx, http.MethodPost, "/auth/mfa/enable", body, accessToken, http.StatusOK, &w, code)
	if err != nil {
		return nil, err
	}
	if len(w.Codes) == 0 {
		return nil, shapeError(r, "has no backup_codes")
	}
	for i, bc := range w.Codes {
		if strings.TrimSpace(bc) == "" {
			return nil, shapeError(r, fmt.Sprintf("has an empty backup code (index %d)", i))
		}
	}
	return &MFAChange{BackupCodes: w.Codes, OtherSessions: otherSessions(w.OtherSessions)}, nil
}

// MFADisableSessions is MFADisable that can also end the account's other
// sessions, and says how many are left. It takes both answers a server may
// give: 200 with other_sessions, or 204 from one that predates it.
func (c *Client) MFADisableSessions(ctx context.Context, accessToken, code string, endOthers bool) (*MFAChange, error) {
	if accessToken == "" {
		return nil, fmt.Errorf("POST /auth/mfa/disable: %w: no access token; log in first", ErrUnauthorized)
	}
	body := map[string]any{"code": code}
	if endOthers {
		body["end_other_sessions"] = true
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("POST /auth/mfa/disable: encoding request: %w", err)
	}
	r, err := c.exchange(ctx, http.MethodPost, "/auth/mfa/disable", raw, accessToken)
	if err != nil {
		return nil, err
	}
	if r.status == http.StatusNoContent {
		return &MFAChange{OtherSessions: -1}, nil
	}
	if err := checkStatus(r, http.StatusOK, code, accessToken); err != nil {
		return nil, err
	}
	var w struct {
		OtherSessions *int `json:"other_sessions"`
	}
	if err := decodeJSON(r, &w); err != nil {
		return nil, err
	}
	return &MFAChange{OtherSessions: otherSessions(w.OtherSessions)}, nil
}

func otherSessions(n *int) int {
	if n == nil || *n < 0 {
		return -1
	}
	return *n
}

// DevMessage is one mail in a development server's mailbox (latch serve
// --dev, latch demo).
type DevMessage struct {
	ID        string
	To        string
	Subject   string
	Kind      string // verify-email, password-reset, a notice…
	Text      string
	HTML      string
	CreatedAt time.Time
}

// Token is the single-use token a verify-email or password-reset mail
// carries: the value of the link's ?token= parameter, else the line of the
// text that looks like one. "" when there is none.
func (m DevMessage) Token() string { return MailToken(m.Text) }

// MailToken finds the token in a mail's text: the value of a ?token=
// parameter in a link, else a line on its own that is one base64url word of
// at least 32 characters (the server's tokens are 43).
func MailToken(text string) string {
	if i := strings.Index(text, "token="); i >= 0 {
		rest := text[i+len("token="):]
		end := strings.IndexFunc(rest, func(r rune) bool { return !isTokenRune(r) })
		if end < 0 {
			end = len(rest)
		}
		if end >= 32 {
			return rest[:end]
		}
	}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if len(line) >= 32 && strings.IndexFunc(line, func(r rune) bool { return !isTokenRune(r) }) < 0 {
			return line
		}
	}
	return ""
}

func isTokenRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
}

// DevMail lists a development server's mailbox, newest first. A server
// without one (not --dev) matches ErrNotFound.
func (c *Client) DevMail(ctx context.Context) ([]DevMessage, error) {
	var w struct {
		Messages *[]struct {
			ID        flexID    `json:"id"`
			To        string    `json:"to"`
			Subject   string    `json:"subject"`
			Kind      string    `json:"kind"`
			Text      string    `json:"text"`
			HTML      string    `json:"html"`
			CreatedAt time.Time `json:"created_at"`
		} `json:"messages"`
	}
	r, err := c.call(ctx, http.MethodGet, "/dev/mail", nil, "", http.StatusOK, &w)
	if err != nil {
		return nil, err
	}
	if w.Messages == nil {
		return nil, shapeError(r, "has no messages list")
	}
	out := make([]DevMessage, 0, len(*w.Messages))
	for _, m := range *w.Messages {
		out = append(out, DevMessage{ID: string(m.ID), To: m.To, Subject: m.Subject, Kind: m.Kind, Text: m.Text,
			HTML: m.HTML, CreatedAt: m.CreatedAt})
	}
	return out, nil
}

type emailWire struct {
	Email         string `json:"email"`
	EmailVerified *bool  `json:"email_verified"`
}

// state checks the answer's shape: an email, and the verified flag the
// endpoint promises (true after verify, false after a change).
func (w emailWire) state(r *reply, want bool) (*EmailState, error) {
	if w.Email == "" {
		return nil, shapeError(r, "has no email")
	}
	if w.EmailVerified == nil || *w.EmailVerified != want {
		return nil, shapeError(r, fmt.Sprintf("does not say email_verified: %t", want))
	}
	return &EmailState{Email: w.Email, Verified: want}, nil
}
