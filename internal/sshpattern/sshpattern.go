// Package sshpattern matches OpenSSH's patterns (ssh_config(5),
// "PATTERNS"): "*" matches any run of characters and "?" exactly one, and
// a pattern list is comma-separated, where a "!" in front negates an entry.
// sshd uses them in Match criteria and in authorized_keys from= options.
package sshpattern

import "strings"

// Match reports whether s matches pattern, as OpenSSH's match_pattern:
// "*" matches any run of bytes (also none) and "?" exactly one byte; every
// other byte matches itself. The comparison is case-sensitive.
func Match(pattern, s string) bool {
	for len(pattern) > 0 {
		switch pattern[0] {
		case '*':
			for i := len(s); i >= 0; i-- {
				if Match(pattern[1:], s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
		default:
			if s == "" || s[0] != pattern[0] {
				return false
			}
		}
		pattern, s = pattern[1:], s[1:]
	}
	return s == ""
}

// MatchList reports whether s matches the comma-separated pattern list,
// as OpenSSH's match_pattern_list: a negated entry ("!pattern") that
// matches wins over every other entry, and otherwise one matching entry
// is enough.
func MatchList(s, list string) bool {
	got := false
	for _, p := range strings.Split(list, ",") {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		if Match(p, s) {
			if neg {
				return false
			}
			got = true
		}
	}
	return got
}
