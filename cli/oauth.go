package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/internal/textart"
)

// oauthOptions are login's flags for OAuth 2.0 / OpenID Connect.
type oauthOptions struct {
	Issuer, ClientID, Scopes string
	Browser, Device          bool
	NoBrowser                bool
	Wait                     time.Duration

	// Any provider (see addProviderFlags).
	SecretStdin          bool
	SecretFile           string
	AuthMethod, Audience string
	Resource, AuthParams []string
	RedirectURL, CAFile  string
	AuthURL, TokenURL    string
	DeviceURL, RevokeURL string
	UserinfoURL, JWKSURL string
}

// addProviderFlags adds the flags that reach any provider: a confidential
// client, RFC 8707 and extra parameters, a fixed redirect, a private CA,
// and endpoints for a provider without discovery.
func (oo *oauthOptions) addProviderFlags(f *pflag.FlagSet) {
	f.BoolVar(&oo.SecretStdin, "client-secret-stdin", false, "read a confidential client's secret from the first line of stdin")
	f.StringVar(&oo.SecretFile, "client-secret-file", "", "read a confidential client's secret from `FILE`")
	f.StringVar(&oo.AuthMethod, "auth-method", "", "client authentication: client_secret_basic, client_secret_post or none (default: what the provider advertises)")
	f.StringVar(&oo.Audience, "audience", "", "the audience parameter some providers need (Auth0, Okta)")
	f.StringArrayVar(&oo.Resource, "resource", nil, "a resource indicator (RFC 8707) `URI`; repeatable")
	f.StringArrayVar(&oo.AuthParams, "auth-param", nil, "an extra authorization parameter `k=v` (prompt, login_hint, acr_values, connector_id…); repeatable")
	f.StringVar(&oo.RedirectURL, "redirect-url", "", "the exact loopback redirect registered at the provider, e.g. http://localhost:8000/callback")
	f.StringVar(&oo.CAFile, "ca-file", "", "trust the CA certificates in this PEM `FILE` too (a provider with a private CA)")
	f.StringVar(&oo.AuthURL, "auth-url", "", "authorization endpoint, for a provider without OpenID discovery")
	f.StringVar(&oo.TokenURL, "token-url", "", "token endpoint; set, it replaces OpenID discovery")
	f.StringVar(&oo.DeviceURL, "device-url", "", "device authorization endpoint, without discovery")
	f.StringVar(&oo.RevokeURL, "revoke-url", "", "revocation endpoint, without discovery")
	f.StringVar(&oo.UserinfoURL, "userinfo-url", "", "userinfo (or user) endpoint, without discovery")
	f.StringVar(&oo.JWKSURL, "jwks-url", "", "the provider's key set, without discovery (to verify ID tokens)")
}

// set reports whether any provider flag was given.
func (oo *oauthOptions) set() bool {
	return oo.SecretStdin || oo.SecretFile != "" || oo.AuthMethod != "" || oo.Audience != "" || len(oo.Resource) > 0 ||
		len(oo.AuthParams) > 0 || oo.RedirectURL != "" || oo.CAFile != "" || oo.endpoints() != (client.Endpoints{})
}

func (oo *oauthOptions) endpoints() client.Endpoints {
	return client.Endpoints{AuthURL: oo.AuthURL, TokenURL: oo.TokenURL, DeviceURL: oo.DeviceURL, RevokeURL: oo.RevokeURL,
		UserinfoURL: oo.UserinfoURL, JWKSURL: oo.JWKSURL}
}

