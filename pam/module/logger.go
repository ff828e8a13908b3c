package main

import (
	"fmt"
	"log/syslog"
)

// logger writes to syslog (LOG_AUTHPRIV), never to stderr: under sudo
// stderr is the user's terminal. Errors and warnings are always logged;
// debug lines only with the debug argument. Lines carry the user, service
// and remote host, never a code or a password.
type logger struct {
	debug                bool
	user, service, rhost string
}

func (l *logger) debugf(format string, args ...any) {
	if l.debug {
		l.write(syslog.LOG_DEBUG, format, args...)
	}
}

func (l *logger) warning(format string, args ...any) {
	l.write(syslog.LOG_WARNING, format, args...)
}

func (l *logger) error(format string, args ...any) {
	l.write(syslog.LOG_ERR, format, args...)
}

// logSink, when set (by tests), receives every line instead of syslog.
var logSink func(prio syslog.Priority, line string)

// write sends one line; when syslog is unavailable the line is dropped.
func (l *logger) write(prio syslog.Priority, format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	if l.user != "" {
		line = fmt.Sprintf("user=%q service=%q rhost=%q: %s", l.user, l.service, l.rhost, line)
	}
	if logSink != nil {
		logSink(prio, line)
		return
	}
	w, err := syslog.New(syslog.LOG_AUTHPRIV|prio, "pam_otpgate")
	if err != nil {
		return
	}
	defer w.Close()
	switch prio {
	case syslog.LOG_DEBUG:
		_ = w.Debug(line)
	case syslog.LOG_WARNING:
		_ = w.Warning(line)
	default:
		_ = w.Err(line)
	}
}
