package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/latch-dev/latch/internal/fakeidp"
)

// The wire trace's redaction, end to end: every flow runs on the built
// binary with --debug (text) and LATCH_DEBUG=json, against latch serve and
// the fake provider, each behind a recorder that keeps everything that
// crossed the wire. Every secret the recorders saw (the test's own list of
// the protocols' secret fields, not the redaction's rule), and every one
// the test made itself, must be absent from what latch printed; and each
// flow's exchanges must be there.

// wire records each request a server handles and its answer.
type wire struct {
	mu        sync.Mutex
	exchanges []wireExchange
}

type wireExchange struct {
	url                   *url.URL
	reqHeader, respHeader http.Header
	reqBody, respBody     []byte
}

func (w *wire) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &recordingWriter{ResponseWriter: rw}
		h.ServeHTTP(rec, r)
		w.mu.Lock()
		defer w.mu.Unlock()
		w.exchanges = append(w.exchanges, wireExchange{url: r.URL, reqHeader: r.Header.Clone(), reqBody: body,
			respHeader: rw.Header().Clone(), respBody: rec.buf.Bytes()})
	})
}

type recordingWriter struct {
	http.ResponseWriter
	buf bytes.Buffer
}

func (r *recordingWriter) Write(b []byte) (int, error) {
	r.buf.Write(b)
	return r.ResponseWriter.Write(b)
}

func (r *recordingWriter) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// secretFields are the fields of the latch API, OAuth 2.0 and OpenID
// Connect that carry a secret, wherever they appear.
var secretFields = map[string]bool{
	"password": true, "current_password": true, "new_password": true, "access_token": true, "refresh_token": true,
	"id_token": true, "mfa_token": true, "code": true, "code_verifier": true, "device_code": true, "client_secret": true,
	"secret": true, "backup_codes": true, "user_code": true,
}

// secrets are the values of secretFields in everything recorded, and the
// credentials of Authorization headers and cookies.
func (w *wire) secrets() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, x := range w.exchanges {
		out = append(out, formSecrets(x.url.RawQuery)...)
		for _, b := range [][]byte{x.reqBody, x.respBody} {
			var v any
			if json.Unmarshal(b, &v) == nil {
				out = append(out, jsonSecrets(v, false)...)
			} else {
				out = append(out, formSecrets(string(b))...)
			}
		}
		if loc, err := url.Parse(x.respHeader.Get("Location")); err == nil {
			out = append(out, formSecrets(loc.RawQuery)...)
		}
		if _, cred, ok := strings.Cut(x.reqHeader.Get("Authorization"), " "); ok {
			out = append(out, cred)
		}
		for _, c := range append(x.reqHeader.Values("Cookie"), x.respHeader.Values("Set-Cookie")...) {
			for _, p := range strings.Split(c, ";") {
				if _, v, ok := strings.Cut(p, "="); ok && !strings.ContainsAny(p, "/") {
					out = append(out, v)
				}
			}
		}
	}
	return out
}

func formSecrets(s string) []string {
	q, _ := url.ParseQuery(s)
	var out []string
	for k, vs := range q {
		if secretFields[k] {
			out = append(out, vs...)
		}
	}
	return out
}

func jsonSecrets(v any, secret bool) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			out = append(out, jsonSecrets(x, secret || secretFields[k])...)
		}
	case []any:
		for _, x := range v {
			out = append(out, jsonSecrets(x, secret)...)
		}
	case string:
		if secret {
			out = append(out, v)
		}
	}
	return out
}

// traceMode is how a run turns the trace on.
type traceMode struct {
	name  string
	flags []string // after the command's own arguments
	env   []string
	json  bool
}

// tracedRun runs latch with the trace on and keeps every stderr.
type tracedRun struct {
	t      *testing.T
	e      *e2e
	mode   traceMode
	stderr strings.Builder
}

