package server

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"gopkg.in/yaml.v3"
)

// CLIClientID is the built-in public client of the latch command line.
const CLIClientID = "latch-cli"

// ClientConfig is an OAuth client of the OpenID provider, as listed in the
// file given to `latch serve --clients` (YAML, or JSON, which YAML reads):
//
//	clients:
//	  - id: grafana
//	    name: Grafana                  # shown on the consent page
//	    secret_sha256: 9f86d0…         # hex SHA-256 of the secret; omit for a public client
//	    redirect_uris: [https://grafana.example.com/login/generic_oauth]
//	    grant_types: [authorization_code, refresh_token]   # the default; also device_code
//	    scopes: [openid, profile, email, offline_access]   # the default
//	    account_api: false             # true: its access tokens also work on /auth/*
//
// A secret must be high-entropy and generated, never chosen by a person
// (e.g. `openssl rand -base64 32`); only its SHA-256 is kept. A fast hash is
// enough for 256 random bits, as for refresh tokens: there is no dictionary
// to search, and a slow hash would cost a password hash on every token
// request. Public clients must use PKCE (S256). A redirect URI on
// http://127.0.0.1 or http://[::1] matches on any port (RFC 8252 §7.3).
type ClientConfig struct {
	ID           string   `yaml:"id" json:"id"`
	Name         string   `yaml:"name" json:"name"`
	SecretSHA256 string   `yaml:"secret_sha256" json:"secret_sha256"`
	RedirectURIs []string `yaml:"redirect_uris" json:"redirect_uris"`
	GrantTypes   []string `yaml:"grant_types" json:"grant_types"`
	Scopes       []string `yaml:"scopes" json:"scopes"`
	// AccountAPI makes the client first-party: its access tokens carry the
	// issuer as audience and are accepted by the account API, which can
	// change the password and second factor. Consent is not asked.
	AccountAPI bool `yaml:"account_api" json:"account_api"`
}

// LoadClients reads a clients file (see ClientConfig).
func LoadClients(path string) ([]ClientConfig, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read clients file: %w", err)
	}
	clients, err := parseClients(raw)
	if err != nil {
		return nil, fmt.Errorf("clients file %s: %w", path, err)
	}
	return clients, nil
}

