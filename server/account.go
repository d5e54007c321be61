package server

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// mfaChallengeTTL is how long the mfa_token of a login is good for.
const mfaChallengeTTL = 5 * time.Minute

func (s *Server) handleConfig(w http.ResponseWriter, r *http.Request) {
	p := s.policy
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":   s.cfg.Issuer,
		"jwks_uri": s.cfg.Issuer + "/auth/jwks.json",
		"username": map[string]any{"min_length": p.UsernameMin, "max_length": p.UsernameMax, "pattern": usernamePattern},
		"email":    map[string]any{"max_length": p.EmailMax},
		"password": map[string]any{"min_length": p.PasswordMin, "max_length": p.PasswordMax,
			"min_score": p.PasswordMinScore, "forbid_username": true},
		"mfa_methods":       mfaMethods,
		"access_token_ttl":  int(s.cfg.AccessTTL / time.Second),
		"refresh_token_ttl": int(s.cfg.RefreshTTL / time.Second),
		"session_max_age":   int(s.cfg.SessionMax / time.Second),
		"reuse_grace":       max(int(s.cfg.ReuseGrace/time.Second), 0),
	})
}

// acctKey is how limits and backoff name an account.
func acctKey(uid int64) string { return "uid:" + strconv.FormatInt(uid, 10) }

// limit applies the per-IP and per-account limits of one endpoint.
func (s *Server) limit(r *http.Request, endpoint, account string) error {
	if ok, d := s.ipLimit.allow(endpoint + "|" + s.clientIP(r)); !ok {
		return rateLimited(retrySeconds(d))
	}
	if account != "" {
		if ok, d := s.acctLimit.allow(endpoint + "|" + account); !ok {
			return rateLimited(retrySeconds(d))
		}
	}
	return nil
}

func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	var req struct{ Username, Email, Password string }
	if err := decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.limit(r, "register", strings.ToLower(req.Email)); err != nil {
		s.metrics.registrations.inc("limited")
		s.writeError(w, r, err)
		return
	}
	errs := fieldErrors{}
	s.policy.checkUsername(req.Username, errs)
	s.policy.checkEmail(req.Email, errs)
	s.policy.checkPassword("password", req.Password, req.Username, req.Email, errs)
	if len(errs) > 0 {
		s.metrics.registrations.inc("invalid")
		s.writeError(w, r, validationProblem(errs))
		return
	}
	if s.cfg.RequireVerifiedEmail {
		s.registerQuietly(w, r, req.Username, req.Email, req.Password)
		return
	}
	// Answer a taken name before spending a hash on it; the unique index
	// still decides races.
	if errs := s.taken(r.Context(), req.Username, req.Email); len(errs) > 0 {
		s.metrics.registrations.inc("conflict")
		s.writeError(w, r, conflict(errs))
		return
	}
	id, err := s.createUser(r.Context(), req.Username, req.Email, req.Password)
	if col := s.st.uniqueViolation(err); col != "" {
		s.metrics.registrations.inc("conflict")
		s.writeError(w, r, conflict(fieldErrors{col: "is already taken"}))
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.metrics.registrations.inc("ok")
	s.log.Info("user registered", "user_id", id)
	writeJSON(w, http.StatusCreated, map[string]int64{"user_id": id})
}

// createUser hashes the password and creates the account, with its first
// verification mail.
func (s *Server) createUser(ctx context.Context, username, email, password string) (int64, error) {
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return 0, err
	}
	var id int64
	now := s.now().Unix()
	err = s.st.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx,
			"INSERT INTO users (username, email, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
			username, email, hash, now, now).Scan(&id)
		if err != nil {
			return err
		}
		if err := s.initialRoles(ctx, tx, id, username); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, nil, auditEvent{Type: evSignup, UserID: id}); err != nil {
			return err
		}
		return s.sendToken(ctx, tx, id, username, email, purposeVerify, newAccountToken())
	})
	return id, err
}

