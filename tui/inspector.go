package tui

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/vault"
)

// inspector shows the profile's access token decoded: header and claims,
// times as local time and relative to now. The signature stays hidden
// unless the user asks for it.
type inspector struct {
	c             *Common
	width, height int
	profile       vault.Profile

	view    *flows.TokenView
	err     error
	showSig bool
	showID  bool // the ID token rather than the access token
}

// TokenViewMsg carries the decoded access token.
type TokenViewMsg struct {
	View *flows.TokenView
	Err  error
}

func newInspector(c *Common, p vault.Profile) *inspector {
	return &inspector{c: c, profile: p}
}

func (in *inspector) Init() tea.Cmd {
	name := in.profile.Name
	return in.c.flowCmd(func(ctx context.Context) tea.Msg {
		v, err := in.c.Env.Inspect(ctx, name)
		return TokenViewMsg{View: v, Err: err}
	})
}

func (in *inspector) SetSize(w, h int) { in.width, in.height = w, h }

func (in *inspector) Title() string { return "Token · " + in.profile.Name }

func (in *inspector) Typing() bool { return false }

func (in *inspector) Update(msg tea.Msg) (Component, tea.Cmd) {
	km := in.c.KeyMap
	switch msg := msg.(type) {
	case TokenViewMsg:
		in.view, in.err = msg.View, msg.Err
	case tea.KeyPressMsg:
		switch {
		case key.Matches(msg, km.Back):
			return in, BackCmd
		case key.Matches(msg, km.ShowSignature):
			in.showSig = !in.showSig
		case key.Matches(msg, km.IDToken) && in.view != nil && in.view.ID != nil:
			in.showID = !in.showID
		case key.Matches(msg, km.Reload):
			return in, in.Init()
		}
	}
	return in, nil
}

func (in *inspector) View() string {
	st := in.c.Styles
	var b strings.Builder
	v, title := in.view, "Access token"
	if in.showID && v != nil && v.ID != nil {
		v, title = v.ID, "ID token"
	}
	b.WriteString(st.Heading.Render(title) + st.Subtle.Render(" of "+in.profile.Name+", decoded (the server verifies it; this only shows it)") + "\n")
	switch {
	case in.view != nil && in.view.ID != nil && in.showID:
		b.WriteString(st.Subtle.Render("i shows the access token") + "\n")
	case in.view != nil && in.view.ID != nil:
		b.WriteString(st.Subtle.Render("i shows the ID token: who the provider says you are") + "\n")
	}
	b.WriteString("\n")
	switch {
	case in.err != nil:
		b.WriteString(st.Error.Width(in.width).Render(explain(in.err)) + "\n")
		return b.String()
	case in.view == nil:
		b.WriteString(st.Subtle.Render("Reading the token…") + "\n")
		return b.String()
	case v.Opaque:
		b.WriteString(st.Value.Width(in.width).Render("The provider issues opaque access tokens (not JWTs): there is nothing to decode.") + "\n")
		return b.String()
	}
	section := func(title string, m map[string]any) {
		b.WriteString(st.Label.Render(title) + "\n")
		kw := 12 // wider for an ID token's preferred_username
		for k := range m {
			kw = max(kw, min(len(k)+2, 22))
		}
		for _, k := range sortedKeys(m) {
			v := in.claim(k, m[k])
			line := st.Key.Render(pad(truncate("  "+k, kw), kw)) + " " + st.Value.Render(truncate(v, max(in.width-kw-1, 8)))
			b.WriteString(line + "\n")
		}
	}
	section("Header", v.Header)
	section("Claims", v.Claims)
	b.WriteString(st.Label.Render("Signature") + "\n")
	if in.showSig {
		// Cut at a fixed width: base64url's '-' is no place to wrap a word.
		sig, w := v.Signature, max(in.width-2, 8)
		for len(sig) > 0 {
			n := min(w, len(sig))
			b.WriteString("  " + st.Value.Render(sig[:n]) + "\n")
			sig = sig[n:]
		}
	} else {
		b.WriteString(st.Subtle.Render("  hidden: press s to show it") + "\n")
	}
	return b.String()
}

// claim renders a value: times (the claims latch jwt decode reads as
// times) as local time, how far from now and, like latch jwt decode, whether
// that makes the token expired or not valid yet; the rest as compact JSON.
func (in *inspector) claim(name string, v any) string {
	if t, ok := flows.ClaimTime(name, v); ok {
		now := in.c.Now()
		when := relative(now, t)
		if note := flows.ClaimTimeNote(name, t, now); note != "" {
			when += ": " + note
		}
		return t.Local().Format("2006-01-02 15:04:05 MST") + "  (" + when + ")"
	}
	if s, ok := v.(string); ok {
		return s
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(raw)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (in *inspector) ShortHelp() []key.Binding {
	km := in.c.KeyMap
	sig := km.ShowSignature
	if in.showSig {
		sig = withHelp(sig, "hide signature")
	}
	keys := []key.Binding{sig}
	if in.view != nil && in.view.ID != nil {
		id := km.IDToken
		if in.showID {
			id = withHelp(id, "access token")
		}
		keys = append(keys, id)
	}
	return append(keys, km.Reload, km.Back)
}

func (in *inspector) FullHelp() [][]key.Binding { return [][]key.Binding{in.ShortHelp()} }
