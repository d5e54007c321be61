package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"gopkg.in/yaml.v3"
)

func TestRequestBodies(t *testing.T) {
	e := newEnv(t)
	big := `{"username":"` + strings.Repeat("a", maxBody) + `"}`
	cases := []struct {
		name, ctype, body string
		status            int
		wantType          string
	}{
		{"too large", "application/json", big, 413, probTooLarge},
		{"form encoded", "application/x-www-form-urlencoded", "username=a", 415, probMediaType},
		{"no content type", "", `{}`, 415, probMediaType},
		{"json with charset", "application/json; charset=utf-8", `{"identifier":"x","password":"y"}`, 401, probCredentials},
		{"invalid json", "application/json", `{"identifier":`, 400, probMalformed},
		{"empty body", "application/json", ``, 400, probMalformed},
		{"array", "application/json", `[]`, 400, probMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", e.http.URL+"/auth/login", strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var p problem
			json.NewDecoder(res.Body).Decode(&p)
			if res.StatusCode != tc.status || p.Type != tc.wantType || p.Status != tc.status || p.Title == "" {
				t.Fatalf("%d %+v", res.StatusCode, p)
			}
		})
	}
}

// signWith signs claims with an arbitrary key and algorithm, for tokens the
// server must refuse.
func signWith(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, c any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key},
		(&jose.SignerOptions{}).WithHeader("kid", kid).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestBearerRejections(t *testing.T) {
	e := newEnv(t)
	e.register("alice", "alice@example.com")
	p := e.login("alice")
	good, err := e.srv.verifyAccess(p.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	kid := e.srv.keys.active
	var priv jose.JSONWebKey
	var sealed []byte
	e.srv.st.db.QueryRow("SELECT private_jwk FROM signing_keys WHERE kid = ?", kid).Scan(&sealed)
	if json.Valid(sealed) || strings.Contains(string(sealed), `"d"`) {
		t.Fatal("the private signing key is stored in the clear")
	}
	raw, err := e.srv.sealer.open(sealed, []byte(kid))
	if err != nil {
		t.Fatal(err)
	}
	if err := priv.UnmarshalJSON(raw); err != nil || priv.IsPublic() {
		t.Fatalf("sealed signing key: %v", err)
	}
	claims := func(mod func(*accessClaims)) accessClaims {
		c := *good
		mod(&c)
		return c
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pubDER, _ := json.Marshal(e.srv.keys.public[kid])
	parts := strings.Split(p.AccessToken, ".")

	cases := map[string]string{
		"missing":        "",
		"garbage":        "not-a-jwt",
		"alg none":       parts[0][:0] + "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + ".",
		"HS256 with pub": signWith(t, jose.HS256, pubDER, kid, good),
		"other key":      signWith(t, jose.ES256, other, kid, good),
		"unknown kid":    signWith(t, jose.ES256, priv.Key, "nope", good),
		"tampered":       parts[0] + "." + strings.TrimRight(parts[1], "A") + "B." + parts[2],
		"expired": signWith(t, jose.ES256, priv.Key, kid, claims(func(c *accessClaims) {
			c.Expiry = jwt.NewNumericDate(e.clock.Now().Add(-time.Second))
		})),
		"wrong issuer": signWith(t, jose.ES256, priv.Key, kid, claims(func(c *accessClaims) { c.Issuer = "http://evil.test" })),
		"wrong aud":    signWith(t, jose.ES256, priv.Key, kid, claims(func(c *accessClaims) { c.Audience = jwt.Audience{"other"} })),
		"not access":   signWith(t, jose.ES256, priv.Key, kid, claims(func(c *accessClaims) { c.Type = "id" })),
		"other user":   signWith(t, jose.ES256, priv.Key, kid, claims(func(c *accessClaims) { c.Subject = "2" })),
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			r := e.bearer("GET", "/auth/me", tok, nil)
			if r.Status != 401 || r.problemType(t) != probUnauthorized {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			if got := r.Header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
				t.Fatalf("WWW-Authenticate = %q", got)
			}
		})
	}
	// The same claims re-signed with the right key pass: the rejections above
	// are about what was changed.
	if r := e.bearer("GET", "/auth/me", signWith(t, jose.ES256, priv.Key, kid, good), nil); r.Status != 200 {
		t.Fatalf("control: %d %s", r.Status, r.Body)
	}
	e.clock.Add(DefaultAccessTTL)
	if r := e.bearer("GET", "/auth/me", p.AccessToken, nil); r.Status != 401 {
		t.Fatalf("access token at expiry: %d", r.Status)
	}
}

