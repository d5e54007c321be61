package tui

import (
	"context"
	"errors"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/vault"
)

// forgot is the forgotten-password screen, reached from the login screen:
// first it asks the server to mail a reset token, then it takes the token
// (pasted, or from the dev Mailbox), the new password and, for an account
// with two-factor on, a code.
type forgot struct {
	c             *Common
	width, height int
	profile       vault.Profile

	resetting bool // the second step: the reset form
	request   form // identifier
	reset     form // token, password, repeat, code
	needCode  bool // the server said the account has two-factor on
	mailbox   bool // the server has a dev mailbox

	note, missing string
	err           error
	work          work
	cursorAt      int
}

// ForgotSentMsg follows the request for a reset mail.
type ForgotSentMsg struct {
	Target flows.RecoveryTarget
	Err    error
}

// ResetDoneMsg follows a password reset.
type ResetDoneMsg struct {
	Result *flows.ResetResult
	Err    error
}

// DevMailboxMsg says whether the server has a dev mailbox.
type DevMailboxMsg struct{ OK bool }

// MailTokenMsg carries the token of a mail chosen in the Mailbox to the
// screen below it, which the root model returns to first.
type MailTokenMsg struct {
	Token string
	Kind  string // verify-email or password-reset
}

func newForgot(c *Common, p vault.Profile) *forgot {
	f := &forgot{c: c, profile: p, work: newWork(c),
		request: newForm(c, field{name: "identifier", placeholder: "username or email"}),
		reset: newForm(c,
			field{name: "token", placeholder: "paste the token from the mail", secret: true},
			field{name: "password", secret: true},
			field{name: "repeat", secret: true},
			field{name: "code", placeholder: "only with two-factor on"}),
	}
	f.request.inputs[0].SetValue(p.Username)
	return f
}

func (f *forgot) Init() tea.Cmd {
	server := f.profile.Server
	probe := f.c.flowCmd(func(ctx context.Context) tea.Msg {
		_, err := f.c.Env.DevMail(ctx, server)
		return DevMailboxMsg{OK: err == nil}
	})
	return tea.Batch(probe, f.form().focusOn(f.form().focus))
}

func (f *forgot) form() *form {
	if f.resetting {
		return &f.reset
	}
	return &f.request
}

func (f *forgot) SetSize(w, h int) {
	f.width, f.height = w, h
	f.request.setWidth(w - 14)
	f.reset.setWidth(w - 14)
}

func (f *forgot) Title() string { return "Forgot password" }

func (f *forgot) Typing() bool { return true }

func (f *forgot) cursorLine() int { return f.cursorAt }

func (f *forgot) Update(msg tea.Msg) (Component, tea.Cmd) {
	if cmd, ok := f.work.tick(msg); ok {
		return f, cmd
	}
	switch msg := msg.(type) {
	case DevMailboxMsg:
		f.mailbox = msg.OK
		return f, nil
	case ForgotSentMsg:
		f.work.done()
		if msg.Err != nil {
			f.err = msg.Err
			return f, nil
		}
		f.resetting = true
		f.note = "If " + msg.Target.Identifier + " has an account, a reset mail is on its way. Paste its token below (it works once, for 30 minutes)."
		return f, f.reset.focusOn(0)
	case ResetDoneMsg:
		f.work.done()
		return f, f.resetDone(msg)
	case MailTokenMsg:
		if msg.Kind != "password-reset" {
			f.err = errors.New("that mail is not a password reset; choose the one titled \"reset your password\"")
			return f, nil
		}
		f.resetting, f.err = true, nil
		f.reset.inputs[0].SetValue(msg.Token)
		f.note = "Token taken from the Mailbox. Choose the new password."
		return f, f.reset.focusOn(1)
	case tea.KeyPressMsg:
		km := f.c.KeyMap
		switch {
		case f.work.active():
			return f, nil
		case key.Matches(msg, km.Back):
			return f, BackCmd
		case f.mailbox && key.Matches(msg, km.Mailbox):
			return f, NavigateCmd(NavigateMsg{To: pageMailbox, Profile: f.profile, MailKind: "password-reset"})
		case key.Matches(msg, km.Submit):
			return f, f.submit()
		}
	}
	cmd, changed := f.form().update(msg)
	if changed != "" {
		f.missing = ""
	}
	return f, cmd
}

