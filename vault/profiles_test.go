package vault

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

func TestHome(t *testing.T) {
	t.Run("LATCH_HOME", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "nested", "latch")
		t.Setenv("LATCH_HOME", dir)
		got, err := Home()
		if err != nil || got != dir {
			t.Fatalf("Home() = %q, %v; want %q", got, err, dir)
		}
		assertPerm(t, dir, 0o700)
	})
	t.Run("config dir", func(t *testing.T) {
		cfg := t.TempDir()
		t.Setenv("LATCH_HOME", "")
		t.Setenv("XDG_CONFIG_HOME", cfg)
		t.Setenv("HOME", cfg) // os.UserConfigDir on darwin
		want, _ := os.UserConfigDir()
		got, err := Home()
		if err != nil || got != filepath.Join(want, "latch") {
			t.Fatalf("Home() = %q, %v; want %q", got, err, filepath.Join(want, "latch"))
		}
		assertPerm(t, got, 0o700)
	})
}

func TestConfigRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home")
	c, err := LoadConfig(dir)
	if err != nil || c.Current != "" || len(c.Profiles) != 0 {
		t.Fatalf("LoadConfig(missing) = %+v, %v; want empty config", c, err)
	}
	profiles := []Profile{
		{Name: "work", Server: "http://127.0.0.1:8080", Username: "alice", Kind: KindAccount},
		{Name: "sso", Kind: KindOIDC, Issuer: "http://127.0.0.1:9000", ClientID: "latch-cli"},
	}
	for _, p := range profiles {
		if err := c.Put(p); err != nil {
			t.Fatal(err)
		}
	}
	c.Current = "work"
	if err := c.Save(dir); err != nil {
		t.Fatal(err)
	}
	assertPerm(t, dir, 0o700)
	assertPerm(t, filepath.Join(dir, configFile), 0o600)

	raw, _ := os.ReadFile(filepath.Join(dir, configFile))
	for _, want := range []string{`"client_id": "latch-cli"`, `"current": "work"`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("config file lacks %s:\n%s", want, raw)
		}
	}
	if strings.Contains(string(raw), `"issuer": ""`) {
		t.Errorf("empty fields should be omitted:\n%s", raw)
	}

	got, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("round trip: got %+v, want %+v", got, c)
	}

	// Put replaces by name; Remove clears Current.
	if err := got.Put(Profile{Name: "work", Kind: KindAccount, Username: "bob"}); err != nil {
		t.Fatal(err)
	}
	if p, _ := got.Get("work"); p.Username != "bob" || len(got.Profiles) != 2 {
		t.Fatalf("Put did not replace: %+v", got.Profiles)
	}
	if err := got.Remove("work"); err != nil || got.Current != "" {
		t.Fatalf("Remove = %v, Current = %q", err, got.Current)
	}
	if _, err := got.Get("work"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(removed) = %v, want ErrNotFound", err)
	}
	if err := got.Remove("work"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Remove(absent) = %v, want ErrNotFound", err)
	}
}

func TestConfigSaveIsAtomic(t *testing.T) {
	dir := t.TempDir()
	c := &Config{Profiles: []Profile{{Name: "old", Kind: KindAccount}}}
	if err := c.Save(dir); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, configFile))

	c.Profiles = append(c.Profiles, Profile{Name: "new", Kind: KindAccount})
	err := c.save(dir, diskFullAfter(10))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("save on a full disk = %v, want ENOSPC", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, configFile))
	if string(after) != string(before) {
		t.Fatalf("failed save changed the file:\n%s", after)
	}
	assertOnlyFiles(t, dir, configFile)
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"not json", "{profiles: [", "malformed"},
		{"truncated", `{"profiles": [{"name": "a", "kind": "account"}`, "malformed"},
		{"unknown field", `{"profiles": [], "token": "oops"}`, "malformed"},
		{"bad name", `{"profiles": [{"name": "../x", "kind": "account"}]}`, "invalid profile name"},
		{"bad kind", `{"profiles": [{"name": "a", "kind": "ldap"}]}`, "kind"},
		{"duplicate", `{"profiles": [{"name": "a", "kind": "oidc"}, {"name": "a", "kind": "oidc"}]}`, "twice"},
		{"dangling current", `{"current": "b", "profiles": [{"name": "a", "kind": "oidc"}]}`, "does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, configFile)
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadConfig(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("LoadConfig = %v; want an error naming %s and saying %q", err, path, tt.want)
			}
		})
	}
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"work", true},
		{"alice@example.com", true},
		{"prod_eu-1.b", true},
		{"élan", true},
		{"", false},
		{".", false},
		{"..", false},
		{"a/b", false},
		{"/", false},
		{`a\b`, false},
		{"a#1", false},
		{"tab\there", false},
		{"nl\n", false},
		{"esc\x1b[31m", false},
		{" padded ", false},
		{"bad\xffutf8", false},
		{strings.Repeat("n", maxNameLen+1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateName(tt.name)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidateName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
			}
			c := &Config{}
			if err := c.Put(Profile{Name: tt.name, Kind: KindAccount}); (err == nil) != tt.ok {
				t.Fatalf("Put(%q) = %v, want ok=%v", tt.name, err, tt.ok)
			}
		})
	}
}

// diskFullAfter returns a writer wrapper that fails with ENOSPC once n bytes
// have been written, as a full disk would.
func diskFullAfter(n int) func(io.Writer) io.Writer {
	return func(w io.Writer) io.Writer { return &fullDisk{w: w, left: n} }
}

type fullDisk struct {
	w    io.Writer
	left int
}

func (f *fullDisk) Write(p []byte) (int, error) {
	if len(p) > f.left {
		n, _ := f.w.Write(p[:f.left])
		f.left = 0
		return n, &os.PathError{Op: "write", Path: "temp", Err: syscall.ENOSPC}
	}
	f.left -= len(p)
	return f.w.Write(p)
}

func assertPerm(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Fatalf("%s has mode %v, want %v", path, got, want)
	}
}

// assertOnlyFiles fails if dir holds anything but names (e.g. a leftover
// temp file).
func assertOnlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := make(map[string]bool)
	for _, n := range names {
		want[n] = true
	}
	for _, e := range entries {
		if !want[e.Name()] {
			t.Errorf("unexpected file %s in %s", e.Name(), dir)
		}
	}
}
