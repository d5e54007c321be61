package server

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// auth is who a valid access token speaks for.
type auth struct {
	UserID    int64
	SessionID string
	Roles     []string // the access token's roles claim
}

// authed wraps a handler that needs a valid access token whose session is
// still open: revoking a session takes effect at once, not at token expiry.
func (s *Server) authed(next func(http.ResponseWriter, *http.Request, *auth)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := s.authenticate(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		next(w, r, a)
	})
}

// authenticate checks the request's Bearer access token and that its
// session is open; anything wrong is errUnauthorized.
func (s *Server) authenticate(r *http.Request) (*auth, error) {
	scheme, raw, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return nil, errUnauthorized
	}
	c, err := s.verifyAccess(strings.TrimSpace(raw))
	if err != nil {
		return nil, errUnauthorized
	}
	uid, err := strconv.ParseInt(c.Subject, 10, 64)
	if err != nil {
		return nil, errUnauthorized
	}
	var open bool
	err = s.st.db.QueryRowContext(r.Context(),
		"SELECT revoked_at IS NULL AND expires_at > ? FROM sessions WHERE id = ? AND user_id = ?",
		s.now().Unix(), c.SessionID, uid).Scan(&open)
	if err != nil && err != sql.ErrNoRows {
		return nil, err
	}
	if !open {
		return nil, errUnauthorized
	}
	return &auth{UserID: uid, SessionID: c.SessionID, Roles: c.Roles}, nil
}

// refreshToken reads the {"refresh_token": …} body of refresh and logout.
func refreshToken(w http.ResponseWriter, r *http.Request) (string, error) {
	var req struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := decode(w, r, &req); err != nil {
		return "", err
	}
	if req.RefreshToken == "" {
		return "", validationProblem(fieldErrors{"refresh_token": "is required"})
	}
	return req.RefreshToken, nil
}

