package cli

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/latch-dev/latch/internal/pgtest"
)

// Two instances of the built binary on one PostgreSQL database (helpers in
// e2e_instances_helpers_test.go): what one does, the other sees, and what
// must happen once happens once for the whole deployment.

const (
	probRefresh     = "urn:latch:problem:invalid-refresh-token"
	probReused      = "urn:latch:problem:token-reused"
	probLimited     = "urn:latch:problem:rate-limited"
	probCredentials = "urn:latch:problem:invalid-credentials"
	probUnauth      = "urn:latch:problem:unauthorized"
)

// 50 clients present one refresh token at the same moment, half to each
// instance: it rotates exactly once. Within the grace window every one of
// them gets the one successor and the session lives on; with no grace
// window the first rotates and the next presentation is reuse, which ends
// the session (server/tokens.go rotate). With a per-account (here: per
// token) rate of 10 a minute, the deployment lets its burst of 5 through,
// not 5 per instance, and refuses the rest with 429.
func TestE2EInstancesRefreshRace(t *testing.T) {
	const clients = 50
	for _, tc := range []struct {
		name, grace, rate string
		ok                int    // 200s, all with one successor
		reused            int    // token-reused: the presentation that ended the session
		invalid           int    // invalid-refresh-token: presentations after the end
		limited           int    // 429 rate-limited
		revoked           string // the session's end, "" for open
	}{
		{"within the grace window", "60s", "0", clients, 0, 0, 0, ""},
		{"no grace window", "0s", "0", 1, 1, clients - 2, 0, "reuse"},
		{"10 a minute per token", "60s", "10", 10 / 2, 0, 0, clients - 10/2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDeployment(t, "", "--rate-ip", "0", "--rate-account", tc.rate, "--reuse-grace", tc.grace)
			d.checkDB()
			d.start(2)
			d.register(d.inst[0], "alice")
			first := d.login(d.inst[0], "alice")

			// Each client first opens its connection (a /healthz, all at
			// once so that none is shared), so that once released the
			// refreshes reach the servers together rather than spread over
			// 50 TCP handshakes.
			answers := make([]answer, clients)
			warm, start := make(chan struct{}), make(chan struct{})
			var ready, done sync.WaitGroup
			body := map[string]string{"refresh_token": first.RefreshToken}
			for i := range clients {
				ready.Add(1)
				done.Add(1)
				go func() {
					defer done.Done()
					<-warm
					answers[i] = d.call(d.inst[i%2], "GET", "/healthz", nil, "")
					ready.Done()
					if answers[i].err != nil {
						return
					}
					<-start
					answers[i] = d.call(d.inst[i%2], "POST", "/auth/refresh", body, "")
				}()
			}
			close(warm)
			ready.Wait()
			close(start)
			done.Wait() // each call is bounded by the client's timeout

			successors := map[string]int{}
			types := map[string]int{}
			for i, a := range answers {
				switch {
				case a.err != nil:
					t.Fatalf("client %d: %v", i, a.err)
				case a.code == http.StatusOK:
					var tk tokens
					if err := json.Unmarshal(a.body, &tk); err != nil || tk.RefreshToken == "" {
						t.Fatalf("client %d: 200 %s", i, a.body)
					}
					successors[tk.RefreshToken]++
				case a.code == http.StatusUnauthorized || a.code == http.StatusTooManyRequests:
					types[problemType(a.body)]++
				default:
					t.Fatalf("client %d (instance %d): %d %s, want 200 or a 401 or 429 problem", i, i%2+1, a.code, a.body)
				}
			}
			if len(successors) != 1 {
				t.Fatalf("%d different successors handed out (%v), want exactly one rotation", len(successors), successors)
			}
			var next string
			for next = range successors {
			}
			want := map[string]int{probReused: tc.reused, probRefresh: tc.invalid, probLimited: tc.limited}
			maps.DeleteFunc(want, func(_ string, n int) bool { return n == 0 })
			if next == first.RefreshToken || successors[next] != tc.ok || !maps.Equal(types, want) {
				t.Fatalf("%d × 200 with the successor, refusals %v; want %d × 200, refusals %v",
					successors[next], types, tc.ok, want)
			}
			for outcome, want := range map[string]int{"rotated": 1, "grace": tc.ok - 1, "reused": tc.reused,
				"invalid": tc.invalid, "limited": tc.limited} {
				if got := d.metric(`latch_refreshes_total{result="` + outcome + `"}`); got != want {
					t.Errorf("refreshes %s on both instances: %d, want %d", outcome, got, want)
				}
			}
			// In the database: the token and its one successor.
			db := d.sqlDB()
			if n, revoked := d.sessionOf(db, first.RefreshToken); n != 2 || revoked != tc.revoked {
				t.Fatalf("the session has %d refresh tokens and ended %q; want 2 and %q", n, revoked, tc.revoked)
			}
			// The successor refreshes (at the instance that did not
			// necessarily rotate) unless the family ended.
			a := d.call(d.inst[1], "POST", "/auth/refresh", map[string]string{"refresh_token": next}, "")
			if tc.revoked == "" {
				if a.code != http.StatusOK {
					t.Fatalf("the successor after the race: %d %s, want 200: the family must live on", a.code, a.body)
				}
				if n, _ := d.sessionOf(db, first.RefreshToken); n != 3 {
					t.Fatalf("%d refresh tokens after the successor's rotation, want 3", n)
				}
			} else if a.code != http.StatusUnauthorized || problemType(a.body) != probRefresh {
				t.Fatalf("the successor of a family ended for reuse: %d %s, want 401 %s", a.code, a.body, probRefresh)
			}
		})
	}
}

