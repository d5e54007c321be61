package flows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pquerna/otp/totp"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/vault"
)

// ErrNoTOTPSecret means the vault holds no TOTP secret for the profile
// (only mfa setup --store-secret saves one).
var ErrNoTOTPSecret = errors.New("no saved TOTP secret")

// ErrNoBackupCodes means the vault holds no unused backup code to answer with.
var ErrNoBackupCodes = errors.New("no unused backup code saved")

// MFASetup is what the user sees to enrol an authenticator: the secret, for
// typing in, and its otpauth:// URI, for a QR code.
type MFASetup struct {
	Secret string
	URI    string
}

// Grouped returns the secret in groups of four, for typing in by hand.
func (s *MFASetup) Grouped() string { return group(s.Secret, 4) }

func group(s string, n int) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && i%n == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// StartMFASetup asks the server for a fresh TOTP secret (step one of
// enrolment; nothing changes until EnableMFA confirms a code). With store,
// the secret is also kept in the vault so that latch can answer the MFA step
// itself — which makes this terminal a single factor.
func (e *Env) StartMFASetup(ctx context.Context, profile string, store bool) (*MFASetup, error) {
	p, err := e.Profile(profile)
	if err != nil {
		return nil, err
	}
	s, err := authed(ctx, e, p.Name, func(c *client.Client, tok string) (*client.MFASetup, error) { return c.MFASetup(ctx, tok) })
	if err != nil {
		return nil, err
	}
	if store {
		if err := e.Secrets.Set(ctx, totpKey(p.Name), []byte(s.Secret)); err != nil {
			return nil, fmt.Errorf("save the TOTP secret: %w", err)
		}
	}
	return &MFASetup{Secret: s.Secret, URI: s.URI}, nil
}

// EnableMFA confirms enrolment with a code from the authenticator. The
// server's 10 backup codes are saved to the vault before they are returned;
// if saving fails they are returned anyway, with the error, so the caller can
// show them once — the server will not show them again.
func (e *Env) EnableMFA(ctx context.Context, profile, code string) ([]string, error) {
	name, codes, err := e.newBackupCodes(ctx, profile, "two-factor is on",
		func(c *client.Client, tok string) ([]string, error) { return c.MFAEnable(ctx, tok, code) })
	if codes != nil {
		e.setMFA(ctx, name, true)
		e.spentTOTP(ctx, name, code)
	}
	return codes, err
}

// RegenerateBackupCodes replaces the account's backup codes (the old ones
// die) and saves the new set, like EnableMFA.
func (e *Env) RegenerateBackupCodes(ctx context.Context, profile, code string) ([]string, error) {
	name, codes, err := e.newBackupCodes(ctx, profile, "new backup codes were made",
		func(c *client.Client, tok string) ([]string, error) { return c.MFABackupCodes(ctx, tok, code) })
	if codes != nil {
		e.spentTOTP(ctx, name, code)
	}
	return codes, err
}

// newBackupCodes makes the call that answers with a new set of backup codes
// and saves them. When saving fails the codes are returned with the error,
// which starts with done (what happened at the server).
func (e *Env) newBackupCodes(ctx context.Context, profile, done string,
	call func(c *client.Client, tok string) ([]string, error)) (string, []string, error) {
	p, err := e.Profile(profile)
	if err != nil {
		return "", nil, err
	}
	codes, err := authed(ctx, e, p.Name, call)
	if err != nil {
		return p.Name, nil, err
	}
	if err := e.saveBackupCodes(ctx, p.Name, codes); err != nil {
		return p.Name, codes, fmt.Errorf("%s, but the backup codes could not be saved (%w): write them down now, they are not shown again", done, err)
	}
	return p.Name, codes, nil
}

// DisableMFA turns two-factor off and forgets the profile's saved backup
// codes and TOTP secret.
func (e *Env) DisableMFA(ctx context.Context, profile, code string) error {
	return e.disableMFA(ctx, profile, func(c *client.Client, tok string) error { return c.MFADisable(ctx, tok, code) })
}

