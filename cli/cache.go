package cli

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/latch-dev/latch/agent"
	"github.com/latch-dev/latch/vault"
)

// openCache picks the session cache for home (see envCache). In auto mode a
// missing cache is not an error: each latch then unlocks the vault itself.
// With g.startAgent, a latch agent is started where the kernel keyring
// cannot be used.
func (g *globals) openCache(ctx context.Context, home string) (vault.Cache, error) {
	scope := vault.CacheScope(home)
	mode := os.Getenv(envCache)
	switch mode {
	case "", "auto":
		if c, err := vault.NewKernelCache(scope); err == nil {
			return c, nil
		}
		return g.agentOrNone(ctx, scope)
	case "kernel":
		c, err := vault.NewKernelCache(scope)
		if err != nil {
			return nil, fmt.Errorf("%s=kernel: %w", envCache, err)
		}
		return c, nil
	case "agent":
		return g.agentOrNone(ctx, scope)
	case "none":
		return nil, nil
	default:
		return nil, usagef("%s=%q: use auto, kernel, agent or none", envCache, mode)
	}
}

// agentOrNone is the running agent's cache, or none when no agent runs.
func (g *globals) agentOrNone(ctx context.Context, scope string) (vault.Cache, error) {
	c, err := g.agentCache(ctx, scope)
	switch {
	case errors.Is(err, vault.ErrNoCache) && !g.startAgent:
		return nil, nil
	case err != nil:
		return nil, err
	}
	return c, nil
}

// agentCache dials the latch agent, starting it first when g.startAgent.
func (g *globals) agentCache(ctx context.Context, scope string) (*agent.Client, error) {
	sock, err := agent.SocketPath()
	if err != nil {
		return nil, err
	}
	c, err := agent.Dial(ctx, sock, scope)
	if err == nil || !g.startAgent || !errors.Is(err, vault.ErrNoCache) {
		return c, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("start the latch agent: %w", err)
	}
	if err := agent.Start(ctx, exe, []string{"agent"}, sock); err != nil {
		return nil, fmt.Errorf("start the latch agent: %w", err)
	}
	return agent.Dial(ctx, sock, scope)
}