func (s *Server) handleRefresh(w http.ResponseWriter, r *http.Request) {
	tok, err := refreshToken(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// Per account here is per token: a client retries one token a few
	// times at most, and the hash says nothing about the account.
	if err := s.limit(r, "refresh", "rt:"+hex.EncodeToString(hashToken(tok)[:8])); err != nil {
		s.metrics.refreshes.inc("limited")
		s.writeError(w, r, err)
		return
	}
	// An OAuth client's refresh token is redeemed at the token endpoint,
	// within its client's scopes: here it would become an account-API
	// session with every power over the account.
	var clientID sql.NullString
	if err := s.st.db.QueryRowContext(r.Context(), `SELECT s.client_id FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
		WHERE t.hash = ?`, hashToken(tok)).Scan(&clientID); err != nil && !errors.Is(err, sql.ErrNoRows) {
		s.writeError(w, r, err)
		return
	}
	if clientID.Valid {
		s.metrics.refreshes.inc(refreshInvalid)
		s.writeError(w, r, invalidRefresh("This refresh token belongs to an OAuth client: redeem it at the token endpoint."))
		return
	}
	sess, outcome, err := s.rotate(r.Context(), tok)
	if outcome != "" {
		s.metrics.refreshes.inc(outcome)
	}
	if outcome == refreshReused {
		s.log.Warn("refresh token reuse: session revoked", "ip", s.clientIP(r))
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.respondTokens(w, r, sess)
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	tok, err := refreshToken(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.limit(r, "logout", ""); err != nil {
		s.writeError(w, r, err)
		return
	}
	revoked, err := s.revokeByToken(r.Context(), tok, "logout")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if revoked {
		s.metrics.logouts.inc("revoked")
	} else {
		s.metrics.logouts.inc("noop")
	}
	w.WriteHeader(http.StatusNoContent)
}

type sessionInfo struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	UserAgent  string    `json:"user_agent"`
	Current    bool      `json:"current"`
}

func (s *Server) handleSessions(w http.ResponseWriter, r *http.Request, a *auth) {
	now := s.now().Unix()
	// A session is open while it is not revoked, not past its absolute end
	// and its newest refresh token has not idled out.
	rows, err := s.st.db.QueryContext(r.Context(), `
		SELECT s.id, s.created_at, s.last_used_at, s.user_agent,
		       (SELECT CASE WHEN max(t.expires_at) < s.expires_at THEN max(t.expires_at)
		                    WHEN max(t.expires_at) IS NOT NULL THEN s.expires_at END
		        FROM refresh_tokens t WHERE t.session_id = s.id AND t.used_at_ms IS NULL) AS ends
		FROM sessions s
		WHERE s.user_id = ? AND s.revoked_at IS NULL AND s.expires_at > ?
		ORDER BY s.last_used_at DESC`, a.UserID, now)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer rows.Close()
	list := []sessionInfo{}
	for rows.Next() {
		var si sessionInfo
		var created, used int64
		var ends sql.NullInt64
		if err := rows.Scan(&si.ID, &created, &used, &si.UserAgent, &ends); err != nil {
			s.writeError(w, r, err)
			return
		}
		if !ends.Valid || ends.Int64 <= now {
			continue
		}
		si.CreatedAt, si.LastUsedAt = time.Unix(created, 0).UTC(), time.Unix(used, 0).UTC()
		si.ExpiresAt = time.Unix(ends.Int64, 0).UTC()
		si.Current = si.ID == a.SessionID
		list = append(list, si)
	}
	if err := rows.Err(); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": list})
}

func (s *Server) handleRevokeSession(w http.ResponseWriter, r *http.Request, a *auth) {
	id := r.PathValue("id")
	var n int64
	err := s.st.tx(r.Context(), func(tx *sql.Tx) error {
		res, err := tx.ExecContext(r.Context(), `UPDATE sessions SET revoked_at = ?, revoked_reason = 'revoked'
			WHERE id = ? AND user_id = ? AND revoked_at IS NULL`, s.now().Unix(), id, a.UserID)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		return s.audit(r.Context(), tx, r, auditEvent{Type: evSessionRevoked, UserID: a.UserID, SessionID: id,
			Detail: map[string]string{"by_session": a.SessionID}})
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if n == 0 {
		s.writeError(w, r, newProblem(http.StatusNotFound, probNotFound, "No such session",
			"You have no open session with this id."))
		return
	}
	s.log.Info("session revoked", "user_id", a.UserID, "session", id)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	json.NewEncoder(w).Encode(s.keys.jwks)
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	db, err := s.st.info(ctx)
	if err != nil {
		s.log.Error("health check", "err", err)
		s.writeError(w, r, newProblem(http.StatusServiceUnavailable, probUnavailable, "Unavailable",
			"The database does not answer."))
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Status   string `json:"status"`
		Database DBInfo `json:"database"`
	}{"ok", db})
}

// sweep is the janitor's work: sealed successors past the grace window are
// erased, and sessions ended more than a day ago are deleted with their
// tokens (until then their tokens still identify a reuse).
func (s *Server) sweep(ctx context.Context) error {
	now := s.now()
	graceEnd := now.Add(-max(s.cfg.ReuseGrace, 0)).UnixMilli()
	dayAgo := now.Add(-24 * time.Hour).Unix()
	err := s.st.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			"UPDATE refresh_tokens SET successor_enc = NULL WHERE successor_enc IS NOT NULL AND used_at_ms < ?", graceEnd); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE revoked_at < ? OR expires_at < ?
			OR NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.session_id = sessions.id
			               AND t.used_at_ms IS NULL AND t.expires_at >= ?)`, dayAgo, dayAgo, dayAgo); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM oauth_requests WHERE expires_at < ?", now.Add(-time.Hour).Unix()); err != nil {
			return err
		}
		// Mailed tokens are kept a day past expiry, so that a late click
		// is told "expired" or "used" rather than "invalid".
		if _, err := tx.ExecContext(ctx, "DELETE FROM account_tokens WHERE expires_at < ?", dayAgo); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM mfa_challenges WHERE expires_at < ?", now.Unix()); err != nil {
			return err
		}
		return s.pruneAudit(ctx, tx, now)
	})
	s.ipLimit.sweep(time.Hour)
	s.acctLimit.sweep(time.Hour)
	s.mailLimit.sweep(time.Hour) // a mail bucket refills in 30 min: an hour idle is full
	s.backoff.sweep()
	return err
}
