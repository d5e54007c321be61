package fakeidp

import (
	"crypto/subtle"
	"encoding/pem"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// reply answers with v as JSON, or — for the GitHub dialect, unless the
// request accepts application/json — form-encoded, as GitHub does.
func (idp *IdP) reply(w http.ResponseWriter, r *http.Request, status int, v map[string]any) {
	if !idp.cfg.GitHub || acceptsJSON(r) {
		writeJSON(w, status, v)
		return
	}
	form := url.Values{}
	for k, x := range v {
		form.Set(k, fmt.Sprint(x))
	}
	w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(form.Encode()))
}

func acceptsJSON(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "application/json" {
			return true
		}
	}
	return false
}

// clientAuthenticated checks the client of a token, device or revocation
// request (the form parsed, idp.mu held), records how it authenticated,
// and answers invalid_client when it did not.
func (idp *IdP) clientAuthenticated(w http.ResponseWriter, r *http.Request) bool {
	c := idp.cfg
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	}
	method := "none"
	switch {
	case basic:
		method = "basic"
	case r.PostForm.Has("client_secret"):
		method, id, secret = "post", r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	default:
		id = r.PostForm.Get("client_id")
	}
	idp.stats.LastClientAuth = method
	ok := id == c.ClientID
	switch {
	case c.ClientSecret == "":
		ok = ok && method == "none"
	case c.ClientAuth != "" && method != c.ClientAuth:
		ok = false
	default:
		ok = ok && method != "none" && subtle.ConstantTimeCompare([]byte(secret), []byte(c.ClientSecret)) == 1
	}
	if basic && r.PostForm.Has("client_id") && r.PostForm.Get("client_id") != c.ClientID {
		ok = false
	}
	if !ok {
		idp.oauthError(w, r, http.StatusUnauthorized, "invalid_client", "client authentication failed ("+method+")")
	}
	return ok
}

// CACertPEM is the PEM of the certificate a TLS provider serves, which is
// its own throwaway CA: what --ca-file is given.
func (idp *IdP) CACertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: idp.Server.Certificate().Raw})
}
