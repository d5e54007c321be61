package server

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"strings"
	"time"
)

// mfaMaxAttempts is how many wrong codes one login challenge takes before it
// is deleted and the password must be entered again.
const mfaMaxAttempts = 5

var (
	errChallengeExpired = newProblem(http.StatusUnauthorized, probMFAChallenge, "Login step expired",
		"This second-factor step is unknown, used or expired (it lasts 5 minutes). Log in again with your password.")
	errTooManyCodes = newProblem(http.StatusUnauthorized, probMFAAttempts, "Too many wrong codes",
		"Too many wrong codes for this login. Log in again with your password.")
	errMFAEnabled = newProblem(http.StatusConflict, probMFAEnabled, "Two-factor already on",
		"Two-factor authentication is already on for this account. Turn it off first to enrol a new authenticator.")
	errMFANotEnabled = newProblem(http.StatusConflict, probMFANotEnabled, "Two-factor is off",
		"Two-factor authentication is not on for this account.")
	errMFANoSetup = newProblem(http.StatusConflict, probMFANoSetup, "No enrolment in progress",
		"Start with POST /auth/mfa/setup, add the secret to an authenticator app, then enable with its code.")
)

// invalidCode is the answer to a wrong or replayed code; left > 0 says how
// many more attempts the login challenge allows.
func invalidCode(result string, left int) *problem {
	detail := "The code is wrong. Enter the current code from your authenticator app, or a backup code."
	if result == codeReplayed {
		detail = "This code was already used. Wait for the next code from your authenticator app."
	}
	p := newProblem(http.StatusUnauthorized, probInvalidCode, "Invalid code", detail)
	p.AttemptsLeft = left
	return p
}

// mfaLimit applies the MFA endpoints' limits: per IP, per account (uid 0:
// not known yet), and the backoff after repeated wrong codes, which is kept
// apart from the password's so that logging in again does not clear it.
func (s *Server) mfaLimit(r *http.Request, uid int64) error {
	acct := ""
	if uid != 0 {
		acct = acctKey(uid)
	}
	err := s.limit(r, "mfa", acct)
	if err == nil && uid != 0 {
		if d := s.backoff.wait("mfa:" + acct); d > 0 {
			err = rateLimited(retrySeconds(d))
		}
	}
	if err != nil {
		s.metrics.mfa.inc("limited")
	}
	return err
}

// recordCode counts a code check and feeds the backoff.
func (s *Server) recordCode(uid int64, result string) {
	s.metrics.mfa.inc(result)
	switch {
	case codeAccepted(result):
		s.backoff.succeed("mfa:" + acctKey(uid))
	case result != mfaExpired:
		s.backoff.fail("mfa:" + acctKey(uid))
		s.log.Info("mfa code rejected", "user_id", uid, "result", result)
	}
}

// mfaState is whether uid has MFA on, and whether an enrolment row exists.
func mfaState(ctx context.Context, tx *sql.Tx, uid int64) (enabled, enrolled bool, err error) {
	err = tx.QueryRowContext(ctx,
		"SELECT mfa_enabled, EXISTS (SELECT 1 FROM mfa_totp WHERE user_id = users.id) FROM users WHERE id = ?",
		uid).Scan(&enabled, &enrolled)
	if errors.Is(err, sql.ErrNoRows) {
		return false, false, errUnauthorized
	}
	return enabled, enrolled, err
}

