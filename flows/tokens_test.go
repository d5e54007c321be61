package flows

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofrs/flock"
	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/server"
	"github.com/latch-dev/latch/vault"
)

func TestAccessValidSkew(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		lifetime time.Duration
		at       time.Duration // after issue
		want     bool
	}{
		{"long token, 61 s left", time.Hour, time.Hour - 61*time.Second, true},
		{"long token, 60 s left", time.Hour, time.Hour - 60*time.Second, false},
		{"5 min token, 31 s left", 5 * time.Minute, 5*time.Minute - 31*time.Second, true},
		{"5 min token, 30 s left", 5 * time.Minute, 5*time.Minute - 30*time.Second, false},
		{"expired", time.Minute, 2 * time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := storedTokens{Access: "a", Refresh: "r", Issued: t0.Unix(), AccessExp: t0.Add(tc.lifetime).Unix()}
			if got := st.accessValid(t0.Add(tc.at)); got != tc.want {
				t.Fatalf("accessValid = %v, want %v", got, tc.want)
			}
		})
	}
}

// Rule 1: a valid token comes back without a lock and without the server.
func TestAccessTokenValid(t *testing.T) {
	e := newEnv(t)
	login := e.login("ada")
	e.clock.Add(testAccessTTL - 31*time.Second) // 31 s left, skew 30 s

	m := *e.m
	m.Dir = filepath.Join(t.TempDir(), "unused")
	got, err := m.AccessToken(e.ctx, "ada", noRefresher{t})
	if err != nil {
		t.Fatal(err)
	}
	if got != login.AccessToken {
		t.Fatal("valid access token not returned as is")
	}
	if _, err := os.Stat(m.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a valid token took the lock (%s exists: %v)", m.Dir, err)
	}
	if n := e.refreshes("rotated"); n != 0 {
		t.Fatalf("rotated = %d, want 0", n)
	}
}

// Rule 2 and 3: an expiring token is rotated, saved, then returned.
func TestAccessTokenRefreshes(t *testing.T) {
	e := newEnv(t)
	login := e.login("ada")
	e.clock.Add(testAccessTTL - 30*time.Second) // within the skew

	got, err := e.m.AccessToken(e.ctx, "ada", e.client)
	if err != nil {
		t.Fatal(err)
	}
	st := e.stored("ada")
	if got == login.AccessToken || st.Access != got || st.Refresh == login.RefreshToken {
		t.Fatal("the rotated pair was not returned and saved")
	}
	if st.Rotations != 1 || e.refreshes("rotated") != 1 {
		t.Fatalf("rotations = %d, server rotated = %d, want 1 and 1", st.Rotations, e.refreshes("rotated"))
	}
	e.checkUsable(got, "ada")

	again, err := e.m.AccessToken(e.ctx, "ada", noRefresher{t})
	if err != nil || again != got {
		t.Fatalf("second call: err %v, same token %v", err, again == got)
	}
}

// Rule 2: after waiting for the lock, a token another latch rotated
// meanwhile is used without calling the server.
func TestAccessTokenRereadsUnderLock(t *testing.T) {
	e := newEnv(t)
	e.login("ada")
	e.clock.Add(testAccessTTL)

	var other string
	hooked := &hookSecrets{Secrets: e.openVault(), n: 1, afterGet: func() {
		// Another process, between our first read and our lock.
		b := &TokenManager{Secrets: e.openVault(), Dir: e.dir, Now: e.clock.Now}
		var err error
		if other, err = b.AccessToken(e.ctx, "ada", e.client); err != nil {
			t.Error(err)
		}
	}}
	r := &countingRefresher{r: e.client}
	a := &TokenManager{Secrets: hooked, Dir: e.dir, Now: e.clock.Now}
	got, err := a.AccessToken(e.ctx, "ada", r)
	if err != nil {
		t.Fatal(err)
	}
	if hooked.gets != 2 {
		t.Fatalf("vault read %d times, want 2 (before and after the lock)", hooked.gets)
	}
	if got != other || r.calls.Load() != 0 || e.refreshes("rotated") != 1 {
		t.Fatalf("same token as the other process %v, our refreshes %d, server rotations %d; want true, 0, 1",
			got == other, r.calls.Load(), e.refreshes("rotated"))
	}
}

