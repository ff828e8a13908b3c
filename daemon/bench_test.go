//go:build root

package daemon

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon/store"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/otp"
)

// seedUsers writes n active enrollments straight into the store (the
// users need not exist in /etc/passwd: root may verify any name) and
// returns their secrets.
func seedUsers(tb testing.TB, d *testDaemon, n int) [][]byte {
	tb.Helper()
	secrets := make([][]byte, n)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	sem := make(chan struct{}, 64)
	for i := range n {
		secret, err := otp.GenerateSecret(20)
		if err != nil {
			tb.Fatal(err)
		}
		secrets[i] = secret
		user := fmt.Sprintf("bench%06d", i)
		sealed, err := d.sealer.Seal(user, secret)
		if err != nil {
			tb.Fatal(err)
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			err := d.db.Update(user, func(*store.Record) (*store.Record, error) {
				return &store.Record{User: user, Active: &store.Enrollment{
					SealedSecret: sealed, Algorithm: "SHA1", Digits: 6, Period: 30, CreatedAt: d.clock.Now(), ActivatedAt: d.clock.Now(),
				}}, nil
			})
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		tb.Fatal(err)
	default:
	}
	return secrets
}

// BenchmarkLogin measures successful logins through the real socket and
// the bbolt store on disk, with 10 000 enrolled users: each one a login
// dialogue on its own connection (login_start, then the code in
// login_answer, an fsync'd commit shared by concurrent logins), the first
// use of a fresh code of a different user.
func BenchmarkLogin(b *testing.B) {
	const users = 10_000
	cfg := testConfig(b)
	d := startDaemon(b, cfg, nil)
	secrets := seedUsers(b, d, users)
	for _, clients := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			var latencies []time.Duration
			var mu sync.Mutex
			var rejected atomic.Int64
			b.ResetTimer()
			for done := 0; done < b.N; {
				// Each batch uses every user at most once, then moves the clock
				// two steps on, with no request in flight.
				batch := min(users, b.N-done)
				d.clock.Add(60 * time.Second)
				var next atomic.Int64
				var wg sync.WaitGroup
				for range clients {
					wg.Go(func() {
						var local []time.Duration
						for {
							i := int(next.Add(1)) - 1
							if i >= batch {
								break
							}
							user := fmt.Sprintf("bench%06d", i)
							code := d.code(secrets[i], 0)
							start := time.Now()
							st, err := d.tryLogin(protocol.Request{User: user, Service: "bench"}, code)
							local = append(local, time.Since(start))
							if err != nil || !shows(st, protocol.OutcomeAccept) {
								rejected.Add(1)
							}
						}
						mu.Lock()
						latencies = append(latencies, local...)
						mu.Unlock()
					})
				}
				wg.Wait()
				done += batch
			}
			b.StopTimer()
			if n := rejected.Load(); n > 0 {
				b.Fatalf("%d of %d valid codes were not accepted", n, b.N)
			}
			slices.Sort(latencies)
			b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkLoginWrongCode measures logins with a wrong code (with the
// clock-hint search of ±20 steps), each charged as a failure in a
// committed transaction.
func BenchmarkLoginWrongCode(b *testing.B) {
	cfg := testConfig(b)
	cfg.RateLimit.MaxFailures = 100
	d := startDaemon(b, cfg, nil)
	secrets := seedUsers(b, d, 1000)
	b.ResetTimer()
	for i := range b.N {
		user := fmt.Sprintf("bench%06d", i%1000)
		code := "000000"
		if d.code(secrets[i%1000], 0) == code {
			code = "000001"
		}
		st, err := d.tryLogin(protocol.Request{User: user}, code)
		if err != nil || (!shows(st, protocol.OutcomeReject) && !shows(st, protocol.OutcomeLocked)) {
			b.Fatalf("%v %+v", err, st)
		}
		if i%1000 == 999 {
			b.StopTimer()
			d.clock.Add(2 * time.Hour) // let lockouts expire
			b.StartTimer()
		}
	}
}

// BenchmarkAccountLookup measures resolving the last user of /etc/passwd
// (the files backend's worst case: a scan of the whole file) and an
// unknown name, through NSS each time and through the account cache
// (two stat calls and a map lookup). For a large user database, run it in
// a private mount namespace with a big passwd file bound over
// /etc/passwd (docs/BENCHMARKS.md, daemon).
func BenchmarkAccountLookup(b *testing.B) {
	data, err := os.ReadFile("/etc/passwd")
	if err != nil {
		b.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	last, _, _ := strings.Cut(lines[len(lines)-1], ":")
	b.Logf("/etc/passwd: %d lines, last user %s", len(lines), last)
	for _, bc := range []struct{ name, user string }{{"last-user", last}, {"unknown", "otpgate-no-such-user"}} {
		b.Run("nss/"+bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := lookupAccount(bc.user, false); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("cached/"+bc.name, func(b *testing.B) {
			c := newAccountCache(lookupAccount, systemClock{}, accountDBFiles)
			for b.Loop() {
				if _, err := c.get(bc.user, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
