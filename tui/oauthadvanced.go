package tui

import (
	"strings"

	"charm.land/bubbles/v2/textinput"

	"github.com/latch-dev/latch/flows"
)

// oauthAdvanced are the OAuth chooser's fields for providers that need more
// than an issuer and a client id, as latch login's flags give them: a
// client secret (masked), an audience, extra authorization parameters, an
// exact redirect URL and a CA file. They stay folded away unless asked for
// (or a profile logged in again uses them), so the usual login is as short
// as ever.
type oauthAdvanced struct {
	open                                   bool
	secret, audience, params, redirect, ca textinput.Model
}

// Rows of the advanced fields, after the basic ones in oauth's order.
const (
	rowSecret = iota + rowClientID + 1
	rowAudience
	rowParams
	rowRedirect
	rowCAFile
)

func newOAuthAdvanced(in func(placeholder string) textinput.Model, again flows.OAuthRequest) oauthAdvanced {
	a := oauthAdvanced{
		secret: in("none: a public client"), audience: in("the API the token is for"),
		params: in("prompt=login login_hint=ada"), redirect: in("http://127.0.0.1:<random port>/callback"),
		ca: in("a PEM file of the provider's CA"),
	}
	a.secret.EchoMode, a.secret.EchoCharacter = textinput.EchoPassword, '•'
	a.audience.SetValue(again.Audience)
	a.params.SetValue(flows.AuthParamField(again.AuthParams))
	a.redirect.SetValue(again.RedirectURL)
	a.ca.SetValue(again.CAFile)
	// What the last login used is shown rather than silently reused.
	a.open = again.Audience != "" || len(again.AuthParams) > 0 || again.RedirectURL != "" || again.CAFile != ""
	return a
}

// rows are the advanced rows shown for a provider: a latch server's client
// is latch's own, public one, so it gets only the redirect and the CA.
func (a *oauthAdvanced) rows(other bool) []int {
	if !a.open {
		return nil
	}
	if other {
		return []int{rowSecret, rowAudience, rowParams, rowRedirect, rowCAFile}
	}
	return []int{rowRedirect, rowCAFile}
}

func (a *oauthAdvanced) input(row int) *textinput.Model {
	switch row {
	case rowSecret:
		return &a.secret
	case rowAudience:
		return &a.audience
	case rowParams:
		return &a.params
	case rowRedirect:
		return &a.redirect
	case rowCAFile:
		return &a.ca
	}
	return nil
}

func (a *oauthAdvanced) inputs() []*textinput.Model {
	return []*textinput.Model{&a.secret, &a.audience, &a.params, &a.redirect, &a.ca}
}

// apply puts the shown fields into req, or says what is wrong and where.
func (a *oauthAdvanced) apply(req *flows.OAuthRequest, other bool) (missing string, row int) {
	for _, r := range a.rows(other) {
		v := strings.TrimSpace(a.input(r).Value())
		switch r {
		case rowSecret:
			req.ClientSecret = a.secret.Value() // as typed: a secret may end in a space
		case rowAudience:
			req.Audience = v
		case rowParams:
			params, err := flows.ParseAuthParamField(v)
			if err != nil {
				return "Write parameters as key=value key=value: " + err.Error() + ".", rowParams
			}
			req.AuthParams = params
		case rowRedirect:
			req.RedirectURL = v
		case rowCAFile:
			req.CAFile = v
		}
	}
	return "", 0
}

// labels names the advanced rows, and hints says what each is for.
var advancedLabels = map[int]string{
	rowSecret: "Secret", rowAudience: "Audience", rowParams: "Parameters", rowRedirect: "Redirect", rowCAFile: "CA file",
}

var advancedHints = map[int]string{
	rowSecret:   "For a confidential client; kept in the vault, never shown or traced.",
	rowParams:   "Added to the authorization request: prompt, login_hint, acr_values, connector_id…",
	rowRedirect: "An exact loopback redirect the provider registered (browser logins only).",
	rowCAFile:   "Trusted besides the system's CAs, for a provider with a private CA.",
}
