// Package tui is latch's terminal interface: screens that walk a person
// through the account flows (home, signup, login and its two-factor step,
// OAuth / OpenID Connect login in a browser or with a device code,
// dashboard, sessions, the token inspector, two-factor setup and backup
// codes, and the file vault's passphrase), built with Bubble Tea.
//
// It owns presentation only. Every step calls a flow in flows/ inside a
// tea.Cmd; the package never speaks HTTP, never handles a token itself, and
// never renders a password or a token signature unless the user asks for the
// signature. A TOTP secret is shown only while enrolling, and backup codes
// once after enrolment and otherwise only after the user confirms. Nothing
// is written to the terminal but the View: the vault never prompts under
// the interface, which asks for its passphrase on a screen of its own.
package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/vault"
)

// Common is what every screen shares: the flows environment, the terminal's
// size, the styles, the keys and the clock. The root model owns it and hands
// each screen a pointer, so a resize reaches them all.
type Common struct {
	ctx           context.Context
	Env           *flows.Env
	Width, Height int // of a screen's body, not of the whole terminal
	Styles        *Styles
	KeyMap        *KeyMap
	// Now is the clock the screens display; tests share one fake clock with
	// the Env and the server.
	Now func() time.Time
	// Tick schedules msg after d; tests replace it to drive time by hand.
	Tick func(d time.Duration, msg func(time.Time) tea.Msg) tea.Cmd

	// oauthMethod is the OAuth login offered first: "browser" or "device".
	oauthMethod string
	// openBrowser opens a URL in the user's browser, best effort.
	openBrowser func(url string) error
	// browserWait bounds the wait for the browser's answer (0 = the flow's
	// default).
	browserWait time.Duration
	// browserSlow is when the browser login says the wait is long (0 = the
	// flow's default).
	browserSlow time.Duration

	// feed brings the flows' trace events and progress messages (nil: no
	// tracing); trace is the last flow's trace, which flow screens begin
	// when they start a flow; traceDir is where s on the pane saves it
	// ("" = the current directory, else latch's home).
	feed     *TraceFeed
	trace    *traceLog
	traceDir string
}

// Context is the context every flow call runs under.
func (c *Common) Context() context.Context { return c.ctx }

// Compact reports a narrow terminal, where screens drop secondary columns.
func (c *Common) Compact() bool { return c.Width < 60 }

// Component is a screen: a Bubble Tea model that can be resized and tells
// which keys it takes.
type Component interface {
	help.KeyMap
	Init() tea.Cmd
	Update(msg tea.Msg) (Component, tea.Cmd)
	View() string
	SetSize(width, height int)
	// Title names the screen in the header.
	Title() string
	// Typing reports whether a text field has the keyboard, so that
	// printable keys (q, ?) go to it instead of quitting or toggling help.
	Typing() bool
}

// page names a screen for NavigateMsg.
type page int

const (
	pageHome page = iota
	pageSignup
	pageLogin
	pageMFA
	pageDashboard
	pageSessions
	pageInspector
	pageMFASetup
	pageBackupCodes
	pageOAuth
	pageOAuthBrowser
	pageOAuthDevice
	pageForgot
	pageMailbox
	pagePasswordChange
	pageVerifyEmail
	pageActivity
	pageUsers
)

// NavigateMsg opens a screen. Home and the dashboard are roots: opening one
// drops the screens above it, so esc never returns to a stale form.
type NavigateMsg struct {
	To      page
	Profile vault.Profile // the profile the screen is about, if any
	Note    string        // a message for the screen to show on arrival
	// Pending is a login waiting for its second factor (pageMFA).
	Pending *flows.LoginResult
	// OAuth is the login the browser and device screens run.
	OAuth *flows.OAuthRequest
	// MailKind is the kind of mail the Mailbox preselects (the newest of
	// it): the one the form that opened it wants.
	MailKind string
}

// NavigateCmd opens a screen.
func NavigateCmd(msg NavigateMsg) tea.Cmd { return func() tea.Msg { return msg } }

// BackMsg returns to the previous screen.
type BackMsg struct{}

// BackCmd returns to the previous screen.
func BackCmd() tea.Msg { return BackMsg{} }

// TickMsg is the interface's one clock: every second the root model passes
// it to the active screen, which redraws countdowns and starts background
// work that is due.
type TickMsg struct{ Now time.Time }

// ErrorMsg is a failure no screen claimed; the root model shows it in the
// status line. Screens show their own failures where they happened.
type ErrorMsg struct{ Err error }

