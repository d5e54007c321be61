package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latch-dev/latch/internal/mailpit"
)

func TestServeMailFlags(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("file-secret-pw\n"), 0o600)
	openFile := filepath.Join(dir, "pw-open")
	os.WriteFile(openFile, []byte("file-secret-pw\n"), 0o644)
	emptyFile := filepath.Join(dir, "pw-empty")
	os.WriteFile(emptyFile, nil, 0o600)
	base := []string{"--addr", "127.0.0.1:0", "--db", filepath.Join(dir, "latch.db")}
	cases := []struct {
		name    string
		args    []string
		env     string // LATCH_SMTP_PASSWORD
		want    string
		usage   bool // exit 2
		wantErr bool
	}{
		{"malformed URL", []string{"--smtp-url", "smtp://%zz", "--mail-from", "a@example.com"}, "", "--smtp-url", true, true},
		{"not smtp", []string{"--smtp-url", "https://mail.example.com", "--mail-from", "a@example.com"}, "", "--smtp-url", true, true},
		{"no host", []string{"--smtp-url", "smtp://", "--mail-from", "a@example.com"}, "", "--smtp-url", true, true},
		{"bad port", []string{"--smtp-url", "smtp://mail.example.com:0", "--mail-from", "a@example.com"}, "", "--smtp-url", true, true},
		{"remote without STARTTLS", []string{"--smtp-url", "smtp://mail.example.com?starttls=off", "--mail-from", "a@example.com"}, "", "STARTTLS is required unless the host is loopback", true, true},
		{"password in the URL", []string{"--smtp-url", "smtp://bob:url-secret-pw@mail.example.com", "--mail-from", "a@example.com"}, "", "--smtp-password-file", true, true},
		{"user without password", []string{"--smtp-url", "smtp://bob@mail.example.com", "--mail-from", "a@example.com"}, "", "--smtp-password-file FILE or LATCH_SMTP_PASSWORD", true, true},
		{"no sender", []string{"--smtp-url", "smtp://mail.example.com"}, "", "--mail-from", true, true},
		{"bad sender", []string{"--smtp-url", "smtp://mail.example.com", "--mail-from", "nobody"}, "", "--mail-from", true, true},
		{"password file without URL", []string{"--smtp-password-file", pwFile}, "", "needs --smtp-url", true, true},
		{"sender without URL", []string{"--mail-from", "a@example.com"}, "", "needs --smtp-url", true, true},
		{"file and env", []string{"--smtp-url", "smtp://bob@mail.example.com", "--mail-from", "a@example.com", "--smtp-password-file", pwFile}, "env-secret-pw", "not both", true, true},
		{"password file readable by others", []string{"--smtp-url", "smtp://bob@mail.example.com", "--mail-from", "a@example.com", "--smtp-password-file", openFile}, "", "chmod 600", false, true},
		{"empty password file", []string{"--smtp-url", "smtp://bob@mail.example.com", "--mail-from", "a@example.com", "--smtp-password-file", emptyFile}, "", "is empty", false, true},
		{"missing password file", []string{"--smtp-url", "smtp://bob@mail.example.com", "--mail-from", "a@example.com", "--smtp-password-file", filepath.Join(dir, "nope")}, "", "--smtp-password-file", false, true},
		{"no password flag exists", []string{"--smtp-url", "smtp://bob@mail.example.com", "--smtp-password", "x"}, "", "unknown flag", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("LATCH_HOME", t.TempDir())
			if tc.env != "" {
				t.Setenv(smtpPasswordEnv, tc.env)
			} else {
				os.Unsetenv(smtpPasswordEnv)
			}
			cmd := NewRootCmd()
			cmd.SetArgs(append(append([]string{"serve"}, base...), tc.args...))
			var out bytes.Buffer
			cmd.SetOut(io.Discard)
			cmd.SetErr(&out)
			// Bounded: a setup wrongly accepted would serve until stopped.
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			err := cmd.ExecuteContext(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			var ue usageError
			if tc.usage && !errors.As(err, &ue) {
				t.Fatalf("err = %v, want a usage error", err)
			}
			for _, secret := range []string{"url-secret-pw", "file-secret-pw", "env-secret-pw"} {
				if strings.Contains(err.Error()+out.String(), secret) {
					t.Fatalf("the password shows: %v\n%s", err, out.String())
				}
			}
		})
	}
}

