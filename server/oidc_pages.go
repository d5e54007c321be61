package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// The provider's pages: login, the second factor, consent, the device
// verification form, and results. They are rendered on the server with no
// script and no external resource, under a strict Content-Security-Policy.
//
// A browser is known by a random cookie. Every form carries a token derived
// from it (a keyed double-submit: a POST without both is refused with 403
// before anything else happens), and the password step binds the request
// to it, so that the later steps and the final answer go only to the
// browser that logged in.

//go:embed pages/*.html pages/style.css
var pagesFS embed.FS

var (
	pageCSS = mustRead("pages/style.css")
	// pageCSP allows the one inline style sheet by its hash, forms posting
	// to this server only, and nothing else.
	pageCSP = func() string {
		h := sha256.Sum256([]byte(pageCSS))
		return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(h[:]) +
			"'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	}()
)

// pages are parsed on first use, not in init: every latch process links
// this package, and `latch token` has no pages to show.
var pages = sync.OnceValue(func() map[string]*template.Template {
	m := map[string]*template.Template{}
	for _, name := range []string{"login", "code", "consent", "device", "result", "verify", "reset"} {
		m[name] = template.Must(template.ParseFS(pagesFS, "pages/layout.html", "pages/"+name+".html"))
	}
	return m
})

func mustRead(name string) string {
	b, err := pagesFS.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// pageData is what the templates show.
type pageData struct {
	Title, Error, Message string
	CSS                   template.CSS
	Base                  string // the issuer's path, before every form action
	CSRF                  string
	Request, UserCode     string // the authorization or device request the form is about
	Client, Username      string
	MFAToken              string
	Scopes                []string
	Continue              string // where a result page goes on by itself
	Token                 string // the verification or reset token a form spends
	NeedCode              bool   // the reset form asks for a second-factor code
}

// pageHeaders are the security headers of every page, and of every answer
// of the provider.
func pageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, d pageData) {
	d.CSS = template.CSS(pageCSS)
	if u, err := url.Parse(s.cfg.Issuer); err == nil {
		d.Base = strings.TrimRight(u.Path, "/")
	}
	d.CSRF = s.csrfToken(s.browser(w, r))
	pageHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages()[name].ExecuteTemplate(w, "layout", d); err != nil {
		s.log.Error("render page", "page", name, "err", err)
	}
}

// pageError shows a result page with an error.
func (s *Server) pageError(w http.ResponseWriter, status int, msg string) {
	d := pageData{Title: "Something went wrong", Error: msg, CSS: template.CSS(pageCSS)}
	pageHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	pages()["result"].ExecuteTemplate(w, "layout", d)
}

const browserCookie = "latch_browser"

// browser is the browser's id, from its cookie, set here when missing.
func (s *Server) browser(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(browserCookie); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	b := make([]byte, 32)
	rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{
		Name: browserCookie, Value: v, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: strings.HasPrefix(s.cfg.Issuer, "https://"),
	})
	// Later reads in this request see it too.
	r.AddCookie(&http.Cookie{Name: browserCookie, Value: v})
	return v
}

func (s *Server) csrfToken(browser string) string {
	m := hmac.New(sha256.New, s.pageKey)
	m.Write([]byte("csrf\x00" + browser))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkForm parses a POSTed form and checks its CSRF token against the
// browser cookie. It answers the browser's hash, or writes 403.
func (s *Server) checkForm(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	c, err := r.Cookie(browserCookie)
	if err == nil {
		err = r.ParseForm()
	}
	if err != nil || subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(s.csrfToken(c.Value))) != 1 {
		s.pageError(w, http.StatusForbidden, "This form has expired or did not come from this site. Go back, reload the page and try again.")
		return nil, false
	}
	if !valuesTextOK(r.PostForm) {
		s.pageError(w, http.StatusBadRequest, "The form holds text that is not UTF-8 or has NUL characters. Go back and type it again.")
		return nil, false
	}
	h := sha256.Sum256([]byte(c.Value))
	return h[:], true
}

