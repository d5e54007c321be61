package tui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// A screen's body can be taller than the room the terminal leaves it (the
// token's signature, sign-up at 40×12). The root model then shows a window
// of it, with a last line saying how much is above and below; pgup/pgdn
// move the window, and so do ↑/↓ on a screen that does not take them
// itself. A screen with a text field can report the field's line, which
// the window then follows.

// cursorLiner is a screen whose focused field the window keeps in view.
type cursorLiner interface {
	// cursorLine is the line of the focused field in the last View.
	cursorLine() int
}

// window is the part of body the screen shows in h lines, from line off,
// with the line that says what else there is; off is clamped to the body.
func (a *App) window(body string, h, off int) string {
	return scrollWindow(a.common.Styles, body, h, off)
}

// scrollWindow is window for any body: the trace pane windows its list so.
func scrollWindow(st *Styles, body string, h, off int) string {
	all := strings.Split(strings.TrimRight(body, "\n"), "\n")
	if len(all) <= h || h < 2 {
		return body
	}
	vh := h - 1
	off = min(max(off, 0), len(all)-vh)
	above, below := off, len(all)-off-vh
	lines := func(n int) string {
		if n == 1 {
			return "more line"
		}
		return "more lines"
	}
	var more string
	switch {
	case above > 0 && below > 0:
		more = fmt.Sprintf("↑ %d · ↓ %d %s · pgup/pgdn", above, below, lines(above+below))
	case above > 0:
		more = fmt.Sprintf("↑ %d %s · pgup", above, lines(above))
	default:
		more = fmt.Sprintf("↓ %d %s · pgdn", below, lines(below))
	}
	return strings.Join(all[off:off+vh], "\n") + "\n" + st.Subtle.Render(more)
}

// overflow is how many lines of the active screen's body do not fit, and
// the height of the window that shows the rest.
func (a *App) overflow() (hidden, vh int) {
	_, h := a.bodySize()
	n := strings.Count(strings.TrimRight(a.top().View(), "\n"), "\n") + 1
	if n <= h || h < 2 {
		return 0, h
	}
	return n - (h - 1), h - 1
}

// scrollKey moves the window for pgup/pgdn, and for ↑/↓ on a screen that
// does not take them; handled is false for any other key.
func (a *App) scrollKey(msg tea.KeyPressMsg) (handled bool) {
	km := a.common.KeyMap
	hidden, vh := a.overflow()
	step := 0
	switch {
	case key.Matches(msg, km.PageUp):
		step = -max(vh-1, 1)
	case key.Matches(msg, km.PageDown):
		step = max(vh-1, 1)
	case hidden == 0 || a.top().Typing() || claims(a.top(), msg):
		return false
	case key.Matches(msg, km.Up):
		step = -1
	case key.Matches(msg, km.Down):
		step = 1
	default:
		return false
	}
	// From where the window stands: the body may have shrunk since.
	a.scroll = min(max(min(a.scroll, hidden)+step, 0), hidden)
	return true
}

// follow keeps the focused field, and the line under it, in the window.
func (a *App) follow() {
	hidden, vh := a.overflow() // renders the View the cursor line is read from
	a.scroll = min(max(a.scroll, 0), hidden)
	c, ok := a.top().(cursorLiner)
	if !ok || hidden == 0 {
		return
	}
	line := c.cursorLine()
	switch {
	case line < a.scroll:
		a.scroll = line
	case line+2 > a.scroll+vh:
		a.scroll = min(line+2-vh, hidden)
	}
}

// claims reports whether the screen lists msg's key among its own.
func claims(s Component, msg tea.KeyPressMsg) bool {
	for _, b := range s.ShortHelp() {
		if key.Matches(msg, b) {
			return true
		}
	}
	for _, g := range s.FullHelp() {
		for _, b := range g {
			if key.Matches(msg, b) {
				return true
			}
		}
	}
	return false
}
