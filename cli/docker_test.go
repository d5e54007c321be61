package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// docker's credential helper protocol, spoken by the real latch binary
// invoked through a docker-credential-latch link, as docker runs it.
func TestE2EDockerCredentialHelper(t *testing.T) {
	e := newE2E(t, time.Hour)
	e.signup(e.srv.URL, "alice")
	profile := e.status().Name
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	before := `{"auths":{"other.io":{"auth":"eDp5"}},"credsStore":"desktop","credHelpers":{"gcr.io":"gcloud"},"experimental":"enabled"}`
	if err := os.WriteFile(cfg, []byte(before), 0o640); err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	out := e.must("", "docker", "setup", "--registry", "Registry.Example.com:5000", "-p", profile, "--config", cfg, "--link", bin)
	for _, want := range []string{"registry.example.com:5000", "Linked " + filepath.Join(bin, dockerHelperName)} {
		if !strings.Contains(out, want) {
			t.Fatalf("setup output lacks %q:\n%s", want, out)
		}
	}
	// docker's other settings are kept, and the file's mode.
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("docker's config after setup: %v\n%s", err, raw)
	}
	want := map[string]any{
		"auths":        map[string]any{"other.io": map[string]any{"auth": "eDp5"}},
		"credsStore":   "desktop",
		"credHelpers":  map[string]any{"gcr.io": "gcloud", "registry.example.com:5000": "latch"},
		"experimental": "enabled",
	}
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Fatalf("docker's config:\n%s\nwant\n%s", g, w)
	}
	if fi, err := os.Stat(cfg); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("docker's config mode: %v, %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(e.home, dockerRegistries)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("latch's registry file: %v", err)
	}

	helper := filepath.Join(bin, dockerHelperName)
	run := func(stdin string, args ...string) result {
		cmd := exec.CommandContext(e.ctx, helper, args...)
		cmd.Env = e.command("").Env
		cmd.Stdin = strings.NewReader(stdin)
		return runCmd(t, cmd)
	}
	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantCode   int
		wantStdout string // exact, unless wantToken
		wantToken  bool   // stdout is a credential whose Secret the server accepts
		contains   string // for messages
	}{
		{name: "get", args: []string{"get"}, stdin: "registry.example.com:5000\n", wantToken: true},
		{name: "get, URL form", args: []string{"get"}, stdin: "https://registry.example.com:5000/v2/", wantToken: true},
		{name: "get, unknown registry", args: []string{"get"}, stdin: "registry.example.com\n", wantCode: 1,
			wantStdout: "credentials not found in native keychain\n"},
		{name: "get, another port", args: []string{"get"}, stdin: "registry.example.com:5001\n", wantCode: 1,
			wantStdout: "credentials not found in native keychain\n"},
		{name: "get, no server URL", args: []string{"get"}, stdin: "\n", wantCode: 1, wantStdout: "no credentials server URL\n"},
		{name: "list", args: []string{"list"}, wantStdout: `{"registry.example.com:5000":"alice"}` + "\n"},
		{name: "store", args: []string{"store"}, stdin: `{"ServerURL":"registry.example.com:5000","Username":"u","Secret":"s"}`,
			wantCode: 1, contains: "latch manages the credentials of registry.example.com:5000"},
		{name: "erase", args: []string{"erase"}, stdin: "registry.example.com:5000\n", wantCode: 1,
			contains: "docker logout does not log latch out: end the session with latch logout -p " + profile},
		{name: "version", args: []string{"version"}, contains: "docker-credential-latch (github.com/latch-dev/latch)"},
		{name: "unknown action", args: []string{"frob"}, wantCode: 1, wantStdout: "unknown credential action `frob`: use store, get, erase, list or version\n"},
		{name: "no action", wantCode: 1, contains: "Usage: docker-credential-latch <store|get|erase|list|version>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(tt.stdin, tt.args...)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.wantCode, r.stdout, r.stderr)
			}
			switch {
			case tt.wantToken:
				var c struct{ ServerURL, Username, Secret string }
				if err := json.Unmarshal([]byte(r.stdout), &c); err != nil {
					t.Fatalf("stdout is not a credential: %v\n%s", err, r.stdout)
				}
				if c.ServerURL != strings.TrimSpace(tt.stdin) || c.Username != "alice" {
					t.Fatalf("credential %+v", c)
				}
				e.checkToken(c.Secret, "alice")
			case tt.contains != "":
				if !strings.Contains(r.stdout, tt.contains) {
					t.Fatalf("stdout lacks %q:\n%s", tt.contains, r.stdout)
				}
			default:
				if r.stdout != tt.wantStdout {
					t.Fatalf("stdout %q, want %q", r.stdout, tt.wantStdout)
				}
			}
		})
	}

	// After logout docker hears why, and what to run.
	e.must("", "logout")
	r := run("registry.example.com:5000", "get")
	if r.code != 1 || !strings.Contains(r.stdout, "latch login --profile "+profile) || strings.Count(r.stdout, "latch login") != 1 {
		t.Fatalf("get after logout: exit %d\n%s", r.code, r.stdout)
	}

	// --print writes nothing to docker's config.
	before2, _ := os.ReadFile(cfg)
	out = e.must("", "docker", "setup", "--registry", "other.example.com", "-p", profile, "--config", cfg, "--print")
	if !strings.Contains(out, `"other.example.com": "latch"`) {
		t.Fatalf("--print output:\n%s", out)
	}
	if after, _ := os.ReadFile(cfg); string(after) != string(before2) {
		t.Fatal("--print changed docker's config")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRegistryHost(t *testing.T) {
	for in, want := range map[string]string{
		"registry.example.com":             "registry.example.com",
		"Registry.Example.com:5000":        "registry.example.com:5000",
		"https://registry.example.com/v2/": "registry.example.com",
		"HTTP://127.0.0.1:5000":            "127.0.0.1:5000",
		" registry.example.com\n":          "registry.example.com",
		"https://index.docker.io/v1/":      "index.docker.io",
	} {
		if got := registryHost(in); got != want {
			t.Errorf("registryHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAddCredHelper(t *testing.T) {
	tests := []struct {
		name, before, want, wantErr string
	}{
		{name: "no file", want: `{"credHelpers":{"r.io":"latch"}}`},
		{name: "empty file", before: " \n", want: `{"credHelpers":{"r.io":"latch"}}`},
		{name: "null credHelpers", before: `{"credHelpers":null}`, want: `{"credHelpers":{"r.io":"latch"}}`},
		{name: "replaces another helper", before: `{"credHelpers":{"r.io":"gcloud"}}`, want: `{"credHelpers":{"r.io":"latch"}}`},
		{name: "not an object", before: `[1]`, wantErr: "not a JSON object"},
		{name: "truncated", before: `{"auths":`, wantErr: "not a JSON object"},
		{name: "credHelpers not strings", before: `{"credHelpers":{"r.io":1}}`, wantErr: "credHelpers is not an object of strings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "docker", "config.json")
			if tt.before != "" {
				if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(tt.before), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := addCredHelper(path, "r.io")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if b, _ := os.ReadFile(path); string(b) != tt.before {
					t.Fatalf("a refused config was changed: %s", b)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(path)
			var v any
			if err := json.Unmarshal(b, &v); err != nil || mustJSON(t, v) != tt.want {
				t.Fatalf("config %s (%v), want %s", b, err, tt.want)
			}
			if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
				t.Fatalf("mode %v", fi.Mode())
			}
			entries, _ := os.ReadDir(filepath.Dir(path))
			if len(entries) != 1 {
				t.Fatalf("temp files left: %v", entries)
			}
		})
	}
}

// TestAddCredHelperThroughLink: a docker config that is a symbolic link (a
// dotfiles checkout) is changed where the link points, and stays a link;
// the other keys in it are kept.
func TestAddCredHelperThroughLink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "dotfiles", "docker-config.json")
	if err := os.MkdirAll(filepath.Dir(real), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(real, []byte(`{"auths":{"other.io":{"auth":"eA=="}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "docker", "config.json")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, path); err != nil {
		t.Fatal(err)
	}
	if _, err := addCredHelper(path, "r.io"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v %v", fi.Mode(), err)
	}
	b, _ := os.ReadFile(real)
	var v any
	if err := json.Unmarshal(b, &v); err != nil || mustJSON(t, v) != `{"auths":{"other.io":{"auth":"eA=="}},"credHelpers":{"r.io":"latch"}}` {
		t.Fatalf("the linked file holds %s (%v)", b, err)
	}
}