// Rule 3: a rotation that cannot be saved is an error, and the token is not
// returned; an immediate retry recovers through the server's grace window.
func TestAccessTokenPersistFailure(t *testing.T) {
	e := newEnv(t)
	login := e.login("ada")
	e.clock.Add(testAccessTTL)
	before := e.raw("ada")

	m := *e.m
	m.Secrets = failingSet{e.secrets}
	got, err := m.AccessToken(e.ctx, "ada", e.client)
	if err == nil || got != "" {
		t.Fatalf("got token %v, err %v; want no token and an error", got != "", err)
	}
	if !errors.Is(err, errDiskFull) || !strings.Contains(err.Error(), "succeeded at the server") ||
		!strings.Contains(err.Error(), "could not be saved") {
		t.Fatalf("error does not say the refresh succeeded but was not saved: %v", err)
	}
	noSecrets(t, err, login.AccessToken, login.RefreshToken)
	if !bytes.Equal(e.raw("ada"), before) {
		t.Fatal("saved tokens changed")
	}

	got, err = e.m.AccessToken(e.ctx, "ada", e.client)
	if err != nil {
		t.Fatal(err)
	}
	if e.stored("ada").Access != got || e.refreshes("rotated") != 1 || e.refreshes("grace") != 1 {
		t.Fatalf("retry: saved %v, rotated %d, grace %d; want true, 1, 1",
			e.stored("ada").Access == got, e.refreshes("rotated"), e.refreshes("grace"))
	}
	e.checkUsable(got, "ada")
}

// Rule 4, against the real server: a refused refresh token means a new
// login, and the saved tokens stay.
func TestAccessTokenRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(e *env, st storedTokens)
		want    error
		message string
	}{
		{"reused", func(e *env, st storedTokens) {
			// Someone else spends the saved refresh token, and the grace
			// window passes.
			if _, err := e.client.Refresh(e.ctx, st.Refresh); err != nil {
				e.t.Fatal(err)
			}
			e.clock.Add(testAccessTTL)
		}, client.ErrReuseDetected, "revoked"},
		{"expired", func(e *env, _ storedTokens) {
			e.clock.Add(testRefreshTTL)
		}, client.ErrInvalidRefreshToken, "expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			login := e.login("ada")
			tc.setup(e, e.stored("ada"))
			before := e.raw("ada")

			_, err := e.m.AccessToken(e.ctx, "ada", e.client)
			if !errors.Is(err, ErrLoginRequired) || !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want ErrLoginRequired and %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.message) || !strings.Contains(err.Error(), `"ada"`) {
				t.Fatalf("error does not say which profile and why: %v", err)
			}
			noSecrets(t, err, login.AccessToken, login.RefreshToken)
			if !bytes.Equal(e.raw("ada"), before) {
				t.Fatal("saved tokens changed or deleted")
			}
		})
	}
}

// Rule 4: a refusal after the saved token changed meanwhile is retried once
// with the new token.
func TestAccessTokenRefusedRetry(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	fresh := &client.Tokens{AccessToken: "at-3", TokenType: "Bearer", ExpiresIn: time.Hour, RefreshToken: "rt-3",
		RefreshExpiresIn: 24 * time.Hour}

	for _, tc := range []struct {
		name     string
		replaced time.Duration // access lifetime left in the entry saved meanwhile
		second   func(string) (*client.Tokens, error)
		wantGot  []string
		want     string
		wantErr  error
	}{
		{"retry succeeds", -time.Minute, func(string) (*client.Tokens, error) { return fresh, nil },
			[]string{"rt-1", "rt-2"}, "at-3", nil},
		{"retry refused too", -time.Minute, func(string) (*client.Tokens, error) { return nil, client.ErrInvalidRefreshToken },
			[]string{"rt-1", "rt-2"}, "", ErrLoginRequired},
		{"new entry valid", time.Hour, nil, []string{"rt-1"}, "at-2", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			secrets := vault.NewMemory()
			m := &TokenManager{Secrets: secrets, Dir: t.TempDir(), Now: func() time.Time { return t0 }}
			put := func(at, rt string, left time.Duration) {
				st := &storedTokens{Access: at, Refresh: rt, Issued: t0.Add(-time.Hour).Unix(),
					AccessExp: t0.Add(left).Unix()}
				if err := m.store(ctx, "ada", st); err != nil {
					t.Fatal(err)
				}
			}
			put("at-1", "rt-1", -time.Minute)
			r := &scriptRefresher{steps: []func(string) (*client.Tokens, error){
				func(string) (*client.Tokens, error) {
					put("at-2", "rt-2", tc.replaced) // another latch, without our lock
					return nil, client.ErrReuseDetected
				},
				tc.second,
			}}
			got, err := m.AccessToken(ctx, "ada", r)
			if fmt.Sprint(r.got) != fmt.Sprint(tc.wantGot) {
				t.Fatalf("refresh tokens presented %v, want %v", r.got, tc.wantGot)
			}
			if got != tc.want || !errors.Is(err, tc.wantErr) {
				t.Fatalf("got %q, %v; want %q, %v", got, err, tc.want, tc.wantErr)
			}
			noSecrets(t, err, "at-1", "rt-1", "at-2", "rt-2")
			if tc.wantErr != nil {
				if st := mustGet(t, secrets, "ada"); !bytes.Contains(st, []byte("rt-2")) {
					t.Fatal("saved tokens changed or deleted")
				}
			}
		})
	}
}