// registerQuietly is registration when verified addresses are required: it
// does not tell the caller that an address has an account. A taken address
// gets the same 201, at the same cost (the password is hashed all the
// same), and its owner a mail saying someone tried. A taken username is
// still refused: the caller must pick another, and names are not secret.
func (s *Server) registerQuietly(w http.ResponseWriter, r *http.Request, username, email, password string) {
	ctx := r.Context()
	if errs := s.taken(ctx, username, email); errs["username"] != "" {
		s.metrics.registrations.inc("conflict")
		s.writeError(w, r, conflict(fieldErrors{"username": errs["username"]}))
		return
	}
	id, err := s.createUser(ctx, username, email, password)
	col := s.st.uniqueViolation(err)
	if col == "username" {
		s.metrics.registrations.inc("conflict")
		s.writeError(w, r, conflict(fieldErrors{"username": "is already taken"}))
		return
	}
	if col == "email" {
		s.metrics.registrations.inc("conflict")
		err = s.st.tx(ctx, func(tx *sql.Tx) error {
			var owner int64
			if err := tx.QueryRowContext(ctx, "SELECT id FROM users WHERE email = ?", email).Scan(&owner); err != nil {
				return err
			}
			return s.accountExists(ctx, tx, owner)
		})
		if err == nil {
			s.log.Info("registration with a taken address: owner notified")
		}
	} else if err == nil {
		s.metrics.registrations.inc("ok")
		s.log.Info("user registered", "user_id", id)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// No user id: a made-up one for a taken address would give it away
	// (ids are sequential, so the next signup would get the same one).
	writeJSON(w, http.StatusCreated, struct{}{})
}

func (s *Server) taken(ctx context.Context, username, email string) fieldErrors {
	errs := fieldErrors{}
	var n int
	if s.st.db.QueryRowContext(ctx, "SELECT count(*) FROM users WHERE username = ?", username).Scan(&n) == nil && n > 0 {
		errs["username"] = "is already taken"
	}
	if s.st.db.QueryRowContext(ctx, "SELECT count(*) FROM users WHERE email = ?", email).Scan(&n) == nil && n > 0 {
		errs["email"] = "is already registered"
	}
	return errs
}

func conflict(errs fieldErrors) *problem {
	p := newProblem(http.StatusConflict, probConflict, "Already registered",
		"An account with this username or email already exists.")
	p.Errors = errs
	return p
}

var errCredentials = newProblem(http.StatusUnauthorized, probCredentials, "Invalid credentials",
	"The username, email or password is wrong.")

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	var req struct{ Identifier, Password string }
	if err := decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	errs := fieldErrors{}
	if req.Identifier == "" {
		errs["identifier"] = "is required"
	}
	if req.Password == "" {
		errs["password"] = "is required"
	}
	if len(errs) > 0 {
		s.writeError(w, r, validationProblem(errs))
		return
	}
	ctx := r.Context()
	uid, mfa, err := s.checkPassword(r, req.Identifier, req.Password)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if mfa {
		tok, err := s.newMFAChallenge(ctx, uid, r.UserAgent())
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.metrics.logins.inc("mfa_required")
		writeJSON(w, http.StatusOK, map[string]any{"mfa_required": true, "mfa_token": tok, "mfa_methods": mfaMethods})
		return
	}
	var sess *session
	err = s.st.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if sess, err = s.startSession(ctx, tx, uid, r.UserAgent()); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, r, auditEvent{Type: evLoginOK, UserID: uid, SessionID: sess.ID,
			Detail: map[string]string{"factor": "password"}}); err != nil {
			return err
		}
		return s.noteSignIn(ctx, tx, uid, s.requestClient(r))
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.metrics.logins.inc("ok")
	s.respondSession(w, r, sess, "password")
}

