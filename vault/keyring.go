package vault

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/zalando/go-keyring"
)

const (
	// keyringService is the service name every latch entry is stored under.
	keyringService = "latch"
	// chunkSize keeps each entry well under Windows' 2560-byte and macOS'
	// ~3000-byte limits.
	chunkSize = 2000
	// maxChunks bounds one value to about 48 KB of raw bytes.
	maxChunks = 32

	valuePrefix  = "b64:"    // a whole value, base64
	headerPrefix = "chunks:" // "chunks:N:SUM": the value is in key#1 … key#N
	// probeKey contains '#', which validateKey refuses, so no caller's key
	// can collide with it.
	probeKey = "latch-probe#"
)

// keyringTimeout bounds each keyring operation: go-keyring has no timeout and
// a Secret Service waiting on an unlock prompt never answers. Tests lower it.
var keyringTimeout = 3 * time.Second

// keyringAPI is the part of go-keyring latch uses, so tests can substitute a
// fake (including one that never answers).
type keyringAPI interface {
	Get(service, user string) (string, error)
	Set(service, user, password string) error
	Delete(service, user string) error
}

// systemKeyring is the real OS keyring.
type systemKeyring struct{}

func (systemKeyring) Get(service, user string) (string, error) {
	if err := noSessionBus(); err != nil {
		return "", err
	}
	return keyring.Get(service, user)
}

func (systemKeyring) Set(service, user, pass string) error {
	if err := noSessionBus(); err != nil {
		return err
	}
	return keyring.Set(service, user, pass)
}

func (systemKeyring) Delete(service, user string) error {
	if err := noSessionBus(); err != nil {
		return err
	}
	return keyring.Delete(service, user)
}

// noSessionBus returns an error when, on a D-Bus platform, there is no
// session bus to find. godbus would then run dbus-launch, which starts a new
// bus daemon on every call and leaves it running; latch reports "no keyring"
// instead. The places looked at are godbus's own.
func noSessionBus() error {
	if runtime.GOOS == "darwin" || runtime.GOOS == "windows" {
		return nil
	}
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" && a != "autolaunch:" {
		return nil
	}
	run := fmt.Sprintf("/run/user/%d", os.Getuid())
	for _, name := range []string{"bus", "dbus-session"} {
		if _, err := os.Stat(filepath.Join(run, name)); err == nil {
			return nil
		}
	}
	return errors.New("dbus: couldn't determine address of session bus (DBUS_SESSION_BUS_ADDRESS is not set)")
}

// keyringSecrets stores each value base64-encoded in the OS keyring, split
// over several entries when large.
type keyringSecrets struct {
	api     keyringAPI
	service string
	timeout time.Duration
	// busy admits one keyring call at a time. A call that hangs keeps its
	// goroutine until go-keyring returns; while it does, later calls time
	// out waiting here instead of stranding a goroutine each.
	busy chan struct{}
}

func newKeyringSecrets(api keyringAPI) *keyringSecrets {
	return &keyringSecrets{api: api, service: keyringService, timeout: keyringTimeout, busy: make(chan struct{}, 1)}
}

func (k *keyringSecrets) Get(ctx context.Context, key string) ([]byte, error) {
	if err := validateKey(key); err != nil {
		return nil, err
	}
	var v []byte
	err := k.do(ctx, func() error {
		var err error
		v, err = k.get(key)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("keyring secret %q: %w", key, err)
	}
	return v, nil
}

func (k *keyringSecrets) Set(ctx context.Context, key string, value []byte) error {
	if err := validateKey(key); err != nil {
		return err
	}
	enc := base64.StdEncoding.EncodeToString(value)
	if n := chunkCount(enc); n > maxChunks {
		return fmt.Errorf("keyring secret %q is %d bytes, more than the %d the keyring vault holds: %w",
			key, len(value), maxChunks*chunkSize*3/4, ErrTooBig)
	}
	if err := k.do(ctx, func() error { return k.set(key, enc) }); err != nil {
		return fmt.Errorf("keyring secret %q: %w", key, err)
	}
	return nil
}

func (k *keyringSecrets) Delete(ctx context.Context, key string) error {
	if err := validateKey(key); err != nil {
		return err
	}
	if err := k.do(ctx, func() error { return k.del(key) }); err != nil {
		return fmt.Errorf("keyring secret %q: %w", key, err)
	}
	return nil
}

// probe checks once, with a throwaway entry, that the keyring can store and
// return a value.
func (k *keyringSecrets) probe(ctx context.Context) error {
	return k.do(ctx, func() error {
		b := make([]byte, 8)
		rand.Read(b)
		want := hex.EncodeToString(b)
		if err := k.api.Set(k.service, probeKey, want); err != nil {
			return classify(err)
		}
		got, err := k.api.Get(k.service, probeKey)
		if err != nil {
			return classify(err)
		}
		if err := k.api.Delete(k.service, probeKey); err != nil {
			return classify(err)
		}
		if got != want {
			return errors.New("the keyring returned a different value than was stored")
		}
		return nil
	})
}

// do runs op on its own goroutine and gives up when ctx ends or k.timeout
// passes. The goroutine itself ends only when go-keyring returns.
func (k *keyringSecrets) do(ctx context.Context, op func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	select {
	case k.busy <- struct{}{}:
	case <-ctx.Done():
		return k.ended(ctx, "is still busy with an earlier call that has not returned")
	}
	done := make(chan error, 1)
	go func() {
		defer func() { <-k.busy }()
		done <- op()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return k.ended(ctx, "did not answer")
	}
}

func (k *keyringSecrets) ended(ctx context.Context, what string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("the system keyring %s within %s: %w", what, k.timeout, ErrTimeout)
	}
	return ctx.Err()
}

