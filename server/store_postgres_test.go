package server

import (
	"database/sql"
	"testing"

	"github.com/latch-dev/latch/internal/pgtest"
)

func TestRebind(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = $1 AND c = $2"},
		{"INSERT INTO t (a, b) VALUES (?, ?) RETURNING id", "INSERT INTO t (a, b) VALUES ($1, $2) RETURNING id"},
		// A ? inside a literal, a quoted name or a comment is not a placeholder.
		{"SELECT '?', ? FROM t", "SELECT '?', $1 FROM t"},
		{`SELECT "a?b" FROM t WHERE x = ?`, `SELECT "a?b" FROM t WHERE x = $1`},
		{"SELECT 'it''s ?' , ?", "SELECT 'it''s ?' , $1"},
		{"-- why? because\nSELECT ?", "-- why? because\nSELECT $1"},
		{"SELECT a - ? FROM t -- and?", "SELECT a - $1 FROM t -- and?"},
		{"SELECT lower(u) LIKE ? ESCAPE '\\' OR x = ?", "SELECT lower(u) LIKE $1 ESCAPE '\\' OR x = $2"},
		{"SELECT /* why? */ ? /**/, ?", "SELECT /* why? */ $1 /**/, $2"},
		{"SELECT a / ? FROM t", "SELECT a / $1 FROM t"},
		// Unterminated: copied as is rather than guessed at.
		{"SELECT ? /* open ?", "SELECT $1 /* open ?"},
		{"SELECT 'open ?", "SELECT 'open ?"},
	} {
		if got := rebind(tc.in); got != tc.want {
			t.Errorf("rebind(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactDB(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/var/lib/latch/latch.db", "/var/lib/latch/latch.db"},
		{"postgres://latch@db:5432/latch", "postgres://latch@db:5432/latch"},
		{"postgres://latch:hunter2@db:5432/latch", "postgres://latch:xxxxx@db:5432/latch"},
		{"postgresql://latch@db/latch?password=hunter2&sslmode=require", "postgresql://latch@db/latch?password=xxxxx&sslmode=require"},
	} {
		if got := RedactDB(tc.in); got != tc.want {
			t.Errorf("RedactDB(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// A write that cannot have the deployment's write lock in time (another
// instance holds it) answers 503 with Retry-After, not a 500, and takes no
// account of it.
func TestWriteLockTimeoutIs503(t *testing.T) {
	db := pgtest.Database(t)
	e := newEnv(t, func(c *Config) { c.DBPath = db + "&lock_timeout=300ms" })
	holder, err := sql.Open("pgx", db)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	conn, err := holder.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "SELECT pg_advisory_lock($1)", writeLockKey); err != nil {
		t.Fatal(err)
	}
	r := e.do("POST", "/auth/register", map[string]string{"username": "alice", "email": "alice@example.com", "password": goodPassword})
	if r.Status != 503 || r.problemType(t) != probUnavailable || r.Header.Get("Retry-After") == "" {
		t.Fatalf("register while another instance holds the lock: %d %s", r.Status, r.Body)
	}
	if _, err := conn.ExecContext(t.Context(), "SELECT pg_advisory_unlock($1)", writeLockKey); err != nil {
		t.Fatal(err)
	}
	e.register("alice", "alice@example.com") // nothing was half done
}
