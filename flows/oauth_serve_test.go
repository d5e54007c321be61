package flows

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"golang.org/x/net/html"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/internal/webform"
	"github.com/latch-dev/latch/server"
	"github.com/latch-dev/latch/vault"
)

// The OAuth flows against latch's own provider (an in-process latch serve),
// with a browser that is an HTTP client filling in the server's pages.

const servePassword = "correct horse battery staple"

// serveEnv is an Env and a latch server whose issuer is its own loopback
// URL. The server's clock is the wall clock (its OpenID library stamps
// tokens from the wall clock) plus an offset the test may move on.
type serveEnv struct {
	*Env
	t     testing.TB
	ctx   context.Context
	url   string
	clock *wallClock
	api   *client.Client
}

type wallClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *wallClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *wallClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

func newServeEnv(t testing.TB, mod ...func(*server.Config)) *serveEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	c := &wallClock{}
	cfg := server.Config{
		DBPath: server.MemoryDB, Issuer: url, SecretKey: bytes.Repeat([]byte{5}, 32),
		RateIP: -1, RateAccount: -1, Now: c.Now,
		DevicePoll: time.Second,
	}
	for _, f := range mod {
		f(&cfg)
	}
	srv, err := server.New(ctx, cfg)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	hs := &httptest.Server{Listener: ln, Config: &http.Server{Handler: srv.Handler()}}
	hs.Start()
	t.Cleanup(func() { hs.Close(); srv.Close() })
	api, err := client.New(url, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &serveEnv{
		Env: &Env{Home: t.TempDir(), Secrets: vault.NewMemory()},
		t:   t, ctx: ctx, url: url, clock: c, api: api,
	}
}

// register makes an account; with mfa, it also turns two-factor on and
// returns the TOTP secret.
func (s *serveEnv) register(name string, mfa bool) string {
	s.t.Helper()
	if _, err := s.api.Register(s.ctx, name, name+"@example.com", servePassword); err != nil {
		s.t.Fatal(err)
	}
	if !mfa {
		return ""
	}
	tok, err := s.api.Login(s.ctx, name, servePassword)
	if err != nil {
		s.t.Fatal(err)
	}
	setup, err := s.api.MFASetup(s.ctx, tok.AccessToken)
	if err != nil {
		s.t.Fatal(err)
	}
	code, _ := totp.GenerateCode(setup.Secret, s.clock.Now())
	if _, err := s.api.MFAEnable(s.ctx, tok.AccessToken, code); err != nil {
		s.t.Fatal(err)
	}
	// The enrolment's time step is spent; logins use the next one.
	s.clock.Add(30 * time.Second)
	return setup.Secret
}

// signIn fills the login page (and the code page when secret is set) and
// returns the page after it.
func (s *serveEnv) signIn(b *webform.Browser, p *webform.Page, name, secret string) *webform.Page {
	s.t.Helper()
	if p.Field("username") == nil || p.Field("password") == nil {
		s.t.Fatalf("want the login page, got %d %s: %s", p.Status, p.URL, p.Text())
	}
	p = b.Submit(p, map[string]string{"username": name, "password": servePassword})
	if secret == "" {
		return p
	}
	if p.Field("code") == nil {
		s.t.Fatalf("want the two-factor page, got %d: %s", p.Status, p.Text())
	}
	code, _ := totp.GenerateCode(secret, s.clock.Now())
	return b.Submit(p, map[string]string{"code": code})
}

// followToClient follows the pages that move on by themselves (their
// continue link) until the server sends the browser to the OAuth client,
// and returns the client's URL.
func (s *serveEnv) followToClient(b *webform.Browser, p *webform.Page) string {
	s.t.Helper()
	for range 5 {
		if p.Redirect != nil {
			return p.Redirect.String()
		}
		a := webform.Find(p.Doc, func(n *html.Node) bool { return n.Data == "a" && webform.Attr(n, "id") == "continue" })
		if a == nil {
			break
		}
		p = b.Get(webform.Attr(a, "href"))
	}
	s.t.Fatalf("the browser was not sent back to latch: %d %s: %s", p.Status, p.URL, p.Text())
	return ""
}

// visit opens a URL on latch's loopback listener, as the browser does, and
// returns the page (or the error, as text: it runs off the test goroutine).
func visit(u string) string {
	res, err := http.Get(u)
	if err != nil {
		return "visit: " + err.Error()
	}
	defer res.Body.Close()
	var body bytes.Buffer
	body.ReadFrom(res.Body)
	return body.String()
}

