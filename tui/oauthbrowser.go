package tui

import (
	"context"
	"errors"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/internal/textart"
)

// oauthBrowser runs a browser login: it opens the provider's authorization
// URL in the browser as best it can, always shows the URL (and its QR code
// when there is room), and waits for the provider to send the browser back
// to latch's loopback callback. Esc abandons the login and closes the
// callback.
type oauthBrowser struct {
	oauthRun
	login   *flows.BrowserLogin
	qr      string
	opening bool  // the browser is being opened
	openErr error // it could not be
	copied  bool  // c sent the URL to the clipboard
	// slow is the flow's word when no callback has come for a while (the
	// provider may be showing its own error page), shown over the URL.
	slow string
}

// BrowserStartedMsg carries a started browser login: its URL is ready and
// its callback listens.
type BrowserStartedMsg struct {
	attempt *oauthAttempt
	Login   *flows.BrowserLogin
	Err     error
}

// BrowserOpenedMsg says whether the browser could be opened.
type BrowserOpenedMsg struct {
	attempt *oauthAttempt
	Err     error
}

func newOAuthBrowser(c *Common, req flows.OAuthRequest) *oauthBrowser {
	return &oauthBrowser{oauthRun: newOAuthRun(c, req)}
}

func (s *oauthBrowser) Init() tea.Cmd {
	if s.at != nil {
		return nil
	}
	return s.start()
}

// start begins a new attempt. The callback closes when the attempt's
// context ends: on esc, on the login's end, or when the interface quits.
func (s *oauthBrowser) start() tea.Cmd {
	s.at, s.login, s.qr, s.err, s.openErr, s.opening, s.copied, s.slow = newAttempt(s.c), nil, "", nil, nil, false, false, ""
	s.c.trace.begin("browser login at " + firstOf(s.req.Server, s.req.Issuer))
	req, wait, slow, at := s.req, s.c.browserWait, s.c.browserSlow, s.at
	return s.work.start("Starting the login…", at.run(func(ctx context.Context) tea.Msg {
		b, err := s.c.Env.StartBrowserLogin(ctx, req)
		if err != nil {
			return BrowserStartedMsg{attempt: at, Err: err}
		}
		if wait > 0 {
			b.Timeout = wait
		}
		if slow > 0 {
			b.SlowAfter = slow
		}
		go func() {
			<-ctx.Done()
			b.Close()
		}()
		return BrowserStartedMsg{attempt: at, Login: b}
	}))
}

func (s *oauthBrowser) Title() string { return "OAuth login · browser" }

func (s *oauthBrowser) Update(msg tea.Msg) (Component, tea.Cmd) {
	if cmd, ok := s.work.tick(msg); ok {
		return s, cmd
	}
	if cmd, ok := s.update(msg, s.start, s.fail); ok {
		return s, cmd
	}
	switch msg := msg.(type) {
	case BrowserStartedMsg:
		if msg.attempt != s.at {
			return s, nil
		}
		if msg.Err != nil {
			s.fail(msg.Err)
			return s, nil
		}
		s.login, s.opening = msg.Login, true
		s.qr = textart.QR(msg.Login.URL)
		s.work.what = "Waiting for the browser…"
		b, at, open := msg.Login, s.at, s.c.openBrowser
		opened := func() tea.Msg { return BrowserOpenedMsg{attempt: at, Err: open(b.URL)} }
		finished := at.run(func(ctx context.Context) tea.Msg {
			res, err := s.c.Env.FinishBrowserLogin(ctx, b)
			return OAuthDoneMsg{attempt: at, Result: res, Err: err}
		})
		return s, tea.Batch(opened, finished)
	case BrowserOpenedMsg:
		if msg.attempt == s.at {
			s.opening, s.openErr = false, msg.Err
		}
	case ProgressMsg:
		if s.login != nil && s.err == nil {
			s.slow = forInterface(msg.Text)
		}
	case tea.KeyPressMsg:
		if key.Matches(msg, s.c.KeyMap.Copy) && s.login != nil {
			// OSC 52: the terminal puts the URL on the clipboard, over
			// SSH and tmux too; one that does not take it ignores it.
			s.copied = true
			return s, tea.SetClipboard(s.login.URL)
		}
	}
	return s, nil
}

