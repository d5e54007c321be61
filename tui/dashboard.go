package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/vault"
)

// rotationBackoff is how long the background rotation waits after a
// failure before it tries again.
const rotationBackoff = 10 * time.Second

// dashboard shows one logged-in profile: who, where, which vault and why,
// and the life of its tokens, which it keeps fresh in the background through
// the token manager so the user watches rotation happen.
type dashboard struct {
	c             *Common
	width, height int
	profile       vault.Profile
	note          string

	warn string // an action this profile does not offer

	me    *client.User
	meErr error
	ts    *flows.TokenState

	rotating  bool      // a background rotation is in flight
	retryAt   time.Time // after a failed rotation, wait until then
	ended     bool      // the session can no longer be refreshed
	lastErr   error
	lastErrAt time.Time

	work work // what the user asked for and is waiting on
}

// AccountMsg carries the account behind the profile (/auth/me).
type AccountMsg struct {
	User *client.User
	Err  error
}

// TokenStateMsg carries the profile's token state after it was read, or
// after a background or requested rotation (Manual).
type TokenStateMsg struct {
	State  *flows.TokenState
	Err    error
	Manual bool
}

// ProtectedMsg is the protected route's answer.
type ProtectedMsg struct {
	LoggedInAs string
	Err        error
}

// ResentMsg follows a request for a new verification mail.
type ResentMsg struct{ Err error }

// LoggedOutMsg follows a logout.
type LoggedOutMsg struct {
	Result *flows.LogoutResult
	Err    error
}

func newDashboard(c *Common, p vault.Profile, note string) *dashboard {
	return &dashboard{c: c, profile: p, note: note, work: newWork(c)}
}

func (d *dashboard) Init() tea.Cmd {
	name := d.profile.Name
	me := d.c.flowCmd(func(ctx context.Context) tea.Msg {
		u, err := d.c.Env.Me(ctx, name)
		return AccountMsg{User: u, Err: err}
	})
	return tea.Batch(me, d.stateCmd(nil, false))
}

// stateCmd runs step (if any), then reads the token state.
func (d *dashboard) stateCmd(step func(ctx context.Context) error, manual bool) tea.Cmd {
	name := d.profile.Name
	return d.c.flowCmd(func(ctx context.Context) tea.Msg {
		var err error
		if step != nil {
			err = step(ctx)
		}
		ts, serr := d.c.Env.Tokens().Status(ctx, name)
		if err == nil {
			err = serr
		}
		if serr != nil {
			return TokenStateMsg{Err: err, Manual: manual}
		}
		return TokenStateMsg{State: &ts, Err: err, Manual: manual}
	})
}

// rotateCmd asks the token manager for a valid access token, which
// refreshes the pair when it is due: the same call every latch command makes.
func (d *dashboard) rotateCmd() tea.Cmd {
	name := d.profile.Name
	return d.stateCmd(func(ctx context.Context) error {
		_, err := d.c.Env.Token(ctx, name)
		return err
	}, false)
}

func (d *dashboard) SetSize(w, h int) { d.width, d.height = w, h }

func (d *dashboard) Title() string { return "Account · " + d.profile.Name }

func (d *dashboard) Typing() bool { return false }

func (d *dashboard) Update(msg tea.Msg) (Component, tea.Cmd) {
	if cmd, ok := d.work.tick(msg); ok {
		return d, cmd
	}
	switch msg := msg.(type) {
	case AccountMsg:
		d.me, d.meErr = msg.User, msg.Err
		// A provider without userinfo is no failure: the ID token named the user.
		if msg.Err != nil && (d.accountAPI() || !errors.Is(msg.Err, client.ErrNotSupported)) {
			d.fail(msg.Err)
		}
	case TokenStateMsg:
		d.tokenState(msg)
	case ProtectedMsg:
		d.work.done()
		if msg.Err != nil {
			d.fail(msg.Err)
			return d, nil
		}
		d.note = "GET /auth/protected answered: logged in as " + msg.LoggedInAs + "."
	case ResentMsg:
		d.work.done()
		if msg.Err != nil {
			d.fail(msg.Err)
			return d, nil
		}
		d.note = "A new verification mail is on its way; then press v and paste its token."
	case LoggedOutMsg:
		d.work.done()
		if msg.Err != nil {
			d.fail(msg.Err)
			return d, nil
		}
		note := "Logged out of " + d.profile.Name + ": the session was ended on the server."
		switch {
		case msg.Result.ProviderNotTold != "":
			note = "Logged out of " + d.profile.Name + " on this machine: " + msg.Result.ProviderNotTold + "."
		case d.profile.Kind == vault.KindOIDC && msg.Result.Revoked > 0:
			note = "Logged out of " + d.profile.Name + ": the provider revoked the session."
		case msg.Result.Revoked == 0:
			note = "Logged out of " + d.profile.Name + ": the session had already ended on the server."
		}
		return d, NavigateCmd(NavigateMsg{To: pageHome, Profile: d.profile, Note: note})
	case TickMsg:
		return d, d.tick()
	case tea.KeyPressMsg:
		return d, d.key(msg)
	}
	return d, nil
}