// ErrorCmd reports err to the root model.
func ErrorCmd(err error) tea.Cmd { return func() tea.Msg { return ErrorMsg{err} } }

// work is what a screen waits on: a flow call in flight, shown as a spinner
// and a few words. While it runs the screen takes no new request.
type work struct {
	spinner spinner.Model
	what    string
}

func newWork(c *Common) work {
	return work{spinner: spinner.New(spinner.WithSpinner(spinner.Dot), spinner.WithStyle(c.Styles.Spinner))}
}

// start shows what while cmd runs.
func (w *work) start(what string, cmd tea.Cmd) tea.Cmd {
	w.what = what
	return tea.Batch(w.spinner.Tick, cmd)
}

func (w *work) done() { w.what = "" }

func (w *work) active() bool { return w.what != "" }

// tick advances the spinner; ok reports that msg was one of its frames.
func (w *work) tick(msg tea.Msg) (cmd tea.Cmd, ok bool) {
	t, ok := msg.(spinner.TickMsg)
	if !ok || !w.active() {
		return nil, ok
	}
	w.spinner, cmd = w.spinner.Update(t)
	return cmd, true
}

func (w *work) View() string { return w.spinner.View() + " " + w.what }

// flowCmd runs a flow call off the update loop.
func (c *Common) flowCmd(call func(ctx context.Context) tea.Msg) tea.Cmd {
	return func() tea.Msg { return call(c.ctx) }
}

// explain turns a flow's error into what a person reads: what happened and
// what to do next.
func explain(err error) string {
	if err == nil {
		return ""
	}
	msg := forInterface(err.Error())
	switch {
	case errors.Is(err, flows.ErrLoginRequired):
		return msg + ". Log in again (l)."
	case errors.Is(err, client.ErrUnreachable) && !strings.Contains(msg, "running"):
		return msg + ". Is the server running? Check the URL and try again."
	case errors.Is(err, client.ErrInsecureURL):
		return msg + ". Use https://, or a loopback address for a local server."
	case errors.Is(err, client.ErrRateLimited):
		return msg + "."
	case errors.Is(err, client.ErrBadResponse):
		return msg + ". Is this a latch server?"
	}
	return msg + "."
}

// short renders a duration with its two largest units: "45s", "4m 03s",
// "2h 05m", "6d 23h".
func short(d time.Duration) string {
	d = d.Round(time.Second)
	if d < 0 {
		d = -d
	}
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm %02ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh %02dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd %dh", s/86400, s%86400/3600)
}

// relative says when t is from now: "in 12m 00s", "3s ago", "now".
func relative(now, t time.Time) string {
	d := t.Sub(now).Round(time.Second)
	switch {
	case d == 0:
		return "now"
	case d > 0:
		return "in " + short(d)
	}
	return short(-d) + " ago"
}

// clock renders a local time of day, with the date when it is not today.
func clock(now, t time.Time) string {
	t, now = t.Local(), now.Local()
	if t.YearDay() == now.YearDay() && t.Year() == now.Year() {
		return t.Format("15:04:05")
	}
	return t.Format("Jan 2 15:04")
}

// truncate cuts s to w cells, marking the cut.
func truncate(s string, w int) string { return ansi.Truncate(s, max(w, 0), "…") }

// sentence joins non-empty parts with " · ".
func sentence(parts ...string) string {
	out := parts[:0:0]
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, " · ")
}

// until is how long from now to t, rounded to the second, never negative.
func until(now, t time.Time) time.Duration {
	return max(t.Sub(now).Round(time.Second), 0)
}

// pad right-pads s with spaces to w cells.
func pad(s string, w int) string {
	if n := w - lipgloss.Width(s); n > 0 {
		return s + strings.Repeat(" ", n)
	}
	return s
}

// withHelp is b with another description, for a key whose meaning depends
// on the screen.
func withHelp(b key.Binding, desc string) key.Binding {
	b.SetHelp(b.Help().Key, desc)
	return b
}

// policySummary says what a server accepts, in one line.
func policySummary(p *client.AuthConfig) string {
	parts := []string{
		fmt.Sprintf("usernames %d–%d", p.Username.MinLength, p.Username.MaxLength),
		fmt.Sprintf("passwords %d–%d, strength ≥ %d/4", p.Password.MinLength, p.Password.MaxLength, p.Password.MinScore),
	}
	if p.AccessTokenTTL > 0 {
		parts = append(parts, "access tokens last "+short(p.AccessTokenTTL))
	}
	return sentence(parts...)
}
