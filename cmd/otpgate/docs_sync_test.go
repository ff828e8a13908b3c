package main

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// helpOf runs otpgate with args (a help request) and returns its stdout.
func helpOf(t *testing.T, args ...string) string {
	t.Helper()
	a, out, errb := testApp(t, 1000, "")
	if code := a.run(context.Background(), args); code != exitOK || errb.Len() > 0 {
		t.Fatalf("otpgate %s: exit %d, stderr:\n%s", strings.Join(args, " "), code, errb)
	}
	return out.String()
}

var flagLine = regexp.MustCompile(`^  (--[a-z][a-z-]*)( [A-Za-z]+)?( +)(\S.*)?$`)

// helpFlags returns the flags that 'otpgate NAME --help' lists, checking
// that each has a description.
func helpFlags(t *testing.T, name string) []string {
	t.Helper()
	text := helpOf(t, append(strings.Fields(name), "--help")...)
	_, section, ok := strings.Cut(text, "\nFlags:\n")
	if !ok {
		return nil
	}
	var flags []string
	for _, l := range strings.Split(strings.TrimRight(section, "\n"), "\n") {
		m := flagLine.FindStringSubmatch(l)
		if m == nil {
			if strings.TrimSpace(l) == "" || !strings.HasPrefix(l, "     ") {
				t.Errorf("otpgate %s --help: a flag line without a description, or a stray line: %q", name, l)
			}
			continue
		}
		if m[4] == "" {
			t.Errorf("otpgate %s --help: %s has no description", name, m[1])
		}
		flags = append(flags, m[1])
	}
	slices.Sort(flags)
	return flags
}

// flagsIn returns the --flags named in text, sorted, without repeats.
func flagsIn(text string) []string {
	flags := regexp.MustCompile(`--[a-z][a-z-]*`).FindAllString(text, -1)
	slices.Sort(flags)
	return slices.Compact(flags)
}

// TestHelpComesFromTheCommands checks every command's help: 'otpgate
// CMD --help' and 'otpgate help CMD' print the same text, every flag the
// command parses has a description, the usage lines and the overviews
// name exactly the command's flags, and only 'otpgate help' has the exit
// codes.
func TestHelpComesFromTheCommands(t *testing.T) {
	top := helpOf(t, "help")
	if !strings.Contains(top, "Exit codes:") || !strings.Contains(top, "--socket PATH") {
		t.Errorf("otpgate help lacks the exit codes or --socket:\n%s", top)
	}
	if got := helpOf(t, "--help"); got != top {
		t.Errorf("otpgate --help differs from otpgate help")
	}
	admin := helpOf(t, "help", "admin")
	if got := helpOf(t, "admin", "--help"); got != admin {
		t.Errorf("otpgate admin --help differs from otpgate help admin")
	}
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			text := helpOf(t, append(strings.Fields(c.name), "--help")...)
			if got := helpOf(t, append([]string{"help"}, strings.Fields(c.name)...)...); got != text {
				t.Errorf("otpgate help %s:\n%s\notpgate %s --help:\n%s", c.name, got, c.name, text)
			}
			if strings.Contains(text, "Exit codes:") {
				t.Errorf("otpgate %s --help repeats the exit codes; they belong in 'otpgate help' only", c.name)
			}
			flags := helpFlags(t, c.name)
			usage, _, _ := strings.Cut(text, "\n\n")
			if got := flagsIn(usage); !slices.Equal(got, flags) {
				t.Errorf("the usage of %s names %q; it parses %q", c.name, got, flags)
			}
			// The overview lines of the command: its forms.
			overview, short := top, c.name
			if rest, ok := strings.CutPrefix(c.name, "admin "); ok {
				overview, short = admin, rest
			}
			var lines []string
			for _, l := range strings.Split(overview, "\n") {
				if strings.HasPrefix(l, "  "+short+" ") || l == "  "+short {
					lines = append(lines, l)
				}
			}
			if len(lines) == 0 {
				t.Fatalf("the overview does not list %s", c.name)
			}
			if got := flagsIn(strings.Join(lines, "\n")); !slices.Equal(got, flags) {
				t.Errorf("the overview's lines for %s name %q; it parses %q", c.name, got, flags)
			}
		})
	}
}

