package server

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// adminUser is an account as the admin API shows it.
type adminUser struct {
	ID            int64     `json:"id"`
	Username      string    `json:"username"`
	Email         string    `json:"email"`
	EmailVerified bool      `json:"email_verified"`
	Roles         []string  `json:"roles"`
	MFA           bool      `json:"mfa"`
	Locked        bool      `json:"locked"`
	CreatedAt     time.Time `json:"created_at"`
}

const adminUserColumns = `u.id, u.username, u.email, u.email_verified,
	coalesce((SELECT string_agg(role, ',') FROM user_roles WHERE user_id = u.id), ''),
	u.mfa_enabled, u.locked, u.created_at FROM users u`

func scanAdminUser(row rowScanner) (*adminUser, error) {
	var u adminUser
	var roles string
	var created int64
	if err := row.Scan(&u.ID, &u.Username, &u.Email, &u.EmailVerified, &roles, &u.MFA, &u.Locked, &created); err != nil {
		return nil, err
	}
	u.Roles = sortRoles(strings.Split(roles, ","))
	u.CreatedAt = time.Unix(created, 0).UTC()
	return &u, nil
}

// queryInt is a query parameter in [lo, hi], def when absent.
func queryInt(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, validationProblem(fieldErrors{name: "must be a whole number from " + strconv.Itoa(lo) + " to " + strconv.Itoa(hi)})
	}
	return n, nil
}

func (s *Server) handleAdminUsers(w http.ResponseWriter, r *http.Request, a *auth) {
	limit, err := queryInt(r, "limit", 50, 1, 200)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	offset, err := queryInt(r, "offset", 0, 0, 1<<30)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// q matches a part of the username or the address, case-insensitively;
	// LIKE's wildcards in it are taken literally.
	q := r.URL.Query().Get("q")
	pat := "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(strings.ToLower(q)) + "%"
	where := ` WHERE lower(u.username) LIKE ? ESCAPE '\' OR lower(u.email) LIKE ? ESCAPE '\'`
	ctx := r.Context()
	var total int
	if err := s.st.db.QueryRowContext(ctx, "SELECT count(*) FROM users u"+where, pat, pat).Scan(&total); err != nil {
		s.writeError(w, r, err)
		return
	}
	rows, err := s.st.db.QueryContext(ctx, "SELECT "+adminUserColumns+where+" ORDER BY u.id LIMIT ? OFFSET ?",
		pat, pat, limit, offset)
	users, err := scanRows(rows, err, scanAdminUser)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": users, "total": total})
}

type adminSession struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	UserAgent  string    `json:"user_agent"`
	ClientID   string    `json:"client_id"`
}

