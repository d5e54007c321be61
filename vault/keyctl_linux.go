//go:build linux

package vault

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"time"
	"unicode"

	"golang.org/x/sys/unix"
)

// maxKernelValue is the largest payload the kernel's "user" key type takes.
const maxKernelValue = 32767

// entryPerm is the permission mask of every entry. A possessor (a latch
// process that linked the keyring into its own, see attach) may do anything
// but change the owner; the owning uid without possession may see that the
// entry exists and nothing else; group and others get nothing. It is also
// the kernel's default for a new "user" key, which is why Put's window
// between add_key and KEYCTL_SETPERM discloses nothing (see Put).
const entryPerm = keyPosView | keyPosRead | keyPosWrite | keyPosSearch | keyPosLink | keyPosSetattr | keyUsrView

// Permission bits of linux/keyctl.h, which x/sys/unix does not export.
const (
	keyPosView    = 0x01000000
	keyPosRead    = 0x02000000
	keyPosWrite   = 0x04000000
	keyPosSearch  = 0x08000000
	keyPosLink    = 0x10000000
	keyPosSetattr = 0x20000000
	keyUsrView    = 0x00010000
)

// kernelCache keeps entries as "user" keys in the uid's persistent keyring,
// which outlives the process (and the login session, until it has gone
// unused for /proc/sys/kernel/keys/persistent_keyring_expiry seconds), or in
// the user keyring on kernels built without persistent keyrings.
type kernelCache struct {
	prefix     string // "latch:" + scope + ":"
	persistent bool
	uid        int
}

// NewKernelCache returns the Cache kept in the kernel key retention service
// for the latch home whose CacheScope is scope, or an error wrapping
// ErrNoCache when the kernel refuses keyctl here.
func NewKernelCache(scope string) (Cache, error) {
	if scope == "" || strings.ContainsAny(scope, ":;") {
		// A ':' would let one scope's prefix match another's entries in Clear.
		return nil, fmt.Errorf("kernel keyring: invalid cache scope %q", scope)
	}
	c, err := openKernelCache(scope, true)
	if errors.Is(err, unix.EOPNOTSUPP) {
		c, err = openKernelCache(scope, false)
	}
	if err != nil {
		return nil, keyctlRefused(err)
	}
	return c, nil
}

// openKernelCache probes the keyring once, so that a kernel or a seccomp
// profile that refuses keyctl is found here rather than on first use.
func openKernelCache(scope string, persistent bool) (*kernelCache, error) {
	c := &kernelCache{prefix: "latch:" + scope + ":", persistent: persistent, uid: os.Getuid()}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if _, err := c.attach(); err != nil {
		return nil, err
	}
	return c, nil
}

// keyctlRefused wraps ErrNoCache around the errors by which a kernel says
// keyctl is not for this process: EPERM from Docker's default seccomp
// profile, ENOSYS from a kernel without CONFIG_KEYS, EACCES from an LSM.
func keyctlRefused(err error) error {
	var errno unix.Errno
	if errors.As(err, &errno) && (errno == unix.EPERM || errno == unix.ENOSYS || errno == unix.EACCES) {
		return fmt.Errorf("kernel keyring: keyctl refused with %s (%w: a container's seccomp profile, or a kernel without keys): %w",
			unix.ErrnoName(errno), errno, ErrNoCache)
	}
	return fmt.Errorf("kernel keyring: %w", err)
}

// attach makes the calling OS thread possess the keyring and returns the id
// to use for it. Possession is what the entries' permissions grant, and the
// kernel decides it per thread: it searches the caller's thread, process and
// session keyrings. A Go process already has several threads when it first
// asks for a process keyring, and the kernel installs that keyring in the
// calling thread's credentials only, so a link made on one thread is not
// seen from the others (a search from them fails with EACCES). Every
// operation therefore runs on a locked thread and links first: one cheap
// syscall, which also resets the persistent keyring's expiry and picks up a
// new persistent keyring if the old one expired under a long-lived process.
func (c *kernelCache) attach() (int, error) {
	if c.persistent {
		return unix.KeyctlInt(unix.KEYCTL_GET_PERSISTENT, -1, unix.KEY_SPEC_PROCESS_KEYRING, 0, 0)
	}
	// The special id is possessed by definition; the link makes the keys
	// found in it possessed too when they are later named by serial number.
	_, err := unix.KeyctlInt(unix.KEYCTL_LINK, unix.KEY_SPEC_USER_KEYRING, unix.KEY_SPEC_PROCESS_KEYRING, 0, 0)
	return unix.KEY_SPEC_USER_KEYRING, err
}

