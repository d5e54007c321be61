package flows

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/vault"
)

// RecoveryTarget names the account a recovery step is for: a server and a
// username or email. Empty fields are filled from the named profile, or the
// current one (see LoginDefaults).
type RecoveryTarget struct {
	Profile    string
	Server     string
	Identifier string
}

// ErrNoTarget means a recovery step does not know which server or account
// it is for: the caller must name them (a usage error in the CLI).
var ErrNoTarget = errors.New("no server or account named")

// resolve fills t's blanks from the profiles and checks what must be there.
func (e *Env) resolve(t RecoveryTarget, needIdentifier bool) (RecoveryTarget, error) {
	req := e.LoginDefaults(LoginRequest{Profile: t.Profile, Server: t.Server, Identifier: t.Identifier})
	t.Profile, t.Server, t.Identifier = req.Profile, req.Server, req.Identifier
	if t.Server == "" {
		return t, fmt.Errorf("%w: no server to ask: pass --server URL (or log in once, so latch remembers it)", ErrNoTarget)
	}
	if needIdentifier && strings.TrimSpace(t.Identifier) == "" {
		return t, fmt.Errorf("%w: pass -u USERNAME_OR_EMAIL", ErrNoTarget)
	}
	return t, nil
}

// ForgotPassword asks the server to mail a reset token to the account's
// address. The server answers the same whether the account exists or not,
// so success only means "if it exists, a mail is on its way". It returns
// the target it used, for the message.
func (e *Env) ForgotPassword(ctx context.Context, t RecoveryTarget) (RecoveryTarget, error) {
	t, err := e.resolve(t, true)
	if err != nil {
		return t, err
	}
	c, err := e.client(t.Server)
	if err != nil {
		return t, err
	}
	return t, c.ForgotPassword(ctx, t.Identifier)
}

// ResetRequest is the second step of a password reset: the mailed token, the
// new password and, when the account has two-factor on, a code.
type ResetRequest struct {
	Profile     string // whose server to use when Server is empty
	Server      string
	Token       string
	NewPassword string
	Code        string // TOTP or backup code; "" when the account has none
	// UseBackupCode answers the second factor with the profile's next
	// unused backup code saved in the vault, as login does.
	UseBackupCode bool
}

// ResetResult says what a reset did to the local profiles.
type ResetResult struct {
	Server string
	// LoggedOut are the profiles on that server whose session the reset
	// ended (the server honoured their refresh token just before and
	// refused it just after): their saved tokens were removed, so they
	// read as logged out.
	LoggedOut []string
	// Unchecked are profiles on that server whose session could not be
	// checked (server unreachable, vault error); their tokens are kept.
	Unchecked []string
}

// ResetPassword sets a new password with a mailed token. When the account
// has two-factor on and Code is empty, the error matches
// client.ErrMFARequired: ask for a code and call again with the same token
// (the server spends the token only on success).
//
// A reset ends every session of the account at the server, but latch does
// not know which local profile the token's account is. So it asks: each
// account profile on the same server tries a refresh before the reset and
// after it, and one the server honoured before and refuses after is logged
// out locally (its tokens are deleted, since the server has revoked them,
// and the access token must not be handed out until it expires). A profile
// whose refresh still works is another account, and one already refused
// before is not the reset's doing: both are left alone.
func (e *Env) ResetPassword(ctx context.Context, req ResetRequest) (*ResetResult, error) {
	t, err := e.resolve(RecoveryTarget{Profile: req.Profile, Server: req.Server}, false)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.Token) == "" {
		return nil, errors.New("no reset token: paste the token from the mail (latch password forgot sends one)")
	}
	if req.NewPassword == "" {
		return nil, errors.New("no new password given")
	}
	c, err := e.client(t.Server)
	if err != nil {
		return nil, err
	}
	code := strings.TrimSpace(req.Code)
	if req.UseBackupCode {
		if t.Profile == "" {
			return nil, errors.New("--use-backup-code needs a profile whose backup codes are saved: pass --profile NAME, or --code CODE")
		}
		if code, err = e.NextBackupCode(ctx, t.Profile); err != nil {
			return nil, err
		}
	}
	// Which local sessions on the server work before the reset: only those
	// can have been ended by it. A session already dead (another
	// account's, logged out or revoked elsewhere) is not this reset's doing
	// and its tokens are not ours to delete.
	alive := e.liveSessions(ctx, c.BaseURL())
	err = c.ResetPassword(ctx, strings.TrimSpace(req.Token), req.NewPassword, code)
	if req.UseBackupCode {
		switch {
		case err == nil:
			_ = e.markBackupCode(ctx, t.Profile, code, "used")
		case errors.Is(err, client.ErrInvalidCode):
			_ = e.markBackupCode(ctx, t.Profile, code, "refused")
		}
	}
	if err != nil {
		return nil, err
	}
	res := &ResetResult{Server: c.BaseURL()}
	e.endRevokedSessions(ctx, res, alive)
	return res, nil
}

