package flows

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/vault"
)

// OAuth login: what the browser flow (browser.go) and the device flow
// (device.go) share — resolving the request, discovering the provider,
// verifying the ID token and saving the profile and tokens.

// Sentinels of the OAuth logins; each error matching one says what
// happened and what to do next.
var (
	// ErrAccessDenied: the user (or the provider's policy) refused the
	// login in the browser.
	ErrAccessDenied = errors.New("access denied")
	// ErrDeviceCodeExpired: the device code expired before the user
	// approved it; start the login again.
	ErrDeviceCodeExpired = errors.New("device code expired")
	// ErrBrowserTimeout: no answer reached the loopback callback in time.
	ErrBrowserTimeout = errors.New("no answer from the browser")
)

// DefaultClientID is the client id of latch at a latch server's provider
// (logins with OAuthRequest.Server).
const DefaultClientID = "latch-cli"

// DefaultScopes are asked for when OAuthRequest.Scopes is empty: an ID
// token (openid), a refresh token (offline_access) and the user's name and
// email (profile, email).
var DefaultScopes = []string{"openid", "offline_access", "profile", "email"}

// OAuthRequest is an OAuth 2.0 / OpenID Connect login, to a latch server's
// provider (Server) or to any standards-compliant provider (Issuer and
// ClientID). Exactly one of Server and Issuer is set.
type OAuthRequest struct {
	// Profile names the profile to create or replace; "" picks one: the
	// existing profile of the same issuer, client and user, else "default"
	// for the very first profile, else "user@host".
	Profile string
	// Server is a latch server URL: its provider's issuer is that URL
	// (discovered at Server/.well-known/openid-configuration) and the
	// client id DefaultClientID unless ClientID says otherwise. The profile
	// keeps Server, so the account API keeps working with its tokens.
	Server string
	// Issuer and ClientID name any provider and latch's public client
	// registered there.
	Issuer, ClientID string
	// Scopes default to DefaultScopes, minus those the provider leaves out
	// of a non-empty scopes_supported (Google, for one, refuses
	// offline_access). Scopes given here are sent as they are.
	Scopes []string
	// ClientSecret is a confidential client's secret ("" for a public
	// client); it is kept in the vault, never in the profiles file.
	// AuthMethod is client_secret_basic, client_secret_post or none ("" =
	// what the provider advertises).
	ClientSecret, AuthMethod string
	// Audience, Resource (RFC 8707) and AuthParams go on the authorization
	// request (see client.ProviderConfig).
	Audience   string
	Resource   []string
	AuthParams url.Values
	// RedirectURL fixes the loopback redirect (host localhost, 127.0.0.1 or
	// [::1], an exact port and path) for a provider that registered one;
	// "" means 127.0.0.1 on a random port, path /callback.
	RedirectURL string
	// CAFile trusts a private CA's PEM besides the system's.
	CAFile string
	// Endpoints replace discovery for an OAuth 2.0 provider without it.
	Endpoints client.Endpoints
}

// oauthLogin is a resolved request with its provider.
type oauthLogin struct {
	req      OAuthRequest
	server   string // "" for a login to a provider alone
	issuer   string
	provider *client.Provider
	scopes   []string
}

func (o *oauthLogin) wantsIDToken() bool { return slices.Contains(o.scopes, "openid") }

// note tells e's tracer of a step of the flow (nil e: none).
func (e *Env) note(msg string) {
	if e != nil && e.Trace != nil {
		e.Trace(client.Event{Time: time.Now(), Note: msg})
	}
}

// check tells e's tracer of a check the flow made and its outcome.
func (e *Env) check(name string, ok bool, detail string) {
	if e != nil && e.Trace != nil {
		e.Trace(client.Event{Time: time.Now(), Check: &client.Check{Name: name, OK: ok, Detail: detail}})
	}
}

