package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/oauth2"
)

// The provider calls beyond the login itself: refresh, revocation and
// userinfo, and the client authentication x/oauth2 leaves out of the device
// authorization request.

// refreshGrant runs the refresh_token grant through x/oauth2, which
// authenticates the client as OAuth2Config says. x/oauth2 takes no extra
// parameters here: audience and resource stay those of the login (RFC 8707
// §2.2 lets a refresh omit them).
func (p *Provider) refreshGrant(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	return p.OAuth2Config("", nil).TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
}

// deviceOptions are the device authorization request's parameters beyond
// client_id and scope: the audience, resources and extra parameters, and a
// client_secret_post client's secret (RFC 8628 §3.1 has the client
// authenticate there as at the token endpoint; x/oauth2 sends only the id).
func (p *Provider) deviceOptions() []oauth2.AuthCodeOption {
	var opts []oauth2.AuthCodeOption
	for k, vs := range p.extraParams() {
		// One value per name is all x/oauth2 sends; several resources go
		// as their first.
		opts = append(opts, oauth2.SetAuthURLParam(k, vs[0]))
	}
	if p.authMethod == AuthMethodPost {
		opts = append(opts, oauth2.SetAuthURLParam("client_secret", p.secret))
	}
	return opts
}

// withClientAuth makes the device authorization request of a
// client_secret_basic client carry its Basic credentials, encoded as
// x/oauth2 encodes them for the token endpoint (RFC 6749 §2.3.1).
func (p *Provider) withClientAuth(ctx context.Context) context.Context {
	if p.authMethod != AuthMethodBasic {
		return ctx
	}
	hc := *p.hc
	hc.Transport = basicAuth{base: p.hc.Transport, id: p.ClientID, secret: p.secret}
	return context.WithValue(ctx, oauth2.HTTPClient, &hc)
}

type basicAuth struct {
	base       http.RoundTripper
	id, secret string
}

func (b basicAuth) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.SetBasicAuth(url.QueryEscape(b.id), url.QueryEscape(b.secret))
	return b.base.RoundTrip(req)
}

// setClientAuth authenticates a hand-made request (revocation) as x/oauth2
// authenticates token requests: Basic credentials, or client_id (and
// client_secret) in the form.
func (p *Provider) setClientAuth(req *http.Request, form url.Values) {
	if p.authMethod == AuthMethodBasic {
		req.SetBasicAuth(url.QueryEscape(p.ClientID), url.QueryEscape(p.secret))
		return
	}
	form.Set("client_id", p.ClientID)
	if p.authMethod == AuthMethodPost {
		form.Set("client_secret", p.secret)
	}
}

// Revoke revokes a refresh token (RFC 7009, with token_type_hint), the
// client authenticated as at the token endpoint. It matches ErrNotSupported
// when the provider advertises no revocation_endpoint. A token the provider
// no longer knows is revoked as far as RFC 7009 goes: that is success too.
func (p *Provider) Revoke(ctx context.Context, refreshToken string) error {
	const op = "POST revocation endpoint"
	if p.Metadata.RevocationEndpoint == "" {
		return fmt.Errorf("%s: the provider has no revocation_endpoint: %w", p.host, ErrNotSupported)
	}
	form := url.Values{"token": {refreshToken}, "token_type_hint": {"refresh_token"}}
	callCtx, cancel := p.call(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(callCtx, http.MethodPost, p.Metadata.RevocationEndpoint, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	p.setClientAuth(req, form)
	body := form.Encode()
	req.Body = io.NopCloser(strings.NewReader(body))
	req.ContentLength = int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := p.hc.Do(req)
	if err != nil {
		return p.providerError(ctx, callCtx, op, err, nil, refreshToken, p.secret)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	var w struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	raw, _ := io.ReadAll(resp.Body) // already read whole, and bounded, by guard
	_ = json.Unmarshal(raw, &w)
	secrets := []string{refreshToken, p.secret}
	if w.Error != "" && resp.StatusCode < 500 {
		return &OAuthError{Code: clean(w.Error, secrets), Description: clean(w.Description, secrets),
			Status: resp.StatusCode, op: op}
	}
	return statusError(&reply{method: "POST", path: "revocation endpoint", status: resp.StatusCode, header: resp.Header, body: raw},
		secrets)
}

// UserInfo is what a provider's userinfo endpoint says about the user.
type UserInfo struct {
	Subject           string
	PreferredUsername string
	Email             string
	Name              string
	Claims            map[string]any
}

// Username is the name latch shows for the user: preferred_username, else
// email, else the subject.
func (u *UserInfo) Username() string {
	return firstNonEmpty(u.PreferredUsername, u.Email, u.Subject)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// UserInfo calls the userinfo endpoint with an access token. A refused token
// matches ErrUnauthorized; a provider without the endpoint ErrNotSupported.
// A plain OAuth 2.0 provider's user endpoint (GitHub's /user) has no sub:
// its id and login stand in for the subject and preferred_username.
func (p *Provider) UserInfo(ctx context.Context, accessToken string) (*UserInfo, error) {
	const op = "GET userinfo endpoint"
	if p.Metadata.UserinfoEndpoint == "" {
		return nil, fmt.Errorf("%s: the provider has no userinfo_endpoint: %w", p.host, ErrNotSupported)
	}
	if accessToken == "" {
		return nil, fmt.Errorf("%s: %w: no access token; log in first", op, ErrUnauthorized)
	}
	callCtx, cancel := p.call(ctx)
	defer cancel()
	ui, err := p.oidc.UserInfo(expectJSON(callCtx, "application/json", "application/jwt"),
		oauth2.StaticTokenSource(&oauth2.Token{AccessToken: accessToken}))
	if err != nil {
		return nil, p.providerError(ctx, callCtx, op, err, nil, accessToken)
	}
	var claims map[string]any
	if err := ui.Claims(&claims); err != nil {
		return nil, &ResponseError{Status: http.StatusOK, op: op, Reason: "the answer is not a JSON object"}
	}
	u := &UserInfo{Subject: ui.Subject, Email: ui.Email, Claims: claims}
	u.PreferredUsername, _ = claims["preferred_username"].(string)
	u.Name, _ = claims["name"].(string)
	if u.Subject == "" && p.manual {
		switch id := claims["id"].(type) {
		case string:
			u.Subject = id
		case float64:
			u.Subject = strconv.FormatFloat(id, 'f', -1, 64)
		}
		if u.PreferredUsername == "" {
			u.PreferredUsername, _ = claims["login"].(string)
		}
	}
	if u.Subject == "" {
		return nil, &ResponseError{Status: http.StatusOK, op: op, Reason: "the answer has no sub"}
	}
	return u, nil
}