// liveSessions refreshes each account profile on server that has a saved
// session and says which the server still honoured (true) and which it
// could not be asked about (false); those it refused are left out.
func (e *Env) liveSessions(ctx context.Context, server string) map[string]bool {
	live := map[string]bool{}
	cfg, err := e.Config()
	if err != nil {
		return live
	}
	for _, p := range cfg.Profiles {
		if p.Kind != vault.KindAccount || !sameServer(p.Server, server) {
			continue
		}
		if _, err := e.Tokens().Status(ctx, p.Name); err != nil {
			continue // no session saved, nothing to end
		}
		if err := e.RefreshNow(ctx, p.Name); err == nil || !refused(err) {
			live[p.Name] = err == nil
		}
	}
	return live
}

// endRevokedSessions logs out the profiles of alive (see liveSessions)
// whose session the server no longer honours after the reset.
func (e *Env) endRevokedSessions(ctx context.Context, res *ResetResult, alive map[string]bool) {
	cfg, err := e.Config()
	if err != nil {
		return
	}
	for _, p := range cfg.Profiles {
		checked, ok := alive[p.Name]
		if !ok || p.Kind != vault.KindAccount || !sameServer(p.Server, res.Server) {
			continue
		}
		if !checked {
			res.Unchecked = append(res.Unchecked, p.Name)
			continue
		}
		err := e.RefreshNow(ctx, p.Name)
		switch {
		case err == nil:
			// The server still honours it: another account.
		case refused(err):
			// The server itself refused the refresh token, just after
			// the reset: that session is the reset account's, and dead.
			// Any other failure keeps the tokens (Unchecked).
			if ferr := e.Tokens().Forget(ctx, p.Name); ferr != nil {
				res.Unchecked = append(res.Unchecked, p.Name)
				continue
			}
			res.LoggedOut = append(res.LoggedOut, p.Name)
		default:
			res.Unchecked = append(res.Unchecked, p.Name)
		}
	}
}

// ChangePassword replaces the logged-in account's password. The server
// mails a notice to the account's address.
func (e *Env) ChangePassword(ctx context.Context, profile, current, next string) error {
	if current == "" || next == "" {
		return errors.New("changing the password needs the current password and a new one")
	}
	_, err := authed(ctx, e, profile, func(c *client.Client, tok string) (struct{}, error) {
		return struct{}{}, c.ChangePassword(ctx, tok, current, next)
	})
	return err
}

// VerifyEmail confirms an address with a mailed token. It needs no
// session: the token alone proves the mail was read. The named (or current)
// profile's server is used when server is empty, and a profile on that
// server with the same address records it as verified.
func (e *Env) VerifyEmail(ctx context.Context, profile, server, token string) (*client.EmailState, error) {
	t, err := e.resolve(RecoveryTarget{Profile: profile, Server: server}, false)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(token) == "" {
		return nil, errors.New("no verification token: paste the token from the mail (latch email resend sends a new one)")
	}
	c, err := e.client(t.Server)
	if err != nil {
		return nil, err
	}
	st, err := c.VerifyEmail(ctx, strings.TrimSpace(token))
	if err != nil {
		return nil, err
	}
	e.recordEmail(ctx, c.BaseURL(), "", st)
	return st, nil
}

