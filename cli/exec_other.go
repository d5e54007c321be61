//go:build !unix

package cli

import (
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

// runCommand runs CMD as a child where a process cannot become another. The
// console delivers Ctrl+C to CMD itself, so latch only keeps from dying of
// it first, and exits with CMD's status.
func runCommand(g *globals, path string, args, env []string) error {
	cmd := &exec.Cmd{Path: path, Args: args, Env: env, Stdin: g.in, Stdout: g.out, Stderr: g.err}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	releaseSignals()
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return exitStatus{code: ee.ExitCode()}
		}
		return exitStatus{code: exitCannotRun, err: err}
	}
	return nil
}
