package flows

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/internal/fakeidp"
	"github.com/latch-dev/latch/vault"
)

func TestDeviceLogin(t *testing.T) {
	for _, tc := range []struct {
		name string
		knob func(*fakeidp.Config)
	}{
		{"approved at once", func(c *fakeidp.Config) {}},
		{"pending twice", func(c *fakeidp.Config) { c.DevicePending = 2 }},
		{"unknown fields in the device response", func(c *fakeidp.Config) { c.DeviceExtraFields = true }},
		{"opaque access tokens", func(c *fakeidp.Config) { c.OpaqueAccessTokens = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := newOAuthEnv(t, tc.knob)
			d, err := o.StartDeviceLogin(o.ctx, o.req())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(d.UserCode, "WDJB-") || d.VerificationURI != o.idp.URL+"/activate" ||
				!strings.Contains(d.VerificationURIComplete, d.UserCode) || d.Interval != time.Second ||
				d.ExpiresAt.Sub(o.clock.Now()) != 10*time.Minute {
				t.Fatalf("device login %+v", d)
			}
			res, err := o.FinishDeviceLogin(o.ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			if res.Profile.Kind != vault.KindOIDC || res.Profile.Username != "ada" || o.stored(res.Profile.Name).ID == "" {
				t.Fatalf("profile %+v", res.Profile)
			}
		})
	}
}

// ExpiresAt is on the Env's clock, not the wall clock x/oauth2 stamps
// its Expiry with, so that an interface counting down on that clock shows
// the lifetime the provider gave.
func TestDeviceLoginExpiresOnTheEnvClock(t *testing.T) {
	for _, tc := range []struct {
		name      string
		expiresIn time.Duration
		want      time.Duration
	}{
		{"expires_in", 7 * time.Minute, 7 * time.Minute},
		{"no expires_in", 0, defaultDeviceLifetime},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := newOAuthEnv(t, func(c *fakeidp.Config) { c.DeviceExpiresIn = tc.expiresIn })
			o.clock.Add(-72 * time.Hour)
			d, err := o.StartDeviceLogin(o.ctx, o.req())
			if err != nil {
				t.Fatal(err)
			}
			if got := d.ExpiresAt.Sub(o.clock.Now()); got != tc.want {
				t.Fatalf("ExpiresAt is %s after the Env's now, want %s", got, tc.want)
			}
		})
	}
}

func TestDeviceLoginRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		knob   func(*fakeidp.Config)
		target error
		says   string
	}{
		{"access denied", func(c *fakeidp.Config) { c.DeviceResult = fakeidp.DeviceAccessDenied }, ErrAccessDenied, "refused"},
		{"expired_token", func(c *fakeidp.Config) { c.DeviceResult = fakeidp.DeviceExpired }, ErrDeviceCodeExpired, "start the login again"},
		{"expiry passes", func(c *fakeidp.Config) { c.DevicePending, c.DeviceExpiresIn = 100, 2*time.Second }, ErrDeviceCodeExpired, "not entered in time"},
		{"no ID token", func(c *fakeidp.Config) { c.OmitIDToken = true }, client.ErrInvalidIDToken, "no ID token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := newOAuthEnv(t, tc.knob)
			d, err := o.StartDeviceLogin(o.ctx, o.req())
			if err != nil {
				t.Fatal(err)
			}
			_, err = o.FinishDeviceLogin(o.ctx, d)
			wantErr(t, err, tc.target, tc.says)
			if _, err := o.Secrets.Get(o.ctx, tokensKey("default")); !errors.Is(err, vault.ErrNotFound) {
				t.Fatalf("tokens saved after a failed login (%v)", err)
			}
		})
	}
}

// slow_down adds 5 s to the interval: one test pays for it.
func TestDeviceLoginSlowDown(t *testing.T) {
	t.Parallel()
	o := newOAuthEnv(t, func(c *fakeidp.Config) { c.DeviceSlowDown = true })
	d, err := o.StartDeviceLogin(o.ctx, o.req())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := o.FinishDeviceLogin(o.ctx, d); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 6*time.Second {
		t.Fatalf("took %s: slow_down was not honoured", took)
	}
	if s := o.idp.Stats(); s.DevicePolls != 2 {
		t.Fatalf("%d polls, want 2", s.DevicePolls)
	}
}

func TestDeviceLoginCancel(t *testing.T) {
	t.Parallel()
	o := newOAuthEnv(t, func(c *fakeidp.Config) { c.DevicePending = 1000 })
	d, err := o.StartDeviceLogin(o.ctx, o.req())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(o.ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err = o.FinishDeviceLogin(ctx, d)
	wantErr(t, err, context.Canceled, "")
	if time.Since(start) > 2*time.Second {
		t.Fatal("cancellation did not end the polling at once")
	}
}

func TestDeviceLoginUnsupported(t *testing.T) {
	o := newOAuthEnv(t, func(c *fakeidp.Config) { c.NoDevice = true })
	_, err := o.StartDeviceLogin(o.ctx, o.req())
	wantErr(t, err, client.ErrNotSupported, "browser")
}

func TestDefaultOAuthMethod(t *testing.T) {
	for _, tc := range []struct {
		goos string
		env  map[string]string
		want string
	}{
		{"linux", map[string]string{"DISPLAY": ":0"}, "browser"},
		{"linux", map[string]string{"WAYLAND_DISPLAY": "wayland-0"}, "browser"},
		{"linux", nil, "device"},
		{"freebsd", nil, "device"},
		{"linux", map[string]string{"DISPLAY": ":0", "SSH_CONNECTION": "1.2.3.4 5 6.7.8.9 22"}, "device"},
		{"darwin", nil, "browser"},
		{"darwin", map[string]string{"SSH_TTY": "/dev/pts/1"}, "device"},
		{"windows", nil, "browser"},
		{"windows", map[string]string{"SSH_CONNECTION": "x"}, "device"},
	} {
		if got := defaultOAuthMethod(tc.goos, func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("%s %v: %s, want %s", tc.goos, tc.env, got, tc.want)
		}
	}
}

func TestOpenBrowser(t *testing.T) {
	const u = "https://idp.example/authorize?x=1&y=$(touch /tmp/pwned)"
	system := func(string) error { t.Error("system browser used"); return nil }
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "LATCH_BROWSER" {
				return v
			}
			return ""
		}
	}
	if err := openBrowser(env("none"), u, system); !errors.Is(err, ErrNoBrowser) {
		t.Fatalf("LATCH_BROWSER=none: %v", err)
	}
	if err := openBrowser(env(""), "file:///etc/passwd", system); err == nil {
		t.Fatal("a file URL was opened")
	}
	var got string
	if err := openBrowser(env(""), u, func(s string) error { got = s; return nil }); err != nil || got != u {
		t.Fatalf("system browser: %q, %v", got, err)
	}

	dir := t.TempDir()
	out := filepath.Join(dir, "args")
	script := filepath.Join(dir, "browser.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s\\n' \"$#\" \"$1\" > "+out+".tmp && mv "+out+".tmp "+out+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := openBrowser(env(script), u, system); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, err := os.Stat(out); return err == nil })
	b, _ := os.ReadFile(out)
	if string(b) != "1\n"+u+"\n" {
		t.Fatalf("the command got %q", b)
	}
	if err := openBrowser(env(filepath.Join(dir, "missing")), u, system); err == nil {
		t.Fatal("a missing command is no error")
	}
}