// ResendVerification asks for a new verification mail: for the logged-in
// profile's account when t.Identifier is empty, else for the named account
// without a session (the server answers the same whether it exists or not,
// for an account that cannot log in until it is verified).
func (e *Env) ResendVerification(ctx context.Context, t RecoveryTarget) error {
	if t.Identifier != "" {
		t, err := e.resolve(t, true)
		if err != nil {
			return err
		}
		c, err := e.client(t.Server)
		if err != nil {
			return err
		}
		return c.ResendVerificationFor(ctx, t.Identifier)
	}
	_, err := authed(ctx, e, t.Profile, func(c *client.Client, tok string) (struct{}, error) {
		return struct{}{}, c.ResendVerification(ctx, tok)
	})
	if errors.Is(err, client.ErrConflict) {
		// The server says it is verified already: remember that.
		if p, perr := e.Profile(t.Profile); perr == nil && p.Email != "" {
			e.recordEmail(ctx, p.Server, p.Name, &client.EmailState{Email: p.Email, Verified: true})
		}
		return fmt.Errorf("the email address is already verified: %w", err)
	}
	if errors.Is(err, ErrLoginRequired) || errors.Is(err, vault.ErrNotFound) {
		return fmt.Errorf("%w (without a session, name the account: latch email resend -u USERNAME_OR_EMAIL --server URL)", err)
	}
	return err
}

// ChangeEmail replaces the logged-in account's address; the new one is
// unverified until its mail is confirmed, and the old one gets a notice.
func (e *Env) ChangeEmail(ctx context.Context, profile, newEmail, password string) (*client.EmailState, error) {
	if strings.TrimSpace(newEmail) == "" || password == "" {
		return nil, errors.New("changing the email needs the new address and the account's password")
	}
	p, err := e.Profile(profile)
	if err != nil {
		return nil, err
	}
	st, err := authed(ctx, e, p.Name, func(c *client.Client, tok string) (*client.EmailState, error) {
		return c.ChangeEmail(ctx, tok, strings.TrimSpace(newEmail), password)
	})
	if err != nil {
		return nil, err
	}
	// A server that requires verified addresses answers a taken address
	// as if it had changed it; the account says what really happened.
	if now, err := e.EmailStatus(ctx, p.Name); err == nil {
		return now, nil
	}
	e.recordEmail(ctx, p.Server, p.Name, st)
	return st, nil
}

// EmailStatus asks the server for the profile's address and whether it is
// verified, and records both for Status.
func (e *Env) EmailStatus(ctx context.Context, profile string) (*client.EmailState, error) {
	p, err := e.Profile(profile)
	if err != nil {
		return nil, err
	}
	me, err := e.Me(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	st := &client.EmailState{Email: me.Email, Verified: me.EmailVerified != nil && *me.EmailVerified}
	if me.EmailVerified != nil {
		e.recordEmail(ctx, p.Server, p.Name, st)
	}
	return st, nil
}

// recordEmail notes st on the profile named (or, when name is "", on every
// account profile on server with that address), for status displays. It is
// a convenience, like setMFA: failing to record it is not an error.
func (e *Env) recordEmail(ctx context.Context, server, name string, st *client.EmailState) {
	_ = vault.UpdateConfig(ctx, e.Home, func(c *vault.Config) error {
		for _, p := range c.Profiles {
			match := p.Name == name
			if name == "" {
				match = p.Kind == vault.KindAccount && sameServer(p.Server, server) && strings.EqualFold(p.Email, st.Email)
			}
			if !match {
				continue
			}
			v := st.Verified
			p.Email, p.EmailVerified = st.Email, &v
			if err := c.Put(p); err != nil {
				return err
			}
		}
		return nil
	})
}

// DevMail lists the dev mailbox of a development server (latch serve --dev,
// latch demo), newest first; a server without one matches
// client.ErrNotFound.
func (e *Env) DevMail(ctx context.Context, server string) ([]client.DevMessage, error) {
	c, err := e.client(server)
	if err != nil {
		return nil, err
	}
	return c.DevMail(ctx)
}
