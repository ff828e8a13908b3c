// Package version holds the version of otpgate's programs, set at build
// time with -ldflags '-X github.com/otpgate/otpgate/internal/version.Version=...'.
package version

import "runtime/debug"

// Version is set at build time by the Makefiles; empty in a plain go build.
var Version string

// String returns Version, else the module version recorded in the binary,
// else the VCS revision it was built from, else "devel".
func String() string {
	return resolve(Version, readBuildInfo)
}

// readBuildInfo is debug.ReadBuildInfo, replaced in tests.
var readBuildInfo = debug.ReadBuildInfo

func resolve(v string, info func() (*debug.BuildInfo, bool)) string {
	if v != "" {
		return v
	}
	if bi, ok := info(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return v
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return "devel-" + s.Value
			}
		}
	}
	return "devel"
}
