package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Sentinels of the OpenID Connect calls.
var (
	// ErrNotSupported: the provider does not advertise what the call needs
	// (a revocation, userinfo or device authorization endpoint).
	ErrNotSupported = errors.New("not offered by the provider")
	// ErrInvalidIDToken: an ID token failed verification (signature,
	// issuer, audience, expiry or nonce).
	ErrInvalidIDToken = errors.New("ID token failed verification")
)

// DefaultAccessTTL is the lifetime assumed for an access token whose token
// response has no expires_in and that is not a JWT with an exp claim. Five
// minutes is short enough that a token that really lives less is refreshed
// soon after the provider starts refusing it (callers retry once on 401),
// and long enough not to refresh on every call.
const DefaultAccessTTL = 5 * time.Minute

// ProviderMetadata is what latch reads from a provider's discovery document.
type ProviderMetadata struct {
	Issuer                      string
	AuthorizationEndpoint       string
	TokenEndpoint               string
	DeviceAuthorizationEndpoint string // "" when the device flow is not offered
	RevocationEndpoint          string // "" when revocation is not offered
	UserinfoEndpoint            string
	JWKSURI                     string
	ScopesSupported             []string
	CodeChallengeMethods        []string
	TokenEndpointAuthMethods    []string
	// IssParameterSupported: the provider adds iss to its authorization
	// responses (RFC 9207), so a response without it must be refused.
	IssParameterSupported bool
}

type metadataWire struct {
	Issuer                      string   `json:"issuer"`
	AuthorizationEndpoint       string   `json:"authorization_endpoint"`
	TokenEndpoint               string   `json:"token_endpoint"`
	DeviceAuthorizationEndpoint string   `json:"device_authorization_endpoint"`
	RevocationEndpoint          string   `json:"revocation_endpoint"`
	UserinfoEndpoint            string   `json:"userinfo_endpoint"`
	JWKSURI                     string   `json:"jwks_uri"`
	ScopesSupported             []string `json:"scopes_supported"`
	CodeChallengeMethods        []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethods    []string `json:"token_endpoint_auth_methods_supported"`
	IssParameterSupported       bool     `json:"authorization_response_iss_parameter_supported"`
}

// Provider is an OpenID Connect provider (found by discovery, or an OAuth
// 2.0 provider given by its endpoints) with latch's client registered at
// it: public, or confidential with a secret. It is safe for concurrent use.
type Provider struct {
	Metadata ProviderMetadata
	ClientID string

	secret     string // "" for a public client; never in an error or trace
	authMethod string
	audience   string
	resource   []string
	authParams url.Values
	manual     bool // endpoints given by hand, no discovery
	trace      Tracer

	oidc    *oidc.Provider
	hc      *http.Client
	host    string
	timeout time.Duration
}

func (p *Provider) checkEndpoints(insecure bool) error {
	m := p.Metadata
	for _, e := range []struct {
		name, url string
		required  bool
	}{
		{"authorization_endpoint", m.AuthorizationEndpoint, false},
		{"token_endpoint", m.TokenEndpoint, true},
		{"jwks_uri", m.JWKSURI, !p.manual},
		{"device_authorization_endpoint", m.DeviceAuthorizationEndpoint, false},
		{"revocation_endpoint", m.RevocationEndpoint, false},
		{"userinfo_endpoint", m.UserinfoEndpoint, false},
	} {
		if e.url == "" {
			if e.required {
				return fmt.Errorf("the discovery document has no %s", e.name)
			}
			continue
		}
		u, err := url.Parse(e.url)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			return fmt.Errorf("the discovery document's %s is not an http(s) URL", e.name)
		}
		if u.Scheme == "http" && !insecure && !isLoopback(u.Hostname()) {
			return fmt.Errorf("%s %s uses plain http://; pass --insecure if you really mean it", e.name, u.Redacted())
		}
	}
	return nil
}

// Issuer is the provider's issuer URL, as discovered.
func (p *Provider) Issuer() string { return p.Metadata.Issuer }

// SupportsScope reports whether the provider lists scope in
// scopes_supported; a provider that lists none supports every scope.
func (p *Provider) SupportsScope(scope string) bool {
	return len(p.Metadata.ScopesSupported) == 0 || slices.Contains(p.Metadata.ScopesSupported, scope)
}

