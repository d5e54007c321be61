// Package fakeidp is an in-process OpenID Connect provider for tests of the
// client, flows, cli and tui packages: discovery, keys, an authorization
// endpoint that approves at once, a token endpoint (authorization code with
// PKCE, refresh, device code), device authorization, revocation and
// userinfo, on 127.0.0.1. Its Config has a knob for each provider quirk latch
// copes with.
//
// It is test support only: it keeps everything in memory, trusts every
// request that names its client, and must never be used to serve anyone.
package fakeidp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Device answers of Config.DeviceResult.
const (
	DeviceApprove      = ""
	DeviceAccessDenied = "access_denied"
	DeviceExpired      = "expired_token"
)

// Config is the provider's behaviour. The zero value (after New fills the
// defaults) is a well-behaved provider that rotates refresh tokens.
type Config struct {
	ClientID  string        // default "latch-cli"
	AccessTTL time.Duration // expires_in; default 5 min
	// OmitExpiresIn leaves expires_in out of token responses.
	OmitExpiresIn bool
	// OpaqueAccessTokens issues random strings instead of JWT access tokens.
	OpaqueAccessTokens bool
	// Subject, PreferredUsername, Email, Name describe the user; defaults
	// "user-1", "ada", "ada@example.com", "Ada Lovelace". Empty strings
	// after New (set them in Configure) leave the claims out.
	Subject, PreferredUsername, Email, Name string

	// ReuseWindow: a spent refresh token presented again within this long
	// gets the same successor again (and a new access token).
	ReuseWindow time.Duration
	// SameRefreshToken answers a refresh with the refresh token presented
	// (no rotation, but the field is there).
	SameRefreshToken bool
	// NeverRotate answers a refresh without a refresh_token field.
	NeverRotate bool
	// ReplayError is the error code for a spent refresh token presented
	// again outside the window: "invalid_grant" (default) or
	// "invalid_request", as some providers answer.
	ReplayError string
	// RevokeFamilyOnReplay revokes every refresh token descended from the
	// same login when a spent one is presented again.
	RevokeFamilyOnReplay bool
	// NoRefreshToken issues no refresh token at all.
	NoRefreshToken bool

	// RequireLongState refuses authorization requests whose state has
	// fewer than 8 characters.
	RequireLongState bool
	// RejectLocalhost refuses redirect URIs whose host is "localhost".
	RejectLocalhost bool
	// AuthorizeError makes the authorization endpoint redirect back with
	// this error (e.g. "access_denied") instead of a code.
	AuthorizeError string
	// HideIssParameter leaves authorization_response_iss_parameter_supported
	// out of discovery; OmitIss leaves iss out of the redirect; WrongIss
	// sends another issuer in it.
	HideIssParameter, OmitIss, WrongIss bool
	// WrongNonce puts another nonce into ID tokens.
	WrongNonce bool
	// OmitIDToken leaves id_token out of token responses;
	// NoIDTokenOnRefresh out of refresh responses only.
	OmitIDToken, NoIDTokenOnRefresh bool
	// OmitNoneAuthMethod advertises only client_secret_basic and
	// client_secret_post, although the public client works. The token
	// endpoint refuses any request with an Authorization header either way.
	OmitNoneAuthMethod bool
	// NoRevocation, NoDevice, NoUserinfo leave those endpoints out.
	NoRevocation, NoDevice, NoUserinfo bool
	// ScopesSupported is advertised as is; nil means openid, profile,
	// email, offline_access.
	ScopesSupported []string

	// DevicePending answers authorization_pending this many times before
	// DeviceResult; DeviceSlowDown answers slow_down to the first poll.
	DevicePending  int
	DeviceSlowDown bool
	DeviceResult   string
	// DeviceInterval is the interval advertised; default 1 s.
	DeviceInterval time.Duration
	// DeviceExpiresIn is the device code's lifetime; default 10 min.
	DeviceExpiresIn time.Duration
	// DeviceExtraFields adds fields RFC 8628 does not define to the device
	// authorization response.
	DeviceExtraFields bool
	// ClientSecret makes the client confidential: the token, device and
	// revocation endpoints then demand it, by ClientAuth ("basic", "post",
	// or "" for either). Without it, any Authorization header is refused.
	ClientSecret, ClientAuth string
	// AuthMethods is advertised as token_endpoint_auth_methods_supported;
	// nil means ["none"] (see OmitNoneAuthMethod).
	AuthMethods []string
	// RedirectURIs, when set, are the only redirect_uri values the
	// authorization endpoint accepts, exactly; another gets its own error
	// page (no redirect back), as real providers do.
	RedirectURIs []string
	// TLS serves https with httptest's throwaway CA (see CACertPEM).
	TLS bool
	// GitHub speaks GitHub's OAuth 2.0 dialect: no discovery, endpoints at
	// /login/oauth/authorize, /login/oauth/access_token,
	// /login/device/code and /user; answers form-encoded unless the
	// request accepts application/json; token errors with status 200;
	// slow_down after DevicePending authorization_pending answers; no ID
	// token, refresh token or expires_in; /user without sub.
	GitHub bool
}

