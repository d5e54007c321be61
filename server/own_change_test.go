package server

import (
	"fmt"
	"testing"
)

// TestOwnChangeRefusals: the signed-in changes that take the password
// again (ownChange, checkOwnPassword) say which password is wrong, and are
// limited per account.
func TestOwnChangeRefusals(t *testing.T) {
	for _, tc := range []struct {
		path       string
		body       map[string]string
		wantDetail string
	}{
		{"/auth/password", map[string]string{"current_password": "wrong", "new_password": newPassword},
			"The current password is wrong."},
		{"/auth/email/change", map[string]string{"new_email": "new@example.com", "password": "wrong"},
			"The password is wrong."},
	} {
		t.Run(tc.path, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.RateAccount = 4 }) // burst 2
			e.register("alice", "alice@example.com")
			a := e.login("alice").AccessToken
			for i := range 2 {
				r := e.bearer("POST", tc.path, a, tc.body)
				wantProblem(t, fmt.Sprint("wrong password ", i), r, 401, probCredentials)
				if d := r.json(t)["detail"]; d != tc.wantDetail {
					t.Errorf("detail %q, want %q", d, tc.wantDetail)
				}
			}
			wantProblem(t, "over the account's limit", e.bearer("POST", tc.path, a, tc.body), 429, probRateLimited)
		})
	}
}

// TestVerifyMailLimits: a verification mail sent for a signed-in user (an
// email change here; a resend takes the same budgets) takes one from the
// account's budget and one from the address's (mailKeys). Moving to a new
// address each time does not escape the first; other accounts moving to
// one address do not escape the second.
func TestVerifyMailLimits(t *testing.T) {
	change := func(e *env, access, addr string) *resp {
		e.t.Helper()
		return e.bearer("POST", "/auth/email/change", access, map[string]string{"new_email": addr, "password": goodPassword})
	}
	t.Run("per account", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.RateAccount = 100 })
		e.register("alice", "alice@example.com")
		a := e.login("alice").AccessToken
		for i := range mailBurst {
			if r := change(e, a, fmt.Sprintf("alice%d@example.com", i)); r.Status != 202 {
				t.Fatalf("change %d: %d %s", i, r.Status, r.Body)
			}
		}
		wantProblem(t, "one more new address", change(e, a, "alice-last@example.com"), 429, probRateLimited)
	})
	t.Run("per address", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.RateAccount = 100 })
		const shared = "shared@example.com"
		for i := range mailBurst {
			name := fmt.Sprint("user", i)
			e.register(name, name+"@example.com")
			a := e.login(name).AccessToken
			// To the shared address and away again: two of the
			// account's budget, one of the address's.
			for _, addr := range []string{shared, name + "-moved@example.com"} {
				if r := change(e, a, addr); r.Status != 202 {
					t.Fatalf("%s to %s: %d %s", name, addr, r.Status, r.Body)
				}
			}
		}
		e.register("last", "last@example.com")
		wantProblem(t, "another account to the shared address", change(e, e.login("last").AccessToken, shared), 429, probRateLimited)
	})
}
