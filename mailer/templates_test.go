package mailer

import (
	"strings"
	"testing"
)

func fullData() map[string]string {
	return map[string]string{
		"username": "alice", "link": "https://auth.example.com/password/reset?token=tok-123", "token": "tok-123",
		"expires": "2026-03-01 12:30 UTC", "old_email": "old@example.com", "new_email": "new@example.com",
		"when": "2026-03-01 12:00 UTC", "ip": "192.0.2.7", "user_agent": "latch/1.0",
	}
}

// TestEveryKindRenders: every kind has a subject, names the account in both
// parts, says what to do if it wasn't the user, and uses its own data.
func TestEveryKindRenders(t *testing.T) {
	uses := map[string][]string{
		"verify-email":   {"tok-123", "2026-03-01 12:30 UTC"},
		"password-reset": {"tok-123", "2026-03-01 12:30 UTC"},
		"email-changed":  {"old@example.com", "new@example.com"},
	}
	for _, kind := range Kinds() {
		t.Run(kind, func(t *testing.T) {
			m := sample(t, kind)
			if m.Subject == "" || m.Kind != kind || m.To != "alice@example.com" {
				t.Fatalf("message %+v", m)
			}
			want, ok := uses[kind]
			if !ok && kind != "account-exists" {
				want = []string{"2026-03-01 12:00 UTC", "192.0.2.7", "latch/1.0"}
			}
			for part, body := range map[string]string{"text": m.Text, "html": m.HTML} {
				for _, s := range append([]string{`alice`, "wasn't you"}, want...) {
					if !strings.Contains(body, s) {
						t.Errorf("%s part lacks %q:\n%s", part, s, body)
					}
				}
			}
			if strings.Contains(m.Text, "<p>") || !strings.HasPrefix(m.HTML, "<!DOCTYPE html>") {
				t.Errorf("text or HTML part mixed up")
			}
		})
	}
}

func TestTokenOnItsOwnLine(t *testing.T) {
	for _, kind := range []string{"verify-email", "password-reset"} {
		m := sample(t, kind)
		if !strings.Contains(m.Text, "\ntok-123\n") || !strings.Contains(m.Text, "\nhttps://auth.example.com/password/reset?token=tok-123\n") {
			t.Errorf("%s: token or link not on a line of its own:\n%s", kind, m.Text)
		}
	}
}

func TestHTMLEscapes(t *testing.T) {
	d := fullData()
	d["username"] = `<script>alert(1)</script>`
	d["user_agent"] = `"><img src=x onerror=alert(1)>`
	d["link"] = `javascript:alert(1)`
	for _, kind := range []string{"new-sign-in", "verify-email"} {
		m, err := Render(kind, "a@example.com", d)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"<script>", "<img", `href="javascript:`} {
			if strings.Contains(m.HTML, bad) {
				t.Errorf("%s: HTML part holds %q unescaped", kind, bad)
			}
		}
	}
}

func TestRenderRefuses(t *testing.T) {
	if _, err := Render("no-such-kind", "a@example.com", fullData()); err == nil || !strings.Contains(err.Error(), "verify-email") {
		t.Fatalf("unknown kind: %v", err)
	}
	d := fullData()
	delete(d, "token")
	if _, err := Render("verify-email", "a@example.com", d); err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("missing key: %v", err)
	}
	d = fullData()
	delete(d, "username")
	if _, err := Render("mfa-enabled", "a@example.com", d); err == nil {
		t.Fatal("rendered without a username")
	}
}
