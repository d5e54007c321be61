package server

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/latch-dev/latch/mailer"
	"github.com/rs/cors"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// The OpenID provider (issue 6) is zitadel/oidc's op at its default paths,
// with our storage (oidc_storage.go, oidc_tokens.go) and login pages
// (oidc_pages.go). op leaves a few things to us, done here around its
// handlers: PKCE with S256 required of public clients, redirect URIs pinned
// to host and path on loopback, the RFC 9207 iss parameter on authorization
// responses, and the user's denial.

// oidcPaths are the paths op serves (its defaults), apart from the account
// API's: its /healthz and /ready are not mounted.
var oidcPaths = []string{
	oidc.DiscoveryEndpoint, "/authorize", "/authorize/callback", "/oauth/token", "/oauth/introspect",
	"/userinfo", "/revoke", "/end_session", "/keys", "/device_authorization",
}

// devicePath is the device verification page (verification_uri), and
// loggedOutPath where end_session lands without a client's redirect.
const (
	devicePath    = "/device"
	loggedOutPath = "/logged-out"
)

// newProvider builds the provider over s's database and keys.
func (s *Server) newProvider() (*op.Provider, *opStorage, error) {
	st := &opStorage{s: s, clients: map[string]*client{}}
	all := []*client{cliClient()}
	for _, cc := range s.cfg.Clients {
		c, err := newClient(cc)
		if err != nil {
			return nil, nil, err
		}
		all = append(all, c)
	}
	for _, c := range all {
		if st.clients[c.id] != nil {
			return nil, nil, fmt.Errorf("client %q is listed twice", c.id)
		}
		c.loginURL = func(id string) string { return s.cfg.Issuer + "/login?authRequestID=" + url.QueryEscape(id) }
		st.clients[c.id] = c
	}
	key, err := hkdf.Key(sha256.New, s.cfg.SecretKey, nil, "latch oidc codes v1", 32)
	if err != nil {
		return nil, nil, err
	}
	cfg := &op.Config{
		DefaultLogoutRedirectURI: s.cfg.Issuer + loggedOutPath,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedScopes:          append(slices.Clone(defaultScopes), scopeRoles),
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime:     deviceCodeTTL,
			PollInterval: s.cfg.DevicePoll,
			UserFormPath: devicePath,
			UserCode:     op.UserCodeBase20,
		},
	}
	copy(cfg.CryptoKey[:], key)
	opts := []op.Option{
		// Token, userinfo and revocation answer browsers of any origin, but
		// never with the browser's credentials: they take none.
		op.WithCORSOptions(&cors.Options{
			AllowedOrigins: []string{"*"},
			AllowedMethods: []string{http.MethodGet, http.MethodPost},
			AllowedHeaders: []string{"Authorization", "Content-Type"},
		}),
	}
	if u, err := url.Parse(s.cfg.Issuer); err == nil && u.Scheme == "http" {
		opts = append(opts, op.WithAllowInsecure())
		if !mailer.IsLoopback(u.Hostname()) {
			s.log.Warn("the issuer is plain http on a host that is not loopback: OAuth clients will send codes and tokens in the clear unless a TLS proxy stands in front",
				"issuer", s.cfg.Issuer)
		}
	}
	p, err := op.NewProvider(cfg, st, op.StaticIssuer(s.cfg.Issuer), opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("OpenID provider: %w", err)
	}
	return p, st, nil
}

// mountProvider adds the provider's endpoints and pages to the mux.
func (s *Server) mountProvider(p *op.Provider) {
	for _, path := range oidcPaths {
		var h http.Handler = p
		switch path {
		case "/authorize":
			h = s.authorize(p)
		case "/authorize/callback":
			h = s.authorizeCallback(p)
		case oidc.DiscoveryEndpoint:
			h = s.discovery(p)
		case "/oauth/token", "/device_authorization":
			// Who redeems a refresh token, for the reuse notice (rotate),
			// is in the context: Handler's withRequestID put it there.
			h = s.limitOAuth(path, p)
		}
		s.mux.Handle(path, h)
	}
	s.mux.HandleFunc("GET /login", s.handleLoginPage)
	s.mux.HandleFunc("POST /login", s.handleLoginPost)
	s.mux.HandleFunc("POST /login/code", s.handleCodePost)
	s.mux.HandleFunc("POST /consent", s.handleConsentPost)
	s.mux.HandleFunc("GET "+devicePath, s.handleDevicePage)
	s.mux.HandleFunc("POST "+devicePath, s.handleDevicePost)
	s.mux.HandleFunc("GET "+verifyPath, s.handleVerifyPage)
	s.mux.HandleFunc("POST "+verifyPath, s.handleVerifyPost)
	s.mux.HandleFunc("GET "+resetPath, s.handleResetPage)
	s.mux.HandleFunc("POST "+resetPath, s.handleResetPost)
	s.mux.HandleFunc("GET "+loggedOutPath, func(w http.ResponseWriter, r *http.Request) {
		s.render(w, r, http.StatusOK, "result", pageData{Title: "Signed out", Message: "You can close this page."})
	})
}

// isOIDCPath reports whether a request is for the provider or its pages:
// those answers get the pages' security headers.
func isOIDCPath(path string) bool {
	return slices.Contains(oidcPaths, path) || path == "/login" || path == "/login/code" || path == "/consent" ||
		path == devicePath || path == loggedOutPath || path == verifyPath || path == resetPath
}

