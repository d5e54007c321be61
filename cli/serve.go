package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latch-dev/latch/server"
)

type serveOptions struct {
	Addr, DB, SecretKeyFile, Issuer string
	ClientsFile                     string
	Dev, InsecureHTTP, BehindProxy  bool
	CheckDB                         bool
	RequireVerifiedEmail            bool
	BootstrapAdmin                  string
	TLSCert, TLSKey                 string
	AccessTTL, RefreshTTL           time.Duration
	SessionMax, ReuseGrace          time.Duration
	RateIP, RateAccount             int
	LogFormat, LogLevel             string
	SMTPURL, SMTPPasswordFile       string
	MailFrom                        string
	AuditLog                        string
	AuditRetention                  time.Duration
	Audit                           bool

	// ready, when set, is told the address the server listens on.
	ready func(addr string)
}

func newServeCmd(runF func(context.Context, *serveOptions) error) *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the latch auth backend (account API and OpenID provider)",
		Long: `Run the compatible auth backend: register, login by username or email,
refresh with rotation and reuse detection, logout and sessions.

The database is SQLite by default (a file, --db PATH), for one machine. For
several instances, --db postgres://user@host:5432/dbname (or the environment
variable LATCH_DATABASE_URL) puts everything in one PostgreSQL database they
share: accounts, sessions and refresh-token rotation (exactly once across
instances), rate limits and login backoff, the OpenID provider's requests
and codes, and the signing keys. Every instance then needs the same
--secret-key-file, and the same --issuer (the public URL). The password is
never part of --db (it would show in the process list): it comes from a
passfile (?passfile=PATH, PGPASSFILE or ~/.pgpass) or PGPASSWORD. Migrations
run at start, under a lock, once however many instances start together;
--check-db migrates, reports and exits, for deploy pipelines. See deploy/
for a two-instance example behind a reverse proxy.

It is also an OAuth 2.0 / OpenID Connect provider for the same accounts, at
the issuer URL: discovery at /.well-known/openid-configuration, /authorize,
/oauth/token, /device_authorization (the user goes to /device), /revoke,
/userinfo, /oauth/introspect, /end_session and /keys. The client latch-cli is
built in (public, PKCE, device grant, and any loopback redirect: localhost,
127.0.0.1 or [::1], on any port and path, as CLI tools expect). More
clients come from --clients FILE, in YAML (or JSON):

  clients:
    - id: grafana
      name: Grafana                 # shown on the consent page
      secret_sha256: 9f86d081…      # hex SHA-256 of the secret; omit for a public client
      redirect_uris: [https://grafana.example.com/login/generic_oauth]
      grant_types: [authorization_code, refresh_token]   # default; also device_code
      scopes: [openid, profile, email, offline_access]   # default
      account_api: false            # true: first-party, no consent, tokens work on /auth/*

Make a secret with 'openssl rand -base64 32' and store its hash
('printf %s "$SECRET" | sha256sum'): the file never holds the secret.
Public clients must use PKCE with S256.

Binding an address other than loopback needs TLS (--tls-cert/--tls-key), or
--insecure-http when a TLS-terminating proxy stands in front.

Mail (email verification, password reset, security notices) goes out over
SMTP: --smtp-url smtp://user@host:587 with STARTTLS, which is required
unless the host is loopback (add ?starttls=off for a loopback relay without
TLS), or smtps://user@host:465. The password comes from
--smtp-password-file or the environment variable LATCH_SMTP_PASSWORD, never
from a flag. Mail is queued in the database and sent by a worker with
retries, so a dead mail server never holds up a request and a restart loses
no mail; until an SMTP server is configured, mail waits in the queue.
--dev keeps mail in an in-memory mailbox instead (GET /dev/mail, and a
one-line notice in the log per mail); with --smtp-url too, it also sends.`,
		Example: `  latch serve --dev
  latch serve --addr 127.0.0.1:8080 --db ./latch.db
  PGPASSFILE=/etc/latch/pgpass latch serve --db postgres://latch@db.internal:5432/latch \
      --secret-key-file /etc/latch/secret.key --issuer https://auth.example.com --behind-proxy --insecure-http --addr 0.0.0.0:8080
  latch serve --db postgres://latch@db.internal/latch --secret-key-file /etc/latch/secret.key --check-db
  latch serve --addr :443 --tls-cert cert.pem --tls-key key.pem --issuer https://auth.example.com
  latch serve --addr :443 --tls-cert cert.pem --tls-key key.pem --clients clients.yaml
  LATCH_SMTP_PASSWORD=… latch serve --smtp-url smtp://latch@mail.example.com:587 --mail-from latch@example.com
  latch serve --dev --smtp-url smtp://127.0.0.1:1025   # a local mailpit`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return serveRun(cmd.Context(), o, cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Addr, "addr", "127.0.0.1:8080", "address to listen on")
	f.StringVar(&o.DB, "db", "", "SQLite database file (default in the user's data directory), or postgres://user@host:port/dbname (default env "+databaseURLEnv+")")
	f.BoolVar(&o.CheckDB, "check-db", false, "open the database, apply its migrations, check the secret key opens its signing keys, report and exit")
	f.StringVar(&o.SecretKeyFile, "secret-key-file", "", "file holding the server key that seals secrets at rest, created 0600 if missing (default beside the database)")
	f.StringVar(&o.Issuer, "issuer", "", "public URL of this server, used as token issuer (default from --addr)")
	f.StringVar(&o.ClientsFile, "clients", "", "YAML or JSON file of OAuth clients of the OpenID provider, besides the built-in latch-cli (format above)")
	f.BoolVar(&o.Dev, "dev", false, "development mode: in-memory database, loopback only; the first account is a superadmin")
	f.StringVar(&o.BootstrapAdmin, "bootstrap-admin", "", "USERNAME of the account made superadmin at start (or when it signs up), to administer the server")
	f.StringVar(&o.TLSCert, "tls-cert", "", "TLS certificate file (PEM)")
	f.StringVar(&o.TLSKey, "tls-key", "", "TLS private key file (PEM)")
	f.BoolVar(&o.InsecureHTTP, "insecure-http", false, "allow plain HTTP on a non-loopback address (behind a TLS proxy)")
	f.BoolVar(&o.BehindProxy, "behind-proxy", false, "take client IPs from the last X-Forwarded-For hop (only behind a proxy you run)")
	f.BoolVar(&o.RequireVerifiedEmail, "require-verified-email", false, "refuse login until the account's email address is verified (and do not reveal taken addresses at signup)")
	f.DurationVar(&o.AccessTTL, "access-ttl", server.DefaultAccessTTL, "access-token lifetime")
	f.DurationVar(&o.RefreshTTL, "refresh-ttl", server.DefaultRefreshTTL, "sliding idle lifetime of a session")
	f.DurationVar(&o.SessionMax, "session-max", server.DefaultSessionMax, "absolute lifetime of a session")
	f.DurationVar(&o.ReuseGrace, "reuse-grace", server.DefaultReuseGrace, "window in which a rotated refresh token may be retried (0: no retries)")
	f.IntVar(&o.RateIP, "rate-ip", server.DefaultRateIP, "register/login/refresh requests per minute per client IP (0 disables)")
	f.IntVar(&o.RateAccount, "rate-account", server.DefaultRateAccount, "register/login/refresh requests per minute per account (0 disables)")
	f.StringVar(&o.SMTPURL, "smtp-url", "", "SMTP server for mail: smtp://[user@]host[:587] (STARTTLS) or smtps://[user@]host[:465]")
	f.StringVar(&o.SMTPPasswordFile, "smtp-password-file", "", "file holding the SMTP password (else env "+smtpPasswordEnv+")")
	f.StringVar(&o.MailFrom, "mail-from", "", "sender address of mail, like 'latch <latch@example.com>' (needed with --smtp-url unless --dev)")
	f.StringVar(&o.AuditLog, "audit-log", "", "also write every audit event as a JSON line to FILE (created 0600, appended to), or - for stdout, for a SIEM")
	f.DurationVar(&o.AuditRetention, "audit-retention", server.DefaultAuditRetention, "how long audit events are kept in the database")
	f.BoolVar(&o.Audit, "audit", true, "record audit events (off only for benchmarks)")
	f.MarkHidden("audit")
	f.StringVar(&o.LogFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&o.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

func serveRun(ctx context.Context, o *serveOptions, stderr io.Writer) error {
	logger, err := newLogger(stderr, o.LogFormat, o.LogLevel)
	if err != nil {
		return err
	}
	// The OpenID provider's library logs only to slog's default logger.
	slog.SetDefault(logger)
	tls := o.TLSCert != "" || o.TLSKey != ""
	if tls && (o.TLSCert == "" || o.TLSKey == "") {
		return usagef("--tls-cert and --tls-key go together")
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--access-ttl", o.AccessTTL}, {"--refresh-ttl", o.RefreshTTL}, {"--session-max", o.SessionMax}} {
		if d.v <= 0 {
			return usagef("%s must be positive, not %v", d.flag, d.v)
		}
	}
	if o.ReuseGrace != 0 && o.ReuseGrace < time.Second {
		return usagef("--reuse-grace must be 0 (no retries) or at least 1s, not %v", o.ReuseGrace)
	}
	loopback, err := isLoopbackAddr(o.Addr)
	if err != nil {
		return usagef("--addr %q: %v", o.Addr, err)
	}
	if o.Dev && !loopback {
		return usagef("--dev serves only on loopback (127.0.0.1 or ::1), not %q", o.Addr)
	}
	if !loopback && !tls && !o.InsecureHTTP {
		return usagef("refusing plain HTTP on %q, which is not loopback: give --tls-cert and --tls-key, or --insecure-http behind a TLS proxy", o.Addr)
	}
	mail, err := o.mailConfig()
	if err != nil {
		return err
	}
	if o.AuditRetention <= 0 {
		return usagef("--audit-retention must be positive, not %v", o.AuditRetention)
	}
	auditLog, closeAudit, err := openAuditLog(o.AuditLog)
	if err != nil {
		return err
	}
	defer closeAudit()

	cfg := server.Config{
		Issuer: o.Issuer, AccessTTL: o.AccessTTL, RefreshTTL: o.RefreshTTL,
		SessionMax: o.SessionMax, ReuseGrace: o.ReuseGrace,
		RateIP: disableZero(o.RateIP), RateAccount: disableZero(o.RateAccount),
		BehindProxy: o.BehindProxy, Logger: logger, Mail: mail,
		RequireVerifiedEmail: o.RequireVerifiedEmail,
		BootstrapAdmin:       o.BootstrapAdmin, Dev: o.Dev,
		AuditLog: auditLog, AuditRetention: o.AuditRetention, NoAudit: !o.Audit,
	}
	if o.ReuseGrace == 0 {
		cfg.ReuseGrace = -1 // the config's "never"; its zero means the default
	}
	if o.ClientsFile != "" {
		if cfg.Clients, err = server.LoadClients(o.ClientsFile); err != nil {
			return err
		}
	}
	if o.Dev {
		if o.DB != "" || o.CheckDB {
			return usagef("--dev uses a throwaway in-memory database: drop --db and --check-db, or --dev")
		}
		cfg.DBPath = server.MemoryDB
		cfg.SecretKey = make([]byte, 32)
		rand.Read(cfg.SecretKey)
	} else {
		if cfg.DBPath, err = o.database(); err != nil {
			return err
		}
		if cfg.DBPath == "" {
			dir, err := dataDir()
			if err != nil {
				return err
			}
			cfg.DBPath = filepath.Join(dir, "latch.db")
		}
		if server.IsPostgres(cfg.DBPath) && o.Issuer == "" && !o.CheckDB {
			return usagef("with a PostgreSQL --db, give --issuer, the public URL, the same on every instance: by default each instance would name its own address, and tokens from one would be refused by the others")
		}
		keyFile := o.SecretKeyFile
		if keyFile == "" && server.IsPostgres(cfg.DBPath) {
			return usagef("with a PostgreSQL --db, give --secret-key-file: every instance must use the same key (it seals the secrets and signing keys in the shared database); make one with: (umask 077; openssl rand -hex 32 > secret.key)")
		}
		if keyFile == "" {
			keyFile = filepath.Join(filepath.Dir(cfg.DBPath), "secret.key")
		}
		if cfg.SecretKey, err = server.LoadSecretKey(keyFile); err != nil {
			return err
		}
	}

	if o.CheckDB {
		return checkDB(ctx, cfg, stderr)
	}

	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.Addr, err)
	}
	defer ln.Close()
	scheme := "http"
	if tls {
		scheme = "https"
	}
	if cfg.Issuer == "" {
		cfg.Issuer = scheme + "://" + ln.Addr().String()
	}
	srv, err := server.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer srv.Close()

	url := scheme + "://" + ln.Addr().String()
	if o.Dev {
		fmt.Fprintf(stderr, "\n  latch serve --dev: a throwaway backend with an in-memory database.\n"+
			"  Everything is lost when it stops (Ctrl-C). Mail stays in a mailbox: curl %s/dev/mail\n\n"+
			"  Listening on %s\n  Try: curl %s/auth/config\n\n", url, url, url)
	}
	logger.Info("listening", "url", url, "issuer", cfg.Issuer, "db", server.RedactDB(cfg.DBPath))
	if o.ready != nil {
		o.ready(ln.Addr().String())
	}
	return srv.Serve(ctx, ln, o.TLSCert, o.TLSKey)
}

