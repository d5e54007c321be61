package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
)

// Environment variables that hand the file vault its identity directly, for
// CI secret stores and other places where nobody types a passphrase.
const (
	IdentityEnv     = "LATCH_VAULT_IDENTITY"
	IdentityFileEnv = "LATCH_VAULT_IDENTITY_FILE"
)

// Where an unlocked identity came from.
const (
	sourceEnv        = IdentityEnv
	sourceEnvFile    = IdentityFileEnv
	sourceCache      = "the session cache"
	sourcePassphrase = "the passphrase"
)

// maxKeyFile bounds the key file and an identity file: each holds one key.
const maxKeyFile = 64 << 10

// rearmAfter is how stale an identity's last use in the cache may get before
// a use writes the cache again to re-arm its idle timer; below it a use only
// reads, so a burst of latch token costs no writes.
const rearmAfter = time.Minute

// LockState describes a file vault without unlocking it.
type LockState struct {
	// Format is 1 or 2, or 0 when there is no vault file yet.
	Format int `json:"format"`
	// State is "unlocked" when a latch started now would find the identity
	// without asking (environment or session cache), else "locked".
	State string `json:"state"`
	// From says where the identity comes from when unlocked.
	From string `json:"from,omitempty"`
	// Cache says where the session cache lives ("" when there is none).
	Cache string `json:"cache,omitempty"`
	// Until is when an unused unlocked vault locks itself (zero: never, or
	// locked).
	Until time.Time `json:"until,omitzero"`
	// Idle is the idle timeout the vault was unlocked with.
	Idle time.Duration `json:"idle_seconds,omitempty"`
}

// Lockable is the file vault's lock, as latch vault unlock/lock/status/passwd
// and the interface's unlock screen use it.
type Lockable interface {
	Secrets
	// Unlock unwraps the vault's identity with passphrase (creating the
	// vault when there is none, migrating a format-1 vault) and keeps it in
	// the session cache for idle of non-use (0: DefaultIdle).
	Unlock(ctx context.Context, passphrase []byte, idle time.Duration) error
	// Lock forgets the identity in this process and in the session cache.
	Lock(ctx context.Context) error
	// LockState reports the vault's state without unlocking it or
	// re-arming its idle timer.
	LockState(ctx context.Context) LockState
	// ChangePassphrase rewraps the identity with a new passphrase; the
	// secrets themselves are not rewritten.
	ChangePassphrase(ctx context.Context, old, new []byte) error
	// Exists reports whether there is a vault file or key file yet.
	Exists() bool
	// Ready makes sure the vault can be read and written now: it unlocks
	// it (asking for the passphrase if it must) and, for a new vault,
	// makes its key. Callers use it before an action that would be lost if
	// the vault then refused it, such as creating a session on a server.
	Ready(ctx context.Context) error
}

var _ Lockable = (*fileSecrets)(nil)

