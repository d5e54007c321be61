package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// AuthConfig is the server's public policy from GET /auth/config.
type AuthConfig struct {
	Issuer          string
	JWKSURI         string
	Username        UsernamePolicy
	EmailMaxLength  int
	Password        PasswordPolicy
	MFAMethods      []string
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	SessionMaxAge   time.Duration
	ReuseGrace      time.Duration
}

// UsernamePolicy bounds a username; Pattern is the server's regular
// expression, passed through as sent.
type UsernamePolicy struct {
	MinLength, MaxLength int
	Pattern              string
}

// PasswordPolicy bounds a password; MinScore is a zxcvbn score (0–4).
type PasswordPolicy struct {
	MinLength, MaxLength, MinScore int
}

// Tokens is a token pair from login or refresh. Expiries are relative to when
// the response arrived. String and GoString redact, so printing a Tokens by
// mistake leaks nothing.
type Tokens struct {
	AccessToken      string
	TokenType        string
	ExpiresIn        time.Duration
	RefreshToken     string
	RefreshExpiresIn time.Duration
	// IDToken is the OpenID Connect ID token (a JWT), from an OpenID
	// provider only; "" otherwise.
	IDToken string
}

func (t Tokens) String() string {
	id := ""
	if t.IDToken != "" {
		id = "[redacted]"
	}
	return fmt.Sprintf("Tokens{AccessToken:[redacted] TokenType:%s ExpiresIn:%s RefreshToken:[redacted] RefreshExpiresIn:%s IDToken:%s}",
		t.TokenType, t.ExpiresIn, t.RefreshExpiresIn, id)
}

// GoString redacts for %#v too.
func (t Tokens) GoString() string { return t.String() }

// User is the account behind an access token.
type User struct {
	ID         int64
	Username   string
	Email      string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	MFAEnabled bool
	// EmailVerified says whether the email address is proven to be the
	// user's; nil when the server did not say (an older server).
	EmailVerified *bool
	// Roles are the account's roles, least privileged first; nil when the
	// server did not say (a server without roles).
	Roles []string
}

// Session is one login session of the current user.
type Session struct {
	ID         string // opaque; pass it to RevokeSession
	CreatedAt  time.Time
	LastUsedAt time.Time
	ExpiresAt  time.Time
	UserAgent  string
	Current    bool // the session the access token belongs to
}

// Config fetches the server's public policy.
func (c *Client) Config(ctx context.Context) (*AuthConfig, error) {
	var w struct {
		Issuer   string `json:"issuer"`
		JWKSURI  string `json:"jwks_uri"`
		Username struct {
			MinLength int    `json:"min_length"`
			MaxLength int    `json:"max_length"`
			Pattern   string `json:"pattern"`
		} `json:"username"`
		Email struct {
			MaxLength int `json:"max_length"`
		} `json:"email"`
		Password struct {
			MinLength int `json:"min_length"`
			MaxLength int `json:"max_length"`
			MinScore  int `json:"min_score"`
		} `json:"password"`
		MFAMethods      []string `json:"mfa_methods"`
		AccessTokenTTL  seconds  `json:"access_token_ttl"`
		RefreshTokenTTL seconds  `json:"refresh_token_ttl"`
		SessionMaxAge   seconds  `json:"session_max_age"`
		ReuseGrace      seconds  `json:"reuse_grace"`
	}
	r, err := c.call(ctx, http.MethodGet, "/auth/config", nil, "", http.StatusOK, &w)
	if err != nil {
		return nil, err
	}
	switch {
	case w.Username.MaxLength <= 0 || w.Username.MinLength > w.Username.MaxLength:
		return nil, shapeError(r, "has no valid username length bounds")
	case w.Password.MinLength <= 0 || (w.Password.MaxLength != 0 && w.Password.MinLength > w.Password.MaxLength):
		return nil, shapeError(r, "has no valid password length bounds")
	case w.AccessTokenTTL <= 0:
		return nil, shapeError(r, "has no access_token_ttl")
	}
	return &AuthConfig{
		Issuer:          w.Issuer,
		JWKSURI:         w.JWKSURI,
		Username:        UsernamePolicy{MinLength: w.Username.MinLength, MaxLength: w.Username.MaxLength, Pattern: w.Username.Pattern},
		EmailMaxLength:  w.Email.MaxLength,
		Password:        PasswordPolicy{MinLength: w.Password.MinLength, MaxLength: w.Password.MaxLength, MinScore: w.Password.MinScore},
		MFAMethods:      w.MFAMethods,
		AccessTokenTTL:  time.Duration(w.AccessTokenTTL),
		RefreshTokenTTL: time.Duration(w.RefreshTokenTTL),
		SessionMaxAge:   time.Duration(w.SessionMaxAge),
		ReuseGrace:      time.Duration(w.ReuseGrace),
	}, nil
}

