package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/remote"
)

// The real-browser tests: Debian's chromium, headless, driven with chromedp.
// .ci/run installs chromium and sets LATCH_REQUIRE_CHROMIUM=1, so there they
// cannot skip.

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("LATCH_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("LATCH_REQUIRE_CHROMIUM=1 but chromium is not installed")
	}
	t.Skip("chromium is not installed (apt-get install chromium); .ci/run installs it and sets LATCH_REQUIRE_CHROMIUM=1")
	return ""
}

// chromiumFlags keep a headless Chromium off the network and quiet: this
// machine's network is closed, and the tests need loopback only.
var chromiumFlags = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
	"--disable-default-apps", "--disable-extensions", "--mute-audio",
}

// browserOpener writes the program latch runs as LATCH_BROWSER: it starts
// Chromium on the URL latch hands it, with a DevTools port the test then
// attaches to. It returns the program's path, the DevTools URL, and the file
// that will hold Chromium's pid.
func browserOpener(t *testing.T) (prog, devtools, pidFile string) {
	t.Helper()
	chromium := chromiumPath(t)
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	pidFile = filepath.Join(dir, "chromium.pid")
	script := fmt.Sprintf("#!/bin/sh\necho $$ > %q\nexec %q %s --user-data-dir=%q --remote-debugging-port=%d \"$1\" >%q 2>&1\n",
		pidFile, chromium, strings.Join(chromiumFlags, " "), filepath.Join(dir, "profile"), port, filepath.Join(dir, "chromium.log"))
	prog = filepath.Join(dir, "open-in-chromium")
	if err := os.WriteFile(prog, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	// Registered after t.TempDir, so it runs before the directory is
	// removed: Chromium and its helpers must be gone by then, or they go on
	// writing the profile while RemoveAll empties it.
	t.Cleanup(func() {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			stopProcessTree(t, pid)
		}
	})
	return prog, fmt.Sprintf("http://127.0.0.1:%d", port), pidFile
}

// stopProcessTree ends pid — not a child of the test: latch started it —
// and every process under it, and waits (bounded) until they are gone: asked
// with SIGTERM first, so Chromium closes its profile, then with SIGKILL.
func stopProcessTree(t *testing.T, pid int) {
	t.Helper()
	procs := append([]int{pid}, descendants(pid)...)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		for _, p := range procs {
			_ = syscall.Kill(p, sig)
		}
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if !slices.ContainsFunc(procs, running) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Errorf("Chromium (pid %d) and its helpers are still running after SIGKILL", pid)
}

// descendants lists the processes under pid, from /proc.
func descendants(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, ok := procField(p, 1); ok {
			if n, err := strconv.Atoi(pp); err == nil {
				parent[p] = n
			}
		}
	}
	var out []int
	for p := range parent {
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// running reports whether pid exists and is not a zombie (an orphan's
// zombie waits for a reaper that may never come in a container).
func running(pid int) bool {
	state, ok := procField(pid, 0)
	return ok && state != "Z" && state != "X"
}

// procField is the i-th field after the command name in /proc/pid/stat
// (0: state, 1: parent pid).
func procField(pid, i int) (string, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", false
	}
	s := string(b)
	end := strings.LastIndexByte(s, ')') // the name may hold spaces and parens
	if end < 0 {
		return "", false
	}
	f := strings.Fields(s[end+1:])
	if i >= len(f) {
		return "", false
	}
	return f[i], true
}

