package cli

import (
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Real git against a git server on 127.0.0.1 that takes only tokens the
// latch server accepts, with latch as git's credential helper.

// needGit skips the test when git is missing, unless LATCH_REQUIRE_GIT=1
// (CI), when it fails.
func needGit(t *testing.T) string {
	t.Helper()
	git, err := exec.LookPath("git")
	if err == nil {
		return git
	}
	if os.Getenv("LATCH_REQUIRE_GIT") == "1" {
		t.Fatal("LATCH_REQUIRE_GIT=1 but git is not installed")
	}
	t.Skip("git is not installed (apt-get install git); .ci/run installs it and sets LATCH_REQUIRE_GIT=1")
	return ""
}

// gitServer serves the bare repositories under root with git http-backend,
// to requests whose Basic password is an access token the latch server
// accepts (GET /auth/me with it as a bearer token), and not on its refuse
// list; any other request gets 401 and a Basic challenge.
type gitServer struct {
	*httptest.Server
	root string

	mu       sync.Mutex
	accepted map[string]bool // tokens that got in
	refuse   map[string]bool // tokens refused as if revoked
}

func newGitServer(t *testing.T, e *e2e, git string) *gitServer {
	t.Helper()
	out, err := exec.Command(git, "--exec-path").Output()
	if err != nil {
		t.Fatal(err)
	}
	backend := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	gs := &gitServer{root: t.TempDir(), accepted: map[string]bool{}, refuse: map[string]bool{}}
	cgiHandler := &cgi.Handler{
		Path: backend,
		Env: []string{"GIT_PROJECT_ROOT=" + gs.root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1",
			"HOME=" + gs.root},
		InheritEnv: []string{"PATH"},
	}
	gs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pass, ok := r.BasicAuth()
		gs.mu.Lock()
		refused := gs.refuse[pass]
		gs.mu.Unlock()
		if !ok || refused || !e.accepts(pass) {
			w.Header().Set("WWW-Authenticate", `Basic realm="latch test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		gs.mu.Lock()
		gs.accepted[pass] = true
		gs.mu.Unlock()
		cgiHandler.ServeHTTP(w, r)
	}))
	t.Cleanup(gs.Close)
	return gs
}

// accepts reports whether the latch server takes tok as a bearer token.
func (e *e2e) accepts(tok string) bool {
	if tok == "" {
		return false
	}
	_, err := e.client.Me(e.ctx, tok)
	return err == nil
}

func (gs *gitServer) refuseToken(tok string) {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	gs.refuse[tok] = true
}

func (gs *gitServer) wasAccepted(tok string) bool {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	return gs.accepted[tok]
}

// gitEnv runs git as the e2e's user: the latch environment (git passes it
// on to latch), a global git config of the test's own, no system config, and
// no prompt, so that a missing credential fails instead of waiting.
type gitEnv struct {
	t   *testing.T
	e   *e2e
	git string
	env []string
}

func newGitEnv(t *testing.T, e *e2e, git string) *gitEnv {
	cfg := filepath.Join(t.TempDir(), "gitconfig")
	e.extraEnv = append(e.extraEnv, "GIT_CONFIG_GLOBAL="+cfg, "GIT_CONFIG_NOSYSTEM=1")
	env := append(e.command("").Env, "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=", "SSH_ASKPASS=",
		"GIT_AUTHOR_NAME=Alice", "GIT_AUTHOR_EMAIL=alice@example.com",
		"GIT_COMMITTER_NAME=Alice", "GIT_COMMITTER_EMAIL=alice@example.com")
	return &gitEnv{t: t, e: e, git: git, env: env}
}

func (g *gitEnv) run(dir string, args ...string) result {
	g.t.Helper()
	cmd := exec.CommandContext(g.e.ctx, g.git, args...)
	cmd.Dir, cmd.Env = dir, g.env
	return runCmd(g.t, cmd)
}

func (g *gitEnv) must(dir string, args ...string) string {
	g.t.Helper()
	r := g.run(dir, args...)
	if r.code != 0 {
		g.t.Fatalf("git %v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// bareRepo makes root/name, a bare repository with one commit holding
// README, that accepts pushes over HTTP.
func (g *gitEnv) bareRepo(root, name string) {
	g.t.Helper()
	bare := filepath.Join(root, name)
	g.must("", "init", "-q", "--bare", "-b", "main", bare)
	g.must(bare, "config", "http.receivepack", "true")
	work := g.t.TempDir()
	g.must(work, "init", "-q", "-b", "main")
	if err := os.WriteFile(filepath.Join(work, "README"), []byte("hello from "+name+"\n"), 0o644); err != nil {
		g.t.Fatal(err)
	}
	g.must(work, "add", "README")
	g.must(work, "commit", "-q", "-m", "first")
	g.must(work, "push", "-q", bare, "main")
}

// credential runs latch credential git OP for the git server's URL.
func credential(e *e2e, url, profile, op, stdin string) result {
	e.t.Helper()
	return e.run(stdin, "credential", "git", "--host", url, "-p", profile, op)
}

func passwordOf(t *testing.T, answer string) string {
	t.Helper()
	for _, line := range strings.Split(answer, "\n") {
		if p, ok := strings.CutPrefix(line, "password="); ok {
			return p
		}
	}
	t.Fatalf("no password in the answer:\n%s", answer)
	return ""
}

func TestE2EGitCredentialHelper(t *testing.T) {
	git := needGit(t)
	e := newE2E(t, time.Hour)
	e.signup(e.srv.URL, "alice")
	profile := e.status().Name
	g := newGitEnv(t, e, git)
	gs := newGitServer(t, e, git)
	g.bareRepo(gs.root, "repo.git")
	repoURL := gs.URL + "/repo.git"

	// Without latch's helper git has no credential, and no prompt.
	if r := g.run("", "clone", "-q", repoURL, t.TempDir()+"/x"); r.code == 0 {
		t.Fatal("git cloned without credentials")
	}

	out := e.must("", "git", "setup", "--host", gs.URL, "-p", profile)
	if !strings.Contains(out, "credential."+gs.URL+".helper = !") {
		t.Fatalf("setup said:\n%s", out)
	}
	helpers := g.must("", "config", "--global", "--get-all", "credential."+gs.URL+".helper")
	if lines := strings.Split(strings.TrimSuffix(helpers, "\n"), "\n"); len(lines) != 2 || lines[0] != "" ||
		!strings.Contains(lines[1], "credential git --host "+gs.URL+" -p "+profile) {
		t.Fatalf("helpers in the global config: %q", helpers)
	}
	// Running setup again leaves one helper, not two.
	e.must("", "git", "setup", "--host", gs.URL, "-p", profile)
	if again := g.must("", "config", "--global", "--get-all", "credential."+gs.URL+".helper"); again != helpers {
		t.Fatalf("setup twice: %q, want %q", again, helpers)
	}

	// Clone, commit, push.
	work := filepath.Join(t.TempDir(), "work")
	g.must("", "clone", "-q", repoURL, work)
	if b, err := os.ReadFile(filepath.Join(work, "README")); err != nil || string(b) != "hello from repo.git\n" {
		t.Fatalf("cloned README: %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(work, "change"), []byte("pushed through latch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	g.must(work, "add", "change")
	g.must(work, "commit", "-q", "-m", "second")
	g.must(work, "push", "-q", "origin", "main")
	head := strings.TrimSpace(g.must(work, "rev-parse", "HEAD"))
	if got := strings.TrimSpace(g.must(filepath.Join(gs.root, "repo.git"), "rev-parse", "main")); got != head {
		t.Fatalf("the server's main is %s, want the pushed %s", got, head)
	}
	tok := passwordOf(t, credential(e, gs.URL, profile, "get", "protocol=http\nhost="+strings.TrimPrefix(gs.URL, "http://")+"\n\n").stdout)
	if !gs.wasAccepted(tok) {
		t.Fatal("git did not use latch's access token")
	}

	// The server refuses the token (a revoked session, as far as git can
	// tell): git fails and tells latch to erase it; the next git command
	// gets a new one, after exactly one rotation.
	rotated := e.refreshes("rotated")
	gs.refuseToken(tok)
	if r := g.run(work, "fetch", "-q"); r.code == 0 {
		t.Fatal("git fetched with a refused token")
	}
	g.must(work, "fetch", "-q")
	if n := e.refreshes("rotated") - rotated; n != 1 {
		t.Fatalf("rotations after git's erase = %d, want 1", n)
	}

	// With latch's helper removed git has no credential again.
	e.must("", "git", "setup", "--host", gs.URL, "--remove")
	r := g.run("", "clone", "-q", repoURL, filepath.Join(t.TempDir(), "again"))
	if r.code == 0 || !strings.Contains(r.stderr, "terminal prompts disabled") {
		t.Fatalf("clone without the helper: exit %d\n%s", r.code, r.stderr)
	}
}

// erase, then get: a new token, one rotation; an erase of a token that is
// no longer current rotates nothing.
func TestE2EGitCredentialEraseRotatesOnce(t *testing.T) {
	needGit(t) // not used here, but the test belongs with the git ones
	e := newE2E(t, time.Hour)
	e.signup(e.srv.URL, "alice")
	profile := e.status().Name
	const url = "https://git.example.com"
	req := "protocol=https\nhost=git.example.com\n\n"
	first := passwordOf(t, credential(e, url, profile, "get", req).stdout)
	if again := passwordOf(t, credential(e, url, profile, "get", req).stdout); again != first {
		t.Fatal("get rotated a valid token")
	}
	rotated := e.refreshes("rotated")
	erase := "protocol=https\nhost=git.example.com\nusername=alice\npassword=" + first + "\n\n"
	if r := credential(e, url, profile, "erase", erase); r.code != 0 || r.stdout != "" {
		t.Fatalf("erase: %+v", r)
	}
	second := passwordOf(t, credential(e, url, profile, "get", req).stdout)
	if second == first {
		t.Fatal("get after erase handed out the erased token")
	}
	e.checkToken(second, "alice")
	if n := e.refreshes("rotated") - rotated; n != 1 {
		t.Fatalf("rotations = %d, want 1", n)
	}
	// git erases the same stale token again (another clone that failed
	// with it): nothing rotates, the current token stays.
	if r := credential(e, url, profile, "erase", erase); r.code != 0 {
		t.Fatalf("erase again: %+v", r)
	}
	if third := passwordOf(t, credential(e, url, profile, "get", req).stdout); third != second {
		t.Fatal("an erase of a stale token withdrew the current one")
	}
	if n := e.refreshes("rotated") - rotated; n != 1 {
		t.Fatalf("rotations = %d, want still 1", n)
	}
	if st := e.status(); st.State != "logged_in" {
		t.Fatalf("erase logged out: %+v", st)
	}
}

// git sends the repository's path with credential.useHttpPath (latch git
// setup --path): latch answers for the set-up path and those under it.
func TestE2EGitCredentialUseHTTPPath(t *testing.T) {
	git := needGit(t)
	e := newE2E(t, time.Hour)
	e.signup(e.srv.URL, "alice")
	profile := e.status().Name
	g := newGitEnv(t, e, git)
	gs := newGitServer(t, e, git)
	if err := os.Mkdir(filepath.Join(gs.root, "team"), 0o755); err != nil {
		t.Fatal(err)
	}
	g.bareRepo(gs.root, "team/repo.git")
	g.bareRepo(gs.root, "other.git")

	e.must("", "git", "setup", "--host", gs.URL+"/team", "--path", "-p", profile)
	if v := strings.TrimSpace(g.must("", "config", "--global", "credential."+gs.URL+"/team.useHttpPath")); v != "true" {
		t.Fatalf("useHttpPath = %q", v)
	}
	g.must("", "clone", "-q", gs.URL+"/team/repo.git", filepath.Join(t.TempDir(), "team"))
	if r := g.run("", "clone", "-q", gs.URL+"/other.git", filepath.Join(t.TempDir(), "other")); r.code == 0 {
		t.Fatal("git got latch's token for a repository outside the set-up path")
	}
}
