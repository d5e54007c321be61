package client

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// MFASetup is a new TOTP secret, pending until MFAEnable confirms a code
// from it. Both fields are the secret itself: show them to the user once.
// String and GoString redact them, so printing an MFASetup by mistake leaks
// nothing.
type MFASetup struct {
	Secret string // base32, to type into an authenticator app
	URI    string // otpauth://totp/… key URI, to show as a QR code
}

func (m MFASetup) String() string { return "MFASetup{Secret:[redacted] URI:[redacted]}" }

// GoString redacts for %#v too.
func (m MFASetup) GoString() string { return m.String() }

// MFASetup starts enrolling an authenticator app for the current user. An
// account that already has MFA on matches ErrMFAAlreadyEnabled.
func (c *Client) MFASetup(ctx context.Context, accessToken string) (*MFASetup, error) {
	var w struct {
		Secret string `json:"secret"`
		URI    string `json:"uri"`
	}
	r, err := c.bearerCall(ctx, http.MethodPost, "/auth/mfa/setup", nil, accessToken, http.StatusOK, &w)
	if err != nil {
		return nil, err
	}
	if w.Secret == "" || !strings.HasPrefix(w.URI, "otpauth://") {
		return nil, shapeError(r, "has no secret or no otpauth:// uri")
	}
	return &MFASetup{Secret: w.Secret, URI: w.URI}, nil
}

// MFAEnable turns MFA on with a current code from the pending secret and
// returns the backup codes, which the server never shows again. A wrong code
// matches ErrInvalidCode; no pending setup, ErrMFASetupRequired.
func (c *Client) MFAEnable(ctx context.Context, accessToken, code string) ([]string, error) {
	return c.backupCodes(ctx, "/auth/mfa/enable", accessToken, code)
}

// MFAVerify is the second step of a login: the Token of the
// *MFARequiredError that Login returned, and a TOTP code or a backup code. A
// wrong code matches ErrInvalidCode (try again; APIError.AttemptsLeft says how
// often); ErrMFAChallengeExpired means the step is over (expired, or too many
// wrong codes) and the password must be entered again.
func (c *Client) MFAVerify(ctx context.Context, mfaToken, code string) (*Tokens, error) {
	if mfaToken == "" {
		return nil, fmt.Errorf("POST /auth/mfa/verify: %w: no mfa token; log in with the password first", ErrMFAChallengeExpired)
	}
	var w tokenWire
	r, err := c.call(ctx, http.MethodPost, "/auth/mfa/verify", map[string]string{"mfa_token": mfaToken, "code": code},
		"", http.StatusOK, &w, mfaToken, code)
	if err != nil {
		return nil, err
	}
	return w.tokens(r, mfaToken, code)
}

// MFADisable turns MFA off; it takes a TOTP code or a backup code. An
// account without MFA matches ErrMFANotEnabled.
func (c *Client) MFADisable(ctx context.Context, accessToken, code string) error {
	_, err := c.MFADisableSessions(ctx, accessToken, code, false)
	return err
}

// MFABackupCodes replaces the backup codes, given a current TOTP code (not a
// backup code), and returns the new ones; the old ones stop working.
func (c *Client) MFABackupCodes(ctx context.Context, accessToken, code string) ([]string, error) {
	return c.backupCodes(ctx, "/auth/mfa/backup-codes", accessToken, code)
}

// backupCodes posts {code} to path and reads the backup codes it answers.
func (c *Client) backupCodes(ctx context.Context, path, accessToken, code string) ([]string, error) {
	var w struct {
		Codes []string `json:"backup_codes"`
	}
	r, err := c.bearerCall(ctx, http.MethodPost, path, map[string]string{"code": code}, accessToken, http.StatusOK, &w, code)
	if err != nil {
		return nil, err
	}
	if len(w.Codes) == 0 {
		return nil, shapeError(r, "has no backup_codes")
	}
	for i, bc := range w.Codes {
		if strings.TrimSpace(bc) == "" {
			return nil, shapeError(r, fmt.Sprintf("has an empty backup code (index %d)", i))
		}
	}
	return w.Codes, nil
}