// OAuth2Config is an x/oauth2 configuration for this provider and client.
// Client authentication follows AuthMethod and is never auto-detected: a
// public client sends its id in the parameters, and x/oauth2's probing
// would make a provider that omits "none" from
// token_endpoint_auth_methods_supported see a Basic header first.
func (p *Provider) OAuth2Config(redirectURL string, scopes []string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     p.ClientID,
		ClientSecret: p.secret,
		Endpoint: oauth2.Endpoint{
			AuthURL:       p.Metadata.AuthorizationEndpoint,
			TokenURL:      p.Metadata.TokenEndpoint,
			DeviceAuthURL: p.Metadata.DeviceAuthorizationEndpoint,
			AuthStyle:     p.authStyle(),
		},
		RedirectURL: redirectURL,
		Scopes:      scopes,
	}
}

// call prepares a call's context: the caller's, bounded by the timeout,
// carrying the HTTP client x/oauth2 and go-oidc are to use.
func (p *Provider) call(ctx context.Context) (context.Context, context.CancelFunc) {
	callCtx, cancel := context.WithTimeoutCause(ctx, p.timeout, errCallTimeout)
	return context.WithValue(oidc.ClientContext(callCtx, p.hc), oauth2.HTTPClient, p.hc), cancel
}

// Exchange trades an authorization code (with its PKCE verifier) for
// tokens. The redirect URL must be the one the authorization request used.
func (p *Provider) Exchange(ctx context.Context, redirectURL, code, verifier string) (*Tokens, error) {
	const op = "POST token endpoint (authorization code)"
	callCtx, cancel := p.call(ctx)
	defer cancel()
	p.note("token exchange: POST " + p.Metadata.TokenEndpoint + " (authorization_code, auth " + p.authMethod + ")")
	opts := append(p.tokenOptions(), oauth2.VerifierOption(verifier))
	tok, err := p.OAuth2Config(redirectURL, nil).Exchange(callCtx, code, opts...)
	if err != nil {
		return nil, withTLSAdvice(p.providerError(ctx, callCtx, op, err, nil, code, verifier, p.secret))
	}
	return p.tokens(op, tok)
}

// DeviceAuth starts a device authorization (RFC 8628) for scopes. It
// matches ErrNotSupported when the provider has no device endpoint.
func (p *Provider) DeviceAuth(ctx context.Context, scopes []string) (*oauth2.DeviceAuthResponse, error) {
	const op = "POST device authorization endpoint"
	if p.Metadata.DeviceAuthorizationEndpoint == "" {
		return nil, fmt.Errorf("%s: the provider has no device_authorization_endpoint: %w", p.host, ErrNotSupported)
	}
	p.note("device authorization: POST " + p.Metadata.DeviceAuthorizationEndpoint)
	callCtx, cancel := p.call(ctx)
	defer cancel()
	da, err := p.OAuth2Config("", scopes).DeviceAuth(p.withClientAuth(callCtx), p.deviceOptions()...)
	if err != nil {
		return nil, withTLSAdvice(p.providerError(ctx, callCtx, op, err, nil, p.secret))
	}
	switch {
	case da.DeviceCode == "" || da.UserCode == "":
		return nil, &ResponseError{Status: http.StatusOK, op: op, Reason: "the answer has no device_code or user_code"}
	case !webURL(da.VerificationURI):
		return nil, &ResponseError{Status: http.StatusOK, op: op, Reason: "the answer has no http(s) verification_uri"}
	case da.VerificationURIComplete != "" && !webURL(da.VerificationURIComplete):
		da.VerificationURIComplete = "" // unusable; the plain URI and code still work
	}
	return da, nil
}

func webURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.User == nil
}

// DeviceAccessToken polls the token endpoint until the user approves or
// refuses the device authorization da, it expires, or ctx ends. It waits
// da.Interval between polls and 5 s more after each slow_down. A refusal
// or expiry is an *OAuthError with Code access_denied or expired_token;
// when da's expiry passes first the error matches context.DeadlineExceeded.
func (p *Provider) DeviceAccessToken(ctx context.Context, da *oauth2.DeviceAuthResponse, scopes []string) (*Tokens, error) {
	const op = "POST token endpoint (device code)"
	// Each poll is bounded by the HTTP client's timeout, not by one call
	// timeout over the whole wait.
	interval := da.Interval
	if interval <= 0 {
		interval = 5 // RFC 8628's default, as x/oauth2 uses
	}
	p.note(fmt.Sprintf("polling: POST %s every %d s (device_code)", p.Metadata.TokenEndpoint, interval))
	pollCtx := context.WithValue(ctx, oauth2.HTTPClient, p.hc)
	tok, err := p.OAuth2Config("", scopes).DeviceAccessToken(pollCtx, da, p.tokenOptions()...)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, fmt.Errorf("%s: the device code expired: %w", op, context.DeadlineExceeded)
		}
		return nil, p.providerError(ctx, ctx, op, err, nil, da.DeviceCode, p.secret)
	}
	return p.tokens(op, tok)
}

