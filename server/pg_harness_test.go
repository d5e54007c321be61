package server

import (
	"sync"
	"testing"

	"github.com/latch-dev/latch/internal/pgtest"
)

// testDB is the database a test's server opens for the db its config names.
// On SQLite (the default) that is db itself. Under LATCH_TEST_DB=postgres
// every test runs on PostgreSQL instead: each distinct db value of a test (a
// file two servers share, or MemoryDB, which is fresh every time) becomes a
// fresh PostgreSQL database, so tests of two servers on one file run as two
// instances on one PostgreSQL database.
func testDB(t testing.TB, db string) string {
	t.Helper()
	if !pgtest.Enabled() || IsPostgres(db) {
		return db
	}
	if db == MemoryDB || db == "" {
		return pgtest.Database(t)
	}
	key := t.Name() + "\x00" + db
	pgDBsMu.Lock()
	defer pgDBsMu.Unlock()
	if u, ok := pgDBs[key]; ok {
		return u
	}
	u := pgtest.Database(t)
	pgDBs[key] = u
	t.Cleanup(func() {
		pgDBsMu.Lock()
		delete(pgDBs, key)
		pgDBsMu.Unlock()
	})
	return u
}

var (
	pgDBsMu sync.Mutex
	pgDBs   = map[string]string{}
)
