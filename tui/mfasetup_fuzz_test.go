package tui

import (
	"testing"

	"github.com/pquerna/otp"
)

// FuzzQRContent: the otpauth URI comes from the server. What the QR code
// holds is the URI unchanged, or an otpauth URI without the defaults that
// has the same secret, issuer and account — an authenticator app must end
// up with the same key either way.
func FuzzQRContent(f *testing.F) {
	for _, s := range []string{
		"otpauth://totp/latch:alice?algorithm=SHA1&digits=6&issuer=latch&period=30&secret=JBSWY3DPEHPK3PXP",
		"otpauth://totp/alice?secret=JBSWY3DPEHPK3PXP",
		"otpauth://totp/Example%20Co:bob%40example.com?secret=GEZDGNBVGY3TQOJQ&issuer=Example%20Co",
		"otpauth://totp/a?secret=JBSWY3DPEHPK3PXP&digits=8",
		"otpauth://hotp/a?secret=JBSWY3DPEHPK3PXP&counter=1",
		"otpauth://totp/a?secret=&issuer=x",
		"otpauth://totp/a%2Fb?secret=JBSWY3DPEHPK3PXP&issuer=a%26b%3Dc",
		"not a uri",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		got := qrContent(uri)
		if got == uri {
			return
		}
		in, err := otp.NewKeyFromURL(uri)
		if err != nil {
			t.Fatalf("qrContent rewrote a URI that does not parse: %q", uri)
		}
		out, err := otp.NewKeyFromURL(got)
		if err != nil {
			t.Fatalf("qrContent(%q) = %q, which does not parse: %v", uri, got, err)
		}
		if out.Secret() != in.Secret() || out.Issuer() != in.Issuer() || out.AccountName() != in.AccountName() ||
			out.Type() != "totp" || out.Period() != 30 || out.Digits() != otp.DigitsSix || out.Algorithm() != otp.AlgorithmSHA1 {
			t.Fatalf("qrContent(%q) = %q: a different key (secret %q/%q, issuer %q/%q, account %q/%q)",
				uri, got, in.Secret(), out.Secret(), in.Issuer(), out.Issuer(), in.AccountName(), out.AccountName())
		}
	})
}
