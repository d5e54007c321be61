package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkArgon2idHash is the cost that bounds login throughput: one
// argon2id hash with the production parameters. Run it with -cpu 1 for the
// per-core rate; bench/serve.sh multiplies it by the core count.
func BenchmarkArgon2idHash(b *testing.B) {
	h := newHasher(defaultArgon)
	ctx := context.Background()
	for b.Loop() {
		if _, err := h.Hash(ctx, goodPassword); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hashes/s")
}

// BenchmarkArgon2idHashParallel runs as many hashes at once as there are
// cores, with no server around them: the real ceiling of login throughput,
// below cores × one core because argon2id is memory-hard and concurrent
// hashes share memory bandwidth.
func BenchmarkArgon2idHashParallel(b *testing.B) {
	h := newHasher(defaultArgon)
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := h.Hash(ctx, goodPassword); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hashes/s")
}

// benchEnv is a server with production hashing on a file database, without
// rate limits, served in-process, with one user "bench".
func benchEnv(b *testing.B) (*Server, *httptest.Server) {
	b.Helper()
	srv, err := New(context.Background(), Config{
		DBPath: filepath.Join(b.TempDir(), "latch.db"), Issuer: "http://latch.test",
		SecretKey: make([]byte, 32), RateIP: -1, RateAccount: -1,
	})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	b.Cleanup(func() { hs.Close(); srv.Close() })
	post(b, hs.Client(), hs.URL+"/auth/register", `{"username":"bench","email":"bench@example.com","password":"`+goodPassword+`"}`)
	return srv, hs
}

func post(b *testing.B, c *http.Client, url, body string) map[string]any {
	res, err := c.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	json.NewDecoder(res.Body).Decode(&m)
	if res.StatusCode/100 != 2 {
		b.Fatalf("%s: %d %v", url, res.StatusCode, m)
	}
	return m
}

// BenchmarkLogin measures whole logins over loopback HTTP, in parallel.
func BenchmarkLogin(b *testing.B) {
	_, hs := benchEnv(b)
	c := hs.Client()
	body := `{"identifier":"bench","password":"` + goodPassword + `"}`
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			post(b, c, hs.URL+"/auth/login", body)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
}

// BenchmarkRefresh measures rotations over loopback HTTP, each parallel
// worker rotating its own session.
func BenchmarkRefresh(b *testing.B) {
	_, hs := benchEnv(b)
	c := hs.Client()
	login := `{"identifier":"bench","password":"` + goodPassword + `"}`
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		tok := post(b, c, hs.URL+"/auth/login", login)["refresh_token"].(string)
		for pb.Next() {
			tok = post(b, c, hs.URL+"/auth/refresh", `{"refresh_token":"`+tok+`"}`)["refresh_token"].(string)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "refreshes/s")
}

// BenchmarkLoginFailure compares a wrong password with an unknown user: the
// two must cost the same, or timing tells which usernames exist.
func BenchmarkLoginFailure(b *testing.B) {
	srv, hs := benchEnv(b)
	c := hs.Client()
	for _, tc := range []struct{ name, identifier string }{{"wrong_password", "bench"}, {"unknown_user", "nobody"}} {
		b.Run(tc.name, func(b *testing.B) {
			body := `{"identifier":"` + tc.identifier + `","password":"not the password"}`
			for b.Loop() {
				// Clear the backoff that repeated failures earn, so every
				// attempt reaches the password check.
				srv.backoff.succeed("id:" + tc.identifier)
				srv.backoff.succeed("uid:1")
				res, err := c.Post(hs.URL+"/auth/login", "application/json", strings.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != http.StatusUnauthorized {
					b.Fatalf("status %d", res.StatusCode)
				}
			}
		})
	}
}
