package tui

import (
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
)

// form is the fields of the signup and login screens: focus moves with tab
// and shift+tab, and a field counts as touched once the user has left it or
// tried to submit, so that "is required" waits until it means something.
type form struct {
	c       *Common
	names   []string
	inputs  []textinput.Model
	touched []bool
	focus   int
}

// field describes one input of a form.
type field struct {
	name, placeholder string
	secret            bool
}

func newForm(c *Common, fields ...field) form {
	f := form{c: c, touched: make([]bool, len(fields))}
	for _, fd := range fields {
		in := textinput.New()
		in.Prompt = ""
		in.Placeholder = fd.placeholder
		in.CharLimit = 256
		in.SetStyles(c.Styles.Input)
		if fd.secret {
			in.EchoMode = textinput.EchoPassword
			in.EchoCharacter = '•'
		}
		f.names = append(f.names, fd.name)
		f.inputs = append(f.inputs, in)
	}
	return f
}

func (f *form) setWidth(w int) {
	for i := range f.inputs {
		f.inputs[i].SetWidth(max(min(44, w), 8))
	}
}

// focusOn moves the keyboard to field i.
func (f *form) focusOn(i int) tea.Cmd {
	f.focus = (i + len(f.inputs)) % len(f.inputs)
	for j := range f.inputs {
		f.inputs[j].Blur()
	}
	return f.inputs[f.focus].Focus()
}

func (f *form) value(name string) string {
	for i, n := range f.names {
		if n == name {
			return f.inputs[i].Value()
		}
	}
	return ""
}

func (f *form) touchAll() {
	for i := range f.touched {
		f.touched[i] = true
	}
}

// update handles tab and shift+tab, and sends any other key to the focused
// field. changed names the field whose value the key changed.
func (f *form) update(msg tea.Msg) (cmd tea.Cmd, changed string) {
	km := f.c.KeyMap
	if k, ok := msg.(tea.KeyPressMsg); ok {
		switch {
		case key.Matches(k, km.Next):
			f.touched[f.focus] = true
			return f.focusOn(f.focus + 1), ""
		case key.Matches(k, km.Prev):
			f.touched[f.focus] = true
			return f.focusOn(f.focus - 1), ""
		}
	}
	before := f.inputs[f.focus].Value()
	f.inputs[f.focus], cmd = f.inputs[f.focus].Update(msg)
	if f.inputs[f.focus].Value() != before {
		changed = f.names[f.focus]
	}
	return cmd, changed
}

// row renders a labelled field with the line under it.
func (f *form) row(i int, label, under string) string {
	st := f.c.Styles
	ls := st.FieldLabel
	if i == f.focus {
		ls = st.FieldLabelFocus
	}
	indent := "            "
	return ls.Render(pad(label, 11)) + " " + f.inputs[i].View() + "\n" + indent + under
}

func (f *form) help() []key.Binding {
	km := f.c.KeyMap
	return []key.Binding{km.Submit, withHelp(km.Next, "next field"), km.Back}
}