func TestConfig(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AccessTTL = 2 * time.Minute })
	r := e.do("GET", "/auth/config", nil)
	var cfg struct {
		Issuer   string
		JWKSURI  string `json:"jwks_uri"`
		Username struct {
			Min     int    `json:"min_length"`
			Max     int    `json:"max_length"`
			Pattern string `json:"pattern"`
		}
		Email struct {
			Max int `json:"max_length"`
		}
		Password struct {
			Min, Max int
			MinScore int `json:"min_score"`
		}
		MFAMethods []string `json:"mfa_methods"`
		AccessTTL  int      `json:"access_token_ttl"`
		RefreshTTL int      `json:"refresh_token_ttl"`
		Grace      int      `json:"reuse_grace"`
	}
	if err := json.Unmarshal(r.Body, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Issuer != "http://latch.test" || cfg.JWKSURI != "http://latch.test/auth/jwks.json" || cfg.Username.Min != 3 || cfg.Username.Max != 80 ||
		cfg.Username.Pattern != usernamePattern || cfg.Email.Max != 120 || cfg.Password.MinScore != 3 ||
		cfg.MFAMethods == nil || cfg.AccessTTL != 120 || cfg.RefreshTTL != 7*24*3600 || cfg.Grace != 10 {
		t.Fatalf("config = %s", r.Body)
	}
}