// identity returns the vault's identity: remembered in this process, else
// from the environment, else from the session cache, else unwrapped from the
// key file with the passphrase (then put in the cache). With create, a
// missing key file means a new vault: a new identity is made and wrapped.
func (s *fileSecrets) identity(ctx context.Context, create bool) (*age.X25519Identity, error) {
	s.mu.Lock()
	id := s.id
	s.mu.Unlock()
	if id != nil {
		return id, nil
	}
	id, src, err := envIdentity()
	if err != nil {
		return nil, err
	}
	if id != nil {
		s.setIdentity(ctx, id, src, false)
		return id, nil
	}
	if id := s.cachedIdentity(ctx, true); id != nil {
		return id, nil
	}
	// One latch at a time unwraps the key, so that many started together on
	// a locked vault derive it once (the others find it in the cache), not
	// each at a second of CPU and 256 MB.
	unlock, err := lockAt(ctx, filepath.Join(s.dir, keyFile+".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	if id := s.cachedIdentity(ctx, true); id != nil {
		return id, nil
	}
	if !s.keyExists() {
		if !create {
			if _, err := os.Stat(s.path); err == nil {
				return nil, fmt.Errorf("file vault %s: its key file %s is missing (or the vault was made with %s): "+
					"set %s or restore the key file: %w", s.path, filepath.Join(s.dir, keyFile), IdentityEnv, IdentityEnv, ErrLocked)
			}
		}
		pass, err := s.askPassphrase()
		if err != nil {
			return nil, err
		}
		id, err := s.newKey(ctx, pass)
		if err != nil {
			return nil, err
		}
		s.setIdentity(ctx, id, sourcePassphrase, true)
		return id, nil
	}
	pass, err := s.askPassphrase()
	if err != nil {
		return nil, err
	}
	id, err = unwrapKeyFile(s.dir, pass)
	if err != nil {
		s.setPass(nil)
		return nil, err
	}
	s.setPass(pass)
	s.setIdentity(ctx, id, sourcePassphrase, true)
	return id, nil
}

// cachedIdentity returns the identity kept in the session cache, or nil.
// With use, it re-arms the entry's idle timer when it is due.
func (s *fileSecrets) cachedIdentity(ctx context.Context, use bool) *age.X25519Identity {
	if s.cache == nil {
		return nil
	}
	raw, err := s.cache.Get(ctx, CacheIdentity)
	if err != nil {
		return nil
	}
	e, ok := parseCachedIdentity(raw)
	if !ok {
		return nil
	}
	if use && time.Since(e.used) > rearmAfter {
		e.used = time.Now()
		s.cache.Put(ctx, CacheIdentity, e.encode(), e.idle) // best effort: the entry still holds
	}
	s.mu.Lock()
	s.id, s.from = e.id, sourceCache
	s.mu.Unlock()
	return e.id
}

// setIdentity remembers id for this process and, with toCache, in the
// session cache (best effort: without a cache each process unlocks itself).
func (s *fileSecrets) setIdentity(ctx context.Context, id *age.X25519Identity, from string, toCache bool) error {
	s.mu.Lock()
	s.id, s.from = id, from
	s.mu.Unlock()
	if !toCache || s.cache == nil {
		return nil
	}
	idle := s.idle
	if idle <= 0 {
		idle = DefaultIdle
	}
	e := cachedIdentity{id: id, idle: idle, used: time.Now()}
	return s.cache.Put(ctx, CacheIdentity, e.encode(), idle)
}

func (s *fileSecrets) dropIdentity(ctx context.Context) {
	s.mu.Lock()
	s.id, s.from = nil, ""
	s.mu.Unlock()
	if s.cache != nil {
		s.cache.Delete(ctx, CacheIdentity)
	}
}

func (s *fileSecrets) source() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.from
}

// askPassphrase returns the passphrase that already worked in this process,
// else asks the caller's function.
func (s *fileSecrets) askPassphrase() ([]byte, error) {
	s.mu.Lock()
	p := s.pass
	s.mu.Unlock()
	if p != nil {
		return p, nil
	}
	p, err := s.passphrase()
	if errors.Is(err, ErrLocked) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("vault passphrase: %w", err)
	}
	if len(p) == 0 {
		return nil, errors.New("vault passphrase is empty: set LATCH_VAULT_PASSPHRASE or type one at the prompt")
	}
	return p, nil
}

func (s *fileSecrets) setPass(p []byte) {
	s.mu.Lock()
	s.pass = p
	s.mu.Unlock()
}

func (s *fileSecrets) keyExists() bool {
	_, err := os.Stat(filepath.Join(s.dir, keyFile))
	return err == nil
}

// newKey makes the vault's identity and saves it wrapped with pass. Callers
// hold the key file's lock, or the vault's during a migration.
func (s *fileSecrets) newKey(ctx context.Context, pass []byte) (*age.X25519Identity, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, fmt.Errorf("file vault: %w", err)
	}
	if err := writeKeyFile(s.dir, id, pass, s.wrap); err != nil {
		return nil, err
	}
	return id, nil
}

// writeKeyFile saves id encrypted with pass (age scrypt), atomically.
func writeKeyFile(dir string, id *age.X25519Identity, pass []byte, wrap func(io.Writer) io.Writer) error {
	r, err := age.NewScryptRecipient(string(pass))
	if err != nil {
		return fmt.Errorf("file vault: %w", err)
	}
	wf, err := workFactor()
	if err != nil {
		return fmt.Errorf("file vault: %w", err)
	}
	r.SetWorkFactor(wf)
	path := filepath.Join(dir, keyFile)
	removeTemps(path)
	err = writeFileAtomic(path, func(w io.Writer) error {
		enc, err := age.Encrypt(w, r)
		if err != nil {
			return err
		}
		if _, err := io.WriteString(enc, id.String()+"\n"); err != nil {
			return err
		}
		return enc.Close()
	}, wrap)
	if err != nil {
		return fmt.Errorf("file vault key: %w (the previous key file is intact)", err)
	}
	return nil
}

