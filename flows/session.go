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
// refreshing through the token manager when needed — at the latch server for
// an account profile, at the OpenID provider for an OpenID one.
func (e *Env) Token(ctx context.Context, profile string) (string, error) {
	p, err := e.Profile(profile)
	if err != nil {
		return "", err
	}
	r, err := e.refresher(p)
	if err != nil {
		return "", err
	}
	return e.Tokens().AccessToken(ctx, p.Name, r)
}

// RefreshNow rotates the profile's tokens at once ("refresh now" in the TUI).
func (e *Env) RefreshNow(ctx context.Context, profile string) error {
	p, err := e.Profile(profile)
	if err != nil {
		return err
	}
	r, err := e.refresher(p)
	if err != nil {
		return err
	}
	_, err = e.Tokens().Rotate(ctx, p.Name, r, "")
	return err
}

// refresher is what refreshes p's tokens: its latch server for an account
// profile, its OpenID provider (discovered on first use) for an OpenID one.
func (e *Env) refresher(p vault.Profile) (Refresher, error) {
	if p.Kind == vault.KindOIDC {
		return &providerRefresher{e: e, p: p}, nil
	}
	return e.client(p.Server)
}

// providerRefresher sets up an OpenID profile's provider, as the login
// remembered it, only when a refresh is due, so that handing out a valid
// token costs no request.
type providerRefresher struct {
	e    *Env
	p    vault.Profile
	prov *client.Provider
}

func (r *providerRefresher) provider(ctx context.Context) (*client.Provider, error) {
	if r.prov != nil {
		return r.prov, nil
	}
	if r.p.Issuer == "" || r.p.ClientID == "" {
		return nil, fmt.Errorf("profile %q has no issuer or client id; log in again: %w", r.p.Name, ErrLoginRequired)
	}
	// The login's settings (secret, auth method, endpoints, CA) rebuild
	// the same client the login used.
	cfg, err := r.e.providerConfigOf(ctx, r.p)
	if err != nil {
		return nil, err
	}
	prov, err := r.e.discover(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("find the OpenID provider of profile %q at %s: %w", r.p.Name, r.p.Issuer, err)
	}
	r.prov = prov
	return prov, nil
}

// Refresh makes providerRefresher a Refresher. A provider that cannot be
// found is an error that keeps the saved tokens, like an unreachable server.
func (r *providerRefresher) Refresh(ctx context.Context, rt string) (*client.Tokens, error) {
	prov, err := r.provider(ctx)
	if err != nil {
		return nil, err
	}
	return prov.Refresh(ctx, rt)
}

// serverClient is a client for p's latch server: an account profile's, or
// an OpenID profile logged in with --server (the server accepts its
// provider's access tokens).
func (e *Env) serverClient(p vault.Profile) (*client.Client, error) {
	if p.Server == "" {
		return nil, fmt.Errorf("profile %q is signed in to the OpenID provider %s, not to a latch server; "+
			"this needs a latch account (add one with latch login --server URL)", p.Name, p.Issuer)
	}
	return e.client(p.Server)
}

// authed runs call with a client for the profile's latch server and a
// valid access token. If the server refuses the token (revoked session,
// clock skew), it rotates once and tries again; a refusal of the refresh
// token then means the user must log in again.
func authed[T any](ctx context.Context, e *Env, profile string, call func(c *client.Client, token string) (T, error)) (T, error) {
	var zero T
	p, err := e.Profile(profile)
	if err != nil {
		return zero, err
	}
	c, err := e.serverClient(p)
	if err != nil {
		return zero, err
	}
	r, err := e.refresher(p)
	if err != nil {
		return zero, err
	}
	return withToken(ctx, e, p, r, func(tok string) (T, error) { return call(c, tok) })
}

// withToken runs call with p's access token, rotating once when call's
// error matches client.ErrUnauthorized.
func withToken[T any](ctx context.Context, e *Env, p vault.Profile, r Refresher, call func(token string) (T, error)) (T, error) {
	var zero T
	tm := e.Tokens()
	tok, err := tm.AccessToken(ctx, p.Name, r)
	if err != nil {
		return zero, err
	}
	v, err := call(tok)
	if !errors.Is(err, client.ErrUnauthorized) {
		return v, err
	}
	tok, rerr := tm.Rotate(ctx, p.Name, r, tok)
	if rerr != nil {
		return zero, rerr
	}
	v, err = call(tok)
	if errors.Is(err, client.ErrUnauthorized) {
		return zero, fmt.Errorf("profile %q: the server refuses fresh tokens: %w: %w", p.Name, ErrLoginRequired, err)
	}
	return v, err
}

