package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/go-jose/go-jose/v4"
)

const fzIssuer = "https://id.example"

// fzKey signs the ID tokens the fuzzers start from; fixed, so a committed
// seed keeps a real signature.
var fzKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{42}, ed25519.SeedSize))

func fzDiscovery(issuer string) string {
	return `{"issuer":"` + issuer + `","authorization_endpoint":"` + issuer + `/authorize","token_endpoint":"` + issuer + `/token",` +
		`"device_authorization_endpoint":"` + issuer + `/device","revocation_endpoint":"` + issuer + `/revoke",` +
		`"userinfo_endpoint":"` + issuer + `/userinfo","jwks_uri":"` + issuer + `/jwks",` +
		`"id_token_signing_alg_values_supported":["EdDSA"],"code_challenge_methods_supported":["S256"],` +
		`"authorization_response_iss_parameter_supported":true}`
}

// providerRT answers discovery and the key set as a well-behaved provider
// and every other call with the fuzzed answer.
type providerRT struct {
	answer answerRT
}

func (p *providerRT) RoundTrip(req *http.Request) (*http.Response, error) {
	ok := func(body string) (*http.Response, error) {
		a := answerRT{status: 200, contentType: "application/json", body: []byte(body)}
		return a.RoundTrip(req)
	}
	switch req.URL.Path {
	case "/.well-known/openid-configuration":
		return ok(fzDiscovery(fzIssuer))
	case "/jwks":
		jwks := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: fzKey.Public(), KeyID: "k1", Algorithm: "EdDSA", Use: "sig"}}}
		b, err := json.Marshal(jwks)
		if err != nil {
			return nil, err
		}
		return ok(string(b))
	}
	return p.answer.RoundTrip(req)
}

