package vault

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"runtime"
	"slices"
	"strconv"
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

func (f *fakeKeyring) entry(key string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m[keyringService+"\x00"+key]
}

// chunksOf parses the chunk header stored under key.
func (f *fakeKeyring) chunksOf(t *testing.T, key string) chunks {
	t.Helper()
	c, ok := parseHeader(f.entry(key))
	if !ok {
		t.Fatalf("%s holds %.20q, want a chunk header", key, f.entry(key))
	}
	return c
}

// entryNames returns the entries a value under key should have: key and,
// if it is chunked, the chunks of its current generation.
func (f *fakeKeyring) entryNames(key string) []string {
	names := []string{key}
	if c, ok := parseHeader(f.entry(key)); ok {
		for i := 1; i <= c.n; i++ {
			names = append(names, c.key(key, i))
		}
	}
	slices.Sort(names)
	return names
}

// setLegacy stores value under key as latch did before chunk generations:
// "chunks:N:SUM" and key#1 … key#N.
func (f *fakeKeyring) setLegacy(key string, value []byte) {
	enc := base64.StdEncoding.EncodeToString(value)
	n := chunkCount(enc)
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := 1; i <= n; i++ {
		f.m[keyringService+"\x00"+key+"#"+strconv.Itoa(i)] = enc[(i-1)*chunkSize : min(i*chunkSize, len(enc))]
	}
	f.m[keyringService+"\x00"+key] = headerPrefix + strconv.Itoa(n) + ":" + checksum(enc)
}

// hookedKeyring calls before ahead of every call to the keyring it wraps; an
// error from before is returned instead of making the call.
type hookedKeyring struct {
	keyringAPI
	before func(op, user string) error
}

func (h *hookedKeyring) Get(service, user string) (string, error) {
	if err := h.before("Get", user); err != nil {
		return "", err
	}
	return h.keyringAPI.Get(service, user)
}

func (h *hookedKeyring) Set(service, user, pass string) error {
	if err := h.before("Set", user); err != nil {
		return err
	}
	return h.keyringAPI.Set(service, user, pass)
}