// A brute force spread over both instances is held to the configured limit
// of the deployment, not of each instance: the per-account rate's burst
// (half the per-minute rate, server/ratelimit.go) and the login backoff
// (a 1 s wait after the 6th failure in a row: freeFailures = 5; the 7th
// attempt follows at once, well within it).
func TestE2EInstancesSharedLimits(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		allowed int // wrong passwords answered before the first 429
		// right: the right password is refused next too, at both. For
		// the rate only: its next token is 7.5 s away, while the backoff's
		// first wait (1 s) is too short to build more on.
		right bool
	}{
		{"per-account rate", []string{"--rate-account", "8", "--rate-ip", "1000"}, 8 / 2, true},
		{"login backoff", []string{"--rate-account", "0", "--rate-ip", "1000"}, 5 + 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDeployment(t, "", tc.args...)
			d.checkDB()
			d.start(2)
			d.register(d.inst[0], "alice")
			wrong := map[string]string{"identifier": "alice", "password": "not " + e2ePassword}
			answered := 0
			var limited answer
			for i := 0; i < 40 && limited.code == 0; i++ {
				a := d.call(d.inst[i%2], "POST", "/auth/login", wrong, "")
				switch {
				case a.err != nil:
					t.Fatal(a.err)
				case a.code == http.StatusTooManyRequests:
					limited = a
				case a.code == http.StatusUnauthorized && problemType(a.body) == probCredentials:
					answered++
				default:
					t.Fatalf("wrong password %d at instance %d: %d %s", i+1, i%2+1, a.code, a.body)
				}
			}
			if answered != tc.allowed {
				t.Fatalf("%d wrong passwords answered over two instances before the first 429, want %d for the whole deployment",
					answered, tc.allowed)
			}
			if problemType(limited.body) != probLimited {
				t.Fatalf("429 without the rate-limited problem: %s", limited.body)
			}
			if s, err := strconv.Atoi(limited.retryAfter); err != nil || s < 1 {
				t.Fatalf("429 with Retry-After %q, want whole seconds", limited.retryAfter)
			}
			if !tc.right {
				return
			}
			// The bucket is the deployment's: even the right password is
			// held back now, at either instance.
			right := map[string]string{"identifier": "alice", "password": e2ePassword}
			for i, in := range d.inst {
				if a := d.call(in, "POST", "/auth/login", right, ""); a.code != http.StatusTooManyRequests {
					t.Fatalf("the right password at instance %d after the limit: %d %s, want 429", i+1, a.code, a.body)
				}
			}
		})
	}
}

