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
	"sync"
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

	valuePrefix = "b64:" // a whole value, base64
	// headerPrefix starts "chunks:N:SUM:GEN": the value is in key#GEN.1 …
	// key#GEN.N, whose concatenation has checksum SUM (see set). Entries
	// written before generations existed are "chunks:N:SUM" with key#1 …
	// key#N; they are still read, and replaced by the next set.
	headerPrefix = "chunks:"
	// genLen is the length of a generation: random hex digits.
	genLen = 8
	// probePrefix starts each probe's own entry name. It contains '#',
	// which validateKey refuses, so no caller's key can collide with it.
	probePrefix = "latch-probe#"
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

	// seen is the entry this process last read or wrote under each key, so
	// that a set right after a get (a token rotation) need not read the
	// entry again to learn which chunks it replaces: one keyring round
	// trip less. If another process changed the entry since, the worst a
	// stale entry here does is orphan that process's chunks; the new value
	// is written whole either way.
	mu   sync.Mutex
	seen map[string]string
}

func newKeyringSecrets(api keyringAPI) *keyringSecrets {
	return &keyringSecrets{api: api, service: keyringService, timeout: keyringTimeout, busy: make(chan struct{}, 1),
		seen: make(map[string]string)}
}

// remember notes entry as key's current entry; only a chunk header is kept,
// and a whole value as its prefix alone: the secret itself is not copied.
func (k *keyringSecrets) remember(key, entry string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if strings.HasPrefix(entry, valuePrefix) {
		entry = valuePrefix
	}
	if entry == "" {
		delete(k.seen, key)
		return
	}
	k.seen[key] = entry
}

