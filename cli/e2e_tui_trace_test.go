package cli

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startServeDev runs the real binary's `latch serve --dev` on a free
// loopback port and returns its URL; the process ends with the test.
func startServeDev(t *testing.T, bin string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "serve", "--dev", "--addr", "127.0.0.1:0")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LATCH_HOME=" + t.TempDir()}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "Listening on "); ok {
				urls <- u
			}
		}
	}()
	select {
	case u := <-urls:
		return u
	case <-time.After(15 * time.Second):
		t.Fatal("latch serve --dev did not say where it listens within 15s")
		return ""
	}
}

// The trace pane in the real interface on a real terminal (tmux at 80×24)
// against a real `latch serve --dev`: ctrl+t shows an OAuth login's steps
// while it waits for the browser and a password login's exchange with the
// server, s saves it to the current directory, and ctrl+t hides it again.
func TestE2ETUITracePane(t *testing.T) {
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
  DISPLAY=:99 sh -c '"$0"; echo "latch exited $?"; exec sleep 600' "`+e.bin+`"`), 0o700)
	if err != nil {
		t.Fatal(err)
	}
	p := &tmuxPane{t: t, tmux: tmux, sock: filepath.Join(dir, "tmux.sock")}
	p.cmd("-f", "/dev/null", "new-session", "-d", "-s", "demo", "-x", "80", "-y", "24", "sh "+script)
	t.Cleanup(func() { exec.Command(tmux, "-S", p.sock, "kill-server").Run() })
	p.waitFor(10*time.Second, "logged out")

	// An OAuth login waiting for the browser.
	p.keys("o")
	p.waitFor(5*time.Second, "Log in with OAuth", url)
	p.keys("Enter")
	p.waitFor(10*time.Second, "Not opening a browser", "/authorize?", "ctrl+t trace")
	p.keys("C-t")
	p.waitFor(5*time.Second, "Trace of the browser login at "+url, "GET /.well-known/openid-configuration → 200",
		"✓ PKCE", "ctrl+t close")
	p.keys("C-t")
	s := p.waitFor(5*time.Second, "Not opening a browser", "/authorize?")
	if strings.Contains(s, "Trace of the") {
		t.Fatalf("ctrl+t left the pane open:\n%s", s)
	}
	p.keys("Escape")
	p.waitFor(5*time.Second, "Log in with OAuth")
	p.keys("Escape")
	p.waitFor(5*time.Second, "logged out")

	// A password login that fails, then one that works.
	p.keys("l")
	p.waitFor(5*time.Second, "Log in to "+url)
	p.text("not the password")
	p.keys("Enter")
	p.waitFor(10*time.Second, "Check both")
	p.keys("C-t")
	p.waitFor(5*time.Second, "Trace of the password login at "+url, "POST /auth/login → 401")
	p.keys("C-t")
	p.waitFor(5*time.Second, "Check both")
	p.text(e2ePassword)
	p.keys("Enter")
	p.waitFor(10*time.Second, "Logged in as alice")
	p.keys("C-t")
	p.waitFor(5*time.Second, "Trace of the password login at "+url, "POST /auth/login → 200", "GET /auth/me → 200")
	p.keys("s")
	p.waitFor(5*time.Second, "Saved the trace to "+dir)
	p.keys("C-t")
	s = p.waitFor(5*time.Second, "alice@example.com")
	if strings.Contains(s, "Trace of the") {
		t.Fatalf("ctrl+t left the pane open:\n%s", s)
	}

	files, _ := filepath.Glob(filepath.Join(dir, "latch-trace-*.txt"))
	if len(files) != 1 {
		t.Fatalf("saved traces in the current directory: %v", files)
	}
	text, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(text), e2ePassword) || !strings.Contains(string(text), "> POST "+url+"/auth/login") {
		t.Fatalf("the saved trace:\n%s", text)
	}
	if st, _ := os.Stat(files[0]); st.Mode().Perm() != 0o600 {
		t.Fatalf("the saved trace is %v", st.Mode())
	}
}
