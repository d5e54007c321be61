package server

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// postgresDialect: one database shared by every instance. A write
// transaction first takes a transaction-scoped advisory lock, so writes take
// turns across the whole deployment exactly as they do inside one SQLite
// file; reads, password hashing and token signing stay parallel. The schema
// version is a one-row table.
type postgresDialect struct{}

// writeLockKey is the advisory lock every write transaction takes
// ("latch" in ASCII, far from keys another application would pick by hand).
const writeLockKey = 0x6c61746368

func (postgresDialect) name() string { return "postgres" }

func (postgresDialect) lock(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock("+strconv.Itoa(writeLockKey)+")")
	return err
}

func (postgresDialect) versionQuery() string {
	return "SELECT coalesce(max(version), 0) FROM latch_schema_version"
}

func (d postgresDialect) schemaVersion(ctx context.Context, tx *sql.Tx) (int, error) {
	if _, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS latch_schema_version (version INTEGER NOT NULL)"); err != nil {
		return 0, err
	}
	var v int
	err := tx.QueryRowContext(ctx, d.versionQuery()).Scan(&v)
	return v, err
}

func (postgresDialect) setSchemaVersion(ctx context.Context, tx *sql.Tx, v int) error {
	if _, err := tx.ExecContext(ctx, "DELETE FROM latch_schema_version"); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, "INSERT INTO latch_schema_version (version) VALUES (?)", v)
	return err
}

// busy: 55P03 lock_not_available, what lock_timeout raises.
func (postgresDialect) busy(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "55P03"
}

func (postgresDialect) uniqueViolation(err error) string {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23505" {
		return ""
	}
	// The detail names the column: "Key (username)=(alice) already exists."
	// (Parsed by hand: a package-level regexp costs every latch process,
	// latch token included, its compilation at start-up.)
	if col, ok := strings.CutPrefix(pe.Detail, "Key ("); ok {
		if i := strings.Index(col, ")="); i > 0 && !strings.ContainsAny(col[:i], " ,(") {
			return col[:i]
		}
	}
	return "unknown"
}

// RedactDB is a --db value fit for a log line: a PostgreSQL URL without its
// password (and without any password= parameter).
func RedactDB(db string) string {
	if !IsPostgres(db) {
		return db
	}
	u, err := url.Parse(db)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	q := u.Query()
	masked := false
	for k := range q {
		if DBSecretParam(k) {
			q.Set(k, "xxxxx")
			masked = true
		}
	}
	if masked {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// DBSecretParam reports whether a PostgreSQL URL parameter holds a secret:
// password, and sslpassword (the passphrase of the client's TLS key).
func DBSecretParam(name string) bool { return strings.Contains(strings.ToLower(name), "password") }

func openPostgres(ctx context.Context, dsn string) (*store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message masks the password.
		return nil, fmt.Errorf("database URL does not parse (check its form: postgres://user@host:port/dbname?sslmode=…): %w", err)
	}
	where := fmt.Sprintf("PostgreSQL at %s:%d, database %q as %q", cfg.Host, cfg.Port, cfg.Database, cfg.User)
	// What the write lock needs of every session, whatever the database's
	// or role's defaults (a URL parameter still wins):
	//   - READ COMMITTED: each statement after the lock sees what the last
	//     holder committed (REPEATABLE READ would read the snapshot taken
	//     before the wait), and the limits' upserts never fail on a race;
	//   - an instance frozen or cut off while holding the lock is ended
	//     after 30 s idle, not after TCP keepalive's two hours, and a
	//     writer waits for the lock 15 s at most.
	for k, v := range map[string]string{
		"default_transaction_isolation":       "read committed",
		"idle_in_transaction_session_timeout": "30s",
		"lock_timeout":                        "15s",
	} {
		if _, set := cfg.RuntimeParams[k]; !set {
			cfg.RuntimeParams[k] = v
		}
	}
	db := sql.OpenDB(rebindConnector{stdlib.GetConnector(*cfg)})
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	// Connections are renewed now and then, so that after a failover none
	// stays on the old primary (read-only now) for good.
	db.SetConnMaxLifetime(10 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to %s: %w", where, pgAdvice(err))
	}
	s := &store{db: db, dialect: postgresDialect{}}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return s, nil
}

// pgAdvice adds what to do to the connection errors an operator meets first.
func pgAdvice(err error) error {
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe) && pe.Code == "28P01":
		return fmt.Errorf("%w (the password comes from the URL's passfile=, PGPASSFILE or ~/.pgpass, or PGPASSWORD)", err)
	case errors.As(err, &pe) && pe.Code == "3D000":
		return fmt.Errorf("%w (create it first: createdb, or CREATE DATABASE)", err)
	case strings.Contains(err.Error(), "connection refused"):
		return fmt.Errorf("%w (is PostgreSQL running and listening there?)", err)
	}
	return err
}

// rebindConnector hands database/sql connections that accept the store's ?
// placeholders, rewritten to PostgreSQL's $1, $2 … on the way in: the
// server's SQL is written once for both dialects.
type rebindConnector struct{ driver.Connector }

func (c rebindConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return rebindConn{conn.(*stdlib.Conn)}, nil
}

// rebindConn is pgx's connection with its query entry points rebinding; every
// other method (transactions, pings, session reset, value checks) is pgx's.
type rebindConn struct{ *stdlib.Conn }

func (c rebindConn) Prepare(query string) (driver.Stmt, error) { return c.Conn.Prepare(rebind(query)) }

func (c rebindConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.Conn.PrepareContext(ctx, rebind(query))
}

func (c rebindConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.ExecContext(ctx, rebind(query), args)
}

func (c rebindConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.QueryContext(ctx, rebind(query), args)
}

// rebind numbers the ? placeholders of q as $1, $2 …, leaving string
// literals, quoted identifiers and comments alone. (Not understood, so not to
// be used in the store's SQL: $$-quoted bodies, E-prefixed strings with backslash escapes,
// and PostgreSQL's ? operators.)
func rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for i := 0; i < len(q); i++ {
		switch c := q[i]; c {
		case '\'', '"':
			j := strings.IndexByte(q[i+1:], c)
			if j < 0 {
				b.WriteString(q[i:])
				return b.String()
			}
			b.WriteString(q[i : i+j+2])
			i += j + 1
		case '/':
			if i+1 < len(q) && q[i+1] == '*' {
				j := strings.Index(q[i+2:], "*/")
				if j < 0 {
					b.WriteString(q[i:])
					return b.String()
				}
				b.WriteString(q[i : i+j+4])
				i += j + 3
				continue
			}
			b.WriteByte(c)
		case '-':
			if i+1 < len(q) && q[i+1] == '-' {
				j := strings.IndexByte(q[i:], '\n')
				if j < 0 {
					b.WriteString(q[i:])
					return b.String()
				}
				b.WriteString(q[i : i+j])
				i += j - 1
				continue
			}
			b.WriteByte(c)
		case '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