func mustGet(t *testing.T, s vault.Secrets, profile string) []byte {
	t.Helper()
	b, err := s.Get(context.Background(), tokensKey(profile))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Rule 5: when the server does not answer properly, the saved tokens stay
// as they are and the error says what failed.
func TestAccessTokenServerFailure(t *testing.T) {
	// The rows share one session: each leaves it as it was.
	e := newEnv(t)
	login := e.login("ada")
	e.clock.Add(testAccessTTL)
	before := e.raw("ada")
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"unreachable", fmt.Errorf("dial: %w", client.ErrUnreachable)},
		{"bad response", &client.ResponseError{Status: 200, Reason: "not JSON"}},
		{"5xx", &client.ResponseError{Status: 500, Reason: "internal"}},
		{"rate limited", &client.APIError{Status: 429, Type: "about:blank"}},
		{"deadline", context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &scriptRefresher{steps: []func(string) (*client.Tokens, error){
				func(string) (*client.Tokens, error) { return nil, tc.err },
			}}
			got, err := e.m.AccessToken(e.ctx, "ada", r)
			if got != "" || !errors.Is(err, tc.err) || errors.Is(err, ErrLoginRequired) {
				t.Fatalf("err = %v; want it to wrap %v and not ErrLoginRequired", err, tc.err)
			}
			if !strings.Contains(err.Error(), `"ada"`) {
				t.Fatalf("error lacks context: %v", err)
			}
			noSecrets(t, err, login.AccessToken, login.RefreshToken)
			if !bytes.Equal(e.raw("ada"), before) {
				t.Fatal("saved tokens changed")
			}
		})
	}

	t.Run("real server gone", func(t *testing.T) {
		e := newEnv(t)
		login := e.login("ada")
		e.clock.Add(testAccessTTL)
		before := e.raw("ada")
		e.http.Close()
		_, err := e.m.AccessToken(e.ctx, "ada", e.client)
		if !errors.Is(err, client.ErrUnreachable) {
			t.Fatalf("err = %v, want ErrUnreachable", err)
		}
		noSecrets(t, err, login.AccessToken, login.RefreshToken)
		if !bytes.Equal(e.raw("ada"), before) {
			t.Fatal("saved tokens changed")
		}
	})
}

// Rule 6: a valid token is still rotated once three quarters of the refresh
// token's idle lifetime are spent.
func TestAccessTokenAutoRotation(t *testing.T) {
	e := newEnv(t, func(c *server.Config) { c.AccessTTL, c.RefreshTTL = time.Hour, time.Hour })
	login := e.login("ada")
	t0 := e.clock.Now()

	e.clock.Add(45 * time.Minute) // exactly three quarters: not yet
	got, err := e.m.AccessToken(e.ctx, "ada", noRefresher{t})
	if err != nil || got != login.AccessToken {
		t.Fatalf("at 3/4: err %v, same token %v; want the saved token", err, got == login.AccessToken)
	}

	e.clock.Add(time.Second)
	// Ahead of time, a failed rotation still hands out the valid token.
	r := &scriptRefresher{steps: []func(string) (*client.Tokens, error){
		func(string) (*client.Tokens, error) { return nil, client.ErrUnreachable },
	}}
	got, err = e.m.AccessToken(e.ctx, "ada", r)
	if err != nil || got != login.AccessToken || len(r.got) != 1 {
		t.Fatalf("unreachable: err %v, same token %v, calls %d; want the saved token after 1 try",
			err, got == login.AccessToken, len(r.got))
	}

	got, err = e.m.AccessToken(e.ctx, "ada", e.client)
	if err != nil {
		t.Fatal(err)
	}
	st := e.stored("ada")
	if got == login.AccessToken || st.Access != got || e.refreshes("rotated") != 1 {
		t.Fatalf("past 3/4: rotated %d, want a new saved token and 1 rotation", e.refreshes("rotated"))
	}
	ts, err := e.m.Status(e.ctx, "ada")
	if err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	if !ts.RotateAt.Equal(now.Add(45*time.Minute)) || !ts.LoggedInAt.Equal(t0) || ts.Rotations != 1 {
		t.Fatalf("status after rotation = %+v", ts)
	}
}