// tick starts a background rotation when the token manager would refresh.
func (d *dashboard) tick() tea.Cmd {
	now := d.c.Now()
	if d.ts == nil || d.rotating || d.ended || d.work.active() || now.Before(d.ts.RotateAt) || now.Before(d.retryAt) {
		return nil
	}
	d.rotating = true
	return d.rotateCmd()
}

func (d *dashboard) tokenState(msg TokenStateMsg) {
	background := d.rotating && !msg.Manual
	if msg.Manual {
		d.work.done()
	} else {
		d.rotating = false
	}
	if msg.State != nil {
		before := -1
		if d.ts != nil {
			before = d.ts.Rotations
		}
		d.ts = msg.State
		switch {
		case msg.Err != nil:
		case msg.Manual:
			d.note = fmt.Sprintf("Refreshed now: rotation %d of this session.", d.ts.Rotations)
		case background && before >= 0 && d.ts.Rotations > before:
			d.note = fmt.Sprintf("Rotated in the background at %s: rotation %d of this session.",
				clock(d.c.Now(), d.ts.IssuedAt), d.ts.Rotations)
		}
	}
	if msg.Err != nil {
		d.fail(msg.Err)
		if background {
			d.retryAt = d.c.Now().Add(rotationBackoff)
		}
	}
}

// fail records an error; one that means the session is over stops the
// background rotation.
func (d *dashboard) fail(err error) {
	d.lastErr, d.lastErrAt = err, d.c.Now()
	if errors.Is(err, flows.ErrLoginRequired) || errors.Is(err, vault.ErrNotFound) {
		d.ended = true
	}
}

func (d *dashboard) key(msg tea.KeyPressMsg) tea.Cmd {
	km := d.c.KeyMap
	d.warn = ""
	name := d.profile.Name
	if key.Matches(msg, km.Back) {
		return BackCmd
	}
	if d.work.active() {
		return nil
	}
	if d.ended && key.Matches(msg, km.Login) {
		return loginCmd(d.profile, "")
	}
	if !d.accountAPI() && key.Matches(msg, km.Protected, km.Sessions, km.MFASetup, km.Backup, km.Activity, km.Users) {
		d.note, d.warn = "", upperFirst(errNoAccount.Error())+"."
		return nil
	}
	switch {
	case key.Matches(msg, km.RefreshNow):
		return d.start("Refreshing the tokens…", d.stateCmd(func(ctx context.Context) error {
			return d.c.Env.RefreshNow(ctx, name)
		}, true))
	case key.Matches(msg, km.Protected):
		return d.start("Calling /auth/protected…", d.c.flowCmd(func(ctx context.Context) tea.Msg {
			who, err := d.c.Env.Protected(ctx, name)
			return ProtectedMsg{LoggedInAs: who, Err: err}
		}))
	case key.Matches(msg, km.Sessions):
		return NavigateCmd(NavigateMsg{To: pageSessions, Profile: d.profile})
	case key.Matches(msg, km.Activity):
		return NavigateCmd(NavigateMsg{To: pageActivity, Profile: d.profile})
	case d.admin() && key.Matches(msg, km.Users):
		return NavigateCmd(NavigateMsg{To: pageUsers, Profile: d.profile})
	case key.Matches(msg, km.Inspect):
		return NavigateCmd(NavigateMsg{To: pageInspector, Profile: d.profile})
	case !d.mfaOn() && key.Matches(msg, km.MFASetup):
		return NavigateCmd(NavigateMsg{To: pageMFASetup, Profile: d.profile})
	case d.mfaOn() && key.Matches(msg, km.Backup):
		return NavigateCmd(NavigateMsg{To: pageBackupCodes, Profile: d.profile})
	case key.Matches(msg, km.ChangePassword) && d.profile.Kind == vault.KindAccount:
		return NavigateCmd(NavigateMsg{To: pagePasswordChange, Profile: d.profile})
	case d.unverified() && key.Matches(msg, km.VerifyEmail):
		return NavigateCmd(NavigateMsg{To: pageVerifyEmail, Profile: d.profile})
	case d.unverified() && key.Matches(msg, km.Resend):
		return d.start("Asking for a new verification mail…", d.c.flowCmd(func(ctx context.Context) tea.Msg {
			return ResentMsg{Err: d.c.Env.ResendVerification(ctx, flows.RecoveryTarget{Profile: name})}
		}))
	case key.Matches(msg, km.Logout):
		return d.start("Logging out…", d.c.flowCmd(func(ctx context.Context) tea.Msg {
			res, err := d.c.Env.Logout(ctx, name, false, false)
			return LoggedOutMsg{Result: res, Err: err}
		}))
	}
	return nil
}