// sameBrowser reports whether r comes from the browser whose hash is bound.
func (s *Server) sameBrowser(r *http.Request, bound []byte) bool {
	c, err := r.Cookie(browserCookie)
	if err != nil || bound == nil {
		return false
	}
	h := sha256.Sum256([]byte(c.Value))
	return subtle.ConstantTimeCompare(h[:], bound) == 1
}

// formRequest loads the request a posted form is about: an authorization
// request by id or a device request by user code, still open.
func (s *Server) formRequest(ctx context.Context, r *http.Request) (*authRequest, error) {
	var a *authRequest
	var err error
	if id := r.PostForm.Get("request"); id != "" {
		a, err = s.op.request(ctx, id)
		if err == nil && a.kind != "code" {
			err = errNotFound
		}
	} else {
		a, err = s.op.requestByUserCode(ctx, r.PostForm.Get("user_code"))
	}
	if err == nil && (a.stage == stageApproved || a.stage == stageDenied) {
		err = errNotFound
	}
	return a, err
}

const expiredMsg = "This sign-in has expired or was already answered. Go back to the application (or your device) and start again."

func (s *Server) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	a, err := s.op.request(r.Context(), r.URL.Query().Get("authRequestID"))
	if err != nil || a.kind != "code" || a.stage == stageApproved || a.stage == stageDenied {
		s.pageError(w, http.StatusBadRequest, expiredMsg)
		return
	}
	s.render(w, r, http.StatusOK, "login", s.requestPage(a, "Sign in"))
}

// requestPage is the page data of a request's form.
func (s *Server) requestPage(a *authRequest, title string) pageData {
	d := pageData{Title: title, Client: s.op.clients[a.clientID].name}
	if a.kind == "code" {
		d.Request = a.id
	} else {
		d.UserCode = a.userCode
	}
	return d
}

func (s *Server) handleLoginPost(w http.ResponseWriter, r *http.Request) {
	browser, ok := s.checkForm(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	a, err := s.formRequest(ctx, r)
	// Once a browser has passed the password step, the request is its own.
	if err != nil || (a.browser != nil && !hmac.Equal(a.browser, browser)) {
		s.pageError(w, http.StatusBadRequest, expiredMsg)
		return
	}
	d := s.requestPage(a, "Sign in")
	d.Username = r.PostForm.Get("username")
	uid, mfa, err := s.checkPassword(r, d.Username, r.PostForm.Get("password"))
	if err != nil {
		s.pageProblem(w, r, "login", d, err)
		return
	}
	if mfa {
		tok, err := s.newMFAChallenge(ctx, uid, r.UserAgent())
		if err == nil {
			err = s.st.tx(ctx, func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, "UPDATE oauth_requests SET stage = ?, user_id = ?, browser = ? WHERE id = ?",
					stageMFA, uid, browser, a.id)
				return err
			})
		}
		if err != nil {
			s.pageProblem(w, r, "login", d, err)
			return
		}
		s.metrics.logins.inc("mfa_required")
		d.Title, d.MFAToken = "Two-factor authentication", tok
		s.render(w, r, http.StatusOK, "code", d)
		return
	}
	s.metrics.logins.inc("ok")
	err = s.st.tx(ctx, func(tx *sql.Tx) error { return s.authenticated(ctx, tx, a, uid, browser, []string{"pwd"}) })
	if err != nil {
		s.pageProblem(w, r, "login", d, err)
		return
	}
	s.log.Info("login", "user_id", uid, "client_id", a.clientID, "factor", "password", "flow", a.kind)
	s.nextStep(w, r, a)
}

