package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gofrs/flock"
)

// vaultFiles are the files a file vault keeps in its directory.
var vaultFiles = []string{vaultFile, vaultFile + ".lock", keyFile, keyFile + ".lock"}

func newTestFile(t *testing.T, dir, pass string) *fileSecrets {
	t.Helper()
	s, err := newFileSecrets(dir, staticPass(pass))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFileVaultOnDisk(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "home")
	s := newTestFile(t, dir, testPass)
	if err := s.Set(ctx, "k", []byte("the-refresh-token")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, vaultFile)
	assertPerm(t, dir, 0o700)
	assertPerm(t, path, 0o600)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte("age-encryption.org/v1\n-> X25519 ")) {
		t.Fatalf("vault file is not encrypted to an X25519 recipient (format 2): %.60q", raw)
	}
	assertPerm(t, filepath.Join(dir, keyFile), 0o600)
	key, _ := os.ReadFile(filepath.Join(dir, keyFile))
	if !bytes.HasPrefix(key, []byte("age-encryption.org/v1\n-> scrypt ")) || bytes.Contains(key, []byte("AGE-SECRET-KEY")) {
		t.Fatalf("key file is not the identity wrapped with the passphrase: %.60q", key)
	}
	for _, plain := range []string{"the-refresh-token", base64Of("the-refresh-token"), `"k"`} {
		if bytes.Contains(raw, []byte(plain)) {
			t.Fatalf("vault file contains %q in plaintext", plain)
		}
	}
	assertOnlyFiles(t, dir, vaultFiles...)

	// A second instance (another process, in effect) reads it back.
	got, err := newTestFile(t, dir, testPass).Get(ctx, "k")
	if err != nil || string(got) != "the-refresh-token" {
		t.Fatalf("Get = %q, %v", got, err)
	}
}

func TestFileVaultRefusesToOverwrite(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		pass    string
		corrupt func(good []byte) []byte
		want    error
	}{
		{"wrong passphrase", "wrong", nil, ErrWrongPassphrase},
		{"truncated", testPass, func(b []byte) []byte { return b[:len(b)-10] }, ErrCorrupt},
		{"truncated header", testPass, func(b []byte) []byte { return b[:30] }, ErrCorrupt},
		{"flipped byte", testPass, func(b []byte) []byte {
			b = bytes.Clone(b)
			b[len(b)-5] ^= 0x55
			return b
		}, ErrCorrupt},
		{"not age", testPass, func([]byte) []byte { return []byte(`{"k":"djE="}`) }, ErrCorrupt},
		{"empty", testPass, func([]byte) []byte { return nil }, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, vaultFile)
			if err := newTestFile(t, dir, testPass).Set(ctx, "k", []byte("v1")); err != nil {
				t.Fatal(err)
			}
			if tt.corrupt != nil {
				good, _ := os.ReadFile(path)
				if err := os.WriteFile(path, tt.corrupt(good), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			before, _ := os.ReadFile(path)

			s := newTestFile(t, dir, tt.pass)
			if _, err := s.Get(ctx, "k"); !errors.Is(err, tt.want) {
				t.Errorf("Get = %v, want %v", err, tt.want)
			}
			if err := s.Set(ctx, "k", []byte("v2")); !errors.Is(err, tt.want) {
				t.Errorf("Set = %v, want %v", err, tt.want)
			}
			if err := s.Delete(ctx, "k"); !errors.Is(err, tt.want) {
				t.Errorf("Delete = %v, want %v", err, tt.want)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(before, after) {
				t.Fatal("the vault file changed")
			}
			assertOnlyFiles(t, dir, vaultFiles...)
		})
	}
}

func TestFileVaultFullDisk(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := newTestFile(t, dir, testPass)
	if err := s.Set(ctx, "k", []byte("old")); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, vaultFile))

	for _, n := range []int{0, 50, 200} {
		t.Run(fmt.Sprint("after ", n, " bytes"), func(t *testing.T) {
			s.wrap = diskFullAfter(n)
			err := s.Set(ctx, "k", bytes.Repeat([]byte("new"), 100))
			if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "intact") {
				t.Fatalf("Set on a full disk = %v, want ENOSPC saying the old vault is intact", err)
			}
			after, _ := os.ReadFile(filepath.Join(dir, vaultFile))
			if !bytes.Equal(before, after) {
				t.Fatal("the vault file changed")
			}
			assertOnlyFiles(t, dir, vaultFiles...)
			s.wrap = nil
			if got, err := s.Get(ctx, "k"); err != nil || string(got) != "old" {
				t.Fatalf("Get = %q, %v; want old", got, err)
			}
		})
	}
}

