package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
)

// KeySet is a JSON Web Key Set that checks JWS signatures (go-oidc's remote
// key set), fetched through the provider's guarded HTTP client: the same
// size limit, timeout, CA file and trace as every other call.
type KeySet struct {
	URL string
	p   *Provider
	ks  *oidc.RemoteKeySet
}

// Keys is the provider's key set, at its discovered jwks_uri. It is fetched
// on first use.
func (p *Provider) Keys(ctx context.Context) (*KeySet, error) {
	if p.Metadata.JWKSURI == "" {
		return nil, fmt.Errorf("the provider names no key set (jwks_uri): %w", ErrNotSupported)
	}
	return &KeySet{URL: p.Metadata.JWKSURI, p: p, ks: oidc.NewRemoteKeySet(oidc.ClientContext(ctx, p.hc), p.Metadata.JWKSURI)}, nil
}

// NewKeySet is the key set at jwksURL, for tokens whose issuer has no
// discovery document. The URL obeys New's rules (https, or http only to
// loopback unless opts.Insecure).
func NewKeySet(ctx context.Context, jwksURL string, opts Options) (*KeySet, error) {
	u, err := parseBaseURL(jwksURL, opts.Insecure)
	if err != nil {
		return nil, fmt.Errorf("key set URL: %w", err)
	}
	base, err := opts.baseTransport()
	if err != nil {
		return nil, err
	}
	timeout := opts.callTimeout()
	// A provider with no endpoint but its keys: the HTTP client is built
	// as NewProvider builds it.
	p := &Provider{trace: opts.Trace, manual: true, host: u.Host, timeout: timeout,
		hc: &http.Client{
			Transport:     &guard{base: base, userAgent: opts.userAgent(), trace: opts.Trace},
			Timeout:       timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}}
	p.Metadata.JWKSURI = jwksURL
	return p.Keys(ctx)
}

// ErrBadSignature: a JWS's signature does not verify with any key of the
// set (or names an algorithm or key the set cannot check).
var ErrBadSignature = errors.New("signature not verified")

// VerifySignature checks raw's signature against the set and returns its
// payload. A signature that does not verify matches ErrBadSignature; a key
// set that cannot be fetched matches ErrUnreachable or ErrBadResponse.
// Errors never quote raw.
func (k *KeySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	const op = "GET key set"
	callCtx, cancel := k.p.call(ctx)
	defer cancel()
	payload, err := k.ks.VerifySignature(callCtx, raw)
	if err == nil {
		return payload, nil
	}
	var te *transportError
	var re *ResponseError
	switch {
	case errors.As(err, &te) || errors.As(err, &re) || ctx.Err() != nil || callCtx.Err() != nil:
		return nil, fmt.Errorf("fetching the key set %s: %w", k.URL, k.p.providerError(ctx, callCtx, op, err, nil, raw))
	case strings.HasPrefix(err.Error(), "fetching keys"):
		// go-oidc's own refusal of the answer: not 200, or not a key set.
		return nil, fmt.Errorf("fetching the key set %s: %w", k.URL,
			&ResponseError{op: op, Reason: clean(strings.TrimPrefix(err.Error(), "fetching keys oidc: "), []string{raw})})
	}
	reason := "no key of the set verifies it"
	if msg := err.Error(); strings.Contains(msg, "unexpected signature algorithm") {
		// go-oidc lists the asymmetric algorithms it checks: "none" and
		// shared-secret (HS*) tokens cannot be verified with a key set.
		reason = "its algorithm is not one a public key set can check"
	} else if !strings.Contains(msg, "failed to verify") {
		reason = clean(msg, []string{raw})
	}
	return nil, fmt.Errorf("%w: %s", ErrBadSignature, reason)
}