// do runs f with the keyring on a locked thread that possesses it.
func (c *kernelCache) do(ctx context.Context, f func(ring int) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ring, err := c.attach()
	if err != nil {
		return fmt.Errorf("open the keyring: %w", err)
	}
	return f(ring)
}

// description names the key holding name in this scope.
func (c *kernelCache) description(name string) (string, error) {
	if name == "" || len(name) > maxKeyLen {
		return "", fmt.Errorf("invalid cache entry name %.20q: empty or longer than %d bytes", name, maxKeyLen)
	}
	for _, r := range name {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return "", fmt.Errorf("invalid cache entry name %q: control or invalid character", name)
		}
	}
	return c.prefix + name, nil
}

func (c *kernelCache) Get(ctx context.Context, name string) ([]byte, error) {
	desc, err := c.description(name)
	if err != nil {
		return nil, err
	}
	var value []byte
	err = c.do(ctx, func(ring int) error {
		id, err := unix.KeyctlSearch(ring, "user", desc, 0)
		if err != nil {
			return gone(err)
		}
		value, err = readKey(id, 4096)
		return gone(err)
	})
	if err != nil {
		return nil, fmt.Errorf("kernel keyring: get %q: %w", name, err)
	}
	return value, nil
}

func (c *kernelCache) Put(ctx context.Context, name string, value []byte, ttl time.Duration) error {
	desc, err := c.description(name)
	if err != nil {
		return err
	}
	secs, err := timeoutSeconds(ttl)
	if err != nil {
		return fmt.Errorf("kernel keyring: put %q: %w", name, err)
	}
	switch {
	case len(value) == 0:
		return fmt.Errorf("kernel keyring: put %q: empty value (a user key cannot be empty)", name)
	case len(value) > maxKernelValue:
		return fmt.Errorf("kernel keyring: put %q: %d bytes, more than %d: %w", name, len(value), maxKernelValue, ErrTooBig)
	}
	err = c.do(ctx, func(ring int) error {
		// A new key gets entryPerm from the kernel already. A replaced key
		// keeps the permissions it had, which Put set, unless a process of
		// this uid changed them — and such a process can link the
		// persistent keyring itself and read the entry anyway, so the
		// window before KEYCTL_SETPERM shows the value to no one new.
		// Replacing also clears the timeout until KEYCTL_SET_TIMEOUT.
		id, err := unix.AddKey("user", desc, value, ring)
		if errors.Is(err, unix.EDQUOT) {
			return fmt.Errorf("the kernel's key quota of uid %d is full (see /proc/key-users): %w", c.uid, ErrTooBig)
		}
		if err != nil {
			return fmt.Errorf("add key: %w", err)
		}
		if err := unix.KeyctlSetperm(id, entryPerm); err != nil {
			discard(id)
			return fmt.Errorf("set permissions: %w", err)
		}
		if _, err := unix.KeyctlInt(unix.KEYCTL_SET_TIMEOUT, id, secs, 0, 0); err != nil {
			discard(id)
			return fmt.Errorf("set timeout: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("kernel keyring: put %q: %w", name, err)
	}
	return nil
}

func (c *kernelCache) Touch(ctx context.Context, name string, ttl time.Duration) error {
	desc, err := c.description(name)
	if err != nil {
		return err
	}
	secs, err := timeoutSeconds(ttl)
	if err != nil {
		return fmt.Errorf("kernel keyring: touch %q: %w", name, err)
	}
	err = c.do(ctx, func(ring int) error {
		id, err := unix.KeyctlSearch(ring, "user", desc, 0)
		if err != nil {
			return gone(err)
		}
		_, err = unix.KeyctlInt(unix.KEYCTL_SET_TIMEOUT, id, secs, 0, 0)
		return gone(err)
	})
	if err != nil {
		return fmt.Errorf("kernel keyring: touch %q: %w", name, err)
	}
	return nil
}

func (c *kernelCache) Delete(ctx context.Context, name string) error {
	desc, err := c.description(name)
	if err != nil {
		return err
	}
	err = c.do(ctx, func(ring int) error {
		id, err := unix.KeyctlSearch(ring, "user", desc, 0)
		if err == nil {
			err = invalidate(id)
		}
		if errors.Is(gone(err), ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("kernel keyring: delete %q: %w", name, err)
	}
	return nil
}

func (c *kernelCache) Clear(ctx context.Context, prefix string) error {
	err := c.do(ctx, func(ring int) error {
		ids, err := keyringIDs(ring)
		if err != nil {
			return fmt.Errorf("list the keyring: %w", err)
		}
		var errs []error
		for _, id := range ids {
			// An entry of ours is always describable by its possessor, so
			// a key that is not is either gone already or not ours.
			d, err := unix.KeyctlString(unix.KEYCTL_DESCRIBE, id)
			if err != nil {
				continue
			}
			typ, desc, ok := parseDescription(d)
			if !ok || typ != "user" || !strings.HasPrefix(desc, c.prefix+prefix) {
				continue
			}
			if err := invalidate(id); err != nil && !errors.Is(gone(err), ErrNotFound) {
				errs = append(errs, fmt.Errorf("invalidate %q: %w", strings.TrimPrefix(desc, c.prefix), err))
			}
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return fmt.Errorf("kernel keyring: clear: %w", err)
	}
	return nil
}

func (c *kernelCache) Where() string {
	if c.persistent {
		return fmt.Sprintf("kernel keyring (persistent keyring of uid %d)", c.uid)
	}
	return fmt.Sprintf("kernel keyring (user keyring of uid %d)", c.uid)
}

// timeoutSeconds rounds ttl up to keyctl's whole seconds: rounding down
// could turn a short ttl into 0, which means "never expires".
func timeoutSeconds(ttl time.Duration) (int, error) {
	if ttl <= 0 {
		return 0, fmt.Errorf("ttl %v is not positive", ttl)
	}
	secs := ttl / time.Second
	if ttl%time.Second != 0 {
		secs++
	}
	return int(min(secs, math.MaxInt32)), nil
}

// gone wraps ErrNotFound around the errors of a key that no longer is:
// never added or invalidated (ENOKEY), timed out but not yet collected
// (EKEYEXPIRED), revoked (EKEYREVOKED).
func gone(err error) error {
	if errors.Is(err, unix.ENOKEY) || errors.Is(err, unix.EKEYEXPIRED) || errors.Is(err, unix.EKEYREVOKED) {
		return fmt.Errorf("%w (%w)", ErrNotFound, err)
	}
	return err
}

// readKey reads a key's payload (a keyring's list of serials), starting
// with a buffer of size bytes and growing it to the length the kernel
// reports; the payload may be replaced between two reads, hence the loop.
func readKey(id, size int) ([]byte, error) {
	buf := make([]byte, size)
	for range 4 {
		n, err := unix.KeyctlBuffer(unix.KEYCTL_READ, id, buf, 0)
		if err != nil {
			return nil, err
		}
		if n <= len(buf) {
			return buf[:n:n], nil
		}
		buf = make([]byte, n)
	}
	return nil, errors.New("read: the key kept growing while it was read")
}

// keyringIDs lists the serial numbers of the keys linked in ring.
func keyringIDs(ring int) ([]int, error) {
	b, err := readKey(ring, 4*64)
	if err != nil {
		return nil, err
	}
	ids := make([]int, 0, len(b)/4)
	for i := 0; i+4 <= len(b); i += 4 {
		ids = append(ids, int(int32(binary.NativeEndian.Uint32(b[i:]))))
	}
	return ids, nil
}

// parseDescription splits KEYCTL_DESCRIBE's "type;uid;gid;perm;description";
// the description itself may contain ';'.
func parseDescription(d string) (typ, desc string, ok bool) {
	f := strings.SplitN(d, ";", 5)
	if len(f) != 5 {
		return "", "", false
	}
	return f[0], f[4], true
}

func invalidate(id int) error {
	_, err := unix.KeyctlInt(unix.KEYCTL_INVALIDATE, id, 0, 0, 0)
	return err
}

// discard drops a key whose permissions or timeout could not be set, so
// that no entry stays behind without them; the caller reports the cause.
func discard(id int) { _ = invalidate(id) }
