package tui

import (
	"context"
	"errors"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/vault"
)

// oauth chooses an OAuth / OpenID Connect login: in a browser on this
// machine or with a code entered on another device, at a latch server or at
// any OpenID provider (its issuer and latch's client id there). The login
// itself runs on the browser or the device screen.
type oauth struct {
	c             *Common
	width, height int
	note          string
	profile       string // the profile to log in again; "" lets flows name it
	serverClient  string // latch's client id at the server, when not the default

	device bool // the device flow, else the browser
	other  bool // any OpenID provider, else a latch server
	focus  int  // a row of rows()

	server, issuer, clientID textinput.Model
	adv                      oauthAdvanced
	missing                  string // what submit found missing
	cursorAt                 int    // the focused row's line in the last View
}

// Rows of the chooser, in the order tab visits them.
const (
	rowMethod = iota
	rowProvider
	rowAdvanced // shows or hides the advanced rows (oauthAdvanced)
	rowServer
	rowIssuer
	rowClientID
)

func newOAuth(c *Common, p vault.Profile, note string) *oauth {
	in := func(placeholder string) textinput.Model {
		t := textinput.New()
		t.Prompt = ""
		t.Placeholder = placeholder
		t.CharLimit = 512
		t.SetStyles(c.Styles.Input)
		return t
	}
	o := &oauth{c: c, note: note, device: c.oauthMethod == "device",
		server: in("https://auth.example.com"), issuer: in("https://accounts.example.com"), clientID: in("latch")}
	o.server.SetValue(p.Server)
	var again flows.OAuthRequest
	if p.Kind == vault.KindOIDC {
		// Logging in again: the same provider, into the same profile. An
		// account profile is left alone; flows names the new one.
		again = flows.OAuthRequestFor(p)
		o.profile = again.Profile
		o.other = again.Server == ""
		if o.other {
			o.issuer.SetValue(again.Issuer)
			o.clientID.SetValue(again.ClientID)
		} else {
			o.serverClient = again.ClientID
		}
	}
	o.adv = newOAuthAdvanced(in, again)
	return o
}

func (o *oauth) Init() tea.Cmd { return o.focusOn(o.focus) }

func (o *oauth) SetSize(w, h int) {
	o.width, o.height = w, h
	for _, in := range append([]*textinput.Model{&o.server, &o.issuer, &o.clientID}, o.adv.inputs()...) {
		in.SetWidth(max(min(56, w-14), 8))
	}
}

func (o *oauth) Title() string { return "OAuth login" }

// Typing is true on a text field; on the two choices q and ? keep their
// usual meaning.
func (o *oauth) Typing() bool { return o.focus >= rowServer }

// rows lists the rows shown: the server, or the issuer and client id;
// then the advanced choice and, when open, its fields.
func (o *oauth) rows() []int {
	rows := []int{rowMethod, rowProvider, rowServer}
	if o.other {
		rows = []int{rowMethod, rowProvider, rowIssuer, rowClientID}
	}
	return append(append(rows, rowAdvanced), o.adv.rows(o.other)...)
}

func (o *oauth) input(row int) *textinput.Model {
	switch row {
	case rowServer:
		return &o.server
	case rowIssuer:
		return &o.issuer
	case rowClientID:
		return &o.clientID
	}
	return o.adv.input(row)
}

// focusOn moves the keyboard to the i-th shown row.
func (o *oauth) focusOn(i int) tea.Cmd {
	rows := o.rows()
	o.focus = rows[(i%len(rows)+len(rows))%len(rows)]
	var cmd tea.Cmd
	for _, r := range []int{rowServer, rowIssuer, rowClientID, rowSecret, rowAudience, rowParams, rowRedirect, rowCAFile} {
		if r == o.focus {
			cmd = o.input(r).Focus()
		} else {
			o.input(r).Blur()
		}
	}
	return cmd
}

func (o *oauth) index() int {
	for i, r := range o.rows() {
		if r == o.focus {
			return i
		}
	}
	return 0
}

func (o *oauth) Update(msg tea.Msg) (Component, tea.Cmd) {
	km := o.c.KeyMap
	k, ok := msg.(tea.KeyPressMsg)
	if !ok {
		if in := o.input(o.focus); in != nil {
			var cmd tea.Cmd
			*in, cmd = in.Update(msg)
			return o, cmd
		}
		return o, nil
	}
	switch {
	case key.Matches(k, km.Back):
		return o, BackCmd
	case key.Matches(k, km.Submit):
		return o, o.submit()
	case key.Matches(k, km.Next):
		return o, o.focusOn(o.index() + 1)
	case key.Matches(k, km.Prev):
		return o, o.focusOn(o.index() - 1)
	case o.focus == rowMethod && key.Matches(k, km.Switch):
		o.device = !o.device
		return o, nil
	case o.focus == rowProvider && key.Matches(k, km.Switch):
		o.other, o.missing = !o.other, ""
		return o, nil
	case o.focus == rowAdvanced && key.Matches(k, km.Switch):
		o.adv.open, o.missing = !o.adv.open, ""
		return o, nil
	}
	if in := o.input(o.focus); in != nil {
		before := in.Value()
		var cmd tea.Cmd
		*in, cmd = in.Update(k)
		if in.Value() != before {
			o.missing = ""
		}
		return o, cmd
	}
	return o, nil
}

