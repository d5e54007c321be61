package tui

import (
	"context"
	"errors"
	"net/url"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/pquerna/otp"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/internal/textart"
	"github.com/latch-dev/latch/vault"
)

// mfaSetup enrols an authenticator app: it shows the QR code and the
// secret, takes the first code, and then shows the backup codes once, saying
// where they were saved.
type mfaSetup struct {
	c             *Common
	width, height int
	profile       vault.Profile

	setup    *flows.MFASetup
	qr       string // the QR code, drawn once the setup arrives
	setupErr error

	input textinput.Model
	err   error
	hint  string

	codes    []string // after enabling: shown once
	saveErr  error    // the codes could not be saved to the vault
	cursorAt int      // the code field's line in the last View

	work work
}

// MFASetupMsg carries a fresh TOTP secret from the server.
type MFASetupMsg struct {
	Setup *flows.MFASetup
	Err   error
}

// MFAEnabledMsg is the outcome of confirming enrolment: with Codes set,
// two-factor is on (Err then says the codes were not saved).
type MFAEnabledMsg struct {
	Codes []string
	Err   error
}

// qrRightWidth is the room the setup screen needs beside the QR code.
const qrRightWidth = 36

func newMFASetup(c *Common, p vault.Profile) *mfaSetup {
	in := textinput.New()
	in.Prompt = ""
	in.Placeholder = "123456"
	in.CharLimit = 16
	in.SetStyles(c.Styles.Input)
	in.SetWidth(12)
	return &mfaSetup{c: c, profile: p, input: in, work: newWork(c)}
}

func (m *mfaSetup) Init() tea.Cmd {
	if m.setup != nil {
		return nil
	}
	name := m.profile.Name
	m.c.trace.begin("two-factor setup of " + name)
	return tea.Batch(m.input.Focus(), m.work.start("Asking the server for a secret…", m.c.flowCmd(func(ctx context.Context) tea.Msg {
		s, err := m.c.Env.StartMFASetup(ctx, name, false)
		return MFASetupMsg{Setup: s, Err: err}
	})))
}

func (m *mfaSetup) SetSize(w, h int) { m.width, m.height = w, h }

func (m *mfaSetup) Title() string { return "Two-factor setup · " + m.profile.Name }

func (m *mfaSetup) Typing() bool { return m.setup != nil && m.codes == nil }

func (m *mfaSetup) Update(msg tea.Msg) (Component, tea.Cmd) {
	if cmd, ok := m.work.tick(msg); ok {
		return m, cmd
	}
	switch msg := msg.(type) {
	case MFASetupMsg:
		m.work.done()
		m.setup, m.setupErr = msg.Setup, msg.Err
		if msg.Setup != nil {
			m.qr = textart.QR(qrContent(msg.Setup.URI))
		}
		return m, nil
	case MFAEnabledMsg:
		m.work.done()
		if msg.Codes != nil {
			m.codes, m.saveErr = msg.Codes, msg.Err
			m.profile.MFA = true
			m.input.Blur()
			return m, nil
		}
		m.err = msg.Err
		m.input.SetValue("")
		return m, nil
	case tea.KeyPressMsg:
		km := m.c.KeyMap
		switch {
		case m.work.active():
			return m, nil
		case m.codes != nil && (key.Matches(msg, km.Back) || key.Matches(msg, km.Submit)):
			return m, NavigateCmd(NavigateMsg{To: pageDashboard, Profile: m.profile, Note: "Two-factor is on: logins now ask for a code."})
		case key.Matches(msg, km.Back):
			return m, BackCmd
		case m.setup != nil && m.codes == nil && key.Matches(msg, km.Submit):
			return m, m.submit()
		}
	}
	if !m.Typing() {
		return m, nil
	}
	before := m.input.Value()
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(msg)
	if m.input.Value() != before {
		m.hint = ""
	}
	return m, cmd
}

func (m *mfaSetup) submit() tea.Cmd {
	code := strings.ReplaceAll(strings.TrimSpace(m.input.Value()), " ", "")
	if code == "" {
		m.hint = "Type the 6-digit code your app shows."
		return nil
	}
	m.err, m.hint = nil, ""
	name := m.profile.Name
	return m.work.start("Turning two-factor on…", m.c.flowCmd(func(ctx context.Context) tea.Msg {
		codes, err := m.c.Env.EnableMFA(ctx, name, code)
		return MFAEnabledMsg{Codes: codes, Err: err}
	}))
}

