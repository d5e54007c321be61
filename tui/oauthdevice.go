package tui

import (
	"context"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/internal/textart"
)

// oauthDevice runs a device login (RFC 8628): it shows the user code in
// large letters, where to enter it, a QR code of the link when there is
// room, and how long the code has left, while latch polls the provider.
// Esc abandons the login.
type oauthDevice struct {
	oauthRun
	login    *flows.DeviceLogin
	big, qr  string
	scanLink string
}

// DeviceStartedMsg carries a device code, or why there is none.
type DeviceStartedMsg struct {
	attempt *oauthAttempt
	Login   *flows.DeviceLogin
	Err     error
}

func newOAuthDevice(c *Common, req flows.OAuthRequest) *oauthDevice {
	return &oauthDevice{oauthRun: newOAuthRun(c, req)}
}

func (s *oauthDevice) Init() tea.Cmd {
	if s.at != nil {
		return nil
	}
	return s.start()
}

func (s *oauthDevice) start() tea.Cmd {
	s.at, s.login, s.err, s.big, s.qr = newAttempt(s.c), nil, nil, "", ""
	s.c.trace.begin("device login at " + firstOf(s.req.Server, s.req.Issuer))
	req, at := s.req, s.at
	return s.work.start("Asking the provider for a code…", at.run(func(ctx context.Context) tea.Msg {
		d, err := s.c.Env.StartDeviceLogin(ctx, req)
		return DeviceStartedMsg{attempt: at, Login: d, Err: err}
	}))
}

func (s *oauthDevice) Title() string { return "OAuth login · device" }

func (s *oauthDevice) Update(msg tea.Msg) (Component, tea.Cmd) {
	if cmd, ok := s.work.tick(msg); ok {
		return s, cmd
	}
	if cmd, ok := s.update(msg, s.start, s.fail); ok {
		return s, cmd
	}
	switch msg := msg.(type) {
	case DeviceStartedMsg:
		if msg.attempt != s.at {
			return s, nil
		}
		if msg.Err != nil {
			s.fail(msg.Err)
			return s, nil
		}
		d := msg.Login
		s.login = d
		s.big = textart.Big(d.UserCode)
		s.scanLink = d.VerificationURIComplete
		if s.scanLink == "" {
			s.scanLink = d.VerificationURI
		}
		s.qr = textart.QR(s.scanLink)
		s.work.what = "Waiting for approval…"
		at := s.at
		return s, at.run(func(ctx context.Context) tea.Msg {
			res, err := s.c.Env.FinishDeviceLogin(ctx, d)
			return OAuthDoneMsg{attempt: at, Result: res, Err: err}
		})
	}
	// TickMsg needs nothing more: View counts down from the clock.
	return s, nil
}

func (s *oauthDevice) fail(err error) {
	s.end(err)
	s.login = nil
}

// left is how long the code still has. ExpiresAt is on the Env's clock,
// which is the interface's unless Options.Now sets another.
func (s *oauthDevice) left() time.Duration { return until(s.c.Now(), s.login.ExpiresAt) }

func (s *oauthDevice) View() string {
	st := s.c.Styles
	var b strings.Builder
	b.WriteString(s.heading("Log in on another device"))
	switch {
	case s.err != nil:
		b.WriteString(troubleView(st, s.width, s.err))
		return b.String()
	case s.login == nil:
		b.WriteString(s.work.View() + "\n")
		return b.String()
	}
	// Beside the QR code when both fit, else alone with a word about it.
	qrW, qrH := lipgloss.Width(s.qr), lipgloss.Height(s.qr)
	textW := s.width - qrW - 2
	if s.qr != "" && textW >= max(textart.BigWidth(s.login.UserCode)+2, 40) && qrH <= s.height-2 {
		return b.String() + lipgloss.JoinHorizontal(lipgloss.Top, s.steps(textW), "  ", s.qr)
	}
	b.WriteString(s.steps(s.width))
	b.WriteString(st.Subtle.Width(s.width).Render("A larger window shows a QR code of the link too.") + "\n")
	return b.String()
}

// steps is where to go, the code, and how long it lasts.
func (s *oauthDevice) steps(w int) string {
	st := s.c.Styles
	d := s.login
	var b strings.Builder
	b.WriteString(st.Value.Render("On any device, open ") + st.Key.Render(d.VerificationURI) + "\n")
	b.WriteString(st.Value.Render("and enter the code:") + "\n\n")
	if s.big != "" && lipgloss.Width(s.big)+2 <= w {
		b.WriteString(indentAll(st.Key.Render(s.big), 2) + "\n")
	} else {
		b.WriteString("  " + st.Key.Render(d.UserCode) + "\n")
	}
	b.WriteString("\n")
	if d.VerificationURIComplete != "" {
		b.WriteString(st.Subtle.Width(w).Render("Or open "+d.VerificationURIComplete+", which carries the code.") + "\n\n")
	}
	left := s.left()
	expiry := "The code expires in " + short(left) + " (" + clock(s.c.Now(), d.ExpiresAt) + ")."
	style := st.Value
	switch {
	case left == 0:
		expiry, style = "The code has expired.", st.Warn
	case left < time.Minute:
		style = st.Warn
	}
	b.WriteString(style.Width(w).Render(expiry) + "\n")
	b.WriteString(s.work.View() + st.Subtle.Render(" · esc cancels") + "\n")
	return b.String()
}

// indentAll indents every line of s by n spaces.
func indentAll(s string, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}
