package webform

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// recorder is a testing.TB that notes failures instead of failing the
// test, so that a test can check that the browser fails.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	failed []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = append(r.failed, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatal(args ...any) {
	r.Errorf("%s", fmt.Sprint(args...))
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

// run calls f with a browser at srv that records its failures, and returns
// them.
func run(srv string, f func(b *Browser)) []string {
	rec := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(New(rec, srv))
	}()
	<-done
	return rec.failed
}

const safeCSP = "default-src 'none'; form-action 'self'; frame-ancestors 'none'"

func page(w http.ResponseWriter, referrer string) {
	w.Header().Set("Content-Security-Policy", safeCSP)
	if referrer != "" {
		w.Header().Set("Referrer-Policy", referrer)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, "<!doctype html><p>done</p>")
}

func TestPostRedirects(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { page(w, "no-referrer") }))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/landing" {
			page(w, "no-referrer")
			return
		}
		var code int
		fmt.Sscan(r.URL.Query().Get("code"), &code)
		target := "/landing"
		if r.URL.Query().Has("away") {
			target = other.URL + "/cb"
		}
		http.Redirect(w, r, target, code)
	}))
	defer srv.Close()
	for _, tc := range []struct {
		method string
		code   int
		away   bool
		fails  bool
	}{
		{"POST", http.StatusTemporaryRedirect, false, true},
		{"POST", http.StatusPermanentRedirect, false, true},
		{"POST", http.StatusTemporaryRedirect, true, true},
		{"POST", http.StatusPermanentRedirect, true, true},
		{"POST", http.StatusSeeOther, false, false},
		{"POST", http.StatusFound, true, false},
		{"GET", http.StatusTemporaryRedirect, false, false},
		{"GET", http.StatusPermanentRedirect, true, false},
	} {
		name := fmt.Sprintf("%s %d away=%v", tc.method, tc.code, tc.away)
		t.Run(name, func(t *testing.T) {
			u := fmt.Sprintf("%s/form?code=%d", srv.URL, tc.code)
			if tc.away {
				u += "&away"
			}
			failed := run(srv.URL, func(b *Browser) {
				req, _ := http.NewRequest(tc.method, u, strings.NewReader("password=secret"))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				b.Do(req)
			})
			if got := len(failed) > 0; got != tc.fails {
				t.Fatalf("browser failed = %v (%q), want %v", got, failed, tc.fails)
			}
		})
	}
}

func TestCheckPageSafeReferrerPolicy(t *testing.T) {
	for _, policy := range []string{"", "origin", "no-referrer"} {
		t.Run(policy, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { page(w, policy) }))
			defer srv.Close()
			failed := run(srv.URL, func(b *Browser) { b.Get(srv.URL) })
			if ok := len(failed) == 0; ok != (policy == "no-referrer") {
				t.Fatalf("Referrer-Policy %q: failures %q", policy, failed)
			}
		})
	}
}