func (s *Server) handleCodePost(w http.ResponseWriter, r *http.Request) {
	browser, ok := s.checkForm(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	a, err := s.formRequest(ctx, r)
	if err != nil || a.stage != stageMFA || !hmac.Equal(a.browser, browser) {
		s.pageError(w, http.StatusBadRequest, expiredMsg)
		return
	}
	d := s.requestPage(a, "Two-factor authentication")
	d.MFAToken = r.PostForm.Get("mfa_token")
	code := r.PostForm.Get("code")
	if strings.TrimSpace(code) == "" {
		d.Error = "Enter a code."
		s.render(w, r, http.StatusBadRequest, "code", d)
		return
	}
	uid, result, err := s.verifyChallenge(r, d.MFAToken, code, func(ctx context.Context, tx *sql.Tx, uid int64, _ string) error {
		if uid != a.userID {
			return errChallengeExpired
		}
		return s.authenticated(ctx, tx, a, uid, browser, []string{"pwd", "otp"})
	})
	if errors.Is(err, errChallengeExpired) || errors.Is(err, errTooManyCodes) {
		d.Title, d.MFAToken = "Sign in", ""
		s.pageProblem(w, r, "login", d, err)
		return
	}
	if err != nil {
		s.pageProblem(w, r, "code", d, err)
		return
	}
	s.log.Info("login", "user_id", uid, "client_id", a.clientID, "factor", result, "flow", a.kind)
	s.nextStep(w, r, a)
}

// authenticated records that the user passed the login of request a, in
// the browser with hash browser, and moves it on: to consent, or straight
// to approved for a first-party client in the browser flow. a is updated.
func (s *Server) authenticated(ctx context.Context, tx *sql.Tx, a *authRequest, uid int64, browser []byte, amr []string) error {
	next := stageApproved
	if a.kind == "device" || s.op.clients[a.clientID].consent {
		next = stageConsent
	}
	now := s.now()
	_, err := tx.ExecContext(ctx, "UPDATE oauth_requests SET stage = ?, user_id = ?, browser = ?, auth_time = ?, amr = ? WHERE id = ?",
		next, uid, browser, now.Unix(), strings.Join(amr, " "), a.id)
	if err != nil {
		return err
	}
	a.stage, a.userID, a.browser, a.authTime, a.amr = next, uid, browser, now, amr
	if err := s.audit(ctx, tx, nil, auditEvent{Type: evLoginOK, UserID: uid, Detail: map[string]string{
		"factor": strings.Join(amr, "+"), "client_id": a.clientID, "flow": a.kind}}); err != nil {
		return err
	}
	return s.noteSignIn(ctx, tx, uid, clientInfoFrom(ctx))
}

// nextStep shows what follows a successful login or consent.
func (s *Server) nextStep(w http.ResponseWriter, r *http.Request, a *authRequest) {
	switch {
	case a.stage == stageConsent:
		d := s.requestPage(a, "Authorize "+s.op.clients[a.clientID].name)
		if u, err := s.loadUser(r.Context(), a.userID); err == nil {
			d.Username = u.Username
		}
		d.Scopes = scopeDescriptions(a.scopes)
		s.render(w, r, http.StatusOK, "consent", d)
	case a.kind == "code":
		// A page that moves on by itself rather than a redirect: the
		// redirect chain would end at the client, which form-action 'self'
		// forbids after a form submission.
		d := pageData{Title: "Signed in", Message: "Returning you to " + s.op.clients[a.clientID].name + "…",
			Continue: s.cfg.Issuer + "/authorize/callback?id=" + url.QueryEscape(a.id)}
		if a.stage == stageDenied {
			d.Title, d.Message = "Request denied", "Returning you to "+s.op.clients[a.clientID].name+"…"
		}
		s.render(w, r, http.StatusOK, "result", d)
	case a.stage == stageApproved:
		s.render(w, r, http.StatusOK, "result", pageData{Title: "Device approved",
			Message: "You can close this page and return to your device."})
	default:
		s.render(w, r, http.StatusOK, "result", pageData{Title: "Request denied",
			Message: "The device was not given access. You can close this page."})
	}
}

func scopeDescriptions(scopes []string) []string {
	var out []string
	for _, sc := range scopes {
		switch sc {
		case "openid":
			out = append(out, "Know who you are (your user id)")
		case "profile":
			out = append(out, "See your username")
		case "email":
			out = append(out, "See your email address")
		case scopeRoles:
			out = append(out, "See your roles on this server")
		case "offline_access":
			out = append(out, "Stay signed in until you sign out or revoke it")
		default:
			out = append(out, "Use the scope “"+sc+"”")
		}
	}
	return out
}

func (s *Server) handleConsentPost(w http.ResponseWriter, r *http.Request) {
	browser, ok := s.checkForm(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	a, err := s.formRequest(ctx, r)
	if err != nil || a.stage != stageConsent || !hmac.Equal(a.browser, browser) {
		s.pageError(w, http.StatusBadRequest, expiredMsg)
		return
	}
	next := stageApproved
	if r.PostForm.Get("decision") != "approve" {
		next = stageDenied
	}
	err = s.st.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE oauth_requests SET stage = ? WHERE id = ? AND stage = ?", next, a.id, stageConsent)
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	a.stage = next
	if next == stageDenied {
		flow := "browser"
		if a.kind == "device" {
			flow = "device"
		}
		s.metrics.oauthDenied.inc(flow)
	}
	s.log.Info("oauth consent", "user_id", a.userID, "client_id", a.clientID, "decision", next, "flow", a.kind)
	s.nextStep(w, r, a)
}

func (s *Server) handleDevicePage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "device", pageData{Title: "Connect a device", UserCode: r.URL.Query().Get("user_code")})
}

