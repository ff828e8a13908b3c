package main

import "fmt"

// priority is a syslog(3) level. libpam's pam_syslog(3) adds the facility,
// LOG_AUTHPRIV.
type priority int

// The levels the module logs at (syslog.h).
const (
	logErr     priority = 3 // LOG_ERR
	logWarning priority = 4 // LOG_WARNING
	logDebug   priority = 7 // LOG_DEBUG
)

// logger writes to syslog through libpam's pam_syslog(3) (LOG_AUTHPRIV,
// tagged "pam_otpgate(service:auth)" by libpam), never to stderr: under
// sudo stderr is the user's terminal. Errors and warnings are always
// logged; debug lines only with the debug argument. Lines carry the user,
// service and remote host, never a code or a password.
type logger struct {
	debug                bool
	user, service, rhost string
	// out sends one line: the session's syslog method.
	out func(prio priority, line string)
}

func (l *logger) debugf(format string, args ...any) {
	if l.debug {
		l.write(logDebug, format, args...)
	}
}

func (l *logger) warning(format string, args ...any) {
	l.write(logWarning, format, args...)
}

func (l *logger) error(format string, args ...any) {
	l.write(logErr, format, args...)
}

// write formats and sends one line.
func (l *logger) write(prio priority, format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	if l.user != "" {
		line = fmt.Sprintf("user=%q service=%q rhost=%q: %s", l.user, l.service, l.rhost, line)
	}
	l.out(prio, line)
}
