package client

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latch-dev/latch/internal/fakeidp"
)

// discoveryDoc is a minimal document for a provider at base.
func discoveryDoc(base string) string {
	return fmt.Sprintf(`{"issuer":%q,"authorization_endpoint":"%[1]s/authorize","token_endpoint":"%[1]s/token",
"jwks_uri":"%[1]s/jwks","revocation_endpoint":"%[1]s/revoke","userinfo_endpoint":"%[1]s/userinfo"}`, base)
}

// stubProvider serves a discovery document and routes everything else to h.
func stubProvider(t *testing.T, h http.HandlerFunc) *Provider {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/openid-configuration" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, discoveryDoc(srv.URL))
			return
		}
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	p, err := Discover(context.Background(), srv.URL, "latch-cli", Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDiscover(t *testing.T) {
	idp := fakeidp.New(t)
	p, err := Discover(context.Background(), idp.URL, "latch-cli", Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := p.Metadata
	if m.Issuer != idp.URL || m.TokenEndpoint != idp.URL+"/token" || m.DeviceAuthorizationEndpoint != idp.URL+"/device" ||
		m.RevocationEndpoint != idp.URL+"/revoke" || m.UserinfoEndpoint != idp.URL+"/userinfo" || !m.IssParameterSupported ||
		len(m.CodeChallengeMethods) != 1 || len(m.TokenEndpointAuthMethods) != 1 || !p.SupportsScope("offline_access") {
		t.Fatalf("metadata %+v", m)
	}
	cfg := p.OAuth2Config("http://127.0.0.1:1/callback", []string{"openid"})
	if cfg.Endpoint.AuthStyle != 1 { // oauth2.AuthStyleInParams
		t.Fatal("AuthStyle is not AuthStyleInParams")
	}
}

func TestDiscoverBadAnswers(t *testing.T) {
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	for _, tc := range []struct {
		name   string
		h      http.HandlerFunc
		target error
		says   string
	}{
		{"HTML page", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<!doctype html><html>sign in</html>")
		}, ErrBadResponse, "HTML"},
		{"not found", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, ErrBadResponse, "404"},
		{"huge", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"x":"`+strings.Repeat("a", MaxResponseBytes)+`"}`)
		}, ErrBadResponse, "larger than"},
		{"malformed JSON", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"issuer":`)
		}, ErrBadResponse, "malformed"},
		{"other issuer", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, discoveryDoc("https://elsewhere.example"))
		}, ErrBadResponse, "calls itself"},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://elsewhere.example/x?secret=1", http.StatusFound)
		}, ErrBadResponse, "redirects"},
		{"gateway down", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
		}, ErrUnreachable, "502"},
		{"slow", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-block:
			case <-r.Context().Done():
			}
		}, ErrUnreachable, "within"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.h)
			t.Cleanup(srv.Close)
			_, err := Discover(context.Background(), srv.URL, "latch-cli", Options{Timeout: 300 * time.Millisecond})
			if !errors.Is(err, tc.target) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("error %v; want %v saying %q", err, tc.target, tc.says)
			}
			if len(err.Error()) > 400 || strings.Contains(err.Error(), "secret=1") {
				t.Fatalf("error too long or quotes a query: %q", err)
			}
		})
	}
}

func TestDiscoverURLRules(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	_, err = Discover(context.Background(), closed, "latch-cli", Options{})
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("closed port: %v", err)
	}
	if _, err := Discover(context.Background(), "http://idp.example", "latch-cli", Options{}); !errors.Is(err, ErrInsecureURL) {
		t.Fatalf("plain http: %v", err)
	}
	if _, err := Discover(context.Background(), closed, "", Options{}); err == nil || !strings.Contains(err.Error(), "client id") {
		t.Fatalf("no client id: %v", err)
	}
	// An endpoint on plain http to another host is refused.
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, strings.Replace(discoveryDoc(srv.URL), srv.URL+"/token", "http://idp.example/token", 1))
	}))
	t.Cleanup(srv.Close)
	if _, err := Discover(context.Background(), srv.URL, "latch-cli", Options{}); !errors.Is(err, ErrBadResponse) ||
		!strings.Contains(err.Error(), "token_endpoint") {
		t.Fatalf("http token endpoint: %v", err)
	}
}

func TestProviderRefreshErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		ctype   string
		body    string
		targets []error
		refused bool
	}{
		{"invalid_grant", 400, "application/json", `{"error":"invalid_grant","error_description":"token rt_9f8e7d6c5b4a is spent"}`, nil, true},
		{"invalid_request (replay)", 400, "application/json", `{"error":"invalid_request"}`, nil, true},
		{"invalid_scope", 400, "application/json", `{"error":"invalid_scope"}`, nil, false},
		{"503", 503, "text/html", `<html>down</html>`, []error{ErrUnreachable, ErrBadResponse}, false},
		{"500 with error code", 500, "application/json", `{"error":"server_error"}`, []error{ErrBadResponse}, false},
		{"HTML 200", 200, "text/html", `<!doctype html><p>rt_9f8e7d6c5b4a`, []error{ErrBadResponse}, false},
		{"HTML 400", 400, "text/html", `<!doctype html><p>rt_9f8e7d6c5b4a`, []error{ErrBadResponse}, false},
		{"no access token", 200, "application/json", `{"token_type":"Bearer","refresh_token":"x"}`, []error{ErrBadResponse}, false},
		{"DPoP token", 200, "application/json", `{"access_token":"a","token_type":"DPoP"}`, []error{ErrBadResponse}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := stubProvider(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ctype)
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			_, err := p.Refresh(context.Background(), testRefresh)
			if err == nil {
				t.Fatal("no error")
			}
			if got := errors.Is(err, ErrInvalidRefreshToken); got != tc.refused {
				t.Fatalf("%v: refused = %v, want %v", err, got, tc.refused)
			}
			for _, target := range tc.targets {
				if !errors.Is(err, target) {
					t.Fatalf("%v does not match %v", err, target)
				}
			}
			assertNoSecrets(t, err)
		})
	}
}

