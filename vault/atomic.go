package vault

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
)

const (
	dirPerm  os.FileMode = 0o700
	filePerm os.FileMode = 0o600
)

// WriteFileAtomic replaces path with data, as writeFileAtomic does: a
// reader, a crash or a full disk sees the old file or the new one, never a
// part. The new file has mode perm whatever the old one had; a caller that
// keeps a file's mode passes it in. A symbolic link at path is replaced by a
// file, so a caller writing through one resolves it first.
func WriteFileAtomic(path string, perm fs.FileMode, data []byte) error {
	return writeFileAtomic(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}, nil)
}

// writeFileAtomic replaces path with what write produces, so that a reader —
// or a crash, or a full disk — sees either the old file or the new one, never
// a mix: temp file (mode perm) in the same directory, fsync, rename, fsync the
// directory. wrap, when non-nil, wraps the temp file's writer (tests inject
// failures).
func writeFileAtomic(path string, perm fs.FileMode, write func(io.Writer) error, wrap func(io.Writer) io.Writer) (err error) {
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
	// CreateTemp's 0600 is a detail of its own; the umask does not touch Chmod.
	if err := tmp.Chmod(perm); err != nil {
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
	if err := d.Sync(); err != nil && !cannotSyncDirs(err) {
		return err
	}
	return nil
}

// cannotSyncDirs reports whether err is a file system saying it cannot fsync
// a directory at all (EINVAL, or unsupported), which is no failure of the
// write itself. (os.ErrInvalid would not match: File.Sync returns the errno.)
func cannotSyncDirs(err error) bool {
	return errors.Is(err, syscall.EINVAL) || errors.Is(err, errors.ErrUnsupported)
}