// checkPassword is the first factor of a login, for the account API and the
// provider's login page alike: the limits per IP and per identifier, the
// backoff after failures, a dummy hash for unknown identifiers, and the
// rehash of an outdated hash. It answers the user and whether the account
// has MFA on, or a problem (errCredentials, rate limited) to show.
func (s *Server) checkPassword(r *http.Request, identifier, password string) (uid int64, mfa bool, err error) {
	ident := "id:" + strings.ToLower(identifier)
	if err := s.limit(r, "login", ident); err != nil {
		s.metrics.logins.inc("limited")
		return 0, false, err
	}
	ctx := r.Context()
	var hash string
	var verified bool
	err = s.st.db.QueryRowContext(ctx,
		"SELECT id, password_hash, mfa_enabled, email_verified FROM users WHERE username = ? OR email = ?",
		identifier, identifier).Scan(&uid, &hash, &mfa, &verified)
	// Back off per identifier and, for a known user, per account, so that
	// alternating username and email does not double the attempts. Unknown
	// and known identifiers back off alike. Only the identifier's own
	// backoff says 429: the account's, reached through another identifier
	// of it, would tell that the two are one account. It refuses as a
	// wrong password does, at the same cost.
	acct := acctKey(uid)
	if d := s.backoff.wait(ident); d > 0 {
		s.metrics.logins.inc("limited")
		s.loginFailed(r, uid, "backoff")
		return 0, false, rateLimited(retrySeconds(d))
	}
	if errors.Is(err, sql.ErrNoRows) || err == nil && s.backoff.wait(acct) > 0 {
		s.hasher.VerifyDummy(ctx, password)
		s.backoff.fail(ident)
		s.metrics.logins.inc("failed")
		if err == nil {
			s.loginFailed(r, uid, "backoff")
		} else {
			s.loginFailed(r, 0, "unknown_account")
		}
		return 0, false, errCredentials
	}
	if err != nil {
		return 0, false, err
	}
	ok, rehash, err := s.hasher.Verify(ctx, hash, password)
	if err != nil {
		return 0, false, err
	}
	if !ok {
		s.backoff.fail(ident)
		s.backoff.fail(acct)
		s.metrics.logins.inc("failed")
		s.log.Info("login failed", "user_id", uid)
		s.loginFailed(r, uid, "bad_credentials")
		return 0, false, errCredentials
	}
	s.backoff.succeed(ident)
	s.backoff.succeed(acct)
	// bcrypt checks only the first 72 bytes: rehashing a longer password
	// would store whatever suffix this caller typed.
	if rehash && !(isBcrypt(hash) && len(password) > 72) {
		s.upgradeHash(ctx, uid, password)
	}
	// After the password: only the account's owner learns that the
	// address is unverified, and no session or MFA step is handed out.
	if s.cfg.RequireVerifiedEmail && !verified {
		s.loginFailed(r, uid, "email_unverified")
		return 0, false, errEmailUnverified
	}
	// Locked, or a reset required: also only after the password (rbac.go).
	if reason, err := s.loginRefusal(ctx, uid); err != nil {
		if reason != "" {
			s.loginFailed(r, uid, reason)
		}
		return 0, false, err
	}
	return uid, mfa, nil
}

var errEmailUnverified = newProblem(http.StatusForbidden, probEmailUnverified, "Email not verified",
	"This server requires a verified email address before login. Open the link in the verification mail "+
		"(or run `latch email verify --token-stdin` with its token). No mail, or the link expired? "+
		"Run `latch email resend -u USERNAME_OR_EMAIL --server URL`: it needs no login.")

// upgradeHash replaces a bcrypt hash or an argon2id hash of old parameters
// after a successful login. A failure is logged: the login still stands.
func (s *Server) upgradeHash(ctx context.Context, uid int64, password string) {
	hash, err := s.hasher.Hash(ctx, password)
	if err == nil {
		err = s.st.tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "UPDATE users SET password_hash = ? WHERE id = ?", hash, uid)
			return err
		})
	}
	if err != nil {
		s.log.Warn("password rehash failed", "user_id", uid, "err", err)
		return
	}
	s.log.Info("password hash upgraded", "user_id", uid)
}

