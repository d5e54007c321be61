package server

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Audit event types.
const (
	evSignup          = "signup"
	evLoginOK         = "login.ok"
	evLoginFailed     = "login.failed" // Detail["reason"]: bad_credentials, locked, mfa_required…; never the password
	evMFAOK           = "mfa.ok"
	evMFAFailed       = "mfa.failed"
	evRefreshReuse    = "refresh.reuse_detected"
	evLogout          = "logout"
	evSessionRevoked  = "session.revoked" // ActorID: who revoked it
	evPasswordChanged = "password.changed"
	evPasswordReset   = "password.reset"
	evEmailVerified   = "email.verified"
	evRoleChanged     = "role.changed" // Detail["role"], Detail["change"]: granted|revoked
	evAccountLocked   = "account.locked"
	evAccountUnlocked = "account.unlocked"
)

// DefaultAuditRetention is how long audit events are kept.
const DefaultAuditRetention = 90 * 24 * time.Hour

// auditEvent is one row of the audit log. Time, client IP, user agent and
// request id come from the request; never a secret in Detail.
type auditEvent struct {
	Type      string
	UserID    int64 // the account the event is about; 0 when none is known (a failed login for an unknown name)
	ActorID   int64 // who did it, when not the account itself (an admin); 0 otherwise
	SessionID string
	Detail    map[string]string
}

// eventJSON is an event as /auth/events, /admin/events and the stream show it.
type eventJSON struct {
	ID        int64             `json:"id"`
	Time      time.Time         `json:"time"`
	Type      string            `json:"type"`
	UserID    int64             `json:"user_id"`
	Username  string            `json:"username"`
	ActorID   int64             `json:"actor_id"`
	ActorName string            `json:"actor_name"`
	IP        string            `json:"ip"`
	UserAgent string            `json:"user_agent"`
	SessionID string            `json:"session_id"`
	RequestID string            `json:"request_id"`
	Detail    map[string]string `json:"detail"`
}

// audit records ev within tx, so that the event exists if and only if the
// change it records is committed; its line for --audit-log is written when
// tx commits (auditLog.settle), never for a rolled-back change. r may be
// nil below op (the token endpoint): the client and request id then come
// from ctx (withClientInfo, the request-id middleware).
func (s *Server) audit(ctx context.Context, tx *sql.Tx, r *http.Request, ev auditEvent) error {
	if s.cfg.NoAudit {
		return nil
	}
	ci, rid := clientInfoFrom(ctx), requestIDFrom(ctx)
	if r != nil {
		ci, rid = s.requestClient(r), requestIDFrom(r.Context())
	}
	if ev.Detail == nil {
		ev.Detail = map[string]string{}
	}
	detail, err := json.Marshal(ev.Detail)
	if err != nil {
		return err
	}
	e := eventJSON{Time: s.now().UTC().Truncate(time.Millisecond), Type: ev.Type, UserID: ev.UserID,
		ActorID: ev.ActorID, IP: ci.ip, UserAgent: ci.userAgent, SessionID: ev.SessionID, RequestID: rid, Detail: ev.Detail}
	// The names are copied into the row (RETURNING them saves a query):
	// the record must still say who after an account is gone.
	err = tx.QueryRowContext(ctx, `INSERT INTO audit_events
		(time_ms, type, user_id, username, actor_id, actor_name, ip, user_agent, session_id, request_id, detail)
		VALUES (?, ?, ?, coalesce((SELECT username FROM users WHERE id = ?), ''), ?,
		        coalesce((SELECT username FROM users WHERE id = ?), ''), ?, ?, ?, ?, ?)
		RETURNING id, username, actor_name`,
		e.Time.UnixMilli(), e.Type, nullID(ev.UserID), ev.UserID, nullID(ev.ActorID), ev.ActorID,
		e.IP, e.UserAgent, e.SessionID, e.RequestID, string(detail)).Scan(&e.ID, &e.Username, &e.ActorName)
	if err != nil {
		return err
	}
	s.aud.pend(tx, e)
	return nil
}

