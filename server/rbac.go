package server

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"slices"
	"strings"
)

// Roles, least privileged first. A role holds every permission of the
// roles before it.
const (
	roleViewer     = "viewer"
	roleEditor     = "editor"
	roleAdmin      = "admin"
	roleSuperadmin = "superadmin"
)

// Permissions.
const (
	permNotesRead      = "notes:read"
	permNotesWrite     = "notes:write"  // own notes, and any note for editors (see the notes handlers)
	permNotesDelete    = "notes:delete" // own notes, and any note for editors
	permUsersRead      = "users:read"
	permUsersWrite     = "users:write" // lock/unlock, require a password reset
	permRolesAssign    = "roles:assign"
	permSessionsRevoke = "sessions:revoke_any"
	permAuditRead      = "audit:read"
)

// probPasswordResetRequired: an admin required a new password; login is
// refused until the account's password is reset.
const probPasswordResetRequired = "urn:latch:problem:password-reset-required"

// roleOrder is every role, least privileged first.
var roleOrder = []string{roleViewer, roleEditor, roleAdmin, roleSuperadmin}

// rolePerms is the permission table: what each role may do. Migration
// 0006 keeps a copy in role_permissions (a test holds the two equal).
var rolePerms = func() map[string][]string {
	viewer := []string{permNotesRead}
	editor := append(slices.Clone(viewer), permNotesWrite, permNotesDelete)
	admin := append(slices.Clone(editor), permUsersRead, permUsersWrite, permSessionsRevoke, permAuditRead)
	super := append(slices.Clone(admin), permRolesAssign)
	return map[string][]string{roleViewer: viewer, roleEditor: editor, roleAdmin: admin, roleSuperadmin: super}
}()

// roleRank is a role's place in roleOrder, or -1 for an unknown role.
func roleRank(role string) int { return slices.Index(roleOrder, role) }

// hasPerm says whether any of roles grants perm.
func hasPerm(roles []string, perm string) bool {
	for _, r := range roles {
		if slices.Contains(rolePerms[r], perm) {
			return true
		}
	}
	return false
}

// sortRoles orders roles least privileged first, dropping unknown ones.
func sortRoles(roles []string) []string {
	out := make([]string, 0, len(roles))
	for _, r := range roleOrder {
		if slices.Contains(roles, r) {
			out = append(out, r)
		}
	}
	return out
}

// grantHint says which role has perm (the least one), so that a refusal
// says what to ask for, not only what is missing.
func grantHint(perm string) string {
	for _, r := range roleOrder {
		if slices.Contains(rolePerms[r], perm) {
			return "; the " + r + " role has it: ask a superadmin (latch admin roles grant USER " + r + ")"
		}
	}
	return ""
}

func forbidden(detail string) *problem {
	return newProblem(http.StatusForbidden, probForbidden, "Forbidden", detail)
}

// requirePerm wraps a handler that needs perm: 401 without a valid token,
// 403 (probForbidden, naming the permission) without the permission. The
// roles are the access token's: a role granted takes effect at the next
// refresh; a role removed ends the account's sessions at once.
func (s *Server) requirePerm(perm string, next func(http.ResponseWriter, *http.Request, *auth)) http.Handler {
	return s.authed(func(w http.ResponseWriter, r *http.Request, a *auth) {
		if !hasPerm(a.Roles, perm) {
			s.writeError(w, r, forbidden("needs "+perm+grantHint(perm)))
			return
		}
		next(w, r, a)
	})
}

type rowQuerier interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}

// rolesOf is the account's roles, least privileged first.
func (s *Server) rolesOf(ctx context.Context, q rowQuerier, uid int64) ([]string, error) {
	rows, err := q.QueryContext(ctx,
		"SELECT r.name FROM user_roles u JOIN roles r ON r.name = u.role WHERE u.user_id = ? ORDER BY r.rank", uid)
	return scanRows(rows, err, func(row rowScanner) (name string, err error) {
		err = row.Scan(&name)
		return name, err
	})
}

