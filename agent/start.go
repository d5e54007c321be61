package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/latch-dev/latch/vault"
)

// startWait bounds how long Start waits for a new agent to answer.
const startWait = 3 * time.Second

// Start makes sure an agent answers on socketPath: if one does, it does
// nothing; otherwise it starts exe with args (the CLI passes its own
// executable and "agent") detached from the terminal, in a new session, with
// /dev/null for stdin, stdout and stderr and LATCH_AGENT_SOCK set to
// socketPath, and waits until it answers. An agent of another protocol
// version gives a *VersionError.
func Start(ctx context.Context, exe string, args []string, socketPath string) error {
	err := hello(ctx, socketPath)
	if err == nil || !errors.Is(err, vault.ErrNoCache) {
		return err // running already, or speaking another version, or not ours
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = agentEnv(socketPath)
	cmd.Dir = "/" // hold no directory busy
	cmd.SysProcAttr = detached()
	// Stdin, Stdout and Stderr left nil are /dev/null: nothing the agent
	// could print outlives this process in a pipe.
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the latch agent: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // reaps it, whenever it exits

	ctx, cancel := context.WithTimeout(ctx, startWait)
	defer cancel()
	tick := time.NewTicker(15 * time.Millisecond)
	defer tick.Stop()
	for {
		err := hello(ctx, socketPath)
		if err == nil || !errors.Is(err, vault.ErrNoCache) {
			return err
		}
		select {
		case werr := <-exited:
			// It may have lost a race to another agent that answers now.
			if hello(context.WithoutCancel(ctx), socketPath) == nil {
				return nil
			}
			return fmt.Errorf("the latch agent (%s) exited before answering on %s (%v): run %s in a terminal to see why",
				exe, socketPath, werr, strings.Join(append([]string{exe}, args...), " "))
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("the latch agent (pid %d) did not answer on %s within %s: %w", cmd.Process.Pid, socketPath, startWait, err)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// hello checks that an agent of this user and this protocol answers on path.
func hello(ctx context.Context, path string) error {
	c, err := Dial(ctx, path, "hello")
	if err != nil {
		return err
	}
	return c.Close()
}

// agentEnv is the agent's environment: only what it needs (and variables
// meant for it, LATCH_AGENT_*), so that a passphrase or identity in the
// environment of the latch that started it does not live on in the agent.
func agentEnv(socketPath string) []string {
	env := []string{"LATCH_AGENT_SOCK=" + socketPath}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "LATCH_AGENT_SOCK":
		case strings.HasPrefix(k, "LATCH_AGENT_"), k == "PATH", k == "HOME", k == "XDG_RUNTIME_DIR", k == "TMPDIR",
			k == "GORACE", k == "GOCOVERDIR":
			env = append(env, kv)
		}
	}
	return env
}
