package vault

import (
	"bytes"
	"context"
	"errors"

	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zalando/go-keyring"
)

// fakeKeyring is an in-memory keyringAPI. With hang set, every call blocks
// until hang is closed, like a Secret Service waiting on a prompt; with err
// set, every call fails with it.
type fakeKeyring struct {
	mu      sync.Mutex
	m       map[string]string
	err     error
	hang    chan struct{}
	maxSize int // largest value ever stored
	calls   int
}

func newFakeKeyring() *fakeKeyring { return &fakeKeyring{m: make(map[string]string)} }

func (f *fakeKeyring) enter() error {
	f.mu.Lock()
	f.calls++
	hang, err := f.hang, f.err
	f.mu.Unlock()
	if hang != nil {
		<-hang
	}
	return err
}

func (f *fakeKeyring) Get(service, user string) (string, error) {
	if err := f.enter(); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.m[service+"\x00"+user]
	if !ok {
		return "", keyring.ErrNotFound
	}
	return v, nil
}

func (f *fakeKeyring) Set(service, user, pass string) error {
	if err := f.enter(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// Windows' limit, the strictest.
	if len(pass) > 2560 {
		return keyring.ErrSetDataTooBig
	}
	f.maxSize = max(f.maxSize, len(pass))
	f.m[service+"\x00"+user] = pass
	return nil
}

func (f *fakeKeyring) Delete(service, user string) error {
	if err := f.enter(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.m[service+"\x00"+user]; !ok {
		return keyring.ErrNotFound
	}
	delete(f.m, service+"\x00"+user)
	return nil
}

func (f *fakeKeyring) users() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var us []string
	for k := range f.m {
		us = append(us, strings.SplitN(k, "\x00", 2)[1])
	}
	return us
}

func TestKeyringTimeout(t *testing.T) {
	f := newFakeKeyring()
	f.hang = make(chan struct{})
	defer close(f.hang) // lets the stranded goroutine finish
	k := newKeyringSecrets(f)
	k.timeout = 50 * time.Millisecond

	ops := []struct {
		name string
		op   func(ctx context.Context) error
	}{
		{"Get", func(ctx context.Context) error { _, err := k.Get(ctx, "k"); return err }},
		{"Set", func(ctx context.Context) error { return k.Set(ctx, "k", []byte("v")) }},
		{"Delete", func(ctx context.Context) error { return k.Delete(ctx, "k") }},
		{"probe", func(ctx context.Context) error { return k.probe(ctx) }},
	}
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			start := time.Now()
			err := o.op(context.Background())
			if !errors.Is(err, ErrTimeout) {
				t.Fatalf("%s on a hanging keyring = %v, want ErrTimeout", o.name, err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("%s took %v, want about %v", o.name, d, k.timeout)
			}
		})
	}
	// Only the first call reached the keyring; the rest timed out waiting
	// for it instead of stranding a goroutine each.
	f.mu.Lock()
	calls := f.calls
	f.mu.Unlock()
	if calls != 1 {
		t.Fatalf("%d calls reached the hanging keyring, want 1", calls)
	}

	t.Run("caller cancels", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := k.Set(ctx, "k", []byte("v")); !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
			t.Fatalf("Set with a cancelled context = %v, want context.Canceled", err)
		}
	})
}

