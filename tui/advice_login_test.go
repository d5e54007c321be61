package tui

import (
	"context"
	"strings"
	"testing"

	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/vault"
)

// The flows' login advice, which names both ways in on the command line
// (a latch server, an OpenID provider), reads as keys of the interface:
// a for a server, o for OAuth; and a profile without a session asks for
// a login without the "not found" of the vault.
func TestExplainLoginAdvice(t *testing.T) {
	ctx := context.Background()
	e := &flows.Env{Home: t.TempDir(), Secrets: vault.NewMemory()}
	_, noProfile := e.Profile("")
	if err := vault.UpdateConfig(ctx, e.Home, func(c *vault.Config) error {
		return c.Put(vault.Profile{Name: "idp", Kind: vault.KindOIDC, Issuer: "https://idp.example", ClientID: "latch-cli"})
	}); err != nil {
		t.Fatal(err)
	}
	_, noSession := e.Tokens().AccessToken(ctx, "idp", nil)
	for _, tc := range []struct {
		name string
		err  error
		want []string
	}{
		{"no profile yet", noProfile, []string{"add a server (a)", "log in with OAuth at an OpenID provider (o)"}},
		{"no saved session", noSession, []string{`profile "idp" is not logged in (no saved session). Log in again (l).`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil {
				t.Fatal("no error to explain")
			}
			got := explain(tc.err)
			if flagAdvice.MatchString(got) || strings.Contains(got, "not found") || strings.Contains(got, "URL") {
				t.Errorf("explain = %q (from %q)", got, tc.err)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("explain = %q, want it to contain %q", got, w)
				}
			}
		})
	}
}
