package server

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"strings"
)

// Password reset: POST /auth/password/forgot (recovery.go) mails a
// password-reset token; POST /auth/password/reset, or the page its link
// opens, spends it with a new password — and, for an account with
// two-factor on, a TOTP or backup code — and ends every session.

// resetPath is the page a reset link opens: GET shows the form, its POST
// resets.
const resetPath = "/password/reset"

var errMFARequired = newProblem(http.StatusUnauthorized, probMFARequired, "Code required",
	"This account has two-factor authentication on: send a code from the authenticator app, or a backup code, with the new password.")

// resetPassword spends the reset token tok and sets the password, checking
// the policy and, when the account has TOTP on, the code. A wrong code
// leaves the token unspent (the MFA limits and backoff hold guessing).
// Every session and refresh-token family of the account ends.
func (s *Server) resetPassword(r *http.Request, tok, newPassword, code string) (int64, error) {
	ctx := r.Context()
	if err := s.limit(r, "reset", ""); err != nil {
		return 0, err
	}
	t, err := s.checkToken(ctx, s.st.db, tok, purposeReset)
	if err != nil {
		return 0, err
	}
	u, err := s.loadUser(ctx, t.uid)
	if err != nil {
		return 0, err
	}
	errs := fieldErrors{}
	s.policy.checkPassword("new_password", newPassword, u.Username, u.Email, errs)
	if len(errs) > 0 {
		return 0, validationProblem(errs)
	}
	code = strings.TrimSpace(code)
	if u.MFAEnabled {
		if code == "" {
			return 0, errMFARequired
		}
		if err := s.mfaLimit(r, u.ID); err != nil {
			return 0, err
		}
	}
	hash, err := s.hasher.Hash(ctx, newPassword)
	if err != nil {
		return 0, err
	}
	ci := s.requestClient(r)
	var result string
	err = s.st.tx(ctx, func(tx *sql.Tx) error {
		t, err := s.spendToken(ctx, tx, tok, purposeReset)
		if err != nil {
			return err
		}
		now := s.now()
		// Judge two-factor again under the write lock: it may have been
		// turned on since.
		var mfa bool
		if err := tx.QueryRowContext(ctx, "SELECT mfa_enabled FROM users WHERE id = ?", t.uid).Scan(&mfa); err != nil {
			return err
		}
		if mfa {
			if code == "" {
				return errMFARequired
			}
			if result, err = s.checkCode(ctx, tx, t.uid, code, now, true); err != nil {
				return err
			}
			if !codeAccepted(result) {
				return invalidCode(result, 0)
			}
		}
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{"UPDATE users SET password_hash = ?, updated_at = ?, must_reset = 0 WHERE id = ?", []any{hash, now.Unix(), t.uid}},
			{"UPDATE sessions SET revoked_at = ?, revoked_reason = 'password-reset' WHERE user_id = ? AND revoked_at IS NULL",
				[]any{now.Unix(), t.uid}},
			{"DELETE FROM account_tokens WHERE user_id = ? AND purpose = ? AND used_at IS NULL", []any{t.uid, purposeReset}},
		} {
			if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
				return err
			}
		}
		// Logins half-way through with the old password end too.
		if err := endPendingLogins(ctx, tx, t.uid); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, r, auditEvent{Type: evPasswordReset, UserID: t.uid}); err != nil {
			return err
		}
		return s.notice(ctx, tx, t.uid, "password-reset-done", ci)
	})
	if result != "" {
		s.recordCode(u.ID, result)
	}
	if err != nil {
		return 0, err
	}
	s.log.Info("password reset", "user_id", u.ID)
	return u.ID, nil
}

func (s *Server) handlePasswordReset(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token       string `json:"token"`
		NewPassword string `json:"new_password"`
		Code        string `json:"code"`
	}
	if err := decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	errs := fieldErrors{}
	if strings.TrimSpace(req.Token) == "" {
		errs["token"] = "is required"
	}
	if req.NewPassword == "" {
		errs["new_password"] = "is required"
	}
	if len(errs) > 0 {
		s.writeError(w, r, validationProblem(errs))
		return
	}
	if _, err := s.resetPassword(r, strings.TrimSpace(req.Token), req.NewPassword, req.Code); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// resetPage is the reset form for tok, or the problem that the token is.
func (s *Server) resetPage(ctx context.Context, tok string) (pageData, error) {
	d := pageData{Title: "Choose a new password", Token: tok}
	t, err := s.checkToken(ctx, s.st.db, tok, purposeReset)
	if err != nil {
		return d, err
	}
	u, err := s.loadUser(ctx, t.uid)
	if err != nil {
		return d, err
	}
	d.Username, d.NeedCode = u.Username, u.MFAEnabled
	return d, nil
}

func (s *Server) handleResetPage(w http.ResponseWriter, r *http.Request) {
	d, err := s.resetPage(r.Context(), r.URL.Query().Get("token"))
	if err != nil {
		s.pageProblem(w, r, "result", d, err)
		return
	}
	s.render(w, r, http.StatusOK, "reset", d)
}

func (s *Server) handleResetPost(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.checkForm(w, r); !ok {
		return
	}
	tok := r.PostForm.Get("token")
	_, err := s.resetPassword(r, tok, r.PostForm.Get("new_password"), r.PostForm.Get("code"))
	if err == nil {
		s.render(w, r, http.StatusOK, "result", pageData{Title: "Password changed",
			Message: "Your password was reset and every session of the account signed out. Sign in with the new password."})
		return
	}
	// The form again, with what was wrong, while the token still works.
	d, terr := s.resetPage(r.Context(), tok)
	if terr != nil {
		s.pageProblem(w, r, "result", d, terr)
		return
	}
	var p *problem
	if errors.As(err, &p) && p.Type == probValidation && p.Errors["new_password"] != "" {
		p = newProblem(p.Status, p.Type, p.Title, "The new password "+p.Errors["new_password"]+".")
		err = p
	}
	s.pageProblem(w, r, "reset", d, err)
}