// Log in at one instance, refresh at the other, log out at the first: the
// session ends for both. Access tokens are JWTs, but the account API checks
// their session on every request (server/sessions.go authenticate), so they
// die with it too; another session of the same account lives on.
func TestE2EInstancesLogout(t *testing.T) {
	d := newDeployment(t, "", "--rate-ip", "0", "--rate-account", "0")
	d.checkDB()
	d.start(2)
	one, two := d.inst[0], d.inst[1]
	d.register(one, "alice")
	first := d.login(one, "alice")
	other := d.login(two, "alice")
	refreshed := d.refresh(two, first.RefreshToken)
	for i, in := range d.inst {
		if code, body := d.do(in, "GET", "/auth/me", nil, refreshed.AccessToken); code != http.StatusOK {
			t.Fatalf("/auth/me at instance %d before logout: %d %s", i+1, code, body)
		}
	}
	if code, body := d.do(one, "POST", "/auth/logout", map[string]string{"refresh_token": refreshed.RefreshToken}, ""); code != http.StatusNoContent {
		t.Fatalf("logout at instance 1: %d %s", code, body)
	}
	for i, in := range d.inst {
		code, body := d.do(in, "POST", "/auth/refresh", map[string]string{"refresh_token": refreshed.RefreshToken}, "")
		if code != http.StatusUnauthorized || problemType(body) != probRefresh || !strings.Contains(string(body), "logged out") {
			t.Fatalf("refresh at instance %d after logout: %d %s, want 401 %s saying it was logged out", i+1, code, body, probRefresh)
		}
		for _, at := range []string{first.AccessToken, refreshed.AccessToken} {
			if code, body := d.do(in, "GET", "/auth/me", nil, at); code != http.StatusUnauthorized || problemType(body) != probUnauth {
				t.Fatalf("/auth/me at instance %d with an access token of the ended session: %d %s, want 401", i+1, code, body)
			}
		}
		if code, body := d.do(in, "GET", "/auth/me", nil, other.AccessToken); code != http.StatusOK {
			t.Fatalf("/auth/me at instance %d with the other session: %d %s, want 200", i+1, code, body)
		}
	}
	if n, revoked := d.sessionOf(d.sqlDB(), first.RefreshToken); n != 2 || revoked != "logout" {
		t.Fatalf("the session: %d refresh tokens, ended %q; want 2, logout", n, revoked)
	}
	// Logout is idempotent across instances: the other one finds it done.
	if code, body := d.do(two, "POST", "/auth/logout", map[string]string{"refresh_token": first.RefreshToken}, ""); code != http.StatusNoContent {
		t.Fatalf("logout again at instance 2: %d %s", code, body)
	}
	if r, n := d.metric(`latch_logouts_total{result="revoked"}`), d.metric(`latch_logouts_total{result="noop"}`); r != 1 || n != 1 {
		t.Fatalf("logouts on both instances: %d revoked, %d found done; want 1 and 1", r, n)
	}
	d.refresh(one, other.RefreshToken)
}

// Two instances started together on an empty database (no --check-db
// first) both come up, migrated once, with ONE signing key: both publish the
// same JWKS, and a token signed by either verifies at the other, with the
// JWKS of the other and at its /auth/me.
func TestE2EInstancesShareKeys(t *testing.T) {
	d := newDeployment(t, "", "--rate-ip", "0", "--rate-account", "0")
	d.start(2)
	for _, path := range []string{"/.well-known/jwks.json", "/auth/jwks.json", "/keys"} {
		var sets [2]jose.JSONWebKeySet
		for i, in := range d.inst {
			code, body := d.do(in, "GET", path, nil, "")
			if code != http.StatusOK || json.Unmarshal(body, &sets[i]) != nil {
				t.Fatalf("%s%s: %d %s", in.url, path, code, body)
			}
		}
		kids := func(s jose.JSONWebKeySet) (k []string) {
			for _, key := range s.Keys {
				k = append(k, key.KeyID)
			}
			return k
		}
		if k := kids(sets[0]); len(k) != 1 || !slices.Equal(k, kids(sets[1])) {
			t.Fatalf("%s: instance 1 publishes %v, instance 2 %v; want the same one key", path, k, kids(sets[1]))
		}
	}
	// Discovery is the same at each instance and through the front, and
	// names the front: the deployment's one public URL.
	var disco [3]struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	for i, in := range append(d.inst[:2:2], &instance{url: d.front.URL}) {
		code, body := d.do(in, "GET", "/.well-known/openid-configuration", nil, "")
		if code != http.StatusOK || json.Unmarshal(body, &disco[i]) != nil || disco[i].Issuer != d.front.URL ||
			disco[i] != disco[0] {
			t.Fatalf("discovery at %s: %d %s, want the issuer %s, as at instance 1", in.url, code, body, d.front.URL)
		}
	}

	d.register(d.inst[0], "alice")
	for i, in := range d.inst {
		tok := d.login(in, "alice").AccessToken
		at := d.inst[1-i]
		_, body := d.do(at, "GET", "/.well-known/jwks.json", nil, "")
		var set jose.JSONWebKeySet
		json.Unmarshal(body, &set)
		parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil || len(parsed.Headers) != 1 {
			t.Fatalf("access token of instance %d: %v", i+1, err)
		}
		keys := set.Key(parsed.Headers[0].KeyID)
		var claims jwt.Claims
		if len(keys) != 1 || parsed.Claims(keys[0].Key, &claims) != nil || claims.Issuer != d.front.URL {
			t.Fatalf("the token of instance %d does not verify with the JWKS of instance %d (kid %q, iss %q)",
				i+1, 2-i, parsed.Headers[0].KeyID, claims.Issuer)
		}
		if code, body := d.do(at, "GET", "/auth/me", nil, tok); code != http.StatusOK || !strings.Contains(string(body), `"alice"`) {
			t.Fatalf("/auth/me at instance %d with a token of instance %d: %d %s", 2-i, i+1, code, body)
		}
	}
}

