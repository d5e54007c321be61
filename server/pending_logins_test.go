package server

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/latch-dev/latch/internal/webform"
)

// TestChangesEndPendingLogins: a change that ends an account's sessions
// (a password reset, an admin's lock or required reset) also ends its
// logins half-way through (endPendingLogins): an MFA challenge whose
// password step passed before, and a device grant approved but not polled
// yet. Either, finished after the change, would open a session it never saw.
func TestChangesEndPendingLogins(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(e *env, mb *mailbox, u *mfaUser, adminToken string)
	}{
		{"password reset", func(e *env, mb *mailbox, u *mfaUser, _ string) {
			e.forgot(u.name)
			if r := e.reset(mb.token(e.t, purposeReset, u.name+"@example.com"), newPassword, u.backup[0]); r.Status != 204 {
				e.t.Fatalf("reset: %d %s", r.Status, r.Body)
			}
		}},
		{"admin lock", func(e *env, _ *mailbox, u *mfaUser, at string) {
			if r := e.bearer("POST", fmt.Sprintf("/admin/users/%d/lock", e.uid(u.name)), at, nil); r.Status != 204 {
				e.t.Fatalf("lock: %d %s", r.Status, r.Body)
			}
		}},
		{"admin requires a reset", func(e *env, _ *mailbox, u *mfaUser, at string) {
			if r := e.bearer("POST", fmt.Sprintf("/admin/users/%d/require-password-reset", e.uid(u.name)), at, nil); r.Status != 204 {
				e.t.Fatalf("require reset: %d %s", r.Status, r.Body)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newOPEnv(t)
			mb := e.mailbox()
			_, admin := e.userWithRoles("admin", roleViewer, roleAdmin)
			u := e.enrol("carol")
			mfaTok := e.challenge("carol")
			cfg := e.cliConfig("127.0.0.1")
			da := e.startDevice(t, cfg)
			e.approveDevice(t, da, "carol", "approve", func(b *webform.Browser, p *webform.Page) *webform.Page {
				e.clock.Add(30 * time.Second)
				return b.Submit(p, map[string]string{"code": totpCode(t, u.secret, e.clock.Now())})
			})

			tc.change(e, mb, u, admin.AccessToken)

			e.clock.Add(30 * time.Second)
			wantProblem(t, "the MFA challenge started before the change", e.verify(mfaTok, totpCode(t, u.secret, e.clock.Now())),
				401, probMFAChallenge)
			status, m := e.postForm("/oauth/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"},
				"device_code": {da.DeviceCode}, "client_id": {CLIClientID}})
			if status == 200 || m["access_token"] != nil {
				t.Fatalf("the device grant approved before the change: %d %v", status, m)
			}
		})
	}
}
