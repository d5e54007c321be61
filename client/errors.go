package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Sentinels for the states callers act on; match them with errors.Is.
// ErrInvalidCredentials … ErrValidation are matched by *APIError, so the server
// said no; ErrUnreachable means no usable answer came back; ErrBadResponse
// means an answer came back that breaks the API contract.
var (
	ErrInvalidCredentials  = errors.New("wrong username, email or password")
	ErrReuseDetected       = errors.New("refresh token reused: session revoked")
	ErrInvalidRefreshToken = errors.New("refresh token invalid or expired")
	ErrUnauthorized        = errors.New("not authorized")
	ErrRateLimited         = errors.New("rate limited")
	ErrNotFound            = errors.New("not found")
	ErrConflict            = errors.New("conflict")
	ErrValidation          = errors.New("validation failed")
	ErrMFARequired         = errors.New("second factor required")
	// ErrForbidden: the account lacks the permission (RBAC); the
	// APIError's Detail names it.
	ErrForbidden             = errors.New("forbidden")
	ErrAccountLocked         = errors.New("account locked")
	ErrPasswordResetRequired = errors.New("password reset required")
	// ErrInvalidCode: a second-factor code was wrong or already used; the
	// same step may be tried again with another code.
	ErrInvalidCode = errors.New("invalid or already used code")
	// ErrMFAChallengeExpired: the second step of a login is over (expired,
	// already completed, or too many wrong codes): log in again.
	ErrMFAChallengeExpired = errors.New("second-factor step expired")
	ErrMFAAlreadyEnabled   = errors.New("two-factor authentication already on")
	ErrMFANotEnabled       = errors.New("two-factor authentication not on")
	// ErrMFASetupRequired: MFAEnable without a pending MFASetup.
	ErrMFASetupRequired = errors.New("two-factor setup required")
	// ErrTokenInvalid, ErrTokenExpired and ErrTokenUsed are a mailed
	// single-use token (email verification, password reset) that is
	// unknown, too old, or already spent: ask for a new mail.
	ErrTokenInvalid = errors.New("token invalid")
	ErrTokenExpired = errors.New("token expired")
	ErrTokenUsed    = errors.New("token already used")
	// ErrEmailUnverified: the server refuses login until the account's
	// email address is verified.
	ErrEmailUnverified = errors.New("email address not verified")

	ErrUnreachable = errors.New("server unreachable")
	ErrBadResponse = errors.New("unexpected response from server")
	ErrInsecureURL = errors.New("insecure server URL")
)

// Problem type URIs of the latch API.
const (
	typeValidation          = "urn:latch:problem:validation"
	typeMalformed           = "urn:latch:problem:malformed-request"
	typeUnsupportedMedia    = "urn:latch:problem:unsupported-media-type"
	typeBodyTooLarge        = "urn:latch:problem:body-too-large"
	typeConflict            = "urn:latch:problem:conflict"
	typeInvalidCredentials  = "urn:latch:problem:invalid-credentials"
	typeTokenReused         = "urn:latch:problem:token-reused"
	typeInvalidRefreshToken = "urn:latch:problem:invalid-refresh-token"
	typeUnauthorized        = "urn:latch:problem:unauthorized"
	typeRateLimited         = "urn:latch:problem:rate-limited"
	typeNotFound            = "urn:latch:problem:not-found"
	typeInternal            = "urn:latch:problem:internal"
	typeInvalidCode         = "urn:latch:problem:invalid-mfa-code"
	typeMFAChallengeExpired = "urn:latch:problem:mfa-challenge-expired"
	typeMFAAttemptsExceeded = "urn:latch:problem:mfa-attempts-exceeded"
	typeMFAAlreadyEnabled   = "urn:latch:problem:mfa-already-enabled"
	typeMFANotEnabled       = "urn:latch:problem:mfa-not-enabled"
	typeMFASetupRequired    = "urn:latch:problem:mfa-setup-required"
	typeTokenInvalid        = "urn:latch:problem:token-invalid"
	typeTokenExpired        = "urn:latch:problem:token-expired"
	typeTokenUsed           = "urn:latch:problem:token-used"
	typeEmailUnverified     = "urn:latch:problem:email-unverified"
	typeMFARequired         = "urn:latch:problem:mfa-required"
	typeForbidden           = "urn:latch:problem:forbidden"
	typeAccountLocked       = "urn:latch:problem:account-locked"
	typeResetRequired       = "urn:latch:problem:password-reset-required"
)

