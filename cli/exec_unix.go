//go:build unix

package cli

import (
	"fmt"
	"syscall"
)

// runCommand replaces latch with CMD. Nothing latch holds survives it: the
// token manager has let go of its lock by now, and every file latch opened
// is close-on-exec. A terminal's Ctrl+C then reaches CMD once, as it would
// without latch, rather than once from the terminal and again from latch.
func runCommand(g *globals, path string, args, env []string) error {
	// From here a signal does to latch what it would do to CMD, rather
	// than cancel a command that has nothing left to cancel.
	releaseSignals()
	if err := syscall.Exec(path, args, env); err != nil {
		return exitStatus{code: exitCannotRun, err: fmt.Errorf("cannot run %s: %w", args[0], err)}
	}
	return nil // not reached
}
