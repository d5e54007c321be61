package flows

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/latch-dev/latch/vault"
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

// TokenFor hands out a valid access token for the named profile ("" = the
// current one), with its expiry, for the integrations. It refreshes through
// the token manager exactly as Token does (single-flight across every latch
// process), and never logs in: a session that cannot be refreshed is an
// error matching ErrLoginRequired. A profile this machine does not have is
// asked of Forward, when one is set.
func (e *Env) TokenFor(ctx context.Context, profile string, opts TokenOptions) (*IssuedToken, error) {
	if opts.MinValid < 0 {
		return nil, fmt.Errorf("a token cannot be asked to stay valid for a negative time (%s)", opts.MinValid)
	}
	p, err := e.Profile(profile)
	if err != nil {
		if e.Forward != nil && (errors.Is(err, ErrUnknownProfile) || errors.Is(err, ErrNoProfile)) {
			return e.Forward.Token(ctx, profile, opts)
		}
		return nil, err
	}
	if opts.IDToken && p.Kind != vault.KindOIDC {
		// Checked first, so that a useless request refreshes nothing.
		return nil, &matchError{fmt.Sprintf("profile %q is a latch account, which has no ID token", p.Name), ErrNoIDToken}
	}
	r, err := e.refresher(p)
	if err != nil {
		return nil, err
	}
	tm := e.Tokens()
	tok, exp, err := tm.ValidToken(ctx, p.Name, r, opts.MinValid)
	if err != nil {
		return nil, err
	}
	it := &IssuedToken{Profile: p.Name, AccessToken: tok, TokenType: "Bearer", Expiry: exp}
	if opts.IDToken {
		// The session cache keeps access tokens only: the ID token costs
		// a vault read, paid only by those who ask for it.
		if it.IDToken, err = tm.IDToken(ctx, p.Name); err != nil {
			return nil, err
		}
		if it.IDToken == "" {
			return nil, &matchError{fmt.Sprintf("profile %q has no saved ID token (the provider sent none, or one too large to keep); "+
				"log in again with latch login --profile %s", p.Name, p.Name), ErrNoIDToken}
		}
	}
	return it, nil
}

// ErrNoIDToken means an ID token was asked for a profile that has none.
var ErrNoIDToken = errors.New("no ID token")

// ErrMinValid means a token was asked to stay valid for longer than the
// profile's access tokens last at all.
var ErrMinValid = errors.New("access tokens do not last that long")

// ValidToken is AccessToken for the integrations: it also returns when the
// token expires, and refreshes first when the token would expire within
// minValid (counted in whole seconds, as expiry times are kept), so that a
// long job gets a token that outlives it. When the profile's tokens do not
// last minValid at all, the error matches ErrMinValid and nothing is
// refreshed for it.
func (m *TokenManager) ValidToken(ctx context.Context, profile string, r Refresher, minValid time.Duration) (string, time.Time, error) {
	st, err := m.valid(ctx, profile, r, minValid)
	if err != nil {
		return "", time.Time{}, err
	}
	return st.Access, time.Unix(st.AccessExp, 0), nil
}

// checkLasts hands out a freshly rotated st, unless even it does not last
// minValid (the server issues shorter tokens than asked for).
func (m *TokenManager) checkLasts(profile string, st *storedTokens, minValid time.Duration) (*storedTokens, error) {
	if !st.lastsFor(m.now(), minValid) {
		return nil, tooShort(profile, st, minValid)
	}
	return st, nil
}

// tooShort says that profile's access tokens do not last minValid.
func tooShort(profile string, st *storedTokens, minValid time.Duration) error {
	return &matchError{fmt.Sprintf("profile %q: its access tokens last %s, less than the %s asked for",
		profile, st.lifetime(), minValid), ErrMinValid}
}

// lifetime is how long the access token lasts from issue to expiry.
func (s *storedTokens) lifetime() time.Duration {
	return time.Duration(s.AccessExp-s.Issued) * time.Second
}

// lastsFor reports whether the access token stays valid for d from now, in
// whole seconds like the times kept: a token issued at now lasts exactly
// its lifetime.
func (s *storedTokens) lastsFor(now time.Time, d time.Duration) bool {
	return d <= 0 || time.Unix(s.AccessExp, 0).Sub(time.Unix(now.Unix(), 0)) >= d
}

// usableFor is usable, and the token also lasts minValid.
func (s *storedTokens) usableFor(now time.Time, minValid time.Duration) bool {
	return s.usable(now) && s.lastsFor(now, minValid)
}

// matchError is an error that matches a sentinel without repeating the
// sentinel's words in its message.
type matchError struct {
	msg    string
	target error
}

func (e *matchError) Error() string        { return e.msg }
func (e *matchError) Is(target error) bool { return target == e.target }