// unwrapKeyFile decrypts the key file in dir with pass.
func unwrapKeyFile(dir string, pass []byte) (*age.X25519Identity, error) {
	path := filepath.Join(dir, keyFile)
	data, err := readBounded(path)
	if err != nil {
		return nil, fmt.Errorf("file vault key: %w", err)
	}
	sid, err := age.NewScryptIdentity(string(pass))
	if err != nil {
		return nil, fmt.Errorf("file vault key: %w", err)
	}
	dec, err := age.Decrypt(bytes.NewReader(data), sid)
	var noMatch *age.NoIdentityMatchError
	if errors.As(err, &noMatch) {
		return nil, fmt.Errorf("file vault %s: %w", path, ErrWrongPassphrase)
	}
	if err != nil {
		return nil, fmt.Errorf("file vault key %s (%v): %w", path, err, ErrCorrupt)
	}
	plain, err := io.ReadAll(io.LimitReader(dec, maxKeyFile))
	if err != nil {
		return nil, fmt.Errorf("file vault key %s (%v): %w", path, err, ErrCorrupt)
	}
	id, err := age.ParseX25519Identity(strings.TrimSpace(string(plain)))
	if err != nil {
		// age's parse errors could quote the key; say nothing of it.
		return nil, fmt.Errorf("file vault key %s holds no age identity: %w", path, ErrCorrupt)
	}
	return id, nil
}

// envIdentity reads LATCH_VAULT_IDENTITY or LATCH_VAULT_IDENTITY_FILE; nil
// when neither is set.
func envIdentity() (*age.X25519Identity, string, error) {
	text, src := os.Getenv(IdentityEnv), sourceEnv
	if text == "" {
		path := os.Getenv(IdentityFileEnv)
		if path == "" {
			return nil, "", nil
		}
		data, err := readBounded(path)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", IdentityFileEnv, err)
		}
		text, src = string(data), sourceEnvFile
	}
	ids, err := age.ParseIdentities(strings.NewReader(text))
	if err == nil {
		for _, id := range ids {
			if x, ok := id.(*age.X25519Identity); ok {
				return x, src, nil
			}
		}
	}
	// Never quote the value: it is a secret key, or close to one.
	return nil, "", fmt.Errorf("%s holds no age X25519 identity (a line AGE-SECRET-KEY-1…, as age-keygen writes)", src)
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxKeyFile)
	}
	return data, nil
}

// Unlock implements Lockable.
func (s *fileSecrets) Unlock(ctx context.Context, passphrase []byte, idle time.Duration) error {
	if len(passphrase) == 0 {
		return errors.New("vault passphrase is empty")
	}
	if idle > 0 {
		s.idle = idle
	}
	s.dropIdentity(ctx)
	s.setPass(passphrase)
	data, _, err := s.readFile(ctx)
	switch {
	case errors.Is(err, ErrNotFound) && !s.keyExists():
		// A new vault: make its key now, so the next write needs nothing.
		if _, err := s.identity(ctx, true); err != nil {
			return err
		}
		if s.cache == nil {
			return ErrNoCache
		}
		return nil
	case err != nil && !errors.Is(err, ErrNotFound):
		return err
	case err == nil && vaultFormat(data) == Format1:
		// Migrating puts the identity in the cache.
		if err := s.update(ctx, func(map[string][]byte) bool { return false }); err != nil {
			return err
		}
		if s.cache == nil {
			return ErrNoCache
		}
		return nil
	}
	unlock, err := lockAt(ctx, filepath.Join(s.dir, keyFile+".lock"))
	if err != nil {
		return err
	}
	defer unlock()
	id, err := unwrapKeyFile(s.dir, passphrase)
	if err != nil {
		s.setPass(nil)
		return err
	}
	if data != nil {
		if _, err := decryptMap(data, id); err != nil {
			return fmt.Errorf("file vault %s does not open with its key file's identity (%v): %w", s.path, err, ErrCorrupt)
		}
	}
	if s.cache == nil {
		s.setIdentity(ctx, id, sourcePassphrase, false)
		return ErrNoCache
	}
	if err := s.setIdentity(ctx, id, sourcePassphrase, true); err != nil {
		return fmt.Errorf("keep the unlocked vault in %s: %w", s.cache.Where(), err)
	}
	return nil
}

