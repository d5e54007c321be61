package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/vault"
)

// The tests in this file run the command tree in process, over a flows.Env
// with a memory vault and a home in a temporary directory.

// testNow is the clock of testEnv: a Monday morning.
var testNow = time.Date(2026, 11, 30, 8, 4, 38, 0, time.Local)

// testEnv is an Env whose profiles are ps, each logged in at testNow with
// tokens that last a week (an access token of an hour).
func testEnv(t *testing.T, ps ...vault.Profile) *flows.Env {
	t.Helper()
	ctx := context.Background()
	e := &flows.Env{Home: t.TempDir(), Secrets: vault.NewMemory(), Vault: vault.Choice{Backend: vault.ModeMemory, Reason: "test"},
		Now: func() time.Time { return testNow }}
	for _, p := range ps {
		if err := e.Tokens().Save(ctx, p.Name, &client.Tokens{AccessToken: "at-" + p.Name, ExpiresIn: time.Hour,
			RefreshToken: "rt-" + p.Name, RefreshExpiresIn: 7 * 24 * time.Hour}); err != nil {
			t.Fatal(err)
		}
		err := vault.UpdateConfig(ctx, e.Home, func(c *vault.Config) error {
			c.Current = p.Name
			return c.Put(p)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// cliResult is one in-process run of latch.
type cliResult struct {
	stdout, stderr string
	code           int
}

// runCLI runs latch args over e (nil: none preset) and returns what it
// printed and its exit code, as Execute would.
func runCLI(t *testing.T, e *flows.Env, stdin string, args ...string) cliResult {
	t.Helper()
	g := newGlobals()
	g.env = e
	g.tty = func() bool { return false }
	root := newRootCmd(g)
	var out, errb bytes.Buffer
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd, err := root.ExecuteContextC(ctx)
	code := exitCode(cmd, err, &errb)
	return cliResult{stdout: out.String(), stderr: errb.String(), code: code}
}

func account(name, server string) vault.Profile {
	return vault.Profile{Name: name, Kind: vault.KindAccount, Server: server, Username: name}
}

func TestAPIPathsAndRedirects(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/auth/me":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"path":"` + r.URL.RequestURI() + `","auth":"` + r.Header.Get("Authorization") + `"}`))
		case "/moved":
			http.Redirect(w, r, "/auth/me", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	other := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	tests := []struct {
		name       string
		args       []string
		wantStdout string
		wantErr    string
		wantCode   int
	}{
		{"path", []string{"api", "/auth/me"}, `"path":"/auth/me"`, "", exitOK},
		{"path without slash", []string{"api", "auth/me?x=1"}, `"path":"/auth/me?x=1"`, "", exitOK},
		{"full URL of the server", []string{"api", srv.URL + "/auth/me?x=1"}, `"path":"/auth/me?x=1"`, "", exitOK},
		{"another host", []string{"api", other + "/auth/me"}, "", "is not on the profile's server", exitUsage},
		{"another scheme", []string{"api", strings.Replace(srv.URL, "http:", "https:", 1) + "/auth/me"}, "", "is not on the profile's server", exitUsage},
		{"scheme-relative", []string{"api", "//evil.example/auth/me"}, "", "is not on the profile's server", exitUsage},
		{"redirect", []string{"api", "/moved"}, "", "HTTP 302 Found: the server redirects to /auth/me", exitError},
		{"not found", []string{"api", "/nope"}, "404 page not found", "HTTP 404", exitError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := testEnv(t, account("ann", srv.URL))
			r := runCLI(t, e, "", tt.args...)
			if r.code != tt.wantCode || !strings.Contains(r.stdout, tt.wantStdout) || !strings.Contains(r.stderr, tt.wantErr) {
				t.Fatalf("exit %d (want %d)\nstdout: %q (want %q)\nstderr: %q (want %q)",
					r.code, tt.wantCode, r.stdout, tt.wantStdout, r.stderr, tt.wantErr)
			}
			if tt.wantStdout == "" && r.stdout != "" {
				t.Fatalf("stdout %q, want nothing", r.stdout)
			}
		})
	}
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantErr  string
		wantCode int
	}{
		{"unknown --profile", []string{"token", "--profile", "nope"},
			"latch: no profile named \"nope\" (the profiles are ann, bob); to make it, run latch login --profile nope\n", exitUsage},
		{"unknown profile for status", []string{"status", "--profile", "nope"}, `no profile named "nope"`, exitUsage},
		{"unknown profile use", []string{"profile", "use", "nope"}, "the profiles are ann, bob", exitUsage},
		{"unknown profile rm", []string{"profile", "rm", "nope"}, "the profiles are ann, bob", exitUsage},
		{"malformed --server", []string{"login", "--server", "http//nohost", "-u", "x", "--password-stdin"}, "--server: server URL", exitUsage},
		{"no host", []string{"login", "--server", "http://", "-u", "x", "--password-stdin"}, "has no host", exitUsage},
		{"plain http off loopback", []string{"login", "--server", "http://example.com", "-u", "x", "--password-stdin"}, "--insecure", exitUsage},
		{"malformed --issuer", []string{"login", "--issuer", "ftp://x", "--client-id", "c"}, "--issuer: ", exitUsage},
		{"malformed signup --server", []string{"signup", "--server", "nohost", "-u", "x", "--email", "x@example.com", "--password-stdin"}, "--server: ", exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := testEnv(t, account("ann", "http://127.0.0.1:1"), account("bob", "http://127.0.0.1:1"))
			r := runCLI(t, e, "pw\n", tt.args...)
			if r.code != tt.wantCode || !strings.Contains(r.stderr, tt.wantErr) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", r.code, tt.wantCode, r.stderr, tt.wantErr)
			}
		})
	}
}

func TestJSONOutputs(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantStdout string
		wantCode   int
	}{
		{"mfa codes with none saved", []string{"mfa", "codes", "--json"}, "{\n  \"remaining\": 0\n}\n", exitOK},
		{"mfa codes text with none saved", []string{"mfa", "codes"}, "No backup codes saved in the vault for this profile; latch mfa enable saves them.\n", exitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, testEnv(t, account("ann", "http://127.0.0.1:1")), "", tt.args...)
			if r.code != tt.wantCode || r.stdout != tt.wantStdout {
				t.Fatalf("exit %d (want %d)\nstdout %q\nwant   %q\nstderr %q", r.code, tt.wantCode, r.stdout, tt.wantStdout, r.stderr)
			}
		})
	}
}

