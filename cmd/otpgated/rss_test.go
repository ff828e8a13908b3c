//go:build root

package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon/seal"
	"github.com/otpgate/otpgate/daemon/store"
	"github.com/otpgate/otpgate/daemon/store/bolt"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/otp"
)

// BenchmarkRSS100kUsers seeds 100 000 enrollments, starts the real
// otpgated on them, verifies codes of random users and lists all users
// once, then reports the daemon's resident set size (VmRSS and VmHWM).
// Run: go test -run '^$' -bench RSS100k -benchtime 1x ./cmd/otpgated
func BenchmarkRSS100kUsers(b *testing.B) {
	const users = 100_000
	dir := b.TempDir()
	state := filepath.Join(dir, "state")
	if err := store.PrepareStateDir(state); err != nil {
		b.Fatal(err)
	}
	key, err := seal.LoadOrCreateKey(filepath.Join(state, store.KeyFile))
	if err != nil {
		b.Fatal(err)
	}
	sealer, err := seal.New(key)
	if err != nil {
		b.Fatal(err)
	}
	db, err := bolt.Open(state)
	if err != nil {
		b.Fatal(err)
	}
	secrets := make([][]byte, users)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	now := time.Now()
	for i := range users {
		secrets[i], _ = otp.GenerateSecret(20)
		user := fmt.Sprintf("u%06d", i)
		sealed, err := sealer.Seal(user, secrets[i])
		if err != nil {
			b.Fatal(err)
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			err := db.Update(user, func(*store.Record) (*store.Record, error) {
				return &store.Record{User: user, Active: &store.Enrollment{SealedSecret: sealed, Algorithm: "SHA1", Digits: 6, Period: 30, CreatedAt: now, ActivatedAt: now}}, nil
			})
			if err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}

	in := &instance{t: &testing.T{}, dir: dir, socket: filepath.Join(dir, "run", "s.sock"), state: state, cfgPath: filepath.Join(dir, "c.toml")}
	cfg := fmt.Sprintf("[daemon]\nsocket = %q\nstate_dir = %q\n", in.socket, state)
	if err := os.WriteFile(in.cfgPath, []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	in.start()
	defer in.kill9()
	b.ResetTimer()
	for range b.N {
		for range 2000 {
			i := rand.IntN(users)
			st, err := in.login(fmt.Sprintf("u%06d", i), otp.TOTP(secrets[i], time.Now(), otp.DefaultParams()))
			if err != nil || st.Verdict != protocol.VerdictSuccess && st.Verdict != protocol.VerdictDeny {
				b.Fatalf("login: %v %+v", err, st)
			}
		}
		c := protocol.Client{Socket: in.socket}
		list, err := c.ListUsers(b.Context())
		if err != nil {
			b.Fatalf("admin list: %v", err)
		}
		if len(list) != users {
			b.Fatalf("admin list returned %d users", len(list))
		}
	}
	b.StopTimer()
	if fi, err := os.Stat(filepath.Join(state, store.DBFile)); err == nil {
		b.ReportMetric(float64(fi.Size())/(1<<20), "db-MB")
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", in.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && (f[0] == "VmRSS:" || f[0] == "VmHWM:" || f[0] == "RssAnon:" || f[0] == "RssFile:") {
			kb, _ := strconv.Atoi(f[1])
			b.ReportMetric(float64(kb)/1024, strings.TrimSuffix(f[0], ":")+"-MB")
		}
	}
}
