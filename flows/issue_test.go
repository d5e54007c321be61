package flows

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/latch-dev/latch/vault"
)

// TestValidTokenMinValid: ValidToken hands out the saved token with its
// expiry while it lasts MinValid, rotates first when it would expire sooner,
// and refuses (without rotating) a MinValid longer than the tokens last.
func TestValidTokenMinValid(t *testing.T) {
	for _, tc := range []struct {
		name     string
		elapsed  time.Duration // since login; tokens last testAccessTTL (5 min)
		minValid time.Duration
		rotated  int
		wantErr  error
	}{
		{"no minimum, fresh", time.Minute, 0, 0, nil},
		{"lasts exactly the minimum", time.Minute, 4 * time.Minute, 0, nil},
		{"expires a second too soon", time.Minute + time.Second, 4 * time.Minute, 1, nil},
		{"minimum = lifetime, fresh token", 0, testAccessTTL, 0, nil},
		{"minimum = lifetime, a second later", time.Second, testAccessTTL, 1, nil},
		{"longer than tokens last", time.Minute, 10 * time.Minute, 0, ErrMinValid},
		{"longer than tokens last, and expired", testAccessTTL, 10 * time.Minute, 1, ErrMinValid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			login := e.login("ada")
			loginAt := e.clock.Now()
			e.clock.Add(tc.elapsed)

			tok, exp, err := e.m.ValidToken(e.ctx, "ada", e.client, tc.minValid)
			if n := e.refreshes("rotated"); n != tc.rotated {
				t.Fatalf("server rotated %d times, want %d", n, tc.rotated)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				noSecrets(t, err, login.AccessToken, login.RefreshToken)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			now := e.clock.Now()
			wantExp := loginAt.Add(testAccessTTL)
			if tc.rotated > 0 {
				wantExp = now.Add(testAccessTTL)
				if tok == login.AccessToken {
					t.Fatal("rotated, yet the login's token came back")
				}
			} else if tok != login.AccessToken {
				t.Fatal("the saved token was not handed out as is")
			}
			if !exp.Equal(time.Unix(wantExp.Unix(), 0)) {
				t.Fatalf("expiry %s, want %s", exp, wantExp)
			}
			if left := exp.Sub(time.Unix(now.Unix(), 0)); left < tc.minValid {
				t.Fatalf("the token lasts %s, less than the %s asked for", left, tc.minValid)
			}
			e.checkUsable(tok, "ada")
		})
	}
}

// TestValidTokenFromCache: with the session cache, a token that lasts
// MinValid and its expiry come without reading the vault; one that does not
// is rotated and cached anew.
func TestValidTokenFromCache(t *testing.T) {
	e, c := cachedEnv(t)
	login := e.login("ada")
	loginAt := e.clock.Now()
	reads := &countingGets{Secrets: e.secrets}
	m := &TokenManager{Secrets: reads, Dir: e.dir, Now: e.clock.Now, Cache: c}
	e.clock.Add(time.Minute)

	tok, exp, err := m.ValidToken(e.ctx, "ada", noRefresher{t}, 2*time.Minute)
	if err != nil || tok != login.AccessToken || reads.n != 0 {
		t.Fatalf("ValidToken = same %v, %v after %d vault reads; want the login's token and none", tok == login.AccessToken, err, reads.n)
	}
	if want := time.Unix(loginAt.Add(testAccessTTL).Unix(), 0); !exp.Equal(want) {
		t.Fatalf("expiry from the cache %s, want %s", exp, want)
	}

	rotated, exp, err := m.ValidToken(e.ctx, "ada", e.client, 4*time.Minute+30*time.Second)
	if err != nil || rotated == login.AccessToken || e.refreshes("rotated") != 1 {
		t.Fatalf("ValidToken(4m30s) = same %v, %v, %d rotations; want a new token and 1", rotated == login.AccessToken, err, e.refreshes("rotated"))
	}
	if want := time.Unix(e.clock.Now().Add(testAccessTTL).Unix(), 0); !exp.Equal(want) {
		t.Fatalf("expiry after rotation %s, want %s", exp, want)
	}
	reads.n = 0
	again, _, err := m.ValidToken(e.ctx, "ada", noRefresher{t}, 4*time.Minute+30*time.Second)
	if err != nil || again != rotated || reads.n != 0 {
		t.Fatalf("after rotation: cached %v, %v, %d vault reads", again == rotated, err, reads.n)
	}
}

// TestValidTokenMinValidSingleFlight: many callers, each with its own
// TokenManager and vault handle, asking for a token that outlives the
// current one share one rotation.
func TestValidTokenMinValidSingleFlight(t *testing.T) {
	e := newEnv(t)
	e.login("ada")
	e.clock.Add(2 * time.Minute) // 3 min left: valid, but short of 4 min

	const n = 20
	var (
		wg     sync.WaitGroup
		tokens [n]string
		errs   [n]error
	)
	for i := range n {
		m := &TokenManager{Secrets: e.openVault(), Dir: e.dir, Now: e.clock.Now}
		wg.Go(func() { tokens[i], _, errs[i] = m.ValidToken(e.ctx, "ada", e.client, 4*time.Minute) })
	}
	wg.Wait()
	want := e.stored("ada").Access
	for i := range n {
		if errs[i] != nil || tokens[i] != want {
			t.Fatalf("caller %d: %v, the saved token %v", i, errs[i], tokens[i] == want)
		}
	}
	if r := e.refreshes("rotated"); r != 1 {
		t.Fatalf("server rotated %d times, want 1", r)
	}
}

