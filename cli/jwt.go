package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/latch-dev/latch/flows"
)

// maxTokenBytes bounds what latch jwt reads from stdin: a JWT is a few KB,
// and a header larger than a megabyte is not one.
const maxTokenBytes = 1 << 20

type jwtOptions struct {
	g        *globals
	JSON     bool
	Issuer   string
	JWKS     string
	Audience string
	// now is the clock times are told against; nil means time.Now.
	now func() time.Time
}

func (o *jwtOptions) clock() time.Time {
	if o.now != nil {
		return o.now()
	}
	return time.Now()
}

func newJWTCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "jwt",
		Short: "Decode or verify a JSON Web Token",
		Long: `Take a JWT apart (decode) or check it against its issuer's keys (verify).

The token is an argument, or read from stdin with - (or no argument when
stdin is not a terminal). Prefer - for a real token: an argument stays in
the shell's history.`,
		Example: `  latch token | latch jwt decode
  latch jwt decode - < id_token.txt
  latch token | latch jwt verify --issuer http://127.0.0.1:8080 --audience latch-cli`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newJWTDecodeCmd(g), newJWTVerifyCmd(g))
	return cmd
}

func newJWTDecodeCmd(g *globals) *cobra.Command {
	o := &jwtOptions{g: g}
	cmd := &cobra.Command{
		Use:   "decode [TOKEN|-]",
		Short: "Show a JWT's header and claims, without verifying it",
		Long: `Show a JWT's header and claims. The times (exp, iat, nbf, auth_time) are
shown in local time and relative to now. Nothing is verified: anyone can
write a token that decodes; latch jwt verify checks one.

With --json, the output is {"header": …, "claims": …}, each exactly as the
token holds it. An encrypted token (JWE, five parts) cannot be decoded
without its recipient's key.

TOKEN as an argument stays in the shell's history: pipe it, or pass - and
give it on stdin.`,
		Example: `  latch token | latch jwt decode
  latch jwt decode - < token.txt
  latch token | latch jwt decode --json | jq -r .claims.sub`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tok, err := o.readToken(args, "decode")
			if err != nil {
				return err
			}
			return writeJWT(g.out, tok, o.JSON, o.clock())
		},
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, `print {"header": …, "claims": …}`)
	return cmd
}

// readToken is the token of args, or of stdin for - or when there is no
// argument and stdin is not a terminal. A "Bearer " prefix (a pasted
// Authorization header) is dropped.
func (o *jwtOptions) readToken(args []string, verb string) (string, error) {
	g := o.g
	var tok string
	switch {
	case len(args) == 1 && args[0] != "-":
		tok = args[0]
	case len(args) == 0 && g.tty():
		return "", usagef("give the token: latch jwt %s - reads it from stdin (and keeps it out of the shell history)", verb)
	default:
		raw, err := io.ReadAll(io.LimitReader(g.in, maxTokenBytes+1))
		if err != nil {
			return "", fmt.Errorf("read the token from stdin: %w", err)
		}
		if len(raw) > maxTokenBytes {
			return "", usagef("stdin holds more than %d KiB: that is not a JWT", maxTokenBytes>>10)
		}
		tok = string(raw)
	}
	tok = strings.TrimSpace(tok)
	if len(tok) > 7 && strings.EqualFold(tok[:7], "bearer ") {
		tok = strings.TrimSpace(tok[7:])
	}
	if tok == "" {
		return "", usagef("no token: stdin was empty")
	}
	if strings.ContainsFunc(tok, unicode.IsSpace) {
		return "", errors.New("the token has white space inside it: give one JWT, as header.claims.signature")
	}
	return tok, nil
}

// jwtJSON is latch jwt decode --json: the header and claims as the token
// holds them (its own numbers, key order and all).
type jwtJSON struct {
	Header json.RawMessage `json:"header"`
	Claims json.RawMessage `json:"claims"`
}

// writeJWT decodes token (without verifying it) and prints its header and
// claims to w: as text, with the times told against now, or as JSON.
// latch token --decode prints with it too.
func writeJWT(w io.Writer, token string, asJSON bool, now time.Time) error {
	v, err := flows.DecodeAnyJWT(token)
	if err != nil {
		return err
	}
	if asJSON {
		return writeRawJSON(w, jwtJSON{Header: v.RawHeader, Claims: v.RawClaims})
	}
	fmt.Fprintln(w, "Decoded, not verified: anyone can write a token like this one (check it with latch jwt verify).")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Header")
	writeFields(w, v.Header, now)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Claims")
	writeFields(w, v.Claims, now)
	return nil
}

