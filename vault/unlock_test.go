package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"
)

// memCache is a Cache in this process's memory: the logic of unlocking once
// per session does not depend on where the cache lives (the kernel keyring
// and agent are tested on their own, and end to end in cli).
type memCache struct {
	mu sync.Mutex
	m  map[string][]byte
}

func newMemCache() *memCache { return &memCache{m: map[string][]byte{}} }

func (c *memCache) Get(_ context.Context, name string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[name]
	if !ok {
		return nil, ErrNotFound
	}
	return bytes.Clone(v), nil
}

func (c *memCache) Put(_ context.Context, name string, v []byte, _ time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[name] = bytes.Clone(v)
	return nil
}

func (c *memCache) Touch(_ context.Context, name string, _ time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[name]; !ok {
		return ErrNotFound
	}
	return nil
}

func (c *memCache) Delete(_ context.Context, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, name)
	return nil
}

func (c *memCache) Clear(_ context.Context, prefix string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.m {
		if strings.HasPrefix(k, prefix) {
			delete(c.m, k)
		}
	}
	return nil
}

func (c *memCache) Where() string { return "test memory" }

// countingPass is a passphrase source that counts how often it is asked.
func countingPass(p string, n *atomic.Int32) func() ([]byte, error) {
	return func() ([]byte, error) { n.Add(1); return []byte(p), nil }
}

func lockedPass() ([]byte, error) { return nil, ErrLocked }