// authorize checks what op does not before handing the request to it:
// the client and the exact redirect URI (else an error page, never a
// redirect), then the response type and mode, and PKCE.
func (s *Server) authorize(p *op.Provider) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			s.pageError(w, http.StatusBadRequest, "This authorization request is malformed.")
			return
		}
		q := r.Form
		for k, vs := range q {
			// RFC 6749 §3.1. op reads the last value of each, these
			// checks the first: a repeated redirect_uri would pass here
			// and send the code where op reads it.
			if len(vs) > 1 {
				s.pageError(w, http.StatusBadRequest, "This authorization request repeats the parameter "+
					strconv.Quote(k)+", so it is refused.")
				return
			}
		}
		c := s.op.clients[q.Get("client_id")]
		if c == nil {
			s.pageError(w, http.StatusBadRequest, "The application that sent you here is not registered with this server.")
			return
		}
		redirect := q.Get("redirect_uri")
		if !c.redirectAllowed(redirect) {
			s.pageError(w, http.StatusBadRequest, "The application asked to return to an address it has not registered, so you are not sent there.")
			return
		}
		fail := func(code, desc string) { s.errorRedirect(w, r, redirect, q.Get("state"), code, desc) }
		challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
		switch {
		case q.Get("request") != "" || q.Get("request_uri") != "":
			fail("request_not_supported", "Request objects are not supported.")
		case q.Get("response_type") != string(oidc.ResponseTypeCode):
			fail("unsupported_response_type", "Only response_type=code is supported.")
		case q.Get("response_mode") != "" && q.Get("response_mode") != string(oidc.ResponseModeQuery):
			fail("invalid_request", "Only response_mode=query is supported.")
		case c.public() && challenge == "":
			fail("invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256.")
		case challenge != "" && method != string(oidc.CodeChallengeMethodS256):
			fail("invalid_request", "code_challenge_method must be S256.")
		case len(c.allowedScopes(strings.Fields(q.Get("scope")))) == 0:
			fail("invalid_scope", "Ask for at least one scope this client may have, e.g. openid.")
		case slices.Contains(strings.Fields(q.Get("prompt")), oidc.PromptNone):
			fail("login_required", "This server has no browser session: the user must log in.")
		default:
			p.ServeHTTP(&issWriter{ResponseWriter: w, iss: s.cfg.Issuer}, r)
		}
	})
}

// authorizeCallback is where the login pages send the browser once the user
// has answered: only the browser that logged in may collect the answer. A
// denial is answered here; op answers approvals with a code.
func (s *Server) authorizeCallback(p *op.Provider) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := s.op.request(r.Context(), r.URL.Query().Get("id"))
		if err != nil || a.kind != "code" {
			s.pageError(w, http.StatusBadRequest, "This sign-in has expired. Go back to the application and start again.")
			return
		}
		if !s.sameBrowser(r, a.browser) {
			s.pageError(w, http.StatusForbidden, "This sign-in was started in another browser.")
			return
		}
		if a.stage == stageDenied {
			s.errorRedirect(w, r, a.redirectURI, a.state, "access_denied", "The user denied the request.")
			return
		}
		p.ServeHTTP(&issWriter{ResponseWriter: w, iss: s.cfg.Issuer}, r)
	})
}

// errorRedirect answers an authorization request with an error at its
// (already checked) redirect URI, with state and iss.
func (s *Server) errorRedirect(w http.ResponseWriter, r *http.Request, redirect, state, code, desc string) {
	u, err := url.Parse(redirect)
	if err != nil {
		s.pageError(w, http.StatusBadRequest, "The application's return address is malformed.")
		return
	}
	q := u.Query()
	q.Set("error", code)
	q.Set("error_description", desc)
	if state != "" {
		q.Set("state", state)
	}
	q.Set("iss", s.cfg.Issuer)
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// issWriter adds the RFC 9207 iss parameter to op's authorization
// responses: redirects carrying a code or an error. op v3.49.2 does not.
type issWriter struct {
	http.ResponseWriter
	iss string
}

func (w *issWriter) WriteHeader(code int) {
	if code == http.StatusFound || code == http.StatusSeeOther {
		if u, err := url.Parse(w.Header().Get("Location")); err == nil {
			if q := u.Query(); q.Has("code") || q.Has("error") {
				q.Set("iss", w.iss)
				u.RawQuery = q.Encode()
				w.Header().Set("Location", u.String())
			}
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// discovery is op's discovery document, amended with what this provider
// does beyond and short of op's defaults.
func (s *Server) discovery(p *op.Provider) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := op.ContextWithIssuer(r.Context(), s.cfg.Issuer)
		raw, err := json.Marshal(op.CreateDiscoveryConfig(ctx, p, s.op))
		var doc map[string]any
		if err == nil {
			err = json.Unmarshal(raw, &doc)
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		doc["authorization_response_iss_parameter_supported"] = true
		doc["response_types_supported"] = []string{string(oidc.ResponseTypeCode)}
		doc["response_modes_supported"] = []string{string(oidc.ResponseModeQuery)}
		doc["grant_types_supported"] = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeDeviceCode}
		doc["code_challenge_methods_supported"] = []string{string(oidc.CodeChallengeMethodS256)}
		delete(doc, "request_object_signing_alg_values_supported")
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(doc)
	})
}

// limitOAuth applies the per-IP limit to an endpoint that takes codes and
// tokens, answering in OAuth's error format.
func (s *Server) limitOAuth(endpoint string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.limit(r, endpoint, ""); err != nil {
			if p, ok := err.(*problem); ok {
				w.Header().Set("Retry-After", strconv.Itoa(p.RetryAfter))
			}
			writeJSON(w, http.StatusTooManyRequests, map[string]string{
				"error": "slow_down", "error_description": "Too many requests: wait before trying again."})
			return
		}
		next.ServeHTTP(w, r)
	})
}
