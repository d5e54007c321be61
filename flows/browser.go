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
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/cli/browser"
	"golang.org/x/oauth2"
)

// DefaultBrowserTimeout bounds the wait for the browser's answer.
const DefaultBrowserTimeout = 5 * time.Minute

// BrowserLogin is an authorization code login with PKCE through the user's
// browser and a loopback redirect (RFC 8252). StartBrowserLogin makes one;
// the caller shows or opens URL (OpenBrowser), then FinishBrowserLogin waits
// for the provider's redirect to http://127.0.0.1:PORT/callback and
// completes the login. Close abandons it; FinishBrowserLogin closes it too.
type BrowserLogin struct {
	// URL is the authorization URL to open in a browser, print, or show as
	// a QR code. It holds no secret.
	URL string
	// RedirectURI is the loopback callback the provider redirects to.
	RedirectURI string
	// Timeout bounds FinishBrowserLogin's wait for the callback;
	// StartBrowserLogin sets DefaultBrowserTimeout. Change it before Finish.
	Timeout time.Duration

	o                      *oauthLogin
	state, nonce, verifier string
	srv                    *http.Server
	taken                  atomic.Bool
	callback               chan callbackResult // the one accepted callback
	outcome                chan error          // the login's end, for the page
	closed                 chan struct{}
	closeOnce              sync.Once
}

type callbackResult struct {
	code string
	err  error
}

// StartBrowserLogin binds the loopback callback on 127.0.0.1 (never
// "localhost": some providers refuse it), discovers the provider and builds
// the authorization URL with a fresh state, nonce and PKCE S256 challenge.
// Nothing is saved until FinishBrowserLogin.
func (e *Env) StartBrowserLogin(ctx context.Context, req OAuthRequest) (*BrowserLogin, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("open the loopback port for the browser's answer: %w", err)
	}
	o, err := e.prepareOAuth(ctx, req)
	if err != nil {
		ln.Close()
		return nil, err
	}
	if o.provider.Metadata.AuthorizationEndpoint == "" {
		ln.Close()
		return nil, fmt.Errorf("the provider at %s has no authorization endpoint; log in with the device flow instead", o.issuer)
	}
	b := &BrowserLogin{
		RedirectURI: fmt.Sprintf("http://127.0.0.1:%d/callback", ln.Addr().(*net.TCPAddr).Port),
		Timeout:     DefaultBrowserTimeout,
		o:           o,
		state:       randomString(32),
		nonce:       randomString(32),
		verifier:    oauth2.GenerateVerifier(),
		callback:    make(chan callbackResult, 1),
		outcome:     make(chan error, 1),
		closed:      make(chan struct{}),
	}
	cfg := o.provider.OAuth2Config(b.RedirectURI, o.scopes)
	b.URL = cfg.AuthCodeURL(b.state, oauth2.S256ChallengeOption(b.verifier), oauth2.SetAuthURLParam("nonce", b.nonce))
	mux := http.NewServeMux()
	mux.HandleFunc("/callback", b.serveCallback)
	b.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = b.srv.Serve(ln) }()
	return b, nil
}

// FinishBrowserLogin waits for the browser's answer — at most b.Timeout,
// and no longer than ctx — then exchanges the code (with the PKCE verifier),
// verifies the ID token (signature, issuer, audience, expiry, nonce), and
// saves the tokens and the profile, making it current. The browser's page
// says how it ended. It always closes b.
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
	var cb callbackResult
	select {
	case cb = <-b.callback:
	case <-ctx.Done():
		return nil, fmt.Errorf("browser login: %w", ctx.Err())
	case <-timer.C:
		return nil, fmt.Errorf("%w within %s: the login was not completed in the browser; start it again", ErrBrowserTimeout, timeout)
	case <-b.closed:
		return nil, errors.New("browser login: closed before the browser answered")
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
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(b.state)) != 1 {
		return callbackResult{err: errors.New("the browser's answer does not belong to this login (state mismatch); " +
			"start the login again, and use only the newest browser tab")}
	}
	iss, hasIss := q["iss"]
	switch {
	case hasIss && (len(iss) != 1 || iss[0] != b.o.provider.Issuer()):
		return callbackResult{err: fmt.Errorf("the browser's answer names another issuer than %s (a mix-up of providers?); start the login again",
			b.o.provider.Issuer())}
	case !hasIss && b.o.provider.Metadata.IssParameterSupported:
		return callbackResult{err: errors.New("the browser's answer lacks the issuer (iss) the provider promises to send; start the login again")}
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
