package tui

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/latch-dev/latch/client"
)

// The trace of a flow: every HTTP exchange, step and check the flows report
// (client.Event, redacted before it gets here) while an OAuth or account
// flow screen is on top, shown on demand in a pane in place of the body.
//
// Events are reported on the flows' goroutines, which must never wait for
// the interface: they go into a TraceFeed, bounded, and the program is told
// there is news by a doorbell message. The root model empties the feed at
// the start of every Update, so a flow's events are in the trace before its
// result message is handled (the flow reported them before it returned).

// feedLimit bounds the events waiting in a feed: a UI that falls behind
// drops the excess and says how many it dropped.
const feedLimit = 1024

// logLimit bounds one flow's trace: a device login polling for its whole
// lifetime stays far under it.
const logLimit = 4000

// TraceFeed carries trace events and progress messages from the flows into
// the interface without ever blocking them. Build one with NewTraceFeed,
// hand Trace to the Env's tracer and Progress to its Progress, and pass it
// in Options.Trace.
type TraceFeed struct {
	mu       sync.Mutex
	events   []client.Event
	progress []string
	dropped  int
	bell     chan struct{}
}

// NewTraceFeed returns an empty feed.
func NewTraceFeed() *TraceFeed { return &TraceFeed{bell: make(chan struct{}, 1)} }

// Trace records ev for the interface (a client.Tracer). It never blocks:
// when the interface has fallen feedLimit events behind, ev is dropped and
// counted.
func (f *TraceFeed) Trace(ev client.Event) {
	f.mu.Lock()
	if len(f.events) >= feedLimit {
		f.dropped++
	} else {
		f.events = append(f.events, ev)
	}
	f.mu.Unlock()
	f.ring()
}

// Progress records what a flow is waiting for (flows.Env.Progress), for the
// screen on top to show. Only the last few are kept.
func (f *TraceFeed) Progress(msg string) {
	f.mu.Lock()
	if len(f.progress) >= 8 {
		f.progress = f.progress[1:]
	}
	f.progress = append(f.progress, msg)
	f.mu.Unlock()
	f.ring()
}

// ring wakes the forwarder, unless it has been woken already.
func (f *TraceFeed) ring() {
	select {
	case f.bell <- struct{}{}:
	default:
	}
}

// take empties the feed.
func (f *TraceFeed) take() (events []client.Event, progress []string, dropped int) {
	if f == nil {
		return nil, nil, 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	events, progress, dropped = f.events, f.progress, f.dropped
	f.events, f.progress, f.dropped = nil, nil, 0
	return events, progress, dropped
}

// forward sends a TraceMsg through send (a program's Send, which waits for
// the event loop) each time the feed has news, until ctx ends. It runs on
// a goroutine of its own, so that the flows never wait on the loop.
func (f *TraceFeed) forward(ctx context.Context, send func(tea.Msg)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.bell:
			send(TraceMsg{})
		}
	}
}

// TraceMsg says the trace feed has news; the root model reads it.
type TraceMsg struct{}

// ProgressMsg is what a flow is waiting for (flows.Env.Progress), passed to
// the screen on top: the browser screen shows the hint about a callback
// that does not come, the second-factor screen the wait for a fresh code.
type ProgressMsg struct{ Text string }

// traceLog is the trace of the last flow started. It lives on the event
// loop: only the root model and the screens touch it.
type traceLog struct {
	title   string // the flow, as the pane's heading names it
	gen     int    // counts begin calls, so that the pane can tell a new flow
	events  []client.Event
	dropped int
}

// begin starts the trace of a new flow: the events of the last one go.
func (l *traceLog) begin(title string) {
	l.title, l.events, l.dropped = title, nil, 0
	l.gen++
}

func (l *traceLog) add(evs []client.Event, dropped int) {
	l.dropped += dropped
	if n := len(l.events) + len(evs) - logLimit; n > 0 {
		// Keep the newest: a flow that failed did so at its end.
		evs = evs[min(n, len(evs)):]
		l.dropped += n
		if k := len(l.events) + len(evs) - logLimit; k > 0 {
			l.events = l.events[k:]
		}
	}
	l.events = append(l.events, evs...)
}