var typeSentinels = map[string]error{
	typeValidation:          ErrValidation,
	typeConflict:            ErrConflict,
	typeInvalidCredentials:  ErrInvalidCredentials,
	typeTokenReused:         ErrReuseDetected,
	typeInvalidRefreshToken: ErrInvalidRefreshToken,
	typeUnauthorized:        ErrUnauthorized,
	typeRateLimited:         ErrRateLimited,
	typeNotFound:            ErrNotFound,
	typeInvalidCode:         ErrInvalidCode,
	typeMFAChallengeExpired: ErrMFAChallengeExpired,
	typeMFAAttemptsExceeded: ErrMFAChallengeExpired,
	typeMFAAlreadyEnabled:   ErrMFAAlreadyEnabled,
	typeMFANotEnabled:       ErrMFANotEnabled,
	typeMFASetupRequired:    ErrMFASetupRequired,
	typeTokenInvalid:        ErrTokenInvalid,
	typeTokenExpired:        ErrTokenExpired,
	typeTokenUsed:           ErrTokenUsed,
	typeEmailUnverified:     ErrEmailUnverified,
	typeMFARequired:         ErrMFARequired,
	typeForbidden:           ErrForbidden,
	typeAccountLocked:       ErrAccountLocked,
	typeResetRequired:       ErrPasswordResetRequired,
}

// statusSentinels apply to problems of type about:blank (or none), which by
// RFC 9457 mean "nothing beyond the status code".
var statusSentinels = map[int]error{
	http.StatusUnauthorized:    ErrUnauthorized,
	http.StatusNotFound:        ErrNotFound,
	http.StatusConflict:        ErrConflict,
	http.StatusForbidden:       ErrForbidden,
	http.StatusTooManyRequests: ErrRateLimited,
}

// typeMessages are what a user reads for the well-known problem types; they
// replace the server's title, and say what to do next.
var typeMessages = map[string]string{
	typeValidation:          "the server rejected the input",
	typeMalformed:           "the server could not parse the request; this is a bug in latch, please report it",
	typeUnsupportedMedia:    "the server did not accept the request's content type; this is a bug in latch, please report it",
	typeBodyTooLarge:        "the request was too large for the server",
	typeConflict:            "already in use",
	typeInvalidCredentials:  "wrong username, email or password",
	typeTokenReused:         "this session was revoked because an old refresh token was used again, which can mean it was stolen; log in again",
	typeInvalidRefreshToken: "your session has expired or was ended; log in again",
	typeUnauthorized:        "not logged in, or your access token expired; log in again",
	typeRateLimited:         "too many requests",
	typeNotFound:            "not found",
	typeInternal:            "the server hit an internal error; try again later",
	typeInvalidCode:         "the code is wrong or was already used; enter the current code from your authenticator app, or a backup code",
	typeMFAChallengeExpired: "this login step expired or was already completed; log in again with your password",
	typeMFAAttemptsExceeded: "too many wrong codes; log in again with your password",
	typeMFAAlreadyEnabled:   "two-factor authentication is already on; turn it off first to enrol a new authenticator",
	typeMFANotEnabled:       "two-factor authentication is not on for this account",
	typeMFASetupRequired:    "no two-factor setup is in progress; start the setup again",
	typeTokenInvalid:        "the token is not valid (mistyped, cut short, or from another server); copy it again from the mail, or ask for a new one",
	typeTokenExpired:        "the token has expired; ask for a new mail (latch password forgot, or latch email resend)",
	typeTokenUsed:           "the token was already used; each mailed token works once, ask for a new mail if you still need one",
	typeEmailUnverified:     "your email address is not verified yet; open the link in the verification mail, or run latch email verify --token-stdin with its token (latch email resend -u NAME --server URL sends a new one)",
	typeAccountLocked:       "this account is locked by an administrator; ask them to unlock it",
	typeResetRequired:       "an administrator requires a new password for this account: follow the link in the reset mail, or run latch password forgot",
	typeMFARequired:         "this account has two-factor on: give the current code from your authenticator app (--code) or a backup code (--use-backup-code)",
}

