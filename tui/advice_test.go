package tui

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/vault"
)

// flagAdvice is advice that only works on the command line: a flag, or a
// latch command to run.
var flagAdvice = regexp.MustCompile(`--\w|latch (login|logout|profile|signup|mfa|vault) `)

// The interface's errors say what to do in the interface: the flows' and the
// client's messages advise flags, which the interface has no place for.
func TestExplainAdvisesTheInterfaceNotFlags(t *testing.T) {
	h := newHarness(t)
	serve := func(hf http.HandlerFunc) string {
		s := httptest.NewServer(hf)
		t.Cleanup(s.Close)
		return s.URL
	}
	config := func(url string) error {
		t.Helper()
		c, err := client.New(url, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Config(h.ctx)
		return err
	}
	_, insecure := client.New("http://auth.example.com", client.Options{})
	redirect := serve(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://auth.example.com/auth/config", http.StatusTemporaryRedirect)
	})
	html := serve(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html><body>hello</body></html>"))
	})
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	if err := vault.UpdateConfig(h.ctx, h.env.Home, func(c *vault.Config) error {
		return c.Put(vault.Profile{Name: "idp", Issuer: "https://idp.example.com", ClientID: "latch-cli", Kind: vault.KindOIDC})
	}); err != nil {
		t.Fatal(err)
	}
	_, oidcSessions := h.env.Sessions(h.ctx, "idp")
	unknownProfile := h.env.UseProfile(h.ctx, "nope")

	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"plain http to another host", insecure, "Use https://, or a loopback address"},
		{"unreachable", config(down.URL), "check the server's URL and that the server is running"},
		{"redirect", config(redirect), "add the final URL as a server (a on the Profiles screen)"},
		{"an HTML page", config(html), "not a latch server's"},
		{"account actions of an OpenID profile", oidcSessions, "add its server (a) and log in (l)"},
		{"unknown profile", unknownProfile, "no profile named"},
		// The flows' wordings, as the CLI prints them.
		{"logged-in account profile", errors.New(`profile "demo" is a logged-in latch account profile; ` +
			"run latch logout --profile demo first, or choose another --profile"), "log out of it first (o on its account screen)"},
		{"not logged in anywhere", errors.New("no profile selected: you are not logged in anywhere; run latch login --server URL"),
			"add a server (a) on the Profiles screen and log in (l)"},
		{"no current profile", errors.New("no profile selected: 2 profiles and none is current; pick one with --profile NAME or latch profile use NAME"),
			"pick one on the Profiles screen (u makes it current)"},
		{"provider over http", errors.New("jwks_uri http://idp.example.com/keys uses plain http://; pass --insecure if you really mean it"),
			"only https:// is accepted"},
		{"client id", errors.New("a login to an OpenID provider needs the client id latch is registered with there (--client-id)"),
			"needs the client id latch is registered with there."},
		{"slow callback", errors.New(flows.SlowCallbackHint), "check the client id and the redirect URL (Advanced)"},
		// Advice no rule knows yet is dropped, not shown.
		{"reworded advice", errors.New("the vault is busy; retry with latch vault unlock --timeout 1m"), "the vault is busy."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil {
				t.Fatal("no error to explain")
			}
			got := explain(tc.err)
			if flagAdvice.MatchString(got) {
				t.Errorf("explain advises the command line:\n%s\n(from %q)", got, tc.err)
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("explain = %q, want it to contain %q", got, tc.want)
			}
		})
	}
}

// Adding a plain-http server on home shows the interface's advice, not
// --insecure.
func TestHomeAddServerErrorAdvisesTheInterface(t *testing.T) {
	h := newHarness(t)
	d := newDriver(t, h.app("", ""), 80, 24)
	d.keys("a")
	d.typ("http://auth.example.com")
	d.keys("enter")
	d.wantScreen("plain http://", "Use https://")
	d.notScreen("--insecure")
}
