// Package webform is a browser for tests: an HTTP client with cookies that
// follows a server's redirects, parses its pages and submits their forms the
// way a person would. It stops at redirects to any other host (an OAuth
// client's redirect URI), so the test sees where the server sent it.
//
// It checks every HTML page it reads for what latch's pages promise: a strict
// Content-Security-Policy, no Referer sent on, and nothing loaded from
// elsewhere. It fails the test on a 307 or 308 answer to a POST: a browser
// would resend the form, password included, to wherever it points (RFC 9700
// §4.12), so latch's pages never send one.
package webform

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// Browser is one browser with its own cookies, at one server.
type Browser struct {
	t    testing.TB
	c    *http.Client
	host string
}

// New makes a browser that stays on server (a base URL).
func New(t testing.TB, server string) *Browser {
	jar, _ := cookiejar.New(nil)
	u, err := url.Parse(server)
	if err != nil {
		t.Fatal(err)
	}
	b := &Browser{t: t, host: u.Host}
	b.c = &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if err := postRedirect(via[len(via)-1], req.Response); err != nil {
			return err
		}
		if req.URL.Host != b.host || len(via) > 10 {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

// postRedirect is an error if res, the answer to req, is a redirect that
// keeps the method and body of a POST.
func postRedirect(req *http.Request, res *http.Response) error {
	if req.Method == http.MethodPost && res != nil &&
		(res.StatusCode == http.StatusTemporaryRedirect || res.StatusCode == http.StatusPermanentRedirect) {
		return fmt.Errorf("POST %s answered %d to %s: a browser would resend the form there", req.URL, res.StatusCode, res.Header.Get("Location"))
	}
	return nil
}

// Page is what the browser got: a page of the server, or a redirect out.
type Page struct {
	Status   int
	URL      *url.URL
	Header   http.Header
	Body     string
	Doc      *html.Node // nil unless the answer was HTML
	Redirect *url.URL   // set when the server sent the browser elsewhere
}

// Do sends req and reads the answer.
func (b *Browser) Do(req *http.Request) *Page {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	if err := postRedirect(req, res); err != nil {
		b.t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	p := &Page{Status: res.StatusCode, URL: res.Request.URL, Header: res.Header, Body: string(raw)}
	if loc := res.Header.Get("Location"); res.StatusCode/100 == 3 && loc != "" {
		p.Redirect, _ = res.Request.URL.Parse(loc)
		return p
	}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		if p.Doc, err = html.Parse(strings.NewReader(p.Body)); err != nil {
			b.t.Fatal(err)
		}
		CheckPageSafe(b.t, p)
	}
	return p
}

// Get opens u.
func (b *Browser) Get(u string) *Page {
	b.t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.Do(req)
}

// Submit fills the page's only form with values (fields not given keep
// their value; a value of "\x00" removes the field) and presses button
// (name, value) if given.
func (b *Browser) Submit(p *Page, values map[string]string, button ...string) *Page {
	b.t.Helper()
	form := Find(p.Doc, func(n *html.Node) bool { return n.Data == "form" })
	if form == nil {
		b.t.Fatalf("no form on %s (status %d): %s", p.URL, p.Status, p.Body)
	}
	v := url.Values{}
	Walk(form, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "input" && Attr(n, "name") != "" {
			v.Set(Attr(n, "name"), Attr(n, "value"))
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
	action, err := p.URL.Parse(Attr(form, "action"))
	if err != nil {
		b.t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", action.String(), strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.Do(req)
}

// Next follows a result page that moves on by itself (its continue link).
func (b *Browser) Next(p *Page) *Page {
	b.t.Helper()
	a := Find(p.Doc, func(n *html.Node) bool { return n.Data == "a" && Attr(n, "id") == "continue" })
	if a == nil {
		b.t.Fatalf("no continue link on %s: %s", p.URL, p.Body)
	}
	return b.Get(Attr(a, "href"))
}

// Field finds an input by name.
func (p *Page) Field(name string) *html.Node {
	return Find(p.Doc, func(n *html.Node) bool { return n.Data == "input" && Attr(n, "name") == name })
}

// Text is the page's visible text, squeezed.
func (p *Page) Text() string {
	var sb strings.Builder
	Walk(p.Doc, func(n *html.Node) {
		if n.Type == html.TextNode && n.Parent != nil && n.Parent.Data != "style" {
			sb.WriteString(n.Data + " ")
		}
	})
	return strings.Join(strings.Fields(sb.String()), " ")
}

// CheckPageSafe fails t unless the page has the strict CSP, sends no
// Referer on (its URL may carry a request id or a user code), and loads
// nothing from elsewhere.
func CheckPageSafe(t testing.TB, p *Page) {
	t.Helper()
	if rp := p.Header.Get("Referrer-Policy"); rp != "no-referrer" {
		t.Errorf("%s: Referrer-Policy %q, want no-referrer", p.URL, rp)
	}
	csp := p.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "form-action 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("%s: CSP %q lacks %q", p.URL, csp, want)
		}
	}
	Walk(p.Doc, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		for _, k := range []string{"src", "href", "action"} {
			v := Attr(n, k)
			if v == "" {
				continue
			}
			if u, err := url.Parse(v); err != nil || (u.Host != "" && u.Host != p.URL.Host) {
				t.Errorf("%s: <%s %s=%q> loads from elsewhere", p.URL, n.Data, k, v)
			}
		}
		if n.Data == "script" || n.Data == "link" || n.Data == "img" {
			t.Errorf("%s: has a <%s>", p.URL, n.Data)
		}
	})
}

// Walk calls f on n and every node below it.
func Walk(n *html.Node, f func(*html.Node)) {
	if n == nil {
		return
	}
	f(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		Walk(c, f)
	}
}

// Find is the first element below n that match accepts, or nil.
func Find(n *html.Node, match func(*html.Node) bool) *html.Node {
	var found *html.Node
	Walk(n, func(x *html.Node) {
		if found == nil && x.Type == html.ElementNode && match(x) {
			found = x
		}
	})
	return found
}

// Attr is n's attribute key, or "".
func Attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}
