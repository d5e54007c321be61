package cli

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pquerna/otp/totp"
)

var updateScreens = flag.Bool("update-screens", false, "write the demo's panes to docs/screens")

// needTmux returns tmux's path, or skips the test without it (fails with
// LATCH_REQUIRE_TMUX=1, as in CI).
func needTmux(t *testing.T) string {
	t.Helper()
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		if os.Getenv("LATCH_REQUIRE_TMUX") == "1" {
			t.Fatal("LATCH_REQUIRE_TMUX=1 but tmux is not installed")
		}
		t.Skip("tmux is not installed (apt-get install tmux); .ci/run installs it and sets LATCH_REQUIRE_TMUX=1")
	}
	return tmux
}

// tmuxPane is one latch running in a private tmux server at 80×24.
type tmuxPane struct {
	t    *testing.T
	tmux string
	sock string
	last string
}

func (p *tmuxPane) cmd(args ...string) string {
	p.t.Helper()
	out, err := exec.Command(p.tmux, append([]string{"-S", p.sock}, args...)...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// screen is what the pane shows, without trailing blanks.
func (p *tmuxPane) screen() string {
	lines := strings.Split(p.cmd("capture-pane", "-p", "-t", "demo"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.TrimRight(strings.Join(lines, "\n"), "\n")
}

// waitFor polls the pane until it shows every want, for at most d.
func (p *tmuxPane) waitFor(d time.Duration, wants ...string) string {
	p.t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		p.last = p.screen()
		if containsAll(p.last, wants...) {
			return p.last
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("after %s the pane does not show %q:\n%s", d, wants, p.last)
		}
		<-tick.C
	}
}

// secretOnScreen reads the TOTP secret the setup screen shows beside the QR
// code: groups of four on the "Secret" line and the line under it.
func secretOnScreen(t *testing.T, screen string) string {
	t.Helper()
	lines := strings.Split(screen, "\n")
	for i, l := range lines {
		at := strings.Index(l, "Secret  ")
		if at < 0 {
			continue
		}
		col := utf8.RuneCountInString(l[:at]) + len("Secret  ")
		var b strings.Builder
		for _, line := range lines[i:min(i+2, len(lines))] {
			if r := []rune(line); len(r) > col {
				b.WriteString(strings.ReplaceAll(string(r[col:]), " ", ""))
			}
		}
		secret := b.String()
		if len(secret) != 32 || strings.Trim(secret, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") != "" {
			t.Fatalf("the secret read off the screen is %q:\n%s", secret, screen)
		}
		return secret
	}
	t.Fatalf("no secret on the screen:\n%s", screen)
	return ""
}

// secretGroups is the first line of the secret as the screen groups it.
func secretGroups(secret string) string {
	return secret[0:4] + " " + secret[4:8] + " " + secret[8:12]
}

func containsAll(s string, wants ...string) bool {
	for _, w := range wants {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// keys sends tmux key names (Enter, Tab, Escape, or a letter).
func (p *tmuxPane) keys(keys ...string) {
	p.cmd(append([]string{"send-keys", "-t", "demo"}, keys...)...)
}

// text types s literally.
func (p *tmuxPane) text(s string) { p.cmd("send-keys", "-t", "demo", "-l", s) }

// shot keeps the pane for README when -update-screens is given.
func (p *tmuxPane) shot(name string) {
	p.t.Helper()
	if !*updateScreens {
		return
	}
	path := filepath.Join("..", "docs", "screens", name+".txt")
	if err := os.WriteFile(path, []byte(p.last+"\n"), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// The newcomer's walk through latch demo, in a real terminal: sign up, watch
// a background rotation, look at the sessions and the token, log out, quit.
func TestE2EDemoInTmux(t *testing.T) {
	tmux := needTmux(t)
	bin := latchBinary(t)
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	// A clean environment: the demo must need nothing of the developer's.
	script := filepath.Join(dir, "run")
	err := os.WriteFile(script, []byte(`exec env -i PATH="$PATH" TERM="$TERM" HOME="`+dir+`" TMPDIR="`+tmp+`" \
  sh -c '"$0" demo --access-ttl 3s; echo "latch exited $?"; exec sleep 600' "`+bin+`"`), 0o700)
	if err != nil {
		t.Fatal(err)
	}
	p := &tmuxPane{t: t, tmux: tmux, sock: filepath.Join(dir, "tmux.sock")}
	p.cmd("-f", "/dev/null", "new-session", "-d", "-s", "demo", "-x", "80", "-y", "24", "sh "+script)
	t.Cleanup(func() { exec.Command(tmux, "-S", p.sock, "kill-server").Run() })

	p.waitFor(10*time.Second, "DEMO · throwaway server http://127.0.0.1:", "● demo", "logged out",
		"No account yet: sign up (s) or log in (l).", "memory")
	p.shot("home")

	p.keys("s")
	p.waitFor(5*time.Second, "Create an account on http://127.0.0.1:", "usernames 3–80")
	p.text("alice")
	p.keys("Tab")
	p.text("alice@example.com")
	p.keys("Tab")
	p.text(e2ePassword)
	p.keys("Tab")
	p.text(e2ePassword)
	s := p.waitFor(5*time.Second, "very strong · 4/4", "Confirm     ••••")
	if strings.Contains(s, e2ePassword) {
		t.Fatal("the password is on screen")
	}
	p.shot("signup")

	p.keys("Enter")
	p.waitFor(10*time.Second, "Account · demo", "alice  alice@example.com",
		"Welcome, alice: your account is ready and you are logged in.", "Rotations     0 this session")
	p.shot("dashboard")

	// The access token lives 3 s: the dashboard rotates it by itself.
	p.waitFor(20*time.Second, "Rotations     1 this session", "Rotated in the background at")
	p.shot("dashboard-rotated")

	// Two-factor: read the secret off the screen, as a person typing it into
	// an app would, and answer with the code it makes now.
	p.keys("m")
	s = p.waitFor(10*time.Second, "Set up two-factor", "Secret  ", "2. Type the 6-digit code")
	secret := secretOnScreen(t, s)
	p.shot("mfa-setup")
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p.text(code)
	p.keys("Enter")
	s = p.waitFor(10*time.Second, "Two-factor is on for alice", "Saved to your vault (memory)")
	if strings.Contains(s, secretGroups(secret)) {
		t.Fatal("the secret is still on screen after enrolment")
	}
	p.shot("mfa-codes")
	p.keys("Enter")
	p.waitFor(10*time.Second, "Account · demo", "MFA on (b: backup codes)")
	p.keys("b")
	p.waitFor(5*time.Second, "10 of 10 unused", "Press v to reveal them")
	p.keys("Escape")
	p.waitFor(5*time.Second, "Account · demo", "MFA on")

	p.keys("s")
	p.waitFor(5*time.Second, "Sessions of alice on http://127.0.0.1:", "1 open", "(this terminal)")
	p.shot("sessions")

	p.keys("Escape")
	p.waitFor(5*time.Second, "Account · demo")
	p.keys("t")
	p.waitFor(5*time.Second, "Access token", "alg        ES256", "type           access", "hidden: press s to show it")
	p.shot("token")

	p.keys("Escape")
	p.waitFor(5*time.Second, "Account · demo")
	p.keys("o")
	p.waitFor(10*time.Second, "Logged out of demo: the session was ended on the server.", "logged out  alice")
	p.shot("logged-out")

	p.keys("q")
	p.waitFor(10*time.Second, "latch exited 0", "removed its database, home and secrets")
	left, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("latch demo left %d entries in TMPDIR: %v", len(left), left[0].Name())
	}
}
