package flows

import (
	"context"
	"time"
)

// IssuedToken is a valid access token as the integrations hand it out
// (latch token --json, latch exec, the kubectl, git and docker helpers).
type IssuedToken struct {
	Profile     string
	AccessToken string
	TokenType   string // "Bearer"
	Expiry      time.Time
	IDToken     string // only when asked for, and only for an OpenID profile
}

// TokenOptions tunes what TokenFor hands out.
type TokenOptions struct {
	// MinValid: refresh first when the token would expire sooner than this.
	MinValid time.Duration
	// IDToken: include the profile's ID token.
	IDToken bool
}

// TokenSource hands out access tokens that this machine's vault does not
// hold (a forwarded latch agent). It never logs in.
type TokenSource interface {
	Token(ctx context.Context, profile string, opts TokenOptions) (*IssuedToken, error)
}
