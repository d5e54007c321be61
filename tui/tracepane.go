package tui

import (
	"net/url"
	"slices"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
)

// tracePane shows the trace of the last flow in place of the screen's body:
// one line per step, exchange and check, newest last, followed as the flow
// runs; enter opens an exchange to its headers and bodies. It takes the
// keyboard while open: esc and ctrl+t close it, and the flow on the screen
// under it goes on meanwhile.
type tracePane struct {
	c             *Common
	width, height int

	open bool
	over Component // the screen it is shown over
	gen  int       // the traceLog generation sel and expanded belong to

	sel      int
	follow   bool // sel stays on the newest event as events come
	expanded map[int]bool
	off      int  // the first line of the list shown
	reveal   bool // bring sel into view at the next View

	saving  bool
	saved   string // where the trace was saved
	saveErr error
}

// TraceSavedMsg says where a trace was saved, or why it was not.
type TraceSavedMsg struct {
	Path string
	Err  error
}

func newTracePane(c *Common) *tracePane { return &tracePane{c: c, expanded: map[int]bool{}} }

// show opens the pane over s.
func (p *tracePane) show(s Component) {
	p.open, p.over = true, s
	p.sync()
	p.reveal = true
}

// sync starts afresh when a new flow has begun, and keeps the selection on
// the newest event while following.
func (p *tracePane) sync() {
	l := p.c.trace
	if p.gen != l.gen {
		p.gen, p.sel, p.off, p.follow = l.gen, 0, 0, true
		p.expanded = map[int]bool{}
		p.saved, p.saveErr = "", nil
	}
	last := max(len(l.events)-1, 0)
	if p.follow && p.sel != last {
		p.sel, p.reveal = last, true
	}
	p.sel = min(p.sel, last)
}

func (p *tracePane) key(msg tea.KeyPressMsg) (tea.Cmd, bool) {
	km := p.c.KeyMap
	p.sync()
	last := max(len(p.c.trace.events)-1, 0)
	move := func(to int) {
		p.sel = min(max(to, 0), last)
		p.follow, p.reveal = p.sel == last, true
	}
	switch {
	case key.Matches(msg, km.Trace), key.Matches(msg, km.Back):
		p.open = false
	case key.Matches(msg, km.Quit):
		return tea.Quit, true
	case key.Matches(msg, km.Up):
		move(p.sel - 1)
	case key.Matches(msg, km.Down):
		move(p.sel + 1)
	case key.Matches(msg, km.TraceFirst):
		move(0)
	case key.Matches(msg, km.TraceLast):
		move(last)
	case key.Matches(msg, km.PageUp):
		p.off = max(p.off-max(p.listHeight()-2, 1), 0)
	case key.Matches(msg, km.PageDown):
		p.off += max(p.listHeight()-2, 1) // clamped by View
	case key.Matches(msg, km.Expand):
		if len(p.c.trace.events) > 0 {
			p.expanded[p.sel], p.reveal = !p.expanded[p.sel], true
		}
	case key.Matches(msg, km.Collapse):
		delete(p.expanded, p.sel)
	case key.Matches(msg, km.SaveTrace):
		return p.save(), true
	}
	return nil, true
}

// save writes the trace to a file, off the event loop.
func (p *tracePane) save() tea.Cmd {
	l := p.c.trace
	if p.saving || len(l.events) == 0 {
		return nil
	}
	p.saving, p.saved, p.saveErr = true, "", nil
	title, evs, dropped := l.title, slices.Clone(l.events), l.dropped
	dir, home, now := p.c.traceDir, p.c.Env.Home, p.c.Now()
	return func() tea.Msg {
		path, err := saveTrace(dir, home, now, title, evs, dropped)
		return TraceSavedMsg{Path: path, Err: err}
	}
}

func (p *tracePane) savedMsg(msg TraceSavedMsg) {
	p.saving, p.saved, p.saveErr = false, msg.Path, msg.Err
}

// Component, so that the chrome's title and help work on the pane as on a
// screen. Update is not used: the root model passes keys to key.

