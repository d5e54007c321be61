package cli

import (
	"testing"
	"time"

	"github.com/latch-dev/latch/internal/fakeidp"
)

// A confidential client's login, refresh and logout, traced on the built
// binary: the client secret (which looks like no token, so only latch's
// knowing it can mask it) is nowhere in what latch printed, with either
// client authentication, in text and JSON.
func TestE2ETraceRedactionConfidential(t *testing.T) {
	const secret = "opensesame-please"
	for _, mode := range traceModes {
		for _, auth := range []string{"basic", "post"} {
			t.Run(mode.name+"/"+auth, func(t *testing.T) {
				idp := fakeidp.New(t, func(c *fakeidp.Config) {
					c.ClientSecret, c.ClientAuth, c.AccessTTL, c.DevicePending = secret, auth, 3*time.Second, 1
					c.AuthMethods = []string{"client_secret_" + auth}
				})
				w := &wire{}
				recordServer(idp.Server, w)
				e := newE2E(t, time.Minute)
				tr := &tracedRun{t: t, e: e, mode: mode}
				tr.must(secret+"\n", "login", "--issuer", idp.URL, "--client-id", "latch-cli", "--device", "--wait", "30s",
					"--client-secret-stdin")
				for range 2 { // two refreshes: enough secrets on the wire to look for
					e.waitRotationDue()
					tr.must("", "token")
				}
				tr.must("", "logout")
				if s := idp.Stats(); s.LastClientAuth != auth || len(s.Revocations) != 1 {
					t.Fatalf("the provider saw client auth %q, %d revocations", s.LastClientAuth, len(s.Revocations))
				}
				checkTrace(t, mode, tr.stderr.String(), []string{"POST " + idp.URL + "/token", "POST " + idp.URL + "/revoke",
					"grant_type=refresh_token"}, append(w.secrets(), secret), false)
			})
		}
	}
}