func (f *forgot) submit() tea.Cmd {
	f.err, f.missing = nil, ""
	p := f.profile
	if !f.resetting {
		id := strings.TrimSpace(f.request.value("identifier"))
		if id == "" {
			f.missing = "Type your username or email."
			return nil
		}
		f.c.trace.begin("password reset mail from " + p.Server)
		return f.work.start("Asking for a reset mail…", f.c.flowCmd(func(ctx context.Context) tea.Msg {
			t, err := f.c.Env.ForgotPassword(ctx, flows.RecoveryTarget{Profile: p.Name, Server: p.Server, Identifier: id})
			return ForgotSentMsg{Target: t, Err: err}
		}))
	}
	tok, pw, again := strings.TrimSpace(f.reset.value("token")), f.reset.value("password"), f.reset.value("repeat")
	code := strings.TrimSpace(f.reset.value("code"))
	switch {
	case tok == "":
		f.missing = "Paste the token from the mail."
		return f.reset.focusOn(0)
	case pw == "":
		f.missing = "Type the new password."
		return f.reset.focusOn(1)
	case pw != again:
		f.missing = "The passwords differ: type the new one twice."
		f.reset.inputs[2].SetValue("")
		return f.reset.focusOn(2)
	case f.needCode && code == "":
		f.missing = "This account has two-factor on: type a code from your app, or a backup code."
		return f.reset.focusOn(3)
	}
	f.c.trace.begin("password reset at " + p.Server)
	return f.work.start("Resetting the password…", f.c.flowCmd(func(ctx context.Context) tea.Msg {
		res, err := f.c.Env.ResetPassword(ctx, flows.ResetRequest{Profile: p.Name, Server: p.Server, Token: tok,
			NewPassword: pw, Code: code})
		return ResetDoneMsg{Result: res, Err: err}
	}))
}

func (f *forgot) resetDone(msg ResetDoneMsg) tea.Cmd {
	switch {
	case errors.Is(msg.Err, client.ErrMFARequired):
		f.needCode = true
		f.missing = "This account has two-factor on: type a code from your app, or a backup code. The token is still good."
		return f.reset.focusOn(3)
	case errors.Is(msg.Err, client.ErrInvalidCode):
		f.err = msg.Err
		f.reset.inputs[3].SetValue("")
		return f.reset.focusOn(3)
	case msg.Err != nil:
		f.err = msg.Err
		return nil
	}
	note := "Password reset: the server ended every session of the account. Log in with the new password (l)."
	if len(msg.Result.LoggedOut) > 0 {
		note = "Password reset: every session ended, so " + strings.Join(msg.Result.LoggedOut, ", ") +
			" is logged out here. Log in with the new password (l)."
	}
	return NavigateCmd(NavigateMsg{To: pageHome, Profile: f.profile, Note: note})
}

func (f *forgot) View() string {
	st := f.c.Styles
	var b strings.Builder
	b.WriteString(st.Heading.Render("Forgot password") + st.Subtle.Render(" at "+f.profile.Server) + "\n\n")
	if !f.resetting {
		b.WriteString(st.Value.Width(f.width).Render("latch asks the server to mail a reset token to the account's address.") + "\n\n")
		f.cursorAt = strings.Count(b.String(), "\n")
		b.WriteString(f.request.row(0, "Account", "") + "\n\n")
	} else {
		f.cursorAt = strings.Count(b.String(), "\n") + 2*f.reset.focus
		b.WriteString(f.reset.row(0, "Token", "") + "\n")
		b.WriteString(f.reset.row(1, "New", "") + "\n")
		b.WriteString(f.reset.row(2, "Repeat", "") + "\n")
		b.WriteString(f.reset.row(3, "Code", "") + "\n")
	}
	switch {
	case f.work.active():
		b.WriteString(f.work.View() + "\n")
	case f.missing != "":
		b.WriteString(st.Error.Width(f.width).Render(f.missing) + "\n")
	case f.err != nil:
		b.WriteString(st.Error.Width(f.width).Render(upperFirst(explain(f.err))) + "\n")
	case f.note != "":
		b.WriteString(st.Note.Width(f.width).Render(f.note) + "\n")
	case !f.resetting:
		b.WriteString(st.Subtle.Render("enter sends the mail") + "\n")
	default:
		b.WriteString(st.Subtle.Render("enter sets the new password") + "\n")
	}
	if f.mailbox {
		b.WriteString("\n" + st.Subtle.Render("This is a development server: its mail stays in the Mailbox (ctrl+x).") + "\n")
	}
	return b.String()
}

func (f *forgot) ShortHelp() []key.Binding {
	h := f.form().help()
	if f.mailbox {
		h = append(h, f.c.KeyMap.Mailbox)
	}
	return h
}

func (f *forgot) FullHelp() [][]key.Binding {
	km := f.c.KeyMap
	return [][]key.Binding{{km.Submit, km.Back}, {km.Next, km.Prev}, {km.Mailbox}}
}