// manCommands returns the COMMANDS section of otpgate(1) as command name
// to its text (the .B lines and the paragraphs after them) and to its
// synopses (the .B lines), with \- as -.
func manCommands(t *testing.T) (text, synopses map[string]string) {
	t.Helper()
	man, err := os.ReadFile("../../packaging/man/otpgate.1")
	if err != nil {
		t.Fatal(err)
	}
	section := string(man)
	section = section[strings.Index(section, ".SH COMMANDS"):]
	section = section[:strings.Index(section[1:], ".SH ")+1]
	section = strings.ReplaceAll(section, `\-`, "-")
	font := regexp.MustCompile(`\\f.`)
	text, synopses = map[string]string{}, map[string]string{}
	for _, entry := range strings.Split(section, ".TP\n")[1:] {
		head, _, _ := strings.Cut(entry, "\n")
		f := strings.Fields(font.ReplaceAllString(strings.TrimPrefix(head, ".B "), " "))
		name := f[0]
		if name == "admin" {
			name += " " + f[1]
		}
		text[name] += entry
		synopses[name] += head + "\n"
	}
	return text, synopses
}

// docsSections returns, for each command, its text in docs/cli.md: the
// section under a heading "### `otpgate NAME ...`", or the table row
// "| `otpgate NAME ...` |", or the list item "* `otpgate NAME ...`".
func docsSections(t *testing.T) map[string]string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	lines := strings.Split(string(doc), "\n")
	start := regexp.MustCompile("^(### |\\| |\\* )`otpgate ([a-z-]+)( ([a-z-]+))?")
	for i, l := range lines {
		m := start.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		name := m[2]
		if name == "admin" {
			name += " " + m[4]
		}
		text := l
		if m[1] != "| " {
			for _, next := range lines[i+1:] {
				if strings.HasPrefix(next, "#") || (m[1] == "* " && (next == "" || strings.HasPrefix(next, "* "))) {
					break
				}
				text += "\n" + next
			}
		}
		out[name] += text
	}
	return out
}

// TestHelpManAndDocsListTheSameCommands keeps otpgate(1) and docs/cli.md
// in step with the commands: each describes exactly the commands of
// 'otpgate help', and names every flag of each.
func TestHelpManAndDocsListTheSameCommands(t *testing.T) {
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	slices.Sort(names)
	man, synopses := manCommands(t)
	docs := docsSections(t)
	for what, sections := range map[string]map[string]string{"otpgate(1)": man, "docs/cli.md": docs} {
		var got []string
		for name := range sections {
			got = append(got, name)
		}
		slices.Sort(got)
		if !slices.Equal(got, names) {
			t.Errorf("%s describes %q; otpgate has %q", what, got, names)
		}
	}
	for _, c := range commands {
		flags := helpFlags(t, c.name)
		for what, text := range map[string]string{"otpgate(1)": man[c.name], "docs/cli.md": docs[c.name]} {
			mentioned := flagsIn(text)
			for _, f := range flags {
				if !slices.Contains(mentioned, f) {
					t.Errorf("%s does not mention %s %s", what, c.name, f)
				}
			}
		}
		if got := flagsIn(synopses[c.name]); !slices.Equal(got, flags) {
			t.Errorf("otpgate(1)'s synopsis of %s names %q; it parses %q", c.name, got, flags)
		}
	}
	for what, file := range map[string]string{"otpgate(1)": "../../packaging/man/otpgate.1", "docs/cli.md": "../../docs/cli.md"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.ReplaceAll(string(data), `\-`, "-"), "--socket") {
			t.Errorf("%s does not mention the global flag --socket", what)
		}
	}
}

// TestDocsInstallTheBuiltPackage checks that README.md and the quickstart
// install the .deb from where 'make deb' writes it.
func TestDocsInstallTheBuiltPackage(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mk), "$(BIN)/otpgate_$(DEB_VERSION)_$(DEB_ARCH).deb") || !regexp.MustCompile(`(?m)^BIN\s*[:?]?=\s*(\$\(CURDIR\)/)?bin\s*$`).Match(mk) {
		t.Fatal("the Makefile no longer writes the package to bin/: update this test and the docs")
	}
	for _, doc := range []string{"../../README.md", "../../docs/quickstart.md"} {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`apt install (\S+\.deb)`).FindAllStringSubmatch(string(data), -1) {
			if m[1] != "./bin/otpgate_*.deb" {
				t.Errorf("%s installs %s; make deb writes ./bin/otpgate_*.deb", doc, m[1])
			}
		}
	}
}