// TestServeSendsMail runs latch serve --dev with a real SMTP server that
// wants a login (the password from a file or the environment): a signup's
// verification mail arrives there, a copy is in GET /dev/mail, and the
// password is in no log line.
func TestServeSendsMail(t *testing.T) {
	cases := []struct{ name, via string }{{"password file", "file"}, {"password env", "env"}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("LATCH_HOME", t.TempDir())
			authFile := filepath.Join(t.TempDir(), "auth")
			os.WriteFile(authFile, []byte("latch:smtp-secret-pw\n"), 0o600)
			mp := mailpit.Start(t, "--smtp-auth-file", authFile, "--smtp-auth-allow-insecure")
			args := []string{"--dev", "--addr", "127.0.0.1:0", "--log-level", "debug", "--smtp-url", "smtp://latch@" + mp.SMTPAddr}
			if tc.via == "file" {
				pw := filepath.Join(t.TempDir(), "pw")
				os.WriteFile(pw, []byte("smtp-secret-pw\n"), 0o600)
				args = append(args, "--smtp-password-file", pw)
				os.Unsetenv(smtpPasswordEnv)
			} else {
				t.Setenv(smtpPasswordEnv, "smtp-secret-pw")
			}
			var logs lockedBuffer
			addr, stop := startServe(t, &logs, args...)
			raw, _ := json.Marshal(map[string]string{"username": "alice", "email": "alice@example.com", "password": "correct horse battery staple"})
			res, err := http.Post("http://"+addr+"/auth/register", "application/json", bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusCreated {
				t.Fatalf("register: %s", res.Status)
			}
			got := mp.WaitFor(t, "alice@example.com", "confirm your email address")
			if got.From != "latch@localhost" || !strings.Contains(got.Text, "/email/verify?token=") {
				t.Fatalf("mail from %q: %q", got.From, got.Text)
			}
			// The copy is kept right after the SMTP server took the mail.
			var box struct {
				Messages []struct{ To, Kind string }
			}
			for deadline := time.Now().Add(10 * time.Second); len(box.Messages) == 0; {
				if time.Now().After(deadline) {
					t.Fatal("the dev mailbox kept no copy")
				}
				time.Sleep(10 * time.Millisecond)
				res, err = http.Get("http://" + addr + "/dev/mail")
				if err != nil {
					t.Fatal(err)
				}
				json.NewDecoder(res.Body).Decode(&box)
				res.Body.Close()
			}
			if len(box.Messages) != 1 || box.Messages[0].Kind != "verify-email" {
				t.Fatalf("dev mailbox: %+v", box)
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if s := logs.String(); strings.Contains(s, "smtp-secret-pw") || !strings.Contains(s, "mail goes out by SMTP") || !strings.Contains(s, "dev mail:") {
				t.Fatalf("log:\n%s", s)
			}
		})
	}
}

func TestServeDevMailOnlyInDev(t *testing.T) {
	for _, dev := range []bool{true, false} {
		t.Setenv("LATCH_HOME", t.TempDir())
		args := []string{"--addr", "127.0.0.1:0"}
		want := http.StatusNotFound
		if dev {
			args, want = append(args, "--dev"), http.StatusOK
		}
		var logs lockedBuffer
		addr, stop := startServe(t, &logs, args...)
		res, err := http.Get("http://" + addr + "/dev/mail")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		stop()
		if res.StatusCode != want {
			t.Fatalf("dev=%v: GET /dev/mail = %d, want %d", dev, res.StatusCode, want)
		}
		if !dev && !strings.Contains(logs.String(), "no mail server configured") {
			t.Fatalf("no warning that mail only queues:\n%s", logs.String())
		}
	}
}

func TestDemoUsesTheDevMailbox(t *testing.T) {
	url, stop, err := startDemoServer(t.Context(), &demoOptions{Addr: "127.0.0.1:0", AccessTTL: 30e9, RefreshTTL: 60e9}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	res, err := http.Get(url + "/dev/mail")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("the demo's GET /dev/mail = %d", res.StatusCode)
	}
}
