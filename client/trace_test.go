package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// traceLog collects a Tracer's events.
type traceLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *traceLog) trace(ev Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, ev)
}

func (l *traceLog) all() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.events...)
}

// text is every event printed both ways.
func (l *traceLog) text(t *testing.T) string {
	t.Helper()
	var b bytes.Buffer
	for _, ev := range l.all() {
		if err := ev.WriteText(&b); err != nil {
			t.Fatal(err)
		}
		if err := ev.WriteJSON(&b); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

func TestSecretName(t *testing.T) {
	for _, tc := range []struct {
		name string
		want maskStyle
	}{
		{"access_token", maskToken},
		{"refresh_token", maskToken},
		{"id_token", maskToken},
		{"refreshToken", maskToken},
		{"X-Csrf-Token", maskToken},
		{"session_token_v2", maskToken},
		{"password", maskFull},
		{"current_password", maskFull},
		{"newPassword", maskFull},
		{"client_secret", maskFull},
		{"code", maskFull},
		{"device_code", maskFull},
		{"user_code", maskFull},
		{"code_verifier", maskFull},
		{"backup_codes", maskFull},
		{"totp", maskFull},
		{"client_assertion", maskFull},
		{"X-Api-Key", maskFull},
		{"privateKey", maskFull},
		{"Set-Cookie", maskFull},
		{"token_type", keepValue},
		{"token_type_hint", keepValue},
		{"expires_in", keepValue},
		{"refresh_expires_in", keepValue},
		{"code_challenge", keepValue},
		{"code_challenge_method", keepValue},
		{"token_endpoint", keepValue},
		{"token_endpoint_auth_methods_supported", keepValue},
		{"backup_codes_left", keepValue},
		{"keys", keepValue},
		{"kid", keepValue},
		{"username", keepValue},
		{"state", keepValue},
		{"", keepValue},
	} {
		if got := secretName(tc.name); got != tc.want {
			t.Errorf("secretName(%q) = %d, want %d", tc.name, got, tc.want)
		}
	}
}

const (
	jwtSample    = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLTEiLCJleHAiOjE3NjQ1MDMwNzd9.c2lnbmF0dXJlLWJ5dGVzLWhlcmUtMTIzNDU2"
	opaqueSample = "Zx8kQ2mN5pR7tV9wY1aB3cD5eF7gH9iJ"
)

func TestRedactBody(t *testing.T) {
	jsonH := http.Header{"Content-Type": {"application/json"}}
	formH := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	for _, tc := range []struct {
		name    string
		h       http.Header
		body    string
		want    []string // substrings the output must hold
		secrets []string // that it must not
	}{
		{"token answer", jsonH,
			`{"access_token":"` + jwtSample + `","token_type":"Bearer","expires_in":300,"refresh_token":"` + opaqueSample + `","id_token":"` + jwtSample + `"}`,
			[]string{`"access_token":"eyJhbGci…(` + fmt.Sprint(len(jwtSample)) + ` chars)"`, `"token_type":"Bearer"`, `"expires_in":300`,
				`"refresh_token":"Zx8kQ2mN…(32 chars)"`},
			[]string{jwtSample, opaqueSample, opaqueSample[8:]}},
		{"nested and numbers", jsonH, `{"user":{"credentials":[{"password":"hunter2 with spaces"}]},"otp":123456,"mfa":{"code":"654321"}}`,
			[]string{`"password":"***"`, `"otp":"***"`},
			[]string{"hunter2", "123456", "654321"}},
		{"escaped key", jsonH, `{"pass\u0077ord":"s3cr3t-value"}`, []string{`"password":"***"`}, []string{"s3cr3t-value"}},
		{"a field nobody listed", jsonH, `{"new_session_token":"` + opaqueSample + `","legacy_api_key":"k-1"}`,
			nil, []string{opaqueSample, "k-1"}},
		{"totp setup", jsonH, `{"secret":"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP","uri":"otpauth://totp/latch:mia?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=latch"}`,
			[]string{`"secret":"***"`, "otpauth://totp/latch:mia?secret=***&issuer=latch"}, []string{"JBSWY3DP"}},
		{"backup codes", jsonH, `{"backup_codes":["aaaa-1111","bbbb-2222"]}`, []string{`["***","***"]`}, []string{"aaaa-1111", "bbbb-2222"}},
		{"JWT under a plain name", jsonH, `{"note":"` + jwtSample + `"}`, []string{"eyJhbGci…("}, []string{jwtSample[8:]}},
		{"secret inside a description", jsonH, `{"error":"invalid_grant","error_description":"refresh_token=` + opaqueSample + ` is spent"}`,
			[]string{`"error":"invalid_grant"`}, []string{opaqueSample}},
		{"device answer", jsonH, `{"device_code":"GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS","user_code":"WDJB-MJHT","verification_uri_complete":"http://127.0.0.1/device?user_code=WDJB-MJHT","interval":5}`,
			[]string{`"interval":5`, "/device?user_code=***"}, []string{"GmRhmhcx", "WDJB-MJHT"}},
		{"discovery stays readable", jsonH, `{"issuer":"http://127.0.0.1:38475","device_authorization_endpoint":"http://127.0.0.1:38475/oauth/v2/device_authorization","code_challenge_methods_supported":["S256"]}`,
			[]string{"http://127.0.0.1:38475/oauth/v2/device_authorization", `["S256"]`}, nil},
		{"token form", formH, "grant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk&redirect_uri=http%3A%2F%2F127.0.0.1%3A5000%2Fcallback&client_id=latch-cli&client_secret=p%26ss",
			[]string{"grant_type=authorization_code", "code=***", "code_verifier=***", "client_secret=***", "client_id=latch-cli",
				"redirect_uri=http%3A%2F%2F127.0.0.1%3A5000%2Fcallback"},
			[]string{"SplxlOBeZQQYbYS6WxSbIA", "dBjftJeZ", "p%26ss", "p&ss"}},
		{"refresh form, no content type", nil, "grant_type=refresh_token&refresh_token=" + opaqueSample,
			[]string{"refresh_token=Zx8kQ2mN…(32 chars)"}, []string{opaqueSample}},
		{"truncated JSON", jsonH, `{"access_token":"` + jwtSample[:40], []string{`"access_token":"`}, []string{jwtSample[:40]}},
		{"HTML page", http.Header{"Content-Type": {"text/html"}}, `<p>token: ` + opaqueSample + `</p>`, []string{"<p>token: "}, []string{opaqueSample}},
		{"binary", http.Header{"Content-Type": {"image/png"}}, "\x89PNG\xff\xfe", []string{"6 bytes, not text"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := redactBody(tc.h, []byte(tc.body))
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in\n%s", w, got)
				}
			}
			for _, s := range tc.secrets {
				if strings.Contains(got, s) {
					t.Errorf("secret %q survives in\n%s", s, got)
				}
			}
		})
	}
}

