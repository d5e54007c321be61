package server

import "testing"

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
		// Unterminated: copied as is rather than guessed at.
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
