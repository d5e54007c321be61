package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// ProviderConfig names a provider and latch's client registered there.
type ProviderConfig struct {
	Issuer   string
	ClientID string
	// ClientSecret is "" for a public client (latch's own, Google's desktop
	// apps with PKCE…). It never goes into an error, a trace or a URL.
	ClientSecret string
	// AuthMethod is how the client authenticates at the token endpoint:
	// "client_secret_basic", "client_secret_post" or "none"; "" picks what
	// the provider advertises (none without a secret).
	AuthMethod string
	// Endpoints, when TokenURL is set, replace OpenID discovery: an OAuth
	// 2.0 provider without a discovery document (GitHub).
	Endpoints Endpoints
	// Audience and Resource (RFC 8707) and AuthParams (prompt, login_hint,
	// acr_values, connector_id…) go on the authorization and device
	// requests; Audience and Resource on the token requests too.
	Audience   string
	Resource   []string
	AuthParams url.Values
	// CAFile is a PEM file of authorities to trust besides the system's;
	// NewProvider uses it as Options.CAFile.
	CAFile string
}

// Endpoints are a provider's URLs given by hand instead of discovered.
type Endpoints struct {
	AuthURL, TokenURL, DeviceURL, RevokeURL, UserinfoURL, JWKSURL string
}

// Client authentication methods at the token endpoint (RFC 7591 names).
const (
	AuthMethodBasic = "client_secret_basic"
	AuthMethodPost  = "client_secret_post"
	AuthMethodNone  = "none"
)

// ReservedAuthParams are the authorization request parameters latch sets
// itself; an extra parameter may not replace them, since that would undo
// the login's protection (state, nonce, PKCE) or its registration.
var ReservedAuthParams = []string{"state", "nonce", "code_challenge", "code_challenge_method", "redirect_uri",
	"client_id", "response_type", "scope"}

// Discover is NewProvider for a provider found by OpenID discovery, with a
// public client.
func Discover(ctx context.Context, issuer, clientID string, opts Options) (*Provider, error) {
	return NewProvider(ctx, ProviderConfig{Issuer: issuer, ClientID: clientID}, opts)
}

