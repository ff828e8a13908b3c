//go:build root

package bolt

import (
	"fmt"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/otpgate/otpgate/daemon/store"
)

// benchDir is where benchmarks keep their store: a real disk, so that
// fsync costs what it costs in production (tmpfs would make it free).
// Check it with `findmnt -T /var/tmp`.
const benchDir = "/var/tmp"

// BenchmarkUpdate measures durable updates from c concurrent goroutines,
// each on its own user. ns/op is wall time per update (so throughput is
// 1e9/ns-op updates/s); commits/op is bbolt transactions per update, the
// share of a commit (two fdatasyncs) each update pays.
func BenchmarkUpdate(b *testing.B) {
	for _, c := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("c=%d", c), func(b *testing.B) {
			d := openBenchDB(b)
			runConcurrent(b, d, c, func(user string) error { return d.Update(user, increment) })
		})
	}
	// The same load with one transaction per update (no group commit):
	// what the group commit saves.
	for _, c := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("nogroup/c=%d", c), func(b *testing.B) {
			d := openBenchDB(b)
			runConcurrent(b, d, c, func(user string) error {
				return d.db.Update(func(tx *bbolt.Tx) error {
					return apply(tx.Bucket(usersBucket), &request{user: user, fn: increment})
				})
			})
		})
	}
	// bbolt's own DB.Batch with a 1 ms MaxBatchDelay, the alternative
	// design: the timer costs an idle caller up to 1 ms.
	for _, c := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("bboltBatch1ms/c=%d", c), func(b *testing.B) {
			d := openBenchDB(b)
			d.db.MaxBatchDelay = time.Millisecond
			runConcurrent(b, d, c, func(user string) error {
				return d.db.Batch(func(tx *bbolt.Tx) error {
					return apply(tx.Bucket(usersBucket), &request{user: user, fn: increment})
				})
			})
		})
	}
}

func openBenchDB(b *testing.B) *DB {
	b.Helper()
	d, err := Open(newStateDir(b, benchDir))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	return d
}

// runConcurrent spreads b.N calls of update over c goroutines, goroutine
// i always updating user i.
func runConcurrent(b *testing.B, d *DB, c int, update func(user string) error) {
	b.Helper()
	txBefore := d.txID(b)
	b.ResetTimer()
	var wg sync.WaitGroup
	for i := range c {
		n := b.N / c
		if i < b.N%c {
			n++
		}
		user := fmt.Sprintf("bench%02d", i)
		wg.Go(func() {
			for range n {
				if err := update(user); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(d.txID(b)-txBefore)/float64(b.N), "commits/op")
	total := 0
	err := d.List("", func(rec *store.Record) error { total += rec.Failures; return nil })
	if err != nil || total != b.N {
		b.Fatalf("counters sum to %d (%v), want %d", total, err, b.N)
	}
}
