package tui

import (
	"context"
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/vault"
)

// home lists the profiles with their state, and servers added by URL that
// have no profile yet; from here the user logs in, signs up, switches or
// removes a profile.
type home struct {
	c             *Common
	width, height int

	rows    []homeRow
	servers []homeRow // added this session
	cursor  int
	want    string // the profile to select once loaded
	loaded  bool
	err     error // the profiles could not be read
	note    string
	// noteAbout names the profile a note reports logged out ("Logged out
	// of demo…"): the note goes once that profile is in another state, so
	// that logging in again does not leave it standing.
	noteAbout string

	mode   homeMode
	input  textinput.Model
	work   work
	addErr error
}

type homeMode int

const (
	homeBrowse homeMode = iota
	homeAdding
	homeConfirmRemove
)

// homeRow is a profile, or a server that has no profile yet.
type homeRow struct {
	status *flows.ProfileStatus
	server string
	policy *client.AuthConfig
}

// ProfilesMsg carries the profiles' states.
type ProfilesMsg struct {
	Statuses []flows.ProfileStatus
	Err      error
}

// ServerAddedMsg is the answer of a server added by URL.
type ServerAddedMsg struct {
	URL    string
	Policy *client.AuthConfig
	Err    error
}

// ProfileChangedMsg follows switching to or removing a profile.
type ProfileChangedMsg struct {
	Note string
	Err  error
}

func newHome(c *Common, profile string) *home {
	in := textinput.New()
	in.Prompt = "URL "
	in.Placeholder = "https://auth.example.com"
	in.SetStyles(c.Styles.Input)
	return &home{c: c, want: profile, input: in, work: newWork(c)}
}

// Init reads the profiles; it runs again whenever home is shown.
func (h *home) Init() tea.Cmd { return h.loadCmd() }

func (h *home) loadCmd() tea.Cmd {
	return h.c.flowCmd(func(ctx context.Context) tea.Msg {
		st, err := h.c.Env.Status(ctx)
		return ProfilesMsg{Statuses: st, Err: err}
	})
}

func (h *home) SetSize(w, hh int) {
	h.width, h.height = w, hh
	h.input.SetWidth(min(50, w-6))
}

func (h *home) Title() string { return "Profiles" }

func (h *home) Typing() bool { return h.mode == homeAdding }

func (h *home) selected() (homeRow, bool) {
	if h.cursor < 0 || h.cursor >= len(h.rows) {
		return homeRow{}, false
	}
	return h.rows[h.cursor], true
}

func (h *home) Update(msg tea.Msg) (Component, tea.Cmd) {
	if cmd, ok := h.work.tick(msg); ok {
		return h, cmd
	}
	switch msg := msg.(type) {
	case ProfilesMsg:
		h.loaded, h.err = true, msg.Err
		h.setRows(msg.Statuses)
		h.dropStaleNote(msg.Statuses)
		return h, nil
	case ServerAddedMsg:
		h.work.done()
		if msg.Err != nil {
			h.addErr = msg.Err
			return h, nil
		}
		h.mode, h.addErr = homeBrowse, nil
		h.input.Blur()
		h.addServer(homeRow{server: msg.URL, policy: msg.Policy})
		h.setNote("Added "+msg.URL+": sign up (s) or log in (l).", "")
		return h, nil
	case ProfileChangedMsg:
		h.setNote(msg.Note, "")
		if msg.Err != nil {
			h.setNote("", "")
			h.err = msg.Err
		}
		return h, h.loadCmd()
	case tea.KeyPressMsg:
		switch h.mode {
		case homeAdding:
			return h.updateAdding(msg)
		case homeConfirmRemove:
			return h.updateConfirm(msg)
		}
		return h.updateBrowse(msg)
	}
	if h.mode == homeAdding {
		var cmd tea.Cmd
		h.input, cmd = h.input.Update(msg)
		return h, cmd
	}
	return h, nil
}

// setNote shows note; about, if set, is the profile it reports logged out.
func (h *home) setNote(note, about string) { h.note, h.noteAbout = note, about }

