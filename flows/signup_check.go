package flows

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/ccojocar/zxcvbn-go"

	"github.com/latch-dev/latch/client"
)

// SignupFields are the values of a signup form, as typed.
type SignupFields struct {
	Username, Email, Password, Confirm string
}

// CheckSignup judges a signup form against the server's published policy, as
// the user types: it returns field name → what is wrong ("username", "email",
// "password", "confirm"), and an empty map when the form may be sent. It
// mirrors the server's rules so that most mistakes are caught before a round
// trip; the server stays the authority and may still refuse.
func CheckSignup(p *client.AuthConfig, f SignupFields) map[string]string {
	errs := map[string]string{}
	u := p.Username
	switch n := utf8.RuneCountInString(f.Username); {
	case f.Username == "":
		errs["username"] = "is required"
	case (u.MinLength > 0 && n < u.MinLength) || (u.MaxLength > 0 && n > u.MaxLength):
		errs["username"] = fmt.Sprintf("must be %d to %d characters", u.MinLength, u.MaxLength)
	case !matchesPattern(u.Pattern, f.Username):
		errs["username"] = "may contain only " + allowedChars(u.Pattern)
	}
	switch {
	case f.Email == "":
		errs["email"] = "is required"
	case p.EmailMaxLength > 0 && utf8.RuneCountInString(f.Email) > p.EmailMaxLength:
		errs["email"] = fmt.Sprintf("must be at most %d characters", p.EmailMaxLength)
	case !plausibleEmail(f.Email):
		errs["email"] = "is not a valid email address"
	}
	pw := p.Password
	switch n := utf8.RuneCountInString(f.Password); {
	case f.Password == "":
		errs["password"] = "is required"
	case (pw.MinLength > 0 && n < pw.MinLength) || (pw.MaxLength > 0 && n > pw.MaxLength):
		errs["password"] = fmt.Sprintf("must be %d to %d characters", pw.MinLength, pw.MaxLength)
	case f.Username != "" && strings.Contains(strings.ToLower(f.Password), strings.ToLower(f.Username)):
		errs["password"] = "must not contain the username"
	case PasswordScore(f.Password, f.Username, f.Email) < pw.MinScore:
		errs["password"] = "is too easy to guess: use a longer phrase of unrelated words"
	}
	switch {
	case f.Confirm == "":
		errs["confirm"] = "is required"
	case f.Confirm != f.Password:
		errs["confirm"] = "does not match the password"
	}
	return errs
}

// maxScoredRunes caps what PasswordScore hands zxcvbn, as the server does (it
// refuses passwords over 128 runes): zxcvbn's cost grows faster than linearly
// and the meter scores on every keystroke.
const maxScoredRunes = 128

// passwordStrength is zxcvbn, a seam for tests.
var passwordStrength = zxcvbn.PasswordStrength

// PasswordScore is the zxcvbn score (0–4) of a password, with the account's
// username and email as words an attacker would try first, as the server
// judges it. Only the first 128 runes are scored.
func PasswordScore(password, username, email string) int {
	if password == "" {
		return 0
	}
	if r := []rune(password); len(r) > maxScoredRunes {
		password = string(r[:maxScoredRunes])
	}
	inputs := []string{username, email}
	if at := strings.IndexByte(email, '@'); at > 0 {
		inputs = append(inputs, email[:at])
	}
	return passwordStrength(password, inputs).Score
}

// matchesPattern applies the server's username pattern. A pattern Go cannot
// compile is left to the server to enforce.
func matchesPattern(pattern, s string) bool {
	if pattern == "" {
		return true
	}
	re, err := regexp.Compile(pattern)
	return err != nil || re.MatchString(s)
}

// allowedChars says in words which characters a username pattern allows.
func allowedChars(pattern string) string {
	if pattern == `^[A-Za-z0-9._-]+$` {
		return "letters, digits, '.', '_' and '-'"
	}
	return "what the server's pattern allows: " + pattern
}

// plausibleEmail accepts a bare address with a dotted domain, like the
// server: "a@b.example", not "Name <a@b.example>" nor "a@localhost".
func plausibleEmail(e string) bool {
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" {
		return false
	}
	at := strings.LastIndexByte(e, '@')
	domain := e[at+1:]
	return at > 0 && strings.Contains(domain, ".") && !strings.HasSuffix(domain, ".")
}
