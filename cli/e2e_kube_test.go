package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// needKubectl returns the path of the real kubectl, or skips the test
// (LATCH_REQUIRE_KUBECTL=1, as in CI, makes a missing kubectl a failure).
func needKubectl(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("kubectl")
	if err != nil {
		if os.Getenv("LATCH_REQUIRE_KUBECTL") == "1" {
			t.Fatal("LATCH_REQUIRE_KUBECTL=1 but kubectl is not installed")
		}
		t.Skip("kubectl is not installed (apt-get install kubectl); .ci/run installs it and sets LATCH_REQUIRE_KUBECTL=1")
	}
	return path
}

// throwawayTLS makes a CA (written to dir/ca.pem) and a certificate it
// signed for 127.0.0.1: kubectl runs exec plugins only for https servers.
func throwawayTLS(t *testing.T, dir string) (caFile string, cert tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "latch test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return caFile, tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}
}

// kubeAPI is a tiny Kubernetes-like API server on 127.0.0.1 that serves
// GET /api and /version to a bearer token latch serve accepts, and nothing
// to anyone else.
type kubeAPI struct {
	srv    *httptest.Server
	caFile string

	mu     sync.Mutex
	tokens []string // accepted, in order
}

func newKubeAPI(t *testing.T, e *e2e) *kubeAPI {
	t.Helper()
	k := &kubeAPI{}
	var cert tls.Certificate
	k.caFile, cert = throwawayTLS(t, t.TempDir())
	k.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if ok {
			_, err := e.client.Me(r.Context(), tok) // latch serve's /auth/me decides
			ok = err == nil
		}
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}`)
			return
		}
		k.mu.Lock()
		k.tokens = append(k.tokens, tok)
		k.mu.Unlock()
		switch r.URL.Path {
		case "/api":
			fmt.Fprintf(w, `{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":%q}]}`, r.Host)
		case "/version":
			fmt.Fprint(w, `{"major":"1","minor":"32","gitVersion":"v1.32.0-latch-test"}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`)
		}
	}))
	k.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	k.srv.StartTLS()
	t.Cleanup(k.srv.Close)
	return k
}

// seen is the tokens the API accepted, in order.
func (k *kubeAPI) seen() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.tokens...)
}

// distinct is the set of tokens.
func distinct(tokens []string) map[string]bool {
	d := map[string]bool{}
	for _, tok := range tokens {
		d[tok] = true
	}
	return d
}

