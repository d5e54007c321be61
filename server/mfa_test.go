package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// totpCode is what an authenticator app shows for secret at t.
func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// mfaUser is an account with MFA on, as a test drives it.
type mfaUser struct {
	name, secret string
	access       string // an access token of a password-only session, from before MFA was on
	backup       []string
}

// setup starts an enrolment and returns the secret.
func (e *env) setup(access string) string {
	e.t.Helper()
	r := e.bearer("POST", "/auth/mfa/setup", access, nil)
	if r.Status != 200 {
		e.t.Fatalf("setup: %d %s", r.Status, r.Body)
	}
	var m struct{ Secret, URI string }
	if err := json.Unmarshal(r.Body, &m); err != nil || m.Secret == "" || m.URI == "" {
		e.t.Fatalf("setup: %s", r.Body)
	}
	return m.Secret
}

// backupCodes reads the backup_codes of a 200 answer.
func backupCodes(t *testing.T, r *resp) []string {
	t.Helper()
	var m struct {
		Codes []string `json:"backup_codes"`
	}
	if r.Status != 200 || json.Unmarshal(r.Body, &m) != nil || len(m.Codes) == 0 {
		t.Fatalf("want backup codes: %d %s", r.Status, r.Body)
	}
	return m.Codes
}

// enrol registers name and turns MFA on with a code of the current step.
func (e *env) enrol(name string) *mfaUser {
	e.t.Helper()
	e.register(name, name+"@example.com")
	u := &mfaUser{name: name, access: e.login(name).AccessToken}
	u.secret = e.setup(u.access)
	u.backup = backupCodes(e.t, e.bearer("POST", "/auth/mfa/enable", u.access,
		map[string]string{"code": totpCode(e.t, u.secret, e.clock.Now())}))
	return u
}

// challenge logs in with the password and returns the mfa_token.
func (e *env) challenge(name string) string {
	e.t.Helper()
	r := e.do("POST", "/auth/login", map[string]string{"identifier": name, "password": goodPassword})
	tok, _ := r.json(e.t)["mfa_token"].(string)
	if r.Status != 200 || tok == "" {
		e.t.Fatalf("login %s: want an MFA challenge: %d %s", name, r.Status, r.Body)
	}
	return tok
}

func (e *env) verify(mfaToken, code string) *resp {
	e.t.Helper()
	return e.do("POST", "/auth/mfa/verify", map[string]string{"mfa_token": mfaToken, "code": code})
}

// wantProblem fails unless r is a problem of the given status and type.
func wantProblem(t *testing.T, what string, r *resp, status int, typ string) {
	t.Helper()
	if r.Status != status || r.problemType(t) != typ {
		t.Fatalf("%s: %d %s, want %d %s", what, r.Status, r.Body, status, typ)
	}
}

