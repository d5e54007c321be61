package client

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A provider that echoes the client secret in its error answer (a debug
// build, a proxy's error page) must not put it in the trace: the secret
// has no secret name there and need not look random, so only knowing it
// masks it.
func TestTraceMasksEchoedClientSecret(t *testing.T) {
	for _, tc := range []struct {
		name, secret, contentType string
		body                      func(secret string) string
	}{
		{"JSON description", "opensesame-please", "application/json", func(s string) string {
			return fmt.Sprintf(`{"error":"invalid_client","error_description":"client secret '%s' is not the one registered"}`, s)
		}},
		{"HTML page", "open<sesame>&please", "text/html", func(s string) string {
			return "<html><body><p>Bad secret: " + html.EscapeString(s) + "</p><p>raw: " + s + "</p></body></html>"
		}},
		{"plain text", "opensesame-please", "text/plain", func(s string) string { return "unauthorized client " + s }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, tc.body(tc.secret))
			}))
			defer srv.Close()
			var log traceLog
			p, err := NewProvider(context.Background(), ProviderConfig{ClientID: "cli", ClientSecret: tc.secret,
				AuthMethod: AuthMethodPost, Endpoints: Endpoints{TokenURL: srv.URL + "/token"}}, Options{Trace: log.trace})
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.Exchange(context.Background(), "http://127.0.0.1:1/cb", "the-code", "the-verifier-0123456789")
			if err == nil {
				t.Fatal("the exchange succeeded")
			}
			out := log.text(t)
			if !strings.Contains(out, "401") {
				t.Fatalf("no exchange traced:\n%s", out)
			}
			for _, s := range []string{tc.secret, html.EscapeString(tc.secret), "opensesame"} {
				if strings.Contains(out, s) {
					t.Errorf("the trace shows the client secret (as %q):\n%s", s, out)
				}
				if strings.Contains(err.Error(), s) {
					t.Errorf("the error shows the client secret: %v", err)
				}
			}
		})
	}
}
