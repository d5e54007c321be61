package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/vault"
)

// newCredentialCmd groups the credential helpers other tools call on every
// run: kubectl's exec plugin and git's credential helper.
func newCredentialCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "credential",
		Short: "Credential helpers for kubectl and git (called by those tools)",
		Example: `  latch kube setup --profile work     # makes kubectl run latch credential kubernetes
  latch git setup --host https://git.example.com --profile work
  latch credential kubernetes --profile work | jq .status.expirationTimestamp`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newCredentialKubernetesCmd(g), newCredentialGitCmd(g))
	return cmd
}

// setupProfile is the profile a setup command (kube, git, docker) writes
// into another tool's configuration: a profile of this machine, or, on a box
// whose tokens come from a forwarded latch agent, one that agent serves
// (forwarded) — asked for a token once, so that a profile it refuses is
// refused here with its reason rather than with advice to log in on this box.
func setupProfile(ctx context.Context, e *flows.Env, name string) (p vault.Profile, forwarded bool, err error) {
	p, err = e.Profile(name)
	if err == nil || name == "" || e.Forward == nil || !errors.Is(err, flows.ErrUnknownProfile) {
		return p, false, err
	}
	if _, ferr := e.Forward.Token(ctx, name, flows.TokenOptions{}); ferr != nil {
		if errors.Is(ferr, flows.ErrUnknownProfile) {
			return p, false, err
		}
		return p, false, ferr
	}
	return vault.Profile{Name: name}, true, nil
}

// helperAdvice is err, from a credential helper a tool runs without a
// terminal (git, docker, kubectl), with what to do: a session that is over
// needs a login in a terminal, which the tool cannot offer. The login
// command is named once, whether or not err already names it.
func helperAdvice(tool string, err error, profile string) error {
	if err == nil || errors.Is(err, flows.ErrUnknownProfile) || !errors.Is(err, flows.ErrLoginRequired) {
		return err
	}
	if strings.Contains(err.Error(), "latch login") {
		return fmt.Errorf("%w; %s cannot ask for a login itself: log in in a terminal, then retry", err, tool)
	}
	return fmt.Errorf("%w; %s cannot ask for a login itself: run latch login%s in a terminal, then retry", err, tool, profileFlag(profile))
}
