package vault

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"filippo.io/age"
)

const (
	// vaultFile is the encrypted vault's name inside Home.
	vaultFile = "secrets.age"
	// keyFile holds the vault's age identity, encrypted with the passphrase.
	keyFile = "secrets.key"
	// maxVaultSize bounds what is read and decrypted; latch stores tokens,
	// not documents.
	maxVaultSize = 8 << 20
	// maxFileValue bounds one value in the file vault.
	maxFileValue = 1 << 20
	// lockWait bounds the wait for another process's lock when the caller's
	// context has no deadline.
	lockWait = 10 * time.Second
)

// Vault file formats, as latch vault status names them.
const (
	// Format1 is a vault encrypted with the passphrase itself (age scrypt):
	// every read and write pays a full scrypt derivation.
	Format1 = 1
	// Format2 is a vault encrypted to its own X25519 recipient; the identity
	// is kept apart, wrapped with the passphrase, and unwrapped once per
	// login session.
	Format2 = 2
)

// ScryptWorkFactor is the scrypt work factor (log2 N) given to NEW key files:
// age records it in each file, so changing it never weakens a file that
// exists. Production keeps age's default, 18 (about a second); tests of
// packages that use the file vault lower it to stay fast.
var ScryptWorkFactor = 18

// WorkFactorEnv names the variable that sets the scrypt work factor of new
// key files (10–22). Lower is faster to unlock and cheaper to guess; it is
// meant for tests and throwaway homes.
const WorkFactorEnv = "LATCH_VAULT_SCRYPT_WORK_FACTOR"

