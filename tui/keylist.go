package tui

import (
	"strings"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	"charm.land/lipgloss/v2"
)

// The help line under every screen, and the key list ? (f1 while typing)
// opens in its place. bubbles' help cuts both at the terminal's width, which
// hid the keys that work everywhere, ? itself among them: here the line
// gives up the screen's last keys before it gives up ?, and the list wraps
// its columns into rows.

// helpKey is the key that opens and closes the key list: ? but f1 while a
// text field has the keyboard, where ? is typed.
func helpKey(s Component, km *KeyMap, open bool) key.Binding {
	desc := "more keys"
	if open {
		desc = "fewer keys"
	}
	if s.Typing() {
		return key.NewBinding(key.WithKeys("f1"), key.WithHelp("f1", desc))
	}
	return withHelp(km.Help, desc)
}

// quitKey is q, but ctrl+c while a text field has the keyboard.
func quitKey(s Component, km *KeyMap) key.Binding {
	if s.Typing() {
		return km.ForceQuit
	}
	return km.Quit
}

// helpLine is the one-line help: the screen's keys, then the help key and
// quit. When they do not fit in width, quit goes first, then the screen's
// keys from the last, marked with an ellipsis; the help key always stays, so
// the full list is always one key away.
func helpLine(m help.Model, s Component, km *KeyMap, width int) string {
	m.SetWidth(0) // measured here, not cut by help
	keys := s.ShortHelp()
	hk := helpKey(s, km, false)
	fits := func(line string) bool { return lipgloss.Width(line) <= width }
	if line := m.ShortHelpView(append(keys[:len(keys):len(keys)], hk, quitKey(s, km))); fits(line) {
		return line
	}
	if line := m.ShortHelpView(append(keys[:len(keys):len(keys)], hk)); fits(line) {
		return line
	}
	tail := " " + m.Styles.Ellipsis.Render(m.Ellipsis) + " " + m.ShortHelpView([]key.Binding{hk})
	for n := len(keys) - 1; n > 0; n-- {
		if line := m.ShortHelpView(keys[:n]) + tail; fits(line) {
			return line
		}
	}
	return m.ShortHelpView([]key.Binding{hk})
}

// keyGroups is the full list's columns: the screen's, then the keys that
// work everywhere.
func keyGroups(s Component, km *KeyMap) [][]key.Binding {
	global := []key.Binding{helpKey(s, km, true), km.Back, km.Quit, km.ForceQuit}
	if s.Typing() {
		global = []key.Binding{helpKey(s, km, true), km.Back, km.ForceQuit}
	}
	return append(s.FullHelp(), global)
}

// keyList lays the groups out as columns, as many side by side as fit in
// width, and the rest in rows under them, aligned to the same columns.
func keyList(m help.Model, groups [][]key.Binding, width int) string {
	m.SetWidth(0)
	var cols []string
	for _, g := range groups {
		if c := m.FullHelpView([][]key.Binding{g}); c != "" {
			cols = append(cols, c)
		}
	}
	if len(cols) == 0 {
		return ""
	}
	const gap = 4
	// The most columns a row can hold with every grid column as wide as its
	// widest cell; one per row at worst.
	var widths []int
	for n := len(cols); n >= 1; n-- {
		widths = make([]int, n)
		for i, c := range cols {
			widths[i%n] = max(widths[i%n], lipgloss.Width(c))
		}
		total := gap * (n - 1)
		for _, w := range widths {
			total += w
		}
		if total <= width {
			break
		}
	}
	n := len(widths)
	var rows []string
	for start := 0; start < len(cols); start += n {
		var cells []string
		for j, c := range cols[start:min(start+n, len(cols))] {
			if j > 0 {
				cells = append(cells, strings.Repeat(" ", gap))
			}
			cells = append(cells, lipgloss.NewStyle().Width(widths[j]).Render(c))
		}
		rows = append(rows, lipgloss.JoinHorizontal(lipgloss.Top, cells...))
	}
	return strings.Join(rows, "\n")
}
