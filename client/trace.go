package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Event is one thing a trace records, already redacted: an HTTP exchange
// with a server or provider, a check latch made on what came back, or a
// step of a flow. Exactly one of Exchange and Check is set for those kinds;
// a step has only Note.
type Event struct {
	Time     time.Time
	Exchange *Exchange `json:",omitempty"`
	Check    *Check    `json:",omitempty"`
	Note     string    `json:",omitempty"`
}

// Exchange is one HTTP request and its answer, with secrets redacted by
// rule (see the redaction in this file's implementation).
type Exchange struct {
	Method         string
	URL            string
	Status         int           // 0 when no answer came
	Duration       time.Duration // from sending to the last byte of the body
	RequestHeader  http.Header
	RequestBody    string
	ResponseHeader http.Header
	ResponseBody   string
	Err            string // why no answer came, when none did
}

// Check is one verification latch made (state, iss, nonce, signature, aud,
// exp, PKCE…): its name, whether it passed, and what was compared.
type Check struct {
	Name   string
	OK     bool
	Detail string
}

// Tracer receives trace events. It must be safe for concurrent use and must
// not block for long: it runs on the caller's goroutine.
type Tracer func(Event)

// TraceAuthorizeURL tells t (when set) of an authorization request about to
// be opened in the browser, its URL redacted: the step every browser flow
// takes without an HTTP exchange of latch's own.
func TraceAuthorizeURL(t Tracer, rawURL string) {
	if t == nil {
		return
	}
	t(Event{Time: time.Now(), Note: "authorization request: GET " + RedactURL(rawURL)})
}

// traceCapture bounds what is kept of a body for redaction; redaction needs
// the whole of a JSON body to parse it, and every answer is capped at
// MaxResponseBytes anyway.
const traceCapture = MaxResponseBytes + 1

// exchangeRecord is one exchange being traced: what was sent, kept until
// the answer is complete.
type exchangeRecord struct {
	trace  Tracer
	start  time.Time
	method string
	url    string
	header http.Header
	body   string
	once   sync.Once
}

// beginExchange starts tracing req, which it returns with its body still
// readable (a copy when the body had to be read). Nil when t is nil: the
// nil record's methods do nothing, so an untraced call costs one test.
func beginExchange(t Tracer, req *http.Request) (*exchangeRecord, *http.Request) {
	if t == nil {
		return nil, req
	}
	r := &exchangeRecord{trace: t, start: time.Now(), method: req.Method, url: RedactURL(req.URL.String()),
		header: redactHeader(req.Header)}
	if req.Body == nil || req.Body == http.NoBody {
		return r, req
	}
	var body []byte
	if req.GetBody != nil {
		if rc, err := req.GetBody(); err == nil {
			body, _ = io.ReadAll(io.LimitReader(rc, traceCapture))
			rc.Close()
		}
	} else {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		req = req.Clone(req.Context())
		if err != nil {
			req.Body = io.NopCloser(errReader{err}) // the send fails as it would have
		} else {
			req.Body = io.NopCloser(bytes.NewReader(b))
			req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		}
		body = b
	}
	r.body = redactBody(req.Header, body)
	return r, req
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// end reports the exchange: the answer (resp and the body read from it,
// complete or not) or, with resp nil, why none came.
func (r *exchangeRecord) end(resp *http.Response, body []byte, complete bool, err error) {
	if r == nil {
		return
	}
	r.once.Do(func() {
		x := &Exchange{Method: r.method, URL: r.url, Duration: time.Since(r.start), RequestHeader: r.header,
			RequestBody: r.body}
		if resp != nil {
			x.Status = resp.StatusCode
			x.ResponseHeader = redactHeader(resp.Header)
			x.ResponseBody = redactBody(resp.Header, body)
			if !complete && err == nil {
				x.ResponseBody += "…(not read to its end)"
			}
		}
		if err != nil {
			x.Err = redactText(err.Error())
		}
		r.trace(Event{Time: r.start, Exchange: x})
	})
}

// traceTransport traces every exchange through base, reporting each when
// its answer's body has been read to its end or closed.
type traceTransport struct {
	base  http.RoundTripper
	trace Tracer
}

func (t *traceTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec, req := beginExchange(t.trace, req)
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		rec.end(nil, nil, false, err)
		return nil, err
	}
	resp.Body = &tracedBody{rc: resp.Body, rec: rec, resp: resp}
	return resp, nil
}

