package client

import (
	"net/http"
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
