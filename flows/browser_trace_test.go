package flows

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/internal/fakeidp"
)

// When no callback comes for a while (the provider shows its own error
// page), the user is told once what may be wrong, and the login still
// completes when the browser does come back.
func TestBrowserLoginSlowCallbackHint(t *testing.T) {
	o := newOAuthEnv(t)
	hints := make(chan string, 1000)
	o.Progress = func(msg string) { hints <- msg }
	b, err := o.StartBrowserLogin(o.ctx, o.req())
	if err != nil {
		t.Fatal(err)
	}
	// Short, so that a hint repeated while the browser walks would show.
	b.SlowAfter = time.Millisecond
	type outcome struct {
		res *LoginResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := o.FinishBrowserLogin(o.ctx, b)
		done <- outcome{res, err}
	}()
	select {
	case h := <-hints:
		for _, want := range []string{"error page", "client id", "--client-id", "--redirect-url", "still works"} {
			if !strings.Contains(h, want) {
				t.Errorf("hint %q does not say %q", h, want)
			}
		}
	case out := <-done:
		t.Fatalf("the login ended before any hint: %v", out.err)
	case <-o.ctx.Done():
		t.Fatal("no hint")
	}
	page := o.browse(b)
	out := <-done
	if out.err != nil {
		t.Fatalf("login after the hint: %v (%s)", out.err, (<-page).Body)
	}
	<-page
	if n := len(hints); n != 0 {
		t.Fatalf("%d more hints; want exactly one", n)
	}
}

// tracer collects the events of a flow.
type tracer struct {
	mu     sync.Mutex
	events []client.Event
}

func (tr *tracer) trace(ev client.Event) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.events = append(tr.events, ev)
}

// checks maps each check's name to whether it passed (the last one wins).
func (tr *tracer) checks() map[string]bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	m := map[string]bool{}
	for _, ev := range tr.events {
		if ev.Check != nil {
			m[ev.Check.Name] = ev.Check.OK
		}
	}
	return m
}

func (tr *tracer) text() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var sb strings.Builder
	for _, ev := range tr.events {
		sb.WriteString(ev.Note)
		if ev.Check != nil {
			sb.WriteString(ev.Check.Name + " " + ev.Check.Detail)
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}

// A browser login tells the tracer each step and each check, with the
// failing one marked; nothing secret of the login is in the trace.
func TestBrowserLoginTraceChecks(t *testing.T) {
	all := []string{"PKCE", "state", "iss (RFC 9207)", "ID token signature", "ID token iss", "ID token aud", "ID token exp", "ID token nonce"}
	for _, tc := range []struct {
		name   string
		knob   func(*fakeidp.Config)
		failed string // "" when every check passes
	}{
		{"all pass", func(*fakeidp.Config) {}, ""},
		{"wrong nonce", func(c *fakeidp.Config) { c.WrongNonce = true }, "ID token nonce"},
		{"wrong iss in the redirect", func(c *fakeidp.Config) { c.WrongIss = true }, "iss (RFC 9207)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOAuthEnv(t, tc.knob)
			tr := &tracer{}
			o.Trace = tr.trace
			b, err := o.StartBrowserLogin(o.ctx, o.req())
			if err != nil {
				t.Fatal(err)
			}
			page := o.browse(b)
			_, err = o.FinishBrowserLogin(o.ctx, b)
			<-page
			if (err == nil) != (tc.failed == "") {
				t.Fatalf("login error %v", err)
			}
			got := tr.checks()
			for _, name := range all {
				ok, seen := got[name]
				switch {
				case name == tc.failed && (!seen || ok):
					t.Errorf("check %s: seen %v, ok %v; want a failure", name, seen, ok)
				case name != tc.failed && seen && !ok:
					t.Errorf("check %s failed", name)
				case tc.failed == "" && !seen:
					t.Errorf("check %s missing", name)
				}
			}
			text := tr.text()
			for _, step := range []string{"discovery", "authorization request", "callback"} {
				if !strings.Contains(text, step) {
					t.Errorf("no %q step in the trace:\n%s", step, text)
				}
			}
			if tc.failed == "" && !strings.Contains(text, "token exchange") {
				t.Errorf("no token exchange step:\n%s", text)
			}
			for _, s := range []string{b.state, b.nonce, b.verifier} {
				if strings.Contains(text, s) {
					t.Fatalf("the trace shows a secret of the login:\n%s", text)
				}
			}
		})
	}
}

// A device login tells the tracer its steps and the ID token's checks.
func TestDeviceLoginTrace(t *testing.T) {
	o := newOAuthEnv(t)
	tr := &tracer{}
	o.Trace = tr.trace
	d, err := o.StartDeviceLogin(o.ctx, o.req())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.FinishDeviceLogin(o.ctx, d); err != nil {
		t.Fatal(err)
	}
	text := tr.text()
	for _, step := range []string{"discovery", "device authorization", "polling"} {
		if !strings.Contains(text, step) {
			t.Errorf("no %q step in the trace:\n%s", step, text)
		}
	}
	got := tr.checks()
	for _, name := range []string{"ID token signature", "ID token iss", "ID token aud", "ID token exp"} {
		if !got[name] {
			t.Errorf("check %s missing or failed", name)
		}
	}
}