func TestFileVaultPassphrase(t *testing.T) {
	ctx := context.Background()
	t.Run("asked once", func(t *testing.T) {
		calls := 0
		s, _ := newFileSecrets(t.TempDir(), func() ([]byte, error) { calls++; return []byte(testPass), nil })
		for i := range 3 {
			if err := s.Set(ctx, fmt.Sprint("k", i), []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
		if calls != 1 {
			t.Fatalf("passphrase asked %d times, want 1", calls)
		}
	})
	t.Run("empty", func(t *testing.T) {
		s := newTestFile(t, t.TempDir(), "")
		if err := s.Set(ctx, "k", []byte("v")); err == nil || !strings.Contains(err.Error(), "LATCH_VAULT_PASSPHRASE") {
			t.Fatalf("Set with empty passphrase = %v", err)
		}
	})
	t.Run("prompt fails", func(t *testing.T) {
		boom := errors.New("no terminal")
		s, _ := newFileSecrets(t.TempDir(), func() ([]byte, error) { return nil, boom })
		if err := s.Set(ctx, "k", []byte("v")); !errors.Is(err, boom) {
			t.Fatalf("Set = %v, want %v", err, boom)
		}
	})
}

func TestFileVaultLockTimeout(t *testing.T) {
	tests := []struct {
		name string
		hold func(t *testing.T, s *fileSecrets) (release func())
	}{
		{"held in this process", func(t *testing.T, s *fileSecrets) func() {
			unlock, err := s.lock(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			return unlock
		}},
		{"held by another process's handle", func(t *testing.T, s *fileSecrets) func() {
			// A separate flock handle, as another latch would have, without
			// the in-process guard.
			fl := flock.New(s.path + ".lock")
			if err := fl.Lock(); err != nil {
				t.Fatal(err)
			}
			return func() { fl.Close() }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := newTestFile(t, dir, testPass)
			if err := s.Set(context.Background(), "k", []byte("old")); err != nil {
				t.Fatal(err)
			}
			release := tt.hold(t, s)
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := newTestFile(t, dir, testPass).Set(ctx, "k", []byte("new"))
			if !errors.Is(err, ErrTimeout) {
				t.Fatalf("Set while locked = %v, want ErrTimeout", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("Set while locked took %v", d)
			}
			release()
			if err := s.Set(context.Background(), "k", []byte("new")); err != nil {
				t.Fatalf("Set after release = %v", err)
			}
		})
	}
}

// TestFileVaultConcurrentWriters checks that read-modify-write under the lock
// loses no update, from goroutines of one process and from several processes.
func TestFileVaultConcurrentWriters(t *testing.T) {
	const (
		goroutines = 4
		procs      = 3
		perWriter  = 5
	)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()

	var wg sync.WaitGroup
	errs := make(chan error, goroutines+procs)
	for g := range goroutines {
		wg.Go(func() {
			// Separate instances, as separate commands would have.
			s, _ := newFileSecrets(dir, staticPass(testPass))
			for i := range perWriter {
				if err := s.Set(ctx, fmt.Sprintf("g%d-%d", g, i), []byte("x")); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for p := range procs {
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"=writer", "GORACE=atexit_sleep_ms=0", "HELPER_DIR="+dir,
				fmt.Sprintf("HELPER_ID=p%d", p), fmt.Sprintf("HELPER_N=%d", perWriter))
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("process %d: %v: %s", p, err, out)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	got, err := newTestFile(t, dir, testPass).read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for g := range goroutines {
		for i := range perWriter {
			if k := fmt.Sprintf("g%d-%d", g, i); got[k] == nil {
				missing = append(missing, k)
			}
		}
	}
	for p := range procs {
		for i := range perWriter {
			if k := fmt.Sprintf("p%d-%d", p, i); string(got[k]) != fmt.Sprintf("p%d", p) {
				missing = append(missing, k)
			}
		}
	}
	if len(missing) > 0 || len(got) != (goroutines+procs)*perWriter {
		t.Fatalf("lost updates: missing %v; vault has %d keys", missing, len(got))
	}
	assertOnlyFiles(t, dir, vaultFiles...)
}
