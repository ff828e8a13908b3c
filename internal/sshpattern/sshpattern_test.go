package sshpattern

import "testing"

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "anything", true},
		{"root", "root", true},
		{"root", "Root", false},
		{"roo", "root", false},
		{"r??t", "root", true},
		{"r??t", "rot", false},
		{"?", "", false},
		{"r*", "root", true},
		{"*t", "root", true},
		{"*o*", "root", true},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
		{"192.168.1.*", "192.168.1.20", true},
		{"192.168.1.*", "192.168.10.2", false},
		{"10.0.0.?", "10.0.0.7", true},
		{"10.0.0.?", "10.0.0.17", false},
		{"fe80::*", "fe80::1", true},
	}
	for _, tt := range tests {
		if got := Match(tt.pattern, tt.s); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

func TestMatchList(t *testing.T) {
	tests := []struct {
		s, list string
		want    bool
	}{
		{"root", "root", true},
		{"root", "alice,root", true},
		{"root", "r*", true},
		{"root", "r??t", true},
		{"root", "*,!root", false},
		{"root", "!root,*", false},
		{"alice", "*,!root", true},
		{"alice", "!root", false},
		{"root", "roo", false},
		{"root", "", false},
	}
	for _, tt := range tests {
		if got := MatchList(tt.s, tt.list); got != tt.want {
			t.Errorf("MatchList(%q, %q) = %v, want %v", tt.s, tt.list, got, tt.want)
		}
	}
}
