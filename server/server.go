// Package server is the compatible auth backend behind `latch serve`: the
// account API (register, login, refresh with rotation and reuse detection,
// logout, sessions, TOTP two-factor) over SQLite or PostgreSQL, with rate
// limits and metrics, and an OAuth 2.0 / OpenID Connect provider for the
// same accounts (zitadel/oidc's op at its default paths, with the built-in
// latch-cli and clients from a file; server-rendered login, second-factor,
// consent and device pages). Every OAuth grant is a session of the account
// API.
//
// It owns its database and its signing keys. It must never write a password,
// a token, an authorization or device code, a second-factor code or secret,
// a client secret, or a key to a log, and never store a refresh token, an
// authorization or device code, a client secret or a backup code in a form
// that can be used (only hashes, and the grace-window successor sealed with
// the server key); TOTP secrets are stored sealed with the server key.
package server

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/latch-dev/latch/mailer"
)

// Config is what `latch serve` is started with. Zero durations and limits
// take the documented defaults.
type Config struct {
	DBPath     string        // SQLite file, MemoryDB, or a postgres:// URL
	Issuer     string        // iss and aud of access tokens; the server's public URL
	AccessTTL  time.Duration // access-token lifetime (15m)
	RefreshTTL time.Duration // sliding idle lifetime of a session (7 days)
	SessionMax time.Duration // absolute lifetime of a session (30 days)
	ReuseGrace time.Duration // how long a rotated token may be retried (10s); negative: never
	SecretKey  []byte        // 32 bytes: seals secrets at rest

	// Requests per minute per client IP, and per account, on register, login
	// and refresh. Negative disables a limit; zero takes the default.
	RateIP, RateAccount int
	// BehindProxy takes the client IP from the last X-Forwarded-For hop.
	BehindProxy bool

	// Clients are the OpenID provider's OAuth clients besides the built-in
	// latch-cli (see ClientConfig and LoadClients).
	Clients []ClientConfig
	// DevicePoll is the interval device-grant clients are told to poll at
	// (5 s, RFC 8628's default).
	DevicePoll time.Duration

	// Mail says how mail leaves: SMTP, or the in-memory dev mailbox (--dev,
	// latch demo). The zero value sends nothing: mail is queued in the
	// outbox and kept until a sender is configured.
	Mail MailConfig
	// RequireVerifiedEmail refuses login until the account's email is
	// verified.
	RequireVerifiedEmail bool

	// BootstrapAdmin names an account (username) made superadmin at start
	// and whenever it signs up; with Dev, the first account is.
	BootstrapAdmin string
	// Dev: development mode (latch serve --dev): the first account is a
	// superadmin.
	Dev bool
	// AuditLog, when set, also receives every audit event as a JSON line
	// (--audit-log FILE|-).
	AuditLog io.Writer
	// AuditRetention is how long audit events are kept (90 days).
	AuditRetention time.Duration
	// NoAudit turns the audit log off (hidden --audit=false, for the
	// benchmark's comparison only).
	NoAudit bool

	Logger *slog.Logger
	Now    func() time.Time

	argon *argonParams // tests lower the hashing cost
}

// Defaults, also shown by `latch serve --help`.
const (
	DefaultAccessTTL   = 15 * time.Minute
	DefaultRefreshTTL  = 7 * 24 * time.Hour
	DefaultSessionMax  = 30 * 24 * time.Hour
	DefaultReuseGrace  = 10 * time.Second
	DefaultRateIP      = 60
	DefaultRateAccount = 10
)

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.AccessTTL, DefaultAccessTTL)
	def(&c.RefreshTTL, DefaultRefreshTTL)
	def(&c.SessionMax, DefaultSessionMax)
	def(&c.DevicePoll, devicePoll)
	def(&c.AuditRetention, DefaultAuditRetention)
	if c.ReuseGrace == 0 {
		c.ReuseGrace = DefaultReuseGrace
	}
	if c.RateIP == 0 {
		c.RateIP = DefaultRateIP
	}
	if c.RateAccount == 0 {
		c.RateAccount = DefaultRateAccount
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.DBPath == "" {
		c.DBPath = MemoryDB
	}
	c.Issuer = strings.TrimRight(c.Issuer, "/")
}

// Server is the account API. Create it with New, serve Handler, Close it.
type Server struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	st      *store
	keys    *keySet
	sealer  *sealer
	codeKey []byte // keys the hashes of backup codes
	pageKey []byte // keys the CSRF tokens of the provider's pages
	hasher  *hasher
	policy  policy
	metrics *metrics

	ipLimit, acctLimit limiter
	mailLimit          limiter // mail per account and per address (recovery.go)
	backoff            backoff
	mux                *http.ServeMux
	op                 *opStorage // the OpenID provider's storage and clients

	// afterTokenRead, when set (tests only), runs inside rotate's
	// transaction right after the token row was read.
	afterTokenRead func()
	// mailHook, when set (tests only), sees every mail queued.
	mailHook func(outMail)

	outbox outbox          // sends queued mail (outbox.go)
	devbox *mailer.Mailbox // the dev mailbox, with MailConfig.Dev
	aud    *auditLog       // the --audit-log stream (audit.go)
}

