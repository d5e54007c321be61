package client

import "net/url"

// ProviderConfig names a provider and latch's client registered there.
type ProviderConfig struct {
	Issuer   string
	ClientID string
	// ClientSecret is "" for a public client (latch's own, Google's desktop
	// apps with PKCE…). It never goes into an error, a trace or a URL.
	ClientSecret string
	// AuthMethod is how the client authenticates at the token endpoint:
	// "client_secret_basic", "client_secret_post" or "none"; "" picks what
	// the provider advertises (none without a secret).
	AuthMethod string
	// Endpoints, when TokenURL is set, replace OpenID discovery: an OAuth
	// 2.0 provider without a discovery document (GitHub).
	Endpoints Endpoints
	// Audience and Resource (RFC 8707) and AuthParams (prompt, login_hint,
	// acr_values, connector_id…) go on the authorization and device
	// requests; Audience and Resource on the token requests too.
	Audience   string
	Resource   []string
	AuthParams url.Values
}

// Endpoints are a provider's URLs given by hand instead of discovered.
type Endpoints struct {
	AuthURL, TokenURL, DeviceURL, RevokeURL, UserinfoURL, JWKSURL string
}
