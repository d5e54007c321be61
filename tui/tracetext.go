package tui

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"charm.land/lipgloss/v2"

	"github.com/latch-dev/latch/client"
)

// bodyLinesShown bounds a body in the pane; the saved trace has it whole.
const bodyLinesShown = 60

// eventLine is an event in one line of at most w cells: a step, a check
// with ✓ or ✗, or an exchange as "POST /token → 200 (34ms)".
func eventLine(st *Styles, ev client.Event, w int) string {
	switch {
	case ev.Exchange != nil:
		x := ev.Exchange
		head := x.Method + " "
		tail := " → " + statusText(x)
		if x.Status == 0 && x.Err != "" {
			tail = " ✗ " + x.Err
		} else if w >= 40 {
			tail += " (" + client.ShortDuration(x.Duration).String() + ")"
		}
		// The path gives way first: the answer is what a reader looks for.
		room := w - lipgloss.Width(head) - min(lipgloss.Width(tail), w/2)
		line := head + truncate(pathOf(x.URL), max(room, 1)) + tail
		return exchangeStyle(st, x).Render(truncate(line, w))
	case ev.Check != nil:
		return checkStyle(st, ev.Check).Render(truncate(checkText(ev.Check), w))
	}
	return st.Subtle.Render(truncate("· "+ev.Note, w))
}

func checkText(c *client.Check) string {
	mark := c.Mark() + " "
	if c.Detail == "" {
		return mark + c.Name
	}
	return mark + c.Name + ": " + c.Detail
}

func checkStyle(st *Styles, c *client.Check) lipgloss.Style {
	if c.OK {
		return st.OK
	}
	return st.Error
}

// exchangeStyle marks a refusal (a 4xx, often expected: a device login's
// authorization_pending) apart from a failure.
func exchangeStyle(st *Styles, x *client.Exchange) lipgloss.Style {
	switch {
	case x.Status == 0 || x.Status >= 500:
		return st.Error
	case x.Status >= 400:
		return st.Warn
	}
	return st.Value
}

func statusText(x *client.Exchange) string {
	if x.Status == 0 {
		return "no answer"
	}
	return fmt.Sprint(x.Status)
}

func traceTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("15:04:05.000")
}

// eventDetails are the lines under an open event, each at most w cells:
// an exchange's URL, time, headers and bodies; a check's or a step's whole
// text.
func eventDetails(st *Styles, ev client.Event, w int) []string {
	w = max(w, 8)
	wrap := func(style func(...string) string, prefix, s string) []string {
		var out []string
		for _, l := range hardWrap(s, w-lipgloss.Width(prefix)) {
			out = append(out, style(prefix+l))
		}
		return out
	}
	subtle, value := st.Subtle.Render, st.Value.Render
	var out []string
	when := traceTime(ev.Time)
	switch {
	case ev.Exchange != nil:
		x := ev.Exchange
		out = append(out, wrap(value, "", x.Method+" "+x.URL)...)
		out = append(out, subtle(sentence("at "+when, "took "+client.ShortDuration(x.Duration).String())))
		for _, l := range client.HeaderLines(x.RequestHeader) {
			out = append(out, wrap(subtle, "> ", l)...)
		}
		out = append(out, bodyDetails(subtle, value, "> ", x.RequestBody, x.RequestHeader, w)...)
		if x.Status == 0 {
			out = append(out, wrap(st.Error.Render, "✗ ", firstOf(x.Err, "no answer"))...)
			return out
		}
		out = append(out, exchangeStyle(st, x).Render(truncate("< "+fmt.Sprint(x.Status)+" "+http.StatusText(x.Status), w)))
		for _, l := range client.HeaderLines(x.ResponseHeader) {
			out = append(out, wrap(subtle, "< ", l)...)
		}
		out = append(out, bodyDetails(subtle, value, "< ", x.ResponseBody, x.ResponseHeader, w)...)
	case ev.Check != nil:
		out = append(out, wrap(checkStyle(st, ev.Check).Render, "", checkText(ev.Check))...)
		if when != "" {
			out = append(out, subtle("at "+when))
		}
	default:
		out = append(out, wrap(value, "", ev.Note)...)
		if when != "" {
			out = append(out, subtle("at "+when))
		}
	}
	return out
}

