package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/vault"
)

// signup creates an account: username, email, password and its
// confirmation, checked live against the server's policy, with the server's
// own field errors shown on their fields.
type signup struct {
	c             *Common
	width, height int
	profile       vault.Profile

	form       form
	policy     *client.AuthConfig
	policyErr  error
	serverErrs map[string]string // cleared field by field as the user edits
	general    error
	cursorAt   int // the focused field's line in the last View

	work work
}

// PolicyMsg carries a server's published policy.
type PolicyMsg struct {
	Policy *client.AuthConfig
	Err    error
}

// SignupDoneMsg is the outcome of a signup.
type SignupDoneMsg struct {
	Result *flows.LoginResult
	Err    error
}

var signupLabels = map[string]string{"username": "Username", "email": "Email", "password": "Password", "confirm": "Confirm"}

func newSignup(c *Common, p vault.Profile) *signup {
	return &signup{c: c, profile: p,
		form: newForm(c,
			field{name: "username", placeholder: "alice"},
			field{name: "email", placeholder: "alice@example.com"},
			field{name: "password", secret: true},
			field{name: "confirm", secret: true}),
		serverErrs: map[string]string{},
		work:       newWork(c),
	}
}

func (s *signup) Init() tea.Cmd {
	server := s.profile.Server
	s.c.trace.begin("signup at " + server)
	return tea.Batch(s.form.focusOn(0), s.c.flowCmd(func(ctx context.Context) tea.Msg {
		p, err := s.c.Env.ServerInfo(ctx, server)
		return PolicyMsg{Policy: p, Err: err}
	}))
}

func (s *signup) SetSize(w, h int) {
	s.width, s.height = w, h
	s.form.setWidth(w - 14)
}

func (s *signup) Title() string { return "Sign up" }

func (s *signup) Typing() bool { return true }

func (s *signup) fields() flows.SignupFields {
	return flows.SignupFields{Username: s.form.value("username"), Email: s.form.value("email"),
		Password: s.form.value("password"), Confirm: s.form.value("confirm")}
}

// problems are the local findings: the server's policy when it is known,
// else only what needs no policy.
func (s *signup) problems() map[string]string {
	if s.policy != nil {
		return flows.CheckSignup(s.policy, s.fields())
	}
	f, errs := s.fields(), map[string]string{}
	for name, v := range map[string]string{"username": f.Username, "email": f.Email, "password": f.Password, "confirm": f.Confirm} {
		if v == "" {
			errs[name] = "is required"
		}
	}
	if f.Confirm != "" && f.Confirm != f.Password {
		errs["confirm"] = "does not match the password"
	}
	return errs
}

// fieldError is what to show under a field: the server's word first, then a
// local finding once the field has a value or has been left.
func (s *signup) fieldError(i int, probs map[string]string) string {
	name := s.form.names[i]
	if e := s.serverErrs[name]; e != "" {
		return e
	}
	if s.form.touched[i] || s.form.inputs[i].Value() != "" {
		return probs[name]
	}
	return ""
}

func (s *signup) Update(msg tea.Msg) (Component, tea.Cmd) {
	if cmd, ok := s.work.tick(msg); ok {
		return s, cmd
	}
	switch msg := msg.(type) {
	case PolicyMsg:
		s.policy, s.policyErr = msg.Policy, msg.Err
		return s, nil
	case SignupDoneMsg:
		s.work.done()
		return s, s.done(msg)
	case tea.KeyPressMsg:
		km := s.c.KeyMap
		switch {
		case s.work.active():
			return s, nil
		case key.Matches(msg, km.Back):
			return s, BackCmd
		case key.Matches(msg, km.Submit):
			return s, s.submit()
		}
	}
	cmd, changed := s.form.update(msg)
	if changed != "" {
		delete(s.serverErrs, changed)
		if changed == "password" {
			delete(s.serverErrs, "confirm")
		}
	}
	return s, cmd
}

