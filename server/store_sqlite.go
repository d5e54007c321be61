package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofrs/flock"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteDialect: one file (or memory), written by one transaction at a time
// (BEGIN IMMEDIATE, through the DSN's _txlock), the schema version in
// PRAGMA user_version.
type sqliteDialect struct{}

func (sqliteDialect) name() string { return "sqlite" }

func (sqliteDialect) lock(context.Context, *sql.Tx) error { return nil }

func (sqliteDialect) versionQuery() string { return "PRAGMA user_version" }

func (d sqliteDialect) schemaVersion(ctx context.Context, tx *sql.Tx) (int, error) {
	var v int
	err := tx.QueryRowContext(ctx, d.versionQuery()).Scan(&v)
	return v, err
}

func (sqliteDialect) setSchemaVersion(ctx context.Context, tx *sql.Tx, v int) error {
	_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v))
	return err
}

func (sqliteDialect) busy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

func (sqliteDialect) uniqueViolation(err error) string {
	var se *sqlite.Error
	if !errors.As(err, &se) || se.Code() != sqlite3.SQLITE_CONSTRAINT_UNIQUE {
		return ""
	}
	// "UNIQUE constraint failed: users.username" (parsed by hand, as the
	// PostgreSQL one: no package-level regexp for every latch process).
	_, after, ok := strings.Cut(se.Error(), "UNIQUE constraint failed: ")
	if _, col, ok2 := strings.Cut(after, "."); ok && ok2 {
		if i := strings.IndexAny(col, " ,)"); i >= 0 {
			col = col[:i]
		}
		if col != "" {
			return col
		}
	}
	return "unknown"
}

func openSQLite(ctx context.Context, path string) (*store, error) {
	var dsn string
	if path == MemoryDB {
		// Every connection to ":memory:" is a database of its own, so an
		// in-memory store has exactly one connection.
		dsn = "file::memory:?_txlock=immediate&_pragma=foreign_keys(1)"
	} else {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create database directory: %w", err)
		}
		// Create the file 0600 before SQLite does, so it is never world-readable.
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open database %s: %w", path, err)
		}
		f.Close()
		q := url.Values{}
		q.Set("_txlock", "immediate")
		// Pragmas run in this order on every new connection: the busy
		// timeout first, so that switching a new file to WAL waits for a
		// connection opening at the same time instead of failing.
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "foreign_keys(1)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		dsn = "file:" + path + "?" + q.Encode()
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if path == MemoryDB {
		db.SetMaxOpenConns(1)
	} else {
		db.SetMaxOpenConns(8)
		db.SetMaxIdleConns(8)
	}
	s := &store{db: db, dialect: sqliteDialect{}}
	if path != MemoryDB {
		// Two processes opening a new file at once race to switch it to WAL,
		// which SQLite answers with SQLITE_BUSY rather than waiting: take
		// turns for the first connection and the migrations.
		unlock, err := lockInit(ctx, path)
		if err != nil {
			db.Close()
			return nil, err
		}
		defer unlock()
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			return nil, fmt.Errorf("open database %s: %w", path, err)
		}
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// lockInit takes the lock file beside the database, waiting up to 30 s.
func lockInit(ctx context.Context, path string) (func(), error) {
	fl := flock.New(path+".lock", flock.SetPermissions(0o600))
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ok, err := fl.TryLockContext(ctx, 10*time.Millisecond)
	if err != nil || !ok {
		return nil, fmt.Errorf("lock database %s for start-up (another latch serve starting?): %w", path, err)
	}
	return func() { fl.Unlock() }, nil
}
