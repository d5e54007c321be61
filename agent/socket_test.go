//go:build linux

package agent

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latch-dev/latch/vault"
)

func TestDialNoAgent(t *testing.T) {
	dir := shortTempDir(t)
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	for _, path := range []string{filepath.Join(dir, "absent.sock"), stale} {
		_, err := Dial(context.Background(), path, "s1")
		if !errors.Is(err, vault.ErrNoCache) {
			t.Errorf("Dial(%s) = %v, want ErrNoCache", filepath.Base(path), err)
		}
	}
}

func TestSocketAndDirectory(t *testing.T) {
	t.Run("socket 0600 in a directory 0700", func(t *testing.T) {
		a := startAgent(t, Options{})
		for path, want := range map[string]fs.FileMode{filepath.Dir(a.sock): fs.ModeDir | 0o700, a.sock: fs.ModeSocket | 0o600} {
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode() & (fs.ModeType | fs.ModePerm); got != want {
				t.Errorf("%s: mode %v, want %v", path, got, want)
			}
		}
	})

	t.Run("stale socket replaced, live agent kept", func(t *testing.T) {
		base := shortTempDir(t)
		sock := filepath.Join(base, "agent.sock")
		if err := os.Chmod(base, 0o700); err != nil {
			t.Fatal(err)
		}
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		ln.SetUnlinkOnClose(false)
		ln.Close()
		a := serveAt(t, Options{Socket: sock}, base)
		hello(context.Background(), a.sock)
		err = Serve(context.Background(), Options{Socket: sock})
		if err == nil || !strings.Contains(err.Error(), "already runs") {
			t.Fatalf("a second agent on the same socket: %v", err)
		}
		if err := hello(context.Background(), a.sock); err != nil {
			t.Fatalf("the first agent after a second one tried: %v", err)
		}
	})

	refuse := []struct {
		name  string
		setup func(t *testing.T, sock string)
		want  string
	}{
		{"directory open to the group", func(t *testing.T, sock string) {
			mkdir(t, filepath.Dir(sock), 0o750)
		}, "chmod 700"},
		{"directory of another user", func(t *testing.T, sock string) {
			if os.Getuid() != 0 {
				t.Skip("needs root to chown")
			}
			mkdir(t, filepath.Dir(sock), 0o700)
			if err := os.Chown(filepath.Dir(sock), 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, "belongs to uid 65534"},
		{"directory is a symlink", func(t *testing.T, sock string) {
			target := filepath.Join(filepath.Dir(filepath.Dir(sock)), "target")
			mkdir(t, target, 0o700)
			if err := os.Symlink(target, filepath.Dir(sock)); err != nil {
				t.Fatal(err)
			}
		}, "not a directory"},
		{"a file where the socket goes", func(t *testing.T, sock string) {
			mkdir(t, filepath.Dir(sock), 0o700)
			if err := os.WriteFile(sock, []byte("keep me"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a socket"},
	}
	for _, tc := range refuse {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(shortTempDir(t), "run", "agent.sock")
			tc.setup(t, sock)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := Serve(ctx, Options{Socket: sock})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Serve = %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

func mkdir(t *testing.T, dir string, mode fs.FileMode) {
	t.Helper()
	if err := os.Mkdir(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}
