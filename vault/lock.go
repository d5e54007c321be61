package vault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gofrs/flock"
)

// lockRetry is how often a lock held by another process is tried again.
const lockRetry = 10 * time.Millisecond

// inProcess serialises lockers within this process too: flock(2) already
// does on Linux, but fcntl-based locks on other systems do not, and waiting
// on a channel is cheaper than polling the file.
var inProcess sync.Map // lock path → chan struct{} (capacity 1)

// LockFile takes an exclusive lock on the file at path (created 0600 in a
// 0700 directory), shared by every latch process and every goroutine of this
// one. It waits until ctx ends, and at most wait when wait is positive. The
// returned func releases the lock. When the wait runs out the error matches
// ErrTimeout and context.DeadlineExceeded.
func LockFile(ctx context.Context, path string, wait time.Duration) (func(), error) {
	if wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
	}
	if err := os.MkdirAll(filepath.Dir(path), dirPerm); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	gaveUp := func(err error) error {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("lock %s: another latch is holding it: %w (%w)", path, ErrTimeout, err)
		}
		return fmt.Errorf("lock %s: %w", path, err)
	}
	v, _ := inProcess.LoadOrStore(path, make(chan struct{}, 1))
	sem := v.(chan struct{})
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return nil, gaveUp(ctx.Err())
	}
	fl := flock.New(path, flock.SetPermissions(filePerm))
	ok, err := fl.TryLockContext(ctx, lockRetry)
	if err != nil || !ok {
		fl.Close()
		<-sem
		if err == nil || ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, gaveUp(err)
	}
	return func() {
		fl.Close() // unlocks and closes the descriptor
		<-sem
	}, nil
}
