package server

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/gofrs/flock"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrations embed.FS

// store is the SQLite database behind the server. Writes go through tx, which
// serializes them in this process (a mutex, so writers queue without polling)
// and across processes (BEGIN IMMEDIATE takes the write lock up front).
type store struct {
	db      *sql.DB
	writeMu sync.Mutex
	afterTx func(tx *sql.Tx, committed bool) // the audit stream's (audit.go)
}

// MemoryDB is the --db value for a throwaway in-memory database.
const MemoryDB = ":memory:"

func openStore(ctx context.Context, path string) (*store, error) {
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
	s := &store{db: db}
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

func (s *store) Close() error { return s.db.Close() }

// migrate applies the embedded migrations not yet recorded in user_version,
// each in its own transaction.
func (s *store) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	var version int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(names) {
		return fmt.Errorf("database schema version %d is newer than this latch (%d): upgrade latch", version, len(names))
	}
	for i := version; i < len(names); i++ {
		body, err := migrations.ReadFile(names[i])
		if err != nil {
			return err
		}
		err = s.tx(ctx, func(tx *sql.Tx) error {
			// Another process may have migrated since the version was read.
			var now int
			if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&now); err != nil {
				return err
			}
			if now > i {
				return nil
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", i+1))
			return err
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

var uniqueRE = regexp.MustCompile(`UNIQUE constraint failed: \w+\.(\w+)`)

// uniqueViolation reports which column a UNIQUE constraint failure was about
// ("username", "email"), or "" when err is something else.
func uniqueViolation(err error) string {
	var se *sqlite.Error
	if !errors.As(err, &se) || se.Code() != sqlite3.SQLITE_CONSTRAINT_UNIQUE {
		return ""
	}
	if m := uniqueRE.FindStringSubmatch(se.Error()); m != nil {
		return m[1]
	}
	return "unknown"
}
