package flows

import (
	"context"
	"errors"
	"fmt"

	"github.com/latch-dev/latch/agent"
	"github.com/latch-dev/latch/vault"
)

// AgentForward is the TokenSource of a latch agent forwarded over SSH
// (latch agent --forwardable on the laptop, ssh -R of its forwarding socket,
// LATCH_AGENT_SOCK naming the forwarded socket on this box). It looks for the
// agent only when asked for a token, so commands on profiles of this machine
// never pay for it; when none answers on Socket, it fails the way an unknown
// profile does.
//
// It holds nothing: each token comes from the agent, and nothing of it is
// written to this machine's vault, cache or home.
type AgentForward struct {
	// Socket is where the forwarded agent may answer (agent.SocketPath).
	Socket string
	// Home is this machine's latch home, whose profiles the unknown-profile
	// error lists.
	Home string
}

var _ TokenSource = (*AgentForward)(nil)

// Token asks the forwarded agent for profile's access token. A profile the
// agent does not forward is an error naming --forward-profile; a session
// over on the agent's machine matches ErrLoginRequired; its vault locked,
// vault.ErrLocked. It never logs in, here or there.
func (f *AgentForward) Token(ctx context.Context, profile string, opts TokenOptions) (*IssuedToken, error) {
	if f.Socket == "" {
		return nil, f.unknown(profile)
	}
	c, err := agent.DialForward(ctx, f.Socket)
	if errors.Is(err, agent.ErrNotForwarding) {
		return nil, f.unknown(profile)
	}
	if profile == "" {
		// Which profile, this machine cannot tell: the agent hands out
		// tokens by name only.
		if c != nil {
			c.Close()
		}
		return nil, fmt.Errorf("%w; the latch agent forwarded to %s hands out tokens by name: add --profile NAME", f.unknown(""), f.Socket)
	}
	if err != nil {
		return nil, fmt.Errorf("no profile named %q here, and the forwarded latch agent cannot be reached: %w", profile, err)
	}
	defer c.Close()
	tok, err := c.Token(ctx, agent.TokenRequest{Profile: profile, MinValid: opts.MinValid, IDToken: opts.IDToken})
	if errors.Is(err, agent.ErrRemoteLogin) {
		return nil, fmt.Errorf("%w (%w)", err, ErrLoginRequired)
	}
	if err != nil {
		return nil, err
	}
	it := &IssuedToken{Profile: profile, AccessToken: tok.AccessToken, TokenType: tok.TokenType, Expiry: tok.Expiry}
	if opts.IDToken {
		it.IDToken = tok.IDToken
	}
	return it, nil
}

// unknown is the error for a profile that exists neither here nor behind a
// forwarded agent ("" for none named): the same as without one.
func (f *AgentForward) unknown(profile string) error {
	cfg, err := vault.LoadConfig(f.Home)
	if err != nil {
		return err
	}
	if _, err := pickProfile(cfg, profile); err != nil {
		return err
	}
	// The profile has appeared since TokenFor looked: another latch
	// logged in meanwhile. Asking again is the answer.
	return fmt.Errorf("profile %q was made while this latch ran: run the command again", profile)
}