// prepareOAuth checks req and sets up its provider (discovered, or from the
// endpoints it gives).
func (e *Env) prepareOAuth(ctx context.Context, req OAuthRequest) (*oauthLogin, error) {
	o := &oauthLogin{req: req}
	manual := req.Endpoints.TokenURL != ""
	switch {
	case req.Server != "" && (req.Issuer != "" || manual):
		return nil, errors.New("give either a latch server (--server) or a provider (--issuer, --token-url), not both")
	case req.Server != "":
		c, err := e.client(req.Server) // the URL rules and --insecure of the account API
		if err != nil {
			return nil, err
		}
		o.server = c.BaseURL()
		o.issuer = o.server
		if req.ClientID == "" {
			req.ClientID = DefaultClientID
		}
	case req.Issuer != "" || manual:
		if req.ClientID == "" {
			return nil, errors.New("a login to an OpenID provider needs the client id latch is registered with there (--client-id)")
		}
		o.issuer = strings.TrimSpace(req.Issuer)
	default:
		return nil, errors.New("an OAuth login needs a latch server (--server URL) or an OpenID provider (--issuer URL --client-id ID)")
	}
	if err := CheckAuthParams(req.AuthParams); err != nil {
		return nil, err
	}
	if req.RedirectURL != "" {
		if _, err := ParseRedirectURL(req.RedirectURL); err != nil {
			return nil, err
		}
	}
	if req.CAFile != "" {
		// The profile remembers it, and a refresh may run anywhere.
		abs, err := filepath.Abs(req.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file %s: %w", req.CAFile, err)
		}
		req.CAFile = abs
	}
	if err := e.vaultReady(ctx); err != nil {
		return nil, err
	}
	if req.Profile != "" {
		if err := vault.ValidateName(req.Profile); err != nil {
			return nil, err
		}
		if err := e.checkReplace(ctx, req.Profile); err != nil {
			return nil, err
		}
	}
	req, err := e.withRememberedSecret(ctx, req, o.issuer)
	if err != nil {
		return nil, err
	}
	o.req = req
	p, err := e.discover(ctx, req.providerConfig(o.issuer))
	if err != nil {
		where := o.issuer
		if where == "" {
			where = req.Endpoints.TokenURL
		}
		return nil, fmt.Errorf("find the OpenID provider at %s: %w", where, err)
	}
	o.provider = p
	o.issuer = p.Issuer()
	o.scopes = req.Scopes
	if len(o.scopes) == 0 && !(p.Manual() && !p.CanVerifyIDTokens()) {
		// A plain OAuth 2.0 provider (endpoints by hand, no keys) gets no
		// OpenID scopes it would not understand: its own default applies.
		for _, s := range DefaultScopes {
			if p.SupportsScope(s) {
				o.scopes = append(o.scopes, s)
			}
		}
	}
	if o.wantsIDToken() && !p.CanVerifyIDTokens() {
		return nil, errors.New("the openid scope asks for an ID token, but without discovery latch cannot verify one: " +
			"pass --jwks-url too, or leave openid out of --scopes")
	}
	return o, nil
}

// checkReplace refuses to turn a logged-in account profile into an OpenID
// one: its server session would be left behind with nobody to end it.
func (e *Env) checkReplace(ctx context.Context, name string) error {
	cfg, err := e.Config()
	if err != nil {
		return err
	}
	old, err := cfg.Get(name)
	if err != nil || old.Kind != vault.KindAccount {
		return nil
	}
	if _, err := e.Tokens().RefreshToken(ctx, name); errors.Is(err, vault.ErrNotFound) {
		return nil
	}
	return fmt.Errorf("profile %q is a logged-in latch account profile; run latch logout --profile %s first, or choose another --profile",
		name, name)
}

func (e *Env) discover(ctx context.Context, cfg client.ProviderConfig) (*client.Provider, error) {
	if e.Discover != nil {
		return e.Discover(ctx, cfg)
	}
	return client.NewProvider(ctx, cfg, client.Options{Trace: e.Trace})
}

