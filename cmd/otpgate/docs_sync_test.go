package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// commandName returns "admin X" or the first word of a command line.
func commandName(line string) string {
	f := strings.Fields(line)
	if len(f) > 1 && f[0] == "admin" {
		return "admin " + f[1]
	}
	return f[0]
}

// helpCommands lists the commands in the top-level help.
func helpCommands() []string {
	var names []string
	text, _, _ := strings.Cut(usages[""], "Global flag")
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "  ") && len(l) > 2 && l[2] >= 'a' && l[2] <= 'z' {
			names = append(names, commandName(l[2:]))
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// TestHelpManAndDocsListTheSameCommands keeps 'otpgate --help',
// 'otpgate admin --help', otpgate(1) and docs/cli.md in step.
func TestHelpManAndDocsListTheSameCommands(t *testing.T) {
	top := helpCommands()

	var admin []string
	for _, l := range strings.Split(usages["admin"], "\n") {
		if strings.HasPrefix(l, "  ") && len(l) > 2 && l[2] >= 'a' && l[2] <= 'z' {
			admin = append(admin, "admin "+strings.Fields(l)[0])
		}
	}
	slices.Sort(admin)
	admin = slices.Compact(admin)
	var topAdmin []string
	for _, c := range top {
		if strings.HasPrefix(c, "admin ") {
			topAdmin = append(topAdmin, c)
		}
	}
	if !slices.Equal(admin, topAdmin) {
		t.Errorf("otpgate admin --help lists %q, otpgate --help lists %q", admin, topAdmin)
	}

	man, err := os.ReadFile("../../packaging/man/otpgate.1")
	if err != nil {
		t.Fatal(err)
	}
	section := string(man)
	section = section[strings.Index(section, ".SH COMMANDS"):]
	section = section[:strings.Index(section[1:], ".SH ")+1]
	var inMan []string
	lines := strings.Split(section, "\n")
	for i, l := range lines {
		if l == ".TP" && i+1 < len(lines) && strings.HasPrefix(lines[i+1], ".B ") {
			name := strings.ReplaceAll(lines[i+1][3:], `\-`, "-")
			inMan = append(inMan, commandName(regexp.MustCompile(`\\f.`).ReplaceAllString(name, " ")))
		}
	}
	slices.Sort(inMan)
	inMan = slices.Compact(inMan)
	if !slices.Equal(inMan, top) {
		t.Errorf("otpgate(1) lists %q, otpgate --help lists %q", inMan, top)
	}

	doc, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range top {
		if c == "help" {
			continue
		}
		if !strings.Contains(string(doc), "`otpgate "+c) {
			t.Errorf("docs/cli.md does not describe `otpgate %s`", c)
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
