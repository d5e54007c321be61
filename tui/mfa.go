package tui

import (
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/vault"
)

// mfa is the second step of a login to an account with a second factor. It
// is a placeholder until latch speaks TOTP: it says what happened and that
// nothing was saved. The TOTP work replaces its body with a code field.
type mfa struct {
	c             *Common
	width, height int
	profile       vault.Profile
	methods       []string
}

func newMFA(c *Common, p vault.Profile, m *client.MFARequiredError) *mfa {
	s := &mfa{c: c, profile: p}
	if m != nil {
		s.methods = m.Methods
	}
	return s
}

func (m *mfa) Init() tea.Cmd { return nil }

func (m *mfa) SetSize(w, h int) { m.width, m.height = w, h }

func (m *mfa) Title() string { return "Second factor" }

func (m *mfa) Typing() bool { return false }

func (m *mfa) Update(msg tea.Msg) (Component, tea.Cmd) {
	if k, ok := msg.(tea.KeyPressMsg); ok && key.Matches(k, m.c.KeyMap.Back) {
		return m, BackCmd
	}
	return m, nil
}

func (m *mfa) View() string {
	st := m.c.Styles
	methods := "a second factor"
	if len(m.methods) > 0 {
		methods = strings.Join(m.methods, ", ")
	}
	var b strings.Builder
	b.WriteString(st.Heading.Render("Second factor needed") + "\n\n")
	w := st.Value.Width(m.width)
	b.WriteString(w.Render("The password for "+m.profile.Username+" on "+m.profile.Server+" was right, and this account also asks for "+methods+".") + "\n\n")
	b.WriteString(st.Label.Render(pad("Code", 11)) + " " + st.Subtle.Render("······  (not available yet)") + "\n\n")
	b.WriteString(st.Warn.Width(m.width).Render("This latch cannot finish that step yet: two-factor login arrives with TOTP support. Nothing was saved; go back (esc) and use an account without a second factor.") + "\n")
	return b.String()
}

func (m *mfa) ShortHelp() []key.Binding { return []key.Binding{m.c.KeyMap.Back} }

func (m *mfa) FullHelp() [][]key.Binding { return [][]key.Binding{m.ShortHelp()} }
