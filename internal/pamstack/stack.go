package pamstack

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ModuleName is the file name of otpgate's PAM module.
const ModuleName = "pam_otpgate.so"

// Entry is one module line of a PAM service after includes are resolved.
type Entry struct {
	// Where is "FILE:LINE" of the line itself.
	Where string
	// Via is the include chain that led to it ("sshd:1 @include"), or "".
	Via string
	// Type is auth, account, password or session.
	Type string
	// Dash is the leading "-": skip silently if the module is missing.
	Dash bool
	// Control is "required", "sufficient", ... or a bracket expression
	// "[success=1 default=ignore]".
	Control string
	// Module is the module path as written.
	Module string
	// Args are the module's arguments, bracketed ones kept whole.
	Args []string
}

// Base is the module's file name.
func (e Entry) Base() string { return path.Base(e.Module) }

// IsOtpgate reports whether the line loads pam_otpgate.so.
func (e Entry) IsOtpgate() bool { return e.Base() == ModuleName }

// Arg returns the value of key=value among the arguments, and whether it
// is there.
func (e Entry) Arg(key string) (string, bool) {
	for _, a := range e.Args {
		if v, ok := strings.CutPrefix(a, key+"="); ok {
			return v, true
		}
		if a == key {
			return "", true
		}
	}
	return "", false
}

// At is Where, with the include chain if there is one.
func (e Entry) At() string {
	if e.Via != "" {
		return e.Where + " (via " + e.Via + ")"
	}
	return e.Where
}

// line is one parsed line of a PAM file: a module line or an @include.
type line struct {
	line    int
	include string // "@include NAME"
	typ     string
	dash    bool
	control string
	module  string
	args    []string
}

// parseFile splits a /etc/pam.d file into lines, handling comments,
// backslash continuations and bracketed controls and arguments.
func parseFile(name string, data []byte) ([]line, []error) {
	var out []line
	var errs []error
	raw := strings.Split(string(data), "\n")
	for i := 0; i < len(raw); i++ {
		start := i + 1
		text := raw[i]
		for strings.HasSuffix(text, "\\") && i+1 < len(raw) {
			i++
			text = strings.TrimSuffix(text, "\\") + " " + raw[i]
		}
		fields := Fields(text)
		if len(fields) == 0 {
			continue
		}
		if fields[0] == "@include" {
			if len(fields) < 2 {
				errs = append(errs, fmt.Errorf("%s:%d: @include without a file name", name, start))
				continue
			}
			out = append(out, line{line: start, include: fields[1]})
			continue
		}
		if len(fields) < 3 {
			errs = append(errs, fmt.Errorf("%s:%d: incomplete line %q", name, start, strings.TrimSpace(stripComment(text))))
			continue
		}
		l := line{line: start, typ: strings.ToLower(fields[0]), control: fields[1], module: fields[2], args: fields[3:]}
		if strings.HasPrefix(l.typ, "-") {
			l.dash, l.typ = true, l.typ[1:]
		}
		out = append(out, l)
	}
	return out, errs
}

// stripComment cuts a line at its first "#".
func stripComment(s string) string {
	if k := strings.IndexByte(s, '#'); k >= 0 {
		return s[:k]
	}
	return s
}

// Fields splits one line of a PAM file (without continuations) into its
// fields: the comment from "#" on is dropped, and the line is split on
// blanks, keeping "[...]" groups (which may contain blanks) together, as
// Linux-PAM does.
func Fields(s string) []string {
	var out []string
	var cur strings.Builder
	depth := 0
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	for _, r := range stripComment(s) {
		switch {
		case r == '[':
			depth++
			cur.WriteRune(r)
		case r == ']' && depth > 0:
			depth--
			cur.WriteRune(r)
		case (r == ' ' || r == '\t' || r == '\r' || r == '\n') && depth == 0:
			flush()
		default:
			cur.WriteRune(r)
		}
	}
	flush()
	return out
}

// ReadFunc reads a file below /etc/pam.d by name (or an absolute path).
type ReadFunc func(name string) ([]byte, error)

// ProblemKind says what is wrong in a stack that [Load] still resolved.
type ProblemKind int