// qrContent is what the QR code holds. The server's URI spells out the
// defaults (SHA1, 6 digits, 30 s) and the issuer twice; without them the
// code is two versions smaller, which is what lets it fit in 80×24. Any
// URI that is not plain defaults is drawn as it is.
func qrContent(uri string) string {
	k, err := otp.NewKeyFromURL(uri)
	if err != nil || k.Type() != "totp" || k.Period() != 30 || k.Digits() != otp.DigitsSix ||
		k.Algorithm() != otp.AlgorithmSHA1 || k.Secret() == "" || strings.Contains(k.AccountName(), ":") {
		// (An account with a ':' would read as an issuer in a short label.)
		return uri
	}
	// Query escaping, with %20 for spaces as authenticator apps expect: a
	// path-escaped issuer would leave '&' and '=' to split the query.
	esc := func(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
	q := "secret=" + esc(k.Secret())
	if k.Issuer() != "" {
		q = "issuer=" + esc(k.Issuer()) + "&" + q
	}
	return "otpauth://totp/" + url.PathEscape(k.AccountName()) + "?" + q
}

// qrFits reports whether the QR code and the column beside it fit the body.
func (m *mfaSetup) qrFits() bool {
	return m.qr != "" && lipgloss.Width(m.qr)+2+qrRightWidth <= m.width && lipgloss.Height(m.qr) <= m.height
}

func (m *mfaSetup) View() string {
	m.cursorAt = 0
	switch {
	case m.codes != nil:
		return m.codesView()
	case m.setup == nil && m.setupErr != nil:
		return m.c.Styles.Heading.Render("Set up two-factor") + "\n\n" + m.c.Styles.Error.Width(m.width).Render(setupTrouble(m.setupErr)) + "\n"
	case m.setup == nil:
		return m.c.Styles.Heading.Render("Set up two-factor") + "\n\n" + m.work.View() + "\n"
	}
	if m.qrFits() {
		right := m.steps(qrRightWidth)
		return lipgloss.JoinHorizontal(lipgloss.Top, m.qr, "  ", right)
	}
	st := m.c.Styles
	tip := st.Warn.Width(m.width).Render("The window is too small for the QR code: enlarge it to scan, or type the secret in by hand.")
	return m.steps(m.width) + "\n" + tip + "\n"
}

// steps is the text beside the QR code: the secret, the code field, and
// what is happening.
func (m *mfaSetup) steps(w int) string {
	st := m.c.Styles
	var b strings.Builder
	b.WriteString(st.Heading.Render("Set up two-factor") + "\n\n")
	b.WriteString(st.Value.Width(w).Render("1. Scan the QR code with an authenticator app, or type the secret in:") + "\n\n")
	groups := strings.Fields(m.setup.Grouped())
	for i := 0; i < len(groups); i += 4 {
		label := ""
		if i == 0 {
			label = "Secret"
		}
		b.WriteString(st.Label.Render(pad(label, 7)) + " " + st.Key.Render(strings.Join(groups[i:min(i+4, len(groups))], " ")) + "\n")
	}
	b.WriteString("\n" + st.Value.Width(w).Render("2. Type the 6-digit code it shows:") + "\n\n")
	m.cursorAt = strings.Count(b.String(), "\n")
	b.WriteString(st.FieldLabelFocus.Render(pad("Code", 7)) + " " + m.input.View() + "\n\n")
	switch {
	case m.work.active():
		b.WriteString(m.work.View() + "\n")
	case m.hint != "":
		b.WriteString(st.Error.Width(w).Render(m.hint) + "\n")
	case m.err != nil:
		b.WriteString(st.Error.Width(w).Render(setupTrouble(m.err)) + "\n")
	default:
		b.WriteString(st.Subtle.Width(w).Render("enter turns two-factor on · esc cancels (nothing changes)") + "\n")
	}
	return b.String()
}

// codesView shows the backup codes, once, and where they were saved.
func (m *mfaSetup) codesView() string {
	st := m.c.Styles
	var b strings.Builder
	b.WriteString(st.Heading.Render("Two-factor is on") + st.Subtle.Render(" for "+m.profile.Username) + "\n\n")
	b.WriteString(st.Value.Width(m.width).Render("Backup codes: each one works once, in place of a code from your app, if you lose your phone.") + "\n\n")
	writeCodes(&b, st.Key, m.codes, nil)
	b.WriteString("\n")
	if m.saveErr != nil {
		b.WriteString(st.Warn.Width(m.width).Render("⚠ "+upperFirst(forInterface(m.saveErr.Error()))+".") + "\n")
	} else {
		b.WriteString(st.Note.Width(m.width).Render("✓ Saved to your vault ("+m.c.Env.Vault.Backend+"). They are not shown here again; "+
			"the account screen's backup codes (b) reveals them on request.") + "\n")
	}
	b.WriteString("\n" + st.Subtle.Render("enter returns to your account") + "\n")
	return b.String()
}

// writeCodes lays codes out in two columns, with a note after each when
// notes has one.
func writeCodes(b *strings.Builder, style lipgloss.Style, codes []string, notes []string) {
	half := (len(codes) + 1) / 2
	cell := func(i int) string {
		s := style.Render(codes[i])
		if i < len(notes) && notes[i] != "" {
			s += " " + notes[i]
		}
		return s
	}
	for i := range half {
		line := "  " + pad(cell(i), 22)
		if j := i + half; j < len(codes) {
			line += cell(j)
		}
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
}

// setupTrouble says what went wrong during enrolment and what to do.
func setupTrouble(err error) string {
	switch {
	case errors.Is(err, client.ErrInvalidCode):
		return "That code was not accepted: type the code your app shows now (each code works once; wait for the next one if you just used it)."
	case errors.Is(err, client.ErrMFAAlreadyEnabled):
		return upperFirst(explain(err)) + " Your backup codes are under b on the account screen."
	}
	return upperFirst(explain(err))
}

func (m *mfaSetup) cursorLine() int { return m.cursorAt }

func (m *mfaSetup) ShortHelp() []key.Binding {
	km := m.c.KeyMap
	if m.codes != nil {
		return []key.Binding{withHelp(km.Submit, "done")}
	}
	return []key.Binding{withHelp(km.Submit, "turn on"), withHelp(km.Back, "cancel")}
}

func (m *mfaSetup) FullHelp() [][]key.Binding { return [][]key.Binding{m.ShortHelp()} }
