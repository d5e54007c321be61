// Package randcheck holds the tests' check that values meant to be
// unguessable (OAuth state, nonce, PKCE challenge, device code) look it. It
// is for tests only and proves nothing about randomness: it catches a
// counter, a timestamp, or a short random part padded out.
package randcheck

import (
	"encoding/base64"
	"testing"
)

// Check fails t unless values are base64url (unpadded) strings of at least
// minBytes bytes, all distinct, and every bit position of their first
// minBytes bytes takes both values.
func Check(t testing.TB, what string, values []string, minBytes int) {
	t.Helper()
	seen := map[string]bool{}
	ones, zeros := make([]int, minBytes*8), make([]int, minBytes*8)
	for _, v := range values {
		raw, err := base64.RawURLEncoding.Strict().DecodeString(v)
		if err != nil || len(raw) < minBytes || base64.RawURLEncoding.EncodeToString(raw) != v {
			t.Fatalf("%s %q: not base64url of at least %d bytes (%v)", what, v, minBytes, err)
		}
		if seen[v] {
			t.Fatalf("%s %q issued twice", what, v)
		}
		seen[v] = true
		for i := range minBytes * 8 {
			if raw[i/8]>>(i%8)&1 == 1 {
				ones[i]++
			} else {
				zeros[i]++
			}
		}
	}
	for i := range minBytes * 8 {
		if ones[i] == 0 || zeros[i] == 0 {
			t.Fatalf("%s: bit %d is the same in all %d values", what, i, len(values))
		}
	}
}