func TestServeBrowserLogin(t *testing.T) {
	for _, tc := range []struct {
		name string
		mfa  bool
	}{{"password", false}, {"two-factor", true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServeEnv(t)
			secret := s.register("ada", tc.mfa)
			b, err := s.StartBrowserLogin(s.ctx, OAuthRequest{Server: s.url})
			if err != nil {
				t.Fatal(err)
			}
			browser := webform.New(t, s.url)
			back := s.followToClient(browser, s.signIn(browser, browser.Get(b.URL), "ada", secret))
			if !strings.HasPrefix(back, b.RedirectURI+"?") {
				t.Fatalf("sent back to %s, want %s", back, b.RedirectURI)
			}
			page := make(chan string, 1)
			go func() { page <- visit(back) }()
			res, err := s.FinishBrowserLogin(s.ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			if body := <-page; !strings.Contains(body, "close this window") {
				t.Errorf("the callback page: %s", body)
			}
			p := res.Profile
			if p.Kind != vault.KindOIDC || p.Server != s.url || p.Issuer != s.url || p.ClientID != DefaultClientID || p.Username != "ada" {
				t.Fatalf("profile %+v", p)
			}
			// The provider's access token works on the account API, and
			// the grant is one of the account's sessions.
			me, err := s.Me(s.ctx, p.Name)
			if err != nil || me.Username != "ada" {
				t.Fatalf("me: %+v %v", me, err)
			}
			sessions, err := s.Sessions(s.ctx, p.Name)
			if err != nil || len(sessions) == 0 {
				t.Fatalf("sessions: %v %v", sessions, err)
			}
			view, err := s.Inspect(s.ctx, p.Name)
			if err != nil || view.ID == nil {
				t.Fatalf("inspect shows no ID token: %+v %v", view, err)
			}
			// Refresh rotates at the provider; logout revokes there.
			if err := s.RefreshNow(s.ctx, p.Name); err != nil {
				t.Fatal(err)
			}
			if me, err := s.Me(s.ctx, p.Name); err != nil || me.Username != "ada" {
				t.Fatalf("me after a refresh: %+v %v", me, err)
			}
			if _, err := s.Logout(s.ctx, p.Name, false, false); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Token(s.ctx, p.Name); !errors.Is(err, ErrLoginRequired) {
				t.Fatalf("token after logout: %v", err)
			}
		})
	}
}

// A wrong password leaves the user on the login page and latch waiting; the
// right one then completes the same login.
func TestServeBrowserLoginWrongPassword(t *testing.T) {
	s := newServeEnv(t)
	s.register("bob", false)
	b, err := s.StartBrowserLogin(s.ctx, OAuthRequest{Server: s.url})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	browser := webform.New(t, s.url)
	p := browser.Submit(browser.Get(b.URL), map[string]string{"username": "bob", "password": "wrong password"})
	if p.Field("password") == nil || p.Redirect != nil {
		t.Fatalf("a wrong password left the login page: %d %s", p.Status, p.Text())
	}
	back := s.followToClient(browser, s.signIn(browser, p, "bob", ""))
	go visit(back)
	if _, err := s.FinishBrowserLogin(s.ctx, b); err != nil {
		t.Fatal(err)
	}
}

// approveDevice enters the user code on the verification page, signs in and
// answers the consent page with decision.
func (s *serveEnv) approveDevice(d *DeviceLogin, name, secret, decision string) *webform.Page {
	s.t.Helper()
	browser := webform.New(s.t, s.url)
	p := browser.Get(d.VerificationURI)
	p = browser.Submit(p, map[string]string{"user_code": d.UserCode})
	p = s.signIn(browser, p, name, secret)
	if !strings.Contains(p.Text(), "latch (command line)") {
		s.t.Fatalf("want the consent page naming the client, got: %s", p.Text())
	}
	return browser.Submit(p, nil, "decision", decision)
}

func TestServeDeviceLogin(t *testing.T) {
	for _, tc := range []struct {
		name string
		mfa  bool
	}{{"password", false}, {"two-factor", true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServeEnv(t)
			secret := s.register("cyd", tc.mfa)
			d, err := s.StartDeviceLogin(s.ctx, OAuthRequest{Server: s.url})
			if err != nil {
				t.Fatal(err)
			}
			if d.VerificationURI != s.url+"/device" || !strings.Contains(d.VerificationURIComplete, d.UserCode) || d.Interval != time.Second {
				t.Fatalf("device login %+v", d)
			}
			done := make(chan error, 1)
			var res *LoginResult
			go func() { var err error; res, err = s.FinishDeviceLogin(s.ctx, d); done <- err }()
			if p := s.approveDevice(d, "cyd", secret, "approve"); !strings.Contains(p.Text(), "pproved") {
				t.Fatalf("after approval: %s", p.Text())
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if res.Profile.Username != "cyd" || res.Profile.Server != s.url {
				t.Fatalf("profile %+v", res.Profile)
			}
			// The device grant's refresh token refreshes (the client id is
			// recorded), and its subject is the account's.
			if err := s.RefreshNow(s.ctx, res.Profile.Name); err != nil {
				t.Fatal(err)
			}
			if me, err := s.Me(s.ctx, res.Profile.Name); err != nil || me.Username != "cyd" {
				t.Fatalf("me after a device login: %+v %v", me, err)
			}
		})
	}
}

func TestServeDeviceLoginDenied(t *testing.T) {
	s := newServeEnv(t)
	s.register("dia", false)
	d, err := s.StartDeviceLogin(s.ctx, OAuthRequest{Server: s.url})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := s.FinishDeviceLogin(s.ctx, d); done <- err }()
	s.approveDevice(d, "dia", "", "deny")
	if err := <-done; !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("denied device login: %v", err)
	}
	if cfg, _ := s.Config(); cfg != nil && len(cfg.Profiles) != 0 {
		t.Fatalf("a denied login saved a profile: %+v", cfg.Profiles)
	}
}

func TestServeDeviceLoginExpired(t *testing.T) {
	s := newServeEnv(t)
	s.register("eda", false)
	d, err := s.StartDeviceLogin(s.ctx, OAuthRequest{Server: s.url})
	if err != nil {
		t.Fatal(err)
	}
	s.clock.Add(time.Until(d.ExpiresAt) + time.Second)
	if _, err := s.FinishDeviceLogin(s.ctx, d); !errors.Is(err, ErrDeviceCodeExpired) {
		t.Fatalf("expired device code: %v", err)
	}
}