func TestRedactBodyCapped(t *testing.T) {
	big := `{"items":[` + strings.Repeat(`"plain words here",`, 1000) + `"end"]}`
	got := redactBody(http.Header{"Content-Type": {"application/json"}}, []byte(big))
	if len(got) > traceBodyShown+64 || !strings.Contains(got, "bytes in all)") {
		t.Fatalf("body of %d bytes shown as %d: %q", len(big), len(got), got[len(got)-40:])
	}
}

func TestRedactURLAndHeaders(t *testing.T) {
	u := RedactURL("http://ada:pw@127.0.0.1:9/authorize?client_id=latch-cli&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&state=xyz&login_hint=a%40b#access_token=" + opaqueSample)
	for _, w := range []string{"ada:***@", "client_id=latch-cli", "code_challenge=E9Melhoa", "code_challenge_method=S256", "state=xyz", "login_hint=a%40b", "#access_token=Zx8kQ2mN…"} {
		if !strings.Contains(u, w) {
			t.Errorf("URL lost %q: %s", w, u)
		}
	}
	if strings.Contains(u, ":pw@") || strings.Contains(u, opaqueSample) {
		t.Errorf("URL keeps a secret: %s", u)
	}
	h := redactHeader(http.Header{
		"Authorization":        {"Bearer " + jwtSample},
		"Proxy-Authorization":  {"Basic YWxhZGRpbjpvcGVuc2VzYW1l"},
		"Cookie":               {"sid=abc; theme=dark"},
		"Set-Cookie":           {"sid=abc; Path=/; HttpOnly"},
		"X-Api-Key":            {"k-1"},
		"X-Amz-Security-Token": {"t-1"},
		"Location":             {"http://127.0.0.1:5000/callback?code=SplxlOBeZQQYbYS6WxSbIA&state=xyz"},
		"Content-Type":         {"application/json"},
	})
	want := map[string]string{
		"Authorization":        "Bearer ***",
		"Proxy-Authorization":  "Basic ***",
		"Cookie":               "sid=***; theme=***",
		"Set-Cookie":           "sid=***; Path=/; HttpOnly",
		"X-Api-Key":            "***",
		"X-Amz-Security-Token": "***",
		"Location":             "http://127.0.0.1:5000/callback?code=***&state=xyz",
		"Content-Type":         "application/json",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
}

// Every exchange of the account API client is traced once, redacted,
// whether it succeeds, fails with an answer, or gets none.
func TestClientTracesExchanges(t *testing.T) {
	s := &stub{status: 200, ctype: "application/json",
		body: `{"access_token":"` + testAccess + `","refresh_token":"` + testRefresh + `","token_type":"Bearer","expires_in":60}`}
	srv := httptest.NewServer(s)
	defer srv.Close()
	var log traceLog
	c, err := New(srv.URL, Options{Trace: log.trace})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(context.Background(), "ada", testPassword); err != nil {
		t.Fatal(err)
	}
	s.status, s.body = 401, `{"type":"about:blank","title":"refresh token refused","status":401}`
	s.ctype = "application/problem+json"
	_, _ = c.Refresh(context.Background(), testRefresh)
	dead, err := New("http://127.0.0.1:1", Options{Trace: log.trace})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = dead.Me(context.Background(), testAccess)

	evs := log.all()
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3: %+v", len(evs), evs)
	}
	login, refresh, me := evs[0].Exchange, evs[1].Exchange, evs[2].Exchange
	if login == nil || login.Method != "POST" || !strings.HasSuffix(login.URL, "/auth/login") || login.Status != 200 ||
		login.Duration <= 0 || !strings.Contains(login.RequestBody, `"password":"***"`) ||
		!strings.Contains(login.ResponseBody, `"token_type":"Bearer"`) || login.ResponseHeader.Get("Content-Type") != "application/json" {
		t.Errorf("login exchange: %+v", login)
	}
	if refresh == nil || refresh.Status != 401 || !strings.Contains(refresh.ResponseBody, "refresh token refused") {
		t.Errorf("refused refresh: %+v", refresh)
	}
	if me == nil || me.Status != 0 || me.Err == "" || me.RequestHeader.Get("Authorization") != "Bearer ***" {
		t.Errorf("unanswered call: %+v", me)
	}
	out := log.text(t)
	for _, sec := range allSecrets {
		if strings.Contains(out, sec) {
			t.Errorf("secret %q in the trace:\n%s", sec, out)
		}
	}
	for _, w := range []string{"> POST " + srv.URL + "/auth/login", "< HTTP 200 OK (", "< HTTP 401 Unauthorized", "< no answer (",
		`"type":"exchange"`, `"status":200`} {
		if !strings.Contains(out, w) {
			t.Errorf("trace lacks %q:\n%s", w, out)
		}
	}
}

