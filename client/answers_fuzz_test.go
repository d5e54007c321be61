package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// answerRT answers every request with the one response a fuzz input
// describes, as a server or a proxy in front of it could.
type answerRT struct {
	status      int
	contentType string
	retryAfter  string
	location    string
	body        []byte
}

func (a *answerRT) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	h := http.Header{}
	if a.contentType != "" {
		h.Set("Content-Type", a.contentType)
	}
	if a.retryAfter != "" {
		h.Set("Retry-After", a.retryAfter)
	}
	if a.location != "" {
		h.Set("Location", a.location)
	}
	return &http.Response{StatusCode: a.status, Status: strconv.Itoa(a.status), Header: h, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Body: io.NopCloser(bytes.NewReader(a.body)), ContentLength: int64(len(a.body)), Request: req}, nil
}

// The secrets the fuzzed calls send; no answer may bring one back into an
// error message.
const (
	fzPassword = "correct-horse-battery-staple"
	fzRefresh  = "rt-5f1c0e9a7b3d4c2e8f60a1b2"
	fzAccess   = "at-9d8c7b6a5f4e3d2c1b0a9f8e"
	fzMFAToken = "mfa-0a1b2c3d4e5f60718293a4b5"
	fzCode     = "492039"
)

// FuzzAPIAnswers feeds a fuzzed HTTP answer (status, content type,
// Retry-After, Location, body) to the calls whose answers the client
// decodes: login, refresh, the MFA step, the server's config, MFA setup,
// sessions and me. Each returns a result or an error, never both; errors are
// the documented kinds, quote no secret the call sent, and an *APIError
// carries the status line's code; results hold what the contract promises.
func FuzzAPIAnswers(f *testing.F) {
	tokens := `{"access_token":"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxIn0.c2ln","token_type":"Bearer","expires_in":900,"refresh_token":"r1","refresh_expires_in":604800}`
	problem := `{"type":"urn:latch:problem:validation","title":"Validation failed","status":422,"detail":"bad input ` + fzPassword + `","errors":{"password":"must not be ` + fzPassword + `","` + fzPassword + `":"x"}}`
	for _, s := range []struct {
		op          uint8
		status      uint16
		ct, ra, loc string
		body        string
	}{
		{0, 200, "application/json", "", "", tokens},
		{0, 200, "application/json", "", "", `{"mfa_required":true,"mfa_token":"` + fzMFAToken + `","mfa_methods":["totp"]}`},
		{0, 200, "application/json", "", "", `{"access_token":"a","token_type":"` + fzPassword + `","expires_in":1,"refresh_token":"r"}`},
		{0, 401, "application/problem+json", "", "", `{"type":"urn:latch:problem:invalid-credentials","title":"Invalid credentials","status":401}`},
		{0, 422, "application/problem+json", "", "", problem},
		{0, 429, "application/problem+json", "17", "", `{"type":"urn:latch:problem:rate-limited","title":"Too many","status":429,"retry_after":3.5}`},
		{1, 401, "application/problem+json", "", "", `{"type":"urn:latch:problem:token-reused","title":"Token reused","detail":"` + fzRefresh + `"}`},
		{1, 200, "application/json; charset=utf-8", "", "", tokens},
		{1, 302, "", "", "https://user:pw@other.example/login?next=" + fzRefresh + "#x", ""},
		{2, 401, "application/problem+json", "", "", `{"type":"urn:latch:problem:invalid-mfa-code","title":"Invalid code","attempts_left":4,"detail":"` + fzCode + `"}`},
		{2, 200, "application/json", "", "", tokens},
		{3, 200, "application/json", "", "", `{"username":{"min_length":3,"max_length":32,"pattern":"^[a-z]+$"},"password":{"min_length":8,"max_length":128,"min_score":3},"mfa":true}`},
		{4, 200, "application/json", "", "", `{"secret":"JBSWY3DPEHPK3PXP","uri":"otpauth://totp/latch:alice?secret=JBSWY3DPEHPK3PXP&issuer=latch"}`},
		{5, 200, "application/json", "", "", `{"sessions":[{"id":12,"created_at":"2026-03-01T12:00:00Z","current":true},{"id":"13","user_agent":"x"}]}`},
		{6, 200, "application/json", "", "", `{"id":1,"username":"alice","email":"a@b.example","created_at":"2026-03-01T12:00:00Z","mfa_enabled":false}`},
		{6, 502, "text/html", "", "", "<!doctype html><html>Bad gateway</html>"},
		{6, 200, "application/json", "", "", `{"id":1,"username":`},
		{5, 200, "application/json", "", "", `{"sessions":[{"id":1,"created_at":"` + fzAccess + `"}]}`},
		{6, 500, "application/json", "", "", `{"error":"` + fzAccess + `"}`},
	} {
		f.Add(s.op, s.status, s.ct, s.ra, s.loc, []byte(s.body))
	}
	rt := &answerRT{}
	c, err := New("https://latch.example", Options{Transport: rt})
	if err != nil {
		f.Fatal(err)
	}
	secrets := []string{fzPassword, fzRefresh, fzAccess, fzMFAToken}
	f.Fuzz(func(t *testing.T, op uint8, status uint16, ct, retryAfter, location string, body []byte) {
		st := int(status)
		if st < 200 || st > 599 {
			st = 200 + st%400
		}
		*rt = answerRT{status: st, contentType: ct, retryAfter: retryAfter, location: location, body: body}
		ctx := context.Background()
		var res any
		switch op % 7 {
		case 0:
			tok, err2 := c.Login(ctx, "alice", fzPassword)
			res, err = tok, err2
			if tok != nil {
				checkTokens(t, tok)
			}
			var mfa *MFARequiredError
			if errors.As(err, &mfa) {
				if mfa.Token == "" || strings.Contains(mfa.Error(), mfa.Token) || strings.Contains(mfa.GoString(), mfa.Token) {
					t.Fatalf("MFARequiredError %q shows its token %q", mfa.Error(), mfa.Token)
				}
			}
		case 1:
			tok, err2 := c.Refresh(ctx, fzRefresh)
			res, err = tok, err2
			if tok != nil {
				checkTokens(t, tok)
			}
		case 2:
			tok, err2 := c.MFAVerify(ctx, fzMFAToken, fzCode)
			res, err = tok, err2
			if tok != nil {
				checkTokens(t, tok)
			}
		case 3:
			cfg, err2 := c.Config(ctx)
			res, err = cfg, err2
		case 4:
			s, err2 := c.MFASetup(ctx, fzAccess)
			res, err = s, err2
			if s != nil && (s.Secret == "" || !strings.HasPrefix(s.URI, "otpauth://")) {
				t.Fatalf("setup without a secret or uri: %+v", *s)
			}
		case 5:
			s, err2 := c.Sessions(ctx, fzAccess)
			res, err = s, err2
		case 6:
			u, err2 := c.Me(ctx, fzAccess)
			res, err = u, err2
		}
		if (err == nil) == isNil(res) {
			t.Fatalf("result %v and error %v", res, err)
		}
		if err == nil {
			return
		}
		msg := err.Error()
		for _, s := range append(secrets, fzCode) {
			if strings.Contains(msg, s) {
				t.Fatalf("the error quotes the secret %q: %s", s, msg)
			}
		}
		var ae *APIError
		var mfa *MFARequiredError
		switch {
		case errors.As(err, &ae):
			if ae.Status != rt.status {
				t.Fatalf("APIError status %d, answer %d", ae.Status, rt.status)
			}
			if ae.AttemptsLeft < 0 || ae.AttemptsLeft >= 1000 || ae.RetryAfter < 0 {
				t.Fatalf("APIError %+v", ae)
			}
		case errors.As(err, &mfa):
			if op%7 != 0 {
				t.Fatalf("MFARequiredError from op %d", op%7)
			}
		case errors.Is(err, ErrBadResponse):
		default:
			t.Fatalf("an error of no documented kind: %T %v", err, err)
		}
	})
}