// tracedBody keeps what its reader reads, up to traceCapture, and ends the
// record at EOF, on a read error or when closed.
type tracedBody struct {
	rc   io.ReadCloser
	rec  *exchangeRecord
	resp *http.Response
	buf  []byte
}

func (b *tracedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if room := traceCapture - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(n, room)]...)
	}
	switch {
	case errors.Is(err, io.EOF):
		b.rec.end(b.resp, b.buf, true, nil)
	case err != nil:
		b.rec.end(b.resp, b.buf, false, err)
	}
	return n, err
}

func (b *tracedBody) Close() error {
	whole := b.resp.ContentLength >= 0 && int64(len(b.buf)) == b.resp.ContentLength
	b.rec.end(b.resp, b.buf, whole, nil)
	return b.rc.Close()
}

// WriteText prints ev for a person, in the shape of gh's GH_DEBUG=api:
// "> " lines for the request, "< " lines for the answer, bodies after a
// blank line (JSON indented), "* " lines for checks and steps.
func (ev Event) WriteText(w io.Writer) error {
	var b bytes.Buffer
	switch {
	case ev.Exchange != nil:
		x := ev.Exchange
		fmt.Fprintf(&b, "> %s %s\n", x.Method, x.URL)
		writeHeaderLines(&b, "> ", x.RequestHeader)
		writeBodyText(&b, x.RequestBody)
		if x.Status == 0 {
			fmt.Fprintf(&b, "< no answer (%s): %s\n\n", ShortDuration(x.Duration), x.Err)
			break
		}
		fmt.Fprintf(&b, "< HTTP %d %s (%s)\n", x.Status, http.StatusText(x.Status), ShortDuration(x.Duration))
		writeHeaderLines(&b, "< ", x.ResponseHeader)
		writeBodyText(&b, x.ResponseBody)
		if x.Err != "" {
			fmt.Fprintf(&b, "< the body broke off: %s\n", x.Err)
		}
		if x.ResponseBody == "" || x.Err != "" {
			b.WriteString("\n") // a blank line ends every exchange
		}
	case ev.Check != nil:
		fmt.Fprintf(&b, "* check %s %s", ev.Check.Name, ev.Check.Mark())
		if ev.Check.Detail != "" {
			b.WriteString(" " + ev.Check.Detail)
		}
		b.WriteString("\n")
	default:
		fmt.Fprintf(&b, "* %s\n", ev.Note)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// Mark is a check's outcome as the trace prints it: ✓ or ✗.
func (c Check) Mark() string {
	if c.OK {
		return "✓"
	}
	return "✗"
}

func writeHeaderLines(b *bytes.Buffer, prefix string, h http.Header) {
	for _, l := range HeaderLines(h) {
		b.WriteString(prefix + l + "\n")
	}
}

// HeaderLines are h's fields as the trace prints them: "Name: value", one
// line per value (Set-Cookie values may not be joined), names in order.
func HeaderLines(h http.Header) []string {
	var out []string
	for _, name := range sortedHeaderNames(h) {
		for _, v := range h[name] {
			out = append(out, name+": "+v)
		}
	}
	return out
}

func writeBodyText(b *bytes.Buffer, body string) {
	if body == "" {
		return
	}
	b.WriteString("\n")
	if ind, ok := IndentJSON(body); ok {
		b.WriteString(ind)
	} else {
		b.WriteString(body)
	}
	b.WriteString("\n\n")
}

// IndentJSON is body indented as the trace prints a JSON body, and whether
// body is JSON at all.
func IndentJSON(body string) (string, bool) {
	var ind bytes.Buffer
	if json.Indent(&ind, []byte(body), "", "  ") != nil {
		return "", false
	}
	return ind.String(), true
}

// ShortDuration keeps a duration short for a trace: 34ms, 1.2s, 850µs.
func ShortDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Microsecond)
}