// Refresh trades a refresh token for new tokens (the refresh_token grant);
// it makes *Provider a flows.Refresher. A refusal (invalid_grant, or
// invalid_request, which some providers answer to a replayed token) matches
// ErrInvalidRefreshToken. When the answer has no refresh token the provider
// does not rotate, and the one presented is returned as the new one.
func (p *Provider) Refresh(ctx context.Context, refreshToken string) (*Tokens, error) {
	const op = "POST token endpoint (refresh)"
	if refreshToken == "" {
		return nil, fmt.Errorf("%s: no refresh token: %w", op, ErrInvalidRefreshToken)
	}
	callCtx, cancel := p.call(ctx)
	defer cancel()
	tok, err := p.refreshGrant(callCtx, refreshToken)
	if err != nil {
		return nil, p.providerError(ctx, callCtx, op, err, refreshRefusal, refreshToken, p.secret)
	}
	t, err := p.tokens(op, tok)
	if err != nil {
		return nil, err
	}
	if t.RefreshToken == "" {
		t.RefreshToken = refreshToken
	}
	return t, nil
}

func refreshRefusal(code string) error {
	switch code {
	case "invalid_grant", "invalid_request":
		return ErrInvalidRefreshToken
	}
	return nil
}

// tokens converts x/oauth2's token, filling a missing expires_in (see
// DefaultAccessTTL and accessTTL).
func (p *Provider) tokens(op string, tok *oauth2.Token) (*Tokens, error) {
	typ := tok.TokenType
	if typ == "" {
		typ = "Bearer"
	}
	if !strings.EqualFold(typ, "Bearer") {
		return nil, &ResponseError{Status: http.StatusOK, op: op,
			Reason: fmt.Sprintf("the token_type is %q; latch only uses Bearer tokens", clean(typ, nil))}
	}
	t := &Tokens{AccessToken: tok.AccessToken, TokenType: "Bearer", RefreshToken: tok.RefreshToken}
	if id, ok := tok.Extra("id_token").(string); ok {
		t.IDToken = id
	}
	switch {
	case tok.ExpiresIn > 0:
		t.ExpiresIn = time.Duration(tok.ExpiresIn) * time.Second
	case !tok.Expiry.IsZero() && time.Until(tok.Expiry) > 0:
		t.ExpiresIn = time.Until(tok.Expiry).Round(time.Second)
	case tok.RefreshToken == "" && !hasExpClaim(tok.AccessToken):
		// Nothing says when it expires and nothing could renew it
		// (GitHub's OAuth apps): it lives until the provider refuses it.
		t.ExpiresIn = NoExpiry
	default:
		t.ExpiresIn = accessTTL(tok.AccessToken, time.Now())
	}
	if f, ok := tok.Extra("refresh_expires_in").(float64); ok && f > 0 && f < 1e9 {
		t.RefreshExpiresIn = time.Duration(f) * time.Second
	}
	return t, nil
}

// NoExpiry is the lifetime given to an access token that came with no
// expires_in, is not a JWT with an exp claim, and has no refresh token: a
// hundred years, so that it is handed out until the provider refuses it.
const NoExpiry = 100 * 365 * 24 * time.Hour

// hasExpClaim reports whether access is a JWT carrying an exp claim.
func hasExpClaim(access string) bool {
	return accessTTL(access, time.Unix(0, 0)) != DefaultAccessTTL
}

// accessTTL is the fallback lifetime of an access token that came without
// expires_in: the time to its exp claim when it is a JWT carrying one in the
// future, else DefaultAccessTTL. The token is only decoded for this hint,
// never trusted for anything else: many providers issue opaque tokens.
func accessTTL(access string, now time.Time) time.Duration {
	parts := strings.Split(access, ".")
	if len(parts) != 3 {
		return DefaultAccessTTL
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return DefaultAccessTTL
	}
	var c struct {
		Exp float64 `json:"exp"`
	}
	if json.Unmarshal(raw, &c) != nil || c.Exp <= 0 {
		return DefaultAccessTTL
	}
	if d := time.Unix(int64(c.Exp), 0).Sub(now); d > 0 {
		return d
	}
	return DefaultAccessTTL
}

// IDToken is a verified ID token's content.
type IDToken struct {
	Subject           string
	PreferredUsername string
	Email             string
	Name              string
	Expiry            time.Time
	Claims            map[string]any
}

// Username is preferred_username, else email, else the subject.
func (t *IDToken) Username() string { return firstNonEmpty(t.PreferredUsername, t.Email, t.Subject) }