func checkTokens(t *testing.T, tok *Tokens) {
	t.Helper()
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.TokenType != "Bearer" || tok.ExpiresIn <= 0 || tok.RefreshExpiresIn < 0 {
		t.Fatalf("tokens break the contract: %+v", *tok)
	}
	if s := tok.String(); strings.Contains(s, tok.AccessToken) || strings.Contains(s, tok.RefreshToken) {
		t.Fatalf("Tokens.String shows a token: %s", s)
	}
}

// isNil reports whether v is nil or a typed nil pointer or slice.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch r := reflect.ValueOf(v); r.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map:
		return r.IsNil()
	}
	return false
}

// FuzzProblem feeds an error answer to the problem+json decoder with a
// secret of the fuzzer's choice: an *APIError keeps the status line's code,
// bounded retry and attempt counts, and none of its texts holds the secret
// (a field name shaped like one may, by design); a refusal is a
// *ResponseError whose reason quotes nothing of the body.
func FuzzProblem(f *testing.F) {
	f.Add(uint16(422), "application/problem+json", "", []byte(`{"type":"urn:latch:problem:validation","title":"Validation failed","status":422,"errors":{"password":"is hunter22","email":"taken"}}`), "hunter22")
	f.Add(uint16(429), "application/problem+json; charset=utf-8", "120", []byte(`{"type":"urn:latch:problem:rate-limited","title":"Slow down","retry_after":1e5}`), "")
	f.Add(uint16(429), "application/problem+json", "99999999999", []byte(`{"type":"about:blank","title":"x"}`), "")
	f.Add(uint16(401), "application/json", "", []byte(`{"type":"urn:latch:problem:invalid-mfa-code","attempts_left":4.5,"detail":"d]abab"}`), "d]ab")
	f.Add(uint16(409), "application/problem+json", "", []byte(`{"type":"urn:latch:problem:conflict","errors":{"se:cret":"se:cret se:cret"}}`), "se:cret")
	f.Add(uint16(500), "text/html", "", []byte("<!DOCTYPE html><p>oops"), "oops")
	f.Fuzz(func(t *testing.T, status uint16, ct, retryAfter string, body []byte, secret string) {
		st := 400 + int(status)%200
		h := http.Header{}
		h.Set("Content-Type", ct)
		h.Set("Retry-After", retryAfter)
		r := &reply{method: "POST", path: "/auth/login?x=1", status: st, header: h, body: body}
		err := checkStatus(r, 200, secret)
		if err == nil {
			t.Fatal("an error status accepted")
		}
		var ae *APIError
		var re *ResponseError
		switch {
		case errors.As(err, &ae):
			if ae.Status != st || ae.RetryAfter < 0 || ae.RetryAfter > 1e6*time.Second || ae.AttemptsLeft < 0 || ae.AttemptsLeft >= 1000 {
				t.Fatalf("APIError %+v", ae)
			}
			// A secret inside the marker itself ("acte") is no leak.
			if len(secret) >= 4 && !strings.Contains("[redacted]", secret) {
				for k, v := range ae.Fields {
					if strings.Contains(v, secret) || (!fieldName.MatchString(k) && strings.Contains(k, secret)) {
						t.Fatalf("field %q: %q holds the secret", k, v)
					}
				}
				if strings.Contains(ae.Title, secret) || strings.Contains(ae.Detail, secret) {
					t.Fatalf("title %q or detail %q holds the secret %q", ae.Title, ae.Detail, secret)
				}
			}
			_ = ae.Error()
		case errors.As(err, &re):
			// (The content type is quoted, and a body may repeat it.)
			if len(body) >= 16 && strings.Contains(re.Error(), string(body)) &&
				!strings.Contains(strings.ToLower(ct), strings.ToLower(string(body))) {
				t.Fatalf("the reason quotes the body: %v", re)
			}
			if strings.Contains(re.Error(), "x=1") {
				t.Fatalf("the error shows the query: %v", re)
			}
		default:
			t.Fatalf("%T %v", err, err)
		}
	})
}
