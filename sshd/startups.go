package sshd

import "github.com/otpgate/otpgate/internal/config"

// Why admit refuses a connection; the words go to the log.
const (
	dropPerSource = "per_source_max_startups reached"
	dropFull      = "max_startups full"
	dropRandom    = "random early drop (max_startups)"
)

// dropPercent is OpenSSH's MaxStartups curve: the chance, in percent,
// that a new connection is dropped while n connections are
// unauthenticated. Below start it is 0; from start it rises linearly from
// rate to 100 at full.
func dropPercent(m config.Startups, n int) int {
	switch {
	case n < m.Start:
		return 0
	case n >= m.Full:
		return 100
	}
	return m.Rate + (100-m.Rate)*(n-m.Start)/(m.Full-m.Start)
}

// shouldDrop decides whether a new connection is refused, and why, while
// n connections are unauthenticated, held of them from the new
// connection's source. perSource caps held (0: no cap). Past start, the
// connection must pass one draw against dropPercent for itself and one
// more for each unauthenticated connection its source already holds, so
// that an address holding many idle connections is refused first while a
// newcomer keeps a fair chance. draw(100) returns a uniform integer in
// [0, 100), like OpenSSH's arc4random_uniform(100).
func shouldDrop(m config.Startups, perSource, n, held int, draw func(int) int) (bool, string) {
	if perSource > 0 && held >= perSource {
		return true, dropPerSource
	}
	p := dropPercent(m, n)
	switch {
	case p == 0:
		return false, ""
	case p >= 100:
		return true, dropFull
	}
	for range held + 1 {
		if draw(100) < p {
			return true, dropRandom
		}
	}
	return false, ""
}
