//go:build linux

package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/latch-dev/latch/vault"
)

// noRaceExitSleep spares a helper built with -race the detector's second
// of sleep at exit.
const noRaceExitSleep = "GORACE=atexit_sleep_ms=0"

// nobody is the uid and gid the other-user tests run as.
const nobody = 65534

// asNobody returns a command running the test binary as nobody with the
// helper env set, or skips the test where that cannot be done.
func asNobody(t *testing.T, helper, sock string) *exec.Cmd {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to run a process as another user")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv (util-linux)")
	}
	// go test builds the binary in a directory only we may enter: copy it
	// where nobody can run it.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := shortTempDir(t)
	exe := filepath.Join(dir, "agent.test")
	copyFile(t, self, exe)
	for _, p := range []string{dir, exe} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	uid := "--reuid=" + strconv.Itoa(nobody)
	gid := "--regid=" + strconv.Itoa(nobody)
	cmd := exec.Command(setpriv, uid, gid, "--clear-groups", exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+helper, "LATCH_AGENT_SOCK="+sock, noRaceExitSleep)
	cmd.Dir = "/"
	return cmd
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// The agent answers nobody but its own uid. To test the peer check itself
// rather than the directory's permission, the test (only) opens the socket's
// directories to traversal (0711) and the socket to connect (0666): nobody's
// connect then succeeds, and SO_PEERCRED is all that stands between it and
// the agent.
func TestRefusesAnotherUser(t *testing.T) {
	refused := make(chan int, 4)
	a := startAgent(t, Options{OnRefuse: func(uid int) { refused <- uid }})
	cmd := asNobody(t, "connect", a.sock)
	for path, mode := range map[string]os.FileMode{a.base: 0o711, filepath.Dir(a.sock): 0o711, a.sock: 0o666} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	c := dial(t, a.sock, "s1")
	if err := c.Put(context.Background(), "at/p", []byte("the-token"), time.Hour); err != nil {
		t.Fatal(err)
	}

	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper as nobody: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "connected\n") {
		t.Fatalf("nobody could not connect, so the peer check was not reached:\n%s", out)
	}
	if !strings.Contains(string(out), "no answer:") || strings.Contains(string(out), "answered") {
		t.Fatalf("the agent answered another user:\n%s", out)
	}
	select {
	case uid := <-refused:
		if uid != nobody {
			t.Errorf("refused uid %d, want %d", uid, nobody)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the agent recorded no refusal")
	}
	if got, err := c.Get(context.Background(), "at/p"); err != nil || string(got) != "the-token" {
		t.Fatalf("own client after the refusal: %q, %v", got, err)
	}
}

// The client's side of the same check: a socket on which another user
// listens never receives a secret.
func TestDialRefusesAgentOfAnotherUser(t *testing.T) {
	base := shortTempDir(t)
	sock := filepath.Join(base, "run", "agent.sock")
	cmd := asNobody(t, "agent", sock)
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	mkdir(t, filepath.Dir(sock), 0o700)
	if err := os.Chown(filepath.Dir(sock), nobody, nobody); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(unix.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
		}
	})
	waitFor(t, 5*time.Second, "nobody's agent listens", func() bool {
		select {
		case err := <-exited:
			t.Fatalf("nobody's agent exited: %v\n%s", err, stderr.String())
		default:
		}
		// It refuses us, but only once it accepts.
		conn, err := net.Dial("unix", sock)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})

	_, err := Dial(context.Background(), sock, "s1")
	if err == nil || !strings.Contains(err.Error(), "runs as uid 65534, not as you") {
		t.Fatalf("Dial to another user's agent = %v", err)
	}
	if errors.Is(err, vault.ErrNoCache) {
		t.Error("a foreign agent must not pass for a missing one")
	}
}

// Start runs the agent detached (a new session), the agent makes itself not
// dumpable, and Start on a running agent is a no-op.
func TestStartDetachedNotDumpable(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	base := shortTempDir(t)
	sock := filepath.Join(base, "run", "agent.sock")
	out := filepath.Join(base, "dumpable")
	t.Setenv(helperEnv, "agent")
	t.Setenv("LATCH_AGENT_TEST_OUT", out)
	t.Setenv("LATCH_AGENT_TEST_IDLE", "10s")
	k, v, _ := strings.Cut(noRaceExitSleep, "=")
	t.Setenv(k, v)
	t.Setenv("LATCH_VAULT_PASSPHRASE", "not for the agent")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if err := Start(ctx, self, []string{"-test.run=^$"}, sock); err != nil {
		t.Fatalf("Start: %v", err)
	}
	c, err := Dial(ctx, sock, "s1")
	if err != nil {
		t.Fatal(err)
	}
	pid := c.pid
	t.Cleanup(func() {
		Stop(context.Background(), sock)
		waitFor(t, 5*time.Second, "the agent process ends", func() bool {
			return unix.Kill(pid, 0) == unix.ESRCH
		})
	})
	if pid == os.Getpid() || pid <= 0 {
		t.Fatalf("agent pid %d", pid)
	}
	// The passphrase in the starting latch's environment does not live on
	// in the agent.
	if env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid)); err != nil || bytes.Contains(env, []byte("not for the agent")) {
		t.Errorf("the agent's environment holds the passphrase (or cannot be read: %v)", err)
	}
	if sid, err := unix.Getsid(pid); err != nil || sid != pid {
		t.Errorf("agent session id = %d, %v; want its own session %d", sid, err, pid)
	}
	var dumpable []byte
	waitFor(t, 5*time.Second, "the agent reports PR_GET_DUMPABLE", func() bool {
		dumpable, _ = os.ReadFile(out)
		return len(dumpable) > 0
	})
	if string(dumpable) != "0" {
		t.Errorf("PR_GET_DUMPABLE in the agent = %s, want 0", dumpable)
	}
	if err := c.Put(ctx, "at/p", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	// A second Start finds it answering: same process, entry still there.
	if err := Start(ctx, "/nonexistent/latch", []string{"agent"}, sock); err != nil {
		t.Fatalf("Start on a running agent: %v", err)
	}
	c2 := dial(t, sock, "s1")
	if c2.pid != pid {
		t.Errorf("agent pid %d after a second Start, want %d", c2.pid, pid)
	}
	if got, err := c2.Get(ctx, "at/p"); err != nil || string(got) != "v" {
		t.Errorf("Get after a second Start = %q, %v", got, err)
	}
	c.Close()
}

func TestStartFailure(t *testing.T) {
	sock := filepath.Join(shortTempDir(t), "run", "agent.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := Start(ctx, "/bin/false", nil, sock)
	if err == nil || !strings.Contains(err.Error(), "exited before answering") {
		t.Fatalf("Start of a program that exits = %v", err)
	}
	if err := Start(ctx, "/nonexistent/latch", []string{"agent"}, sock); err == nil {
		t.Fatal("Start of a missing program succeeded")
	}
}
