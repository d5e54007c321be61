package cli

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/latch-dev/latch/agent"
)

// newAgentCmd builds the hidden 'latch agent' command: the process that holds
// the session cache where the kernel keyring is refused. latch vault unlock
// starts it; people run it by hand only to see why it would not start.
func newAgentCmd() *cobra.Command {
	var idle time.Duration
	var socket string
	cmd := &cobra.Command{
		Use:    "agent",
		Short:  "Hold the vault's session cache in memory where the kernel keyring is refused",
		Hidden: true,
		Long: `Run the latch agent: a per-user process that holds the unlocked vault
identity and access tokens in memory, for the latch processes of the same
user, where the kernel keyring is refused (a container's seccomp profile).

It answers only processes of its own uid, on a socket in a 0700 directory,
cannot be traced or dumped, and exits when it has held nothing for --idle, when
latch vault lock stops it, or on SIGINT/SIGTERM. latch vault unlock starts it
in the background; run it by hand to see why it would not start.`,
		Example: `  latch agent
  latch agent --idle 5m --socket /tmp/latch-agent/agent.sock`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if idle <= 0 {
				return usagef("--idle must be positive")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			return agent.Serve(ctx, agent.Options{Socket: socket, Idle: idle, Log: log})
		},
	}
	f := cmd.Flags()
	f.DurationVar(&idle, "idle", agent.DefaultIdle, "exit after holding no entries for this long")
	f.StringVar(&socket, "socket", "", "socket to listen on (default $LATCH_AGENT_SOCK, else $XDG_RUNTIME_DIR/latch/agent.sock, else /tmp/latch-UID/agent.sock)")
	return cmd
}
