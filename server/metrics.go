package server

import (
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
)

// counter is a Prometheus counter with one label whose values are fixed up
// front, so that a series exists (at 0) before its first event.
type counter struct {
	name, help, label string
	values            []string
	n                 []atomic.Int64
}

func newCounter(name, help, label string, values ...string) *counter {
	return &counter{name: name, help: help, label: label, values: values, n: make([]atomic.Int64, len(values))}
}

// inc counts one event with label value v. An unknown value is a programming
// error and panics in tests rather than vanish.
func (c *counter) inc(v string) {
	for i, x := range c.values {
		if x == v {
			c.n[i].Add(1)
			return
		}
	}
	panic(fmt.Sprintf("metrics: %s has no %s=%q", c.name, c.label, v))
}

func (c *counter) get(v string) int64 {
	for i, x := range c.values {
		if x == v {
			return c.n[i].Load()
		}
	}
	return 0
}

func (c *counter) write(w io.Writer) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", c.name, c.help, c.name)
	for i, v := range c.values {
		fmt.Fprintf(w, "%s{%s=%q} %d\n", c.name, c.label, v, c.n[i].Load())
	}
}

// metrics are the server's counters, exposed at /metrics in the Prometheus
// text format.
type metrics struct {
	registrations, logins, refreshes, logouts, requests *counter
	mfa, mfaChanges                                     *counter
	oauthTokens, oauthDenied                            *counter
	mail                                                *counter
}

func newMetrics() *metrics {
	return &metrics{
		registrations: newCounter("latch_registrations_total", "Registration attempts by result.", "result",
			"ok", "invalid", "conflict", "limited"),
		logins: newCounter("latch_logins_total", "Login attempts by result.", "result",
			"ok", "mfa_required", "failed", "limited"),
		refreshes: newCounter("latch_refreshes_total", "Refresh-token presentations by outcome.", "result",
			refreshRotated, refreshGrace, refreshReused, refreshInvalid, "limited"),
		logouts: newCounter("latch_logouts_total", "Logout requests by result.", "result",
			"revoked", "noop"),
		mfa: newCounter("latch_mfa_total", "Second-factor codes submitted, by result.", "result",
			codeTOTP, codeBackup, codeInvalid, codeReplayed, mfaExpired, mfaExceeded, "limited"),
		mfaChanges: newCounter("latch_mfa_changes_total", "Changes to accounts' second factor.", "action",
			"setup", "enabled", "disabled", "backup_codes"),
		oauthTokens: newCounter("latch_oauth_tokens_total", "Tokens issued by the OpenID provider, by grant.", "grant",
			"authorization_code", "refresh_token", "device_code"),
		oauthDenied: newCounter("latch_oauth_denied_total", "Authorizations the user denied, by flow.", "flow",
			"browser", "device"),
		mail: newCounter("latch_mail_total", "Mail through the outbox: queued, sent, failed attempts, abandoned.", "result",
			"queued", "sent", "failed", "abandoned"),
		requests: newCounter("latch_http_responses_total", "HTTP responses by status class.", "code",
			"1xx", "2xx", "3xx", "4xx", "5xx"),
	}
}

func (m *metrics) serveHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	for _, c := range []*counter{m.registrations, m.logins, m.refreshes, m.logouts, m.mfa, m.mfaChanges, m.oauthTokens, m.oauthDenied, m.mail, m.requests} {
		c.write(w)
	}
}