// attachPage waits (bounded) for a page of the Chromium at devtools whose URL
// starts with prefix, and returns a chromedp context on that tab.
func attachPage(t *testing.T, ctx context.Context, devtools, prefix string) context.Context {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if res, err := http.Get(devtools + "/json/version"); err == nil {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Chromium's DevTools never answered at %s: did latch run the opener?", devtools)
		}
		time.Sleep(50 * time.Millisecond)
	}
	actx, cancel := remote.NewAllocator(ctx, devtools)
	t.Cleanup(cancel)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	for {
		targets, err := chromedp.Targets(bctx)
		if err != nil {
			t.Fatalf("list Chromium's tabs: %v", err)
		}
		for _, tg := range targets {
			if tg.Type == "page" && strings.HasPrefix(tg.URL, prefix) {
				tctx, cancel := chromedp.NewContext(bctx, chromedp.WithTargetID(target.ID(tg.TargetID)))
				t.Cleanup(cancel)
				return tctx
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Chromium tab at %s", prefix)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// newChromium starts a headless Chromium the test drives itself (the device
// flow: a browser on "another device").
func newChromium(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(chromiumPath(t)), chromedp.UserDataDir(t.TempDir())}
	for _, f := range chromiumFlags {
		opts = append(opts, chromedp.Flag(strings.TrimPrefix(f, "--"), true))
	}
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancel)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	return bctx
}

func css(s string) chromedp.CSS { return chromedp.CSS(s) }

// signIn fills the provider's login form on the page and submits it.
func signIn(t *testing.T, page context.Context, user string) {
	t.Helper()
	err := chromedp.Do(page,
		chromedp.WaitVisible(css(`input[name=username]`)),
		chromedp.SendKeys(css(`input[name=username]`), user),
		chromedp.SendKeys(css(`input[name=password]`), e2ePassword),
		chromedp.Click(css(`button[type=submit]`)),
	)
	if err != nil {
		t.Fatalf("sign in on the page: %v", err)
	}
}

// waitText waits until the page's body contains want.
func waitText(t *testing.T, page context.Context, want string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		body, err := chromedp.Run(page, chromedp.Text(css(`body`)))
		if err == nil && strings.Contains(body, want) {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page never said %q; it says: %q (err %v)", want, body, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The browser flow in a real browser: latch's opener hands the authorization
// URL to Chromium, which signs in on the server's page and is redirected to
// latch's loopback listener.
func TestE2EBrowserLoginInChromium(t *testing.T) {
	e := newE2E(t, time.Minute)
	e.signup(e.srv.URL, "cora")
	prog, devtools, _ := browserOpener(t)

	cmd := e.command("", "login", "--profile", "cora-oauth", "--server", e.srv.URL, "--browser", "--wait", "1m")
	cmd.Env = append(cmd.Env, "LATCH_BROWSER="+prog)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	page := attachPage(t, e.ctx, devtools, e.srv.URL)
	signIn(t, page, "cora")
	body := waitText(t, page, "close this window")
	if !strings.Contains(strings.ToLower(body), "logged in") && !strings.Contains(strings.ToLower(body), "signed in") {
		t.Errorf("the loopback page does not say the login worked: %q", body)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("latch login --browser: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("latch login --browser still waiting after the browser signed in\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "Opened your browser") || !strings.Contains(stderr.String(), e.srv.URL+"/authorize?") {
		t.Errorf("login did not say it opened the browser and show the URL:\n%s", stderr.String())
	}
	if !strings.Contains(stdout.String(), "as cora") {
		t.Errorf("login output: %s", stdout.String())
	}
	st := e.status()
	if st.Name != "cora-oauth" || st.State != "logged_in" {
		t.Fatalf("status after the browser login: %+v", st)
	}
	// The provider's access token works on the account API.
	e.checkToken(e.token(), "cora")
}

var userCodeLine = regexp.MustCompile(`code: ([A-Z0-9-]+)`)

// The device flow in a real browser: latch prints a code; Chromium, standing
// in for a phone, opens the verification URI, enters the code, signs in and
// approves.
func TestE2EDeviceLoginInChromium(t *testing.T) {
	e := newE2E(t, time.Minute)
	e.signup(e.srv.URL, "dev")
	browser := newChromium(t, e.ctx)

	cmd := e.command("", "login", "--profile", "dev-device", "--server", e.srv.URL, "--device", "--wait", "1m")
	stderrPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout strings.Builder
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var shown strings.Builder
	lines := bufio.NewScanner(stderrPipe)
	code, verifyURI := "", ""
	for code == "" && lines.Scan() {
		line := lines.Text()
		shown.WriteString(line + "\n")
		if u, ok := strings.CutPrefix(line, "On any device, open "); ok {
			verifyURI = u
		}
		if m := userCodeLine.FindStringSubmatch(line); m != nil {
			code = m[1]
		}
	}
	rest := make(chan string, 1)
	go func() { b, _ := io.ReadAll(stderrPipe); rest <- string(b) }()
	if code == "" || verifyURI != e.srv.URL+"/device" {
		t.Fatalf("latch login --device showed no code or URI:\n%s", shown.String())
	}

	err = chromedp.Do(browser,
		chromedp.Navigate(verifyURI),
		chromedp.WaitVisible(css(`input[name=user_code]`)),
		chromedp.SendKeys(css(`input[name=user_code]`), code),
		chromedp.Click(css(`button[type=submit]`)),
	)
	if err != nil {
		t.Fatalf("enter the user code: %v", err)
	}
	signIn(t, browser, "dev")
	waitText(t, browser, "latch (command line) asks to act on your behalf as dev")
	if err := chromedp.Do(browser, chromedp.Click(css(`button[value=approve]`))); err != nil {
		t.Fatalf("approve: %v", err)
	}
	waitText(t, browser, "pproved")

	if err := cmd.Wait(); err != nil {
		t.Fatalf("latch login --device: %v\n%s%s", err, shown.String(), <-rest)
	}
	if !strings.Contains(stdout.String(), "as dev") {
		t.Errorf("login output: %s", stdout.String())
	}
	if st := e.status(); st.Name != "dev-device" || st.State != "logged_in" {
		t.Fatalf("status after the device login: %+v", st)
	}
	e.checkToken(e.token(), "dev")
}
