package tui

import (
	"context"
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/vault"
)

// mailbox lists a development server's mail (latch serve --dev, latch
// demo), newest first; enter opens one to read its text, and u hands its
// token to the screen below (the reset or the verify form).
type mailbox struct {
	c             *Common
	width, height int
	profile       vault.Profile
	kind          string // preselect the newest mail of this kind

	msgs   []client.DevMessage
	loaded bool
	err    error
	cursor int
	open   bool // reading msgs[cursor]
	warn   string
}

// MailboxMsg carries the dev mailbox's messages.
type MailboxMsg struct {
	Messages []client.DevMessage
	Err      error
}

func newMailbox(c *Common, p vault.Profile, kind string) *mailbox {
	return &mailbox{c: c, profile: p, kind: kind}
}

func (m *mailbox) Init() tea.Cmd {
	server := m.profile.Server
	return m.c.flowCmd(func(ctx context.Context) tea.Msg {
		msgs, err := m.c.Env.DevMail(ctx, server)
		return MailboxMsg{Messages: msgs, Err: err}
	})
}

func (m *mailbox) SetSize(w, h int) { m.width, m.height = w, h }

func (m *mailbox) Title() string { return "Mailbox" }

func (m *mailbox) Typing() bool { return false }

func (m *mailbox) Update(msg tea.Msg) (Component, tea.Cmd) {
	switch msg := msg.(type) {
	case MailboxMsg:
		first := !m.loaded
		m.msgs, m.err, m.loaded = msg.Messages, msg.Err, true
		m.cursor = min(m.cursor, max(len(m.msgs)-1, 0))
		if first {
			for i, mm := range m.msgs {
				if mm.Kind == m.kind {
					m.cursor = i
					break
				}
			}
		}
	case tea.KeyPressMsg:
		return m, m.key(msg)
	}
	return m, nil
}

func (m *mailbox) key(msg tea.KeyPressMsg) tea.Cmd {
	km := m.c.KeyMap
	m.warn = ""
	switch {
	case key.Matches(msg, km.Back) && m.open:
		m.open = false
	case key.Matches(msg, km.Back):
		return BackCmd
	case key.Matches(msg, km.Reload):
		return m.Init()
	case len(m.msgs) == 0:
	case key.Matches(msg, km.Up) && !m.open:
		m.cursor = max(m.cursor-1, 0)
	case key.Matches(msg, km.Down) && !m.open:
		m.cursor = min(m.cursor+1, len(m.msgs)-1)
	case key.Matches(msg, km.Open):
		m.open = true
	case key.Matches(msg, km.UseToken):
		cur := m.msgs[m.cursor]
		tok := cur.Token()
		if tok == "" {
			m.warn = "This mail carries no token: choose a \"reset your password\" or \"confirm your email\" mail."
			return nil
		}
		return func() tea.Msg { return MailTokenMsg{Token: tok, Kind: cur.Kind} }
	}
	return nil
}

func (m *mailbox) View() string {
	st := m.c.Styles
	var b strings.Builder
	b.WriteString(st.Heading.Render("Mailbox") + st.Subtle.Render(" of the development server "+m.profile.Server) + "\n\n")
	switch {
	case !m.loaded:
		b.WriteString(st.Subtle.Render("reading GET /dev/mail…") + "\n")
		return b.String()
	case m.err != nil:
		b.WriteString(st.Error.Width(m.width).Render(upperFirst(explain(m.err))) + "\n")
		return b.String()
	case len(m.msgs) == 0:
		b.WriteString(st.Subtle.Render("No mail yet. Sign up, or ask for a reset mail, then press r.") + "\n")
		return b.String()
	}
	if m.open {
		cur := m.msgs[m.cursor]
		b.WriteString(st.Label.Render(pad("To", 9)) + " " + cur.To + "\n")
		b.WriteString(st.Label.Render(pad("Subject", 9)) + " " + cur.Subject + "\n")
		b.WriteString(st.Label.Render(pad("Sent", 9)) + " " + clock(m.c.Now(), cur.CreatedAt) + "\n\n")
		// Lines are cut, not wrapped: a wrapped link reads as two, and
		// the token has a line of its own (and u takes it).
		for _, line := range strings.Split(strings.TrimSpace(cur.Text), "\n") {
			b.WriteString(st.Value.Render(truncate(line, max(m.width, 10))) + "\n")
		}
	} else {
		now := m.c.Now()
		for i, msg := range m.msgs {
			line := fmt.Sprintf("%-8s  %-22s  %s", clock(now, msg.CreatedAt), truncate(msg.To, 22), msg.Subject)
			line = truncate(line, max(m.width-2, 10))
			if i == m.cursor {
				b.WriteString(st.Selected.Render("› "+line) + "\n")
			} else {
				b.WriteString("  " + line + "\n")
			}
		}
	}
	if m.warn != "" {
		b.WriteString("\n" + st.Warn.Width(m.width).Render(m.warn) + "\n")
	}
	return b.String()
}

func (m *mailbox) ShortHelp() []key.Binding {
	km := m.c.KeyMap
	if m.open {
		return []key.Binding{km.UseToken, withHelp(km.Back, "list")}
	}
	return []key.Binding{withHelp(km.Open, "read"), km.UseToken, km.Reload, km.Back}
}

func (m *mailbox) FullHelp() [][]key.Binding {
	km := m.c.KeyMap
	return [][]key.Binding{{km.Up, km.Down, withHelp(km.Open, "read")}, {km.UseToken, km.Reload, km.Back}}
}
