package setup

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/otpgate/otpgate/internal/sshpattern"
)

// Files reads the configuration files. The live system uses os.ReadFile
// and filepath.Glob; tests use a map.
type Files struct {
	// Read returns a file's contents; a missing file is an error
	// satisfying errors.Is(err, fs.ErrNotExist).
	Read func(path string) ([]byte, error)
	// Glob returns the files matching pattern, sorted.
	Glob func(pattern string) ([]string, error)
}

// withFile returns f with path reading as data (a planned change), and
// listed by Glob even if it does not exist yet.
func (f Files) withFile(path string, data []byte) Files {
	return Files{
		Read: func(p string) ([]byte, error) {
			if p == path {
				return data, nil
			}
			return f.Read(p)
		},
		Glob: func(pattern string) ([]string, error) {
			m, err := f.Glob(pattern)
			if err != nil {
				return nil, err
			}
			if ok, _ := filepath.Match(pattern, path); ok && !slices.Contains(m, path) {
				m = append(m, path)
				slices.Sort(m)
			}
			return m, nil
		},
	}
}

// Directive is one keyword line of sshd_config or of a file it includes.
type Directive struct {
	File string
	Line int
	// Keyword is lower case, with the deprecated alias
	// ChallengeResponseAuthentication read as kbdinteractiveauthentication.
	Keyword string
	// Value is the arguments as written, joined by single blanks.
	Value string
	// Match is the criteria of the Match block the line is in ("User
	// root"), or "" for a global line.
	Match string
}

// Where is "FILE:LINE".
func (d Directive) Where() string { return fmt.Sprintf("%s:%d", d.File, d.Line) }

// String is the line as sshd reads it, with its place.
func (d Directive) String() string {
	s := fmt.Sprintf("%s: %s %s", d.Where(), d.Keyword, d.Value)
	if d.Match != "" {
		s += fmt.Sprintf(" (in 'Match %s')", d.Match)
	}
	return s
}

// SSHDir is the directory relative Include paths are taken from.
const SSHDir = "/etc/ssh"

const maxIncludeDepth = 16

// ParseSSHDConfig reads an sshd_config and every file it includes, in
// the order sshd reads them. A Match block inside an included file ends
// at the end of that file; an Include inside a Match block makes the
// included lines part of that block (as OpenSSH 9.2 does).
func ParseSSHDConfig(path string, files Files) ([]Directive, error) {
	var out []Directive
	err := parseSSHDFile(path, "", files, 0, &out)
	return out, err
}

func parseSSHDFile(path, match string, files Files, depth int, out *[]Directive) error {
	if depth > maxIncludeDepth {
		return fmt.Errorf("%s: Include nested more than %d deep (a loop?)", path, maxIncludeDepth)
	}
	data, err := files.Read(path)
	if err != nil {
		return err
	}
	for i, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kw, rest := splitKeyword(line)
		kw = strings.ToLower(kw)
		if kw == "challengeresponseauthentication" {
			kw = "kbdinteractiveauthentication"
		}
		value := strings.Join(strings.Fields(rest), " ")
		switch kw {
		case "match":
			match = value
			continue
		case "include":
			for _, pat := range strings.Fields(rest) {
				if !filepath.IsAbs(pat) {
					pat = filepath.Join(SSHDir, pat)
				}
				names, err := files.Glob(pat)
				if err != nil {
					return fmt.Errorf("%s:%d: Include %s: %w", path, i+1, pat, err)
				}
				*out = append(*out, Directive{File: path, Line: i + 1, Keyword: kw, Value: pat, Match: match})
				for _, n := range names {
					if err := parseSSHDFile(n, match, files, depth+1, out); err != nil && !errors.Is(err, fs.ErrNotExist) {
						return err
					}
				}
			}
			continue
		}
		*out = append(*out, Directive{File: path, Line: i + 1, Keyword: kw, Value: value, Match: match})
	}
	return nil
}

// splitKeyword splits "Keyword value" or "Keyword=value".
func splitKeyword(line string) (string, string) {
	i := strings.IndexAny(line, " \t=")
	if i < 0 {
		return line, ""
	}
	kw, rest := line[:i], strings.TrimLeft(line[i:], " \t")
	rest = strings.TrimLeft(strings.TrimPrefix(rest, "="), " \t")
	return kw, rest
}

// matchResult says whether a Match block applies to a connection.
type matchResult int

const (
	matchNo matchResult = iota
	matchYes
	matchMaybe // it depends on criteria other than the user (Host, Address, Group...)
)

