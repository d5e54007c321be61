package flows

import (
	"slices"
	"testing"
)

// A profile of another account on the same server whose session had
// already ended (here: bob changed his password on another device) is not
// the reset's doing: alice's reset must neither delete bob's saved tokens
// nor tell the user that the reset logged bob out.
func TestResetLeavesAnotherAccountsDeadSession(t *testing.T) {
	e, ae := devMailEnv(t)
	e.signup(ae, "alice", "alice")
	e.signup(ae, "bob", "bob")
	other, err := e.client.Login(e.ctx, "bob", goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.client.ChangePassword(e.ctx, other.AccessToken, goodPassword, newPassword); err != nil {
		t.Fatal(err)
	}
	if _, err := ae.ForgotPassword(e.ctx, RecoveryTarget{Profile: "alice"}); err != nil {
		t.Fatal(err)
	}
	tok := e.mailToken("alice@example.com", "password-reset")
	res, err := ae.ResetPassword(e.ctx, ResetRequest{Profile: "alice", Token: tok, NewPassword: newPassword})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.LoggedOut, []string{"alice"}) || len(res.Unchecked) != 0 {
		t.Fatalf("result %+v, want alice logged out only", res)
	}
	if _, err := ae.Tokens().Status(e.ctx, "bob"); err != nil {
		t.Fatalf("bob's saved tokens after alice's reset: %v, want them kept", err)
	}
}
