package server

import (
	"net/http"
	"strings"
	"testing"
)

// RFC 8628 §5.1: user codes are short (base-20, 8 characters: about 34
// bits), so guessing them on the verification page is rate-limited per IP.
func TestOIDCDeviceUserCodeGuessingLimited(t *testing.T) {
	e := newOPEnv(t, func(c *Config) { c.RateIP = 3 })
	b := e.newBrowser()
	page := b.Get(e.http.URL + "/device")
	limited := 0
	for i := range 6 {
		p := b.Submit(page, map[string]string{"user_code": "BCDF-GHJ" + string("KLMNPQ"[i])})
		switch p.Status {
		case http.StatusBadRequest:
			if limited > 0 {
				t.Fatalf("guess %d was checked after the limit struck", i+1)
			}
		case http.StatusTooManyRequests:
			limited++
			if p.Field("user_code") == nil || !strings.Contains(p.Text(), "Too many") {
				t.Fatalf("the limit should keep the form and say why: %s", p.Text())
			}
		default:
			t.Fatalf("guess %d: status %d: %s", i+1, p.Status, p.Text())
		}
	}
	if limited == 0 {
		t.Fatal("six wrong user codes in a row were all checked: no limit on guessing")
	}
}
