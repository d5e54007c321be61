package server

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latch-dev/latch/internal/mailpit"
)

// resetMail is a mail whose token must never show up at rest or in a log.
func resetMail(to string) outMail {
	return outMail{To: to, Kind: "password-reset", Data: map[string]string{
		"username": "alice", "link": "http://latch.test/password/reset?token=SECRET-TOKEN-1",
		"token": "SECRET-TOKEN-1", "expires": "2026-03-01 12:30 UTC"}}
}

// queue runs queueMail in a transaction of its own that commits, or (fail)
// rolls back after queueing.
func queue(t *testing.T, s *Server, m outMail, fail bool) error {
	t.Helper()
	errRollback := errors.New("the change failed")
	err := s.st.tx(t.Context(), func(tx *sql.Tx) error {
		if err := s.queueMail(t.Context(), tx, m); err != nil {
			return err
		}
		if fail {
			return errRollback
		}
		return nil
	})
	if errors.Is(err, errRollback) {
		return nil
	}
	return err
}

type outboxRow struct {
	kind      string
	sealed    []byte
	attempts  int
	nextAt    int64
	lastError string
}

func outboxRows(t *testing.T, s *Server) []outboxRow {
	t.Helper()
	rows, err := s.st.db.QueryContext(t.Context(), "SELECT kind, sealed, attempts, next_at, last_error FROM outbox ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		if err := rows.Scan(&r.kind, &r.sealed, &r.attempts, &r.nextAt, &r.lastError); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// eventually waits (bounded) for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestQueueMailFollowsTheTransaction(t *testing.T) {
	e := newEnv(t) // no sender: mail stays queued
	if err := queue(t, e.srv, resetMail("kept@example.com"), false); err != nil {
		t.Fatal(err)
	}
	if err := queue(t, e.srv, resetMail("dropped@example.com"), true); err != nil {
		t.Fatal(err)
	}
	rows := outboxRows(t, e.srv)
	if len(rows) != 1 || rows[0].kind != "password-reset" {
		t.Fatalf("outbox holds %+v, want the committed mail only", rows)
	}
	// At rest the token and the recipient are sealed.
	for _, secret := range []string{"SECRET-TOKEN-1", "kept@example.com"} {
		if bytes.Contains(rows[0].sealed, []byte(secret)) {
			t.Errorf("the outbox row holds %q in clear", secret)
		}
	}
	for _, bad := range []outMail{
		{To: "a@example.com", Kind: "no-such-kind", Data: map[string]string{"username": "a"}},
		{To: "a@example.com", Kind: "verify-email", Data: map[string]string{"username": "a"}}, // no link
		{Kind: "mfa-enabled", Data: map[string]string{"username": "a", "when": "x", "ip": "x", "user_agent": "x"}},
	} {
		if err := queue(t, e.srv, bad, false); err == nil {
			t.Errorf("queued %+v", bad)
		}
	}
	if n := len(outboxRows(t, e.srv)); n != 1 {
		t.Fatalf("outbox holds %d rows after refused mail", n)
	}
}

func TestOutboxDeliversOverSMTP(t *testing.T) {
	mp := mailpit.Start(t)
	e := newEnv(t, func(c *Config) { c.Mail = MailConfig{SMTPURL: mp.SMTPURL(), From: "latch@example.com"} })
	if err := queue(t, e.srv, resetMail("alice@example.com"), false); err != nil {
		t.Fatal(err)
	}
	got := mp.WaitFor(t, "alice@example.com", "reset your password")
	if !strings.Contains(got.Text, "SECRET-TOKEN-1") {
		t.Fatalf("mail text: %q", got.Text)
	}
	eventually(t, "the sent row deleted", func() bool { return len(outboxRows(t, e.srv)) == 0 })
	if n := e.srv.metrics.mail.get("sent"); n != 1 {
		t.Fatalf("latch_mail_total{result=sent} = %d", n)
	}
}

// blackhole is an SMTP server that accepts connections and never answers:
// the worst a mail server can do to a sender.
type blackhole struct {
	ln       net.Listener
	accepted chan struct{}
	mu       sync.Mutex
	conns    []net.Conn
}

func newBlackhole(t *testing.T) *blackhole {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{ln: ln, accepted: make(chan struct{}, 100)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
			b.accepted <- struct{}{}
		}
	}()
	t.Cleanup(b.close)
	return b
}

