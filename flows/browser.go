package flows

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode"

	"github.com/cli/browser"
	"golang.org/x/oauth2"

	"github.com/latch-dev/latch/client"
)

// DefaultBrowserTimeout bounds the wait for the browser's answer.
const DefaultBrowserTimeout = 5 * time.Minute

// DefaultSlowCallback is how long FinishBrowserLogin waits for the
// callback before saying what may be wrong (SlowCallbackHint).
const DefaultSlowCallback = 30 * time.Second

// SlowCallbackHint is told to Env.Progress once when no callback has come
// after BrowserLogin.SlowAfter: a provider that refuses the request (an
// unknown client, a redirect not registered) shows its own error page and
// never redirects back, so the user would otherwise wait blind.
const SlowCallbackHint = "Still waiting for the browser. If it shows an error page of the provider, the login cannot " +
	"finish: usual causes are an unknown client id or a redirect URI not registered there — check --client-id and " +
	"--redirect-url. The URL above still works."

// BrowserLogin is an authorization code login with PKCE through the user's
// browser and a loopback redirect (RFC 8252). StartBrowserLogin makes one;
// the caller shows or opens URL (OpenBrowser), then FinishBrowserLogin waits
// for the provider's redirect to http://127.0.0.1:PORT/callback (or the
// request's RedirectURL) and completes the login. Close abandons it;
// FinishBrowserLogin closes it too.
type BrowserLogin struct {
	// URL is the authorization URL to open in a browser, print, or show as
	// a QR code. It holds no secret.
	URL string
	// RedirectURI is the loopback callback the provider redirects to.
	RedirectURI string
	// Timeout bounds FinishBrowserLogin's wait for the callback;
	// StartBrowserLogin sets DefaultBrowserTimeout. Change it before Finish.
	// SlowAfter is when the wait is said to be long (SlowCallbackHint);
	// StartBrowserLogin sets DefaultSlowCallback.
	Timeout, SlowAfter time.Duration

	o                      *oauthLogin
	state, nonce, verifier string
	path                   string // the callback's path
	srv                    *http.Server
	taken                  atomic.Bool
	callback               chan callbackResult // the one accepted callback
	outcome                chan error          // the login's end, for the page
	closed                 chan struct{}
	closeOnce              sync.Once
	e                      *Env
}

type callbackResult struct {
	code string
	err  error
}

// StartBrowserLogin binds the loopback callback — on 127.0.0.1 and a random
// port (never "localhost": some providers refuse it), or where the
// request's RedirectURL says — sets up the provider and builds the
// authorization URL with a fresh state, nonce and PKCE S256 challenge.
// Nothing is saved until FinishBrowserLogin.
func (e *Env) StartBrowserLogin(ctx context.Context, req OAuthRequest) (*BrowserLogin, error) {
	lns, redirect, path, err := listenCallback(req.RedirectURL)
	if err != nil {
		return nil, err
	}
	closeAll := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	o, err := e.prepareOAuth(ctx, req)
	if err != nil {
		closeAll()
		return nil, err
	}
	if o.provider.Metadata.AuthorizationEndpoint == "" {
		closeAll()
		return nil, fmt.Errorf("the provider at %s has no authorization endpoint; log in with the device flow instead (or give --auth-url)", o.issuer)
	}
	b := &BrowserLogin{
		RedirectURI: redirect,
		Timeout:     DefaultBrowserTimeout,
		SlowAfter:   DefaultSlowCallback,
		o:           o,
		state:       randomString(32),
		nonce:       randomString(32),
		verifier:    oauth2.GenerateVerifier(),
		path:        path,
		callback:    make(chan callbackResult, 1),
		outcome:     make(chan error, 1),
		closed:      make(chan struct{}),
		e:           e,
	}
	sentNonce := "" // only an ID token carries a nonce back
	if o.wantsIDToken() {
		sentNonce = b.nonce
	}
	methods := o.provider.Metadata.CodeChallengeMethods
	e.check("PKCE", len(methods) == 0 || slices.Contains(methods, "S256"),
		"S256 challenge sent; the provider lists "+fmt.Sprint(methods))
	b.URL = o.provider.AuthCodeURL(b.RedirectURI, o.scopes, b.state, sentNonce, b.verifier)
	client.TraceAuthorizeURL(e.Trace, b.URL) // redacted there: no state, nonce or challenge in a trace
	b.srv = &http.Server{Handler: http.HandlerFunc(b.serveCallback), ReadHeaderTimeout: 10 * time.Second}
	for _, ln := range lns {
		go func() { _ = b.srv.Serve(ln) }()
	}
	return b, nil
}

