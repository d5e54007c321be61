package flows

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/oauth2"

	"github.com/latch-dev/latch/client"
)

// defaultDeviceLifetime stands in for a device authorization's missing
// expires_in (RFC 8628 requires it; a provider that leaves it out still
// must not keep latch polling forever).
const defaultDeviceLifetime = 15 * time.Minute

// DeviceLogin is a device authorization grant login (RFC 8628), for
// machines without a usable browser: the user opens VerificationURI on any
// device and enters UserCode (or opens VerificationURIComplete, e.g. from a
// QR code, which carries the code). StartDeviceLogin makes one;
// FinishDeviceLogin polls until the user answers.
type DeviceLogin struct {
	UserCode        string
	VerificationURI string
	// VerificationURIComplete includes the user code; "" when the provider
	// sends none.
	VerificationURIComplete string
	// ExpiresAt is when the codes expire, on the Env's clock (Env.Now).
	ExpiresAt time.Time
	// Interval is the wait between polls the provider first asked for;
	// polling adds 5 s to it each time the provider says slow_down.
	Interval time.Duration

	o  *oauthLogin
	da *oauth2.DeviceAuthResponse
}

// StartDeviceLogin sets up the provider (discovered, or from the request's
// endpoints) and asks it for a device code.
// Nothing is saved until FinishDeviceLogin. A provider without a device
// authorization endpoint gives an error matching client.ErrNotSupported.
func (e *Env) StartDeviceLogin(ctx context.Context, req OAuthRequest) (*DeviceLogin, error) {
	o, err := e.prepareOAuth(ctx, req)
	if err != nil {
		return nil, err
	}
	da, err := o.provider.DeviceAuth(ctx, o.scopes)
	if errors.Is(err, client.ErrNotSupported) {
		if o.provider.Manual() {
			return nil, fmt.Errorf("no device authorization endpoint was given for %s: pass --device-url, or log in with the browser (--auth-url): %w",
				o.issuer, err)
		}
		return nil, fmt.Errorf("the provider at %s does not offer the device flow; log in with the browser instead: %w", o.issuer, err)
	}
	if err != nil {
		return nil, fmt.Errorf("start the device login: %w", err)
	}
	// x/oauth2 turns expires_in into a wall-clock Expiry as the answer
	// arrives, which bounds its polling; the lifetime it stands for is
	// stamped on the Env's clock for ExpiresAt.
	lifetime := defaultDeviceLifetime
	if da.Expiry.IsZero() {
		da.Expiry = time.Now().Add(lifetime)
	} else {
		lifetime = time.Until(da.Expiry).Round(time.Second)
	}
	interval := time.Duration(da.Interval) * time.Second
	if interval <= 0 {
		interval = 5 * time.Second // RFC 8628's default, as x/oauth2 uses
	}
	return &DeviceLogin{
		UserCode:                da.UserCode,
		VerificationURI:         da.VerificationURI,
		VerificationURIComplete: da.VerificationURIComplete,
		ExpiresAt:               e.now().Add(lifetime),
		Interval:                interval,
		o:                       o,
		da:                      da,
	}, nil
}

// FinishDeviceLogin polls the provider until the user approves or refuses
// the code, the code expires, or ctx ends; then it verifies the ID token and
// saves the tokens and the profile, making it current.
//
// Errors: ErrAccessDenied when the user refused, ErrDeviceCodeExpired when
// the code expired first, ctx's error when ctx ended.
func (e *Env) FinishDeviceLogin(ctx context.Context, d *DeviceLogin) (*LoginResult, error) {
	t, err := d.o.provider.DeviceAccessToken(ctx, d.da, d.o.scopes)
	var oe *client.OAuthError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return nil, fmt.Errorf("device login: %w", ctx.Err())
	case errors.As(err, &oe) && oe.Code == "access_denied":
		return nil, fmt.Errorf("%w: the login was refused on the other device; start it again to retry", ErrAccessDenied)
	case errors.As(err, &oe) && oe.Code == "expired_token", errors.Is(err, context.DeadlineExceeded):
		return nil, fmt.Errorf("%w: the code %s was not entered in time; start the login again for a new code",
			ErrDeviceCodeExpired, d.UserCode)
	default:
		return nil, fmt.Errorf("device login: %w", err)
	}
	return e.finishOAuth(ctx, d.o, t, "")
}
