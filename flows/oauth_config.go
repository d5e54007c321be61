package flows

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/vault"
)

// How an OAuth login's provider settings travel: from the request to the
// client's ProviderConfig, into the profile (the secret into the vault),
// and back out for a refresh, a revocation or a login again.

// providerConfig is the client configuration of a login request.
func (req OAuthRequest) providerConfig(issuer string) client.ProviderConfig {
	return client.ProviderConfig{Issuer: issuer, ClientID: req.ClientID, ClientSecret: req.ClientSecret,
		AuthMethod: req.AuthMethod, Endpoints: req.Endpoints, Audience: req.Audience, Resource: req.Resource,
		AuthParams: req.AuthParams, CAFile: req.CAFile}
}

// ParseAuthParams reads extra authorization parameters as latch login's
// --auth-param gives them, one name=value per pair, cut at the first '='
// (a value may hold more) and taken as typed. No pairs is nil.
func ParseAuthParams(pairs []string) (url.Values, error) { return parseAuthParams(pairs, false) }

// ParseAuthParamField reads the interface's Parameters field: the same
// pairs, split at spaces, with %XX escapes decoded in names and values (so a
// space is %20 and a literal % is %25). AuthParamField writes it back.
func ParseAuthParamField(field string) (url.Values, error) {
	return parseAuthParams(strings.Fields(field), true)
}

func parseAuthParams(pairs []string, unescape bool) (url.Values, error) {
	var params url.Values
	for _, kv := range pairs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, &AuthParamError{Pair: kv}
		}
		if unescape {
			var err error
			if k, err = url.PathUnescape(k); err == nil {
				v, err = url.PathUnescape(v)
			}
			if err != nil {
				escape := err.Error()
				if e, ok := err.(url.EscapeError); ok {
					escape = string(e)
				}
				return nil, &AuthParamError{Pair: kv, Escape: escape}
			}
		}
		if params == nil {
			params = url.Values{}
		}
		params.Add(k, v)
	}
	return params, nil
}

// AuthParamField writes params as ParseAuthParamField reads them, sorted by
// name, escaping only what would not read back (%, spaces, control and
// non-ASCII characters, an '=' in a name), so a remembered login_hint or
// acr_values stays legible.
func AuthParamField(params url.Values) string {
	var pairs []string
	for _, k := range slices.Sorted(maps.Keys(params)) {
		name := strings.ReplaceAll(url.PathEscape(k), "=", "%3D")
		for _, v := range params[k] {
			pairs = append(pairs, name+"="+url.PathEscape(v))
		}
	}
	return strings.Join(pairs, " ")
}

// AuthParamError is an extra authorization parameter ParseAuthParams or
// ParseAuthParamField cannot read. Its message names no flag: latch login words its own, naming
// --auth-param, and the interface shows this one under its field.
type AuthParamError struct {
	Pair   string // as given
	Escape string // the malformed %-escape; "" when the '=' or the name is missing
}

func (e *AuthParamError) Error() string {
	switch {
	case e.Escape != "":
		return fmt.Sprintf("%s has a bad %%-escape %q (write a literal %% as %%25)", e.Pair, e.Escape)
	case strings.HasPrefix(e.Pair, "="):
		return e.Pair + " has no name before '='"
	}
	return e.Pair + " has no '='"
}

// secretAuthParams are secrets that have no place among the extra
// authorization parameters.
var secretAuthParams = []string{"client_secret", "client_assertion", "code_verifier", "password"}

// CheckAuthParams refuses extra authorization parameters that would replace
// one latch sets itself (state, nonce, PKCE, the client, redirect or scope),
// and secrets, which would be saved in the profile.
func CheckAuthParams(params url.Values) error {
	for k := range params {
		if slices.Contains(secretAuthParams, k) {
			// It would be a flag value, in the browser's history and in
			// the profiles file.
			return fmt.Errorf("--auth-param %s=…: a secret is not an authorization parameter; "+
				"give a client secret with --client-secret-stdin or --client-secret-file", k)
		}
		if slices.Contains(client.ReservedAuthParams, k) {
			return fmt.Errorf("--auth-param %s=…: latch sets %s itself and it cannot be replaced; "+
				"use --client-id, --scopes or --redirect-url for those", k, k)
		}
	}
	return nil
}

// ParseRedirectURL checks a fixed loopback redirect: http, host localhost,
// 127.0.0.1 or [::1], an explicit port, no query or fragment.
func ParseRedirectURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("--redirect-url %q: give an http:// loopback URL such as http://localhost:8000/callback", raw)
	}
	switch u.Hostname() {
	case "localhost", "127.0.0.1", "::1":
	default:
		return nil, fmt.Errorf("--redirect-url %q: the host must be localhost, 127.0.0.1 or [::1] (the browser comes back to this machine)", raw)
	}
	if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
		return nil, fmt.Errorf("--redirect-url %q: name the port registered at the provider, e.g. http://localhost:8000/", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("--redirect-url %q: a redirect URL has no query or fragment", raw)
	}
	return u, nil
}

