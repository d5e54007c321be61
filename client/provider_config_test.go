package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/latch-dev/latch/internal/fakeidp"
)

// The client authentication method: the one asked for, else what the
// provider advertises (Basic first), and never a method the secret does not
// fit.
func TestChooseAuthMethod(t *testing.T) {
	const sec = "sekrit-value"
	for _, tc := range []struct {
		name, secret, asked string
		advertised          []string
		want, wantErr       string
	}{
		{"public", "", "", []string{"none"}, AuthMethodNone, ""},
		{"secret, basic and post", sec, "", []string{AuthMethodPost, AuthMethodBasic}, AuthMethodBasic, ""},
		{"secret, post only", sec, "", []string{AuthMethodPost}, AuthMethodPost, ""},
		{"secret, nothing advertised", sec, "", nil, AuthMethodBasic, ""},
		{"secret, asked post", sec, AuthMethodPost, []string{AuthMethodBasic}, AuthMethodPost, ""},
		{"secret, only private_key_jwt", sec, "", []string{"private_key_jwt"}, "", "private_key_jwt"},
		{"basic without a secret", "", AuthMethodBasic, nil, "", "--client-secret-stdin"},
		{"none with a secret", sec, AuthMethodNone, nil, "", "drop the secret"},
		{"unknown method", sec, "tls_client_auth", nil, "", "--auth-method"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Provider{secret: tc.secret, Metadata: ProviderMetadata{TokenEndpointAuthMethods: tc.advertised}}
			err := p.chooseAuthMethod(tc.asked)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
				}
				if tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
					t.Fatal("the error shows the secret")
				}
				return
			}
			if err != nil || p.AuthMethod() != tc.want {
				t.Fatalf("method %q (%v), want %q", p.AuthMethod(), err, tc.want)
			}
		})
	}
}

// The authorization URL carries the audience, every resource and the extra
// parameters besides latch's own, and refuses to let one replace those.
func TestAuthCodeURLExtras(t *testing.T) {
	idp := fakeidp.New(t)
	cfg := ProviderConfig{Issuer: idp.URL, ClientID: "latch-cli", Audience: "api://x",
		Resource: []string{"https://a.example/", "https://b.example/"}, AuthParams: url.Values{"prompt": {"consent"}}}
	p, err := NewProvider(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(p.AuthCodeURL("http://127.0.0.1:1/callback", []string{"openid"}, "st", "no", "verifier-verifier-verifier-verifier-verif"))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("audience") != "api://x" || !slices.Equal(q["resource"], cfg.Resource) || q.Get("prompt") != "consent" ||
		q.Get("state") != "st" || q.Get("nonce") != "no" || q.Get("code_challenge_method") != "S256" {
		t.Fatalf("authorization URL %s", u)
	}
	for _, k := range ReservedAuthParams {
		cfg.AuthParams = url.Values{k: {"x"}}
		if _, err := NewProvider(context.Background(), cfg, Options{}); err == nil || !strings.Contains(err.Error(), "--auth-param "+k) {
			t.Errorf("%s replaced: %v", k, err)
		}
	}
}

// --ca-file: a private CA is trusted with it, a file without a certificate
// is a clear error, and without it the failure says what to do.
func TestCAFile(t *testing.T) {
	idp := fakeidp.New(t, func(c *fakeidp.Config) { c.TLS = true })
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, idp.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("# nothing\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name, file, wantErr string
	}{
		{"trusted", ca, ""},
		{"no CA file", "", "log in with --ca-file PEM (the CA's certificate; the profile keeps it) or set SSL_CERT_FILE"},
		{"no certificate in it", empty, "holds no PEM certificate"},
		{"missing file", filepath.Join(dir, "missing.pem"), "--ca-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewProvider(ctx, ProviderConfig{Issuer: idp.URL, ClientID: "latch-cli", CAFile: tc.file}, Options{})
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatal(err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
			}
		})
	}
}

func TestTLSAdvice(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"unknown authority", x509.UnknownAuthorityError{}, true},
		{"wrapped in tls", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, true},
		{"hostname", x509.HostnameError{Certificate: &x509.Certificate{}, Host: "a"}, false},
		{"flattened by a library", errors.New(`Get "https://idp/": tls: x509: certificate signed by unknown authority`), true},
		{"refused", errors.New("connection refused"), false},
	} {
		if got := tlsAdvice(tc.err) != ""; got != tc.want {
			t.Errorf("%s: advice %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Without discovery: the issuer is the token URL's origin unless given, no
// request is made, and endpoints obey the URL rules.
func TestNewProviderEndpoints(t *testing.T) {
	var calls int
	rt := roundTripFunc(func(*http.Request) (*http.Response, error) { calls++; return nil, errors.New("no network") })
	ctx := context.Background()
	p, err := NewProvider(ctx, ProviderConfig{ClientID: "c", Endpoints: Endpoints{TokenURL: "https://github.com/login/oauth/access_token",
		DeviceURL: "https://github.com/login/device/code"}}, Options{Transport: rt})
	if err != nil || p.Issuer() != "https://github.com" || !p.Manual() || p.CanVerifyIDTokens() || calls != 0 {
		t.Fatalf("provider %+v, %v, %d calls", p, err, calls)
	}
	_, err = NewProvider(ctx, ProviderConfig{ClientID: "c", Endpoints: Endpoints{TokenURL: "https://idp.example/token",
		UserinfoURL: "http://idp.example/user"}}, Options{Transport: rt})
	if err == nil || !strings.Contains(err.Error(), "plain http://") {
		t.Fatalf("plain http userinfo: %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A provider URL that answers as no provider would gets advice about the
// provider's URL, not the account API's (--server, a proxy in front of
// latch, a latch version).
func TestProviderAnswerAdvice(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		header map[string]string
		body   string
		says   string
	}{
		{"HTML page", 200, map[string]string{"Content-Type": "text/html"}, "<!doctype html><p>a web site", "HTML page"},
		{"HTML not found", 404, map[string]string{"Content-Type": "text/html"}, "<html><p>not found", "HTML page"},
		{"redirect", 302, map[string]string{"Location": "https://login.example/sso"}, "", "redirects to https://login.example/sso"},
		{"no content", 204, nil, "", "answered 204"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			_, err := Discover(context.Background(), srv.URL, "cli", Options{})
			if err == nil {
				t.Fatal("discovery succeeded")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.says) || !strings.Contains(msg, "--issuer") ||
				strings.Contains(msg, "in front of latch") || strings.Contains(msg, "latch version") {
				t.Fatalf("error %q: want one saying %q and naming --issuer", msg, tc.says)
			}
		})
	}
}
