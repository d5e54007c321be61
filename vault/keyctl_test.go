//go:build linux

package vault

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func init() { keyctlHelper = runKeyctlHelper }

// forEachKeyring runs f against the persistent keyring and against the user
// keyring, NewKernelCache's fallback on kernels without persistent keyrings,
// which this kernel lets us exercise too.
func forEachKeyring(t *testing.T, f func(t *testing.T, persistent bool)) {
	for _, k := range []struct {
		name       string
		persistent bool
	}{{"persistent", true}, {"user", false}} {
		t.Run(k.name, func(t *testing.T) { f(t, k.persistent) })
	}
}

// newTestKernelCache returns a kernel cache of a scope of its own, cleared
// when the test ends. Where keyctl is refused the test is skipped, unless
// LATCH_REQUIRE_KEYCTL=1 asks for the kernel cache to be tested for sure.
func newTestKernelCache(t testing.TB, persistent bool) *kernelCache {
	t.Helper()
	scope := CacheScope(t.TempDir())
	if _, err := NewKernelCache(scope); err != nil {
		if errors.Is(err, ErrNoCache) && os.Getenv("LATCH_REQUIRE_KEYCTL") != "1" {
			t.Skipf("%v (set LATCH_REQUIRE_KEYCTL=1 to make this a failure)", err)
		}
		t.Fatal(err)
	}
	c, err := openKernelCache(scope, persistent)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Clear(context.Background(), ""); err != nil {
			t.Error(err)
		}
	})
	return c
}

func mustPut(t testing.TB, c Cache, name, value string, ttl time.Duration) {
	t.Helper()
	if err := c.Put(context.Background(), name, []byte(value), ttl); err != nil {
		t.Fatal(err)
	}
}

func wantGet(t testing.TB, c Cache, name, want string) {
	t.Helper()
	got, err := c.Get(context.Background(), name)
	if err != nil || string(got) != want {
		t.Fatalf("Get(%q) = %q, %v; want %q", name, got, err, want)
	}
}

func wantNotFound(t testing.TB, c Cache, name string) {
	t.Helper()
	if got, err := c.Get(context.Background(), name); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", name, got, err)
	}
}

func TestKernelCachePutGetReplace(t *testing.T) {
	forEachKeyring(t, func(t *testing.T, persistent bool) {
		c := newTestKernelCache(t, persistent)
		wantNotFound(t, c, "at/work")
		mustPut(t, c, "at/work", "one", time.Minute)
		wantGet(t, c, "at/work", "one")
		mustPut(t, c, "at/work", "two", time.Minute)
		wantGet(t, c, "at/work", "two")
		big := strings.Repeat("x", 5000) // past Get's first read buffer
		mustPut(t, c, "at/big", big, time.Minute)
		wantGet(t, c, "at/big", big)
		if w := c.Where(); !strings.Contains(w, fmt.Sprintf("uid %d", os.Getuid())) {
			t.Errorf("Where() = %q, want the uid", w)
		}
	})
}

func TestKernelCacheGetDoesNotRearmTouchDoes(t *testing.T) {
	forEachKeyring(t, func(t *testing.T, persistent bool) {
		t.Parallel()
		c := newTestKernelCache(t, persistent)
		ctx := context.Background()
		// The kernel counts expiry in whole seconds of the wall clock: a 1 s
		// timeout set at x.99 s ends at x+1 s. b is put before a, so a cannot
		// outlive b's first timeout; when a second boundary falls between
		// Put and Touch, b is gone before it is touched and we start again.
		for attempt := 1; ; attempt++ {
			mustPut(t, c, "b", "b", time.Second)
			mustPut(t, c, "a", "a", time.Second)
			err := c.Touch(ctx, "b", 3*time.Second)
			if err == nil {
				break
			}
			if !errors.Is(err, ErrNotFound) || attempt == 3 {
				t.Fatalf("Touch(b) right after Put: %v", err)
			}
		}
		// a is read all along: were Get to re-arm it, it would never expire.
		waitFor(t, 3*time.Second, func() bool {
			_, err := c.Get(ctx, "a")
			if err != nil && !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
			return err != nil
		})
		wantGet(t, c, "b", "b")
		if err := c.Touch(ctx, "a", time.Minute); !errors.Is(err, ErrNotFound) {
			t.Errorf("Touch(expired) = %v, want ErrNotFound", err)
		}
		// The expired key lingers until the kernel's collector runs; a new
		// Put must bring the entry back all the same.
		mustPut(t, c, "a", "again", time.Minute)
		wantGet(t, c, "a", "again")
	})
}

