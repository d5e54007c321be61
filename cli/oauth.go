package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/internal/textart"
)

// oauthOptions are login's flags for OAuth 2.0 / OpenID Connect.
type oauthOptions struct {
	Issuer, ClientID, Scopes string
	Browser, Device          bool
	NoBrowser                bool
	Wait                     time.Duration
}

// wantsOAuth reports whether login goes through OAuth: asked for by a flag,
// or (with no server or user given) because the profile logged in again was
// made by an OAuth login.
func (o *loginOptions) wantsOAuth(e *flows.Env) bool {
	if o.OAuth.Issuer != "" || o.OAuth.ClientID != "" || o.OAuth.Browser || o.OAuth.Device {
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
	if req = e.OAuthDefaults(req); req.Server == "" && req.Issuer == "" {
		return usagef("say where to log in: --server URL (a latch server) or --issuer URL --client-id ID")
	}
	if req.Issuer != "" && req.ClientID == "" {
		return usagef("--issuer needs --client-id (the client registered at that provider)")
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
