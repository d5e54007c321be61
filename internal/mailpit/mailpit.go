// Package mailpit runs a real SMTP server (mailpit) for tests, on
// 127.0.0.1, and reads what it received through its HTTP API.
//
// Each test starts its own mailpit, so tests never see each other's mail
// and CI needs no shared one.
package mailpit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Mailpit is a running mailpit process, stopped when the test ends.
type Mailpit struct {
	SMTPAddr string // host:port of its SMTP listener
	APIURL   string // base URL of its HTTP API and web UI
}

// Message is one received mail.
type Message struct {
	ID      string
	To      []string
	From    string
	Subject string
	Text    string
	HTML    string
}

// Start runs mailpit from PATH (or $MAILPIT) on free loopback ports; it
// skips the test when mailpit is missing unless LATCH_REQUIRE_MAILPIT=1.
// args are extra mailpit flags (--smtp-auth-accept-any, …).
func Start(t testing.TB, args ...string) *Mailpit {
	t.Helper()
	return start(t, "", args)
}

// StartAt is Start with the SMTP listener on smtpAddr, for tests that bring
// a mail server back on the address a dead one had.
func StartAt(t testing.TB, smtpAddr string, args ...string) *Mailpit {
	t.Helper()
	return start(t, smtpAddr, args)
}

// start tries a few times: a free port found here can be taken by another
// test process (another package's mailpit) before this mailpit binds it;
// mailpit then exits, and the next try takes other ports.
func start(t testing.TB, smtpAddr string, args []string) *Mailpit {
	t.Helper()
	bin := binary(t)
	var outs []string
	for range 5 {
		addr := smtpAddr
		if addr == "" {
			addr = freeAddr(t)
		}
		m, out := try(t, bin, addr, freeAddr(t), args)
		if m != nil {
			return m
		}
		outs = append(outs, out)
	}
	t.Fatalf("mailpit exited at start, 5 times:\n%s", strings.Join(outs, "\n---\n"))
	return nil
}

// try starts one mailpit and waits until it answers; nil (and its output)
// when it exited first.
func try(t testing.TB, bin, smtpAddr, httpAddr string, args []string) (*Mailpit, string) {
	t.Helper()
	dir := t.TempDir()
	db := filepath.Join(dir, "mailpit.db")
	// The database goes in the test's directory; no reverse DNS (tests are
	// offline); the SMTP server must not relay anywhere.
	argv := append([]string{"--smtp", smtpAddr, "--listen", httpAddr,
		"--database", db, "--smtp-disable-rdns", "--disable-version-check",
		"--quiet"}, args...)
	var out syncBuffer
	cmd := exec.Command(bin, argv...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mailpit: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	m := &Mailpit{SMTPAddr: smtpAddr, APIURL: "http://" + httpAddr}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			return nil, out.String()
		default:
		}
		// The API must be this mailpit's (its database is ours), not one a
		// parallel test started on the port first.
		if m.database() == db && dialable(smtpAddr) {
			return m, ""
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailpit did not answer within 15s: %s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// database is the database path mailpit's API reports; "" when it does not
// answer as mailpit.
func (m *Mailpit) database() string {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(m.APIURL + "/api/v1/info")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var info struct{ Database string }
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&info) != nil {
		return ""
	}
	return info.Database
}

// syncBuffer is a bytes.Buffer safe for mailpit's two output streams and
// the test reading it.
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

func binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("MAILPIT"); p != "" {
		return p
	}
	p, err := exec.LookPath("mailpit")
	if err == nil {
		return p
	}
	if os.Getenv("LATCH_REQUIRE_MAILPIT") == "1" {
		t.Fatalf("mailpit is required (LATCH_REQUIRE_MAILPIT=1) but not on PATH: go install github.com/axllent/mailpit@v1.33.1")
	}
	t.Skip("mailpit not on PATH (go install github.com/axllent/mailpit@v1.33.1, or set $MAILPIT)")
	return ""
}

// freeAddr finds a free loopback port. Another process may take it before
// mailpit does; start then tries again.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// SMTPURL is the URL latch serve's --smtp-url takes for it.
func (m *Mailpit) SMTPURL() string { return "smtp://" + m.SMTPAddr }

type address struct {
	Name, Address string
}

type summary struct {
	ID      string
	From    address
	To      []address
	Subject string
}

func (m *Mailpit) get(path string, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", m.APIURL+path, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, res.Status)
	}
	return json.NewDecoder(res.Body).Decode(v)
}

// list returns the summaries mailpit has, newest first.
func (m *Mailpit) list() ([]summary, error) {
	var page struct {
		Messages []summary
	}
	err := m.get("/api/v1/messages?limit=1000", &page)
	return page.Messages, err
}

func (m *Mailpit) full(s summary) (Message, error) {
	var body struct {
		Text, HTML string
	}
	if err := m.get("/api/v1/message/"+url.PathEscape(s.ID), &body); err != nil {
		return Message{}, err
	}
	msg := Message{ID: s.ID, From: s.From.Address, Subject: s.Subject, Text: body.Text, HTML: body.HTML}
	for _, a := range s.To {
		msg.To = append(msg.To, a.Address)
	}
	return msg, nil
}

// Messages lists every message received so far, oldest first.
func (m *Mailpit) Messages(t testing.TB) []Message {
	t.Helper()
	sums, err := m.list()
	if err != nil {
		t.Fatalf("mailpit: %v", err)
	}
	out := make([]Message, 0, len(sums))
	for i := len(sums) - 1; i >= 0; i-- {
		msg, err := m.full(sums[i])
		if err != nil {
			t.Fatalf("mailpit: %v", err)
		}
		out = append(out, msg)
	}
	return out
}

// errNotYet is find's answer while no message matches.
var errNotYet = errors.New("no such message yet")

func (m *Mailpit) find(to, subject string) (Message, error) {
	sums, err := m.list()
	if err != nil {
		return Message{}, err
	}
	for _, s := range sums {
		if !strings.Contains(s.Subject, subject) {
			continue
		}
		for _, a := range s.To {
			if strings.EqualFold(a.Address, to) {
				return m.full(s)
			}
		}
	}
	return Message{}, errNotYet
}

// WaitFor waits (bounded) for a message to `to` whose subject contains
// subject, and returns it; with several, the newest.
func (m *Mailpit) WaitFor(t testing.TB, to, subject string) Message {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		msg, err := m.find(to, subject)
		if err == nil {
			return msg
		}
		if time.Now().After(deadline) {
			var got []string
			if sums, lerr := m.list(); lerr == nil {
				for _, s := range sums {
					got = append(got, fmt.Sprintf("%v %q", s.To, s.Subject))
				}
			}
			t.Fatalf("no mail to %s with subject containing %q within 20s (%v); mailpit has: %v", to, subject, err, got)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