func TestKeyringChunking(t *testing.T) {
	ctx := context.Background()
	f := newFakeKeyring()
	k := newKeyringSecrets(f)

	big := make([]byte, 9000)
	for i := range big {
		big[i] = byte(i * 7)
	}
	if err := k.Set(ctx, "big", big); err != nil {
		t.Fatal(err)
	}
	if f.maxSize > chunkSize {
		t.Fatalf("an entry of %d bytes was stored, want at most %d", f.maxSize, chunkSize)
	}
	wantKeys := func(want ...string) {
		t.Helper()
		got := strings.Join(slices.Sorted(slices.Values(f.users())), " ")
		if got != strings.Join(slices.Sorted(slices.Values(want)), " ") {
			t.Fatalf("keyring holds [%s], want %v", got, want)
		}
	}
	// 9000 bytes → 12000 base64 characters → 6 chunks.
	wantKeys("big", "big#1", "big#2", "big#3", "big#4", "big#5", "big#6")
	got, err := k.Get(ctx, "big")
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("Get(big) = %d bytes, %v; want the 9000 bytes back", len(got), err)
	}

	t.Run("shorter value drops extra chunks", func(t *testing.T) {
		if err := k.Set(ctx, "big", big[:3000]); err != nil {
			t.Fatal(err)
		}
		wantKeys("big", "big#1", "big#2")
		if got, _ := k.Get(ctx, "big"); !bytes.Equal(got, big[:3000]) {
			t.Fatal("Get after shrinking returned the wrong value")
		}
		if err := k.Set(ctx, "big", big); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("mixed chunks are corrupt, not wrong", func(t *testing.T) {
		f.mu.Lock()
		f.m[keyringService+"\x00big#3"] = strings.Repeat("A", chunkSize)
		f.mu.Unlock()
		if _, err := k.Get(ctx, "big"); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Get with a foreign chunk = %v, want ErrCorrupt", err)
		}
	})
	t.Run("missing chunk", func(t *testing.T) {
		if err := k.Set(ctx, "big", big); err != nil {
			t.Fatal(err)
		}
		f.mu.Lock()
		delete(f.m, keyringService+"\x00big#2")
		f.mu.Unlock()
		if _, err := k.Get(ctx, "big"); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Get with a missing chunk = %v, want ErrCorrupt", err)
		}
	})
	t.Run("delete removes all chunks", func(t *testing.T) {
		if err := k.Set(ctx, "big", big); err != nil {
			t.Fatal(err)
		}
		if err := k.Set(ctx, "small", []byte("s")); err != nil {
			t.Fatal(err)
		}
		if err := k.Delete(ctx, "big"); err != nil {
			t.Fatal(err)
		}
		wantKeys("small")
		if _, err := k.Get(ctx, "big"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
		}
	})
	t.Run("too big", func(t *testing.T) {
		err := k.Set(ctx, "huge", make([]byte, maxChunks*chunkSize))
		if !errors.Is(err, ErrTooBig) {
			t.Fatalf("Set(huge) = %v, want ErrTooBig", err)
		}
		wantKeys("small")
	})
	t.Run("foreign entry", func(t *testing.T) {
		f.mu.Lock()
		f.m[keyringService+"\x00foreign"] = "hunter2"
		f.mu.Unlock()
		if _, err := k.Get(ctx, "foreign"); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Get(foreign) = %v, want ErrCorrupt", err)
		}
	})
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want error
	}{
		{keyring.ErrNotFound, ErrNotFound},
		{keyring.ErrSetDataTooBig, ErrTooBig},
		{keyring.ErrUnsupportedPlatform, ErrNoKeyring},
		{errors.New("The name org.freedesktop.secrets was not provided by any .service files"), ErrNoKeyring},
		{errors.New("org.freedesktop.DBus.Error.ServiceUnknown: The name is not activatable"), ErrNoKeyring},
		{errors.New("dbus: couldn't determine address of session bus"), ErrNoKeyring},
		{errors.New(`exec: "dbus-launch": executable file not found in $PATH`), ErrNoKeyring},
		{errors.New("dial unix /run/user/1000/bus: connect: no such file or directory"), ErrNoKeyring},
		{errors.New("dial unix /tmp/dbus-x: connect: connection refused"), ErrNoKeyring},
		{errors.New("Cannot create an item in a locked collection"), ErrKeyringLocked},
		{errors.New("failed to unlock correct collection '/org/freedesktop/secrets/aliases/default'"), ErrKeyringLocked},
		{errors.New("prompt dismissed by the user"), ErrKeyringLocked},
		{context.DeadlineExceeded, ErrTimeout},
		{errors.New("org.freedesktop.DBus.Error.NoReply: Did not receive a reply"), ErrTimeout},
		{errors.New("something else entirely"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			got := classify(tt.err)
			if !errors.Is(got, tt.err) {
				t.Errorf("classify lost the original error: %v", got)
			}
			if tt.want == nil {
				if got != tt.err {
					t.Errorf("classify(%v) = %v, want it unchanged", tt.err, got)
				}
				return
			}
			if !errors.Is(got, tt.want) {
				t.Errorf("classify(%v) = %v, want %s", tt.err, got, sentinelName(tt.want))
			}
		})
	}
	if classify(nil) != nil {
		t.Error("classify(nil) != nil")
	}
}

func TestKeyringErrorsReachCaller(t *testing.T) {
	f := newFakeKeyring()
	f.err = errors.New("Cannot create an item in a locked collection")
	err := newKeyringSecrets(f).Set(context.Background(), "k", []byte("v"))
	if !errors.Is(err, ErrKeyringLocked) || !strings.Contains(err.Error(), "unlock it") {
		t.Fatalf("Set on a locked keyring = %v, want ErrKeyringLocked with advice", err)
	}
}
