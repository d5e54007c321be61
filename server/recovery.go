package server

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Account recovery and verification (issue 15): single-use tokens mailed
// to the account's address, for verifying the address (verify.go) and
// resetting the password (reset.go). A token is 32 random bytes, stored
// only as its SHA-256 hash, bound to the address it was mailed to, and
// spent by a conditional UPDATE, so that of two concurrent uses one wins.

// Token purposes, which are also the kinds of the mails that carry them.
const (
	purposeVerify = "verify-email"
	purposeReset  = "password-reset"
)

// Token lifetimes.
const (
	verifyTTL = 24 * time.Hour
	resetTTL  = 30 * time.Minute
)

// tokenPage is the page a token's link opens; tokenTTL how long it lasts.
func tokenPage(purpose string) string {
	if purpose == purposeReset {
		return resetPath
	}
	return verifyPath
}

func tokenTTL(purpose string) time.Duration {
	if purpose == purposeReset {
		return resetTTL
	}
	return verifyTTL
}

// tokenAgain says how to get a new token of purpose.
func tokenAgain(purpose string) string {
	if purpose == purposeReset {
		return "Ask for a new one with `latch password forgot`."
	}
	return "Ask for a new one with `latch email resend`."
}

func errTokenInvalid(purpose string) *problem {
	return newProblem(http.StatusBadRequest, probTokenInvalid, "Invalid token",
		"This token is not valid: check that it was copied whole. A newer mail may have replaced it, or the address changed since. "+
			tokenAgain(purpose))
}

func errTokenExpired(purpose string) *problem {
	return newProblem(http.StatusBadRequest, probTokenExpired, "Token expired",
		"This token has expired (it lasts "+humanDuration(tokenTTL(purpose))+"). "+tokenAgain(purpose))
}

func errTokenUsed(purpose string) *problem {
	return newProblem(http.StatusBadRequest, probTokenUsed, "Token already used",
		"This token was already used: each works once. "+tokenAgain(purpose))
}

func humanDuration(d time.Duration) string {
	if d >= time.Hour {
		return strconv.Itoa(int(d/time.Hour)) + " hours"
	}
	return strconv.Itoa(int(d/time.Minute)) + " minutes"
}

