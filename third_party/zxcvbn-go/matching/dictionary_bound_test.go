package matching

import (
	"reflect"
	"strings"
	"testing"
)

// TestDictionaryMatchBoundSameResult: bounding the substrings by the longest
// word (latch patch) finds exactly the matches the unbounded search finds.
func TestDictionaryMatchBoundSameResult(t *testing.T) {
	dict := buildRankedDict([]string{"pass", "password", "word", "a", "ÄÖü", "tttt"})
	for _, pw := range []string{"", "password", "PaSsWoRd1word", "xxpasswordxx", "äöüÄÖÜ", strings.Repeat("T", 40) + "002000", "\xffpass\xfe"} {
		got := dictionaryMatch(pw, "d", dict, longestKey(dict))
		want := dictionaryMatch(pw, "d", dict, len([]rune(pw)))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q: bounded %v, unbounded %v", pw, got, want)
		}
	}
}
