package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/latch-dev/latch/mailer"
)

// The outbox worker's timing. A failed send waits mailBackoffBase, then
// twice as long each time, up to mailBackoffMax; after mailGiveUp a mail is
// dropped (its links have long expired). A claimed row is leased for
// mailLease, so a crash mid-send (or a second server on the same database)
// retries it only after that.
const (
	outboxBatch     = 20
	mailBackoffBase = 10 * time.Second
	mailBackoffMax  = 15 * time.Minute
	mailGiveUp      = 72 * time.Hour
	mailLease       = 2 * time.Minute
	mailSendTimeout = time.Minute
	// outboxIdle is the longest the worker sleeps without looking, so a
	// row another process queued is found without a wake-up.
	outboxIdle = time.Minute
)

// outbox is the worker's state; its zero value (no sender) only queues.
type outbox struct {
	wake   chan struct{} // buffered 1: a send is due now
	stop   context.CancelFunc
	done   chan struct{}
	sender mailer.Sender
}

// mailBackoff is how long to wait after the n-th failed attempt (n ≥ 1).
func mailBackoff(n int) time.Duration {
	d := mailBackoffBase
	for i := 1; i < n && d < mailBackoffMax; i++ {
		d *= 2
	}
	return min(d, mailBackoffMax)
}

// startOutbox starts the worker when mail has somewhere to go.
func (s *Server) startOutbox() error {
	s.outbox.wake = make(chan struct{}, 1)
	sender, err := s.newSender()
	if err != nil {
		return err
	}
	if sender == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.outbox.sender, s.outbox.stop, s.outbox.done = sender, cancel, make(chan struct{})
	go s.runOutbox(ctx)
	return nil
}

// stopOutbox ends the worker, interrupting a send in progress (its mail
// stays queued), and waits for it.
func (s *Server) stopOutbox() {
	if s.outbox.stop != nil {
		s.outbox.stop()
		<-s.outbox.done
	}
}

// wakeOutbox tells the worker to look now; it never blocks.
func (s *Server) wakeOutbox() {
	select {
	case s.outbox.wake <- struct{}{}:
	default:
	}
}

func (s *Server) runOutbox(ctx context.Context) {
	defer close(s.outbox.done)
	for {
		wait := s.deliverDue(ctx)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.outbox.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

type queuedMail struct {
	id, attempts int64
	kind         string
	sealed       []byte
	lastError    string
	created      int64
}

// deliverDue sends every due mail and says how long to sleep until the
// next one is due. Sends happen outside any transaction: a slow or dead
// SMTP server holds no database lock, so requests never wait for it.
func (s *Server) deliverDue(ctx context.Context) time.Duration {
	for range 1000 { // bounded: failed rows move into the future
		batch, err := s.claimMail(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("outbox: read queued mail", "err", err)
			}
			return outboxIdle
		}
		if len(batch) == 0 {
			break
		}
		for _, q := range batch {
			if ctx.Err() != nil {
				s.releaseMail(q)
				continue
			}
			s.deliver(ctx, q)
		}
	}
	var next sql.NullInt64
	if err := s.st.db.QueryRowContext(ctx, "SELECT MIN(next_at) FROM outbox").Scan(&next); err != nil || !next.Valid {
		return outboxIdle
	}
	return min(max(time.Unix(next.Int64, 0).Sub(s.now()), 0), outboxIdle)
}

// claimMail leases a batch of due rows in one write transaction.
func (s *Server) claimMail(ctx context.Context) ([]queuedMail, error) {
	now := s.now()
	var batch []queuedMail
	err := s.st.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, kind, sealed, attempts, created_at, last_error FROM outbox
			WHERE next_at <= ? ORDER BY next_at, id LIMIT ?`, now.Unix(), outboxBatch)
		batch, err = scanRows(rows, err, func(row rowScanner) (q queuedMail, err error) {
			err = row.Scan(&q.id, &q.kind, &q.sealed, &q.attempts, &q.created, &q.lastError)
			return q, err
		})
		if err != nil {
			return err
		}
		for _, q := range batch {
			if _, err := tx.ExecContext(ctx, "UPDATE outbox SET next_at = ? WHERE id = ?", now.Add(mailLease).Unix(), q.id); err != nil {
				return err
			}
		}
		return nil
	})
	return batch, err
}

// deliver sends one claimed mail and records the outcome.
func (s *Server) deliver(ctx context.Context, q queuedMail) {
	log := s.log.With(slog.Int64("mail_id", q.id), slog.String("kind", q.kind))
	msg, err := s.openMail(q)
	if err != nil {
		// Sealed under another key, or a template since removed: no retry
		// can help.
		log.Error("outbox: dropping mail that cannot be rendered", "err", err)
		s.finishMail(q.id, "abandoned")
		return
	}
	if age := s.now().Sub(time.Unix(q.created, 0)); age > mailGiveUp {
		// Its links have expired, and a notice this late misleads more
		// than it tells (mail queued while no sender was configured).
		log.Error("outbox: giving up on mail", "age", age.Round(time.Minute), "attempts", q.attempts, "last_error", q.lastError)
		s.finishMail(q.id, "abandoned")
		return
	}
	sctx, cancel := context.WithTimeout(ctx, mailSendTimeout)
	err = s.outbox.sender.Send(sctx, msg)
	cancel()
	if err == nil {
		log.Info("mail sent", "attempt", q.attempts+1)
		s.finishMail(q.id, "sent")
		return
	}
	if ctx.Err() != nil { // shutting down: not the mail's fault
		s.releaseMail(q)
		return
	}
	n := q.attempts + 1
	s.metrics.mail.inc("failed")
	wait := mailBackoff(int(n))
	log.Warn("outbox: mail not sent, will retry", "attempt", n, "retry_in", wait, "err", err)
	errText := err.Error()
	if len(errText) > 500 {
		errText = errText[:500]
	}
	s.updateMail(func(tx *sql.Tx) error {
		_, err := tx.Exec("UPDATE outbox SET attempts = ?, next_at = ?, last_error = ? WHERE id = ?",
			n, s.now().Add(wait).Unix(), errText, q.id)
		return err
	})
}

func (s *Server) openMail(q queuedMail) (mailer.Message, error) {
	plain, err := s.sealer.open(q.sealed, outboxAD(q.kind))
	if err != nil {
		return mailer.Message{}, fmt.Errorf("unseal: %w", err)
	}
	var sm sealedMail
	if err := json.Unmarshal(plain, &sm); err != nil {
		return mailer.Message{}, fmt.Errorf("decode: %w", err)
	}
	return mailer.Render(q.kind, sm.To, sm.Data)
}

// finishMail deletes a row that was sent or is given up, and counts it.
func (s *Server) finishMail(id int64, result string) {
	s.metrics.mail.inc(result)
	s.updateMail(func(tx *sql.Tx) error {
		_, err := tx.Exec("DELETE FROM outbox WHERE id = ?", id)
		return err
	})
}

// releaseMail makes a claimed row due again at once (the server is
// stopping; the next start sends it).
func (s *Server) releaseMail(q queuedMail) {
	s.updateMail(func(tx *sql.Tx) error {
		_, err := tx.Exec("UPDATE outbox SET next_at = ? WHERE id = ?", s.now().Unix(), q.id)
		return err
	})
}

// updateMail records an outcome even while the worker's context is being
// cancelled: losing it would send the mail twice.
func (s *Server) updateMail(fn func(*sql.Tx) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.st.tx(ctx, fn); err != nil && !errors.Is(err, sql.ErrConnDone) {
		s.log.Error("outbox: record a send", "err", err)
	}
}