// Register creates an account and returns its user id, or 0 when the server
// keeps it to itself (one that requires verified emails answers a taken
// address like a new one, so it names no id). A taken username or
// email is an *APIError matching ErrConflict, bad input one matching
// ErrValidation; both carry per-field messages in Fields.
func (c *Client) Register(ctx context.Context, username, email, password string) (int64, error) {
	body := map[string]string{"username": username, "email": email, "password": password}
	var w struct {
		UserID *int64 `json:"user_id"`
	}
	r, err := c.call(ctx, http.MethodPost, "/auth/register", body, "", http.StatusCreated, &w, password)
	if err != nil {
		return 0, err
	}
	switch {
	case w.UserID == nil:
		return 0, nil
	case *w.UserID <= 0:
		return 0, shapeError(r, "has a user_id that is not positive")
	}
	return *w.UserID, nil
}

// Login exchanges an identifier (username or email) and password for tokens.
// When the account has a second factor, it returns a nil *Tokens and a
// *MFARequiredError (matching ErrMFARequired) that carries the mfa_token.
// Wrong credentials match ErrInvalidCredentials.
func (c *Client) Login(ctx context.Context, identifier, password string) (*Tokens, error) {
	body := map[string]string{"identifier": identifier, "password": password}
	var w struct {
		tokenWire
		MFARequired bool     `json:"mfa_required"`
		MFAToken    string   `json:"mfa_token"`
		MFAMethods  []string `json:"mfa_methods"`
	}
	r, err := c.call(ctx, http.MethodPost, "/auth/login", body, "", http.StatusOK, &w, password)
	if err != nil {
		return nil, err
	}
	if w.MFARequired || w.MFAToken != "" {
		if w.MFAToken == "" {
			return nil, shapeError(r, "asks for a second factor but has no mfa_token")
		}
		return nil, &MFARequiredError{Token: w.MFAToken, Methods: w.MFAMethods}
	}
	return w.tokens(r, password)
}

// Refresh trades a refresh token for a new pair; the old refresh token is
// spent, so persist the new one before using the access token. A reused token
// matches ErrReuseDetected (the whole session is revoked), an unknown or
// expired one ErrInvalidRefreshToken; both mean "log in again".
func (c *Client) Refresh(ctx context.Context, refreshToken string) (*Tokens, error) {
	var w tokenWire
	r, err := c.call(ctx, http.MethodPost, "/auth/refresh", map[string]string{"refresh_token": refreshToken},
		"", http.StatusOK, &w, refreshToken)
	if err != nil {
		return nil, err
	}
	return w.tokens(r, refreshToken)
}

// Logout ends the session the refresh token belongs to.
func (c *Client) Logout(ctx context.Context, refreshToken string) error {
	_, err := c.call(ctx, http.MethodPost, "/auth/logout", map[string]string{"refresh_token": refreshToken},
		"", http.StatusNoContent, nil, refreshToken)
	return err
}

