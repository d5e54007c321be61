// Package mailer sends the server's mail: over SMTP (wneessen/go-mail), or
// into an in-memory dev mailbox, from text and HTML templates embedded here.
//
// It owns the SMTP connection policy: STARTTLS is required unless the host
// is loopback, and implicit TLS with smtps://. It must never write the SMTP
// password, nor a message's body (which may hold a token), to a log or an
// error message.
package mailer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Message is one rendered mail.
type Message struct {
	To      string
	Kind    string // the template it came from, e.g. "verify-email"
	Subject string
	Text    string
	HTML    string
}

// Sender delivers a message, or says why it could not.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// Config is an SMTP server to send through.
type Config struct {
	// URL is smtp://[user@]host[:port] (STARTTLS; port 587 by default) or
	// smtps://[user@]host[:port] (TLS from the first byte; port 465). On a
	// loopback host, smtp:// may add ?starttls=off for a local relay that
	// offers no TLS; elsewhere that is refused.
	URL      string
	Password string // never in the URL
	From     string // the sender, "Name <addr>" or "addr"
	// Timeout bounds connecting and each SMTP command (30 s).
	Timeout time.Duration
}

// SMTP sends through one SMTP server. It is safe for concurrent use: every
// Send opens its own connection.
type SMTP struct {
	host     string
	port     int
	implicit bool // smtps://
	policy   gomail.TLSPolicy
	user     string
	password string
	from     string
	timeout  time.Duration
}

// ErrConfig marks a configuration the caller must fix; its message never
// holds the password.
var ErrConfig = errors.New("mail configuration")

func configErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
}

// NewSMTP checks c and returns a sender for it. It does not connect.
func NewSMTP(c Config) (*SMTP, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		// url's own error quotes the whole URL, which may hold a password.
		return nil, configErr("not a URL like smtp://user@host:587")
	}
	if _, has := u.User.Password(); has {
		return nil, configErr("the URL must not hold a password: give it in a file or the environment")
	}
	s := &SMTP{host: u.Hostname(), user: u.User.Username(), password: c.Password, timeout: c.Timeout}
	if s.timeout <= 0 {
		s.timeout = 30 * time.Second
	}
	switch u.Scheme {
	case "smtp":
		s.port = 587
	case "smtps":
		s.port, s.implicit = 465, true
	default:
		return nil, configErr("scheme %q: use smtp:// (STARTTLS) or smtps:// (TLS)", u.Scheme)
	}
	if s.host == "" || u.Path != "" && u.Path != "/" || u.Opaque != "" {
		return nil, configErr("%s is not a URL like smtp://user@host:587", u.Redacted())
	}
	if p := u.Port(); p != "" {
		if s.port, err = strconv.Atoi(p); err != nil || s.port < 1 || s.port > 65535 {
			return nil, configErr("port %q is not a number from 1 to 65535", p)
		}
	}
	s.policy = gomail.TLSMandatory
	if IsLoopback(s.host) {
		// A local relay (mailpit, a sidecar) rarely has a certificate;
		// take TLS when it offers STARTTLS, plain otherwise.
		s.policy = gomail.TLSOpportunistic
	}
	q := u.Query()
	for k := range q {
		if k != "starttls" {
			return nil, configErr("unknown URL parameter %q (only starttls=off, on loopback)", k)
		}
	}
	switch v := q.Get("starttls"); {
	case !q.Has("starttls"):
	case v == "off" && s.implicit:
		return nil, configErr("starttls=off makes no sense with smtps://, which is TLS from the start")
	case v == "off" && !IsLoopback(s.host):
		return nil, configErr("STARTTLS is required unless the host is loopback: %s would send passwords and reset links in clear", s.host)
	case v == "off":
		s.policy = gomail.NoTLS
	default:
		return nil, configErr("starttls=%q: the only value is off (on loopback)", v)
	}
	if s.user != "" && s.password == "" {
		return nil, configErr("the URL names user %q but no password was given", s.user)
	}
	if s.user == "" && s.password != "" {
		return nil, configErr("a password was given but the URL names no user (smtp://user@host)")
	}
	from, err := mail.ParseAddress(c.From)
	if err != nil {
		return nil, configErr("sender %q is not an address like latch@example.com", c.From)
	}
	s.from = from.String()
	return s, nil
}

// String describes the server without secrets, for logs.
func (s *SMTP) String() string {
	u := url.URL{Scheme: "smtp", Host: net.JoinHostPort(s.host, strconv.Itoa(s.port))}
	if s.implicit {
		u.Scheme = "smtps"
	}
	if s.user != "" {
		u.User = url.User(s.user)
	}
	return u.String()
}

// Send delivers m in its own connection, bounded by ctx and the timeout.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	msg := gomail.NewMsg()
	if err := msg.From(s.from); err != nil {
		return fmt.Errorf("sender: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return fmt.Errorf("recipient: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageID()
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	// go-mail heeds ctx while dialling only; a server that then stops
	// answering would hold the send for the whole timeout. Closing the
	// connection when ctx ends cuts it short (a server shutting down). On
	// smtps:// go-mail must dial itself (it does the TLS), so there the
	// timeout alone bounds it.
	sendCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var dial gomail.DialContextFunc
	if !s.implicit {
		dial = func(dctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(dctx, network, addr)
			if err == nil {
				context.AfterFunc(sendCtx, func() { conn.Close() })
			}
			return conn, err
		}
	}
	c, err := s.client(dial)
	if err != nil {
		return err
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("send %s mail via %s: %w", m.Kind, s, err)
	}
	return nil
}

func (s *SMTP) client(dial gomail.DialContextFunc) (*gomail.Client, error) {
	opts := []gomail.Option{gomail.WithPort(s.port), gomail.WithTimeout(s.timeout), gomail.WithTLSPolicy(s.policy)}
	if dial != nil {
		opts = append(opts, gomail.WithDialContextFunc(dial))
	}
	if s.implicit {
		opts = append(opts, gomail.WithSSL())
	}
	if s.user != "" {
		// Elsewhere go-mail picks the strongest mechanism the server offers
		// (TLS is mandatory there); a loopback relay without TLS gets
		// PLAIN, since loopback traffic never leaves the machine.
		mech := gomail.SMTPAuthAutoDiscover
		if IsLoopback(s.host) {
			mech = gomail.SMTPAuthPlainNoEnc
		}
		opts = append(opts, gomail.WithSMTPAuth(mech), gomail.WithUsername(s.user), gomail.WithPassword(s.password))
	}
	c, err := gomail.NewClient(s.host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtp client for %s: %w", s, err)
	}
	return c, nil
}

// IsLoopback reports whether host is a loopback IP or "localhost". Other
// names are not resolved: DNS does not prove a host is local.
func IsLoopback(host string) bool {
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
