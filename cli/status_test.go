package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/vault"
)

// After the provider refuses the session's refresh token (a real latch
// server answering invalid_grant), status no longer says "logged in": it
// says the provider refused, exits 4, and the saved tokens are still
// there. A new login clears the refusal.
func TestStatusAfterProviderRefusal(t *testing.T) {
	issuer, _ := newTokenServer(t)
	for _, p := range []vault.Profile{
		{Name: "corp", Kind: vault.KindOIDC, Issuer: issuer, ClientID: "latch-cli", Username: "alice"},
		account("acct", issuer),
	} {
		t.Run(p.Kind, func(t *testing.T) {
			e := testEnv(t, p)
			if r := runCLI(t, e, "", "status"); r.code != exitOK || !strings.Contains(r.stdout, "state:      logged in\n") {
				t.Fatalf("before: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			// Two hours on, the access token has expired: latch token
			// refreshes, with a refresh token the server never issued.
			e.Now = func() time.Time { return testNow.Add(2 * time.Hour) }
			if r := runCLI(t, e, "", "token"); r.code != exitLogin {
				t.Fatalf("token: exit %d, want %d\n%s%s", r.code, exitLogin, r.stdout, r.stderr)
			}
			r := runCLI(t, e, "", "status")
			if r.code != exitLogin || strings.Contains(r.stdout, "logged in\n") ||
				!strings.Contains(r.stdout, "state:      refused by the provider just now (today 10:04:38): log in again\n") {
				t.Fatalf("after the refusal: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			r = runCLI(t, e, "", "status", "--json")
			var st statusJSON
			if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st.Profiles) != 1 {
				t.Fatalf("status --json: %v\n%s", err, r.stdout)
			}
			if got := st.Profiles[0]; got.State != "refused" || got.RefusedAt == nil || !got.RefusedAt.Equal(testNow.Add(2*time.Hour)) {
				t.Errorf("status --json: %+v", got)
			}
			if r := runCLI(t, e, "", "profile", "list"); !strings.Contains(r.stdout, "refused by the provider") ||
				!strings.Contains(r.stdout, "SERVER OR ISSUER") {
				t.Errorf("profile list:\n%s", r.stdout)
			}
			ctx := context.Background()
			if rt, err := e.Tokens().RefreshToken(ctx, p.Name); err != nil || rt != "rt-"+p.Name {
				t.Errorf("the saved tokens were touched: %q %v", rt, err)
			}
			// Logging in again (a new session saved) ends the refusal.
			e.Now = func() time.Time { return testNow }
			if err := e.Tokens().Save(ctx, p.Name, &client.Tokens{AccessToken: "at-new", ExpiresIn: time.Hour,
				RefreshToken: "rt-new", RefreshExpiresIn: 7 * 24 * time.Hour}); err != nil {
				t.Fatal(err)
			}
			if r := runCLI(t, e, "", "status"); r.code != exitOK {
				t.Errorf("after a new login: exit %d\n%s", r.code, r.stdout)
			}
		})
	}
}

// A profile without a session says so and what to do, not "login
// required: not found".
func TestNoSessionMessage(t *testing.T) {
	e := testEnv(t, vault.Profile{Name: "corp", Kind: vault.KindOIDC, Issuer: "https://idp.example", ClientID: "my-cli"})
	if err := e.Tokens().Forget(context.Background(), "corp"); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, e, "", "token")
	if r.code != exitLogin {
		t.Fatalf("exit %d, want %d: %s", r.code, exitLogin, r.stderr)
	}
	want := `latch: profile "corp" is not logged in (no saved session); log in with latch login --profile corp` + "\n"
	if r.stderr != want {
		t.Errorf("stderr %q, want %q", r.stderr, want)
	}
}

// Before any login, the advice names both ways in: a latch server and an
// OpenID provider.
func TestFirstLoginAdvice(t *testing.T) {
	const openID = "latch login --issuer URL --client-id ID"
	for _, tt := range []struct {
		args     []string
		wantCode int
		stream   string
	}{
		{[]string{"status"}, exitLogin, "stdout"},
		{[]string{"profile", "list"}, exitOK, "stdout"},
		{[]string{"token"}, exitLogin, "stderr"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runCLI(t, testEnv(t), "", tt.args...)
			out := map[string]string{"stdout": r.stdout, "stderr": r.stderr}[tt.stream]
			if r.code != tt.wantCode || !strings.Contains(out, "latch login --server URL") || !strings.Contains(out, openID) {
				t.Errorf("exit %d; %s lacks %q:\n%s", r.code, tt.stream, openID, out)
			}
		})
	}
}