// listenAddrs are the addresses to listen on for redirect u: localhost is
// both 127.0.0.1 and ::1 (the browser may pick either), the others
// themselves.
func listenAddrs(u *url.URL) (required string, optional []string) {
	port := u.Port()
	switch u.Hostname() {
	case "localhost":
		return net.JoinHostPort("127.0.0.1", port), []string{net.JoinHostPort("::1", port)}
	default:
		return net.JoinHostPort(u.Hostname(), port), nil
	}
}

// remember copies what the profile must keep of the login's settings (all
// but the secret) into p.
func (req OAuthRequest) remember(p *vault.Profile, prov *client.Provider) {
	p.Confidential = req.ClientSecret != ""
	p.AuthMethod = req.AuthMethod
	if p.Confidential {
		p.AuthMethod = prov.AuthMethod() // the one that worked, for the refresh
	}
	p.Audience, p.Resource, p.RedirectURL, p.CAFile = req.Audience, slices.Clone(req.Resource), req.RedirectURL, req.CAFile
	p.AuthParams = nil
	if len(req.AuthParams) > 0 {
		p.AuthParams = map[string][]string(req.AuthParams)
	}
	p.Endpoints = nil
	if e := req.Endpoints; e.TokenURL != "" {
		p.Endpoints = &vault.Endpoints{Auth: e.AuthURL, Token: e.TokenURL, Device: e.DeviceURL, Revoke: e.RevokeURL,
			Userinfo: e.UserinfoURL, JWKS: e.JWKSURL}
	}
}

// requestSettings copies the remembered settings of p into req.
func requestSettings(p vault.Profile, req *OAuthRequest) {
	req.AuthMethod, req.Audience, req.Resource = p.AuthMethod, p.Audience, slices.Clone(p.Resource)
	req.RedirectURL, req.CAFile = p.RedirectURL, p.CAFile
	if len(p.AuthParams) > 0 {
		req.AuthParams = url.Values(p.AuthParams)
	}
	if e := p.Endpoints; e != nil {
		req.Endpoints = client.Endpoints{AuthURL: e.Auth, TokenURL: e.Token, DeviceURL: e.Device, RevokeURL: e.Revoke,
			UserinfoURL: e.Userinfo, JWKSURL: e.JWKS}
	}
}

// providerConfigOf is the client configuration of a saved OpenID profile,
// its secret read from the vault.
func (e *Env) providerConfigOf(ctx context.Context, p vault.Profile) (client.ProviderConfig, error) {
	req := OAuthRequestFor(p)
	req.ClientID = p.ClientID // OAuthRequestFor leaves a latch server's default out
	if p.Confidential {
		secret, err := e.clientSecret(ctx, p.Name)
		if err != nil {
			return client.ProviderConfig{}, err
		}
		req.ClientSecret = secret
	}
	return req.providerConfig(p.Issuer), nil
}

// clientSecret reads a confidential profile's client secret from the vault.
func (e *Env) clientSecret(ctx context.Context, profile string) (string, error) {
	raw, err := e.Secrets.Get(ctx, vault.ClientSecretKey(profile))
	if errors.Is(err, vault.ErrNotFound) {
		return "", fmt.Errorf("profile %q uses a client secret, but the vault has none for it; "+
			"log in again with --client-secret-stdin or --client-secret-file: %w", profile, ErrLoginRequired)
	}
	if err != nil {
		return "", fmt.Errorf("read the client secret of profile %q: %w", profile, err)
	}
	return string(raw), nil
}

// saveClientSecret keeps a confidential client's secret in the vault, or
// deletes a former one when the client is now public.
func (e *Env) saveClientSecret(ctx context.Context, profile, secret string) error {
	if secret == "" {
		if err := e.Secrets.Delete(ctx, vault.ClientSecretKey(profile)); err != nil {
			return fmt.Errorf("delete the former client secret of profile %q: %w", profile, err)
		}
		return nil
	}
	if err := e.Secrets.Set(ctx, vault.ClientSecretKey(profile), []byte(secret)); err != nil {
		return fmt.Errorf("save the client secret of profile %q: %w", profile, err)
	}
	return nil
}

// withRememberedSecret fills a login again's missing client secret from the
// profile it logs in to, when that profile is of the same provider and
// client and has one.
func (e *Env) withRememberedSecret(ctx context.Context, req OAuthRequest, issuer string) (OAuthRequest, error) {
	if req.ClientSecret != "" || req.Profile == "" {
		return req, nil
	}
	cfg, err := e.Config()
	if err != nil {
		return req, err
	}
	p, err := cfg.Get(req.Profile)
	if err != nil || !p.Confidential || p.ClientID != req.ClientID || !sameServer(p.Issuer, issuer) {
		return req, nil
	}
	secret, err := e.clientSecret(ctx, p.Name)
	if err != nil {
		return req, err
	}
	req.ClientSecret = secret
	return req, nil
}
