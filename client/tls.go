package client

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// baseTransport is the transport under every call: Transport when set,
// else http.DefaultTransport (proxies from the environment, HTTP/2), or a
// clone of it trusting CAFile's authorities besides the system's.
func (o Options) baseTransport() (http.RoundTripper, error) {
	if o.Transport != nil {
		return o.Transport, nil
	}
	if o.CAFile == "" {
		// The shared transport keeps one connection pool per process.
		return http.DefaultTransport, nil
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	pool, err := caPool(o.CAFile)
	if err != nil {
		return nil, err
	}
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return t, nil
}

// caPool is the system's authorities plus those of the PEM file path.
func caPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w; give the path of a PEM file holding the CA's certificate", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool() // no system pool (some containers): the file alone
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca-file %s holds no PEM certificate (-----BEGIN CERTIFICATE-----); "+
			"give the CA's certificate in PEM form", path)
	}
	return pool, nil
}

// caAdvice says what to do about a certificate this machine does not trust.
const caAdvice = "the server's certificate is signed by an authority this machine does not trust; " +
	"log in with --ca-file PEM (the CA's certificate; the profile keeps it) or set SSL_CERT_FILE"

// tlsAdvice describes a failure to trust the server's certificate, with
// what to do about it; "" when err is something else. It goes by crypto/x509's
// message, since go-oidc and x/oauth2 flatten the error chain (%v) on the
// way. describeDialError should return it when it is not "".
func tlsAdvice(err error) string {
	if err != nil && strings.Contains(err.Error(), "certificate signed by unknown authority") {
		return caAdvice
	}
	return ""
}

// withTLSAdvice adds tlsAdvice to an error about an untrusted certificate
// whose message does not say it yet.
func withTLSAdvice(err error) error {
	if advice := tlsAdvice(err); advice != "" && !strings.Contains(err.Error(), "--ca-file") {
		return &tlsAdviceError{err: err}
	}
	return err
}

type tlsAdviceError struct{ err error }

func (e *tlsAdviceError) Error() string { return e.err.Error() + ": " + caAdvice }
func (e *tlsAdviceError) Unwrap() error { return e.err }
