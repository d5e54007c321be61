package vault

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"testing/quick"
	"time"
)

// Two profiles files of the same size: an edit from one to the other
// changes neither the size nor, with Chtimes, the time.
const (
	alphaConfig = `{"current":"alpha","profiles":[{"name":"alpha","kind":"account"}]}`
	bravoConfig = `{"current":"bravo","profiles":[{"name":"bravo","kind":"account"}]}`
)

// editInPlace rewrites the profiles file in dir without replacing it, and
// puts its modification time back: only a read can tell it changed.
func editInPlace(t *testing.T, dir, content string) {
	t.Helper()
	path := filepath.Join(dir, configFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
}

// replaceFile puts content in place the way another latch process saves:
// a new file renamed over the old one, which this process does not count.
func replaceFile(t *testing.T, dir, content string) {
	t.Helper()
	tmp := filepath.Join(dir, "other-process.tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, configFile)); err != nil {
		t.Fatal(err)
	}
}

// A ConfigCache hands out what the file holds now: every way the file can
// change after the first Load is seen by the next one; only a file that is
// still the very one read is not read again.
func TestConfigCacheSeesChanges(t *testing.T) {
	tests := []struct {
		name    string
		missing bool // no profiles file before the first Load
		change  func(t *testing.T, dir string)
		current string // what the second Load must say
	}{
		{"unchanged, not read again", false, func(t *testing.T, dir string) {
			editInPlace(t, dir, bravoConfig) // only a read would see it
		}, "alpha"},
		{"saved by this process", false, func(t *testing.T, dir string) {
			c := &Config{Current: "bravo", Profiles: []Profile{{Name: "bravo", Kind: KindAccount}}}
			if err := c.Save(dir); err != nil {
				t.Fatal(err)
			}
		}, "bravo"},
		{"a failed save of this process", false, func(t *testing.T, dir string) {
			// The stat cannot see the edit; the attempted save makes the
			// cache read again all the same.
			editInPlace(t, dir, bravoConfig)
			c := &Config{Current: "bravo", Profiles: []Profile{{Name: "bravo", Kind: KindAccount}, {Name: "charlie", Kind: KindAccount}}}
			if err := c.save(dir, diskFullAfter(10)); err == nil {
				t.Fatal("save on a full disk succeeded")
			}
		}, "bravo"},
		{"replaced by another process", false, func(t *testing.T, dir string) {
			replaceFile(t, dir, bravoConfig)
		}, "bravo"},
		{"edited in place, another size, same time", false, func(t *testing.T, dir string) {
			editInPlace(t, dir, `{"profiles":[]}`)
		}, ""},
		{"edited in place, same size, later", false, func(t *testing.T, dir string) {
			editInPlace(t, dir, bravoConfig)
			later := time.Now().Add(time.Hour)
			if err := os.Chtimes(filepath.Join(dir, configFile), later, later); err != nil {
				t.Fatal(err)
			}
		}, "bravo"},
		{"removed", false, func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, configFile)); err != nil {
				t.Fatal(err)
			}
		}, ""},
		{"created after none", true, func(t *testing.T, dir string) {
			replaceFile(t, dir, bravoConfig)
		}, "bravo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			want := "alpha"
			if tt.missing {
				want = ""
			} else {
				replaceFile(t, dir, alphaConfig)
			}
			var cc ConfigCache
			c, err := cc.Load(dir)
			if err != nil || c.Current != want {
				t.Fatalf("first Load = %+v, %v; want current %q", c, err, want)
			}
			tt.change(t, dir)
			c, err = cc.Load(dir)
			if err != nil || c.Current != tt.current {
				t.Fatalf("Load after the change = %+v, %v; want current %q", c, err, tt.current)
			}
		})
	}
}