func TestMFAEnrolment(t *testing.T) {
	e := newEnv(t)
	e.register("alice", "alice@example.com")
	access := e.login("alice").AccessToken

	wantProblem(t, "enable before setup", e.bearer("POST", "/auth/mfa/enable", access, map[string]string{"code": "123456"}),
		409, probMFANoSetup)
	wantProblem(t, "disable while off", e.bearer("POST", "/auth/mfa/disable", access, map[string]string{"code": "123456"}),
		409, probMFANotEnabled)
	wantProblem(t, "backup codes while off", e.bearer("POST", "/auth/mfa/backup-codes", access, map[string]string{"code": "123456"}),
		409, probMFANotEnabled)
	wantProblem(t, "setup without a token", e.do("POST", "/auth/mfa/setup", nil), 401, probUnauthorized)

	r := e.bearer("POST", "/auth/mfa/setup", access, nil)
	var set struct{ Secret, URI string }
	if r.Status != 200 || json.Unmarshal(r.Body, &set) != nil {
		t.Fatalf("setup: %d %s", r.Status, r.Body)
	}
	if len(set.Secret) != 32 { // 160 bits of base32
		t.Fatalf("secret of %d characters", len(set.Secret))
	}
	u, err := url.Parse(set.URI)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/latch (latch.test):alice" || q.Get("secret") != set.Secret ||
		q.Get("issuer") != "latch (latch.test)" || q.Get("algorithm") != "SHA1" || q.Get("digits") != "6" || q.Get("period") != "30" {
		t.Fatalf("uri %s", set.URI)
	}
	var sealed []byte
	e.srv.st.db.QueryRow("SELECT secret_enc FROM mfa_totp WHERE user_id = 1").Scan(&sealed)
	if len(sealed) == 0 || bytes.Contains(sealed, []byte(set.Secret)) {
		t.Fatal("the TOTP secret is not stored sealed")
	}
	if r := e.bearer("GET", "/auth/me", access, nil); r.json(t)["mfa_enabled"] != false {
		t.Fatalf("pending setup counts as enabled: %s", r.Body)
	}

	// A second setup replaces the pending secret.
	secret := e.setup(access)
	if secret == set.Secret {
		t.Fatal("setup reused the secret")
	}
	wantProblem(t, "code of the replaced secret", e.bearer("POST", "/auth/mfa/enable", access,
		map[string]string{"code": totpCode(t, set.Secret, e.clock.Now())}), 401, probInvalidCode)
	wantProblem(t, "malformed code", e.bearer("POST", "/auth/mfa/enable", access, map[string]string{"code": "12345x"}),
		401, probInvalidCode)
	if r := e.bearer("POST", "/auth/mfa/enable", access, map[string]string{"code": " "}); r.Status != 400 ||
		r.json(t)["errors"].(map[string]any)["code"] == nil {
		t.Fatalf("empty code: %d %s", r.Status, r.Body)
	}

	codes := backupCodes(t, e.bearer("POST", "/auth/mfa/enable", access,
		map[string]string{"code": totpCode(t, secret, e.clock.Now())}))
	shape := regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}$`)
	seen := map[string]bool{}
	for _, c := range codes {
		if !shape.MatchString(c) || seen[c] {
			t.Fatalf("backup codes %q", codes)
		}
		seen[c] = true
	}
	if len(codes) != 10 {
		t.Fatalf("%d backup codes", len(codes))
	}
	var n int
	e.srv.st.db.QueryRow("SELECT count(*) FROM mfa_backup_codes WHERE user_id = 1").Scan(&n)
	if n != 10 {
		t.Fatalf("%d stored backup codes", n)
	}
	for _, c := range codes {
		e.srv.st.db.QueryRow("SELECT count(*) FROM mfa_backup_codes WHERE hash IN (?, ?)",
			c, normalizeCode(c)).Scan(&n)
		if n != 0 {
			t.Fatal("a backup code is stored in the clear")
		}
	}
	if r := e.bearer("GET", "/auth/me", access, nil); r.json(t)["mfa_enabled"] != true {
		t.Fatalf("me after enable: %s", r.Body)
	}
	wantProblem(t, "setup while on", e.bearer("POST", "/auth/mfa/setup", access, nil), 409, probMFAEnabled)
	wantProblem(t, "enable while on", e.bearer("POST", "/auth/mfa/enable", access,
		map[string]string{"code": totpCode(t, secret, e.clock.Now())}), 409, probMFAEnabled)

	cfg := e.do("GET", "/auth/config", nil).json(t)
	login := e.do("POST", "/auth/login", map[string]string{"identifier": "alice", "password": goodPassword}).json(t)
	for _, methods := range []any{cfg["mfa_methods"], login["mfa_methods"]} {
		if got, _ := json.Marshal(methods); string(got) != `["totp","backup_code"]` {
			t.Fatalf("mfa_methods = %s", got)
		}
	}
}

// TestMFAEnableWrongThenRight: a wrong code leaves MFA off; the right one
// turns it on, and login then asks for the second factor.
func TestMFAEnableWrongThenRight(t *testing.T) {
	e := newEnv(t)
	e.register("alice", "alice@example.com")
	access := e.login("alice").AccessToken
	secret := e.setup(access)
	right := totpCode(t, secret, e.clock.Now())
	wrong := "000000"
	if wrong == right {
		wrong = "000001"
	}
	r := e.bearer("POST", "/auth/mfa/enable", access, map[string]string{"code": wrong})
	wantProblem(t, "wrong code", r, 401, probInvalidCode)
	if r.Header.Get("WWW-Authenticate") != "" {
		t.Fatal("a wrong code is not a bad access token")
	}
	e.login("alice") // still a password-only account
	backupCodes(t, e.bearer("POST", "/auth/mfa/enable", access, map[string]string{"code": right}))
	e.challenge("alice")
}

func TestMFAVerify(t *testing.T) {
	e := newEnv(t)
	u := e.enrol("alice")

	// The code that enabled MFA is spent: the same step is refused even on a
	// new login, with a detail that says why.
	tok := e.challenge("alice")
	r := e.verify(tok, totpCode(t, u.secret, e.clock.Now()))
	wantProblem(t, "the enabling code again", r, 401, probInvalidCode)
	if d, _ := r.json(t)["detail"].(string); !strings.Contains(d, "already used") {
		t.Fatalf("replay detail %q", d)
	}

	e.clock.Add(30 * time.Second)
	code := totpCode(t, u.secret, e.clock.Now())
	p := decodePair(t, e.verify(tok, " "+code[:3]+" "+code[3:]))
	if r := e.bearer("GET", "/auth/me", p.AccessToken, nil); r.Status != 200 || r.json(t)["mfa_enabled"] != true {
		t.Fatalf("me with the MFA session: %d %s", r.Status, r.Body)
	}
	decodePair(t, e.refresh(p.RefreshToken)) // a session like any other
	wantProblem(t, "challenge used twice", e.verify(tok, code), 401, probMFAChallenge)
	wantProblem(t, "replayed on a new login", e.verify(e.challenge("alice"), code), 401, probInvalidCode)

	if r := e.do("POST", "/auth/mfa/verify", map[string]string{}); r.Status != 400 || len(r.json(t)["errors"].(map[string]any)) != 2 {
		t.Fatalf("empty verify: %d %s", r.Status, r.Body)
	}
	wantProblem(t, "unknown mfa_token", e.verify("lmfa_nope", code), 401, probMFAChallenge)
	var sessions int
	e.srv.st.db.QueryRow("SELECT count(*) FROM sessions").Scan(&sessions)
	if sessions != 2 { // the enrolling login and the one verified login
		t.Fatalf("%d sessions", sessions)
	}
}

// TestMFASkew: the previous and next time steps are accepted, two steps away
// is not; and a code older than one already accepted is a replay.
func TestMFASkew(t *testing.T) {
	e := newEnv(t)
	u := e.enrol("alice")
	e.clock.Add(10 * time.Minute)
	now := e.clock.Now()
	for _, tc := range []struct {
		offset time.Duration
		want   int
	}{
		{-60 * time.Second, 401},
		{-30 * time.Second, 200},
		{0, 200},
		{30 * time.Second, 200},
		{60 * time.Second, 401},
		{-30 * time.Second, 401}, // valid in time, but older than the accepted +30 s
	} {
		r := e.verify(e.challenge("alice"), totpCode(t, u.secret, now.Add(tc.offset)))
		if r.Status != tc.want {
			t.Fatalf("code of %v: %d %s", tc.offset, r.Status, r.Body)
		}
	}
}

// TestMFAReplayConcurrent: one fresh code presented on two logins at once
// logs in exactly once.
func TestMFAReplayConcurrent(t *testing.T) {
	e := newEnv(t)
	u := e.enrol("alice")
	e.clock.Add(30 * time.Second)
	code := totpCode(t, u.secret, e.clock.Now())
	a, b := e.challenge("alice"), e.challenge("alice")
	oneWins(t, func() *resp { return e.verify(a, code) }, func() *resp { return e.verify(b, code) })
}

// oneWins runs two requests at once and wants one login and one refused code.
func oneWins(t *testing.T, reqs ...func() *resp) {
	t.Helper()
	var wg sync.WaitGroup
	out := make(chan *resp, len(reqs))
	start := make(chan struct{})
	for _, req := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out <- req()
		}()
	}
	close(start)
	wg.Wait()
	close(out)
	counts := map[string]int{}
	for r := range out {
		if r.Status == 200 {
			decodePair(t, r)
			counts["ok"]++
		} else if r.problemType(t) == probInvalidCode {
			counts["refused"]++
		}
	}
	if counts["ok"] != 1 || counts["refused"] != 1 {
		t.Fatalf("answers %v, want one login and one refused code", counts)
	}
}

func TestMFABackupCodes(t *testing.T) {
	e := newEnv(t)
	u := e.enrol("alice")

	// Typed loosely: upper case, spaces for the dash, look-alike letters.
	loose := strings.ToUpper(strings.Replace(u.backup[0], "-", " ", 1))
	loose = strings.NewReplacer("0", "O", "1", "l").Replace(loose)
	decodePair(t, e.verify(e.challenge("alice"), loose))
	wantProblem(t, "a used backup code", e.verify(e.challenge("alice"), u.backup[0]), 401, probInvalidCode)

	// Two logins racing with one code: one wins.
	a, b := e.challenge("alice"), e.challenge("alice")
	oneWins(t, func() *resp { return e.verify(a, u.backup[1]) }, func() *resp { return e.verify(b, u.backup[1]) })

	// Regenerating takes a TOTP code, not a backup code, and kills the old set.
	p := decodePair(t, e.verify(e.challenge("alice"), u.backup[2]))
	wantProblem(t, "regenerate with a backup code", e.bearer("POST", "/auth/mfa/backup-codes", p.AccessToken,
		map[string]string{"code": u.backup[3]}), 401, probInvalidCode)
	e.clock.Add(30 * time.Second)
	fresh := backupCodes(t, e.bearer("POST", "/auth/mfa/backup-codes", p.AccessToken,
		map[string]string{"code": totpCode(t, u.secret, e.clock.Now())}))
	if len(fresh) != 10 {
		t.Fatalf("%d new codes", len(fresh))
	}
	wantProblem(t, "an old unused code", e.verify(e.challenge("alice"), u.backup[3]), 401, probInvalidCode)
	decodePair(t, e.verify(e.challenge("alice"), fresh[0]))
	if got := e.srv.metrics.mfaChanges.get("backup_codes"); got != 1 {
		t.Fatalf("regenerations counted: %d", got)
	}
}

// TestMFABackupCodeAcrossProcesses: two servers on one database file, as two
// processes, each accept one backup code at once: one login succeeds.
func TestMFABackupCodeAcrossProcesses(t *testing.T) {
	db := filepath.Join(t.TempDir(), "latch.db")
	a := newEnv(t, func(c *Config) { c.DBPath = db })
	b := newEnv(t, func(c *Config) { c.DBPath = db })
	b.srv.now = a.clock.Now
	u := a.enrol("alice")
	ta, tb := a.challenge("alice"), b.challenge("alice")
	oneWins(t, func() *resp { return a.verify(ta, u.backup[0]) }, func() *resp { return b.verify(tb, u.backup[0]) })
}

func TestMFADisable(t *testing.T) {
	e := newEnv(t)
	u := e.enrol("alice")
	e.clock.Add(30 * time.Second)
	p := decodePair(t, e.verify(e.challenge("alice"), totpCode(t, u.secret, e.clock.Now())))
	pending := e.challenge("alice")

	wantProblem(t, "disable with a wrong code", e.bearer("POST", "/auth/mfa/disable", p.AccessToken,
		map[string]string{"code": "abcde-fghjk"}), 401, probInvalidCode)
	// A backup code turns it off: the authenticator may be what was lost.
	if r := e.bearer("POST", "/auth/mfa/disable", p.AccessToken, map[string]string{"code": u.backup[0]}); r.Status != 200 {
		t.Fatalf("disable: %d %s", r.Status, r.Body)
	}
	if r := e.bearer("GET", "/auth/me", p.AccessToken, nil); r.json(t)["mfa_enabled"] != false {
		t.Fatalf("me after disable: %s", r.Body)
	}
	e.login("alice") // the password alone again
	e.clock.Add(30 * time.Second)
	wantProblem(t, "a challenge from before", e.verify(pending, totpCode(t, u.secret, e.clock.Now())), 401, probMFAChallenge)
	for _, table := range []string{"mfa_totp", "mfa_backup_codes", "mfa_challenges"} {
		var n int
		e.srv.st.db.QueryRow("SELECT count(*) FROM " + table).Scan(&n)
		if n != 0 {
			t.Errorf("%s keeps %d rows after disable", table, n)
		}
	}
	// And it can be turned on again from scratch.
	secret := e.setup(p.AccessToken)
	backupCodes(t, e.bearer("POST", "/auth/mfa/enable", p.AccessToken, map[string]string{"code": totpCode(t, secret, e.clock.Now())}))
	e.clock.Add(30 * time.Second)
	if r := e.bearer("POST", "/auth/mfa/disable", p.AccessToken, map[string]string{"code": totpCode(t, secret, e.clock.Now())}); r.Status != 200 {
		t.Fatalf("disable with a TOTP code: %d %s", r.Status, r.Body)
	}
}

func TestMFAChallengeExpiry(t *testing.T) {
	e := newEnv(t)
	u := e.enrol("alice")
	e.clock.Add(time.Minute)
	late, onTime := e.challenge("alice"), e.challenge("alice")
	e.clock.Add(mfaChallengeTTL - time.Second)
	decodePair(t, e.verify(onTime, totpCode(t, u.secret, e.clock.Now())))
	e.clock.Add(time.Second)
	wantProblem(t, "after 5 minutes", e.verify(late, u.backup[0]), 401, probMFAChallenge)
	if got := e.srv.metrics.mfa.get("expired"); got != 1 {
		t.Fatalf("expired counted %d", got)
	}
	e.clock.Add(time.Second)
	if err := e.srv.sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	var n int
	e.srv.st.db.QueryRow("SELECT count(*) FROM mfa_challenges").Scan(&n)
	if n != 0 {
		t.Fatalf("%d challenges after the sweep", n)
	}
}

func TestMFAAttemptLimit(t *testing.T) {
	e := newEnv(t)
	u := e.enrol("alice")
	e.clock.Add(time.Minute)
	tok := e.challenge("alice")
	for left := mfaMaxAttempts - 1; left > 0; left-- {
		r := e.verify(tok, "abcde-00000")
		wantProblem(t, "wrong code", r, 401, probInvalidCode)
		if got := r.json(t)["attempts_left"]; got != float64(left) {
			t.Fatalf("attempts_left = %v, want %d", got, left)
		}
	}
	wantProblem(t, "the last wrong code", e.verify(tok, "abcde-00000"), 401, probMFAAttempts)
	right := totpCode(t, u.secret, e.clock.Now())
	wantProblem(t, "the right code after the limit", e.verify(tok, right), 401, probMFAChallenge)

	// The account's wrong codes back off across challenges: logging in again
	// buys no free attempts.
	tok = e.challenge("alice")
	wantProblem(t, "6th wrong code", e.verify(tok, "123456"), 401, probInvalidCode)
	r := e.verify(tok, right)
	if r.Status != 429 || r.Header.Get("Retry-After") != "1" {
		t.Fatalf("backoff: %d %s", r.Status, r.Body)
	}
	e.clock.Add(time.Second)
	decodePair(t, e.verify(tok, right))

	m := string(e.do("GET", "/metrics", nil).Body)
	for _, want := range []string{
		`latch_mfa_total{result="totp"} 2`, // enable and this login
		`latch_mfa_total{result="invalid"} 5`,
		`latch_mfa_total{result="exceeded"} 1`,
		`latch_mfa_total{result="expired"} 1`,
		`latch_mfa_total{result="limited"} 1`,
		`latch_mfa_total{result="backup_code"} 0`,
		`latch_mfa_changes_total{action="enabled"} 1`,
	} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestMFARateLimits(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RateAccount = 4 }) // burst 2 per account
	u := e.enrol("alice")                                 // setup and enable: the burst
	e.clock.Add(time.Minute)                              // refilled: 4 tokens a minute, burst 2
	tok := e.challenge("alice")
	e.verify(tok, "111111")
	e.verify(tok, "222222")
	r := e.verify(tok, totpCode(t, u.secret, e.clock.Now()))
	if r.Status != 429 || r.problemType(t) != probRateLimited || r.Header.Get("Retry-After") == "" {
		t.Fatalf("third verify in a burst of 2: %d %s", r.Status, r.Body)
	}
	wantProblem(t, "setup shares the account's MFA budget", e.bearer("POST", "/auth/mfa/setup", u.access, nil), 429, probRateLimited)
}

// TestMFASecretBoundToUser: a sealed secret copied to another user's row
// does not open there.
func TestMFASecretBoundToUser(t *testing.T) {
	e := newEnv(t)
	e.enrol("alice")
	bob := e.enrol("bob")
	e.srv.st.db.Exec("UPDATE mfa_totp SET secret_enc = (SELECT secret_enc FROM mfa_totp WHERE user_id = 1) WHERE user_id = 2")
	e.clock.Add(30 * time.Second)
	r := e.bearer("POST", "/auth/mfa/backup-codes", bob.access, map[string]string{"code": "123456"})
	wantProblem(t, "a secret moved between users", r, http.StatusInternalServerError, probInternal)
	if !strings.Contains(e.logs.String(), "TOTP secret of user 2") {
		t.Fatal("the failure is not logged")
	}
}
