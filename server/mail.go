package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/latch-dev/latch/mailer"
)

// MailConfig says how the server sends mail.
type MailConfig struct {
	// SMTPURL is smtp://user@host:port or smtps://user@host:port; STARTTLS
	// is required on smtp:// unless the host is loopback.
	SMTPURL string
	// SMTPPassword is the SMTP password (from a file or the environment,
	// never a flag).
	SMTPPassword string
	// From is the sender address.
	From string
	// Dev keeps mail in an in-memory mailbox, listed at GET /dev/mail. With
	// an SMTPURL too, mail is sent and a copy kept.
	Dev bool
}

// DevMailFrom is the sender in --dev when no --mail-from is given.
const DevMailFrom = "latch <latch@localhost>"

// newSender builds what the outbox worker sends through, or nil when mail
// is only queued (no SMTP server, not --dev).
func (s *Server) newSender() (mailer.Sender, error) {
	mc := s.cfg.Mail
	var senders multiSender
	if mc.SMTPURL != "" {
		from := mc.From
		if from == "" && mc.Dev {
			from = DevMailFrom
		}
		smtp, err := mailer.NewSMTP(mailer.Config{URL: mc.SMTPURL, Password: mc.SMTPPassword, From: from})
		if err != nil {
			return nil, err
		}
		s.log.Info("mail goes out by SMTP", "server", smtp.String())
		senders = append(senders, smtp)
	}
	if mc.Dev {
		s.devbox = mailer.NewMailbox(s.now, func(m mailer.Stored) {
			// A one-line notice; the body holds tokens, so it stays in
			// the mailbox, behind /dev/mail.
			s.log.Info("dev mail: see GET /dev/mail", "to", m.To, "kind", m.Kind, "subject", m.Subject)
		})
		senders = append(senders, s.devbox)
	}
	switch len(senders) {
	case 0:
		s.log.Warn("no mail server configured (--smtp-url): mail is kept in the outbox until one is")
		return nil, nil
	case 1:
		return senders[0], nil
	}
	return senders, nil
}

// multiSender sends through each in turn: SMTP first, so that a failure
// leaves no copy in the dev mailbox that a retry would duplicate.
type multiSender []mailer.Sender

func (ms multiSender) Send(ctx context.Context, m mailer.Message) error {
	for _, x := range ms {
		if err := x.Send(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// handleDevMail lists the dev mailbox (only with MailConfig.Dev).
func (s *Server) handleDevMail(w http.ResponseWriter, r *http.Request) {
	if s.devbox == nil {
		s.writeError(w, r, newProblem(http.StatusNotFound, probNotFound, "Not found",
			"The dev mailbox exists only in latch serve --dev and latch demo."))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": s.devbox.List()})
}

// outMail is one message to queue: a template (Kind) and what it says.
//
// Kinds and their Data keys (every kind also gets "username"):
//   - verify-email: link, token, expires — on signup and email change
//   - password-reset: link, token, expires
//   - account-exists: — a signup tried an address that has an account
//   - email-changed: old_email, new_email — to the old address
//   - password-changed, password-reset-done, mfa-enabled, mfa-disabled,
//     backup-codes-regenerated, new-sign-in: when, ip, user_agent
//   - refresh-reuse: when, ip, user_agent — a reused refresh token
//     revoked a session
//
// The subjects are mailer.Subjects; the templates are in mailer/templates.
type outMail struct {
	To   string
	Kind string
	Data map[string]string
}

// sealedMail is what an outbox row seals.
type sealedMail struct {
	To   string            `json:"to"`
	Data map[string]string `json:"data"`
}

func outboxAD(kind string) []byte { return []byte("outbox " + kind) }

// sealMail renders m and seals it as an outbox row holds it. Rendering
// now catches an unknown kind or a missing key in the caller's tests, not
// hours later in the worker.
func (s *Server) sealMail(m outMail) ([]byte, error) {
	if _, err := mailer.Render(m.Kind, m.To, m.Data); err != nil {
		return nil, fmt.Errorf("queue mail: %w", err)
	}
	plain, err := json.Marshal(sealedMail{To: m.To, Data: m.Data})
	if err != nil {
		return nil, err
	}
	return s.sealer.seal(plain, outboxAD(m.Kind)), nil
}

// queueMail puts m in the outbox within tx, so that the mail goes out if
// and only if the change it reports is committed; a worker sends it, with
// retries, and a restart loses none.
func (s *Server) queueMail(ctx context.Context, tx *sql.Tx, m outMail) error {
	if m.To == "" {
		return errors.New("queue mail: no recipient")
	}
	sealed, err := s.sealMail(m)
	if err != nil {
		return err
	}
	now := s.now().Unix()
	if _, err := tx.ExecContext(ctx, "INSERT INTO outbox (kind, sealed, created_at, next_at) VALUES (?, ?, ?, ?)",
		m.Kind, sealed, now, now); err != nil {
		return fmt.Errorf("queue %s mail: %w", m.Kind, err)
	}
	s.metrics.mail.inc("queued")
	// The worker claims rows in a write transaction of its own, which
	// waits for this one to end: it sees the row once committed, and
	// nothing if tx rolls back.
	s.wakeOutbox()
	return nil
}