func TestStatus(t *testing.T) {
	e := newEnv(t)
	_, err := e.m.Status(e.ctx, "ada")
	if !errors.Is(err, ErrLoginRequired) || !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("no session: err = %v, want ErrLoginRequired and vault.ErrNotFound", err)
	}

	login := e.login("ada")
	t0 := e.clock.Now()
	ts, err := e.m.Status(e.ctx, "ada")
	if err != nil {
		t.Fatal(err)
	}
	want := TokenState{
		AccessExpiresAt:  t0.Add(testAccessTTL),
		RefreshExpiresAt: t0.Add(testRefreshTTL),
		IssuedAt:         t0,
		LoggedInAt:       t0,
		RotateAt:         t0.Add(testAccessTTL - 30*time.Second),
	}
	if !sameState(ts, want) {
		t.Fatalf("Status = %+v\nwant %+v", ts, want)
	}
	if s := fmt.Sprintf("%+v %#v", ts, ts); strings.Contains(s, login.AccessToken) || strings.Contains(s, login.RefreshToken) {
		t.Fatal("Status shows a token")
	}
	// Keyring entries must stay small: little beyond the two tokens.
	if extra := len(e.raw("ada")) - len(login.AccessToken) - len(login.RefreshToken); extra > 120 {
		t.Fatalf("saved entry has %d bytes beyond the tokens", extra)
	}
}

func sameState(a, b TokenState) bool {
	return a.AccessExpiresAt.Equal(b.AccessExpiresAt) && a.RefreshExpiresAt.Equal(b.RefreshExpiresAt) &&
		a.IssuedAt.Equal(b.IssuedAt) && a.LoggedInAt.Equal(b.LoggedInAt) && a.Rotations == b.Rotations &&
		a.RotateAt.Equal(b.RotateAt)
}

// Rule 2: another latch holding the lock too long is a clear error, not a
// hang, and nothing is refreshed.
func TestAccessTokenLockTimeout(t *testing.T) {
	e := newEnv(t)
	login := e.login("ada")
	e.clock.Add(testAccessTTL)

	held := flock.New(filepath.Join(e.dir, "locks", "ada.lock"))
	if ok, err := held.TryLock(); !ok || err != nil {
		t.Fatalf("take the lock: %v %v", ok, err)
	}
	defer held.Close()

	m := *e.m
	m.LockWait = 20 * time.Millisecond
	_, err := m.AccessToken(e.ctx, "ada", noRefresher{t})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "another latch") {
		t.Fatalf("err = %v, want a lock timeout", err)
	}
	noSecrets(t, err, login.AccessToken, login.RefreshToken)
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	m := &TokenManager{Secrets: vault.NewMemory(), Dir: t.TempDir()}
	good := &client.Tokens{AccessToken: "a", RefreshToken: "r", ExpiresIn: time.Minute}
	for _, tc := range []struct {
		name string
		run  func() error
	}{
		{"path in profile", func() error { return m.Save(ctx, "../x", good) }},
		{"no tokens", func() error { return m.Save(ctx, "ada", nil) }},
		{"no expiry", func() error { return m.Save(ctx, "ada", &client.Tokens{AccessToken: "a", RefreshToken: "r"}) }},
		{"no vault", func() error { return (&TokenManager{Dir: "x"}).Save(ctx, "ada", good) }},
		{"not logged in", func() error { _, err := m.AccessToken(ctx, "ada", noRefresher{t}); return err }},
		{"unreadable entry", func() error {
			if err := m.Secrets.Set(ctx, tokensKey("bob"), []byte("{")); err != nil {
				t.Fatal(err)
			}
			_, err := m.AccessToken(ctx, "bob", noRefresher{t})
			if !errors.Is(err, ErrLoginRequired) {
				t.Errorf("unreadable entry: %v, want ErrLoginRequired", err)
			}
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); err == nil {
				t.Fatal("no error")
			}
		})
	}
}
