package mailer

import (
	"embed"
	"fmt"
	htmltemplate "html/template"
	"maps"
	"slices"
	"strings"
	"sync"
	texttemplate "text/template"
)

//go:embed templates/*.txt templates/*.html
var templateFS embed.FS

// Subjects of every kind of mail. Tests (and people's filters) match on
// them, so change them with care.
var Subjects = map[string]string{
	"verify-email":             "latch: confirm your email address",
	"password-reset":           "latch: reset your password",
	"account-exists":           "latch: someone tried to sign up with your email address",
	"email-changed":            "latch: your email address was changed",
	"password-changed":         "latch: your password was changed",
	"password-reset-done":      "latch: your password was reset",
	"mfa-enabled":              "latch: two-factor authentication turned on",
	"mfa-disabled":             "latch: two-factor authentication turned off",
	"backup-codes-regenerated": "latch: new backup codes",
	"new-sign-in":              "latch: new sign-in to your account",
	"refresh-reuse":            "latch: a session was ended because its token was used twice",
}

type pair struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

// templates are parsed on first use, not at start-up: every latch process
// links this package, and only a server sends mail (0.5 ms and 180 KB on
// each latch token otherwise). A broken template fails the package's tests.
var templates = sync.OnceValue(mustParse)

func mustParse() map[string]pair {
	baseText := texttemplate.Must(texttemplate.New("base.txt").Option("missingkey=error").
		ParseFS(templateFS, "templates/base.txt"))
	baseHTML := htmltemplate.Must(htmltemplate.New("base.html").Option("missingkey=error").
		ParseFS(templateFS, "templates/base.html"))
	out := map[string]pair{}
	for kind := range Subjects {
		t := texttemplate.Must(texttemplate.Must(baseText.Clone()).ParseFS(templateFS, "templates/"+kind+".txt"))
		h := htmltemplate.Must(htmltemplate.Must(baseHTML.Clone()).ParseFS(templateFS, "templates/"+kind+".html"))
		out[kind] = pair{text: t, html: h}
	}
	return out
}

// Kinds lists every kind of mail, sorted.
func Kinds() []string { return slices.Sorted(maps.Keys(Subjects)) }

// Render fills the templates of kind with data (which must hold every key
// the kind uses, "username" always) into a message to to. The HTML part
// escapes the data; the text part is plain text and needs no escaping.
func Render(kind, to string, data map[string]string) (Message, error) {
	p, ok := templates()[kind]
	if !ok {
		return Message{}, fmt.Errorf("no mail template %q (kinds: %s)", kind, strings.Join(Kinds(), ", "))
	}
	var text, html strings.Builder
	if err := p.text.ExecuteTemplate(&text, "base.txt", data); err != nil {
		return Message{}, fmt.Errorf("render %s mail: %w", kind, err)
	}
	if err := p.html.ExecuteTemplate(&html, "base.html", data); err != nil {
		return Message{}, fmt.Errorf("render %s mail: %w", kind, err)
	}
	return Message{To: to, Kind: kind, Subject: Subjects[kind], Text: text.String(), HTML: html.String()}, nil
}