func (s *Server) handleDevicePost(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.checkForm(w, r); !ok {
		return
	}
	d := pageData{Title: "Connect a device", UserCode: r.PostForm.Get("user_code")}
	// User codes are short: limit guessing per IP.
	if err := s.limit(r, "device", ""); err != nil {
		s.pageProblem(w, r, "device", d, err)
		return
	}
	a, err := s.formRequest(r.Context(), r)
	if err != nil {
		d.Error = "This code is unknown, expired or already used. Check the code on your device."
		s.render(w, r, http.StatusBadRequest, "device", d)
		return
	}
	s.render(w, r, http.StatusOK, "login", s.requestPage(a, "Sign in"))
}

// pageProblem shows page again with the error's message: a problem's
// detail, or a generic message for an internal error, which is logged.
func (s *Server) pageProblem(w http.ResponseWriter, r *http.Request, page string, d pageData, err error) {
	var p *problem
	status := http.StatusInternalServerError
	switch {
	case errors.As(err, &p):
		status, d.Error = p.Status, p.Detail
		if p.RetryAfter > 0 {
			d.Error = "Too many attempts. Wait " + strconv.Itoa(p.RetryAfter) + " seconds and try again."
		}
	default:
		s.log.Error("page failed", "path", r.URL.Path, "err", err)
		d.Error = "Something went wrong on the server. Try again."
	}
	s.render(w, r, status, page, d)
}

// normalizeUserCode folds a typed user code into the stored form XXXX-XXXX.
func normalizeUserCode(code string) string {
	code = strings.ToUpper(strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return r
	}, code))
	if len(code) == 8 {
		code = code[:4] + "-" + code[4:]
	}
	return code
}

// requestByUserCode loads an open device request by its user code.
func (st *opStorage) requestByUserCode(ctx context.Context, code string) (*authRequest, error) {
	a, err := st.scanRequest(st.s.st.db.QueryRowContext(ctx,
		"SELECT "+requestColumns+" FROM oauth_requests WHERE user_code = ? AND kind = 'device'", normalizeUserCode(code)))
	if err != nil {
		return nil, err
	}
	if !st.s.now().Before(a.expires) {
		return nil, errNotFound
	}
	a.userCode = normalizeUserCode(code)
	return a, nil
}
