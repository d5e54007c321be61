package client

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Secrets used across tests; no error string may ever contain them.
const (
	testPassword = "hunter2-correct-horse"
	testAccess   = "acc.eyJzdWIiOiI0MiJ9.sig"
	testRefresh  = "rt_9f8e7d6c5b4a"
	testMFAToken = "mfa_0123456789abcdef"
)

var allSecrets = []string{testPassword, testAccess, testRefresh, testMFAToken}

// seen is what a stub server recorded about one request.
type seen struct {
	Method, Path, Auth, ContentType, UserAgent string
	Body                                       map[string]any
}

// stub serves one canned answer and records every request it gets.
type stub struct {
	status  int
	ctype   string
	body    string
	headers map[string]string

	mu   sync.Mutex
	reqs []seen
}

func (s *stub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := seen{Method: r.Method, Path: r.URL.RequestURI(), Auth: r.Header.Get("Authorization"),
		ContentType: r.Header.Get("Content-Type"), UserAgent: r.Header.Get("User-Agent")}
	if b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16)); len(b) > 0 {
		_ = json.Unmarshal(b, &rec.Body)
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, rec)
	s.mu.Unlock()
	for k, v := range s.headers {
		w.Header().Set(k, v)
	}
	if s.ctype != "" {
		w.Header().Set("Content-Type", s.ctype)
	} else {
		w.Header()["Content-Type"] = nil // no sniffing: really send none
	}
	w.WriteHeader(s.status)
	_, _ = io.WriteString(w, s.body)
}

func (s *stub) requests() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seen(nil), s.reqs...)
}

// jsonStub answers with status and a JSON body.
func jsonStub(status int, body string) *stub {
	return &stub{status: status, ctype: "application/json", body: body}
}

// problemStub answers with an RFC 9457 problem.
func problemStub(status int, body string, headers map[string]string) *stub {
	return &stub{status: status, ctype: "application/problem+json", body: body, headers: headers}
}

// newServer starts h on 127.0.0.1 and returns a client for it.
func newServer(t *testing.T, h http.Handler, opts Options) (*Client, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, opts)
	if err != nil {
		t.Fatalf("New(%q): %v", srv.URL, err)
	}
	return c, srv
}

// assertNoSecrets fails if err's message contains any test secret.
func assertNoSecrets(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range allSecrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error message leaks a secret: %q", err.Error())
		}
	}
}

// rawServer accepts one connection at a time on 127.0.0.1 and lets fn write
// whatever bytes it likes, for answers net/http would refuse to produce.
func rawServer(t *testing.T, fn func(conn net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			// Read the request head before answering so the client does not see
			// a reset while still writing.
			buf := make([]byte, 4096)
			_, _ = conn.Read(buf)
			fn(conn)
			_ = conn.Close()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
}

// redirectDialer sends connections for fakeHost to realAddr, so a test can
// redirect to "another host" while every socket stays on 127.0.0.1.
func redirectDialer(fakeHost, realAddr string) http.RoundTripper {
	d := &net.Dialer{}
	return &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err == nil && host == fakeHost {
			addr = realAddr
		}
		return d.DialContext(ctx, network, addr)
	}}
}
