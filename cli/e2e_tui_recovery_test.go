package cli

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The recovery walk in the real interface on a real terminal (tmux at
// 80×24) against a real `latch serve --dev`: log in → ctrl+r (forgot
// password) → the reset mail → ctrl+x (the dev Mailbox) → u takes its token
// → the new password twice → logged in with it; then the dashboard's
// verify-your-email notice → v → ctrl+x → u verifies the address.
func TestE2ETUIRecovery(t *testing.T) {
	tmux := needTmux(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	e := &e2e{t: t, ctx: ctx, bin: latchBinary(t), home: newHome(t)}
	url := startServeDev(t, e.bin)
	e.signup(url, "alice")
	e.must("", "logout")

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
	p.waitFor(10*time.Second, "logged out")

	p.keys("l")
	p.waitFor(5*time.Second, "Log in to "+url, "Forgot password? ctrl+r")
	p.keys("C-r")
	p.waitFor(5*time.Second, "Forgot password at "+url, "Account     alice", "Mailbox (ctrl+x)")
	p.keys("Enter")
	p.waitFor(10*time.Second, "If alice has an account, a reset mail is on its way", "Repeat")
	p.keys("C-x")
	p.waitFor(10*time.Second, "Mailbox of the development server", "reset your password")
	p.keys("Enter")
	p.waitFor(5*time.Second, "Subject   latch: reset your password", "latch password reset --token-stdin")
	p.keys("u")
	p.waitFor(5*time.Second, "Token taken from the Mailbox")
	p.text(e2eNewPassword)
	p.keys("Tab")
	p.text(e2eNewPassword)
	p.keys("Enter")
	s := p.waitFor(10*time.Second, "Password reset")
	if strings.Contains(s, e2eNewPassword) {
		t.Fatalf("the new password is on the screen:\n%s", s)
	}

	p.keys("l")
	p.waitFor(5*time.Second, "Log in to "+url)
	p.text(e2ePassword)
	p.keys("Enter")
	p.waitFor(10*time.Second, "Check both")
	p.text(e2eNewPassword)
	p.keys("Enter")
	p.waitFor(10*time.Second, "Logged in as alice", "Email         not verified")

	p.keys("v")
	p.waitFor(5*time.Second, "Verify your email address", "Mailbox (ctrl+x)")
	p.keys("C-x")
	p.waitFor(10*time.Second, "confirm your email address")
	p.keys("u")
	s = p.waitFor(10*time.Second, "Email alice@example.com verified.")
	if strings.Contains(s, "not verified") {
		t.Fatalf("the notice stayed:\n%s", s)
	}
	p.keys("q")
	p.waitFor(5*time.Second, "latch exited 0")
}
