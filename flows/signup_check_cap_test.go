package flows

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ccojocar/zxcvbn-go/match"
	"github.com/ccojocar/zxcvbn-go/scoring"
)

// TestPasswordScoreCapsZxcvbnInput: a 10 000-rune password reaches zxcvbn as
// its first 128 runes, like the server's limit, so the meter stays fast.
func TestPasswordScoreCapsZxcvbnInput(t *testing.T) {
	orig := passwordStrength
	var seen []string
	passwordStrength = func(pw string, inputs []string, f ...func(match.Matcher) bool) scoring.MinEntropyMatch {
		seen = append(seen, pw)
		return orig(pw, inputs, f...)
	}
	t.Cleanup(func() { passwordStrength = orig })

	for _, pw := range []string{strings.Repeat("é", 10000), strings.Repeat("Tr0ub4dor&3", 1000), "short one"} {
		start := time.Now()
		score := PasswordScore(pw, "alice", "alice@example.com")
		t.Logf("%d runes: score %d in %s", utf8.RuneCountInString(pw), score, time.Since(start))
		got := seen[len(seen)-1]
		if n := utf8.RuneCountInString(got); n > maxScoredRunes {
			t.Errorf("zxcvbn got %d runes, want at most %d", n, maxScoredRunes)
		}
		if !strings.HasPrefix(pw, got) {
			t.Errorf("zxcvbn got %.20q…, not a prefix of the password", got)
		}
	}
}
