package cli

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReview17DatabaseSecretsRefused (issue 17 review): a database password
// must never reach argv, a log line or a file name.
//   - sslpassword (the passphrase of the client's TLS key) is a password too:
//     --db refused password= but took sslpassword=, and RedactDB logged it.
//   - LATCH_DATABASE_URL in libpq's keyword form ("host=… password=…", what
//     many operators paste) was taken for a SQLite path: latch served on a
//     new SQLite file named after the whole string, password included, in
//     the working directory, and logged it ("listening … db=…").
func TestReview17DatabaseSecretsRefused(t *testing.T) {
	for _, tc := range []struct {
		name, db, env, want string
	}{
		{"sslpassword in --db", "postgres://latch@127.0.0.1/latch?sslmode=verify-full&sslpassword=hunter2", "",
			"--db must not hold the database password"},
		{"keyword DSN in LATCH_DATABASE_URL", "", "host=127.0.0.1 user=latch password=hunter2 dbname=latch",
			"postgres://"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			t.Setenv(databaseURLEnv, tc.env)
			args := []string{"serve", "--check-db", "--secret-key-file", "k", "--issuer", "https://auth.example.com"}
			if tc.db != "" {
				args = append(args, "--db", tc.db)
			}
			cmd := NewRootCmd()
			cmd.SetArgs(args)
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			err := cmd.ExecuteContext(t.Context())
			var ue usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want a usage error containing %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the password: %v", err)
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if strings.Contains(e.Name(), "hunter2") {
					t.Errorf("a file named with the password was made: %q", e.Name())
				}
			}
		})
	}
}

// TestReview17SQLitePrefixKeyBesideDatabase: --db sqlite:PATH is the same
// database as --db PATH, so its default server key must be the same file,
// beside it. The key's directory was taken from "sqlite:PATH" as a relative
// path: the key landed in ./sqlite:/…/secret.key under the working
// directory, and a start from another directory made a new key that cannot
// open the database's signing keys.
func TestReview17SQLitePrefixKeyBesideDatabase(t *testing.T) {
	dbDir, cwd := t.TempDir(), t.TempDir()
	t.Chdir(cwd)
	t.Setenv(databaseURLEnv, "")
	cmd := NewRootCmd()
	cmd.SetArgs([]string{"serve", "--check-db", "--db", "sqlite:" + filepath.Join(dbDir, "latch.db")})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	if err := cmd.ExecuteContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dbDir, "secret.key")); err != nil {
		t.Errorf("no secret.key beside the database: %v", err)
	}
	if entries, _ := os.ReadDir(cwd); len(entries) != 0 {
		t.Errorf("files made in the working directory: %v", entries)
	}
}
