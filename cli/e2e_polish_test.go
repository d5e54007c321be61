package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer is a process's output, read while it is still written.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitOutput waits, for at most d, until out holds want.
func waitOutput(t *testing.T, out *lockedBuffer, d time.Duration, want string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("after %s the output lacks %q:\n%s", d, want, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Ctrl+C (SIGINT) while a login waits ends it with the shell's 130, and
// SIGTERM with 143, saving nothing.
func TestE2ESignalDuringLogin(t *testing.T) {
	e := newE2E(t, time.Minute)
	for _, c := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		t.Run(c.sig.String(), func(t *testing.T) {
			cmd := e.command("", "login", "--server", e.srv.URL, "--device", "--wait", "1m")
			var stderr lockedBuffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitOutput(t, &stderr, 20*time.Second, "Waiting for approval")
			if err := cmd.Process.Signal(c.sig); err != nil {
				t.Fatal(err)
			}
			cmd.Wait()
			if got := cmd.ProcessState.ExitCode(); got != c.code || !strings.Contains(stderr.String(), "login cancelled; nothing was saved") {
				t.Fatalf("exit %d (want %d)\n%s", got, c.code, stderr.String())
			}
			if r := e.run("", "status"); r.code != exitLogin {
				t.Fatalf("status after a cancelled login: exit %d\n%s", r.code, r.stdout)
			}
		})
	}
}

// Ctrl+C at the password prompt, whose read no context can cancel, ends
// latch at once with 130 and gives the terminal its echo back.
func TestE2ECtrlCAtThePasswordPrompt(t *testing.T) {
	tmux := needTmux(t)
	e := newE2E(t, time.Minute)
	dir := t.TempDir()
	script := filepath.Join(dir, "run")
	err := os.WriteFile(script, []byte(`exec env -i PATH="$PATH" TERM="$TERM" HOME="`+e.home+`" LATCH_HOME="`+e.home+`" \
  LATCH_VAULT=file LATCH_VAULT_PASSPHRASE=pp LATCH_VAULT_SCRYPT_WORK_FACTOR=10 \
  sh -c 'trap : INT; "$0" login --server `+e.srv.URL+` -u alice; echo "latch exited $?"; stty -a | tr " " "\n" | grep -x -e -echo -e echo; echo "stty read"; exec sleep 600' "`+e.bin+`"`), 0o700)
	if err != nil {
		t.Fatal(err)
	}
	p := &tmuxPane{t: t, tmux: tmux, sock: filepath.Join(dir, "tmux.sock")}
	p.cmd("-f", "/dev/null", "new-session", "-d", "-s", "demo", "-x", "80", "-y", "24", "sh "+script)
	t.Cleanup(func() { exec.Command(tmux, "-S", p.sock, "kill-server").Run() })
	p.waitFor(10*time.Second, "Password for alice:")
	p.text("half a pass")
	p.keys("C-c")
	s := p.waitFor(5*time.Second, "latch exited 130", "stty read")
	if !strings.Contains("\n"+s+"\n", "\necho\n") {
		t.Fatalf("the terminal's echo is not back:\n%s", s)
	}
}

// An existing LATCH_HOME that others can read is made private.
func TestE2EHomeMadePrivate(t *testing.T) {
	e := newE2E(t, time.Minute)
	if err := os.Chmod(e.home, 0o755); err != nil {
		t.Fatal(err)
	}
	e.run("", "status")
	fi, err := os.Stat(e.home)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("LATCH_HOME is %v after latch ran, want 0700", fi.Mode().Perm())
	}
}

// latch api takes a full URL of the profile's server, and refuses another
// host before any token leaves.
func TestE2EAPIFullURL(t *testing.T) {
	e := newE2E(t, time.Minute)
	e.signup(e.srv.URL, "ursula")
	if out := e.must("", "api", e.srv.URL+"/auth/me"); !strings.Contains(out, `"username":"ursula"`) {
		t.Fatalf("api URL: %s", out)
	}
	other := strings.Replace(e.srv.URL, "127.0.0.1", "localhost", 1)
	r := e.run("", "api", other+"/auth/me")
	if r.code != exitUsage || r.stdout != "" || !strings.Contains(r.stderr, "is not on the profile's server") {
		t.Fatalf("api to another host: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = e.run("", "--profile", "nope", "token")
	if r.code != exitUsage || !strings.Contains(r.stderr, `no profile named "nope" (the profiles are default)`) {
		t.Fatalf("unknown profile: exit %d\n%s", r.code, r.stderr)
	}
}
