package server

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// TOTP parameters: RFC 6238 defaults, the only ones every authenticator app
// understands.
const (
	totpPeriod     = 30 // seconds per time step
	totpDigits     = otp.DigitsSix
	totpSecretSize = 20 // bytes: 160 bits, as RFC 4226 recommends for SHA-1
)

// mfaMethods are the second factors login accepts, as /auth/config and the
// login challenge list them.
var mfaMethods = []string{"totp", "backup_code"}

// Outcomes of checking a code, as counted in latch_mfa_total.
const (
	codeTOTP     = "totp"
	codeBackup   = "backup_code"
	codeInvalid  = "invalid"
	codeReplayed = "replayed"
	// and of a login's second step that never got to check its code
	mfaExpired  = "expired"  // the challenge was unknown or expired
	mfaExceeded = "exceeded" // a wrong code used up the challenge
)

func codeAccepted(result string) bool { return result == codeTOTP || result == codeBackup }

// totpAD binds a sealed TOTP secret to its user: a ciphertext copied to
// another user's row does not open.
func totpAD(uid int64) []byte { return []byte("totp:" + strconv.FormatInt(uid, 10)) }

// newTOTPKey generates a secret and its otpauth:// URI for username. The
// issuer names the server, so that one person's accounts on two latch
// servers stay apart in an authenticator app.
func (s *Server) newTOTPKey(username string) (*otp.Key, error) {
	issuer := "latch"
	if u, err := url.Parse(s.cfg.Issuer); err == nil && u.Hostname() != "" {
		issuer += " (" + u.Hostname() + ")"
	}
	return totp.Generate(totp.GenerateOpts{
		Issuer:      issuer,
		AccountName: username,
		Period:      totpPeriod,
		SecretSize:  totpSecretSize,
		Digits:      totpDigits,
		Algorithm:   otp.AlgorithmSHA1,
	})
}

// checkCode checks a second-factor code of uid at now and consumes it: a
// TOTP code is accepted once (its time step is recorded, and that step and
// every earlier one are refused afterwards); with backup set, a backup code
// is accepted too and deleted. It returns one of the code* outcomes; an error
// is a database or key failure. It runs inside tx so that the check and the
// consumption are one step: of two concurrent uses of a code, one wins.
func (s *Server) checkCode(ctx context.Context, tx *sql.Tx, uid int64, code string, now time.Time, backup bool) (string, error) {
	norm := normalizeCode(code)
	switch {
	case len(norm) == int(totpDigits) && strings.Trim(norm, "0123456789") == "":
		return s.checkTOTP(ctx, tx, uid, norm, now)
	case backup && len(norm) == backupCodeLen:
		res, err := tx.ExecContext(ctx, "DELETE FROM mfa_backup_codes WHERE user_id = ? AND hash = ?",
			uid, s.backupHash(uid, norm))
		if err != nil {
			return "", err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return codeBackup, nil
		}
	}
	return codeInvalid, nil
}

// checkTOTP accepts a code of the current time step or of the one before or
// after it (clock drift), provided that step is newer than the last one
// accepted. pquerna/otp validates but keeps no state, so the steps are
// tried here one by one to learn which step matched.
func (s *Server) checkTOTP(ctx context.Context, tx *sql.Tx, uid int64, code string, now time.Time) (string, error) {
	var (
		sealed []byte
		last   int64
	)
	err := tx.QueryRowContext(ctx, "SELECT secret_enc, last_step FROM mfa_totp WHERE user_id = ?", uid).Scan(&sealed, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return codeInvalid, nil
	}
	if err != nil {
		return "", err
	}
	secret, err := s.sealer.open(sealed, totpAD(uid))
	if err != nil {
		return "", fmt.Errorf("open the TOTP secret of user %d: wrong server key or damaged row", uid)
	}
	step := now.Unix() / totpPeriod
	result := codeInvalid
	for _, st := range []int64{step - 1, step, step + 1} {
		want, err := hotp.GenerateCodeCustom(string(secret), uint64(st),
			hotp.ValidateOpts{Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return "", err
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) != 1 {
			continue
		}
		if st <= last {
			result = codeReplayed // a later step may still match
			continue
		}
		res, err := tx.ExecContext(ctx, "UPDATE mfa_totp SET last_step = ? WHERE user_id = ? AND last_step < ?", st, uid, st)
		if err != nil {
			return "", err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return codeTOTP, nil
		}
		return codeReplayed, nil
	}
	return result, nil
}

// Backup codes are backupCodeLen characters of Crockford's base32 alphabet
// (5 bits each: 50 bits), shown as two groups of five.
const (
	backupCodeCount = 10
	backupCodeLen   = 10
	crockford       = "0123456789abcdefghjkmnpqrstvwxyz"
)

// newBackupCodes returns fresh codes in their display form.
func newBackupCodes() []string {
	codes := make([]string, backupCodeCount)
	b := make([]byte, backupCodeLen)
	for i := range codes {
		rand.Read(b)
		for j := range b {
			b[j] = crockford[b[j]&31] // 256 is a multiple of 32: uniform
		}
		codes[i] = string(b[:5]) + "-" + string(b[5:])
	}
	return codes
}

// normalizeCode folds what people type into one form: no spaces or dashes,
// lower case, and Crockford's look-alikes (o → 0, i and l → 1).
func normalizeCode(code string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '\t':
			return -1
		case 'o', 'O':
			return '0'
		case 'i', 'I', 'l', 'L':
			return '1'
		}
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, code)
}

// backupHash is how a backup code is stored. A fast hash is enough: the codes
// are 50 random bits chosen by the server, not passwords, so there is no
// dictionary to try, online guessing is rate-limited, and a slow hash would
// cost a password hash per stored code on every attempt, since the lookup
// must not depend on a per-row salt to stay one conditional DELETE. It is
// keyed (HMAC under a key derived from the server key) so that a copy of the
// database alone does not allow an offline search either, and it covers the
// user id so that equal codes of two users hash apart.
func (s *Server) backupHash(uid int64, norm string) []byte {
	m := hmac.New(sha256.New, s.codeKey)
	binary.Write(m, binary.BigEndian, uid)
	m.Write([]byte(norm))
	return m.Sum(nil)
}

// storeBackupCodes replaces uid's backup codes with a fresh set and returns
// them; only their hashes are kept.
func (s *Server) storeBackupCodes(ctx context.Context, tx *sql.Tx, uid int64, now time.Time) ([]string, error) {
	if _, err := tx.ExecContext(ctx, "DELETE FROM mfa_backup_codes WHERE user_id = ?", uid); err != nil {
		return nil, err
	}
	codes := newBackupCodes()
	for _, c := range codes {
		if _, err := tx.ExecContext(ctx, "INSERT INTO mfa_backup_codes (user_id, hash, created_at) VALUES (?, ?, ?)",
			uid, s.backupHash(uid, normalizeCode(c)), now.Unix()); err != nil {
			return nil, err
		}
	}
	return codes, nil
}

// deriveCodeKey derives the backup-code hashing key from the server key, so
// that the two uses of the key never share a value.
func deriveCodeKey(secretKey []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, secretKey, nil, "latch backup codes v1", 32)
}
