package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/vault"
)

// activity shows the account's recent audit events. Sign-ins, failures and
// revocations that did not come from this terminal's session are marked:
// they are what a user should look at twice.
type activity struct {
	c             *Common
	width, height int
	profile       vault.Profile

	events  []client.AuditEvent
	current string // this terminal's session id, "" when unknown
	loaded  bool
	offset  int
	err     error
	work    work
}

// ActivityMsg carries the account's events and this terminal's session id.
type ActivityMsg struct {
	Events  []client.AuditEvent
	Current string
	Err     error
}

// watched are the event types worth a mark when another session made them.
var watched = map[string]bool{
	"login.ok": true, "login.failed": true, "mfa.ok": true, "mfa.failed": true,
	"session.revoked": true, "refresh.reuse_detected": true, "password.changed": true,
	"password.reset": true, "account.locked": true, "role.changed": true,
}

func newActivity(c *Common, p vault.Profile) *activity {
	return &activity{c: c, profile: p, work: newWork(c)}
}

func (a *activity) Init() tea.Cmd { return a.loadCmd() }

func (a *activity) loadCmd() tea.Cmd {
	name := a.profile.Name
	return a.c.flowCmd(func(ctx context.Context) tea.Msg {
		page, err := a.c.Env.Events(ctx, name, false, client.EventQuery{Limit: 50})
		if err != nil {
			return ActivityMsg{Err: err}
		}
		msg := ActivityMsg{Events: page.Events}
		// Which session is this terminal's: without it nothing is marked
		// as foreign, rather than everything.
		if list, err := a.c.Env.Sessions(ctx, name); err == nil {
			for _, s := range list {
				if s.Current {
					msg.Current = s.ID
				}
			}
		}
		return msg
	})
}

func (a *activity) SetSize(w, h int) { a.width, a.height = w, h }

func (a *activity) Title() string { return "Activity · " + a.profile.Name }

func (a *activity) Typing() bool { return false }

func (a *activity) Update(msg tea.Msg) (Component, tea.Cmd) {
	if cmd, ok := a.work.tick(msg); ok {
		return a, cmd
	}
	switch msg := msg.(type) {
	case ActivityMsg:
		a.loaded = true
		a.work.done()
		a.err = msg.Err
		if msg.Err == nil {
			a.events, a.current, a.offset = msg.Events, msg.Current, 0
		}
	case tea.KeyPressMsg:
		km := a.c.KeyMap
		if a.work.active() {
			return a, nil
		}
		switch {
		case key.Matches(msg, km.Back):
			return a, BackCmd
		case key.Matches(msg, km.Up):
			a.offset = max(a.offset-1, 0)
		case key.Matches(msg, km.Down):
			a.offset = min(a.offset+1, max(len(a.events)-a.rows(), 0))
		case key.Matches(msg, km.Reload):
			a.err = nil
			return a, a.work.start("Reading the activity…", a.loadCmd())
		}
	}
	return a, nil
}

// rows is how many events fit.
func (a *activity) rows() int { return max(a.height-7, 3) }

// foreign reports whether ev deserves a mark: a watched event from a
// session that is not this terminal's.
func (a *activity) foreign(ev client.AuditEvent) bool {
	if !watched[ev.Type] {
		return false
	}
	if ev.SessionID == "" {
		return ev.Type != "role.changed" // a failure has no session: always worth a look
	}
	return a.current != "" && ev.SessionID != a.current
}

func (a *activity) View() string {
	st := a.c.Styles
	now := a.c.Now()
	var b strings.Builder
	b.WriteString(st.Heading.Render("Activity of "+a.profile.Username) + st.Subtle.Render(" · newest first · ! not this terminal") + "\n\n")
	switch {
	case !a.loaded && a.err == nil:
		b.WriteString(st.Subtle.Render("Reading the activity…") + "\n")
	case a.loaded && a.err == nil && len(a.events) == 0:
		b.WriteString(st.Subtle.Render("No events yet.") + "\n")
	}
	compact := a.c.Compact()
	if len(a.events) > 0 {
		head := "  " + pad("when", 13) + pad("event", 32) + pad("from", 16)
		if !compact {
			head += "client"
		}
		b.WriteString(st.Label.Render(head) + "\n")
	}
	end := min(a.offset+a.rows(), len(a.events))
	for _, ev := range a.events[min(a.offset, end):end] {
		line := pad(relative(now, ev.Time), 13) + pad(truncate(eventLabel(ev), 31), 32) + pad(truncate(orNone(ev.IP), 15), 16)
		if !compact {
			line += truncate(orNone(ev.UserAgent), max(a.width-65, 8))
		}
		if a.foreign(ev) {
			b.WriteString(st.Warn.Render("! "+line) + "\n")
		} else {
			b.WriteString("  " + st.Value.Render(line) + "\n")
		}
	}
	if n := len(a.events); n > a.rows() {
		b.WriteString(st.Subtle.Render(fmt.Sprintf("  %d–%d of %d", a.offset+1, end, n)) + "\n")
	}
	b.WriteString("\n")
	switch {
	case a.work.active():
		b.WriteString(a.work.View() + "\n")
	case errors.Is(a.err, client.ErrNotFound):
		b.WriteString(st.Error.Width(a.width).Render("This server keeps no audit log (it is older than latch's roles and audit).") + "\n")
	case a.err != nil:
		b.WriteString(st.Error.Width(a.width).Render(explain(a.err)) + "\n")
	}
	return b.String()
}

// eventLabel is the event type with its reason or actor, when it has one.
func eventLabel(ev client.AuditEvent) string {
	s := ev.Type
	if d := detailReason(ev.Detail); d != "" {
		s += " (" + d + ")"
	} else if ev.ActorName != "" {
		s += " by " + ev.ActorName
	}
	return s
}

// detailReason is the detail's reason or role, if any.
func detailReason(raw []byte) string {
	for _, k := range []string{`"reason":"`, `"role":"`} {
		if _, rest, ok := strings.Cut(string(raw), k); ok {
			v, _, _ := strings.Cut(rest, `"`)
			return v
		}
	}
	return ""
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (a *activity) ShortHelp() []key.Binding {
	km := a.c.KeyMap
	return []key.Binding{km.Up, km.Down, km.Reload, km.Back}
}

func (a *activity) FullHelp() [][]key.Binding {
	km := a.c.KeyMap
	return [][]key.Binding{{km.Up, km.Down}, {km.Reload, km.Back}}
}
