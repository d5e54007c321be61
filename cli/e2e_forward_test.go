//go:build linux

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latch-dev/latch/vault"
)

// Agent forwarding over a real SSH connection: openssh-server on 127.0.0.1
// with a throwaway host key and user key, latch agent --forwardable on "the
// laptop" (one latch home), ssh -R of its forwarding socket, and latch token
// on "the remote box" (another latch home, no vault, no profile).

// needSSH returns the paths of sshd, ssh and ssh-keygen, or skips the test
// where they are missing (it fails instead under LATCH_REQUIRE_SSH=1, as in
// CI, which installs openssh-server).
func needSSH(t *testing.T) (sshd, ssh, keygen string) {
	t.Helper()
	sshd = "/usr/sbin/sshd"
	_, err := os.Stat(sshd)
	ssh, err2 := exec.LookPath("ssh")
	keygen, err3 := exec.LookPath("ssh-keygen")
	if err == nil && err2 == nil && err3 == nil {
		return sshd, ssh, keygen
	}
	if os.Getenv("LATCH_REQUIRE_SSH") == "1" {
		t.Fatalf("LATCH_REQUIRE_SSH=1 but openssh is missing: %v %v %v", err, err2, err3)
	}
	t.Skip("openssh-server and openssh-client are not installed (apt-get install openssh-server); .ci/run installs them and sets LATCH_REQUIRE_SSH=1")
	return
}

