// Package compare is the comparison suite: otpgate against
// google-authenticator-libpam and pam_oath (Debian's packages), with
// pam_permit as the floor, driven by bench/pamload/pamload.c through real
// libpam inside a namespace container (integration/container).
//
//	make bench-compare
//	OTPGATE_BIN=$PWD/bin go test -tags benchcompare -run TestCompare -timeout 60m -v ./bench/compare/
//
// Environment: BENCH_SIZES (default "100,1000,10000"), BENCH_BIG (extra N for
// pam_permit, google-authenticator and otpgate only, e.g. "100000"),
// BENCH_CONCS (concurrencies of the valid-code and ext4 cells, default
// "1,2,8,32"; the reject, thread, fresh-process and correctness cells keep
// their own),
// BENCH_EXT4=0 (skip the ext4 variant), BENCH_RACE_REPS (default 50),
// BENCH_FRESH_ROUNDS (rounds of the fresh-process CPU cells, default 12, of 5
// logins per service each),
// BENCH_QUICK=1 (a small smoke run), BENCH_OUT (default docs/bench).
//
// TestProfile runs one pass (BENCH_PROFILE_N users, default 3000, at
// BENCH_PROFILE_C, default 8, for BENCH_PROFILE_SERVICE, default otpgate)
// under `perf record -a -g` and prints where the CPU went (keep the data
// with BENCH_PROFILE_DATA=FILE). BENCH_PAMLOAD_ENV="VAR=value ..." runs
// pamload with extra environment (experiments, e.g. GOMAXPROCS=1 for the Go
// runtime pam_otpgate starts in the client). TestReport re-renders the report
// and plots from BENCH_OUT/comparison.json. TestProvision only provisions
// a container for each of BENCH_SIZES (default 10000) and prints how long it
// took. TestFresh runs only the fresh-process CPU cells and prints them
// (BENCH_FRESH_ALT="a.so b.so" adds other builds of the Go library from
// OTPGATE_BIN, measured in the same interleaved rounds); TestProfile's
// BENCH_PROFILE_MODEL (default procs) may be fresh.
//
// The fresh-process CPU cells compare, in interleaved rounds of a new process
// per login, pam_permit, google-authenticator, pam_otpgate.so loading a
// reference Go library that returns at once (testdata/reflib, built by the
// suite, named by the loader's golib= argument) and otpgate: the
// reference's cost is the Go runtime's start, and otpgate's difference to it
// is its own work.
//
// Performance figures go to the report; only correctness concerning
// otpgate is asserted: exactly one success in every 32-way same-code race,
// no replay accepted after concurrent passes (no lost update), and no valid
// login refused. The incumbents' failures are recorded, not asserted.
package compare
