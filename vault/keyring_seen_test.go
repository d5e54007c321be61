package vault

import (
	"bytes"
	"context"
	"testing"
)

// TestKeyringSetAfterGetReadsOnce: a set right after a get (a rotation)
// does not read the entry again; and when another process replaced the
// value in between, the stale memory only orphans that process's chunks —
// the newest value is what a reader gets.
func TestKeyringSetAfterGetReadsOnce(t *testing.T) {
	ctx := context.Background()
	f := newFakeKeyring()
	big := func(b byte) []byte { return bytes.Repeat([]byte{b}, 3*chunkSize) }

	gets := 0
	counted := &hookedKeyring{keyringAPI: f, before: func(op, _ string) error {
		if op == "Get" {
			gets++
		}
		return nil
	}}
	mine := newKeyringSecrets(counted)
	if err := mine.Set(ctx, "k", big('a')); err != nil {
		t.Fatal(err)
	}
	if _, err := mine.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	gets = 0
	if err := mine.Set(ctx, "k", big('b')); err != nil {
		t.Fatal(err)
	}
	if gets != 0 {
		t.Fatalf("a set after a get read the keyring %d times, want 0", gets)
	}

	// Another process writes a new generation; this one still remembers
	// the one it wrote.
	if err := newKeyringSecrets(f).Set(ctx, "k", big('c')); err != nil {
		t.Fatal(err)
	}
	if err := mine.Set(ctx, "k", big('d')); err != nil {
		t.Fatal(err)
	}
	if got, err := newKeyringSecrets(f).Get(ctx, "k"); err != nil || !bytes.Equal(got, big('d')) {
		t.Fatalf("Get after a set with a stale memory = %d bytes, %v; want the newest value", len(got), err)
	}
}