// A profiles file that cannot be read is an error each time, and read
// again once fixed: an error is not kept.
func TestConfigCacheKeepsNoError(t *testing.T) {
	dir := t.TempDir()
	replaceFile(t, dir, `{"profiles":[`)
	var cc ConfigCache
	if _, err := cc.Load(dir); err == nil {
		t.Fatal("Load of a malformed file succeeded")
	}
	if err := os.WriteFile(filepath.Join(dir, configFile), []byte(alphaConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := cc.Load(dir); err != nil || c.Current != "alpha" {
		t.Fatalf("Load of the fixed file = %+v, %v", c, err)
	}
}

// Each Load hands out a copy: a caller changing its copy (even from several
// goroutines at once) changes no other caller's.
func TestConfigCacheCopies(t *testing.T) {
	dir := t.TempDir()
	c := &Config{Current: "alpha", CodeLabels: []string{"github"}, Profiles: []Profile{
		{Name: "alpha", Kind: KindOIDC, Roles: []string{"viewer"}, AuthParams: map[string][]string{"prompt": {"login"}}, Endpoints: &Endpoints{Token: "http://127.0.0.1/token"}},
	}}
	if err := c.Save(dir); err != nil {
		t.Fatal(err)
	}
	var cc ConfigCache
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			got, err := cc.Load(dir)
			if err != nil {
				t.Error(err)
				return
			}
			got.Current = "changed"
			got.CodeLabels[0] = "changed"
			p := &got.Profiles[0]
			p.Roles[0], p.AuthParams["prompt"][0], p.Endpoints.Token = "changed", "changed", "changed"
			p.AuthParams["new"] = nil
		})
	}
	wg.Wait()
	got, err := cc.Load(dir)
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("Load after callers changed their copies = %+v, %v; want %+v", got, err, c)
	}
}

// clone shares no slice, map or pointer with the original, whatever fields
// Config and Profile gain: every field is filled at random.
func TestConfigCloneSharesNothing(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := range 50 {
		v, ok := quick.Value(reflect.TypeFor[Config](), r)
		if !ok {
			t.Fatal("quick cannot make a Config")
		}
		orig := v.Addr().Interface().(*Config)
		cp := orig.clone()
		if !reflect.DeepEqual(cp, orig) {
			t.Fatalf("#%d: clone differs:\n%+v\n%+v", i, cp, orig)
		}
		if path := shared(reflect.ValueOf(orig).Elem(), reflect.ValueOf(cp).Elem(), "Config"); path != "" {
			t.Fatalf("#%d: clone shares %s with the original", i, path)
		}
	}
}

// shared returns the path of the first slice, map or pointer a and b (of
// the same type) share, or "".
func shared(a, b reflect.Value, path string) string {
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() {
			return ""
		}
		if a.Pointer() == b.Pointer() {
			return path
		}
		return shared(a.Elem(), b.Elem(), path)
	case reflect.Slice:
		if a.Len() == 0 {
			return ""
		}
		if a.Pointer() == b.Pointer() {
			return path
		}
		for i := range a.Len() {
			if p := shared(a.Index(i), b.Index(i), path+"[i]"); p != "" {
				return p
			}
		}
	case reflect.Map:
		if a.Len() == 0 {
			return ""
		}
		if a.Pointer() == b.Pointer() {
			return path
		}
		for _, k := range a.MapKeys() {
			if p := shared(a.MapIndex(k), b.MapIndex(k), path+"[k]"); p != "" {
				return p
			}
		}
	case reflect.Struct:
		for i := range a.NumField() {
			if p := shared(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); p != "" {
				return p
			}
		}
	}
	return ""
}

// Writers that each read the profiles file through a cache first (as every
// command does) lose none of each other's changes: UpdateConfig reads the
// file afresh under its lock, and every cache then sees all of them.
func TestUpdateConfigAfterCachedReads(t *testing.T) {
	dir := t.TempDir()
	const n = 16
	var (
		caches [n]ConfigCache
		wg     sync.WaitGroup
	)
	for i := range n {
		if _, err := caches[i].Load(dir); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			err := UpdateConfig(t.Context(), dir, func(c *Config) error {
				return c.Put(Profile{Name: fmt.Sprintf("p%d", i), Kind: KindAccount})
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range n {
		c, err := caches[i].Load(dir)
		if err != nil || len(c.Profiles) != n {
			t.Fatalf("cache %d: %d profiles, %v; want %d", i, len(c.Profiles), err, n)
		}
	}
}

// BenchmarkConfigLoad compares a read of a profiles file with two profiles
// against a cached Load of it (one stat): report the ratio, not the times.
func BenchmarkConfigLoad(b *testing.B) {
	dir := b.TempDir()
	c := &Config{Current: "alpha", Profiles: []Profile{
		{Name: "alpha", Kind: KindAccount, Server: "https://latch.example.com", Username: "ada", Roles: []string{"viewer"}},
		{Name: "sso", Kind: KindOIDC, Issuer: "https://idp.example.com", ClientID: "latch-cli", AuthParams: map[string][]string{"prompt": {"login"}}},
	}}
	if err := c.Save(dir); err != nil {
		b.Fatal(err)
	}
	b.Run("read", func(b *testing.B) {
		for b.Loop() {
			if _, err := LoadConfig(dir); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		var cc ConfigCache
		for b.Loop() {
			if _, err := cc.Load(dir); err != nil {
				b.Fatal(err)
			}
		}
	})
}
