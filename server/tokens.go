package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// refreshPrefix marks latch refresh tokens so that secret scanners and
// people can recognise one in a paste.
const refreshPrefix = "lrt_"

// tokenPair is the answer of login, refresh and the MFA step.
type tokenPair struct {
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int    `json:"expires_in"`
	RefreshToken     string `json:"refresh_token"`
	RefreshExpiresIn int    `json:"refresh_expires_in"`
}

// newRefreshToken returns an opaque token with 256 bits of randomness and the
// hash it is stored under.
func newRefreshToken() (string, []byte) {
	b := make([]byte, 32)
	rand.Read(b)
	tok := refreshPrefix + base64.RawURLEncoding.EncodeToString(b)
	return tok, hashToken(tok)
}

func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// refresh outcomes, as counted in /metrics.
const (
	refreshRotated = "rotated"
	refreshGrace   = "grace"
	refreshReused  = "reused"
	refreshInvalid = "invalid"
)

var errReused = newProblem(http.StatusUnauthorized, probTokenReused, "Refresh token reused",
	"This refresh token was already used, so the session has been revoked to protect the account. Log in again.")

func invalidRefresh(detail string) *problem {
	return newProblem(http.StatusUnauthorized, probInvalidRefresh, "Invalid refresh token", detail)
}

// session is what the token endpoints hand back: a user's session and its
// newest refresh token.
type session struct {
	UserID    int64
	ID        string
	Refresh   string
	RefreshAt time.Time // when Refresh expires
}

// startSession opens a new session (refresh-token family) for uid.
func (s *Server) startSession(ctx context.Context, tx *sql.Tx, uid int64, userAgent string) (*session, error) {
	// Checked again here, under the write lock every transaction takes
	// first: an admin's lock (or required reset) committed between the
	// password check and this transaction must not be outrun by a login.
	var locked, mustReset bool
	if err := tx.QueryRowContext(ctx, "SELECT locked, must_reset FROM users WHERE id = ?", uid).
		Scan(&locked, &mustReset); err != nil {
		return nil, err
	}
	switch {
	case locked:
		return nil, errAccountLocked
	case mustReset:
		return nil, errResetRequired
	}
	now := s.now()
	// Hex, not base64url: a session id is typed as a command argument
	// (latch admin sessions revoke ID), and one in 64 base64url ids began with
	// '-', which the command line reads as a flag.
	idb := make([]byte, 12)
	rand.Read(idb)
	sid := hex.EncodeToString(idb)
	end := now.Add(s.cfg.SessionMax)
	if _, err := tx.ExecContext(ctx,
		"INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, user_agent) VALUES (?, ?, ?, ?, ?, ?)",
		sid, uid, now.Unix(), now.Unix(), end.Unix(), truncate(userAgent, 200)); err != nil {
		return nil, err
	}
	tok, hash := newRefreshToken()
	exp := minTime(now.Add(s.cfg.RefreshTTL), end)
	if _, err := tx.ExecContext(ctx,
		"INSERT INTO refresh_tokens (hash, session_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
		hash, sid, now.Unix(), exp.Unix()); err != nil {
		return nil, err
	}
	return &session{UserID: uid, ID: sid, Refresh: tok, RefreshAt: exp}, nil
}

