package flows

import (
	"context"
	"errors"
	"fmt"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/vault"
)

// LoginRequest is a password login to a latch server.
type LoginRequest struct {
	// Profile names the profile to create or replace; "" picks one with
	// ProfileName.
	Profile    string
	Server     string
	Identifier string // username or email
	Password   string
}

// LoginDefaults fills a login's missing server and identifier from a known
// profile — the named one, or the current one when no server is given either
// — so that logging in again needs neither. The identifier is filled only
// when the server is the profile's.
func (e *Env) LoginDefaults(req LoginRequest) LoginRequest {
	if req.Server != "" && req.Identifier != "" {
		return req
	}
	if req.Profile == "" && req.Server != "" {
		return req
	}
	p, err := e.Profile(req.Profile)
	if err != nil {
		return req
	}
	req.Profile = p.Name
	if req.Server == "" {
		req.Server = p.Server
	}
	if req.Identifier == "" && sameServer(req.Server, p.Server) {
		req.Identifier = p.Username
	}
	return req
}

// LoginResult is the outcome of Login. When MFA is set the password was
// right but the account needs a second factor: nothing was saved yet.
type LoginResult struct {
	Profile vault.Profile
	MFA     *client.MFARequiredError
	// Unverified: the account was created, and the server logs nobody in
	// before the email is verified (latch serve --require-verified-email);
	// Profile is not saved.
	Unverified bool
}

// Login logs in with a password, saves the tokens to the vault, and records
// the profile (making it current). Tokens are saved before the profile, so a
// failure never leaves a profile that claims a session it does not have.
func (e *Env) Login(ctx context.Context, req LoginRequest) (*LoginResult, error) {
	if req.Server == "" || req.Identifier == "" || req.Password == "" {
		return nil, errors.New("login needs a server, a username or email, and a password")
	}
	if err := e.vaultReady(ctx); err != nil {
		return nil, err
	}
	c, err := e.client(req.Server)
	if err != nil {
		return nil, err
	}
	cfg, err := e.Config()
	if err != nil {
		return nil, err
	}
	name := req.Profile
	if name == "" {
		name = ProfileName(cfg, c.BaseURL(), req.Identifier)
	}
	if err := vault.ValidateName(name); err != nil {
		return nil, err
	}
	if old, err := cfg.Get(name); err == nil && old.Kind != vault.KindAccount {
		return nil, fmt.Errorf("profile %q is an OpenID Connect profile; choose another --profile for a latch account", name)
	}

	tokens, err := c.Login(ctx, req.Identifier, req.Password)
	var mfa *client.MFARequiredError
	if errors.As(err, &mfa) {
		return &LoginResult{Profile: vault.Profile{Name: name, Server: c.BaseURL(), Username: req.Identifier, Kind: vault.KindAccount}, MFA: mfa}, nil
	}
	if err != nil {
		return nil, err
	}
	return e.finishLogin(ctx, c, name, req.Identifier, tokens)
}

// finishLogin saves a fresh token pair and records the profile. The
// username comes from the server, so a login by email still names the user.
func (e *Env) finishLogin(ctx context.Context, c *client.Client, name, identifier string, tokens *client.Tokens) (*LoginResult, error) {
	// The login worked; the account's name is a nicety. If it cannot be
	// read, the identifier will do rather than losing the session.
	p := vault.Profile{Name: name, Server: c.BaseURL(), Username: identifier, Kind: vault.KindAccount}
	if me, err := c.Me(ctx, tokens.AccessToken); err == nil {
		p.Username = me.Username
		p.MFA = me.MFAEnabled
		p.Email, p.EmailVerified = me.Email, me.EmailVerified
		p.Roles = me.Roles
	}
	previous := e.previousSession(ctx, name)
	if err := e.Tokens().Save(ctx, name, tokens); err != nil {
		return nil, err
	}
	defer previous.end(ctx)
	err := vault.UpdateConfig(ctx, e.Home, func(cfg *vault.Config) error {
		if err := cfg.Put(p); err != nil {
			return err
		}
		cfg.Current = name
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("logged in and saved the tokens, but not the profile: %w", err)
	}
	return &LoginResult{Profile: p}, nil
}

// SignupRequest creates an account on a latch server.
type SignupRequest struct {
	Profile  string
	Server   string
	Username string
	Email    string
	Password string
	// NoLogin registers without logging in.
	NoLogin bool
}

// Signup registers an account and, unless NoLogin, logs in to it. Field
// errors from the server come back as a *client.APIError with Fields set.
func (e *Env) Signup(ctx context.Context, req SignupRequest) (*LoginResult, error) {
	if req.Server == "" || req.Username == "" || req.Email == "" || req.Password == "" {
		return nil, errors.New("signup needs a server, a username, an email and a password")
	}
	if !req.NoLogin {
		if err := e.vaultReady(ctx); err != nil {
			return nil, err
		}
	}
	c, err := e.client(req.Server)
	if err != nil {
		return nil, err
	}
	if _, err := c.Register(ctx, req.Username, req.Email, req.Password); err != nil {
		return nil, err
	}
	if req.NoLogin {
		return &LoginResult{Profile: vault.Profile{Name: req.Profile, Server: c.BaseURL(), Username: req.Username, Kind: vault.KindAccount}}, nil
	}
	res, err := e.Login(ctx, LoginRequest{Profile: req.Profile, Server: req.Server, Identifier: req.Username, Password: req.Password})
	if errors.Is(err, client.ErrEmailUnverified) {
		return &LoginResult{Unverified: true, Profile: vault.Profile{Name: req.Profile, Server: c.BaseURL(),
			Username: req.Username, Email: req.Email, Kind: vault.KindAccount}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("the account was created, but logging in failed: %w", err)
	}
	return res, nil
}

// previousSession is the session a new login replaces: the profile's saved
// refresh token and where it was issued. Left alone it would stay open at
// the server until it expires, with nobody holding it.
type previousSession struct {
	e       *Env
	profile vault.Profile
	refresh string
}

// previousSession reads what name holds before a login replaces it; nil
// when it holds no session (or it cannot be read: there is then nothing
// this login could end).
func (e *Env) previousSession(ctx context.Context, name string) *previousSession {
	cfg, err := e.Config()
	if err != nil {
		return nil
	}
	p, err := cfg.Get(name)
	if err != nil {
		return nil
	}
	rt, err := e.Tokens().RefreshToken(ctx, name)
	if err != nil || rt == "" {
		return nil
	}
	return &previousSession{e: e, profile: p, refresh: rt}
}

// end logs the replaced session out at its server (or revokes it at its
// OpenID provider). It runs once the new session is saved, and is best
// effort: a failure is only reported through Warn, since the new session
// stands and the old one still ends when its refresh token expires.
func (s *previousSession) end(ctx context.Context) {
	if s == nil {
		return
	}
	p := s.profile
	var err error
	if p.Kind == vault.KindOIDC {
		var prov *client.Provider
		if prov, err = (&providerRefresher{e: s.e, p: p}).provider(ctx); err == nil {
			err = prov.Revoke(ctx, s.refresh)
		}
		if errors.Is(err, client.ErrNotSupported) {
			err = nil // nothing more can be done from here
		}
	} else {
		var c *client.Client
		if c, err = s.e.client(p.Server); err == nil {
			err = c.Logout(ctx, s.refresh)
		}
	}
	if err != nil && !refused(err) && s.e.Warn != nil {
		s.e.Warn(fmt.Sprintf("logged in, but the session this login replaced in profile %q could not be ended (%v); "+
			"it ends by itself when its refresh token expires", p.Name, err))
	}
}
