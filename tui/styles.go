package tui

import (
	"image/color"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/textinput"
	"charm.land/lipgloss/v2"
)

// Styles is every style the interface draws with; View code never picks a
// colour itself. Meaning never rests on colour alone: states are words and
// marks too, so the interface reads the same under NO_COLOR.
type Styles struct {
	App       lipgloss.Style
	Banner    lipgloss.Style
	Header    lipgloss.Style
	AppName   lipgloss.Style
	Crumb     lipgloss.Style
	HeaderTip lipgloss.Style

	Heading  lipgloss.Style
	Label    lipgloss.Style
	Value    lipgloss.Style
	Subtle   lipgloss.Style
	Selected lipgloss.Style
	Cursor   lipgloss.Style
	Key      lipgloss.Style

	OK    lipgloss.Style
	Warn  lipgloss.Style
	Error lipgloss.Style
	Note  lipgloss.Style

	LoggedIn  lipgloss.Style
	Expired   lipgloss.Style
	LoggedOut lipgloss.Style

	FieldLabel      lipgloss.Style
	FieldLabelFocus lipgloss.Style
	FieldError      lipgloss.Style
	FieldOK         lipgloss.Style
	Meter           [5]lipgloss.Style // by zxcvbn score
	MeterEmpty      lipgloss.Style

	Spinner lipgloss.Style
	Input   textinput.Styles
	Help    help.Styles
}

// NewStyles builds the styles; noColor keeps only bold, faint and reverse.
func NewStyles(noColor bool) *Styles {
	c := func(hex string) color.Color {
		if noColor {
			return lipgloss.NoColor{}
		}
		return lipgloss.Color(hex)
	}
	var (
		accent = c("#8B7CF6")
		green  = c("#3FB97F")
		yellow = c("#D7A93B")
		red    = c("#E5566B")
		subtle = c("#8A8A8A")
		text   = c("#D0D0D0")
		ink    = c("#1C1C1C")
	)
	s := &Styles{}
	s.App = lipgloss.NewStyle().Padding(0, 1)
	s.Banner = lipgloss.NewStyle().Bold(true).Foreground(ink).Background(yellow).Padding(0, 1)
	s.Header = lipgloss.NewStyle()
	s.AppName = lipgloss.NewStyle().Bold(true).Foreground(ink).Background(accent).Padding(0, 1)
	s.Crumb = lipgloss.NewStyle().Bold(true).Padding(0, 1)
	s.HeaderTip = lipgloss.NewStyle().Foreground(subtle)

	s.Heading = lipgloss.NewStyle().Bold(true).Foreground(accent)
	s.Label = lipgloss.NewStyle().Foreground(subtle)
	s.Value = lipgloss.NewStyle().Foreground(text)
	s.Subtle = lipgloss.NewStyle().Foreground(subtle)
	s.Selected = lipgloss.NewStyle().Bold(true).Foreground(accent)
	s.Cursor = lipgloss.NewStyle().Bold(true).Foreground(accent)
	s.Key = lipgloss.NewStyle().Bold(true)

	s.OK = lipgloss.NewStyle().Foreground(green)
	s.Warn = lipgloss.NewStyle().Foreground(yellow)
	s.Error = lipgloss.NewStyle().Foreground(red)
	s.Note = lipgloss.NewStyle().Foreground(green)

	s.LoggedIn = lipgloss.NewStyle().Foreground(green)
	s.Expired = lipgloss.NewStyle().Foreground(yellow)
	s.LoggedOut = lipgloss.NewStyle().Foreground(subtle)

	s.FieldLabel = lipgloss.NewStyle().Foreground(subtle)
	s.FieldLabelFocus = lipgloss.NewStyle().Bold(true).Foreground(accent)
	s.FieldError = lipgloss.NewStyle().Foreground(red)
	s.FieldOK = lipgloss.NewStyle().Foreground(green)
	for i, col := range []color.Color{red, red, yellow, green, green} {
		s.Meter[i] = lipgloss.NewStyle().Foreground(col)
	}
	s.MeterEmpty = lipgloss.NewStyle().Foreground(subtle).Faint(true)

	s.Spinner = lipgloss.NewStyle().Foreground(accent)

	s.Input = textinput.DefaultDarkStyles()
	s.Input.Focused.Prompt = lipgloss.NewStyle().Foreground(accent)
	s.Input.Focused.Text = lipgloss.NewStyle().Foreground(text)
	s.Input.Blurred.Prompt = lipgloss.NewStyle().Foreground(subtle)
	s.Input.Blurred.Text = lipgloss.NewStyle().Foreground(text)
	s.Input.Focused.Placeholder = lipgloss.NewStyle().Foreground(subtle).Faint(true)
	s.Input.Blurred.Placeholder = s.Input.Focused.Placeholder
	s.Input.Cursor.Color = accent
	s.Input.Cursor.Blink = false

	s.Help = help.DefaultDarkStyles()
	if noColor {
		s.Selected = lipgloss.NewStyle().Bold(true).Reverse(true)
		s.Banner = lipgloss.NewStyle().Bold(true).Reverse(true).Padding(0, 1)
		s.AppName = lipgloss.NewStyle().Bold(true).Reverse(true).Padding(0, 1)
		s.Help = help.Styles{}
		s.Input.Focused.Placeholder = lipgloss.NewStyle().Faint(true)
		s.Input.Blurred.Placeholder = s.Input.Focused.Placeholder
	}
	return s
}