// finishOAuth verifies what the token endpoint sent, then saves the tokens
// (through the token manager, under the profile's lock) and the profile,
// making it current. nonce is the browser login's; "" for the device flow.
func (e *Env) finishOAuth(ctx context.Context, o *oauthLogin, t *client.Tokens, nonce string) (*LoginResult, error) {
	username := ""
	if o.wantsIDToken() {
		if t.IDToken == "" {
			return nil, fmt.Errorf("the provider sent no ID token although openid was asked for: %w", client.ErrInvalidIDToken)
		}
		id, err := o.provider.VerifyIDToken(ctx, t.IDToken, nonce)
		if err != nil {
			return nil, err
		}
		username = firstNonEmpty(id.PreferredUsername, id.Email)
		if username == "" {
			username = id.Subject
			// The ID token only names the subject; userinfo may say more.
			// A nicety: the login stands without it.
			if ui, err := o.provider.UserInfo(ctx, t.AccessToken); err == nil && ui.Subject == id.Subject {
				username = ui.Username()
			}
		}
	} else {
		// Not asked for, it cannot be trusted either: a provider without
		// keys sends none that latch could check.
		t.IDToken = ""
		if ui, err := o.provider.UserInfo(ctx, t.AccessToken); err == nil {
			username = ui.Username()
		}
	}

	cfg, err := e.Config()
	if err != nil {
		return nil, err
	}
	p := vault.Profile{Name: o.req.Profile, Kind: vault.KindOIDC, Server: o.server, Issuer: o.provider.Issuer(),
		ClientID: o.provider.ClientID, Username: username}
	o.req.remember(&p, o.provider)
	if p.Name == "" {
		p.Name = e.oidcProfileName(ctx, cfg, p)
	}
	previous := e.previousSession(ctx, p.Name)
	// The secret first: tokens the profile could not refresh are no use.
	if err := e.saveClientSecret(ctx, p.Name, o.req.ClientSecret); err != nil {
		return nil, err
	}
	if err := e.Tokens().Save(ctx, p.Name, t); err != nil {
		return nil, err
	}
	defer previous.end(ctx)
	err = vault.UpdateConfig(ctx, e.Home, func(cfg *vault.Config) error {
		if err := cfg.Put(p); err != nil {
			return err
		}
		cfg.Current = p.Name
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("logged in and saved the tokens, but not the profile: %w", err)
	}
	return &LoginResult{Profile: p}, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// oidcProfileName names a new OpenID login: the profile of the same issuer,
// client and user, else "default" for the very first profile, else
// "user@host" (or "profileN") that no logged-in account profile holds.
func (e *Env) oidcProfileName(ctx context.Context, cfg *vault.Config, p vault.Profile) string {
	for _, old := range cfg.Profiles {
		if old.Kind == vault.KindOIDC && sameServer(old.Issuer, p.Issuer) && old.ClientID == p.ClientID &&
			strings.EqualFold(old.Username, p.Username) {
			return old.Name
		}
	}
	if len(cfg.Profiles) == 0 {
		return "default"
	}
	where := p.Server
	if where == "" {
		where = p.Issuer
	}
	host := where
	if u, err := url.Parse(where); err == nil && u.Host != "" {
		host = u.Host
	}
	free := func(name string) bool {
		old, err := cfg.Get(name)
		if err != nil {
			return true
		}
		return old.Kind == vault.KindOIDC && e.checkReplace(ctx, name) == nil && sameServer(old.Issuer, p.Issuer)
	}
	name := p.Username + "@" + strings.NewReplacer(":", "-", "[", "", "]", "", "/", "-").Replace(host)
	if vault.ValidateName(name) == nil && free(name) {
		return name
	}
	for i := len(cfg.Profiles) + 1; ; i++ {
		if name := fmt.Sprint("profile", i); free(name) {
			return name
		}
	}
}

// randomString is n random bytes, base64url: state and nonce use 32, far
// above the 128 bits needed and the 8 characters some providers demand.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DefaultOAuthMethod picks the login method that can work here: "device"
// over SSH (SSH_CONNECTION or SSH_TTY set) or, on Linux and the BSDs,
// without a graphical session (neither DISPLAY nor WAYLAND_DISPLAY), since a
// browser opened there cannot reach this machine's loopback callback or
// cannot open at all; else "browser".
func DefaultOAuthMethod(getenv func(string) string) string {
	return defaultOAuthMethod(runtime.GOOS, getenv)
}

func defaultOAuthMethod(goos string, getenv func(string) string) string {
	if getenv("SSH_CONNECTION") != "" || getenv("SSH_TTY") != "" {
		return "device"
	}
	switch goos {
	case "linux", "freebsd", "openbsd", "netbsd", "dragonfly", "solaris", "illumos":
		if getenv("DISPLAY") == "" && getenv("WAYLAND_DISPLAY") == "" {
			return "device"
		}
	}
	return "browser"
}

// OAuthDefaults fills a login's missing provider from a known OpenID
// profile — the named one, else the current one — so that logging in again
// needs no --server or --issuer. A request that names a provider, or whose
// profile is not an OpenID one, is returned as it is.
func (e *Env) OAuthDefaults(req OAuthRequest) OAuthRequest {
	if req.Server != "" || req.Issuer != "" || req.Endpoints.TokenURL != "" {
		return req
	}
	p, err := e.Profile(req.Profile)
	if err != nil || p.Kind != vault.KindOIDC {
		return req
	}
	again := OAuthRequestFor(p)
	again.Scopes = req.Scopes
	if again.ClientID == "" {
		again.ClientID = req.ClientID
	}
	// What this login says anew replaces what the profile remembers.
	again.ClientSecret = req.ClientSecret
	for _, f := range []struct {
		to   *string
		from string
	}{
		{&again.AuthMethod, req.AuthMethod}, {&again.Audience, req.Audience}, {&again.RedirectURL, req.RedirectURL},
		{&again.CAFile, req.CAFile},
	} {
		if f.from != "" {
			*f.to = f.from
		}
	}
	if len(req.Resource) > 0 {
		again.Resource = req.Resource
	}
	if len(req.AuthParams) > 0 {
		again.AuthParams = req.AuthParams
	}
	return again
}

// OAuthRequestFor is the login that logs in again to p, an OpenID profile:
// the same server or provider and client, into the same profile.
func OAuthRequestFor(p vault.Profile) OAuthRequest {
	req := OAuthRequest{Profile: p.Name}
	if p.Server != "" {
		req.Server = p.Server
		if p.ClientID != DefaultClientID {
			req.ClientID = p.ClientID
		}
		requestSettings(p, &req)
		return req
	}
	req.Issuer, req.ClientID = p.Issuer, p.ClientID
	requestSettings(p, &req)
	return req
}
