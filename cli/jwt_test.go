package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/server"
)

// jwtNow is the clock of the jwt tests, in a zone of its own so that the
// local-time output is the same on every machine.
var jwtNow = time.Date(2026, 11, 30, 8, 4, 38, 0, time.FixedZone("CET", 3600))

// signer signs test tokens with its own ES256 key, and serves that key as
// a JWKS on 127.0.0.1.
type signer struct {
	t    *testing.T
	key  *ecdsa.PrivateKey
	jwks string // URL of the key set
}

func newSigner(t *testing.T) *signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(hs.Close)
	return &signer{t: t, key: key, jwks: hs.URL + "/keys"}
}

// sign makes a compact JWS of claims (raw JSON, so that tests control its
// numbers and order).
func (s *signer) sign(claims string) string {
	s.t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: s.key, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		s.t.Fatal(err)
	}
	obj, err := sig.Sign([]byte(claims))
	if err != nil {
		s.t.Fatal(err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestJWTDecodeText(t *testing.T) {
	s := newSigner(t)
	at := func(d time.Duration) string { return jsonNumber(jwtNow.Add(d).Unix()) }
	tok := s.sign(`{"sub":"u1","exp":` + at(4*time.Minute+12*time.Second) + `,"iat":` + at(-3*time.Hour) +
		`,"nbf":` + at(time.Minute) + `,"auth_time":` + at(-3*time.Hour) + `,"name":"evil\u001b[31m","groups":["a","b"]}`)
	var out bytes.Buffer
	if err := writeJWT(&out, tok, false, jwtNow); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Decoded, not verified",
		"Header\n  alg  ES256\n  kid  k1\n  typ  JWT\n",
		"  exp        " + at(4*time.Minute+12*time.Second) + "  2026-11-30 08:08:50 CET, in 4m12s\n",
		"  iat        " + at(-3*time.Hour) + "  2026-11-30 05:04:38 CET, 3h00m ago\n",
		"  auth_time  " + at(-3*time.Hour) + "  2026-11-30 05:04:38 CET, 3h00m ago\n",
		"  nbf        " + at(time.Minute) + "  2026-11-30 08:05:38 CET, in 1m00s: not valid yet\n",
		`  name       "evil\x1b[31m"` + "\n",
		`  groups     ["a","b"]` + "\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "\x1b") {
		t.Error("an escape sequence of a claim reached the output")
	}
	out.Reset()
	expired := s.sign(`{"exp":` + at(-time.Minute) + `}`)
	if err := writeJWT(&out, expired, false, jwtNow); err != nil || !strings.Contains(out.String(), "1m00s ago: expired") {
		t.Errorf("expired token: %v\n%s", err, out.String())
	}
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }

// --json is {"header": …, "claims": …} exactly as the token holds them:
// a number too large for a float64 keeps its digits.
func TestJWTDecodeJSON(t *testing.T) {
	s := newSigner(t)
	claims := `{"sub":"u1","big":12345678901234567890,"exp":1796040270,"html":"<a>&"}`
	r := runCLI(t, nil, s.sign(claims)+"\n", "jwt", "decode", "--json")
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["header"] == nil || got["claims"] == nil {
		t.Fatalf("want exactly header and claims: %s", r.stdout)
	}
	var compact bytes.Buffer
	json.Compact(&compact, got["claims"])
	if compact.String() != claims {
		t.Errorf("claims = %s, want %s", compact.String(), claims)
	}
	var h map[string]any
	json.Unmarshal(got["header"], &h)
	if !reflect.DeepEqual(h, map[string]any{"alg": "ES256", "kid": "k1", "typ": "JWT"}) {
		t.Errorf("header = %v", h)
	}
}

func TestJWTDecodeInput(t *testing.T) {
	s := newSigner(t)
	tok := s.sign(`{"sub":"u1"}`)
	tests := []struct {
		name       string
		stdin      string
		args       []string
		tty        bool
		wantCode   int
		wantStdout string
		wantErr    string
	}{
		{"argument", "", []string{tok}, true, exitOK, "sub  u1", ""},
		{"stdin with -", tok + "\n", []string{"-"}, true, exitOK, "sub  u1", ""},
		{"stdin, no argument", "  " + tok + "\r\n", nil, false, exitOK, "sub  u1", ""},
		{"a pasted Authorization header", "Bearer " + tok, nil, false, exitOK, "sub  u1", ""},
		{"terminal, no argument", "", nil, true, exitUsage, "", "latch jwt decode - reads it from stdin"},
		{"empty stdin", "\n", nil, false, exitUsage, "", "stdin was empty"},
		{"white space inside", tok[:10] + " " + tok[10:], nil, false, exitError, "", "white space inside"},
		{"two parts", "", []string{"aGVhZGVy.Y2xhaW1z"}, true, exitError, "", "not a JWT: 2 parts, want 3"},
		{"one part (opaque)", "", []string{"opaque-token-0123456789"}, true, exitError, "", "not a JWT: 1 part (no dots)"},
		{"JWE", "", []string{"eyJhbGciOiJSU0EtT0FFUCJ9.a2V5.aXY.Y2lwaGVy.dGFn"}, true, exitError, "", "encrypted (a JWE: 5 parts)"},
		{"bad base64 header", "", []string{"!!!!." + b64(`{}`) + ".c2ln"}, true, exitError, "", "bad base64 in its header"},
		{"header not an object", "", []string{b64(`[1]`) + "." + b64(`{}`) + ".c2ln"}, true, exitError, "", "header is not a JSON object"},
		{"claims not an object", "", []string{s.sign(`"just a string"`)}, true, exitError, "", "claims is not a JSON object"},
		{"alg none still decodes", "", []string{b64(`{"alg":"none"}`) + "." + b64(`{"sub":"u9"}`) + "."}, true, exitOK, "sub  u9", ""},
		{"bad base64 claims, alg none", "", []string{b64(`{"alg":"none"}`) + ".%%%%."}, true, exitError, "", "bad base64 in its claims"},
		{"broken JWS", "", []string{b64(`{"alg":"ES256","jwk":{"kty":"oct","k":"c2VjcmV0c2VjcmV0"}}`) + "." + b64(`{}`) + ".c2ln"}, true, exitError, "", "not a well-formed JWS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runJWT(t, tt.stdin, tt.tty, append([]string{"jwt", "decode"}, tt.args...)...)
			if r.code != tt.wantCode || !strings.Contains(r.stdout, tt.wantStdout) || !strings.Contains(r.stderr, tt.wantErr) {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s\nwant stdout %q, stderr %q", r.code, tt.wantCode, r.stdout, r.stderr, tt.wantStdout, tt.wantErr)
			}
			// An error never quotes the token.
			for _, a := range append(tt.args, tt.stdin) {
				for _, p := range strings.Split(strings.TrimSpace(a), ".") {
					if len(p) >= 8 && strings.Contains(r.stderr, p) {
						t.Errorf("stderr quotes the token: %s", r.stderr)
					}
				}
			}
		})
	}
}

