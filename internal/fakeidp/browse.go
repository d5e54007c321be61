package fakeidp

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
)

// Page is where a browser ended up.
type Page struct {
	URL    string // the last URL requested
	Status int
	Body   string
}

// Browse acts as the user's browser for an authorization URL: it requests
// it and follows every redirect, as a browser would, to the loopback
// callback and beyond, and returns the last page. It works against any
// provider that redirects without asking anything (this package's always
// does); a provider that shows a login form ends the walk on that form.
func Browse(ctx context.Context, authURL string) (*Page, error) {
	return BrowseWith(ctx, &http.Client{}, authURL)
}

// BrowseWith is Browse with a browser of hc's transport (one that trusts a
// TLS provider's CA: IdP.Server.Client()).
func BrowseWith(ctx context.Context, hc *http.Client, authURL string) (*Page, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	hc = &http.Client{Transport: hc.Transport, Jar: jar}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/html")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("browse: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("browse: %w", err)
	}
	return &Page{URL: resp.Request.URL.String(), Status: resp.StatusCode, Body: string(body)}, nil
}
