//go:build linux

package agent

import (
	"context"
	"testing"
	"time"
)

// BenchmarkClientGet measures what latch token pays per run to read its
// access token from the agent: Dial (connect, peer check, hello) and one Get.
// The sub-benchmarks split it: a Get on a connection kept open, and a new
// connection alone (what dialling per call would add to every operation).
func BenchmarkClientGet(b *testing.B) {
	a := startAgent(b, Options{})
	ctx := context.Background()
	value := make([]byte, 1200) // about a JWT access token
	seed := dial(b, a.sock, "s1")
	if err := seed.Put(ctx, "at/work", value, time.Hour); err != nil {
		b.Fatal(err)
	}

	b.Run("dial+get", func(b *testing.B) {
		for b.Loop() {
			c, err := Dial(ctx, a.sock, "s1")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c.Get(ctx, "at/work"); err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})
	b.Run("get", func(b *testing.B) {
		c := dial(b, a.sock, "s1")
		for b.Loop() {
			if _, err := c.Get(ctx, "at/work"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("dial", func(b *testing.B) {
		for b.Loop() {
			c, err := Dial(ctx, a.sock, "s1")
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})
}
