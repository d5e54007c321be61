// Package textart draws what latch shows in a terminal for a person to read
// or scan: QR codes in half blocks and device codes in large letters. Both
// the CLI and the interface use it, so a code looks the same in each.
//
// It only builds strings; it never writes to a terminal or reads input.
package textart

import (
	"strings"

	"github.com/mdp/qrterminal/v3"
)

// QR renders s as a QR code in half blocks, two modules a cell, with a quiet
// zone of one module. The result has no trailing newline.
func QR(s string) string {
	var b strings.Builder
	qrterminal.GenerateWithConfig(s, qrterminal.Config{
		Level: qrterminal.L, Writer: &b, HalfBlocks: true, QuietZone: 1,
		BlackChar: qrterminal.BLACK_BLACK, WhiteBlackChar: qrterminal.WHITE_BLACK,
		WhiteChar: qrterminal.WHITE_WHITE, BlackWhiteChar: qrterminal.BLACK_WHITE,
	})
	return strings.TrimRight(b.String(), "\n")
}

// glyphs is a 5×5 font for what device user codes are made of (RFC 8628
// §6.1 recommends base-20 letters or digits, with a dash for readability).
var glyphs = map[rune][5]string{
	'A': {" ### ", "#   #", "#####", "#   #", "#   #"},
	'B': {"#### ", "#   #", "#### ", "#   #", "#### "},
	'C': {" ####", "#    ", "#    ", "#    ", " ####"},
	'D': {"#### ", "#   #", "#   #", "#   #", "#### "},
	'E': {"#####", "#    ", "#### ", "#    ", "#####"},
	'F': {"#####", "#    ", "#### ", "#    ", "#    "},
	'G': {" ####", "#    ", "#  ##", "#   #", " ####"},
	'H': {"#   #", "#   #", "#####", "#   #", "#   #"},
	'I': {"#####", "  #  ", "  #  ", "  #  ", "#####"},
	'J': {"#####", "   # ", "   # ", "#  # ", " ##  "},
	'K': {"#   #", "#  # ", "###  ", "#  # ", "#   #"},
	'L': {"#    ", "#    ", "#    ", "#    ", "#####"},
	'M': {"#   #", "## ##", "# # #", "#   #", "#   #"},
	'N': {"#   #", "##  #", "# # #", "#  ##", "#   #"},
	'O': {" ### ", "#   #", "#   #", "#   #", " ### "},
	'P': {"#### ", "#   #", "#### ", "#    ", "#    "},
	'Q': {" ### ", "#   #", "# # #", "#  # ", " ## #"},
	'R': {"#### ", "#   #", "#### ", "#  # ", "#   #"},
	'S': {" ####", "#    ", " ### ", "    #", "#### "},
	'T': {"#####", "  #  ", "  #  ", "  #  ", "  #  "},
	'U': {"#   #", "#   #", "#   #", "#   #", " ### "},
	'V': {"#   #", "#   #", "#   #", " # # ", "  #  "},
	'W': {"#   #", "#   #", "# # #", "## ##", "#   #"},
	'X': {"#   #", " # # ", "  #  ", " # # ", "#   #"},
	'Y': {"#   #", " # # ", "  #  ", "  #  ", "  #  "},
	'Z': {"#####", "   # ", "  #  ", " #   ", "#####"},
	'0': {" ### ", "#  ##", "# # #", "##  #", " ### "},
	'1': {"  #  ", " ##  ", "  #  ", "  #  ", " ### "},
	'2': {" ### ", "#   #", "  ## ", " #   ", "#####"},
	'3': {"#### ", "    #", " ### ", "    #", "#### "},
	'4': {"#   #", "#   #", "#####", "    #", "    #"},
	'5': {"#####", "#    ", "#### ", "    #", "#### "},
	'6': {" ### ", "#    ", "#### ", "#   #", " ### "},
	'7': {"#####", "    #", "   # ", "  #  ", "  #  "},
	'8': {" ### ", "#   #", " ### ", "#   #", " ### "},
	'9': {" ### ", "#   #", " ####", "    #", " ### "},
	'-': {"     ", "     ", " ### ", "     ", "     "},
	' ': {"     ", "     ", "     ", "     ", "     "},
}

// BigWidth is how many columns Big needs for s.
func BigWidth(s string) int {
	n := len([]rune(s))
	if n == 0 {
		return 0
	}
	return n*6 - 1
}

// Big draws s in letters five rows tall, or returns "" when s holds a
// character the font lacks (the caller then shows s as plain text). Lower
// case is drawn as upper case: user codes are case-insensitive (RFC 8628
// §6.1).
func Big(s string) string {
	s = strings.ToUpper(s)
	if s == "" {
		return ""
	}
	var rows [5]strings.Builder
	for i, r := range s {
		g, ok := glyphs[r]
		if !ok {
			return ""
		}
		for y := range rows {
			if i > 0 {
				rows[y].WriteByte(' ')
			}
			rows[y].WriteString(strings.ReplaceAll(g[y], "#", "█"))
		}
	}
	out := make([]string, len(rows))
	for y := range rows {
		out[y] = strings.TrimRight(rows[y].String(), " ")
	}
	return strings.Join(out, "\n")
}