func openTestFile(t *testing.T, dir string, pass func() ([]byte, error), c Cache) *fileSecrets {
	t.Helper()
	s, err := openFile(dir, Options{Passphrase: pass, Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestFileVaultUnlockOncePerSession: the first latch unwraps the key with the
// passphrase and leaves the identity in the session cache; later latches
// read and write without asking, and after Lock nothing opens it.
func TestFileVaultUnlockOncePerSession(t *testing.T) {
	ctx := context.Background()
	dir, cache := t.TempDir(), newMemCache()
	var asked atomic.Int32
	if err := openTestFile(t, dir, countingPass(testPass, &asked), cache).Set(ctx, "k", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	later := openTestFile(t, dir, lockedPass, cache)
	if err := later.Set(ctx, "k", []byte("v2")); err != nil {
		t.Fatalf("a write with the identity cached = %v", err)
	}
	if got, err := openTestFile(t, dir, lockedPass, cache).Get(ctx, "k"); err != nil || string(got) != "v2" {
		t.Fatalf("a read with the identity cached = %q, %v", got, err)
	}
	if n := asked.Load(); n != 1 {
		t.Fatalf("passphrase asked %d times, want 1", n)
	}
	if st := later.LockState(ctx); st.State != "unlocked" || st.Format != Format2 || st.From != sourceCache {
		t.Fatalf("state = %+v", st)
	}
	if err := later.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	locked := openTestFile(t, dir, lockedPass, cache)
	if _, err := locked.Get(ctx, "k"); !errors.Is(err, ErrLocked) {
		t.Fatalf("Get after Lock = %v, want ErrLocked", err)
	}
	if st := locked.LockState(ctx); st.State != "locked" {
		t.Fatalf("state after Lock = %+v", st)
	}
	if err := locked.Unlock(ctx, []byte("wrong"), time.Hour); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("Unlock with a wrong passphrase = %v", err)
	}
	if err := locked.Unlock(ctx, []byte(testPass), time.Hour); err != nil {
		t.Fatal(err)
	}
	st := openTestFile(t, dir, lockedPass, cache).LockState(ctx)
	if st.State != "unlocked" || st.Idle != time.Hour || time.Until(st.Until) > time.Hour || time.Until(st.Until) < 59*time.Minute {
		t.Fatalf("state after Unlock --for 1h = %+v", st)
	}
}

// TestFileVaultManyUnlockOnce: latches started together on a locked vault
// derive the key once between them, not once each.
func TestFileVaultManyUnlockOnce(t *testing.T) {
	ctx := context.Background()
	dir, cache := t.TempDir(), newMemCache()
	var asked atomic.Int32
	if err := openTestFile(t, dir, countingPass(testPass, &asked), newMemCache()).Set(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	asked.Store(0)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			if _, err := openTestFile(t, dir, countingPass(testPass, &asked), cache).Get(ctx, "k"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := asked.Load(); n != 1 {
		t.Fatalf("20 latches on a locked vault asked for the passphrase %d times, want 1", n)
	}
}

// TestFileVaultRearm: real use re-arms the idle timer once the last use is
// older than rearmAfter; looking at the state never does.
func TestFileVaultRearm(t *testing.T) {
	ctx := context.Background()
	dir, cache := t.TempDir(), newMemCache()
	s := openTestFile(t, dir, staticPass(testPass), cache)
	if err := s.Set(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	raw, _ := cache.Get(ctx, CacheIdentity)
	e, ok := parseCachedIdentity(raw)
	if !ok {
		t.Fatalf("cache entry unreadable: %d bytes", len(raw))
	}
	old := time.Now().Add(-2 * rearmAfter).Truncate(time.Second)
	e.used = old
	cache.Put(ctx, CacheIdentity, e.encode(), e.idle)

	cache.Delete(ctx, cacheUsed)

	openTestFile(t, dir, lockedPass, cache).LockState(ctx)
	if _, err := cache.Get(ctx, cacheUsed); err == nil {
		t.Fatal("LockState re-armed the idle timer")
	}
	if _, err := openTestFile(t, dir, lockedPass, cache).Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if st := openTestFile(t, dir, lockedPass, cache).LockState(ctx); !st.Until.After(old.Add(e.idle)) {
		t.Fatalf("a read did not re-arm the idle timer: until %v", st.Until)
	}

	// An entry whose idle time ran out by its own record (its timeout was
	// never set: a latch killed in between) does not unlock anything.
	e.used = time.Now().Add(-e.idle - time.Hour)
	cache.Put(ctx, CacheIdentity, e.encode(), e.idle)
	cache.Delete(ctx, cacheUsed)
	if _, err := openTestFile(t, dir, lockedPass, cache).Get(ctx, "k"); !errors.Is(err, ErrLocked) {
		t.Fatalf("an expired entry unlocked the vault: %v", err)
	}
}

// TestFileVaultLockReachesRunningLatch: a latch that took the identity from
// the cache stops using it once latch vault lock (in another process) has
// removed it — the interface runs for hours.
func TestFileVaultLockReachesRunningLatch(t *testing.T) {
	ctx := context.Background()
	dir, cache := t.TempDir(), newMemCache()
	if err := openTestFile(t, dir, staticPass(testPass), cache).Set(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	running := openTestFile(t, dir, lockedPass, cache)
	if _, err := running.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if err := openTestFile(t, dir, lockedPass, cache).Lock(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := running.Get(ctx, "k"); !errors.Is(err, ErrLocked) {
		t.Fatalf("Get in a running latch after lock = %v, want ErrLocked", err)
	}
}

// TestFileVaultNewIgnoresStaleIdentity: a new vault (the old one moved aside)
// gets its own key file even when the cache still holds the old identity,
// so it opens with the passphrase once the cache forgets.
func TestFileVaultNewIgnoresStaleIdentity(t *testing.T) {
	ctx := context.Background()
	dir, cache := t.TempDir(), newMemCache()
	if err := openTestFile(t, dir, staticPass(testPass), cache).Set(ctx, "k", []byte("old")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{vaultFile, keyFile} {
		os.Rename(filepath.Join(dir, name), filepath.Join(dir, name+".aside"))
	}
	if err := openTestFile(t, dir, staticPass("new pass"), cache).Set(ctx, "k", []byte("new")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, keyFile)); err != nil {
		t.Fatalf("the new vault has no key file: %v", err)
	}
	if got, err := openTestFile(t, dir, staticPass("new pass"), newMemCache()).Get(ctx, "k"); err != nil || string(got) != "new" {
		t.Fatalf("the new vault with its passphrase and no cache = %q, %v", got, err)
	}
}

// TestFileVaultStaleCachedIdentity: an identity in the cache that does not
// open this vault (the vault was made anew since) is dropped and the vault
// unlocked with the passphrase.
func TestFileVaultStaleCachedIdentity(t *testing.T) {
	ctx := context.Background()
	dir, cache := t.TempDir(), newMemCache()
	if err := openTestFile(t, dir, staticPass(testPass), newMemCache()).Set(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	other, _ := age.GenerateX25519Identity()
	cache.Put(ctx, CacheIdentity, cachedIdentity{id: other, idle: time.Hour, used: time.Now()}.encode(), time.Hour)
	if got, err := openTestFile(t, dir, staticPass(testPass), cache).Get(ctx, "k"); err != nil || string(got) != "v" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	raw, _ := cache.Get(ctx, CacheIdentity)
	if e, ok := parseCachedIdentity(raw); !ok || e.id.String() == other.String() {
		t.Fatal("the stale identity stayed in the cache")
	}
}

// TestFileVaultMigratesFormat1 opens a committed format-1 vault (written by
// the format-1 code: age scrypt over the JSON map, work factor 10), finds
// every secret, and leaves a format-2 vault that opens with the same
// passphrase; a wrong passphrase changes nothing.
func TestFileVaultMigratesFormat1(t *testing.T) {
	ctx := context.Background()
	fixture, err := os.ReadFile(filepath.Join("testdata", "v1", vaultFile))
	if err != nil {
		t.Fatal(err)
	}
	if vaultFormat(fixture) != Format1 {
		t.Fatal("the fixture is not a format-1 vault")
	}
	want := map[string]string{
		"profile/default/tokens":       `{"at":"v1-access","at_exp":4102444800,"rt":"v1-refresh","iat":1700000000,"login":1700000000,"n":3}`,
		"profile/default/backup-codes": `{"saved":1700000000,"codes":[{"c":"aaaa-bbbb"},{"c":"cccc-dddd"}]}`,
	}
	check := func(t *testing.T, s *fileSecrets) {
		t.Helper()
		for k, v := range want {
			if got, err := s.Get(ctx, k); err != nil || string(got) != v {
				t.Fatalf("Get(%s) = %q, %v", k, got, err)
			}
		}
	}

	t.Run("wrong passphrase", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, vaultFile), fixture, 0o600)
		if _, err := openTestFile(t, dir, staticPass("wrong"), newMemCache()).Get(ctx, "profile/default/tokens"); !errors.Is(err, ErrWrongPassphrase) {
			t.Fatalf("Get = %v, want ErrWrongPassphrase", err)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, vaultFile)); !bytes.Equal(got, fixture) {
			t.Fatal("the format-1 vault changed")
		}
	})
	t.Run("migrated", func(t *testing.T) {
		dir, cache := t.TempDir(), newMemCache()
		os.WriteFile(filepath.Join(dir, vaultFile), fixture, 0o600)
		s := openTestFile(t, dir, staticPass(testPass), cache)
		check(t, s)
		data, _ := os.ReadFile(filepath.Join(dir, vaultFile))
		if vaultFormat(data) != Format2 {
			t.Fatal("the vault was not rewritten as format 2")
		}
		check(t, openTestFile(t, dir, lockedPass, cache))
		check(t, openTestFile(t, dir, staticPass(testPass), newMemCache()))
		assertOnlyFiles(t, dir, vaultFiles...)
	})
	t.Run("cut short after the key file", func(t *testing.T) {
		// A migration killed after saving the key and before rewriting the
		// vault: the next run reuses that key.
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, vaultFile), fixture, 0o600)
		s := openTestFile(t, dir, staticPass(testPass), newMemCache())
		id, err := s.newKey(ctx, []byte(testPass))
		if err != nil {
			t.Fatal(err)
		}
		key, _ := os.ReadFile(filepath.Join(dir, keyFile))
		check(t, openTestFile(t, dir, staticPass(testPass), newMemCache()))
		if got, _ := os.ReadFile(filepath.Join(dir, keyFile)); !bytes.Equal(got, key) {
			t.Fatal("the key file was replaced")
		}
		data, _ := os.ReadFile(filepath.Join(dir, vaultFile))
		if _, err := decryptMap(data, id); err != nil {
			t.Fatalf("the migrated vault does not open with the saved key: %v", err)
		}
	})
	t.Run("full disk", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, vaultFile), fixture, 0o600)
		s := openTestFile(t, dir, staticPass(testPass), newMemCache())
		s.wrap = diskFullAfter(10)
		if _, err := s.Get(ctx, "profile/default/tokens"); err == nil {
			t.Fatal("a migration on a full disk succeeded")
		}
		if got, _ := os.ReadFile(filepath.Join(dir, vaultFile)); !bytes.Equal(got, fixture) {
			t.Fatal("the format-1 vault changed")
		}
		check(t, openTestFile(t, dir, staticPass(testPass), newMemCache()))
	})
}

