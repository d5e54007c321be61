package tui

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"syscall"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/vault"
)

// Options configure the interface.
type Options struct {
	Env *flows.Env
	// Profile is selected on the home screen ("" = the current profile).
	Profile string
	// Banner, when set, is shown above every screen (latch demo says what
	// it is there).
	Banner string
	// NoColor draws without colour (NO_COLOR).
	NoColor bool
	// Now is the clock; nil means the Env's, else time.Now.
	Now func() time.Time
	// Tick schedules a message; nil means tea.Tick. Tests replace it.
	Tick func(d time.Duration, msg func(time.Time) tea.Msg) tea.Cmd
	// OAuthMethod is the OAuth login the OAuth screen offers first,
	// "browser" or "device"; "" means flows.DefaultOAuthMethod.
	OAuthMethod string
	// OpenBrowser opens the browser login's URL; nil means
	// flows.OpenBrowser. The URL is shown whatever it returns.
	OpenBrowser func(url string) error
	// Trace brings the flows' trace events and progress messages into the
	// interface (its Trace and Progress go into the Env's tracer and
	// Progress); nil means the trace pane stays empty.
	Trace *TraceFeed
	// TraceDir is where a saved trace goes; "" means the current
	// directory, else latch's home.
	TraceDir string
}

// App is the root model: it owns Common, a stack of screens (home at the
// bottom), the help line, and the status line for errors no screen claimed.
type App struct {
	common        *Common
	width, height int
	stack         []Component
	help          help.Model
	banner        string
	status        string // an unclaimed error
	notice        string // news no screen claimed ("Vault unlocked")
	profile       string
	scroll        int // the first line of the active screen's body shown
	pane          *tracePane
	// unlockDeclined is set when the user leaves the unlock screen without
	// unlocking, until their next key: the screen below, reloading, would
	// otherwise find the vault locked and ask again at once.
	unlockDeclined bool
}

// New builds the interface over an Env.
func New(ctx context.Context, o Options) *App {
	now := o.Now
	if now == nil {
		now = o.Env.Now
	}
	if now == nil {
		now = time.Now
	}
	tick := o.Tick
	if tick == nil {
		tick = tea.Tick
	}
	method := o.OAuthMethod
	if method == "" {
		method = flows.DefaultOAuthMethod(os.Getenv)
	}
	open := o.OpenBrowser
	if open == nil {
		open = flows.OpenBrowser
	}
	c := &Common{
		ctx: ctx, Env: o.Env, Styles: NewStyles(o.NoColor), KeyMap: DefaultKeyMap(),
		Now: now, Tick: tick, Width: 80, Height: 24, oauthMethod: method, openBrowser: open,
		feed: o.Trace, trace: &traceLog{}, traceDir: o.TraceDir,
	}
	h := help.New()
	h.Styles = c.Styles.Help
	a := &App{common: c, help: h, banner: o.Banner, profile: o.Profile, pane: newTracePane(c)}
	a.stack = []Component{newHome(c, o.Profile)}
	// A locked vault is opened first, over home: home reads the profiles'
	// secrets when it starts, which it then does once the unlock returns
	// to it. A vault that does not exist yet is created when a step first
	// saves a secret (see lockedCmd).
	if o.Env.VaultState(ctx).Locked() && o.Env.VaultExists() {
		a.stack = append(a.stack, newUnlock(c, readVaultInfo(ctx, o.Env), false))
	}
	return a
}

// Run runs the interface on a terminal until the user quits, or until
// SIGINT or SIGTERM.
func Run(ctx context.Context, o Options, in io.Reader, out io.Writer) error {
	if !o.NoColor {
		_, o.NoColor = os.LookupEnv("NO_COLOR")
	}
	// One way for a signal to end the program, not two: Bubble Tea's own
	// handler blocks sending its quit message once the context (which the
	// CLI cancels on the same signal) has stopped the event loop, and the
	// program then hangs in shutdown, waiting for that handler.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	p := tea.NewProgram(New(ctx, o), tea.WithContext(ctx), tea.WithInput(in), tea.WithOutput(out),
		tea.WithoutSignalHandler())
	if o.Trace != nil {
		fctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go o.Trace.forward(fctx, p.Send)
	}
	_, err := p.Run()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil // interrupted from outside: a normal way to leave
	}
	return err
}

func (a *App) top() Component { return a.stack[len(a.stack)-1] }

// Init implements tea.Model.
func (a *App) Init() tea.Cmd {
	return tea.Batch(a.top().Init(), a.tickCmd())
}

func (a *App) tickCmd() tea.Cmd {
	return a.common.Tick(time.Second, func(t time.Time) tea.Msg { return TickMsg{Now: t} })
}

