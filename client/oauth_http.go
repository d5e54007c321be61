package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode"

	"golang.org/x/oauth2"
)

// guard is the transport under every call to an OpenID provider, made by
// this package, x/oauth2 or go-oidc alike. It reads each body whole (at most
// MaxResponseBytes) so that an oversized or truncated answer is an error
// before any library sees it, and, for requests whose context asks for it
// (see expectJSON), refuses anything but a 200 JSON answer with the same
// errors as the latch API calls. The libraries quote bodies in their own
// errors; a refused answer never reaches them. With trace set, it reports
// each exchange, redacted, refused or not.
type guard struct {
	base      http.RoundTripper
	userAgent string
	trace     Tracer
}

// transportError marks a failure to get any answer at all.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

type expectKey struct{}

// expectJSON asks guard to accept only a 200 answer of one of the media
// types (application/json when none is given).
func expectJSON(ctx context.Context, types ...string) context.Context {
	if len(types) == 0 {
		types = []string{"application/json"}
	}
	return context.WithValue(ctx, expectKey{}, types)
}

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("User-Agent", g.userAgent)
	base := g.base
	if base == nil {
		base = http.DefaultTransport
	}
	rec, req := beginExchange(g.trace, req)
	resp, err := base.RoundTrip(req)
	if err != nil {
		rec.end(nil, nil, false, err)
		return nil, &transportError{err: err}
	}
	op := req.Method + " " + req.URL.Path
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	resp.Body.Close()
	rec.end(resp, body, err == nil, err)
	switch {
	case err != nil && req.Context().Err() != nil:
		return nil, &transportError{err: err}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, &ResponseError{Status: resp.StatusCode, op: op, Reason: "response body was cut off before its end (truncated); try again"}
	case err != nil:
		return nil, &ResponseError{Status: resp.StatusCode, op: op, Reason: "reading the response body failed: " + err.Error()}
	case len(body) > MaxResponseBytes:
		return nil, &ResponseError{Status: resp.StatusCode, op: op,
			Reason: fmt.Sprintf("response body is larger than %d KiB; is this an OpenID provider?", MaxResponseBytes>>10)}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	if types, ok := req.Context().Value(expectKey{}).([]string); ok {
		if err := checkJSONAnswer(op, resp, body, types); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

func checkJSONAnswer(op string, resp *http.Response, body []byte, types []string) error {
	r := &reply{method: op[:strings.IndexByte(op, ' ')], path: op[strings.IndexByte(op, ' ')+1:],
		status: resp.StatusCode, header: resp.Header, body: body}
	if resp.StatusCode == http.StatusUnauthorized {
		return &APIError{Status: http.StatusUnauthorized, Type: "about:blank", Title: "the provider refused the access token"}
	}
	if resp.StatusCode != http.StatusOK {
		return providerAdvice(statusError(r, nil), r)
	}
	mt := mediaType(resp.Header)
	for _, t := range types {
		if mt != t {
			continue
		}
		if t == "application/json" && !json.Valid(body) {
			return &ResponseError{Status: resp.StatusCode, op: op, Reason: "the JSON body is malformed or truncated"}
		}
		return nil
	}
	return providerAdvice(&ResponseError{Status: resp.StatusCode, op: op, Reason: describeNonJSON(r)}, r)
}

// checkProviderURL is what to check when a provider's endpoint answers as
// no OpenID provider would: the URL came from --issuer or --server (its
// discovery document) or from an endpoint flag.
const checkProviderURL = "check the provider's URL (--issuer, --server, or the endpoint flag that gave it)"

// providerAdvice rewords the advice statusError and describeNonJSON give
// for the account API, which names --server and latch versions, for an
// endpoint of a provider.
func providerAdvice(err error, r *reply) error {
	var re *ResponseError
	if !errors.As(err, &re) {
		return err
	}
	switch {
	case r.status >= 300 && r.status < 400:
		re.Reason = "the provider redirects"
		if where := r.header.Get("Location"); where != "" {
			re.Reason += " to " + safeLocation(where)
		}
		re.Reason += "; latch does not follow redirects: " + checkProviderURL
	case r.status != http.StatusOK && r.status < 400:
		re.Reason = fmt.Sprintf("the provider answered %d where 200 and JSON were expected; %s", r.status, checkProviderURL)
	case len(r.body) > 0 && (mediaType(r.header) == "text/html" || looksLikeHTML(r.body)):
		re.Reason = "the provider answered with an HTML page instead of JSON; " + checkProviderURL +
			", or a proxy in front of the provider failed"
	}
	return err
}

// providerError turns what a call to the provider returned into this
// package's errors: ErrUnreachable when nothing came back, ErrBadResponse
// (a *ResponseError) for an answer that breaks the protocol, *OAuthError for
// an RFC 6749 error answer. Secrets are removed from anything quoted.
// callCtx is the call's own context (with the call timeout), ctx the caller's.
func (p *Provider) providerError(ctx, callCtx context.Context, op string, err error, refusal func(code string) error, secrets ...string) error {
	var (
		re  *ResponseError
		ae  *APIError
		te  *transportError
		oe  *oauth2.RetrieveError
		uer *url.Error
	)
	switch {
	case errors.As(err, &re):
		return re
	case errors.As(err, &ae):
		return ae
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", op, ctx.Err())
	case errors.Is(context.Cause(callCtx), errCallTimeout) || (errors.As(err, &uer) && uer.Timeout()):
		return &unreachableError{op: op, msg: fmt.Sprintf("no complete answer from %s within %s; the provider is slow or down",
			p.host, p.timeout), err: context.DeadlineExceeded}
	case errors.As(err, &te):
		cause := te.err
		return &unreachableError{op: op, msg: "cannot reach " + p.host + ": " + describeDialError(cause) +
			"; check the issuer URL and your network", err: cause}
	case errors.As(err, &oe):
		return retrieveError(op, oe, refusal, secrets)
	}
	return &ResponseError{op: op, Reason: clean(err.Error(), secrets)}
}

// retrieveError maps x/oauth2's token endpoint error. Its own Error quotes
// the body, so nothing of it is used unchecked.
func retrieveError(op string, e *oauth2.RetrieveError, refusal func(string) error, secrets []string) error {
	status := 0
	if e.Response != nil {
		status = e.Response.StatusCode
	}
	if e.ErrorCode != "" && status < 500 {
		oe := &OAuthError{Code: clean(e.ErrorCode, secrets), Description: clean(e.ErrorDescription, secrets), Status: status, op: op}
		if refusal != nil {
			oe.sentinel = refusal(e.ErrorCode)
		}
		return oe
	}
	if status >= 500 {
		return &ResponseError{Status: status, op: op, Reason: "the provider failed; try again later"}
	}
	var h http.Header
	if e.Response != nil {
		h = e.Response.Header
	}
	r := &reply{status: status, header: h, body: e.Body}
	return &ResponseError{Status: status, op: op, Reason: describeNonJSON(r)}
}

// OAuthError is an RFC 6749 error answer from a provider (error=…): the
// provider understood the request and said no. Match Code, or the sentinel
// the call documents (e.g. ErrInvalidRefreshToken for a refused refresh).
type OAuthError struct {
	Code        string // e.g. invalid_grant, access_denied
	Description string // the provider's error_description, cleaned and shortened
	Status      int
	op          string
	sentinel    error
}

func (e *OAuthError) Error() string {
	s := fmt.Sprintf("%s: the provider answered %s", e.op, e.Code)
	if e.Description != "" {
		s += " (" + e.Description + ")"
	}
	if e.sentinel == ErrInvalidRefreshToken {
		s += ": the session expired or was ended at the provider; log in again"
	}
	return s
}

// Is matches the sentinel the call attached, if any.
func (e *OAuthError) Is(target error) bool { return e.sentinel != nil && target == e.sentinel }

// clean makes text from a provider fit for an error message: secrets
// removed, control characters dropped, at most 200 characters.
func clean(s string, secrets []string) string {
	s = redact(s, secrets)
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return strings.TrimSpace(s)
}
