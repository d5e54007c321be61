// Package cli holds latch's cobra commands. A command parses its flags, calls
// flows (or the server), and prints text or --json. It never speaks HTTP to
// the account API itself and holds no auth logic of its own.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
	exitLogin = 4 // the user must log in again
)

// Version is set at build time with -ldflags "-X github.com/latch-dev/latch/cli.Version=…".
var Version = "dev"

// usageError marks an error as the caller's misuse of the command line.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// NewRootCmd builds the command tree.
func NewRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "latch",
		Short: "A terminal account client, and the auth backend it talks to",
		Long: `latch is a terminal account client and the auth backend it talks to.

Today it ships the backend, 'latch serve': accounts, login, refresh tokens that
rotate on every use with reuse detection, and sessions. The client commands
come next.`,
		Example: `  latch serve --dev            # a throwaway backend on 127.0.0.1:8080
  latch serve --db ./latch.db  # a persistent backend`,
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.Help()
			return usagef("no command given")
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newServeCmd(nil))
	return root
}

// Execute runs latch with os.Args and returns the process exit code.
func Execute() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := NewRootCmd().ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ue usageError
	switch {
	case errors.As(err, &ue), strings.HasPrefix(err.Error(), "unknown command"),
		strings.HasPrefix(err.Error(), "unknown flag"):
		if err.Error() != "no command given" {
			fmt.Fprintln(os.Stderr, "latch:", err)
		}
		return exitUsage
	}
	fmt.Fprintln(os.Stderr, "latch:", err)
	return exitError
}