func TestProviderRefreshKeepsToken(t *testing.T) {
	p := stubProvider(t, func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if r.Header.Get("Authorization") != "" || r.PostForm.Get("client_id") != "latch-cli" ||
			r.PostForm.Get("grant_type") != "refresh_token" || r.PostForm.Get("refresh_token") != testRefresh {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"opaque","token_type":"bearer","id_token":"x.y.z","refresh_expires_in":3600}`)
	})
	tok, err := p.Refresh(context.Background(), testRefresh)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken != testRefresh || tok.ExpiresIn != DefaultAccessTTL || tok.IDToken != "x.y.z" ||
		tok.RefreshExpiresIn != time.Hour || tok.TokenType != "Bearer" {
		t.Fatalf("tokens %#v", tok)
	}
	if s := fmt.Sprintf("%v %+v %#v", tok, tok, tok); strings.Contains(s, "x.y.z") || strings.Contains(s, testRefresh) {
		t.Fatalf("Tokens prints a secret: %s", s)
	}
}

func TestAccessTTL(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	jwt := func(claims string) string {
		return "e30." + base64.RawURLEncoding.EncodeToString([]byte(claims)) + ".sig"
	}
	for _, tc := range []struct {
		name, token string
		want        time.Duration
	}{
		{"opaque", "abc", DefaultAccessTTL},
		{"JWT with exp", jwt(`{"exp":1800000600}`), 10 * time.Minute},
		{"JWT expired", jwt(`{"exp":1799999000}`), DefaultAccessTTL},
		{"JWT without exp", jwt(`{"sub":"x"}`), DefaultAccessTTL},
		{"three parts, not base64", "a.!!!.c", DefaultAccessTTL},
		{"three parts, not JSON", "a." + base64.RawURLEncoding.EncodeToString([]byte("nope")) + ".c", DefaultAccessTTL},
	} {
		if got := accessTTL(tc.token, now); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestProviderRevokeAndUserinfo(t *testing.T) {
	p := stubProvider(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/revoke":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/userinfo":
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	err := p.Revoke(context.Background(), testRefresh)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("revoke on 503: %v", err)
	}
	assertNoSecrets(t, err)
	_, err = p.UserInfo(context.Background(), testAccess)
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("userinfo on 401: %v", err)
	}
	assertNoSecrets(t, err)

	p.Metadata.RevocationEndpoint, p.Metadata.UserinfoEndpoint = "", ""
	if err := p.Revoke(context.Background(), testRefresh); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("revoke without endpoint: %v", err)
	}
	if _, err := p.UserInfo(context.Background(), testAccess); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("userinfo without endpoint: %v", err)
	}
}

func TestVerifyIDTokenRefusesGarbage(t *testing.T) {
	idp := fakeidp.New(t)
	p, err := Discover(context.Background(), idp.URL, "latch-cli", Options{})
	if err != nil {
		t.Fatal(err)
	}
	forged := "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+idp.URL+`","aud":"latch-cli","sub":"x","exp":9999999999}`)) + "."
	for _, raw := range []string{"", "garbage", forged} {
		_, err := p.VerifyIDToken(context.Background(), raw, "n")
		if !errors.Is(err, ErrInvalidIDToken) {
			t.Fatalf("%q: %v", raw, err)
		}
		if raw != "" && strings.Contains(err.Error(), raw) {
			t.Fatalf("the error quotes the token: %v", err)
		}
	}
}

// Whatever a provider echoes, no code, verifier, token or device code ends
// up in an error.
func TestProviderErrorsHideSecrets(t *testing.T) {
	const code, verifier, device = "code-0123456789", "verifier-0123456789abcdef", "dc-0123456789"
	echo := `{"error":"invalid_grant","error_description":"` + code + ` ` + verifier + ` ` + device + ` ` + testRefresh + `"}`
	p := stubProvider(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, echo)
	})
	p.Metadata.DeviceAuthorizationEndpoint = p.Metadata.TokenEndpoint
	// Each call can only hide what it sent.
	check := func(what string, err error, secrets ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) || strings.Contains(fmt.Sprintf("%#v", err), s) {
				t.Fatalf("%s: the error leaks a secret: %v", what, err)
			}
		}
	}
	_, err := p.Exchange(context.Background(), "http://127.0.0.1:1/callback", code, verifier)
	check("exchange", err, code, verifier)
	_, err = p.Refresh(context.Background(), testRefresh)
	check("refresh", err, testRefresh)
	err = p.Revoke(context.Background(), testRefresh)
	check("revoke", err, testRefresh)
	_, err = p.DeviceAccessToken(context.Background(), &oauth2.DeviceAuthResponse{DeviceCode: device, Interval: 1,
		Expiry: time.Now().Add(5 * time.Second)}, nil)
	check("device", err, device)
}