// kubectl runs the real kubectl with the e2e's environment (so its exec
// plugin, latch, finds the e2e's home and vault).
func (e *e2e) kubectl(kubectl, kubeconfig string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(e.ctx, kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Env = e.command("").Env
	return cmd
}

// TestKubectl: the real kubectl, set up by latch kube setup, reads a Kubernetes
// API on 127.0.0.1 with latch's token; after the token expires the next
// kubectl still works on one rotation, and so do 20 kubectl at once on an
// expired token; a session that is over fails with advice to log in.
func TestKubectl(t *testing.T) {
	kubectl := needKubectl(t)
	// Tokens of 8 s (the skew is then 0.8 s): room for 20 kubectl on a
	// loaded machine to all find the one rotated token still good.
	e := newE2E(t, 8*time.Second)
	e.signup(e.srv.URL, "kate")
	api := newKubeAPI(t, e)
	kc := filepath.Join(t.TempDir(), "kubeconfig")

	mustKubectl := func(args ...string) string {
		t.Helper()
		r := runCmd(t, e.kubectl(kubectl, kc, args...))
		if r.code != 0 {
			t.Fatalf("kubectl %v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
		}
		return r.stdout
	}
	mustKubectl("config", "set-cluster", "test", "--server", api.srv.URL, "--certificate-authority", api.caFile)
	out := e.must("", "kube", "setup", "--kubeconfig", kc)
	if !strings.Contains(out, `user "latch-default"`) || !strings.Contains(out, "kubectl config set-context") {
		t.Fatalf("kube setup said:\n%s", out)
	}
	mustKubectl("config", "set-context", "test", "--cluster", "test", "--user", "latch-default")
	mustKubectl("config", "use-context", "test")
	if st, err := os.Stat(kc); err != nil {
		t.Fatal(err)
	} else if st.Mode().Perm() != 0o600 {
		t.Fatalf("kubeconfig mode %v, want 0600", st.Mode())
	}

	// The API takes only a token latch serve accepts.
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(api.caFile)
	pool.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequestWithContext(e.ctx, http.MethodGet, api.srv.URL+"/api", nil)
	req.Header.Set("Authorization", "Bearer not-a-token")
	if res, err := hc.Do(req); err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a made-up token: %v %v; want 401", res, err)
	} else {
		res.Body.Close()
	}

	getAPI := func() {
		t.Helper()
		var v struct{ Kind string }
		if out := mustKubectl("get", "--raw", "/api"); json.Unmarshal([]byte(out), &v) != nil || v.Kind != "APIVersions" {
			t.Fatalf("kubectl get --raw /api printed %q", out)
		}
	}

	// A token good for 7 s more (6.2 s before it is due), so that the
	// first kubectl runs on it.
	e.must("", "token", "--min-valid", "7s")
	r0 := e.refreshes("rotated")
	getAPI()
	if n := e.refreshes("rotated"); n != r0 {
		t.Fatalf("the first kubectl rotated (%d → %d), want no rotation", r0, n)
	}

	seenBefore := len(api.seen())
	e.waitRotationDue()
	getAPI()
	if n := e.refreshes("rotated"); n != r0+1 {
		t.Fatalf("kubectl after expiry: %d rotations, want 1", n-r0)
	}
	// (kubectl may ask for /version too: count tokens, not requests.)
	first := api.seen()
	if d := distinct(first[:seenBefore]); len(d) != 1 {
		t.Fatalf("the first kubectl sent %d different tokens, want 1", len(d))
	}
	if d := distinct(first[seenBefore:]); len(d) != 1 || d[first[0]] {
		t.Fatalf("kubectl after expiry sent %d different tokens, the expired one among them %v; want 1 new", len(d), d[first[0]])
	}

	// 20 kubectl at once on an expired token: one rotation between them.
	// kubectl starts slowly next to latch, so each runs latch through a
	// barrier that waits (a bounded while) for all 20: the latch processes
	// then truly race for the rotation.
	const n = 20
	barrier := t.TempDir()
	wrapper := filepath.Join(t.TempDir(), "latch-barrier")
	script := fmt.Sprintf(`#!/bin/sh
: >%[1]s/$$
i=0
while [ "$(ls %[1]s | wc -l)" -lt %[2]d ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done
exec %[3]s credential kubernetes -p default
`, shellQuote(barrier), n, shellQuote(e.bin))
	if err := os.WriteFile(wrapper, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	// (set-credentials drops the args: the wrapper gives them.)
	mustKubectl("config", "set-credentials", "latch-default", "--exec-command", wrapper)
	e.waitRotationDue()
	r1 := e.refreshes("rotated")
	var wg sync.WaitGroup
	results := make([]result, n)
	for i := range n {
		wg.Go(func() { results[i] = runCmd(t, e.kubectl(kubectl, kc, "get", "--raw", "/api")) })
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 || !strings.Contains(r.stdout, "APIVersions") {
			t.Fatalf("kubectl %d of %d: exit %d\nstdout: %s\nstderr: %s", i+1, n, r.code, r.stdout, r.stderr)
		}
	}
	if got := e.refreshes("rotated") - r1; got != 1 {
		t.Fatalf("20 kubectl at once: %d rotations, want exactly 1", got)
	}
	if g := e.refreshes("grace") + e.refreshes("reused"); g != 0 {
		t.Fatalf("the server saw %d repeated refresh presentations, want 0", g)
	}
	if d := distinct(api.seen()[len(first):]); len(d) != 1 {
		t.Fatalf("20 kubectl sent %d different tokens, want 1", len(d))
	}

	// Over: kubectl fails, and latch says to log in, in a terminal.
	e.must("", "logout")
	r := runCmd(t, e.kubectl(kubectl, kc, "get", "--raw", "/api"))
	if r.code == 0 || !strings.Contains(r.stderr, "latch login --profile default") {
		t.Fatalf("kubectl after logout: exit %d\nstderr: %s", r.code, r.stderr)
	}
}

// TestCredentialKubernetes: the ExecCredential's version follows
// KUBERNETES_EXEC_INFO, its expiry is the token's, and a session that is
// over exits 4 naming latch login without printing a credential.
func TestCredentialKubernetes(t *testing.T) {
	e := newE2E(t, time.Hour)
	e.signup(e.srv.URL, "kim")
	for _, tc := range []struct {
		name, info, wantVersion, wantErr string
		code                             int
	}{
		{"no exec info", "", "client.authentication.k8s.io/v1", "", 0},
		{"v1", `{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}`,
			"client.authentication.k8s.io/v1", "", 0},
		{"v1beta1", `{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{"interactive":false}}`,
			"client.authentication.k8s.io/v1beta1", "", 0},
		{"unknown version", `{"apiVersion":"client.authentication.k8s.io/v2"}`, "", "latch writes", 1},
		{"not JSON", `{`, "", "KUBERNETES_EXEC_INFO", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := e.command("", "credential", "kubernetes")
			cmd.Env = append(cmd.Env, "KUBERNETES_EXEC_INFO="+tc.info)
			r := runCmd(t, cmd)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.wantErr) {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tc.code, r.stdout, r.stderr)
			}
			if tc.code != 0 {
				if r.stdout != "" {
					t.Fatalf("printed %q on failure", r.stdout)
				}
				return
			}
			var ec struct {
				APIVersion, Kind string
				Status           struct{ Token, ExpirationTimestamp string }
			}
			if err := json.Unmarshal([]byte(r.stdout), &ec); err != nil {
				t.Fatalf("%v: %s", err, r.stdout)
			}
			exp, err := time.Parse(time.RFC3339, ec.Status.ExpirationTimestamp)
			if ec.APIVersion != tc.wantVersion || ec.Kind != "ExecCredential" || err != nil ||
				time.Until(exp) < 50*time.Minute || time.Until(exp) > time.Hour {
				t.Fatalf("ExecCredential: apiVersion %q, kind %q, expirationTimestamp %q (%v)",
					ec.APIVersion, ec.Kind, ec.Status.ExpirationTimestamp, err)
			}
			e.checkToken(ec.Status.Token, "kim")
		})
	}
	e.must("", "logout")
	r := e.run("", "credential", "kubernetes")
	if r.code != exitLogin || r.stdout != "" || !strings.Contains(r.stderr, "latch login --profile default") {
		t.Fatalf("after logout: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}

// TestKubeSetupFile: latch kube setup writes through a link to the real
// file (the link stays), at mode 0600, keeps what was there, and refuses a
// file it cannot read as a kubeconfig without touching it.
func TestKubeSetupFile(t *testing.T) {
	e := newE2E(t, time.Hour)
	e.signup(e.srv.URL, "kai")
	dir := t.TempDir()
	real := filepath.Join(dir, "real-config")
	if err := os.WriteFile(real, []byte(kubeconfigWithOthers), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "config")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	cmd := e.command("", "kube", "setup", "--user", "kai")
	cmd.Env = append(cmd.Env, "KUBECONFIG="+link+string(filepath.ListSeparator)+filepath.Join(dir, "other"))
	if r := runCmd(t, cmd); r.code != 0 || !strings.Contains(r.stdout, `Added user "kai"`) ||
		!strings.Contains(r.stdout, "--current --user kai") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(real); err != nil {
		t.Fatal(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode())
	}
	b, _ := os.ReadFile(real)
	for _, keep := range []string{"# my clusters", "admin-token", "current-context: prod", "- name: kai", "command: " + e.bin} {
		if !strings.Contains(string(b), keep) {
			t.Fatalf("%q is not in the kubeconfig:\n%s", keep, b)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Fatalf("left behind in the directory: %v", entries)
	}

	broken := filepath.Join(dir, "broken")
	os.WriteFile(broken, []byte("users: 3\n"), 0o644)
	if r := e.run("", "kube", "setup", "--kubeconfig", broken); r.code != 1 || !strings.Contains(r.stderr, "--kubeconfig") {
		t.Fatalf("broken kubeconfig: exit %d\nstderr: %s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(broken); string(b) != "users: 3\n" {
		t.Fatalf("a kubeconfig latch could not read was changed: %q", b)
	}
	if r := e.run("", "kube", "setup", "--profile", "nope", "--kubeconfig", broken); r.code != exitUsage {
		t.Fatalf("unknown profile: exit %d\nstderr: %s", r.code, r.stderr)
	}
}