func (s *oauthBrowser) fail(err error) {
	s.end(err)
	s.login, s.qr = nil, ""
}

func (s *oauthBrowser) View() string {
	st := s.c.Styles
	var b strings.Builder
	b.WriteString(s.heading("Log in in your browser"))
	switch {
	case s.err != nil:
		b.WriteString(troubleView(st, s.width, s.err))
		return b.String()
	case s.login == nil:
		b.WriteString(s.work.View() + "\n")
		return b.String()
	}
	b.WriteString(s.work.View() + st.Subtle.Render(" (up to "+short(s.login.Timeout)+"; esc cancels)") + "\n\n")
	if s.slow != "" {
		b.WriteString(st.Warn.Width(s.width).Render("⚠ "+s.slow) + "\n\n")
	}
	b.WriteString(st.Value.Width(s.width).Render(s.openLine()) + "\n\n")
	b.WriteString(urlLines(st, s.login.URL, s.width) + "\n\n")
	if s.copied {
		b.WriteString(st.Note.Width(s.width).Render("✓ Copied the URL to the clipboard (if the terminal allows OSC 52).") + "\n")
	} else {
		b.WriteString(st.Subtle.Width(s.width).Render("c copies the URL; in most terminals it is also a link to click.") + "\n")
	}
	used := lipgloss.Height(b.String())
	switch {
	case s.qr != "" && lipgloss.Width(s.qr) <= s.width && used+lipgloss.Height(s.qr)+1 <= s.height:
		b.WriteString("\n" + s.qr + "\n")
	default:
		b.WriteString("\n" + st.Subtle.Width(s.width).Render("A larger window shows this URL as a QR code too.") + "\n")
	}
	return b.String()
}

// openLine says whether the browser opened, and what to do with the URL.
func (s *oauthBrowser) openLine() string {
	switch {
	case s.opening:
		return "Opening your browser… If it does not open, open this URL in a browser on this machine:"
	case errors.Is(s.openErr, flows.ErrNoBrowser):
		return "Not opening a browser (LATCH_BROWSER=none): open this URL in a browser on this machine:"
	case s.openErr != nil:
		return "Could not open a browser (" + s.openErr.Error() + "): open this URL in a browser on this machine:"
	}
	return "Opened your browser. If it did not open, open this URL in a browser on this machine:"
}

// urlLines shows url as one link: Bubble Tea draws a cell grid and cuts a
// line at the terminal's edge, so the URL cannot be one line the terminal
// wraps; it is cut at the full width instead, with nothing else on its
// lines, and every piece is an OSC 8 hyperlink to the whole URL, with one
// id, so that terminals underline and open it as one link wherever it is
// clicked. c copies it whole.
func urlLines(st *Styles, url string, width int) string {
	open, end := ansi.SetHyperlink(url, "id=latch-authorize"), ansi.ResetHyperlink()
	lines := hardWrap(url, width)
	for i, l := range lines {
		lines[i] = open + st.Key.Render(l) + end
	}
	return strings.Join(lines, "\n")
}

// ShortHelp adds c once there is a URL to copy.
func (s *oauthBrowser) ShortHelp() []key.Binding {
	keys := s.oauthRun.ShortHelp()
	if s.login != nil && s.err == nil {
		keys = append([]key.Binding{s.c.KeyMap.Copy}, keys...)
	}
	return keys
}

func (s *oauthBrowser) FullHelp() [][]key.Binding { return [][]key.Binding{s.ShortHelp()} }

// hardWrap cuts s into lines of at most w cells: a URL has no spaces to
// wrap at.
func hardWrap(s string, w int) []string {
	w = max(w, 8)
	var lines []string
	for lipgloss.Width(s) > w {
		r := []rune(s)
		n := min(w, len(r))
		for n > 1 && lipgloss.Width(string(r[:n])) > w {
			n--
		}
		lines = append(lines, string(r[:n]))
		s = string(r[n:])
	}
	return append(lines, s)
}
