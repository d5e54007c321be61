package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Do sends one raw request for a `gh api`-like command. path is relative to
// the server URL and must start with "/"; an absolute URL is refused so a
// token can never be sent to another host. body, if non-nil, is sent as
// application/json; accessToken, if non-empty, as a Bearer token.
//
// The same limits apply as for the typed methods: size cap, timeout, no
// redirects. err is nil only for a 2xx whose body is empty or JSON; otherwise
// it is an *APIError, a *ResponseError or a transport error, and status,
// header and respBody still hold whatever was received so the caller can show
// it.
func (c *Client) Do(ctx context.Context, method, path string, body []byte, accessToken string) (status int, header http.Header, respBody []byte, err error) {
	if err := checkMethod(method); err != nil {
		return 0, nil, nil, err
	}
	if err := checkRelativePath(path); err != nil {
		return 0, nil, nil, err
	}
	r, err := c.exchange(ctx, method, path, body, accessToken)
	if err != nil {
		return 0, nil, nil, err
	}
	if r.status < 200 || r.status > 299 {
		var secrets []string
		if accessToken != "" {
			secrets = []string{accessToken}
		}
		return r.status, r.header, r.body, statusError(r, secrets)
	}
	if len(r.body) > 0 {
		if mt := mediaType(r.header); mt != "application/json" && mt != "application/problem+json" {
			return r.status, r.header, r.body, &ResponseError{Status: r.status, op: method + " " + stripQuery(path),
				Reason: describeNonJSON(r)}
		}
	}
	return r.status, r.header, r.body, nil
}

func checkMethod(m string) error {
	if m == "" || strings.ContainsFunc(m, func(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", r) }) {
		return fmt.Errorf("invalid HTTP method %q", m)
	}
	return nil
}

// checkRelativePath refuses anything that could leave the configured server:
// absolute URLs, scheme-relative "//host" paths and backslash tricks.
func checkRelativePath(p string) error {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n\t ") {
		return fmt.Errorf("path %q must be a path on the server starting with a single \"/\", e.g. /auth/me", stripQuery(p))
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return fmt.Errorf("path %q is not a valid server path", stripQuery(p))
	}
	return nil
}
