package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// argonParams are the argon2id cost parameters, stored in every PHC string so
// that a change of parameters is noticed at login and the hash upgraded.
type argonParams struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// defaultArgon is OWASP's first recommended argon2id configuration
// (m=19 MiB, t=2, p=1).
var defaultArgon = argonParams{Memory: 19 * 1024, Time: 2, Threads: 1}

const (
	argonSaltLen = 16
	argonKeyLen  = 32
)

var b64 = base64.RawStdEncoding

var errBadHash = errors.New("unrecognised password hash")

// hasher hashes and verifies passwords. Hashing is bounded to one argon2id
// computation per CPU at a time: each takes Memory KiB, and an unbounded
// number of concurrent logins would otherwise be a memory exhaustion attack.
type hasher struct {
	params argonParams
	slots  chan struct{}
	dummy  string // a hash of a random password, verified for unknown users

	verifies atomic.Int64 // password verifications done, real or dummy
}

func newHasher(p argonParams) *hasher {
	h := &hasher{params: p, slots: make(chan struct{}, runtime.GOMAXPROCS(0))}
	pw := make([]byte, 32)
	rand.Read(pw)
	h.dummy, _ = h.hashNoWait(string(pw))
	return h
}

func (h *hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *hasher) release() { <-h.slots }

// Hash returns a PHC string: $argon2id$v=19$m=…,t=…,p=…$salt$key.
func (h *hasher) Hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return h.hashNoWait(password)
}

func (h *hasher) hashNoWait(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	p := h.params
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify checks password against an argon2id PHC string or a bcrypt hash
// ($2a$, $2b$, $2y$: a database migrated from the seed's Flask system).
// rehash is true when the password is right but the hash should be replaced
// (bcrypt, or argon2id with other parameters than the current ones).
func (h *hasher) Verify(ctx context.Context, encoded, password string) (ok, rehash bool, err error) {
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	defer h.release()
	h.verifies.Add(1)
	switch {
	case strings.HasPrefix(encoded, "$argon2id$"):
		p, salt, key, err := parseArgon(encoded)
		if err != nil {
			return false, false, err
		}
		got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
		if subtle.ConstantTimeCompare(got, key) != 1 {
			return false, false, nil
		}
		return true, p != h.params, nil
	case isBcrypt(encoded):
		err := bcrypt.CompareHashAndPassword([]byte(encoded), []byte(password))
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, false, nil
		}
		if err != nil {
			return false, false, fmt.Errorf("%w: %v", errBadHash, err)
		}
		return true, true, nil
	}
	return false, false, errBadHash
}

func isBcrypt(encoded string) bool {
	return strings.HasPrefix(encoded, "$2a$") || strings.HasPrefix(encoded, "$2b$") || strings.HasPrefix(encoded, "$2y$")
}

// VerifyDummy spends the same time as Verify on a real account, so that an
// unknown identifier cannot be told from a wrong password by timing.
func (h *hasher) VerifyDummy(ctx context.Context, password string) {
	h.Verify(ctx, h.dummy, password)
}

// Bounds of the argon2id parameters a stored hash may ask for: a hash from
// a database latch did not write (a migration, a restored backup) must not
// make a login allocate terabytes or spin for hours.
const (
	argonMaxMemory  = 4 << 20 // KiB: 4 GiB
	argonMaxTime    = 1 << 10
	argonMinSaltLen = 8 // the argon2 specification's minimum
	argonMaxKeyLen  = 1 << 10
)

// parseArgon reads a PHC string in its one canonical form, the one Hash
// writes: decimal parameters without sign or leading zeros, unpadded
// standard base64 with no stray bits or line breaks. Anything else is
// refused, so one hash has one spelling.
func parseArgon(encoded string) (p argonParams, salt, key []byte, err error) {
	parts := strings.Split(encoded, "$")
	// "", "argon2id", "v=19", "m=…,t=…,p=…", salt, key
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, errBadHash
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return p, nil, nil, errBadHash
	}
	m, okM := phcUint(params[0], "m=", argonMaxMemory)
	t, okT := phcUint(params[1], "t=", argonMaxTime)
	threads, okP := phcUint(params[2], "p=", 255)
	if !okM || !okT || !okP || m < 8*threads {
		return p, nil, nil, errBadHash
	}
	p = argonParams{Memory: uint32(m), Time: uint32(t), Threads: uint8(threads)}
	if salt, err = b64.Strict().DecodeString(parts[4]); err != nil || len(salt) < argonMinSaltLen || b64.EncodeToString(salt) != parts[4] {
		return p, nil, nil, errBadHash
	}
	if key, err = b64.Strict().DecodeString(parts[5]); err != nil || len(key) < 16 || len(key) > argonMaxKeyLen || b64.EncodeToString(key) != parts[5] {
		return p, nil, nil, errBadHash
	}
	return p, salt, key, nil
}

// phcUint reads "name=N": N decimal, 1 ≤ N ≤ limit, no sign, no leading zero.
func phcUint(s, name string, limit uint64) (uint64, bool) {
	digits, ok := strings.CutPrefix(s, name)
	if !ok || digits == "" || digits[0] == '0' || strings.Trim(digits, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	return n, err == nil && n <= limit
}
