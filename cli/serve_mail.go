package cli

import (
	"net/mail"
	"net/url"
	"os"
	"strings"

	"github.com/latch-dev/latch/mailer"
	"github.com/latch-dev/latch/server"
)

// smtpPasswordEnv holds the SMTP password when no file is given.
const smtpPasswordEnv = "LATCH_SMTP_PASSWORD"

// mailConfig checks the mail flags and reads the SMTP password. Every
// error names the flag to fix and never shows the password.
func (o *serveOptions) mailConfig() (server.MailConfig, error) {
	mc := server.MailConfig{Dev: o.Dev, From: o.MailFrom}
	if o.SMTPURL == "" {
		switch {
		case o.SMTPPasswordFile != "":
			return mc, usagef("--smtp-password-file needs --smtp-url")
		case o.MailFrom != "" && !o.Dev:
			return mc, usagef("--mail-from needs --smtp-url (or --dev)")
		}
		return mc, nil
	}
	mc.SMTPURL = o.SMTPURL
	u, err := url.Parse(o.SMTPURL)
	if err != nil {
		// url's error repeats the URL, which might hold a password.
		return mc, usagef("--smtp-url is not a URL like smtp://user@mail.example.com:587")
	}
	if _, has := u.User.Password(); has {
		return mc, usagef("--smtp-url %s holds a password: remove it and give it with --smtp-password-file FILE or %s", u.Redacted(), smtpPasswordEnv)
	}
	if mc.SMTPPassword, err = o.smtpPassword(); err != nil {
		return mc, err
	}
	if u.User.Username() != "" && mc.SMTPPassword == "" {
		return mc, usagef("--smtp-url names user %q: give the password with --smtp-password-file FILE or %s", u.User.Username(), smtpPasswordEnv)
	}
	if mc.From == "" && o.Dev {
		mc.From = server.DevMailFrom
	}
	if mc.From == "" {
		return mc, usagef("--smtp-url needs --mail-from, the sender address, like 'latch <latch@example.com>'")
	}
	if _, err := mail.ParseAddress(mc.From); err != nil {
		return mc, usagef("--mail-from %q is not an address like 'latch <latch@example.com>'", mc.From)
	}
	if _, err := mailer.NewSMTP(mailer.Config{URL: mc.SMTPURL, Password: mc.SMTPPassword, From: mc.From}); err != nil {
		msg := strings.TrimPrefix(err.Error(), mailer.ErrConfig.Error()+": ")
		return mc, usagef("--smtp-url %s: %s", u.Redacted(), msg)
	}
	return mc, nil
}

// smtpPassword reads --smtp-password-file (which must not be readable by
// others) or $LATCH_SMTP_PASSWORD; "" when neither is given.
func (o *serveOptions) smtpPassword() (string, error) {
	env, envSet := os.LookupEnv(smtpPasswordEnv)
	if o.SMTPPasswordFile == "" {
		return env, nil
	}
	if envSet {
		return "", usagef("give the SMTP password by --smtp-password-file or %s, not both", smtpPasswordEnv)
	}
	return readSecretFile("--smtp-password-file", o.SMTPPasswordFile)
}