// The database password comes from LATCH_DATABASE_URL or a passfile
// (PGPASSFILE or ?passfile=), never from --db (exit 2), and it shows in no
// log line (at debug), /healthz or /metrics of the instances, nor in
// --check-db's report.
func TestE2EInstancesDBPassword(t *testing.T) {
	base := os.Getenv("LATCH_TEST_POSTGRES")
	if base == "" {
		pgtest.Database(t) // skips, or fails under LATCH_REQUIRE_POSTGRES
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	b := make([]byte, 16)
	rand.Read(b)
	role, password := "latch_role_"+hex.EncodeToString(b[:6]), "pw"+hex.EncodeToString(b)
	if _, err := admin.Exec("CREATE ROLE " + role + " LOGIN PASSWORD '" + password + "'"); err != nil {
		t.Fatal(err)
	}
	// Registered before the database's: cleanups run last first, and the
	// role goes once the database it owns is dropped.
	t.Cleanup(func() { admin.Exec("DROP ROLE IF EXISTS " + role) })
	dbURL := pgtest.Database(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	if _, err := admin.Exec("ALTER DATABASE " + name + " OWNER TO " + role); err != nil {
		t.Fatal(err)
	}
	var auth string
	admin.QueryRow("SELECT auth_method FROM pg_hba_file_rules WHERE type = 'host' AND address = '127.0.0.1'").Scan(&auth)
	if auth == "trust" {
		t.Log("the test cluster trusts 127.0.0.1: the password is not checked by it; what is checked is that it never leaks")
	}
	u.User = url.User(role)
	roleURL := u.String()
	passfile := filepath.Join(t.TempDir(), "pgpass")
	line := strings.Join([]string{u.Hostname(), u.Port(), name, role, password}, ":") + "\n"
	if err := os.WriteFile(passfile, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}

	pwURL := *u
	pwURL.User = url.UserPassword(role, password)
	q := u.Query()
	q.Set("passfile", passfile)
	withPassfile := *u
	withPassfile.RawQuery = q.Encode()
	q = u.Query()
	q.Set("password", password)
	pwQuery := *u
	pwQuery.RawQuery = q.Encode()

	// Both instances take the URL, password and all, from the environment,
	// as a unit file would give it: it must show nowhere.
	d := newDeployment(t, roleURL, "--rate-ip", "0", "--rate-account", "0", "--log-level", "debug")
	d.db = ""
	d.env = []string{databaseURLEnv + "=" + pwURL.String()}
	outputs := []string{d.checkDB()}
	d.start(2)
	d.register(d.inst[0], "alice")
	d.refresh(d.inst[1], d.login(d.inst[0], "alice").RefreshToken)
	var conns int
	if err := admin.QueryRow("SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND datname = $2", role, name).Scan(&conns); err != nil || conns == 0 {
		t.Fatalf("no connection of %s to %s (%v): the instances do not use the URL's user", role, name, err)
	}
	for _, in := range d.inst {
		outputs = append(outputs, in.log.String())
		for _, path := range []string{"/healthz", "/metrics"} {
			_, body := d.do(in, "GET", path, nil, "")
			outputs = append(outputs, string(body))
		}
	}

	d.env = nil
	for _, tc := range []struct {
		name, db, env string
		code          int
		want          string
	}{
		{"PGPASSFILE", roleURL, "PGPASSFILE=" + passfile, 0, "up to date"},
		{"?passfile= in --db", withPassfile.String(), "", 0, "up to date"},
		{"password in --db", pwURL.String(), "", 2, "--db must not hold the database password"},
		{"?password= in --db", pwQuery.String(), "", 2, "--db must not hold the database password"},
	} {
		cmd := d.command("serve", "--check-db", "--secret-key-file", d.key, "--db", tc.db)
		if tc.env != "" {
			cmd.Env = append(cmd.Env, tc.env)
		}
		r := runCmd(t, cmd)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit %d, want %d saying %q\n%s", tc.name, r.code, tc.code, tc.want, r.stderr)
		}
		outputs = append(outputs, r.stdout+r.stderr)
	}
	for _, out := range outputs {
		if strings.Contains(out, password) {
			t.Fatalf("the database password shows in:\n%s", out)
		}
	}
}
