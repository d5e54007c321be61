package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/vault"
)

// backupCodes shows how many of the profile's saved backup codes are left,
// and the codes themselves only after the user confirms they want them on
// screen.
type backupCodes struct {
	c             *Common
	width, height int
	profile       vault.Profile

	codes    *flows.BackupCodes
	err      error
	loaded   bool
	confirm  bool // asking whether to reveal
	revealed bool
}

// BackupCodesMsg carries the profile's saved backup codes.
type BackupCodesMsg struct {
	Codes *flows.BackupCodes
	Err   error
}

func newBackupCodes(c *Common, p vault.Profile) *backupCodes {
	return &backupCodes{c: c, profile: p}
}

func (s *backupCodes) Init() tea.Cmd {
	name := s.profile.Name
	return s.c.flowCmd(func(ctx context.Context) tea.Msg {
		b, err := s.c.Env.SavedBackupCodes(ctx, name)
		return BackupCodesMsg{Codes: b, Err: err}
	})
}

func (s *backupCodes) SetSize(w, h int) { s.width, s.height = w, h }

func (s *backupCodes) Title() string { return "Backup codes · " + s.profile.Name }

func (s *backupCodes) Typing() bool { return false }

func (s *backupCodes) Update(msg tea.Msg) (Component, tea.Cmd) {
	km := s.c.KeyMap
	switch msg := msg.(type) {
	case BackupCodesMsg:
		s.codes, s.err, s.loaded = msg.Codes, msg.Err, true
	case tea.KeyPressMsg:
		switch {
		case s.confirm && key.Matches(msg, km.Yes):
			s.confirm, s.revealed = false, true
		case s.confirm && key.Matches(msg, km.No):
			s.confirm = false
		case key.Matches(msg, km.Back):
			return s, BackCmd
		case s.codes != nil && !s.revealed && key.Matches(msg, km.Reveal):
			s.confirm = true
		case s.revealed && key.Matches(msg, km.Reveal):
			s.revealed = false
		}
	}
	return s, nil
}

func (s *backupCodes) View() string {
	st := s.c.Styles
	var b strings.Builder
	b.WriteString(st.Heading.Render("Backup codes") + st.Subtle.Render(" for "+s.profile.Username+" on "+s.profile.Server) + "\n\n")
	switch {
	case !s.loaded:
		b.WriteString(st.Subtle.Render("Reading the vault…") + "\n")
		return b.String()
	case errors.Is(s.err, flows.ErrNoBackupCodes):
		b.WriteString(st.Warn.Width(s.width).Render("No backup codes are saved for this profile in the vault. If you wrote them down when you turned two-factor on, those still work; latch mfa codes --regenerate CODE makes a new set.") + "\n")
		return b.String()
	case s.err != nil:
		b.WriteString(st.Error.Width(s.width).Render(upperFirst(explain(s.err))) + "\n")
		return b.String()
	}
	n, total := s.codes.Remaining(), len(s.codes.Codes)
	left := fmt.Sprintf("%d of %d unused", n, total)
	if n == 0 {
		left = st.Warn.Render(left + ": make a new set before you lose your authenticator")
	}
	b.WriteString(st.Label.Render(pad("Remaining", 10)) + " " + st.Value.Render(left) + "\n")
	saved := time.Unix(s.codes.Saved, 0)
	b.WriteString(st.Label.Render(pad("Saved", 10)) + " " + st.Value.Render(relative(s.c.Now(), saved)+" in your vault ("+s.c.Env.Vault.Backend+")") + "\n\n")
	switch {
	case s.revealed:
		codes := make([]string, total)
		notes := make([]string, total)
		for i, c := range s.codes.Codes {
			codes[i] = c.Code
			switch c.State {
			case "used":
				notes[i] = st.Subtle.Render("used")
			case "refused":
				notes[i] = st.Subtle.Render("refused")
			}
		}
		writeCodes(&b, st.Key, codes, notes)
		b.WriteString("\n" + st.Subtle.Width(s.width).Render("Each code works once. v hides them again.") + "\n")
	case s.confirm:
		b.WriteString(st.Warn.Width(s.width).Render("Show the backup codes on screen? Anyone who sees them can pass your second step. (y/n)") + "\n")
	default:
		b.WriteString(st.Subtle.Width(s.width).Render("The codes are hidden. Press v to reveal them.") + "\n")
	}
	return b.String()
}

func (s *backupCodes) ShortHelp() []key.Binding {
	km := s.c.KeyMap
	switch {
	case s.confirm:
		return []key.Binding{withHelp(km.Yes, "show them"), withHelp(km.No, "keep hidden")}
	case s.revealed:
		return []key.Binding{withHelp(km.Reveal, "hide"), km.Back}
	case s.codes != nil:
		return []key.Binding{withHelp(km.Reveal, "reveal the codes"), km.Back}
	}
	return []key.Binding{km.Back}
}

func (s *backupCodes) FullHelp() [][]key.Binding { return [][]key.Binding{s.ShortHelp()} }