// guard (every provider call) traces each exchange, refused ones included.
func TestGuardTracesExchanges(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		if r.PostForm.Get("refresh_token") == "spent" {
			w.WriteHeader(400)
			fmt.Fprint(w, `{"error":"invalid_grant"}`)
			return
		}
		fmt.Fprintf(w, `{"access_token":%q,"refresh_token":%q}`, testAccess, testRefresh)
	}))
	defer srv.Close()
	var log traceLog
	hc := &http.Client{Transport: &guard{userAgent: "latch/test", trace: log.trace}}
	for _, rt := range []string{testRefresh, "spent"} {
		res, err := hc.PostForm(srv.URL+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	evs := log.all()
	if len(evs) != 2 || evs[0].Exchange.Status != 200 || evs[1].Exchange.Status != 400 {
		t.Fatalf("events: %+v", evs)
	}
	x := evs[0].Exchange
	if x.RequestHeader.Get("User-Agent") != "latch/test" || !strings.Contains(x.RequestBody, "refresh_token=***") ||
		!strings.Contains(evs[1].Exchange.ResponseBody, "invalid_grant") {
		t.Errorf("exchange: %+v", x)
	}
	if out := log.text(t); strings.Contains(out, testRefresh) || strings.Contains(out, testAccess) {
		t.Errorf("secret in the trace:\n%s", out)
	}
}

func TestTraceAuthorizeURL(t *testing.T) {
	TraceAuthorizeURL(nil, "http://x/?code=1") // no tracer: nothing happens
	var log traceLog
	TraceAuthorizeURL(log.trace, "http://127.0.0.1/authorize?client_id=c&state=s&login_hint=ada&code_challenge=abc")
	evs := log.all()
	if len(evs) != 1 || evs[0].Exchange != nil || !strings.Contains(evs[0].Note, "authorize?client_id=c&state=s&login_hint=ada") {
		t.Fatalf("events: %+v", evs)
	}
}

func TestEventPrinters(t *testing.T) {
	ok := Event{Check: &Check{Name: "iss", OK: true, Detail: "matches http://idp"}}
	bad := Event{Check: &Check{Name: "nonce", OK: false, Detail: "differs"}}
	note := Event{Note: "discovered http://idp"}
	for _, tc := range []struct {
		ev         Event
		text, json string
	}{
		{ok, "* check iss ✓ matches http://idp\n", `"type":"check"`},
		{bad, "* check nonce ✗ differs\n", `"ok":false`},
		{note, "* discovered http://idp\n", `"type":"note"`},
	} {
		var tb, jb bytes.Buffer
		if err := tc.ev.WriteText(&tb); err != nil || tb.String() != tc.text {
			t.Errorf("text %q, want %q (%v)", tb.String(), tc.text, err)
		}
		if err := tc.ev.WriteJSON(&jb); err != nil || !strings.Contains(jb.String(), tc.json) || strings.Count(jb.String(), "\n") != 1 {
			t.Errorf("json %q, want %q (%v)", jb.String(), tc.json, err)
		}
		var v map[string]any
		if err := json.Unmarshal(jb.Bytes(), &v); err != nil {
			t.Errorf("json line does not parse: %v", err)
		}
	}
}

// FuzzRedact puts a secret in random JSON, form bodies, query strings and
// text under a name that is secret by the rule (random words around a
// stem), or as a JWT anywhere, and checks that neither it nor what is left
// after a shown prefix survives.
func FuzzRedact(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3}, "hunter2-correct-horse", uint8(0))
	f.Add([]byte{4, 0, 9, 1}, "rt_9f8e7d6c5b4a3f2e1d0c", uint8(1))
	f.Add([]byte{7, 7, 7}, "a b\"c&d=e%f", uint8(2))
	f.Add([]byte{1}, "123456", uint8(3))
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8}, "nested-secret-value", uint8(0))
	f.Add([]byte{3, 9}, "s3cr3t", uint8(4))
	f.Fuzz(func(t *testing.T, shape []byte, secret string, kind uint8) {
		if len(secret) < 6 || !utf8Valid(secret) || strings.TrimSpace(secret) != secret {
			t.Skip()
		}
		pick := func(i int) int {
			if len(shape) == 0 {
				return 0
			}
			return int(shape[i%len(shape)])
		}
		stems := []string{"token", "Token", "secret", "password", "passwd", "code", "verifier", "otp", "assertion", "credential", "apiKey", "bearer"}
		others := []string{"x", "new", "session", "mfa", "client", "Refresh", "v2", "data"}
		name := others[pick(1)%len(others)] + []string{"_", "-", ".", ""}[pick(2)%4] + stems[pick(3)%len(stems)]
		if pick(4)%2 == 0 {
			name = stems[pick(3)%len(stems)]
		}
		var (
			h    http.Header
			body string
		)
		switch kind % 5 {
		case 0, 3: // JSON, the secret nested at a random depth, as a string or a number
			val, _ := json.Marshal(secret)
			if kind%5 == 3 && strings.Trim(secret, "0123456789") == "" && secret[0] != '0' {
				val = []byte(secret)
			}
			switch pick(7) % 3 { // under the name: the value, or a container holding it
			case 1:
				val = []byte(`[1,` + string(val) + `]`)
			case 2:
				val = []byte(`{"v":` + string(val) + `}`)
			}
			doc := fmt.Sprintf(`{%q:%s}`, name, val)
			for i := range pick(5) % 5 {
				if pick(6+i)%2 == 0 {
					doc = fmt.Sprintf(`{"a":1,"b%d":[true,null,%s]}`, i, doc)
				} else {
					doc = fmt.Sprintf(`{"k%d":%s,"z":"plain"}`, i, doc)
				}
			}
			h, body = http.Header{"Content-Type": {"application/json"}}, doc
		case 1: // form body
			h, body = http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
				"grant_type=x&"+url.QueryEscape(name)+"="+url.QueryEscape(secret)+"&client_id=c"
		case 2: // query string of a URL
			got := RedactURL("http://127.0.0.1/cb?a=1&" + url.QueryEscape(name) + "=" + url.QueryEscape(secret) + "&state=s")
			checkGone(t, got, secret, url.QueryEscape(secret))
			return
		case 4: // a JWT whose signature is the secret, in plain text
			jwt := "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0." + base64.RawURLEncoding.EncodeToString([]byte(secret))
			got := redactBody(http.Header{"Content-Type": {"text/plain"}}, []byte("note: see "+jwt+" here"))
			checkGone(t, got, jwt, jwt[8:])
			return
		}
		got := redactBody(h, []byte(body))
		checkGone(t, got, secret, url.QueryEscape(secret), jsonEscaped(secret))
	})
}

