package tui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/vault"
)

// unlock asks for the file vault's passphrase: once for a vault that exists,
// twice for a new one. The interface never lets the vault prompt on the
// terminal (it would write under the screen and read keys meant for it), so
// a locked vault is opened here, and the root model returns to the screen
// below once it is.
type unlock struct {
	c             *Common
	width, height int
	info          vaultInfo
	// retry is set when a step on the screen below failed on the locked
	// vault: after unlocking, the user tries it again.
	retry bool

	form form
	work work
	err  error
	hint string // what to type, after an empty submit or a mismatch
	// cursorAt is the focused field's line in the last View.
	cursorAt int
}

// vaultInfo is what the unlock screen says about the vault, read before it
// is shown so that View does no I/O.
type vaultInfo struct {
	path   string
	exists bool
	cache  string // where an unlocked key is kept; "" when nowhere
}

// readVaultInfo describes e's file vault for the unlock screen.
func readVaultInfo(ctx context.Context, e *flows.Env) vaultInfo {
	return vaultInfo{
		path:   filepath.Join(e.Home, "secrets.age"),
		exists: e.VaultExists(),
		cache:  e.VaultState(ctx).Cache,
	}
}

// VaultLockedMsg asks the root model for the unlock screen: a step needed
// the vault and found it locked.
type VaultLockedMsg struct{ info vaultInfo }

// VaultUnlockedMsg is an unlock that worked; the root model returns to the
// screen below the unlock screen.
type VaultUnlockedMsg struct {
	// Created is set when the unlock made a new vault.
	Created bool
	// Cache is where the key is kept ("" when nowhere: the vault is then
	// unlocked for this process only).
	Cache string
	// Idle is how long the key is kept without use.
	Idle time.Duration
}

// UnlockFailedMsg is an unlock that did not work: a wrong passphrase, or a
// vault that could not be read or created.
type UnlockFailedMsg struct{ Err error }

func newUnlock(c *Common, info vaultInfo, retry bool) *unlock {
	fields := []field{{name: "passphrase", secret: true}}
	if !info.exists {
		fields = append(fields, field{name: "repeat", secret: true})
	}
	return &unlock{c: c, info: info, retry: retry, form: newForm(c, fields...), work: newWork(c)}
}

func (u *unlock) Init() tea.Cmd { return u.form.focusOn(0) }

func (u *unlock) SetSize(w, h int) {
	u.width, u.height = w, h
	u.form.setWidth(w - 14)
}

func (u *unlock) Title() string {
	if u.info.exists {
		return "Unlock the vault"
	}
	return "New vault"
}

// Typing is always true: printable keys belong to the passphrase, even
// while an unlock runs (they are then dropped, not taken as commands).
func (u *unlock) Typing() bool { return true }

func (u *unlock) Update(msg tea.Msg) (Component, tea.Cmd) {
	if cmd, ok := u.work.tick(msg); ok {
		return u, cmd
	}
	switch msg := msg.(type) {
	case UnlockFailedMsg:
		u.work.done()
		u.err = msg.Err
		return u, u.form.focusOn(0)
	case tea.KeyPressMsg:
		km := u.c.KeyMap
		switch {
		case u.work.active():
			// The derivation takes about a second; a second enter must not
			// start another.
			return u, nil
		case key.Matches(msg, km.Back):
			return u, BackCmd
		case key.Matches(msg, km.Submit):
			return u, u.submit()
		}
	}
	if u.work.active() {
		return u, nil
	}
	cmd, changed := u.form.update(msg)
	if changed != "" {
		u.err, u.hint = nil, ""
	}
	return u, cmd
}

// submit takes the passphrase out of the fields, which it empties, and
// starts the unlock.
func (u *unlock) submit() tea.Cmd {
	u.err, u.hint = nil, ""
	pass := []byte(u.form.value("passphrase"))
	var again []byte
	if !u.info.exists {
		again = []byte(u.form.value("repeat"))
	}
	for i := range u.form.inputs {
		u.form.inputs[i].Reset()
	}
	defer clear(again)
	switch {
	case len(pass) == 0:
		u.hint = "Type the passphrase."
		if !u.info.exists {
			u.hint = "Choose a passphrase and type it in both fields."
		}
		return u.form.focusOn(0)
	case !u.info.exists && !bytes.Equal(pass, again):
		clear(pass)
		u.hint = "The two passphrases differ; nothing was saved. Type the same one in both fields."
		return u.form.focusOn(0)
	}
	what := "Unlocking…"
	if !u.info.exists {
		what = "Creating the vault…"
	}
	return u.work.start(what, u.unlockCmd(pass))
}

