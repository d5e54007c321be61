// Package client owns HTTP access to latch's account API: it builds requests,
// enforces the wire contract on every response (status, content type, JSON
// shape, size) and turns RFC 9457 problems into typed errors.
//
// It must never log, print or format a secret (password, access, refresh or
// MFA token, TOTP secret or code, backup code) into an error message, and it
// never stores anything: no cookie jar, no token cache, no files. Persisting
// tokens is the caller's job.
package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/go-resty/resty/v2"
)

// MaxResponseBytes caps every response body; a larger body is an error, never
// read into memory in full.
const MaxResponseBytes = 1 << 20

const defaultTimeout = 10 * time.Second

// Options tunes a Client. The zero value is ready to use.
type Options struct {
	// Timeout bounds each call, from dialling to the last byte of the body.
	// Zero means 10 s.
	Timeout time.Duration
	// Insecure allows plain http:// to a host that is not loopback.
	Insecure bool
	// Version goes into the User-Agent as latch/<Version>; empty means "dev".
	Version string
	// Transport replaces the HTTP transport (tests, custom TLS). Nil means a
	// default transport that honours the proxy environment variables.
	Transport http.RoundTripper
	// Trace, when set, is told of every HTTP exchange, redacted, after it
	// ends (--debug, the interface's trace pane).
	Trace Tracer
	// CAFile names a PEM file of certificate authorities to trust besides
	// the system's, for a provider or server with a private CA.
	CAFile string
}

// callTimeout bounds each call: Timeout, or defaultTimeout when unset.
func (o Options) callTimeout() time.Duration {
	if o.Timeout <= 0 {
		return defaultTimeout
	}
	return o.Timeout
}

// userAgent is latch/Version, or latch/dev when unset.
func (o Options) userAgent() string {
	if o.Version == "" {
		return "latch/dev"
	}
	return "latch/" + o.Version
}

// Client calls one latch server. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	http      *resty.Client
	timeout   time.Duration
	userAgent string
}

// New returns a Client for the server at baseURL (scheme and host, optionally
// a path prefix). Plain http:// is refused unless the host is loopback or
// opts.Insecure is set; the error then matches ErrInsecureURL.
func New(baseURL string, opts Options) (*Client, error) {
	base, err := parseBaseURL(baseURL, opts.Insecure)
	if err != nil {
		return nil, err
	}
	// Redirects are never followed: an API that redirects is misconfigured or
	// hostile, and following one is how an Authorization header or a password
	// ends up on another host. The caller sees the 3xx as an error instead.
	// No Jar: this package stores nothing, cookies included.
	transport, err := opts.baseTransport()
	if err != nil {
		return nil, err
	}
	if opts.Trace != nil {
		transport = &traceTransport{base: transport, trace: opts.Trace}
	}
	hc := &http.Client{
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	rc := resty.NewWithClient(hc).
		SetLogger(silentLogger{}).
		SetDisableWarn(true).
		SetDebug(false).
		SetRetryCount(0).
		SetResponseBodyLimit(MaxResponseBytes)
	return &Client{base: base, http: rc, timeout: opts.callTimeout(), userAgent: opts.userAgent()}, nil
}

// BaseURL returns the server URL the client talks to, without a trailing slash.
func (c *Client) BaseURL() string { return c.base.String() }

func parseBaseURL(raw string, insecure bool) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("server URL %q is not a valid URL", raw)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("server URL %q must start with https:// (or http:// for a local server)", raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("server URL %q has no host", raw)
	}
	if u.User != nil {
		// Never echo the URL back: it carries credentials.
		return nil, errors.New("server URL must not contain a user name or password")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("server URL %q must not have a query or fragment", raw)
	}
	if u.Scheme == "http" && !insecure && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("%w: %s uses plain http://, which would send passwords and tokens unencrypted; "+
			"use https://, or pass --insecure if you really mean it", ErrInsecureURL, u.Redacted())
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// isLoopback reports whether host never leaves this machine: localhost,
// 127.0.0.0/8 or ::1.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// reply is a complete, size-checked HTTP response.
type reply struct {
	method, path string
	status       int
	header       http.Header
	body         []byte
}

// errCallTimeout is the cause set on a call's context when Options.Timeout
// runs out, to tell it apart from the caller's own deadline.
var errCallTimeout = errors.New("call timed out")

// exchange sends one request and reads the whole response. Errors are
// transport errors (ErrUnreachable) or size/truncation errors (ErrBadResponse);
// any HTTP status, 3xx included, comes back as a reply for the caller to judge.
func (c *Client) exchange(ctx context.Context, method, path string, body []byte, token string) (*reply, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout, errCallTimeout)
	defer cancel()

	req := c.http.R().
		SetContext(ctx).
		SetHeader("User-Agent", c.userAgent).
		SetHeader("Accept", "application/json, application/problem+json")
	if body != nil {
		req.SetHeader("Content-Type", "application/json").SetBody(body)
	}
	if token != "" {
		req.SetHeader("Authorization", "Bearer "+token)
	}
	// Built here rather than with resty's base URL so that nothing a caller
	// passes can turn into an absolute URL on another host.
	target := c.base.String() + path
	resp, err := req.Execute(method, target)
	if err != nil {
		gotHeaders := resp != nil && resp.RawResponse != nil
		return nil, c.transportError(ctx, method, path, gotHeaders, resp, err)
	}
	return &reply{
		method: method,
		path:   path,
		status: resp.StatusCode(),
		header: resp.Header(),
		body:   resp.Body(),
	}, nil
}

