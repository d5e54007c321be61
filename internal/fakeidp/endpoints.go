package fakeidp

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func (idp *IdP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	idp.mu.Lock()
	defer idp.mu.Unlock()
	c := idp.cfg
	idp.stats.Authorizations++
	idp.stats.LastState = q.Get("state")
	idp.stats.LastRedirectURI = q.Get("redirect_uri")
	idp.stats.LastAuthorizeQuery = q
	redirect, err := url.Parse(q.Get("redirect_uri"))
	switch {
	case q.Get("client_id") != c.ClientID:
		http.Error(w, "unknown client_id", http.StatusBadRequest)
		return
	case len(c.RedirectURIs) > 0 && !hasScope(c.RedirectURIs, q.Get("redirect_uri")):
		http.Error(w, "redirect_uri is not registered for this client", http.StatusBadRequest)
		return
	case err != nil || redirect.Scheme != "http" || redirect.Host == "":
		http.Error(w, "redirect_uri must be a loopback http URL", http.StatusBadRequest)
		return
	case c.RejectLocalhost && redirect.Hostname() == "localhost":
		http.Error(w, "redirect_uri with localhost is not allowed; use 127.0.0.1", http.StatusBadRequest)
		return
	case redirect.Hostname() != "127.0.0.1" && redirect.Hostname() != "localhost" && redirect.Hostname() != "::1":
		http.Error(w, "redirect_uri must be loopback", http.StatusBadRequest)
		return
	}
	back := redirect.Query()
	back.Set("state", q.Get("state"))
	if !c.OmitIss {
		iss := idp.URL
		if c.WrongIss {
			iss = "https://evil.example"
		}
		back.Set("iss", iss)
	}
	fail := func(code, desc string) {
		back.Set("error", code)
		back.Set("error_description", desc)
		redirect.RawQuery = back.Encode()
		http.Redirect(w, r, redirect.String(), http.StatusFound)
	}
	switch {
	case q.Get("response_type") != "code":
		fail("unsupported_response_type", "only code")
		return
	case q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "":
		fail("invalid_request", "PKCE with S256 is required")
		return
	case c.RequireLongState && len(q.Get("state")) < 8:
		fail("invalid_request", "state must have at least 8 characters")
		return
	case c.AuthorizeError != "":
		fail(c.AuthorizeError, "The resource owner denied the request.")
		return
	}
	code := random()
	idp.codes[code] = &authCode{redirectURI: q.Get("redirect_uri"), challenge: q.Get("code_challenge"),
		nonce: q.Get("nonce"), scopes: split(q.Get("scope"))}
	back.Set("code", code)
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (idp *IdP) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		idp.oauthError(w, r, http.StatusBadRequest, "invalid_request", "bad form")
		return
	}
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.stats.LastTokenForm = r.PostForm
	if r.Header.Get("Authorization") != "" {
		idp.stats.AuthHeaderCalls++
	}
	if !idp.clientAuthenticated(w, r) {
		return
	}
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		idp.stats.CodeExchanges++
		ac, ok := idp.codes[r.PostForm.Get("code")]
		switch {
		case !ok || ac.used:
			idp.oauthError(w, r, http.StatusBadRequest, "invalid_grant", "unknown or used code")
			return
		case ac.redirectURI != r.PostForm.Get("redirect_uri"):
			idp.oauthError(w, r, http.StatusBadRequest, "invalid_grant", "redirect_uri differs")
			return
		case s256(r.PostForm.Get("code_verifier")) != ac.challenge:
			idp.oauthError(w, r, http.StatusBadRequest, "invalid_grant", "PKCE verification failed")
			return
		}
		ac.used = true
		idp.issue(w, r, ac.scopes, ac.nonce, 0, "")
	case "refresh_token":
		idp.refreshGrant(w, r, r.PostForm.Get("refresh_token"))
	case "urn:ietf:params:oauth:grant-type:device_code":
		idp.deviceGrant(w, r, r.PostForm.Get("device_code"))
	default:
		idp.oauthError(w, r, http.StatusBadRequest, "unsupported_grant_type", "")
	}
}