// newAccountToken returns a token with 256 bits of randomness.
func newAccountToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sendToken replaces uid's unused tokens of purpose with tok, mailed to
// email within tx.
func (s *Server) sendToken(ctx context.Context, tx *sql.Tx, uid int64, username, email, purpose, tok string) error {
	now := s.now()
	exp := now.Add(tokenTTL(purpose))
	if _, err := tx.ExecContext(ctx, "DELETE FROM account_tokens WHERE user_id = ? AND purpose = ? AND used_at IS NULL",
		uid, purpose); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO account_tokens (hash, purpose, user_id, email, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?)`, hashToken(tok), purpose, uid, email, now.Unix(), exp.Unix()); err != nil {
		return err
	}
	return s.mail(ctx, tx, email, username, purpose, s.tokenMail(purpose, tok, exp))
}

// tokenMail is what the mail carrying tok of purpose, good until exp, says
// (besides the username every mail gets).
func (s *Server) tokenMail(purpose, tok string, exp time.Time) map[string]string {
	return map[string]string{
		"link":    s.cfg.Issuer + tokenPage(purpose) + "?token=" + url.QueryEscape(tok),
		"token":   tok,
		"expires": mailTime(exp),
	}
}

// tokenRow is a stored token, as judged now.
type tokenRow struct {
	uid   int64
	email string
}

// checkToken reads tok of purpose without spending it: its user, or the
// problem (invalid, expired, used) it is.
func (s *Server) checkToken(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, tok, purpose string) (*tokenRow, error) {
	var (
		t    tokenRow
		exp  int64
		used sql.NullInt64
	)
	err := q.QueryRowContext(ctx, "SELECT user_id, email, expires_at, used_at FROM account_tokens WHERE hash = ? AND purpose = ?",
		hashToken(tok), purpose).Scan(&t.uid, &t.email, &exp, &used)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, errTokenInvalid(purpose)
	case err != nil:
		return nil, err
	case used.Valid:
		return nil, errTokenUsed(purpose)
	case s.now().Unix() >= exp:
		return nil, errTokenExpired(purpose)
	}
	return &t, nil
}

// spendToken uses tok of purpose within tx: a conditional UPDATE, so that of
// two concurrent uses exactly one wins; the other gets token-used.
func (s *Server) spendToken(ctx context.Context, tx *sql.Tx, tok, purpose string) (*tokenRow, error) {
	now := s.now().Unix()
	res, err := tx.ExecContext(ctx, `UPDATE account_tokens SET used_at = ?
		WHERE hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?`, now, hashToken(tok), purpose, now)
	if err != nil {
		return nil, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, err
	}
	if n == 1 {
		return s.tokenOwner(ctx, tx, tok, purpose)
	}
	if _, err := s.checkToken(ctx, tx, tok, purpose); err != nil {
		return nil, err
	}
	// Not spent, yet valid by a clock that moved on between the two
	// statements: it expired meanwhile.
	return nil, errTokenExpired(purpose)
}

func (s *Server) tokenOwner(ctx context.Context, tx *sql.Tx, tok, purpose string) (*tokenRow, error) {
	var t tokenRow
	err := tx.QueryRowContext(ctx, "SELECT user_id, email FROM account_tokens WHERE hash = ? AND purpose = ?",
		hashToken(tok), purpose).Scan(&t.uid, &t.email)
	return &t, err
}

// mailAllowed takes one mail from each key's budget (every key is charged,
// so that the work done does not depend on which one is exhausted) and
// reports whether all had one, and the longest wait otherwise.
func (s *Server) mailAllowed(keys ...string) (bool, time.Duration) {
	ok, wait := true, time.Duration(0)
	for _, k := range keys {
		if a, d := s.mailLimit.allow(k); !a {
			ok, wait = false, max(wait, d)
		}
	}
	return ok, wait
}

// mailKeys are the mail-limit budgets that a mail of purpose to account
// uid at address email takes from.
func mailKeys(purpose string, uid int64, email string) []string {
	return []string{purpose + "|" + acctKey(uid), purpose + "|email:" + strings.ToLower(email)}
}

// mailRequest is an unauthenticated request for a mail of purpose (forgot,
// resend by identifier). It answers nothing: the caller always gets the
// same 202. Whether or not the identifier names an account, whether or not
// a limit holds the mail back, it does the same work — one lookup, one
// token, one write transaction — so that its timing says nothing either.
func (s *Server) mailRequest(r *http.Request, identifier, purpose string) error {
	ctx := r.Context()
	var (
		uid             int64
		username, email string
		verified        bool
	)
	err := s.st.db.QueryRowContext(ctx, "SELECT id, username, email, email_verified FROM users WHERE username = ? OR email = ?",
		identifier, identifier).Scan(&uid, &username, &email, &verified)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	found := err == nil
	keys := []string{purpose + "|id:" + strings.ToLower(identifier)}
	if found {
		keys = append(keys, mailKeys(purpose, uid, email)...)
	}
	allowed, _ := s.mailAllowed(keys...)
	send := found && allowed && !(purpose == purposeVerify && verified)
	tok := newAccountToken()
	err = s.st.tx(ctx, func(tx *sql.Tx) error {
		if !send {
			return s.mimicSend(ctx, tx, purpose, tok)
		}
		return s.sendToken(ctx, tx, uid, username, email, purpose, tok)
	})
	if err != nil {
		return err
	}
	if send {
		s.log.Info("recovery mail queued", "user_id", uid, "kind", purpose)
	} else if found && !allowed {
		s.log.Info("recovery mail held back by the mail limit", "user_id", uid, "kind", purpose)
	}
	return nil
}

// mimicSend costs what sendToken does without changing anything: its
// statements matching no row, and the mail rendered and sealed but not
// queued.
func (s *Server) mimicSend(ctx context.Context, tx *sql.Tx, purpose, tok string) error {
	now := s.now()
	exp := now.Add(tokenTTL(purpose))
	if _, err := tx.ExecContext(ctx, "DELETE FROM account_tokens WHERE user_id = ? AND purpose = ? AND used_at IS NULL",
		-1, purpose); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO account_tokens (hash, purpose, user_id, email, created_at, expires_at)
		SELECT ?, ?, id, ?, ?, ? FROM users WHERE id = -1`, hashToken(tok), purpose, "", now.Unix(), exp.Unix()); err != nil {
		return err
	}
	data := s.tokenMail(purpose, tok, exp)
	data["username"] = "nobody"
	_, err := s.sealMail(outMail{To: "nobody@example.invalid", Kind: purpose, Data: data})
	return err
}

// accepted is the answer of the mail-sending endpoints.
func accepted(w http.ResponseWriter) { writeJSON(w, http.StatusAccepted, struct{}{}) }

func (s *Server) handlePasswordForgot(w http.ResponseWriter, r *http.Request) {
	s.mailByIdentifier(w, r, "forgot", purposeReset)
}

// mailByIdentifier serves the endpoints that mail a token to the account an
// {"identifier"} names, without a session (forgot, resend): always 202, at
// the same cost whether or not the account exists; only the per-IP limit
// (bucket) answers otherwise.
func (s *Server) mailByIdentifier(w http.ResponseWriter, r *http.Request, bucket, purpose string) {
	var req struct{ Identifier string }
	if err := decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if strings.TrimSpace(req.Identifier) == "" {
		s.writeError(w, r, validationProblem(fieldErrors{"identifier": "is required"}))
		return
	}
	if err := s.limit(r, bucket, ""); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.mailRequest(r, req.Identifier, purpose); err != nil {
		s.writeError(w, r, err)
		return
	}
	accepted(w)
}