// writeRawJSON is writeJSON without HTML escaping: a token's "<" stays "<".
func writeRawJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeFields prints an object's fields, sorted, one per line.
func writeFields(w io.Writer, m map[string]any, now time.Time) {
	keys := make([]string, 0, len(m))
	width := 0
	for k := range m {
		keys = append(keys, k)
		width = max(width, len(printable(k)))
	}
	slices.Sort(keys)
	width = min(width, 20)
	for _, k := range keys {
		line := fmt.Sprintf("  %-*s  %s", width, printable(k), fieldValue(m[k]))
		if t, ok := flows.ClaimTime(k, m[k]); ok {
			line += "  " + describeTime(k, t, now)
		}
		fmt.Fprintln(w, line)
	}
}

// fieldValue is a value as text: strings as they are (quoted when they hold
// anything a terminal would act on), numbers as written, the rest as JSON.
func fieldValue(v any) string {
	switch v := v.(type) {
	case string:
		return printable(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	b, err := json.Marshal(v) // escapes control characters
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// printable is s, or s quoted when it holds a control character (an escape
// sequence in a claim must not reach the terminal) or is empty.
func printable(s string) string {
	if s == "" || strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || r == unicode.ReplacementChar }) {
		return strconv.Quote(s)
	}
	return s
}

// describeTime is t in now's time zone and relative to now, with what it
// means for exp and nbf: "2026-11-30 12:04:38 CET, in 4m12s".
func describeTime(name string, t, now time.Time) string {
	s := t.In(now.Location()).Format("2006-01-02 15:04:05 MST") + ", " + relative(now, t)
	if note := flows.ClaimTimeNote(name, t, now); note != "" {
		s += ": " + note
	}
	return s
}

// relative is "in 4m12s", "3h00m ago" or "now".
func relative(now, t time.Time) string {
	d := t.Sub(now).Round(time.Second)
	switch {
	case d == 0:
		return "now"
	case d > 0:
		return "in " + span(d)
	}
	return span(-d) + " ago"
}

// errInvalidJWT is latch jwt verify's exit 1 once the checks are printed.
var errInvalidJWT = errors.New("the token failed verification")

func newJWTVerifyCmd(g *globals) *cobra.Command {
	o := &jwtOptions{g: g}
	cmd := &cobra.Command{
		Use:   "verify [TOKEN|-] --issuer URL | --jwks URL [--audience A]",
		Short: "Check a JWT's signature, issuer, audience and lifetime",
		Long: `Check a JWT and print each check with ✓ or ✗: its signature against the
issuer's keys (found by OpenID discovery at --issuer, or at --jwks), its
iss (with --issuer), its aud (with --audience), exp and nbf. The keys are
fetched and the signature checked by go-oidc.

Exit code 0 when every check passes, 1 when one fails or the keys cannot be
fetched. The token is read as latch jwt decode reads it.`,
		Example: `  latch token | latch jwt verify --issuer http://127.0.0.1:8080 --audience latch-cli
  latch jwt verify - --jwks https://idp.example.com/keys < token.txt
  latch token | latch jwt verify --issuer https://accounts.google.com --json | jq .valid`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Issuer == "" && o.JWKS == "" {
				return usagef("say where the keys are: --issuer URL (OpenID discovery) or --jwks URL")
			}
			for flag, v := range map[string]string{"issuer": o.Issuer, "jwks": o.JWKS} {
				if v != "" {
					if err := g.checkURL(flag, v); err != nil {
						return err
					}
				}
			}
			tok, err := o.readToken(args, "verify")
			if err != nil {
				return err
			}
			return verifyRun(cmd.Context(), o, tok)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Issuer, "issuer", "", "the issuer the token must name (iss); its keys come from its discovery document")
	f.StringVar(&o.JWKS, "jwks", "", "URL of the key set (JWKS) to check the signature with, instead of discovery")
	f.StringVar(&o.Audience, "audience", "", "an audience the token must name (aud)")
	f.BoolVar(&o.JSON, "json", false, "print JSON")
	return cmd
}
