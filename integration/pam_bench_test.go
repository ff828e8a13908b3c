//go:build integration

package integration

import (
	"fmt"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/integration/container"
)

// BenchmarkPAMAuthenticate measures one pam_authenticate through
// pam_otpgate.so as PAM applications see it: each iteration is a fresh
// pamtester process inside the container (so the Go runtime starts every
// time, as in sshd's per-connection [pam] child) talking to the real
// otpgated, whose state directory is on the host's disk (not the
// container's tmpfs), so that every accepted code pays a real fsync. The
// pam_permit baseline is the same process without the module.
//
//	OTPGATE_BIN=$PWD/bin go test -tags integration -run '^$' -bench PAMAuthenticate -benchtime 200x ./integration/
func BenchmarkPAMAuthenticate(b *testing.B) {
	e := newPAMEnv(b, container.WithBind(b.TempDir(), "/var/lib/otpgate", false))
	e.writePAMService("bench-permit", "auth required pam_permit.so\n")
	e.writePAMService("bench-otp", "auth required pam_otpgate.so\nauth required pam_permit.so\n")
	e.addUser("benchplain")

	// run times pamtester for service; prepare (not timed) returns the
	// user and the input of each iteration.
	run := func(b *testing.B, service string, prepare func(*pamEnv) (user, input string)) {
		sub := *e
		sub.t = b
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			user, input := prepare(&sub)
			b.StartTimer()
			res := sub.pamtester("", service, user, input)
			if !strings.Contains(res.out, pamOK) {
				b.Fatalf("iteration %d: %s", i, res.out)
			}
		}
	}
	plain := func(*pamEnv) (string, string) { return "benchplain", "" }
	b.Run("pam_permit_baseline", func(b *testing.B) { run(b, "bench-permit", plain) })
	b.Run("not_enrolled", func(b *testing.B) { run(b, "bench-otp", plain) })
	// Each accepted code needs a user whose code has not been used yet: a
	// new user is enrolled (outside the timer) for every iteration.
	users := 0
	b.Run("accept", func(b *testing.B) {
		run(b, "bench-otp", func(sub *pamEnv) (string, string) {
			users++
			user := fmt.Sprintf("bench%d", users)
			sub.enroll(user)
			return user, sub.code(user) + "\n"
		})
	})
}
