package flows

import (
	"context"
	"fmt"

	"github.com/latch-dev/latch/client"
)

// MFAChangeResult is what turning two-factor on or off left behind.
type MFAChangeResult struct {
	// BackupCodes are the new backup codes (turning on only).
	BackupCodes []string
	// OtherSessions counts the account's other sessions still open after
	// the change; -1 when the server did not say. Someone who knew the
	// old factors may hold one (ASVS V7.4.3): offer to end them.
	OtherSessions int
}

// EnableMFAEnding is EnableMFA that can also end the account's other
// sessions in the same call, and says how many are left.
func (e *Env) EnableMFAEnding(ctx context.Context, profile, code string, endOthers bool) (*MFAChangeResult, error) {
	others := -1
	name, codes, err := e.newBackupCodes(ctx, profile, "two-factor is on",
		func(c *client.Client, tok string) ([]string, error) {
			ch, err := c.MFAEnableSessions(ctx, tok, code, endOthers)
			if err != nil {
				return nil, err
			}
			others = ch.OtherSessions
			return ch.BackupCodes, nil
		})
	if codes != nil {
		e.setMFA(ctx, name, true)
		e.spentTOTP(ctx, name, code)
	}
	if codes == nil {
		return nil, err
	}
	res := &MFAChangeResult{BackupCodes: codes, OtherSessions: others}
	if err == nil {
		err = e.endOthersFallback(ctx, name, endOthers, res)
	}
	return res, err
}

// endOthersFallback ends the other sessions by hand when the server did not
// say how many are left: a server older than end_other_sessions ignored it.
func (e *Env) endOthersFallback(ctx context.Context, profile string, endOthers bool, res *MFAChangeResult) error {
	if !endOthers || res.OtherSessions >= 0 {
		return nil
	}
	if _, err := e.revokeOthers(ctx, profile); err != nil {
		return fmt.Errorf("two-factor changed, but ending the other sessions failed: %w", err)
	}
	res.OtherSessions = 0
	return nil
}

// DisableMFAEnding is DisableMFA that can also end the account's other
// sessions in the same call, and says how many are left.
func (e *Env) DisableMFAEnding(ctx context.Context, profile, code string, endOthers bool) (*MFAChangeResult, error) {
	others := -1
	err := e.disableMFA(ctx, profile, func(c *client.Client, tok string) error {
		ch, err := c.MFADisableSessions(ctx, tok, code, endOthers)
		if err == nil {
			others = ch.OtherSessions
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	p, _ := e.Profile(profile)
	res := &MFAChangeResult{OtherSessions: others}
	return res, e.endOthersFallback(ctx, p.Name, endOthers, res)
}

// EndOtherSessions ends every session of the profile's account except its
// own, and returns how many it ended.
func (e *Env) EndOtherSessions(ctx context.Context, profile string) (int, error) {
	return e.revokeOthers(ctx, profile)
}