// Lock implements Lockable.
func (s *fileSecrets) Lock(ctx context.Context) error {
	s.mu.Lock()
	s.id, s.from, s.pass, s.memo, s.memoStat = nil, "", nil, nil, nil
	s.mu.Unlock()
	if s.cache == nil {
		return nil
	}
	return s.cache.Delete(ctx, CacheIdentity)
}

// LockState implements Lockable. It neither unlocks nor re-arms anything.
func (s *fileSecrets) LockState(ctx context.Context) LockState {
	st := LockState{State: "locked"}
	if s.cache != nil {
		st.Cache = s.cache.Where()
	}
	if data, _, err := s.readFile(ctx); err == nil {
		st.Format = vaultFormat(data)
	}
	if id, src, err := envIdentity(); err == nil && id != nil {
		st.State, st.From = "unlocked", src
		return st
	}
	if s.cache != nil {
		if raw, err := s.cache.Get(ctx, CacheIdentity); err == nil {
			if e, ok := parseCachedIdentity(raw); ok {
				st.State, st.From, st.Idle = "unlocked", sourceCache, e.idle
				st.Until = e.used.Add(e.idle)
			}
		}
	}
	return st
}

// ChangePassphrase implements Lockable.
func (s *fileSecrets) ChangePassphrase(ctx context.Context, old, new []byte) error {
	if len(new) == 0 {
		return errors.New("the new vault passphrase is empty")
	}
	if data, _, err := s.readFile(ctx); err == nil && vaultFormat(data) == Format1 {
		s.setPass(old)
		if err := s.update(ctx, func(map[string][]byte) bool { return false }); err != nil {
			return err
		}
	}
	unlock, err := lockAt(ctx, filepath.Join(s.dir, keyFile+".lock"))
	if err != nil {
		return err
	}
	defer unlock()
	if !s.keyExists() {
		return fmt.Errorf("file vault %s has no passphrase to change: it is new, or was made with %s", s.dir, IdentityEnv)
	}
	id, err := unwrapKeyFile(s.dir, old)
	if err != nil {
		return err
	}
	if err := writeKeyFile(s.dir, id, new, s.wrap); err != nil {
		return err
	}
	s.setPass(new)
	return nil
}

// Ready implements Lockable.
func (s *fileSecrets) Ready(ctx context.Context) error {
	if _, _, err := s.readFile(ctx); errors.Is(err, ErrNotFound) {
		_, err := s.identity(ctx, true)
		return err
	}
	_, err := s.read(ctx)
	return err
}

// Exists implements Lockable.
func (s *fileSecrets) Exists() bool {
	if _, err := os.Stat(s.path); err == nil {
		return true
	}
	return s.keyExists()
}

// cachedIdentity is the session cache's entry for an unlocked vault: the
// identity, the idle timeout it was unlocked with, and its last use.
type cachedIdentity struct {
	id   *age.X25519Identity
	idle time.Duration
	used time.Time
}

func (e cachedIdentity) encode() []byte {
	return fmt.Appendf(nil, "%s\nidle=%d\nused=%d\n", e.id, int64(e.idle/time.Second), e.used.Unix())
}

func parseCachedIdentity(raw []byte) (cachedIdentity, bool) {
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 3 {
		return cachedIdentity{}, false
	}
	id, err := age.ParseX25519Identity(lines[0])
	if err != nil {
		return cachedIdentity{}, false
	}
	idle, err1 := strconv.ParseInt(strings.TrimPrefix(lines[1], "idle="), 10, 64)
	used, err2 := strconv.ParseInt(strings.TrimPrefix(lines[2], "used="), 10, 64)
	if err1 != nil || err2 != nil || idle <= 0 {
		return cachedIdentity{}, false
	}
	return cachedIdentity{id: id, idle: time.Duration(idle) * time.Second, used: time.Unix(used, 0)}, true
}