// unlockCmd unlocks the vault with pass, then zeroes pass. The vault is
// given its own copy: it keeps the passphrase that worked for later use in
// this process, and that copy is its to manage.
func (u *unlock) unlockCmd(pass []byte) tea.Cmd {
	e, created := u.c.Env, !u.info.exists
	return u.c.flowCmd(func(ctx context.Context) tea.Msg {
		err := e.UnlockVault(ctx, bytes.Clone(pass), 0)
		clear(pass)
		if err != nil && !errors.Is(err, vault.ErrNoCache) {
			return UnlockFailedMsg{Err: err}
		}
		msg := VaultUnlockedMsg{Created: created, Idle: vault.DefaultIdle}
		if errors.Is(err, vault.ErrNoCache) {
			return msg // unlocked for this process: nothing keeps it
		}
		st := e.VaultState(ctx)
		msg.Cache = st.Cache
		if st.Lock != nil && st.Lock.Idle > 0 {
			msg.Idle = st.Lock.Idle
		}
		return msg
	})
}

// note is what the root model says once the vault is open.
func (m VaultUnlockedMsg) note(retry bool) string {
	what := "Vault unlocked"
	if m.Created {
		what = "Vault created"
	}
	if retry {
		what += " — try again"
	}
	if m.Cache == "" {
		return what + ". There is no session cache here, so it stays unlocked only while this window is open."
	}
	return fmt.Sprintf("%s. The key is kept in %s until it goes %s unused.", what, m.Cache, idleWords(m.Idle))
}

// idleWords renders an idle timeout: "12 h", else like short.
func idleWords(d time.Duration) string {
	if d > 0 && d%time.Hour == 0 {
		return fmt.Sprintf("%d h", d/time.Hour)
	}
	return short(d)
}

func (u *unlock) View() string {
	st := u.c.Styles
	w := max(u.width, 1)
	var b strings.Builder
	heading := "Unlock the vault"
	if !u.info.exists {
		heading = "Create the vault"
	}
	b.WriteString(st.Heading.Render(heading) + "\n")
	b.WriteString(st.Subtle.Width(w).Render(u.intro()) + "\n")
	b.WriteString(st.Label.Render("File ") + " " + st.Value.Render(truncateLeft(u.info.path, w-6)) + "\n\n")

	u.cursorAt = strings.Count(b.String(), "\n") + 2*u.form.focus
	b.WriteString(u.form.row(0, "Passphrase", "") + "\n")
	if !u.info.exists {
		b.WriteString(u.form.row(1, "Repeat", "") + "\n")
	}
	switch {
	case u.work.active():
		b.WriteString(u.work.View() + "\n")
	case u.hint != "":
		b.WriteString(st.Error.Width(w).Render(u.hint) + "\n")
	case errors.Is(u.err, vault.ErrWrongPassphrase):
		b.WriteString(st.Error.Width(w).Render("Wrong passphrase: the vault stays locked. Type it again.") + "\n")
	case u.err != nil:
		b.WriteString(st.Error.Width(w).Render(upperFirst(explain(u.err))) + "\n")
	default:
		b.WriteString(st.Subtle.Width(w).Render(u.keptWhere()) + "\n")
	}
	return b.String()
}

func (u *unlock) intro() string {
	var lead string
	if u.retry {
		lead = "That step needs the vault, which is locked. "
		if !u.info.exists {
			lead = "That step needs the vault, which does not exist yet. "
		}
	}
	if u.info.exists {
		return lead + "Your sessions are kept in an encrypted file; type its passphrase to open it."
	}
	return lead + "latch keeps your sessions in an encrypted file. Choose its passphrase: " +
		"nobody can recover it, but losing it only means logging in again."
}

// keptWhere says where the unlocked key will be kept, and for how long.
func (u *unlock) keptWhere() string {
	if u.info.cache == "" {
		return "No session cache here: the vault stays unlocked while this window is open."
	}
	return "Once unlocked, the key is kept in " + u.info.cache + " until it goes " + idleWords(vault.DefaultIdle) + " unused."
}

// truncateLeft cuts s to w cells from the left, keeping its end (a path's
// file name) and marking the cut.
func truncateLeft(s string, w int) string {
	n := lipgloss.Width(s)
	if n <= w {
		return s
	}
	if w < 2 {
		return "…"
	}
	return ansi.TruncateLeft(s, n-w+1, "…")
}

func (u *unlock) cursorLine() int { return u.cursorAt }

func (u *unlock) ShortHelp() []key.Binding {
	km := u.c.KeyMap
	submit := withHelp(km.Submit, "unlock")
	if !u.info.exists {
		return []key.Binding{withHelp(km.Submit, "create"), km.Next, withHelp(km.Back, "not now")}
	}
	return []key.Binding{submit, withHelp(km.Back, "not now")}
}

func (u *unlock) FullHelp() [][]key.Binding {
	km := u.c.KeyMap
	if !u.info.exists {
		return [][]key.Binding{{km.Submit, km.Back}, {km.Next, km.Prev}}
	}
	return [][]key.Binding{{km.Submit, km.Back}}
}