func (h *hookedKeyring) Delete(service, user string) error {
	if err := h.before("Delete", user); err != nil {
		return err
	}
	return h.keyringAPI.Delete(service, user)
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
	wantKeys := func(t *testing.T, want ...string) {
		t.Helper()
		got := strings.Join(slices.Sorted(slices.Values(f.users())), " ")
		if got != strings.Join(slices.Sorted(slices.Values(want)), " ") {
			t.Fatalf("keyring holds [%s], want %v", got, want)
		}
	}
	// 9000 bytes → 12000 base64 characters → 6 chunks.
	c := f.chunksOf(t, "big")
	if c.n != 6 || c.gen == "" {
		t.Fatalf("big value stored as %+v, want 6 chunks of a generation", c)
	}
	wantKeys(t, f.entryNames("big")...)
	got, err := k.Get(ctx, "big")
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("Get(big) = %d bytes, %v; want the 9000 bytes back", len(got), err)
	}

	t.Run("shorter value drops the old generation", func(t *testing.T) {
		if err := k.Set(ctx, "big", big[:3000]); err != nil {
			t.Fatal(err)
		}
		if c2 := f.chunksOf(t, "big"); c2.n != 2 || c2.gen == c.gen {
			t.Fatalf("after shrinking the value is stored as %+v, want 2 chunks of a new generation (old %s)", c2, c.gen)
		}
		wantKeys(t, f.entryNames("big")...)
		if got, _ := k.Get(ctx, "big"); !bytes.Equal(got, big[:3000]) {
			t.Fatal("Get after shrinking returned the wrong value")
		}
		if err := k.Set(ctx, "big", big); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("mixed chunks are corrupt, not wrong", func(t *testing.T) {
		third := f.chunksOf(t, "big").key("big", 3)
		f.mu.Lock()
		f.m[keyringService+"\x00"+third] = strings.Repeat("A", chunkSize)
		f.mu.Unlock()
		if _, err := k.Get(ctx, "big"); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Get with a foreign chunk = %v, want ErrCorrupt", err)
		}
	})
	t.Run("missing chunk", func(t *testing.T) {
		if err := k.Set(ctx, "big", big); err != nil {
			t.Fatal(err)
		}
		second := f.chunksOf(t, "big").key("big", 2)
		f.mu.Lock()
		delete(f.m, keyringService+"\x00"+second)
		f.mu.Unlock()
		if _, err := k.Get(ctx, "big"); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Get with a missing chunk = %v, want ErrCorrupt", err)
		}
	})
	t.Run("legacy chunks", func(t *testing.T) {
		f.setLegacy("old", big[:6000])
		if got, err := k.Get(ctx, "old"); err != nil || !bytes.Equal(got, big[:6000]) {
			t.Fatalf("Get(legacy) = %d bytes, %v; want the 6000 bytes back", len(got), err)
		}
		if err := k.Delete(ctx, "old"); err != nil {
			t.Fatal(err)
		}
		for _, u := range f.users() {
			if strings.HasPrefix(u, "old") {
				t.Fatalf("after deleting a legacy value the keyring holds %s", u)
			}
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
		wantKeys(t, "small")
		if _, err := k.Get(ctx, "big"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
		}
	})
	t.Run("too big", func(t *testing.T) {
		err := k.Set(ctx, "huge", make([]byte, maxChunks*chunkSize))
		if !errors.Is(err, ErrTooBig) {
			t.Fatalf("Set(huge) = %v, want ErrTooBig", err)
		}
		wantKeys(t, "small")
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

// errKilled stands for the death of the process: no keyring call after it
// takes place.
var errKilled = errors.New("killed")

// TestKeyringInterruptedSet stops a set after each possible number of keyring
// calls, as a kill would, and reads the key after: it must hold the old or
// the new value, never a corrupt one.
func TestKeyringInterruptedSet(t *testing.T) {
	ctx := context.Background()
	value := func(n int, b byte) []byte { return bytes.Repeat([]byte{b, b + 1, b + 2}, n/3+1)[:n] }
	small, big, mid := value(100, 'a'), value(9000, 'k'), value(3000, 'x') // whole, 6 chunks, 2 chunks
	tests := []struct {
		name   string
		old    []byte // nil: absent
		legacy bool   // old is stored in the legacy chunk format
		new    []byte
	}{
		{"absent to chunked", nil, false, big},
		{"whole to chunked", small, false, big},
		{"chunked to fewer chunks", big, false, mid},
		{"chunked to more chunks", mid, false, big},
		{"chunked to whole", big, false, small},
		{"legacy to chunked", big, true, mid},
		{"legacy to whole", big, true, small},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sawNew := false
			for calls := 0; ; calls++ {
				if calls > 4*maxChunks {
					t.Fatal("Set never succeeded")
				}
				f := newFakeKeyring()
				switch {
				case tt.legacy:
					f.setLegacy("k", tt.old)
				case tt.old != nil:
					if err := newKeyringSecrets(f).Set(ctx, "k", tt.old); err != nil {
						t.Fatal(err)
					}
				}
				left := calls
				killed := &hookedKeyring{keyringAPI: f, before: func(string, string) error {
					if left == 0 {
						return errKilled
					}
					left--
					return nil
				}}
				serr := newKeyringSecrets(killed).Set(ctx, "k", tt.new)
				if serr != nil && !errors.Is(serr, errKilled) {
					t.Fatalf("Set stopped after %d calls = %v", calls, serr)
				}

				got, err := newKeyringSecrets(f).Get(ctx, "k")
				switch {
				case err == nil && bytes.Equal(got, tt.new):
					sawNew = true
				case sawNew:
					t.Fatalf("Set stopped after %d calls: Get = %d bytes, %v; want the new value, as with fewer calls", calls, len(got), err)
				case tt.old == nil && errors.Is(err, ErrNotFound):
				case err == nil && bytes.Equal(got, tt.old):
				default:
					t.Fatalf("Set stopped after %d calls: Get = %d bytes, %v; want the old or the new value", calls, len(got), err)
				}
				if serr == nil && !bytes.Equal(got, tt.new) {
					t.Fatalf("Set stopped after %d calls returned nil, but Get = %d bytes", calls, len(got))
				}
				if serr == nil && left > 0 {
					// A Set that ran to the end leaves no chunk of the old
					// value (one stopped while removing them only orphans
					// some, and still reports the value stored).
					if got, want := slices.Sorted(slices.Values(f.users())), f.entryNames("k"); !slices.Equal(got, want) {
						t.Fatalf("after Set the keyring holds %v, want %v", got, want)
					}
					return
				}
			}
		})
	}
}

// TestKeyringGetDuringSet has a set from another process replace the value
// between a get's reading the header and its reading the chunks.
func TestKeyringGetDuringSet(t *testing.T) {
	ctx := context.Background()
	a, b := bytes.Repeat([]byte("a"), 9000), bytes.Repeat([]byte("b"), 5000)
	for _, next := range [][]byte{b, []byte("whole")} {
		f := newFakeKeyring()
		other := newKeyringSecrets(f)
		if err := other.Set(ctx, "k", a); err != nil {
			t.Fatal(err)
		}
		done := false
		reader := newKeyringSecrets(&hookedKeyring{keyringAPI: f, before: func(op, user string) error {
			if op == "Get" && strings.Contains(user, "#") && !done {
				done = true
				return other.Set(ctx, "k", next)
			}
			return nil
		}})
		got, err := reader.Get(ctx, "k")
		if err != nil || !bytes.Equal(got, next) {
			t.Fatalf("Get while the value became %d bytes = %d bytes, %v; want the new value", len(next), len(got), err)
		}
	}
}

// TestKeyringConcurrentProbes probes one keyring from many backends at once,
// as latch processes starting together do.
func TestKeyringConcurrentProbes(t *testing.T) {
	f := newFakeKeyring()
	// Yielding before each call interleaves the probes' calls.
	api := &hookedKeyring{keyringAPI: f, before: func(string, string) error { runtime.Gosched(); return nil }}
	const n = 50
	errs := make(chan error, n)
	start := make(chan struct{})
	for range n {
		go func() {
			<-start
			errs <- newKeyringSecrets(api).probe(context.Background())
		}()
	}
	close(start)
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("probe: %v", err)
		}
	}
	if us := f.users(); len(us) != 0 {
		t.Errorf("after the probes the keyring holds %v, want nothing", us)
	}
}

// TestKeyringFailedProbe checks that a probe that fails after storing its
// entry still deletes it.
func TestKeyringFailedProbe(t *testing.T) {
	tests := []struct {
		name  string
		onGet func(f *fakeKeyring, user string) error // before the probe reads its entry
	}{
		{"read fails", func(*fakeKeyring, string) error { return errors.New("Cannot get secret of a locked object") }},
		{"read differs", func(f *fakeKeyring, user string) error { return f.Set(keyringService, user, "something else") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeKeyring()
			api := &hookedKeyring{keyringAPI: f, before: func(op, user string) error {
				if op == "Get" {
					return tt.onGet(f, user)
				}
				return nil
			}}
			if err := newKeyringSecrets(api).probe(context.Background()); err == nil {
				t.Fatal("probe succeeded, want an error")
			}
			if us := f.users(); len(us) != 0 {
				t.Fatalf("after the failed probe the keyring holds %v, want nothing", us)
			}
		})
	}
}
