package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// AdminUser is one account as latch serve's admin API shows it.
type AdminUser struct {
	ID            string         `json:"id"`
	Username      string         `json:"username"`
	Email         string         `json:"email"`
	EmailVerified bool           `json:"email_verified"`
	Roles         []string       `json:"roles"`
	MFA           bool           `json:"mfa"`
	Locked        bool           `json:"locked"`
	CreatedAt     time.Time      `json:"created_at"`
	Sessions      []AdminSession `json:"sessions,omitempty"` // AdminUserByID only
}

// AdminSession is one session of an account, seen by an administrator.
type AdminSession struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	UserAgent  string    `json:"user_agent"`
	ClientID   string    `json:"client_id"`
}

// UserPage is one page of AdminUsers and how many match in all.
type UserPage struct {
	Users []AdminUser `json:"users"`
	Total int         `json:"total"`
}

type adminUserWire struct {
	ID            flexID    `json:"id"`
	Username      string    `json:"username"`
	Email         string    `json:"email"`
	EmailVerified bool      `json:"email_verified"`
	Roles         []string  `json:"roles"`
	MFA           bool      `json:"mfa"`
	Locked        bool      `json:"locked"`
	CreatedAt     time.Time `json:"created_at"`
	Sessions      []struct {
		ID         flexID    `json:"id"`
		CreatedAt  time.Time `json:"created_at"`
		LastUsedAt time.Time `json:"last_used_at"`
		UserAgent  string    `json:"user_agent"`
		ClientID   string    `json:"client_id"`
	} `json:"sessions"`
}

func (w adminUserWire) user(r *reply) (*AdminUser, error) {
	if w.ID == "" || w.Username == "" {
		return nil, shapeError(r, "has a user without id or username")
	}
	u := &AdminUser{ID: string(w.ID), Username: w.Username, Email: w.Email, EmailVerified: w.EmailVerified,
		Roles: w.Roles, MFA: w.MFA, Locked: w.Locked, CreatedAt: w.CreatedAt}
	if u.Roles == nil {
		u.Roles = []string{}
	}
	for _, s := range w.Sessions {
		u.Sessions = append(u.Sessions, AdminSession{ID: string(s.ID), CreatedAt: s.CreatedAt,
			LastUsedAt: s.LastUsedAt, UserAgent: s.UserAgent, ClientID: s.ClientID})
	}
	return u, nil
}

// AdminUsers searches the accounts (q matches name or email; empty lists
// all), limit at a time from offset. Needs users:read.
func (c *Client) AdminUsers(ctx context.Context, accessToken, q string, limit, offset int) (*UserPage, error) {
	v := url.Values{}
	if q != "" {
		v.Set("q", q)
	}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	if offset > 0 {
		v.Set("offset", strconv.Itoa(offset))
	}
	path := "/admin/users"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var w struct {
		Users *[]adminUserWire `json:"users"`
		Total int              `json:"total"`
	}
	r, err := c.bearerCall(ctx, http.MethodGet, path, nil, accessToken, http.StatusOK, &w)
	if err != nil {
		return nil, err
	}
	if w.Users == nil {
		return nil, shapeError(r, "has no users list")
	}
	page := &UserPage{Users: make([]AdminUser, 0, len(*w.Users)), Total: w.Total}
	for _, uw := range *w.Users {
		u, err := uw.user(r)
		if err != nil {
			return nil, err
		}
		page.Users = append(page.Users, *u)
	}
	return page, nil
}

// AdminUser shows one account with its sessions. A missing account
// matches ErrNotFound.
func (c *Client) AdminUser(ctx context.Context, accessToken, id string) (*AdminUser, error) {
	if id == "" {
		return nil, errors.New("show user: no user id given")
	}
	var w adminUserWire
	r, err := c.bearerCall(ctx, http.MethodGet, "/admin/users/"+url.PathEscape(id), nil, accessToken, http.StatusOK, &w)
	if err != nil {
		return nil, err
	}
	return w.user(r)
}

// LockUser locks an account and ends its sessions; UnlockUser undoes it.
func (c *Client) LockUser(ctx context.Context, accessToken, id string) error {
	return c.userAction(ctx, accessToken, id, "lock")
}

// UnlockUser lets a locked account log in again.
func (c *Client) UnlockUser(ctx context.Context, accessToken, id string) error {
	return c.userAction(ctx, accessToken, id, "unlock")
}

// RequirePasswordReset ends the account's sessions and mails it a reset
// link; it cannot log in until the password is reset.
func (c *Client) RequirePasswordReset(ctx context.Context, accessToken, id string) error {
	return c.userAction(ctx, accessToken, id, "require-password-reset")
}

func (c *Client) userAction(ctx context.Context, accessToken, id, action string) error {
	if id == "" {
		return errors.New(action + " user: no user id given")
	}
	_, err := c.bearerCall(ctx, http.MethodPost, "/admin/users/"+url.PathEscape(id)+"/"+action, nil, accessToken,
		http.StatusNoContent, nil)
	return err
}

// GrantRole gives an account a role and returns its roles now. An unknown
// role matches ErrValidation (or is an *APIError with status 400).
func (c *Client) GrantRole(ctx context.Context, accessToken, id, role string) ([]string, error) {
	return c.roleCall(ctx, http.MethodPut, accessToken, id, role)
}

// RevokeRole takes a role away (ending the account's sessions) and returns
// its roles now. Removing the last superadmin matches ErrConflict.
func (c *Client) RevokeRole(ctx context.Context, accessToken, id, role string) ([]string, error) {
	return c.roleCall(ctx, http.MethodDelete, accessToken, id, role)
}

func (c *Client) roleCall(ctx context.Context, method, accessToken, id, role string) ([]string, error) {
	if id == "" || role == "" {
		return nil, errors.New("role change: a user id and a role are both needed")
	}
	var w struct {
		Roles *[]string `json:"roles"`
	}
	r, err := c.bearerCall(ctx, method, "/admin/users/"+url.PathEscape(id)+"/roles/"+url.PathEscape(role), nil,
		accessToken, http.StatusOK, &w)
	if err != nil {
		return nil, err
	}
	if w.Roles == nil {
		return nil, shapeError(r, "has no roles list")
	}
	return *w.Roles, nil
}

// AdminRevokeSession ends any account's session. Needs sessions:revoke_any.
func (c *Client) AdminRevokeSession(ctx context.Context, accessToken, id string) error {
	if id == "" {
		return errors.New("revoke session: no session id given")
	}
	_, err := c.bearerCall(ctx, http.MethodDelete, "/admin/sessions/"+url.PathEscape(id), nil, accessToken,
		http.StatusNoContent, nil)
	return err
}
