package textart

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestBigDrawsEveryCharacterOfACode(t *testing.T) {
	got := Big("wxyz-0123")
	rows := strings.Split(got, "\n")
	if len(rows) != 5 {
		t.Fatalf("Big has %d rows, want 5:\n%s", len(rows), got)
	}
	widest := 0
	for _, r := range rows {
		widest = max(widest, utf8.RuneCountInString(r))
	}
	if widest != BigWidth("WXYZ-0123") {
		t.Errorf("widest row is %d columns, BigWidth says %d", widest, BigWidth("WXYZ-0123"))
	}
	// The dash is the only glyph whose top row is empty: columns 24–28.
	top := []rune(rows[0])
	for c := 24; c < 29 && c < len(top); c++ {
		if top[c] != ' ' {
			t.Errorf("top row column %d under the dash is %q, want blank", c, top[c])
		}
	}
	if strings.ContainsRune(got, '#') {
		t.Error("the font's # placeholders leaked into the output")
	}
}

func TestBigGlyphsAreDistinctAndWellFormed(t *testing.T) {
	seen := map[[5]string]rune{}
	for r, g := range glyphs {
		for y, row := range g {
			if len(row) != 5 {
				t.Errorf("glyph %q row %d is %d wide, want 5", r, y, len(row))
			}
		}
		if other, dup := seen[g]; dup {
			t.Errorf("glyphs %q and %q are drawn the same", r, other)
		}
		seen[g] = r
	}
}

func TestBigRefusesCharactersItCannotDraw(t *testing.T) {
	for _, s := range []string{"ABC_D", "ÄBCD", "12:34"} {
		if got := Big(s); got != "" {
			t.Errorf("Big(%q) drew something it has no glyph for:\n%s", s, got)
		}
	}
	if Big("") != "" || BigWidth("") != 0 {
		t.Error("an empty code should draw nothing")
	}
}

func TestQRIsSquareHalfBlocks(t *testing.T) {
	q := QR("http://127.0.0.1:8080/device?user_code=WDJB-MJHT")
	rows := strings.Split(q, "\n")
	w := utf8.RuneCountInString(rows[0])
	for i, r := range rows {
		if n := utf8.RuneCountInString(r); n != w {
			t.Fatalf("row %d is %d wide, row 0 is %d", i, n, w)
		}
	}
	// Two modules a cell: about half as many rows as columns.
	if h := len(rows); h < w/2-1 || h > w/2+1 {
		t.Errorf("QR is %d×%d cells; half blocks should make it about %d rows", w, h, w/2)
	}
	if strings.HasSuffix(q, "\n") {
		t.Error("QR ends with a newline")
	}
}
