package vault

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// helperEnv, when set, makes the test binary act as a child process that
// writes to a file vault (see runWriterHelper) instead of running tests.
const helperEnv = "LATCH_VAULT_TEST_HELPER"

// keyctlHelper reads the kernel cache from a child process; keyctl_test.go
// sets it on Linux only.
var keyctlHelper func() int

func TestMain(m *testing.M) {
	// Production uses age's default work factor (about a second per
	// operation); the tests' passphrases only need to be real, not slow.
	ScryptWorkFactor = 10
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "writer":
		if err := runWriterHelper(); err != nil {
			fmt.Fprintln(os.Stderr, "writer helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	case "probe":
		os.Exit(runProbeHelper())
	case "keyctl-get":
		if keyctlHelper == nil {
			fmt.Fprintln(os.Stderr, "keyctl-get: the kernel keyring is Linux only")
			os.Exit(2)
		}
		os.Exit(keyctlHelper())
	case "keyring-writer":
		os.Exit(runKeyringWriter())
	default:
		fmt.Fprintln(os.Stderr, "unknown", helperEnv)
		os.Exit(2)
	}
}

// runWriterHelper sets HELPER_N keys "HELPER_ID-i" in the file vault in
// HELPER_DIR.
func runWriterHelper() error {
	dir, id := os.Getenv("HELPER_DIR"), os.Getenv("HELPER_ID")
	n, err := strconv.Atoi(os.Getenv("HELPER_N"))
	if err != nil || dir == "" || id == "" || n <= 0 || n > 100 {
		return fmt.Errorf("bad helper arguments")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := newFileSecrets(dir, staticPass(testPass))
	if err != nil {
		return err
	}
	for i := range n {
		if err := s.Set(ctx, fmt.Sprintf("%s-%d", id, i), []byte(id)); err != nil {
			return err
		}
	}
	return nil
}

// runProbeHelper probes the real keyring and opens the vault in auto mode,
// printing the probe's sentinel and the Choice. It runs in a child so the
// environment (D-Bus address) can differ from the parent's and godbus's cached
// session connection cannot leak between cases.
func runProbeHelper() int {
	ctx := context.Background()
	err := newKeyringSecrets(systemKeyring{}).probe(ctx)
	fmt.Println(sentinelName(err))
	fmt.Fprintln(os.Stderr, "probe:", err)
	dir, derr := os.MkdirTemp("", "latch-probe-")
	if derr != nil {
		fmt.Fprintln(os.Stderr, derr)
		return 1
	}
	defer os.RemoveAll(dir)
	_, c, err := Open(ctx, ModeAuto, dir, Options{Passphrase: staticPass(testPass)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 1
	}
	fmt.Println(c.Backend)
	fmt.Println(c.Reason)
	return 0
}

const testPass = "correct horse battery staple"

func staticPass(p string) func() ([]byte, error) {
	return func() ([]byte, error) { return []byte(p), nil }
}

// sentinelName names the package sentinel err wraps, for tables and helpers.
func sentinelName(err error) string {
	for _, s := range []struct {
		name string
		err  error
	}{
		{"ErrNotFound", ErrNotFound},
		{"ErrNoKeyring", ErrNoKeyring},
		{"ErrKeyringLocked", ErrKeyringLocked},
		{"ErrTimeout", ErrTimeout},
		{"ErrTooBig", ErrTooBig},
		{"ErrWrongPassphrase", ErrWrongPassphrase},
		{"ErrCorrupt", ErrCorrupt},
	} {
		if errorsIs(err, s.err) {
			return s.name
		}
	}
	if err == nil {
		return "nil"
	}
	return "other"
}
