package tui

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/vault"
)

// sessions lists the account's sessions on the server and revokes one after
// asking. Revoking this terminal's own session is a logout.
type sessions struct {
	c             *Common
	width, height int
	profile       vault.Profile

	list       []client.Session
	loaded     bool
	cursor     int
	confirming bool
	err        error
	note       string
	work       work
}

// SessionsMsg carries the account's sessions.
type SessionsMsg struct {
	Sessions []client.Session
	Err      error
}

// RevokedMsg follows revoking a session; Self is set when it was this
// terminal's own session, which ends in a logout.
type RevokedMsg struct {
	Self bool
	Err  error
}

func newSessions(c *Common, p vault.Profile) *sessions {
	return &sessions{c: c, profile: p, work: newWork(c)}
}

func (s *sessions) Init() tea.Cmd { return s.loadCmd() }

func (s *sessions) loadCmd() tea.Cmd {
	name := s.profile.Name
	return s.c.flowCmd(func(ctx context.Context) tea.Msg {
		list, err := s.c.Env.Sessions(ctx, name)
		return SessionsMsg{Sessions: list, Err: err}
	})
}

func (s *sessions) SetSize(w, h int) { s.width, s.height = w, h }

func (s *sessions) Title() string { return "Sessions · " + s.profile.Name }

func (s *sessions) Typing() bool { return false }

func (s *sessions) Update(msg tea.Msg) (Component, tea.Cmd) {
	if cmd, ok := s.work.tick(msg); ok {
		return s, cmd
	}
	switch msg := msg.(type) {
	case SessionsMsg:
		s.loaded = true
		s.work.done()
		s.err = msg.Err
		if msg.Err == nil {
			s.list = msg.Sessions
			// This terminal's session first, then the newest.
			sort.SliceStable(s.list, func(i, j int) bool {
				a, b := s.list[i], s.list[j]
				if a.Current != b.Current {
					return a.Current
				}
				return a.CreatedAt.After(b.CreatedAt)
			})
		}
		s.cursor = min(s.cursor, max(len(s.list)-1, 0))
	case RevokedMsg:
		s.work.done()
		switch {
		case msg.Err != nil:
			s.err = msg.Err
		case msg.Self:
			return s, NavigateCmd(NavigateMsg{To: pageHome, Profile: s.profile, Note: "Revoked this terminal's session: " + s.profile.Name + " is logged out."})
		default:
			s.note = "Session revoked."
			return s, s.loadCmd()
		}
	case tea.KeyPressMsg:
		return s, s.key(msg)
	}
	return s, nil
}

func (s *sessions) key(msg tea.KeyPressMsg) tea.Cmd {
	km := s.c.KeyMap
	if s.work.active() {
		return nil
	}
	if s.confirming {
		switch {
		case key.Matches(msg, km.Yes):
			s.confirming = false
			return s.revoke()
		case key.Matches(msg, km.No):
			s.confirming = false
		}
		return nil
	}
	switch {
	case key.Matches(msg, km.Back):
		return BackCmd
	case key.Matches(msg, km.Up):
		s.cursor = max(s.cursor-1, 0)
	case key.Matches(msg, km.Down):
		s.cursor = min(s.cursor+1, max(len(s.list)-1, 0))
	case key.Matches(msg, km.Reload):
		s.note, s.err = "", nil
		return s.work.start("Reading the sessions…", s.loadCmd())
	case key.Matches(msg, km.Revoke):
		if len(s.list) > 0 {
			s.confirming, s.note, s.err = true, "", nil
		}
	}
	return nil
}

func (s *sessions) revoke() tea.Cmd {
	target := s.list[s.cursor]
	name := s.profile.Name
	return s.work.start("Revoking…", s.c.flowCmd(func(ctx context.Context) tea.Msg {
		if target.Current {
			// Ending our own session is a logout: the server revokes it and
			// the tokens here are forgotten, through the same flow.
			_, err := s.c.Env.Logout(ctx, name, false, false)
			return RevokedMsg{Self: true, Err: err}
		}
		return RevokedMsg{Err: s.c.Env.RevokeSession(ctx, name, target.ID)}
	}))
}

func (s *sessions) View() string {
	st := s.c.Styles
	now := s.c.Now()
	var b strings.Builder
	count := ""
	if s.loaded {
		count = fmt.Sprintf(" · %d open", len(s.list))
	}
	b.WriteString(st.Heading.Render("Sessions of "+s.profile.Username) + st.Subtle.Render(" on "+s.profile.Server+count) + "\n\n")
	if !s.loaded && s.err == nil {
		b.WriteString(st.Subtle.Render("Reading the sessions…") + "\n")
	}
	compact := s.c.Compact()
	if len(s.list) > 0 {
		head := "  " + pad("started", 12) + pad("last used", 12)
		if !compact {
			head += pad("ends", 12) + "client"
		}
		b.WriteString(st.Label.Render(head) + "\n")
	}
	for i, se := range s.list {
		pointer := "  "
		style := st.Value
		if i == s.cursor {
			pointer, style = st.Cursor.Render("› "), st.Selected
		}
		line := pad(relative(now, se.CreatedAt), 12) + pad(relative(now, se.LastUsedAt), 12)
		if !compact {
			client := se.UserAgent
			if client == "" {
				client = "unknown client"
			}
			line += pad(relative(now, se.ExpiresAt), 12) + truncate(client, max(s.width-40, 8))
		}
		if se.Current {
			line += " (this terminal)"
		}
		b.WriteString(pointer + style.Render(line) + "\n")
	}
	b.WriteString("\n")
	switch {
	case s.work.active():
		b.WriteString(s.work.View() + "\n")
	case s.confirming:
		b.WriteString(st.Warn.Width(s.width).Render(s.confirmText()) + "\n")
	case s.err != nil:
		b.WriteString(st.Error.Width(s.width).Render(explain(s.err)) + "\n")
	case s.note != "":
		b.WriteString(st.Note.Render("✓ "+s.note) + "\n")
	}
	return b.String()
}

func (s *sessions) confirmText() string {
	se := s.list[s.cursor]
	what := fmt.Sprintf("Revoke the session started %s", relative(s.c.Now(), se.CreatedAt))
	if se.UserAgent != "" {
		what += " (" + se.UserAgent + ")"
	}
	if se.Current {
		return what + "? It is this terminal's own: you will be logged out. y yes · n no"
	}
	return what + "? Whoever holds it must log in again. y yes · n no"
}

func (s *sessions) ShortHelp() []key.Binding {
	km := s.c.KeyMap
	if s.confirming {
		return []key.Binding{km.Yes, km.No}
	}
	return []key.Binding{km.Up, km.Down, km.Revoke, km.Reload, km.Back}
}

func (s *sessions) FullHelp() [][]key.Binding {
	km := s.c.KeyMap
	return [][]key.Binding{{km.Up, km.Down}, {km.Revoke, km.Reload}}
}
