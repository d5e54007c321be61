package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestDevMail(t *testing.T) {
	t.Run("absent without --dev", func(t *testing.T) {
		e := newEnv(t)
		if r := e.do("GET", "/dev/mail", nil); r.Status != http.StatusNotFound {
			t.Fatalf("GET /dev/mail = %d, want 404", r.Status)
		}
	})
	t.Run("lists the dev mailbox", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.Mail.Dev = true })
		if err := queue(t, e.srv, resetMail("first@example.com"), false); err != nil {
			t.Fatal(err)
		}
		m := resetMail("second@example.com")
		m.Kind = "verify-email"
		if err := queue(t, e.srv, m, false); err != nil {
			t.Fatal(err)
		}
		var list struct {
			Raw []map[string]any `json:"messages"`
		}
		eventually(t, "two messages in the dev mailbox", func() bool {
			r := e.do("GET", "/dev/mail", nil)
			list.Raw = nil
			json.Unmarshal(r.Body, &list)
			return r.Status == http.StatusOK && len(list.Raw) == 2
		})
		newest := list.Raw[0]
		if newest["to"] != "second@example.com" || newest["kind"] != "verify-email" ||
			!strings.Contains(newest["text"].(string), "SECRET-TOKEN-1") || !strings.Contains(newest["html"].(string), "<a href=") ||
			newest["subject"] == "" || newest["id"] == "" || newest["created_at"] == "" {
			t.Fatalf("newest message: %v", newest)
		}
		if list.Raw[1]["to"] != "first@example.com" {
			t.Fatalf("order: %v", list.Raw)
		}
		logs := e.logs.String()
		if n := strings.Count(logs, "dev mail:"); n != 2 {
			t.Fatalf("%d notices in the log, want one per mail:\n%s", n, logs)
		}
		if strings.Contains(logs, "SECRET-TOKEN-1") {
			t.Fatalf("the notice shows the token:\n%s", logs)
		}
	})
}
