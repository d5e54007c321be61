package cli

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/server"
	"github.com/latch-dev/latch/vault"
)

// offerEndOthers after mfa enable/disable: on a terminal it asks y/N and
// ends the other sessions only on yes; without one it says how to.
func TestOfferEndOthers(t *testing.T) {
	tests := []struct {
		name      string
		tty       bool
		answer    string
		wantOut   string
		wantEnded bool
	}{
		{"yes", true, "y\n", "Ended 1 other session(s).", true},
		{"YES", true, "YES\n", "Ended 1 other session(s).", true},
		{"enter means no", true, "\n", "The other sessions stay open.", false},
		{"no", true, "n\n", "The other sessions stay open.", false},
		{"end of input means no", true, "", "The other sessions stay open.", false},
		{"no terminal", false, "y\n", "latch api -X DELETE /auth/sessions/ID", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			srv, err := server.New(ctx, server.Config{DBPath: server.MemoryDB, Issuer: "http://latch.test",
				SecretKey: bytes.Repeat([]byte{5}, 32), RateIP: -1, RateAccount: -1})
			if err != nil {
				t.Fatal(err)
			}
			hs := httptest.NewServer(srv.Handler())
			t.Cleanup(func() { hs.Close(); srv.Close() })
			e := &flows.Env{Home: t.TempDir(), Secrets: vault.NewMemory(), Vault: vault.Choice{Backend: vault.ModeMemory, Reason: "test"}}
			if _, err := e.Signup(ctx, flows.SignupRequest{Server: hs.URL, Username: "ann", Email: "ann@example.com", Password: e2ePassword}); err != nil {
				t.Fatal(err)
			}
			cl, _ := client.New(hs.URL, client.Options{})
			other, err := cl.Login(ctx, "ann", e2ePassword)
			if err != nil {
				t.Fatal(err)
			}

			g := newGlobals()
			var out, errb bytes.Buffer
			g.in, g.out, g.err = strings.NewReader(tt.answer), &out, &errb
			g.tty = func() bool { return tt.tty }
			if err := offerEndOthers(ctx, g, e, 1, false); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("stdout %q lacks %q", out.String(), tt.wantOut)
			}
			if tt.tty && !strings.Contains(errb.String(), "End them now? [y/N]") {
				t.Errorf("no prompt: %q", errb.String())
			}
			_, err = cl.Refresh(ctx, other.RefreshToken)
			if ended := err != nil; ended != tt.wantEnded {
				t.Errorf("other session ended = %v, want %v (%v)", ended, tt.wantEnded, err)
			}
			if _, err := e.Token(ctx, ""); err != nil {
				t.Errorf("own session: %v", err)
			}
		})
	}
}

// Missing input is a usage error (exit 2) that names the flag to use, and
// nothing is sent.
func TestRecoveryUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"forgot without a server", []string{"password", "forgot", "-u", "ann"}, "--server URL"},
		{"forgot without an account", []string{"password", "forgot", "--server", "http://127.0.0.1:1"}, "-u USERNAME_OR_EMAIL"},
		{"reset without a token", []string{"password", "reset"}, "--token-stdin"},
		{"reset with two codes", []string{"password", "reset", "--code", "123456", "--use-backup-code"}, "one of --code and --use-backup-code"},
		{"reset off a plain http host", []string{"password", "reset", "--server", "http://auth.example.com"}, "--server"},
		{"change without a terminal", []string{"password", "change"}, "--password-stdin"},
		{"verify without a token", []string{"email", "verify"}, "--token-stdin"},
		{"resend by server without an account", []string{"email", "resend", "--server", "http://127.0.0.1:1"}, "-u USERNAME_OR_EMAIL"},
		{"change email without an address", []string{"email", "change"}, "--email"},
		{"change email twice", []string{"email", "change", "a@example.com", "--email", "b@example.com"}, "once"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, testEnv(t), "", tt.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s", r.code, exitUsage, tt.want, r.stderr)
			}
		})
	}
}