func (s *Server) loadAdminUser(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id int64) (*adminUser, error) {
	u, err := scanAdminUser(q.QueryRowContext(ctx, "SELECT "+adminUserColumns+" WHERE u.id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("account")
	}
	return u, err
}

func (s *Server) handleAdminUser(w http.ResponseWriter, r *http.Request, a *auth) {
	id, err := pathID(r, "id", "account")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx := r.Context()
	u, err := s.loadAdminUser(ctx, s.st.db, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rows, err := s.st.db.QueryContext(ctx, `SELECT id, created_at, last_used_at, user_agent, coalesce(client_id, '')
		FROM sessions WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? ORDER BY last_used_at DESC`,
		id, s.now().Unix())
	sessions, err := scanRows(rows, err, func(row rowScanner) (as adminSession, err error) {
		var created, used int64
		err = row.Scan(&as.ID, &created, &used, &as.UserAgent, &as.ClientID)
		as.CreatedAt, as.LastUsedAt = time.Unix(created, 0).UTC(), time.Unix(used, 0).UTC()
		return as, err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		*adminUser
		Sessions []adminSession `json:"sessions"`
	}{u, sessions})
}

// endAccess ends every session of uid and every login half-way through
// (MFA challenges, OAuth grants approved but not redeemed), within tx, and
// records a session.revoked event, by the admin a, for each session.
func (s *Server) endAccess(ctx context.Context, tx *sql.Tx, r *http.Request, a *auth, uid int64, reason string) error {
	if err := s.endSessions(ctx, tx, auditEvent{Type: evSessionRevoked, ActorID: a.UserID, Detail: map[string]string{"reason": reason}},
		`UPDATE sessions SET revoked_at = ?, revoked_reason = ?
		WHERE user_id = ? AND revoked_at IS NULL RETURNING id, user_id`, s.now().Unix(), reason, uid); err != nil {
		return err
	}
	return endPendingLogins(ctx, tx, uid)
}

// endPendingLogins ends uid's logins half-way through, within tx: MFA
// challenges, and OAuth grants approved but not yet redeemed (a device
// code not polled yet, an authorization code not exchanged), which
// redeemed later would open a session that the change ending the account's
// sessions never saw.
func endPendingLogins(ctx context.Context, tx *sql.Tx, uid int64) error {
	if _, err := tx.ExecContext(ctx, "DELETE FROM mfa_challenges WHERE user_id = ?", uid); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `UPDATE oauth_requests SET stage = 'denied', code_expires_at = CASE WHEN code_hash IS NULL THEN code_expires_at ELSE 0 END
		WHERE user_id = ? AND session_id IS NULL AND stage IN ('mfa', 'consent', 'approved')`, uid)
	return err
}

// checkTarget refuses an admin action on an account that outranks the
// actor (an admin may not lock a superadmin), or on the actor's own
// account (locking yourself out is never what was meant).
func checkTarget(a *auth, u *adminUser, action string) error {
	if u.ID == a.UserID {
		return newProblem(http.StatusConflict, probConflict, "Not on your own account",
			"You cannot "+action+" your own account.")
	}
	top := func(roles []string) int {
		t := -1
		for _, r := range roles {
			t = max(t, roleRank(r))
		}
		return t
	}
	if top(u.Roles) > top(a.Roles) {
		return forbidden("needs " + permRolesAssign + " to " + action + " an account that outranks you")
	}
	return nil
}

// adminChange runs change on account id in a transaction, after the
// target check; it answers 204.
func (s *Server) adminChange(w http.ResponseWriter, r *http.Request, a *auth, action string,
	change func(ctx context.Context, tx *sql.Tx, u *adminUser) error) {
	id, err := pathID(r, "id", "account")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx := r.Context()
	err = s.st.tx(ctx, func(tx *sql.Tx) error {
		u, err := s.loadAdminUser(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := checkTarget(a, u, action); err != nil {
			return err
		}
		return change(ctx, tx, u)
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("admin: "+action, "actor", a.UserID, "user_id", id)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleAdminLock(w http.ResponseWriter, r *http.Request, a *auth) {
	s.adminChange(w, r, a, "lock", func(ctx context.Context, tx *sql.Tx, u *adminUser) error {
		if _, err := tx.ExecContext(ctx, "UPDATE users SET locked = 1 WHERE id = ?", u.ID); err != nil {
			return err
		}
		if err := s.endAccess(ctx, tx, r, a, u.ID, "locked"); err != nil {
			return err
		}
		return s.audit(ctx, tx, r, auditEvent{Type: evAccountLocked, UserID: u.ID, ActorID: a.UserID})
	})
}

func (s *Server) handleAdminUnlock(w http.ResponseWriter, r *http.Request, a *auth) {
	s.adminChange(w, r, a, "unlock", func(ctx context.Context, tx *sql.Tx, u *adminUser) error {
		if _, err := tx.ExecContext(ctx, "UPDATE users SET locked = 0 WHERE id = ?", u.ID); err != nil {
			return err
		}
		return s.audit(ctx, tx, r, auditEvent{Type: evAccountUnlocked, UserID: u.ID, ActorID: a.UserID})
	})
}

// handleAdminRequireReset ends the account's sessions and mails it a
// password-reset link; its logins are refused until the reset.
func (s *Server) handleAdminRequireReset(w http.ResponseWriter, r *http.Request, a *auth) {
	s.adminChange(w, r, a, "require a password reset of", func(ctx context.Context, tx *sql.Tx, u *adminUser) error {
		if _, err := tx.ExecContext(ctx, "UPDATE users SET must_reset = 1 WHERE id = ?", u.ID); err != nil {
			return err
		}
		if err := s.endAccess(ctx, tx, r, a, u.ID, "password-reset-required"); err != nil {
			return err
		}
		return s.sendToken(ctx, tx, u.ID, u.Username, u.Email, purposeReset, newAccountToken())
	})
}

// roleTarget reads the account and role of a role change.
func roleTarget(r *http.Request) (int64, string, error) {
	id, err := pathID(r, "id", "account")
	if err != nil {
		return 0, "", err
	}
	role := r.PathValue("role")
	if roleRank(role) < 0 {
		return 0, "", validationProblem(fieldErrors{"role": "must be one of " + strings.Join(roleOrder, ", ")})
	}
	return id, role, nil
}

// changeRole grants or removes role; removing a role the account has ends
// its sessions, so that no token carries the role any longer.
func (s *Server) changeRole(w http.ResponseWriter, r *http.Request, a *auth, grant bool) {
	id, role, err := roleTarget(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx := r.Context()
	var roles []string
	err = s.st.tx(ctx, func(tx *sql.Tx) error {
		u, err := s.loadAdminUser(ctx, tx, id)
		if err != nil {
			return err
		}
		has := slices.Contains(u.Roles, role)
		change := ""
		switch {
		case grant && !has:
			if _, err := tx.ExecContext(ctx, "INSERT INTO user_roles (user_id, role, granted_at) VALUES (?, ?, ?)",
				id, role, s.now().Unix()); err != nil {
				return err
			}
			change = "granted"
		case !grant && has:
			if role == roleSuperadmin {
				// Another superadmin must remain who can sign in: a locked
				// one cannot administer anything (and only a superadmin
				// may unlock it).
				var n int
				if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM user_roles ur JOIN users u ON u.id = ur.user_id
					WHERE ur.role = ? AND ur.user_id <> ? AND u.locked = 0`, roleSuperadmin, id).Scan(&n); err != nil {
					return err
				}
				if n == 0 {
					return newProblem(http.StatusConflict, probConflict, "Last superadmin",
						"This is the last superadmin that is not locked: grant superadmin to another account "+
							"(or unlock one) first.")
				}
			}
			if _, err := tx.ExecContext(ctx, "DELETE FROM user_roles WHERE user_id = ? AND role = ?", id, role); err != nil {
				return err
			}
			if err := s.endAccess(ctx, tx, r, a, id, "role"); err != nil {
				return err
			}
			change = "revoked"
		}
		if change != "" {
			if err := s.audit(ctx, tx, r, auditEvent{Type: evRoleChanged, UserID: id, ActorID: a.UserID,
				Detail: map[string]string{"role": role, "change": change}}); err != nil {
				return err
			}
		}
		roles, err = s.rolesOf(ctx, tx, id)
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("admin: role change", "actor", a.UserID, "user_id", id, "role", role, "grant", grant)
	writeJSON(w, http.StatusOK, map[string]any{"roles": roles})
}

func (s *Server) handleAdminGrantRole(w http.ResponseWriter, r *http.Request, a *auth) {
	s.changeRole(w, r, a, true)
}

func (s *Server) handleAdminRevokeRole(w http.ResponseWriter, r *http.Request, a *auth) {
	s.changeRole(w, r, a, false)
}

// handleAdminRevokeSession ends any account's session.
func (s *Server) handleAdminRevokeSession(w http.ResponseWriter, r *http.Request, a *auth) {
	id := r.PathValue("id")
	ctx := r.Context()
	err := s.st.tx(ctx, func(tx *sql.Tx) error {
		var uid int64
		err := tx.QueryRowContext(ctx, "SELECT user_id FROM sessions WHERE id = ? AND revoked_at IS NULL", id).Scan(&uid)
		if errors.Is(err, sql.ErrNoRows) {
			return newProblem(http.StatusNotFound, probNotFound, "No such session", "There is no open session with this id.")
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE sessions SET revoked_at = ?, revoked_reason = 'revoked' WHERE id = ?",
			s.now().Unix(), id); err != nil {
			return err
		}
		return s.audit(ctx, tx, r, auditEvent{Type: evSessionRevoked, UserID: uid, ActorID: a.UserID, SessionID: id})
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("admin: session revoked", "actor", a.UserID, "session", id)
	w.WriteHeader(http.StatusNoContent)
}
