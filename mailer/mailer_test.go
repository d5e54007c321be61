package mailer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	gomail "github.com/wneessen/go-mail"

	"github.com/latch-dev/latch/internal/mailpit"
)

func TestNewSMTPConfig(t *testing.T) {
	cases := []struct {
		name, url, password, from string
		wantErr                   string // "" means valid
		wantPolicy                gomail.TLSPolicy
		wantPort                  int
	}{
		{"loopback plain", "smtp://127.0.0.1:1025", "", "a@b.example", "", gomail.TLSOpportunistic, 1025},
		{"localhost", "smtp://localhost", "", "a@b.example", "", gomail.TLSOpportunistic, 587},
		{"ipv6 loopback", "smtp://[::1]:25", "", "a@b.example", "", gomail.TLSOpportunistic, 25},
		{"remote needs STARTTLS", "smtp://mail.example.com", "", "a@b.example", "", gomail.TLSMandatory, 587},
		{"remote with user", "smtp://alice@mail.example.com:2525", "pw", "Latch <a@b.example>", "", gomail.TLSMandatory, 2525},
		{"smtps", "smtps://mail.example.com", "", "a@b.example", "", gomail.TLSMandatory, 465},
		{"loopback starttls off", "smtp://127.0.0.1:25?starttls=off", "", "a@b.example", "", gomail.NoTLS, 25},
		{"remote starttls off refused", "smtp://mail.example.com?starttls=off", "", "a@b.example", "STARTTLS is required unless the host is loopback", 0, 0},
		{"name that merely resolves locally is not loopback", "smtp://localhost.example.com?starttls=off", "", "a@b.example", "STARTTLS is required", 0, 0},
		{"smtps starttls off", "smtps://127.0.0.1?starttls=off", "", "a@b.example", "makes no sense", 0, 0},
		{"other starttls value", "smtp://127.0.0.1?starttls=maybe", "", "a@b.example", "starttls=", 0, 0},
		{"unknown parameter", "smtp://127.0.0.1?tls=no", "", "a@b.example", "unknown URL parameter", 0, 0},
		{"http scheme", "http://mail.example.com", "", "a@b.example", "use smtp://", 0, 0},
		{"no scheme", "mail.example.com:587", "", "a@b.example", "", 0, 0},
		{"no host", "smtp://:25", "", "a@b.example", "not a URL like", 0, 0},
		{"bad port", "smtp://mail.example.com:99999", "", "a@b.example", "port", 0, 0},
		{"malformed", "smtp://%zz", "", "a@b.example", "not a URL like", 0, 0},
		{"password in URL", "smtp://alice:hunter2@mail.example.com", "", "a@b.example", "must not hold a password", 0, 0},
		{"user without password", "smtp://alice@mail.example.com", "", "a@b.example", "no password was given", 0, 0},
		{"password without user", "smtp://mail.example.com", "pw", "a@b.example", "names no user", 0, 0},
		{"bad sender", "smtp://127.0.0.1", "", "not an address", "sender", 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSMTP(Config{URL: tc.url, Password: tc.password, From: tc.from})
			if tc.name == "no scheme" {
				// "mail.example.com:587" parses with scheme "mail.example.com".
				if err == nil {
					t.Fatal("a URL without smtp:// was accepted")
				}
				return
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrConfig) {
					t.Fatalf("err = %v, want a config error containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("the error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.policy != tc.wantPolicy || s.port != tc.wantPort {
				t.Fatalf("policy %v port %d, want %v %d", s.policy, s.port, tc.wantPolicy, tc.wantPort)
			}
			if strings.Contains(s.String(), "pw") && tc.password == "pw" {
				t.Fatalf("String shows the password: %s", s)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.9.9.9": true, "::1": true, "[::1]": true, "localhost": true, "LOCALHOST.": true,
		"10.0.0.1": false, "example.com": false, "localhost.example.com": false, "": false, "0.0.0.0": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

func sample(t *testing.T, kind string) Message {
	t.Helper()
	m, err := Render(kind, "alice@example.com", fullData())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSendThroughMailpit(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		url     string // %s is mailpit's SMTP address
		pw      string
		wantErr bool
	}{
		{"plain on loopback", nil, "smtp://%s", "", false},
		{"plain on loopback, STARTTLS off", nil, "smtp://%s?starttls=off", "", false},
		{"with a login", []string{"--smtp-auth-accept-any", "--smtp-auth-allow-insecure"}, "smtp://alice@%s", "s3cret-pw", false},
		{"server wants a login we lack", []string{"--smtp-auth-file", "AUTHFILE", "--smtp-auth-allow-insecure"}, "smtp://%s", "", true},
		{"wrong password", []string{"--smtp-auth-file", "AUTHFILE", "--smtp-auth-allow-insecure"}, "smtp://bob@%s", "wrong", true},
		{"right password", []string{"--smtp-auth-file", "AUTHFILE", "--smtp-auth-allow-insecure"}, "smtp://bob@%s", "bobs-pw", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			authFile := filepath.Join(t.TempDir(), "auth")
			os.WriteFile(authFile, []byte("bob:bobs-pw\n"), 0o600)
			args := slices.Clone(tc.args)
			if i := slices.Index(args, "AUTHFILE"); i >= 0 {
				args[i] = authFile
			}
			mp := mailpit.Start(t, args...)
			s, err := NewSMTP(Config{URL: strings.Replace(tc.url, "%s", mp.SMTPAddr, 1), Password: tc.pw, From: "Latch <latch@example.com>"})
			if err != nil {
				t.Fatal(err)
			}
			m := sample(t, "password-reset")
			err = s.Send(t.Context(), m)
			if tc.wantErr {
				if err == nil {
					t.Fatal("sent without the login the server requires")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := mp.WaitFor(t, "alice@example.com", m.Subject)
			got.Text = strings.ReplaceAll(got.Text, "\r\n", "\n") // SMTP's line ends
			if got.From != "latch@example.com" || !strings.Contains(got.Text, "\ntok-123\n") ||
				!strings.Contains(got.HTML, `href="https://auth.example.com/password/reset?token=tok-123"`) {
				t.Fatalf("received %q\n%q\n%q", got.From, got.Text, got.HTML)
			}
		})
	}
}

// TestMandatorySTARTTLSRefusesPlainServer checks that the policy a remote
// host gets really refuses a server without STARTTLS: mailpit here offers
// none, so the send must fail before any mail is handed over.
func TestMandatorySTARTTLSRefusesPlainServer(t *testing.T) {
	mp := mailpit.Start(t)
	s, err := NewSMTP(Config{URL: mp.SMTPURL(), From: "latch@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	s.policy = gomail.TLSMandatory // what a non-loopback host gets
	if err := s.Send(t.Context(), sample(t, "verify-email")); err == nil {
		t.Fatal("sent over plain SMTP under the mandatory STARTTLS policy")
	}
	if msgs := mp.Messages(t); len(msgs) != 0 {
		t.Fatalf("mailpit received %d messages", len(msgs))
	}
}

func TestSendHonoursContext(t *testing.T) {
	mp := mailpit.Start(t)
	s, err := NewSMTP(Config{URL: mp.SMTPURL(), From: "latch@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Send(ctx, sample(t, "verify-email")); err == nil {
		t.Fatal("sent with a cancelled context")
	}
}
