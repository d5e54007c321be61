package flows

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/latch-dev/latch/vault"
)

// TokenView is an access token taken apart for display. It is decoded, not
// verified: the server verifies tokens, the inspector only shows them.
type TokenView struct {
	Header    map[string]any
	Claims    map[string]any
	Signature string // base64url, as sent; shown only on request
	// Opaque: the access token is not a JWT (many OpenID providers issue
	// opaque ones); Header, Claims and Signature are then empty.
	Opaque bool
	// ID is an OpenID profile's ID token, decoded; nil when none is saved.
	ID *TokenView
}

// Inspect decodes the profile's current access token (refreshing it first
// if needed, like any other use) and, for an OpenID profile, its ID token.
func (e *Env) Inspect(ctx context.Context, profile string) (*TokenView, error) {
	p, err := e.Profile(profile)
	if err != nil {
		return nil, err
	}
	tok, err := e.Token(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	v, err := DecodeJWT(tok)
	if p.Kind != vault.KindOIDC {
		return v, err
	}
	if err != nil {
		v = &TokenView{Opaque: true}
	}
	id, err := e.Tokens().IDToken(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	if id != "" {
		if v.ID, err = decodeJWT(id, "saved ID token"); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// DecodeJWT splits a compact JWS into its header and claims without
// verifying it. Errors never quote the token.
func DecodeJWT(tok string) (*TokenView, error) { return decodeJWT(tok, "access token") }

func decodeJWT(tok, what string) (*TokenView, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("the %s is not a JWT (%d parts, want 3)", what, len(parts))
	}
	var v TokenView
	for i, dst := range []*map[string]any{&v.Header, &v.Claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return nil, fmt.Errorf("the %s's %s is not base64url", what, [...]string{"header", "claims"}[i])
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return nil, fmt.Errorf("the %s's %s is not a JSON object", what, [...]string{"header", "claims"}[i])
		}
	}
	v.Signature = parts[2]
	return &v, nil
}
