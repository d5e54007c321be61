package flows

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/vault"
)

// Token returns a valid access token for the named profile ("" = current),
// refreshing through the token manager when needed.
func (e *Env) Token(ctx context.Context, profile string) (string, error) {
	p, c, err := e.account(profile)
	if err != nil {
		return "", err
	}
	return e.Tokens().AccessToken(ctx, p.Name, c)
}

// RefreshNow rotates the profile's tokens at once ("refresh now" in the TUI).
func (e *Env) RefreshNow(ctx context.Context, profile string) error {
	p, c, err := e.account(profile)
	if err != nil {
		return err
	}
	_, err = e.Tokens().Rotate(ctx, p.Name, c, "")
	return err
}

// account resolves an account profile and a client for its server.
func (e *Env) account(name string) (vault.Profile, *client.Client, error) {
	p, err := e.Profile(name)
	if err != nil {
		return p, nil, err
	}
	if p.Kind != vault.KindAccount {
		return p, nil, fmt.Errorf("profile %q is an OpenID Connect profile, not a latch account", p.Name)
	}
	c, err := e.client(p.Server)
	return p, c, err
}

// authed runs call with a valid access token. If the server refuses the
// token (revoked session, clock skew), it rotates once and tries again; a
// refusal of the refresh token then means the user must log in again.
func authed[T any](ctx context.Context, e *Env, profile string, call func(c *client.Client, token string) (T, error)) (T, error) {
	var zero T
	p, c, err := e.account(profile)
	if err != nil {
		return zero, err
	}
	tm := e.Tokens()
	tok, err := tm.AccessToken(ctx, p.Name, c)
	if err != nil {
		return zero, err
	}
	v, err := call(c, tok)
	if !errors.Is(err, client.ErrUnauthorized) {
		return v, err
	}
	tok, rerr := tm.Rotate(ctx, p.Name, c, tok)
	if rerr != nil {
		return zero, rerr
	}
	v, err = call(c, tok)
	if errors.Is(err, client.ErrUnauthorized) {
		return zero, fmt.Errorf("profile %q: the server refuses fresh tokens: %w: %w", p.Name, ErrLoginRequired, err)
	}
	return v, err
}

// Me returns the account behind the profile.
func (e *Env) Me(ctx context.Context, profile string) (*client.User, error) {
	return authed(ctx, e, profile, func(c *client.Client, tok string) (*client.User, error) { return c.Me(ctx, tok) })
}

// Protected calls the server's protected demo route and returns its message.
func (e *Env) Protected(ctx context.Context, profile string) (string, error) {
	return authed(ctx, e, profile, func(c *client.Client, tok string) (string, error) { return c.Protected(ctx, tok) })
}

// Sessions lists the account's sessions on the server.
func (e *Env) Sessions(ctx context.Context, profile string) ([]client.Session, error) {
	return authed(ctx, e, profile, func(c *client.Client, tok string) ([]client.Session, error) { return c.Sessions(ctx, tok) })
}

// RevokeSession ends one of the account's sessions on the server.
func (e *Env) RevokeSession(ctx context.Context, profile, id string) error {
	_, err := authed(ctx, e, profile, func(c *client.Client, tok string) (struct{}, error) {
		return struct{}{}, c.RevokeSession(ctx, tok, id)
	})
	return err
}

// APIResponse is the answer to an arbitrary authenticated request.
type APIResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// API makes an authenticated request to a path of the profile's server, like
// gh api. Any answer is a response, not an error — whatever its status or
// content type — except 401, which is retried once with fresh tokens.
func (e *Env) API(ctx context.Context, profile, method, path string, body []byte) (*APIResponse, error) {
	return authed(ctx, e, profile, func(c *client.Client, tok string) (*APIResponse, error) {
		st, h, b, err := c.Do(ctx, method, path, body, tok)
		if st == 0 {
			return nil, err // no answer at all
		}
		r := &APIResponse{Status: st, Header: h, Body: b}
		if st == http.StatusUnauthorized {
			return r, fmt.Errorf("%s %s: %w", method, path, client.ErrUnauthorized)
		}
		return r, nil
	})
}

