// Package importlarge times `otpgate admin import` of a large site and
// records its peak memory: a pam_oath usersfile of N users imported in one
// command, and --from google-authenticator --all-users on a host with N
// accounts that have a ~/.google_authenticator. Each size runs in its own
// test container (integration/container) with the real otpgated, and
// otpgate runs under /usr/bin/time -v (and GODEBUG=gctrace=1, for the
// live heap). Not part of `make test`; see
// docs/BENCHMARKS.md (admin import) for the command and the figures.
//
//	make build
//	OTPGATE_BIN=$PWD/bin go test -tags benchimport -count=1 -timeout 60m -v ./bench/importlarge/
//
// BENCH_IMPORT_OATH and BENCH_IMPORT_GA are the sizes to run, comma
// separated (default 10000,100000 and 10000; "0" skips).
package importlarge
