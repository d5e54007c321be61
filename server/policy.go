package server

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/ccojocar/zxcvbn-go"
)

// policy is what registration and password changes accept. It is published
// at /auth/config so that clients can validate as the user types.
type policy struct {
	UsernameMin, UsernameMax int
	EmailMax                 int
	PasswordMin, PasswordMax int
	PasswordMinScore         int // zxcvbn score 0–4
}

var defaultPolicy = policy{
	UsernameMin: 3, UsernameMax: 80,
	EmailMax:    120,
	PasswordMin: 8, PasswordMax: 128,
	PasswordMinScore: 3,
}

const usernamePattern = `^[A-Za-z0-9._-]+$`

var usernameRE = regexp.MustCompile(usernamePattern)

// fieldErrors maps a request field to what is wrong with it.
type fieldErrors map[string]string

func (p policy) checkUsername(u string, errs fieldErrors) {
	n := utf8.RuneCountInString(u)
	switch {
	case u == "":
		errs["username"] = "is required"
	case n < p.UsernameMin || n > p.UsernameMax:
		errs["username"] = fmt.Sprintf("must be %d to %d characters", p.UsernameMin, p.UsernameMax)
	case !usernameRE.MatchString(u):
		errs["username"] = "may contain only letters, digits, '.', '_' and '-'"
	}
}

func (p policy) checkEmail(e string, errs fieldErrors) {
	switch {
	case e == "":
		errs["email"] = "is required"
	case utf8.RuneCountInString(e) > p.EmailMax:
		errs["email"] = fmt.Sprintf("must be at most %d characters", p.EmailMax)
	case !validEmail(e):
		errs["email"] = "is not a valid email address"
	}
}

// validEmail accepts a bare addr-spec with a dotted domain: "a@b.example",
// not "Name <a@b.example>" nor "a@localhost".
func validEmail(e string) bool {
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" {
		return false
	}
	at := strings.LastIndexByte(e, '@')
	domain := e[at+1:]
	return at > 0 && strings.Contains(domain, ".") && !strings.HasSuffix(domain, ".") && !strings.ContainsAny(e, " \t\r\n")
}

// checkPassword judges a password in the context of the account's own
// username and email, which zxcvbn treats as known words.
func (p policy) checkPassword(field, pw, username, email string, errs fieldErrors) {
	n := utf8.RuneCountInString(pw)
	switch {
	case pw == "":
		errs[field] = "is required"
	case n < p.PasswordMin || n > p.PasswordMax:
		errs[field] = fmt.Sprintf("must be %d to %d characters", p.PasswordMin, p.PasswordMax)
	case username != "" && strings.Contains(strings.ToLower(pw), strings.ToLower(username)):
		errs[field] = "must not contain the username"
	default:
		inputs := []string{username, email}
		if at := strings.IndexByte(email, '@'); at > 0 {
			inputs = append(inputs, email[:at])
		}
		if zxcvbn.PasswordStrength(pw, inputs).Score < p.PasswordMinScore {
			errs[field] = "is too easy to guess: use a longer phrase of unrelated words"
		}
	}
}
