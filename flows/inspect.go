package flows

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// TokenView is an access token taken apart for display. It is decoded, not
// verified: the server verifies tokens, the inspector only shows them.
type TokenView struct {
	Header    map[string]any
	Claims    map[string]any
	Signature string // base64url, as sent; shown only on request
}

// Inspect decodes the profile's current access token (refreshing it first
// if needed, like any other use).
func (e *Env) Inspect(ctx context.Context, profile string) (*TokenView, error) {
	tok, err := e.Token(ctx, profile)
	if err != nil {
		return nil, err
	}
	return DecodeJWT(tok)
}

// DecodeJWT splits a compact JWS into its header and claims without
// verifying it. Errors never quote the token.
func DecodeJWT(tok string) (*TokenView, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("the access token is not a JWT (%d parts, want 3)", len(parts))
	}
	var v TokenView
	for i, dst := range []*map[string]any{&v.Header, &v.Claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return nil, fmt.Errorf("the access token's %s is not base64url", [...]string{"header", "claims"}[i])
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return nil, fmt.Errorf("the access token's %s is not a JSON object", [...]string{"header", "claims"}[i])
		}
	}
	v.Signature = parts[2]
	return &v, nil
}
