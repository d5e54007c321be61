//go:build linux

package flows

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latch-dev/latch/agent"
	"github.com/latch-dev/latch/vault"
)

// serveForwarding runs a real agent forwarding profiles, whose tokens come
// from tokens instead of latch token, and returns its forwarding socket.
func serveForwarding(t *testing.T, tokens agent.TokenFunc, profiles ...string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "lf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "run", "agent.sock")
	fwd := filepath.Join(dir, "run", "forward.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- agent.Serve(ctx, agent.Options{Socket: sock, Forward: &agent.ForwardOptions{Socket: fwd, Profiles: profiles, Token: tokens}})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("the agent did not stop")
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := agent.DialForward(ctx, fwd)
		if err == nil {
			c.Close()
			return fwd
		}
		select {
		case err := <-done:
			t.Fatalf("Serve: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the forwarding socket did not answer: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TokenFor asks the forwarded agent for profiles this machine lacks, and
// nothing else; its errors keep the meaning (and so the exit codes) latch
// gives them locally.
func TestTokenForForwarded(t *testing.T) {
	expiry := time.Now().Add(time.Hour).Truncate(time.Second)
	fwd := serveForwarding(t, func(ctx context.Context, req agent.TokenRequest) (*agent.Token, error) {
		switch req.Profile {
		case "over":
			return nil, fmt.Errorf("the session is over: %w", agent.ErrRemoteLogin)
		case "locked":
			return nil, fmt.Errorf("the vault is locked: %w", vault.ErrLocked)
		}
		return &agent.Token{AccessToken: "at-" + req.Profile, TokenType: "Bearer", Expiry: expiry, IDToken: "idt"}, nil
	}, "work", "over", "locked")

	home := t.TempDir()
	absent := filepath.Join(t.TempDir(), "absent.sock")
	tests := []struct {
		name    string
		socket  string
		profile string
		opts    TokenOptions
		wantTok string
		wantID  string
		wantErr error
		notErr  error
		wantMsg string
	}{
		{name: "forwarded", socket: fwd, profile: "work", wantTok: "at-work"},
		{name: "with its ID token", socket: fwd, profile: "work", opts: TokenOptions{IDToken: true}, wantTok: "at-work", wantID: "idt"},
		{name: "not allowed", socket: fwd, profile: "home", notErr: ErrUnknownProfile, wantMsg: "--forward-profile home"},
		{name: "session over there", socket: fwd, profile: "over", wantErr: ErrLoginRequired, wantMsg: "latch login --profile over"},
		{name: "vault locked there", socket: fwd, profile: "locked", wantErr: vault.ErrLocked, wantMsg: "latch vault unlock"},
		{name: "no profile named", socket: fwd, profile: "", wantErr: ErrNoProfile, wantMsg: "add --profile NAME"},
		{name: "no agent", socket: absent, profile: "work", wantErr: ErrUnknownProfile, wantMsg: `no profile named "work"`},
		{name: "no agent, no profile named", socket: absent, profile: "", wantErr: ErrNoProfile, wantMsg: "latch login"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := &Env{Home: home, Secrets: vault.NewMemory(), Forward: &AgentForward{Socket: tc.socket, Home: home}}
			it, err := e.TokenFor(context.Background(), tc.profile, tc.opts)
			if tc.wantTok != "" {
				if err != nil || it.AccessToken != tc.wantTok || it.Profile != tc.profile || it.IDToken != tc.wantID ||
					!it.Expiry.Equal(expiry) || it.TokenType != "Bearer" {
					t.Fatalf("TokenFor = %+v, %v; want %s", it, err, tc.wantTok)
				}
				return
			}
			if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("TokenFor = %+v, %v; want %v naming %q", it, err, tc.wantErr, tc.wantMsg)
			}
			if tc.notErr != nil && errors.Is(err, tc.notErr) {
				t.Fatalf("TokenFor = %v, which must not match %v", err, tc.notErr)
			}
		})
	}
	entries, err := os.ReadDir(home)
	if err != nil || len(entries) != 0 {
		t.Fatalf("forwarded tokens left files in the home: %v, %v", entries, err)
	}
}
