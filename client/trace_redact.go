package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Redaction works by rule, so that a field nobody listed is still caught:
//
//   - A name (JSON key at any depth, form or query parameter, header) is
//     split into words at '_', '-', '.', spaces and camelCase humps. It names
//     a secret when one of its words contains a secret stem — token, bearer
//     (shown as a prefix and a length) or secret, passw, passphrase, pwd,
//     code, verifier, otp, assertion, credential, authorization, cookie, or
//     ends in key (masked whole: "***") — unless its last word is a
//     descriptor (type, method, in, at, uri, endpoint, supported, challenge,
//     id, hint, …): token_type, expires_in, code_challenge_method and
//     token_endpoint are about a secret, not one. Everything under a secret
//     name is masked, nested objects and arrays included; only true, false
//     and null stay. "keys" (a JWKS's public keys) does not end in key.
//   - Any value, whatever its name, is scanned as text: name=value and
//     "name": "value" pairs whose name is secret by the rule above, JWTs
//     (eyJ… with dots) and long random-looking runs (20+ characters of
//     base64, letters mixed with digits or upper with lower case) are masked wherever they are:
//     inside an error description, a URL, an HTML page or a body that does
//     not parse.
//   - Authorization and Proxy-Authorization keep their scheme (Bearer ***),
//     cookies keep their names (sid=***).
//
// Tokens show their first characters and length (eyJhbGci…(812 chars)) so a
// developer can tell two apart; one shorter than 24 characters is masked
// whole, since a prefix would be most of it.

// maskStyle is how a value is hidden.
type maskStyle int

const (
	keepValue maskStyle = iota
	maskToken           // prefix…(N chars)
	maskFull            // ***
)

const (
	masked         = "***"
	tokenPrefixLen = 8
	minPrefixedLen = 24
	// traceBodyShown caps each body in an event, after redaction.
	traceBodyShown = 4 << 10
)

var (
	tokenStems = []string{"token", "bearer"}
	fullStems  = []string{"secret", "passw", "passphrase", "pwd", "code", "verifier", "otp", "assertion",
		"credential", "authorization", "cookie"}
	// descriptors end a name that is about a secret rather than one.
	descriptors = map[string]bool{
		"type": true, "types": true, "method": true, "methods": true, "in": true, "at": true, "hint": true,
		"uri": true, "url": true, "endpoint": true, "supported": true, "challenge": true, "id": true, "kid": true,
		"expires": true, "expiry": true, "ttl": true, "lifetime": true, "length": true, "len": true,
		"count": true, "left": true, "remaining": true, "format": true, "alg": true, "algorithm": true,
		"enabled": true, "required": true, "name": true, "label": true,
	}
)

// secretName classifies a name by the rule above.
func secretName(name string) maskStyle {
	words := nameWords(name)
	if len(words) == 0 || descriptors[words[len(words)-1]] {
		return keepValue
	}
	style := keepValue
	for _, w := range words {
		if strings.HasSuffix(w, "key") {
			return maskFull
		}
		for _, s := range fullStems {
			if strings.Contains(w, s) {
				return maskFull
			}
		}
		for _, s := range tokenStems {
			if strings.Contains(w, s) {
				style = maskToken
			}
		}
	}
	return style
}

// nameWords splits a name into lower-case words at separators and at a
// lower-to-upper case change (accessToken → access, token).
func nameWords(name string) []string {
	var words []string
	var cur strings.Builder
	prevLower := false
	flush := func() {
		if cur.Len() > 0 {
			words = append(words, cur.String())
			cur.Reset()
		}
	}
	for _, r := range name {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if unicode.IsUpper(r) && prevLower {
				flush()
			}
			prevLower = unicode.IsLower(r) || unicode.IsDigit(r)
			cur.WriteRune(unicode.ToLower(r))
		default:
			flush()
			prevLower = false
		}
	}
	flush()
	return words
}

// maskValue hides s in style.
func maskValue(s string, style maskStyle) string {
	if style == maskToken && len(s) >= minPrefixedLen {
		cut := tokenPrefixLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return s[:cut] + "…(" + strconv.Itoa(utf8.RuneCountInString(s)) + " chars)"
	}
	return masked
}

// The patterns are compiled on first use: a command that traces nothing
// (latch token, on every kubectl or git call) does not pay for them.
var (
	// pairRE finds name=value and "name": "value" pairs in text whose name
	// holds a secret stem; secretName then decides. An unquoted value stops
	// at any separator, so a kept pair never swallows the next one.
	pairRE = lazyRE(`(?i)([a-z0-9_.\-]*(?:token|bearer|secret|passw|pwd|code|verifier|otp|assertion|credential|authorization|cookie|key)[a-z0-9_.\-]*)` +
		`(["']?[ \t]*[:=][ \t]*)` +
		`((?:bearer|basic|dpop|token|mac|negotiate|digest)[ \t]+[^\s"'&,;}<>]+|"(?:[^"\\]|\\.)*"?|'[^']*'?|[^\s"'&,;}<>?#=:]+)`)
	jwtRE = lazyRE(`eyJ[A-Za-z0-9_\-]{2,}(?:\.[A-Za-z0-9_\-]*){1,4}`)
	runRE = lazyRE(`[A-Za-z0-9_\-+/]{20,}=*`)
)