// Update implements tea.Model.
func (a *App) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	// The flows' news first: a flow's events belong in the trace before its
	// result moves the interface on.
	traced := a.drainTrace()
	m, cmd := a.update(msg)
	a.keepPane()
	return m, tea.Batch(traced, cmd)
}

func (a *App) update(msg tea.Msg) (tea.Model, tea.Cmd) {
	km := a.common.KeyMap
	switch msg := msg.(type) {
	case TraceMsg:
		return a, nil // drained already
	case TraceSavedMsg:
		a.pane.savedMsg(msg)
		a.resize()
		return a, nil
	case tea.WindowSizeMsg:
		a.width, a.height = msg.Width, msg.Height
		a.resize()
		a.follow()
		return a, nil
	case tea.KeyPressMsg:
		a.status, a.notice, a.unlockDeclined = "", "", false
		switch {
		case key.Matches(msg, km.ForceQuit):
			return a, tea.Quit
		}
		if cmd, ok := a.paneKey(msg); ok {
			a.resize()
			return a, cmd
		}
		switch {
		case a.scrollKey(msg):
			return a, nil
		case a.top().Typing():
			if msg.String() == "f1" {
				a.toggleHelp()
				return a, nil
			}
		case key.Matches(msg, km.Help):
			a.toggleHelp()
			return a, nil
		case key.Matches(msg, km.Quit):
			return a, tea.Quit
		}
	case TickMsg:
		s, cmd := a.top().Update(msg)
		a.stack[len(a.stack)-1] = s
		return a, tea.Batch(cmd, a.tickCmd())
	case NavigateMsg:
		return a, a.navigate(msg)
	case MailTokenMsg:
		// The Mailbox hands a mail's token to the form that opened it:
		// close the Mailbox, then give the form the token.
		if _, ok := a.top().(*mailbox); ok && len(a.stack) > 1 {
			a.stack = a.stack[:len(a.stack)-1]
			a.scroll = 0
			a.resize()
		}
	case BackMsg:
		_, unlocking := a.top().(*unlock)
		if len(a.stack) == 1 {
			if unlocking {
				return a, tea.Quit // nothing to go back to
			}
			return a, nil
		}
		a.unlockDeclined = a.unlockDeclined || unlocking
		a.stack = a.stack[:len(a.stack)-1]
		a.scroll = 0
		return a, a.top().Init()
	case ErrorMsg:
		if cmd := a.lockedCmd(msg.Err); cmd != nil {
			return a, cmd
		}
		a.status = explain(msg.Err)
		return a, nil
	case VaultLockedMsg:
		if _, ok := a.top().(*unlock); ok {
			return a, nil // asked already, by another step of the same screen
		}
		s := newUnlock(a.common, msg.info, true)
		a.stack = append(a.stack, s)
		a.scroll = 0
		a.resize()
		return a, s.Init()
	case VaultUnlockedMsg:
		u, ok := a.top().(*unlock)
		if !ok {
			return a, nil
		}
		a.stack = a.stack[:len(a.stack)-1]
		a.notice = msg.note(u.retry)
		a.scroll = 0
		a.resize()
		return a, a.top().Init()
	}
	s, cmd := a.top().Update(msg)
	a.stack[len(a.stack)-1] = s
	if _, ok := msg.(tea.KeyPressMsg); ok {
		a.follow()
	}
	// The screen shows its failure as usual; a locked vault also brings up
	// the unlock screen over it, after which the user tries again.
	return a, tea.Batch(cmd, a.lockedCmd(flowErr(msg)))
}

// lockedCmd asks for the unlock screen when err says the vault is locked,
// unless it is up already or the user just left it; else it returns nil.
func (a *App) lockedCmd(err error) tea.Cmd {
	if !errors.Is(err, vault.ErrLocked) || a.unlockDeclined {
		return nil
	}
	if _, ok := a.top().(*unlock); ok {
		return nil
	}
	return a.common.flowCmd(func(ctx context.Context) tea.Msg {
		return VaultLockedMsg{info: readVaultInfo(ctx, a.common.Env)}
	})
}

var errorType = reflect.TypeFor[error]()

// flowErr is the failure a flow's result message carries. Every such
// message keeps it in a field named Err, so the root model can tell a
// locked vault from any screen's result without each screen reporting it.
func flowErr(msg tea.Msg) error {
	v := reflect.ValueOf(msg)
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	f := v.FieldByName("Err")
	if !f.IsValid() || f.Type() != errorType || f.IsNil() {
		return nil
	}
	return f.Interface().(error)
}

func (a *App) toggleHelp() {
	a.help.ShowAll = !a.help.ShowAll
	a.resize()
}

