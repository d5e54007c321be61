package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/flows"
)

// jwtCheck is one check of latch jwt verify. A skipped check (no flag to
// compare with) neither passes nor fails.
type jwtCheck struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Skipped bool   `json:"skipped,omitempty"`
	Detail  string `json:"detail"`
}

// verifyJSON is latch jwt verify --json.
type verifyJSON struct {
	Valid  bool            `json:"valid"`
	Keys   string          `json:"keys"` // the key set's URL
	Checks []jwtCheck      `json:"checks"`
	Header json.RawMessage `json:"header"`
	Claims json.RawMessage `json:"claims"`
}

// verifyRun checks tok and prints the checks. A failed check is exit 1
// after the report; keys that cannot be fetched are an error, not a
// verdict on the token.
func verifyRun(ctx context.Context, o *jwtOptions, tok string) error {
	v, err := flows.DecodeAnyJWT(tok)
	if err != nil {
		return err
	}
	keys, err := o.keySet(ctx)
	if err != nil {
		return err
	}
	sig, err := signatureCheck(ctx, keys, tok, v)
	if err != nil {
		return err
	}
	now := o.clock()
	out := verifyJSON{Keys: keys.URL, Header: v.RawHeader, Claims: v.RawClaims,
		Checks: []jwtCheck{sig, issCheck(v.Claims, o.Issuer), audCheck(v.Claims, o.Audience),
			expCheck(v.Claims, now), nbfCheck(v.Claims, now)}}
	out.Valid = !slices.ContainsFunc(out.Checks, func(c jwtCheck) bool { return !c.OK && !c.Skipped })
	if o.JSON {
		if err := writeRawJSON(o.g.out, out); err != nil {
			return err
		}
	} else {
		printChecks(o.g.out, out)
	}
	if !out.Valid {
		return silentError{errInvalidJWT}
	}
	return nil
}

// keySet is --jwks's key set, else the one --issuer's discovery names.
func (o *jwtOptions) keySet(ctx context.Context) (*client.KeySet, error) {
	opts := o.g.clientOptions()
	if o.JWKS != "" {
		return client.NewKeySet(ctx, o.JWKS, opts)
	}
	// Discovery needs no client id; the one given is never sent.
	p, err := client.Discover(ctx, o.Issuer, "latch-jwt-verify", opts)
	if err != nil {
		return nil, err
	}
	return p.Keys(ctx)
}

func signatureCheck(ctx context.Context, keys *client.KeySet, tok string, v *flows.TokenView) (jwtCheck, error) {
	c := jwtCheck{Name: "signature"}
	alg, _ := v.Header["alg"].(string)
	kid, _ := v.Header["kid"].(string)
	key := "a key"
	if kid != "" {
		key = "key " + fmt.Sprintf("%q", printable(kid))
	}
	_, err := keys.VerifySignature(ctx, tok)
	switch {
	case errors.Is(err, client.ErrBadSignature):
		c.Detail = fmt.Sprintf("%s, %v (keys at %s)", printable(alg), err, keys.URL)
		return c, nil
	case err != nil:
		return c, err
	}
	c.OK = true
	c.Detail = fmt.Sprintf("%s, %s of %s", printable(alg), key, keys.URL)
	return c, nil
}

func issCheck(claims map[string]any, want string) jwtCheck {
	c := jwtCheck{Name: "iss"}
	iss, ok := claims["iss"].(string)
	switch {
	case want == "":
		c.Skipped = true
		c.Detail = "not checked (give --issuer URL): " + fieldValue(claims["iss"])
	case !ok:
		c.Detail = "the token names no issuer (iss), want " + want
	case iss != want:
		c.Detail = fmt.Sprintf("%s, want %s (compared exactly)", printable(iss), want)
	default:
		c.OK = true
		c.Detail = printable(iss)
	}
	return c
}

func audCheck(claims map[string]any, want string) jwtCheck {
	c := jwtCheck{Name: "aud"}
	var auds []string
	switch a := claims["aud"].(type) {
	case string:
		auds = []string{a}
	case []any:
		for _, x := range a {
			if s, ok := x.(string); ok {
				auds = append(auds, s)
			}
		}
	}
	have := fieldValue(claims["aud"])
	switch {
	case want == "":
		c.Skipped = true
		c.Detail = "not checked (give --audience A): " + have
	case claims["aud"] == nil:
		c.Detail = "the token names no audience (aud), want " + printable(want)
	case !slices.Contains(auds, want):
		c.Detail = fmt.Sprintf("%s, want %s", have, printable(want))
	default:
		c.OK = true
		c.Detail = have
	}
	return c
}

// expCheck: a token without exp never expires, which no verifier accepts.
func expCheck(claims map[string]any, now time.Time) jwtCheck {
	c := jwtCheck{Name: "exp"}
	t, ok := flows.ClaimTime("exp", claims["exp"])
	switch {
	case !ok:
		c.Detail = "the token has no expiry (exp as a number of seconds)"
	case !t.After(now):
		c.Detail = "expired " + when(now, t)
	default:
		c.OK = true
		c.Detail = "expires " + when(now, t)
	}
	return c
}

func nbfCheck(claims map[string]any, now time.Time) jwtCheck {
	c := jwtCheck{Name: "nbf", OK: true, Detail: "none in the token"}
	if claims["nbf"] == nil {
		return c
	}
	t, ok := flows.ClaimTime("nbf", claims["nbf"])
	switch {
	case !ok:
		c.OK, c.Detail = false, "nbf is not a number of seconds"
	case t.After(now):
		c.OK, c.Detail = false, "not valid yet: valid from "+when(now, t)
	default:
		c.Detail = "valid since " + when(now, t)
	}
	return c
}

func printChecks(w io.Writer, out verifyJSON) {
	var failed []string
	for _, c := range out.Checks {
		mark := "✓"
		switch {
		case c.Skipped:
			mark = "-"
		case !c.OK:
			mark = "✗"
			failed = append(failed, c.Name)
		}
		fmt.Fprintf(w, "%s %-9s  %s\n", mark, c.Name, c.Detail)
	}
	fmt.Fprintln(w)
	if len(failed) > 0 {
		fmt.Fprintf(w, "Not valid: %s failed.\n", strings.Join(failed, ", "))
		return
	}
	fmt.Fprintln(w, "Valid: every check made passed.")
}
