//go:build !race

package protocol

// raceReleaseIO is a no-op outside race builds (see race.go).
func raceReleaseIO(int) {}
