package server

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"gopkg.in/yaml.v3"
)

// The server's parsers of input it does not control. Seeds are real inputs
// (what the client and the tests send); the committed corpora are under
// testdata/fuzz. Run one with
//
//	go test -run '^$' -fuzz '^FuzzParseArgon$' -fuzztime 1000000x ./server/

// FuzzParseArgon: a PHC string the parser accepts is in the one canonical
// form Hash writes, so it re-encodes to itself, and its parameters are
// within the bounds a login can afford.
func FuzzParseArgon(f *testing.F) {
	for _, p := range []argonParams{testArgon, defaultArgon, {Memory: 1 << 16, Time: 3, Threads: 4}} {
		h, err := newHasher(p).hashNoWait(goodPassword)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(h)
	}
	f.Add("$argon2id$v=19$m=0,t=1,p=1$AAAA$AAAA")
	f.Add("$argon2id$v=18$m=64,t=1,p=1$AAAAAAAA$" + strings.Repeat("A", 43))
	f.Add("$2b$04$abcdefghijklmnopqrstuu5Mtj9Syg7DU1YBqQ7PyouCPLpmqJA2W")
	f.Fuzz(func(t *testing.T, encoded string) {
		p, salt, key, err := parseArgon(encoded)
		if err != nil {
			return
		}
		again := "$argon2id$v=19$m=" + itoa(p.Memory) + ",t=" + itoa(p.Time) + ",p=" + itoa(uint32(p.Threads)) +
			"$" + b64.EncodeToString(salt) + "$" + b64.EncodeToString(key)
		if again != encoded {
			t.Fatalf("accepted %q, which re-encodes as %q", encoded, again)
		}
		if p.Memory > argonMaxMemory || p.Time > argonMaxTime || p.Threads == 0 || p.Memory < 8*uint32(p.Threads) ||
			len(salt) < argonMinSaltLen || len(key) < 16 || len(key) > argonMaxKeyLen {
			t.Fatalf("accepted %q with parameters out of bounds: %+v, salt %d, key %d", encoded, p, len(salt), len(key))
		}
	})
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

// FuzzParseClients: the --clients file. An accepted file's clients all
// convert, with distinct ids, and the file means the same after a round
// trip through YAML (nothing is accepted that the decoder half-read).
func FuzzParseClients(f *testing.F) {
	f.Add([]byte(`clients:
  - id: notes
    name: Notes App
    redirect_uris: ["http://127.0.0.1/cb"]
    grant_types: [authorization_code, refresh_token, device_code]
  - id: web
    name: Web Portal
    secret_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    redirect_uris: ["https://portal.example/cb"]
`))
	f.Add([]byte(`{"clients": [{"id": "grafana", "name": "Grafana", "redirect_uris": ["https://grafana.example.com/login/generic_oauth"],
 "grant_types": ["authorization_code", "refresh_token"], "scopes": ["openid", "profile", "email", "offline_access"], "account_api": false}]}`))
	f.Add([]byte("clients:\n  - id: tv\n    grant_types: [device_code]\n    account_api: true\n"))
	f.Add([]byte("clients:\n  - id: a\n    redirect_uris: [http://[::1]:8080/cb]\n  - id: a\n    redirect_uris: [http://[::1]/cb]\n"))
	f.Add([]byte("clients: &a [*a]\n"))
	f.Add([]byte("clients:\n  - id: x\n    unknown: 1\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, raw []byte) {
		clients, err := parseClients(raw)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, c := range clients {
			if _, err := newClient(c); err != nil {
				t.Fatalf("accepted a client newClient refuses: %v", err)
			}
			if seen[c.ID] {
				t.Fatalf("accepted id %q twice", c.ID)
			}
			seen[c.ID] = true
		}
		out, err := yaml.Marshal(map[string]any{"clients": clients})
		if err != nil {
			t.Fatal(err)
		}
		again, err := parseClients(out)
		if err != nil {
			t.Fatalf("round trip refused: %v\n%s", err, out)
		}
		a, _ := json.Marshal(normalClients(clients))
		b, _ := json.Marshal(normalClients(again))
		if !bytes.Equal(a, b) {
			t.Fatalf("round trip changed the clients:\n%s\n%s", a, b)
		}
	})
}

// normalClients drops the difference between an absent list and an empty
// one, which mean the same in a clients file.
func normalClients(cs []ClientConfig) []ClientConfig {
	if len(cs) == 0 {
		return nil
	}
	out := slices.Clone(cs)
	for i := range out {
		for _, l := range []*[]string{&out[i].RedirectURIs, &out[i].GrantTypes, &out[i].Scopes} {
			if len(*l) == 0 {
				*l = nil
			}
		}
	}
	return out
}

// decodeTargets are the shapes the account API decodes bodies into.
var decodeTargets = []func() any{
	func() any { return &struct{ Username, Email, Password string }{} },
	func() any { return &struct{ Identifier, Password string }{} },
	func() any {
		return &struct {
			Current string `json:"current_password"`
			New     string `json:"new_password"`
		}{}
	},
	func() any {
		return &struct {
			MFAToken string `json:"mfa_token"`
			Code     string `json:"code"`
		}{}
	},
}

// problemDetail is every detail decode may give: fixed text, offsets and
// field names, never the input (which may hold a password).
var problemDetail = regexp.MustCompile(`^(Send the request body as application/json\.|The request body must be at most 64 KiB\.|` +
	`The request body must hold exactly one JSON object\.|The request body is not a valid JSON object of the expected shape: ` +
	`(syntax error at byte [0-9]+|field "[A-Za-z_.]+" must be (a string|true or false|a number|an array|an object)|` +
	`the body must be a JSON object|the body is empty|unexpected end of input))$`)

// FuzzDecodeBody: the account API's JSON body decoder. A body is either
// one JSON value, or refused with a problem+json 400, 413 or 415 whose
// detail does not echo the input; never a 500.
func FuzzDecodeBody(f *testing.F) {
	for _, b := range []string{
		`{"username":"alice","email":"alice@example.com","password":"correct horse battery staple"}`,
		`{"identifier":"alice","password":"correct horse battery staple"}`,
		`{"current_password":"a","new_password":"b"}`,
		`{"mfa_token":"x","code":"123456"}`, `{"refresh_token":"abc"}`, `{"code":"ABCD-EFGH"}`,
		`{"password":1}`, `{"a":1}{"b":2}`, `{"a":1} `, `[]`, `null`, ``, `{`, `"\ud800"`,
	} {
		f.Add("application/json", []byte(b))
	}
	f.Add("application/json; charset=utf-8", []byte(`{}`))
	f.Add("text/plain", []byte(`{}`))
	f.Add("application/json; charset=\"", []byte(`{}`))
	s := &Server{log: slog.New(slog.DiscardHandler)}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		for _, target := range decodeTargets {
			r := httptest.NewRequest("POST", "/auth/login", bytes.NewReader(body))
			r.Header.Set("Content-Type", contentType)
			w := httptest.NewRecorder()
			err := decode(w, r, target())
			if err == nil {
				if !json.Valid(body) {
					t.Fatalf("accepted a body that is not one JSON value: %q", body)
				}
				continue
			}
			s.writeError(w, r, err)
			checkProblem(t, w.Result().StatusCode, w.Header(), w.Body.Bytes(), http.StatusBadRequest,
				http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType)
			var p problem
			json.Unmarshal(w.Body.Bytes(), &p)
			if !problemDetail.MatchString(p.Detail) {
				t.Fatalf("detail %q is not one of decode's", p.Detail)
			}
		}
	})
}