// waitFor polls cond until it holds, failing the test after bound.
func waitFor(t *testing.T, bound time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", bound)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestKernelCacheDelete(t *testing.T) {
	forEachKeyring(t, func(t *testing.T, persistent bool) {
		c := newTestKernelCache(t, persistent)
		ctx := context.Background()
		mustPut(t, c, "vault/identity", "id", time.Minute)
		for range 2 { // deleting an absent entry is not an error
			if err := c.Delete(ctx, "vault/identity"); err != nil {
				t.Fatal(err)
			}
			wantNotFound(t, c, "vault/identity")
		}
		if err := c.Touch(ctx, "vault/identity", time.Minute); !errors.Is(err, ErrNotFound) {
			t.Errorf("Touch(deleted) = %v, want ErrNotFound", err)
		}
	})
}

func TestKernelCacheScopes(t *testing.T) {
	forEachKeyring(t, func(t *testing.T, persistent bool) {
		a, b := newTestKernelCache(t, persistent), newTestKernelCache(t, persistent)
		mustPut(t, a, "at/work", "a", time.Minute)
		mustPut(t, a, "vault/identity", "a-id", time.Minute)
		mustPut(t, b, "at/work", "b", time.Minute)
		wantGet(t, a, "at/work", "a")
		wantGet(t, b, "at/work", "b")
		wantNotFound(t, b, "vault/identity")

		if err := a.Clear(context.Background(), ""); err != nil {
			t.Fatal(err)
		}
		wantNotFound(t, a, "at/work")
		wantNotFound(t, a, "vault/identity")
		wantGet(t, b, "at/work", "b")
	})
}

