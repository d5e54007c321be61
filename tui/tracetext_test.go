package tui

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/latch-dev/latch/client"
)

// TestTraceTextSharesPrinter checks that the pane lays out an exchange's
// parts as latch --debug prints them (client.ShortDuration,
// client.HeaderLines, client.IndentJSON): short durations, one header
// value a line, a JSON body indented.
func TestTraceTextSharesPrinter(t *testing.T) {
	st := NewStyles(true)
	for _, tc := range []struct {
		name     string
		x        client.Exchange
		line     string   // in the one-line form
		details  []string // each a line of the open form, in order
		notInAny string   // in no line of the open form
	}{
		{"under a millisecond", client.Exchange{Method: "GET", URL: "http://idp/jwks", Status: 200, Duration: 850400 * time.Nanosecond},
			"GET /jwks → 200 (850µs)", []string{"took 850µs"}, "0ms"},
		{"seconds", client.Exchange{Method: "POST", URL: "http://idp/token", Status: 200, Duration: 1234 * time.Millisecond},
			"POST /token → 200 (1.2s)", []string{"took 1.2s"}, "1234ms"},
		{"set-cookie values apart", client.Exchange{Method: "GET", URL: "http://idp/", Status: 200, Duration: 3 * time.Millisecond,
			ResponseHeader: http.Header{"Set-Cookie": {"a=***; Expires=Mon, 30 Nov 2026 10:00:00 GMT", "b=***"}, "Cache-Control": {"no-store"}},
			ResponseBody:   `{"n":[1]}`},
			"GET / → 200 (3ms)",
			[]string{"< Cache-Control: no-store", "< Set-Cookie: a=***; Expires=Mon, 30 Nov 2026 10:00:00 GMT", "< Set-Cookie: b=***",
				`<   "n": [`, "<     1"}, "GMT, b="},
	} {
		ev := client.Event{Exchange: &tc.x}
		if got := eventLine(st, ev, 80); !strings.Contains(got, tc.line) {
			t.Errorf("%s: line %q, want %q in it", tc.name, got, tc.line)
		}
		lines := eventDetails(st, ev, 100)
		next := 0
		for _, l := range lines {
			if next < len(tc.details) && strings.Contains(l, tc.details[next]) {
				next++
			}
			if strings.Contains(l, tc.notInAny) {
				t.Errorf("%s: %q in the details", tc.name, l)
			}
		}
		if next < len(tc.details) {
			t.Errorf("%s: details lack %q (in order):\n%s", tc.name, tc.details[next], strings.Join(lines, "\n"))
		}
	}
}