// checkProblem fails unless an answer is a problem+json document with one
// of the statuses.
func checkProblem(t *testing.T, status int, h http.Header, body []byte, statuses ...int) {
	t.Helper()
	ok := false
	for _, s := range statuses {
		ok = ok || status == s
	}
	var p problem
	if !ok || h.Get("Content-Type") != "application/problem+json" || json.Unmarshal(body, &p) != nil || p.Status != status ||
		!strings.HasPrefix(p.Type, "urn:latch:problem:") {
		t.Fatalf("answer %d %q %s, want a problem+json with status in %v", status, h.Get("Content-Type"), body, statuses)
	}
}

// fuzzServer is a server for handler-level fuzzing: in-process, no
// listener, no limits.
func fuzzServer(f *testing.F) *Server {
	srv, err := New(context.Background(), Config{
		DBPath: testDB(f, MemoryDB), Issuer: "http://latch.test", SecretKey: bytes.Repeat([]byte{7}, 32),
		Logger: slog.New(slog.DiscardHandler), Now: newClock().Now, RateIP: -1, RateAccount: -1, argon: &testArgon,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close() })
	return srv
}

var accountPaths = []string{"/auth/login", "/auth/register", "/auth/refresh", "/auth/mfa/verify", "/auth/logout"}

// FuzzAccountAPIBody: a body sent to the account API's unauthenticated
// endpoints never gets a 5xx, and every refusal is problem+json.
func FuzzAccountAPIBody(f *testing.F) {
	srv := fuzzServer(f)
	h := srv.Handler()
	reg := httptest.NewRecorder()
	h.ServeHTTP(reg, jsonRequest("/auth/register", `{"username":"alice","email":"alice@example.com","password":"`+goodPassword+`"}`))
	if reg.Code != http.StatusCreated {
		f.Fatalf("register: %d %s", reg.Code, reg.Body)
	}
	for i, b := range []string{
		`{"identifier":"alice","password":"correct horse battery staple"}`, `{"identifier":"alice","password":"wrong"}`,
		`{"username":"bob","email":"bob@example.com","password":"tr0ub4dor&3 but longer"}`,
		`{"refresh_token":"not-a-token"}`, `{"mfa_token":"x","code":"123456"}`, `{"identifier":"","password":""}`,
		`{"username":"` + strings.Repeat("a", 300) + `","email":"a@b","password":"x"}`, `{"identifier":1}`,
	} {
		f.Add(uint8(i), []byte(b))
	}
	// PostgreSQL refuses NUL in text (text.go): to /auth/login.
	f.Add(uint8(0), []byte(`{"identifier":"ali\u0000ce","password":"x"}`))
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, jsonRequest(accountPaths[int(which)%len(accountPaths)], string(body)))
		if w.Code >= 500 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		if w.Code >= 400 {
			checkProblem(t, w.Code, w.Header(), w.Body.Bytes(), w.Code)
		}
	})
}