// fakeForward is a TokenSource standing in for a forwarded agent.
type fakeForward struct {
	asked []string
}

func (f *fakeForward) Token(_ context.Context, profile string, opts TokenOptions) (*IssuedToken, error) {
	f.asked = append(f.asked, profile)
	return &IssuedToken{Profile: profile, AccessToken: "forwarded", TokenType: "Bearer"}, nil
}

// TestTokenFor: the local profile's token with its expiry; Forward only for
// a profile this machine lacks; an ID token only for an OpenID profile.
func TestTokenFor(t *testing.T) {
	e := newEnv(t)
	ae := e.accountEnv()
	if _, err := ae.Signup(e.ctx, SignupRequest{Server: e.http.URL, Username: "alice", Email: "alice@example.com", Password: goodPassword}); err != nil {
		t.Fatal(err)
	}
	signedUp := e.clock.Now()
	fw := &fakeForward{}
	ae.Forward = fw

	for _, tc := range []struct {
		name      string
		profile   string
		opts      TokenOptions
		forwarded bool
		wantErr   error
	}{
		{"current profile", "", TokenOptions{}, false, nil},
		{"named profile", "default", TokenOptions{MinValid: time.Minute}, false, nil},
		{"unknown profile goes to the forward", "remote", TokenOptions{}, true, nil},
		{"ID token of an account profile", "default", TokenOptions{IDToken: true}, false, ErrNoIDToken},
		{"negative minimum", "default", TokenOptions{MinValid: -time.Second}, false, errAny},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fw.asked = nil
			it, err := ae.TokenFor(e.ctx, tc.profile, tc.opts)
			if len(fw.asked) > 0 != tc.forwarded {
				t.Fatalf("forward asked for %v, want forwarded %v", fw.asked, tc.forwarded)
			}
			switch {
			case tc.wantErr == errAny && err != nil:
				return
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			case err != nil:
				t.Fatal(err)
			case tc.forwarded:
				if it.AccessToken != "forwarded" || it.Profile != tc.profile {
					t.Fatalf("forwarded token = %+v", it)
				}
				return
			}
			if it.Profile != "default" || it.TokenType != "Bearer" || it.IDToken != "" {
				t.Fatalf("issued = %+v", it)
			}
			if want := time.Unix(signedUp.Add(testAccessTTL).Unix(), 0); !it.Expiry.Equal(want) {
				t.Fatalf("expiry %s, want %s", it.Expiry, want)
			}
			e.checkUsable(it.AccessToken, "alice")
		})
	}
	if n := e.refreshes("rotated"); n != 0 {
		t.Fatalf("server rotated %d times, want 0", n)
	}
}

// TestTokenForNoProfileForwards: with no profile at all, the forward
// answers; without a forward, the error asks for a login.
func TestTokenForNoProfileForwards(t *testing.T) {
	home := t.TempDir()
	e := &Env{Home: home, Secrets: vault.NewMemory()}
	if _, err := e.TokenFor(context.Background(), "", TokenOptions{}); !errors.Is(err, ErrNoProfile) || !errors.Is(err, ErrLoginRequired) {
		t.Fatalf("no profile, no forward: %v", err)
	}
	fw := &fakeForward{}
	e.Forward = fw
	it, err := e.TokenFor(context.Background(), "", TokenOptions{})
	if err != nil || it.AccessToken != "forwarded" || len(fw.asked) != 1 {
		t.Fatalf("no profile, forward: %+v, %v, asked %v", it, err, fw.asked)
	}
}

// errAny in a wantErr column accepts any error.
var errAny = errors.New("any error")

// TestTokenForIDToken: an OpenID profile hands out its ID token on request,
// and only then.
func TestTokenForIDToken(t *testing.T) {
	o := newOAuthEnv(t)
	res := o.mustLogin()
	st := o.stored(res.Profile.Name)
	if st.ID == "" {
		t.Fatal("the fake provider sent no ID token")
	}
	it, err := o.TokenFor(o.ctx, res.Profile.Name, TokenOptions{IDToken: true})
	if err != nil || it.IDToken != st.ID || it.AccessToken != st.Access {
		t.Fatalf("TokenFor(IDToken) = %+v, %v", it, err)
	}
	if it, err = o.TokenFor(o.ctx, res.Profile.Name, TokenOptions{}); err != nil || it.IDToken != "" {
		t.Fatalf("TokenFor without IDToken = ID %q, %v", it.IDToken, err)
	}
}