// IdP is a running fake provider.
type IdP struct {
	// URL is the issuer: http://127.0.0.1:PORT.
	URL    string
	Server *httptest.Server

	key *ecdsa.PrivateKey
	kid string

	mu      sync.Mutex
	cfg     Config
	codes   map[string]*authCode
	refresh map[string]*refreshToken
	access  map[string]string // access token → subject
	devices map[string]*deviceCode
	stats   Stats
	// families numbers the logins; refresh tokens of one login share one.
	families int
}

// Stats counts what the provider saw.
type Stats struct {
	Authorizations  int
	CodeExchanges   int
	Refreshes       int // refresh grants presented, whatever the outcome
	Replays         int // spent refresh tokens presented again
	DevicePolls     int
	Revocations     []string // tokens revoked, in order
	UserinfoCalls   int
	Discoveries     int // discovery documents served
	AuthHeaderCalls int // token requests that sent an Authorization header
	LastState       string
	LastRedirectURI string
	// LastAuthorizeQuery, LastTokenForm and LastDeviceForm are the last
	// authorization request's parameters and token and device requests'
	// forms; LastClientAuth how the client last authenticated ("basic",
	// "post" or "none").
	LastAuthorizeQuery, LastTokenForm, LastDeviceForm map[string][]string
	LastClientAuth                                    string
}

type authCode struct {
	redirectURI, challenge, nonce string
	scopes                        []string
	used                          bool
}

type refreshToken struct {
	family    int
	scopes    []string
	spent     bool
	spentAt   time.Time
	successor string
	revoked   bool
}

type deviceCode struct {
	scopes []string
	polls  int
	done   bool
}