// NewProvider sets up the provider cfg names. Unless cfg.Endpoints.TokenURL
// is set it reads the issuer's discovery document (issuer +
// /.well-known/openid-configuration) and checks it: the issuer it names must
// be cfg.Issuer exactly (a mismatch is an error matching ErrBadResponse),
// and every endpoint must obey the URL rules of New (https, or http only to
// loopback unless opts.Insecure). With Endpoints given, no request is made;
// the issuer is cfg.Issuer, else the token URL's origin. opts.Timeout
// bounds each call to the provider, discovery included; opts.CAFile adds a
// private CA; opts.Trace is told of the checks latch makes.
func NewProvider(ctx context.Context, cfg ProviderConfig, opts Options) (*Provider, error) {
	if cfg.ClientID == "" {
		return nil, errors.New("an OpenID Connect login needs a client id (--client-id)")
	}
	for _, k := range ReservedAuthParams {
		if _, ok := cfg.AuthParams[k]; ok {
			return nil, fmt.Errorf("--auth-param %s: latch sets %s itself; remove it", k, k)
		}
	}
	manual := cfg.Endpoints.TokenURL != ""
	issuer := strings.TrimSpace(cfg.Issuer)
	if manual && issuer == "" {
		issuer = origin(cfg.Endpoints.TokenURL)
	}
	u, err := parseBaseURL(issuer, opts.Insecure)
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	if cfg.CAFile != "" {
		opts.CAFile = cfg.CAFile
	}
	base, err := opts.baseTransport()
	if err != nil {
		return nil, err
	}
	timeout := opts.callTimeout()
	// A provider may echo the secret in an error answer, where the
	// redaction rules cannot tell it from text.
	opts.Trace = withKnownSecrets(opts.Trace, cfg.ClientSecret)
	p := &Provider{
		ClientID:   cfg.ClientID,
		secret:     cfg.ClientSecret,
		audience:   cfg.Audience,
		resource:   slices.Clone(cfg.Resource),
		authParams: cloneValues(cfg.AuthParams),
		trace:      opts.Trace,
		manual:     manual,
		host:       u.Host,
		timeout:    timeout,
		hc: &http.Client{
			// The trace of each exchange is wired into guard here.
			Transport: &guard{base: base, userAgent: opts.userAgent(), trace: opts.Trace},
			Timeout:   timeout,
			// A provider's endpoints answer directly; following a redirect
			// could carry a token or a code to another host.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	if manual {
		p.fromEndpoints(ctx, issuer, cfg.Endpoints)
		if err := p.checkEndpoints(opts.Insecure); err != nil {
			return nil, fmt.Errorf("provider endpoints: %w", err)
		}
	} else if err := p.discover(ctx, issuer, opts.Insecure); err != nil {
		return nil, withTLSAdvice(err)
	}
	if err := p.chooseAuthMethod(cfg.AuthMethod); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Provider) discover(ctx context.Context, issuer string, insecure bool) error {
	const op = "GET /.well-known/openid-configuration"
	p.note("discovery: GET " + strings.TrimRight(issuer, "/") + "/.well-known/openid-configuration")
	callCtx, cancel := context.WithTimeoutCause(ctx, p.timeout, errCallTimeout)
	defer cancel()
	op2, err := oidc.NewProvider(expectJSON(oidc.ClientContext(callCtx, p.hc)), issuer)
	var mismatch *oidc.IssuerMismatchError
	switch {
	case errors.As(err, &mismatch):
		return &ResponseError{Status: http.StatusOK, op: op, Reason: fmt.Sprintf(
			"the provider calls itself %q, not %q; use exactly its issuer URL", clean(mismatch.Discovered, nil), issuer)}
	case err != nil:
		return p.providerError(ctx, callCtx, op, err, nil)
	}
	var w metadataWire
	if err := op2.Claims(&w); err != nil {
		return &ResponseError{Status: http.StatusOK, op: op, Reason: "the discovery document is not a JSON object"}
	}
	p.oidc = op2
	p.Metadata = ProviderMetadata(w)
	if err := p.checkEndpoints(insecure); err != nil {
		return &ResponseError{Status: http.StatusOK, op: op, Reason: err.Error()}
	}
	return nil
}

// fromEndpoints sets up a provider without discovery. go-oidc's
// ProviderConfig serves the userinfo and ID token calls all the same.
func (p *Provider) fromEndpoints(ctx context.Context, issuer string, e Endpoints) {
	p.Metadata = ProviderMetadata{
		Issuer: issuer, AuthorizationEndpoint: e.AuthURL, TokenEndpoint: e.TokenURL,
		DeviceAuthorizationEndpoint: e.DeviceURL, RevocationEndpoint: e.RevokeURL, UserinfoEndpoint: e.UserinfoURL,
		JWKSURI: e.JWKSURL, CodeChallengeMethods: []string{"S256"},
	}
	pc := &oidc.ProviderConfig{IssuerURL: issuer, AuthURL: e.AuthURL, TokenURL: e.TokenURL, DeviceAuthURL: e.DeviceURL,
		UserInfoURL: e.UserinfoURL, JWKSURL: e.JWKSURL,
		// Without a discovery document go-oidc would expect RS256 alone;
		// the key set's own keys decide which one verifies.
		Algorithms: []string{oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512,
			oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA}}
	p.oidc = pc.NewProvider(oidc.ClientContext(ctx, p.hc))
	p.note("discovery: skipped, endpoints given by hand (issuer " + issuer + ")")
}

// chooseAuthMethod settles how the client authenticates: the method asked
// for, else client_secret_basic when there is a secret and the provider
// allows it (or says nothing), else client_secret_post, else none.
func (p *Provider) chooseAuthMethod(asked string) error {
	advertised := p.Metadata.TokenEndpointAuthMethods
	method := asked
	switch {
	case method != "":
	case p.secret == "":
		method = AuthMethodNone
	case len(advertised) == 0 || slices.Contains(advertised, AuthMethodBasic):
		method = AuthMethodBasic
	case slices.Contains(advertised, AuthMethodPost):
		method = AuthMethodPost
	default:
		return fmt.Errorf("the provider advertises only %s for client authentication; latch supports %s and %s (--auth-method)",
			strings.Join(advertised, ", "), AuthMethodBasic, AuthMethodPost)
	}
	switch {
	case method != AuthMethodBasic && method != AuthMethodPost && method != AuthMethodNone:
		return fmt.Errorf("--auth-method %q: use %s, %s or %s", method, AuthMethodBasic, AuthMethodPost, AuthMethodNone)
	case method != AuthMethodNone && p.secret == "":
		return fmt.Errorf("--auth-method %s needs the client secret: pass --client-secret-stdin or --client-secret-file FILE", method)
	case method == AuthMethodNone && p.secret != "":
		return errors.New("--auth-method none sends no client secret; drop the secret, or choose client_secret_basic or client_secret_post")
	}
	p.authMethod = method
	return nil
}

// AuthMethod is how the client authenticates at the token endpoint.
func (p *Provider) AuthMethod() string { return p.authMethod }

// Manual reports whether the endpoints were given by hand (no discovery).
func (p *Provider) Manual() bool { return p.manual }

// CanVerifyIDTokens reports whether the provider's keys are known, so that
// an ID token it sends can be checked.
func (p *Provider) CanVerifyIDTokens() bool { return p.Metadata.JWKSURI != "" }

// authStyle maps the method to x/oauth2's: Basic in the header, or the
// client id (and secret) in the form, as a public client sends its id.
func (p *Provider) authStyle() oauth2.AuthStyle {
	if p.authMethod == AuthMethodBasic {
		return oauth2.AuthStyleInHeader
	}
	return oauth2.AuthStyleInParams
}

// tokenOptions are the RFC 8707 parameters every token request carries.
// x/oauth2's options set one value per name, so several resources go on
// the authorization request only; the token is then for all of them
// (RFC 8707 §2.2).
func (p *Provider) tokenOptions() []oauth2.AuthCodeOption {
	var opts []oauth2.AuthCodeOption
	if p.audience != "" {
		opts = append(opts, oauth2.SetAuthURLParam("audience", p.audience))
	}
	if len(p.resource) == 1 {
		opts = append(opts, oauth2.SetAuthURLParam("resource", p.resource[0]))
	}
	return opts
}

// AuthCodeURL is the authorization URL of a login: the client, scopes and
// redirect, state, nonce ("" for none), the PKCE S256 challenge of
// verifier, then the audience, resources and extra parameters.
func (p *Provider) AuthCodeURL(redirectURL string, scopes []string, state, nonce, verifier string) string {
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if nonce != "" {
		opts = append(opts, oauth2.SetAuthURLParam("nonce", nonce))
	}
	raw := p.OAuth2Config(redirectURL, scopes).AuthCodeURL(state, opts...)
	extra := p.extraParams()
	if len(extra) == 0 {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return raw // x/oauth2 built it from a URL that parsed
	}
	q := u.Query()
	for k, vs := range extra {
		for _, v := range vs {
			q.Add(k, v)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// extraParams are the audience, resources and extra parameters of the
// authorization and device requests.
func (p *Provider) extraParams() url.Values {
	v := cloneValues(p.authParams)
	if v == nil {
		v = url.Values{}
	}
	if p.audience != "" {
		v.Set("audience", p.audience)
	}
	for _, r := range p.resource {
		v.Add("resource", r)
	}
	return v
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	c := make(url.Values, len(v))
	for k, vs := range v {
		c[k] = slices.Clone(vs)
	}
	return c
}

// origin is a URL's scheme and host: the issuer of a provider given by its
// endpoints alone.
func origin(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return raw
	}
	return u.Scheme + "://" + u.Host
}

// note tells the tracer of a step.
func (p *Provider) note(msg string) {
	if p.trace != nil {
		p.trace(Event{Time: time.Now(), Note: msg})
	}
}

// check tells the tracer of a verification and its outcome.
func (p *Provider) check(name string, ok bool, detail string) {
	if p.trace != nil {
		p.trace(Event{Time: time.Now(), Check: &Check{Name: name, OK: ok, Detail: detail}})
	}
}
