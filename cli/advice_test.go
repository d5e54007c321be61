package cli

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/vault"
)

// adviceErrors are the errors that carry advice naming a flag, made by the
// code that makes them: the account client's failures and the flows' own.
func adviceErrors(t *testing.T) map[string]error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := map[string]error{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/auth/me":
			http.Redirect(w, r, "https://elsewhere.example/auth/me", http.StatusMovedPermanently)
		case "/auth/sessions":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("<html><body>502</body></html>"))
		case "/auth/protected":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"message":"` + strings.Repeat("A", 2*client.MaxResponseBytes) + `"}`))
		default:
			w.WriteHeader(http.StatusFound) // no Location
		}
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, errs["redirect"] = c.Me(ctx, "tok")
	_, errs["html"] = c.Sessions(ctx, "tok")
	_, errs["huge"] = c.Protected(ctx, "tok")
	_, errs["no location"] = c.Config(ctx)
	_, errs["insecure"] = client.New("http://example.com", client.Options{})
	dead, _ := client.New("http://127.0.0.1:1", client.Options{})
	_, errs["unreachable"] = dead.Me(ctx, "tok")

	e := testEnv(t, account("ann", srv.URL), vault.Profile{Name: "idp", Kind: vault.KindOIDC, Issuer: "https://idp.example", ClientID: "c"})
	_, errs["unknown profile"] = e.Profile("nope")
	_, errs["OpenID without a server"] = e.Sessions(ctx, "idp")
	_, errs["no TOTP secret"] = e.TOTPCode(ctx, "ann")
	errs["rm logged in"] = e.RemoveProfile(ctx, "ann", false)
	_, errs["logout unreachable"] = e.Logout(ctx, "idp", false, false)
	empty := &flows.Env{Home: t.TempDir(), Secrets: vault.NewMemory()}
	_, errs["no profiles"] = empty.Profile("")
	for name, err := range errs {
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
	}
	return errs
}

var flagRE = regexp.MustCompile(`--[a-z][a-z-]*`)

// A message advises only flags the command showing it has, or flags of a
// command it names ("run latch login --server URL").
func TestAdviceNamesFlagsTheCommandHas(t *testing.T) {
	errs := adviceErrors(t)
	// Most errors can come from any command that reaches a server; these
	// only from a few.
	shownBy := map[string][]string{
		"rm logged in":   {"latch profile rm"},
		"no TOTP secret": {"latch mfa code", "latch login"},
	}
	root := NewRootCmd()
	for _, cmd := range allCommands(root) {
		for name, err := range errs {
			if only, ok := shownBy[name]; ok && !slices.Contains(only, cmd.CommandPath()) {
				continue
			}
			msg := adviseFor(cmd, err)
			for _, clause := range strings.FieldsFunc(msg, func(r rune) bool { return strings.ContainsRune(";(),", r) }) {
				target := cmd
				if i := strings.LastIndex(clause, "latch "); i >= 0 {
					if named := namedCommand(root, clause[i+len("latch "):]); named != root {
						target = named
					}
				}
				for _, flag := range flagRE.FindAllString(clause, -1) {
					if !hasFlag(target, flag[2:]) {
						t.Errorf("%s: %s advises %s, which %q lacks:\n%s", cmd.CommandPath(), name, flag, target.CommandPath(), msg)
					}
				}
			}
		}
	}
}

// namedCommand is the command that the words of s name, like "login
// --server URL" → latch login.
func namedCommand(root *cobra.Command, s string) *cobra.Command {
	c := root
	for _, w := range strings.Fields(s) {
		next := (*cobra.Command)(nil)
		for _, sub := range c.Commands() {
			if sub.Name() == w {
				next = sub
			}
		}
		if next == nil {
			break
		}
		c = next
	}
	return c
}

func TestAdviceKeepsWhatTheCommandHas(t *testing.T) {
	errs := adviceErrors(t)
	root := NewRootCmd()
	login := namedCommand(root, "login")
	token := namedCommand(root, "token")
	if got := adviseFor(login, errs["unreachable"]); !strings.Contains(got, "check --server") {
		t.Errorf("login: %s", got)
	}
	got := adviseFor(token, errs["unreachable"])
	if !strings.Contains(got, "check the profile's server URL (latch profile list)") || !errors.Is(errs["unreachable"], client.ErrUnreachable) {
		t.Errorf("token: %s", got)
	}
}
