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

// verifyEmail takes the token of a verification mail, pasted or from the
// dev Mailbox, and confirms the account's address with it.
type verifyEmail struct {
	c             *Common
	width, height int
	profile       vault.Profile

	form     form
	mailbox  bool
	missing  string
	err      error
	work     work
	cursorAt int
}

// EmailVerifiedMsg follows a verification.
type EmailVerifiedMsg struct {
	State *client.EmailState
	Err   error
}

func newVerifyEmail(c *Common, p vault.Profile) *verifyEmail {
	return &verifyEmail{c: c, profile: p, work: newWork(c),
		form: newForm(c, field{name: "token", placeholder: "paste the token from the mail", secret: true})}
}

func (v *verifyEmail) Init() tea.Cmd {
	server := v.profile.Server
	probe := v.c.flowCmd(func(ctx context.Context) tea.Msg {
		_, err := v.c.Env.DevMail(ctx, server)
		return DevMailboxMsg{OK: err == nil}
	})
	return tea.Batch(probe, v.form.focusOn(0))
}

func (v *verifyEmail) SetSize(w, h int) {
	v.width, v.height = w, h
	v.form.setWidth(w - 14)
}

func (v *verifyEmail) Title() string { return "Verify email · " + v.profile.Name }

func (v *verifyEmail) Typing() bool { return true }

func (v *verifyEmail) cursorLine() int { return v.cursorAt }

func (v *verifyEmail) Update(msg tea.Msg) (Component, tea.Cmd) {
	if cmd, ok := v.work.tick(msg); ok {
		return v, cmd
	}
	switch msg := msg.(type) {
	case DevMailboxMsg:
		v.mailbox = msg.OK
		return v, nil
	case EmailVerifiedMsg:
		v.work.done()
		if msg.Err != nil {
			v.err = msg.Err
			return v, nil
		}
		return v, NavigateCmd(NavigateMsg{To: pageDashboard, Profile: v.profile, Note: "Email " + msg.State.Email + " verified."})
	case MailTokenMsg:
		if msg.Kind != "verify-email" {
			v.err = errors.New("that mail is not a verification; choose the one titled \"confirm your email address\"")
			return v, nil
		}
		v.form.inputs[0].SetValue(msg.Token)
		return v, v.submit()
	case tea.KeyPressMsg:
		km := v.c.KeyMap
		switch {
		case v.work.active():
			return v, nil
		case key.Matches(msg, km.Back):
			return v, BackCmd
		case v.mailbox && key.Matches(msg, km.Mailbox):
			return v, NavigateCmd(NavigateMsg{To: pageMailbox, Profile: v.profile, MailKind: "verify-email"})
		case key.Matches(msg, km.Submit):
			return v, v.submit()
		}
	}
	cmd, changed := v.form.update(msg)
	if changed != "" {
		v.missing = ""
	}
	return v, cmd
}

func (v *verifyEmail) submit() tea.Cmd {
	tok := strings.TrimSpace(v.form.value("token"))
	v.err, v.missing = nil, ""
	if tok == "" {
		v.missing = "Paste the token from the verification mail."
		return nil
	}
	p := v.profile
	v.c.trace.begin("email verification at " + p.Server)
	return v.work.start("Verifying…", v.c.flowCmd(func(ctx context.Context) tea.Msg {
		st, err := v.c.Env.VerifyEmail(ctx, p.Name, p.Server, tok)
		return EmailVerifiedMsg{State: st, Err: err}
	}))
}

func (v *verifyEmail) View() string {
	st := v.c.Styles
	var b strings.Builder
	b.WriteString(st.Heading.Render("Verify your email address") + st.Subtle.Render(" at "+v.profile.Server) + "\n\n")
	b.WriteString(st.Value.Width(v.width).Render("The server mailed a token to your address (on signup, or when you pressed e). Paste it here, or open the mail's link.") + "\n\n")
	v.cursorAt = strings.Count(b.String(), "\n")
	b.WriteString(v.form.row(0, "Token", "") + "\n")
	switch {
	case v.work.active():
		b.WriteString(v.work.View() + "\n")
	case v.missing != "":
		b.WriteString(st.Error.Width(v.width).Render(v.missing) + "\n")
	case v.err != nil:
		b.WriteString(st.Error.Width(v.width).Render(upperFirst(explain(v.err))) + "\n")
	default:
		b.WriteString(st.Subtle.Render("enter verifies") + "\n")
	}
	if v.mailbox {
		b.WriteString("\n" + st.Subtle.Render("This is a development server: its mail stays in the Mailbox (ctrl+x).") + "\n")
	}
	return b.String()
}

func (v *verifyEmail) ShortHelp() []key.Binding {
	km := v.c.KeyMap
	h := []key.Binding{km.Submit, km.Back}
	if v.mailbox {
		h = append(h, km.Mailbox)
	}
	return h
}

func (v *verifyEmail) FullHelp() [][]key.Binding {
	km := v.c.KeyMap
	return [][]key.Binding{{km.Submit, km.Back}, {km.Mailbox}}
}
