package flows

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/latch-dev/latch/vault"
)

// kernelCache is the real session cache of the test's latch home, or skips
// the test where the kernel refuses keyctl (LATCH_REQUIRE_KEYCTL=1 makes that
// a failure, as in CI).
func kernelCache(t *testing.T, home string) vault.Cache {
	t.Helper()
	c, err := vault.NewKernelCache(vault.CacheScope(home))
	if err != nil {
		if os.Getenv("LATCH_REQUIRE_KEYCTL") == "1" {
			t.Fatalf("kernel keyring required: %v", err)
		}
		t.Skipf("no kernel keyring: %v", err)
	}
	t.Cleanup(func() { c.Clear(context.Background(), "") })
	return c
}

// cachedEnv gives the env's token manager a real session cache, and a vault
// that keeps its unlocked identity there, as the CLI builds them.
func cachedEnv(t *testing.T) (*env, vault.Cache) {
	e := newEnv(t)
	c := kernelCache(t, e.dir)
	s, _, err := vault.Open(e.ctx, vault.ModeFile, e.dir, vault.Options{Passphrase: fixedPass, Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	e.secrets = s
	e.m = &TokenManager{Secrets: s, Dir: e.dir, Now: e.clock.Now, Cache: c}
	return e, c
}

// countingGets counts the vault reads that reach it.
type countingGets struct {
	vault.Secrets
	n int
}

func (c *countingGets) Get(ctx context.Context, key string) ([]byte, error) {
	c.n++
	return c.Secrets.Get(ctx, key)
}

// TestAccessTokenFromCache: a valid token comes from the session cache
// without reading the vault; a rotation replaces it there, forgetting the
// profile removes it, and a token the server refused never comes back.
func TestAccessTokenFromCache(t *testing.T) {
	e, c := cachedEnv(t)
	login := e.login("ada")
	reads := &countingGets{Secrets: e.secrets}
	m := &TokenManager{Secrets: reads, Dir: e.dir, Now: e.clock.Now, Cache: c}

	got, err := m.AccessToken(e.ctx, "ada", noRefresher{t})
	if err != nil || got != login.AccessToken || reads.n != 0 {
		t.Fatalf("AccessToken = %v, %v after %d vault reads; want the login's token and none", got == login.AccessToken, err, reads.n)
	}

	e.clock.Add(testAccessTTL)
	rotated, err := m.AccessToken(e.ctx, "ada", e.client)
	if err != nil || rotated == login.AccessToken {
		t.Fatalf("after expiry: %v, same token %v", err, rotated == login.AccessToken)
	}
	reads.n = 0
	if again, err := m.AccessToken(e.ctx, "ada", noRefresher{t}); err != nil || again != rotated || reads.n != 0 {
		t.Fatalf("after rotation: cached %v, %v, %d vault reads", again == rotated, err, reads.n)
	}

	fresh, err := m.Rotate(e.ctx, "ada", e.client, rotated)
	if err != nil || fresh == rotated {
		t.Fatalf("Rotate = same %v, %v", fresh == rotated, err)
	}
	if again, _ := m.AccessToken(e.ctx, "ada", noRefresher{t}); again != fresh {
		t.Fatal("the cache handed out a token other than the rotated one")
	}

	if err := m.Forget(e.ctx, "ada"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(e.ctx, vault.CacheAccessToken("ada")); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("the access token stayed in the cache after Forget: %v", err)
	}
	if _, err := m.AccessToken(e.ctx, "ada", noRefresher{t}); !errors.Is(err, ErrLoginRequired) {
		t.Fatalf("AccessToken after Forget = %v", err)
	}
}

// TestAccessTokenCacheHoldsNoRefreshToken: what the cache keeps for a
// profile is the access token and its times, never the refresh token.
func TestAccessTokenCacheHoldsNoRefreshToken(t *testing.T) {
	e, c := cachedEnv(t)
	login := e.login("ada")
	raw, err := c.Get(e.ctx, vault.CacheAccessToken("ada"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), login.AccessToken) || strings.Contains(string(raw), login.RefreshToken) {
		t.Fatal("the cached entry is not the access token alone")
	}
}

// TestAccessTokenLockedVaultHandsOutNothing: after the vault is locked (the
// cache cleared), the cached token is gone and a latch without the
// passphrase gets ErrLocked.
func TestAccessTokenLockedVaultHandsOutNothing(t *testing.T) {
	e, c := cachedEnv(t)
	e.login("ada")
	env := &Env{Home: e.dir, Secrets: e.secrets, Cache: c, Vault: vault.Choice{Backend: vault.ModeFile}}
	if _, err := env.LockVault(e.ctx); err != nil {
		t.Fatal(err)
	}
	locked, _, err := vault.Open(e.ctx, vault.ModeFile, e.dir, vault.Options{Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	m := &TokenManager{Secrets: locked, Dir: e.dir, Now: e.clock.Now, Cache: c}
	start := time.Now()
	if _, err := m.AccessToken(e.ctx, "ada", noRefresher{t}); !errors.Is(err, vault.ErrLocked) {
		t.Fatalf("AccessToken on a locked vault = %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a locked vault took %v to say so", d)
	}
}

// TestAccessTokenUnsavedRotation: a rotation the vault cannot save (a full
// disk) is kept in the session cache; the token is handed out with a
// warning, and a later latch — after the server's grace window — saves the
// pair instead of presenting the spent refresh token (which the server
// would take for theft and end the session).
func TestAccessTokenUnsavedRotation(t *testing.T) {
	e, c := cachedEnv(t)
	login := e.login("ada")
	e.clock.Add(testAccessTTL)

	var warned []string
	full := &TokenManager{Secrets: failingSet{e.secrets}, Dir: e.dir, Now: e.clock.Now, Cache: c,
		Warn: func(msg string) { warned = append(warned, msg) }}
	got, err := full.AccessToken(e.ctx, "ada", e.client)
	if err != nil || got == login.AccessToken {
		t.Fatalf("AccessToken on a full disk = %v (same token %v)", err, got == login.AccessToken)
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "could not be saved") {
		t.Fatalf("warnings = %q", warned)
	}
	noSecrets(t, errors.New(warned[0]), login.RefreshToken, got)
	if e.stored("ada").Refresh != login.RefreshToken {
		t.Fatal("the vault changed on a full disk")
	}

	e.clock.Add(time.Minute) // well past the 10 s grace window
	c.Delete(e.ctx, vault.CacheAccessToken("ada"))
	later := &TokenManager{Secrets: e.secrets, Dir: e.dir, Now: e.clock.Now, Cache: c}
	again, err := later.AccessToken(e.ctx, "ada", noRefresher{t})
	if err != nil || again != got {
		t.Fatalf("a later latch = same %v, %v; want the unsaved pair's token", again == got, err)
	}
	if e.stored("ada").Refresh == login.RefreshToken {
		t.Fatal("the unsaved pair was not saved to the vault")
	}
	if _, err := c.Get(e.ctx, vault.CachePending("ada")); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("the pair stayed in the cache after it was saved: %v", err)
	}
	e.clock.Add(testAccessTTL)
	next, err := later.AccessToken(e.ctx, "ada", e.client)
	if err != nil {
		t.Fatalf("the next rotation failed (was the spent token presented?): %v", err)
	}
	// A presented spent token would have ended the session (reuse
	// detection revokes the family), and this refresh would have failed.
	e.checkUsable(next, "ada")
}

// TestAccessTokenStalePendingDropped: an unsaved pair that no longer follows
// what the vault holds (the profile logged in again) is dropped.
func TestAccessTokenStalePendingDropped(t *testing.T) {
	e, c := cachedEnv(t)
	e.login("ada")
	e.clock.Add(testAccessTTL)
	full := &TokenManager{Secrets: failingSet{e.secrets}, Dir: e.dir, Now: e.clock.Now, Cache: c}
	if _, err := full.AccessToken(e.ctx, "ada", e.client); err != nil {
		t.Fatal(err)
	}
	relogin, err := e.client.Login(e.ctx, "ada", "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.m.Save(e.ctx, "ada", relogin); err != nil {
		t.Fatal(err)
	}
	if got, err := e.m.AccessToken(e.ctx, "ada", noRefresher{t}); err != nil || got != relogin.AccessToken {
		t.Fatalf("after a new login = %v, %v", got == relogin.AccessToken, err)
	}
	if _, err := c.Get(e.ctx, vault.CachePending("ada")); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("a stale unsaved pair stayed: %v", err)
	}
}

// TestAccessTokenUnsavedTwice: the disk stays full over two rotations; the
// kept pair still names the refresh token the vault holds, so once the disk
// is free the newest pair is saved and no spent token is ever presented.
func TestAccessTokenUnsavedTwice(t *testing.T) {
	e, c := cachedEnv(t)
	login := e.login("ada")
	full := &TokenManager{Secrets: failingSet{e.secrets}, Dir: e.dir, Now: e.clock.Now, Cache: c}
	var last string
	for range 2 {
		e.clock.Add(testAccessTTL)
		tok, err := full.AccessToken(e.ctx, "ada", e.client)
		if err != nil {
			t.Fatal(err)
		}
		last = tok
	}
	if e.stored("ada").Refresh != login.RefreshToken {
		t.Fatal("the vault changed on a full disk")
	}
	e.clock.Add(time.Minute)
	c.Delete(e.ctx, vault.CacheAccessToken("ada"))
	if got, err := e.m.AccessToken(e.ctx, "ada", noRefresher{t}); err != nil || got != last {
		t.Fatalf("after the disk is free = newest %v, %v", got == last, err)
	}
	e.clock.Add(testAccessTTL)
	next, err := e.m.AccessToken(e.ctx, "ada", e.client)
	if err != nil {
		t.Fatalf("the next rotation failed (was a spent token presented?): %v", err)
	}
	e.checkUsable(next, "ada")
}

// TestLockVaultKeepsUnsavedRotation: locking the vault removes access tokens
// but not a pair the vault could not save — that would end the session —
// and says which profile holds one.
func TestLockVaultKeepsUnsavedRotation(t *testing.T) {
	e, c := cachedEnv(t)
	e.login("ada")
	if err := vault.UpdateConfig(e.ctx, e.dir, func(cfg *vault.Config) error {
		return cfg.Put(vault.Profile{Name: "ada", Kind: vault.KindAccount, Server: e.http.URL, Username: "ada"})
	}); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(testAccessTTL)
	full := &TokenManager{Secrets: failingSet{e.secrets}, Dir: e.dir, Now: e.clock.Now, Cache: c}
	got, err := full.AccessToken(e.ctx, "ada", e.client)
	if err != nil {
		t.Fatal(err)
	}
	env := &Env{Home: e.dir, Secrets: e.secrets, Cache: c, Vault: vault.Choice{Backend: vault.ModeFile}}
	unsaved, err := env.LockVault(e.ctx)
	if err != nil || len(unsaved) != 1 || unsaved[0] != "ada" {
		t.Fatalf("LockVault = %v, %v; want ada's unsaved rotation reported", unsaved, err)
	}
	if _, err := c.Get(e.ctx, vault.CacheAccessToken("ada")); !errors.Is(err, vault.ErrNotFound) {
		t.Fatal("the access token stayed in the cache after lock")
	}
	e.clock.Add(time.Minute)
	s, _, err := vault.Open(e.ctx, vault.ModeFile, e.dir, vault.Options{Passphrase: fixedPass, Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	m := &TokenManager{Secrets: s, Dir: e.dir, Now: e.clock.Now, Cache: c}
	if tok, err := m.AccessToken(e.ctx, "ada", noRefresher{t}); err != nil || tok != got {
		t.Fatalf("after unlocking again = the unsaved pair's token %v, %v", tok == got, err)
	}
}
