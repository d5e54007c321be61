package server

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
)

// Problem types (RFC 9457). Clients act on these, so they never change.
const (
	probValidation     = "urn:latch:problem:validation"
	probMalformed      = "urn:latch:problem:malformed-request"
	probMediaType      = "urn:latch:problem:unsupported-media-type"
	probTooLarge       = "urn:latch:problem:body-too-large"
	probConflict       = "urn:latch:problem:conflict"
	probCredentials    = "urn:latch:problem:invalid-credentials"
	probTokenReused    = "urn:latch:problem:token-reused"
	probInvalidRefresh = "urn:latch:problem:invalid-refresh-token"
	probUnauthorized   = "urn:latch:problem:unauthorized"
	probRateLimited    = "urn:latch:problem:rate-limited"
	probNotFound       = "urn:latch:problem:not-found"
	probUnavailable    = "urn:latch:problem:unavailable"
	probInternal       = "urn:latch:problem:internal"
	probInvalidCode    = "urn:latch:problem:invalid-mfa-code"
	probMFAChallenge   = "urn:latch:problem:mfa-challenge-expired"
	probMFAAttempts    = "urn:latch:problem:mfa-attempts-exceeded"
	probMFAEnabled     = "urn:latch:problem:mfa-already-enabled"
	probMFANotEnabled  = "urn:latch:problem:mfa-not-enabled"
	probMFANoSetup     = "urn:latch:problem:mfa-setup-required"
	// Email verification and password reset tokens.
	probTokenInvalid    = "urn:latch:problem:token-invalid" // unknown or malformed
	probTokenExpired    = "urn:latch:problem:token-expired"
	probTokenUsed       = "urn:latch:problem:token-used"
	probEmailUnverified = "urn:latch:problem:email-unverified" // login refused until verified
	probMFARequired     = "urn:latch:problem:mfa-required"     // a reset of a TOTP account needs a code
	probForbidden       = "urn:latch:problem:forbidden"        // a permission is missing; detail names it
	probAccountLocked   = "urn:latch:problem:account-locked"   // an admin locked the account
)

// maxBody is the largest request body accepted.
const maxBody = 64 << 10

type problem struct {
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Status     int         `json:"status"`
	Detail     string      `json:"detail,omitempty"`
	Errors     fieldErrors `json:"errors,omitempty"`
	RetryAfter int         `json:"retry_after,omitempty"`
	// AttemptsLeft is how many more codes a login challenge takes, on
	// invalid-mfa-code answers to /auth/mfa/verify.
	AttemptsLeft int `json:"attempts_left,omitempty"`
}

func (p *problem) Error() string { return p.Title + ": " + p.Detail }

func newProblem(status int, typ, title, detail string) *problem {
	return &problem{Type: typ, Title: title, Status: status, Detail: detail}
}

func validationProblem(errs fieldErrors) *problem {
	p := newProblem(http.StatusBadRequest, probValidation, "Invalid input", "One or more fields are invalid.")
	p.Errors = errs
	return p
}

func rateLimited(retry int) *problem {
	p := newProblem(http.StatusTooManyRequests, probRateLimited, "Too many requests",
		"Too many attempts. Wait before trying again.")
	p.RetryAfter = max(retry, 1)
	return p
}

var errUnauthorized = newProblem(http.StatusUnauthorized, probUnauthorized, "Unauthorized",
	"A valid access token is required: log in again or refresh the token.")

// writeJSON answers with a JSON document.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeError answers with a problem document. Errors that are not problems
// are logged and hidden behind a 500: their text may say more than a client
// should see.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var p *problem
	if r.Context().Err() != nil {
		// The client went away (or the server is shutting down): nobody
		// reads the answer, and it is not a server fault. The error need
		// not say so: PostgreSQL's driver drops a connection whose query
		// was cancelled, and the next statement fails with "bad connection".
		s.log.DebugContext(r.Context(), "request abandoned", "method", r.Method, "path", r.URL.Path)
		w.WriteHeader(499)
		return
	}
	if !errors.As(err, &p) && s.st.busy(err) {
		// The deployment's write lock was not had in time (another
		// instance holds it): a retry soon is the answer, not a 500.
		s.log.WarnContext(r.Context(), "database busy", "method", r.Method, "path", r.URL.Path, "err", err)
		p = newProblem(http.StatusServiceUnavailable, probUnavailable, "Unavailable",
			"The database is busy; try again in a few seconds.")
		p.RetryAfter = 5
	}
	if p == nil {
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		p = newProblem(http.StatusInternalServerError, probInternal, "Internal error",
			"The server failed to handle the request; it has been logged.")
	}
	h := w.Header()
	if p.Status == http.StatusUnauthorized && p.Type == probUnauthorized {
		h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	if p.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

// decode reads a JSON request body into v: application/json only, at most
// maxBody bytes, exactly one JSON value.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return newProblem(http.StatusUnsupportedMediaType, probMediaType, "Unsupported media type",
			"Send the request body as application/json.")
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	tooBig := func(err error) bool {
		var e *http.MaxBytesError
		return errors.As(err, &e)
	}
	errTooBig := newProblem(http.StatusRequestEntityTooLarge, probTooLarge, "Request body too large",
		"The request body must be at most 64 KiB.")
	if err := dec.Decode(v); err != nil {
		if tooBig(err) {
			return errTooBig
		}
		return newProblem(http.StatusBadRequest, probMalformed, "Malformed request",
			"The request body is not a valid JSON object of the expected shape: "+jsonErrorDetail(err))
	}
	// Only white space may follow. dec.More is not enough: it says no more
	// at a stray '}' or ']', and "{}}" would pass.
	if _, err := dec.Token(); err != io.EOF {
		if tooBig(err) {
			return errTooBig
		}
		return newProblem(http.StatusBadRequest, probMalformed, "Malformed request",
			"The request body must hold exactly one JSON object.")
	}
	if !jsonTextOK(reflect.ValueOf(v)) {
		return errBadText
	}
	return nil
}

// jsonErrorDetail describes a decoding error without echoing the input,
// which may hold a password.
func jsonErrorDetail(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return "syntax error at byte " + strconv.FormatInt(syn.Offset, 10)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return "the body must be a JSON object"
		}
		return "field " + strconv.Quote(typ.Field) + " must be " + jsonKind(typ.Type)
	case errors.Is(err, io.EOF):
		return "the body is empty"
	}
	return "unexpected end of input"
}

// jsonKind names a Go type as the JSON a client should send for it, not as
// Go spells it.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8,
		reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}