func TestJWKS(t *testing.T) {
	e := newEnv(t)
	e.register("alice", "alice@example.com")
	p := e.login("alice")
	for _, path := range []string{"/auth/jwks.json", "/.well-known/jwks.json"} {
		r := e.do("GET", path, nil)
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(r.Body, &set); err != nil || len(set.Keys) != 1 {
			t.Fatalf("%s: %s", path, r.Body)
		}
		k := set.Keys[0]
		if !k.IsPublic() || k.Algorithm != "ES256" || k.Use != "sig" {
			t.Fatalf("%s: key %+v", path, k)
		}
		tok, err := jwt.ParseSigned(p.AccessToken, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		var c map[string]any
		if err := tok.Claims(k.Key, &c); err != nil {
			t.Fatalf("access token does not verify with the published key: %v", err)
		}
		for _, claim := range []string{"iss", "sub", "aud", "iat", "exp", "jti", "sid"} {
			if c[claim] == nil {
				t.Errorf("claim %s missing", claim)
			}
		}
		if c["type"] != "access" || c["sub"] != "1" || c["iss"] != "http://latch.test" {
			t.Errorf("claims = %v", c)
		}
	}
}

func TestKeysSurviveRestart(t *testing.T) {
	db := t.TempDir() + "/latch.db"
	a := newEnv(t, func(c *Config) { c.DBPath = db })
	a.register("alice", "alice@example.com")
	p := a.login("alice")
	a.http.Close()
	a.srv.Close()
	b := newEnv(t, func(c *Config) { c.DBPath = db })
	b.clock.t = a.clock.Now()
	if r := b.bearer("GET", "/auth/me", p.AccessToken, nil); r.Status != 200 {
		t.Fatalf("access token after restart: %d %s", r.Status, r.Body)
	}
	decodePair(t, b.refresh(p.RefreshToken))
}

func TestHealthAndMetrics(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/healthz", nil)
	var h struct {
		Status   string
		Database DBInfo
	}
	if err := json.Unmarshal(r.Body, &h); r.Status != 200 || err != nil || h.Status != "ok" {
		t.Fatalf("healthz: %d %s", r.Status, r.Body)
	}
	// The database's dialect and schema, as the operator's probe sees them.
	if h.Database.Dialect != e.srv.st.dialect.name() || h.Database.SchemaVersion == 0 ||
		h.Database.SchemaVersion != h.Database.Latest {
		t.Fatalf("healthz database: %+v", h.Database)
	}
	e.register("alice", "alice@example.com")
	p := e.login("alice")
	e.do("POST", "/auth/login", map[string]string{"identifier": "alice", "password": "nope"})
	e.refresh(p.RefreshToken)
	e.do("POST", "/auth/logout", map[string]string{"refresh_token": p.RefreshToken})

	r = e.do("GET", "/metrics", nil)
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("Content-Type %q", r.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`latch_registrations_total{result="ok"} 1`,
		`latch_logins_total{result="ok"} 1`,
		`latch_logins_total{result="failed"} 1`,
		`latch_logins_total{result="limited"} 0`,
		`latch_refreshes_total{result="rotated"} 1`,
		`latch_refreshes_total{result="reused"} 0`,
		`latch_logouts_total{result="revoked"} 1`,
		"# TYPE latch_refreshes_total counter",
	} {
		if !strings.Contains(string(r.Body), want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Every sample line is well-formed exposition.
	line := regexp.MustCompile(`^(# (HELP|TYPE) .+|[a-z_]+\{[a-z]+="[a-z0-9_]+"\} \d+)$`)
	for _, l := range strings.Split(strings.TrimSpace(string(r.Body)), "\n") {
		if !line.MatchString(l) {
			t.Errorf("bad exposition line %q", l)
		}
	}
	e.srv.st.Close()
	if r := e.do("GET", "/healthz", nil); r.Status != 503 || r.problemType(t) != probUnavailable {
		t.Fatalf("healthz with the database closed: %d %s", r.Status, r.Body)
	}
}

// TestOpenAPICoversRoutes checks that every route the server answers is in
// the OpenAPI document with its method, and that the document names no route
// the server lacks.
func TestOpenAPICoversRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                    `yaml:"openapi"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(openapiDoc, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("openapi %q, want 3.1", doc.OpenAPI)
	}
	e := newEnv(t)
	served := map[string]bool{}
	for _, rt := range e.srv.routes() {
		key := strings.ToLower(rt.method) + " " + rt.path
		served[key] = true
		if _, ok := doc.Paths[rt.path][strings.ToLower(rt.method)]; !ok {
			t.Errorf("%s %s is not in openapi.yaml", rt.method, rt.path)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			if !served[method+" "+path] {
				t.Errorf("openapi.yaml documents %s %s, which the server does not serve", method, path)
			}
		}
	}
	for _, typ := range []string{probValidation, probMalformed, probMediaType, probTooLarge, probConflict,
		probCredentials, probTokenReused, probInvalidRefresh, probUnauthorized, probRateLimited, probNotFound,
		probUnavailable, probInternal, probInvalidCode, probMFAChallenge, probMFAAttempts, probMFAEnabled,
		probMFANotEnabled, probMFANoSetup} {
		if !strings.Contains(string(openapiDoc), "`"+typ+"`") {
			t.Errorf("problem type %s is not documented in openapi.yaml", typ)
		}
	}
	if r := e.do("GET", "/openapi.yaml", nil); r.Status != 200 || string(r.Body) != string(openapiDoc) {
		t.Fatalf("/openapi.yaml: %d", r.Status)
	}
}

func TestRateLimits(t *testing.T) {
	t.Run("per IP", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.RateIP = 6 }) // burst 3
		for i := range 3 {
			if r := e.do("POST", "/auth/login", map[string]string{"identifier": "u" + strconv.Itoa(i), "password": "x"}); r.Status != 401 {
				t.Fatalf("attempt %d: %d", i, r.Status)
			}
		}
		r := e.do("POST", "/auth/login", map[string]string{"identifier": "u9", "password": "x"})
		if r.Status != 429 || r.problemType(t) != probRateLimited || r.Header.Get("Retry-After") != "10" {
			t.Fatalf("4th attempt: %d Retry-After=%q %s", r.Status, r.Header.Get("Retry-After"), r.Body)
		}
		if got := r.json(t)["retry_after"]; got != float64(10) {
			t.Fatalf("retry_after = %v", got)
		}
		e.clock.Add(10 * time.Second)
		if r := e.do("POST", "/auth/login", map[string]string{"identifier": "u9", "password": "x"}); r.Status != 401 {
			t.Fatalf("after waiting: %d", r.Status)
		}
		if e.srv.metrics.logins.get("limited") != 1 {
			t.Fatal("limited login not counted")
		}
	})
	t.Run("per account", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.RateAccount = 4 }) // burst 2
		for range 2 {
			e.do("POST", "/auth/register", map[string]string{"username": "x", "email": "same@example.com", "password": "p"})
		}
		r := e.do("POST", "/auth/register", map[string]string{"username": "x", "email": "SAME@example.com", "password": "p"})
		if r.Status != 429 {
			t.Fatalf("register, same email: %d", r.Status)
		}
		if r := e.do("POST", "/auth/register", map[string]string{"username": "x", "email": "other@example.com", "password": "p"}); r.Status != 400 {
			t.Fatalf("register, other email: %d", r.Status)
		}
	})
	t.Run("backoff", func(t *testing.T) {
		e := newEnv(t)
		e.register("alice", "alice@example.com")
		fail := func(id string) *resp {
			return e.do("POST", "/auth/login", map[string]string{"identifier": id, "password": "wrong"})
		}
		for i := range freeFailures {
			if r := fail("alice"); r.Status != 401 {
				t.Fatalf("failure %d: %d", i, r.Status)
			}
		}
		// The 6th failure, by email, locks the account for 1 s: switching
		// between username and email does not buy attempts.
		if r := fail("alice@example.com"); r.Status != 401 {
			t.Fatalf("6th failure: %d", r.Status)
		}
		// The account is locked, silently: a 429 here would link the
		// username to the email (issue 15).
		r := e.do("POST", "/auth/login", map[string]string{"identifier": "alice", "password": goodPassword})
		if r.Status != 401 || r.problemType(t) != probCredentials {
			t.Fatalf("locked: %d %s", r.Status, r.Body)
		}
		e.clock.Add(time.Second)
		fail("alice") // identifier: 6th failure (1 s); account: 7th (2 s)
		r = fail("alice")
		if r.Status != 429 || r.Header.Get("Retry-After") != "2" {
			t.Fatalf("second lock: %d Retry-After=%q, want the longer wait", r.Status, r.Header.Get("Retry-After"))
		}
		e.clock.Add(2 * time.Second)
		e.login("alice") // success clears it
		if r := fail("alice"); r.Status != 401 {
			t.Fatalf("after success: %d", r.Status)
		}
	})
}

// TestNoSecretsInLogs runs every flow with debug logging on and then looks
// for passwords and tokens in the log.
func TestNoSecretsInLogs(t *testing.T) {
	e := newEnv(t)
	e.register("alice", "alice@example.com")
	p := e.login("alice")
	e.do("POST", "/auth/login", map[string]string{"identifier": "alice", "password": "wrong-" + goodPassword})
	p1 := decodePair(t, e.refresh(p.RefreshToken))
	e.clock.Add(time.Minute)
	e.refresh(p.RefreshToken) // reuse
	e.bearer("GET", "/auth/me", p1.AccessToken, nil)
	e.do("POST", "/auth/register", `{"username":"bob","email":"bob@example.com","password":"hunter2-`+goodPassword)
	q := e.login("alice")
	e.bearer("POST", "/auth/password", q.AccessToken, map[string]string{"current_password": goodPassword, "new_password": "tangerine orbit quietly jumps"})
	e.do("POST", "/auth/logout", map[string]string{"refresh_token": q.RefreshToken})
	e.do("GET", "/auth/me?access_token="+q.AccessToken, nil)

	// Two-factor: enrol, log in with a TOTP code and a backup code, get
	// codes wrong and replayed, regenerate, disable.
	u := e.enrol("carol")
	e.clock.Add(30 * time.Second)
	code := totpCode(t, u.secret, e.clock.Now())
	mt := e.challenge("carol")
	e.verify(mt, "000000")
	m := decodePair(t, e.verify(mt, code))
	e.verify(e.challenge("carol"), code) // replayed
	e.verify(e.challenge("carol"), u.backup[0])
	e.verify(e.challenge("carol"), u.backup[0]) // used
	e.clock.Add(30 * time.Second)
	fresh := backupCodes(t, e.bearer("POST", "/auth/mfa/backup-codes", m.AccessToken,
		map[string]string{"code": totpCode(t, u.secret, e.clock.Now())}))
	e.bearer("POST", "/auth/mfa/disable", m.AccessToken, map[string]string{"code": fresh[0]})
	e.verify("lmfa_"+u.secret, code)
	secrets := []string{u.secret, mt, m.RefreshToken, fresh[0]}
	secrets = append(secrets, u.backup...)
	for _, c := range append(fresh, u.backup...) {
		secrets = append(secrets, normalizeCode(c))
	}

	logs := e.logs.String()
	if !strings.Contains(logs, "action=disabled") {
		t.Fatalf("the MFA steps did not run: %q", logs)
	}
	if !strings.Contains(logs, "path=/auth/refresh") {
		t.Fatalf("nothing logged? %q", logs)
	}
	for _, secret := range []string{goodPassword, "hunter2", "tangerine", p.RefreshToken, p1.RefreshToken, q.RefreshToken,
		p.AccessToken, q.AccessToken, strings.Split(q.AccessToken, ".")[2], "lrt_", "lmfa_", "$argon2id", "otpauth"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log holds a secret (%.12s…)", secret)
		}
	}
	for _, secret := range secrets {
		if strings.Contains(logs, secret) {
			t.Errorf("log holds an MFA secret or code (%.3s…)", secret)
		}
	}
	// Six digits may occur inside a logged duration: look for the code as a
	// value of its own.
	if regexp.MustCompile(`(^|[^0-9A-Za-z.])` + code + `($|[^0-9A-Za-z])`).MatchString(logs) {
		t.Error("log holds a TOTP code")
	}
}