// TestKernelCacheThreads reads from many OS threads at once: the kernel
// decides possession per thread (see attach), so an operation that ran on a
// thread other than the one that linked the keyring would fail with EACCES.
func TestKernelCacheThreads(t *testing.T) {
	forEachKeyring(t, func(t *testing.T, persistent bool) {
		c := newTestKernelCache(t, persistent)
		mustPut(t, c, "at/work", "v", time.Minute)
		start := make(chan struct{})
		errs := make(chan error, 8)
		var wg sync.WaitGroup
		for range cap(errs) {
			wg.Go(func() {
				// Locked goroutines waiting together hold distinct threads;
				// exiting locked retires the thread and its process keyring.
				runtime.LockOSThread()
				<-start
				got, err := c.Get(context.Background(), "at/work")
				if err == nil && string(got) != "v" {
					err = fmt.Errorf("got %q", got)
				}
				errs <- err
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
	})
}

func TestKernelCachePermissions(t *testing.T) {
	forEachKeyring(t, func(t *testing.T, persistent bool) {
		c := newTestKernelCache(t, persistent)
		want := fmt.Sprintf("user;%d;%d;3f010000;%sat/work", os.Getuid(), os.Getgid(), c.prefix)
		for _, step := range []struct {
			name string
			do   func() error
		}{
			{"put", func() error { return c.Put(context.Background(), "at/work", []byte("one"), time.Minute) }},
			{"replace", func() error { return c.Put(context.Background(), "at/work", []byte("two"), time.Minute) }},
			{"touch", func() error { return c.Touch(context.Background(), "at/work", time.Hour) }},
		} {
			if err := step.do(); err != nil {
				t.Fatal(err)
			}
			_, got := describeEntry(t, c, "at/work")
			if got != want {
				t.Errorf("after %s: KEYCTL_DESCRIBE = %q, want %q", step.name, got, want)
			}
		}
	})
}

// describeEntry finds name's key the way the cache does and describes it.
func describeEntry(t *testing.T, c *kernelCache, name string) (id int, description string) {
	t.Helper()
	desc, err := c.description(name)
	if err != nil {
		t.Fatal(err)
	}
	err = c.do(context.Background(), func(ring int) error {
		if id, err = unix.KeyctlSearch(ring, "user", desc, 0); err != nil {
			return err
		}
		description, err = unix.KeyctlString(unix.KEYCTL_DESCRIBE, id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id, description
}

func TestKernelCacheRefuses(t *testing.T) {
	c := newTestKernelCache(t, true)
	for _, tt := range []struct {
		name, entry string
		size        int
		ttl         time.Duration
		wantErr     error
	}{
		{"too big", "at/work", maxKernelValue + 1, time.Minute, ErrTooBig},
		{"empty value", "at/work", 0, time.Minute, nil},
		{"zero ttl", "at/work", 10, 0, nil},
		{"empty name", "", 10, time.Minute, nil},
		{"control character", "at/\n", 10, time.Minute, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Put(context.Background(), tt.entry, make([]byte, tt.size), tt.ttl)
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("Put = %v, want an error wrapping %v", err, tt.wantErr)
			}
		})
	}
	mustPut(t, c, "at/max", strings.Repeat("m", maxKernelValue), time.Minute)
}

func TestKernelCacheCanceledContext(t *testing.T) {
	c := newTestKernelCache(t, true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, getErr := c.Get(ctx, "at/work")
	for name, err := range map[string]error{
		"Get":    getErr,
		"Put":    c.Put(ctx, "at/work", []byte("v"), time.Minute),
		"Touch":  c.Touch(ctx, "at/work", time.Minute),
		"Delete": c.Delete(ctx, "at/work"),
		"Clear":  c.Clear(ctx, ""),
	} {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s = %v, want context.Canceled", name, err)
		}
	}
}

func TestKeyctlRefusedWrapsErrNoCache(t *testing.T) {
	for _, tt := range []struct {
		errno unix.Errno
		want  bool
	}{
		{unix.EPERM, true}, {unix.ENOSYS, true}, {unix.EACCES, true}, {unix.EDQUOT, false}, {unix.ENOMEM, false},
	} {
		err := keyctlRefused(tt.errno)
		if errors.Is(err, ErrNoCache) != tt.want || !errors.Is(err, tt.errno) {
			t.Errorf("keyctlRefused(%s) = %v; want the errno wrapped, and ErrNoCache wrapped: %v", unix.ErrnoName(tt.errno), err, tt.want)
		}
		if tt.want && !strings.Contains(err.Error(), unix.ErrnoName(tt.errno)) {
			t.Errorf("keyctlRefused(%s) = %q, does not name the errno", unix.ErrnoName(tt.errno), err)
		}
	}
	if _, err := NewKernelCache("a:b"); err == nil {
		t.Error(`NewKernelCache("a:b") = nil error; a ':' would mix scopes in Clear`)
	}
}

func TestTimeoutSeconds(t *testing.T) {
	for _, tt := range []struct {
		ttl  time.Duration
		want int
	}{
		{time.Nanosecond, 1}, {time.Second, 1}, {time.Second + time.Millisecond, 2},
		{DefaultIdle, 43200}, {math.MaxInt64, math.MaxInt32}, {0, -1}, {-time.Second, -1},
	} {
		got, err := timeoutSeconds(tt.ttl)
		if tt.want < 0 && err == nil || tt.want >= 0 && (err != nil || got != tt.want) {
			t.Errorf("timeoutSeconds(%v) = %d, %v; want %d", tt.ttl, got, err, tt.want)
		}
	}
}

// TestKernelCacheOtherProcess is the point of the kernel cache: what one
// latch process put, the next one reads.
func TestKernelCacheOtherProcess(t *testing.T) {
	forEachKeyring(t, func(t *testing.T, persistent bool) {
		c := newTestKernelCache(t, persistent)
		mustPut(t, c, "at/work", "from the parent", time.Minute)
		got := runKeyctlChild(t, exec.Command(os.Args[0]), c, "at/work", 0)
		if got["get"] != "ok" || got["value"] != "from the parent" {
			t.Fatalf("child read %v", got)
		}
	})
}

// TestKernelCacheOtherUID runs the child as nobody: it must not reach the
// entry by its own cache, by the serial number, or by asking for our
// persistent keyring.
func TestKernelCacheOtherUID(t *testing.T) {
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv (util-linux) is not installed; it runs the child as another uid")
	}
	if os.Getuid() != 0 {
		t.Skip("only root can run the child as another uid")
	}
	// The test binary sits in a directory only we can enter.
	dir, err := os.MkdirTemp("", "latch-keyctl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "vault.test")
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := copyFile(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}
	forEachKeyring(t, func(t *testing.T, persistent bool) {
		c := newTestKernelCache(t, persistent)
		mustPut(t, c, "at/work", "secret", time.Minute)
		id, _ := describeEntry(t, c, "at/work")
		cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", bin)
		cmd.Dir = dir
		got := runKeyctlChild(t, cmd, c, "at/work", id)
		want := map[string]string{
			"uid": "65534", "get": "ErrNotFound", "read-id": "EACCES", "describe-id": "EACCES",
			"persistent-of-owner": "EPERM",
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("child as nobody: %s = %q, want %q (all: %v)", k, got[k], v, got)
			}
		}
	})
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// runKeyctlChild runs cmd, a re-executed test binary, as the keyctl-get
// helper on c's scope and returns what it reported.
func runKeyctlChild(t *testing.T, cmd *exec.Cmd, c *kernelCache, name string, id int) map[string]string {
	t.Helper()
	cmd.Env = append(os.Environ(),
		helperEnv+"=keyctl-get",
		"HELPER_PREFIX="+c.prefix,
		"HELPER_PERSISTENT="+strconv.FormatBool(c.persistent),
		"HELPER_NAME="+name,
		"HELPER_KEY_ID="+strconv.Itoa(id),
		"HELPER_OWNER_UID="+strconv.Itoa(os.Getuid()),
		"GORACE=atexit_sleep_ms=0") // a -race binary otherwise lingers 1 s on exit
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, stderr.Bytes())
	}
	got := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			got[k] = v
		}
	}
	return got
}

