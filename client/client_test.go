package client

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNewURLChecks(t *testing.T) {
	tests := []struct {
		url      string
		insecure bool
		wantErr  string // "" means accepted
		wantBase string
	}{
		{url: "https://latch.example.com", wantBase: "https://latch.example.com"},
		{url: "https://latch.example.com/api/", wantBase: "https://latch.example.com/api"},
		{url: "http://127.0.0.1:8080", wantBase: "http://127.0.0.1:8080"},
		{url: "http://127.9.9.9", wantBase: "http://127.9.9.9"},
		{url: "http://[::1]:8080", wantBase: "http://[::1]:8080"},
		{url: "http://LOCALHOST:8080/", wantBase: "http://LOCALHOST:8080"},
		{url: "http://latch.example.com", wantErr: "--insecure"},
		{url: "http://10.0.0.1", wantErr: "--insecure"},
		{url: "http://localhost.evil.com", wantErr: "--insecure"},
		{url: "http://[::ffff:8.8.8.8]", wantErr: "--insecure"},
		{url: "http://latch.example.com", insecure: true, wantBase: "http://latch.example.com"},
		{url: "ftp://latch.example.com", wantErr: "https://"},
		{url: "latch.example.com", wantErr: "https://"},
		{url: "https://", wantErr: "no host"},
		{url: "https://bob:" + testPassword + "@latch.example.com", wantErr: "user name or password"},
		{url: "https://latch.example.com/?x=1", wantErr: "query"},
		{url: "https://latch.example.com/%zz", wantErr: "not a valid URL"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			c, err := New(tt.url, Options{Insecure: tt.insecure})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if c.BaseURL() != tt.wantBase {
					t.Errorf("BaseURL = %q, want %q", c.BaseURL(), tt.wantBase)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if tt.wantErr == "--insecure" && !errors.Is(err, ErrInsecureURL) {
				t.Errorf("err does not match ErrInsecureURL")
			}
			assertNoSecrets(t, err)
		})
	}
}

// TestTransportFailures: problems on the way are told apart from answers.
func TestTransportFailures(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		c, err := New("http://"+addr, Options{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Login(t.Context(), "ada", testPassword)
		if !errors.Is(err, ErrUnreachable) || errors.Is(err, ErrBadResponse) {
			t.Fatalf("err = %v, want only ErrUnreachable", err)
		}
		if !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), addr) {
			t.Errorf("message %q should say the connection to %s was refused", err, addr)
		}
		assertNoSecrets(t, err)
	})

	t.Run("slow server past the timeout", func(t *testing.T) {
		release := make(chan struct{})
		c, _ := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}), Options{Timeout: 50 * time.Millisecond})
		t.Cleanup(func() { close(release) }) // runs before the server closes
		_, err := c.Me(t.Context(), testAccess)
		if !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want ErrUnreachable and DeadlineExceeded", err)
		}
		if !strings.Contains(err.Error(), "within 50ms") {
			t.Errorf("message %q should name the timeout", err)
		}
	})

	t.Run("body stalls past the timeout", func(t *testing.T) {
		release := make(chan struct{})
		c, _ := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"id":`)
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}), Options{Timeout: 50 * time.Millisecond})
		t.Cleanup(func() { close(release) })
		_, err := c.Me(t.Context(), testAccess)
		if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "no complete answer") {
			t.Fatalf("err = %v, want a timeout", err)
		}
	})

	t.Run("caller cancels", func(t *testing.T) {
		release := make(chan struct{})
		started := make(chan struct{})
		var once sync.Once
		c, _ := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			once.Do(func() { close(started) })
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}), Options{})
		t.Cleanup(func() { close(release) })
		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			<-started
			cancel()
		}()
		err := c.Health(ctx)
		if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnreachable) {
			t.Fatalf("err = %v, want context.Canceled and not ErrUnreachable", err)
		}
	})
}

// TestResponseRobustness: each way a 200 can be broken gives an error that
// says which.
func TestResponseRobustness(t *testing.T) {
	huge := `{"access_token":"` + strings.Repeat("a", 5<<20) + `"}`
	tests := []struct {
		name    string
		handler http.Handler
		raw     func(net.Conn) // used instead of handler when set
		wantMsg string
	}{
		{name: "5 MiB body", handler: jsonStub(200, huge), wantMsg: "larger than 1024 KiB"},
		{name: "5 MiB body gzipped to a few KiB", handler: gzipStub(huge), wantMsg: "larger than 1024 KiB"},
		{name: "HTML 200", handler: &stub{status: 200, ctype: "text/html; charset=utf-8",
			body: "<!doctype html><title>Sign in</title>"}, wantMsg: "HTML page instead of JSON"},
		{name: "truncated JSON", handler: jsonStub(200, `{"access_token":"abc","token_ty`),
			wantMsg: "malformed or truncated"},
		{name: "connection cut mid-body", raw: func(conn net.Conn) {
			_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"access_token\":\"")
		}, wantMsg: "cut off before its end"},
		{name: "wrong content type", handler: &stub{status: 200, ctype: "text/plain",
			body: `{"access_token":"a","refresh_token":"b","token_type":"Bearer","expires_in":1}`},
			wantMsg: `wrong content type "text/plain"`},
		{name: "problem+json on success", handler: &stub{status: 200, ctype: "application/problem+json",
			body: `{"access_token":"a","refresh_token":"b","token_type":"Bearer","expires_in":1}`},
			wantMsg: `wrong content type "application/problem+json"`},
		{name: "no content type", handler: &stub{status: 200, body: `{"access_token":"a"}`},
			wantMsg: "no content type"},
		{name: "empty body", handler: &stub{status: 200, ctype: "application/json"}, wantMsg: "empty response body"},
		{name: "not JSON at all", handler: jsonStub(200, "OK"), wantMsg: "malformed or truncated"},
		{name: "trailing garbage", handler: jsonStub(200, `{"access_token":"a"} {"x":1}`),
			wantMsg: "malformed or truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c *Client
			if tt.raw != nil {
				var err error
				if c, err = New(rawServer(t, tt.raw), Options{}); err != nil {
					t.Fatal(err)
				}
			} else {
				c, _ = newServer(t, tt.handler, Options{})
			}
			tok, err := c.Login(t.Context(), "ada", testPassword)
			if tok != nil {
				t.Errorf("got tokens from a broken response")
			}
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("err = %T %v, want ErrBadResponse", err, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("message %q does not contain %q", err, tt.wantMsg)
			}
			assertNoSecrets(t, err)
		})
	}
}