func (p *tracePane) Init() tea.Cmd                       { return nil }
func (p *tracePane) Update(tea.Msg) (Component, tea.Cmd) { return p, nil }
func (p *tracePane) SetSize(w, h int)                    { p.width, p.height = w, h }
func (p *tracePane) Typing() bool                        { return false }
func (p *tracePane) Title() string                       { return p.over.Title() + " · trace" }
func (p *tracePane) FullHelp() [][]key.Binding {
	km := p.c.KeyMap
	return [][]key.Binding{{km.Up, km.Down, km.Expand, km.Collapse}, {km.TraceFirst, km.TraceLast, km.PageUp, km.PageDown},
		{km.SaveTrace, withHelp(km.Trace, "close the trace")}}
}
func (p *tracePane) ShortHelp() []key.Binding { return p.keys() }

func (p *tracePane) keys() []key.Binding {
	km := p.c.KeyMap
	step := key.NewBinding(key.WithKeys("up", "down"), key.WithHelp("↑/↓", "step"))
	return []key.Binding{step, withHelp(km.Expand, "details"), withHelp(km.SaveTrace, "save"), withHelp(km.Trace, "close")}
}

// listHeight is the room for the list: the body less the heading, the
// blank line under it, and the status line when there is one.
func (p *tracePane) listHeight() int {
	h := p.height - 2
	if s := p.status(); s != "" {
		h -= lipgloss.Height(s)
	}
	return max(h, 1)
}

// status is the pane's last line: where the trace went, or why it did not.
func (p *tracePane) status() string {
	st := p.c.Styles
	w := max(p.width, 8)
	switch {
	case p.saving:
		return st.Subtle.Render("Saving the trace…")
	case p.saveErr != nil:
		return st.Error.Width(w).Render("✗ Could not save the trace: " + p.saveErr.Error())
	case p.saved != "":
		// Whole, wrapped: a path cut short is no use.
		return st.Note.Render(strings.Join(hardWrap("✓ Saved the trace to "+p.saved+" (readable by you only).", w), "\n"))
	}
	return ""
}

func (p *tracePane) View() string {
	p.sync()
	st := p.c.Styles
	l := p.c.trace
	w := max(p.width, 1)
	title := "Trace"
	if l.title != "" && !p.c.Compact() {
		// Narrow, the counts matter more than a URL that would be cut.
		title += " of the " + l.title
	}
	head := st.Heading.Render(title) + st.Subtle.Render(" · "+traceSummary(l))
	var b strings.Builder
	b.WriteString(truncate(head, w) + "\n\n")
	if len(l.events) == 0 {
		b.WriteString(st.Subtle.Width(w).Render("Nothing traced yet: the steps, requests and checks of the flow show here as it runs.") + "\n")
		if s := p.status(); s != "" {
			b.WriteString(s + "\n")
		}
		return b.String()
	}
	lines, starts := p.lines(w)
	lh := p.listHeight()
	if len(lines) > lh && lh >= 2 {
		vh := lh - 1 // the window's last line says what else there is
		if p.reveal {
			start, end := starts[p.sel], len(lines)
			if p.sel+1 < len(starts) {
				end = starts[p.sel+1]
			}
			switch {
			case start < p.off:
				p.off = start
			case end > p.off+vh:
				p.off = min(end-vh, start)
			}
		}
		p.off = min(max(p.off, 0), len(lines)-vh)
	} else {
		p.off = 0
	}
	p.reveal = false
	b.WriteString(scrollWindow(st, strings.Join(lines, "\n"), lh, p.off) + "\n")
	if s := p.status(); s != "" {
		b.WriteString(s + "\n")
	}
	return b.String()
}

// lines renders the list: each event's line, with its details under it
// when it is open; starts holds each event's first line.
func (p *tracePane) lines(w int) (lines []string, starts []int) {
	st := p.c.Styles
	for i, ev := range p.c.trace.events {
		starts = append(starts, len(lines))
		mark := "  "
		switch {
		case i == p.sel && p.expanded[i]:
			mark = st.Cursor.Render("▾ ")
		case i == p.sel:
			mark = st.Cursor.Render("▸ ")
		case p.expanded[i]:
			mark = "▾ "
		}
		lines = append(lines, truncate(mark+eventLine(st, ev, w-2), w))
		if p.expanded[i] {
			for _, d := range eventDetails(st, ev, w-4) {
				lines = append(lines, "    "+d)
			}
		}
	}
	return lines, starts
}

// pathOf is a URL without its scheme and host, as the compact line shows
// it: the flows of one login talk to one or two hosts, and the open
// exchange shows the whole URL.
func pathOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	s := u.EscapedPath()
	if s == "" {
		s = "/"
	}
	if u.RawQuery != "" {
		s += "?" + u.RawQuery
	}
	return s
}