// APIError is an RFC 9457 problem the server answered with: the server
// understood the request and said no.
type APIError struct {
	Status     int
	Type       string
	Title      string
	Detail     string
	Fields     map[string]string // field name → message, for validation and conflict
	RetryAfter time.Duration     // from Retry-After / retry_after; zero if absent
	// AttemptsLeft is how many more codes a login's second step takes, on
	// ErrInvalidCode from MFAVerify; zero if the server did not say.
	AttemptsLeft int
}

// Error is the message a user sees.
func (e *APIError) Error() string {
	var b strings.Builder
	msg, known := typeMessages[e.Type]
	switch {
	case known:
	case e.Title != "":
		msg = e.Title
	default:
		msg = fmt.Sprintf("server answered HTTP %d %s", e.Status, http.StatusText(e.Status))
	}
	if e.Type == typeConflict && len(e.Fields) > 0 {
		msg = "" // "username: already taken" says it all
	}
	b.WriteString(msg)
	if len(e.Fields) > 0 {
		names := make([]string, 0, len(e.Fields))
		for name := range e.Fields {
			names = append(names, name)
		}
		sort.Strings(names)
		for i, name := range names {
			sep := "; "
			switch {
			case i == 0 && msg == "":
				sep = ""
			case i == 0:
				sep = ": "
			}
			fmt.Fprintf(&b, "%s%s: %s", sep, name, e.Fields[name])
		}
	} else if e.Detail != "" && e.Detail != msg && (!known || e.Type == typeNotFound || e.Type == typeBodyTooLarge) {
		b.WriteString(": " + e.Detail)
	}
	switch {
	case e.AttemptsLeft == 1:
		b.WriteString("; 1 attempt left")
	case e.AttemptsLeft > 1:
		fmt.Fprintf(&b, "; %d attempts left", e.AttemptsLeft)
	}
	if e.Type == typeRateLimited || e.Status == http.StatusTooManyRequests {
		if e.RetryAfter > 0 {
			fmt.Fprintf(&b, "; try again in %s", e.RetryAfter)
		} else {
			b.WriteString("; try again later")
		}
	}
	return b.String()
}

// Is matches the sentinel for e.Type, or for e.Status when the type is
// about:blank.
func (e *APIError) Is(target error) bool {
	if s, ok := typeSentinels[e.Type]; ok {
		return s == target
	}
	if e.Type == "" || e.Type == "about:blank" {
		return statusSentinels[e.Status] == target
	}
	return false
}

// ResponseError is an answer that breaks the API contract: an HTML page, a
// wrong content type, an empty, truncated, oversized or malformed body, a
// redirect, or a status the endpoint never returns. It matches ErrBadResponse,
// and also ErrUnreachable for 502/503/504, where a proxy could not reach latch.
type ResponseError struct {
	Status int    // HTTP status; 0 if none was read
	Reason string // what was wrong, for humans
	op     string // method and path, never the query
}

func (e *ResponseError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("%s: %s", e.op, e.Reason)
	}
	return fmt.Sprintf("%s: HTTP %d %s: %s", e.op, e.Status, http.StatusText(e.Status), e.Reason)
}