// Me returns the account the access token belongs to.
func (c *Client) Me(ctx context.Context, accessToken string) (*User, error) {
	var w struct {
		ID         *int64    `json:"id"`
		Username   string    `json:"username"`
		Email      string    `json:"email"`
		CreatedAt  time.Time `json:"created_at"`
		UpdatedAt  time.Time `json:"updated_at"`
		MFAEnabled bool      `json:"mfa_enabled"`
		Verified   *bool     `json:"email_verified"`
		Roles      []string  `json:"roles"`
	}
	r, err := c.bearerCall(ctx, http.MethodGet, "/auth/me", nil, accessToken, http.StatusOK, &w)
	if err != nil {
		return nil, err
	}
	if w.ID == nil || w.Username == "" {
		return nil, shapeError(r, "has no id or username")
	}
	return &User{ID: *w.ID, Username: w.Username, Email: w.Email, CreatedAt: w.CreatedAt,
		UpdatedAt: w.UpdatedAt, MFAEnabled: w.MFAEnabled, EmailVerified: w.Verified, Roles: w.Roles}, nil
}

// Protected calls the demo endpoint and returns the username it names.
func (c *Client) Protected(ctx context.Context, accessToken string) (string, error) {
	var w struct {
		LoggedInAs string `json:"logged_in_as"`
	}
	r, err := c.bearerCall(ctx, http.MethodGet, "/auth/protected", nil, accessToken, http.StatusOK, &w)
	if err != nil {
		return "", err
	}
	if w.LoggedInAs == "" {
		return "", shapeError(r, "has no logged_in_as")
	}
	return w.LoggedInAs, nil
}

// Sessions lists the current user's sessions.
func (c *Client) Sessions(ctx context.Context, accessToken string) ([]Session, error) {
	var w struct {
		Sessions *[]struct {
			ID         flexID    `json:"id"`
			CreatedAt  time.Time `json:"created_at"`
			LastUsedAt time.Time `json:"last_used_at"`
			ExpiresAt  time.Time `json:"expires_at"`
			UserAgent  string    `json:"user_agent"`
			Current    bool      `json:"current"`
		} `json:"sessions"`
	}
	r, err := c.bearerCall(ctx, http.MethodGet, "/auth/sessions", nil, accessToken, http.StatusOK, &w)
	if err != nil {
		return nil, err
	}
	if w.Sessions == nil {
		return nil, shapeError(r, "has no sessions list")
	}
	out := make([]Session, 0, len(*w.Sessions))
	for i, s := range *w.Sessions {
		if s.ID == "" {
			return nil, shapeError(r, fmt.Sprintf("has a session without id (index %d)", i))
		}
		out = append(out, Session{ID: string(s.ID), CreatedAt: s.CreatedAt, LastUsedAt: s.LastUsedAt,
			ExpiresAt: s.ExpiresAt, UserAgent: s.UserAgent, Current: s.Current})
	}
	return out, nil
}

// RevokeSession ends one of the current user's sessions by id; an unknown id
// matches ErrNotFound.
func (c *Client) RevokeSession(ctx context.Context, accessToken, id string) error {
	if id == "" {
		return errors.New("revoke session: no session id given")
	}
	_, err := c.bearerCall(ctx, http.MethodDelete, "/auth/sessions/"+url.PathEscape(id), nil, accessToken,
		http.StatusNoContent, nil)
	return err
}

// ChangePassword replaces the current user's password. A wrong current
// password or a weak new one comes back as an *APIError with Fields.
func (c *Client) ChangePassword(ctx context.Context, accessToken, current, next string) error {
	body := map[string]string{"current_password": current, "new_password": next}
	_, err := c.bearerCall(ctx, http.MethodPost, "/auth/password", body, accessToken, http.StatusNoContent, nil,
		current, next)
	return err
}