// runJWT is runCLI with a terminal (or not) on stdin.
func runJWT(t *testing.T, stdin string, tty bool, args ...string) cliResult {
	t.Helper()
	g := newGlobals()
	g.tty = func() bool { return tty }
	root := newRootCmd(g)
	var out, errb bytes.Buffer
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd, err := root.ExecuteContextC(ctx)
	code := exitCode(cmd, err, &errb)
	return cliResult{stdout: out.String(), stderr: errb.String(), code: code}
}

// newTokenServer is a real latch server on 127.0.0.1 and an access token
// it issued (signed with its key, iss its issuer, aud its issuer).
func newTokenServer(t *testing.T) (issuer, token string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	hs := httptest.NewUnstartedServer(nil)
	srv, err := server.New(ctx, server.Config{DBPath: server.MemoryDB, Issuer: "http://" + hs.Listener.Addr().String(),
		SecretKey: bytes.Repeat([]byte{9}, 32), AccessTTL: 15 * time.Minute, RateIP: -1, RateAccount: -1})
	if err != nil {
		hs.Close()
		t.Fatal(err)
	}
	hs.Config.Handler = srv.Handler()
	hs.Start()
	t.Cleanup(func() { hs.Close(); srv.Close() })
	cl, err := client.New(hs.URL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Register(ctx, "alice", "alice@example.com", e2ePassword); err != nil {
		t.Fatal(err)
	}
	tok, err := cl.Login(ctx, "alice", e2ePassword)
	if err != nil {
		t.Fatal(err)
	}
	return hs.URL, tok.AccessToken
}

func TestJWTVerify(t *testing.T) {
	issuer, tok := newTokenServer(t)
	s := newSigner(t)
	now := time.Now()
	unix := func(d time.Duration) string { return jsonNumber(now.Add(d).Unix()) }
	parts := strings.Split(tok, ".")
	other := newSigner(t) // same kid, another key
	tests := []struct {
		name          string
		tok           string
		opts          jwtOptions
		later         time.Duration
		wantValid     bool
		wantOK, wantX []string // checks that pass, checks that fail
	}{
		{"latch's token at its issuer", tok, jwtOptions{Issuer: issuer, Audience: issuer}, 0, true,
			[]string{"signature", "iss", "aud", "exp", "nbf"}, nil},
		{"wrong audience", tok, jwtOptions{Issuer: issuer, Audience: "grafana"}, 0, false,
			[]string{"signature", "iss", "exp"}, []string{"aud"}},
		{"expired", tok, jwtOptions{Issuer: issuer}, 16 * time.Minute, false,
			[]string{"signature", "iss"}, []string{"exp"}},
		{"tampered claims", parts[0] + "." + b64(`{"iss":"`+issuer+`","sub":"admin","exp":`+unix(time.Hour)+`}`) + "." + parts[2],
			jwtOptions{Issuer: issuer}, 0, false, []string{"iss", "exp"}, []string{"signature"}},
		{"alg none", b64(`{"alg":"none"}`) + "." + parts[1] + ".", jwtOptions{Issuer: issuer}, 0, false,
			[]string{"iss", "exp"}, []string{"signature"}},
		{"another issuer's key", other.sign(`{"iss":"` + issuer + `","exp":` + unix(time.Hour) + `}`), jwtOptions{Issuer: issuer}, 0, false,
			[]string{"iss", "exp"}, []string{"signature"}},
		{"own key set", s.sign(`{"iss":"https://idp.example","aud":["a","b"],"exp":` + unix(time.Hour) + `,"nbf":` + unix(-time.Minute) + `}`),
			jwtOptions{JWKS: s.jwks, Audience: "b"}, 0, true, []string{"signature", "aud", "exp", "nbf"}, nil},
		{"key set and issuer", s.sign(`{"iss":"https://idp.example","exp":` + unix(time.Hour) + `}`),
			jwtOptions{JWKS: s.jwks, Issuer: "https://other.example"}, 0, false, []string{"signature", "exp"}, []string{"iss"}},
		{"not valid yet", s.sign(`{"exp":` + unix(time.Hour) + `,"nbf":` + unix(10*time.Minute) + `}`),
			jwtOptions{JWKS: s.jwks}, 0, false, []string{"signature", "exp"}, []string{"nbf"}},
		{"no expiry", s.sign(`{"sub":"x"}`), jwtOptions{JWKS: s.jwks}, 0, false, []string{"signature", "nbf"}, []string{"exp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGlobals()
			var out bytes.Buffer
			g.out = &out
			o := tt.opts
			o.g, o.JSON = g, true
			o.now = func() time.Time { return now.Add(tt.later) }
			err := verifyRun(context.Background(), &o, tt.tok)
			var res verifyJSON
			if jerr := json.Unmarshal(out.Bytes(), &res); jerr != nil {
				t.Fatalf("%v; output %s (err %v)", jerr, out.String(), err)
			}
			if res.Valid != tt.wantValid || (err == nil) != tt.wantValid {
				t.Fatalf("valid = %v, err = %v; want valid %v\n%s", res.Valid, err, tt.wantValid, out.String())
			}
			if err != nil && !errors.Is(err, errInvalidJWT) {
				t.Errorf("err = %v, want errInvalidJWT", err)
			}
			byName := map[string]jwtCheck{}
			for _, c := range res.Checks {
				byName[c.Name] = c
			}
			for _, n := range tt.wantOK {
				if c := byName[n]; !c.OK || c.Skipped {
					t.Errorf("%s: %+v, want it to pass", n, c)
				}
			}
			for _, n := range tt.wantX {
				if c := byName[n]; c.OK || c.Skipped {
					t.Errorf("%s: %+v, want it to fail", n, c)
				}
			}
		})
	}
}

// The text report marks each check, and the exit code follows the
// verdict; keys that cannot be fetched are an error, not a verdict.
func TestJWTVerifyCLI(t *testing.T) {
	issuer, tok := newTokenServer(t)
	for _, tt := range []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"valid", []string{"--issuer", issuer, "--audience", issuer}, exitOK, "✓ signature"},
		{"wrong audience", []string{"--issuer", issuer, "--audience", "nope"}, exitError, "✗ aud"},
		{"audience unchecked", []string{"--issuer", issuer}, exitOK, "- aud        not checked (give --audience A)"},
		{"no keys named", nil, exitUsage, "--issuer URL (OpenID discovery) or --jwks URL"},
		{"keys unreachable", []string{"--jwks", "http://127.0.0.1:1/keys"}, exitError, "cannot reach 127.0.0.1:1"},
		{"keys not a key set", []string{"--jwks", issuer + "/.well-known/nothing"}, exitError, "fetching the key set"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runJWT(t, tok, false, append([]string{"jwt", "verify", "-"}, tt.args...)...)
			if r.code != tt.wantCode || !strings.Contains(r.stdout+r.stderr, tt.want) {
				t.Fatalf("exit %d, want %d and %q\nstdout: %s\nstderr: %s", r.code, tt.wantCode, tt.want, r.stdout, r.stderr)
			}
		})
	}
}
