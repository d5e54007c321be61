package flows

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/vault"
)

// FuzzDecodeJWT: a token either decodes to JSON objects whose re-encoding
// decodes to the same view, or is refused with an error that quotes none of
// it.
func FuzzDecodeJWT(f *testing.F) {
	b64 := base64.RawURLEncoding.EncodeToString
	f.Add(b64([]byte(`{"alg":"EdDSA","typ":"JWT","kid":"k1"}`)) + "." +
		b64([]byte(`{"iss":"http://latch.test","sub":"1","aud":["latch"],"exp":1772366700,"iat":1772366400,"sid":"abc","mfa":true}`)) + ".c2ln")
	f.Add(b64([]byte(`{"alg":"RS256"}`)) + "." + b64([]byte(`{"nonce":"n","email":"a@b.example","name":"Ä \u0000"}`)) + ".")
	f.Add("opaque-access-token-0123456789")
	f.Add("a.b.c")
	f.Add("..")
	f.Add(b64([]byte(`[]`)) + "." + b64([]byte(`null`)) + ".x")
	f.Fuzz(func(t *testing.T, tok string) {
		v, err := DecodeJWT(tok)
		if err != nil {
			if v != nil {
				t.Fatal("an error with a view")
			}
			for _, p := range strings.Split(tok, ".") {
				if len(p) >= 8 && strings.Contains(err.Error(), p) {
					t.Fatalf("the error %q quotes the token", err)
				}
			}
			return
		}
		if v.Header == nil || v.Claims == nil {
			t.Fatalf("%q: decoded without a header or claims object: %+v", tok, v)
		}
		parts := strings.Split(tok, ".")
		if v.Signature != parts[2] {
			t.Fatalf("signature %q, want %q", v.Signature, parts[2])
		}
		h, err1 := json.Marshal(v.Header)
		c, err2 := json.Marshal(v.Claims)
		if err1 != nil || err2 != nil {
			t.Fatalf("re-encode: %v %v", err1, err2)
		}
		again, err := DecodeJWT(b64(h) + "." + b64(c) + "." + v.Signature)
		if err != nil || !reflect.DeepEqual(again.Header, v.Header) || !reflect.DeepEqual(again.Claims, v.Claims) {
			t.Fatalf("round trip: %v\n%+v\nwant %+v", err, again, v)
		}
	})
}

// FuzzBrowserCallback feeds the loopback redirect's query to the browser
// login's check: only the right state, with the issuer when the provider
// promises it, and a code, is accepted; a refusal's message, shown in the
// browser and the terminal, has no control characters and never the code.
func FuzzBrowserCallback(f *testing.F) {
	const state, issuer = "Zm9vYmFyc3RhdGUxMjM0NTY3ODkw", "https://id.example"
	f.Add("code=c0de-0123456789&state="+state+"&iss="+url.QueryEscape(issuer), true)
	f.Add("code=c0de-0123456789&state="+state, false)
	f.Add("error=access_denied&state="+state, false)
	f.Add("error=invalid_scope&error_description=the+scope+%0A%1B[31mred&state="+state+"&iss="+url.QueryEscape(issuer), true)
	f.Add("code=x&state=other", false)
	f.Add("code=x&state="+state+"&iss=https://evil.example&iss="+url.QueryEscape(issuer), true)
	f.Add("state="+state+"&code=&code=x;y=%zz", false)
	f.Fuzz(func(t *testing.T, rawQuery string, issPromised bool) {
		p := &client.Provider{Metadata: client.ProviderMetadata{Issuer: issuer, IssParameterSupported: issPromised}}
		b := &BrowserLogin{o: &oauthLogin{provider: p}, state: state}
		u, err := url.ParseRequestURI("/callback?" + rawQuery)
		if err != nil {
			return // net/http answers 400 before the handler runs
		}
		q := u.Query()
		res := b.check(q)
		if res.err == nil {
			switch {
			case q.Get("state") != state:
				t.Fatalf("%q: accepted another state", rawQuery)
			case res.code == "" || res.code != q.Get("code"):
				t.Fatalf("%q: accepted code %q", rawQuery, res.code)
			case q.Has("iss") && (len(q["iss"]) != 1 || q.Get("iss") != issuer):
				t.Fatalf("%q: accepted another issuer", rawQuery)
			case !q.Has("iss") && issPromised:
				t.Fatalf("%q: accepted without the promised iss", rawQuery)
			case q.Get("error") != "":
				t.Fatalf("%q: accepted an error answer", rawQuery)
			}
			return
		}
		msg := res.err.Error()
		if strings.IndexFunc(msg, unicode.IsControl) >= 0 {
			t.Fatalf("%q: control character in %q", rawQuery, msg)
		}
		if c := q.Get("code"); len(c) >= 8 && strings.Contains(msg, c) && !strings.Contains(q.Get("error")+q.Get("error_description"), c) {
			t.Fatalf("%q: the refusal quotes the code: %q", rawQuery, msg)
		}
	})
}

// FuzzImportCodes feeds `latch codes import`'s stdin (split as the command
// splits it) to ImportCodes: what it saves is exactly the non-blank lines,
// trimmed, in order, and reads back the same.
func FuzzImportCodes(f *testing.F) {
	f.Add("github", "abcd-efgh\nijkl-mnop\n\n  qrst-uvwx  \r\n")
	f.Add("mail", "\n\n \t\n")
	f.Add("bad/label", "code")
	f.Add("x", "ünïcode-code\x00\nsecond")
	f.Add("x", "\xff\xfe-not-utf8\n")
	home := f.TempDir()
	f.Fuzz(func(t *testing.T, label, stdin string) {
		ctx := context.Background()
		e := &Env{Home: home, Secrets: vault.NewMemory()}
		lines := strings.Split(stdin, "\n")
		n, err := e.ImportCodes(ctx, label, lines)
		var want []string
		for _, l := range lines {
			if l = strings.TrimSpace(l); l != "" {
				want = append(want, l)
			}
		}
		if err != nil {
			if n != 0 {
				t.Fatalf("an error with %d codes", n)
			}
			if vault.ValidateName(label) == nil && len(want) > 0 && utf8.ValidString(stdin) {
				t.Fatalf("refused %q: %v", stdin, err)
			}
			return
		}
		if vault.ValidateName(label) != nil {
			t.Fatalf("accepted label %q", label)
		}
		if n != len(want) {
			t.Fatalf("saved %d codes, want %d", n, len(want))
		}
		b, err := e.LabelCodes(ctx, label)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]string, 0, len(b.Codes))
		for _, c := range b.Codes {
			if c.State != "" {
				t.Fatalf("a fresh code has state %q", c.State)
			}
			got = append(got, c.Code)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("read back %q, want %q", got, want)
		}
	})
}
