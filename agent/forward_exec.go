package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/latch-dev/latch/vault"
)

// Exit codes of latch token that ExecToken tells apart (see cli/root.go).
const (
	exitLoginRequired = 4
	exitVaultLocked   = 5
)

// execWaitDelay bounds how long a latch token killed at its deadline may
// hold its pipes open.
const execWaitDelay = 2 * time.Second

// ExecToken is a TokenFunc that runs exe (this latch) as
// "latch token --json --profile NAME" with env, for each request. Running
// latch rather than calling the token manager in the agent keeps one code
// path for every token on the machine: the refresh is single-flight with
// every other latch through the same lock, the vault is opened the way the
// user configured it, and the agent itself never holds a refresh token.
//
// Nothing it starts can ask anyone anything: stdin is /dev/null, the
// process has no controlling terminal (a new session), LATCH_BROWSER=none,
// and latch token never logs in. Exit code 4 wraps ErrRemoteLogin, 5
// vault.ErrLocked.
func ExecToken(exe string, env []string) TokenFunc {
	env = execEnv(env)
	return func(ctx context.Context, req TokenRequest) (*Token, error) {
		if err := vault.ValidateName(req.Profile); err != nil {
			return nil, err
		}
		// One argument, so that a name such as "--help" is never read as
		// a flag of its own.
		args := []string{"token", "--json", "--profile=" + req.Profile}
		if req.MinValid > 0 {
			args = append(args, "--min-valid", req.MinValid.String())
		}
		if req.IDToken {
			args = append(args, "--id-token")
		}
		cmd := exec.CommandContext(ctx, exe, args...)
		cmd.Env = env
		cmd.Dir = "/"
		cmd.SysProcAttr = detached()
		cmd.WaitDelay = execWaitDelay
		stdout := &boundedBuffer{limit: maxForwardResponse}
		stderr := &boundedBuffer{limit: 4 << 10}
		cmd.Stdout, cmd.Stderr = stdout, stderr
		err := cmd.Run()
		defer stdout.wipe()
		if err != nil {
			return nil, execError(ctx, err, stderr.buf.String())
		}
		var out struct {
			AccessToken string    `json:"access_token"`
			TokenType   string    `json:"token_type"`
			ExpiresAt   time.Time `json:"expires_at"`
			Profile     string    `json:"profile"`
			IDToken     string    `json:"id_token"`
		}
		if stdout.over {
			return nil, fmt.Errorf("latch token --profile %s printed more than %d KiB", req.Profile, maxForwardResponse>>10)
		}
		if err := json.Unmarshal(stdout.buf.Bytes(), &out); err != nil {
			return nil, fmt.Errorf("latch token --json --profile %s printed no JSON the agent understands: %v", req.Profile, err)
		}
		switch {
		case out.AccessToken == "":
			return nil, fmt.Errorf("latch token --json --profile %s printed no access_token", req.Profile)
		case out.Profile != "" && out.Profile != req.Profile:
			return nil, fmt.Errorf("latch token --profile %s answered for profile %q", req.Profile, out.Profile)
		}
		if out.TokenType == "" {
			out.TokenType = "Bearer"
		}
		return &Token{AccessToken: out.AccessToken, TokenType: out.TokenType, Expiry: out.ExpiresAt, IDToken: out.IDToken}, nil
	}
}

// execEnv is env for latch token: no browser, and no profile from the
// environment (the request names it).
func execEnv(env []string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if k == "LATCH_BROWSER" || k == "LATCH_PROFILE" {
			continue
		}
		out = append(out, kv)
	}
	return append(out, "LATCH_BROWSER=none")
}

// execError says why latch token failed, in its own words (its last line
// on stderr, which never holds a secret).
func execError(ctx context.Context, err error, stderr string) error {
	if ctx.Err() != nil {
		return fmt.Errorf("latch token did not finish in time: %w", ctx.Err())
	}
	msg := lastLine(stderr)
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("run latch token: %w", err)
	}
	if msg == "" {
		msg = fmt.Sprintf("latch token exited %d", ee.ExitCode())
	}
	switch ee.ExitCode() {
	case exitLoginRequired:
		return &tagged{msg: msg, tag: ErrRemoteLogin}
	case exitVaultLocked:
		return &tagged{msg: msg, tag: vault.ErrLocked}
	}
	return errors.New(msg)
}

// tagged is an error that says its message alone and matches tag: latch's
// own words already say what the sentinel's would.
type tagged struct {
	msg string
	tag error
}

func (e *tagged) Error() string        { return e.msg }
func (e *tagged) Is(target error) bool { return target == e.tag }

// lastLine is the last non-empty line of s, without the "latch: " prefix,
// cut to 300 bytes and to printable characters.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	l := strings.TrimPrefix(strings.TrimSpace(lines[len(lines)-1]), "latch: ")
	l = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, l)
	if len(l) > 300 {
		l = l[:300] + "…"
	}
	return l
}

// boundedBuffer keeps the first limit bytes written to it and notes that
// more came. It has no ReadFrom, so that io.Copy goes through Write.
type boundedBuffer struct {
	buf   bytes.Buffer
	limit int
	over  bool
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := b.limit - b.buf.Len(); len(p) > room {
		b.over = true
		b.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return b.buf.Write(p)
}

// wipe clears what the buffer held: a token.
func (b *boundedBuffer) wipe() {
	clear(b.buf.Bytes()) // nothing reads from it, so that is all it holds
	b.buf.Reset()
}