// checkGone fails if any form of secret, or its tail after a shown
// prefix, is in got.
func checkGone(t *testing.T, got string, forms ...string) {
	t.Helper()
	for _, s := range forms {
		tail := s
		if len(s) >= minPrefixedLen {
			tail = s[tokenPrefixLen:]
		}
		if strings.Contains(got, s) || strings.Contains(got, tail) {
			t.Fatalf("secret %q survives in %q", s, got)
		}
	}
}

func jsonEscaped(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

func utf8Valid(s string) bool {
	return strings.ToValidUTF8(s, "\uFFFD") == s && !strings.ContainsRune(s, '\uFFFD')
}

// Untraced, an exchange costs one nil test: no record, no copy of the body.
func TestUntracedExchangeAllocatesNothing(t *testing.T) {
	req := httptestRequest(t)
	allocs := testing.AllocsPerRun(100, func() {
		rec, r := beginExchange(nil, req)
		rec.end(nil, nil, false, nil)
		_ = r
	})
	if allocs != 0 {
		t.Fatalf("%v allocations without a tracer", allocs)
	}
}

func httptestRequest(t *testing.T) *http.Request {
	t.Helper()
	req, err := http.NewRequest("POST", "http://127.0.0.1/token", strings.NewReader("refresh_token=x"))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// A body the request cannot replay (no GetBody) is read for the trace and
// still reaches the server whole.
func TestTraceTransportKeepsBody(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = string(b)
	}))
	defer srv.Close()
	var log traceLog
	hc := &http.Client{Transport: &traceTransport{trace: log.trace}}
	req, err := http.NewRequest("POST", srv.URL, io.NopCloser(strings.NewReader("password=p1&user=ada")))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	evs := log.all()
	if got != "password=p1&user=ada" || len(evs) != 1 || evs[0].Exchange.RequestBody != "password=***&user=ada" {
		t.Fatalf("server got %q; events %+v", got, evs)
	}
}