func (tr *tracedRun) must(stdin string, args ...string) string {
	tr.t.Helper()
	cmd := tr.e.command(stdin, append(args, tr.mode.flags...)...)
	cmd.Env = append(cmd.Env, tr.mode.env...)
	r := runCmd(tr.t, cmd)
	tr.stderr.WriteString(r.stderr)
	if r.code != 0 {
		tr.t.Fatalf("latch %v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func TestE2ETraceRedaction(t *testing.T) {
	for _, mode := range traceModes {
		t.Run(mode.name, func(t *testing.T) {
			var known []string // secrets the test itself made or was shown
			serverWire, idpWire := &wire{}, &wire{}

			// latch serve, its handler recorded before it starts.
			e := newE2E(t, 3*time.Second)
			recordServer(e.srv, serverWire)
			tr := &tracedRun{t: t, e: e, mode: mode}
			tr.must(e2ePassword+"\n", "signup", "--server", e.srv.URL, "-u", "tia", "--email", "tia@example.com", "--password-stdin")
			var setup struct{ Secret, URI string }
			if err := json.Unmarshal([]byte(tr.must("", "mfa", "setup", "--json")), &setup); err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			code, _ := totp.GenerateCode(setup.Secret, now)
			tr.must("", "mfa", "enable", "--code", code)
			known = append(known, e2ePassword, setup.Secret, code)
			for _, line := range strings.Split(e.must("", "mfa", "codes", "--reveal"), "\n") {
				if c, ok := strings.CutPrefix(line, "  "); ok {
					known = append(known, strings.TrimSpace(c))
				}
			}
			tr.must("", "logout")
			next, _ := totp.GenerateCode(setup.Secret, now.Add(30*time.Second))
			tr.must(e2ePassword+"\n", "login", "--password-stdin", "--code", next)
			known = append(known, next)
			e.waitRotationDue()
			known = append(known, strings.TrimSpace(tr.must("", "token")))
			tr.must("", "api", "/auth/me")
			tr.must("", "logout")

			// The fake provider, in its own home: a browser login, a
			// refresh, a logout that revokes, a device login.
			idp := fakeidp.New(t, func(c *fakeidp.Config) { c.AccessTTL = 3 * time.Second; c.DevicePending = 1 })
			recordServer(idp.Server, idpWire)
			pe := *e
			pe.home = newHome(t)
			ptr := &tracedRun{t: t, e: &pe, mode: mode}
			traceBrowserLogin(t, ptr, idp.URL)
			pe.waitRotationDue()
			known = append(known, strings.TrimSpace(ptr.must("", "token")))
			ptr.must("", "logout")
			ptr.must("", "login", "--issuer", idp.URL, "--client-id", "latch-cli", "--device", "--wait", "30s")
			ptr.must("", "logout")

			checkTrace(t, mode, tr.stderr.String()+ptr.stderr.String(), []string{
				"POST " + e.srv.URL + "/auth/register", "POST " + e.srv.URL + "/auth/mfa/setup",
				"POST " + e.srv.URL + "/auth/mfa/enable", "POST " + e.srv.URL + "/auth/login",
				"POST " + e.srv.URL + "/auth/mfa/verify", "POST " + e.srv.URL + "/auth/refresh",
				"GET " + e.srv.URL + "/auth/me", "POST " + e.srv.URL + "/auth/logout",
				"GET " + idp.URL + "/.well-known/openid-configuration", "GET " + idp.URL + "/jwks",
				"POST " + idp.URL + "/token", "POST " + idp.URL + "/device", "POST " + idp.URL + "/revoke",
				"grant_type=authorization_code", "grant_type=refresh_token", "code_verifier=***", "device_code=***",
			}, append(append(known, serverWire.secrets()...), idpWire.secrets()...), true)
		})
	}
}

// traceModes are the two ways to turn the trace on, and its two printers.
var traceModes = []traceMode{
	{name: "text", flags: []string{"--debug"}},
	{name: "json", env: []string{"LATCH_DEBUG=json"}, json: true},
}

// checkTrace fails unless out (latch's stderr) holds each of want in its
// trace, a masked password when password says so, and none of secrets.
func checkTrace(t *testing.T, mode traceMode, out string, want, secrets []string, password bool) {
	t.Helper()
	trace := out
	if mode.json {
		trace = jsonTraceLines(t, out)
	}
	for _, w := range want {
		if !strings.Contains(trace, w) {
			t.Errorf("the trace has no %s", w)
		}
	}
	// Indented in text, escaped in JSON: "password": "***".
	if password && !regexp.MustCompile(`password\\?": ?\\?"\*\*\*`).MatchString(trace) {
		t.Errorf("the trace lacks a masked password")
	}
	checked := checkNoSecrets(t, out, trace, mode.json, secrets)
	t.Logf("looked for %d secrets in %d bytes of output", checked, len(out))
	if checked < 10 {
		t.Errorf("only %d secrets to look for: the recorders saw too little", checked)
	}
	if t.Failed() {
		t.Logf("latch's stderr:\n%s", out)
	}
}

// recordServer puts w in front of a running server's handler. No request
// has reached it yet; CloseClientConnections takes the lock the server's
// accept loop takes for every new connection, so the change happens before
// any request reads the handler.
func recordServer(srv *httptest.Server, w *wire) {
	srv.Config.Handler = w.wrap(srv.Config.Handler)
	srv.CloseClientConnections()
}

// traceBrowserLogin runs a browser login whose "browser" is fakeidp.Browse,
// following the provider's redirects to latch's loopback listener.
func traceBrowserLogin(t *testing.T, tr *tracedRun, issuer string) {
	t.Helper()
	dir := t.TempDir()
	urlFile := filepath.Join(dir, "url")
	opener := filepath.Join(dir, "open")
	script := "#!/bin/sh\nprintf '%s' \"$1\" > " + urlFile + ".tmp && mv " + urlFile + ".tmp " + urlFile + "\n"
	if err := os.WriteFile(opener, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := tr.e.command("", append([]string{"login", "--issuer", issuer, "--client-id", "latch-cli", "--browser", "--wait", "30s"},
		tr.mode.flags...)...)
	cmd.Env = append(cmd.Env, tr.mode.env...)
	cmd.Env = append(cmd.Env, "LATCH_BROWSER="+opener)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var authURL []byte
	for deadline := time.Now().Add(30 * time.Second); ; {
		b, err := os.ReadFile(urlFile)
		if err == nil {
			authURL = b
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("latch never opened the browser")
		}
		select {
		case err := <-done:
			t.Fatalf("latch login ended before the browser: %v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if _, err := fakeidp.Browse(tr.e.ctx, string(authURL)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		tr.stderr.WriteString(stderr.String())
		if err != nil {
			t.Fatalf("latch login --browser: %v\n%s", err, stderr.String())
		}
	case <-tr.e.ctx.Done():
		t.Fatal("latch login --browser did not end")
	}
}

// jsonTraceLines checks that every line of out that is not latch's own
// message is one JSON object of the trace, and returns them as
// "METHOD URL" lines followed by the objects.
func jsonTraceLines(t *testing.T, out string) string {
	t.Helper()
	var b strings.Builder
	n := 0
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var ev struct{ Type, Method, URL string }
		if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Type == "" {
			t.Errorf("not a trace object: %q (%v)", line, err)
			continue
		}
		n++
		b.WriteString(ev.Method + " " + ev.URL + "\n" + line + "\n")
	}
	if n == 0 {
		t.Error("no JSON trace lines")
	}
	return b.String()
}

var digitsOnly = regexp.MustCompile(`^[0-9]+$`)

// checkNoSecrets fails for each secret found in out (everything latch
// printed) or, for a user code, which latch shows by design, in the trace
// lines of JSON mode. A token long enough to be shown as a prefix must not
// show more. It returns how many distinct secrets it looked for.
func checkNoSecrets(t *testing.T, out, trace string, jsonMode bool, secrets []string) int {
	t.Helper()
	userCode := regexp.MustCompile(`^[A-Z0-9]{4}-[A-Z0-9]{4}$`)
	seen := map[string]bool{}
	for _, s := range secrets {
		if len(s) < 6 || seen[s] {
			continue
		}
		seen[s] = true
		where := out
		if userCode.MatchString(s) {
			if !jsonMode {
				continue
			}
			where = trace
		}
		forms := []string{s, url.QueryEscape(s)}
		if b, err := json.Marshal(s); err == nil {
			forms = append(forms, string(b[1:len(b)-1]))
		}
		if len(s) >= 24 {
			forms = append(forms, s[8:])
		}
		for _, f := range forms {
			found := strings.Contains(where, f)
			if digitsOnly.MatchString(f) {
				// A TOTP code must not match inside a longer number.
				found = regexp.MustCompile(`(^|[^0-9])` + f + `($|[^0-9])`).MatchString(where)
			}
			if found {
				t.Errorf("a secret (%s…, %d chars; found as %s…) is in latch's output", s[:6], len(s), f[:min(6, len(f))])
				break
			}
		}
	}
	return len(seen)
}

// The browser and device logins against latch serve, traced, in a real
// browser (Chromium signs in on the server's pages).
func TestE2ETraceRedactionServeOAuth(t *testing.T) {
	for _, mode := range traceModes {
		t.Run(mode.name, func(t *testing.T) {
			e := newE2E(t, time.Minute)
			w := &wire{}
			recordServer(e.srv, w)
			e.signup(e.srv.URL, "cora")
			tr := &tracedRun{t: t, e: e, mode: mode}

			prog, devtools, _ := browserOpener(t)
			cmd := e.command("", append([]string{"login", "--profile", "web", "--server", e.srv.URL, "--browser", "--wait", "1m"},
				mode.flags...)...)
			cmd.Env = append(append(cmd.Env, mode.env...), "LATCH_BROWSER="+prog)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			page := attachPage(t, e.ctx, devtools, e.srv.URL)
			signIn(t, page, "cora")
			waitText(t, page, "close this window")
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("latch login --browser: %v\n%s", err, stderr.String())
				}
			case <-e.ctx.Done():
				t.Fatal("latch login --browser did not end")
			}
			tr.stderr.WriteString(stderr.String())
			tr.must("", "logout", "--profile", "web")

			traceDeviceLogin(t, tr, newChromium(t, e.ctx))
			tr.must("", "logout", "--profile", "dev")

			checkTrace(t, mode, tr.stderr.String(), []string{
				"GET " + e.srv.URL + "/.well-known/openid-configuration", "POST " + e.srv.URL + "/oauth/token",
				"POST " + e.srv.URL + "/device_authorization", "GET " + e.srv.URL + "/keys",
				"POST " + e.srv.URL + "/revoke", "grant_type=authorization_code",
				"code_verifier=***", "device_code=***",
			}, w.secrets(), false)
		})
	}
}

// traceDeviceLogin runs latch login --device as profile dev; browser enters
// the code shown, signs in as cora and approves.
func traceDeviceLogin(t *testing.T, tr *tracedRun, browser context.Context) {
	t.Helper()
	e := tr.e
	cmd := e.command("", append([]string{"login", "--profile", "dev", "--server", e.srv.URL, "--device", "--wait", "1m"},
		tr.mode.flags...)...)
	cmd.Env = append(cmd.Env, tr.mode.env...)
	stderrPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var shown strings.Builder
	lines := bufio.NewScanner(stderrPipe)
	lines.Buffer(nil, 1<<20) // a JSON trace line is long
	code, verifyURI := "", ""
	for code == "" && lines.Scan() {
		line := lines.Text()
		shown.WriteString(line + "\n")
		if u, ok := strings.CutPrefix(line, "On any device, open "); ok {
			verifyURI = u
		}
		if m := userCodeLine.FindStringSubmatch(line); m != nil && strings.HasPrefix(strings.TrimSpace(line), "code: ") {
			code = m[1]
		}
	}
	rest := make(chan string, 1)
	go func() { b, _ := io.ReadAll(stderrPipe); rest <- string(b) }()
	if code == "" || verifyURI == "" {
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
	signIn(t, browser, "cora")
	waitText(t, browser, "asks to act on your behalf as cora")
	if err := chromedp.Do(browser, chromedp.Click(css(`button[value=approve]`))); err != nil {
		t.Fatalf("approve: %v", err)
	}
	err = cmd.Wait()
	shown.WriteString(<-rest)
	tr.stderr.WriteString(shown.String())
	if err != nil {
		t.Fatalf("latch login --device: %v\n%s", err, shown.String())
	}
}
