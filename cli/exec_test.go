//go:build unix

package cli

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestExecStatus: latch exec exits with CMD's status (128 + the signal
// when one ended it), 127/126 when CMD cannot run, 2 for a bad command line.
func TestExecStatus(t *testing.T) {
	e := newE2E(t, time.Hour)
	e.signup(e.srv.URL, "eve")
	for _, tc := range []struct {
		name       string
		args       []string
		code       int
		wantStderr string
	}{
		{"success", []string{"exec", "--", "true"}, 0, ""},
		{"exit 3", []string{"exec", "--", "sh", "-c", "exit 3"}, 3, ""},
		{"exit 255", []string{"exec", "sh", "-c", "exit 255"}, 255, ""},
		// latch has become CMD, so the process dies of the signal itself
		// (exec.ExitError's -1), which a shell reports as 128 + N.
		{"killed by SIGTERM", []string{"exec", "--", "sh", "-c", "kill -TERM $$"}, -1, ""},
		{"killed by SIGKILL", []string{"exec", "--", "sh", "-c", "kill -KILL $$"}, -1, ""},
		{"flags after CMD are CMD's", []string{"exec", "sh", "-c", `[ "$1" = --json ]`, "sh", "--json"}, 0, ""},
		{"not found", []string{"exec", "--", "latch-no-such-command"}, 127, "latch-no-such-command"},
		{"not executable", []string{"exec", "--", "/dev/null"}, 126, "cannot run"},
		{"no command", []string{"exec"}, exitUsage, "latch exec -- CMD"},
		{"no command after --", []string{"exec", "--"}, exitUsage, "latch exec -- CMD"},
		{"bad variable name", []string{"exec", "--env", "1X", "--", "true"}, exitUsage, "--env"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.run("", tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.wantStderr) {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tc.code, r.stdout, r.stderr)
			}
			if tc.code != 0 && tc.code < 126 && tc.wantStderr == "" && r.stderr != "" {
				t.Fatalf("latch spoke for CMD's failure: %s", r.stderr)
			}
		})
	}
}

// TestExecToken: CMD finds a valid token in LATCH_TOKEN (or --env NAME),
// with stdin and stdout its own; CMD is the process latch was started as
// (latch execs it); the token is on no command line; and
// with the vault locked (exit 5) or without a session (exit 4) latch does
// not start CMD.
func TestExecToken(t *testing.T) {
	if _, err := os.Stat("/proc/self/cmdline"); err != nil {
		t.Skip("needs /proc to read command lines")
	}
	e := newE2E(t, time.Hour)
	e.signup(e.srv.URL, "eve")
	dir := t.TempDir()
	for _, tc := range []struct {
		name, envName string
		args          []string
	}{
		{"default variable", "LATCH_TOKEN", []string{"exec", "--"}},
		{"--env", "API_TOKEN", []string{"exec", "--env", "API_TOKEN", "--"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmdlines := filepath.Join(dir, tc.envName+".cmdlines")
			// CMD prints the input it reads, its pid and the token from its
			// environment, and saves its command line.
			script := `cat; echo $$; printf '%s' "$` + tc.envName + `"; tr '\0' ' ' </proc/$$/cmdline >"$1"`
			cmd := e.command("from stdin\n", append(tc.args, "sh", "-c", script, "sh", cmdlines)...)
			cmd.Env = append(cmd.Env, "LATCH_TOKEN=stale-from-outside")
			r := runCmd(t, cmd)
			if r.code != 0 {
				t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
			}
			rest, ok := strings.CutPrefix(r.stdout, "from stdin\n")
			pid, tok, _ := strings.Cut(rest, "\n")
			if !ok || tok == "" {
				t.Fatalf("CMD printed %q", r.stdout)
			}
			if pid != strconv.Itoa(cmd.Process.Pid) {
				t.Fatalf("CMD ran as pid %s, latch as %d: latch did not exec it", pid, cmd.Process.Pid)
			}
			e.checkToken(tok, "eve")
			b, err := os.ReadFile(cmdlines)
			if err != nil || !strings.Contains(string(b), "sh -c") {
				t.Fatalf("command line: %q, %v", b, err)
			}
			if strings.Contains(string(b), tok) {
				t.Fatal("the token is on a command line")
			}
		})
	}

	// A locked vault (no passphrase here, no terminal to ask on): exit 5,
	// and CMD never starts.
	marker := filepath.Join(dir, "started")
	e.must("", "vault", "lock")
	locked := e.command("", "exec", "--", "touch", marker)
	for i, kv := range locked.Env {
		if strings.HasPrefix(kv, "LATCH_VAULT_PASSPHRASE=") {
			locked.Env[i] = "LATCH_VAULT_PASSPHRASE="
		}
	}
	if r := runCmd(t, locked); r.code != exitLocked || !strings.Contains(r.stderr, "unlock") {
		t.Fatalf("locked vault: exit %d\nstderr: %s", r.code, r.stderr)
	}

	e.must("", "logout")
	r := e.run("", "exec", "--", "touch", marker)
	if r.code != exitLogin || !strings.Contains(r.stderr, "latch login") {
		t.Fatalf("no session: exit %d\nstderr: %s", r.code, r.stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("CMD ran without a token")
	}
}

// TestExecSignals: SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to latch reach
// CMD, once, and latch does not die of them first: it exits with what CMD
// made of them.
func TestExecSignals(t *testing.T) {
	e := newE2E(t, time.Hour)
	e.signup(e.srv.URL, "eve")
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{
		{syscall.SIGINT, 71},
		{syscall.SIGTERM, 72},
		{syscall.SIGHUP, 73},
		{syscall.SIGQUIT, 74},
	} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			ready, got := filepath.Join(dir, "ready"), filepath.Join(dir, "got")
			name := sigName(tc.sig)
			// CMD records each signal it gets and exits with its own
			// status on the first; it gives up by itself after 30 s.
			script := `trap 'echo ` + name + ` >>"$2"; exit ` + strconv.Itoa(tc.code) + `' ` + name + `
touch "$1"
i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; exit 99`
			cmd := e.command("", "exec", "--", "sh", "-c", script, "sh", ready, got)
			// Its own session: no terminal, so no signal comes from one.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			var out, errb strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 20*time.Second, func() bool { _, err := os.Stat(ready); return err == nil })
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			code := cmd.ProcessState.ExitCode()
			if code != tc.code {
				t.Fatalf("latch exit %d (%v), want CMD's %d\nstderr: %s", code, err, tc.code, errb.String())
			}
			if b, _ := os.ReadFile(got); string(b) != name+"\n" {
				t.Fatalf("CMD recorded %q, want %s once", b, name)
			}
		})
	}
}

func sigName(s syscall.Signal) string {
	return map[syscall.Signal]string{syscall.SIGINT: "INT", syscall.SIGTERM: "TERM", syscall.SIGHUP: "HUP", syscall.SIGQUIT: "QUIT"}[s]
}

// waitFor polls cond every 20 ms until it holds, failing the test after
// limit.
func waitFor(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after %s", limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestIsEnvName(t *testing.T) {
	for name, want := range map[string]bool{
		"LATCH_TOKEN": true, "_x": true, "x1": true, "a": true,
		"": false, "1X": false, "A-B": false, "A B": false, "é": false, "A=B": false,
	} {
		if got := isEnvName(name); got != want {
			t.Errorf("isEnvName(%q) = %v, want %v", name, got, want)
		}
	}
}
