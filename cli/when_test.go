package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/latch-dev/latch/vault"
)

func TestWhen(t *testing.T) {
	now := time.Date(2026, 11, 30, 8, 4, 38, 0, time.UTC) // a Monday
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "just now (today 08:04:38)"},
		{400 * time.Millisecond, "just now (today 08:04:38)"},
		{42 * time.Second, "in 42s (today 08:05:20)"},
		{4*time.Minute + 10*time.Second, "in 4m10s (today 08:08:48)"},
		{-3 * time.Second, "3s ago (today 08:04:35)"},
		{5*time.Hour + 10*time.Minute, "in 5h10m (today 13:14:38)"},
		{20 * time.Hour, "in 20h00m (tomorrow 04:04)"},
		{-9 * time.Hour, "9h00m ago (yesterday 23:04)"},
		{30 * time.Hour, "in 1 day 6h (tomorrow 14:04)"},
		{50 * time.Hour, "in 2 days (Wed 2 Dec 10:04)"},
		{167*time.Hour + 59*time.Minute + 32*time.Second, "in 7 days (Mon 7 Dec 08:04)"},
		{60 * 24 * time.Hour, "in 60 days (Fri 29 Jan 2027 08:04)"},
	}
	for _, tt := range tests {
		t.Run(tt.d.String(), func(t *testing.T) {
			if got := when(now, now.Add(tt.d)); got != tt.want {
				t.Fatalf("when(%s) = %q, want %q", tt.d, got, tt.want)
			}
		})
	}
}

func TestStatusText(t *testing.T) {
	oidc := vault.Profile{Name: "corp", Kind: vault.KindOIDC, Issuer: "https://idp.example.com", ClientID: "my-cli", Username: "cat"}
	viaServer := vault.Profile{Name: "own", Kind: vault.KindOIDC, Server: "http://127.0.0.1:8080",
		Issuer: "http://127.0.0.1:8080", ClientID: "latch-cli", Username: "dan"}
	tests := []struct {
		name       string
		p          vault.Profile
		wantStdout []string
		notStdout  []string
	}{
		{"account", account("ann", "http://127.0.0.1:8080"),
			[]string{"  server:     http://127.0.0.1:8080\n", "  access:     expires in 1h00m (today 09:04:38)\n",
				"  session:    expires in 7 days (Mon 7 Dec 08:04), the idle limit\n",
				"  rotation:   0 so far; next in 59m00s (today 09:03:38)\n", "  logged in:  just now (today 08:04:38)\n"},
			[]string{"issuer:", "h59m", "(idle limit)"}},
		{"OpenID provider", oidc,
			[]string{"  issuer:     https://idp.example.com\n", "  client id:  my-cli\n"},
			[]string{"server:"}},
		{"OpenID at a latch server", viaServer,
			[]string{"  server:     http://127.0.0.1:8080\n", "  issuer:     http://127.0.0.1:8080\n", "  client id:  latch-cli\n"},
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, testEnv(t, tt.p), "", "status")
			if r.code != exitOK {
				t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			for _, want := range tt.wantStdout {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
				}
			}
			for _, not := range tt.notStdout {
				if strings.Contains(r.stdout, not) {
					t.Errorf("stdout has %q:\n%s", not, r.stdout)
				}
			}
		})
	}
}