func fzProvider(tb testing.TB) (*Provider, *providerRT) {
	rt := &providerRT{}
	p, err := Discover(context.Background(), fzIssuer, "latch-cli", Options{Transport: rt, Timeout: 5 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	return p, rt
}

// signIDToken signs claims with fzKey, as the provider would.
func signIDToken(tb testing.TB, claims map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: fzKey}, (&jose.SignerOptions{}).WithHeader("kid", "k1").WithType("JWT"))
	if err != nil {
		tb.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// FuzzVerifyIDToken feeds a compact JWT to VerifyIDToken with a fixed key
// set: a token it accepts must pass an independent check (go-jose's
// signature check against the key, then iss, aud, exp, sub and the nonce);
// every other input is refused with ErrInvalidIDToken and an error that
// does not quote it.
func FuzzVerifyIDToken(f *testing.F) {
	p, _ := fzProvider(f)
	now := time.Now()
	good := map[string]any{"iss": fzIssuer, "aud": "latch-cli", "sub": "user-1", "exp": now.Add(time.Hour).Unix(),
		"iat": now.Unix(), "nonce": "n-0123456789", "preferred_username": "alice", "email": "a@b.example"}
	with := func(k string, v any) map[string]any {
		c := map[string]any{}
		for k2, v2 := range good {
			c[k2] = v2
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	for _, c := range []map[string]any{good, with("nonce", nil), with("aud", []string{"latch-cli", "other"})} {
		f.Add(signIDToken(f, c), "n-0123456789")
	}
	f.Add(signIDToken(f, with("nonce", nil)), "")
	for _, c := range []map[string]any{with("iss", "https://evil.example"), with("aud", "other"),
		with("exp", now.Add(-time.Hour).Unix()), with("sub", nil), with("exp", "soon")} {
		f.Add(signIDToken(f, c), "n-0123456789")
	}
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2lkLmV4YW1wbGUiLCJhdWQiOiJsYXRjaC1jbGkiLCJzdWIiOiJ4IiwiZXhwIjo5OTk5OTk5OTk5fQ.", "")
	f.Add("a.b.c", "n")
	f.Add("garbage", "")
	f.Fuzz(func(t *testing.T, raw, nonce string) {
		tok, err := p.VerifyIDToken(context.Background(), raw, nonce)
		if err == nil {
			if why := independentlyValid(raw, nonce); why != "" {
				t.Fatalf("verified a token that %s (nonce %q): %q", why, nonce, raw)
			}
			if tok.Subject == "" || tok.Expiry.IsZero() {
				t.Fatalf("verified without sub or exp: %+v", tok)
			}
			return
		}
		if tok != nil {
			t.Fatal("an error with a token")
		}
		if !errors.Is(err, ErrInvalidIDToken) {
			t.Fatalf("%q: %v does not match ErrInvalidIDToken", raw, err)
		}
		if len(raw) >= 16 && strings.Contains(err.Error(), raw) {
			t.Fatalf("the error quotes the token: %v", err)
		}
	})
}

// The secrets the provider calls send.
const (
	fzAuthCode = "code-7c1e0b9d4a2f6e8c3b5d"
	fzVerifier = "verifier-0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c"
)

// FuzzProviderAnswers feeds a fuzzed answer (status, content type, body) to
// the calls that decode a provider's answers: the discovery document, the
// token endpoint (code exchange and refresh, answers and RFC 6749 errors),
// device authorization, revocation and userinfo. Each returns a result or
// an error, never both; errors quote no secret and no control character;
// results hold what latch relies on.
func FuzzProviderAnswers(f *testing.F) {
	tokens := `{"access_token":"at-1","token_type":"Bearer","expires_in":300,"refresh_token":"rt-2","id_token":"x.y.z","refresh_expires_in":3600}`
	for _, s := range []struct {
		op     uint8
		status uint16
		ct     string
		body   string
	}{
		{0, 200, "application/json", fzDiscovery(fzIssuer)},
		{0, 200, "application/json", fzDiscovery("https://other.example")},
		{0, 200, "application/json", `{"issuer":"https://id.example","token_endpoint":"http://id.example/token","jwks_uri":"https://id.example/jwks"}`},
		{0, 200, "application/json", `{"issuer":"https://id.example","token_endpoint":"https://u:p@id.example/t","jwks_uri":"javascript:alert(1)"}`},
		{0, 404, "text/html", "<html>not found</html>"},
		{1, 200, "application/json", tokens},
		{1, 200, "application/x-www-form-urlencoded", "access_token=at&token_type=bearer&expires_in=60"},
		{1, 400, "application/json", `{"error":"invalid_grant","error_description":"code ` + fzAuthCode + ` used \u001b[31m twice, verifier ` + fzVerifier + `"}`},
		{1, 200, "application/json", `{"access_token":"at","token_type":"MAC"}`},
		{2, 400, "application/json", `{"error":"invalid_grant","error_description":"refresh token ` + fzRefresh + ` revoked"}`},
		{2, 200, "application/json", `{"access_token":"eyJhbGciOiJub25lIn0.eyJleHAiOjQxMDI0NDQ4MDB9.","token_type":"Bearer"}`},
		{2, 503, "text/plain", "upstream down"},
		{3, 200, "application/json", `{"device_code":"dc-1","user_code":"ABCD-EFGH","verification_uri":"https://id.example/device","verification_uri_complete":"https://id.example/device?user_code=ABCD-EFGH","expires_in":600,"interval":5}`},
		{3, 200, "application/json", `{"device_code":"dc","user_code":"U","verification_uri":"javascript:alert(1)","expires_in":1e300}`},
		{3, 400, "application/json", `{"error":"unauthorized_client"}`},
		{4, 200, "", ""},
		{4, 400, "application/json", `{"error":"unsupported_token_type","error_description":"` + fzRefresh + `"}`},
		{4, 500, "application/problem+json", `{"title":"` + fzRefresh + `"}`},
		{5, 200, "application/json", `{"sub":"user-1","preferred_username":"alice","email":"a@b.example","name":"Alice"}`},
		{5, 200, "application/jwt", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."},
		{5, 401, "application/json", `{"error":"invalid_token"}`},
		{5, 200, "application/json", `{"preferred_username":"nosub"}`},
	} {
		f.Add(s.op, s.status, s.ct, []byte(s.body))
	}
	p, rt := fzProvider(f)
	// What each call sends, which its errors must not quote.
	secrets := [6][]string{1: {fzAuthCode, fzVerifier}, 2: {fzRefresh}, 4: {fzRefresh}, 5: {fzAccess}}
	f.Fuzz(func(t *testing.T, op uint8, status uint16, ct string, body []byte) {
		st := int(status)
		if st < 200 || st > 599 {
			st = 200 + st%400
		}
		rt.answer = answerRT{status: st, contentType: ct, body: body}
		ctx := context.Background()
		var res any
		var err error
		switch op % 6 {
		case 0:
			d := &discoveryRT{answer: rt.answer}
			q, err2 := Discover(ctx, fzIssuer, "latch-cli", Options{Transport: d, Timeout: 5 * time.Second})
			res, err = q, err2
			if q != nil {
				m := q.Metadata
				if m.Issuer != fzIssuer || m.TokenEndpoint == "" || m.JWKSURI == "" {
					t.Fatalf("discovered %+v", m)
				}
				for _, e := range []string{m.AuthorizationEndpoint, m.TokenEndpoint, m.JWKSURI, m.DeviceAuthorizationEndpoint,
					m.RevocationEndpoint, m.UserinfoEndpoint} {
					if e != "" && !safeEndpoint(e) {
						t.Fatalf("accepted endpoint %q", e)
					}
				}
			}
		case 1:
			tok, err2 := p.Exchange(ctx, "http://127.0.0.1:1234/callback", fzAuthCode, fzVerifier)
			res, err = tok, err2
			checkProviderTokens(t, tok)
		case 2:
			tok, err2 := p.Refresh(ctx, fzRefresh)
			res, err = tok, err2
			checkProviderTokens(t, tok)
			if tok != nil && tok.RefreshToken == "" {
				t.Fatal("refreshed without a refresh token")
			}
			var oe *OAuthError
			if errors.As(err, &oe) && (oe.Code == "invalid_grant" || oe.Code == "invalid_request") && !errors.Is(err, ErrInvalidRefreshToken) {
				t.Fatalf("%v does not match ErrInvalidRefreshToken", err)
			}
		case 3:
			da, err2 := p.DeviceAuth(ctx, []string{"openid"})
			if err2 == nil {
				res = da
				if da.DeviceCode == "" || da.UserCode == "" || !webURL(da.VerificationURI) ||
					(da.VerificationURIComplete != "" && !webURL(da.VerificationURIComplete)) {
					t.Fatalf("device answer %+v", da)
				}
			}
			err = err2
		case 4:
			err = p.Revoke(ctx, fzRefresh)
			if err == nil {
				res = true
				if st < 200 || st >= 300 {
					t.Fatalf("revocation answered %d taken as success", st)
				}
			}
		case 5:
			u, err2 := p.UserInfo(ctx, fzAccess)
			res, err = u, err2
			if u != nil && u.Subject == "" {
				t.Fatal("userinfo without sub")
			}
		}
		if (err == nil) == isNil(res) {
			t.Fatalf("result %v and error %v", res, err)
		}
		if err == nil {
			return
		}
		msg := err.Error()
		for _, s := range secrets[op%6] {
			if strings.Contains(msg, s) {
				t.Fatalf("the error quotes the secret %q: %s", s, msg)
			}
		}
		var oe *OAuthError
		if errors.As(err, &oe) {
			for _, s := range []string{oe.Code, oe.Description} {
				if strings.IndexFunc(s, unicode.IsControl) >= 0 || len([]rune(s)) > 201 {
					t.Fatalf("OAuthError field %q", s)
				}
			}
		}
	})
}

// discoveryRT answers discovery with the fuzzed answer.
type discoveryRT struct{ answer answerRT }

func (d *discoveryRT) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == "/.well-known/openid-configuration" {
		return d.answer.RoundTrip(req)
	}
	return (&answerRT{status: 404}).RoundTrip(req)
}

func checkProviderTokens(t *testing.T, tok *Tokens) {
	t.Helper()
	if tok == nil {
		return
	}
	if tok.AccessToken == "" || tok.TokenType != "Bearer" || tok.ExpiresIn <= 0 || tok.RefreshExpiresIn < 0 {
		t.Fatalf("tokens break the contract: %+v", *tok)
	}
}

// safeEndpoint: https, or http to loopback, with a host and no user info.
func safeEndpoint(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil {
		return false
	}
	return u.Scheme == "https" || (u.Scheme == "http" && isLoopback(u.Hostname()))
}

// independentlyValid checks raw the long way: "" if it is an EdDSA JWS
// signed by fzKey whose claims an ID token for latch-cli needs, else why not.
func independentlyValid(raw, nonce string) string {
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return "does not parse as a JWS: " + err.Error()
	}
	payload, err := jws.Verify(fzKey.Public())
	if err != nil {
		return "is not signed by the key"
	}
	var c struct {
		Iss   string          `json:"iss"`
		Aud   json.RawMessage `json:"aud"`
		Exp   float64         `json:"exp"`
		Sub   string          `json:"sub"`
		Nonce string          `json:"nonce"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "has claims that are not an object"
	}
	var auds []string
	var one string
	if json.Unmarshal(c.Aud, &one) == nil {
		auds = []string{one}
	} else if json.Unmarshal(c.Aud, &auds) != nil {
		return "has no aud"
	}
	switch {
	case c.Iss != fzIssuer:
		return "has another issuer"
	case !slices.Contains(auds, "latch-cli"):
		return "is for another audience"
	case time.Unix(int64(c.Exp), 0).Before(time.Now().Add(-5 * time.Minute)):
		return "has expired"
	case c.Sub == "":
		return "has no sub"
	case nonce != "" && c.Nonce != nonce:
		return "has another nonce"
	}
	return ""
}
