//go:build linux

package agent

import (
	"bytes"
	"testing"
	"time"
)

func TestStoreWipesValues(t *testing.T) {
	s := newStore(time.Hour)
	defer s.close()
	put := func(scope, name string, ttl time.Duration) []byte {
		v := []byte("secret-" + scope + "-" + name)
		if err := s.put(key{scope, name}, v, ttl); err != nil {
			t.Fatal(err)
		}
		return v
	}
	wiped := func(what string, v []byte) {
		t.Helper()
		if !bytes.Equal(v, make([]byte, len(v))) {
			t.Errorf("%s: value not wiped: %q", what, v)
		}
	}
	expired := put("s1", "expired", time.Millisecond)
	deleted := put("s1", "deleted", time.Hour)
	replaced := put("s1", "replaced", time.Hour)
	cleared := put("s2", "cleared", time.Hour)
	kept := put("s1", "kept", time.Hour)

	s.delete(key{"s1", "deleted"})
	wiped("delete", deleted)
	put("s1", "replaced", time.Hour)
	wiped("replace", replaced)
	s.clearScope("s2", "")
	wiped("clear", cleared)
	waitFor(t, 3*time.Second, "the expired entry is swept", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		_, ok := s.m[key{"s1", "expired"}]
		return !ok
	})
	wiped("expiry", expired)
	if got, ok := s.get(key{"s1", "kept"}); !ok || string(got) != "secret-s1-kept" {
		t.Fatalf("kept entry = %q, %v", got, ok)
	}
	s.close()
	wiped("close", kept)
}
