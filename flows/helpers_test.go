package flows

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/server"
	"github.com/latch-dev/latch/vault"
)

// clock is a settable time source shared by a test, its server and its
// token managers.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Default lifetimes in tests: the access token's skew is then 30 s (a tenth
// of 5 min), and auto-rotation is due 45 min after a rotation.
const (
	testAccessTTL  = 5 * time.Minute
	testRefreshTTL = time.Hour
)

// env is a real latch server on loopback, a client for it, a file vault and
// a TokenManager, all on one clock.
type env struct {
	t       *testing.T
	ctx     context.Context
	clock   *clock
	http    *httptest.Server
	client  *client.Client
	dir     string
	secrets vault.Secrets
	m       *TokenManager
}

func newEnv(t *testing.T, mod ...func(*server.Config)) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	cfg := server.Config{
		DBPath:     server.MemoryDB,
		Issuer:     "http://latch.test",
		SecretKey:  bytes.Repeat([]byte{7}, 32),
		AccessTTL:  testAccessTTL,
		RefreshTTL: testRefreshTTL,
		Now:        c.Now,
		RateIP:     -1, RateAccount: -1,
	}
	for _, f := range mod {
		f(&cfg)
	}
	srv, err := server.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	cl, err := client.New(hs.URL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	e := &env{t: t, ctx: ctx, clock: c, http: hs, client: cl, dir: dir}
	e.secrets = e.openVault()
	e.m = &TokenManager{Secrets: e.secrets, Dir: dir, Now: c.Now}
	return e
}

// openVault opens another handle on the env's file vault, as another latch
// process would.
func (e *env) openVault() vault.Secrets {
	e.t.Helper()
	s, _, err := vault.Open(e.ctx, vault.ModeFile, e.dir, vault.Options{Passphrase: fixedPass})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// login registers a user named after profile, logs in and saves the tokens.
func (e *env) login(profile string) *client.Tokens {
	e.t.Helper()
	const pw = "correct horse battery staple"
	if _, err := e.client.Register(e.ctx, profile, profile+"@example.com", pw); err != nil {
		e.t.Fatal(err)
	}
	tok, err := e.client.Login(e.ctx, profile, pw)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.m.Save(e.ctx, profile, tok); err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// raw is the secret saved for profile, byte for byte.
func (e *env) raw(profile string) []byte {
	e.t.Helper()
	b, err := e.secrets.Get(e.ctx, tokensKey(profile))
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *env) stored(profile string) storedTokens {
	e.t.Helper()
	var st storedTokens
	if err := json.Unmarshal(e.raw(profile), &st); err != nil {
		e.t.Fatal(err)
	}
	return st
}

// refreshes is the server's count of refresh presentations with outcome
// result ("rotated", "grace", "reused", "invalid"), from GET /metrics.
func (e *env) refreshes(result string) int {
	e.t.Helper()
	res, err := e.http.Client().Get(e.http.URL + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	prefix := fmt.Sprintf("latch_refreshes_total{result=%q} ", result)
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				e.t.Fatalf("metrics: %q: %v", sc.Text(), err)
			}
			return n
		}
	}
	e.t.Fatalf("metrics: no %s line (status %d, scan error %v)", prefix, res.StatusCode, sc.Err())
	return 0
}

// checkUsable asks the server who the access token belongs to.
func (e *env) checkUsable(access, profile string) {
	e.t.Helper()
	u, err := e.client.Me(e.ctx, access)
	if err != nil {
		e.t.Fatalf("access token refused: %v", err)
	}
	if u.Username != profile {
		e.t.Fatalf("access token belongs to %q, want %q", u.Username, profile)
	}
}

// countingRefresher counts the calls that reach r.
type countingRefresher struct {
	r     Refresher
	calls atomic.Int32
}

func (c *countingRefresher) Refresh(ctx context.Context, rt string) (*client.Tokens, error) {
	c.calls.Add(1)
	return c.r.Refresh(ctx, rt)
}

// scriptRefresher answers each call with the next step, recording the
// refresh tokens it was given.
type scriptRefresher struct {
	steps []func(rt string) (*client.Tokens, error)
	got   []string
}

func (s *scriptRefresher) Refresh(_ context.Context, rt string) (*client.Tokens, error) {
	s.got = append(s.got, rt)
	if len(s.got) > len(s.steps) {
		return nil, errors.New("scriptRefresher: unexpected call")
	}
	return s.steps[len(s.got)-1](rt)
}

// noRefresher fails the test if a refresh is attempted.
type noRefresher struct{ t *testing.T }

func (n noRefresher) Refresh(context.Context, string) (*client.Tokens, error) {
	n.t.Error("unexpected refresh")
	return nil, errors.New("unexpected refresh")
}

// hookSecrets runs afterGet after the n-th Get (counting from 1) has read
// its value and before it returns.
type hookSecrets struct {
	vault.Secrets
	n        int
	gets     int
	afterGet func()
}

func (h *hookSecrets) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := h.Secrets.Get(ctx, key)
	h.gets++
	if h.gets == h.n {
		h.afterGet()
	}
	return b, err
}

// failingSet refuses every write.
type failingSet struct{ vault.Secrets }

var errDiskFull = errors.New("disk full")

func (failingSet) Set(context.Context, string, []byte) error { return errDiskFull }

// noSecrets fails the test if err's message contains any of the tokens.
func noSecrets(t *testing.T, err error, tokens ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, msg := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
		for _, tok := range tokens {
			if tok != "" && strings.Contains(msg, tok) {
				t.Fatalf("error message contains a token: %s", msg)
			}
		}
	}
}