// navigate opens the screen msg names.
func (a *App) navigate(msg NavigateMsg) tea.Cmd {
	c := a.common
	var s Component
	a.scroll = 0
	switch msg.To {
	case pageHome:
		a.stack = a.stack[:1]
		h := a.stack[0].(*home)
		h.setNote(msg.Note, msg.Profile.Name)
		a.resize()
		return h.Init()
	case pageDashboard:
		a.stack = a.stack[:1]
		s = newDashboard(c, msg.Profile, msg.Note)
	case pageSignup:
		s = newSignup(c, msg.Profile)
	case pageLogin:
		s = newLogin(c, msg.Profile, msg.Note)
	case pageMFA:
		s = newMFA(c, msg.Profile, msg.Pending)
	case pageMFASetup:
		s = newMFASetup(c, msg.Profile)
	case pageBackupCodes:
		s = newBackupCodes(c, msg.Profile)
	case pageSessions:
		s = newSessions(c, msg.Profile)
	case pageActivity:
		s = newActivity(c, msg.Profile)
	case pageUsers:
		s = newUsers(c, msg.Profile)
	case pageInspector:
		s = newInspector(c, msg.Profile)
	case pageOAuth:
		s = newOAuth(c, msg.Profile, msg.Note)
	case pageOAuthBrowser:
		s = newOAuthBrowser(c, *msg.OAuth)
	case pageOAuthDevice:
		s = newOAuthDevice(c, *msg.OAuth)
	case pageForgot:
		s = newForgot(c, msg.Profile)
	case pageMailbox:
		s = newMailbox(c, msg.Profile, msg.MailKind)
	case pagePasswordChange:
		s = newPasswordChange(c, msg.Profile)
	case pageVerifyEmail:
		s = newVerifyEmail(c, msg.Profile)
	default:
		return nil
	}
	a.stack = append(a.stack, s)
	a.resize()
	return s.Init()
}

// chrome is the header (banner and title bar) and the footer (status and
// help) around the active screen.
func (a *App) chrome() (header, footer string) {
	st := a.common.Styles
	w := max(a.width, 1)
	var hb strings.Builder
	if a.banner != "" {
		hb.WriteString(st.Banner.Width(w).MaxWidth(w).Render(truncate(a.banner, w-2)) + "\n")
	}
	title := st.AppName.Render("latch") + st.Crumb.Render(a.active().Title())
	hb.WriteString(truncate(title, w) + "\n")

	var fb strings.Builder
	if a.status != "" {
		fb.WriteString(st.Error.Width(w - 2).Render(a.status))
		fb.WriteString("\n")
	}
	if a.notice != "" {
		fb.WriteString(st.Note.Width(w - 2).Render(a.notice))
		fb.WriteString("\n")
	}
	line := helpLine(a.help, a.active(), a.common.KeyMap, w-2)
	if a.help.ShowAll {
		line = keyList(a.help, keyGroups(a.active(), a.common.KeyMap), w-2)
	}
	fb.WriteString(line)
	return hb.String(), fb.String()
}

// resize gives every screen the height left between header and footer.
func (a *App) resize() {
	if a.width == 0 {
		return
	}
	bodyW, bodyH := a.bodySize()
	a.common.Width, a.common.Height = bodyW, bodyH
	for _, s := range a.stack {
		s.SetSize(bodyW, bodyH)
	}
	a.pane.SetSize(bodyW, bodyH)
}

// bodySize is the room the active screen has: the terminal less the App's
// padding, the header (with the blank line under it) and the footer.
func (a *App) bodySize() (w, h int) {
	header, footer := a.chrome()
	return max(a.width-2, 1), max(a.height-lipgloss.Height(header)-lipgloss.Height(footer), 1)
}

// View implements tea.Model.
func (a *App) View() tea.View {
	v := tea.NewView(a.render())
	v.AltScreen = true
	v.WindowTitle = "latch"
	return v
}

// render lays out header, body and footer to exactly the terminal's size.
func (a *App) render() string {
	if a.width == 0 {
		return ""
	}
	header, footer := a.chrome()
	bodyW, bodyH := a.bodySize()
	body := fit(a.window(a.top().View(), bodyH, a.scroll), bodyW, bodyH)
	if a.pane.open {
		body = fit(a.pane.View(), bodyW, bodyH)
	}
	out := header + "\n" + a.common.Styles.App.Render(body) + "\n" + a.common.Styles.App.Render(footer)
	return fit(out, a.width, a.height)
}

// fit pads or cuts s to exactly h lines of at most w cells.
func fit(s string, w, h int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	for i, l := range lines {
		if lipgloss.Width(l) > w {
			lines[i] = truncate(l, w)
		}
	}
	return strings.Join(lines, "\n")
}