// bodyDetails is a body under a blank prefixed line, cut at
// bodyLinesShown.
func bodyDetails(subtle, value func(...string) string, prefix, body string, h http.Header, w int) []string {
	lines := bodyLines(body, h.Get("Content-Type"))
	if len(lines) == 0 {
		return nil
	}
	out := []string{subtle(strings.TrimSpace(prefix))}
	for i, l := range lines {
		if i == bodyLinesShown {
			out = append(out, subtle(fmt.Sprintf("%s… %d more lines: s saves the whole trace", prefix, len(lines)-i)))
			break
		}
		for _, piece := range hardWrap(l, w-lipgloss.Width(prefix)) {
			out = append(out, subtle(prefix)+value(piece))
		}
	}
	return out
}

// bodyLines lays a body out to read: JSON indented as --debug prints it,
// a form one field a line, anything else as it came.
func bodyLines(body, contentType string) []string {
	if strings.TrimSpace(body) == "" {
		return nil
	}
	if ind, ok := client.IndentJSON(body); ok {
		return strings.Split(ind, "\n")
	}
	if strings.HasPrefix(contentType, "application/x-www-form-urlencoded") {
		var out []string
		for _, kv := range strings.Split(body, "&") {
			if s, err := url.QueryUnescape(kv); err == nil {
				kv = s
			}
			out = append(out, kv)
		}
		return out
	}
	return strings.Split(strings.TrimRight(body, "\n"), "\n")
}

// writeTrace prints a trace as latch --debug does (client.Event.WriteText,
// in the shape of gh's GH_DEBUG=api), under a heading that names the flow.
func writeTrace(w io.Writer, title string, evs []client.Event, dropped int) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# latch trace of the %s: %s", firstOf(title, "flow"), plural(len(evs), "event"))
	if dropped > 0 {
		fmt.Fprintf(&b, " (%d more dropped: the interface fell behind)", dropped)
	}
	if len(evs) > 0 {
		fmt.Fprintf(&b, ", from %s", evs[0].Time.Local().Format(time.RFC3339))
	}
	b.WriteString("\n\n")
	for _, ev := range evs {
		if err := ev.WriteText(&b); err != nil {
			return err
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// saveTrace writes a trace to latch-trace-<time>.txt, readable by its
// owner only, in dir; when dir is "", in the current directory, else (it
// cannot be written) in latch's home. It returns the file's path.
func saveTrace(dir, home string, now time.Time, title string, evs []client.Event, dropped int) (string, error) {
	dirs := []string{dir}
	if dir == "" {
		dirs = []string{".", home}
	}
	var firstErr error
	for _, d := range dirs {
		f, err := createTraceFile(d, now)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		err = writeTrace(f, title, evs, dropped)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(f.Name())
			return "", fmt.Errorf("write %s: %w", f.Name(), err)
		}
		if abs, err := filepath.Abs(f.Name()); err == nil {
			return abs, nil
		}
		return f.Name(), nil
	}
	return "", firstErr
}

// createTraceFile makes a new 0600 file named for now in dir, never
// replacing one: a second save in the same second gets a suffix.
func createTraceFile(dir string, now time.Time) (*os.File, error) {
	base := filepath.Join(dir, "latch-trace-"+now.Format("20060102-150405"))
	for i := 1; i <= 50; i++ {
		name := base + ".txt"
		if i > 1 {
			name = fmt.Sprintf("%s-%d.txt", base, i)
		}
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, fmt.Errorf("%s: 50 traces saved in one second already", base)
}