func chunkCount(enc string) int {
	if len(valuePrefix)+len(enc) <= chunkSize {
		return 1
	}
	return (len(enc) + chunkSize - 1) / chunkSize
}

func chunkKey(key string, i int) string { return key + "#" + strconv.Itoa(i) }

func checksum(enc string) string {
	sum := sha256.Sum256([]byte(enc))
	return hex.EncodeToString(sum[:8])
}

// header parses "chunks:N:SUM".
func header(s string) (n int, sum string, ok bool) {
	rest, ok := strings.CutPrefix(s, headerPrefix)
	if !ok {
		return 0, "", false
	}
	ns, sum, ok := strings.Cut(rest, ":")
	n, err := strconv.Atoi(ns)
	if !ok || err != nil || n < 2 || n > maxChunks || len(sum) != 16 {
		return 0, "", false
	}
	return n, sum, true
}

// get reads key, reassembling chunks, and fails with ErrCorrupt rather than
// return a mix of two writes.
func (k *keyringSecrets) get(key string) ([]byte, error) {
	s, err := k.api.Get(k.service, key)
	if err != nil {
		return nil, classify(err)
	}
	var enc string
	switch {
	case strings.HasPrefix(s, valuePrefix):
		enc = s[len(valuePrefix):]
	case strings.HasPrefix(s, headerPrefix):
		n, sum, ok := header(s)
		if !ok {
			return nil, fmt.Errorf("bad chunk header: %w", ErrCorrupt)
		}
		var b strings.Builder
		for i := 1; i <= n; i++ {
			part, err := k.api.Get(k.service, chunkKey(key, i))
			if errors.Is(err, keyring.ErrNotFound) {
				return nil, fmt.Errorf("chunk %d of %d is missing: %w", i, n, ErrCorrupt)
			}
			if err != nil {
				return nil, classify(err)
			}
			b.WriteString(part)
		}
		enc = b.String()
		if checksum(enc) != sum {
			return nil, fmt.Errorf("chunks do not match their header (an interrupted write?): %w", ErrCorrupt)
		}
	default:
		return nil, fmt.Errorf("entry was not written by latch: %w", ErrCorrupt)
	}
	v, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("bad encoding: %w", ErrCorrupt)
	}
	return v, nil
}

// oldChunks returns how many chunks the entry under key has now (0 if it is
// absent, whole, or unreadable as chunks).
func (k *keyringSecrets) oldChunks(key string) (int, error) {
	s, err := k.api.Get(k.service, key)
	if errors.Is(err, keyring.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, classify(err)
	}
	n, _, _ := header(s)
	return n, nil
}

// set writes the chunks first and the header last, then drops chunks the
// previous value had beyond the new count. An interrupted write leaves a
// header whose checksum does not match, which get reports as ErrCorrupt.
func (k *keyringSecrets) set(key, enc string) error {
	old, err := k.oldChunks(key)
	if err != nil {
		return err
	}
	n := chunkCount(enc)
	if n == 1 {
		if err := k.api.Set(k.service, key, valuePrefix+enc); err != nil {
			return classify(err)
		}
	} else {
		for i := 1; i <= n; i++ {
			part := enc[(i-1)*chunkSize : min(i*chunkSize, len(enc))]
			if err := k.api.Set(k.service, chunkKey(key, i), part); err != nil {
				return classify(err)
			}
		}
		h := headerPrefix + strconv.Itoa(n) + ":" + checksum(enc)
		if err := k.api.Set(k.service, key, h); err != nil {
			return classify(err)
		}
	}
	if n == 1 {
		n = 0 // a whole value has no chunks
	}
	return k.dropChunks(key, n+1, old)
}

// del removes the header first, so that an interrupted delete leaves only
// unreachable chunks, never a header pointing at missing ones.
func (k *keyringSecrets) del(key string) error {
	old, err := k.oldChunks(key)
	if err != nil {
		return err
	}
	if err := k.api.Delete(k.service, key); err != nil && !errors.Is(err, keyring.ErrNotFound) {
		return classify(err)
	}
	return k.dropChunks(key, 1, old)
}

func (k *keyringSecrets) dropChunks(key string, from, to int) error {
	for i := from; i <= to; i++ {
		if err := k.api.Delete(k.service, chunkKey(key, i)); err != nil && !errors.Is(err, keyring.ErrNotFound) {
			return classify(err)
		}
	}
	return nil
}

// classify maps go-keyring and D-Bus errors onto the package's sentinels,
// keeping the original error in the chain for the details.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var kind error
	msg := strings.ToLower(err.Error())
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(msg, s) {
				return true
			}
		}
		return false
	}
	switch {
	case errors.Is(err, keyring.ErrNotFound):
		kind = ErrNotFound
	case errors.Is(err, keyring.ErrSetDataTooBig):
		kind = ErrTooBig
	case errors.Is(err, context.DeadlineExceeded), has("noreply", "did not receive a reply", "timed out", "timeout"):
		kind = ErrTimeout
	case errors.Is(err, keyring.ErrUnsupportedPlatform),
		has("org.freedesktop.secrets was not provided", "serviceunknown", "session bus",
			"dbus_session_bus_address", "dbus-launch", "autolaunch", "x11", "dial unix",
			"connection refused", "no such file or directory", "connection reset", "broken pipe",
			"unknownmethod", "no such interface", "no such object", "object does not exist"):
		kind = ErrNoKeyring
	case has("locked", "unlock", "dismissed", "prompt"):
		kind = ErrKeyringLocked
	default:
		return err
	}
	return fmt.Errorf("%w (%w)", kind, err)
}
