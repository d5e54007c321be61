package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latch-dev/latch/internal/pgtest"
)

func TestServeRefusesUnsafeSetups(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"plain HTTP on all interfaces", []string{"--addr", ":0"}, "refusing plain HTTP"},
		{"plain HTTP on a LAN address", []string{"--addr", "192.0.2.1:8080"}, "refusing plain HTTP"},
		{"dev off loopback", []string{"--dev", "--addr", "0.0.0.0:0"}, "--dev serves only on loopback"},
		{"half TLS", []string{"--addr", "127.0.0.1:0", "--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together"},
		{"bad address", []string{"--addr", "nonsense"}, "--addr"},
		{"zero TTL", []string{"--dev", "--addr", "127.0.0.1:0", "--access-ttl", "0s"}, "--access-ttl must be positive"},
		{"negative session", []string{"--dev", "--addr", "127.0.0.1:0", "--session-max", "-1h"}, "--session-max must be positive"},
		{"sub-second grace", []string{"--dev", "--addr", "127.0.0.1:0", "--reuse-grace", "500ms"}, "--reuse-grace must be 0"},
		{"bad log level", []string{"--dev", "--addr", "127.0.0.1:0", "--log-level", "loud"}, "--log-level"},
		{"password in --db", []string{"--db", "postgres://latch:hunter2@127.0.0.1/latch", "--secret-key-file", "k"}, "--db must not hold the database password"},
		{"password parameter in --db", []string{"--db", "postgres://latch@127.0.0.1/latch?password=hunter2", "--secret-key-file", "k"}, "--db must not hold the database password"},
		{"postgres without a shared key", []string{"--db", "postgres://latch@127.0.0.1/latch", "--issuer", "https://auth.example.com"}, "give --secret-key-file"},
		{"postgres without a shared issuer", []string{"--db", "postgres://latch@127.0.0.1/latch", "--secret-key-file", "k"}, "give --issuer"},
		{"dev with a database", []string{"--dev", "--db", "x.db"}, "--dev uses a throwaway in-memory database"},
		{"dev with check-db", []string{"--dev", "--check-db"}, "--dev uses a throwaway in-memory database"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := NewRootCmd()
			cmd.SetArgs(append([]string{"serve"}, tc.args...))
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			err := cmd.ExecuteContext(t.Context())
			var ue usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a usage error containing %q", err, tc.want)
			}
		})
	}
}

// TestServeRunsAndShutsDown starts `latch serve` on a file database, checks
// it answers and that its files are private, then stops it as SIGINT would.
func TestServeRunsAndShutsDown(t *testing.T) {
	home := t.TempDir()
	t.Setenv("LATCH_HOME", home)
	var stderr bytes.Buffer
	addr, stop := startServe(t, &stderr, "--addr", "127.0.0.1:0", "--log-format", "json")
	res, err := http.Get("http://" + addr + "/auth/config")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	json.NewDecoder(res.Body).Decode(&cfg)
	res.Body.Close()
	if cfg["issuer"] != "http://"+addr {
		t.Fatalf("issuer = %v, want http://%s", cfg["issuer"], addr)
	}
	for _, f := range []string{"server/latch.db", "server/secret.key"} {
		st, err := os.Stat(filepath.Join(home, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	if st, _ := os.Stat(filepath.Join(home, "server")); st.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v, want 0700", st.Mode().Perm())
	}

	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if !strings.Contains(stderr.String(), `"msg":"shutting down"`) {
		t.Fatalf("log: %s", stderr.String())
	}
}

// startServe runs `latch serve args…` until stop, which ends it as SIGINT
// would and returns what serve returned.
func startServe(t *testing.T, stderr io.Writer, args ...string) (addr string, stop func() error) {
	t.Helper()
	o := parseServe(t, args...)
	addrc := make(chan string, 1)
	o.ready = func(a string) { addrc <- a }
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- serveRun(ctx, o, stderr) }()
	stop = sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(15 * time.Second):
			return errors.New("serve did not shut down")
		}
	})
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("serve exited: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start")
	}
	t.Cleanup(func() { stop() })
	return addr, stop
}

