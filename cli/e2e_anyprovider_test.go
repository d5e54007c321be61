package cli

import (
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latch-dev/latch/internal/fakeidp"
)

// A confidential client at an https provider with a private CA, logged in
// on the built binary with the secret on stdin, --ca-file, an extra
// parameter and the exact redirect the provider registered; then logged
// out, the revocation authenticated with the remembered secret. The
// "browser" is curl trusting the same CA.
func TestE2EAnyProviderConfidentialBrowser(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed; .ci/run installs it")
	}
	const secret = "e2e-client-secret-value"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	redirect := "http://localhost:" + strconv.Itoa(port) + "/cb"
	idp := fakeidp.New(t, func(c *fakeidp.Config) {
		c.TLS, c.ClientSecret, c.ClientAuth = true, secret, "basic"
		c.AuthMethods = []string{"client_secret_basic"}
		c.RedirectURIs = []string{redirect}
	})
	e := newE2E(t, time.Minute)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, idp.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	opener := filepath.Join(dir, "open-with-curl")
	script := "#!/bin/sh\nexec " + curl + " -sSL --cacert " + ca + " -o /dev/null \"$1\"\n"
	if err := os.WriteFile(opener, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	login := []string{"login", "--issuer", idp.URL, "--client-id", "latch-cli", "--browser", "--wait", "30s",
		"--client-secret-stdin", "--ca-file", ca, "--auth-param", "prompt=login", "--redirect-url", redirect}

	// Without the CA the failure says what to do.
	r := e.run(secret+"\n", login[:len(login)-6]...)
	if r.code == 0 || !strings.Contains(r.stderr, "--ca-file") || !strings.Contains(r.stderr, "SSL_CERT_FILE") {
		t.Fatalf("login without --ca-file: exit %d\n%s", r.code, r.stderr)
	}

	cmd := e.command(secret+"\n", login...)
	cmd.Env = append(cmd.Env, "LATCH_BROWSER="+opener)
	r = runCmd(t, cmd)
	if r.code != 0 {
		t.Fatalf("login: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	s := idp.Stats()
	if s.LastClientAuth != "basic" || s.LastRedirectURI != redirect || url.Values(s.LastAuthorizeQuery).Get("prompt") != "login" {
		t.Fatalf("provider saw auth %q, redirect %q, query %v", s.LastClientAuth, s.LastRedirectURI, s.LastAuthorizeQuery)
	}
	if strings.Contains(r.stdout+r.stderr, secret) {
		t.Fatal("the output shows the client secret")
	}
	cfg, err := os.ReadFile(filepath.Join(e.home, "config.json"))
	if err != nil || strings.Contains(string(cfg), secret) || !strings.Contains(string(cfg), `"ca_file"`) ||
		!strings.Contains(string(cfg), redirect) {
		t.Fatalf("profiles file (%v):\n%s", err, cfg)
	}
	st := e.status()
	if st.Issuer != idp.URL || st.State != "logged_in" {
		t.Fatalf("status: %+v", st)
	}

	// Logging in again to the named profile, the method given anew, takes
	// the secret the vault keeps: nothing on stdin.
	again := e.command("", "login", "-p", st.Name, "--browser", "--wait", "30s", "--auth-method", "client_secret_basic")
	again.Env = append(again.Env, "LATCH_BROWSER="+opener)
	if r := runCmd(t, again); r.code != 0 {
		t.Fatalf("login again: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if s := idp.Stats(); s.LastClientAuth != "basic" {
		t.Fatalf("login again authenticated with %q", s.LastClientAuth)
	}
	// The replaced session was revoked by the second login, this one by
	// logout.
	out := e.must("", "logout")
	if s := idp.Stats(); len(s.Revocations) != 2 || s.LastClientAuth != "basic" {
		t.Fatalf("logout said %q; revocations %d by %q", out, len(s.Revocations), s.LastClientAuth)
	}
}

// GitHub's device flow on the built binary: endpoints by hand, no
// discovery, form-encoded answers; the token it hands out has no expiry.
func TestE2EAnyProviderGitHubDevice(t *testing.T) {
	idp := fakeidp.New(t, func(c *fakeidp.Config) { c.GitHub, c.ClientID = true, "Iv1.0123456789abcdef" })
	e := newE2E(t, time.Minute)
	r := e.run("", "login", "--device", "--client-id", "Iv1.0123456789abcdef", "--wait", "30s",
		"--device-url", idp.URL+"/login/device/code", "--token-url", idp.URL+"/login/oauth/access_token",
		"--userinfo-url", idp.URL+"/user")
	if r.code != 0 {
		t.Fatalf("login: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, idp.URL+"/login/device") || !strings.Contains(r.stdout, "Logged in to "+idp.URL+" as ada") {
		t.Fatalf("login said:\n%s%s", r.stdout, r.stderr)
	}
	if s := idp.Stats(); s.Discoveries != 0 {
		t.Fatalf("%d discovery requests", s.Discoveries)
	}
	if tok := e.token(); !strings.HasPrefix(tok, "opaque-") {
		t.Fatalf("token %q", tok)
	}
	if st := e.status(); st.Issuer != idp.URL || st.ClientID != "Iv1.0123456789abcdef" {
		t.Fatalf("status: %+v", st)
	}
}

// Bad provider flags are usage errors (exit 2) naming the flag.
func TestE2EAnyProviderUsage(t *testing.T) {
	e := newE2E(t, time.Minute)
	open := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(open, []byte("s3cret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"--auth-param", "state=x"}, "--auth-param state"},
		{[]string{"--auth-param", "novalue"}, "name=value"},
		{[]string{"--redirect-url", "http://example.com:8000/"}, "localhost, 127.0.0.1 or [::1]"},
		{[]string{"--client-secret-file", "/nonexistent/secret"}, "--client-secret-file"},
		{[]string{"--client-secret-file", open}, "chmod 600"},
		{[]string{"--auth-method", "private_key_jwt"}, "--auth-method"},
		{[]string{"--jwks-url", "https://idp.example/jwks"}, "--token-url"},
	} {
		args := append([]string{"login", "--issuer", "https://idp.example", "--client-id", "c"}, tc.args...)
		r := e.run("", args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.says) {
			t.Errorf("%v: exit %d, %s; want 2 saying %q", tc.args, r.code, r.stderr, tc.says)
		}
	}
}