// VerifyIDToken checks an ID token with go-oidc — signature against the
// provider's keys, iss, aud (this client), exp — and, when nonce is not
// empty, that its nonce claim equals nonce. Failures match
// ErrInvalidIDToken; an unreachable key set matches ErrUnreachable.
func (p *Provider) VerifyIDToken(ctx context.Context, raw, nonce string) (*IDToken, error) {
	const op = "verify ID token"
	if raw == "" {
		return nil, fmt.Errorf("%s: the token response has no id_token: %w", op, ErrInvalidIDToken)
	}
	if strings.ContainsFunc(raw, unicode.IsSpace) {
		// go-jose drops white space inside a compact JWS before checking
		// it; a provider never sends any, so a token with some is refused
		// rather than read as another text than the one received.
		p.check("ID token signature", false, "the token contains white space")
		return nil, fmt.Errorf("%s: it contains white space: %w", op, ErrInvalidIDToken)
	}
	if !p.CanVerifyIDTokens() {
		return nil, fmt.Errorf("%s: the provider's keys are unknown (no jwks_uri; pass --jwks-url): %w", op, ErrInvalidIDToken)
	}
	callCtx, cancel := p.call(ctx)
	defer cancel()
	v := p.oidc.VerifierContext(callCtx, &oidc.Config{ClientID: p.ClientID})
	tok, err := v.Verify(callCtx, raw)
	if err != nil {
		var te *transportError
		if errors.As(err, &te) || errors.Is(err, ErrBadResponse) || ctx.Err() != nil {
			p.check("ID token signature", false, "the provider's keys could not be fetched")
			return nil, fmt.Errorf("%s: fetching the provider's keys: %w", op, p.providerError(ctx, callCtx, op, err, nil, raw))
		}
		msg := clean(err.Error(), []string{raw})
		p.traceVerifyFailure(err, msg)
		return nil, fmt.Errorf("%s: %s: %w", op, msg, ErrInvalidIDToken)
	}
	p.traceVerified(tok)
	if tok.Subject == "" {
		// OpenID Connect requires sub; without it the token names nobody.
		return nil, fmt.Errorf("%s: it has no sub claim: %w", op, ErrInvalidIDToken)
	}
	if nonce != "" {
		ok := tok.Nonce == nonce
		p.check("ID token nonce", ok, map[bool]string{true: "equals the nonce this login sent",
			false: "differs from the nonce this login sent"}[ok])
		if !ok {
			return nil, fmt.Errorf("%s: its nonce is not the one this login sent (a replayed or substituted token): %w", op, ErrInvalidIDToken)
		}
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return nil, fmt.Errorf("%s: its claims are not a JSON object: %w", op, ErrInvalidIDToken)
	}
	t := &IDToken{Subject: tok.Subject, Expiry: tok.Expiry, Claims: claims}
	t.PreferredUsername, _ = claims["preferred_username"].(string)
	t.Email, _ = claims["email"].(string)
	t.Name, _ = claims["name"].(string)
	return t, nil
}

// idTokenChecks are go-oidc's checks of an ID token, in its order.
var idTokenChecks = []string{"ID token signature", "ID token iss", "ID token aud", "ID token exp"}

// traceVerified tells the tracer each of go-oidc's checks passed.
func (p *Provider) traceVerified(tok *oidc.IDToken) {
	if p.trace == nil {
		return
	}
	details := []string{
		"signed with one of the provider's keys",
		"" + tok.Issuer + " is the provider's issuer",
		fmt.Sprintf("%q includes the client id %s", tok.Audience, p.ClientID),
		"valid until " + tok.Expiry.UTC().Format(time.RFC3339),
	}
	for i, name := range idTokenChecks {
		p.check(name, true, details[i])
	}
}

// traceVerifyFailure tells the tracer which of go-oidc's checks failed, and
// that those before it passed (go-oidc checks the signature, then iss, aud
// and exp, stopping at the first failure). msg is the cleaned error.
func (p *Provider) traceVerifyFailure(err error, msg string) {
	if p.trace == nil {
		return
	}
	var expired *oidc.TokenExpiredError
	failed := 0 // the signature, or a token that does not parse
	switch {
	case strings.Contains(msg, "issued by a different provider"):
		failed = 1
	case strings.Contains(msg, "expected audience"):
		failed = 2
	case errors.As(err, &expired) || strings.Contains(msg, "nbf"):
		failed = 3
	}
	for i := range failed {
		p.check(idTokenChecks[i], true, "passed")
	}
	p.check(idTokenChecks[failed], false, ""+msg)
}