func lazyRE(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}

// redactText masks secrets in free text by the value rules.
func redactText(s string) string {
	if s == "" {
		return s
	}
	s = pairRE().ReplaceAllStringFunc(s, func(m string) string {
		sub := pairRE().FindStringSubmatch(m)
		name, sep, v := sub[1], sub[2], sub[3]
		quoted := strings.HasPrefix(v, `"`) || strings.HasPrefix(v, `'`)
		inner, q := v, ""
		if quoted {
			q = v[:1]
			inner = strings.TrimSuffix(v[1:], q)
		}
		style := secretName(name)
		switch {
		case style != keepValue:
			return name + sep + q + maskValue(inner, style) + q
		case quoted:
			// A kept quoted value may hold pairs of its own; it is shorter
			// than s, so this ends.
			return name + sep + q + redactText(inner) + q
		}
		return m
	})
	s = jwtRE().ReplaceAllStringFunc(s, func(m string) string { return maskValue(m, maskToken) })
	return runRE().ReplaceAllStringFunc(s, maskRun)
}

// maskRun masks a run of token characters that looks random; a path
// (segments between slashes, one of them a word) is judged per segment.
func maskRun(m string) string {
	if strings.Contains(m, "/") {
		segs := strings.Split(m, "/")
		if slices.ContainsFunc(segs, isWord) {
			for i, s := range segs {
				if len(s) >= 20 && randomLooking(s) {
					segs[i] = maskValue(s, maskToken)
				}
			}
			return strings.Join(segs, "/")
		}
	}
	if !randomLooking(m) {
		return m
	}
	return maskValue(m, maskToken)
}

// isWord: two or more lower-case letters (with - or _), as in a path.
func isWord(s string) bool {
	letters := 0
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z':
			letters++
		case r == '-' || r == '_':
		default:
			return false
		}
	}
	return letters >= 2
}

// randomLooking tells a token-like run (letters mixed with digits, or with
// frequent case changes) from a word or a path (openid-configuration).
func randomLooking(s string) bool {
	var digit, lower, upper bool
	changes := 0
	prevUpper, prevLetter := false, false
	for _, r := range s {
		isU, isL := r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z'
		digit = digit || (r >= '0' && r <= '9')
		lower, upper = lower || isL, upper || isU
		if (isU || isL) && prevLetter && isU != prevUpper {
			changes++
		}
		prevUpper, prevLetter = isU, isU || isL
	}
	return (digit && (lower || upper)) || (lower && upper && changes*4 >= len(s))
}

// redactString masks a string value of a kept name: a URL by the URL
// rules (otpauth://…?secret=…), anything else as text.
func redactString(s string) string {
	if strings.Contains(s, "://") && !strings.ContainsAny(s, " \t\r\n") {
		return RedactURL(s)
	}
	return redactText(s)
}

// redactForm masks an application/x-www-form-urlencoded body or a query
// string, keeping its order and encoding where nothing is hidden.
func redactForm(s string) string {
	if s == "" {
		return s
	}
	parts := strings.Split(s, "&")
	for i, p := range parts {
		k, v, hasValue := strings.Cut(p, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if style := secretName(name); style != keepValue {
			if hasValue {
				val, err := url.QueryUnescape(v)
				if err != nil {
					val = v
				}
				parts[i] = k + "=" + maskValue(val, style)
			}
			continue
		}
		if !hasValue {
			parts[i] = redactText(k)
			continue
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			val = v
		}
		if r := redactText(val); r != val {
			parts[i] = redactText(k) + "=" + r
		} else {
			parts[i] = redactText(k) + "=" + v
		}
	}
	return strings.Join(parts, "&")
}

// RedactURL is raw with its secrets masked by rule: a password in the user
// information, secret query and fragment parameters, and token-looking
// values anywhere.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" {
		return redactText(raw)
	}
	var b strings.Builder
	if u.Scheme != "" {
		b.WriteString(u.Scheme + ":")
	}
	if u.Host != "" || u.User != nil {
		b.WriteString("//")
		if u.User != nil {
			b.WriteString(redactText(url.PathEscape(u.User.Username())))
			if _, ok := u.User.Password(); ok {
				b.WriteString(":" + masked)
			}
			b.WriteString("@")
		}
		b.WriteString(u.Host)
	}
	b.WriteString(redactText(u.EscapedPath()))
	if u.RawQuery != "" || u.ForceQuery {
		b.WriteString("?" + redactForm(u.RawQuery))
	}
	if u.Fragment != "" {
		b.WriteString("#" + redactForm(u.EscapedFragment()))
	}
	return b.String()
}

