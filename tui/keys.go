package tui

import "charm.land/bubbles/v2/key"

// KeyMap is every key the interface takes. Screens match with key.Matches
// and list the ones they use in their help.
type KeyMap struct {
	// Everywhere.
	ForceQuit key.Binding
	Quit      key.Binding
	Help      key.Binding
	Back      key.Binding
	// Scrolling a body taller than the terminal.
	PageUp   key.Binding
	PageDown key.Binding

	// Lists.
	Up   key.Binding
	Down key.Binding
	Open key.Binding

	// Forms.
	Next   key.Binding
	Prev   key.Binding
	Submit key.Binding

	// Confirmations.
	Yes key.Binding
	No  key.Binding

	// Home.
	Login     key.Binding
	Signup    key.Binding
	AddServer key.Binding
	Use       key.Binding
	Remove    key.Binding
	OAuth     key.Binding

	// OAuth login.
	Switch key.Binding
	Retry  key.Binding
	Copy   key.Binding

	// Dashboard.
	RefreshNow key.Binding
	Protected  key.Binding
	Sessions   key.Binding
	Inspect    key.Binding
	Logout     key.Binding
	MFASetup   key.Binding
	Backup     key.Binding
	Activity   key.Binding
	Users      key.Binding

	// The Users screen.
	Search     key.Binding
	Lock       key.Binding
	Grant      key.Binding
	RevokeRole key.Binding

	// Recovery: the login screen's forgotten password, the dashboard's
	// email and password actions, the dev mailbox.
	Forgot         key.Binding
	Mailbox        key.Binding
	UseToken       key.Binding
	ChangePassword key.Binding
	Resend         key.Binding
	VerifyEmail    key.Binding

	// Two-factor.
	UseBackup key.Binding
	Reveal    key.Binding

	// Sessions and the inspector.
	Revoke        key.Binding
	Reload        key.Binding
	ShowSignature key.Binding
	IDToken       key.Binding

	// The trace pane of a flow screen.
	Trace      key.Binding
	Expand     key.Binding
	Collapse   key.Binding
	TraceFirst key.Binding
	TraceLast  key.Binding
	SaveTrace  key.Binding
}

// DefaultKeyMap returns latch's keys.
func DefaultKeyMap() *KeyMap {
	b := func(help, desc string, keys ...string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(help, desc))
	}
	return &KeyMap{
		ForceQuit: b("ctrl+c", "quit", "ctrl+c"),
		Quit:      b("q", "quit", "q"),
		Help:      b("?", "more keys", "?", "f1"),
		Back:      b("esc", "back", "esc"),
		PageUp:    b("pgup", "scroll up", "pgup"),
		PageDown:  b("pgdn", "scroll down", "pgdown"),

		Up:   b("↑/k", "up", "up", "k"),
		Down: b("↓/j", "down", "down", "j"),
		Open: b("enter", "open", "enter"),

		Next:   b("tab", "next field", "tab", "down"),
		Prev:   b("shift+tab", "previous field", "shift+tab", "up"),
		Submit: b("enter", "submit", "enter"),

		Yes: b("y", "yes", "y"),
		No:  b("n", "no", "n", "esc"),

		Login:     b("l", "log in", "l"),
		Signup:    b("s", "sign up", "s"),
		AddServer: b("a", "add server", "a"),
		Use:       b("u", "make current", "u"),
		Remove:    b("d", "remove", "d", "delete"),
		OAuth:     b("o", "OAuth", "o"),

		Switch: b("←/→", "switch", "left", "right"),
		Retry:  b("enter", "start again", "enter"),
		Copy:   b("c", "copy the URL", "c"),

		RefreshNow: b("r", "refresh", "r"),
		Protected:  b("p", "protected", "p"),
		Sessions:   b("s", "sessions", "s"),
		Inspect:    b("t", "token", "t"),
		Logout:     b("o", "log out", "o"),
		MFASetup:   b("m", "two-factor", "m"),
		Backup:     b("b", "backup codes", "b"),
		Activity:   b("a", "activity", "a"),
		Users:      b("U", "users", "U"),

		Search:     b("/", "search", "/"),
		Lock:       b("x", "lock/unlock", "x"),
		Grant:      b("+", "grant next role", "+"),
		RevokeRole: b("-", "revoke top role", "-"),

		// Control keys where a text field has the keyboard; none that a
		// text field edits with (ctrl+f, ctrl+e…).
		Forgot:         b("ctrl+r", "forgot password?", "ctrl+r"),
		Mailbox:        b("ctrl+x", "mailbox", "ctrl+x"),
		UseToken:       b("u", "use its token", "u"),
		ChangePassword: b("c", "change password", "c"),
		Resend:         b("e", "resend verification", "e"),
		VerifyEmail:    b("v", "verify email", "v"),

		// Not ctrl+b: tmux takes it.
		UseBackup: b("ctrl+o", "use a saved backup code", "ctrl+o"),
		Reveal:    b("v", "reveal", "v"),

		Revoke:        b("d", "revoke", "d", "delete"),
		Reload:        b("r", "reload", "r"),
		ShowSignature: b("s", "show signature", "s"),
		IDToken:       b("i", "ID token", "i"),

		// A control key: the flow screens' text fields take t.
		Trace:      b("ctrl+t", "trace", "ctrl+t"),
		Expand:     b("enter/→", "open or close a step", "enter", "right", "l"),
		Collapse:   b("←", "close a step", "left", "h"),
		TraceFirst: b("home/g", "first step", "home", "g"),
		TraceLast:  b("end/G", "last step", "end", "G"),
		SaveTrace:  b("s", "save to a file", "s", "ctrl+s"),
	}
}
