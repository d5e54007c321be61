package tui

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/vault"
)

// users is the administrators' screen: list and search the accounts, lock
// or unlock one, grant the next role up or revoke the highest, each after
// asking. The server checks every permission; this screen only asks.
type users struct {
	c             *Common
	width, height int
	profile       vault.Profile

	list      []client.AdminUser
	total     int
	loaded    bool
	cursor    int
	query     string
	searching bool
	confirm   string // the question being asked, "" when none
	action    func(ctx context.Context) error
	done      string // the note once action worked
	err       error
	note      string
	work      work
}

// UsersMsg carries one page of accounts.
type UsersMsg struct {
	Page *client.UserPage
	Err  error
}

// UserChangedMsg follows an admin change to an account.
type UserChangedMsg struct {
	Note string
	Err  error
}

func newUsers(c *Common, p vault.Profile) *users {
	return &users{c: c, profile: p, work: newWork(c)}
}

func (u *users) Init() tea.Cmd { return u.loadCmd() }

func (u *users) loadCmd() tea.Cmd {
	name, q := u.profile.Name, u.query
	return u.c.flowCmd(func(ctx context.Context) tea.Msg {
		page, err := u.c.Env.AdminUsers(ctx, name, q, 50, 0)
		return UsersMsg{Page: page, Err: err}
	})
}

func (u *users) SetSize(w, h int) { u.width, u.height = w, h }

func (u *users) Title() string { return "Users · " + u.profile.Name }

func (u *users) Typing() bool { return u.searching }

func (u *users) Update(msg tea.Msg) (Component, tea.Cmd) {
	if cmd, ok := u.work.tick(msg); ok {
		return u, cmd
	}
	switch msg := msg.(type) {
	case UsersMsg:
		u.loaded = true
		u.work.done()
		u.err = msg.Err
		if msg.Err == nil {
			u.list, u.total = msg.Page.Users, msg.Page.Total
		}
		u.cursor = min(u.cursor, max(len(u.list)-1, 0))
	case UserChangedMsg:
		u.work.done()
		u.err = msg.Err
		if msg.Err == nil {
			u.note = msg.Note
			return u, u.loadCmd()
		}
	case tea.KeyPressMsg:
		return u, u.key(msg)
	}
	return u, nil
}

func (u *users) key(msg tea.KeyPressMsg) tea.Cmd {
	km := u.c.KeyMap
	if u.work.active() {
		return nil
	}
	if u.searching {
		switch {
		case key.Matches(msg, km.Submit):
			u.searching = false
			return u.work.start("Searching…", u.loadCmd())
		case key.Matches(msg, km.Back):
			u.searching = false
		case msg.String() == "backspace":
			if r := []rune(u.query); len(r) > 0 {
				u.query = string(r[:len(r)-1])
			}
		case msg.Text != "":
			u.query += msg.Text
		}
		return nil
	}
	if u.confirm != "" {
		switch {
		case key.Matches(msg, km.Yes):
			act, note := u.action, u.done
			u.confirm, u.action = "", nil
			return u.work.start("Changing the account…", u.c.flowCmd(func(ctx context.Context) tea.Msg {
				return UserChangedMsg{Note: note, Err: act(ctx)}
			}))
		case key.Matches(msg, km.No):
			u.confirm, u.action = "", nil
		}
		return nil
	}
	switch {
	case key.Matches(msg, km.Back):
		return BackCmd
	case key.Matches(msg, km.Up):
		u.cursor = max(u.cursor-1, 0)
	case key.Matches(msg, km.Down):
		u.cursor = min(u.cursor+1, max(len(u.list)-1, 0))
	case key.Matches(msg, km.Reload):
		u.note, u.err = "", nil
		return u.work.start("Reading the accounts…", u.loadCmd())
	case key.Matches(msg, km.Search):
		u.searching, u.note, u.err = true, "", nil
	case len(u.list) == 0:
	case key.Matches(msg, km.Lock):
		u.ask(u.lockQuestion())
	case key.Matches(msg, km.Grant):
		u.ask(u.roleQuestion(true))
	case key.Matches(msg, km.RevokeRole):
		u.ask(u.roleQuestion(false))
	}
	return nil
}

// ask sets a question, its action and the note once it worked; an empty
// question asks nothing.
func (u *users) ask(q, done string, act func(ctx context.Context) error) {
	u.confirm, u.done, u.action, u.note, u.err = q, done, act, "", nil
}