// TestFileVaultIdentityFromEnv: a vault made with LATCH_VAULT_IDENTITY (a CI
// secret) needs no passphrase and has no key file; the identity's value
// never appears in an error.
func TestFileVaultIdentityFromEnv(t *testing.T) {
	ctx := context.Background()
	id, _ := age.GenerateX25519Identity()
	dir := t.TempDir()
	t.Setenv(IdentityEnv, id.String())
	if err := openTestFile(t, dir, lockedPass, nil).Set(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, keyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a key file was written: %v", err)
	}
	s := openTestFile(t, dir, lockedPass, nil)
	if st := s.LockState(ctx); st.State != "unlocked" || st.From != IdentityEnv {
		t.Fatalf("state = %+v", st)
	}

	t.Setenv(IdentityEnv, "")
	file := filepath.Join(t.TempDir(), "id.txt")
	os.WriteFile(file, []byte("# created by age-keygen\n"+id.String()+"\n"), 0o600)
	t.Setenv(IdentityFileEnv, file)
	if got, err := openTestFile(t, dir, lockedPass, nil).Get(ctx, "k"); err != nil || string(got) != "v" {
		t.Fatalf("Get with %s = %q, %v", IdentityFileEnv, got, err)
	}

	// No passphrase can open it: not "locked" (latch vault unlock cannot
	// help), but a message that names the identity it needs.
	t.Setenv(IdentityFileEnv, "")
	if _, err := openTestFile(t, dir, staticPass(testPass), nil).Get(ctx, "k"); err == nil || errors.Is(err, ErrLocked) ||
		!strings.Contains(err.Error(), IdentityEnv) || !strings.Contains(err.Error(), "key file") {
		t.Fatalf("Get with no identity = %v, want the missing key file and %s named", err, IdentityEnv)
	}

	bad := "AGE-SECRET-KEY-1NOTAKEYBUTSECRETLOOKING"
	t.Setenv(IdentityEnv, bad)
	_, err := openTestFile(t, dir, lockedPass, nil).Get(ctx, "k")
	if err == nil || strings.Contains(err.Error(), "SECRETLOOKING") || !strings.Contains(err.Error(), IdentityEnv) {
		t.Fatalf("Get with a malformed identity = %v", err)
	}
}

