package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/latch-dev/latch/internal/pgtest"
)

// Several `latch serve` processes of the built binary on one PostgreSQL
// database, as a deployment behind a load balancer runs them. The helpers
// here start them; the tests are in e2e_instances_test.go.

// deployment is the instances of one test, their shared database, key and
// issuer, and a front (a round-robin reverse proxy, the load balancer)
// whose URL is the issuer every instance signs and checks tokens with.
type deployment struct {
	t      *testing.T
	ctx    context.Context
	bin    string
	db     string // the database URL (no password)
	key    string // the shared --secret-key-file
	front  *httptest.Server
	hc     *http.Client
	mu     sync.Mutex // guards inst, which the front reads
	inst   []*instance
	args   []string // serve flags of every instance
	env    []string // added to every instance's environment
	checks int      // --check-db runs made
}

// instance is one running `latch serve`.
type instance struct {
	url string
	log *syncBuffer // everything it wrote to stderr
}

// syncBuffer is a bytes.Buffer written by one goroutine, read by the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newDeployment prepares a deployment on db (a fresh pgtest database when
// empty) whose instances run `latch serve` with args; none is started yet.
func newDeployment(t *testing.T, db string, args ...string) *deployment {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	if db == "" {
		db = pgtest.Database(t)
	}
	d := &deployment{t: t, ctx: ctx, bin: latchBinary(t), db: db, args: args}
	d.key = filepath.Join(t.TempDir(), "secret.key")
	k := make([]byte, 32)
	rand.Read(k)
	if err := os.WriteFile(d.key, []byte(hex.EncodeToString(k)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	d.hc = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	// The front round-robins over the instances started so far.
	var next atomic.Uint64
	d.front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		insts := d.inst
		d.mu.Unlock()
		if len(insts) == 0 {
			http.Error(w, "no instance", http.StatusBadGateway)
			return
		}
		u, _ := url.Parse(insts[next.Add(1)%uint64(len(insts))].url)
		httputil.NewSingleHostReverseProxy(u).ServeHTTP(w, r)
	}))
	t.Cleanup(d.front.Close)
	return d
}

// command is latch with args and the deployment's environment.
func (d *deployment) command(args ...string) *exec.Cmd {
	cmd := exec.CommandContext(d.ctx, d.bin, args...)
	home := d.t.TempDir()
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LATCH_HOME=" + home}, d.env...)
	return cmd
}

func (d *deployment) serveArgs(extra ...string) []string {
	a := []string{"serve", "--secret-key-file", d.key, "--issuer", d.front.URL}
	if d.db != "" {
		a = append(a, "--db", d.db)
	}
	return append(append(a, d.args...), extra...)
}

// checkDB runs `latch serve --check-db`, as a deploy pipeline would before
// starting the instances, and returns its stderr.
func (d *deployment) checkDB() string {
	d.t.Helper()
	d.checks++
	r := runCmd(d.t, d.command(d.serveArgs("--check-db")...))
	if r.code != 0 || !strings.Contains(r.stderr, "(postgres): schema version") {
		d.t.Fatalf("latch serve --check-db: exit %d\n%s", r.code, r.stderr)
	}
	return r.stderr
}

// start starts n instances at once and waits until each serves /healthz
// on PostgreSQL with its schema up to date.
func (d *deployment) start(n int) {
	d.t.Helper()
	type started struct {
		in  *instance
		err error
	}
	ch := make(chan started, n)
	for range n {
		go func() {
			in, err := d.startOne()
			ch <- started{in, err}
		}()
	}
	var errs []string
	for range n {
		s := <-ch
		if s.err != nil {
			errs = append(errs, s.err.Error())
			continue
		}
		d.mu.Lock()
		d.inst = append(d.inst, s.in)
		d.mu.Unlock()
	}
	if len(errs) > 0 {
		d.t.Fatalf("%d of %d instances started together failed:\n%s", len(errs), n, strings.Join(errs, "\n"))
	}
	for i, in := range d.inst {
		h := d.health(in)
		if h.Status != "ok" || h.Database.Dialect != "postgres" || h.Database.Latest == 0 ||
			h.Database.SchemaVersion != h.Database.Latest {
			d.t.Fatalf("instance %d: /healthz %+v, want ok on postgres with the schema up to date", i+1, h)
		}
	}
}

// startOne starts one instance: the process ends with the test.
func (d *deployment) startOne() (*instance, error) {
	cmd := d.command(d.serveArgs("--addr", "127.0.0.1:0", "--log-format", "json")...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	in := &instance{log: &syncBuffer{}}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); pw.Close(); close(exited) }()
	d.t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 1<<20)
		found := false
		for sc.Scan() {
			in.log.Write(append(sc.Bytes(), '\n'))
			var line struct{ Msg, URL string }
			if !found && json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				found = true
				urls <- line.URL
			}
		}
		io.Copy(io.Discard, pr)
		close(urls)
	}()
	select {
	case u, ok := <-urls:
		if !ok {
			<-exited
			return nil, fmt.Errorf("latch serve exited before listening (%v):\n%s", cmd.ProcessState, in.log)
		}
		in.url = u
		return in, nil
	case <-time.After(60 * time.Second):
		return nil, fmt.Errorf("latch serve did not listen within 60s:\n%s", in.log)
	}
}