// parseServe returns the options `latch serve args…` would run with.
func parseServe(t *testing.T, args ...string) *serveOptions {
	t.Helper()
	var got *serveOptions
	cmd := newServeCmd(func(_ context.Context, o *serveOptions) error { got = o; return nil })
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestServeTLS serves HTTPS with a certificate made for the test and checks
// the issuer says https.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("LATCH_HOME", dir)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)

	addr, stop := startServe(t, io.Discard, "--addr", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile)
	defer stop()

	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	res, err := hc.Get("https://" + addr + "/auth/config")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var cfg map[string]any
	json.NewDecoder(res.Body).Decode(&cfg)
	if cfg["issuer"] != "https://"+addr {
		t.Fatalf("issuer = %v", cfg["issuer"])
	}
	// Go's TLS server answers plain HTTP with a 400, never with the API.
	if res, err := http.Get("http://" + addr + "/auth/config"); err == nil {
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP served the API on a TLS listener")
		}
	}
}

// TestServeClientsFile starts `latch serve --clients FILE` and checks the
// OpenID provider is up with the file's client; a bad file stops serve.
func TestServeClientsFile(t *testing.T) {
	t.Setenv("LATCH_HOME", t.TempDir())
	path := filepath.Join(t.TempDir(), "clients.yaml")
	os.WriteFile(path, []byte("clients:\n  - id: notes\n    redirect_uris: [\"http://127.0.0.1/cb\"]\n"), 0o600)
	addr, stop := startServe(t, io.Discard, "--dev", "--addr", "127.0.0.1:0", "--clients", path)
	defer stop()
	res, err := http.Get("http://" + addr + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	json.NewDecoder(res.Body).Decode(&doc)
	res.Body.Close()
	if doc["issuer"] != "http://"+addr || doc["authorization_response_iss_parameter_supported"] != true {
		t.Fatalf("discovery: %v", doc)
	}
	// The file's client is known: /authorize shows the login page for it.
	res, err = http.Get("http://" + addr + "/authorize?client_id=notes&response_type=code&scope=openid" +
		"&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&code_challenge_method=S256&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Request.URL.Path != "/login" {
		t.Fatalf("authorize for the file's client: %d %s", res.StatusCode, res.Request.URL)
	}

	os.WriteFile(path, []byte("clients:\n  - id: latch-cli\n"), 0o600)
	o := parseServe(t, "--dev", "--addr", "127.0.0.1:0", "--clients", path)
	if err := serveRun(t.Context(), o, io.Discard); err == nil || !strings.Contains(err.Error(), "built in") {
		t.Fatalf("bad clients file: %v", err)
	}
}

// --check-db migrates, checks the key opens the signing keys, reports and
// exits, on both databases; a second key is refused by name.
func TestServeCheckDB(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "latch.db")
			if dialect == "postgres" {
				db = pgtest.Database(t)
			}
			key := filepath.Join(dir, "secret.key")
			check := func(key string) (string, error) {
				cmd := NewRootCmd()
				var stderr bytes.Buffer
				// The URL comes from the environment, as in a unit file.
				t.Setenv(databaseURLEnv, db)
				cmd.SetArgs([]string{"serve", "--check-db", "--secret-key-file", key})
				cmd.SetOut(io.Discard)
				cmd.SetErr(&stderr)
				err := cmd.ExecuteContext(t.Context())
				return stderr.String(), err
			}
			for range 2 { // migrates, then finds it up to date
				out, err := check(key)
				if err != nil || !strings.Contains(out, "("+dialect+"): schema version") || !strings.Contains(out, "up to date") {
					t.Fatalf("check-db: %v\n%s", err, out)
				}
			}
			other := filepath.Join(dir, "other.key")
			if err := os.WriteFile(other, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := check(other); err == nil || !strings.Contains(err.Error(), "--secret-key-file") {
				t.Fatalf("check-db with another key: %v", err)
			}
		})
	}
}
