package cli

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latch-dev/latch/vault"
)

// locked drops the vault passphrase from the e2e's environment: latch can
// then only use what the session cache holds.
func (e *e2e) locked() { e.extraEnv = append(e.extraEnv, "LATCH_VAULT_PASSPHRASE=") }

func (e *e2e) vaultStatus() vaultStatusJSON {
	e.t.Helper()
	r := e.run("", "vault", "status", "--json")
	var s vaultStatusJSON
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		e.t.Fatalf("vault status --json (exit %d): %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	return s
}

// The file vault is unlocked once, by latch vault unlock, and every latch
// after it needs no passphrase; locked, latch says so with exit 5 — fast,
// without calling the server, and not as "log in again".
func TestE2EVaultUnlockOnce(t *testing.T) {
	e := newE2E(t, 2*time.Second)
	e.locked()
	requireKernelCache(t, e.home)

	if s := e.vaultStatus(); s.State != "locked" || s.Format != 0 {
		t.Fatalf("a new home's vault: %+v", s)
	}
	out := e.must("vault pass\n", "vault", "unlock", "--passphrase-stdin", "--for", "1h")
	if !strings.Contains(out, "Vault unlocked") || !strings.Contains(out, "kernel keyring") {
		t.Fatalf("unlock said %q", out)
	}
	e.signup(e.srv.URL, "vicky")
	first := e.token()
	e.checkToken(first, "vicky")
	s := e.vaultStatus()
	if s.State != "unlocked" || s.Format != 2 || !strings.Contains(s.Cache, "kernel keyring") || s.Idle != 3600 || s.Until == nil {
		t.Fatalf("after unlock: %+v", s)
	}

	// Locked with an expired token: nothing may reach the server.
	e.waitRotationDue()
	e.must("", "vault", "lock")
	before := e.refreshes("rotated")
	start := time.Now()
	r := e.run("", "token")
	took := time.Since(start)
	if r.code != exitLocked || r.stdout != "" {
		t.Fatalf("token on a locked vault: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"locked", "latch vault unlock", "LATCH_VAULT_PASSPHRASE", "LATCH_VAULT_IDENTITY"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the locked message does not name %s: %q", want, r.stderr)
		}
	}
	t.Logf("latch token on a locked vault answered in %s", took)
	if e.refreshes("rotated") != before {
		t.Fatal("a locked vault still called the server")
	}
	if r := e.run("", "status"); r.code != exitLocked || !strings.Contains(r.stdout, "locked: latch vault unlock") {
		t.Fatalf("status on a locked vault: exit %d (want 5, not 4)\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := e.run("", "vault", "status"); r.code != exitLocked {
		t.Fatalf("vault status when locked: exit %d", r.code)
	}

	// A login on a locked vault stops before the server creates a session.
	sessions := e.serverSessions("vicky")
	r = e.run(e2ePassword+"\n", "login", "--server", e.srv.URL, "-u", "vicky", "--password-stdin")
	if r.code != exitLocked {
		t.Fatalf("login on a locked vault: exit %d: %s", r.code, r.stderr)
	}
	if got := e.serverSessions("vicky"); got != sessions {
		t.Fatalf("a login on a locked vault left %d sessions at the server, %d before", got, sessions)
	}

	// Unlocked again, the session is there and rotates.
	e.must("vault pass\n", "vault", "unlock", "--passphrase-stdin")
	if tok := e.token(); tok == first {
		t.Fatal("the expired token came back")
	} else {
		e.checkToken(tok, "vicky")
	}
	if r := e.run("wrong\n", "vault", "unlock", "--passphrase-stdin"); r.code != exitError || !strings.Contains(r.stderr, "wrong vault passphrase") {
		t.Fatalf("unlock with a wrong passphrase: exit %d: %s", r.code, r.stderr)
	}

	// A new passphrase opens it; the old one does not.
	e.must("vault pass\nnew pass\n", "vault", "passwd", "--passphrase-stdin")
	e.must("", "vault", "lock")
	if r := e.run("vault pass\n", "vault", "unlock", "--passphrase-stdin"); r.code == 0 {
		t.Fatal("the old passphrase still unlocks")
	}
	e.must("new pass\n", "vault", "unlock", "--passphrase-stdin")
	e.token()
}

// serverSessions counts user's sessions at the server, through a login of
// its own (which adds one, the same for every call).
func (e *e2e) serverSessions(user string) int {
	e.t.Helper()
	tok, err := e.client.Login(e.ctx, user, e2ePassword)
	if err != nil {
		e.t.Fatal(err)
	}
	list, err := e.client.Sessions(e.ctx, tok.AccessToken)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.client.Logout(e.ctx, tok.RefreshToken); err != nil {
		e.t.Fatal(err)
	}
	return len(list) - 1
}

// A vault written by latch before format 2 (the committed fixture, with its
// profile) is read with its passphrase and rewritten as format 2 on the
// first unlock, nothing lost.
func TestE2EVaultMigratesFormat1(t *testing.T) {
	e := newE2E(t, time.Minute)
	e.locked()
	fixture, err := os.ReadFile(filepath.Join("..", "vault", "testdata", "v1", "secrets.age"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(e.home, "secrets.age"), fixture, 0o600)
	cfg := `{"current":"default","profiles":[{"name":"default","server":"` + e.srv.URL + `","username":"old","kind":"account"}],` +
		`"vault":{"backend":"file","reason":"keyring unavailable: test"}}`
	os.WriteFile(filepath.Join(e.home, "config.json"), []byte(cfg), 0o600)

	if s := e.vaultStatus(); s.Format != 1 || s.State != "locked" {
		t.Fatalf("before: %+v", s)
	}
	if r := e.run("", "token"); r.code != exitLocked {
		t.Fatalf("token before unlock: exit %d: %s", r.code, r.stderr)
	}
	e.must("correct horse battery staple\n", "vault", "unlock", "--passphrase-stdin")
	if s := e.vaultStatus(); s.Format != 2 || s.State != "unlocked" {
		t.Fatalf("after: %+v", s)
	}
	if tok := e.token(); tok != "v1-access" {
		t.Fatalf("token after migration = %q", tok)
	}
	if got := e.must("", "mfa", "codes", "--reveal"); !strings.Contains(got, "aaaa-bbbb") {
		t.Fatalf("backup codes after migration: %q", got)
	}
}

// Where the kernel keyring is not used (forced here with LATCH_VAULT_CACHE,
// as Docker's seccomp profile would force it), latch vault unlock starts a
// latch agent that holds the key; latch vault lock stops it.
func TestE2EVaultAgent(t *testing.T) {
	e := newE2E(t, time.Minute)
	e.locked()
	sockDir, err := os.MkdirTemp("", "lagent")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "a", "agent.sock")
	e.extraEnv = append(e.extraEnv, "LATCH_VAULT_CACHE=agent", "LATCH_AGENT_SOCK="+sock)
	t.Cleanup(func() { e.run("", "vault", "lock") })

	if s := e.vaultStatus(); s.Cache != "" {
		t.Fatalf("a cache before any agent runs: %+v", s)
	}
	e.must("vault pass\n", "vault", "unlock", "--passphrase-stdin")
	s := e.vaultStatus()
	if s.State != "unlocked" || !strings.Contains(s.Cache, "latch agent") || !strings.Contains(s.Cache, sock) {
		t.Fatalf("after unlock: %+v", s)
	}
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("agent socket: %v %v", fi, err)
	}
	e.signup(e.srv.URL, "agnes")
	e.checkToken(e.token(), "agnes")

	e.must("", "vault", "lock")
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("the agent's socket is still there after lock: %v", err)
	}
	if r := e.run("", "token"); r.code != exitLocked {
		t.Fatalf("token after lock: exit %d: %s", r.code, r.stderr)
	}
}