// Is reports ErrBadResponse, and ErrUnreachable for gateway failures.
func (e *ResponseError) Is(target error) bool {
	switch target {
	case ErrBadResponse:
		return true
	case ErrUnreachable:
		return e.Status == http.StatusBadGateway || e.Status == http.StatusServiceUnavailable ||
			e.Status == http.StatusGatewayTimeout
	}
	return false
}

// MFARequiredError is what Login returns when the password was right and the
// account needs a second factor; it matches ErrMFARequired. Making it an error
// means a caller that ignores MFA fails closed instead of holding nil tokens.
// Token is secret and never appears in Error.
type MFARequiredError struct {
	Token   string   // the mfa_token to present with the second factor
	Methods []string // e.g. "totp"
}

func (e *MFARequiredError) Error() string {
	if len(e.Methods) == 0 {
		return "this account needs a second factor to log in"
	}
	return "this account needs a second factor to log in (" + strings.Join(e.Methods, ", ") + ")"
}

// GoString keeps %#v from printing Token.
func (e *MFARequiredError) GoString() string {
	return fmt.Sprintf("&client.MFARequiredError{Token:[redacted], Methods:%q}", e.Methods)
}

// Is matches ErrMFARequired.
func (e *MFARequiredError) Is(target error) bool { return target == ErrMFARequired }

// unreachableError is a transport failure: nothing usable came back.
type unreachableError struct {
	op, msg string
	err     error
}

func (e *unreachableError) Error() string   { return e.op + ": " + e.msg }
func (e *unreachableError) Unwrap() []error { return []error{ErrUnreachable, e.err} }

// checkStatus returns nil when r has the status the endpoint promises, and
// otherwise the error that explains it. secrets are scrubbed from anything the
// server wrote into the error.
func checkStatus(r *reply, want int, secrets ...string) error {
	if r.status == want {
		return nil
	}
	return statusError(r, secrets)
}

func statusError(r *reply, secrets []string) error {
	op := r.method + " " + stripQuery(r.path)
	switch {
	case r.status >= 300 && r.status < 400:
		where := r.header.Get("Location")
		if where == "" {
			return &ResponseError{Status: r.status, op: op, Reason: "the server redirected without a Location; check --server"}
		}
		return &ResponseError{Status: r.status, op: op,
			Reason: fmt.Sprintf("the server redirects to %s; latch does not follow redirects, so set --server to the final URL", safeLocation(where))}
	case r.status < 400:
		return &ResponseError{Status: r.status, op: op, Reason: "this endpoint never answers with this status; is the server a matching latch version?"}
	}
	if p, ok := parseProblem(r, secrets); ok {
		return p
	}
	return &ResponseError{Status: r.status, op: op, Reason: describeNonJSON(r)}
}

// safeLocation shows a redirect target without credentials, query or fragment.
func safeLocation(loc string) string {
	u, err := url.Parse(loc)
	if err != nil {
		return "an unparsable location"
	}
	u.RawQuery, u.Fragment = "", ""
	return u.Redacted()
}

type problemWire struct {
	Type       string            `json:"type"`
	Title      string            `json:"title"`
	Status     int               `json:"status"`
	Detail     string            `json:"detail"`
	Errors     map[string]string `json:"errors"`
	RetryAfter *json.Number      `json:"retry_after"`
	// Read only as a small positive integer; anything else is ignored, not
	// an error: the problem itself is still good.
	AttemptsLeft json.RawMessage `json:"attempts_left"`
}

