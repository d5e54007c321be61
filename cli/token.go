package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latch-dev/latch/flows"
)

type tokenOptions struct {
	g        *globals
	Header   bool
	JSON     bool
	IDToken  bool
	MinValid time.Duration
	Decode   bool
}

func newTokenCmd(g *globals) *cobra.Command {
	o := &tokenOptions{g: g}
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Print a valid access token, refreshing it if needed",
		Long: `Print the profile's access token on stdout. When it is about to expire (or
the session's refresh token is three quarters through its idle lifetime),
latch refreshes first, under a lock shared by every latch process, and saves
the rotated refresh token before printing. Exit code 4 means the session is
over: log in again.

--header prints it as an HTTP header line, --json with its type, expiry and
profile. --min-valid refreshes first when the token would expire sooner (for
a long job). --decode shows its claims, not verified. --id-token is about an
OpenID profile's ID token instead: printed, decoded, or added to --json.`,
		Example: `  curl -H "Authorization: Bearer $(latch token)" http://127.0.0.1:8080/auth/me
  curl -H "$(latch token --header)" http://127.0.0.1:8080/auth/me
  latch token --profile work --min-valid 30m
  latch token --json
  latch token --decode
  latch token --id-token --decode --profile google`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return tokenRun(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.Header, "header", false, "print \"Authorization: Bearer TOKEN\"")
	f.BoolVar(&o.JSON, "json", false, "print access_token, token_type, expires_at and profile as JSON")
	f.BoolVar(&o.IDToken, "id-token", false, "the ID token of an OpenID profile: printed, decoded, or added to --json")
	f.DurationVar(&o.MinValid, "min-valid", 0, "refresh first if the token would expire within this time (e.g. 10m)")
	f.BoolVar(&o.Decode, "decode", false, "show the token's header and claims (not verified); with --json, as JSON")
	return cmd
}

// tokenJSON is latch token --json.
type tokenJSON struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresAt   string `json:"expires_at"`
	Profile     string `json:"profile"`
	IDToken     string `json:"id_token,omitempty"`
}

func tokenRun(ctx context.Context, o *tokenOptions) error {
	g := o.g
	if o.MinValid < 0 {
		return usagef("--min-valid %s: give a positive duration, like 10m", o.MinValid)
	}
	if o.Header && (o.JSON || o.Decode || o.IDToken) {
		// An ID token says who logged in; it is not for sending to APIs.
		return usagef("--header prints the access token alone: leave out --json, --decode and --id-token")
	}
	e, err := g.openEnv(ctx)
	if err != nil {
		return err
	}
	it, err := e.TokenFor(ctx, g.profile, flows.TokenOptions{MinValid: o.MinValid, IDToken: o.IDToken})
	switch {
	case errors.Is(err, flows.ErrMinValid):
		return usagef("--min-valid %s: %v; ask for less", o.MinValid, err)
	case errors.Is(err, flows.ErrNoIDToken):
		return usageError{fmt.Errorf("--id-token: %w (it is for profiles logged in with latch login --issuer URL)", err)}
	case err != nil:
		return err
	}
	tok := it.AccessToken
	if o.IDToken {
		tok = it.IDToken
	}
	switch {
	case o.Decode:
		return writeJWT(g.out, tok, o.JSON, time.Now())
	case o.JSON:
		return writeJSON(g.out, tokenJSON{
			AccessToken: it.AccessToken, TokenType: it.TokenType, Profile: it.Profile, IDToken: it.IDToken,
			ExpiresAt: it.Expiry.UTC().Format(time.RFC3339),
		})
	case o.Header:
		_, err = fmt.Fprintf(g.out, "Authorization: %s %s\n", it.TokenType, tok)
		return err
	}
	_, err = fmt.Fprintln(g.out, tok)
	return err
}

type apiOptions struct {
	g       *globals
	Method  string
	Data    string
	Include bool
}

