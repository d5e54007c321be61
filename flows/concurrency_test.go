package flows

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Many callers in one process, each with its own TokenManager and vault
// handle, share one rotation.
func TestAccessTokenConcurrentGoroutines(t *testing.T) {
	e := newEnv(t)
	e.login("ada")
	e.clock.Add(testAccessTTL)

	const n = 20
	var (
		wg     sync.WaitGroup
		tokens [n]string
		errs   [n]error
	)
	for i := range n {
		m := &TokenManager{Secrets: e.openVault(), Dir: e.dir, Now: e.clock.Now}
		wg.Go(func() { tokens[i], errs[i] = m.AccessToken(e.ctx, "ada", e.client) })
	}
	wg.Wait()

	want := e.stored("ada").Access
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if tokens[i] != want {
			t.Fatalf("caller %d got another token than the saved one", i)
		}
	}
	if r := e.refreshes("rotated"); r != 1 {
		t.Fatalf("server rotated %d times, want 1", r)
	}
	if g := e.refreshes("grace") + e.refreshes("reused"); g != 0 {
		t.Fatalf("server saw %d repeated presentations, want 0", g)
	}
	e.checkUsable(want, "ada")
}

// Many latch processes share one rotation through the lock file and the
// file vault.
func TestAccessTokenConcurrentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	e := newEnv(t)
	e.login("ada")
	e.clock.Add(testAccessTTL)

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	var (
		wg   sync.WaitGroup
		outs [n]bytes.Buffer
		errs [n]bytes.Buffer
		runs [n]error
	)
	for i := range n {
		cmd := exec.CommandContext(e.ctx, exe, "-test.run=^$")
		cmd.Env = append(os.Environ(),
			helperEnv+"=token",
			"HELPER_VAULT="+e.dir,
			"HELPER_SERVER="+e.http.URL,
			"HELPER_PROFILE=ada",
			"HELPER_NOW="+strconv.FormatInt(e.clock.Now().Unix(), 10),
		)
		cmd.Stdout, cmd.Stderr = &outs[i], &errs[i]
		wg.Go(func() { runs[i] = cmd.Run() })
	}
	wg.Wait()

	want := e.stored("ada").Access
	for i := range n {
		if runs[i] != nil {
			t.Fatalf("process %d: %v: %s", i, runs[i], errs[i].String())
		}
		if got := strings.TrimSpace(outs[i].String()); got != want {
			t.Fatalf("process %d printed another token than the saved one (%d bytes)", i, len(got))
		}
	}
	if r := e.refreshes("rotated"); r != 1 {
		t.Fatalf("server rotated %d times, want 1", r)
	}
	if g := e.refreshes("grace") + e.refreshes("reused"); g != 0 {
		t.Fatalf("server saw %d repeated presentations, want 0", g)
	}
	if st := e.stored("ada"); st.Rotations != 1 {
		t.Fatalf("saved rotation count %d, want 1", st.Rotations)
	}
}