// request is the login the fields describe, or what is missing.
func (o *oauth) request() (flows.OAuthRequest, string, int) {
	req := flows.OAuthRequest{Profile: o.profile}
	if !o.other {
		req.Server = strings.TrimRight(strings.TrimSpace(o.server.Value()), "/")
		req.ClientID = o.serverClient
		if req.Server == "" {
			return req, "Type the latch server's URL, like https://auth.example.com.", rowServer
		}
		missing, row := o.adv.apply(&req, false)
		return req, missing, row
	}
	req.Issuer = strings.TrimSpace(o.issuer.Value())
	req.ClientID = strings.TrimSpace(o.clientID.Value())
	switch {
	case req.Issuer == "":
		return req, "Type the provider's issuer URL, like https://accounts.example.com.", rowIssuer
	case req.ClientID == "":
		return req, "Type the client id latch is registered with at that provider.", rowClientID
	}
	missing, row := o.adv.apply(&req, true)
	return req, missing, row
}

func (o *oauth) submit() tea.Cmd {
	req, missing, row := o.request()
	if missing != "" {
		o.missing = missing
		for i, r := range o.rows() {
			if r == row {
				return o.focusOn(i)
			}
		}
		return nil
	}
	o.missing = ""
	to := pageOAuthBrowser
	if o.device {
		to = pageOAuthDevice
	}
	return NavigateCmd(NavigateMsg{To: to, OAuth: &req})
}

func (o *oauth) View() string {
	st := o.c.Styles
	var b strings.Builder
	b.WriteString(st.Heading.Render("Log in with OAuth") + st.Subtle.Render(" (OpenID Connect)") + "\n")
	if o.profile != "" {
		b.WriteString(st.Subtle.Render("profile "+o.profile) + "\n")
	} else {
		b.WriteString(st.Subtle.Render("a new profile") + "\n")
	}
	b.WriteString("\n")
	label := func(row int, text string) string {
		if row == o.focus {
			o.cursorAt = strings.Count(b.String(), "\n")
			return st.FieldLabelFocus.Render(pad(text, 11)) + " "
		}
		return st.FieldLabel.Render(pad(text, 11)) + " "
	}
	indent := strings.Repeat(" ", 12)
	hintW := max(o.width-12, 10)

	b.WriteString(label(rowMethod, "Method") + o.choice(!o.device, "browser") + "  " + o.choice(o.device, "device") + "\n")
	hint := "A browser on this machine opens the provider's login page."
	if o.device {
		hint = "Shows a code to enter on any device (a phone, another computer); works over SSH."
	}
	b.WriteString(indent + indentAfterFirst(st.Subtle.Width(hintW).Render(hint), 12) + "\n\n")

	b.WriteString(label(rowProvider, "Provider") + o.choice(!o.other, "latch server") + "  " + o.choice(o.other, "other OpenID provider") + "\n\n")
	if o.other {
		b.WriteString(label(rowIssuer, "Issuer") + o.issuer.View() + "\n")
		b.WriteString(label(rowClientID, "Client ID") + o.clientID.View() + "\n")
	} else {
		b.WriteString(label(rowServer, "Server") + o.server.View() + "\n")
		b.WriteString(indent + st.Subtle.Render("client id "+firstOf(o.serverClient, flows.DefaultClientID)) + "\n")
	}
	b.WriteString(label(rowAdvanced, "Advanced") + o.choice(!o.adv.open, "hidden") + "  " + o.choice(o.adv.open, "shown") + "\n")
	for _, r := range o.adv.rows(o.other) {
		b.WriteString(label(r, advancedLabels[r]) + o.adv.input(r).View() + "\n")
		switch {
		case r == o.focus && o.missing != "":
			// Under its field: the end of the form may be out of view.
			b.WriteString(indent + indentAfterFirst(st.Error.Width(hintW).Render(o.missing), 12) + "\n")
		case r == o.focus && advancedHints[r] != "":
			b.WriteString(indent + indentAfterFirst(st.Subtle.Width(hintW).Render(advancedHints[r]), 12) + "\n")
		}
	}
	b.WriteString("\n")
	switch {
	case o.missing != "" && o.focus < rowSecret:
		b.WriteString(st.Error.Width(o.width).Render(o.missing) + "\n")
	case o.note != "":
		b.WriteString(st.Note.Width(o.width).Render(o.note) + "\n")
	default:
		b.WriteString(st.Subtle.Width(o.width).Render("enter starts the login · ←/→ changes a choice · tab moves") + "\n")
	}
	return b.String()
}

func (o *oauth) cursorLine() int { return o.cursorAt }

// firstOf is the first of s that is not empty.
func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// choice renders one option of a choice, marked so that it reads without
// colour too.
func (o *oauth) choice(on bool, text string) string {
	if on {
		return o.c.Styles.Selected.Render("● " + text)
	}
	return o.c.Styles.Subtle.Render("○ " + text)
}