func workFactor() (int, error) {
	v := os.Getenv(WorkFactorEnv)
	if v == "" {
		return ScryptWorkFactor, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 10 || n > 22 {
		return 0, fmt.Errorf("%s=%q: want a whole number from 10 to 22", WorkFactorEnv, v)
	}
	return n, nil
}

// fileSecrets is an age file holding a JSON object key → base64 value,
// encrypted to the vault's own X25519 recipient (format 2). The identity that
// decrypts it comes from LATCH_VAULT_IDENTITY, the session cache, or the
// passphrase-wrapped key file (see unlock.go). Writers serialise on a lock
// file next to it, and every write replaces the file atomically, so a wrong
// passphrase, a corrupt file or a full disk never destroys what was there.
type fileSecrets struct {
	dir, path  string
	passphrase func() ([]byte, error)
	// cache keeps the unlocked identity between processes; nil when there
	// is none, and then each process unlocks on its own.
	cache Cache
	// idle is how long an identity put in the cache stays without use.
	idle time.Duration

	mu   sync.Mutex
	id   *age.X25519Identity // once unlocked, for the life of the process
	from string              // where id came from, for status
	pass []byte              // a passphrase that worked (format 1 reads)
	// memo is the last map decrypted and the ciphertext it came from, so
	// that a command decrypts an unchanged vault once. age encrypts with a
	// fresh file key on every write, so equal bytes mean an unchanged vault
	// (an inode, size and mtime could repeat).
	memo     map[string][]byte
	memoData []byte

	// wrap wraps the temp file's writer; tests use it to simulate a full disk.
	wrap func(io.Writer) io.Writer
}

func newFileSecrets(dir string, passphrase func() ([]byte, error)) (*fileSecrets, error) {
	if dir == "" {
		return nil, errors.New("file vault: no directory given")
	}
	if passphrase == nil {
		passphrase = func() ([]byte, error) { return nil, ErrLocked }
	}
	return &fileSecrets{dir: dir, path: filepath.Join(dir, vaultFile), passphrase: passphrase, idle: DefaultIdle}, nil
}

func (s *fileSecrets) Get(ctx context.Context, key string) ([]byte, error) {
	if err := validateKey(key); err != nil {
		return nil, err
	}
	// Writers replace the file by rename, so a reader needs no lock: it sees
	// the old file or the new one.
	m, err := s.read(ctx)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("secret %q: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	v, ok := m[key]
	if !ok {
		return nil, fmt.Errorf("secret %q: %w", key, ErrNotFound)
	}
	return bytes.Clone(v), nil
}

func (s *fileSecrets) Set(ctx context.Context, key string, value []byte) error {
	if err := validateKey(key); err != nil {
		return err
	}
	if len(value) > maxFileValue {
		return fmt.Errorf("secret %q is %d bytes, more than %d: %w", key, len(value), maxFileValue, ErrTooBig)
	}
	value = bytes.Clone(value)
	return s.update(ctx, func(m map[string][]byte) bool {
		m[key] = value
		return true
	})
}

func (s *fileSecrets) Delete(ctx context.Context, key string) error {
	if err := validateKey(key); err != nil {
		return err
	}
	return s.update(ctx, func(m map[string][]byte) bool {
		if _, ok := m[key]; !ok {
			return false
		}
		delete(m, key)
		return true
	})
}

// read returns the vault's contents, decrypting the file only when it
// changed since this process last did. A missing file wraps ErrNotFound. A
// format-1 vault is migrated to format 2 first.
func (s *fileSecrets) read(ctx context.Context) (map[string][]byte, error) {
	if !s.stillUnlocked(ctx) {
		s.forgetMemo()
	}
	data, _, err := s.readFile(ctx)
	if err != nil {
		return nil, err
	}
	if m := s.memoFor(data); m != nil {
		return m, nil
	}
	if vaultFormat(data) == Format1 {
		if err := s.update(ctx, func(map[string][]byte) bool { return true }); err != nil {
			return nil, err
		}
		return s.read(ctx)
	}
	m, err := s.decrypt(ctx, data)
	if err != nil {
		return nil, err
	}
	s.remember(m, data)
	return m, nil
}

// update runs a read-modify-write under the cross-process lock. change
// reports whether it changed anything; if not, nothing is written (except
// that a format-1 vault is always rewritten as format 2).
func (s *fileSecrets) update(ctx context.Context, change func(map[string][]byte) bool) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	// Under the lock no other latch is writing, so any temp copy left here
	// was left by one that died mid-write: it may hold secrets deleted
	// since, so it goes.
	removeTemps(s.path)

	var id *age.X25519Identity
	if !s.stillUnlocked(ctx) {
		s.forgetMemo()
	}
	data, _, err := s.readFile(ctx)
	var m map[string][]byte
	migrate := false
	switch {
	case errors.Is(err, ErrNotFound):
		m = make(map[string][]byte)
		if id, err = s.identity(ctx, true); err != nil {
			return err
		}
	case err != nil:
		return err
	case vaultFormat(data) == Format1:
		if m, id, err = s.openFormat1(ctx, data); err != nil {
			return err
		}
		migrate = true
	default:
		if m = s.memoFor(data); m == nil {
			if m, err = s.decrypt(ctx, data); err != nil {
				// Wrong identity or corrupt file: never overwrite it.
				return err
			}
		}
		m = cloneMap(m)
		if id, err = s.identity(ctx, false); err != nil {
			return err
		}
	}
	if !change(m) && !migrate {
		return nil
	}
	plain, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("file vault: %w", err)
	}
	var written bytes.Buffer
	err = writeFileAtomic(s.path, filePerm, func(w io.Writer) error {
		enc, err := age.Encrypt(io.MultiWriter(w, &written), id.Recipient())
		if err != nil {
			return err
		}
		if _, err := enc.Write(plain); err != nil {
			return err
		}
		return enc.Close()
	}, s.wrap)
	if errors.Is(err, errNotDurable) {
		return fmt.Errorf("file vault: %w", err)
	}
	if err != nil {
		return fmt.Errorf("file vault: %w (the previous vault is intact)", err)
	}
	s.remember(m, written.Bytes())
	return nil
}