// The problems [Load] reports.
const (
	// Syntax: a malformed line, which Linux-PAM skips (or, for an unknown
	// type, refuses).
	Syntax ProblemKind = iota
	// IncludeLoop: includes nest deeper than Linux-PAM follows (a loop?).
	IncludeLoop
	// IncludeMissing: an included file cannot be read.
	IncludeMissing
)

// Problem is something wrong in a service's files that [Load] stepped
// over.
type Problem struct {
	Kind ProblemKind
	// File is the service file the problem is in (as named to ReadFunc).
	File string
	// Where is "FILE:LINE", with the include chain that led to it for
	// IncludeLoop and IncludeMissing.
	Where string
	// Include is the file an include line names (IncludeLoop,
	// IncludeMissing).
	Include string
	// Dash is set when the include line had a leading "-".
	Dash bool
	// Err says what is wrong (Syntax: the file, line and text; IncludeLoop:
	// where the chain starts; IncludeMissing: the read error).
	Err error
}

// MaxIncludeDepth is how deep [Load] follows includes before it reports
// an IncludeLoop.
const MaxIncludeDepth = 8

// Load reads the PAM service and everything it includes (@include, and
// "include"/"substack" controls, which pull in one type only), and
// returns its module lines in order. A missing service file is returned
// as an error satisfying errors.Is(err, fs.ErrNotExist); problems in
// included files come back as [Problem]s.
func Load(service string, read ReadFunc) ([]Entry, []Problem, error) {
	data, err := read(service)
	if err != nil {
		return nil, nil, err
	}
	var probs []Problem
	entries := expand(service, data, "", "", read, 0, &probs)
	return entries, probs, nil
}

func expand(name string, data []byte, onlyType, via string, read ReadFunc, depth int, probs *[]Problem) []Entry {
	lines, errs := parseFile(name, data)
	for _, e := range errs {
		*probs = append(*probs, Problem{Kind: Syntax, File: name, Where: name, Err: e})
	}
	var out []Entry
	for _, l := range lines {
		where := fmt.Sprintf("%s:%d", name, l.line)
		inc, typ := l.include, onlyType
		if inc == "" && (l.control == "include" || l.control == "substack") {
			inc, typ = l.module, l.typ
		}
		if inc == "" {
			if onlyType != "" && l.typ != onlyType {
				continue
			}
			out = append(out, Entry{Where: where, Via: via, Type: l.typ, Dash: l.dash,
				Control: l.control, Module: l.module, Args: l.args})
			continue
		}
		chain := where
		if via != "" {
			chain = via + " > " + where
		}
		if depth >= MaxIncludeDepth {
			*probs = append(*probs, Problem{Kind: IncludeLoop, File: name, Where: where, Include: inc, Dash: l.dash,
				Err: fmt.Errorf("includes nest deeper than %d levels here (a loop?), starting from %s", MaxIncludeDepth, strings.SplitN(chain, " > ", 2)[0])})
			continue
		}
		sub, err := read(inc)
		if err != nil {
			*probs = append(*probs, Problem{Kind: IncludeMissing, File: name, Where: chain, Include: inc, Dash: l.dash, Err: err})
			continue
		}
		out = append(out, expand(inc, sub, typ, chain, read, depth+1, probs)...)
	}
	return out
}

// NotExist reports whether p is an include whose file does not exist.
func (p Problem) NotExist() bool {
	return p.Kind == IncludeMissing && errors.Is(p.Err, fs.ErrNotExist)
}

// AuthEntries returns the auth lines of a service.
func AuthEntries(entries []Entry) []Entry {
	var auth []Entry
	for _, e := range entries {
		if e.Type == "auth" {
			auth = append(auth, e)
		}
	}
	return auth
}

// ReachesOtpgate reports whether the service's auth stack runs
// pam_otpgate.so with a control that makes a wrong code fail the login.
func ReachesOtpgate(entries []Entry) bool {
	auth := AuthEntries(entries)
	for i, e := range auth {
		if e.IsOtpgate() {
			if ok, _ := ControlCounts(auth, i); ok {
				return true
			}
		}
	}
	return false
}

// Dir is where the PAM service files are.
const Dir = "/etc/pam.d"

// ReadSystem is the [ReadFunc] of the live system: a name is a file in
// Dir, an absolute path is read as it is.
func ReadSystem(name string) ([]byte, error) {
	if !filepath.IsAbs(name) {
		name = filepath.Join(Dir, name)
	}
	return os.ReadFile(name)
}
