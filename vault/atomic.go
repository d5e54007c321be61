package vault

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
)

const (
	dirPerm  os.FileMode = 0o700
	filePerm os.FileMode = 0o600
)

// writeFileAtomic replaces path with what write produces, so that a reader —
// or a crash, or a full disk — sees either the old file or the new one, never
// a mix: temp file in the same directory, fsync, rename, fsync the directory.
// wrap, when non-nil, wraps the temp file's writer (tests inject failures).
func writeFileAtomic(path string, write func(io.Writer) error, wrap func(io.Writer) io.Writer) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// CreateTemp already uses 0600; Chmod makes it independent of that detail.
	if err := tmp.Chmod(filePerm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	var w io.Writer = tmp
	if wrap != nil {
		w = wrap(w)
	}
	if err := write(w); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// The rename is only durable once the directory entry is.
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("write %s: %w (%w)", path, errNotDurable, err)
	}
	return nil
}

// errNotDurable means the new file is in place but the directory could not
// be synced: a crash now might bring the old one back.
var errNotDurable = errors.New("the new file is in place, but a crash could still undo it: the directory could not be synced")

func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be fsynced there; NTFS journals the rename
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		// os.ErrInvalid: some file systems cannot fsync a directory, which
		// is not a failure of the write itself.
		return err
	}
	return nil
}