// parseClients reads a clients file's content: one document, known fields
// only, every client valid, no id twice.
func parseClients(raw []byte) ([]ClientConfig, error) {
	var doc struct {
		Clients []ClientConfig `yaml:"clients"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, c := range doc.Clients {
		if _, err := newClient(c); err != nil {
			return nil, err
		}
		if seen[c.ID] {
			return nil, fmt.Errorf("client %q is listed twice", c.ID)
		}
		seen[c.ID] = true
	}
	return doc.Clients, nil
}

var defaultScopes = []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess}

// scopeRoles asks for the account's roles (claim "roles", least privileged
// first) in the ID token and at userinfo. A client lists it in its scopes
// to be allowed it.
const scopeRoles = "roles"

// client is a registered client as op sees it.
type client struct {
	id, name   string
	secretHash []byte // nil: public
	redirects  []string
	// anyLoopback accepts every http redirect to this machine: host
	// localhost, 127.0.0.1 or [::1], any port, any path (no query, no
	// fragment, no user info). Only the built-in public client has it, so
	// that command-line tools written for other providers, whose redirects
	// are fixed (kubelogin's http://localhost:8000, …/callback, /oauth2/cb),
	// work with it unchanged. RFC 8252 §7.3 lets the port vary; letting the
	// host name localhost (§8.3 advises the IP literal, but it is for the
	// client to choose) and the path vary gives nothing away for a public
	// client that must use PKCE: whatever can listen on a loopback port of
	// this machine can answer at any path of it, and the code is useless
	// without the verifier that only the client holds.
	anyLoopback bool
	grants      []oidc.GrantType
	scopes      []string
	accountAPI  bool
	consent     bool
	loginURL    func(id string) string
}

// cliClient is the built-in latch-cli: public, every grant, first-party,
// and any loopback redirect (see anyLoopback).
func cliClient() *client {
	return &client{
		id: CLIClientID, name: "latch (command line)",
		redirects:   []string{"http://127.0.0.1/callback", "http://[::1]/callback"},
		anyLoopback: true,
		grants:      []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeDeviceCode},
		scopes:      defaultScopes,
		accountAPI:  true,
	}
}

// newClient checks a configured client and converts it.
func newClient(c ClientConfig) (*client, error) {
	if c.ID == "" {
		return nil, errors.New("a client has no id")
	}
	if c.ID == CLIClientID {
		return nil, fmt.Errorf("client id %q is built in", c.ID)
	}
	cl := &client{id: c.ID, name: c.Name, scopes: c.Scopes, accountAPI: c.AccountAPI, consent: !c.AccountAPI}
	if cl.name == "" {
		cl.name = c.ID
	}
	if len(cl.scopes) == 0 {
		cl.scopes = defaultScopes
	}
	if c.SecretSHA256 != "" {
		h, err := hex.DecodeString(c.SecretSHA256)
		if err != nil || len(h) != sha256.Size {
			return nil, fmt.Errorf("client %s: secret_sha256 must be 64 hex digits (the SHA-256 of the secret)", c.ID)
		}
		cl.secretHash = h
	}
	grants := c.GrantTypes
	if len(grants) == 0 {
		grants = []string{"authorization_code", "refresh_token"}
	}
	for _, g := range grants {
		switch oidc.GrantType(g) {
		case oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeDeviceCode:
			cl.grants = append(cl.grants, oidc.GrantType(g))
		case "device_code":
			cl.grants = append(cl.grants, oidc.GrantTypeDeviceCode)
		default:
			return nil, fmt.Errorf("client %s: grant type %q is not supported (authorization_code, refresh_token, device_code)", c.ID, g)
		}
	}
	if slices.Contains(cl.grants, oidc.GrantTypeCode) && len(c.RedirectURIs) == 0 {
		return nil, fmt.Errorf("client %s: the authorization_code grant needs redirect_uris", c.ID)
	}
	for _, u := range c.RedirectURIs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" || p.Fragment != "" || p.User != nil {
			return nil, fmt.Errorf("client %s: redirect URI %q must be an absolute http(s) URL without fragment", c.ID, u)
		}
		if p.Scheme == "http" && !loopbackIP(p.Hostname()) {
			return nil, fmt.Errorf("client %s: redirect URI %q: plain http only on 127.0.0.1 or [::1]", c.ID, u)
		}
	}
	cl.redirects = c.RedirectURIs
	return cl, nil
}

func loopbackIP(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redirectAllowed reports whether uri is one of c's redirect URIs. A
// registered http URI on a loopback IP literal matches on any port (RFC 8252
// §7.3), with the same host and path; everything else matches exactly. The
// built-in client takes any loopback redirect (see anyLoopback).
func (c *client) redirectAllowed(uri string) bool {
	if slices.Contains(c.redirects, uri) {
		return true
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "http" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return false
	}
	if port := u.Port(); port != "" && strings.Trim(port, "0123456789") != "" {
		return false
	}
	if c.anyLoopback {
		return loopbackRedirect(u)
	}
	for _, reg := range c.redirects {
		r, err := url.Parse(reg)
		if err != nil || r.Scheme != "http" || !loopbackIP(r.Hostname()) {
			continue
		}
		if u.Hostname() == r.Hostname() && u.Path == r.Path && u.RawQuery == r.RawQuery {
			return true
		}
	}
	return false
}

// loopbackRedirect reports whether u (http, no user info, no fragment,
// checked by the caller) goes to this machine by one of the names every
// system gives it, on a real port, without a query: what anyLoopback allows.
// Other loopback addresses (127.0.0.2) are refused: a browser may not reach
// them, and no client uses them.
func loopbackRedirect(u *url.URL) bool {
	switch u.Hostname() {
	case "localhost", "127.0.0.1", "::1":
	default:
		return false
	}
	if u.Host == "::1" || strings.HasPrefix(u.Host, "::1:") {
		return false // an IPv6 literal must be in brackets
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return false
		}
	}
	return u.RawQuery == "" && !u.ForceQuery
}

// RedirectURIGlobs makes op accept the redirects anyLoopback allows: op
// compares a native client's loopback redirect by path with the registered
// ones, which would refuse any other path. The glob only stops op from
// refusing; the check is redirectAllowed, which every authorization request
// passes before op sees it (see Server.authorize).
func (c *client) RedirectURIGlobs() []string {
	if c.anyLoopback {
		return []string{"http://**"}
	}
	return nil
}

// PostLogoutRedirectURIGlobs: no client has post-logout redirects.
func (c *client) PostLogoutRedirectURIGlobs() []string { return nil }

func (c *client) public() bool { return c.secretHash == nil }

// checkSecret compares a presented secret with the stored hash in constant time.
func (c *client) checkSecret(secret string) bool {
	if c.secretHash == nil || secret == "" {
		return false
	}
	h := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(h[:], c.secretHash) == 1
}

// op.Client

func (c *client) GetID() string                    { return c.id }
func (c *client) RedirectURIs() []string           { return c.redirects }
func (c *client) PostLogoutRedirectURIs() []string { return nil }
func (c *client) LoginURL(id string) string        { return c.loginURL(id) }
func (c *client) AccessTokenType() op.AccessTokenType {
	return op.AccessTokenTypeJWT
}
func (c *client) IDTokenLifetime() time.Duration { return time.Hour }
func (c *client) DevMode() bool                  { return false }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType { return c.grants }
func (c *client) IsScopeAllowed(scope string) bool {
	return slices.Contains(c.scopes, scope)
}

// IDTokenUserinfoClaimsAssertion puts the scopes' claims (email and
// email_verified, the username) in the ID token too, not only at userinfo:
// a client that only reads the ID token learns whether the address is
// verified.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// ApplicationType: public clients are native apps, so that op too accepts
// their loopback redirects on any port; our own check (redirectAllowed)
// also pins the host, which op's does not.
func (c *client) ApplicationType() op.ApplicationType {
	if c.public() {
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeWeb
}

func (c *client) AuthMethod() oidc.AuthMethod {
	if c.public() {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}