func (idp *IdP) refreshGrant(w http.ResponseWriter, r *http.Request, rt string) {
	c := idp.cfg
	idp.stats.Refreshes++
	t, ok := idp.refresh[rt]
	switch {
	case !ok || t.revoked:
		idp.oauthError(w, r, http.StatusBadRequest, "invalid_grant", "unknown or revoked refresh token")
		return
	case t.spent && c.ReuseWindow > 0 && time.Since(t.spentAt) <= c.ReuseWindow:
		idp.issue(w, r, t.scopes, "", t.family, t.successor)
		return
	case t.spent:
		idp.stats.Replays++
		if c.RevokeFamilyOnReplay {
			for _, o := range idp.refresh {
				if o.family == t.family {
					o.revoked = true
				}
			}
		}
		idp.oauthError(w, r, http.StatusBadRequest, c.ReplayError, "refresh token already used")
		return
	case c.NeverRotate:
		idp.issue(w, r, t.scopes, "", t.family, "-")
		return
	case c.SameRefreshToken:
		idp.issue(w, r, t.scopes, "", t.family, rt)
		return
	}
	t.spent, t.spentAt = true, time.Now()
	t.successor = idp.issue(w, r, t.scopes, "", t.family, "")
}

func (idp *IdP) deviceGrant(w http.ResponseWriter, r *http.Request, code string) {
	c := idp.cfg
	idp.stats.DevicePolls++
	d, ok := idp.devices[code]
	if !ok || d.done {
		idp.oauthError(w, r, http.StatusBadRequest, "invalid_grant", "unknown device code")
		return
	}
	d.polls++
	pending := c.DevicePending
	if c.GitHub && c.DeviceSlowDown && d.polls == pending+1 {
		// GitHub says slow_down with the new interval in the answer.
		idp.reply(w, r, http.StatusOK, map[string]any{"error": "slow_down", "error_description": "Too many requests",
			"interval": int(c.DeviceInterval/time.Second) + 5})
		return
	}
	if c.GitHub && c.DeviceSlowDown {
		pending++
	} else if c.DeviceSlowDown {
		if d.polls == 1 {
			idp.oauthError(w, r, http.StatusBadRequest, "slow_down", "")
			return
		}
		pending++
	}
	switch {
	case d.polls <= pending:
		idp.oauthError(w, r, http.StatusBadRequest, "authorization_pending", "")
	case c.DeviceResult != DeviceApprove:
		d.done = true
		idp.oauthError(w, r, http.StatusBadRequest, c.DeviceResult, "the user said no, or waited too long")
	default:
		d.done = true
		idp.issue(w, r, d.scopes, "", 0, "")
	}
}