// dropStaleNote clears a note about a profile that is no longer logged out.
func (h *home) dropStaleNote(statuses []flows.ProfileStatus) {
	if h.noteAbout == "" || h.err != nil {
		return
	}
	for _, s := range statuses {
		if s.Profile.Name == h.noteAbout && s.State == flows.StateLoggedOut {
			return
		}
	}
	h.setNote("", "")
}

// setRows lists the profiles, then the added servers, keeping the
// selection on the same profile when it still exists.
func (h *home) setRows(statuses []flows.ProfileStatus) {
	keep := h.want
	if r, ok := h.selected(); ok && r.status != nil && keep == "" {
		keep = r.status.Profile.Name
	}
	if keep == "" {
		for _, s := range statuses {
			if s.Current {
				keep = s.Profile.Name
			}
		}
	}
	h.rows = h.rows[:0]
	for i := range statuses {
		h.rows = append(h.rows, homeRow{status: &statuses[i], server: statuses[i].Profile.Server})
	}
	h.rows = append(h.rows, h.servers...)
	h.cursor = min(h.cursor, max(len(h.rows)-1, 0))
	for i, r := range h.rows {
		if r.status != nil && r.status.Profile.Name == keep {
			h.cursor = i
		}
	}
	h.want = ""
}

func (h *home) addServer(r homeRow) {
	for i, s := range h.servers {
		if s.server == r.server {
			h.servers[i] = r
			for j := range h.rows {
				if h.rows[j].status == nil && h.rows[j].server == r.server {
					h.rows[j] = r
				}
			}
			h.selectServer(r.server)
			return
		}
	}
	h.servers = append(h.servers, r)
	h.rows = append(h.rows, r)
	h.selectServer(r.server)
}

func (h *home) selectServer(url string) {
	for i, r := range h.rows {
		if r.status == nil && r.server == url {
			h.cursor = i
		}
	}
}

func (h *home) updateBrowse(msg tea.KeyPressMsg) (Component, tea.Cmd) {
	km := h.c.KeyMap
	row, ok := h.selected()
	switch {
	case key.Matches(msg, km.Up):
		h.cursor = max(h.cursor-1, 0)
	case key.Matches(msg, km.Down):
		h.cursor = min(h.cursor+1, max(len(h.rows)-1, 0))
	case key.Matches(msg, km.AddServer):
		h.mode, h.addErr = homeAdding, nil
		h.setNote("", "")
		h.input.SetValue("")
		return h, h.input.Focus()
	case key.Matches(msg, km.OAuth):
		// Any OpenID provider needs no server added first.
		return h, NavigateCmd(NavigateMsg{To: pageOAuth, Profile: row.loginProfile()})
	case !ok:
		if key.Matches(msg, km.Login, km.Signup, km.Open) {
			h.setNote("Add a server first (a): its URL, like https://auth.example.com.", "")
		}
	case key.Matches(msg, km.Open):
		if row.status != nil && row.status.State == flows.StateLoggedIn {
			return h, NavigateCmd(NavigateMsg{To: pageDashboard, Profile: row.status.Profile})
		}
		return h, loginCmd(row.loginProfile(), "")
	case key.Matches(msg, km.Login):
		return h, loginCmd(row.loginProfile(), "")
	case key.Matches(msg, km.Signup):
		return h, NavigateCmd(NavigateMsg{To: pageSignup, Profile: row.signupProfile()})
	case key.Matches(msg, km.Use):
		if row.status == nil {
			h.setNote("That server has no profile yet: sign up (s) or log in (l) first.", "")
			return h, nil
		}
		name := row.status.Profile.Name
		return h, h.c.flowCmd(func(ctx context.Context) tea.Msg {
			err := h.c.Env.UseProfile(ctx, name)
			return ProfileChangedMsg{Note: "Profile " + name + " is now the current one.", Err: err}
		})
	case key.Matches(msg, km.Remove):
		if row.status == nil {
			h.servers = removeServer(h.servers, row.server)
			h.rows = append(h.rows[:h.cursor], h.rows[h.cursor+1:]...)
			h.cursor = min(h.cursor, max(len(h.rows)-1, 0))
			return h, nil
		}
		h.mode = homeConfirmRemove
		h.setNote("", "")
	}
	return h, nil
}

func removeServer(rows []homeRow, url string) []homeRow {
	out := rows[:0]
	for _, r := range rows {
		if r.server != url {
			out = append(out, r)
		}
	}
	return out
}