// providerRequest fills req with the provider flags, checked: usage errors
// name the flag.
func (oo *oauthOptions) providerRequest(g *globals, req *flows.OAuthRequest) error {
	switch {
	case oo.SecretStdin && oo.SecretFile != "":
		return usagef("choose one of --client-secret-stdin and --client-secret-file")
	case oo.SecretStdin:
		b, err := g.stdinSecret("--client-secret-stdin", "client secret")
		if err != nil {
			return err
		}
		req.ClientSecret = string(b)
	case oo.SecretFile != "":
		secret, err := readSecretFile("--client-secret-file", oo.SecretFile)
		if err != nil {
			return err
		}
		req.ClientSecret = secret
	}
	switch oo.AuthMethod {
	case "", client.AuthMethodBasic, client.AuthMethodPost, client.AuthMethodNone:
	default:
		return usagef("--auth-method %q: use %s, %s or %s", oo.AuthMethod, client.AuthMethodBasic, client.AuthMethodPost, client.AuthMethodNone)
	}
	// A named profile may keep the secret in the vault from its last login;
	// the flow checks then, once it has read it.
	if oo.AuthMethod != "" && oo.AuthMethod != client.AuthMethodNone && req.ClientSecret == "" && req.Profile == "" {
		return usagef("--auth-method %s needs the client secret: pass --client-secret-stdin or --client-secret-file FILE", oo.AuthMethod)
	}
	req.AuthMethod, req.Audience, req.Resource = oo.AuthMethod, oo.Audience, oo.Resource
	params, err := flows.ParseAuthParams(oo.AuthParams)
	if bad := (*flows.AuthParamError)(nil); errors.As(err, &bad) {
		return usagef("--auth-param %q: give it as name=value, e.g. --auth-param prompt=login", bad.Pair)
	}
	if err := flows.CheckAuthParams(params); err != nil {
		return usageError{err}
	}
	req.AuthParams = params
	if oo.RedirectURL != "" {
		if _, err := flows.ParseRedirectURL(oo.RedirectURL); err != nil {
			return usageError{err}
		}
		req.RedirectURL = oo.RedirectURL
	}
	if oo.CAFile != "" {
		abs, err := filepath.Abs(oo.CAFile) // remembered: a later run may start elsewhere
		if err != nil {
			return usagef("--ca-file %s: %v", oo.CAFile, err)
		}
		if _, err := os.Stat(abs); err != nil {
			return usagef("--ca-file %s: %v; give the path of the CA's PEM certificate", oo.CAFile, err)
		}
		req.CAFile = abs
	}
	e := oo.endpoints()
	if e.TokenURL == "" && e != (client.Endpoints{}) {
		return usagef("--auth-url, --device-url, --revoke-url, --userinfo-url and --jwks-url describe a provider without discovery: give its --token-url too")
	}
	if e.TokenURL != "" && oo.Issuer == "" && req.Server != "" {
		return usagef("--token-url is for a provider without discovery, not a latch --server")
	}
	for flag, u := range map[string]string{"auth-url": e.AuthURL, "token-url": e.TokenURL, "device-url": e.DeviceURL,
		"revoke-url": e.RevokeURL, "userinfo-url": e.UserinfoURL, "jwks-url": e.JWKSURL} {
		if u == "" {
			continue
		}
		if err := g.checkURL(flag, u); err != nil {
			return err
		}
	}
	req.Endpoints = e
	return nil
}

// wantsOAuth reports whether login goes through OAuth: asked for by a flag,
// or (with no server or user given) because the profile logged in again was
// made by an OAuth login.
func (o *loginOptions) wantsOAuth(e *flows.Env) bool {
	if o.OAuth.Issuer != "" || o.OAuth.ClientID != "" || o.OAuth.Browser || o.OAuth.Device || o.OAuth.set() {
		return true
	}
	if o.Server != "" || o.Username != "" {
		return false
	}
	again := e.OAuthDefaults(flows.OAuthRequest{Profile: o.g.profile})
	return again.Server != "" || again.Issuer != ""
}

