package server

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrations embed.FS

// store is the database behind the server: SQLite (store_sqlite.go), the
// embedded default for one machine, or PostgreSQL (store_postgres.go), which
// several instances share. Both run the same SQL, written with ? placeholders
// and the subset both dialects speak; what differs is kept in dialect.
//
// Writes go through tx, which serializes them: in this process by a mutex
// (writers queue without polling), and across processes by the dialect's
// write lock (SQLite's BEGIN IMMEDIATE; a transaction-scoped advisory lock in
// PostgreSQL). Every read-then-write in the server therefore sees no other
// writer between its read and its write, on either database and across any
// number of instances — which is what makes a refresh token rotate exactly
// once, a backup code work once and a device code be approved once.
type store struct {
	db      *sql.DB
	dialect dialect
	writeMu sync.Mutex
	afterTx func(tx *sql.Tx, committed bool) // the audit stream's (audit.go)
}

// dialect is what differs between the two databases.
type dialect interface {
	name() string // "sqlite" or "postgres", also the migrations' directory
	// lock takes the cross-process write lock at the start of a write
	// transaction (a no-op where BEGIN already took it).
	lock(ctx context.Context, tx *sql.Tx) error
	// schemaVersion and setSchemaVersion keep the number of migrations
	// applied; both run inside a locked write transaction.
	schemaVersion(ctx context.Context, tx *sql.Tx) (int, error)
	setSchemaVersion(ctx context.Context, tx *sql.Tx, v int) error
	// versionQuery reads the schema version outside a transaction (health).
	versionQuery() string
	// busy reports whether err is the write lock not had in time.
	busy(err error) bool
	// uniqueViolation names the column of a UNIQUE constraint failure
	// ("username", "email"), "unknown" when it cannot tell, or "" when err
	// is something else.
	uniqueViolation(err error) string
}

// MemoryDB is the --db value for a throwaway in-memory database.
const MemoryDB = ":memory:"

// IsPostgres reports whether a --db value names a PostgreSQL database.
func IsPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// openStore opens db: a postgres:// URL, MemoryDB, or a SQLite file (a path,
// or sqlite:PATH), and brings its schema up to date.
func openStore(ctx context.Context, db string) (*store, error) {
	if IsPostgres(db) {
		return openPostgres(ctx, db)
	}
	return openSQLite(ctx, strings.TrimPrefix(db, "sqlite:"))
}

// migrationNames are the dialect's migrations, in the order they apply.
func (s *store) migrationNames() ([]string, error) {
	names, err := fs.Glob(migrations, "migrations/"+s.dialect.name()+"/*.sql")
	sort.Strings(names)
	return names, err
}

func (s *store) Close() error { return s.db.Close() }

// DBInfo is what /healthz and latch serve --check-db report of the database.
type DBInfo struct {
	Dialect       string `json:"dialect"`        // sqlite or postgres
	SchemaVersion int    `json:"schema_version"` // migrations applied
	Latest        int    `json:"latest"`         // migrations this latch has
}

// info reads the schema version, which also proves the database answers.
func (s *store) info(ctx context.Context) (DBInfo, error) {
	d := DBInfo{Dialect: s.dialect.name()}
	names, err := s.migrationNames()
	if err != nil {
		return d, err
	}
	d.Latest = len(names)
	err = s.db.QueryRowContext(ctx, s.dialect.versionQuery()).Scan(&d.SchemaVersion)
	return d, err
}

// migrate applies the dialect's embedded migrations not yet recorded, each in
// its own write transaction: the write lock makes instances starting together
// take turns, and the version is read again under it, so each migration runs
// once.
func (s *store) migrate(ctx context.Context) error {
	names, err := s.migrationNames()
	if err != nil {
		return err
	}
	for i := 0; i < len(names); i++ {
		body, err := migrations.ReadFile(names[i])
		if err != nil {
			return err
		}
		err = s.tx(ctx, func(tx *sql.Tx) error {
			v, err := s.dialect.schemaVersion(ctx, tx)
			if err != nil {
				return fmt.Errorf("read schema version: %w", err)
			}
			if v > len(names) {
				return fmt.Errorf("database schema version %d is newer than this latch (%d): upgrade latch", v, len(names))
			}
			if v > i {
				return nil
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			return s.dialect.setSchemaVersion(ctx, tx, i+1)
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", filepath.Base(names[i]), err)
		}
	}
	return nil
}

// tx runs fn in a write transaction. fn must use only tx, never s.db: with the
// single connection of an in-memory store that would deadlock.
func (s *store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := s.dialect.lock(ctx, tx); err != nil {
		tx.Rollback()
		return fmt.Errorf("take the database write lock: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		s.settle(tx, false)
		return err
	}
	err = tx.Commit()
	s.settle(tx, err == nil)
	return err
}

// settle tells afterTx (the audit stream) how tx ended.
func (s *store) settle(tx *sql.Tx, committed bool) {
	if s.afterTx != nil {
		s.afterTx(tx, committed)
	}
}

// uniqueViolation reports which column a UNIQUE constraint failure was about
// ("username", "email"), or "" when err is something else.
func (s *store) uniqueViolation(err error) string { return s.dialect.uniqueViolation(err) }

// busy reports whether err says the database's write lock was not had in
// time (PostgreSQL's lock_timeout; SQLite's busy timeout is long and rare).
func (s *store) busy(err error) bool { return s.dialect.busy(err) }