// transportError explains a failed exchange without quoting the request (the
// body and headers may hold secrets) and without the query string.
func (c *Client) transportError(ctx context.Context, method, path string, gotHeaders bool, resp *resty.Response, err error) error {
	op := method + " " + stripQuery(path)
	cause := err
	var ue *url.Error
	if errors.As(err, &ue) {
		cause = ue.Err // url.Error repeats the full URL
	}
	switch {
	case errors.Is(context.Cause(ctx), errCallTimeout):
		return &unreachableError{op: op, msg: fmt.Sprintf("no complete answer from %s within %s; the server is slow or down",
			c.base.Host, c.timeout), err: context.DeadlineExceeded}
	case ctx.Err() != nil:
		// The caller cancelled or its own deadline passed: not the server's fault.
		return fmt.Errorf("%s: %w", op, ctx.Err())
	case gotHeaders && errors.Is(err, resty.ErrResponseBodyTooLarge):
		return &ResponseError{Status: resp.StatusCode(), op: op,
			Reason: fmt.Sprintf("response body is larger than %d KiB; is --server pointing at latch?", MaxResponseBytes>>10)}
	case gotHeaders && errors.Is(err, io.ErrUnexpectedEOF):
		return &ResponseError{Status: resp.StatusCode(), op: op,
			Reason: "response body was cut off before its end (truncated); try again"}
	case gotHeaders:
		return &ResponseError{Status: resp.StatusCode(), op: op,
			Reason: "reading the response body failed: " + cause.Error()}
	case strings.Contains(cause.Error(), "failed to parse Location header"):
		// net/http parses a redirect's Location before CheckRedirect can
		// stop it, and has no error type for it: the server did answer.
		return &ResponseError{op: op,
			Reason: "the server redirects to an unparsable location; latch does not follow redirects, so check --server"}
	}
	return &unreachableError{op: op, msg: "cannot reach " + c.base.Host + ": " + describeDialError(cause) +
		"; check --server and that the server is running", err: cause}
}

func describeDialError(err error) string {
	if s := tlsAdvice(err); s != "" {
		return s
	}
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns):
		return "host name not found"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	}
	return err.Error()
}

func stripQuery(path string) string {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		return path[:i]
	}
	return path
}

// silentLogger keeps resty quiet: this package never logs.
type silentLogger struct{}

func (silentLogger) Errorf(string, ...any) {}
func (silentLogger) Warnf(string, ...any)  {}
func (silentLogger) Debugf(string, ...any) {}