func jsonRequest(path, body string) *http.Request {
	r := httptest.NewRequest("POST", path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}

// fuzzBrowser is the browser cookie the provider-form fuzz sends; the CSRF
// token the server expects of it is computed, not fuzzed, so the fuzzer
// reaches past the CSRF check.
const fuzzBrowser = "fuzz-browser-0123456789abcdefghijklmnopqrstuv"

var formPaths = []string{"/login", "/login/code", "/consent", "/device"}

// FuzzProviderForm: the provider's own form handling (checkForm, the
// request lookup, the login, code and consent steps) answers any posted
// form with a page: never a 5xx, never a redirect, always with the pages'
// security headers. In the body, {csrf} and {req} stand for this run's CSRF
// token and authorization request id.
func FuzzProviderForm(f *testing.F) {
	srv := fuzzServer(f)
	h := srv.Handler()
	reg := httptest.NewRecorder()
	h.ServeHTTP(reg, jsonRequest("/auth/register", `{"username":"alice","email":"alice@example.com","password":"`+goodPassword+`"}`))
	ar, err := srv.op.CreateAuthRequest(context.Background(), &oidc.AuthRequest{
		ClientID: CLIClientID, RedirectURI: "http://127.0.0.1:5555/callback", Scopes: []string{"openid"},
		ResponseType: oidc.ResponseTypeCode, State: "st", Nonce: "n", CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: oidc.CodeChallengeMethodS256,
	}, "")
	if err != nil {
		f.Fatal(err)
	}
	csrf := srv.csrfToken(fuzzBrowser)
	for i, b := range []string{
		"csrf={csrf}&request={req}&username=alice&password=correct+horse+battery+staple",
		"csrf={csrf}&request={req}&username=alice&password=wrong",
		"csrf={csrf}&request={req}&code=123456",
		"csrf={csrf}&request={req}&decision=approve",
		"csrf={csrf}&user_code=BCDF-GHJK",
		"csrf={csrf}&request={req}&decision=deny",
		"csrf=&request={req}", "request=%zz", "csrf={csrf}&request=unknown&username=a&password=b",
		// PostgreSQL refuses NUL and invalid UTF-8 in text (text.go).
		"csrf={csrf}&request={req}&username=ali%00ce&password=x", "csrf={csrf}&user_code=BCDF-%FF",
		"csrf={csrf}&request=%00",
	} {
		f.Add(uint8(i), true, []byte(b))
	}
	f.Fuzz(func(t *testing.T, which uint8, withCookie bool, body []byte) {
		// Each input starts at the password step, whatever the last did.
		if _, err := srv.st.db.Exec(`UPDATE oauth_requests SET stage = ?, user_id = NULL, browser = NULL, amr = ''
			WHERE id = ?`, stageLogin, ar.GetID()); err != nil {
			t.Fatal(err)
		}
		form := strings.NewReplacer("{csrf}", csrf, "{req}", ar.GetID()).Replace(string(body))
		r := httptest.NewRequest("POST", formPaths[int(which)%len(formPaths)], strings.NewReader(form))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if withCookie {
			r.AddCookie(&http.Cookie{Name: browserCookie, Value: fuzzBrowser})
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 || w.Code/100 == 3 {
			t.Fatalf("%s: %d %s", r.URL.Path, w.Code, w.Body)
		}
		if !strings.Contains(w.Header().Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
			w.Header().Get("Referrer-Policy") != "no-referrer" {
			t.Fatalf("%s: page without its security headers: %v", r.URL.Path, w.Header())
		}
	})
}
