package tui

import (
	"context"
	"errors"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/vault"
)

// mfa is the second step of a login to an account with two-factor on: a
// code from the authenticator app, or a backup code — typed, or the next
// unused one saved in the vault (ctrl+o). The password step's result waits
// here until the server accepts a code.
type mfa struct {
	c             *Common
	width, height int
	profile       vault.Profile
	pending       *flows.LoginResult

	input textinput.Model
	// saved is set while the field holds the vault's next backup code
	// untouched: submitting then lets the flow mark it used.
	saved bool
	err   error
	hint  string // a problem found before asking the server
	work  work
	// cursorAt is the code field's line in the last View.
	cursorAt int
}

// MFADoneMsg is the outcome of the second step.
type MFADoneMsg struct {
	Result *flows.LoginResult
	Err    error
}

// BackupFilledMsg carries the vault's next unused backup code.
type BackupFilledMsg struct {
	Code string
	Err  error
}

func newMFA(c *Common, p vault.Profile, pending *flows.LoginResult) *mfa {
	in := textinput.New()
	in.Prompt = ""
	in.Placeholder = "123456 or a backup code"
	in.CharLimit = 32
	in.SetStyles(c.Styles.Input)
	in.SetWidth(26)
	return &mfa{c: c, profile: p, pending: pending, input: in, work: newWork(c)}
}

func (m *mfa) Init() tea.Cmd { return m.input.Focus() }

func (m *mfa) SetSize(w, h int) { m.width, m.height = w, h }

func (m *mfa) Title() string { return "Second factor" }

func (m *mfa) Typing() bool { return true }

func (m *mfa) Update(msg tea.Msg) (Component, tea.Cmd) {
	if cmd, ok := m.work.tick(msg); ok {
		return m, cmd
	}
	switch msg := msg.(type) {
	case MFADoneMsg:
		m.work.done()
		return m, m.done(msg)
	case ProgressMsg:
		// The code just used is spent: the flow waits for the next one.
		if m.work.active() {
			m.work.what = msg.Text
		}
		return m, nil
	case BackupFilledMsg:
		m.work.done()
		if msg.Err != nil {
			m.err = msg.Err
			return m, nil
		}
		m.err, m.hint = nil, ""
		m.input.SetValue(msg.Code)
		m.input.EchoMode, m.input.EchoCharacter = textinput.EchoPassword, '•'
		m.saved = true
		return m, nil
	case tea.KeyPressMsg:
		km := m.c.KeyMap
		switch {
		case m.work.active():
			return m, nil
		case key.Matches(msg, km.Back):
			return m, BackCmd
		case key.Matches(msg, km.Submit):
			return m, m.submit()
		case key.Matches(msg, km.UseBackup):
			name := m.profile.Name
			return m, m.work.start("Reading your saved backup codes…", m.c.flowCmd(func(ctx context.Context) tea.Msg {
				code, err := m.c.Env.NextBackupCode(ctx, name)
				return BackupFilledMsg{Code: code, Err: err}
			}))
		}
	}
	before := m.input.Value()
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(msg)
	if m.input.Value() != before {
		m.hint = ""
		if m.saved {
			// Edited by hand: no longer the vault's code, so show what is typed.
			m.saved = false
			m.input.EchoMode = textinput.EchoNormal
		}
	}
	return m, cmd
}

func (m *mfa) submit() tea.Cmd {
	code := strings.TrimSpace(m.input.Value())
	if code == "" {
		m.hint = "Type the code from your authenticator app, or press ctrl+o for a saved backup code."
		return nil
	}
	m.err, m.hint = nil, ""
	pending, saved := m.pending, m.saved
	return m.work.start("Checking the code…", m.c.flowCmd(func(ctx context.Context) tea.Msg {
		var res *flows.LoginResult
		var err error
		if saved {
			res, err = m.c.Env.FinishMFAWithBackupCode(ctx, pending)
		} else {
			res, err = m.c.Env.FinishMFA(ctx, pending, code)
		}
		return MFADoneMsg{Result: res, Err: err}
	}))
}

func (m *mfa) done(msg MFADoneMsg) tea.Cmd {
	switch {
	case msg.Result != nil:
		// Logged in; an error here is about marking the backup code.
		p := msg.Result.Profile
		note := "Logged in as " + p.Username + "."
		if msg.Err != nil {
			note += " " + upperFirst(explain(msg.Err))
		}
		return NavigateCmd(NavigateMsg{To: pageDashboard, Profile: p, Note: note})
	case errors.Is(msg.Err, client.ErrMFAChallengeExpired):
		return NavigateCmd(NavigateMsg{To: pageLogin, Profile: m.profile, Note: upperFirst(explain(msg.Err))})
	}
	m.err = msg.Err
	m.saved = false
	m.input.SetValue("")
	m.input.EchoMode = textinput.EchoNormal
	return m.input.Focus()
}

func (m *mfa) View() string {
	st := m.c.Styles
	var b strings.Builder
	b.WriteString(st.Heading.Render("Second factor") + st.Subtle.Render(" for "+m.profile.Username+" on "+m.profile.Server) + "\n\n")
	b.WriteString(st.Value.Width(m.width).Render("The password was right. Enter the 6-digit code your authenticator app shows for this account, or one of your backup codes.") + "\n\n")
	under := st.Subtle.Width(max(m.width-12, 10)).Render("ctrl+o fills the next unused backup code saved in your vault")
	if m.saved {
		under = st.Note.Width(max(m.width-12, 10)).Render("the next unused backup code from your vault")
	}
	m.cursorAt = strings.Count(b.String(), "\n")
	b.WriteString(st.FieldLabelFocus.Render(pad("Code", 11)) + " " + m.input.View() + "\n" + indentAfterFirst(strings.Repeat(" ", 12)+under, 12) + "\n\n")
	switch {
	case m.work.active():
		b.WriteString(m.work.View() + "\n")
	case m.hint != "":
		b.WriteString(st.Error.Width(m.width).Render(m.hint) + "\n")
	case m.err != nil:
		b.WriteString(st.Error.Width(m.width).Render(mfaTrouble(m.err)) + "\n")
	default:
		b.WriteString(st.Subtle.Width(m.width).Render("enter checks the code · esc goes back; nothing is saved until a code is accepted.") + "\n")
	}
	return b.String()
}

// mfaTrouble says what a refused code means and what to try next. The
// client's message already counts the attempts left ("; 4 attempts left"),
// so it is not counted again here.
func mfaTrouble(err error) string {
	if errors.Is(err, flows.ErrNoBackupCodes) {
		return "No unused backup code is saved for this profile. Type one you wrote down, or the code from your authenticator app."
	}
	return upperFirst(explain(err))
}

func (m *mfa) cursorLine() int { return m.cursorAt }

func (m *mfa) ShortHelp() []key.Binding {
	km := m.c.KeyMap
	return []key.Binding{withHelp(km.Submit, "check"), withHelp(km.UseBackup, "saved backup code"), km.Back}
}

func (m *mfa) FullHelp() [][]key.Binding {
	km := m.c.KeyMap
	return [][]key.Binding{{withHelp(km.Submit, "check the code"), km.UseBackup, km.Back}}
}