func TestFileVaultChangePassphrase(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTestFile(t, dir, staticPass(testPass), nil)
	if err := s.Set(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, vaultFile))
	if err := s.ChangePassphrase(ctx, []byte("wrong"), []byte("new one")); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("ChangePassphrase with a wrong old one = %v", err)
	}
	if err := s.ChangePassphrase(ctx, []byte(testPass), []byte("new one")); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, vaultFile)); !bytes.Equal(before, after) {
		t.Fatal("changing the passphrase rewrote the secrets")
	}
	if _, err := openTestFile(t, dir, staticPass(testPass), nil).Get(ctx, "k"); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("the old passphrase still opens it: %v", err)
	}
	if got, err := openTestFile(t, dir, staticPass("new one"), nil).Get(ctx, "k"); err != nil || string(got) != "v" {
		t.Fatalf("Get with the new passphrase = %q, %v", got, err)
	}
}

// TestFileVaultRemovesKilledWritersTemps: a latch killed mid-write leaves a
// temp copy of the vault; the next write removes it.
func TestFileVaultRemovesKilledWritersTemps(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTestFile(t, dir, staticPass(testPass), nil)
	if err := s.Set(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf(".%s.%d.tmp", vaultFile, i)), []byte("a full copy"), 0o600)
	}
	if err := s.Set(ctx, "k", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	assertOnlyFiles(t, dir, vaultFiles...)
}

// TestFileVaultReadsOnce: an unchanged vault is decrypted once per process;
// a change by another process is seen.
func TestFileVaultReadsOnce(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTestFile(t, dir, staticPass(testPass), nil)
	if err := s.Set(ctx, "k", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	r := openTestFile(t, dir, staticPass(testPass), nil)
	if _, err := r.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	memo := r.memo
	if _, err := r.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%p", r.memo) != fmt.Sprintf("%p", memo) {
		t.Fatal("an unchanged vault was decrypted again")
	}
	if err := s.Set(ctx, "k", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Get(ctx, "k"); err != nil || string(got) != "v2" {
		t.Fatalf("Get after another writer = %q, %v", got, err)
	}
}