// errNoAccount answers the account actions of a profile signed in to an
// OpenID provider that is not a latch server.
var errNoAccount = errors.New("not available for this provider: the protected route, sessions and two-factor are a latch server's; " +
	"manage them at the provider")

// accountAPI reports whether the profile has a latch server's account API:
// an account profile, or an OAuth login to a latch server.
func (d *dashboard) accountAPI() bool {
	return d.profile.Kind != vault.KindOIDC || d.profile.Server != ""
}

// mfaOn reports whether the account has two-factor on: the server's word
// once /auth/me answered, the profile's record until then.
func (d *dashboard) mfaOn() bool {
	if d.me != nil {
		return d.me.MFAEnabled
	}
	return d.profile.MFA
}

// unverified reports whether the server said the account's email address
// is not verified yet.
func (d *dashboard) unverified() bool {
	return d.me != nil && d.me.EmailVerified != nil && !*d.me.EmailVerified
}

// mfaKey is the two-factor action the account offers: setup when it is off,
// the backup codes when it is on.
func (d *dashboard) mfaKey() key.Binding {
	if d.mfaOn() {
		return d.c.KeyMap.Backup
	}
	return d.c.KeyMap.MFASetup
}

func (d *dashboard) start(what string, cmd tea.Cmd) tea.Cmd {
	d.note = ""
	return d.work.start(what, cmd)
}

