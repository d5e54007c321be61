//go:build linux

package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/latch-dev/latch/vault"
)

func TestCacheAcrossScopes(t *testing.T) {
	a := startAgent(t, Options{})
	ctx := context.Background()
	scopeA, scopeB := vault.CacheScope("/home/a"), vault.CacheScope("/home/b")
	ca, cb := dial(t, a.sock, scopeA), dial(t, a.sock, scopeB)
	const name = "at/work"

	mustPut := func(c *Client, v string) {
		t.Helper()
		if err := c.Put(ctx, name, []byte(v), time.Hour); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	wantGet := func(c *Client, want string) {
		t.Helper()
		got, err := c.Get(ctx, name)
		switch {
		case want == "" && !errors.Is(err, vault.ErrNotFound):
			t.Fatalf("Get = %q, %v; want ErrNotFound", got, err)
		case want != "" && (err != nil || string(got) != want):
			t.Fatalf("Get = %q, %v; want %q", got, err, want)
		}
	}

	wantGet(ca, "")
	mustPut(ca, "token-a")
	wantGet(ca, "token-a")
	wantGet(cb, "") // scopes never see each other's entries
	mustPut(cb, "token-b")
	mustPut(ca, "token-a2") // replaces
	wantGet(ca, "token-a2")
	wantGet(cb, "token-b")

	if err := ca.Touch(ctx, name, time.Hour); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	if err := ca.Touch(ctx, "at/absent", time.Hour); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("Touch of an absent entry = %v, want ErrNotFound", err)
	}

	if err := ca.Delete(ctx, name); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := ca.Delete(ctx, name); err != nil {
		t.Fatalf("Delete of an absent entry: %v", err)
	}
	wantGet(ca, "")
	wantGet(cb, "token-b")

	if err := ca.Put(ctx, vault.CacheIdentity, []byte("AGE-SECRET-KEY-1"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := cb.Put(ctx, "pending/p", []byte("pair"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := cb.Clear(ctx, "at/"); err != nil {
		t.Fatalf("Clear(at/): %v", err)
	}
	if got, err := cb.Get(ctx, "pending/p"); err != nil || string(got) != "pair" {
		t.Fatalf("Clear(at/) took another entry: %q, %v", got, err)
	}
	if err := cb.Clear(ctx, ""); err != nil {
		t.Fatalf("Clear: %v", err)
	}
	wantGet(cb, "")
	if got, err := ca.Get(ctx, vault.CacheIdentity); err != nil || string(got) != "AGE-SECRET-KEY-1" {
		t.Fatalf("the other scope's entry after Clear = %q, %v", got, err)
	}

	// An empty value is a value.
	if err := ca.Put(ctx, "empty", nil, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, err := ca.Get(ctx, "empty"); err != nil || len(got) != 0 {
		t.Fatalf("Get of an empty value = %q, %v", got, err)
	}

	want := fmt.Sprintf("latch agent (pid %d, %s)", os.Getpid(), a.sock)
	if got := ca.Where(); got != want {
		t.Errorf("Where() = %q, want %q", got, want)
	}
}

func TestEntryExpires(t *testing.T) {
	a := startAgent(t, Options{})
	c := dial(t, a.sock, "s1")
	ctx := context.Background()
	const ttl = 80 * time.Millisecond
	start := time.Now()
	if err := c.Put(ctx, "at/p", []byte("v"), ttl); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "entry expires", func() bool {
		_, err := c.Get(ctx, "at/p")
		return errors.Is(err, vault.ErrNotFound)
	})
	if el := time.Since(start); el < ttl {
		t.Errorf("entry gone after %s, before its ttl %s", el, ttl)
	}
}

// A read or a status probe is not use: only put and touch extend an entry
// (rbw #215 was a status probe that kept the agent unlocked).
func TestGetDoesNotExtendTouchDoes(t *testing.T) {
	a := startAgent(t, Options{})
	c := dial(t, a.sock, "s1")
	ctx := context.Background()
	const ttl = 250 * time.Millisecond

	t.Run("get and hello do not", func(t *testing.T) {
		start := time.Now()
		if err := c.Put(ctx, "at/get", []byte("v"), ttl); err != nil {
			t.Fatal(err)
		}
		reads := 0
		waitFor(t, 3*time.Second, "entry read all along expires", func() bool {
			if err := hello(ctx, a.sock); err != nil {
				t.Fatalf("hello: %v", err)
			}
			_, err := c.Get(ctx, "at/get")
			if err == nil {
				reads++
			}
			return errors.Is(err, vault.ErrNotFound)
		})
		if reads < 2 {
			t.Fatalf("only %d reads before expiry: the test proved nothing", reads)
		}
		if el := time.Since(start); el > ttl+time.Second {
			t.Errorf("expired after %s for a ttl of %s", el, ttl)
		}
	})

	t.Run("touch does", func(t *testing.T) {
		if err := c.Put(ctx, "at/touch", []byte("v"), ttl); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		touches := 0
		waitFor(t, 5*time.Second, "three ttls of touching", func() bool {
			if err := c.Touch(ctx, "at/touch", ttl); err != nil {
				t.Fatalf("Touch after %s (%d touches): %v", time.Since(start), touches, err)
			}
			touches++
			if _, err := c.Get(ctx, "at/touch"); err != nil {
				t.Fatalf("Get after %s of touching: %v", time.Since(start), err)
			}
			return time.Since(start) > 3*ttl
		})
		waitFor(t, 3*time.Second, "entry expires once no longer touched", func() bool {
			_, err := c.Get(ctx, "at/touch")
			return errors.Is(err, vault.ErrNotFound)
		})
	})
}

func TestVersionMismatch(t *testing.T) {
	t.Run("agent answers a request of another version", func(t *testing.T) {
		a := startAgent(t, Options{})
		resp, err := rawRequest(t, a.sock, `{"v":2,"op":"get","scope":"s1","name":"at/p"}`)
		if err != nil {
			t.Fatal(err)
		}
		if resp.OK || resp.Code != codeVersion || resp.V != ProtocolVersion {
			t.Fatalf("response = %+v, want a version error of v%d", resp, ProtocolVersion)
		}
		if !strings.Contains(resp.Error, "protocol 1") || !strings.Contains(resp.Error, "protocol 2") {
			t.Errorf("error %q does not name both versions", resp.Error)
		}
	})

	t.Run("client meets an agent of another version", func(t *testing.T) {
		a := startAgent(t, Options{version: 2})
		ctx := context.Background()
		_, err := Dial(ctx, a.sock, "s1")
		var ve *VersionError
		if !errors.As(err, &ve) || ve.Agent != 2 || ve.Client != ProtocolVersion {
			t.Fatalf("Dial = %v, want a *VersionError 2/%d", err, ProtocolVersion)
		}
		const want = "the running latch agent speaks protocol 2, this latch speaks 1: run latch vault lock to stop it, then unlock again"
		if err.Error() != want {
			t.Errorf("error = %q\nwant    %q", err, want)
		}
		if errors.Is(err, vault.ErrNoCache) {
			t.Error("a version mismatch must not pass for a missing agent")
		}
		if err := Start(ctx, "/nonexistent", nil, a.sock); !errors.As(err, &ve) {
			t.Errorf("Start on an agent of another version = %v, want a *VersionError", err)
		}
		// The way out the message names: stop works across versions.
		if err := Stop(ctx, a.sock); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if err := a.wait(t, 3*time.Second); err != nil {
			t.Fatalf("Serve: %v", err)
		}
	})
}

func TestOversizedRequestRefused(t *testing.T) {
	a := startAgent(t, Options{})
	big := bytes.Repeat([]byte("A"), maxRequest)
	resp, err := rawRequest(t, a.sock, `{"v":1,"op":"put","scope":"s1","name":"at/p","ttl_ms":1000,"value":"`+string(big)+`"}`)
	if err != nil {
		t.Fatal(err)
	}
	if resp.OK || resp.Code != codeTooLarge || !strings.Contains(resp.Error, "64 KiB") {
		t.Fatalf("response = %+v, want too_large naming 64 KiB", resp)
	}
	if strings.Contains(resp.Error, "AAAA") {
		t.Error("the error quotes the request")
	}

	c := dial(t, a.sock, "s1")
	ctx := context.Background()
	if err := c.Put(ctx, "at/p", big, time.Hour); err == nil || !strings.Contains(err.Error(), "64 KiB") {
		t.Fatalf("Put of 64 KiB = %v, want refused before sending", err)
	}
	if err := c.Put(ctx, "at/p", big[:40<<10], time.Hour); err != nil {
		t.Fatalf("Put of 40 KiB: %v", err)
	}
	if got, err := c.Get(ctx, "at/p"); err != nil || len(got) != 40<<10 {
		t.Fatalf("Get = %d bytes, %v", len(got), err)
	}
}

func TestMalformedRequests(t *testing.T) {
	a := startAgent(t, Options{})
	for _, tc := range []struct{ line, code string }{
		{`not json`, codeBadRequest},
		{`{"v":1,"op":"dance","scope":"s1","name":"x"}`, codeBadRequest},
		{`{"v":1,"op":"get","scope":"../etc","name":"x"}`, codeBadRequest},
		{`{"v":1,"op":"get","scope":"s1","name":"a b"}`, codeBadRequest},
		{`{"v":1,"op":"put","scope":"s1","name":"x","value":"c2VjcmV0"}`, codeBadRequest}, // no ttl
		{`{"v":1,"op":"touch","scope":"s1","name":"x","ttl_ms":-5}`, codeBadRequest},
		{`{"v":1,"op":"get","scope":"s1","name":"x"}`, codeNotFound},
	} {
		t.Run(tc.line, func(t *testing.T) {
			resp, err := rawRequest(t, a.sock, tc.line)
			if err != nil {
				t.Fatal(err)
			}
			if resp.OK || resp.Code != tc.code || resp.V != ProtocolVersion {
				t.Fatalf("response = %+v, want code %s", resp, tc.code)
			}
			if strings.Contains(resp.Error, "c2VjcmV0") || strings.Contains(resp.Error, "secret") {
				t.Errorf("error %q quotes the value", resp.Error)
			}
		})
	}
}

func TestSilentConnectionDoesNotBlock(t *testing.T) {
	const connTimeout = 300 * time.Millisecond
	a := startAgent(t, Options{connTimeout: connTimeout, MaxConns: 3})
	ctx := context.Background()
	var silent []net.Conn
	for range 2 {
		s, err := net.Dial("unix", a.sock)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		silent = append(silent, s)
	}
	start := time.Now()
	c := dial(t, a.sock, "s1") // the third and last slot
	if err := c.Put(ctx, "at/p", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "at/p"); err != nil || string(got) != "v" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	if el := time.Since(start); el >= connTimeout {
		t.Fatalf("served after %s, the silent connections' deadline", el)
	}

	// Beyond MaxConns a connection is closed unanswered.
	if _, err := Dial(ctx, a.sock, "s1"); !errors.Is(err, vault.ErrNoCache) {
		t.Fatalf("Dial beyond MaxConns = %v, want ErrNoCache", err)
	}

	// The agent hangs up on the silent ones at their deadline...
	for _, s := range silent {
		s.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := s.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("silent connection read = %d, %v; want EOF from the agent", n, err)
		}
	}
	// ...and their slots serve again.
	waitFor(t, 3*time.Second, "a new client is served", func() bool {
		c2, err := Dial(ctx, a.sock, "s1")
		if err == nil {
			c2.Close()
		}
		return err == nil
	})
	// The client's own connection, idle past the deadline, was closed too:
	// it dials again.
	waitFor(t, 3*time.Second, "the idle client connection is dropped", func() bool {
		return time.Since(start) > 2*connTimeout
	})
	if got, err := c.Get(ctx, "at/p"); err != nil || string(got) != "v" {
		t.Fatalf("Get on a connection the agent closed = %q, %v", got, err)
	}
}

func TestIdleExit(t *testing.T) {
	t.Run("empty from the start", func(t *testing.T) {
		a := startAgent(t, Options{Idle: 100 * time.Millisecond})
		if err := a.wait(t, 3*time.Second); err != nil {
			t.Fatalf("Serve = %v", err)
		}
		if _, err := os.Lstat(a.sock); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("socket left behind: %v", err)
		}
	})

	t.Run("not while it holds an entry", func(t *testing.T) {
		const idle, ttl = 100 * time.Millisecond, 400 * time.Millisecond
		a := startAgent(t, Options{Idle: idle})
		c := dial(t, a.sock, "s1")
		put := time.Now()
		if err := c.Put(context.Background(), "at/p", []byte("v"), ttl); err != nil {
			t.Fatal(err)
		}
		if err := a.wait(t, 5*time.Second); err != nil {
			t.Fatalf("Serve = %v", err)
		}
		if el := time.Since(put); el < ttl+idle {
			t.Errorf("exited %s after a put of ttl %s with idle %s", el, ttl, idle)
		}
	})
}

func TestStop(t *testing.T) {
	a := startAgent(t, Options{})
	c := dial(t, a.sock, "s1")
	ctx := context.Background()
	if err := c.Put(ctx, "at/p", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := a.wait(t, 3*time.Second); err != nil {
		t.Fatalf("Serve = %v", err)
	}
	if _, err := os.Lstat(a.sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
	if _, err := Dial(ctx, a.sock, "s1"); !errors.Is(err, vault.ErrNoCache) {
		t.Errorf("Dial after Stop = %v, want ErrNoCache", err)
	}
	// A client of a gone agent: its entries went with it.
	if _, err := c.Get(ctx, "at/p"); !errors.Is(err, vault.ErrNotFound) || !errors.Is(err, vault.ErrNoCache) {
		t.Errorf("Get after Stop = %v, want ErrNotFound and ErrNoCache", err)
	}
	if err := c.Put(ctx, "at/p", []byte("v"), time.Hour); !errors.Is(err, vault.ErrNoCache) {
		t.Errorf("Put after Stop = %v, want ErrNoCache", err)
	}
	if err := c.Clear(ctx, ""); err != nil {
		t.Errorf("Clear after Stop = %v", err)
	}
	if err := Stop(ctx, a.sock); err != nil {
		t.Errorf("Stop with no agent = %v", err)
	}
}

func TestContextDoneStops(t *testing.T) {
	a := startAgent(t, Options{})
	a.stop()
	if err := a.wait(t, 3*time.Second); err != nil {
		t.Fatalf("Serve = %v", err)
	}
	if _, err := os.Lstat(a.sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
}
