package tui

import (
	"net/url"
	"testing"

	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/vault"
)

// The OAuth chooser's advanced fields reach the login request; the secret
// is masked on screen, and a malformed parameter is refused where it is.
func TestOAuthChooserAdvancedFields(t *testing.T) {
	h := newHarness(t)
	d := newDriver(t, h.app("", ""), 80, 24)
	d.send(NavigateMsg{To: pageOAuth, Profile: vault.Profile{}})
	d.notScreen("Secret", "Audience")
	d.keys("tab", "right") // provider: any OpenID provider
	d.keys("tab")
	d.typ("https://id.example.com")
	d.keys("tab")
	d.typ("cli")
	d.keys("tab", "right") // advanced: shown
	d.wantScreen("Secret", "Audience", "Parameters", "Redirect", "CA file")
	for _, v := range []string{"s3cret value", "api://x", "prompt=login login_hint=ada%40example.com", "http://localhost:8000/", "/tmp/ca.pem"} {
		d.keys("tab")
		d.typ(v)
	}
	d.notScreen("s3cret")
	o := d.top().(*oauth)
	req, missing, _ := o.request()
	want := flows.OAuthRequest{Issuer: "https://id.example.com", ClientID: "cli", ClientSecret: "s3cret value",
		Audience: "api://x", AuthParams: url.Values{"prompt": {"login"}, "login_hint": {"ada@example.com"}},
		RedirectURL: "http://localhost:8000/", CAFile: "/tmp/ca.pem"}
	if missing != "" || req.ClientSecret != want.ClientSecret || req.Audience != want.Audience ||
		req.AuthParams.Encode() != want.AuthParams.Encode() || req.RedirectURL != want.RedirectURL || req.CAFile != want.CAFile {
		t.Fatalf("request %+v (%q), want %+v", req, missing, want)
	}

	d.keys("shift+tab", "shift+tab")
	d.typ(" oops")
	d.keys("enter")
	d.wantScreen("key=value", "oops has no '='")
	if _, ok := d.top().(*oauth); !ok {
		t.Fatalf("a malformed parameter started the login: %T", d.top())
	}
}

// The chooser with the advanced fields open, the focus on the extra
// parameters (its hint under it), the secret masked.
func TestGoldenOAuthAdvanced(t *testing.T) {
	h := newHarness(t)
	runGolden(t, h.oauthApp("browser", nil), func(tm *teatest.TestModel) {
		tm.Send(NavigateMsg{To: pageOAuth, Profile: vault.Profile{}})
		tm.Send(keyMsg("tab"))
		tm.Send(keyMsg("right"))
		tm.Send(keyMsg("tab"))
		tm.Type("https://id.example.com")
		tm.Send(keyMsg("tab"))
		tm.Type("cli")
		tm.Send(keyMsg("tab"))
		tm.Send(keyMsg("right"))
		tm.Send(keyMsg("tab"))
		tm.Type("s3cret")
		tm.Send(keyMsg("tab"))
		tm.Send(keyMsg("tab"))
		tm.Type("prompt=login")
	}, "prompt=login", "Added to the authorization request")
}