// disableMFA is DisableMFA with the server call given.
func (e *Env) disableMFA(ctx context.Context, profile string, call func(c *client.Client, tok string) error) error {
	p, err := e.Profile(profile)
	if err != nil {
		return err
	}
	_, err = authed(ctx, e, p.Name, func(c *client.Client, tok string) (struct{}, error) { return struct{}{}, call(c, tok) })
	if err != nil {
		return err
	}
	e.setMFA(ctx, p.Name, false)
	for _, k := range []string{backupKey(p.Name), totpKey(p.Name), totpStepKey(p.Name)} {
		if err := e.Secrets.Delete(ctx, k); err != nil {
			return fmt.Errorf("two-factor is off, but the saved codes could not be deleted: %w", err)
		}
	}
	return nil
}

// setMFA records whether the profile's account has two-factor on, for
// status displays. It is a convenience: failing to record it changes
// nothing at the server, so it is not an error.
func (e *Env) setMFA(ctx context.Context, name string, on bool) {
	_ = vault.UpdateConfig(ctx, e.Home, func(c *vault.Config) error {
		p, err := c.Get(name)
		if err != nil {
			return err
		}
		p.MFA = on
		return c.Put(p)
	})
}

// TOTPCode is a code of the profile's saved TOTP secret (saved by
// StartMFASetup with store) that the server has not seen yet. The server
// takes each time step's code once: when this step's code was already
// accepted (latch answered a login with it, or it confirmed mfa enable),
// TOTPCode waits for the next step, at most one period, with ctx.
func (e *Env) TOTPCode(ctx context.Context, profile string) (string, error) {
	p, err := e.Profile(profile)
	if err != nil {
		return "", err
	}
	secret, err := e.Secrets.Get(ctx, totpKey(p.Name))
	if errors.Is(err, vault.ErrNotFound) {
		return "", fmt.Errorf("profile %q: %w (it is saved only by latch mfa setup --store-secret)", p.Name, ErrNoTOTPSecret)
	}
	if err != nil {
		return "", err
	}
	now := e.now()
	if last, ok := e.lastTOTPStep(ctx, p.Name); ok && totpStep(now) <= last {
		next := time.Unix((last+1)*totpPeriod, 0)
		wait := next.Sub(now)
		if wait > totpPeriod*time.Second {
			return "", fmt.Errorf("profile %q: the saved TOTP secret's next unused code is valid from %s; try again then",
				p.Name, next.Local().Format("15:04:05"))
		}
		if e.Progress != nil {
			e.Progress(fmt.Sprintf("The current authenticator code was just used; waiting %s for the next one…", wait.Round(time.Second)))
		}
		if err := e.wait(ctx, wait); err != nil {
			return "", err
		}
		now = e.now()
	}
	return totp.GenerateCode(string(secret), now)
}

// totpPeriod is the TOTP time step in seconds (RFC 6238's default, which
// latch's server and every authenticator app use).
const totpPeriod = 30

func totpStep(t time.Time) int64 { return t.Unix() / totpPeriod }

func totpStepKey(profile string) string { return "profile/" + profile + "/totp-step" }

// lastTOTPStep is the latest time step whose code of the saved secret the
// server accepted, as far as this machine knows.
func (e *Env) lastTOTPStep(ctx context.Context, profile string) (int64, bool) {
	raw, err := e.Secrets.Get(ctx, totpStepKey(profile))
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	return n, err == nil
}

// spentTOTP records that the server accepted code, when it is a code of the
// profile's saved secret (of this time step or one either side, as the
// server allows), so that TOTPCode does not offer that step's code again.
// Failing to record it costs at most one refused attempt later.
func (e *Env) spentTOTP(ctx context.Context, profile, code string) {
	secret, err := e.Secrets.Get(ctx, totpKey(profile))
	if err != nil {
		return
	}
	now := totpStep(e.now())
	for _, st := range []int64{now + 1, now, now - 1} {
		c, err := totp.GenerateCode(string(secret), time.Unix(st*totpPeriod, 0))
		if err != nil || c != strings.TrimSpace(code) {
			continue
		}
		if last, ok := e.lastTOTPStep(ctx, profile); !ok || st > last {
			_ = e.Secrets.Set(ctx, totpStepKey(profile), []byte(strconv.FormatInt(st, 10)))
		}
		return
	}
}

