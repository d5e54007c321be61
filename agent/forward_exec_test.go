//go:build linux

package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/latch-dev/latch/vault"
)

// runTokenHelper stands in for "latch token --json" where the real latch
// cannot produce an outcome on demand (a hung refresh, garbage on stdout).
// The real one runs in cli's end-to-end forwarding test. It records what it
// was started with in $LATCH_AGENT_TEST_OUT and acts as
// $LATCH_AGENT_TEST_TOKEN says.
func runTokenHelper() int {
	stdin, _ := io.ReadAll(os.Stdin)
	_, ttyErr := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	sid, _ := unix.Getsid(0)
	seen := map[string]any{
		"args":          os.Args[1:],
		"browser":       os.Getenv("LATCH_BROWSER"),
		"profile_env":   os.Getenv("LATCH_PROFILE"),
		"stdin":         string(stdin),
		"tty_opened":    ttyErr == nil,
		"session_owner": sid == os.Getpid(),
	}
	if out := os.Getenv("LATCH_AGENT_TEST_OUT"); out != "" {
		b, _ := json.Marshal(seen)
		os.WriteFile(out, b, 0o600)
	}
	var profile string
	for _, a := range os.Args {
		if p, ok := strings.CutPrefix(a, "--profile="); ok {
			profile = p
		}
	}
	switch os.Getenv("LATCH_AGENT_TEST_TOKEN") {
	case "ok":
		fmt.Printf(`{"access_token":"at-%s","token_type":"Bearer","expires_at":"2030-01-02T03:04:05Z","profile":%q,"id_token":"idt"}`+"\n",
			profile, profile)
		return 0
	case "login":
		fmt.Fprintf(os.Stderr, "latch: the session of %s is over: run latch login --profile %s: login required\n", profile, profile)
		return exitLoginRequired
	case "locked":
		fmt.Fprintln(os.Stderr, "latch: the vault is locked")
		return exitVaultLocked
	case "usage":
		fmt.Fprintln(os.Stderr, "latch: unknown flag: --json\n\x1b[31mred\x1b[0m")
		return 2
	case "garbage":
		fmt.Println("not json")
		return 0
	case "huge":
		fmt.Print(`{"access_token":"` + strings.Repeat("A", maxForwardResponse) + `"}`)
		return 0
	case "other":
		fmt.Println(`{"access_token":"at","profile":"someone-else"}`)
		return 0
	case "hang":
		time.Sleep(time.Hour) // until the agent kills it
	}
	return 1
}

func TestExecToken(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		mode    string
		req     TokenRequest
		bound   time.Duration
		wantTok string
		wantErr error  // matched with errors.Is
		wantMsg string // in the error
	}{
		{mode: "ok", req: TokenRequest{Profile: "work"}, wantTok: "at-work"},
		{mode: "ok", req: TokenRequest{Profile: "work", MinValid: 90 * time.Second, IDToken: true}, wantTok: "at-work"},
		{mode: "login", req: TokenRequest{Profile: "work"}, wantErr: ErrRemoteLogin, wantMsg: "the session of work is over"},
		{mode: "locked", req: TokenRequest{Profile: "work"}, wantErr: vault.ErrLocked, wantMsg: "the vault is locked"},
		{mode: "usage", req: TokenRequest{Profile: "work"}, wantMsg: "[31mred"},
		{mode: "garbage", req: TokenRequest{Profile: "work"}, wantMsg: "no JSON"},
		{mode: "huge", req: TokenRequest{Profile: "work"}, wantMsg: "more than"},
		{mode: "other", req: TokenRequest{Profile: "work"}, wantMsg: `"someone-else"`},
		{mode: "hang", req: TokenRequest{Profile: "work"}, bound: 300 * time.Millisecond, wantErr: context.DeadlineExceeded, wantMsg: "in time"},
		{mode: "ok", req: TokenRequest{Profile: "--help"}, wantTok: "at---help"},
		{mode: "ok", req: TokenRequest{Profile: "a/b"}, wantMsg: "invalid profile name"},
	}
	for _, tc := range tests {
		t.Run(tc.mode+"/"+tc.req.Profile, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "seen.json")
			env := []string{helperEnv + "=token", "LATCH_AGENT_TEST_TOKEN=" + tc.mode, "LATCH_AGENT_TEST_OUT=" + out,
				"LATCH_PROFILE=evil", "LATCH_BROWSER=firefox", noRaceExitSleep}
			bound := tc.bound
			if bound == 0 {
				bound = 20 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			defer cancel()
			tok, err := ExecToken(self, env)(ctx, tc.req)
			switch {
			case tc.wantTok != "":
				if err != nil || tok.AccessToken != tc.wantTok || tok.TokenType != "Bearer" ||
					!tok.Expiry.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) {
					t.Fatalf("token = %+v, %v; want %s", tok, err, tc.wantTok)
				}
			case tc.wantMsg == "[31mred":
				// A terminal escape from the process's stderr never
				// reaches the caller.
				if err == nil || strings.Contains(err.Error(), "\x1b") || !strings.Contains(err.Error(), "red") {
					t.Fatalf("err = %q; want latch token's last line, control characters removed", err)
				}
			default:
				if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Fatalf("err = %v; want %v naming %q", err, tc.wantErr, tc.wantMsg)
				}
				if tok != nil {
					t.Fatalf("a token with the error: %+v", tok)
				}
			}
			if vault.ValidateName(tc.req.Profile) != nil {
				if _, err := os.Stat(out); !os.IsNotExist(err) {
					t.Fatal("latch token ran for an invalid profile name")
				}
				return
			}
			var seen struct {
				Args         []string `json:"args"`
				Browser      string   `json:"browser"`
				ProfileEnv   string   `json:"profile_env"`
				Stdin        string   `json:"stdin"`
				TTYOpened    bool     `json:"tty_opened"`
				SessionOwner bool     `json:"session_owner"`
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &seen); err != nil {
				t.Fatal(err)
			}
			want := []string{"token", "--json", "--profile=" + tc.req.Profile}
			if tc.req.MinValid > 0 {
				want = append(want, "--min-valid", tc.req.MinValid.String())
			}
			if tc.req.IDToken {
				want = append(want, "--id-token")
			}
			// Nothing it starts can ask anyone: no browser, no input, no
			// terminal to open.
			if strings.Join(seen.Args, " ") != strings.Join(want, " ") || seen.Browser != "none" || seen.ProfileEnv != "" ||
				seen.Stdin != "" || seen.TTYOpened || !seen.SessionOwner {
				t.Fatalf("latch token started with %+v; want args %q, LATCH_BROWSER=none, no LATCH_PROFILE, empty stdin, "+
					"no terminal, its own session", seen, want)
			}
		})
	}
}
