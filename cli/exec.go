package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"

	"github.com/latch-dev/latch/flows"
)

// Exit codes of latch exec when CMD cannot run, as env(1) has them.
const (
	exitCannotRun = 126
	exitNotFound  = 127
)

type execOptions struct {
	g   *globals
	Env string
}

func newExecCmd(g *globals) *cobra.Command {
	o := &execOptions{g: g}
	cmd := &cobra.Command{
		Use:   "exec [--env NAME] -- CMD [ARGS…]",
		Short: "Run a command with a valid access token in its environment",
		Long: `Run CMD with the profile's access token in the environment variable NAME
(LATCH_TOKEN unless --env says otherwise), the rest of the environment as it
is. The token is never on a command line, where other users could read it.
It is valid when CMD starts; latch refreshes it first when it is about to
expire, as latch token does, and exits 4 (log in again) or 5 (vault locked)
without starting CMD when it cannot.

On Linux and macOS latch then becomes CMD (execve): the process, its stdin,
stdout and stderr, its signals (Ctrl+C reaches CMD once) and its exit status
are CMD's own. On Windows latch runs CMD as a child (the console gives it
Ctrl+C) and exits with CMD's exit code. 127 means CMD was not found, 126
that it cannot run.`,
		Example: `  latch exec -- sh -c 'curl -H "Authorization: Bearer $LATCH_TOKEN" http://127.0.0.1:8080/auth/me'
  latch exec --env API_TOKEN -p work -- ./deploy.sh --prod
  latch exec -- env | grep -c LATCH_TOKEN`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("give the command to run, after --: latch exec -- CMD [ARGS…]")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return execRun(cmd.Context(), o, args)
		},
	}
	// Everything from CMD on is CMD's own, flags included, even without --.
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVar(&o.Env, "env", "LATCH_TOKEN", "the environment variable that holds the token")
	return cmd
}

// isEnvName reports whether s is a portable environment variable name:
// letters, digits and _, not starting with a digit. (A loop, not a
// package-level regexp: every latch process would compile it at start-up.)
func isEnvName(s string) bool {
	for i, c := range s {
		if c != '_' && !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

func execRun(ctx context.Context, o *execOptions, args []string) error {
	g := o.g
	if !isEnvName(o.Env) {
		return usagef("--env %q is not a variable name: use letters, digits and _, not starting with a digit", o.Env)
	}
	e, err := g.openEnv(ctx)
	if err != nil {
		return err
	}
	it, err := e.TokenFor(ctx, g.profile, flows.TokenOptions{})
	if err != nil {
		return err
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		code := exitCannotRun
		if errors.Is(err, exec.ErrNotFound) {
			code = exitNotFound
		}
		return exitStatus{code: code, err: fmt.Errorf("cannot run %s: %w", args[0], err)}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return runCommand(g, path, args, withVar(os.Environ(), o.Env, it.AccessToken))
}

// withVar is env with name set to value, any earlier setting removed.
func withVar(env []string, name, value string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return append(out, name+"="+value)
}

// exitStatus makes latch exit with code: CMD's own status under latch exec.
// err, when set, is printed first; without it latch says nothing, CMD
// having spoken for itself.
type exitStatus struct {
	code int
	err  error
}

func (e exitStatus) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return fmt.Sprintf("exit status %d", e.code)
}

func (e exitStatus) Unwrap() error { return e.err }

// releaseSignals makes Execute stop acting on SIGINT and SIGTERM (cancelling
// the command, exiting on a second one), for a command that handles them
// itself. Execute sets it; in tests it does nothing.
var releaseSignals = func() {}