// disableZero maps the flag's 0 ("disabled") to the config's negative.
func disableZero(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

func isLoopbackAddr(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, err
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

// dataDir is where the server keeps its database: $LATCH_HOME/server, else
// $XDG_DATA_HOME/latch, else the platform's per-user data directory.
func dataDir() (string, error) {
	if h := os.Getenv("LATCH_HOME"); h != "" {
		return filepath.Join(h, "server"), nil
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "latch"), nil
	}
	if runtime.GOOS == "linux" || runtime.GOOS == "freebsd" || runtime.GOOS == "openbsd" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		return filepath.Join(home, ".local", "share", "latch"), nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", errors.New("no data directory: set --db or LATCH_HOME")
	}
	return filepath.Join(dir, "latch"), nil
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("--log-format %q: use text or json", format)
}

// openAuditLog opens the --audit-log sink: stdout for "-", else the file,
// appended to and private (events name accounts and addresses).
func openAuditLog(path string) (io.Writer, func(), error) {
	switch path {
	case "":
		return nil, func() {}, nil
	case "-":
		return os.Stdout, func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("--audit-log: %w (give a writable file, or - for stdout)", err)
	}
	// O_CREATE's mode applies only to a new file: an existing one others
	// may read would show them every account's events and addresses.
	if fi, err := f.Stat(); err != nil || othersCanRead(fi) {
		f.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("--audit-log: %w", err)
		}
		return nil, nil, fmt.Errorf("--audit-log %s is readable by others (mode %v): chmod 600 it, or give another file",
			path, fi.Mode().Perm())
	}
	return f, func() { f.Close() }, nil
}