func (u *users) lockQuestion() (string, string, func(ctx context.Context) error) {
	target, name := u.list[u.cursor], u.profile.Name
	action, q := flows.ActionLock, "Lock "+target.Username+"? Their sessions end and they cannot log in."
	if target.Locked {
		action, q = flows.ActionUnlock, "Unlock "+target.Username+"? They can log in again."
	}
	done := target.Username + " is " + action + "ed."
	return q + " y yes · n no", done, func(ctx context.Context) error {
		_, err := u.c.Env.AdminAction(ctx, name, target.ID, action)
		return err
	}
}

// roleQuestion grants the role above the account's highest, or revokes
// its highest.
func (u *users) roleQuestion(grant bool) (string, string, func(ctx context.Context) error) {
	target, name := u.list[u.cursor], u.profile.Name
	top := -1
	for i, r := range flows.Roles {
		if slices.Contains(target.Roles, r) {
			top = i
		}
	}
	var role, q string
	switch {
	case grant && top == len(flows.Roles)-1:
		return "", "", nil
	case grant:
		role = flows.Roles[top+1]
		q = fmt.Sprintf("Grant %s the role %s? It applies at their next token refresh.", target.Username, role)
	case top < 0:
		return "", "", nil
	default:
		role = flows.Roles[top]
		q = fmt.Sprintf("Revoke %s's role %s? Their sessions end.", target.Username, role)
	}
	done := fmt.Sprintf("%s: %s granted.", target.Username, role)
	if !grant {
		done = fmt.Sprintf("%s: %s revoked.", target.Username, role)
	}
	return q + " y yes · n no", done, func(ctx context.Context) error {
		_, err := u.c.Env.SetRole(ctx, name, target.ID, role, grant)
		return err
	}
}

func (u *users) View() string {
	st := u.c.Styles
	var b strings.Builder
	count := ""
	if u.loaded {
		count = fmt.Sprintf(" · %d account%s", u.total, map[bool]string{true: "", false: "s"}[u.total == 1])
	}
	b.WriteString(st.Heading.Render("Users on "+u.profile.Server) + st.Subtle.Render(count) + "\n")
	search := st.Subtle.Render("/ to search")
	if u.searching || u.query != "" {
		search = st.Label.Render("search: ") + st.Value.Render(u.query)
		if u.searching {
			search += st.Cursor.Render("▌") + st.Subtle.Render("  enter search · esc done")
		}
	}
	b.WriteString(search + "\n\n")
	if !u.loaded && u.err == nil {
		b.WriteString(st.Subtle.Render("Reading the accounts…") + "\n")
	}
	if len(u.list) > 0 {
		b.WriteString(st.Label.Render("  "+pad("user", 14)+pad("roles", 26)+pad("mfa", 5)+pad("state", 8)+"email") + "\n")
	}
	rows := max(u.height-9, 3)
	first := max(0, u.cursor-rows+1)
	for i := first; i < min(len(u.list), first+rows); i++ {
		us := u.list[i]
		pointer, style := "  ", st.Value
		if i == u.cursor {
			pointer, style = st.Cursor.Render("› "), st.Selected
		}
		line := pad(truncate(us.Username, 13), 14) + pad(truncate(strings.Join(us.Roles, ","), 25), 26) +
			pad(onOffText(us.MFA), 5) + pad(lockText(us.Locked), 8) + truncate(us.Email, max(u.width-55, 8))
		b.WriteString(pointer + style.Render(line) + "\n")
	}
	b.WriteString("\n")
	switch {
	case u.work.active():
		b.WriteString(u.work.View() + "\n")
	case u.confirm != "":
		b.WriteString(st.Warn.Width(u.width).Render(u.confirm) + "\n")
	case u.err != nil:
		b.WriteString(st.Error.Width(u.width).Render(explain(u.err)) + "\n")
	case u.note != "":
		b.WriteString(st.Note.Render("✓ "+u.note) + "\n")
	}
	return b.String()
}

func onOffText(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func lockText(locked bool) string {
	if locked {
		return "locked"
	}
	return "active"
}

func (u *users) ShortHelp() []key.Binding {
	km := u.c.KeyMap
	switch {
	case u.searching:
		return []key.Binding{km.Submit, km.Back}
	case u.confirm != "":
		return []key.Binding{km.Yes, km.No}
	}
	return []key.Binding{km.Search, km.Lock, km.Grant, km.RevokeRole, km.Back}
}

func (u *users) FullHelp() [][]key.Binding {
	km := u.c.KeyMap
	return [][]key.Binding{{km.Up, km.Down, km.Search}, {km.Lock, km.Grant, km.RevokeRole}, {km.Reload, km.Back}}
}
