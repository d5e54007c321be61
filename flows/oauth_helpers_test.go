package flows

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/latch-dev/latch/internal/fakeidp"
	"github.com/latch-dev/latch/vault"
)

// oauthEnv is an Env with a memory vault on a settable clock, and a fake
// OpenID provider.
type oauthEnv struct {
	*Env
	t     *testing.T
	ctx   context.Context
	idp   *fakeidp.IdP
	clock *clock
}

func newOAuthEnv(t *testing.T, configure ...func(*fakeidp.Config)) *oauthEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	c := &clock{t: time.Now()}
	return &oauthEnv{
		Env:   &Env{Home: t.TempDir(), Secrets: vault.NewMemory(), Now: c.Now},
		t:     t,
		ctx:   ctx,
		idp:   fakeidp.New(t, configure...),
		clock: c,
	}
}

func (o *oauthEnv) req() OAuthRequest {
	return OAuthRequest{Issuer: o.idp.URL, ClientID: "latch-cli"}
}

// browse completes a started browser login as the user's browser would, and
// returns the page the callback showed (or the error of the walk).
func (o *oauthEnv) browse(b *BrowserLogin) <-chan *fakeidp.Page {
	ch := make(chan *fakeidp.Page, 1)
	go func() {
		p, err := fakeidp.Browse(o.ctx, b.URL)
		if err != nil {
			p = &fakeidp.Page{Body: "browse: " + err.Error()}
		}
		ch <- p
	}()
	return ch
}

// browserLogin runs a whole browser login and returns its result, its error
// and the page the browser ended on.
func (o *oauthEnv) browserLogin(req OAuthRequest) (*LoginResult, *fakeidp.Page, error) {
	o.t.Helper()
	b, err := o.StartBrowserLogin(o.ctx, req)
	if err != nil {
		return nil, nil, err
	}
	page := o.browse(b)
	res, err := o.FinishBrowserLogin(o.ctx, b)
	p := <-page
	secrets := []string{b.state, b.nonce, b.verifier}
	noSecrets(o.t, err, secrets...)
	for _, s := range secrets {
		if strings.Contains(p.Body, s) {
			o.t.Fatal("the callback page shows a secret of the login")
		}
	}
	return res, p, err
}

// mustLogin logs in with the browser flow and fails the test otherwise.
func (o *oauthEnv) mustLogin() *LoginResult {
	o.t.Helper()
	res, page, err := o.browserLogin(o.req())
	if err != nil {
		o.t.Fatalf("browser login: %v (page %d: %s)", err, page.Status, page.Body)
	}
	return res
}

func (o *oauthEnv) stored(profile string) storedTokens {
	o.t.Helper()
	raw, err := o.Secrets.Get(o.ctx, tokensKey(profile))
	if err != nil {
		o.t.Fatal(err)
	}
	var st storedTokens
	if err := json.Unmarshal(raw, &st); err != nil {
		o.t.Fatal(err)
	}
	return st
}

// expire moves the clock past the access token's life.
func (o *oauthEnv) expire() { o.clock.Add(6 * time.Minute) }

// secretsOf lists the stored secrets of profile, for noSecrets.
func (o *oauthEnv) secretsOf(profile string) []string {
	st := o.stored(profile)
	return []string{st.Access, st.Refresh, st.ID}
}

func wantErr(t *testing.T, err, target error, contains string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %v", target)
	}
	if target != nil && !errors.Is(err, target) {
		t.Fatalf("error %q does not match %v", err, target)
	}
	if contains != "" && !strings.Contains(err.Error(), contains) {
		t.Fatalf("error %q does not say %q", err, contains)
	}
}