// TestRedirectsAreNotFollowed: a redirect, above all to another host, must
// never carry the Authorization header (or a password body) anywhere.
func TestRedirectsAreNotFollowed(t *testing.T) {
	other := &stub{status: 200, ctype: "application/json", body: `{"logged_in_as":"mallory"}`}
	otherSrv := httptest.NewServer(other)
	t.Cleanup(otherSrv.Close)
	otherAddr := otherSrv.Listener.Addr().String()
	_, otherPort, _ := net.SplitHostPort(otherAddr)

	for _, tt := range []struct {
		name, location string
		status         int
	}{
		{"307 to another host", "http://evil.test:" + otherPort + "/auth/protected", http.StatusTemporaryRedirect},
		{"302 to another host", "http://evil.test:" + otherPort + "/auth/protected", http.StatusFound},
		{"308 to the same host on another port", otherSrv.URL + "/auth/protected", http.StatusPermanentRedirect},
		{"301 to a URL with credentials", "http://u:" + testPassword + "@evil.test:" + otherPort + "/?t=" + testAccess,
			http.StatusMovedPermanently},
	} {
		t.Run(tt.name, func(t *testing.T) {
			origin := &stub{status: tt.status, headers: map[string]string{"Location": tt.location}}
			c, _ := newServer(t, origin, Options{Transport: redirectDialer("evil.test", otherAddr)})

			_, err := c.Protected(t.Context(), testAccess)
			if !errors.Is(err, ErrBadResponse) || !strings.Contains(err.Error(), "does not follow redirects") {
				t.Fatalf("err = %v, want a redirect error", err)
			}
			if !strings.Contains(err.Error(), "evil.test:"+otherPort) && !strings.Contains(err.Error(), otherAddr) {
				t.Errorf("message %q should name the target", err)
			}
			assertNoSecrets(t, err)
			_, _, _, err = c.Do(t.Context(), http.MethodGet, "/auth/protected", nil, testAccess)
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("Do: err = %v, want a redirect error", err)
			}
			if _, err := c.Login(t.Context(), "ada", testPassword); !errors.Is(err, ErrBadResponse) {
				t.Fatalf("Login: err = %v, want a redirect error", err)
			}
			for _, r := range other.requests() {
				t.Errorf("other host got %s %s with Authorization %q", r.Method, r.Path, r.Auth)
			}
			if got := origin.requests(); len(got) != 3 || got[0].Auth != "Bearer "+testAccess {
				t.Errorf("origin saw %+v", got)
			}
		})
	}

	// The dialer trick above is only meaningful if evil.test really reaches
	// the other server.
	t.Run("sanity: evil.test reaches the other server", func(t *testing.T) {
		c, err := New("http://evil.test:"+otherPort, Options{Insecure: true, Transport: redirectDialer("evil.test", otherAddr)})
		if err != nil {
			t.Fatal(err)
		}
		if name, err := c.Protected(t.Context(), testAccess); err != nil || name != "mallory" {
			t.Fatalf("Protected = %q, %v", name, err)
		}
	})
}

// gzipStub answers with body gzip-compressed, to check the cap applies to the
// decompressed size.
func gzipStub(body string) http.Handler {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = io.WriteString(zw, body)
	_ = zw.Close()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		_, _ = w.Write(buf.Bytes())
	})
}

func TestConcurrentUse(t *testing.T) {
	c, _ := newServer(t, jsonStub(200, `{"status":"ok"}`), Options{})
	errs := make(chan error, 8)
	for range 8 {
		go func() { errs <- c.Health(t.Context()) }()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func ExampleAPIError() {
	err := error(&APIError{Status: 409, Type: typeConflict, Fields: map[string]string{"username": "already taken"}})
	fmt.Println(err, errors.Is(err, ErrConflict))
	// Output: username: already taken true
}