// requireKernelCache skips where the kernel refuses keyctl, unless CI says
// it must be there.
func requireKernelCache(t *testing.T, home string) {
	t.Helper()
	if _, err := vault.NewKernelCache(vault.CacheScope(home)); err != nil {
		if os.Getenv("LATCH_REQUIRE_KEYCTL") == "1" {
			t.Fatalf("LATCH_REQUIRE_KEYCTL=1 but: %v", err)
		}
		t.Skipf("no kernel keyring: %v", err)
	}
}

// latch killed at random moments while it rotates and saves — before,
// during and after the vault write — loses no session and leaves no temp
// copy of the vault behind once a later write has run. File vault at the
// default work factor.
func TestE2EKillDuringSave(t *testing.T) {
	const rounds = 30
	e := newE2E(t, time.Second)
	e.realWorkFactor = true
	e.signup(e.srv.URL, "kilroy")
	kills := 0
	for round := range rounds {
		e.waitRotationDue()
		cmd := e.command("", "token")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rand.IntN(25)) * time.Millisecond) // the moment of the kill is the point
		if cmd.Process.Signal(syscall.SIGKILL) == nil {
			kills++
		}
		cmd.Wait()
		if r := e.run("", "token"); r.code != 0 {
			t.Fatalf("round %d: the session did not survive a kill: exit %d: %s", round, r.code, r.stderr)
		}
	}
	e.waitRotationDue()
	e.checkToken(e.token(), "kilroy")
	if tmps, _ := filepath.Glob(filepath.Join(e.home, ".secrets.*.tmp")); len(tmps) > 0 {
		t.Fatalf("temp copies of the vault left after %d kills: %v", kills, tmps)
	}
	if got := e.refreshes("reused"); got != 0 {
		t.Fatalf("reuse detections = %d: a spent refresh token was presented", got)
	}
	t.Logf("%d kills, no session lost", kills)
}