// runKeyctlHelper is the child of runKeyctlChild: it reads an entry through
// its own cache and, given a serial number, tries the key directly.
func runKeyctlHelper() int {
	persistent, _ := strconv.ParseBool(os.Getenv("HELPER_PERSISTENT"))
	c := &kernelCache{prefix: os.Getenv("HELPER_PREFIX"), persistent: persistent, uid: os.Getuid()}
	fmt.Printf("uid=%d\n", os.Getuid())
	v, err := c.Get(context.Background(), os.Getenv("HELPER_NAME"))
	if err == nil {
		fmt.Printf("get=ok\nvalue=%s\n", v)
	} else {
		fmt.Printf("get=%s\n", sentinelName(err))
		fmt.Fprintln(os.Stderr, "get:", err)
	}
	id, _ := strconv.Atoi(os.Getenv("HELPER_KEY_ID"))
	owner, _ := strconv.Atoi(os.Getenv("HELPER_OWNER_UID"))
	if id == 0 {
		return 0
	}
	_, err = readKey(id, 4096)
	fmt.Printf("read-id=%s\n", errnoName(err))
	_, err = unix.KeyctlString(unix.KEYCTL_DESCRIBE, id)
	fmt.Printf("describe-id=%s\n", errnoName(err))
	_, err = unix.KeyctlInt(unix.KEYCTL_GET_PERSISTENT, owner, unix.KEY_SPEC_PROCESS_KEYRING, 0, 0)
	fmt.Printf("persistent-of-owner=%s\n", errnoName(err))
	return 0
}

func errnoName(err error) string {
	var errno unix.Errno
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &errno):
		return unix.ErrnoName(errno)
	}
	return err.Error()
}

// BenchmarkKernelCacheGet measures what latch token pays for its access
// token: opening the cache (the probe) and one Get.
func BenchmarkKernelCacheGet(b *testing.B) {
	c := newTestKernelCache(b, true)
	mustPut(b, c, "at/work", strings.Repeat("t", 1200), time.Minute)
	scope := strings.TrimSuffix(strings.TrimPrefix(c.prefix, "latch:"), ":")
	ctx := context.Background()
	for b.Loop() {
		kc, err := NewKernelCache(scope)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := kc.Get(ctx, "at/work"); err != nil {
			b.Fatal(err)
		}
	}
}