// close hangs up on every connection and stops listening.
func (b *blackhole) close() {
	b.ln.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		c.Close()
	}
	b.conns = nil
}

// TestDeadSMTPNeverBlocksRequests: while the worker is stuck talking to a
// mail server that never answers, requests (and more mail) still go
// through; when that server goes away the mail stays queued with a failed
// attempt counted and logged without secrets; when a mail server is back
// on the address, the mail is delivered.
func TestDeadSMTPNeverBlocksRequests(t *testing.T) {
	bh := newBlackhole(t)
	addr := bh.ln.Addr().String()
	e := newEnv(t, func(c *Config) {
		c.Mail = MailConfig{SMTPURL: "smtp://mailer@" + addr, SMTPPassword: "SMTP-PASSWORD-1", From: "latch@example.com"}
	})
	if err := queue(t, e.srv, resetMail("first@example.com"), false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-bh.accepted: // the worker is now stuck in its send
	case <-time.After(20 * time.Second):
		t.Fatal("the worker never connected to the SMTP server")
	}

	done := make(chan error, 1)
	go func() {
		done <- func() error {
			post := func(path string, body map[string]string) (int, error) {
				raw, _ := json.Marshal(body)
				res, err := http.Post(e.http.URL+path, "application/json", bytes.NewReader(raw))
				if err != nil {
					return 0, err
				}
				res.Body.Close()
				return res.StatusCode, nil
			}
			if code, err := post("/auth/register", map[string]string{"username": "bob", "email": "bob@example.com", "password": goodPassword}); err != nil || code != http.StatusCreated {
				return errors.Join(err, errors.New("register failed"))
			}
			if code, err := post("/auth/login", map[string]string{"identifier": "bob", "password": goodPassword}); err != nil || code != http.StatusOK {
				return errors.Join(err, errors.New("login failed"))
			}
			return queue(t, e.srv, resetMail("second@example.com"), false)
		}()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("requests waited for the hung SMTP server")
	}

	bh.close() // the mail server dies: the stuck send fails
	eventually(t, "a failed attempt recorded", func() bool {
		for _, r := range outboxRows(t, e.srv) {
			if r.attempts >= 1 && r.lastError != "" {
				return true
			}
		}
		return false
	})
	if n := e.srv.metrics.mail.get("failed"); n < 1 {
		t.Fatalf("latch_mail_total{result=failed} = %d", n)
	}
	metrics := e.do("GET", "/metrics", nil)
	if !strings.Contains(string(metrics.Body), `latch_mail_total{result="failed"} `) {
		t.Fatalf("/metrics lacks the mail counter:\n%s", metrics.Body)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "mail not sent, will retry") {
		t.Fatalf("the failure was not logged:\n%s", logs)
	}
	for _, r := range outboxRows(t, e.srv) {
		logs += r.lastError
	}
	for _, secret := range []string{"SMTP-PASSWORD-1", "SECRET-TOKEN-1"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("a secret (%s) is in the logs or the stored error", secret)
		}
	}

	mp := mailpit.StartAt(t, addr, "--smtp-auth-accept-any", "--smtp-auth-allow-insecure")
	e.clock.Add(mailBackoffMax)
	e.srv.wakeOutbox()
	mp.WaitFor(t, "first@example.com", "reset your password")
	mp.WaitFor(t, "second@example.com", "reset your password")
	eventually(t, "the outbox emptied", func() bool { return len(outboxRows(t, e.srv)) == 0 })
}

