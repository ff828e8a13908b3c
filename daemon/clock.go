package daemon

import "time"

// Clock tells the time. The daemon reads wall time only through a Clock
// so tests can jump it.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }
