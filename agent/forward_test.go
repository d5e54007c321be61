//go:build linux

package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latch-dev/latch/vault"
)

// fakeTokens is a TokenFunc standing in for latch token: it hands out
// "at-PROFILE" or the error set for the profile, and records each call.
type fakeTokens struct {
	mu    sync.Mutex
	calls []TokenRequest
	errs  map[string]error
}

func (f *fakeTokens) token(ctx context.Context, req TokenRequest) (*Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, req)
	if err := f.errs[req.Profile]; err != nil {
		return nil, err
	}
	return &Token{AccessToken: "at-" + req.Profile, TokenType: "Bearer", Expiry: time.Now().Add(time.Hour).Truncate(time.Second),
		IDToken: "idt-" + req.Profile}, nil
}

func (f *fakeTokens) called() []TokenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]TokenRequest(nil), f.calls...)
}

// syncBuffer is a log sink the agent's goroutines write to while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fwdAgent is an agent forwarding profiles with a fake token source.
type fwdAgent struct {
	*testAgent
	fwd    string
	tokens *fakeTokens
	log    *syncBuffer
}

func startForwarding(t *testing.T, o Options, profiles ...string) *fwdAgent {
	t.Helper()
	ft := &fakeTokens{errs: map[string]error{}}
	logs := &syncBuffer{}
	base := shortTempDir(t)
	o.Socket = filepath.Join(base, "run", "agent.sock")
	o.Forward = &ForwardOptions{Profiles: profiles, Token: ft.token}
	o.Log = slog.New(slog.NewTextHandler(logs, nil))
	a := serveAt(t, o, base)
	return &fwdAgent{testAgent: a, fwd: filepath.Join(base, "run", "forward.sock"), tokens: ft, log: logs}
}

func dialForward(t *testing.T, sock string) *ForwardClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := DialForward(ctx, sock)
	if err != nil {
		t.Fatalf("DialForward: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestForwardToken(t *testing.T) {
	a := startForwarding(t, Options{}, "work", "ci")
	a.tokens.errs["ci"] = fmt.Errorf("no session: %w", ErrRemoteLogin)
	a.tokens.errs["work"] = nil
	c := dialForward(t, a.fwd)
	ctx := context.Background()

	tests := []struct {
		name     string
		req      TokenRequest
		lock     bool // the profile's vault is locked
		wantTok  string
		wantErr  error
		wantMsg  string
		wantCall bool
	}{
		{name: "allowed", req: TokenRequest{Profile: "work", MinValid: 10 * time.Minute, IDToken: true}, wantTok: "at-work", wantCall: true},
		{name: "refused", req: TokenRequest{Profile: "home"}, wantErr: ErrNotAllowed, wantMsg: "--forward-profile home"},
		{name: "login required there", req: TokenRequest{Profile: "ci"}, wantErr: ErrRemoteLogin, wantMsg: "latch login --profile ci", wantCall: true},
		{name: "locked there", req: TokenRequest{Profile: "work"}, lock: true, wantErr: vault.ErrLocked, wantMsg: "latch vault unlock", wantCall: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.lock {
				a.tokens.mu.Lock()
				a.tokens.errs["work"] = fmt.Errorf("the vault is locked: %w", vault.ErrLocked)
				a.tokens.mu.Unlock()
				defer func() { a.tokens.mu.Lock(); delete(a.tokens.errs, "work"); a.tokens.mu.Unlock() }()
			}
			before := len(a.tokens.called())
			tok, err := c.Token(ctx, tc.req)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Fatalf("Token = %+v, %v; want %v naming %q", tok, err, tc.wantErr, tc.wantMsg)
				}
			} else if err != nil || tok.AccessToken != tc.wantTok || tok.TokenType != "Bearer" || time.Until(tok.Expiry) < 50*time.Minute {
				t.Fatalf("Token = %+v, %v; want %s", tok, err, tc.wantTok)
			}
			calls := a.tokens.called()[before:]
			if tc.wantCall != (len(calls) == 1) || len(calls) > 1 {
				t.Fatalf("token source called %d times, want called: %v", len(calls), tc.wantCall)
			}
			if tc.wantCall && calls[0] != (TokenRequest{Profile: tc.req.Profile, MinValid: tc.req.MinValid, IDToken: tc.req.IDToken}) {
				t.Fatalf("token source asked %+v, want %+v", calls[0], tc.req)
			}
		})
	}

	// Every token request is logged with its profile and outcome, never a
	// token.
	log := a.log.String()
	for _, want := range []string{"profile=work outcome=allowed", "profile=home outcome=refused",
		"profile=ci outcome=login_required", "profile=work outcome=locked"} {
		if !strings.Contains(log, want) {
			t.Errorf("agent log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "at-work") || strings.Contains(log, "idt-work") {
		t.Errorf("the agent logged a token:\n%s", log)
	}
}

// forwardRaw sends one line on a new connection to the forwarding socket
// and returns the answer.
func forwardRaw(t *testing.T, sock, line string) forwardResponse {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		t.Fatal(err)
	}
	got, err := readLine(bufio.NewReader(c), maxForwardResponse)
	if err != nil {
		t.Fatalf("no answer to %.60q: %v", line, err)
	}
	var resp forwardResponse
	if err := json.Unmarshal(got, &resp); err != nil {
		t.Fatalf("answer %q: %v", got, err)
	}
	return resp
}

// The forwarding socket answers its two requests and nothing else: above all
// no cache op (a get would hand out the vault key) and no stop (a remote box
// must not end the laptop's agent).
func TestForwardProtocol(t *testing.T) {
	a := startForwarding(t, Options{}, "work")
	v := ForwardProtocolVersion
	tests := []struct {
		name, line string
		wantOK     bool
		wantCode   string
		wantKind   string
	}{
		{"hello", fmt.Sprintf(`{"v":%d,"op":"hello"}`, v), true, "", kindForward},
		{"hello of another version", `{"v":99,"op":"hello"}`, true, "", kindForward},
		{"token", fmt.Sprintf(`{"v":%d,"op":"token","profile":"work"}`, v), true, "", ""},
		{"version mismatch", `{"v":99,"op":"token","profile":"work"}`, false, codeVersion, ""},
		{"malformed", `{"v":1,"op":`, false, codeBadRequest, ""},
		{"not an object", `"token"`, false, codeBadRequest, ""},
		{"cache get", fmt.Sprintf(`{"v":%d,"op":"get","scope":"abc","name":"vault/identity"}`, v), false, codeBadRequest, ""},
		{"stop", fmt.Sprintf(`{"v":%d,"op":"stop"}`, v), false, codeBadRequest, ""},
		{"no profile", fmt.Sprintf(`{"v":%d,"op":"token"}`, v), false, codeBadRequest, ""},
		{"profile like a flag path", fmt.Sprintf(`{"v":%d,"op":"token","profile":"../work"}`, v), false, codeBadRequest, ""},
		{"refused", fmt.Sprintf(`{"v":%d,"op":"token","profile":"home"}`, v), false, codeNotAllowed, ""},
		{"negative min_valid", fmt.Sprintf(`{"v":%d,"op":"token","profile":"work","min_valid_ms":-1}`, v), false, codeBadRequest, ""},
		{"oversized", fmt.Sprintf(`{"v":%d,"op":"token","profile":"%s"}`, v, strings.Repeat("w", maxForwardRequest)), false, codeTooLarge, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := forwardRaw(t, a.fwd, tc.line)
			if resp.OK != tc.wantOK || resp.Code != tc.wantCode || resp.Kind != tc.wantKind || resp.V != v {
				t.Fatalf("answer %+v; want ok=%v code=%q kind=%q v=%d", resp, tc.wantOK, tc.wantCode, tc.wantKind, v)
			}
			if tc.wantOK != (resp.Token != nil) && tc.wantKind == "" {
				t.Fatalf("token in answer: %+v", resp.Token)
			}
			if strings.Contains(resp.Error, "wwww") {
				t.Fatalf("the error quotes the request: %s", resp.Error)
			}
		})
	}
	if n := len(a.tokens.called()); n != 1 {
		t.Errorf("token source called %d times, want once (only the good request)", n)
	}
	// Still serving both sockets: the stop above stopped nothing.
	dialForward(t, a.fwd)
	dial(t, a.sock, "s1")
}

// Each socket is told apart by its hello: a cache client never takes the
// forwarding socket for a cache, and the forward client never takes the
// cache for a forwarded agent.
func TestForwardAndCacheSocketsApart(t *testing.T) {
	a := startForwarding(t, Options{}, "work")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	_, err := Dial(ctx, a.fwd, "s1")
	if !errors.Is(err, vault.ErrNoCache) || !errors.Is(err, ErrForwardSocket) {
		t.Fatalf("Dial on the forwarding socket = %v, want ErrNoCache and ErrForwardSocket", err)
	}
	_, err = DialForward(ctx, a.sock)
	if !errors.Is(err, ErrNotForwarding) {
		t.Fatalf("DialForward on the cache socket = %v, want ErrNotForwarding", err)
	}
	_, err = DialForward(ctx, filepath.Join(a.base, "run", "absent.sock"))
	if !errors.Is(err, ErrNotForwarding) {
		t.Fatalf("DialForward on no socket = %v, want ErrNotForwarding", err)
	}
	fi, err := os.Stat(a.fwd)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("forwarding socket %v, %v; want mode 0600", fi, err)
	}
}

// A socket that accepts but never answers (ssh -R whose laptop side has no
// agent any more) is reported as such, not taken for "no agent".
func TestDialForwardSilentSocket(t *testing.T) {
	sock := filepath.Join(shortTempDir(t), "fwd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for range 2 {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close() // what sshd does when the laptop side cannot connect
		}
	}()
	_, err = DialForward(context.Background(), sock)
	if err == nil || errors.Is(err, ErrNotForwarding) || !strings.Contains(err.Error(), "latch agent --forwardable") {
		t.Fatalf("DialForward on a silent socket = %v; want an error naming latch agent --forwardable", err)
	}
}

func TestForwardOptionsRefused(t *testing.T) {
	ft := &fakeTokens{}
	tests := []struct {
		name string
		fo   ForwardOptions
		want string
	}{
		{"no profile", ForwardOptions{Token: ft.token}, "--forward-profile"},
		{"bad profile", ForwardOptions{Token: ft.token, Profiles: []string{"a/b"}}, "path separator"},
		{"no source", ForwardOptions{Profiles: []string{"work"}}, "token source"},
		{"the cache socket", ForwardOptions{Token: ft.token, Profiles: []string{"work"}, Socket: "SAME"}, "--forward-socket"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := shortTempDir(t)
			sock := filepath.Join(base, "agent.sock")
			if tc.fo.Socket == "SAME" {
				tc.fo.Socket = sock
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := Serve(ctx, Options{Socket: sock, Forward: &tc.fo})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Serve = %v, want an error naming %q", err, tc.want)
			}
			if _, err := os.Stat(sock); !os.IsNotExist(err) {
				t.Fatalf("the cache socket is left behind: %v", err)
			}
		})
	}
}

// A forwarding agent stays up while it holds nothing: the machines it
// serves are out of its sight. A plain agent started after it with the same
// idle time exits first, so the forwarding agent's idle time has passed too.
func TestForwardingAgentOutlivesIdle(t *testing.T) {
	const idle = 30 * time.Millisecond
	a := startForwarding(t, Options{Idle: idle}, "work")
	plain := startAgent(t, Options{Idle: idle})
	plain.wait(t, 5*time.Second)
	select {
	case err := <-a.done:
		a.done <- err // for the cleanup's wait
		t.Fatalf("the forwarding agent exited when idle: %v", err)
	default:
	}
	if _, err := dialForward(t, a.fwd).Token(context.Background(), TokenRequest{Profile: "work"}); err != nil {
		t.Fatal(err)
	}
}

// Stopping the agent (latch vault lock) closes the forwarding socket too.
func TestStopClosesForwarding(t *testing.T) {
	a := startForwarding(t, Options{}, "work")
	ctx := context.Background()
	if err := Stop(ctx, a.sock); err != nil {
		t.Fatal(err)
	}
	a.wait(t, 5*time.Second)
	if _, err := os.Stat(a.fwd); !os.IsNotExist(err) {
		t.Fatalf("the forwarding socket outlived the agent: %v", err)
	}
}

// The forwarding socket, like the cache's, answers nobody of another uid,
// even when the file modes let them connect.
func TestForwardRefusesAnotherUser(t *testing.T) {
	refused := make(chan int, 4)
	a := startForwarding(t, Options{OnRefuse: func(uid int) { refused <- uid }}, "work")
	cmd := asNobody(t, "connect", a.fwd)
	for path, mode := range map[string]os.FileMode{a.base: 0o711, filepath.Dir(a.fwd): 0o711, a.fwd: 0o666} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper as nobody: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "connected\n") || strings.Contains(string(out), "answered") {
		t.Fatalf("want connected and no answer:\n%s", out)
	}
	select {
	case uid := <-refused:
		if uid != nobody {
			t.Errorf("refused uid %d, want %d", uid, nobody)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the agent recorded no refusal")
	}
}