// Me returns the account behind the profile: the latch server's account
// for an account profile or an OpenID profile with a server, and for an
// OpenID profile without one what the provider's userinfo endpoint says
// (Username from preferred_username, else email, else the subject; Email;
// no ID — the subject is a string — nor dates).
func (e *Env) Me(ctx context.Context, profile string) (*client.User, error) {
	p, err := e.Profile(profile)
	if err != nil {
		return nil, err
	}
	if p.Kind != vault.KindOIDC || p.Server != "" {
		return authed(ctx, e, p.Name, func(c *client.Client, tok string) (*client.User, error) { return c.Me(ctx, tok) })
	}
	r := &providerRefresher{e: e, p: p}
	return withToken(ctx, e, p, r, func(tok string) (*client.User, error) {
		prov, err := r.provider(ctx)
		if err != nil {
			return nil, err
		}
		ui, err := prov.UserInfo(ctx, tok)
		if err != nil {
			return nil, err
		}
		return &client.User{Username: ui.Username(), Email: ui.Email}, nil
	})
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
	// ProviderNotTold, for an OpenID profile, says why the session was
	// forgotten on this machine without the provider revoking it (no
	// revocation endpoint, no refresh token, or the provider refused);
	// "" when the provider revoked it.
	ProviderNotTold string
}

// Logout ends the profile's session on the server — every session of the
// account when everywhere is set — and then deletes the saved tokens. The
// profile stays, so logging in again needs no --server. If the server cannot
// be reached the tokens are kept and the error says so: deleting them would
// leave a live session nobody can end. Local forgets the session on this
// machine only, without asking the server.
//
// For an OpenID profile the refresh token is revoked at the provider (RFC
// 7009) when it offers revocation; otherwise the session is only forgotten
// here and ProviderNotTold says why. Everywhere is for latch accounts only.
func (e *Env) Logout(ctx context.Context, profile string, everywhere, local bool) (*LogoutResult, error) {
	p, err := e.Profile(profile)
	if err != nil {
		return nil, err
	}
	tm := e.Tokens()
	res := &LogoutResult{Profile: p}
	if local {
		return res, tm.Forget(ctx, p.Name)
	}
	if p.Kind == vault.KindOIDC {
		if everywhere {
			return res, fmt.Errorf("profile %q is an OpenID Connect profile: logging out everywhere works for latch accounts only; "+
				"end other sessions at the provider", p.Name)
		}
		return e.logoutOIDC(ctx, p, res)
	}
	c, err := e.client(p.Server)
	if err != nil {
		return nil, err
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

// logoutOIDC revokes the refresh token at the provider, then forgets the
// tokens. An unreachable provider keeps them, as an unreachable server does.
func (e *Env) logoutOIDC(ctx context.Context, p vault.Profile, res *LogoutResult) (*LogoutResult, error) {
	tm := e.Tokens()
	rt, err := tm.RefreshToken(ctx, p.Name)
	if err != nil {
		return res, err
	}
	keep := func(err error) (*LogoutResult, error) {
		return res, fmt.Errorf("log out of %s: %w; the saved session was kept (run latch logout --local to forget it on this machine only)",
			p.Issuer, err)
	}
	if rt == "" {
		res.ProviderNotTold = "the provider issued no refresh token, so there is nothing to revoke; the access token stays valid until it expires"
		if ts, err := tm.Status(ctx, p.Name); err == nil && ts.AccessExpiresAt.Sub(e.now()) > client.NoExpiry/2 {
			// GitHub's OAuth apps: nothing ends such a token but the user.
			res.ProviderNotTold = "the provider issued no refresh token and the access token does not expire: " +
				"revoke it at the provider (on GitHub: Settings, Applications, Authorized OAuth Apps)"
		}
		return res, tm.Forget(ctx, p.Name)
	}
	r := &providerRefresher{e: e, p: p}
	prov, err := r.provider(ctx)
	if err != nil {
		return keep(err)
	}
	var oe *client.OAuthError
	switch err := prov.Revoke(ctx, rt); {
	case err == nil:
		res.Revoked = 1
	case errors.Is(err, client.ErrNotSupported):
		res.ProviderNotTold = "the provider offers no token revocation; the session ends there when its refresh token expires"
	case p.Confidential && errors.As(err, &oe) && (oe.Code == "invalid_client" || oe.Code == "unauthorized_client"):
		// The provider refused this client's secret (rotated there?),
		// not the token: the session is still alive there, and forgetting
		// its token would leave it so with nothing left to end it.
		return keep(err)
	case errors.As(err, &oe):
		res.ProviderNotTold = "the provider refused to revoke the token: " + err.Error()
	default:
		return keep(err)
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
		return unknownProfile(cfg, name)
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
	if err := vault.UpdateConfig(ctx, e.Home, func(c *vault.Config) error { return c.Remove(name) }); err != nil {
		return err
	}
	// A confidential client's secret goes with its profile.
	if err := e.Secrets.Delete(ctx, vault.ClientSecretKey(name)); err != nil {
		return fmt.Errorf("removed profile %q, but not its client secret from the vault: %w", name, err)
	}
	return nil
}

// UseProfile makes name the current profile.
func (e *Env) UseProfile(ctx context.Context, name string) error {
	return vault.UpdateConfig(ctx, e.Home, func(c *vault.Config) error {
		if _, err := c.Get(name); err != nil {
			return unknownProfile(c, name)
		}
		c.Current = name
		return nil
	})
}
