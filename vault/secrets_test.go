package vault

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

var errorsIs = errors.Is

// TestBackends runs the same contract against every backend.
func TestBackends(t *testing.T) {
	backends := []struct {
		name string
		new  func(t *testing.T) Secrets
	}{
		{"memory", func(t *testing.T) Secrets { return NewMemory() }},
		{"file", func(t *testing.T) Secrets {
			s, err := newFileSecrets(t.TempDir(), staticPass(testPass))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
		{"keyring-fake", func(t *testing.T) Secrets { return newKeyringSecrets(newFakeKeyring()) }},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			s := b.new(t)

			if _, err := s.Get(ctx, "absent"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get(absent) = %v, want ErrNotFound", err)
			}
			if err := s.Delete(ctx, "absent"); err != nil {
				t.Fatalf("Delete(absent) = %v, want nil", err)
			}
			values := map[string][]byte{
				"alice/refresh": []byte("r1"),
				"bob/refresh":   {0, 1, 2, 0xff, '\n'},
				"big":           bytes.Repeat([]byte("x"), 9000),
				"empty":         {},
			}
			for k, v := range values {
				if err := s.Set(ctx, k, v); err != nil {
					t.Fatalf("Set(%q) = %v", k, err)
				}
			}
			for k, v := range values {
				got, err := s.Get(ctx, k)
				if err != nil || !bytes.Equal(got, v) {
					t.Fatalf("Get(%q) = %q, %v; want %q", k, got, err, v)
				}
			}
			if err := s.Set(ctx, "alice/refresh", []byte("r2")); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.Get(ctx, "alice/refresh"); string(got) != "r2" {
				t.Fatalf("after overwrite Get = %q, want r2", got)
			}
			if err := s.Delete(ctx, "alice/refresh"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(ctx, "alice/refresh"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
			}
			if got, _ := s.Get(ctx, "bob/refresh"); !bytes.Equal(got, values["bob/refresh"]) {
				t.Fatalf("Delete touched another key: %q", got)
			}
			for _, bad := range []string{"", "a#1", "tab\there", strings.Repeat("k", maxKeyLen+1)} {
				if err := s.Set(ctx, bad, []byte("v")); err == nil {
					t.Errorf("Set(%q) accepted an invalid key", bad)
				}
			}
		})
	}
}

func base64Of(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
