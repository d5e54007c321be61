package cli

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// signup → token → wait → token (rotated) → status → logout → token exits 4.
func TestE2ESession(t *testing.T) {
	e := newE2E(t, 2*time.Second)
	e.signup(e.srv.URL, "alice")

	first := e.token()
	e.checkToken(first, "alice")
	if again := e.token(); again != first {
		t.Fatal("a valid access token was refreshed")
	}
	if n := e.refreshes("rotated"); n != 0 {
		t.Fatalf("rotations before expiry = %d", n)
	}

	e.waitRotationDue()
	second := e.token()
	if second == first {
		t.Fatal("the expired access token was handed out again")
	}
	e.checkToken(second, "alice")
	if n := e.refreshes("rotated"); n != 1 {
		t.Fatalf("rotations = %d, want 1", n)
	}

	st := e.status()
	if st.State != "logged_in" || st.Rotations != 1 || st.Username != "alice" || !st.Current {
		t.Fatalf("status = %+v", st)
	}
	text := e.must("", "status")
	for _, want := range []string{"alice", "logged in", "vault: file", "1 so far"} {
		if !strings.Contains(text, want) {
			t.Errorf("status text lacks %q:\n%s", want, text)
		}
	}
	if me := e.must("", "api", "/auth/me"); !strings.Contains(me, `"username":"alice"`) {
		t.Errorf("api /auth/me = %s", me)
	}

	e.must("", "logout")
	if _, err := e.client.Me(e.ctx, second); err == nil {
		t.Error("the access token still works after logout")
	}
	r := e.run("", "token")
	if r.code != exitLogin || r.stdout != "" || !strings.Contains(r.stderr, "not logged in") {
		t.Fatalf("token after logout: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := e.run("", "status"); r.code != exitLogin || !strings.Contains(r.stdout, "logged out") {
		t.Fatalf("status after logout: exit %d\n%s", r.code, r.stdout)
	}
}

// 50 latch processes ask for a token at once while the access token is
// expired, on a file vault at the default scrypt work factor: one rotation at
// the server, one token for all, no failure.
func TestE2EConcurrentTokenProcesses(t *testing.T) {
	const n = 50
	// The new token must stay usable (90 % of its life) until the last of
	// the 50 has asked: 5 s leaves room for a loaded machine.
	e := newE2E(t, 5*time.Second)
	e.realWorkFactor = true
	e.signup(e.srv.URL, "bob")
	old := e.token()
	e.waitRotationDue()

	cmds := make([]*procOut, n)
	for i := range cmds {
		cmds[i] = start(t, e, "token")
	}
	tokens := map[string]int{}
	for i, c := range cmds {
		code := c.wait(t)
		if code != 0 {
			t.Errorf("process %d: exit %d: %s", i, code, c.stderr.String())
			continue
		}
		tokens[strings.TrimSpace(c.stdout.String())]++
	}
	if len(tokens) != 1 {
		t.Fatalf("%d different tokens printed, want 1", len(tokens))
	}
	for tok := range tokens {
		if tok == old {
			t.Fatal("the expired token was printed")
		}
		e.checkToken(tok, "bob")
	}
	if got := e.refreshes("rotated"); got != 1 {
		t.Fatalf("server rotations = %d, want exactly 1", got)
	}
	if got := e.refreshes("grace") + e.refreshes("reused"); got != 0 {
		t.Fatalf("grace or reuse presentations = %d, want 0: processes raced past the lock", got)
	}
}

type procOut struct {
	cmd            interface{ Wait() error }
	stdout, stderr bytes.Buffer
	exit           func() int
}

func start(t *testing.T, e *e2e, args ...string) *procOut {
	t.Helper()
	p := &procOut{}
	cmd := e.command("", args...)
	cmd.Stdout, cmd.Stderr = &p.stdout, &p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd = cmd
	p.exit = func() int { return cmd.ProcessState.ExitCode() }
	return p
}

func (p *procOut) wait(t *testing.T) int {
	t.Helper()
	p.cmd.Wait()
	return p.exit()
}

// A latch killed after the server rotated but before the new tokens were
// saved loses nothing: the next latch presents the old refresh token within
// the server's grace window and gets the same successor. 50 kills, over 5
// users in parallel so the access tokens expire together.
func TestE2ECrashAfterRotation(t *testing.T) {
	const users, rounds = 5, 10
	var mu sync.Mutex
	lost := 0
	var wg sync.WaitGroup
	base := newE2E(t, time.Second)
	for u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := &e2e{t: t, ctx: base.ctx, bin: base.bin, home: newHome(t), srv: base.srv, client: base.client,
				realWorkFactor: true}
			p := newProxy(t, base.srv.URL)
			user := fmt.Sprintf("crash%d", u)
			e.signup(p.srv.URL, user)
			for round := range rounds {
				e.waitRotationDue()
				before := e.vaultBytes()
				p.setMode("hold")
				proc := e.command("", "token")
				if err := proc.Start(); err != nil {
					t.Error(err)
					return
				}
				select {
				case <-p.held:
				case <-e.ctx.Done():
					proc.Process.Kill()
					t.Errorf("%s round %d: the refresh never reached the server", user, round)
					return
				}
				proc.Process.Signal(syscall.SIGKILL)
				proc.Wait()
				p.setMode("")
				if !bytes.Equal(before, e.vaultBytes()) {
					t.Errorf("%s round %d: the vault changed although the process died before saving", user, round)
				}
				r := e.run("", "token")
				if r.code != 0 {
					mu.Lock()
					lost++
					mu.Unlock()
					t.Errorf("%s round %d: session lost: exit %d: %s", user, round, r.code, r.stderr)
					return
				}
				// The session lives on: an authenticated call works (a
				// 1 s token may have expired meanwhile; api refreshes).
				if me := e.run("", "api", "/auth/me"); me.code != 0 || !strings.Contains(me.stdout, user) {
					t.Errorf("%s round %d: the session is gone after recovery: %s %s", user, round, me.stdout, me.stderr)
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("SIGKILL after rotation: %d kills, %d sessions lost", users*rounds, lost)
	if got := base.refreshes("reused"); got != 0 {
		t.Errorf("reuse detections = %d, want 0", got)
	}
}

// Bad answers to a refresh leave the saved tokens exactly as they were and
// say what went wrong; afterwards the session still works.
func TestE2EBadServerAnswers(t *testing.T) {
	e := newE2E(t, time.Second)
	p := newProxy(t, e.srv.URL)
	e.signup(p.srv.URL, "carol")
	e.waitRotationDue()
	before := e.vaultBytes()
	cases := []struct{ mode, want string }{
		{"html502", "502"},
		{"truncated", "cut off"},
		{"huge", "larger than 1024 kib"},
		{"slow", "no complete answer"},
		{"hangup", "cannot reach"},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			p.setMode(c.mode)
			r := e.run("", "token", "--timeout", "1s")
			if r.code != exitError || r.stdout != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
			if !strings.Contains(strings.ToLower(r.stderr), c.want) || !strings.Contains(r.stderr, "unchanged") {
				t.Errorf("stderr = %q, want it to mention %q and that the tokens are unchanged", r.stderr, c.want)
			}
			if !bytes.Equal(before, e.vaultBytes()) {
				t.Fatal("the vault changed")
			}
		})
	}
	p.setMode("")
	if me := e.must("", "api", "/auth/me"); !strings.Contains(me, "carol") {
		t.Fatalf("the session did not survive the bad answers: %s", me)
	}

	// Server gone: connection refused.
	e.waitRotationDue()
	before = e.vaultBytes()
	p.srv.Close()
	r := e.run("", "token", "--timeout", "1s")
	if r.code != exitError || !strings.Contains(r.stderr, "connection refused") {
		t.Fatalf("server down: exit %d, stderr %q", r.code, r.stderr)
	}
	if !bytes.Equal(before, e.vaultBytes()) {
		t.Fatal("the vault changed while the server was down")
	}
}

// Flags and input the commands refuse, without touching anything.
func TestE2EUsageErrors(t *testing.T) {
	e := newE2E(t, time.Minute)
	cases := []struct {
		args  []string
		stdin string
		code  int
		want  string
	}{
		{[]string{"login", "--server", e.srv.URL, "-u", "x"}, "", exitUsage, "--password-stdin"},
		{[]string{"login", "-u", "x", "--password-stdin"}, "pw\n", exitUsage, "--server"},
		{[]string{"login", "--server", e.srv.URL, "-u", "x", "--password-stdin"}, "", exitUsage, "stdin held no password"},
		{[]string{"login", "--password", "x"}, "", exitUsage, "unknown flag"},
		{[]string{"login", "--server", e.srv.URL, "--browser", "--device"}, "", exitUsage, "--browser and --device"},
		{[]string{"login", "--server", e.srv.URL, "--code", "1", "--use-backup-code"}, "", exitUsage, "--code and --use-backup-code"},
		{[]string{"login", "--server", e.srv.URL, "--issuer", e.srv.URL, "--client-id", "x"}, "", exitUsage, "--issuer and --server"},
		{[]string{"login", "--issuer", e.srv.URL}, "", exitUsage, "--client-id"},
		{[]string{"login", "--browser"}, "", exitUsage, "--server URL"},
		{[]string{"login", "--server", e.srv.URL, "--device", "-u", "x"}, "", exitUsage, "password logins"},
		{[]string{"login", "--server", e.srv.URL, "--device", "--wait", "0s"}, "", exitUsage, "--wait"},
		{[]string{"signup", "--server", e.srv.URL, "-u", "dan", "--password-stdin"}, "pw\n", exitUsage, "--email"},
		{[]string{"login", "--server", "http://example.com", "-u", "x", "--password-stdin"}, e2ePassword + "\n", exitUsage, "insecure"},
		{[]string{"login", "--server", "htp:/127.0.0.1", "-u", "x", "--password-stdin"}, e2ePassword + "\n", exitUsage, "--server: "},
		{[]string{"token", "--profile", "nope"}, "", exitUsage, `no profile named "nope"`},
		{[]string{"login", "--server", e.srv.URL, "-u", "nobody", "--password-stdin"}, e2ePassword + "\n", exitError, "wrong username"},
		{[]string{"token", "--vault", "plaintext"}, "", exitUsage, "--vault"},
		{[]string{"api"}, "", exitUsage, "accepts 1 arg"},
		{[]string{"token"}, "", exitLogin, "not logged in"},
		{[]string{"profile", "use", "nope"}, "", exitUsage, "no profile named"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := e.run(c.stdin, c.args...)
			if r.code != c.code || !strings.Contains(r.stderr, c.want) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", r.code, c.code, r.stderr, c.want)
			}
			if strings.Contains(r.stderr, e2ePassword) {
				t.Fatal("the password appears in the output")
			}
		})
	}
}