// waitDaemon waits until out holds want, or fails after bound or when the
// process has exited.
func waitDaemon(t *testing.T, out *lockedBuffer, want string, bound time.Duration, exited <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !strings.Contains(out.String(), want) {
		select {
		case <-exited:
			t.Fatalf("the process exited before printing %q:\n%s", want, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %s:\n%s", want, bound, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startDaemon starts cmd, stopped with SIGTERM (then killed) at the end of
// the test; its stderr (and stdout) go to the returned buffer.
func startDaemon(t *testing.T, cmd *exec.Cmd) (*lockedBuffer, <-chan struct{}) {
	t.Helper()
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	return out, exited
}

// sshServer is an sshd on 127.0.0.1 that lets the current user in with a
// throwaway key.
type sshServer struct {
	port      int
	key, user string
	ssh       string
	log       *lockedBuffer
}

func startSSHD(t *testing.T, dir string) *sshServer {
	t.Helper()
	sshd, ssh, keygen := needSSH(t)
	if os.Getuid() == 0 {
		// sshd running as root insists on its privilege separation
		// directory, which a container without an init may lack.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	hostKey, userKey := filepath.Join(dir, "host_key"), filepath.Join(dir, "user_key")
	for _, k := range []string{hostKey, userKey} {
		if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "latch-e2e", "-f", k).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	pub, err := os.ReadFile(userKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, pub, 0o600); err != nil {
		t.Fatal(err)
	}
	// A free port: taken from the kernel, then handed to sshd. Another
	// process could take it in between; sshd would then fail to listen,
	// and the test says so.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg := filepath.Join(dir, "sshd_config")
	conf := fmt.Sprintf(`ListenAddress 127.0.0.1
Port %d
HostKey %s
AuthorizedKeysFile %s
StrictModes no
UsePAM no
PidFile %s
StreamLocalBindUnlink yes
AllowStreamLocalForwarding yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
PrintMotd no
LogLevel VERBOSE
`, port, hostKey, authorized, filepath.Join(dir, "sshd.pid"))
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	log, exited := startDaemon(t, exec.CommandContext(ctx, sshd, "-D", "-e", "-f", cfg))
	waitDaemon(t, log, "Server listening on 127.0.0.1 port "+strconv.Itoa(port), 10*time.Second, exited)
	return &sshServer{port: port, key: userKey, user: me.Username, ssh: ssh, log: log}
}

// run runs remote on the server through ssh, forwarding remoteSock there to
// localSock here, and returns what it printed and its exit code.
func (s *sshServer) run(t *testing.T, remoteSock, localSock, remote string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.ssh, "-F", "/dev/null", "-i", s.key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
		"-o", "ExitOnForwardFailure=yes", "-p", strconv.Itoa(s.port), "-R", remoteSock+":"+localSock,
		s.user+"@127.0.0.1", remote)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + filepath.Dir(s.key)}
	return runCmd(t, cmd)
}

func TestE2EForwardOverSSH(t *testing.T) {
	dir, err := os.MkdirTemp("", "lfw") // short: it holds sockets
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := startSSHD(t, dir)

	// The laptop: two profiles, one of them allowed for forwarding.
	e := newE2E(t, time.Minute)
	e.signup(e.srv.URL, "alice")
	e.must(e2ePassword+"\n", "login", "--server", e.srv.URL, "-u", "alice", "--password-stdin", "--profile", "allowed")
	e.must(e2ePassword+"\n", "login", "--server", e.srv.URL, "-u", "alice", "--password-stdin", "--profile", "other")
	cacheSock := filepath.Join(dir, "laptop", "agent.sock")
	fwdSock := filepath.Join(dir, "laptop", "forward.sock")
	e.extraEnv = append(e.extraEnv, "LATCH_AGENT_SOCK="+cacheSock)
	agentCmd := e.command("", "agent", "--forwardable", "--forward-profile", "allowed", "--forward-socket", fwdSock)
	agentCmd.Stdin = nil
	agentLog, agentExited := startDaemon(t, agentCmd)
	waitDaemon(t, agentLog, `msg="latch agent forwarding"`, 10*time.Second, agentExited)

	// The remote box: its own latch home, no vault and no profile, and only
	// what the ssh session gives (no terminal, no passphrase).
	remoteHome := filepath.Join(dir, "remotehome")
	if err := os.Mkdir(remoteHome, 0o700); err != nil {
		t.Fatal(err)
	}
	remoteSock := filepath.Join(dir, "remote.sock")
	remote := func(env, args string) result {
		return s.run(t, remoteSock, fwdSock, fmt.Sprintf("LATCH_HOME=%s LATCH_AGENT_SOCK=%s %s %s %s </dev/null",
			remoteHome, remoteSock, env, e.bin, args))
	}

	r := remote("", "token -p allowed")
	if r.code != 0 {
		t.Fatalf("remote latch token -p allowed: exit %d\n%s%s\nagent:\n%s\nsshd:\n%s", r.code, r.stdout, r.stderr, agentLog, s.log)
	}
	tok := strings.TrimSpace(r.stdout)
	e.checkToken(tok, "alice")

	// Where the kernel keyring is refused, latch looks for a session cache
	// on LATCH_AGENT_SOCK: the forwarding socket is not one.
	r = remote("LATCH_VAULT_CACHE=agent", "token --json -p allowed")
	var tj tokenJSON
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &tj) != nil || tj.AccessToken == "" || tj.Profile != "allowed" ||
		tj.TokenType != "Bearer" {
		t.Fatalf("remote latch token --json: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if exp, err := time.Parse(time.RFC3339, tj.ExpiresAt); err != nil || time.Until(exp) <= 0 {
		t.Fatalf("expires_at %q: %v", tj.ExpiresAt, err)
	}

	// latch exec and the kubectl helper take the same path.
	r = remote("", `exec -p allowed -- sh -c 'printf %s "$LATCH_TOKEN"'`)
	if r.code != 0 || r.stdout == "" {
		t.Fatalf("remote latch exec: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	e.checkToken(r.stdout, "alice")
	r = remote("", "credential kubernetes -p allowed")
	var cred struct {
		Status struct {
			Token string `json:"token"`
		} `json:"status"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &cred) != nil || cred.Status.Token == "" {
		t.Fatalf("remote latch credential kubernetes: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	e.checkToken(cred.Status.Token, "alice")

	r = remote("", "token -p other")
	if r.code != exitError || r.stdout != "" || !strings.Contains(r.stderr, "--forward-profile other") {
		t.Fatalf("remote latch token -p other: exit %d, want %d naming --forward-profile other\n%s%s", r.code, exitError, r.stdout, r.stderr)
	}

	t.Logf("remote latch token -p other: %s", r.stderr)

	// The agent logged every request, and never a token.
	waitDaemon(t, agentLog, "profile=other outcome=refused", 5*time.Second, agentExited)
	if n := strings.Count(agentLog.String(), "profile=allowed outcome=allowed"); n != 4 {
		t.Errorf("the agent logged %d allowed requests, want 4:\n%s", n, agentLog)
	}

	// The setup commands take a profile the agent serves, and refuse one
	// it does not, with its reason rather than advice to log in here.
	kubeconfig := filepath.Join(remoteHome, "kubeconfig")
	for _, args := range []string{
		"git setup --dry-run --host https://git.example.com -p allowed",
		"kube setup -p allowed --kubeconfig " + kubeconfig,
		"docker setup --print --registry registry.example.com -p allowed",
	} {
		if r := remote("", args); r.code != 0 || strings.Contains(r.stdout+r.stderr, "not logged in") {
			t.Fatalf("remote latch %s: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
	if r := remote("", "git setup --dry-run --host https://git.example.com -p other"); r.code != exitError ||
		!strings.Contains(r.stderr, "--forward-profile other") {
		t.Fatalf("remote latch git setup -p other: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// A laptop whose vault is locked, and with no passphrase to be had:
	// the request fails at once (exit 5 there and here), no prompt waits.
	locked := *e
	locked.extraEnv = append(append([]string(nil), e.extraEnv...), "LATCH_VAULT_PASSPHRASE=", "LATCH_VAULT_CACHE=none")
	lockedSock := filepath.Join(dir, "laptop", "forward-locked.sock")
	lockedCmd := locked.command("", "agent", "--forwardable", "--forward-profile", "allowed",
		"--socket", filepath.Join(dir, "laptop", "agent-locked.sock"), "--forward-socket", lockedSock)
	lockedCmd.Stdin = nil
	lockedLog, lockedExited := startDaemon(t, lockedCmd)
	waitDaemon(t, lockedLog, `msg="latch agent forwarding"`, 10*time.Second, lockedExited)
	r = s.run(t, remoteSock, lockedSock, fmt.Sprintf("LATCH_HOME=%s LATCH_AGENT_SOCK=%s %s token -p allowed </dev/null",
		remoteHome, remoteSock, e.bin))
	if r.code != exitLocked || r.stdout != "" || !strings.Contains(r.stderr, "latch vault unlock") {
		t.Fatalf("remote latch token with the laptop's vault locked: exit %d, want %d naming latch vault unlock\n%s%s\nagent:\n%s",
			r.code, exitLocked, r.stdout, r.stderr, lockedLog)
	}
	waitDaemon(t, lockedLog, "profile=allowed outcome=locked", 5*time.Second, lockedExited)

	t.Logf("remote latch token, the laptop's vault locked: %s", r.stderr)

	// Nothing under the remote home holds a secret: not the access token,
	// not the laptop's refresh tokens, not any vault key or passphrase.
	secrets := map[string]string{"the access token": tok, "the --json access token": tj.AccessToken,
		"an age identity": "AGE-SECRET-KEY-", "the laptop's vault passphrase": "e2e passphrase"}
	for _, p := range []string{"allowed", "other"} {
		secrets["the refresh token of "+p] = laptopRefreshToken(t, e, p)
	}
	for what, secret := range secrets {
		if strings.Contains(agentLog.String(), secret) {
			t.Errorf("the agent's log holds %s", what)
		}
	}
	files := 0
	err = filepath.WalkDir(remoteHome, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		t.Logf("remote home: %s", path)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for what, secret := range secrets {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds %s", path, what)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"secrets.age", "key.age"} {
		if _, err := os.Stat(filepath.Join(remoteHome, name)); err == nil {
			t.Errorf("the remote latch made a vault: %s", name)
		}
	}
	if files == 0 {
		t.Fatal("the remote latch wrote nothing under its home: did it run at all?")
	}
	t.Logf("agent log:\n%s", agentLog)
}

// laptopRefreshToken reads profile's refresh token from the laptop's vault.
func laptopRefreshToken(t *testing.T, e *e2e, profile string) string {
	t.Helper()
	s, _, err := vault.Open(e.ctx, vault.ModeFile, e.home, vault.Options{
		Passphrase: func() ([]byte, error) { return []byte("e2e passphrase"), nil }})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.Get(e.ctx, "profile/"+profile+"/tokens")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Refresh string `json:"rt"`
	}
	if err := json.Unmarshal(raw, &st); err != nil || len(st.Refresh) < 16 {
		t.Fatalf("the laptop's tokens of %s: %v", profile, err)
	}
	return st.Refresh
}
