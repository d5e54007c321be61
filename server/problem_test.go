package server

import (
	"context"
	"database/sql/driver"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDecodeOneValue(t *testing.T) {
	for _, tc := range []struct {
		body, ct string
		status   int
		detail   string
	}{
		{`{"username":"a"}`, "application/json", 0, ""},
		{"{} \r\n\t", "application/json; charset=utf-8", 0, ""},
		{`{}}`, "application/json", 400, "exactly one JSON object"},
		{`{"username":"a"}]`, "application/json", 400, "exactly one JSON object"},
		{`{}{}`, "application/json", 400, "exactly one JSON object"},
		{`{} x`, "application/json", 400, "exactly one JSON object"},
		{`{"username":1}`, "application/json", 400, `field "Username" must be a string`},
		{`[]`, "application/json", 400, "the body must be a JSON object"},
		{``, "application/json", 400, "the body is empty"},
		{`{}`, "text/plain", 415, "application/json"},
		{`{"username":"` + strings.Repeat("a", maxBody) + `"}`, "application/json", 413, "64 KiB"},
		{`{}` + strings.Repeat(" ", maxBody), "application/json", 413, "64 KiB"},
	} {
		r := httptest.NewRequest("POST", "/auth/register", strings.NewReader(tc.body))
		r.Header.Set("Content-Type", tc.ct)
		var v struct{ Username string }
		err := decode(httptest.NewRecorder(), r, &v)
		name := tc.body
		if len(name) > 20 {
			name = name[:20] + "…"
		}
		if tc.status == 0 {
			if err != nil {
				t.Errorf("%q: %v", name, err)
			}
			continue
		}
		p, ok := err.(*problem)
		if !ok || p.Status != tc.status || !strings.Contains(p.Detail, tc.detail) {
			t.Errorf("%q: %v, want %d with %q", name, err, tc.status, tc.detail)
		}
	}
}

// A request whose client went away is not a server fault, whatever error the
// cancellation caused on the way (PostgreSQL's driver reports a dropped
// connection as driver.ErrBadConn, not as context.Canceled).
func TestAbandonedRequestIsNotAnError(t *testing.T) {
	e := newEnv(t)
	for _, err := range []error{context.Canceled, driver.ErrBadConn} {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r := httptest.NewRequestWithContext(ctx, "POST", "/auth/refresh", nil)
		w := httptest.NewRecorder()
		e.srv.writeError(w, r, fmt.Errorf("rotate: %w", err))
		if w.Code != 499 || strings.Contains(e.logs.String(), "request failed") {
			t.Fatalf("%v after the client left: %d, log %s", err, w.Code, e.logs.String())
		}
	}
}