// auditTx records ev in a transaction of its own, for events with no change
// to go with (a failed login). A failure is logged: the answer stands.
func (s *Server) auditTx(r *http.Request, ev auditEvent) {
	if s.cfg.NoAudit {
		return
	}
	ctx := r.Context()
	if err := s.st.tx(ctx, func(tx *sql.Tx) error { return s.audit(ctx, tx, r, ev) }); err != nil {
		s.log.Warn("audit event not recorded", "type", ev.Type, "err", err)
	}
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// auditLog is the --audit-log stream: events wait with their transaction
// and are written, one JSON object a line, when it commits.
type auditLog struct {
	mu      sync.Mutex
	w       io.Writer
	pending map[*sql.Tx][]eventJSON
}

func newAuditLog(w io.Writer) *auditLog {
	return &auditLog{w: w, pending: map[*sql.Tx][]eventJSON{}}
}

func (l *auditLog) pend(tx *sql.Tx, e eventJSON) {
	if l.w == nil {
		return
	}
	l.mu.Lock()
	l.pending[tx] = append(l.pending[tx], e)
	l.mu.Unlock()
}

// settle writes tx's events if it committed and forgets them either way.
// It runs under the store's write lock, so lines come in commit order.
func (l *auditLog) settle(tx *sql.Tx, committed bool) {
	if l.w == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	evs := l.pending[tx]
	delete(l.pending, tx)
	if !committed {
		return
	}
	for _, e := range evs {
		b, _ := json.Marshal(e)
		// A failing sink must not fail the change, which is committed
		// and recorded in the table already.
		l.w.Write(append(b, '\n'))
	}
}

// pruneAudit deletes the events older than the retention, in the janitor's
// transaction: it moves the cutoff the append-only trigger allows deleting
// below, then deletes.
func (s *Server) pruneAudit(ctx context.Context, tx *sql.Tx, now time.Time) error {
	cutoff := now.Add(-s.cfg.AuditRetention).UnixMilli()
	if _, err := tx.ExecContext(ctx, "UPDATE audit_prune SET cutoff_ms = ? WHERE one = 1", cutoff); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, "DELETE FROM audit_events WHERE time_ms < ?", cutoff)
	return err
}

type requestIDKey struct{}

// saneRequestID reports whether a caller's X-Request-Id is worth keeping:
// short, and no characters that could forge a log line or a header. (Not a
// regexp: a package-level one cost every latch process, latch token
// included, 900 allocations at start-up.)
func saneRequestID(id string) bool {
	return len(id) >= 1 && len(id) <= 64 && strings.IndexFunc(id, func(c rune) bool {
		return !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("._:@/+=-", c))
	}) < 0
}

// withRequestID gives r a request id, the caller's X-Request-Id if sane or a
// random one, answers it in h and puts it in r's context for the audit log,
// with the client's IP and user agent (code below op sees only the context).
func (s *Server) withRequestID(r *http.Request, h http.Header) *http.Request {
	id := r.Header.Get("X-Request-Id")
	if !saneRequestID(id) {
		b := make([]byte, 12)
		rand.Read(b)
		id = hex.EncodeToString(b)
	}
	h.Set("X-Request-Id", id)
	ctx := withClientInfo(context.WithValue(r.Context(), requestIDKey{}, id), s.clientIP(r), r.UserAgent())
	return r.WithContext(ctx)
}

func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// loginFailed records a refused first factor, in a transaction of its own.
// uid is 0 for an unknown identifier, which is not recorded: users type
// passwords into the name field.
func (s *Server) loginFailed(r *http.Request, uid int64, reason string) {
	s.auditTx(r, auditEvent{Type: evLoginFailed, UserID: uid, Detail: map[string]string{"reason": reason}})
}

// endSessions runs query, an UPDATE of sessions … RETURNING id, user_id, and
// records ev for each session it ended, with the session's id and account.
// The client and request id come from ctx (see audit).
func (s *Server) endSessions(ctx context.Context, tx *sql.Tx, ev auditEvent, query string, args ...any) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	type ended struct {
		sid string
		uid int64
	}
	list, err := scanRows(rows, err, func(row rowScanner) (e ended, err error) {
		err = row.Scan(&e.sid, &e.uid)
		return e, err
	})
	if err != nil {
		return err
	}
	for _, e := range list {
		ev.UserID, ev.SessionID = e.uid, e.sid
		if err := s.audit(ctx, tx, nil, ev); err != nil {
			return err
		}
	}
	return nil
}
