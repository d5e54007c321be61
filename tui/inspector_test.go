package tui

import (
	"encoding/base64"
	"strconv"
	"testing"
	"time"

	"github.com/latch-dev/latch/client"
)

// The inspector says what latch jwt decode says of a token's times: an exp
// gone by is expired, an nbf ahead is not valid yet.
func TestInspectorSaysExpiredAndNotValidYet(t *testing.T) {
	h := newHarness(t)
	p := h.profile("demo")
	now := h.clock.Now().Unix()
	enc := base64.RawURLEncoding.EncodeToString
	tok := enc([]byte(`{"alg":"ES256","typ":"at+jwt"}`)) + "." +
		enc([]byte(`{"exp":`+strconv.FormatInt(now-60, 10)+`,"nbf":`+strconv.FormatInt(now+120, 10)+
			`,"iat":`+strconv.FormatInt(now-180, 10)+`,"sub":"1"}`)) + "." + enc([]byte("not-a-real-signature"))
	err := h.env.Tokens().Save(h.ctx, p.Name, &client.Tokens{AccessToken: tok, RefreshToken: "lrt_test",
		ExpiresIn: 15 * time.Minute, RefreshExpiresIn: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	d := newDriver(t, h.app("demo", ""), 80, 24)
	d.send(NavigateMsg{To: pageInspector, Profile: p})
	d.wantScreen("(1m 00s ago: expired)", "(in 2m 00s: not valid yet)", "(3m 00s ago)")
}