// New opens the database (creating and migrating it as needed) and loads or
// creates the signing key.
func New(ctx context.Context, cfg Config) (*Server, error) {
	cfg.setDefaults()
	if cfg.Issuer == "" {
		return nil, errors.New("an issuer URL is required")
	}
	if len(cfg.SecretKey) != 32 {
		return nil, errors.New("the secret key must be 32 bytes")
	}
	st, err := openStore(ctx, cfg.DBPath)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, now: cfg.Now, st: st, policy: defaultPolicy, metrics: newMetrics()}
	s.aud = newAuditLog(cfg.AuditLog)
	st.afterTx = s.aud.settle
	if s.sealer, err = newSealer(cfg.SecretKey); err != nil {
		st.Close()
		return nil, err
	}
	if s.codeKey, err = deriveCodeKey(cfg.SecretKey); err != nil {
		st.Close()
		return nil, err
	}
	if s.keys, err = loadKeys(ctx, st, s.sealer, s.now()); err != nil {
		st.Close()
		return nil, err
	}
	if s.pageKey, err = hkdf.Key(sha256.New, cfg.SecretKey, nil, "latch pages v1", 32); err != nil {
		st.Close()
		return nil, err
	}
	params := defaultArgon
	if cfg.argon != nil {
		params = *cfg.argon
	}
	s.hasher = newHasher(params)
	limit := func(_ string, r limitRate) limiter { return newMemLimiter(r, s.now) }
	s.backoff = newBackoff(s.now)
	if st.dialect.name() == "postgres" {
		// Shared by every instance: a limit is the deployment's (ratelimit_db.go).
		limit = func(name string, r limitRate) limiter { return newDBLimiter(st, name, r, s.now, s.log) }
		s.backoff = newDBBackoff(st, s.now, s.log)
	}
	s.ipLimit = limit("ip", perMinuteRate(cfg.RateIP))
	s.acctLimit = limit("account", perMinuteRate(cfg.RateAccount))
	s.mailLimit = limit("mail", mailRate(cfg.RateAccount))
	s.mux = http.NewServeMux()
	for _, rt := range s.routes() {
		s.mux.Handle(rt.method+" "+rt.path, rt.h)
	}
	provider, opst, err := s.newProvider()
	if err != nil {
		st.Close()
		return nil, err
	}
	s.op = opst
	s.mountProvider(provider)
	if err := s.bootstrapAdmin(ctx); err != nil {
		st.Close()
		return nil, err
	}
	if err := s.startOutbox(); err != nil {
		st.Close()
		return nil, err
	}
	return s, nil
}

// Close stops the mail worker and closes the database.
func (s *Server) Close() error {
	s.stopOutbox()
	return s.st.Close()
}

type route struct {
	method, path string
	h            http.Handler
}

//go:embed openapi.yaml
var openapiDoc []byte