// redactHeader copies h with secrets masked by the header rules.
func redactHeader(h http.Header) http.Header {
	if len(h) == 0 {
		return nil
	}
	out := make(http.Header, len(h))
	for name, values := range h {
		vs := make([]string, len(values))
		for i, v := range values {
			vs[i] = redactHeaderValue(name, v)
		}
		out[name] = vs
	}
	return out
}

func redactHeaderValue(name, v string) string {
	switch strings.ToLower(name) {
	case "authorization", "proxy-authorization":
		if scheme, _, ok := strings.Cut(strings.TrimSpace(v), " "); ok {
			return scheme + " " + masked
		}
		return masked
	case "cookie":
		pairs := strings.Split(v, ";")
		for i, p := range pairs {
			n, _, _ := strings.Cut(p, "=")
			pairs[i] = n + "=" + masked
		}
		return strings.Join(pairs, ";")
	case "set-cookie":
		first, attrs, _ := strings.Cut(v, ";")
		n, _, _ := strings.Cut(first, "=")
		if attrs != "" {
			return n + "=" + masked + ";" + redactText(attrs)
		}
		return n + "=" + masked
	}
	if style := secretName(name); style != keepValue {
		return masked
	}
	return redactString(v)
}

// redactBody masks secrets in a body of the given headers' content type and
// caps the result at traceBodyShown.
func redactBody(h http.Header, body []byte) string {
	if len(body) == 0 {
		return ""
	}
	if !utf8.Valid(body) {
		return fmt.Sprintf("(%d bytes, not text)", len(body))
	}
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	trimmed := bytes.TrimSpace(body)
	var out string
	switch {
	case strings.HasSuffix(mt, "json") || (len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[')):
		if s, err := redactJSON(body); err == nil {
			out = s
			break
		}
		out = redactText(string(body))
	case mt == "application/x-www-form-urlencoded" || looksLikeForm(trimmed):
		out = redactForm(string(trimmed))
	default:
		out = redactText(string(body))
	}
	return capShown(out)
}

// looksLikeForm: name=value pairs, no white space.
func looksLikeForm(b []byte) bool {
	return bytes.IndexByte(b, '=') > 0 && !bytes.ContainsFunc(b, unicode.IsSpace)
}

// capShown keeps the first traceBodyShown bytes (on a rune boundary).
func capShown(s string) string {
	if len(s) <= traceBodyShown {
		return s
	}
	cut := traceBodyShown
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("…(%d bytes in all)", len(s))
}

// redactJSON rewrites a JSON text (one value or a stream of them) compact,
// in its own key order, with secrets masked; an error if it is not JSON.
func redactJSON(body []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	type frame struct {
		object  bool
		wantKey bool
		style   maskStyle // of everything inside
		n       int
	}
	var (
		out   bytes.Buffer
		stack []frame
		next  maskStyle // of the value after the key just read
		top   int
	)
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	writeString := func(s string) {
		_ = enc.Encode(s)
		out.Truncate(out.Len() - 1) // Encode's newline
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", err
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			out.WriteByte(byte(d))
			if len(stack) > 0 && stack[len(stack)-1].object {
				stack[len(stack)-1].wantKey = true
			}
			continue
		}
		style := keepValue
		if len(stack) == 0 {
			if top > 0 {
				out.WriteByte('\n')
			}
			top++
		} else {
			f := &stack[len(stack)-1]
			if f.object && f.wantKey {
				if f.n > 0 {
					out.WriteByte(',')
				}
				f.n++
				key, _ := tok.(string)
				writeString(key)
				out.WriteByte(':')
				next = max(f.style, secretName(key))
				f.wantKey = false
				continue
			}
			if f.object {
				style = next
				f.wantKey = true
			} else {
				if f.n > 0 {
					out.WriteByte(',')
				}
				f.n++
				style = f.style
			}
		}
		switch v := tok.(type) {
		case json.Delim:
			out.WriteByte(byte(v))
			stack = append(stack, frame{object: v == '{', wantKey: v == '{', style: style})
		case string:
			if style == keepValue {
				writeString(redactString(v))
			} else {
				writeString(maskValue(v, style))
			}
		case json.Number:
			if style == keepValue {
				out.WriteString(v.String())
			} else {
				writeString(masked)
			}
		case bool:
			out.WriteString(strconv.FormatBool(v))
		case nil:
			out.WriteString("null")
		}
	}
	if top == 0 {
		return "", errors.New("no JSON value")
	}
	return out.String(), nil
}
