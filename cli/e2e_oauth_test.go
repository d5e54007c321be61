package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latch-dev/latch/internal/fakeidp"
)

// An OAuth login to a provider that is not a latch server, on the built
// binary: the "browser" is curl following the provider's redirect to
// latch's loopback callback. The provider offers no revocation, so logout
// says the session was only forgotten here, and why.
func TestE2EOAuthProviderLoginLogout(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed; .ci/run installs it")
	}
	idp := fakeidp.New(t, func(c *fakeidp.Config) { c.NoRevocation = true })
	e := newE2E(t, time.Minute)
	opener := filepath.Join(t.TempDir(), "open-with-curl")
	script := "#!/bin/sh\nexec " + curl + " -sSL -o /dev/null \"$1\"\n"
	if err := os.WriteFile(opener, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := e.command("", "login", "--issuer", idp.URL, "--client-id", "latch-cli", "--browser", "--wait", "30s")
	cmd.Env = append(cmd.Env, "LATCH_BROWSER="+opener)
	r := runCmd(t, cmd)
	if r.code != 0 {
		t.Fatalf("login: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if want := "Logged in to " + idp.URL + " as ada"; !strings.Contains(r.stdout, want) {
		t.Errorf("login said %q, want %q", r.stdout, want)
	}
	if st := e.status(); st.Kind != "oidc" || st.Issuer != idp.URL || st.State != "logged_in" {
		t.Fatalf("status: %+v", st)
	}
	out := e.must("", "logout")
	if !strings.Contains(out, "on this machine: the provider offers no token revocation") {
		t.Errorf("logout said: %s", out)
	}
	if r := e.run("", "token"); r.code != exitLogin {
		t.Errorf("token after logout: exit %d %s", r.code, r.stderr)
	}
}