func (k *keyringSecrets) lastSeen(key string) (string, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s, ok := k.seen[key]
	return s, ok
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
// return a value. Each probe has an entry of its own: latch processes
// starting together would otherwise read and delete each other's.
func (k *keyringSecrets) probe(ctx context.Context) error {
	b := make([]byte, 16)
	rand.Read(b)
	name, want := probePrefix+hex.EncodeToString(b[:8]), hex.EncodeToString(b[8:])
	return k.do(ctx, func() error {
		if err := k.api.Set(k.service, name, want); err != nil {
			// Nothing was stored; a delete would only meet the same
			// failure (or a prompt, on a locked keyring).
			return classify(err)
		}
		got, err := k.api.Get(k.service, name)
		// Delete even when the read failed, so that a failed probe does
		// not leave its entry behind.
		derr := k.api.Delete(k.service, name)
		switch {
		case err != nil:
			return classify(err)
		case derr != nil:
			return classify(derr)
		case got != want:
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

func checksum(enc string) string {
	sum := sha256.Sum256([]byte(enc))
	return hex.EncodeToString(sum[:8])
}

// chunks describes a chunked value: n entries whose concatenation has
// checksum sum, in generation gen ("" for the legacy, generation-less names).
type chunks struct {
	n   int
	sum string
	gen string
}

// key names chunk i (1-based) of the value under key: "key#GEN.i", or
// "key#i" for the legacy format.
func (c chunks) key(key string, i int) string {
	if c.gen == "" {
		return key + "#" + strconv.Itoa(i)
	}
	return key + "#" + c.gen + "." + strconv.Itoa(i)
}

func (c chunks) header() string {
	return headerPrefix + strconv.Itoa(c.n) + ":" + c.sum + ":" + c.gen
}

// parseHeader parses "chunks:N:SUM:GEN", and the legacy "chunks:N:SUM".
func parseHeader(s string) (chunks, bool) {
	rest, ok := strings.CutPrefix(s, headerPrefix)
	if !ok {
		return chunks{}, false
	}
	f := strings.Split(rest, ":")
	if len(f) != 2 && len(f) != 3 {
		return chunks{}, false
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 2 || n > maxChunks || len(f[1]) != 16 {
		return chunks{}, false
	}
	c := chunks{n: n, sum: f[1]}
	if len(f) == 3 {
		if !isGen(f[2]) {
			return chunks{}, false
		}
		c.gen = f[2]
	}
	return c, true
}

func isGen(s string) bool {
	if len(s) != genLen {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return true
}

// newGen returns a random generation other than old.
func newGen(old string) string {
	b := make([]byte, genLen/2)
	for {
		rand.Read(b)
		if g := hex.EncodeToString(b); g != old {
			return g
		}
	}
}

// getAttempts bounds how often get starts over when a set in another process
// replaced the value while get was reading its chunks.
const getAttempts = 3

// get reads key, reassembling chunks, and fails with ErrCorrupt rather than
// return a mix of two writes.
func (k *keyringSecrets) get(key string) ([]byte, error) {
	var prev string
	var lastErr error
	for attempt := range getAttempts {
		s, err := k.api.Get(k.service, key)
		if err != nil {
			return nil, classify(err)
		}
		if attempt > 0 && s == prev {
			// The header did not change: the chunks really are bad
			// (or the keyring failed), not replaced under us.
			return nil, lastErr
		}
		v, chunkErr, err := k.decode(key, s)
		if !chunkErr {
			if err == nil {
				k.remember(key, s)
			}
			return v, err
		}
		// A set in another process may have switched the header and
		// deleted the chunks this one names after it was read; then the
		// header now differs and reading again gives the new value.
		prev, lastErr = s, err
	}
	return nil, lastErr
}

// decode turns the entry s stored under key into the value, reading chunks
// if s is a header. chunkErr reports an error reading or checking the chunks,
// which a concurrent set can explain.
func (k *keyringSecrets) decode(key, s string) (v []byte, chunkErr bool, err error) {
	var enc string
	switch {
	case strings.HasPrefix(s, valuePrefix):
		enc = s[len(valuePrefix):]
	case strings.HasPrefix(s, headerPrefix):
		c, ok := parseHeader(s)
		if !ok {
			return nil, false, fmt.Errorf("bad chunk header: %w", ErrCorrupt)
		}
		var b strings.Builder
		for i := 1; i <= c.n; i++ {
			part, err := k.api.Get(k.service, c.key(key, i))
			if errors.Is(err, keyring.ErrNotFound) {
				return nil, true, fmt.Errorf("chunk %d of %d is missing: %w", i, c.n, ErrCorrupt)
			}
			if err != nil {
				return nil, true, classify(err)
			}
			b.WriteString(part)
		}
		enc = b.String()
		if checksum(enc) != c.sum {
			return nil, true, fmt.Errorf("chunks do not match their header: %w", ErrCorrupt)
		}
	default:
		return nil, false, fmt.Errorf("entry was not written by latch: %w", ErrCorrupt)
	}
	v, err = base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, false, fmt.Errorf("bad encoding: %w", ErrCorrupt)
	}
	return v, false, nil
}

// current returns the chunks the entry under key references now; ok is
// false if it is absent, whole, or not a chunk header.
func (k *keyringSecrets) current(key string) (c chunks, ok bool, err error) {
	if s, seen := k.lastSeen(key); seen {
		c, ok = parseHeader(s)
		return c, ok, nil
	}
	s, err := k.api.Get(k.service, key)
	if errors.Is(err, keyring.ErrNotFound) {
		return chunks{}, false, nil
	}
	if err != nil {
		return chunks{}, false, classify(err)
	}
	c, ok = parseHeader(s)
	return c, ok, nil
}

// set replaces the value under key so that a process killed at any point
// leaves either the old value or the new one readable. A reader sees:
//
//  1. while the new generation's chunks ("key#GEN.i", GEN random) are
//     written: the old value, since the entry at key (whole value or header)
//     and the old generation's chunks are untouched, and nothing references
//     the new generation yet;
//  2. after the one Set that replaces the entry at key (the atomic step: a
//     keyring replaces one entry whole): the new value, all of whose chunks
//     exist already;
//  3. while the old generation's chunks (or legacy "key#i" chunks) are
//     deleted: still the new value; those chunks are unreferenced. A reader
//     in another process that read the old header just before step 2 may
//     find them gone; get then sees the header changed and reads again.
//
// A kill in step 1 or 3 orphans one generation's chunks. Nothing references
// them and keyringAPI cannot list entries to find them later, so they stay
// (at most maxChunks small entries per kill) until the user clears latch's
// entries from the keyring. A set that returns nil leaves none behind.
func (k *keyringSecrets) set(key, enc string) error {
	old, chunked, err := k.current(key)
	if err != nil {
		return err
	}
	k.remember(key, "") // unknown until this set completes
	if n := chunkCount(enc); n == 1 {
		if err := k.api.Set(k.service, key, valuePrefix+enc); err != nil {
			return classify(err)
		}
		k.remember(key, valuePrefix+enc)
	} else {
		c := chunks{n: n, sum: checksum(enc), gen: newGen(old.gen)}
		for i := 1; i <= n; i++ {
			part := enc[(i-1)*chunkSize : min(i*chunkSize, len(enc))]
			if err := k.api.Set(k.service, c.key(key, i), part); err != nil {
				return classify(err)
			}
		}
		if err := k.api.Set(k.service, key, c.header()); err != nil {
			return classify(err)
		}
		k.remember(key, c.header())
	}
	if !chunked {
		return nil
	}
	// The new value is stored: a failure to remove the old chunks only
	// orphans them, and reporting it would make a saved rotation look
	// unsaved to the token manager.
	k.dropChunks(key, old)
	return nil
}

// del removes the header first, so that an interrupted delete leaves only
// unreachable chunks, never a header pointing at missing ones.
func (k *keyringSecrets) del(key string) error {
	old, chunked, err := k.current(key)
	if err != nil {
		return err
	}
	k.remember(key, "")
	if err := k.api.Delete(k.service, key); err != nil && !errors.Is(err, keyring.ErrNotFound) {
		return classify(err)
	}
	if !chunked {
		return nil
	}
	return k.dropChunks(key, old)
}

func (k *keyringSecrets) dropChunks(key string, c chunks) error {
	for i := 1; i <= c.n; i++ {
		if err := k.api.Delete(k.service, c.key(key, i)); err != nil && !errors.Is(err, keyring.ErrNotFound) {
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
