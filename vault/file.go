package vault

import (
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
	// maxVaultSize bounds what is read and decrypted; latch stores tokens,
	// not documents.
	maxVaultSize = 8 << 20
	// maxFileValue bounds one value in the file vault.
	maxFileValue = 1 << 20
	// lockWait bounds the wait for another process's lock when the caller's
	// context has no deadline.
	lockWait = 10 * time.Second
)

// ScryptWorkFactor is the scrypt work factor (log2 N) given to NEW vault
// files: age records it in each file, so changing it never weakens a file
// that exists. Production keeps age's default, 18 (about a second); tests of
// packages that use the file vault lower it to stay fast.
var ScryptWorkFactor = 18

// WorkFactorEnv names the variable that sets the scrypt work factor of new
// vault files (10–22). Lower is faster to open and cheaper to guess; it is
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

// fileSecrets is an age (scrypt passphrase) encrypted file holding a JSON
// object key → base64 value. Writers serialise on a lock file next to it, and
// every write replaces the file atomically, so a wrong passphrase, a corrupt
// file or a full disk never destroys what was there.
type fileSecrets struct {
	path       string
	passphrase func() ([]byte, error)

	mu     sync.Mutex
	cached []byte // the passphrase once it has been used successfully

	// wrap wraps the temp file's writer; tests use it to simulate a full disk.
	wrap func(io.Writer) io.Writer
}

func newFileSecrets(dir string, passphrase func() ([]byte, error)) (*fileSecrets, error) {
	if dir == "" {
		return nil, errors.New("file vault: no directory given")
	}
	if passphrase == nil {
		return nil, errors.New("file vault: no way to obtain the passphrase; set LATCH_VAULT_PASSPHRASE")
	}
	return &fileSecrets{path: filepath.Join(dir, vaultFile), passphrase: passphrase}, nil
}

func (s *fileSecrets) Get(ctx context.Context, key string) ([]byte, error) {
	if err := validateKey(key); err != nil {
		return nil, err
	}
	// Writers replace the file by rename, so a reader needs no lock: it sees
	// the old file or the new one.
	m, err := s.load(ctx)
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
	return v, nil
}

func (s *fileSecrets) Set(ctx context.Context, key string, value []byte) error {
	if err := validateKey(key); err != nil {
		return err
	}
	if len(value) > maxFileValue {
		return fmt.Errorf("secret %q is %d bytes, more than %d: %w", key, len(value), maxFileValue, ErrTooBig)
	}
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

// update runs a read-modify-write under the cross-process lock. change
// reports whether it changed anything; if not, nothing is written.
func (s *fileSecrets) update(ctx context.Context, change func(map[string][]byte) bool) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()

	m, err := s.load(ctx)
	if errors.Is(err, ErrNotFound) {
		m = make(map[string][]byte)
	} else if err != nil {
		// Wrong passphrase or corrupt file: never overwrite it.
		return err
	}
	if !change(m) {
		return nil
	}
	plain, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("file vault: %w", err)
	}
	pass, err := s.pass()
	if err != nil {
		return err
	}
	r, err := age.NewScryptRecipient(string(pass))
	if err != nil {
		return fmt.Errorf("file vault: %w", err)
	}
	wf, err := workFactor()
	if err != nil {
		return fmt.Errorf("file vault: %w", err)
	}
	r.SetWorkFactor(wf)
	err = writeFileAtomic(s.path, func(w io.Writer) error {
		enc, err := age.Encrypt(w, r)
		if err != nil {
			return err
		}
		if _, err := enc.Write(plain); err != nil {
			return err
		}
		return enc.Close()
	}, s.wrap)
	if err != nil {
		return fmt.Errorf("file vault: %w (the previous vault is intact)", err)
	}
	s.remember(pass)
	return nil
}

// load decrypts the vault. A missing file wraps ErrNotFound.
func (s *fileSecrets) load(ctx context.Context) (map[string][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("file vault %s: %w", s.path, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("file vault: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxVaultSize+1))
	if err != nil {
		return nil, fmt.Errorf("file vault: %w", err)
	}
	if len(data) > maxVaultSize {
		return nil, fmt.Errorf("file vault %s is larger than %d bytes: %w", s.path, maxVaultSize, ErrCorrupt)
	}
	pass, err := s.pass()
	if err != nil {
		return nil, err
	}
	id, err := age.NewScryptIdentity(string(pass))
	if err != nil {
		return nil, fmt.Errorf("file vault: %w", err)
	}
	dec, err := age.Decrypt(bytes.NewReader(data), id)
	var noMatch *age.NoIdentityMatchError
	if errors.As(err, &noMatch) {
		s.forget()
		return nil, fmt.Errorf("file vault %s: %w", s.path, ErrWrongPassphrase)
	}
	if err != nil {
		return nil, fmt.Errorf("file vault %s (%v): %w", s.path, err, ErrCorrupt)
	}
	plain, err := io.ReadAll(dec)
	if err != nil {
		return nil, fmt.Errorf("file vault %s (%v): %w", s.path, err, ErrCorrupt)
	}
	m := make(map[string][]byte)
	if err := json.Unmarshal(plain, &m); err != nil {
		return nil, fmt.Errorf("file vault %s (%v): %w", s.path, err, ErrCorrupt)
	}
	s.remember(pass)
	return m, nil
}

// pass returns the passphrase, asking the caller's function only until one
// has worked, so a prompting caller prompts once per process.
func (s *fileSecrets) pass() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cached != nil {
		return s.cached, nil
	}
	p, err := s.passphrase()
	if err != nil {
		return nil, fmt.Errorf("vault passphrase: %w", err)
	}
	if len(p) == 0 {
		return nil, errors.New("vault passphrase is empty: set LATCH_VAULT_PASSPHRASE or type one at the prompt")
	}
	return p, nil
}

func (s *fileSecrets) remember(p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cached = p
}

func (s *fileSecrets) forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cached = nil
}

// lock takes the vault's lock file, waiting at most lockWait when ctx has no
// deadline of its own. The returned func releases it.
func (s *fileSecrets) lock(ctx context.Context) (func(), error) {
	wait := time.Duration(0)
	if _, ok := ctx.Deadline(); !ok {
		wait = lockWait
	}
	unlock, err := LockFile(ctx, s.path+".lock", wait)
	if err != nil {
		return nil, fmt.Errorf("file vault: %w", err)
	}
	return unlock, nil
}
