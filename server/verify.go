package server

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"strings"
)

// Email verification: a verify-email token is mailed on signup, on an email
// change and on request (resend); POST /auth/email/verify, or the page its
// link opens, spends it and marks the address verified.

// verifyPath is the page a verification link opens. A GET only shows a
// button: mail scanners fetch links, and must not spend the token.
const verifyPath = "/email/verify"

var errAlreadyVerified = newProblem(http.StatusConflict, probConflict, "Already verified",
	"This account's email address is already verified.")

// verifyEmail spends tok and marks the address it was mailed to verified,
// if it is still the account's. It answers the address.
func (s *Server) verifyEmail(ctx context.Context, tok string) (string, error) {
	var email string
	var uid int64
	err := s.st.tx(ctx, func(tx *sql.Tx) error {
		t, err := s.spendToken(ctx, tx, tok, purposeVerify)
		if err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, "SELECT email FROM users WHERE id = ?", t.uid).Scan(&email); err != nil {
			return err
		}
		// The address changed since the mail was sent: the token proves
		// only the old one.
		if !strings.EqualFold(email, t.email) {
			return errTokenInvalid(purposeVerify)
		}
		uid = t.uid
		if _, err = tx.ExecContext(ctx, "UPDATE users SET email_verified = 1, updated_at = ? WHERE id = ?", s.now().Unix(), t.uid); err != nil {
			return err
		}
		return s.audit(ctx, tx, nil, auditEvent{Type: evEmailVerified, UserID: t.uid})
	})
	if err == nil {
		s.log.Info("email verified", "user_id", uid)
	}
	return email, err
}

func (s *Server) handleEmailVerify(w http.ResponseWriter, r *http.Request) {
	var req struct{ Token string }
	if err := decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if strings.TrimSpace(req.Token) == "" {
		s.writeError(w, r, validationProblem(fieldErrors{"token": "is required"}))
		return
	}
	if err := s.limit(r, "verify", ""); err != nil {
		s.writeError(w, r, err)
		return
	}
	email, err := s.verifyEmail(r.Context(), strings.TrimSpace(req.Token))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"email": email, "email_verified": true})
}

