package mailer

import (
	"fmt"
	"testing"
	"time"
)

func TestMailbox(t *testing.T) {
	var notified []string
	b := NewMailbox(func() time.Time { return time.Unix(100, 0) }, func(s Stored) { notified = append(notified, s.Subject) })
	if got := b.List(); got == nil || len(got) != 0 {
		// nil would show as null in GET /dev/mail, not [].
		t.Fatalf("new mailbox: %#v, want an empty list", got)
	}
	for i := range MailboxSize + 5 {
		b.Send(t.Context(), Message{To: "a@example.com", Kind: "verify-email", Subject: fmt.Sprint(i), Text: "t", HTML: "h"})
	}
	got := b.List()
	if len(got) != MailboxSize {
		t.Fatalf("holds %d, want %d", len(got), MailboxSize)
	}
	if got[0].Subject != fmt.Sprint(MailboxSize+4) || got[len(got)-1].Subject != "5" {
		t.Fatalf("order: newest %q, oldest %q", got[0].Subject, got[len(got)-1].Subject)
	}
	if got[0].ID == "" || got[0].ID == got[1].ID || !got[0].CreatedAt.Equal(time.Unix(100, 0)) || got[0].Kind != "verify-email" {
		t.Fatalf("message %+v", got[0])
	}
	if len(notified) != MailboxSize+5 {
		t.Fatalf("notified %d times", len(notified))
	}
	got[0].Subject = "changed"
	if b.List()[0].Subject == "changed" {
		t.Fatal("List shares the mailbox's memory")
	}
}