// LogoutResult says what Logout did.
type LogoutResult struct {
	Profile vault.Profile
	// Revoked counts the server sessions ended: 1, or all of the account's
	// with Everywhere. Zero when the session had already ended.
	Revoked int
}

// Logout ends the profile's session on the server — every session of the
// account when everywhere is set — and then deletes the saved tokens. The
// profile stays, so logging in again needs no --server. If the server cannot
// be reached the tokens are kept and the error says so: deleting them would
// leave a live session nobody can end. Local forgets the session on this
// machine only, without asking the server.
func (e *Env) Logout(ctx context.Context, profile string, everywhere, local bool) (*LogoutResult, error) {
	p, c, err := e.account(profile)
	if err != nil {
		return nil, err
	}
	tm := e.Tokens()
	res := &LogoutResult{Profile: p}
	if local {
		return res, tm.Forget(ctx, p.Name)
	}
	if everywhere {
		n, err := e.revokeOthers(ctx, p.Name)
		res.Revoked = n
		if err != nil {
			return res, err
		}
	}
	rt, err := tm.RefreshToken(ctx, p.Name)
	if err != nil {
		return res, err
	}
	switch err := c.Logout(ctx, rt); {
	case err == nil:
		res.Revoked++
	case refused(err):
		// The session had already ended; there is nothing left to revoke.
	default:
		return res, fmt.Errorf("log out of %s: %w; the saved session was kept (run latch logout --local to forget it on this machine only)",
			p.Server, err)
	}
	return res, tm.Forget(ctx, p.Name)
}

// revokeOthers ends every session of the account except the current one,
// which Logout ends with its refresh token.
func (e *Env) revokeOthers(ctx context.Context, profile string) (int, error) {
	list, err := e.Sessions(ctx, profile)
	if err != nil {
		return 0, fmt.Errorf("list sessions to log out everywhere: %w", err)
	}
	n := 0
	for _, s := range list {
		if s.Current {
			continue
		}
		if err := e.RevokeSession(ctx, profile, s.ID); err != nil && !errors.Is(err, client.ErrNotFound) {
			return n, fmt.Errorf("revoke session %s: %w", s.ID, err)
		}
		n++
	}
	return n, nil
}

// RemoveProfile deletes a profile. A profile with a saved session is only
// removed with force, because removing it does not end the session on the
// server; with force its tokens are deleted too.
func (e *Env) RemoveProfile(ctx context.Context, name string, force bool) error {
	if err := vault.ValidateName(name); err != nil {
		return err
	}
	cfg, err := e.Config()
	if err != nil {
		return err
	}
	if _, err := cfg.Get(name); err != nil {
		return fmt.Errorf("no profile named %q", name)
	}
	tm := e.Tokens()
	_, err = tm.RefreshToken(ctx, name)
	switch {
	case err == nil && !force:
		return fmt.Errorf("profile %q is logged in: run latch logout --profile %s first, or pass --force to forget the session without ending it on the server",
			name, name)
	case err == nil:
		if err := tm.Forget(ctx, name); err != nil {
			return err
		}
	case errors.Is(err, vault.ErrNotFound):
	case !force:
		return fmt.Errorf("cannot tell whether profile %q is logged in (%w); pass --force to remove it anyway", name, err)
	}
	return vault.UpdateConfig(ctx, e.Home, func(c *vault.Config) error { return c.Remove(name) })
}

// UseProfile makes name the current profile.
func (e *Env) UseProfile(ctx context.Context, name string) error {
	return vault.UpdateConfig(ctx, e.Home, func(c *vault.Config) error {
		if _, err := c.Get(name); err != nil {
			return fmt.Errorf("no profile named %q; see latch profile list", name)
		}
		c.Current = name
		return nil
	})
}