// listenCallback binds the loopback callback: 127.0.0.1 on a random port
// with path /callback, or the exact port of redirectURL (localhost on
// 127.0.0.1 and, when there is one, ::1). It returns the listeners, the
// redirect URI to send (redirectURL as given) and the callback's path.
func listenCallback(redirectURL string) ([]net.Listener, string, string, error) {
	if redirectURL == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, "", "", fmt.Errorf("open the loopback port for the browser's answer: %w", err)
		}
		return []net.Listener{ln}, fmt.Sprintf("http://127.0.0.1:%d/callback", ln.Addr().(*net.TCPAddr).Port), "/callback", nil
	}
	u, err := ParseRedirectURL(redirectURL)
	if err != nil {
		return nil, "", "", err
	}
	required, optional := listenAddrs(u)
	ln, err := net.Listen("tcp", required)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, "", "", fmt.Errorf("port %s of --redirect-url is in use by another program: stop that program (or wait for an "+
			"earlier login to end), or register another port at the provider and pass it with --redirect-url", u.Port())
	}
	if err != nil {
		return nil, "", "", fmt.Errorf("listen on %s for --redirect-url: %w", required, err)
	}
	lns := []net.Listener{ln}
	for _, addr := range optional {
		// A machine without IPv6 loopback still has 127.0.0.1.
		if ln6, err := net.Listen("tcp", addr); err == nil {
			lns = append(lns, ln6)
		}
	}
	path := u.Path
	if path == "" {
		path = "/"
	}
	return lns, redirectURL, path, nil
}

// FinishBrowserLogin waits for the browser's answer — at most b.Timeout,
// and no longer than ctx — then exchanges the code (with the PKCE verifier),
// verifies the ID token (signature, issuer, audience, expiry, nonce), and
// saves the tokens and the profile, making it current. The browser's page
// says how it ended. It always closes b. After b.SlowAfter without an
// answer it tells Env.Progress SlowCallbackHint, once, and waits on.
//
// Errors: ErrBrowserTimeout when no answer came, ErrAccessDenied when the
// user said no, ctx's error when ctx ended, and otherwise one saying what
// was wrong (a state or issuer mismatch, the provider's error, a token that
// fails verification).
func (e *Env) FinishBrowserLogin(ctx context.Context, b *BrowserLogin) (*LoginResult, error) {
	defer b.Close()
	timeout := b.Timeout
	if timeout <= 0 {
		timeout = DefaultBrowserTimeout
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var slow <-chan time.Time
	if b.SlowAfter > 0 && b.SlowAfter < timeout {
		st := time.NewTimer(b.SlowAfter)
		defer st.Stop()
		slow = st.C
	}
	var cb callbackResult
wait:
	for {
		select {
		case cb = <-b.callback:
			break wait
		case <-slow: // a timer's channel delivers once
			e.note("callback: none yet after " + b.SlowAfter.String())
			if e.Progress != nil {
				e.Progress(SlowCallbackHint)
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("browser login: %w", ctx.Err())
		case <-timer.C:
			return nil, fmt.Errorf("%w within %s: the login was not completed in the browser; start it again", ErrBrowserTimeout, timeout)
		case <-b.closed:
			return nil, errors.New("browser login: closed before the browser answered")
		}
	}
	res, err := func() (*LoginResult, error) {
		if cb.err != nil {
			return nil, cb.err
		}
		t, err := b.o.provider.Exchange(ctx, b.RedirectURI, cb.code, b.verifier)
		if err != nil {
			return nil, fmt.Errorf("exchange the authorization code: %w", err)
		}
		return e.finishOAuth(ctx, b.o, t, b.nonce)
	}()
	b.outcome <- err
	return res, err
}

// Close stops listening for the callback. It is safe to call more than
// once, and from another goroutine while FinishBrowserLogin waits.
func (b *BrowserLogin) Close() {
	b.closeOnce.Do(func() {
		close(b.closed)
		// Shutdown lets a callback page being written finish.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := b.srv.Shutdown(ctx); err != nil {
			_ = b.srv.Close()
		}
	})
}

// serveCallback takes the first request to /callback as the answer and
// refuses every later one; the page it shows waits for the login's end.
func (b *BrowserLogin) serveCallback(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != b.path {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !b.taken.CompareAndSwap(false, true) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusConflict)
		fmt.Fprintln(w, "This login already received its answer. You can close this window.")
		return
	}
	b.callback <- b.check(r.URL.Query())
	var err error
	select {
	case err = <-b.outcome:
	case <-b.closed:
		// The login may have ended with this very answer: its outcome,
		// when sent, wins over the closing that follows it.
		select {
		case err = <-b.outcome:
		default:
			err = errors.New("the login ended before this answer could be used (it timed out or was cancelled); start it again in the terminal")
		}
	case <-r.Context().Done():
		return
	}
	writePage(w, err)
}