func (o *oauth) ShortHelp() []key.Binding {
	km := o.c.KeyMap
	keys := []key.Binding{withHelp(km.Submit, "start")}
	if o.focus < rowServer {
		keys = append(keys, withHelp(km.Switch, "change"))
	}
	return append(keys, withHelp(km.Next, "next"), km.Back)
}

func (o *oauth) FullHelp() [][]key.Binding {
	km := o.c.KeyMap
	return [][]key.Binding{{withHelp(km.Submit, "start the login"), withHelp(km.Switch, "change a choice")}, {km.Next, km.Prev}}
}

// oauthAttempt is one run of a browser or device login: the context that
// esc cancels, and the identity its messages carry, so that a screen
// ignores the late answers of an attempt it abandoned.
type oauthAttempt struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func newAttempt(c *Common) *oauthAttempt {
	ctx, cancel := context.WithCancel(c.Context())
	return &oauthAttempt{ctx: ctx, cancel: cancel}
}

// run calls a flow under the attempt's context, off the update loop.
func (a *oauthAttempt) run(call func(ctx context.Context) tea.Msg) tea.Cmd {
	return func() tea.Msg { return call(a.ctx) }
}

// oauthRun is what the browser and device screens share: the request, the
// attempt in flight, how the last one failed, and the spinner.
type oauthRun struct {
	c             *Common
	width, height int
	req           flows.OAuthRequest

	at   *oauthAttempt
	err  error // the login failed
	work work
}

func newOAuthRun(c *Common, req flows.OAuthRequest) oauthRun {
	return oauthRun{c: c, req: req, work: newWork(c)}
}

func (r *oauthRun) SetSize(w, h int) { r.width, r.height = w, h }

func (r *oauthRun) Typing() bool { return false }

// cancel abandons the attempt in flight, if any.
func (r *oauthRun) cancel() {
	if r.at != nil {
		r.at.cancel()
	}
}

// end stops the attempt and the spinner; err is why it failed, nil when
// it succeeded.
func (r *oauthRun) end(err error) {
	r.work.done()
	r.at.cancel()
	r.err = err
}

// heading is the screen's title and the server or provider it logs in to.
func (r *oauthRun) heading(title string) string {
	st := r.c.Styles
	return st.Heading.Render(title) + st.Subtle.Render(" at "+firstOf(r.req.Server, r.req.Issuer)) + "\n\n"
}

func (r *oauthRun) ShortHelp() []key.Binding {
	km := r.c.KeyMap
	if r.err != nil {
		return []key.Binding{km.Retry, km.Back}
	}
	return []key.Binding{withHelp(km.Back, "cancel")}
}

func (r *oauthRun) FullHelp() [][]key.Binding { return [][]key.Binding{r.ShortHelp()} }

// update answers what both screens answer alike: the login's end, esc
// (cancel, back) and retry after a failure. handled is false for any other
// message.
func (r *oauthRun) update(msg tea.Msg, start func() tea.Cmd, fail func(error)) (cmd tea.Cmd, handled bool) {
	switch msg := msg.(type) {
	case OAuthDoneMsg:
		switch {
		case msg.attempt != r.at:
		case msg.Err != nil:
			fail(msg.Err)
		default:
			r.end(nil)
			cmd = oauthDone(msg.Result)
		}
		return cmd, true
	case tea.KeyPressMsg:
		km := r.c.KeyMap
		switch {
		case key.Matches(msg, km.Back):
			r.cancel()
			return BackCmd, true
		case r.err != nil && key.Matches(msg, km.Retry):
			return start(), true
		}
	}
	return nil, false
}

// OAuthDoneMsg is the end of a browser or device login.
type OAuthDoneMsg struct {
	attempt *oauthAttempt
	Result  *flows.LoginResult
	Err     error
}

// oauthDone opens the new profile's dashboard, as a password login does.
func oauthDone(res *flows.LoginResult) tea.Cmd {
	p := res.Profile
	who := p.Username
	if who == "" {
		who = "the provider's user"
	}
	return NavigateCmd(NavigateMsg{To: pageDashboard, Profile: p,
		Note: "Logged in as " + who + " through " + firstOf(p.Server, p.Issuer) + " (profile " + p.Name + ")."})
}

// oauthTrouble names what ended a login, and says what happened.
func oauthTrouble(err error) (headline, detail string) {
	switch {
	case errors.Is(err, flows.ErrAccessDenied):
		headline = "Access denied"
	case errors.Is(err, flows.ErrDeviceCodeExpired):
		headline = "The code expired"
	case errors.Is(err, flows.ErrBrowserTimeout):
		headline = "No answer from the browser"
	case strings.Contains(err.Error(), "state mismatch"):
		headline = "The answer does not belong to this login"
	default:
		headline = "The login failed"
	}
	return headline, upperFirst(explain(err))
}

// troubleView shows a failed login and the ways on.
func troubleView(st *Styles, width int, err error) string {
	headline, detail := oauthTrouble(err)
	return st.Error.Render("✗ "+headline) + "\n" + st.Error.Width(width).Render(detail) + "\n\n" +
		st.Subtle.Width(width).Render("enter starts again · esc goes back") + "\n"
}