// New starts a fake provider on 127.0.0.1, closed when the test ends.
// configure, if given, adjusts the defaults.
func New(t testing.TB, configure ...func(*Config)) *IdP {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	idp := &IdP{
		key:     key,
		kid:     "k1",
		codes:   map[string]*authCode{},
		refresh: map[string]*refreshToken{},
		access:  map[string]string{},
		devices: map[string]*deviceCode{},
		cfg: Config{ClientID: "latch-cli", AccessTTL: 5 * time.Minute, Subject: "user-1", PreferredUsername: "ada",
			Email: "ada@example.com", Name: "Ada Lovelace", ReplayError: "invalid_grant", DeviceInterval: time.Second,
			DeviceExpiresIn: 10 * time.Minute},
	}
	for _, f := range configure {
		f(&idp.cfg)
	}
	if idp.cfg.GitHub {
		idp.cfg.NoRefreshToken, idp.cfg.OmitExpiresIn, idp.cfg.OpaqueAccessTokens, idp.cfg.OmitIDToken = true, true, true, true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", idp.authorize)
	mux.HandleFunc("POST /login/oauth/access_token", idp.token)
	mux.HandleFunc("POST /login/device/code", idp.device)
	mux.HandleFunc("GET /user", idp.userinfo)
	mux.HandleFunc("GET /.well-known/openid-configuration", idp.discovery)
	mux.HandleFunc("GET /jwks", idp.jwks)
	mux.HandleFunc("GET /authorize", idp.authorize)
	mux.HandleFunc("POST /token", idp.token)
	mux.HandleFunc("POST /device", idp.device)
	mux.HandleFunc("POST /revoke", idp.revoke)
	mux.HandleFunc("GET /userinfo", idp.userinfo)
	idp.Server = httptest.NewUnstartedServer(mux) // httptest listens on 127.0.0.1
	if idp.cfg.TLS {
		idp.Server.StartTLS()
	} else {
		idp.Server.Start()
	}
	idp.URL = idp.Server.URL
	t.Cleanup(idp.Server.Close)
	return idp
}

// Configure changes the behaviour of a running provider.
func (idp *IdP) Configure(f func(*Config)) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	f(&idp.cfg)
}

// Stats returns a copy of the counters.
func (idp *IdP) Stats() Stats {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	s := idp.stats
	s.Revocations = append([]string(nil), s.Revocations...)
	return s
}

// RefreshTokenValid reports whether rt would be accepted now.
func (idp *IdP) RefreshTokenValid(rt string) bool {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	r, ok := idp.refresh[rt]
	return ok && !r.revoked && !r.spent
}

func (idp *IdP) discovery(w http.ResponseWriter, r *http.Request) {
	idp.mu.Lock()
	c := idp.cfg
	idp.stats.Discoveries++
	idp.mu.Unlock()
	scopes := c.ScopesSupported
	if scopes == nil {
		scopes = []string{"openid", "profile", "email", "offline_access"}
	}
	if c.GitHub {
		http.NotFound(w, r)
		return
	}
	methods := []string{"none"}
	switch {
	case c.AuthMethods != nil:
		methods = c.AuthMethods
	case c.OmitNoneAuthMethod:
		methods = []string{"client_secret_basic", "client_secret_post"}
	}
	d := map[string]any{
		"issuer":                                idp.URL,
		"authorization_endpoint":                idp.URL + "/authorize",
		"token_endpoint":                        idp.URL + "/token",
		"jwks_uri":                              idp.URL + "/jwks",
		"scopes_supported":                      scopes,
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": methods,
		"grant_types_supported": []string{"authorization_code", "refresh_token",
			"urn:ietf:params:oauth:grant-type:device_code"},
	}
	if !c.HideIssParameter {
		d["authorization_response_iss_parameter_supported"] = true
	}
	if !c.NoRevocation {
		d["revocation_endpoint"] = idp.URL + "/revoke"
	}
	if !c.NoDevice {
		d["device_authorization_endpoint"] = idp.URL + "/device"
	}
	if !c.NoUserinfo {
		d["userinfo_endpoint"] = idp.URL + "/userinfo"
	}
	writeJSON(w, http.StatusOK, d)
}

func (idp *IdP) jwks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &idp.key.PublicKey, KeyID: idp.kid, Algorithm: string(jose.ES256), Use: "sig"},
	}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (idp *IdP) oauthError(w http.ResponseWriter, r *http.Request, status int, code, desc string) {
	if idp.cfg.GitHub {
		status = http.StatusOK // GitHub's token endpoint says no with 200
	}
	idp.reply(w, r, status, map[string]any{"error": code, "error_description": desc})
}

func random() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func hasScope(scopes []string, s string) bool {
	for _, v := range scopes {
		if v == s {
			return true
		}
	}
	return false
}

func split(scope string) []string { return strings.Fields(scope) }
