package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestLinksOnlyWhatARelayNeeds: the library starts in a fresh process per
// login (sshd's PAM child), where every package it links costs load time,
// page faults and package initialisation. A relay of otpgated's dialogue
// logs through libpam and talks over one Unix socket with blocking system
// calls: it needs no network stack, no Go syslog client, no cryptographic
// randomness, no big numbers, no test framework and no child processes.
func TestLinksOnlyWhatARelayNeeds(t *testing.T) {
	// The package as pam/Makefile builds it into libpam_otpgate_go.so.
	cmd := exec.Command("go", "list", "-deps", "-tags", "go_pam_module", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v (the go command must be on PATH)", err)
	}
	forbidden := map[string]string{
		"net":         "the socket is dialled with x/sys/unix (protocol.Client)",
		"log/syslog":  "lines go through libpam's pam_syslog (logger)",
		"crypto/rand": "request IDs need only be fresh (math/rand/v2)",
		"math/big":    "pulled in by crypto/rand",
		"testing":     "test code stays behind build tags",
		"os/exec":     "a PAM module starts no processes (docs/pam.md)",
	}
	for _, pkg := range strings.Fields(string(out)) {
		base := pkg
		if strings.HasPrefix(pkg, "net/") {
			base = "net"
		}
		if why, ok := forbidden[base]; ok {
			t.Errorf("libpam_otpgate_go.so links %s; it must not: %s", pkg, why)
		}
	}
}
