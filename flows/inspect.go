package flows

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latch-dev/latch/vault"
)

// TokenView is an access token taken apart for display. It is decoded, not
// verified: the server verifies tokens, the inspector only shows them.
type TokenView struct {
	Header    map[string]any
	Claims    map[string]any
	Signature string // base64url, as sent; shown only on request
	// RawHeader and RawClaims are the JSON as sent, for output that keeps
	// the token's own numbers and order (latch jwt decode --json).
	RawHeader, RawClaims json.RawMessage
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

// DecodeJWT takes a compact JWS apart without verifying it: go-jose parses
// it, and the header and claims are decoded for display. Errors say what is
// wrong with the token and never quote it.
func DecodeJWT(tok string) (*TokenView, error) { return decodeJWT(tok, "access token") }

// DecodeAnyJWT is DecodeJWT for a token of unknown origin (latch jwt decode).
func DecodeAnyJWT(tok string) (*TokenView, error) { return decodeJWT(tok, "token") }

// signatureAlgorithms are every JWS algorithm go-jose knows: decoding shows
// whatever a token says, and verification is what judges the algorithm.
var signatureAlgorithms = []jose.SignatureAlgorithm{
	jose.EdDSA, jose.HS256, jose.HS384, jose.HS512, jose.RS256, jose.RS384, jose.RS512,
	jose.ES256, jose.ES384, jose.ES512, jose.PS256, jose.PS384, jose.PS512,
}

func decodeJWT(tok, what string) (*TokenView, error) {
	parts := strings.Split(tok, ".")
	switch len(parts) {
	case 3:
	case 5:
		return nil, fmt.Errorf("the %s is encrypted (a JWE: 5 parts): only the key of its recipient can open it, and latch decodes signed JWTs (3 parts)", what)
	default:
		n := fmt.Sprintf("%d parts", len(parts))
		if len(parts) == 1 {
			n = "1 part (no dots)"
		}
		return nil, fmt.Errorf("the %s is not a JWT: %s, want 3 (header.claims.signature)", what, n)
	}
	var v TokenView
	// The header is decoded here for display (go-jose keeps only the
	// fields it knows); its errors name the part that is wrong.
	raw, err := decodePart(parts[0], what, "header")
	if err != nil {
		return nil, err
	}
	v.Header, v.RawHeader = raw.obj, raw.text
	alg, _ := v.Header["alg"].(string)
	if slices.Contains(signatureAlgorithms, jose.SignatureAlgorithm(alg)) {
		jws, perr := jose.ParseSignedCompact(tok, signatureAlgorithms)
		if perr != nil {
			return nil, fmt.Errorf("the %s is not a well-formed JWS: %s", what, quoteless(perr.Error(), parts))
		}
		raw, err = jsonObject(jws.UnsafePayloadWithoutVerification(), what, "claims")
	} else {
		// alg "none", or one go-jose does not know: nothing can verify
		// it, but the claims are still worth seeing.
		raw, err = decodePart(parts[1], what, "claims")
	}
	if err != nil {
		return nil, err
	}
	v.Claims, v.RawClaims = raw.obj, raw.text
	v.Signature = parts[2]
	return &v, nil
}

// jsonPart is a decoded header or claims: the object, and its JSON as sent
// (for output that keeps the token's numbers and order).
type jsonPart struct {
	obj  map[string]any
	text json.RawMessage
}

func decodePart(b64, what, part string) (jsonPart, error) {
	raw, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil {
		return jsonPart{}, fmt.Errorf("the %s has bad base64 in its %s (want base64url without padding)", what, part)
	}
	return jsonObject(raw, what, part)
}

func jsonObject(raw []byte, what, part string) (jsonPart, error) {
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return jsonPart{}, fmt.Errorf("the %s's %s is not a JSON object", what, part)
	}
	return jsonPart{obj: obj, text: json.RawMessage(raw)}, nil
}

// quoteless is msg, or a generic word when msg quotes a part of the token.
func quoteless(msg string, parts []string) string {
	for _, p := range parts {
		if len(p) >= 8 && strings.Contains(msg, p) {
			return "go-jose refused it"
		}
	}
	return msg
}

// timeClaims hold a Unix time (RFC 7519 §4.1, OpenID Connect Core §2).
var timeClaims = map[string]bool{"exp": true, "iat": true, "nbf": true, "auth_time": true}

// ClaimTime is the time a claim holds when it is one of the time claims
// (exp, iat, nbf, auth_time) and a plausible number of seconds; both front
// ends show such a claim as a time, so they must agree on which ones are.
func ClaimTime(name string, v any) (time.Time, bool) {
	f, ok := v.(float64)
	if !ok || !timeClaims[name] || f <= 0 || f > math.MaxInt32*4 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// ClaimTimeNote is what time claim name at t means at now: "expired" for an
// exp not after now, "not valid yet" for an nbf after now, else "".
func ClaimTimeNote(name string, t, now time.Time) string {
	switch {
	case name == "exp" && !t.After(now):
		return "expired"
	case name == "nbf" && t.After(now):
		return "not valid yet"
	}
	return ""
}