// oauthRun logs in through a browser or the device grant.
func oauthRun(ctx context.Context, o *loginOptions, e *flows.Env) error {
	g, oo := o.g, o.OAuth
	if o.Username != "" || o.PasswordStdin || o.Code != "" || o.UseBackupCode {
		return usagef("--username, --password-stdin, --code and --use-backup-code are for password logins; " +
			"an OAuth login asks for them in the browser")
	}
	if oo.Wait <= 0 {
		return usagef("--wait must be positive")
	}
	req := flows.OAuthRequest{Profile: g.profile, Server: o.Server, Issuer: oo.Issuer, ClientID: oo.ClientID}
	if oo.Scopes != "" {
		req.Scopes = strings.FieldsFunc(oo.Scopes, func(r rune) bool { return r == ' ' || r == ',' })
	}
	if err := oo.providerRequest(g, &req); err != nil {
		return err
	}
	if req = e.OAuthDefaults(req); req.Server == "" && req.Issuer == "" && req.Endpoints.TokenURL == "" {
		return usagef("say where to log in: --server URL (a latch server), --issuer URL --client-id ID, " +
			"or a provider without discovery: --token-url URL --client-id ID")
	}
	if (req.Issuer != "" || req.Endpoints.TokenURL != "") && req.ClientID == "" {
		return usagef("--issuer and --token-url need --client-id (the client registered at that provider)")
	}
	for flag, u := range map[string]string{"server": req.Server, "issuer": req.Issuer} {
		if u == "" {
			continue
		}
		if err := g.checkURL(flag, u); err != nil {
			return err
		}
	}
	method := flows.DefaultOAuthMethod(os.Getenv)
	switch {
	case oo.Browser:
		method = "browser"
	case oo.Device:
		method = "device"
	}
	var res *flows.LoginResult
	var err error
	if method == "device" {
		res, err = deviceLogin(ctx, g, e, req, oo.Wait)
	} else {
		res, err = browserLogin(ctx, g, e, req, oo.NoBrowser, oo.Wait)
	}
	if errors.Is(err, context.Canceled) {
		return errors.New("login cancelled; nothing was saved")
	}
	if err != nil {
		return err
	}
	printLoggedIn(g, e, res.Profile)
	return nil
}

func browserLogin(ctx context.Context, g *globals, e *flows.Env, req flows.OAuthRequest, noBrowser bool, wait time.Duration) (*flows.LoginResult, error) {
	b, err := e.StartBrowserLogin(ctx, req)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	b.Timeout = wait
	opened := false
	if !noBrowser {
		opened = flows.OpenBrowser(b.URL) == nil
	}
	if opened {
		fmt.Fprintln(g.err, "Opened your browser to log in. If it did not open, visit:")
	} else {
		fmt.Fprintln(g.err, "Open this URL in a browser on this machine to log in:")
	}
	fmt.Fprintf(g.err, "\n  %s\n\n", b.URL)
	if isTerminal(g.err) {
		fmt.Fprintln(g.err, textart.QR(b.URL))
	}
	fmt.Fprintf(g.err, "Waiting for the browser (up to %s; Ctrl+C to cancel)…\n", wait)
	return e.FinishBrowserLogin(ctx, b)
}

func deviceLogin(ctx context.Context, g *globals, e *flows.Env, req flows.OAuthRequest, wait time.Duration) (*flows.LoginResult, error) {
	d, err := e.StartDeviceLogin(ctx, req)
	if err != nil {
		return nil, err
	}
	// The device code bounds the wait; --wait may end it sooner.
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	fmt.Fprintf(g.err, "On any device, open %s\nand enter the code:\n\n", d.VerificationURI)
	tty := isTerminal(g.err)
	if big := textart.Big(d.UserCode); tty && big != "" {
		fmt.Fprintln(g.err, indent(big, "  "))
		fmt.Fprintln(g.err)
	}
	fmt.Fprintf(g.err, "  code: %s\n\n", d.UserCode)
	scan := d.VerificationURIComplete
	if scan == "" {
		scan = d.VerificationURI
	}
	if tty {
		fmt.Fprintln(g.err, "Or scan this with a phone:")
		fmt.Fprintln(g.err, textart.QR(scan))
	}
	if d.VerificationURIComplete != "" {
		fmt.Fprintf(g.err, "(or open %s)\n", d.VerificationURIComplete)
	}
	fmt.Fprintf(g.err, "The code expires at %s. Waiting for approval… (Ctrl+C to cancel)\n",
		d.ExpiresAt.Local().Format("15:04:05"))
	if tty {
		stop := countdown(ctx, g, d.ExpiresAt)
		defer stop()
	}
	res, err := e.FinishDeviceLogin(ctx, d)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		return nil, fmt.Errorf("gave up waiting for approval after %s (--wait); nothing was saved", wait)
	}
	return res, err
}

// countdown rewrites one line with the time left until expiry, once a
// second, until stop is called.
func countdown(ctx context.Context, g *globals, until time.Time) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			left := time.Until(until).Round(time.Second)
			if left < 0 {
				left = 0
			}
			fmt.Fprintf(g.err, "\r  %d:%02d left ", int(left.Minutes()), int(left.Seconds())%60)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		cancel()
		<-done
		fmt.Fprint(g.err, "\r\033[K")
	}
}

func indent(s, pre string) string {
	return pre + strings.ReplaceAll(s, "\n", "\n"+pre)
}
