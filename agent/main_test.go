//go:build linux

package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// helperEnv, when set, makes the test binary act as a child process instead
// of running tests: "agent" runs Serve on $LATCH_AGENT_SOCK, "connect" dials
// it and reports what the agent answered.
const helperEnv = "LATCH_AGENT_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "agent":
		if err := runAgentHelper(); err != nil {
			fmt.Fprintln(os.Stderr, "agent helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	case "connect":
		runConnectHelper()
		os.Exit(0)
	case "token":
		os.Exit(runTokenHelper())
	default:
		fmt.Fprintln(os.Stderr, "unknown", helperEnv)
		os.Exit(2)
	}
}

// runAgentHelper is the agent as latch agent runs it. Once it listens, it
// writes what prctl(PR_GET_DUMPABLE) says to $LATCH_AGENT_TEST_OUT, if set.
func runAgentHelper() error {
	idle, err := time.ParseDuration(os.Getenv("LATCH_AGENT_TEST_IDLE"))
	if err != nil {
		idle = 10 * time.Second
	}
	o := Options{Idle: idle}
	if out := os.Getenv("LATCH_AGENT_TEST_OUT"); out != "" {
		o.ready = func() {
			d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
			s := strconv.Itoa(d)
			if err != nil {
				s = err.Error()
			}
			os.WriteFile(out, []byte(s), 0o600)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return Serve(ctx, o)
}

// runConnectHelper dials $LATCH_AGENT_SOCK, says hello and prints
// "connected" then "answered: …" or "no answer: …".
func runConnectHelper() {
	c, err := net.Dial("unix", os.Getenv("LATCH_AGENT_SOCK"))
	if err != nil {
		fmt.Println("connect failed:", err)
		return
	}
	defer c.Close()
	fmt.Println("connected")
	c.SetDeadline(time.Now().Add(3 * time.Second))
	fmt.Fprintf(c, `{"v":%d,"op":"hello"}`+"\n", ProtocolVersion)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		fmt.Println("no answer:", err)
		return
	}
	fmt.Println("answered:", line)
}

// testAgent is an agent served in the test process.
type testAgent struct {
	sock string
	base string // the temporary directory holding the socket's directory
	done chan error
	stop context.CancelFunc
}

// startAgent serves an agent with o on a fresh socket, stopped at the end
// of the test. The socket's directory is left for Serve to create.
func startAgent(t testing.TB, o Options) *testAgent {
	t.Helper()
	base := shortTempDir(t)
	o.Socket = filepath.Join(base, "run", "agent.sock")
	return serveAt(t, o, base)
}

func serveAt(t testing.TB, o Options, base string) *testAgent {
	t.Helper()
	ready := make(chan struct{})
	hook := o.ready
	o.ready = func() {
		if hook != nil {
			hook()
		}
		close(ready)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &testAgent{sock: o.Socket, base: base, done: make(chan error, 1), stop: cancel}
	go func() { a.done <- Serve(ctx, o) }()
	select {
	case <-ready:
	case err := <-a.done:
		cancel()
		t.Fatalf("Serve: %v", err)
	case <-time.After(5 * time.Second):
		cancel()
		t.Fatal("the agent did not listen within 5s")
	}
	t.Cleanup(func() {
		cancel()
		a.wait(t, 5*time.Second)
	})
	return a
}

// wait returns what Serve returned, failing the test if it has not within
// bound. It may be called again after Serve has returned.
func (a *testAgent) wait(t testing.TB, bound time.Duration) error {
	t.Helper()
	select {
	case err := <-a.done:
		a.done <- err
		return err
	case <-time.After(bound):
		t.Fatalf("the agent did not exit within %s", bound)
		return nil
	}
}

// shortTempDir is a temporary directory with a path short enough for a
// socket (t.TempDir's can pass sun_path's 108 bytes).
func shortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "la")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// waitFor polls cond until it holds, failing the test after bound.
func waitFor(t testing.TB, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, bound)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func dial(t testing.TB, sock, scope string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, sock, scope)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawRequest sends one line on a new connection and returns the answer.
func rawRequest(t testing.TB, sock, line string) (response, error) {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return response{}, err
	}
	var resp response
	r := bufio.NewReader(c)
	got, err := readLine(r, maxResponse)
	if err != nil {
		return response{}, err
	}
	return resp, json.Unmarshal(got, &resp)
}