// The interface on a locked vault asks for the passphrase on its own screen
// — nothing is written beneath it — and Ctrl+C leaves at once.
func TestE2EUnlockScreenInTmux(t *testing.T) {
	tmux := needTmux(t)
	e := newE2E(t, time.Minute)
	e.locked()
	e.must("vault pass\n", "vault", "unlock", "--passphrase-stdin")
	e.signup(e.srv.URL, "tilda")
	e.must("", "vault", "lock")

	dir := t.TempDir()
	script := filepath.Join(dir, "run")
	err := os.WriteFile(script, []byte(`exec env -i PATH="$PATH" TERM="$TERM" HOME="`+e.home+`" LATCH_HOME="`+e.home+`" LATCH_VAULT=file \
  sh -c '"$0"; echo "latch exited $?"; exec sleep 600' "`+e.bin+`"`), 0o700)
	if err != nil {
		t.Fatal(err)
	}
	p := &tmuxPane{t: t, tmux: tmux, sock: filepath.Join(dir, "tmux.sock")}
	p.cmd("-f", "/dev/null", "new-session", "-d", "-s", "demo", "-x", "80", "-y", "24", "sh "+script)
	t.Cleanup(func() { exec.Command(tmux, "-S", p.sock, "kill-server").Run() })

	p.waitFor(10*time.Second, "Unlock the vault", "Passphrase", filepath.Join(e.home, "secrets.age"))
	p.text("wrong guess")
	p.keys("Enter")
	p.waitFor(10*time.Second, "Wrong passphrase")
	p.text("vault pass")
	if s := p.waitFor(5*time.Second, "Passphrase"); strings.Contains(s, "vault pass") {
		t.Fatal("the passphrase is on screen")
	}
	p.keys("Enter")
	p.waitFor(10*time.Second, "Vault unlocked", "tilda", "logged in")
	p.keys("C-c")
	p.waitFor(5*time.Second, "latch exited 0")

	// Locked again: Ctrl+C on the unlock screen ends latch at once.
	e.must("", "vault", "lock")
	p.cmd("respawn-pane", "-k", "-t", "demo", "sh "+script)
	p.waitFor(10*time.Second, "Unlock the vault")
	p.text("half typed")
	p.keys("C-c")
	p.waitFor(5*time.Second, "latch exited 0")
}
