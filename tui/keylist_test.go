package tui

import (
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"

	"github.com/latch-dev/latch/vault"
)

// The help line always ends with the key that opens the key list, at any
// width, and the key list shows every key of the screen and every global
// one at 80×24 and at 60×20.
func TestKeyListShowsEveryKey(t *testing.T) {
	h := newHarness(t)
	p := h.signup("demo")
	screens := []struct {
		name string
		open func(d *driver)
	}{
		{"home", func(*driver) {}},
		{"dashboard", func(d *driver) { d.keys("enter") }},
		{"inspector", func(d *driver) { d.keys("enter", "t") }},
		{"sessions", func(d *driver) { d.keys("enter", "s") }},
		{"signup", func(d *driver) {
			d.send(NavigateMsg{To: pageSignup, Profile: vault.Profile{Name: "other", Server: testURL}})
		}},
		{"login", func(d *driver) { d.send(NavigateMsg{To: pageLogin, Profile: p}) }},
		{"oauth", func(d *driver) { d.keys("o") }},
	}
	for _, size := range [][2]int{{80, 24}, {60, 20}, {40, 12}} {
		for _, sc := range screens {
			d := newDriver(t, h.app("demo", demoBanner), size[0], size[1])
			sc.open(d)
			name := sc.name
			km, s := d.app().common.KeyMap, d.top()
			hk := helpKey(s, km, false)
			lines := strings.Split(d.screen(), "\n")
			last := lines[len(lines)-1]
			if want := hk.Help().Key + " " + hk.Help().Desc; !strings.Contains(last, want) {
				t.Errorf("%dx%d %s: the help line lacks %q: %q", size[0], size[1], name, want, last)
			}
			if size[0] < 60 {
				continue
			}
			d.keys(hk.Help().Key)
			screen := d.screen()
			if !strings.Contains(screen, "fewer keys") {
				t.Errorf("%dx%d %s: %s did not open the key list:\n%s", size[0], size[1], name, hk.Help().Key, screen)
				continue
			}
			for _, g := range keyGroups(s, km) {
				for _, b := range g {
					if !strings.Contains(screen, b.Help().Key) || !strings.Contains(screen, b.Help().Desc) {
						t.Errorf("%dx%d %s: the key list lacks %q %q:\n%s", size[0], size[1], name, b.Help().Key, b.Help().Desc, screen)
					}
				}
			}
			checkFits(t, d, size[0], size[1])
		}
	}
}

// keyList puts as many columns side by side as fit, each grid column as
// wide as its widest cell, and the rest in rows under them.
func TestKeyListWrapsColumns(t *testing.T) {
	h := newHarness(t)
	h.signup("demo")
	d := newDriver(t, h.app("demo", ""), 80, 24)
	d.keys("enter")
	m := d.app().help
	groups := keyGroups(d.top(), d.app().common.KeyMap)
	for _, w := range []int{78, 58, 38, 20} {
		list := ansi.Strip(keyList(m, groups, w))
		for i, l := range strings.Split(list, "\n") {
			if ansi.StringWidth(strings.TrimRight(l, " ")) > max(w, 30) {
				t.Errorf("width %d: line %d is wider: %q", w, i, l)
			}
		}
		if !strings.Contains(list, "ctrl+c quit") || !strings.Contains(list, "call the protected route") {
			t.Errorf("width %d: keys are missing:\n%s", w, list)
		}
	}
}