// parseProblem reads an RFC 9457 body. A plain application/json error body is
// accepted too if it looks like a problem, since some proxies and frameworks
// send that.
func parseProblem(r *reply, secrets []string) (*APIError, bool) {
	mt := mediaType(r.header)
	if mt != "application/problem+json" && mt != "application/json" {
		return nil, false
	}
	var w problemWire
	if err := json.Unmarshal(r.body, &w); err != nil {
		return nil, false
	}
	if mt == "application/json" && w.Type == "" && w.Title == "" {
		return nil, false
	}
	e := &APIError{
		Status: r.status, // the status line wins over a body that disagrees
		Type:   w.Type,
		Title:  redact(w.Title, secrets),
		Detail: redact(w.Detail, secrets),
	}
	if e.Type == "" {
		e.Type = "about:blank"
	}
	if len(w.Errors) > 0 {
		e.Fields = make(map[string]string, len(w.Errors))
		for k, v := range w.Errors {
			// A key shaped like a field name stays, even when it equals
			// a secret: a password of "password" must not hide which
			// field is wrong.
			if !fieldName.MatchString(k) {
				k = redact(k, secrets)
			}
			e.Fields[k] = redact(v, secrets)
		}
	}
	if w.RetryAfter != nil {
		if f, err := w.RetryAfter.Float64(); err == nil && f > 0 && f < 1e6 {
			e.RetryAfter = time.Duration(f * float64(time.Second))
		}
	}
	var left int
	if json.Unmarshal(w.AttemptsLeft, &left) == nil && left > 0 && left < 1000 {
		e.AttemptsLeft = left
	}
	if e.RetryAfter == 0 {
		if n, err := strconv.Atoi(strings.TrimSpace(r.header.Get("Retry-After"))); err == nil && n > 0 && n < 1e6 {
			e.RetryAfter = time.Duration(n) * time.Second
		}
	}
	return e, true
}

var fieldName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// redact removes secret values the server may have echoed back.
func redact(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[redacted]")
			if strings.Contains(s, sec) {
				// The marker and what follows it formed the secret again
				// ("d]ab" in "d]abab").
				s = "[redacted]"
			}
		}
	}
	return s
}

func mediaType(h http.Header) string {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return strings.ToLower(mt)
}

// describeNonJSON says what came back instead of JSON.
func describeNonJSON(r *reply) string {
	mt := mediaType(r.header)
	switch {
	case len(r.body) == 0:
		return "empty response body where JSON was expected"
	case mt == "text/html" || looksLikeHTML(r.body):
		return "the server answered with an HTML page instead of JSON; a proxy in front of latch may have failed, or --server points at a web site"
	case (mt == "application/json" || mt == "application/problem+json") && !json.Valid(r.body):
		return "the JSON body is malformed or truncated"
	case mt == "application/json" && r.status >= 400:
		return "the error body is JSON but not an RFC 9457 problem"
	case mt == "":
		return "the response has no content type; expected JSON"
	}
	return fmt.Sprintf("wrong content type %q; expected JSON", mt)
}

func looksLikeHTML(b []byte) bool {
	s := strings.ToLower(strings.TrimSpace(string(b[:min(len(b), 64)])))
	return strings.HasPrefix(s, "<!doctype html") || strings.HasPrefix(s, "<html")
}

// decodeJSON checks r's content type and decodes its body into v.
func decodeJSON(r *reply, v any) error {
	op := r.method + " " + stripQuery(r.path)
	if len(r.body) == 0 || mediaType(r.header) != "application/json" {
		return &ResponseError{Status: r.status, op: op, Reason: describeNonJSON(r)}
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return &ResponseError{Status: r.status, op: op, Reason: "the JSON body is malformed or truncated"}
		case errors.As(err, &typ):
			return &ResponseError{Status: r.status, op: op,
				Reason: fmt.Sprintf("field %q has the wrong JSON type (%s, want %s)", typ.Field, typ.Value, typ.Type)}
		}
		return &ResponseError{Status: r.status, op: op, Reason: "cannot decode the JSON body: " + err.Error()}
	}
	return nil
}

// shapeError reports a 2xx JSON body that lacks what the contract promises.
func shapeError(r *reply, what string) error {
	return &ResponseError{Status: r.status, op: r.method + " " + stripQuery(r.path), Reason: "the JSON body " + what}
}
