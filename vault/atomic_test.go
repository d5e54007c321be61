package vault

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

// TestWriteFileAtomic: the file holds the new data at mode perm whatever was
// there (the caller decides about modes), a missing directory is made
// private, and no temp copy is left, on success or failure.
func TestWriteFileAtomic(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes on Windows")
	}
	tests := []struct {
		name    string
		before  string      // "" for no file
		mode    fs.FileMode // of the file before
		perm    fs.FileMode
		subdir  bool // path is in a directory not made yet
		isDir   bool // path is a directory: the rename fails
		wantErr bool
	}{
		{name: "new file", perm: 0o600},
		{name: "new file, group-readable asked", perm: 0o640},
		{name: "existing file gets perm", before: "old", mode: 0o644, perm: 0o600},
		{name: "existing private file kept private", before: "old", mode: 0o600, perm: 0o600},
		{name: "missing directory", subdir: true, perm: 0o600},
		{name: "a directory in the way", isDir: true, perm: 0o600, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			parent := dir
			if tt.subdir {
				parent = filepath.Join(dir, "sub")
			}
			path := filepath.Join(parent, "config")
			if tt.before != "" {
				if err := os.WriteFile(path, []byte(tt.before), tt.mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tt.mode); err != nil { // past the umask
					t.Fatal(err)
				}
			}
			if tt.isDir {
				if err := os.MkdirAll(filepath.Join(path, "x"), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			err := WriteFileAtomic(path, tt.perm, []byte("new data"))
			if tmps, _ := filepath.Glob(filepath.Join(parent, ".config.*.tmp")); len(tmps) != 0 {
				t.Fatalf("temp copies left: %v", tmps)
			}
			if tt.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
					t.Fatalf("what was in the way changed: %v %v", fi, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(path); err != nil || string(b) != "new data" {
				t.Fatalf("file holds %q (%v)", b, err)
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != tt.perm {
				t.Fatalf("mode %v (%v), want %v", fi.Mode(), err, tt.perm)
			}
			if fi, err := os.Stat(parent); tt.subdir && (err != nil || fi.Mode().Perm() != dirPerm) {
				t.Fatalf("new directory mode %v (%v), want %v", fi.Mode(), err, dirPerm)
			}
		})
	}
}

// TestCannotSyncDirs: only a file system's "cannot fsync a directory" is
// forgiven; a real I/O error still says the write may not last.
func TestCannotSyncDirs(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&fs.PathError{Op: "sync", Path: "/d", Err: syscall.EINVAL}, true},
		{&fs.PathError{Op: "sync", Path: "/d", Err: syscall.ENOTSUP}, true},
		{&fs.PathError{Op: "sync", Path: "/d", Err: syscall.EIO}, false},
		{errors.New("other"), false},
	}
	for _, tt := range tests {
		if got := cannotSyncDirs(tt.err); got != tt.want {
			t.Errorf("cannotSyncDirs(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
