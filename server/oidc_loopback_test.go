package server

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// A command-line client written for other providers, with a fixed redirect
// on localhost (kubelogin's http://localhost:8000 style), logs in with the
// built-in latch-cli: authorization code with S256 PKCE, its own listener
// on a free port receiving the code, and an ID token that verifies. The
// loopback IP literals keep working, on any port and path.
func TestOIDCCLIClientAnyLoopbackRedirect(t *testing.T) {
	e := newOPEnv(t)
	e.register("alice", "alice@example.com")
	for _, tc := range []struct{ host, path string }{
		{"localhost", "/"},
		{"localhost", "/oauth2/callback"},
		{"127.0.0.1", "/callback"},
		{"127.0.0.1", "/"},
		{"[::1]", "/callback"},
		{"[::1]", "/cb"},
	} {
		t.Run(tc.host+tc.path, func(t *testing.T) {
			listenOn := tc.host
			if listenOn == "localhost" {
				listenOn = "127.0.0.1" // the tests touch only 127.0.0.1 and ::1
			}
			ln, err := net.Listen("tcp", net.JoinHostPort(strings.Trim(listenOn, "[]"), "0"))
			if err != nil {
				t.Skipf("cannot listen on %s: %v", listenOn, err)
			}
			port := ln.Addr().(*net.TCPAddr).Port
			redirect := "http://" + tc.host + ":" + strconv.Itoa(port) + tc.path
			cfg := e.oauthConfig(CLIClientID, "", redirect)
			a := newAuthorization(cfg)
			got := make(chan url.Values, 1)
			srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != tc.path {
					http.NotFound(w, r)
					return
				}
				select {
				case got <- r.URL.Query():
				default:
				}
				w.Write([]byte("signed in"))
			})}
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })

			b := e.newBrowser()
			p := b.Next(submitLogin(t, b, b.Get(a.url()), "alice"))
			q := e.callback(t, a, p)
			// The browser follows the redirect to the client's listener.
			deliver := *p.Redirect
			deliver.Host = net.JoinHostPort(strings.Trim(listenOn, "[]"), strconv.Itoa(port))
			res, err := http.Get(deliver.String())
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			var at url.Values
			select {
			case at = <-got:
			case <-time.After(10 * time.Second):
				t.Fatal("the client's listener got no callback")
			}
			if at.Get("code") != q.Get("code") || at.Get("state") != a.state {
				t.Fatalf("callback %v, want the code and state of %v", at, q)
			}
			tok, err := cfg.Exchange(context.Background(), at.Get("code"), oauth2.VerifierOption(a.verifier))
			if err != nil {
				t.Fatal(err)
			}
			e.verifyID(t, tok, CLIClientID, a.nonce)
		})
	}
}

// The rule itself, on the built-in client and on a configured one (which
// keeps exact matching but for the port of a loopback IP literal).
func TestRedirectRule(t *testing.T) {
	cli := cliClient()
	configured, err := newClient(ClientConfig{ID: "notes", RedirectURIs: []string{"http://127.0.0.1/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		uri             string
		cli, configured bool
	}{
		{"http://localhost:8000/", true, false},
		{"http://localhost:8000", true, false},
		{"http://localhost/callback", true, false},
		{"http://localhost:65535/a/b/c", true, false},
		{"http://127.0.0.1:5555/callback", true, false},
		{"http://127.0.0.1:5555/anything", true, false},
		{"http://[::1]:5555/callback", true, false},
		{"http://[::1]/x", true, false},
		{"http://127.0.0.1:7777/cb", true, true},
		{"http://127.0.0.1/cb", true, true},
		// Refused: not loopback, not plain http, user info, query,
		// fragment, odd ports and other loopback addresses.
		{"https://localhost:8000/", false, false},
		{"https://127.0.0.1:8000/callback", false, false},
		{"http://localhost.:8000/", false, false},
		{"http://localhost.evil.example:8000/", false, false},
		{"http://evil.example/callback", false, false},
		{"http://localhost:8000@evil.example/", false, false},
		{"http://user@localhost:8000/", false, false},
		{"http://user:pw@127.0.0.1:8000/callback", false, false},
		{"http://localhost:8000/?x=1", false, false},
		{"http://localhost:8000/?", false, false},
		{"http://localhost:8000/#frag", false, false},
		{"http://localhost:0/", false, false},
		{"http://localhost:65536/", false, false},
		{"http://localhost:80a/", false, false},
		{"http://127.0.0.2:5555/callback", false, false},
		{"http://[::ffff:127.0.0.1]:5555/callback", false, false},
		{"http://0.0.0.0:5555/callback", false, false},
		{"myapp://localhost/cb", false, false},
		{"http:localhost:8000/", false, false},
		{"//localhost:8000/", false, false},
		{"", false, false},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			if got := cli.redirectAllowed(tc.uri); got != tc.cli {
				t.Errorf("latch-cli: allowed = %v, want %v", got, tc.cli)
			}
			if got := configured.redirectAllowed(tc.uri); got != tc.configured {
				t.Errorf("configured client: allowed = %v, want %v", got, tc.configured)
			}
		})
	}
}

// Refused redirects get the error page, never a redirect, end to end.
func TestOIDCCLIClientRefusedRedirects(t *testing.T) {
	e := newOPEnv(t)
	for _, redirect := range []string{
		"https://localhost:8000/", "http://localhost:8000@evil.example/", "http://user@localhost:8000/",
		"http://evil.example/", "http://localhost:8000/?x=1", "http://127.0.0.2:8000/callback",
	} {
		t.Run(redirect, func(t *testing.T) {
			a := newAuthorization(e.oauthConfig(CLIClientID, "", redirect))
			p := e.newBrowser().Get(a.url())
			if p.Redirect != nil || p.Status != http.StatusBadRequest {
				t.Fatalf("want an error page, got %d redirect %v", p.Status, p.Redirect)
			}
		})
	}
}