// TestOutboxSurvivesRestart: mail still queued when a server stops is sent
// by the next server on the same database once a mail server is up: after
// failed attempts (due again after the backoff), and when the server was
// stopped in the middle of a send (due again at once, not after the lease).
func TestOutboxSurvivesRestart(t *testing.T) {
	cases := []struct {
		name  string
		hang  bool          // the first mail server accepts and never answers
		later time.Duration // how far the clock moves before the restart
	}{
		{"after failed attempts", false, time.Hour},
		{"stopped mid-send", true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			bh := newBlackhole(t)
			addr := bh.ln.Addr().String()
			if !tc.hang {
				bh.close() // nothing listens: connections are refused
			}
			c := newClock()
			cfg := Config{
				DBPath: testDB(t, filepath.Join(dir, "latch.db")), Issuer: "http://latch.test", SecretKey: bytes.Repeat([]byte{7}, 32),
				Logger: slog.New(slog.NewTextHandler(&syncBuffer{}, nil)), Now: c.Now, argon: &testArgon,
				Mail: MailConfig{SMTPURL: "smtp://" + addr, From: "latch@example.com"},
			}
			s1, err := New(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := queue(t, s1, resetMail("alice@example.com"), false); err != nil {
				t.Fatal(err)
			}
			if tc.hang {
				select {
				case <-bh.accepted:
				case <-time.After(20 * time.Second):
					t.Fatal("the worker never connected")
				}
			} else {
				eventually(t, "a failed attempt", func() bool { return s1.metrics.mail.get("failed") >= 1 })
			}
			closed := make(chan error, 1)
			go func() { closed <- s1.Close() }()
			select {
			case err := <-closed:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("Close waited for the hung mail server")
			}
			bh.close()

			mp := mailpit.StartAt(t, addr)
			c.Add(tc.later)
			s2, err := New(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			mp.WaitFor(t, "alice@example.com", "reset your password")
			eventually(t, "the outbox emptied", func() bool { return len(outboxRows(t, s2)) == 0 })
		})
	}
}

// TestOutboxDropsStaleMail: mail that waited past mailGiveUp (queued while
// no mail server was configured) is dropped, not sent with dead links.
func TestOutboxDropsStaleMail(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	cfg := Config{
		DBPath: testDB(t, filepath.Join(dir, "latch.db")), Issuer: "http://latch.test", SecretKey: bytes.Repeat([]byte{7}, 32),
		Now: c.Now, argon: &testArgon,
	}
	s1, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := queue(t, s1, resetMail("stale@example.com"), false); err != nil {
		t.Fatal(err)
	}
	s1.Close()
	c.Add(mailGiveUp + time.Minute)
	cfg.Mail.Dev = true
	s2, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := queue(t, s2, resetMail("fresh@example.com"), false); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the outbox emptied", func() bool { return len(outboxRows(t, s2)) == 0 })
	got := s2.devbox.List()
	if len(got) != 1 || got[0].To != "fresh@example.com" || s2.metrics.mail.get("abandoned") != 1 {
		t.Fatalf("delivered %+v, abandoned %d", got, s2.metrics.mail.get("abandoned"))
	}
}

func TestOutboxBackoff(t *testing.T) {
	cases := []struct {
		attempt int
		want    time.Duration
	}{{1, 10 * time.Second}, {2, 20 * time.Second}, {3, 40 * time.Second}, {7, 640 * time.Second},
		{8, mailBackoffMax}, {60, mailBackoffMax}, {1 << 30, mailBackoffMax}}
	for _, tc := range cases {
		if got := mailBackoff(tc.attempt); got != tc.want {
			t.Errorf("mailBackoff(%d) = %v, want %v", tc.attempt, got, tc.want)
		}
	}

	// A failed send is due again after the backoff, not at once.
	e := newEnv(t, func(c *Config) { c.Mail = MailConfig{SMTPURL: "smtp://127.0.0.1:1", From: "latch@example.com"} })
	if err := queue(t, e.srv, resetMail("a@example.com"), false); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a failed attempt", func() bool {
		r := outboxRows(t, e.srv)
		return len(r) == 1 && r[0].attempts == 1
	})
	if r := outboxRows(t, e.srv)[0]; r.nextAt != e.clock.Now().Add(mailBackoffBase).Unix() {
		t.Fatalf("next attempt at %d, want now + %v", r.nextAt, mailBackoffBase)
	}

	// After mailGiveUp the mail is dropped, unsent, and counted.
	e.clock.Add(mailGiveUp + time.Hour)
	e.srv.wakeOutbox()
	eventually(t, "the mail abandoned", func() bool { return len(outboxRows(t, e.srv)) == 0 })
	if n := e.srv.metrics.mail.get("abandoned"); n != 1 {
		t.Fatalf("abandoned = %d", n)
	}
}
