package server

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"time"
)

// Security notices (ASVS V6.3.7): the account's owner is mailed when its
// password or second factor changes, when it signs in from a client it has
// not used before, and when a reused refresh token ended a session. Each
// mail is queued in the transaction of the change it reports, so it goes
// out if and only if the change is committed.

// clientInfo is who made a request, for the notices: the client's IP and
// user agent. Code that runs below op (the token endpoint) has no request,
// so the handlers put it in the context.
type clientInfo struct{ ip, userAgent string }

type clientInfoKey struct{}

func withClientInfo(ctx context.Context, ip, userAgent string) context.Context {
	return context.WithValue(ctx, clientInfoKey{}, clientInfo{ip: ip, userAgent: truncate(userAgent, 200)})
}

func clientInfoFrom(ctx context.Context) clientInfo {
	ci, _ := ctx.Value(clientInfoKey{}).(clientInfo)
	return ci
}

// mailTime is how times are written in mail.
func mailTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// mail queues m to the account's address within tx, adding the username
// every kind gets.
func (s *Server) mail(ctx context.Context, tx *sql.Tx, to, username, kind string, data map[string]string) error {
	if data == nil {
		data = map[string]string{}
	}
	data["username"] = username
	m := outMail{To: to, Kind: kind, Data: data}
	if s.mailHook != nil {
		s.mailHook(m)
	}
	return s.queueMail(ctx, tx, m)
}

// notice queues a security notice of kind about uid's account, made by
// the client ci, within tx.
func (s *Server) notice(ctx context.Context, tx *sql.Tx, uid int64, kind string, ci clientInfo) error {
	var username, email string
	if err := tx.QueryRowContext(ctx, "SELECT username, email FROM users WHERE id = ?", uid).Scan(&username, &email); err != nil {
		return err
	}
	ip, ua := ci.ip, ci.userAgent
	if ip == "" {
		ip = "unknown"
	}
	if ua == "" {
		ua = "unknown"
	}
	return s.mail(ctx, tx, email, username, kind, map[string]string{
		"when": mailTime(s.now()), "ip": ip, "user_agent": ua,
	})
}

// noteSignIn records the client of a successful sign-in of uid and, when
// the account has signed in before but never from this client (user agent
// and IP), mails a new-sign-in notice. The first sign-in of an account is
// not news.
func (s *Server) noteSignIn(ctx context.Context, tx *sql.Tx, uid int64, ci clientInfo) error {
	h := sha256.Sum256([]byte(ci.userAgent + "\x00" + ci.ip))
	var known, seen bool
	err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM known_clients WHERE user_id = ?),
		EXISTS (SELECT 1 FROM known_clients WHERE user_id = ? AND hash = ?)`, uid, uid, h[:]).Scan(&known, &seen)
	if err != nil {
		return err
	}
	now := s.now().Unix()
	if _, err := tx.ExecContext(ctx, `INSERT INTO known_clients (user_id, hash, first_seen, last_seen) VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id, hash) DO UPDATE SET last_seen = excluded.last_seen`, uid, h[:], now, now); err != nil {
		return err
	}
	if !known || seen {
		return nil
	}
	return s.notice(ctx, tx, uid, "new-sign-in", ci)
}
