package tui

import (
	"context"
	"errors"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/vault"
)

// passwordChange replaces the logged-in account's password: the current
// one, then the new one twice. The session stays; the server mails a notice.
type passwordChange struct {
	c             *Common
	width, height int
	profile       vault.Profile

	form     form
	missing  string
	err      error
	work     work
	cursorAt int
}

// PasswordChangedMsg follows a password change.
type PasswordChangedMsg struct{ Err error }

func newPasswordChange(c *Common, p vault.Profile) *passwordChange {
	return &passwordChange{c: c, profile: p, work: newWork(c),
		form: newForm(c, field{name: "current", secret: true}, field{name: "new", secret: true},
			field{name: "repeat", secret: true})}
}

func (s *passwordChange) Init() tea.Cmd { return s.form.focusOn(s.form.focus) }

func (s *passwordChange) SetSize(w, h int) {
	s.width, s.height = w, h
	s.form.setWidth(w - 14)
}

func (s *passwordChange) Title() string { return "Change password · " + s.profile.Name }

func (s *passwordChange) Typing() bool { return true }

func (s *passwordChange) cursorLine() int { return s.cursorAt }

func (s *passwordChange) Update(msg tea.Msg) (Component, tea.Cmd) {
	if cmd, ok := s.work.tick(msg); ok {
		return s, cmd
	}
	switch msg := msg.(type) {
	case PasswordChangedMsg:
		s.work.done()
		if msg.Err != nil {
			s.err = msg.Err
			for i := range s.form.inputs {
				s.form.inputs[i].SetValue("")
			}
			return s, s.form.focusOn(0)
		}
		return s, NavigateCmd(NavigateMsg{To: pageDashboard, Profile: s.profile,
			Note: "Password changed. A notice went to the account's email address; this session stays logged in."})
	case tea.KeyPressMsg:
		km := s.c.KeyMap
		switch {
		case s.work.active():
			return s, nil
		case key.Matches(msg, km.Back):
			return s, BackCmd
		case key.Matches(msg, km.Submit):
			return s, s.submit()
		}
	}
	cmd, changed := s.form.update(msg)
	if changed != "" {
		s.missing = ""
	}
	return s, cmd
}

func (s *passwordChange) submit() tea.Cmd {
	cur, next, again := s.form.value("current"), s.form.value("new"), s.form.value("repeat")
	s.err, s.missing = nil, ""
	switch {
	case cur == "":
		s.missing = "Type the current password."
		return s.form.focusOn(0)
	case next == "":
		s.missing = "Type the new password."
		return s.form.focusOn(1)
	case next != again:
		s.missing = "The new passwords differ: type it twice."
		s.form.inputs[2].SetValue("")
		return s.form.focusOn(2)
	}
	name := s.profile.Name
	s.c.trace.begin("password change at " + s.profile.Server)
	return s.work.start("Changing the password…", s.c.flowCmd(func(ctx context.Context) tea.Msg {
		return PasswordChangedMsg{Err: s.c.Env.ChangePassword(ctx, name, cur, next)}
	}))
}

func (s *passwordChange) View() string {
	st := s.c.Styles
	var b strings.Builder
	b.WriteString(st.Heading.Render("Change password") + st.Subtle.Render(" of "+s.profile.Username+" at "+s.profile.Server) + "\n\n")
	s.cursorAt = strings.Count(b.String(), "\n") + 2*s.form.focus
	b.WriteString(s.form.row(0, "Current", "") + "\n")
	b.WriteString(s.form.row(1, "New", "") + "\n")
	b.WriteString(s.form.row(2, "Repeat", "") + "\n")
	switch {
	case s.work.active():
		b.WriteString(s.work.View() + "\n")
	case s.missing != "":
		b.WriteString(st.Error.Width(s.width).Render(s.missing) + "\n")
	case errors.Is(s.err, client.ErrInvalidCredentials):
		b.WriteString(st.Error.Width(s.width).Render("The current password is wrong; nothing changed. Forgot it? Log out and use ctrl+r on the login screen.") + "\n")
	case s.err != nil:
		b.WriteString(st.Error.Width(s.width).Render(upperFirst(explain(s.err))) + "\n")
	default:
		b.WriteString(st.Subtle.Render("enter changes the password") + "\n")
	}
	return b.String()
}

func (s *passwordChange) ShortHelp() []key.Binding { return s.form.help() }

func (s *passwordChange) FullHelp() [][]key.Binding {
	km := s.c.KeyMap
	return [][]key.Binding{{km.Submit, km.Back}, {km.Next, km.Prev}}
}
