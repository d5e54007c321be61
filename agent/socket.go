package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// maxSocketPath is the longest socket path the kernel accepts (sun_path is
// 108 bytes with its terminating NUL on Linux).
const maxSocketPath = 107

// SocketPath returns where the agent of this user listens:
// $LATCH_AGENT_SOCK if set, else $XDG_RUNTIME_DIR/latch/agent.sock, else
// /tmp/latch-<uid>/agent.sock. The path is absolute, because the agent runs
// from /.
func SocketPath() (string, error) {
	var p string
	switch {
	case os.Getenv("LATCH_AGENT_SOCK") != "":
		abs, err := filepath.Abs(os.Getenv("LATCH_AGENT_SOCK"))
		if err != nil {
			return "", fmt.Errorf("LATCH_AGENT_SOCK: %w", err)
		}
		p = abs
	case os.Getenv("XDG_RUNTIME_DIR") != "":
		p = filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "latch", "agent.sock")
	default:
		uid := os.Getuid()
		if uid < 0 {
			return "", errors.New("the latch agent needs a user id (it runs on Linux); set LATCH_AGENT_SOCK")
		}
		p = filepath.Join("/tmp", "latch-"+strconv.Itoa(uid), "agent.sock")
	}
	if len(p) > maxSocketPath {
		return "", fmt.Errorf("agent socket path %s is longer than %d bytes: set LATCH_AGENT_SOCK to a shorter path", p, maxSocketPath)
	}
	return p, nil
}

// prepareDir creates dir 0700 if missing and refuses a directory that is
// not this user's alone: whoever can enter it could replace the socket.
func prepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("latch agent: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("latch agent: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("latch agent: %s is not a directory: remove it, or set LATCH_AGENT_SOCK to a path in a directory of yours", dir)
	}
	if owner, uid := fileOwner(fi), os.Getuid(); owner != uid {
		return fmt.Errorf("latch agent: %s belongs to uid %d, not to you (uid %d): remove it, or set LATCH_AGENT_SOCK to a path in a directory of yours", dir, owner, uid)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("latch agent: %s has mode %04o, open to other users: run chmod 700 %s", dir, perm, dir)
	}
	return nil
}

// listenPrivate listens on path as every socket of the agent does: in a
// 0700 directory of this user's, one agent per socket (the lock, released
// by release), a stale socket replaced, the socket itself 0600.
func listenPrivate(ctx context.Context, path string) (ln *net.UnixListener, release func(), err error) {
	if err := prepareDir(filepath.Dir(path)); err != nil {
		return nil, nil, err
	}
	release, err = lockSocket(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	if err := removeStale(ctx, path); err != nil {
		release()
		return nil, nil, err
	}
	ln, err = net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		release()
		return nil, nil, fmt.Errorf("latch agent: listen on %s: %w", path, err)
	}
	// The directory is 0700 already; the socket is made 0600 as well rather
	// than through the umask, which is process-wide.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		release()
		return nil, nil, fmt.Errorf("latch agent: %w", err)
	}
	return ln, release, nil
}

// lockSocket takes the lock beside the socket that makes one agent per
// socket: two agents started at once cannot both remove and bind it. An agent
// that answers means one runs already; a lock held with nobody answering is an
// agent on its way out, waited for a bounded while.
func lockSocket(ctx context.Context, path string) (release func(), err error) {
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("latch agent: %w", err)
	}
	deadline := time.Now().Add(lockWait)
	for {
		err := tryLock(f)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, errLocked) {
			f.Close()
			return nil, fmt.Errorf("latch agent: lock %s.lock: %w", path, err)
		}
		if pid, answered := probe(ctx, path); answered {
			f.Close()
			return nil, fmt.Errorf("a latch agent already runs at %s (pid %d)", path, pid)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("latch agent: another process holds %s.lock but no agent answers on %s", path, path)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// removeStale removes a socket left by an agent that died, never a live
// agent's socket nor a file that is not a socket.
func removeStale(ctx context.Context, path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("latch agent: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("latch agent: %s exists and is not a socket: remove it, or set LATCH_AGENT_SOCK", path)
	}
	if pid, answered := probe(ctx, path); answered {
		return fmt.Errorf("a latch agent already runs at %s (pid %d)", path, pid)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("latch agent: remove stale socket: %w", err)
	}
	return nil
}

// probe says whether an agent of any protocol version answers hello on path.
func probe(ctx context.Context, path string) (pid int, answered bool) {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return 0, false
	}
	defer c.Close()
	resp, err := exchange(ctx, c.(*net.UnixConn), bufio.NewReader(c), request{V: ProtocolVersion, Op: opHello})
	if err != nil {
		return 0, false
	}
	if resp.Hello != nil {
		pid = resp.Hello.PID
	}
	return pid, true
}