// loginProfile is who a login from this row logs in as.
func (r homeRow) loginProfile() vault.Profile {
	if r.status != nil {
		return r.status.Profile
	}
	return vault.Profile{Server: r.server, Kind: vault.KindAccount}
}

// loginCmd opens the login that fits p: the OAuth screen for a profile an
// OAuth login made, else the password login.
func loginCmd(p vault.Profile, note string) tea.Cmd {
	if p.Kind == vault.KindOIDC {
		return NavigateCmd(NavigateMsg{To: pageOAuth, Profile: p, Note: note})
	}
	return NavigateCmd(NavigateMsg{To: pageLogin, Profile: p, Note: note})
}

// signupProfile is where a signup from this row lands: a profile with no
// user yet (like latch demo's) is filled in, any other is left alone.
func (r homeRow) signupProfile() vault.Profile {
	if r.status != nil && r.status.Profile.Username == "" {
		return r.status.Profile
	}
	return vault.Profile{Server: r.server, Kind: vault.KindAccount}
}

func (h *home) updateAdding(msg tea.KeyPressMsg) (Component, tea.Cmd) {
	km := h.c.KeyMap
	switch {
	case key.Matches(msg, km.Back):
		h.mode, h.addErr = homeBrowse, nil
		h.input.Blur()
		return h, nil
	case key.Matches(msg, km.Submit):
		url := strings.TrimRight(strings.TrimSpace(h.input.Value()), "/")
		if url == "" {
			h.addErr = fmt.Errorf("type the server's URL, like https://auth.example.com")
			return h, nil
		}
		if h.work.active() {
			return h, nil
		}
		h.addErr = nil
		return h, h.work.start("checking…", h.c.flowCmd(func(ctx context.Context) tea.Msg {
			cfg, err := h.c.Env.ServerInfo(ctx, url)
			return ServerAddedMsg{URL: url, Policy: cfg, Err: err}
		}))
	}
	var cmd tea.Cmd
	h.input, cmd = h.input.Update(msg)
	return h, cmd
}

func (h *home) updateConfirm(msg tea.KeyPressMsg) (Component, tea.Cmd) {
	km := h.c.KeyMap
	row, ok := h.selected()
	switch {
	case !ok || key.Matches(msg, km.No):
		h.mode = homeBrowse
	case key.Matches(msg, km.Yes):
		h.mode = homeBrowse
		name := row.status.Profile.Name
		force := row.status.State != flows.StateLoggedOut
		return h, h.c.flowCmd(func(ctx context.Context) tea.Msg {
			err := h.c.Env.RemoveProfile(ctx, name, force)
			return ProfileChangedMsg{Note: "Removed profile " + name + ".", Err: err}
		})
	}
	return h, nil
}

func (h *home) View() string {
	st := h.c.Styles
	var b strings.Builder
	vaultLine := "Vault  " + h.c.Env.Vault.Backend
	if !h.c.Compact() {
		vaultLine += ": " + h.c.Env.Vault.Reason
	}
	b.WriteString(st.Subtle.Width(h.width).Render(vaultLine) + "\n\n")
	switch {
	case h.err != nil:
		b.WriteString(st.Error.Width(h.width).Render(explain(h.err)) + "\n\n")
	case !h.loaded:
		b.WriteString(st.Subtle.Render("Reading profiles…") + "\n")
	case len(h.rows) == 0:
		b.WriteString("No profiles yet.\n")
		b.WriteString(st.Subtle.Width(h.width).Render("Press a to add a server by its URL, then s to sign up or l to log in.") + "\n")
		b.WriteString(st.Subtle.Width(h.width).Render("Or press o to log in with OAuth, at a latch server or any OpenID provider.") + "\n")
	default:
		for i, r := range h.rows {
			b.WriteString(h.rowView(i, r) + "\n")
		}
	}
	b.WriteString("\n")
	if r, ok := h.selected(); ok && h.mode == homeBrowse {
		b.WriteString(st.Subtle.Width(h.width).Render(h.details(r)) + "\n")
	}
	switch h.mode {
	case homeAdding:
		b.WriteString(st.Heading.Render("Add a server") + st.Subtle.Render("  (latch reads its /auth/config)") + "\n")
		line := h.input.View()
		if h.work.active() {
			line += " " + h.work.View()
		}
		b.WriteString(line + "\n")
		if h.addErr != nil {
			b.WriteString(st.Error.Width(h.width).Render(explain(h.addErr)) + "\n")
		}
	case homeConfirmRemove:
		b.WriteString(st.Warn.Width(h.width).Render(h.confirmText()) + "\n")
	}
	if h.note != "" {
		b.WriteString("\n" + st.Note.Width(h.width).Render(h.note) + "\n")
	}
	return b.String()
}

