package cli

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// The audit screens in the real interface on a real terminal (tmux at
// 80×24) against a real `latch serve --dev`, whose first account is the
// superadmin: the dashboard's a opens Activity, where another machine's
// sign-in and a failed login are marked; U opens Users, where / searches
// and x locks bob after a yes.
func TestE2ETUIAudit(t *testing.T) {
	tmux := needTmux(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	e := &e2e{t: t, ctx: ctx, bin: latchBinary(t), home: newHome(t)}
	url := startServeDev(t, e.bin)
	e.signup(url, "alice")
	other := e.machine()
	if r := other.run("wrong password\n", "login", "--server", url, "-u", "alice", "--password-stdin"); r.code == 0 {
		t.Fatal("a wrong password logged in")
	}
	other.must(e2ePassword+"\n", "login", "--server", url, "-u", "alice", "--password-stdin")
	bob := e.machine()
	bob.signup(url, "bob")

	dir := t.TempDir()
	script := filepath.Join(dir, "run")
	err := os.WriteFile(script, []byte(`cd "`+dir+`" && exec env -i PATH="$PATH" TERM="$TERM" HOME="`+e.home+`" LATCH_HOME="`+e.home+`" \
  LATCH_VAULT=file LATCH_VAULT_PASSPHRASE="`+"e2e passphrase"+`" LATCH_VAULT_SCRYPT_WORK_FACTOR=10 LATCH_BROWSER=none \
  sh -c '"$0"; echo "latch exited $?"; exec sleep 600' "`+e.bin+`"`), 0o700)
	if err != nil {
		t.Fatal(err)
	}
	p := &tmuxPane{t: t, tmux: tmux, sock: filepath.Join(dir, "tmux.sock")}
	p.cmd("-f", "/dev/null", "new-session", "-d", "-s", "demo", "-x", "80", "-y", "24", "sh "+script)
	t.Cleanup(func() { exec.Command(tmux, "-S", p.sock, "kill-server").Run() })
	p.waitFor(10*time.Second, "alice")
	p.keys("Enter")
	p.waitFor(10*time.Second, "alice@example.com")

	p.keys("a")
	p.waitFor(10*time.Second, "Activity of alice", "! ", "login.failed (bad_credentials)", "signup")
	p.shot("activity")
	p.keys("Escape")
	p.waitFor(5*time.Second, "alice@example.com")
	p.keys("U")
	p.waitFor(10*time.Second, "Users on "+url, "bob@example.com", "superadmin")
	p.keys("/")
	p.text("bob")
	p.keys("Enter")
	p.waitFor(10*time.Second, "search: bob", "1 account")
	p.keys("x")
	p.waitFor(5*time.Second, "Lock bob?")
	p.keys("y")
	p.waitFor(10*time.Second, "✓ bob is locked.", "locked")
	p.shot("users")
	p.keys("q")
	p.waitFor(5*time.Second, "latch exited 0")

	if r := bob.run(e2ePassword+"\n", "login", "--password-stdin"); r.code == 0 {
		t.Fatalf("bob logged in while locked:\n%s", r.stdout)
	}
}
