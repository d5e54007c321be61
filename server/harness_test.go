package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable time source shared by a test and its server: fixed
// until moved on, or (wall) the wall clock plus what Add moved it by.
type clock struct {
	mu   sync.Mutex
	t    time.Time
	wall bool
	off  time.Duration
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.wall {
		return time.Now().Add(c.off)
	}
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.wall {
		c.off += d
		return
	}
	c.t = c.t.Add(d)
}

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testArgon keeps hashing cheap in tests; the real parameters are measured
// by the benchmarks.
var testArgon = argonParams{Memory: 64, Time: 1, Threads: 1}

type env struct {
	t     *testing.T
	srv   *Server
	http  *httptest.Server
	clock *clock
	logs  *syncBuffer
}

// newEnv starts a server on a loopback httptest listener. mod adjusts the
// config first (a file database, limits).
func newEnv(t *testing.T, mod ...func(*Config)) *env {
	t.Helper()
	c := newClock()
	logs := &syncBuffer{}
	cfg := Config{
		DBPath:    MemoryDB,
		Issuer:    "http://latch.test",
		SecretKey: bytes.Repeat([]byte{7}, 32),
		Logger:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:       c.Now,
		RateIP:    -1, RateAccount: -1,
		argon: &testArgon,
	}
	for _, m := range mod {
		m(&cfg)
	}
	cfg.DBPath = testDB(t, cfg.DBPath)
	srv, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return &env{t: t, srv: srv, http: hs, clock: c, logs: logs}
}

type resp struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r *resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %q", err, r.Body)
	}
	return m
}

// problemType is the `type` of a problem response, checking its media type.
func (r *resp) problemType(t *testing.T) string {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json (body %s)", ct, r.Body)
	}
	typ, _ := r.json(t)["type"].(string)
	return typ
}

// do sends a request; body may be a string (sent as is) or a value to encode.
func (e *env) do(method, path string, body any, header ...string) *resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.http.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := e.http.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return &resp{Status: res.StatusCode, Header: res.Header, Body: raw}
}

func (e *env) bearer(method, path, token string, body any) *resp {
	e.t.Helper()
	return e.do(method, path, body, "Authorization", "Bearer "+token)
}

const goodPassword = "correct horse battery staple"

func (e *env) register(username, email string) {
	e.t.Helper()
	r := e.do("POST", "/auth/register", map[string]string{"username": username, "email": email, "password": goodPassword})
	if r.Status != http.StatusCreated {
		e.t.Fatalf("register %s: %d %s", username, r.Status, r.Body)
	}
}

// login returns the token pair of a fresh session.
func (e *env) login(identifier string) tokenPair {
	e.t.Helper()
	r := e.do("POST", "/auth/login", map[string]string{"identifier": identifier, "password": goodPassword})
	if r.Status != http.StatusOK {
		e.t.Fatalf("login %s: %d %s", identifier, r.Status, r.Body)
	}
	var p tokenPair
	if err := json.Unmarshal(r.Body, &p); err != nil || p.AccessToken == "" || p.RefreshToken == "" {
		e.t.Fatalf("login %s: bad token pair %s", identifier, r.Body)
	}
	return p
}

func (e *env) refresh(tok string) *resp {
	e.t.Helper()
	return e.do("POST", "/auth/refresh", map[string]string{"refresh_token": tok})
}
