package cli

import (
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/tui"
)

// tuiRunE is root's action: on a terminal, the interface; anywhere else,
// the help and exit code 2, since there is nobody to walk through it.
func tuiRunE(g *globals) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		if !g.interactive() {
			cmd.Help()
			return usagef("no command given")
		}
		// The interface owns the terminal: the vault must not prompt under
		// it. A locked vault is unlocked on the interface's own screen.
		g.noPrompt = true
		e, err := g.openEnv(cmd.Context())
		if err != nil {
			return err
		}
		opts := tui.Options{Env: e, Profile: g.profile}
		g.traceInto(e, &opts)
		return tui.Run(cmd.Context(), opts, g.in, g.out)
	}
}

// traceInto sends every exchange, step and check of the interface's flows
// to its trace pane, and what a flow waits for to its screen, never to the
// terminal the interface draws on. The feed never blocks a flow.
func (g *globals) traceInto(e *flows.Env, o *tui.Options) {
	feed := tui.NewTraceFeed()
	prev := g.trace
	g.trace = feed.Trace
	if prev != nil && !isTerminal(g.err) {
		// --debug with stderr sent to a file: the file gets it too.
		g.trace = func(ev client.Event) { feed.Trace(ev); prev(ev) }
	}
	e.Progress = feed.Progress
	o.Trace = feed
}

// interactive reports whether both ends of latch are a terminal a person
// sits at: the interface reads keys from stdin and draws on stdout.
func (g *globals) interactive() bool {
	out, ok := g.out.(*os.File)
	return ok && g.tty() && term.IsTerminal(int(out.Fd()))
}