// matchesUser evaluates Match criteria for a connection by user ("" for
// sshd -T without -C, where only "Match all" applies).
func matchesUser(criteria, user string) matchResult {
	f := strings.Fields(criteria)
	if len(f) == 1 && strings.EqualFold(f[0], "all") {
		return matchYes
	}
	res := matchYes
	for i := 0; i < len(f); i += 2 {
		name := strings.ToLower(f[i])
		arg := ""
		if i+1 < len(f) {
			arg = f[i+1]
		}
		switch {
		case name == "user" && user == "":
			return matchNo
		case name == "user":
			if !sshpattern.MatchList(user, arg) {
				return matchNo
			}
		default:
			res = matchMaybe
		}
	}
	return res
}

// Effective returns the line that sets keyword for a connection by user
// ("" for the global value): the first line in a Match block that
// applies, else the first global line. maybe lists earlier lines in Match
// blocks whose criteria cannot be evaluated here (Host, Address, ...),
// which may win instead for some connections. ok is false when no line
// sets the keyword (sshd's default applies).
func Effective(dirs []Directive, keyword, user string) (d Directive, ok bool, maybe []Directive) {
	for _, x := range dirs {
		if x.Keyword != keyword || x.Match == "" {
			continue
		}
		switch matchesUser(x.Match, user) {
		case matchYes:
			return x, true, maybe
		case matchMaybe:
			maybe = append(maybe, x)
		}
	}
	for _, x := range dirs {
		if x.Keyword == keyword && x.Match == "" {
			return x, true, maybe
		}
	}
	return Directive{}, false, maybe
}

// sshdDefaults are OpenSSH 9.2's built-in values of the keywords setup
// cares about (Debian's sshd_config sets UsePAM yes and
// KbdInteractiveAuthentication no).
var sshdDefaults = map[string]string{
	"usepam":                       "no",
	"kbdinteractiveauthentication": "yes",
	"passwordauthentication":       "yes",
	"authenticationmethods":        "any",
	"permitrootlogin":              "prohibit-password",
}

// normValue makes values comparable with what `sshd -T` prints.
func normValue(keyword, v string) string {
	v = strings.ToLower(strings.TrimSpace(v))
	if keyword == "permitrootlogin" && v == "without-password" {
		return "prohibit-password"
	}
	return v
}

// Conflict is a keyword whose effective value is not the wanted one.
type Conflict struct {
	Keyword string
	User    string // "" for the global value
	Want    []string
	Got     string
	// At is the line that sets Got; zero when sshd's default applies.
	At Directive
	// Maybe lists Match blocks that may override the value for some
	// connections.
	Maybe []Directive
}

func (c Conflict) String() string {
	who := "for every user"
	if c.User != "" {
		who = "for " + c.User
	}
	where := "sshd's built-in default"
	if c.At.File != "" {
		where = c.At.String()
	}
	s := fmt.Sprintf("%s is %q %s, want %s; it is set by %s", c.Keyword, c.Got, who, quoteAll(c.Want), where)
	if len(c.Maybe) > 0 {
		var m []string
		for _, d := range c.Maybe {
			m = append(m, d.String())
		}
		s += "; these Match lines may also override it: " + strings.Join(m, ", ")
	}
	return s
}

func quoteAll(vs []string) string {
	var q []string
	for _, v := range vs {
		q = append(q, fmt.Sprintf("%q", v))
	}
	return strings.Join(q, " or ")
}

// Want is the set of effective values wanted for one user ("" for the
// global values); each keyword may have several acceptable values.
type Want struct {
	User   string
	Values map[string][]string
}

// Conflicts checks the wanted values against the parsed configuration.
// A Match block whose criteria cannot be evaluated and that sets a
// keyword to an unwanted value counts as a conflict.
func Conflicts(dirs []Directive, wants []Want) []Conflict {
	var out []Conflict
	for _, w := range wants {
		for _, kw := range slices.Sorted(maps.Keys(w.Values)) {
			acceptable := w.Values[kw]
			d, ok, maybe := Effective(dirs, kw, w.User)
			got := sshdDefaults[kw]
			if ok {
				got = d.Value
			}
			var bad []Directive
			for _, m := range maybe {
				if !slices.Contains(acceptable, normValue(kw, m.Value)) {
					bad = append(bad, m)
				}
			}
			if slices.Contains(acceptable, normValue(kw, got)) && len(bad) == 0 {
				continue
			}
			if !ok {
				d = Directive{}
			}
			out = append(out, Conflict{Keyword: kw, User: w.User, Want: acceptable, Got: got, At: d, Maybe: bad})
		}
	}
	return out
}
