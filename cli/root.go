// Package cli holds latch's cobra commands. A command parses its flags, calls
// flows (or the server), and prints text or --json. It never speaks HTTP to
// the account API itself and holds no auth logic of its own.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/vault"
)

// Exit codes.
const (
	exitOK     = 0
	exitError  = 1
	exitUsage  = 2
	exitLogin  = 4 // the user must log in again
	exitLocked = 5 // the vault is locked and nothing here can unlock it
)

// Version is set at build time with -ldflags "-X github.com/latch-dev/latch/cli.Version=…".
var Version = "dev"

// usageError marks an error as the caller's misuse of the command line.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// NewRootCmd builds the command tree.
func NewRootCmd() *cobra.Command { return newRootCmd(newGlobals()) }

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "latch",
		Short: "A terminal account client, and the auth backend it talks to",
		Long: `latch is a terminal account client and the auth backend it talks to.

The client logs in from a terminal, keeps the refresh token in the system
keyring (or an encrypted file vault), and hands out a valid access token at
any moment, rotating it safely even when many latch processes ask at once.
'latch serve' is the backend: accounts, login, refresh tokens that rotate on
every use with reuse detection, and sessions.

Exit codes: 0 ok, 1 error, 2 usage, 4 login required, 5 vault locked
(latch vault unlock, or set LATCH_VAULT_PASSPHRASE or LATCH_VAULT_IDENTITY),
130 interrupted (Ctrl+C).`,
		Example: `  latch serve --dev                                          # a throwaway backend
  latch signup --server http://127.0.0.1:8080 -u alice --email alice@example.com
  latch token                                                # a valid access token
  latch status`,
		Version:       readBuildInfo(debug.ReadBuildInfo).String(),
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	g.bind(root)
	root.RunE = tuiRunE(g)
	root.AddCommand(newServeCmd(nil), newSignupCmd(g, nil), newLoginCmd(g, nil), newLogoutCmd(g),
		newTokenCmd(g), newStatusCmd(g), newAPICmd(g), newProfileCmd(g), newMFACmd(g), newCodesCmd(g), newDemoCmd(g),
		newVaultCmd(g), newAgentCmd(), newVersionCmd(), newJWTCmd(g), newExecCmd(g), newCredentialCmd(g), newKubeCmd(g),
		newGitCmd(g), newDockerCmd(g), newPasswordCmd(g), newEmailCmd(g), newAdminCmd(g), newEventsCmd(g), newNotesCmd(g))
	usageArgs(root)
	addCompletions(root)
	return root
}

// usageArgs makes every command's argument errors usage errors (exit 2).
func usageArgs(cmd *cobra.Command) {
	if check := cmd.Args; check != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		usageArgs(sub)
	}
}

// Execute runs latch with os.Args and returns the process exit code.
//
// SIGINT and SIGTERM cancel the command's context, so that whatever it waits
// on (the server, a browser, a lock) gives up and it returns; latch then
// exits 128 + the signal's number (130 for Ctrl+C), as shells do. A prompt
// blocked reading the terminal cannot be cancelled: then latch puts the
// terminal back as it found it and exits at once, as it does on a second
// signal.
func Execute() int {
	// Invoked as docker-credential-latch (a link to latch): docker's
	// credential helper protocol, not the command line.
	if code, ok := dockerHelperMain(os.Args); ok {
		return code
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	releaseSignals = func() { signal.Stop(sigs) } // latch exec passes them on instead
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case s := <-sigs:
			cancel(interrupted{s})
			interrupt(s)
		case <-done:
			return
		}
		// A second signal means now: whatever the command still waits
		// for (a vault write, a slow key derivation) is abandoned.
		select {
		case s := <-sigs:
			os.Exit(signalExit(s))
		case <-done:
		}
	}()
	cmd, err := NewRootCmd().ExecuteContextC(ctx)
	var sig interrupted
	if err != nil && errors.As(context.Cause(ctx), &sig) {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "latch: interrupted")
		} else {
			fmt.Fprintln(os.Stderr, "latch:", adviseFor(cmd, err))
		}
		return signalExit(sig.sig)
	}
	return exitCode(cmd, err, os.Stderr)
}

// exitCode prints err (unless the command already said why) and returns the
// exit code of the documented scheme.
func exitCode(cmd *cobra.Command, err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	var ue usageError
	var ql quietLoginRequired
	var qv quietLocked
	var es exitStatus
	switch {
	case errors.As(err, &es): // latch exec: CMD's own status
		if es.err != nil {
			fmt.Fprintln(stderr, "latch:", es.err)
		}
		return es.code
	case errors.As(err, &qv):
		return exitLocked
	case errors.As(err, &ql):
		return exitLogin
	case errors.Is(err, vault.ErrLocked):
		fmt.Fprintln(stderr, "latch:", adviseFor(cmd, err))
		return exitLocked
	case errors.Is(err, flows.ErrUnknownProfile):
		// Checked before ErrLoginRequired, which it also matches: the
		// name is wrong, logging in would not help.
		fmt.Fprintln(stderr, "latch:", adviseFor(cmd, err))
		return exitUsage
	case errors.Is(err, flows.ErrLoginRequired):
		fmt.Fprintln(stderr, "latch:", adviseFor(cmd, err))
		return exitLogin
	case errors.As(err, &ue), strings.HasPrefix(err.Error(), "unknown command"),
		strings.HasPrefix(err.Error(), "unknown flag"):
		if err.Error() != "no command given" {
			fmt.Fprintln(stderr, "latch:", adviseFor(cmd, err))
		}
		return exitUsage
	}
	fmt.Fprintln(stderr, "latch:", adviseFor(cmd, err))
	return exitError
}

// interrupted is the cause of a context cancelled by a signal.
type interrupted struct{ sig os.Signal }

func (i interrupted) Error() string { return "interrupted by " + i.sig.String() }

// signalExit is the shell's exit code for a process ended by sig.
func signalExit(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return exitError
}

// quietLocked exits 5 without a message: the command already said why.
type quietLocked struct{}

func (quietLocked) Error() string        { return "the vault is locked" }
func (quietLocked) Is(target error) bool { return target == vault.ErrLocked }