// handleMFASetup starts an enrolment: a new secret, pending until enabled
// with a code from it. Starting again replaces a pending secret.
func (s *Server) handleMFASetup(w http.ResponseWriter, r *http.Request, a *auth) {
	if err := s.limit(r, "mfa", acctKey(a.UserID)); err != nil {
		s.metrics.mfa.inc("limited")
		s.writeError(w, r, err)
		return
	}
	ctx := r.Context()
	u, err := s.loadUser(ctx, a.UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	key, err := s.newTOTPKey(u.Username)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	err = s.st.tx(ctx, func(tx *sql.Tx) error {
		enabled, _, err := mfaState(ctx, tx, a.UserID)
		if err != nil {
			return err
		}
		if enabled {
			return errMFAEnabled
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO mfa_totp (user_id, secret_enc, created_at) VALUES (?, ?, ?)
			ON CONFLICT (user_id) DO UPDATE SET secret_enc = excluded.secret_enc, created_at = excluded.created_at, last_step = 0`,
			a.UserID, s.sealer.seal([]byte(key.Secret()), totpAD(a.UserID)), s.now().Unix())
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.metrics.mfaChanges.inc("setup")
	s.log.Info("mfa changed", "user_id", a.UserID, "action", "setup")
	writeJSON(w, http.StatusOK, map[string]string{"secret": key.Secret(), "uri": key.URL()})
}

// handleMFAEnable turns MFA on with a first code from the pending secret and
// answers the backup codes, which are never shown again.
func (s *Server) handleMFAEnable(w http.ResponseWriter, r *http.Request, a *auth) {
	var codes []string
	pending := func(enabled, enrolled bool) error {
		switch {
		case enabled:
			return errMFAEnabled
		case !enrolled:
			return errMFANoSetup
		}
		return nil
	}
	var others int
	ok := s.withCode(w, r, a, false, pending, func(ctx context.Context, tx *sql.Tx, now time.Time, req codeRequest) error {
		if _, err := tx.ExecContext(ctx, "UPDATE users SET mfa_enabled = 1, updated_at = ? WHERE id = ?",
			now.Unix(), a.UserID); err != nil {
			return err
		}
		var err error
		if codes, err = s.storeBackupCodes(ctx, tx, a.UserID, now); err != nil {
			return err
		}
		if others, err = s.otherSessions(ctx, tx, a, req.EndOthers, now); err != nil {
			return err
		}
		return s.notice(ctx, tx, a.UserID, "mfa-enabled", s.requestClient(r))
	})
	if ok {
		s.mfaChanged(w, a.UserID, "enabled", map[string]any{"backup_codes": codes, "other_sessions": others})
	}
}

// handleMFADisable turns MFA off. It takes a TOTP code or a backup code: a
// person who lost the authenticator must still be able to turn it off.
func (s *Server) handleMFADisable(w http.ResponseWriter, r *http.Request, a *auth) {
	var others int
	ok := s.withCode(w, r, a, true, mfaOn, func(ctx context.Context, tx *sql.Tx, now time.Time, req codeRequest) error {
		if _, err := tx.ExecContext(ctx, "UPDATE users SET mfa_enabled = 0, updated_at = ? WHERE id = ?",
			now.Unix(), a.UserID); err != nil {
			return err
		}
		for _, table := range []string{"mfa_totp", "mfa_backup_codes", "mfa_challenges"} {
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+table+" WHERE user_id = ?", a.UserID); err != nil {
				return err
			}
		}
		var err error
		if others, err = s.otherSessions(ctx, tx, a, req.EndOthers, now); err != nil {
			return err
		}
		return s.notice(ctx, tx, a.UserID, "mfa-disabled", s.requestClient(r))
	})
	if ok {
		s.mfaChanged(w, a.UserID, "disabled", map[string]any{"other_sessions": others})
	}
}

// handleMFABackupCodes replaces the backup codes. It takes a TOTP code only:
// new codes are for someone who holds the authenticator.
func (s *Server) handleMFABackupCodes(w http.ResponseWriter, r *http.Request, a *auth) {
	var codes []string
	ok := s.withCode(w, r, a, false, mfaOn, func(ctx context.Context, tx *sql.Tx, now time.Time, _ codeRequest) error {
		var err error
		if codes, err = s.storeBackupCodes(ctx, tx, a.UserID, now); err != nil {
			return err
		}
		return s.notice(ctx, tx, a.UserID, "backup-codes-regenerated", s.requestClient(r))
	})
	if ok {
		s.mfaChanged(w, a.UserID, "backup_codes", map[string]any{"backup_codes": codes})
	}
}

// mfaChanged counts and logs a change to uid's second factor and answers
// it with body.
func (s *Server) mfaChanged(w http.ResponseWriter, uid int64, action string, body map[string]any) {
	s.metrics.mfaChanges.inc(action)
	s.log.Info("mfa changed", "user_id", uid, "action", action)
	writeJSON(w, http.StatusOK, body)
}

// codeRequest is the body of the MFA changes a code authorises.
type codeRequest struct {
	Code string `json:"code"`
	// EndOthers ends the account's other sessions with the change
	// (enable and disable; ASVS V7.4.3).
	EndOthers bool `json:"end_other_sessions"`
}

// otherSessions ends a's account's other open sessions when end is set,
// and counts those left.
func (s *Server) otherSessions(ctx context.Context, tx *sql.Tx, a *auth, end bool, now time.Time) (int, error) {
	if end {
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = ?, revoked_reason = 'mfa'
			WHERE user_id = ? AND id != ? AND revoked_at IS NULL`, now.Unix(), a.UserID, a.SessionID); err != nil {
			return 0, err
		}
	}
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sessions
		WHERE user_id = ? AND id != ? AND revoked_at IS NULL AND expires_at > ?`, a.UserID, a.SessionID, now.Unix()).Scan(&n)
	return n, err
}

// requestClient is who made r, for the notices.
func (s *Server) requestClient(r *http.Request) clientInfo {
	return clientInfo{ip: s.clientIP(r), userAgent: truncate(r.UserAgent(), 200)}
}

// mfaOn refuses a request that needs MFA on when it is off.
func mfaOn(enabled, _ bool) error {
	if !enabled {
		return errMFANotEnabled
	}
	return nil
}

// withCode runs a Bearer MFA request that a code must authorise: it reads
// the {"code": …} body, applies the limits, and in one transaction checks
// the account's MFA state with state, checks and consumes the code (a backup
// code only if backup is set) and runs change. It answers every failure
// itself and reports whether the caller should answer success.
func (s *Server) withCode(w http.ResponseWriter, r *http.Request, a *auth, backup bool,
	state func(enabled, enrolled bool) error, change func(context.Context, *sql.Tx, time.Time, codeRequest) error) bool {
	var req codeRequest
	err := decode(w, r, &req)
	if err == nil && strings.TrimSpace(req.Code) == "" {
		err = validationProblem(fieldErrors{"code": "is required"})
	}
	if err == nil {
		err = s.mfaLimit(r, a.UserID)
	}
	if err != nil {
		s.writeError(w, r, err)
		return false
	}
	ctx := r.Context()
	var result string
	err = s.st.tx(ctx, func(tx *sql.Tx) error {
		enabled, enrolled, err := mfaState(ctx, tx, a.UserID)
		if err != nil {
			return err
		}
		if err := state(enabled, enrolled); err != nil {
			return err
		}
		now := s.now()
		if result, err = s.checkCode(ctx, tx, a.UserID, req.Code, now, backup); err != nil {
			return err
		}
		typ := evMFAOK
		if !codeAccepted(result) {
			typ = evMFAFailed
		}
		if err := s.audit(ctx, tx, r, auditEvent{Type: typ, UserID: a.UserID, SessionID: a.SessionID,
			Detail: map[string]string{"result": result, "step": "account"}}); err != nil || !codeAccepted(result) {
			return err
		}
		return change(ctx, tx, now, req)
	})
	if result != "" {
		s.recordCode(a.UserID, result)
	}
	switch {
	case err != nil:
		s.writeError(w, r, err)
	case !codeAccepted(result):
		s.writeError(w, r, invalidCode(result, 0))
	default:
		return true
	}
	return false
}

// handleMFAVerify is the second step of a login: the mfa_token from
// /auth/login and a TOTP or backup code. Success consumes the challenge and
// starts the session as a password login does; each wrong code spends one of
// the challenge's attempts, and the last one deletes it.
func (s *Server) handleMFAVerify(w http.ResponseWriter, r *http.Request) {
	var req struct {
		MFAToken string `json:"mfa_token"`
		Code     string `json:"code"`
	}
	if err := decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	errs := fieldErrors{}
	if req.MFAToken == "" {
		errs["mfa_token"] = "is required"
	}
	if strings.TrimSpace(req.Code) == "" {
		errs["code"] = "is required"
	}
	if len(errs) > 0 {
		s.writeError(w, r, validationProblem(errs))
		return
	}
	var sess *session
	_, result, err := s.verifyChallenge(r, req.MFAToken, req.Code, func(ctx context.Context, tx *sql.Tx, uid int64, ua string) error {
		var err error
		if sess, err = s.startSession(ctx, tx, uid, ua); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, r, auditEvent{Type: evLoginOK, UserID: uid, SessionID: sess.ID,
			Detail: map[string]string{"factor": "password+mfa"}}); err != nil {
			return err
		}
		return s.noteSignIn(ctx, tx, uid, clientInfo{ip: s.clientIP(r), userAgent: ua})
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.respondSession(w, r, sess, result)
}

// verifyChallenge is the second step of a login, for the account API and the
// provider's pages alike: it checks code against the login challenge
// mfaToken and, when it is accepted, consumes the challenge and runs done in
// the same transaction. Each wrong code spends one of the challenge's
// attempts, and the last one deletes it; codes feed the MFA backoff and
// metrics. It answers the challenge's user and the code outcome, or a
// problem to show (limited, expired, too many codes, invalid code).
func (s *Server) verifyChallenge(r *http.Request, mfaToken, code string,
	done func(ctx context.Context, tx *sql.Tx, uid int64, ua string) error) (int64, string, error) {
	ctx := r.Context()
	hash := hashToken(mfaToken)
	// Who the challenge is for, to limit per account before any code is
	// checked; the transaction below decides on the challenge again.
	var uid int64
	if err := s.st.db.QueryRowContext(ctx, "SELECT user_id FROM mfa_challenges WHERE hash = ?", hash).Scan(&uid); err != nil &&
		!errors.Is(err, sql.ErrNoRows) {
		return 0, "", err
	}
	if err := s.mfaLimit(r, uid); err != nil {
		return 0, "", err
	}
	var (
		result string
		fail   error
	)
	err := s.st.tx(ctx, func(tx *sql.Tx) error {
		now := s.now()
		var (
			exp      int64
			attempts int
			ua       string
		)
		err := tx.QueryRowContext(ctx, "SELECT user_id, expires_at, attempts, user_agent FROM mfa_challenges WHERE hash = ?",
			hash).Scan(&uid, &exp, &attempts, &ua)
		switch {
		case errors.Is(err, sql.ErrNoRows) || err == nil && now.Unix() >= exp:
			result, fail = mfaExpired, errChallengeExpired
			return nil
		case err != nil:
			return err
		}
		if result, err = s.checkCode(ctx, tx, uid, code, now, true); err != nil {
			return err
		}
		if !codeAccepted(result) {
			attempts++
			if err := s.audit(ctx, tx, r, auditEvent{Type: evMFAFailed, UserID: uid,
				Detail: map[string]string{"result": result, "step": "login"}}); err != nil {
				return err
			}
			if attempts >= mfaMaxAttempts {
				result, fail = mfaExceeded, errTooManyCodes
				_, err = tx.ExecContext(ctx, "DELETE FROM mfa_challenges WHERE hash = ?", hash)
				return err
			}
			fail = invalidCode(result, mfaMaxAttempts-attempts)
			_, err = tx.ExecContext(ctx, "UPDATE mfa_challenges SET attempts = ? WHERE hash = ?", attempts, hash)
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM mfa_challenges WHERE hash = ?", hash); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, r, auditEvent{Type: evMFAOK, UserID: uid,
			Detail: map[string]string{"result": result, "step": "login"}}); err != nil {
			return err
		}
		return done(ctx, tx, uid, ua)
	})
	if err != nil {
		return 0, "", err
	}
	s.recordCode(uid, result)
	return uid, result, fail
}
