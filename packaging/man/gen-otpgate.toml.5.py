#!/usr/bin/env python3
"""Regenerates the KEYS section of otpgate.toml.5 from config.example.toml.

Run from the repository root after changing config.example.toml:
    python3 packaging/man/gen-otpgate.toml.5.py
integration/packaging_test.go (TestManPages) fails when a key is missing.
"""
import re

EXAMPLE = "config.example.toml"
PAGE = "packaging/man/otpgate.toml.5"


def esc(text):
    text = text.replace("\\", "\\\\").replace("-", "\\-").replace('"', "\\(dq")
    if text.startswith((".", "'")):
        text = "\\&" + text
    return text


def keys_section(lines):
    out, section, comment, seen_key = [], "", [], False
    for line in lines:
        s = line.strip()
        if s.startswith("#"):
            comment.append(s.lstrip("#").strip())
            continue
        if s == "":
            if not seen_key:
                comment = []  # the file's header comment
            continue
        m = re.match(r"^\[(\w+)\]$", s)
        if m:
            section = m.group(1)
            out.append(".SS [" + section + "]")
            if comment:
                out.append(esc(" ".join(comment)))
            comment = []
            continue
        m = re.match(r"^(\w+)\s*=\s*(.*)$", s)
        if m:
            seen_key = True
            name = (section + "." if section else "") + m.group(1)
            out.append(".TP")
            out.append(".B " + esc(name) + " \\fR(default \\fB" + esc(m.group(2)) + "\\fR)")
            if comment:
                out.append(esc(" ".join(comment)))
            comment = []
    return "\n".join(out) + "\n"


def main():
    with open(EXAMPLE) as f:
        lines = f.read().split("\n")
    with open(PAGE) as f:
        page = f.read()
    head, sep, rest = page.partition(".SH KEYS\n")
    _, sep2, tail = rest.partition(".SH FILES")
    if not sep or not sep2:
        raise SystemExit(PAGE + ": no .SH KEYS or .SH FILES section to replace")
    with open(PAGE, "w") as f:
        f.write(head + sep + keys_section(lines) + sep2 + tail)


main()
