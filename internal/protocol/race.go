//go:build race

package protocol

import "syscall"

// raceReleaseIO tells the race detector, before a write on fd, that what
// the caller did so far happens before what the reader of that write does
// after its read. Go's own reads (package net, as otpgated's) acquire the
// token of package syscall's writes, which sendmsg (unix.SendmsgN, for
// MSG_NOSIGNAL) does not release: a zero-length write releases it. Race
// builds only; a closed peer makes it EPIPE, ignored here and reported by
// the real write.
func raceReleaseIO(fd int) {
	_, _ = syscall.Write(fd, nil)
}