// TestExchangeText pins the text form of an exchange, the parts the
// interface's trace pane shares (HeaderLines, IndentJSON, ShortDuration):
// headers in order one value a line, a JSON body indented, a short duration.
func TestExchangeText(t *testing.T) {
	for _, tc := range []struct {
		name string
		x    Exchange
		want string
	}{
		{"json answer", Exchange{Method: "POST", URL: "http://idp/token", Status: 200, Duration: 34400 * time.Microsecond,
			RequestHeader:  http.Header{"User-Agent": {"latch"}, "Accept": {"application/json"}},
			RequestBody:    "grant_type=refresh_token",
			ResponseHeader: http.Header{"Set-Cookie": {"a=***; Expires=Mon, 30 Nov 2026 10:00:00 GMT", "b=***"}},
			ResponseBody:   `{"token_type":"Bearer","n":[1]}`},
			"> POST http://idp/token\n> Accept: application/json\n> User-Agent: latch\n\ngrant_type=refresh_token\n\n" +
				"< HTTP 200 OK (34ms)\n< Set-Cookie: a=***; Expires=Mon, 30 Nov 2026 10:00:00 GMT\n< Set-Cookie: b=***\n\n" +
				"{\n  \"token_type\": \"Bearer\",\n  \"n\": [\n    1\n  ]\n}\n\n"},
		{"no answer", Exchange{Method: "GET", URL: "http://idp/jwks", Duration: 850400 * time.Nanosecond, Err: "refused"},
			"> GET http://idp/jwks\n< no answer (850µs): refused\n\n"},
		{"slow", Exchange{Method: "GET", URL: "http://idp/", Status: 204, Duration: 1234 * time.Millisecond},
			"> GET http://idp/\n< HTTP 204 No Content (1.2s)\n\n"},
	} {
		var b bytes.Buffer
		if err := (Event{Exchange: &tc.x}).WriteText(&b); err != nil || b.String() != tc.want {
			t.Errorf("%s: text\n%s\nwant\n%s (%v)", tc.name, b.String(), tc.want, err)
		}
	}
}