// rotate exchanges a refresh token for its successor. The whole decision runs
// in one write transaction, so concurrent presentations of one token are
// serialized and exactly one of them rotates; the others see a used token
// and, within the grace window, get the same successor back.
func (s *Server) rotate(ctx context.Context, tok string) (*session, string, error) {
	hash := hashToken(tok)
	var (
		out     *session
		outcome string
		fail    error
	)
	err := s.st.tx(ctx, func(tx *sql.Tx) error {
		// Read the clock once the write lock is held: a request that queued
		// behind others must judge expiry and grace by the time it runs.
		now := s.now()
		var (
			sid                  string
			uid, tokExp, sessExp int64
			usedAt, revokedAt    sql.NullInt64
			succHash, succSealed []byte
			revokedReason        sql.NullString
		)
		err := tx.QueryRowContext(ctx, `
			SELECT t.session_id, t.expires_at, t.used_at_ms, t.successor_hash, t.successor_enc,
			       s.user_id, s.expires_at, s.revoked_at, s.revoked_reason
			FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
			WHERE t.hash = ?`, hash).Scan(&sid, &tokExp, &usedAt, &succHash, &succSealed,
			&uid, &sessExp, &revokedAt, &revokedReason)
		if s.afterTokenRead != nil {
			s.afterTokenRead()
		}
		switch {
		case errors.Is(err, sql.ErrNoRows):
			outcome, fail = refreshInvalid, invalidRefresh("The refresh token is not known: log in again.")
			return nil
		case err != nil:
			return err
		case revokedAt.Valid:
			outcome, fail = refreshInvalid, invalidRefresh(endedDetail(revokedReason.String))
			return nil
		}

		if usedAt.Valid {
			// A used token: an idempotent retry within the grace window while
			// the successor is still unused gets that successor again, as long
			// as the session has not ended meanwhile.
			used := time.UnixMilli(usedAt.Int64)
			if s.cfg.ReuseGrace > 0 && now.Sub(used) <= s.cfg.ReuseGrace && succSealed != nil {
				var succUsed sql.NullInt64
				var succExp int64
				err := tx.QueryRowContext(ctx, "SELECT used_at_ms, expires_at FROM refresh_tokens WHERE hash = ?",
					succHash).Scan(&succUsed, &succExp)
				if err != nil && !errors.Is(err, sql.ErrNoRows) {
					return err
				}
				if err == nil && !succUsed.Valid {
					if now.Unix() >= succExp || now.Unix() >= sessExp {
						outcome, fail = refreshInvalid, invalidRefresh("The session has expired: log in again.")
						return nil
					}
					plain, err := s.sealer.open(succSealed, succHash)
					if err != nil {
						return fmt.Errorf("open successor of session %s: %w", sid, err)
					}
					out = &session{UserID: uid, ID: sid, Refresh: string(plain), RefreshAt: time.Unix(succExp, 0)}
					outcome = refreshGrace
					return nil
				}
			}
			// Any other presentation of a used token means two parties hold
			// this family: end it.
			if _, err := tx.ExecContext(ctx,
				"UPDATE sessions SET revoked_at = ?, revoked_reason = 'reuse' WHERE id = ?", now.Unix(), sid); err != nil {
				return err
			}
			outcome, fail = refreshReused, errReused
			if err := s.audit(ctx, tx, nil, auditEvent{Type: evRefreshReuse, UserID: uid, SessionID: sid}); err != nil {
				return err
			}
			return s.notice(ctx, tx, uid, "refresh-reuse", clientInfoFrom(ctx))
		}

		if now.Unix() >= tokExp || now.Unix() >= sessExp {
			outcome, fail = refreshInvalid, invalidRefresh("The session has expired: log in again.")
			return nil
		}
		next, nextHash := newRefreshToken()
		exp := minTime(now.Add(s.cfg.RefreshTTL), time.Unix(sessExp, 0))
		if _, err := tx.ExecContext(ctx,
			"INSERT INTO refresh_tokens (hash, session_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
			nextHash, sid, now.Unix(), exp.Unix()); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			"UPDATE refresh_tokens SET used_at_ms = ?, successor_hash = ?, successor_enc = ? WHERE hash = ?",
			now.UnixMilli(), nextHash, s.sealer.seal([]byte(next), nextHash), hash); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE sessions SET last_used_at = ? WHERE id = ?", now.Unix(), sid); err != nil {
			return err
		}
		out = &session{UserID: uid, ID: sid, Refresh: next, RefreshAt: exp}
		outcome = refreshRotated
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return out, outcome, fail
}

func endedDetail(reason string) string {
	switch reason {
	case "reuse":
		return "The session was revoked because one of its refresh tokens was used twice. Log in again."
	case "logout":
		return "The session was logged out. Log in again."
	case "password":
		return "The session was ended by a password change. Log in again."
	case "password-reset":
		return "The session was ended by a password reset. Log in with the new password."
	case "mfa":
		return "The session was ended when two-factor authentication was turned on or off. Log in again."
	// The admin API's (admin.go endAccess).
	case "locked":
		return "An administrator locked the account, which ended the session. Ask them to unlock it."
	case "role":
		return "An administrator removed one of the account's roles, which ended the session. Log in again."
	case "password-reset-required":
		return "An administrator requires a new password, which ended the session. Follow the link in the " +
			"password-reset mail, or run latch password forgot."
	}
	return "The session was revoked. Log in again."
}

// pair signs an access token for sess and shapes the token response.
func (s *Server) pair(sess *session) (*tokenPair, error) {
	var verified bool
	if err := s.st.db.QueryRow("SELECT email_verified FROM users WHERE id = ?", sess.UserID).Scan(&verified); err != nil {
		return nil, fmt.Errorf("read user %d: %w", sess.UserID, err)
	}
	at, err := s.issueAccess(sess.UserID, sess.ID, verified)
	if err != nil {
		return nil, err
	}
	return &tokenPair{
		AccessToken:      at,
		TokenType:        "Bearer",
		ExpiresIn:        int(s.cfg.AccessTTL / time.Second),
		RefreshToken:     sess.Refresh,
		RefreshExpiresIn: max(int(sess.RefreshAt.Sub(s.now())/time.Second), 0),
	}, nil
}

// revokeSession ends the session that tok belongs to. Unknown tokens and
// sessions already ended are not an error: logout is idempotent.
func (s *Server) revokeByToken(ctx context.Context, tok, reason string) (bool, error) {
	var revoked bool
	err := s.st.tx(ctx, func(tx *sql.Tx) error {
		var sid string
		var uid int64
		err := tx.QueryRowContext(ctx, `
			UPDATE sessions SET revoked_at = ?, revoked_reason = ?
			WHERE revoked_at IS NULL AND id = (SELECT session_id FROM refresh_tokens WHERE hash = ?)
			RETURNING id, user_id`,
			s.now().Unix(), reason, hashToken(tok)).Scan(&sid, &uid)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		revoked = true
		return s.audit(ctx, tx, nil, auditEvent{Type: evLogout, UserID: uid, SessionID: sid})
	})
	return revoked, err
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// truncate cuts a caller's text (a User-Agent: a header may carry any byte
// but NUL) to at most n bytes that both databases store as text: invalid
// UTF-8 becomes U+FFFD and the cut falls between characters.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