// routes is every endpoint the server answers; the OpenAPI test walks it.
func (s *Server) routes() []route {
	fn := func(f http.HandlerFunc) http.Handler { return f }
	return []route{
		{"GET", "/auth/config", fn(s.handleConfig)},
		{"POST", "/auth/register", fn(s.handleRegister)},
		{"POST", "/auth/login", fn(s.handleLogin)},
		{"POST", "/auth/refresh", fn(s.handleRefresh)},
		{"POST", "/auth/logout", fn(s.handleLogout)},
		{"GET", "/auth/me", s.authed(s.handleMe)},
		{"GET", "/auth/protected", s.authed(s.handleProtected)},
		{"GET", "/auth/sessions", s.authed(s.handleSessions)},
		{"DELETE", "/auth/sessions/{id}", s.authed(s.handleRevokeSession)},
		{"POST", "/auth/password", s.authed(s.handlePassword)},
		{"POST", "/auth/mfa/setup", s.authed(s.handleMFASetup)},
		{"POST", "/auth/mfa/enable", s.authed(s.handleMFAEnable)},
		{"POST", "/auth/mfa/verify", fn(s.handleMFAVerify)},
		{"POST", "/auth/mfa/disable", s.authed(s.handleMFADisable)},
		{"POST", "/auth/mfa/backup-codes", s.authed(s.handleMFABackupCodes)},
		{"POST", "/auth/email/verify", fn(s.handleEmailVerify)},
		{"POST", "/auth/email/resend", fn(s.handleEmailResend)}, // Bearer optional
		{"POST", "/auth/email/change", s.authed(s.handleEmailChange)},
		{"POST", "/auth/password/forgot", fn(s.handlePasswordForgot)},
		{"POST", "/auth/password/reset", fn(s.handlePasswordReset)},
		{"GET", "/dev/mail", fn(s.handleDevMail)},
		{"GET", "/auth/events", s.authed(s.handleEvents)},
		{"GET", "/api/notes", s.requirePerm(permNotesRead, s.handleNotesList)},
		{"POST", "/api/notes", s.requirePerm(permNotesWrite, s.handleNotesCreate)},
		{"GET", "/api/notes/{id}", s.requirePerm(permNotesRead, s.handleNoteGet)},
		{"PATCH", "/api/notes/{id}", s.authed(s.handleNoteUpdate)},  // owner, or notes:write (notes.go)
		{"DELETE", "/api/notes/{id}", s.authed(s.handleNoteDelete)}, // owner, or notes:delete
		{"GET", "/admin/users", s.requirePerm(permUsersRead, s.handleAdminUsers)},
		{"GET", "/admin/users/{id}", s.requirePerm(permUsersRead, s.handleAdminUser)},
		{"POST", "/admin/users/{id}/lock", s.requirePerm(permUsersWrite, s.handleAdminLock)},
		{"POST", "/admin/users/{id}/unlock", s.requirePerm(permUsersWrite, s.handleAdminUnlock)},
		{"POST", "/admin/users/{id}/require-password-reset", s.requirePerm(permUsersWrite, s.handleAdminRequireReset)},
		{"PUT", "/admin/users/{id}/roles/{role}", s.requirePerm(permRolesAssign, s.handleAdminGrantRole)},
		{"DELETE", "/admin/users/{id}/roles/{role}", s.requirePerm(permRolesAssign, s.handleAdminRevokeRole)},
		{"DELETE", "/admin/sessions/{id}", s.requirePerm(permSessionsRevoke, s.handleAdminRevokeSession)},
		{"GET", "/admin/events", s.requirePerm(permAuditRead, s.handleAdminEvents)},
		{"GET", "/auth/jwks.json", fn(s.handleJWKS)},
		{"GET", "/.well-known/jwks.json", fn(s.handleJWKS)},
		{"GET", "/healthz", fn(s.handleHealth)},
		{"GET", "/metrics", fn(s.metrics.serveHTTP)},
		{"GET", "/openapi.yaml", fn(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/yaml")
			w.Write(openapiDoc)
		})},
	}
}

// Handler is the HTTP interface, with logging, metrics and panic recovery.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h := rec.Header()
		r = s.withRequestID(r, h)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if isOIDCPath(r.URL.Path) {
			pageHeaders(h)
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.writeError(rec, r, fmt.Errorf("panic: %v", v))
			}
			s.metrics.requests.inc(fmt.Sprintf("%dxx", min(max(rec.status/100, 1), 5)))
			// The path only: query strings may carry codes or tokens.
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.Int("status", rec.status), slog.String("ip", s.clientIP(r)),
				slog.Duration("took", time.Since(start)))
		}()
		if !urlTextOK(r.URL) {
			s.writeError(rec, r, errBadText)
			return
		}
		s.mux.ServeHTTP(rec, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// clientIP is the address rate limits are keyed on. Behind a proxy it is the
// last X-Forwarded-For hop, which the proxy wrote: earlier hops, and earlier
// header lines, come from the client and prove nothing.
func (s *Server) clientIP(r *http.Request) string {
	if s.cfg.BehindProxy {
		if lines := r.Header.Values("X-Forwarded-For"); len(lines) > 0 {
			hops := strings.Split(lines[len(lines)-1], ",")
			if ip, err := netip.ParseAddr(strings.TrimSpace(hops[len(hops)-1])); err == nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Serve answers on ln until ctx ends, then shuts down gracefully, giving
// requests in flight up to 10 s. With certFile and keyFile it serves TLS.
func (s *Server) Serve(ctx context.Context, ln net.Listener, certFile, keyFile string) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	go s.janitor(ctx)
	errc := make(chan error, 1)
	go func() {
		if certFile != "" {
			errc <- hs.ServeTLS(ln, certFile, keyFile)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// janitor clears sealed successors once their grace window is over, drops
// ended sessions and forgets idle rate-limit state, once a minute.
func (s *Server) janitor(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.sweep(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("janitor", "err", err)
			}
		}
	}
}

// CheckDB reports the database New opened and migrated (latch serve
// --check-db).
func (s *Server) CheckDB(ctx context.Context) (DBInfo, error) { return s.st.info(ctx) }