func newAPICmd(g *globals) *cobra.Command {
	o := &apiOptions{g: g}
	cmd := &cobra.Command{
		Use:   "api PATH|URL",
		Short: "Make an authenticated request to the profile's server",
		Long: `Send a request to PATH on the profile's server with a valid access token,
like gh api, and print the response body. A status of 400 or more prints the
body and exits 1. --data sends a JSON body (use @FILE to read a file, or @-
for stdin); with --data the method defaults to POST. PATH may be a full URL
of the profile's own server; a URL of any other host is refused, since the
token must not leave for it. Redirects are not followed: a 3xx exits 1 and
says where it points.`,
		Example: `  latch api /auth/me
  latch api /auth/sessions
  latch api -X DELETE /auth/sessions/SESSION_ID
  latch api /auth/password --data '{"current_password":"…","new_password":"…"}'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return apiRun(cmd.Context(), o, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Method, "method", "X", "", "HTTP method (default GET, or POST with --data)")
	f.StringVarP(&o.Data, "data", "d", "", "JSON request body, @FILE or @- for stdin")
	f.BoolVarP(&o.Include, "include", "i", false, "print the status line and headers too")
	return cmd
}

func apiRun(ctx context.Context, o *apiOptions, path string) error {
	g := o.g
	method := strings.ToUpper(o.Method)
	var body []byte
	switch {
	case strings.HasPrefix(o.Data, "@-"):
		b, err := io.ReadAll(io.LimitReader(g.in, 1<<20+1))
		if err != nil {
			return fmt.Errorf("read the body from stdin: %w", err)
		}
		body = b
	case strings.HasPrefix(o.Data, "@"):
		b, err := os.ReadFile(o.Data[1:])
		if err != nil {
			return usagef("--data: %v", err)
		}
		body = b
	case o.Data != "":
		body = []byte(o.Data)
	}
	if len(body) > 1<<20 {
		return usagef("--data: the body is larger than 1 MiB")
	}
	if body != nil && !json.Valid(body) {
		return usagef("--data: not valid JSON")
	}
	if method == "" {
		method = http.MethodGet
		if body != nil {
			method = http.MethodPost
		}
	}
	e, err := g.openEnv(ctx)
	if err != nil {
		return err
	}
	if path, err = apiPath(e, g.profile, path); err != nil {
		return err
	}
	res, err := e.API(ctx, g.profile, method, path, body)
	if err != nil {
		return err
	}
	if o.Include {
		fmt.Fprintf(g.out, "HTTP %d %s\n", res.Status, http.StatusText(res.Status))
		res.Header.Write(g.out)
		fmt.Fprintln(g.out)
	}
	if redirect(res.Status) {
		// The page that comes with a redirect is for browsers; what the
		// caller needs is where it points, and that it is not the answer.
		where := res.Header.Get("Location")
		if where == "" {
			where = "nowhere (no Location header)"
		}
		return fmt.Errorf("HTTP %d %s: the server redirects to %s; latch api does not follow redirects, "+
			"so ask for that path instead", res.Status, http.StatusText(res.Status), where)
	}
	g.out.Write(res.Body)
	if len(res.Body) > 0 && res.Body[len(res.Body)-1] != '\n' {
		fmt.Fprintln(g.out)
	}
	if res.Status >= 400 {
		return silentError{fmt.Errorf("HTTP %d", res.Status)}
	}
	return nil
}

func redirect(status int) bool { return status >= 300 && status < 400 }

// apiPath turns latch api's argument into a path on the profile's server: a
// path as it is ("/" added), or a full URL of that same server (scheme, host
// and port; under its base path). A URL of any other server is refused: the
// profile's token goes to its own server only.
func apiPath(e *flows.Env, profile, arg string) (string, error) {
	u, err := url.Parse(arg)
	if err != nil {
		return "", usagef("%q is neither a path nor a URL: %v", arg, err)
	}
	if u.Scheme == "" && u.Host == "" {
		if !strings.HasPrefix(arg, "/") {
			arg = "/" + arg
		}
		if strings.HasPrefix(arg, "//") || strings.ContainsAny(arg, "\\\r\n\t ") {
			return "", usagef("%q: give a path on the server starting with a single \"/\", like /auth/me", arg)
		}
		return arg, nil
	}
	p, err := e.Profile(profile)
	if err != nil {
		return "", err
	}
	base, err := url.Parse(p.Server)
	if p.Server == "" || err != nil {
		return "", usagef("profile %q has no latch server to send %s to; give a path like /auth/me", p.Name, arg)
	}
	if u.User != nil || !sameOrigin(u, base) {
		return "", usagef("%s is not on the profile's server %s: latch api sends %q's token to that server only; "+
			"give a path like /auth/me, or choose the profile with --profile", u.Redacted(), p.Server, p.Name)
	}
	prefix := strings.TrimRight(base.EscapedPath(), "/")
	rest := u.EscapedPath()
	if prefix != "" {
		var ok bool
		if rest, ok = strings.CutPrefix(rest, prefix); !ok || (rest != "" && !strings.HasPrefix(rest, "/")) {
			return "", usagef("%s is not under the profile's server %s", u.Redacted(), p.Server)
		}
	}
	if rest == "" {
		rest = "/"
	}
	if u.RawQuery != "" {
		rest += "?" + u.RawQuery
	}
	return rest, nil
}

// sameOrigin compares scheme, host and port, the default port of the
// scheme filled in.
func sameOrigin(a, b *url.URL) bool {
	port := func(u *url.URL) string {
		if p := u.Port(); p != "" {
			return p
		}
		if strings.EqualFold(u.Scheme, "https") {
			return "443"
		}
		return "80"
	}
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

// silentError fails the command (exit 1) with a short message, because what
// the user needs to see was already printed.
type silentError struct{ err error }

func (e silentError) Error() string { return e.err.Error() }
func (e silentError) Unwrap() error { return e.err }
