package config

import (
	"strings"

	"github.com/BurntSushi/toml"
)

// suggest returns the known key an unknown key was most likely meant to be,
// or "". Tables are only suggested for tables and values for values. A key
// whose last part exists in exactly one other table ("totp.socket") gets
// that key ("daemon.socket"); otherwise the closest key by edit distance,
// ignoring case, if it is close enough to be a typo.
func suggest(unknown toml.Key, isTable bool) string {
	fields, _ := schema()
	var candidates []field
	for _, f := range fields {
		if (f.kind == kindTable) == isTable {
			candidates = append(candidates, f)
		}
	}

	last := strings.ToLower(unknown[len(unknown)-1])
	var sameName []field
	for _, f := range candidates {
		if strings.ToLower(f.key[len(f.key)-1]) == last {
			sameName = append(sameName, f)
		}
	}
	if len(sameName) == 1 {
		return sameName[0].key.String()
	}

	name := strings.ToLower(unknown.String())
	best, bestDist := "", -1
	for _, f := range candidates {
		d := editDistance(name, strings.ToLower(f.key.String()))
		if bestDist < 0 || d < bestDist {
			best, bestDist = f.key.String(), d
		}
	}
	// One edit in short names, up to three in long ones: enough for a
	// dropped, doubled or swapped letter without suggesting unrelated keys.
	if bestDist >= 0 && bestDist <= max(1, min(3, len(name)/6)) {
		return best
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