// profile list --json and status --all --json describe profiles with the
// same object under the same key.
func TestProfileListAndStatusJSONAgree(t *testing.T) {
	e := testEnv(t, account("ann", "http://127.0.0.1:1"),
		vault.Profile{Name: "idp", Kind: vault.KindOIDC, Issuer: "https://idp.example", ClientID: "c", Username: "cat"})
	var list, status struct {
		Profiles []map[string]any `json:"profiles"`
	}
	for _, c := range []struct {
		args []string
		into any
	}{{[]string{"profile", "list", "--json"}, &list}, {[]string{"status", "--all", "--json"}, &status}} {
		r := runCLI(t, e, "", c.args...)
		if r.code != exitOK {
			t.Fatalf("%v: exit %d: %s", c.args, r.code, r.stderr)
		}
		if err := json.Unmarshal([]byte(r.stdout), c.into); err != nil {
			t.Fatalf("%v: %v\n%s", c.args, err, r.stdout)
		}
	}
	if len(list.Profiles) != 2 || !reflect.DeepEqual(list.Profiles, status.Profiles) {
		t.Fatalf("profile list --json:\n%v\nstatus --all --json:\n%v", list.Profiles, status.Profiles)
	}
}

func TestVersion(t *testing.T) {
	fake := func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{Main: debug.Module{Path: "github.com/latch-dev/latch", Version: "v1.2.3"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"},
				{Key: "vcs.time", Value: "2026-11-30T09:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}, true
	}
	b := readBuildInfo(fake)
	if want := "v1.2.3 (0123456789ab, modified, 2026-11-30T09:00:00Z) " + runtime.Version(); b.String() != want {
		t.Fatalf("version line %q, want %q", b.String(), want)
	}
	if b.Module != "github.com/latch-dev/latch" || b.Revision != "0123456789abcdef0123" {
		t.Fatalf("build info %+v", b)
	}
	if b := readBuildInfo(func() (*debug.BuildInfo, bool) { return nil, false }); b.Version != Version {
		t.Fatalf("without build info: %+v", b)
	}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := runCLI(t, nil, "", args...)
		if r.code != exitOK || !strings.Contains(r.stdout, runtime.Version()) {
			t.Fatalf("latch %v: exit %d, %q", args, r.code, r.stdout)
		}
	}
	r := runCLI(t, nil, "", "version", "--json")
	var got buildInfo
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Go != runtime.Version() {
		t.Fatalf("version --json: %v\n%s", err, r.stdout)
	}
}

// The shell's completion offers what latch knows, through cobra's hidden
// __complete command, and file names only where a flag takes a path.
func TestCompletion(t *testing.T) {
	home := t.TempDir()
	t.Setenv("LATCH_HOME", home)
	err := vault.UpdateConfig(context.Background(), home, func(c *vault.Config) error {
		c.CodeLabels = []string{"github", "bank"}
		if err := c.Put(account("work", "https://auth.example.com")); err != nil {
			return err
		}
		return c.Put(vault.Profile{Name: "home", Kind: vault.KindOIDC, Issuer: "https://idp.example", ClientID: "cli", Username: "me"})
	})
	if err != nil {
		t.Fatal(err)
	}
	const noFiles = ":4\n" // ShellCompDirectiveNoFileComp
	tests := []struct {
		args       []string
		wantStdout []string
		wantEnd    string
	}{
		{[]string{"token", "--profile", ""}, []string{"work\thttps://auth.example.com", "home\thttps://idp.example"}, noFiles},
		{[]string{"status", "-p", "w"}, []string{"work\t"}, noFiles},
		{[]string{"profile", "use", ""}, []string{"work\t", "home\t"}, noFiles},
		{[]string{"profile", "rm", "work", ""}, nil, noFiles},
		{[]string{"token", "--vault", ""}, []string{"auto\t", "keyring\t", "file\t", "memory\t"}, noFiles},
		{[]string{"login", "--server", ""}, []string{"https://auth.example.com"}, noFiles},
		{[]string{"login", "--issuer", ""}, []string{"https://idp.example"}, noFiles},
		{[]string{"login", "--scopes", "openid "}, []string{"openid offline_access", "openid email"}, ":6\n"},
		{[]string{"codes", "use", "--label", ""}, []string{"github", "bank"}, noFiles},
		{[]string{"serve", "--log-level", ""}, []string{"debug", "info", "warn", "error"}, noFiles},
		{[]string{"api", "-X", ""}, []string{"GET", "POST", "DELETE"}, noFiles},
		{[]string{"status", ""}, nil, noFiles},
		{[]string{"login", "--username", ""}, []string{"me"}, noFiles},
		{[]string{"serve", "--tls-cert", ""}, nil, ":0\n"}, // file names
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runCLI(t, nil, "", append([]string{cobra.ShellCompRequestCmd}, tt.args...)...)
			if r.code != exitOK {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			for _, want := range tt.wantStdout {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("completions lack %q:\n%s", want, r.stdout)
				}
			}
			if !strings.HasSuffix(r.stdout, tt.wantEnd) {
				t.Errorf("directive: want %q at the end of\n%s", tt.wantEnd, r.stdout)
			}
		})
	}
}