// databaseURLEnv names the database when --db is not given, so that a
// PostgreSQL URL (and a password in it) need not be in argv.
const databaseURLEnv = "LATCH_DATABASE_URL"

// database is the --db value, else LATCH_DATABASE_URL. A password in --db is
// refused: argv is visible to every user of the machine.
func (o *serveOptions) database() (string, error) {
	db := o.DB
	if db == "" {
		db = os.Getenv(databaseURLEnv)
	}
	if keywordDSN(db) {
		// Taken for a SQLite path, it would make a file named after it,
		// password and all, and log it.
		return "", usagef("the database is in libpq's key=value form, which latch does not read: " +
			"use postgres://user@host:port/dbname (the password from a passfile or PGPASSWORD)")
	}
	if o.DB == "" || !server.IsPostgres(o.DB) {
		// sqlite:PATH is PATH: the key's default directory is taken from it.
		return strings.TrimPrefix(db, "sqlite:"), nil
	}
	u, err := url.Parse(o.DB)
	if err != nil {
		return "", usagef("--db %s is not a URL: use postgres://user@host:port/dbname", server.RedactDB(o.DB))
	}
	_, secret := u.User.Password()
	for k := range u.Query() {
		secret = secret || server.DBSecretParam(k)
	}
	if secret {
		return "", usagef("--db must not hold the database password (it would show in the process list): " +
			"use a passfile (?passfile=PATH, PGPASSFILE or ~/.pgpass), PGPASSWORD, or put the whole URL in " + databaseURLEnv)
	}
	return o.DB, nil
}

// keywordDSN reports whether db is a libpq key=value connection string
// ("host=db user=latch dbname=latch").
func keywordDSN(db string) bool {
	if server.IsPostgres(db) {
		return false
	}
	for _, k := range []string{"host=", "hostaddr=", "dbname=", "user=", "password=", "port=", "sslmode="} {
		if strings.HasPrefix(db, k) || strings.Contains(db, " "+k) {
			return true
		}
	}
	return false
}

// checkDB opens (and so migrates) the database, checks the server key opens
// its signing keys, reports, and exits: a deploy pipeline's step before the
// instances start.
func checkDB(ctx context.Context, cfg server.Config, stderr io.Writer) error {
	// Nothing is served: no issuer to warn about, no mail to queue.
	cfg.Issuer = "http://127.0.0.1"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	info, err := srv.CheckDB(ctx)
	if err != nil {
		return fmt.Errorf("database %s: %w", server.RedactDB(cfg.DBPath), err)
	}
	fmt.Fprintf(stderr, "database %s (%s): schema version %d of %d, up to date; the secret key opens its signing keys\n",
		server.RedactDB(cfg.DBPath), info.Dialect, info.SchemaVersion, info.Latest)
	return nil
}