func (h *home) confirmText() string {
	r, _ := h.selected()
	name := r.status.Profile.Name
	if r.status.State == flows.StateLoggedOut {
		return fmt.Sprintf("Remove profile %s? y yes · n no", name)
	}
	return fmt.Sprintf("Remove profile %s? It holds a session: removing forgets it here but does not end it on the server (log out first to end it). y yes · n no", name)
}

func (h *home) rowView(i int, r homeRow) string {
	st := h.c.Styles
	pointer, current := "  ", "  "
	if i == h.cursor {
		pointer = st.Cursor.Render("› ")
	}
	var name, state, user string
	stateStyle := st.LoggedOut
	if r.status == nil {
		name, state = "+ server", "no account"
	} else {
		p := r.status.Profile
		name, user = p.Name, p.Username
		if r.status.Current {
			current = "● "
		}
		state, stateStyle = stateWords(st, r.status.State)
	}
	nameStyle := st.Value
	if i == h.cursor {
		nameStyle = st.Selected
	}
	cols := pointer + current + nameStyle.Render(pad(truncate(name, 14), 14)) + " " + stateStyle.Render(pad(state, 11))
	if !h.c.Compact() {
		cols += " " + st.Value.Render(pad(truncate(user, 12), 12)) + " " + st.Subtle.Render(truncate(r.server, max(h.width-47, 8)))
	}
	return cols
}

func stateWords(st *Styles, state string) (string, lipgloss.Style) {
	switch state {
	case flows.StateLoggedIn:
		return "logged in", st.LoggedIn
	case flows.StateExpired:
		return "expired", st.Expired
	case flows.StateRefused:
		return "refused", st.Expired
	case flows.StateLoggedOut:
		return "logged out", st.LoggedOut
	}
	return "unknown", st.Error
}

// details describes the selected row under the list.
func (h *home) details(r homeRow) string {
	now := h.c.Now()
	if r.status == nil {
		if r.policy == nil {
			return r.server
		}
		return r.server + ": " + policySummary(r.policy)
	}
	s := r.status
	where := s.Profile.Server
	if s.Profile.Username != "" {
		where = s.Profile.Username + " on " + where
	}
	switch {
	case s.Error != nil:
		return where + ". " + explain(s.Error)
	case s.State == flows.StateLoggedIn && s.Tokens != nil:
		return sentence(where, "logged in "+relative(now, s.Tokens.LoggedInAt),
			fmt.Sprintf("%d rotations", s.Tokens.Rotations)) + ". Enter opens the dashboard."
	case s.State == flows.StateExpired:
		return where + ". The session expired: log in again (l)."
	case s.State == flows.StateRefused:
		return where + ". The provider refused the session: log in again (l)."
	case s.Profile.Username == "":
		return where + ". No account yet: sign up (s) or log in (l)."
	}
	return where + ". Logged out: log in (l)."
}

func (h *home) ShortHelp() []key.Binding {
	km := h.c.KeyMap
	switch h.mode {
	case homeAdding:
		return []key.Binding{withHelp(km.Submit, "add"), withHelp(km.Back, "cancel")}
	case homeConfirmRemove:
		return []key.Binding{km.Yes, km.No}
	}
	return []key.Binding{km.Open, km.Login, km.Signup, km.AddServer, km.OAuth}
}

func (h *home) FullHelp() [][]key.Binding {
	km := h.c.KeyMap
	if h.mode != homeBrowse {
		return [][]key.Binding{h.ShortHelp()}
	}
	return [][]key.Binding{{km.Up, km.Down, km.Open}, {km.Login, km.OAuth, km.Signup}, {km.AddServer, km.Use, km.Remove}}
}
