package mailer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"sync"
	"time"
)

// MailboxSize is how many messages the dev mailbox keeps; older ones are
// dropped.
const MailboxSize = 100

// Stored is a message the dev mailbox holds.
type Stored struct {
	ID        string    `json:"id"`
	To        string    `json:"to"`
	Subject   string    `json:"subject"`
	Kind      string    `json:"kind"`
	Text      string    `json:"text"`
	HTML      string    `json:"html"`
	CreatedAt time.Time `json:"created_at"`
}

// Mailbox is the in-memory dev mailbox (latch serve --dev, latch demo): it
// keeps the newest MailboxSize messages instead of sending them.
type Mailbox struct {
	mu     sync.Mutex
	msgs   []Stored // oldest first
	now    func() time.Time
	notify func(Stored)
}

// NewMailbox returns an empty mailbox; notify, when set, is told of each
// message as it arrives (the server logs a one-line notice).
func NewMailbox(now func() time.Time, notify func(Stored)) *Mailbox {
	if now == nil {
		now = time.Now
	}
	return &Mailbox{now: now, notify: notify}
}

// Send keeps m; it never fails.
func (b *Mailbox) Send(_ context.Context, m Message) error {
	id := make([]byte, 8)
	rand.Read(id)
	st := Stored{ID: hex.EncodeToString(id), To: m.To, Subject: m.Subject, Kind: m.Kind,
		Text: m.Text, HTML: m.HTML, CreatedAt: b.now().UTC()}
	b.mu.Lock()
	b.msgs = append(b.msgs, st)
	if n := len(b.msgs) - MailboxSize; n > 0 {
		b.msgs = append([]Stored(nil), b.msgs[n:]...)
	}
	b.mu.Unlock()
	if b.notify != nil {
		b.notify(st)
	}
	return nil
}

// List returns the messages, newest first.
func (b *Mailbox) List() []Stored {
	b.mu.Lock()
	out := append(make([]Stored, 0, len(b.msgs)), b.msgs...) // [] when empty: JSON shows no null
	b.mu.Unlock()
	slices.Reverse(out)
	return out
}
