package tui

import (
	"context"
	"errors"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/vault"
)

// login asks for a username or email and a masked password. A refusal is
// shown as the server words it; a rate limit counts down its wait.
type login struct {
	c             *Common
	width, height int
	profile       vault.Profile
	note          string

	form       form
	err        error
	retryAt    time.Time // rate limited until then
	work       work
	missingErr string
	cursorAt   int // the focused field's line in the last View
}

// LoginDoneMsg is the outcome of a login.
type LoginDoneMsg struct {
	Result *flows.LoginResult
	Err    error
}

func newLogin(c *Common, p vault.Profile, note string) *login {
	l := &login{c: c, profile: p, note: note,
		form: newForm(c,
			field{name: "identifier", placeholder: "username or email"},
			field{name: "password", secret: true}),
		work: newWork(c),
	}
	l.form.inputs[0].SetValue(p.Username)
	return l
}

func (l *login) Init() tea.Cmd {
	if l.profile.Username != "" {
		return l.form.focusOn(1)
	}
	return l.form.focusOn(0)
}

func (l *login) SetSize(w, h int) {
	l.width, l.height = w, h
	l.form.setWidth(w - 14)
}

func (l *login) Title() string { return "Log in" }

func (l *login) Typing() bool { return true }

// waiting is how long the rate limit still holds.
func (l *login) waiting() time.Duration {
	if l.retryAt.IsZero() {
		return 0
	}
	return until(l.c.Now(), l.retryAt)
}

func (l *login) Update(msg tea.Msg) (Component, tea.Cmd) {
	if cmd, ok := l.work.tick(msg); ok {
		return l, cmd
	}
	switch msg := msg.(type) {
	case LoginDoneMsg:
		l.work.done()
		return l, l.done(msg)
	case TickMsg:
		if !l.retryAt.IsZero() && l.waiting() == 0 {
			l.retryAt, l.err = time.Time{}, nil
			l.note = "You can try again now."
		}
		return l, nil
	case tea.KeyPressMsg:
		km := l.c.KeyMap
		switch {
		case l.work.active():
			return l, nil
		case key.Matches(msg, km.Back):
			return l, BackCmd
		case key.Matches(msg, km.Submit):
			return l, l.submit()
		case key.Matches(msg, km.Forgot) && l.profile.Server != "":
			p := l.profile
			if id := strings.TrimSpace(l.form.value("identifier")); id != "" {
				p.Username = id
			}
			return l, NavigateCmd(NavigateMsg{To: pageForgot, Profile: p})
		}
	}
	cmd, changed := l.form.update(msg)
	if changed != "" {
		l.missingErr = ""
	}
	return l, cmd
}

func (l *login) submit() tea.Cmd {
	if l.waiting() > 0 {
		return nil
	}
	id, pw := strings.TrimSpace(l.form.value("identifier")), l.form.value("password")
	switch {
	case id == "":
		l.missingErr = "Type your username or email."
		return l.form.focusOn(0)
	case pw == "":
		l.missingErr = "Type your password."
		return l.form.focusOn(1)
	}
	l.err, l.note, l.missingErr = nil, "", ""
	p := l.profile
	l.c.trace.begin("password login at " + p.Server)
	return l.work.start("Logging in…", l.c.flowCmd(func(ctx context.Context) tea.Msg {
		res, err := l.c.Env.Login(ctx, flows.LoginRequest{Profile: p.Name, Server: p.Server, Identifier: id, Password: pw})
		return LoginDoneMsg{Result: res, Err: err}
	}))
}

func (l *login) done(msg LoginDoneMsg) tea.Cmd {
	var apiErr *client.APIError
	switch {
	case errors.As(msg.Err, &apiErr) && errors.Is(msg.Err, client.ErrRateLimited):
		l.err = msg.Err
		wait := apiErr.RetryAfter
		if wait <= 0 {
			wait = 30 * time.Second
		}
		l.retryAt = l.c.Now().Add(wait)
		l.form.inputs[1].SetValue("")
		return l.form.focusOn(1)
	case msg.Err != nil:
		l.err = msg.Err
		l.form.inputs[1].SetValue("")
		return l.form.focusOn(1)
	case msg.Result.MFA != nil:
		return NavigateCmd(NavigateMsg{To: pageMFA, Profile: msg.Result.Profile, Pending: msg.Result})
	}
	p := msg.Result.Profile
	return NavigateCmd(NavigateMsg{To: pageDashboard, Profile: p, Note: "Logged in as " + p.Username + "."})
}

func (l *login) View() string {
	st := l.c.Styles
	var b strings.Builder
	b.WriteString(st.Heading.Render("Log in") + st.Subtle.Render(" to "+l.profile.Server) + "\n")
	if l.profile.Name != "" {
		b.WriteString(st.Subtle.Render("profile "+l.profile.Name) + "\n")
	} else {
		b.WriteString(st.Subtle.Render("a new profile") + "\n")
	}
	b.WriteString("\n")
	l.cursorAt = strings.Count(b.String(), "\n") + 2*l.form.focus
	b.WriteString(l.form.row(0, "Username", "") + "\n")
	b.WriteString(l.form.row(1, "Password", "") + "\n")
	b.WriteString("\n")
	switch {
	case l.work.active():
		b.WriteString(l.work.View() + "\n")
	case l.waiting() > 0:
		b.WriteString(st.Warn.Width(l.width).Render("The server is limiting login attempts. Try again in "+short(l.waiting())+".") + "\n")
	case l.missingErr != "":
		b.WriteString(st.Error.Render(l.missingErr) + "\n")
	case l.err != nil:
		b.WriteString(st.Error.Width(l.width).Render(loginTrouble(l.err)) + "\n")
	case l.note != "":
		b.WriteString(st.Note.Width(l.width).Render(l.note) + "\n")
	default:
		b.WriteString(st.Subtle.Render("enter logs in") + "\n")
	}
	if l.profile.Server != "" {
		b.WriteString("\n" + st.Subtle.Render("Forgot password? ctrl+r mails a reset token.") + "\n")
	}
	return b.String()
}

// loginTrouble says what a failed login means and what to try next.
func loginTrouble(err error) string {
	if errors.Is(err, client.ErrInvalidCredentials) {
		// The server's words, which deliberately do not say which was wrong.
		return upperFirst(err.Error()) + ". Check both and press enter to try again."
	}
	return upperFirst(explain(err))
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func (l *login) cursorLine() int { return l.cursorAt }

func (l *login) ShortHelp() []key.Binding { return l.form.help() }

func (l *login) FullHelp() [][]key.Binding {
	km := l.c.KeyMap
	return [][]key.Binding{{km.Submit, km.Back}, {km.Next, km.Prev}, {km.Forgot}}
}
