package doctor

import (
	"fmt"
	"time"
)

// staUnsync is the kernel's STA_UNSYNC bit in struct timex's status.
const staUnsync = 0x0040

// maxClockError is the kernel's NTP_PHASE_LIMIT: the maximum error it
// reports for a clock no one has synchronised.
const maxClockError = 16 * time.Second

// Clock is what adjtimex(2) says about the system clock.
type Clock struct {
	// Status is struct timex's status bits.
	Status int32
	// MaxError is the maximum error estimate.
	MaxError time.Duration
}

// CheckClock warns when the kernel says the clock is not synchronised.
func CheckClock(c Clock) []Finding {
	if c.Status&staUnsync == 0 && c.MaxError < maxClockError {
		return nil
	}
	return []Finding{{ID: "clock-unsynchronised", Severity: Warning, Where: "adjtimex(2)",
		Problem: fmt.Sprintf("the system clock is not synchronised (STA_UNSYNC=%t, maximum error %v)", c.Status&staUnsync != 0, c.MaxError),
		Why:     "codes are accepted only within the window around the server's time (±30 s by default): a server clock that drifts rejects every user's code at once.",
		Fix:     "run an NTP client: 'apt-get install systemd-timesyncd' (or chrony) and check 'timedatectl' shows 'System clock synchronized: yes'."}}
}
