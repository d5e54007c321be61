package vault

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// useKeyring makes Open use api instead of the system keyring for one test.
func useKeyring(t *testing.T, api keyringAPI) {
	t.Helper()
	old := newSystemKeyring
	newSystemKeyring = func() keyringAPI { return api }
	t.Cleanup(func() { newSystemKeyring = old })
}

func TestOpen(t *testing.T) {
	noBus := func() keyringAPI {
		f := newFakeKeyring()
		f.err = errors.New("The name org.freedesktop.secrets was not provided by any .service files")
		return f
	}
	locked := func() keyringAPI {
		f := newFakeKeyring()
		f.err = errors.New("Cannot create an item in a locked collection")
		return f
	}
	tests := []struct {
		name        string
		mode        string
		keyring     func() keyringAPI
		wantBackend string
		wantReason  []string
		wantErr     string
	}{
		{"auto, keyring works", ModeAuto, func() keyringAPI { return newFakeKeyring() }, "keyring", []string{"available"}, ""},
		{"empty mode is auto", "", func() keyringAPI { return newFakeKeyring() }, "keyring", nil, ""},
		{"auto, no secret service", ModeAuto, noBus, "file",
			[]string{"keyring unavailable: no Secret Service on D-Bus (is gnome-keyring running?); using encrypted file vault", vaultFile}, ""},
		{"auto, locked", ModeAuto, locked, "file", []string{"keyring unavailable: it is locked"}, ""},
		{"keyring, works", ModeKeyring, func() keyringAPI { return newFakeKeyring() }, "keyring", nil, ""},
		{"keyring, no secret service", ModeKeyring, noBus, "", nil, "no Secret Service"},
		{"keyring, locked", ModeKeyring, locked, "", nil, "locked"},
		{"file", ModeFile, noBus, "file", []string{vaultFile}, ""},
		{"memory", ModeMemory, noBus, "memory", nil, ""},
		{"unknown", "plaintext", noBus, "", nil, `unknown vault mode "plaintext"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			useKeyring(t, tt.keyring())
			ctx := context.Background()
			s, c, err := Open(ctx, tt.mode, t.TempDir(), Options{Passphrase: staticPass(testPass)})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || s != nil {
					t.Fatalf("Open = %v, %v; want error containing %q", s, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Backend != tt.wantBackend {
				t.Fatalf("Backend = %q (%s), want %q", c.Backend, c.Reason, tt.wantBackend)
			}
			for _, w := range tt.wantReason {
				if !strings.Contains(c.Reason, w) {
					t.Errorf("Reason %q does not say %q", c.Reason, w)
				}
			}
			// Whatever was chosen works.
			if err := s.Set(ctx, "k", []byte("v")); err != nil {
				t.Fatal(err)
			}
			if got, err := s.Get(ctx, "k"); err != nil || string(got) != "v" {
				t.Fatalf("Get = %q, %v", got, err)
			}
		})
	}
}

func TestOpenAutoHangingKeyring(t *testing.T) {
	f := newFakeKeyring()
	f.hang = make(chan struct{})
	defer close(f.hang)
	useKeyring(t, f)
	old := keyringTimeout
	keyringTimeout = 50 * time.Millisecond
	t.Cleanup(func() { keyringTimeout = old })

	start := time.Now()
	s, c, err := Open(context.Background(), ModeAuto, t.TempDir(), Options{Passphrase: staticPass(testPass)})
	if err != nil || c.Backend != ModeFile || !strings.Contains(c.Reason, "did not answer") || !c.Retry {
		t.Fatalf("Open = %+v, %v; want the file vault, to retry, because the keyring did not answer", c, err)
	}
	if _, ok := s.(*fileSecrets); !ok {
		t.Fatalf("Open returned %T", s)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Open took %v with a hanging keyring", d)
	}
}

// TestOpenFileWithoutPassphrase: with no way to ask for a passphrase the file
// vault opens, and using it says the vault is locked — it does not fail to
// open, so commands that need no secret still work.
func TestOpenFileWithoutPassphrase(t *testing.T) {
	useKeyring(t, newFakeKeyring())
	ctx := context.Background()
	s, _, err := Open(ctx, ModeFile, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "k", []byte("v")); !errors.Is(err, ErrLocked) {
		t.Fatalf("Set without a passphrase = %v, want ErrLocked", err)
	}
}