// wait returns after d, or with ctx's error when ctx ends first.
func (e *Env) wait(ctx context.Context, d time.Duration) error {
	if e.Wait != nil {
		return e.Wait(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// FinishMFA answers a login's second-factor step with a TOTP or backup code
// and, on success, saves the session like Login.
func (e *Env) FinishMFA(ctx context.Context, pending *LoginResult, code string) (*LoginResult, error) {
	if pending == nil || pending.MFA == nil {
		return nil, errors.New("no second-factor step is pending: log in first")
	}
	c, err := e.client(pending.Profile.Server)
	if err != nil {
		return nil, err
	}
	tokens, err := c.MFAVerify(ctx, pending.MFA.Token, strings.TrimSpace(code))
	if err != nil {
		return nil, err
	}
	e.spentTOTP(ctx, pending.Profile.Name, code)
	return e.finishLogin(ctx, c, pending.Profile.Name, pending.Profile.Username, tokens)
}

// FinishMFAWithStoredSecret answers the second-factor step with the current
// code of the TOTP secret saved by mfa setup --store-secret; without one the
// error matches ErrNoTOTPSecret.
func (e *Env) FinishMFAWithStoredSecret(ctx context.Context, pending *LoginResult) (*LoginResult, error) {
	if pending == nil || pending.MFA == nil {
		return nil, errors.New("no second-factor step is pending: log in first")
	}
	code, err := e.TOTPCode(ctx, pending.Profile.Name)
	if err != nil {
		return nil, err
	}
	return e.FinishMFA(ctx, pending, code)
}

// FinishMFAWithBackupCode answers the second-factor step with the next
// unused backup code saved in the vault. The code is marked used only once
// the server accepted it, and marked refused (never offered again) when the
// server says it is not valid.
func (e *Env) FinishMFAWithBackupCode(ctx context.Context, pending *LoginResult) (*LoginResult, error) {
	if pending == nil || pending.MFA == nil {
		return nil, errors.New("no second-factor step is pending: log in first")
	}
	name := pending.Profile.Name
	code, err := e.NextBackupCode(ctx, name)
	if err != nil {
		return nil, err
	}
	res, err := e.FinishMFA(ctx, pending, code)
	switch {
	case err == nil:
		if merr := e.markBackupCode(ctx, name, code, "used"); merr != nil {
			return res, fmt.Errorf("logged in, but the used backup code could not be marked: %w", merr)
		}
	case errors.Is(err, client.ErrInvalidCode):
		// Dead at the server (used elsewhere, or replaced): never offer it again.
		_ = e.markBackupCode(ctx, name, code, "refused")
	}
	return res, err
}

// BackupCode is one saved backup code.
type BackupCode struct {
	Code string `json:"c"`
	// State is "" (unused), "used" (accepted by the server) or "refused"
	// (the server said it is not valid).
	State string `json:"s,omitempty"`
	At    int64  `json:"at,omitempty"` // when it was used or refused
}

// BackupCodes is what the vault holds for one profile or label.
type BackupCodes struct {
	Saved int64        `json:"saved"`
	Codes []BackupCode `json:"codes"`
}

// Remaining counts the unused codes.
func (b *BackupCodes) Remaining() int {
	n := 0
	for _, c := range b.Codes {
		if c.State == "" {
			n++
		}
	}
	return n
}

func backupKey(profile string) string { return "profile/" + profile + "/backup-codes" }
func totpKey(profile string) string   { return "profile/" + profile + "/totp" }
func labelKey(label string) string    { return "codes/" + label }

// SavedBackupCodes returns the profile's backup codes from the vault.
func (e *Env) SavedBackupCodes(ctx context.Context, profile string) (*BackupCodes, error) {
	p, err := e.Profile(profile)
	if err != nil {
		return nil, err
	}
	return e.loadCodes(ctx, backupKey(p.Name))
}

// NextBackupCode returns the profile's next unused backup code without
// marking it.
func (e *Env) NextBackupCode(ctx context.Context, profile string) (string, error) {
	b, err := e.loadCodes(ctx, backupKey(profile))
	if err != nil {
		return "", err
	}
	for _, c := range b.Codes {
		if c.State == "" {
			return c.Code, nil
		}
	}
	return "", fmt.Errorf("profile %q: %w", profile, ErrNoBackupCodes)
}

func (e *Env) saveBackupCodes(ctx context.Context, profile string, codes []string) error {
	return e.storeCodes(ctx, backupKey(profile), codes)
}

func (e *Env) storeCodes(ctx context.Context, key string, codes []string) error {
	b := BackupCodes{Saved: e.now().Unix()}
	for _, c := range codes {
		b.Codes = append(b.Codes, BackupCode{Code: c})
	}
	raw, err := json.Marshal(b)
	if err != nil {
		return err
	}
	return e.Secrets.Set(ctx, key, raw)
}

func (e *Env) loadCodes(ctx context.Context, key string) (*BackupCodes, error) {
	raw, err := e.Secrets.Get(ctx, key)
	if errors.Is(err, vault.ErrNotFound) {
		return nil, fmt.Errorf("%w (%s)", ErrNoBackupCodes, key)
	}
	if err != nil {
		return nil, err
	}
	var b BackupCodes
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("the saved codes %s are unreadable: %w", key, vault.ErrCorrupt)
	}
	return &b, nil
}

// markBackupCode sets one code's state, under the profile's token lock so
// two latch processes do not lose each other's marks.
func (e *Env) markBackupCode(ctx context.Context, profile, code, state string) error {
	unlock, err := e.Tokens().lock(ctx, profile)
	if err != nil {
		return err
	}
	defer unlock()
	return e.mark(ctx, backupKey(profile), code, state)
}

func (e *Env) mark(ctx context.Context, key, code, state string) error {
	b, err := e.loadCodes(ctx, key)
	if err != nil {
		return err
	}
	for i := range b.Codes {
		if b.Codes[i].Code == code && b.Codes[i].State == "" {
			b.Codes[i].State, b.Codes[i].At = state, e.now().Unix()
		}
	}
	raw, err := json.Marshal(b)
	if err != nil {
		return err
	}
	return e.Secrets.Set(ctx, key, raw)
}

// ImportCodes keeps another service's backup codes under label, replacing
// any saved before. Blank lines and surrounding space are dropped.
func (e *Env) ImportCodes(ctx context.Context, label string, codes []string) (int, error) {
	if err := vault.ValidateName(label); err != nil {
		return 0, fmt.Errorf("label: %w", err)
	}
	var clean []string
	for i, c := range codes {
		if !utf8.ValidString(c) {
			// The vault stores JSON, which would turn the bytes into U+FFFD
			// and save a code that never matches.
			return 0, fmt.Errorf("line %d is not UTF-8 text: give the codes as plain text, one per line", i+1)
		}
		if c = strings.TrimSpace(c); c != "" {
			clean = append(clean, c)
		}
	}
	if len(clean) == 0 {
		return 0, errors.New("no codes given: put one per line on stdin")
	}
	if err := e.storeCodes(ctx, labelKey(label), clean); err != nil {
		return 0, err
	}
	err := vault.UpdateConfig(ctx, e.Home, func(c *vault.Config) error {
		if !slices.Contains(c.CodeLabels, label) {
			c.CodeLabels = append(c.CodeLabels, label)
			slices.Sort(c.CodeLabels)
		}
		return nil
	})
	return len(clean), err
}

// CodeLabels lists the labels ImportCodes saved codes under.
func (e *Env) CodeLabels() ([]string, error) {
	cfg, err := e.Config()
	if err != nil {
		return nil, err
	}
	return cfg.CodeLabels, nil
}

// LabelCodes returns the codes saved under label.
func (e *Env) LabelCodes(ctx context.Context, label string) (*BackupCodes, error) {
	if err := vault.ValidateName(label); err != nil {
		return nil, fmt.Errorf("label: %w", err)
	}
	return e.loadCodes(ctx, labelKey(label))
}

// UseLabelCode returns the next unused code under label and marks it used.
func (e *Env) UseLabelCode(ctx context.Context, label string) (string, error) {
	if err := vault.ValidateName(label); err != nil {
		return "", fmt.Errorf("label: %w", err)
	}
	unlock, err := vault.LockFile(ctx, filepath.Join(e.Home, "locks", "codes-"+label+".lock"), defaultLockWait)
	if err != nil {
		return "", err
	}
	defer unlock()
	b, err := e.loadCodes(ctx, labelKey(label))
	if err != nil {
		return "", err
	}
	for _, c := range b.Codes {
		if c.State == "" {
			return c.Code, e.mark(ctx, labelKey(label), c.Code, "used")
		}
	}
	return "", fmt.Errorf("label %q: %w", label, ErrNoBackupCodes)
}
