//go:build linux

package vault

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Clear with a prefix removes only the entries it names: latch vault lock
// removes access tokens and leaves an unsaved rotation.
func TestKernelCacheClearPrefix(t *testing.T) {
	ctx := context.Background()
	c := newTestKernelCache(t, true)
	mustPut(t, c, CacheAccessToken("a"), "at-a", time.Hour)
	mustPut(t, c, CacheAccessToken("b"), "at-b", time.Hour)
	mustPut(t, c, CachePending("a"), "pair", time.Hour)
	if err := c.Clear(ctx, CacheAccessTokens); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{CacheAccessToken("a"), CacheAccessToken("b")} {
		if _, err := c.Get(ctx, name); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s after Clear(at/) = %v, want ErrNotFound", name, err)
		}
	}
	if got, err := c.Get(ctx, CachePending("a")); err != nil || string(got) != "pair" {
		t.Fatalf("the pending entry after Clear(at/) = %q, %v", got, err)
	}
}