// initialRoles gives a new account viewer, and superadmin when it is the
// --bootstrap-admin account or, in --dev, the first account.
func (s *Server) initialRoles(ctx context.Context, tx *sql.Tx, uid int64, username string) error {
	roles := []string{roleViewer}
	// Usernames are unique regardless of case (COLLATE NOCASE, CITEXT), as the
	// start-up grant in bootstrapAdmin matches them: so is this.
	super := s.cfg.BootstrapAdmin != "" && strings.EqualFold(s.cfg.BootstrapAdmin, username)
	if !super && s.cfg.Dev {
		var others int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM users WHERE id <> ?", uid).Scan(&others); err != nil {
			return err
		}
		super = others == 0
	}
	if super {
		roles = append(roles, roleSuperadmin)
	}
	for _, role := range roles {
		if _, err := tx.ExecContext(ctx, "INSERT INTO user_roles (user_id, role, granted_at) VALUES (?, ?, ?) ON CONFLICT (user_id, role) DO NOTHING",
			uid, role, s.now().Unix()); err != nil {
			return err
		}
	}
	if super {
		s.log.Info("superadmin by start-up configuration", "user_id", uid)
	}
	return nil
}

// bootstrapAdmin makes the --bootstrap-admin account, if it exists yet,
// superadmin at start.
func (s *Server) bootstrapAdmin(ctx context.Context) error {
	if s.cfg.BootstrapAdmin == "" {
		return nil
	}
	return s.st.tx(ctx, func(tx *sql.Tx) error {
		var uid int64
		err := tx.QueryRowContext(ctx, "SELECT id FROM users WHERE username = ?", s.cfg.BootstrapAdmin).Scan(&uid)
		if errors.Is(err, sql.ErrNoRows) {
			s.log.Info("--bootstrap-admin: no such account yet; it becomes superadmin when it signs up",
				"username", s.cfg.BootstrapAdmin)
			return nil
		}
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "INSERT INTO user_roles (user_id, role, granted_at) VALUES (?, ?, ?) ON CONFLICT (user_id, role) DO NOTHING",
			uid, roleSuperadmin, s.now().Unix())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			s.log.Info("superadmin by --bootstrap-admin", "user_id", uid)
		}
		return nil
	})
}

var (
	errAccountLocked = newProblem(http.StatusForbidden, probAccountLocked, "Account locked",
		"An administrator locked this account. Ask them to unlock it (latch admin users unlock).")
	errResetRequired = newProblem(http.StatusForbidden, probPasswordResetRequired, "Password reset required",
		"An administrator requires a new password for this account. Follow the link in the password-reset mail, "+
			"or run `latch password forgot` for a new one.")
)

// loginRefusal is why an account whose password was just checked may not
// sign in: locked, or a password reset required. It runs only after the
// password check, so that a wrong password tells nobody the account's state.
// reason is the audit log's class of the refusal.
func (s *Server) loginRefusal(ctx context.Context, uid int64) (reason string, err error) {
	var locked, mustReset bool
	if err := s.st.db.QueryRowContext(ctx, "SELECT locked, must_reset FROM users WHERE id = ?", uid).
		Scan(&locked, &mustReset); err != nil {
		return "", err
	}
	switch {
	case locked:
		return "locked", errAccountLocked
	case mustReset:
		return "password_reset_required", errResetRequired
	}
	return "", nil
}

// pathID is the positive integer path value name, or a 404 problem.
func pathID(r *http.Request, name, what string) (int64, error) {
	var id int64
	v := r.PathValue(name)
	for _, c := range v {
		if c < '0' || c > '9' || id > 1<<50 {
			return 0, notFound(what)
		}
		id = id*10 + int64(c-'0')
	}
	if v == "" || id == 0 {
		return 0, notFound(what)
	}
	return id, nil
}

func notFound(what string) *problem {
	return newProblem(http.StatusNotFound, probNotFound, "No such "+what, "There is no "+what+" with this id.")
}
