package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/latch-dev/latch/agent"
	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/vault"
)

// newAgentCmd builds 'latch agent': the process that holds the session cache
// where the kernel keyring is refused, and, with --forwardable, hands out
// access tokens to a socket forwarded over SSH. latch vault unlock starts it;
// people run it by hand to forward it, or to see why it would not start.
// It is listed since forwarding made it a command people run.
func newAgentCmd() *cobra.Command {
	var idle time.Duration
	var socket, fwdSocket string
	var forwardable bool
	var profiles []string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Hold the vault's session cache in memory, and forward access tokens over SSH",
		Long: `Run the latch agent: a per-user process that holds the unlocked vault
identity and access tokens in memory, for the latch processes of the same
user, where the kernel keyring is refused (a container's seccomp profile).

It answers only processes of its own uid, on a socket in a 0700 directory,
cannot be traced or dumped, and exits when it has held nothing for --idle, when
latch vault lock stops it, or on SIGINT/SIGTERM. latch vault unlock starts it
in the background; run it by hand to see why it would not start.

With --forwardable it also listens on a second socket, the forwarding socket
(forward.sock beside the agent's socket, or --forward-socket), that hands out
access tokens — never refresh tokens, never the vault key — of the profiles
named with --forward-profile, and nothing else. Forward that socket over SSH
and latch on the remote box gets tokens with no vault there:

  ssh -o ExitOnForwardFailure=yes -R /tmp/latch-fwd.sock:FORWARD_SOCKET host
  host$ LATCH_AGENT_SOCK=/tmp/latch-fwd.sock latch token -p work

(latch exec and the credential helpers work the same way there. A socket
left by an earlier session makes ssh -R fail unless the remote sshd has
StreamLocalBindUnlink yes; otherwise remove it first.) A profile not named
is refused with exit code 1; a session over on this machine gives exit 4
there, a locked vault here exit 5.

Forward only the forwarding socket, never the agent's own socket: it holds
the unlocked vault. Each token request runs this latch's 'latch token' with
no terminal and no browser, so a remote request can never start a login;
every request is logged on stderr (time, profile, allowed or refused, never a
token). A forwarding agent does not exit when idle: stop it with Ctrl+C or
latch vault lock.`,
		Example: `  latch agent
  latch agent --idle 5m --socket /tmp/latch-agent/agent.sock
  latch agent --forwardable --forward-profile work
  latch agent --forwardable --forward-profile work --forward-profile ci --forward-socket /tmp/latch-fwd/forward.sock`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if idle <= 0 {
				return usagef("--idle must be positive")
			}
			o := agent.Options{Socket: socket, Idle: idle}
			if o.Socket == "" {
				p, err := agent.SocketPath()
				if err != nil {
					return err
				}
				o.Socket = p
			}
			fo, err := forwardOptions(cmd, forwardable, profiles, fwdSocket, o.Socket)
			if err != nil {
				return err
			}
			o.Forward = fo
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			o.Log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			if fo != nil {
				forwardHint(cmd.ErrOrStderr(), fo)
			}
			return agent.Serve(ctx, o)
		},
	}
	f := cmd.Flags()
	f.DurationVar(&idle, "idle", agent.DefaultIdle, "exit after holding no entries for this long (not with --forwardable)")
	f.StringVar(&socket, "socket", "", "socket to listen on (default $LATCH_AGENT_SOCK, else $XDG_RUNTIME_DIR/latch/agent.sock, else /tmp/latch-UID/agent.sock)")
	f.BoolVar(&forwardable, "forwardable", false, "also hand out access tokens on a forwarding socket, for ssh -R")
	f.StringArrayVar(&profiles, "forward-profile", nil, "a profile the forwarding socket hands out tokens of (repeat for more)")
	f.StringVar(&fwdSocket, "forward-socket", "", "forwarding socket to listen on (default forward.sock beside the agent's socket)")
	return cmd
}

// forwardOptions checks the forwarding flags and builds the forwarding
// socket's options, or nil without --forwardable.
func forwardOptions(cmd *cobra.Command, forwardable bool, profiles []string, socket, cacheSocket string) (*agent.ForwardOptions, error) {
	if !forwardable {
		if len(profiles) > 0 || socket != "" {
			return nil, usagef("--forward-profile and --forward-socket need --forwardable")
		}
		return nil, nil
	}
	if len(profiles) == 0 {
		return nil, usagef("--forwardable: name each profile to hand out with --forward-profile NAME; no profile is forwarded by default")
	}
	for _, p := range profiles {
		if err := vault.ValidateName(p); err != nil {
			return nil, usagef("--forward-profile: %v", err)
		}
	}
	if socket == "" {
		socket = agent.ForwardSocketPath(cacheSocket)
	}
	if abs, err := filepath.Abs(socket); err == nil {
		socket = abs
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("latch agent: find latch's own executable to run latch token: %w", err)
	}
	warnUnknownProfiles(cmd, profiles)
	// latch token runs with the agent's environment, and uses this agent
	// as its session cache when it needs one.
	env := append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "LATCH_AGENT_SOCK=")
	}), "LATCH_AGENT_SOCK="+cacheSocket)
	return &agent.ForwardOptions{Socket: socket, Profiles: slices.Compact(slices.Sorted(slices.Values(profiles))),
		Token: agent.ExecToken(exe, env)}, nil
}

// warnUnknownProfiles warns about forwarded profiles this machine does not
// have (yet): a typo would otherwise show only on the remote box.
func warnUnknownProfiles(cmd *cobra.Command, profiles []string) {
	home, err := vault.Home()
	if err != nil {
		return
	}
	cfg, err := vault.LoadConfig(home)
	if err != nil {
		return
	}
	for _, p := range profiles {
		if _, err := cfg.Get(p); err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "latch agent: warning: there is no profile %q here (yet); log in with latch login --profile %s\n", p, p)
		}
	}
}

// forwardHint tells the user how to forward the socket.
func forwardHint(w io.Writer, fo *agent.ForwardOptions) {
	fmt.Fprintf(w, `latch agent: forwarding socket %s hands out tokens of: %s
latch agent: forward it (never the agent's own socket) with
  ssh -o ExitOnForwardFailure=yes -R /tmp/latch-fwd.sock:%s HOST
and on HOST run
  LATCH_AGENT_SOCK=/tmp/latch-fwd.sock latch token --profile %s
`, fo.Socket, strings.Join(fo.Profiles, ", "), fo.Socket, fo.Profiles[0])
}

// agentForward is the token source of a latch agent forwarded to this
// machine's agent socket, for profiles that home does not have. It looks
// for the agent only when asked for a token.
func agentForward(home string) flows.TokenSource {
	sock, err := agent.SocketPath()
	if err != nil {
		return nil
	}
	return &flows.AgentForward{Socket: sock, Home: home}
}