// failed counts the checks that did not pass.
func (l *traceLog) failed() int {
	n := 0
	for _, e := range l.events {
		if e.Check != nil && !e.Check.OK {
			n++
		}
	}
	return n
}

// tracedScreen is a flow screen: while one is on top, the trace records,
// and its help offers the pane.
type tracedScreen interface {
	Component
	traced()
}

func (*oauthRun) traced() {}
func (*login) traced()    {}
func (*mfa) traced()      {}
func (*signup) traced()   {}
func (*mfaSetup) traced() {}

// withTraceKey is a flow screen as the help line sees it: its keys and the
// trace pane's.
type withTraceKey struct {
	Component
	trace key.Binding
}

func (w withTraceKey) ShortHelp() []key.Binding {
	return append(slices.Clip(w.Component.ShortHelp()), w.trace)
}

func (w withTraceKey) FullHelp() [][]key.Binding {
	return append(w.Component.FullHelp(), []key.Binding{w.trace})
}

// drainTrace moves the feed's news into the trace while a flow screen is on
// top (the rest of the interface's calls, the dashboard's reloads, belong
// to no flow), and hands progress messages to the screen on top.
func (a *App) drainTrace() tea.Cmd {
	evs, progress, dropped := a.common.feed.take()
	if _, ok := a.top().(tracedScreen); ok && (len(evs) > 0 || dropped > 0) {
		a.common.trace.add(evs, dropped)
	}
	var cmds []tea.Cmd
	for _, p := range progress {
		s, cmd := a.top().Update(ProgressMsg{Text: p})
		a.stack[len(a.stack)-1] = s
		cmds = append(cmds, cmd)
	}
	return tea.Batch(cmds...)
}

// paneKey handles a key while the trace pane is open, or ctrl+t opening
// it; handled is false for a key the screen below should get.
func (a *App) paneKey(msg tea.KeyPressMsg) (cmd tea.Cmd, handled bool) {
	km := a.common.KeyMap
	if a.pane.open {
		if key.Matches(msg, km.Help) {
			// The pane has no text field: ? opens the key list.
			a.toggleHelp()
			return nil, true
		}
		return a.pane.key(msg)
	}
	if !key.Matches(msg, km.Trace) {
		return nil, false
	}
	if _, ok := a.top().(tracedScreen); !ok && len(a.common.trace.events) == 0 {
		return nil, false // nothing traced yet, and no flow to watch
	}
	a.pane.show(a.top())
	a.resize()
	return nil, true
}

// keepPane closes the pane when the screen it was opened over is gone for
// one that is not a flow screen: the password step's pane stays open on
// the second-factor step, but a login that succeeded shows the dashboard.
func (a *App) keepPane() {
	if !a.pane.open || a.pane.over == a.top() {
		return
	}
	if _, ok := a.top().(tracedScreen); ok {
		a.pane.over = a.top()
		return
	}
	a.pane.open = false
	a.resize()
}

// active is what the chrome and the body show: the pane when it is open,
// else the screen on top, with the trace key in its help on a flow screen,
// or anywhere once a flow has been traced (the dashboard after a login).
func (a *App) active() Component {
	if a.pane.open {
		return a.pane
	}
	_, ok := a.top().(tracedScreen)
	if ok || len(a.common.trace.events) > 0 {
		return withTraceKey{Component: a.top(), trace: a.common.KeyMap.Trace}
	}
	return a.top()
}

// traceSummary is the pane's heading: the flow and what the trace holds.
func traceSummary(l *traceLog) string {
	parts := []string{plural(len(l.events), "event")}
	if n := l.failed(); n > 0 {
		parts = append(parts, fmt.Sprintf("%d failed", n))
	}
	if l.dropped > 0 {
		parts = append(parts, fmt.Sprintf("%d dropped", l.dropped))
	}
	return strings.Join(parts, " · ")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