func (d *dashboard) View() string {
	st := d.c.Styles
	now := d.c.Now()
	var b strings.Builder
	lw := 13
	if d.c.Compact() {
		lw = 9
	}
	row := func(label, value string) {
		if d.c.Compact() && label == "Last error" {
			label = "Error"
		} else if d.c.Compact() {
			label = strings.Fields(label)[0]
		}
		v := st.Value.Width(max(d.width-lw-1, 10)).Render(value)
		b.WriteString(st.Label.Render(pad(label, lw)) + " " + indentAfterFirst(v, lw+1) + "\n")
	}

	who := d.profile.Username
	if d.me != nil {
		who = d.me.Username
		if !d.c.Compact() {
			who += st.Subtle.Render("  " + d.me.Email)
		}
	}
	b.WriteString(st.Heading.Render(who) + "\n\n")
	switch {
	case !d.accountAPI():
		row("Account", "signed in at an OpenID provider (no latch account: sessions and two-factor are managed there)")
	case d.me != nil:
		// The keys are said here: the help line has no room left for them.
		mfa := "MFA off (m sets it up)"
		if d.me.MFAEnabled {
			mfa = "MFA on (b: backup codes)"
		}
		row("Account", sentence(fmt.Sprintf("id %d", d.me.ID), "created "+relative(now, d.me.CreatedAt), mfa))
	case d.meErr != nil:
		row("Account", "could not read /auth/me")
	default:
		row("Account", "reading /auth/me…")
	}
	if d.unverified() {
		row("Email", "not verified: e resends the mail, v takes its token")
	}
	if d.profile.Server != "" {
		row("Server", d.profile.Server)
	}
	if d.profile.Kind == vault.KindOIDC {
		row("Provider", d.profile.Issuer+" (client "+d.profile.ClientID+")")
	}
	row("Vault", d.c.Env.Vault.Backend+": "+d.c.Env.Vault.Reason)
	b.WriteString("\n")

	if ts := d.ts; ts != nil {
		row("Access token", "expires "+relative(now, ts.AccessExpiresAt)+" ("+clock(now, ts.AccessExpiresAt)+")")
		refresh := "issued " + relative(now, ts.IssuedAt)
		if !ts.RefreshExpiresAt.IsZero() {
			refresh = sentence(refresh, "idle expiry "+relative(now, ts.RefreshExpiresAt))
		}
		row("Refresh token", refresh)
		row("Rotations", fmt.Sprintf("%d this session (logged in %s)", ts.Rotations, relative(now, ts.LoggedInAt)))
		next := "due " + relative(now, ts.RotateAt) + ", in the background"
		switch {
		case d.ended:
			next = "stopped: the session has ended"
		case d.rotating:
			next = "rotating now…"
		case now.Before(d.retryAt):
			next = "retrying " + relative(now, d.retryAt)
		case !now.Before(ts.RotateAt):
			next = "due now, in the background"
		}
		row("Next rotation", next)
	} else {
		row("Tokens", "reading the vault…")
	}
	if d.lastErr != nil {
		row("Last error", clock(now, d.lastErrAt)+" "+explain(d.lastErr))
	} else {
		row("Last error", "none")
	}
	b.WriteString("\n")
	switch {
	case d.work.active():
		b.WriteString(d.work.View() + "\n")
	case d.warn != "":
		b.WriteString(st.Warn.Width(d.width).Render(d.warn) + "\n")
	case d.note != "":
		b.WriteString(st.Note.Width(d.width).Render("✓ "+d.note) + "\n")
	}
	return b.String()
}

// indentAfterFirst indents every line of s but the first by n spaces, for a
// value that wrapped beside its label.
func indentAfterFirst(s string, n int) string {
	return strings.ReplaceAll(s, "\n", "\n"+strings.Repeat(" ", n))
}

// admin reports whether the profile's recorded roles may administer users;
// the server checks again on every call.
func (d *dashboard) admin() bool {
	return flows.IsAdmin(d.profile.Roles)
}

// auditKeys are the Activity key and, for administrators, the Users key.
func (d *dashboard) auditKeys() []key.Binding {
	km := d.c.KeyMap
	if d.admin() {
		return []key.Binding{withHelp(km.Activity, "your recent activity"), withHelp(km.Users, "administer users")}
	}
	return []key.Binding{withHelp(km.Activity, "your recent activity")}
}

func (d *dashboard) ShortHelp() []key.Binding {
	km := d.c.KeyMap
	if d.ended {
		return []key.Binding{km.Login, km.Back}
	}
	if !d.accountAPI() {
		return []key.Binding{km.RefreshNow, km.Inspect, km.Logout}
	}
	return []key.Binding{km.RefreshNow, km.Protected, km.Sessions, km.Inspect, km.Logout}
}

func (d *dashboard) FullHelp() [][]key.Binding {
	km := d.c.KeyMap
	if !d.accountAPI() {
		return [][]key.Binding{
			{withHelp(km.RefreshNow, "refresh tokens now"), withHelp(km.Inspect, "token inspector")},
			{km.Logout, withHelp(km.Back, "home")}}
	}
	account := []key.Binding{d.mfaKey()}
	if d.profile.Kind == vault.KindAccount {
		account = append(account, km.ChangePassword)
	}
	if d.unverified() {
		account = append(account, km.VerifyEmail, km.Resend)
	}
	return [][]key.Binding{
		{withHelp(km.RefreshNow, "refresh tokens now"), withHelp(km.Protected, "call the protected route")},
		append([]key.Binding{withHelp(km.Sessions, "server sessions"), withHelp(km.Inspect, "token inspector")}, d.auditKeys()...),
		account,
		{km.Logout, withHelp(km.Back, "home")}}
}
