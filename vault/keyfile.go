package vault

// The vault's key: made, wrapped with the passphrase in secrets.key,
// unwrapped, or handed over in the environment.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
)

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
	err = writeFileAtomic(path, filePerm, func(w io.Writer) error {
		enc, err := age.Encrypt(w, r)
		if err != nil {
			return err
		}
		if _, err := io.WriteString(enc, id.String()+"\n"); err != nil {
			return err
		}
		return enc.Close()
	}, wrap)
	if errors.Is(err, errNotDurable) {
		return fmt.Errorf("file vault key: %w", err)
	}
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
