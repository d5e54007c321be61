// Package pgtest gives tests a fresh PostgreSQL database of their own on the
// cluster LATCH_TEST_POSTGRES names (a superuser URL on 127.0.0.1; .ci/postgres
// starts a throwaway one), and drops it when the test ends.
//
// Without LATCH_TEST_POSTGRES a test that needs PostgreSQL skips, unless
// LATCH_REQUIRE_POSTGRES=1 (CI) makes that a failure.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// Enabled reports whether the server tests run on PostgreSQL
// (LATCH_TEST_DB=postgres) rather than on SQLite.
func Enabled() bool { return os.Getenv("LATCH_TEST_DB") == "postgres" }

var admin = sync.OnceValues(func() (*sql.DB, error) {
	db, err := sql.Open("pgx", os.Getenv("LATCH_TEST_POSTGRES"))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	return db, nil
})

// Database creates an empty database and returns its URL; the database is
// dropped (its connections ended) when t ends.
func Database(t testing.TB) string {
	t.Helper()
	base := os.Getenv("LATCH_TEST_POSTGRES")
	if base == "" {
		if os.Getenv("LATCH_REQUIRE_POSTGRES") == "1" {
			t.Fatal("LATCH_TEST_POSTGRES is not set and LATCH_REQUIRE_POSTGRES=1: start a cluster with .ci/postgres")
		}
		t.Skip("no PostgreSQL (set LATCH_TEST_POSTGRES, e.g. eval \"$(bash .ci/postgres)\")")
	}
	db, err := admin()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "latch_test_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
