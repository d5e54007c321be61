package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/server"
	"github.com/latch-dev/latch/vault"
)

// The end-to-end tests run the real latch binary, built once per test run,
// against a real server on loopback.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func latchBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "latch-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "latch")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/latch-dev/latch")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

const e2ePassword = "correct horse battery staple"

// e2e is one user's machine: a latch home with a file vault, and a server.
type e2e struct {
	t      *testing.T
	ctx    context.Context
	bin    string
	home   string
	srv    *httptest.Server
	client *client.Client
	// realWorkFactor leaves the vault key's scrypt work factor at its
	// default (18) instead of the tests' 10.
	realWorkFactor bool
	// extraEnv is added to every latch's environment.
	extraEnv []string
}

// newHome is a latch home for one test, whose entries in the kernel
// keyring's session cache go when the test ends (they would expire by
// themselves, but a user's key quota is small).
func newHome(t *testing.T) string {
	home := t.TempDir()
	t.Cleanup(func() {
		if c, err := vault.NewKernelCache(vault.CacheScope(home)); err == nil {
			c.Clear(context.Background(), "")
		}
	})
	return home
}

func newE2E(t *testing.T, accessTTL time.Duration) *e2e {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	// The listener comes first: the server's issuer is its own URL, which
	// OpenID discovery insists on.
	hs := httptest.NewUnstartedServer(nil)
	srv, err := server.New(ctx, server.Config{
		DBPath:    server.MemoryDB,
		Issuer:    "http://" + hs.Listener.Addr().String(),
		SecretKey: bytes.Repeat([]byte{9}, 32),
		AccessTTL: accessTTL,
		RateIP:    -1, RateAccount: -1,
	})
	if err != nil {
		hs.Close()
		t.Fatal(err)
	}
	hs.Config.Handler = srv.Handler()
	hs.Start()
	t.Cleanup(func() { hs.Close(); srv.Close() })
	cl, err := client.New(hs.URL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &e2e{t: t, ctx: ctx, bin: latchBinary(t), home: newHome(t), srv: hs, client: cl}
}

// result is one finished latch process.
type result struct {
	stdout, stderr string
	code           int
}

// command prepares latch with args in the e2e's home, with a clean
// environment: nothing of the developer's own latch setup leaks in.
func (e *e2e) command(stdin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(e.ctx, e.bin, args...)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + e.home,
		"LATCH_HOME=" + e.home,
		"LATCH_VAULT=file",
		"LATCH_VAULT_PASSPHRASE=e2e passphrase",
	}
	if !e.realWorkFactor {
		cmd.Env = append(cmd.Env, "LATCH_VAULT_SCRYPT_WORK_FACTOR=10")
	}
	cmd.Env = append(cmd.Env, e.extraEnv...)
	cmd.Stdin = strings.NewReader(stdin)
	return cmd
}

func (e *e2e) run(stdin string, args ...string) result {
	e.t.Helper()
	return runCmd(e.t, e.command(stdin, args...))
}

func runCmd(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%v: %v", cmd.Args, err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// must runs latch and fails the test unless it exits 0.
func (e *e2e) must(stdin string, args ...string) string {
	e.t.Helper()
	r := e.run(stdin, args...)
	if r.code != 0 {
		e.t.Fatalf("latch %v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func (e *e2e) signup(serverURL, user string) {
	e.t.Helper()
	e.must(e2ePassword+"\n", "signup", "--server", serverURL, "-u", user, "--email", user+"@example.com", "--password-stdin")
}

func (e *e2e) token() string {
	e.t.Helper()
	return strings.TrimSpace(e.must("", "token"))
}

// status is `latch status --json` of the current profile.
func (e *e2e) status() profileJSON {
	e.t.Helper()
	r := e.run("", "status", "--json")
	var s statusJSON
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || len(s.Profiles) != 1 {
		e.t.Fatalf("status --json (exit %d): %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	return s.Profiles[0]
}

// waitRotationDue waits until latch will refresh instead of handing out the
// saved access token: until the status's next rotation time has passed.
func (e *e2e) waitRotationDue() {
	e.t.Helper()
	st := e.status()
	if st.NextRotationAt == nil {
		e.t.Fatalf("no next rotation in status: %+v", st)
	}
	d := time.Until(*st.NextRotationAt) + 50*time.Millisecond
	if d > 30*time.Second {
		e.t.Fatalf("next rotation in %s: too far for a test", d)
	}
	select {
	case <-time.After(d):
	case <-e.ctx.Done():
		e.t.Fatal(e.ctx.Err())
	}
}

// vaultBytes is the encrypted vault file, byte for byte: age re-encrypts
// with a fresh salt on every write, so any write changes it.
func (e *e2e) vaultBytes() []byte {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.home, "secrets.age"))
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// checkToken asks the server whose token tok is.
func (e *e2e) checkToken(tok, user string) {
	e.t.Helper()
	me, err := e.client.Me(e.ctx, tok)
	if err != nil {
		e.t.Fatalf("the server refuses the token: %v", err)
	}
	if me.Username != user {
		e.t.Fatalf("token of %q, want %q", me.Username, user)
	}
}

// refreshes reads latch_refreshes_total{result} from the server's metrics.
func (e *e2e) refreshes(result string) int {
	e.t.Helper()
	res, err := e.srv.Client().Get(e.srv.URL + "/metrics")
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
				e.t.Fatal(err)
			}
			return n
		}
	}
	e.t.Fatalf("no %s in /metrics", prefix)
	return 0
}

// proxy stands between latch and the server on loopback. Its mode decides
// how it answers; by default it forwards.
type proxy struct {
	upstream string
	srv      *httptest.Server

	mu   sync.Mutex
	mode string // "", "hold", "html502", "truncated", "huge", "slow", "hangup"
	// held receives once per refresh response held back in "hold" mode,
	// after the server has rotated.
	held chan struct{}
}

func newProxy(t *testing.T, upstream string) *proxy {
	p := &proxy{upstream: upstream, held: make(chan struct{}, 1)}
	p.srv = httptest.NewServer(p)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *proxy) setMode(m string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	mode := p.mode
	p.mu.Unlock()
	refresh := r.URL.Path == "/auth/refresh"
	if refresh {
		switch mode {
		case "html502":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprint(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
			return
		case "truncated":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "200")
			fmt.Fprint(w, `{"access_token":"eyJ`)
			return // the server closes a response shorter than its Content-Length
		case "huge":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"access_token":"`)
			chunk := bytes.Repeat([]byte("A"), 64<<10)
			for range 80 { // 5 MiB
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
			fmt.Fprint(w, `"}`)
			return
		case "slow":
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
			return
		case "hangup":
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
				}
			}
			return
		}
	}
	res, body, err := p.forward(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if refresh && mode == "hold" && res.StatusCode == http.StatusOK {
		// The server has rotated; the client never hears of it.
		p.held <- struct{}{}
		select {
		case <-r.Context().Done(): // the client died
		case <-time.After(30 * time.Second):
		}
		return
	}
	for k, v := range res.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(res.StatusCode)
	w.Write(body)
}

func (p *proxy) forward(r *http.Request) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.upstream+r.URL.RequestURI(), r.Body)
	if err != nil {
		return nil, nil, err
	}
	req.Header = r.Header.Clone()
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(res.Body); err != nil {
		return nil, nil, err
	}
	return res, buf.Bytes(), nil
}