// Health checks that the server is up and says so.
func (c *Client) Health(ctx context.Context) error {
	var w struct {
		Status string `json:"status"`
	}
	r, err := c.call(ctx, http.MethodGet, "/healthz", nil, "", http.StatusOK, &w)
	if err != nil {
		return err
	}
	if w.Status != "ok" {
		return shapeError(r, fmt.Sprintf("reports status %q, not \"ok\"", w.Status))
	}
	return nil
}

// bearerCall is call for endpoints that need an access token.
func (c *Client) bearerCall(ctx context.Context, method, path string, body any, accessToken string, want int,
	out any, secrets ...string) (*reply, error) {
	if accessToken == "" {
		return nil, fmt.Errorf("%s %s: %w: no access token; log in first", method, path, ErrUnauthorized)
	}
	return c.call(ctx, method, path, body, accessToken, want, out, append(secrets, accessToken)...)
}

// call sends body as JSON, checks the status is want and, if out is non-nil,
// decodes the JSON answer into it. secrets are values the server must not be
// able to echo into an error message.
func (c *Client) call(ctx context.Context, method, path string, body any, token string, want int, out any,
	secrets ...string) (*reply, error) {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return nil, fmt.Errorf("%s %s: encoding request: %w", method, path, err)
		}
	}
	r, err := c.exchange(ctx, method, path, raw, token)
	if err != nil {
		return nil, err
	}
	if err := checkStatus(r, want, secrets...); err != nil {
		return r, err
	}
	if out != nil {
		if err := decodeJSON(r, out); err != nil {
			// A decode error can quote a value of the answer (a time
			// that does not parse), which the server may have echoed.
			var re *ResponseError
			if errors.As(err, &re) {
				re.Reason = redact(re.Reason, secrets)
			}
			return r, err
		}
	}
	return r, nil
}

type tokenWire struct {
	AccessToken      string  `json:"access_token"`
	TokenType        string  `json:"token_type"`
	ExpiresIn        seconds `json:"expires_in"`
	RefreshToken     string  `json:"refresh_token"`
	RefreshExpiresIn seconds `json:"refresh_expires_in"`
}

// tokens checks the answer's shape; secrets are what the call sent, kept out
// of the error.
func (w tokenWire) tokens(r *reply, secrets ...string) (*Tokens, error) {
	switch {
	case w.AccessToken == "":
		return nil, shapeError(r, "has no access_token")
	case w.RefreshToken == "":
		return nil, shapeError(r, "has no refresh_token")
	case !strings.EqualFold(w.TokenType, "Bearer"):
		// Redacted: the server could echo a secret the call sent.
		return nil, shapeError(r, fmt.Sprintf("has token_type %q, want \"Bearer\"", redact(w.TokenType, secrets)))
	case w.ExpiresIn <= 0:
		return nil, shapeError(r, "has no positive expires_in")
	}
	return &Tokens{AccessToken: w.AccessToken, TokenType: "Bearer", ExpiresIn: time.Duration(w.ExpiresIn),
		RefreshToken: w.RefreshToken, RefreshExpiresIn: time.Duration(w.RefreshExpiresIn)}, nil
}

// seconds decodes a JSON number of seconds.
type seconds time.Duration

func (s *seconds) UnmarshalJSON(b []byte) error {
	var f *float64
	if err := json.Unmarshal(b, &f); err != nil {
		return errors.New("a duration is not a number of seconds")
	}
	if f == nil {
		return nil
	}
	if *f < 0 || *f > 1e9 {
		return errors.New("a duration in seconds is out of range")
	}
	*s = seconds(*f * float64(time.Second))
	return nil
}

// flexID accepts an id sent as a JSON string or number.
type flexID string

func (id *flexID) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*id = flexID(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("a session id is neither a string nor a number")
	}
	if _, err := strconv.ParseFloat(n.String(), 64); err != nil {
		return errors.New("a session id is not a valid number")
	}
	*id = flexID(n.String())
	return nil
}