// readFile reads the vault file. A missing file wraps ErrNotFound.
func (s *fileSecrets) readFile(ctx context.Context) ([]byte, fs.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	f, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("file vault %s: %w", s.path, ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("file vault: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("file vault: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxVaultSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("file vault: %w", err)
	}
	if len(data) > maxVaultSize {
		return nil, nil, fmt.Errorf("file vault %s is larger than %d bytes: %w", s.path, maxVaultSize, ErrCorrupt)
	}
	return data, fi, nil
}

// decrypt opens a format-2 vault with the identity. An identity that came
// from the session cache but does not open this vault (the vault was
// replaced since) is dropped from the cache and the vault unlocked afresh.
func (s *fileSecrets) decrypt(ctx context.Context, data []byte) (map[string][]byte, error) {
	id, err := s.identity(ctx, false)
	if err != nil {
		return nil, err
	}
	m, err := decryptMap(data, id)
	var noMatch *age.NoIdentityMatchError
	if errors.As(err, &noMatch) && s.source() == sourceCache {
		s.dropIdentity(ctx)
		if id, err = s.identity(ctx, false); err != nil {
			return nil, err
		}
		m, err = decryptMap(data, id)
	}
	if errors.As(err, &noMatch) {
		if src := s.source(); src == sourceEnv || src == sourceEnvFile {
			return nil, fmt.Errorf("file vault %s was not encrypted to the identity in %s: set it to this vault's "+
				"identity, or unset it to unlock with the passphrase", s.path, src)
		}
		return nil, fmt.Errorf("file vault %s was not encrypted to the identity from %s: %w", s.path, s.source(), ErrWrongPassphrase)
	}
	if err != nil {
		return nil, fmt.Errorf("file vault %s (%v): %w", s.path, err, ErrCorrupt)
	}
	return m, nil
}

// openFormat1 decrypts a format-1 vault with the passphrase and returns its
// contents and the identity of the format-2 vault it becomes: the one in the
// key file if the same passphrase unwraps it (an earlier migration was cut
// short), else a new one, wrapped and saved before the vault is rewritten —
// so a crash at any point leaves a vault that opens.
func (s *fileSecrets) openFormat1(ctx context.Context, data []byte) (map[string][]byte, *age.X25519Identity, error) {
	pass, err := s.askPassphrase()
	if err != nil {
		return nil, nil, err
	}
	sid, err := age.NewScryptIdentity(string(pass))
	if err != nil {
		return nil, nil, fmt.Errorf("file vault: %w", err)
	}
	m, err := decryptMap(data, sid)
	var noMatch *age.NoIdentityMatchError
	if errors.As(err, &noMatch) {
		return nil, nil, fmt.Errorf("file vault %s: %w", s.path, ErrWrongPassphrase)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("file vault %s (%v): %w", s.path, err, ErrCorrupt)
	}
	s.setPass(pass)
	unlock, err := lockAt(ctx, filepath.Join(s.dir, keyFile+".lock"))
	if err != nil {
		return nil, nil, err
	}
	defer unlock()
	id, err := unwrapKeyFile(s.dir, pass)
	if err != nil {
		if id, err = s.newKey(ctx, pass); err != nil {
			return nil, nil, err
		}
	}
	s.setIdentity(ctx, id, sourcePassphrase, true)
	return m, id, nil
}

func decryptMap(data []byte, id age.Identity) (map[string][]byte, error) {
	dec, err := age.Decrypt(bytes.NewReader(data), id)
	if err != nil {
		return nil, err
	}
	plain, err := io.ReadAll(dec)
	if err != nil {
		return nil, err
	}
	m := make(map[string][]byte)
	if err := json.Unmarshal(plain, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// vaultFormat tells a format-1 vault (its only recipient stanza is scrypt)
// from a format-2 one by the age header's first stanza.
func vaultFormat(data []byte) int {
	r := bufio.NewReader(bytes.NewReader(data))
	if _, err := r.ReadString('\n'); err != nil {
		return Format2
	}
	line, _ := r.ReadString('\n')
	if bytes.HasPrefix([]byte(line), []byte("-> scrypt ")) {
		return Format1
	}
	return Format2
}

func (s *fileSecrets) memoFor(data []byte) map[string][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.memo == nil || !bytes.Equal(s.memoData, data) {
		return nil
	}
	return s.memo
}

func (s *fileSecrets) remember(m map[string][]byte, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.memo, s.memoData = m, bytes.Clone(data)
}

func (s *fileSecrets) forgetMemo() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.memo, s.memoData = nil, nil
}

func cloneMap(m map[string][]byte) map[string][]byte {
	c := make(map[string][]byte, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// removeTemps deletes the temp copies writeFileAtomic leaves when a process
// is killed between creating and renaming one. Callers hold path's lock.
func removeTemps(path string) {
	tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp"))
	for _, t := range tmps {
		os.Remove(t)
	}
}

// lock takes the vault's lock file, waiting at most lockWait when ctx has no
// deadline of its own. The returned func releases it.
func (s *fileSecrets) lock(ctx context.Context) (func(), error) {
	return lockAt(ctx, s.path+".lock")
}

func lockAt(ctx context.Context, path string) (func(), error) {
	wait := time.Duration(0)
	if _, ok := ctx.Deadline(); !ok {
		wait = lockWait
	}
	unlock, err := LockFile(ctx, path, wait)
	if err != nil {
		return nil, fmt.Errorf("file vault: %w", err)
	}
	return unlock, nil
}
