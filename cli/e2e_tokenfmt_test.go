package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latch-dev/latch/internal/fakeidp"
)

// tokenOut is latch token --json.
type tokenOut struct {
	AccessToken string  `json:"access_token"`
	TokenType   string  `json:"token_type"`
	ExpiresAt   string  `json:"expires_at"`
	Profile     string  `json:"profile"`
	IDToken     *string `json:"id_token"`
}

// TestTokenFormats: latch token's --header, --json, --decode and
// --min-valid on an account profile, and the usage errors of the flags
// that do not go together or ask for what cannot be had.
func TestTokenFormats(t *testing.T) {
	e := newE2E(t, time.Hour)
	e.signup(e.srv.URL, "tom")
	tok := e.token()
	for _, tc := range []struct {
		name       string
		args       []string
		code       int
		wantStderr string
		check      func(t *testing.T, out string)
	}{
		{name: "--header", args: []string{"--header"}, check: func(t *testing.T, out string) {
			if out != "Authorization: Bearer "+tok+"\n" {
				t.Fatalf("--header printed %q", out)
			}
		}},
		{name: "--json", args: []string{"--json"}, check: func(t *testing.T, out string) {
			var v map[string]any
			if err := json.Unmarshal([]byte(out), &v); err != nil {
				t.Fatal(err)
			}
			exp, err := time.Parse(time.RFC3339, v["expires_at"].(string))
			if v["access_token"] != tok || v["token_type"] != "Bearer" || v["profile"] != "default" || err != nil ||
				time.Until(exp) < 50*time.Minute || time.Until(exp) > time.Hour {
				t.Fatalf("--json = %s (expiry %v)", out, err)
			}
			if _, ok := v["id_token"]; ok || len(v) != 4 {
				t.Fatalf("--json has other keys than the four: %s", out)
			}
		}},
		{name: "--min-valid within the token's life", args: []string{"--min-valid", "30m"}, check: func(t *testing.T, out string) {
			if out != tok+"\n" {
				t.Fatal("--min-valid 30m handed out another token than the valid one")
			}
		}},
		{name: "--decode", args: []string{"--decode"}, check: func(t *testing.T, out string) {
			if !strings.Contains(out, "not verified") || !strings.Contains(out, "Claims") || !strings.Contains(out, "exp") {
				t.Fatalf("--decode printed:\n%s", out)
			}
		}},
		{name: "--decode --json", args: []string{"--decode", "--json"}, check: func(t *testing.T, out string) {
			var v struct {
				Claims struct {
					Iss string `json:"iss"`
					Exp int64  `json:"exp"`
				} `json:"claims"`
			}
			if err := json.Unmarshal([]byte(out), &v); err != nil || v.Claims.Iss != e.srv.URL || v.Claims.Exp == 0 {
				t.Fatalf("--decode --json printed %s (%v)", out, err)
			}
		}},
		{name: "--min-valid longer than tokens last", args: []string{"--min-valid", "2h"}, code: exitUsage, wantStderr: "--min-valid"},
		{name: "negative --min-valid", args: []string{"--min-valid=-1m"}, code: exitUsage, wantStderr: "--min-valid"},
		{name: "--id-token of an account", args: []string{"--id-token"}, code: exitUsage, wantStderr: "latch login --issuer"},
		{name: "--header --json", args: []string{"--header", "--json"}, code: exitUsage, wantStderr: "--header"},
		{name: "--header --decode", args: []string{"--header", "--decode"}, code: exitUsage, wantStderr: "--header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.run("", append([]string{"token"}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.wantStderr) {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tc.code, r.stdout, r.stderr)
			}
			if tc.code != 0 && r.stdout != "" {
				t.Fatalf("printed %q on failure", r.stdout)
			}
			if tc.check != nil {
				tc.check(t, r.stdout)
			}
		})
	}
	if n := e.refreshes("rotated"); n != 0 {
		t.Fatalf("the server rotated %d times, want 0", n)
	}
	e.checkToken(tok, "tom")
}

// TestTokenIDToken: an OpenID profile's ID token, with --id-token: printed,
// in --json beside the access token, and decoded.
func TestTokenIDToken(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed; .ci/run installs it")
	}
	idp := fakeidp.New(t)
	e := newE2E(t, time.Minute)
	opener := filepath.Join(t.TempDir(), "open-with-curl")
	if err := os.WriteFile(opener, []byte("#!/bin/sh\nexec "+curl+" -sSL -o /dev/null \"$1\"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := e.command("", "login", "--issuer", idp.URL, "--client-id", "latch-cli", "--browser", "--wait", "30s")
	cmd.Env = append(cmd.Env, "LATCH_BROWSER="+opener)
	if r := runCmd(t, cmd); r.code != 0 {
		t.Fatalf("login: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	id := strings.TrimSpace(e.must("", "token", "--id-token"))
	if strings.Count(id, ".") != 2 {
		t.Fatalf("--id-token printed %q", id)
	}
	var v tokenOut
	if err := json.Unmarshal([]byte(e.must("", "token", "--id-token", "--json")), &v); err != nil {
		t.Fatal(err)
	}
	if v.IDToken == nil || *v.IDToken != id || v.AccessToken == "" || v.AccessToken == id {
		t.Fatalf("--id-token --json = %+v", v)
	}
	var dec struct {
		Claims struct {
			Iss string `json:"iss"`
			Aud any    `json:"aud"`
		} `json:"claims"`
	}
	if err := json.Unmarshal([]byte(e.must("", "token", "--id-token", "--decode", "--json")), &dec); err != nil || dec.Claims.Iss != idp.URL {
		t.Fatalf("--id-token --decode --json: %+v, %v", dec, err)
	}
}