type healthJSON struct {
	Status   string `json:"status"`
	Database struct {
		Dialect       string `json:"dialect"`
		SchemaVersion int    `json:"schema_version"`
		Latest        int    `json:"latest"`
	} `json:"database"`
}

func (d *deployment) health(in *instance) healthJSON {
	d.t.Helper()
	var h healthJSON
	code, body := d.do(in, "GET", "/healthz", nil, "")
	if code != http.StatusOK || json.Unmarshal(body, &h) != nil {
		d.t.Fatalf("%s/healthz: %d %s", in.url, code, body)
	}
	return h
}

// answer is one HTTP answer, for goroutines that may not fail the test.
type answer struct {
	code       int
	body       []byte
	retryAfter string
	err        error
}

// call sends a JSON request to an instance; bearer, when set, is the
// access token.
func (d *deployment) call(in *instance, method, path string, body any, bearer string) answer {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{err: err}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(d.ctx, method, in.url+path, rd)
	if err != nil {
		return answer{err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := d.hc.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return answer{code: res.StatusCode, body: b, retryAfter: res.Header.Get("Retry-After"), err: err}
}

// do is call that fails the test on a transport error.
func (d *deployment) do(in *instance, method, path string, body any, bearer string) (int, []byte) {
	d.t.Helper()
	a := d.call(in, method, path, body, bearer)
	if a.err != nil {
		d.t.Fatalf("%s %s%s: %v", method, in.url, path, a.err)
	}
	return a.code, a.body
}

// tokens is the answer of login and refresh.
type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// problemType is the type of a problem answer ("" if it is none).
func problemType(body []byte) string {
	var p struct{ Type string }
	json.Unmarshal(body, &p)
	return p.Type
}

func (d *deployment) register(in *instance, user string) {
	d.t.Helper()
	code, body := d.do(in, "POST", "/auth/register",
		map[string]string{"username": user, "email": user + "@example.com", "password": e2ePassword}, "")
	if code != http.StatusCreated {
		d.t.Fatalf("register %s at %s: %d %s", user, in.url, code, body)
	}
}

func (d *deployment) login(in *instance, user string) tokens {
	d.t.Helper()
	return d.tokens(in, "/auth/login", map[string]string{"identifier": user, "password": e2ePassword})
}

func (d *deployment) refresh(in *instance, rt string) tokens {
	d.t.Helper()
	return d.tokens(in, "/auth/refresh", map[string]string{"refresh_token": rt})
}

func (d *deployment) tokens(in *instance, path string, body any) tokens {
	d.t.Helper()
	code, b := d.do(in, "POST", path, body, "")
	var tk tokens
	if code != http.StatusOK || json.Unmarshal(b, &tk) != nil || tk.AccessToken == "" || tk.RefreshToken == "" {
		d.t.Fatalf("POST %s%s: %d %s", in.url, path, code, b)
	}
	return tk
}

// metric sums one counter line of /metrics over every instance.
func (d *deployment) metric(line string) int {
	d.t.Helper()
	total := 0
	for _, in := range d.inst {
		code, body := d.do(in, "GET", "/metrics", nil, "")
		if code != http.StatusOK {
			d.t.Fatalf("%s/metrics: %d", in.url, code)
		}
		for l := range strings.Lines(string(body)) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), line+" "); ok {
				var n int
				fmt.Sscan(v, &n)
				total += n
			}
		}
	}
	return total
}

// sqlDB opens the deployment's database for the test's own checks.
func (d *deployment) sqlDB() *sql.DB {
	d.t.Helper()
	db, err := sql.Open("pgx", d.db)
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { db.Close() })
	return db
}

// sessionOf is the session a refresh token belongs to, its number of
// refresh tokens, and why it ended ("" while open), read in the database.
func (d *deployment) sessionOf(db *sql.DB, rt string) (tokens int, revoked string) {
	d.t.Helper()
	h := sha256.Sum256([]byte(rt))
	var reason sql.NullString
	err := db.QueryRowContext(d.ctx, `
		SELECT (SELECT count(*) FROM refresh_tokens a WHERE a.session_id = s.id), s.revoked_reason
		FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.hash = $1`, h[:]).Scan(&tokens, &reason)
	if err != nil {
		d.t.Fatalf("session of a refresh token: %v", err)
	}
	return tokens, reason.String
}