// check validates the redirect's parameters in RFC 9207's order: state,
// then iss, then the answer itself.
func (b *BrowserLogin) check(q url.Values) callbackResult {
	e := b.e
	e.note("callback: the browser came back to " + b.RedirectURI)
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(b.state)) != 1 {
		e.check("state", false, "the answer's state is not the one this login sent")
		return callbackResult{err: errors.New("the browser's answer does not belong to this login (state mismatch); " +
			"start the login again, and use only the newest browser tab")}
	}
	e.check("state", true, "the answer's state is the one this login sent")
	iss, hasIss := q["iss"]
	want := b.o.provider.Issuer()
	switch {
	case hasIss && (len(iss) != 1 || iss[0] != want):
		e.check("iss (RFC 9207)", false, "the answer names another issuer than "+want)
		return callbackResult{err: fmt.Errorf("the browser's answer names another issuer than %s (a mix-up of providers?); start the login again",
			want)}
	case !hasIss && b.o.provider.Metadata.IssParameterSupported:
		e.check("iss (RFC 9207)", false, "missing, although the provider promises to send it")
		return callbackResult{err: errors.New("the browser's answer lacks the issuer (iss) the provider promises to send; start the login again")}
	case hasIss:
		e.check("iss (RFC 9207)", true, want)
	default:
		e.check("iss (RFC 9207)", true, "not sent; the provider does not promise it")
	}
	if code := q.Get("error"); code != "" {
		desc := printable(q.Get("error_description"))
		if code == "access_denied" {
			return callbackResult{err: fmt.Errorf("%w: the request was denied in the browser", ErrAccessDenied)}
		}
		msg := "the provider refused the login: " + printable(code)
		if desc != "" {
			msg += " (" + desc + ")"
		}
		return callbackResult{err: errors.New(msg)}
	}
	if q.Get("code") == "" {
		return callbackResult{err: errors.New("the browser's answer has neither a code nor an error")}
	}
	return callbackResult{code: q.Get("code")}
}

// printable shortens text from the provider and drops control characters.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return s
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>latch: {{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}
h1{font-size:1.4em}.ok{color:#176b2c}.bad{color:#a11}</style></head>
<body><h1 class="{{.Class}}">{{.Title}}</h1><p>{{.Message}}</p>
<p>You can close this window and return to the terminal.</p></body></html>
`))

// writePage answers the browser with a self-contained page (no scripts, no
// external assets). err's message holds no secret: flows never put one there.
func writePage(w http.ResponseWriter, err error) {
	data := struct{ Title, Class, Message string }{"Logged in", "ok", "latch is now logged in."}
	status := http.StatusOK
	if err != nil {
		data = struct{ Title, Class, Message string }{"Login failed", "bad", err.Error()}
		status = http.StatusBadRequest
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, data)
}

// ErrNoBrowser means OpenBrowser did not open anything because
// LATCH_BROWSER=none: the caller shows the URL (it always should).
var ErrNoBrowser = errors.New("not opening a browser (LATCH_BROWSER=none)")

var quietBrowser sync.Once

// OpenBrowser opens url in the user's browser, as best it can; callers show
// the URL whatever happens. LATCH_BROWSER chooses how: "none" opens nothing
// (ErrNoBrowser); any other value is a program run with the URL as its only
// argument, without a shell, and not waited for; unset means the system's
// default browser (github.com/cli/browser, with its output silenced). Only
// http and https URLs are opened.
func OpenBrowser(url string) error {
	return openBrowser(os.Getenv, url, func(u string) error {
		quietBrowser.Do(func() { browser.Stdout, browser.Stderr = io.Discard, io.Discard })
		return browser.OpenURL(u)
	})
}

func openBrowser(getenv func(string) string, rawURL string, system func(string) error) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("open browser: not an http(s) URL")
	}
	switch prog := getenv("LATCH_BROWSER"); prog {
	case "none":
		return ErrNoBrowser
	case "":
		if err := system(rawURL); err != nil {
			return fmt.Errorf("open browser: %w", err)
		}
		return nil
	default:
		cmd := exec.Command(prog, rawURL)
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("open browser with LATCH_BROWSER=%s: %w", prog, err)
		}
		go func() { _ = cmd.Wait() }() // reap it whenever it ends
		return nil
	}
}
