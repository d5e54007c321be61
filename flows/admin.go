package flows

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/latch-dev/latch/client"
)

// This file is the account's view of latch serve's roles, notes, admin API
// and audit log: thin, UI-agnostic wrappers over the client that add the
// profile's token (rotating once on a refused one) and turn a user's name
// into the account id the admin API wants.

// Roles are latch serve's built-in roles, least privileged first (the
// server's own list is server/rbac.go; these are what the front ends offer).
var Roles = []string{"viewer", "editor", "admin", "superadmin"}

// IsAdmin reports whether roles may administer accounts (admin or above);
// the server checks again on every call.
func IsAdmin(roles []string) bool {
	return slices.Contains(roles, "admin") || slices.Contains(roles, "superadmin")
}

// Notes lists every note the profile may read, newest first.
func (e *Env) Notes(ctx context.Context, profile string) ([]client.Note, error) {
	return authed(ctx, e, profile, func(c *client.Client, tok string) ([]client.Note, error) { return c.Notes(ctx, tok) })
}

// Note reads one note.
func (e *Env) Note(ctx context.Context, profile, id string) (*client.Note, error) {
	return authed(ctx, e, profile, func(c *client.Client, tok string) (*client.Note, error) { return c.Note(ctx, tok, id) })
}

// AddNote creates a note owned by the profile's account.
func (e *Env) AddNote(ctx context.Context, profile, text string) (*client.Note, error) {
	return authed(ctx, e, profile, func(c *client.Client, tok string) (*client.Note, error) { return c.AddNote(ctx, tok, text) })
}

// EditNote replaces a note's text (its owner, or notes:write).
func (e *Env) EditNote(ctx context.Context, profile, id, text string) (*client.Note, error) {
	return authed(ctx, e, profile, func(c *client.Client, tok string) (*client.Note, error) {
		return c.EditNote(ctx, tok, id, text)
	})
}

// DeleteNote deletes a note (its owner, or notes:delete).
func (e *Env) DeleteNote(ctx context.Context, profile, id string) error {
	_, err := authed(ctx, e, profile, func(c *client.Client, tok string) (struct{}, error) {
		return struct{}{}, c.DeleteNote(ctx, tok, id)
	})
	return err
}

// AdminUsers searches the server's accounts (users:read).
func (e *Env) AdminUsers(ctx context.Context, profile, q string, limit, offset int) (*client.UserPage, error) {
	return authed(ctx, e, profile, func(c *client.Client, tok string) (*client.UserPage, error) {
		return c.AdminUsers(ctx, tok, q, limit, offset)
	})
}

// AdminUser shows one account, named by id or username, with its sessions.
func (e *Env) AdminUser(ctx context.Context, profile, user string) (*client.AdminUser, error) {
	return authed(ctx, e, profile, func(c *client.Client, tok string) (*client.AdminUser, error) {
		id, err := resolveUser(ctx, c, tok, user)
		if err != nil {
			return nil, err
		}
		return c.AdminUser(ctx, tok, id)
	})
}

// Admin actions on one account, for AdminAction.
const (
	ActionLock         = "lock"
	ActionUnlock       = "unlock"
	ActionRequireReset = "require-password-reset"
)

// AdminAction locks, unlocks or demands a password reset of the account
// named by id or username, and returns its id.
func (e *Env) AdminAction(ctx context.Context, profile, user, action string) (string, error) {
	return authed(ctx, e, profile, func(c *client.Client, tok string) (string, error) {
		id, err := resolveUser(ctx, c, tok, user)
		if err != nil {
			return "", err
		}
		switch action {
		case ActionLock:
			err = c.LockUser(ctx, tok, id)
		case ActionUnlock:
			err = c.UnlockUser(ctx, tok, id)
		case ActionRequireReset:
			err = c.RequirePasswordReset(ctx, tok, id)
		default:
			err = fmt.Errorf("unknown admin action %q", action)
		}
		return id, err
	})
}

// SetRole grants (grant true) or revokes a role of the account named by id
// or username, and returns the account's roles now. Revoking ends the
// account's sessions; either change reaches its tokens at the next refresh.
func (e *Env) SetRole(ctx context.Context, profile, user, role string, grant bool) ([]string, error) {
	return authed(ctx, e, profile, func(c *client.Client, tok string) ([]string, error) {
		id, err := resolveUser(ctx, c, tok, user)
		if err != nil {
			return nil, err
		}
		if grant {
			return c.GrantRole(ctx, tok, id, role)
		}
		return c.RevokeRole(ctx, tok, id, role)
	})
}

// AdminRevokeSession ends any account's session (sessions:revoke_any).
func (e *Env) AdminRevokeSession(ctx context.Context, profile, id string) error {
	_, err := authed(ctx, e, profile, func(c *client.Client, tok string) (struct{}, error) {
		return struct{}{}, c.AdminRevokeSession(ctx, tok, id)
	})
	return err
}

// Events reads one page of audit events: the profile's own, or with all
// every account's (audit:read), filtered by q.
func (e *Env) Events(ctx context.Context, profile string, all bool, q client.EventQuery) (*client.EventPage, error) {
	return authed(ctx, e, profile, func(c *client.Client, tok string) (*client.EventPage, error) {
		if all {
			return c.AdminEvents(ctx, tok, q)
		}
		return c.Events(ctx, tok, q)
	})
}

// resolveUser turns a username into an account id; a number is taken as
// an id already. Names match exactly, ignoring case.
func resolveUser(ctx context.Context, c *client.Client, tok, user string) (string, error) {
	user = strings.TrimSpace(user)
	if user == "" {
		return "", fmt.Errorf("no user given: name an account by username or id (latch admin users list shows them)")
	}
	if isDigits(user) {
		return user, nil
	}
	page, err := c.AdminUsers(ctx, tok, user, 50, 0)
	if err != nil {
		return "", err
	}
	for _, u := range page.Users {
		if strings.EqualFold(u.Username, user) {
			return u.ID, nil
		}
	}
	return "", fmt.Errorf("%w: no account is named %q; search with latch admin users list --search TEXT", client.ErrNotFound, user)
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