// issue answers with a new token set and returns its refresh token.
// family 0 starts a new one; rt "" mints a refresh token, "-" sends none,
// anything else is sent as is.
func (idp *IdP) issue(w http.ResponseWriter, r *http.Request, scopes []string, nonce string, family int, rt string) string {
	c := idp.cfg
	refreshing := family != 0
	now := time.Now()
	if family == 0 {
		idp.families++
		family = idp.families
	}
	var access string
	if c.OpaqueAccessTokens {
		access = "opaque-" + random()
	} else {
		access = idp.sign(map[string]any{"iss": idp.URL, "sub": c.Subject, "aud": c.ClientID, "client_id": c.ClientID,
			"iat": now.Unix(), "exp": now.Add(c.AccessTTL).Unix(), "scope": strings.Join(scopes, " "), "jti": random()})
	}
	idp.access[access] = c.Subject
	resp := map[string]any{"access_token": access, "token_type": "Bearer", "scope": strings.Join(scopes, " ")}
	if !c.OmitExpiresIn {
		resp["expires_in"] = int(c.AccessTTL / time.Second)
	}
	switch {
	case c.NoRefreshToken || rt == "-":
		rt = ""
	case rt == "":
		rt = "rt-" + random()
		idp.refresh[rt] = &refreshToken{family: family, scopes: scopes}
	}
	if rt != "" {
		resp["refresh_token"] = rt
	}
	if hasScope(scopes, "openid") && !c.OmitIDToken && !(c.NoIDTokenOnRefresh && refreshing) {
		claims := map[string]any{"iss": idp.URL, "sub": c.Subject, "aud": c.ClientID, "iat": now.Unix(),
			"exp": now.Add(time.Hour).Unix(), "auth_time": now.Unix()}
		if nonce != "" {
			claims["nonce"] = nonce
		}
		if c.WrongNonce {
			claims["nonce"] = "not-the-nonce"
		}
		for k, v := range map[string]string{"preferred_username": c.PreferredUsername, "email": c.Email, "name": c.Name} {
			if v != "" {
				claims[k] = v
			}
		}
		resp["id_token"] = idp.sign(claims)
	}
	idp.reply(w, r, http.StatusOK, resp)
	return rt
}

func (idp *IdP) sign(claims map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: idp.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", idp.kid))
	if err != nil {
		panic(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		panic(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		panic(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		panic(err)
	}
	return s
}

func (idp *IdP) device(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		idp.oauthError(w, r, http.StatusBadRequest, "invalid_request", "bad form")
		return
	}
	idp.mu.Lock()
	defer idp.mu.Unlock()
	c := idp.cfg
	idp.stats.LastDeviceForm = r.PostForm
	if !idp.clientAuthenticated(w, r) {
		return
	}
	code := "dc-" + random()
	user := fmt.Sprintf("WDJB-%04d", len(idp.devices)+1)
	idp.devices[code] = &deviceCode{scopes: split(r.PostForm.Get("scope"))}
	resp := map[string]any{
		"device_code":               code,
		"user_code":                 user,
		"verification_uri":          idp.URL + "/activate",
		"verification_uri_complete": idp.URL + "/activate?user_code=" + user,
		"expires_in":                int(c.DeviceExpiresIn / time.Second),
		"interval":                  int(c.DeviceInterval / time.Second),
	}
	if c.DeviceExtraFields {
		resp["message"] = "Enter the code at the address"
		resp["qr_code"] = map[string]any{"format": "png", "nested": []int{1, 2}}
		resp["verification_url"] = idp.URL + "/activate"
	}
	if c.GitHub {
		delete(resp, "verification_uri_complete")
		resp["verification_uri"] = idp.URL + "/login/device"
	}
	idp.reply(w, r, http.StatusOK, resp)
}

func (idp *IdP) revoke(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		idp.oauthError(w, r, http.StatusBadRequest, "invalid_request", "bad form")
		return
	}
	idp.mu.Lock()
	defer idp.mu.Unlock()
	if !idp.clientAuthenticated(w, r) {
		return
	}
	tok := r.PostForm.Get("token")
	if t, ok := idp.refresh[tok]; ok {
		t.revoked = true
	}
	delete(idp.access, tok)
	idp.stats.Revocations = append(idp.stats.Revocations, tok)
	w.WriteHeader(http.StatusOK)
}

func (idp *IdP) userinfo(w http.ResponseWriter, r *http.Request) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	c := idp.cfg
	idp.stats.UserinfoCalls++
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if _, known := idp.access[tok]; !ok || !known {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if c.GitHub {
		writeJSON(w, http.StatusOK, map[string]any{"login": c.PreferredUsername, "id": 583231, "email": c.Email, "name": c.Name})
		return
	}
	resp := map[string]any{"sub": c.Subject}
	for k, v := range map[string]string{"preferred_username": c.PreferredUsername, "email": c.Email, "name": c.Name} {
		if v != "" {
			resp[k] = v
		}
	}
	writeJSON(w, http.StatusOK, resp)
}
