package flows

import (
	"math"
	"testing"
	"time"
)

// Both front ends show the same claims as times, and say the same about an
// expired exp or a future nbf.
func TestClaimTime(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		name string
		v    any
		ok   bool
		at   time.Time
		note string
	}{
		{"exp", float64(now.Unix() + 60), true, now.Add(time.Minute), ""},
		{"exp", float64(now.Unix()), true, now, "expired"},
		{"exp", float64(now.Unix() - 60), true, now.Add(-time.Minute), "expired"},
		{"nbf", float64(now.Unix() + 60), true, now.Add(time.Minute), "not valid yet"},
		{"nbf", float64(now.Unix()), true, now, ""},
		{"iat", float64(now.Unix()) + 0.5, true, now.Add(500 * time.Millisecond), ""},
		{"auth_time", float64(now.Unix() - 3600), true, now.Add(-time.Hour), ""},
		{"iat", float64(math.MaxInt32 * 4), true, time.Unix(math.MaxInt32*4, 0), ""},
		{"iat", float64(math.MaxInt32*4 + 1), false, time.Time{}, ""},
		{"iat", float64(0), false, time.Time{}, ""},
		{"iat", float64(-1), false, time.Time{}, ""},
		{"exp", "1800000000", false, time.Time{}, ""},
		{"exp", nil, false, time.Time{}, ""},
		{"updated_at", float64(now.Unix()), false, time.Time{}, ""}, // not one of the time claims
	} {
		at, ok := ClaimTime(tc.name, tc.v)
		if ok != tc.ok || !at.Equal(tc.at) {
			t.Errorf("ClaimTime(%s, %v) = %v, %v; want %v, %v", tc.name, tc.v, at, ok, tc.at, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		if note := ClaimTimeNote(tc.name, at, now); note != tc.note {
			t.Errorf("ClaimTimeNote(%s, %v) = %q, want %q", tc.name, at, note, tc.note)
		}
	}
}
