package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/oauth2"
)

// newOPEnv starts a server whose issuer is its own loopback URL, so that a
// browser and OAuth clients can follow it. Its clock starts at the wall
// time: op stamps iat, nbf and ID-token expiry from the wall clock itself.
func newOPEnv(t *testing.T, mod ...func(*Config)) *env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Now().Truncate(time.Second)}
	logs := &syncBuffer{}
	cfg := Config{
		DBPath:    MemoryDB,
		Issuer:    "http://" + ln.Addr().String(),
		SecretKey: bytes.Repeat([]byte{7}, 32),
		Logger:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:       c.Now,
		RateIP:    -1, RateAccount: -1,
		argon: &testArgon,
	}
	for _, m := range mod {
		m(&cfg)
	}
	srv, err := New(context.Background(), cfg)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return &env{t: t, srv: srv, http: hs, clock: c, logs: logs}
}

// cliConfig is latch-cli as an x/oauth2 client, redirecting to host (any
// port: the client does not listen, the browser stops at the redirect).
func (e *env) cliConfig(redirectHost string) *oauth2.Config {
	return e.oauthConfig(CLIClientID, "", "http://"+redirectHost+"/callback")
}

func (e *env) oauthConfig(id, secret, redirect string) *oauth2.Config {
	iss := e.srv.cfg.Issuer
	return &oauth2.Config{
		ClientID: id, ClientSecret: secret, RedirectURL: redirect,
		Scopes: []string{"openid", "profile", "email", "offline_access"},
		Endpoint: oauth2.Endpoint{
			AuthURL: iss + "/authorize", TokenURL: iss + "/oauth/token", DeviceAuthURL: iss + "/device_authorization",
		},
	}
}

// browser is an HTTP client with cookies that follows redirects within the
// server and stops at any other host: the OAuth client's redirect URI.
type browser struct {
	t    *testing.T
	c    *http.Client
	host string
}

func (e *env) newBrowser() *browser {
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(e.http.URL)
	b := &browser{t: e.t, host: u.Host}
	b.c = &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != b.host || len(via) > 10 {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

// page is what the browser got: a page of the server, or a redirect out.
type page struct {
	status   int
	url      *url.URL
	header   http.Header
	body     string
	doc      *html.Node
	redirect *url.URL // set when the server sent the browser elsewhere
}

func (b *browser) do(req *http.Request) *page {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	p := &page{status: res.StatusCode, url: res.Request.URL, header: res.Header, body: string(raw)}
	if loc := res.Header.Get("Location"); res.StatusCode/100 == 3 && loc != "" {
		p.redirect, _ = res.Request.URL.Parse(loc)
		return p
	}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		if p.doc, err = html.Parse(strings.NewReader(p.body)); err != nil {
			b.t.Fatal(err)
		}
		checkPageSafe(b.t, p)
	}
	return p
}

func (b *browser) get(u string) *page {
	b.t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// submit fills the page's only form with values (fields not given keep
// their value) and presses button (name=value) if given.
func (b *browser) submit(p *page, values map[string]string, button ...string) *page {
	b.t.Helper()
	form := find(p.doc, func(n *html.Node) bool { return n.Data == "form" })
	if form == nil {
		b.t.Fatalf("no form on %s (status %d): %s", p.url, p.status, p.body)
	}
	v := url.Values{}
	walk(form, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "input" && attr(n, "name") != "" {
			v.Set(attr(n, "name"), attr(n, "value"))
		}
	})
	for k, x := range values {
		if x == "\x00" {
			v.Del(k)
		} else {
			v.Set(k, x)
		}
	}
	if len(button) == 2 {
		v.Set(button[0], button[1])
	}
	action, err := p.url.Parse(attr(form, "action"))
	if err != nil {
		b.t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", action.String(), strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// next follows a result page that moves on by itself (meta refresh).
func (b *browser) next(p *page) *page {
	b.t.Helper()
	a := find(p.doc, func(n *html.Node) bool { return n.Data == "a" && attr(n, "id") == "continue" })
	if a == nil {
		b.t.Fatalf("no continue link on %s: %s", p.url, p.body)
	}
	return b.get(attr(a, "href"))
}

// field finds an input by name.
func field(p *page, name string) *html.Node {
	return find(p.doc, func(n *html.Node) bool { return n.Data == "input" && attr(n, "name") == name })
}

// checkPageSafe: every page has the strict CSP and loads nothing from
// elsewhere.
func checkPageSafe(t *testing.T, p *page) {
	t.Helper()
	csp := p.header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "form-action 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("%s: CSP %q lacks %q", p.url, csp, want)
		}
	}
	walk(p.doc, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		for _, k := range []string{"src", "href", "action"} {
			v := attr(n, k)
			if v == "" {
				continue
			}
			if u, err := url.Parse(v); err != nil || (u.Host != "" && u.Host != p.url.Host) {
				t.Errorf("%s: <%s %s=%q> loads from elsewhere", p.url, n.Data, k, v)
			}
		}
		if n.Data == "script" || n.Data == "link" || n.Data == "img" {
			t.Errorf("%s: has a <%s>", p.url, n.Data)
		}
	})
}

func walk(n *html.Node, f func(*html.Node)) {
	f(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

func find(n *html.Node, match func(*html.Node) bool) *html.Node {
	var found *html.Node
	walk(n, func(x *html.Node) {
		if found == nil && x.Type == html.ElementNode && match(x) {
			found = x
		}
	})
	return found
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// text is the page's visible text, squeezed.
func (p *page) text() string {
	var sb strings.Builder
	walk(p.doc, func(n *html.Node) {
		if n.Type == html.TextNode && n.Parent != nil && n.Parent.Data != "style" {
			sb.WriteString(n.Data + " ")
		}
	})
	return strings.Join(strings.Fields(sb.String()), " ")
}

// postForm sends a form to the server as an OAuth client would, and
// decodes the JSON answer.
func (e *env) postForm(path string, v url.Values, basic ...string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.http.URL+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if len(basic) == 2 {
		req.SetBasicAuth(basic[0], basic[1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	raw, _ := io.ReadAll(res.Body)
	json.Unmarshal(raw, &m)
	return res.StatusCode, m
}

// oauthErr is the OAuth error code of a failed x/oauth2 call.
func oauthErr(err error) string {
	if re, ok := err.(*oauth2.RetrieveError); ok {
		return re.ErrorCode
	}
	return ""
}

type htmlNode = html.Node