// handleEmailResend mails a new verification token. With a Bearer token it
// is the signed-in user's, and says when the address is already verified
// or the mail limit holds; without one it takes {"identifier"} and always
// answers 202, like forgot: a login refused for an unverified address
// issues no session to resend with.
func (s *Server) handleEmailResend(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") == "" {
		s.mailByIdentifier(w, r, "resend", purposeVerify)
		return
	}
	a, err := s.authenticate(r)
	if err == nil {
		err = s.limit(r, "resend", "")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx := r.Context()
	u, err := s.loadUser(ctx, a.UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if u.EmailVerified {
		s.writeError(w, r, errAlreadyVerified)
		return
	}
	if ok, d := s.mailAllowed(mailKeys(purposeVerify, u.ID, u.Email)...); !ok {
		s.writeError(w, r, rateLimited(retrySeconds(d)))
		return
	}
	err = s.st.tx(ctx, func(tx *sql.Tx) error {
		return s.sendToken(ctx, tx, u.ID, u.Username, u.Email, purposeVerify, newAccountToken())
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("recovery mail queued", "user_id", u.ID, "kind", purposeVerify)
	accepted(w)
}

// handleEmailChange changes the address at once, unverified, mails a
// verification token to the new address and a notice to the old one.
func (s *Server) handleEmailChange(w http.ResponseWriter, r *http.Request, a *auth) {
	var req struct {
		NewEmail string `json:"new_email"`
		Password string `json:"password"`
	}
	u, ok := s.ownChange(w, r, a, "email-change", &req)
	if !ok {
		return
	}
	ctx := r.Context()
	errs := fieldErrors{}
	s.policy.checkEmail(req.NewEmail, errs)
	if errs["email"] != "" {
		errs["new_email"] = errs["email"]
		delete(errs, "email")
	} else if strings.EqualFold(req.NewEmail, u.Email) {
		errs["new_email"] = "is already this account's address"
	}
	if req.Password == "" {
		errs["password"] = "is required"
	}
	if len(errs) > 0 {
		s.writeError(w, r, validationProblem(errs))
		return
	}
	if err := s.checkOwnPassword(ctx, a.UserID, "password", req.Password); err != nil {
		s.writeError(w, r, err)
		return
	}
	if ok, d := s.mailAllowed(mailKeys(purposeVerify, u.ID, req.NewEmail)...); !ok {
		s.writeError(w, r, rateLimited(retrySeconds(d)))
		return
	}
	ci := s.requestClient(r)
	err := s.st.tx(ctx, func(tx *sql.Tx) error {
		var owner int64
		err := tx.QueryRowContext(ctx, "SELECT id FROM users WHERE email = ?", req.NewEmail).Scan(&owner)
		switch {
		case err == nil && s.cfg.RequireVerifiedEmail:
			// Say nothing to the caller about someone else's address:
			// its owner is told instead.
			return s.accountExists(ctx, tx, owner)
		case err == nil:
			return conflict(fieldErrors{"new_email": "is already registered"})
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE users SET email = ?, email_verified = 0, updated_at = ? WHERE id = ?",
			req.NewEmail, s.now().Unix(), u.ID); err != nil {
			return err
		}
		// Tokens mailed to the old address no longer reach its owner.
		if _, err := tx.ExecContext(ctx, "DELETE FROM account_tokens WHERE user_id = ? AND used_at IS NULL", u.ID); err != nil {
			return err
		}
		if err := s.mail(ctx, tx, u.Email, u.Username, "email-changed", map[string]string{
			"old_email": u.Email, "new_email": req.NewEmail, "when": mailTime(s.now()), "ip": ci.ip, "user_agent": ci.userAgent,
		}); err != nil {
			return err
		}
		return s.sendToken(ctx, tx, u.ID, u.Username, req.NewEmail, purposeVerify, newAccountToken())
	})
	if col := s.st.uniqueViolation(err); col != "" {
		err = conflict(fieldErrors{"new_email": "is already registered"})
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("email changed", "user_id", u.ID)
	writeJSON(w, http.StatusAccepted, map[string]any{"email": req.NewEmail, "email_verified": false})
}

// accountExists tells the owner of an address that someone tried to
// register it (or move an account to it).
func (s *Server) accountExists(ctx context.Context, tx *sql.Tx, owner int64) error {
	var username, email string
	if err := tx.QueryRowContext(ctx, "SELECT username, email FROM users WHERE id = ?", owner).Scan(&username, &email); err != nil {
		return err
	}
	if ok, _ := s.mailAllowed("account-exists|" + acctKey(owner)); !ok {
		return nil
	}
	return s.mail(ctx, tx, email, username, "account-exists", nil)
}

// ownChange begins a change the signed-in user makes to their account
// (password, email): it reads the body into req, applies the endpoint's
// limits per IP and per account, and loads the account. When it reports
// false it has answered the request.
func (s *Server) ownChange(w http.ResponseWriter, r *http.Request, a *auth, endpoint string, req any) (*user, bool) {
	err := decode(w, r, req)
	if err == nil {
		err = s.limit(r, endpoint, acctKey(a.UserID))
	}
	var u *user
	if err == nil {
		u, err = s.loadUser(r.Context(), a.UserID)
	}
	if err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	return u, true
}

// checkOwnPassword checks the signed-in user's password, for a change that
// needs it again; what names it in the refusal ("password", "current
// password").
func (s *Server) checkOwnPassword(ctx context.Context, uid int64, what, password string) error {
	var hash string
	if err := s.st.db.QueryRowContext(ctx, "SELECT password_hash FROM users WHERE id = ?", uid).Scan(&hash); err != nil {
		return err
	}
	ok, _, err := s.hasher.Verify(ctx, hash, password)
	if err != nil {
		return err
	}
	if !ok {
		return newProblem(http.StatusUnauthorized, probCredentials, "Invalid credentials", "The "+what+" is wrong.")
	}
	return nil
}

// The verification page: GET shows a button, its POST spends the token.

func (s *Server) handleVerifyPage(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	if _, err := s.checkToken(r.Context(), s.st.db, tok, purposeVerify); err != nil {
		s.pageProblem(w, r, "result", pageData{Title: "Verify your email"}, err)
		return
	}
	s.render(w, r, http.StatusOK, "verify", pageData{Title: "Verify your email", Token: tok})
}

func (s *Server) handleVerifyPost(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.checkForm(w, r); !ok {
		return
	}
	d := pageData{Title: "Verify your email"}
	if err := s.limit(r, "verify", ""); err != nil {
		s.pageProblem(w, r, "result", d, err)
		return
	}
	email, err := s.verifyEmail(r.Context(), r.PostForm.Get("token"))
	if err != nil {
		s.pageProblem(w, r, "result", d, err)
		return
	}
	s.render(w, r, http.StatusOK, "result", pageData{Title: "Email verified",
		Message: "The address " + email + " is verified. You can close this page."})
}