// newMFAChallenge records the first factor as passed and returns the token
// the second step must present.
func (s *Server) newMFAChallenge(ctx context.Context, uid int64, ua string) (string, error) {
	b := make([]byte, 32)
	rand.Read(b)
	tok := "lmfa_" + base64.RawURLEncoding.EncodeToString(b)
	now := s.now()
	err := s.st.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			"INSERT INTO mfa_challenges (hash, user_id, created_at, expires_at, user_agent) VALUES (?, ?, ?, ?, ?)",
			hashToken(tok), uid, now.Unix(), now.Add(mfaChallengeTTL).Unix(), truncate(ua, 200))
		return err
	})
	return tok, err
}

// respondSession answers a login, with or without a second factor, with the
// tokens of the session it started. factor is the last factor checked.
func (s *Server) respondSession(w http.ResponseWriter, r *http.Request, sess *session, factor string) {
	s.respondTokens(w, r, sess)
	s.log.Info("login", "user_id", sess.UserID, "session", sess.ID, "factor", factor)
}

func (s *Server) respondTokens(w http.ResponseWriter, r *http.Request, sess *session) {
	p, err := s.pair(sess)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

type user struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
	Email    string `json:"email"`
	// EmailVerified: the owner proved the address with a mailed token.
	EmailVerified bool      `json:"email_verified"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	MFAEnabled    bool      `json:"mfa_enabled"`
}

func (s *Server) loadUser(ctx context.Context, uid int64) (*user, error) {
	var u user
	var created, updated int64
	err := s.st.db.QueryRowContext(ctx,
		"SELECT id, username, email, email_verified, created_at, updated_at, mfa_enabled FROM users WHERE id = ?", uid).
		Scan(&u.ID, &u.Username, &u.Email, &u.EmailVerified, &created, &updated, &u.MFAEnabled)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errUnauthorized
	}
	if err != nil {
		return nil, err
	}
	u.CreatedAt, u.UpdatedAt = time.Unix(created, 0).UTC(), time.Unix(updated, 0).UTC()
	return &u, nil
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request, a *auth) {
	u, err := s.loadUser(r.Context(), a.UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	roles, err := s.rolesOf(r.Context(), s.st.db, a.UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		*user
		Roles []string `json:"roles"`
	}{u, roles})
}

func (s *Server) handleProtected(w http.ResponseWriter, r *http.Request, a *auth) {
	u, err := s.loadUser(r.Context(), a.UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"logged_in_as": u.Username})
}

func (s *Server) handlePassword(w http.ResponseWriter, r *http.Request, a *auth) {
	var req struct {
		Current string `json:"current_password"`
		New     string `json:"new_password"`
	}
	u, ok := s.ownChange(w, r, a, "password", &req)
	if !ok {
		return
	}
	ctx := r.Context()
	errs := fieldErrors{}
	if req.Current == "" {
		errs["current_password"] = "is required"
	}
	s.policy.checkPassword("new_password", req.New, u.Username, u.Email, errs)
	if _, bad := errs["new_password"]; !bad && req.New == req.Current {
		errs["new_password"] = "must differ from the current password"
	}
	if len(errs) > 0 {
		s.writeError(w, r, validationProblem(errs))
		return
	}
	if err := s.checkOwnPassword(ctx, a.UserID, "current password", req.Current); err != nil {
		s.writeError(w, r, err)
		return
	}
	newHash, err := s.hasher.Hash(ctx, req.New)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.now().Unix()
	err = s.st.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?",
			newHash, now, a.UserID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = ?, revoked_reason = 'password'
			WHERE user_id = ? AND id != ? AND revoked_at IS NULL`, now, a.UserID, a.SessionID); err != nil {
			return err
		}
		// A reset token mailed earlier would undo the change: whoever
		// else reads the mailbox must not get the account back with it.
		if _, err := tx.ExecContext(ctx, "DELETE FROM account_tokens WHERE user_id = ? AND purpose = ? AND used_at IS NULL",
			a.UserID, purposeReset); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, r, auditEvent{Type: evPasswordChanged, UserID: a.UserID, SessionID: a.SessionID}); err != nil {
			return err
		}
		return s.notice(ctx, tx, a.UserID, "password-changed", s.requestClient(r))
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("password changed", "user_id", a.UserID)
	w.WriteHeader(http.StatusNoContent)
}