func (s *signup) submit() tea.Cmd {
	s.form.touchAll()
	s.general = nil
	probs := s.problems()
	for i, name := range s.form.names {
		if probs[name] != "" || s.serverErrs[name] != "" {
			return s.form.focusOn(i)
		}
	}
	f, p := s.fields(), s.profile
	s.c.trace.begin("signup at " + p.Server)
	return s.work.start("Creating the account and logging in…", s.c.flowCmd(func(ctx context.Context) tea.Msg {
		res, err := s.c.Env.Signup(ctx, flows.SignupRequest{
			Profile: p.Name, Server: p.Server, Username: f.Username, Email: f.Email, Password: f.Password})
		return SignupDoneMsg{Result: res, Err: err}
	}))
}

func (s *signup) done(msg SignupDoneMsg) tea.Cmd {
	var apiErr *client.APIError
	switch {
	case errors.As(msg.Err, &apiErr) && len(apiErr.Fields) > 0:
		var first tea.Cmd
		for name, m := range apiErr.Fields {
			if _, ok := signupLabels[name]; ok {
				s.serverErrs[name] = m
			} else {
				s.general = apiErr
			}
		}
		for i, name := range s.form.names {
			if s.serverErrs[name] != "" {
				first = s.form.focusOn(i)
				break
			}
		}
		return first
	case msg.Err != nil:
		s.general = msg.Err
		return nil
	case msg.Result.MFA != nil:
		return NavigateCmd(NavigateMsg{To: pageMFA, Profile: msg.Result.Profile, Pending: msg.Result})
	}
	p := msg.Result.Profile
	return NavigateCmd(NavigateMsg{To: pageDashboard, Profile: p,
		Note: fmt.Sprintf("Welcome, %s: your account is ready and you are logged in.", p.Username)})
}

func (s *signup) View() string {
	st := s.c.Styles
	var b strings.Builder
	b.WriteString(st.Heading.Render("Create an account") + st.Subtle.Render(" on "+s.profile.Server) + "\n")
	switch {
	case s.policy != nil:
		b.WriteString(st.Subtle.Width(s.width).Render(policySummary(s.policy)) + "\n")
	case s.policyErr != nil:
		b.WriteString(st.Warn.Width(s.width).Render("Could not read the server's policy ("+explain(s.policyErr)+") The server will check the form.") + "\n")
	default:
		b.WriteString(st.Subtle.Render("Reading the server's policy…") + "\n")
	}
	b.WriteString("\n")
	probs := s.problems()
	for i, name := range s.form.names {
		under := ""
		if e := s.fieldError(i, probs); e != "" {
			under = st.FieldError.Render("✗ " + e)
		} else if s.form.inputs[i].Value() != "" {
			under = st.FieldOK.Render("✓")
		}
		if name == "password" {
			under = s.meter() + "\n            " + under
		}
		if i == s.form.focus {
			s.cursorAt = strings.Count(b.String(), "\n")
		}
		b.WriteString(s.form.row(i, signupLabels[name], under) + "\n")
	}
	b.WriteString("\n")
	switch {
	case s.work.active():
		b.WriteString(s.work.View() + "\n")
	case s.general != nil:
		b.WriteString(st.Error.Width(s.width).Render(explain(s.general)) + "\n")
	default:
		b.WriteString(st.Subtle.Render("enter creates the account") + "\n")
	}
	return b.String()
}

var strengthWords = [...]string{"very weak", "weak", "fair", "strong", "very strong"}

// meter draws the password's zxcvbn score as the user types.
func (s *signup) meter() string {
	st := s.c.Styles
	f := s.fields()
	if f.Password == "" {
		return st.Subtle.Render("strength: type a password")
	}
	score := min(max(flows.PasswordScore(f.Password, f.Username, f.Email), 0), 4)
	const cells = 16
	filled := (score + 1) * cells / 5
	bar := st.Meter[score].Render(strings.Repeat("█", filled)) + st.MeterEmpty.Render(strings.Repeat("░", cells-filled))
	text := fmt.Sprintf(" %s · %d/4", strengthWords[score], score)
	if s.policy != nil && !s.c.Compact() {
		text += fmt.Sprintf(" (needs %d)", s.policy.Password.MinScore)
	}
	return bar + st.Meter[score].Render(text)
}

func (s *signup) cursorLine() int { return s.cursorAt }

func (s *signup) ShortHelp() []key.Binding { return s.form.help() }

func (s *signup) FullHelp() [][]key.Binding {
	km := s.c.KeyMap
	return [][]key.Binding{{km.Submit, km.Back}, {km.Next, km.Prev}}
}