// eventJSON is the --debug=json line of an event: one object, its type
// first, durations in milliseconds, bodies as the (redacted) text sent.
type eventJSON struct {
	Type       string       `json:"type"` // exchange, check or note
	Time       time.Time    `json:"time"`
	Method     string       `json:"method,omitempty"`
	URL        string       `json:"url,omitempty"`
	Status     int          `json:"status,omitempty"`
	DurationMS float64      `json:"duration_ms,omitempty"`
	Request    *messageJSON `json:"request,omitempty"`
	Response   *messageJSON `json:"response,omitempty"`
	Error      string       `json:"error,omitempty"`
	Name       string       `json:"name,omitempty"`
	OK         *bool        `json:"ok,omitempty"`
	Detail     string       `json:"detail,omitempty"`
	Note       string       `json:"note,omitempty"`
}

type messageJSON struct {
	Headers http.Header `json:"headers,omitempty"`
	Body    string      `json:"body,omitempty"`
}

// WriteJSON writes ev as one line of JSON, for tools.
func (ev Event) WriteJSON(w io.Writer) error {
	j := eventJSON{Type: "note", Time: ev.Time, Note: ev.Note}
	switch {
	case ev.Exchange != nil:
		x := ev.Exchange
		j.Type, j.Method, j.URL, j.Status, j.Error = "exchange", x.Method, x.URL, x.Status, x.Err
		j.DurationMS = float64(x.Duration.Microseconds()) / 1000
		j.Request = &messageJSON{Headers: x.RequestHeader, Body: x.RequestBody}
		if x.Status != 0 {
			j.Response = &messageJSON{Headers: x.ResponseHeader, Body: x.ResponseBody}
		}
	case ev.Check != nil:
		ok := ev.Check.OK
		j.Type, j.Name, j.OK, j.Detail = "check", ev.Check.Name, &ok, ev.Check.Detail
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // a form body stays readable: & not \u0026
	if err := enc.Encode(j); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}

// sortedHeaderNames lists h's names in order, for a stable print.
func sortedHeaderNames(h http.Header) []string {
	names := make([]string, 0, len(h))
	for n := range h {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// withKnownSecrets wraps t so that the secrets given (a client secret)
// are masked wherever they appear in an event, in the forms a provider
// may echo them (as sent, form- or path-encoded, JSON- or HTML-escaped):
// the redaction rules (trace_redact.go) catch a secret by its name or its
// random look, not one like "opensesame-please" quoted in an
// error_description or an HTML page.
// Secrets shorter than 4 characters are left, as by redact.
func withKnownSecrets(t Tracer, secrets ...string) Tracer {
	if t == nil {
		return nil
	}
	var forms []string
	for _, s := range secrets {
		if len(s) < 4 {
			continue
		}
		j, _ := json.Marshal(s)
		forms = append(forms, s, url.QueryEscape(s), url.PathEscape(s), string(j[1:len(j)-1]), html.EscapeString(s))
	}
	if len(forms) == 0 {
		return t
	}
	// Longest first, so that a form holding another is replaced whole.
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	forms = slices.Compact(forms)
	pairs := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		pairs = append(pairs, f, masked)
	}
	r := strings.NewReplacer(pairs...)
	return func(ev Event) {
		ev.Note = r.Replace(ev.Note)
		if c := ev.Check; c != nil {
			ev.Check = &Check{Name: c.Name, OK: c.OK, Detail: r.Replace(c.Detail)}
		}
		if x := ev.Exchange; x != nil {
			y := *x
			y.URL, y.RequestBody, y.ResponseBody, y.Err = r.Replace(x.URL), r.Replace(x.RequestBody),
				r.Replace(x.ResponseBody), r.Replace(x.Err)
			y.RequestHeader, y.ResponseHeader = replaceHeader(r, x.RequestHeader), replaceHeader(r, x.ResponseHeader)
			ev.Exchange = &y
		}
		t(ev)
	}
}

func replaceHeader(r *strings.Replacer, h http.Header) http.Header {
	if h == nil {
		return nil
	}
	out := make(http.Header, len(h))
	for name, vs := range h {
		c := make([]string, len(vs))
		for i, v := range vs {
			c[i] = r.Replace(v)
		}
		out[name] = c
	}
	return out
}
