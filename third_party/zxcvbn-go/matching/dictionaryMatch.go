package matching

import (
	"strings"
	"unicode/utf8"

	"github.com/ccojocar/zxcvbn-go/entropy"
	"github.com/ccojocar/zxcvbn-go/match"
)

func buildDictMatcher(dictName string, rankedDict map[string]int) func(password string) []match.Match {
	maxLen := longestKey(rankedDict)
	return func(password string) []match.Match {
		matches := dictionaryMatch(password, dictName, rankedDict, maxLen)
		for _, v := range matches {
			v.DictionaryName = dictName
		}
		return matches
	}
}

// longestKey is the length in runes of rankedDict's longest word.
func longestKey(rankedDict map[string]int) int {
	n := 0
	for k := range rankedDict {
		if l := utf8.RuneCountInString(k); l > n {
			n = l
		}
	}
	return n
}

// dictionaryMatch looks up every substring of password of at most maxLen
// runes. latch patch: the original tried every substring, each converted to a
// string, which is cubic in the password's length (a 2580-byte password took
// over 90 s); no word longer than maxLen can match, so the result is the same.
func dictionaryMatch(password string, dictionaryName string, rankedDict map[string]int, maxLen int) []match.Match {
	var results []match.Match
	pwLower := strings.ToLower(password)

	pwLowerRunes := []rune(pwLower)
	pwRunes := []rune(password)
	length := len(pwLowerRunes)

	for i := 0; i < length; i++ {
		end := i + maxLen
		if end > length {
			end = length
		}
		for j := i; j < end; j++ {
			word := pwLowerRunes[i : j+1]
			if val, ok := rankedDict[string(word)]; ok {
				matchDic := match.Match{
					Pattern:        "dictionary",
					DictionaryName: dictionaryName,
					I:              i,
					J:              j,
					Token:          string(pwRunes[i : j+1]),
				}
				matchDic.Entropy = entropy.DictionaryEntropy(matchDic, float64(val))

				results = append(results, matchDic)
			}
		}
	}

	return results
}

func buildRankedDict(unrankedList []string) map[string]int {
	result := make(map[string]int)

	for i, v := range unrankedList {
		result[strings.ToLower(v)] = i + 1
	}

	return result
}
