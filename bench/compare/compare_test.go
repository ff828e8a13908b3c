//go:build benchcompare

package compare

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/integration/container"
)

// cell is one measurement: successive passes of pamload over all users.
type cell struct {
	Variant string         `json:"variant"`
	N       int            `json:"n_users"`
	Service string         `json:"service"`
	Model   string         `json:"model"`
	Mode    string         `json:"mode"`
	C       int            `json:"c"`
	Passes  int            `json:"passes"`
	Tx      int            `json:"transactions"`
	OK      int            `json:"ok"`
	Secs    float64        `json:"secs"`
	Rate    float64        `json:"tx_per_s"`
	OKRate  float64        `json:"ok_per_s"`
	P50     float64        `json:"p50_ms"`
	P90     float64        `json:"p90_ms"`
	P99     float64        `json:"p99_ms"`
	AuthP50 float64        `json:"auth_p50_ms"`
	AuthP99 float64        `json:"auth_p99_ms"`
	WallP50 float64        `json:"wall_p50_ms"`
	CPUTx   float64        `json:"client_cpu_ms_per_tx"` // workers' CPU per transaction
	DCPUTx  float64        `json:"daemon_cpu_ms_per_tx"` // otpgated's CPU per transaction
	Fails   map[string]int `json:"fails,omitempty"`
}

type race struct {
	Service string      `json:"service"`
	Model   string      `json:"model"`
	Reps    int         `json:"reps"`
	Hist    map[int]int `json:"successes_histogram"` // successes per run -> runs
	Fails   map[string]int
}

type lostUpdate struct {
	Service string         `json:"service"`
	C       int            `json:"c"`
	N       int            `json:"n_users"`
	Pass1OK int            `json:"pass1_ok"`
	Pass2OK int            `json:"pass2_ok"` // replays accepted
	Fails1  map[string]int `json:"pass1_fails,omitempty"`
}

// freshCPU is the CPU one login costs the PAM side in a fresh process per
// login (sshd's per-connection child), one service's logins of the
// interleaved rounds of freshCPURounds.
type freshCPU struct {
	Service string  `json:"service"`
	N       int     `json:"n_users"`
	Logins  int     `json:"logins"`
	OK      int     `json:"ok"`
	CPU50   float64 `json:"cpu_p50_ms"` // the process's user + system CPU, median
	CPU25   float64 `json:"cpu_p25_ms"`
	CPU75   float64 `json:"cpu_p75_ms"`
	Wall50  float64 `json:"wall_p50_ms"`          // fork to reap
	Auth50  float64 `json:"auth_p50_ms"`          // pam_authenticate
	DCPUTx  float64 `json:"daemon_cpu_ms_per_tx"` // otpgated's, mean (otpgate only)
}

type results struct {
	Date     string            `json:"date"`
	Command  string            `json:"command"`
	Versions map[string]string `json:"versions"`
	LoadIn   string            `json:"loadavg_start"`
	LoadOut  string            `json:"loadavg_end"`
	Duration string            `json:"duration"`
	Cells    []cell            `json:"cells"`
	Races    []race            `json:"races"`
	Lost     []lostUpdate      `json:"lost_updates"`
	Provis   []string          `json:"provisioning"`
	Fresh    []freshCPU        `json:"fresh_cpu,omitempty"`
	FreshLd  [2]string         `json:"fresh_cpu_loadavg,omitempty"` // at its start and end
}

func envInts(t *testing.T, key, def string) []int {
	s := os.Getenv(key)
	if s == "" {
		s = def
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want comma-separated positive integers", key, s)
		}
		out = append(out, n)
	}
	return out
}

// refLibFile is the reference Go library's name in the tools directory.
const refLibFile = "libpam_reference_go.so"

// buildPamload compiles pamload.c, and builds the reference Go library
// (testdata/reflib) as the Makefile builds libpam_otpgate_go.so, into a
// directory bound into containers.
func buildPamload(t *testing.T) string {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(container.RepoRoot(), "bench", "pamload", "pamload.c")
	cmd := exec.Command("gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", filepath.Join(dir, "pamload"), src, "-lpam", "-lpthread")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc %s: %v\n%s", src, err, out)
	}
	root := container.RepoRoot()
	gocmd := exec.Command("go", "build", "-trimpath", "-buildmode=c-shared",
		"-ldflags", "-extldflags '-Wl,--version-script="+filepath.Join(root, "pam", "module", "libpam_otpgate_go.map")+"'",
		"-o", filepath.Join(dir, refLibFile), "./bench/compare/testdata/reflib")
	gocmd.Dir = root
	gocmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := gocmd.CombinedOutput(); err != nil {
		t.Fatalf("go build of the reference library: %v\n%s", err, out)
	}
	return dir
}

func TestCompare(t *testing.T) {
	container.Require(t, "gcc", "oathtool", "pkg-config", "install", "cp")
	for _, so := range []string{"pam_google_authenticator.so", "pam_oath.so"} {
		if _, err := os.Stat("/lib/x86_64-linux-gnu/security/" + so); err != nil {
			t.Fatalf("%s missing: make deps (libpam-google-authenticator, libpam-oath)", so)
		}
	}
	quick := os.Getenv("BENCH_QUICK") == "1"
	sizes := envInts(t, "BENCH_SIZES", "100,1000,10000")
	big := envInts(t, "BENCH_BIG", "")
	reps := envInts(t, "BENCH_RACE_REPS", "50")[0]
	concs := envInts(t, "BENCH_CONCS", "1,2,8,32")
	if quick {
		sizes = envInts(t, "BENCH_SIZES", "100,1000")
		concs = envInts(t, "BENCH_CONCS", "1,8")
		reps = envInts(t, "BENCH_RACE_REPS", "5")[0]
	}
	outDir := os.Getenv("BENCH_OUT")
	if outDir == "" {
		outDir = filepath.Join(container.RepoRoot(), "docs", "bench")
	}
	tools := buildPamload(t)

	res := &results{
		Date:     time.Now().UTC().Format("2006-01-02 15:04 MST"),
		Command:  "make bench-compare",
		Versions: versions(t),
		LoadIn:   loadavg(),
	}
	if env := os.Getenv("BENCH_ENV"); env != "" {
		res.Command = env + " " + res.Command
	}
	begin := time.Now()
	defer func() {
		res.LoadOut = loadavg()
		res.Duration = time.Since(begin).Round(time.Second).String()
		if err := writeReport(res, outDir); err != nil {
			t.Errorf("report: %v", err)
		} else {
			t.Logf("report written to %s", outDir)
		}
	}()

	passesFor := func(n int) int {
		p := 2000 / n
		if quick {
			p /= 4
		}
		return max(1, min(10, p))
	}
	// measure runs one cell: passes of pamload, each on pristine state.
	// A pass starts at the middle user and wraps around: a pass that the
	// time limit stops early (N=10 000 at c=1, every N=100 000 pass) then
	// logs in users from the middle of /etc/passwd, where a getpwnam costs
	// the mean of its linear scan, not users near its top.
	measure := func(e *env, svc, model, mode string, c, passes int, limit float64) cell {
		t.Helper()
		cl := cell{Variant: e.variant, N: e.n, Service: svc, Model: model, Mode: mode, C: c, Passes: passes, Fails: map[string]int{}}
		var tot, auth, wall []float64
		for p := 0; p < passes; p++ {
			e.reset(svc)
			ps := e.pamload(svc, "-c", strconv.Itoa(c), "-w", model, "-m", mode, "--first", strconv.Itoa(e.n/2), "--time-limit", fmt.Sprint(limit))
			cl.Secs += ps.secs
			cl.CPUTx += ps.cpuMS
			if svc == "otpgate" {
				cl.DCPUTx += ps.daemonMS
			}
			for _, r := range ps.records {
				cl.Tx++
				if r.ok {
					cl.OK++
				}
				tot = append(tot, r.total)
				auth = append(auth, r.auth)
				wall = append(wall, r.wl)
			}
			for k, v := range ps.rcs {
				cl.Fails[k] += v
			}
		}
		if cl.Secs > 0 {
			cl.Rate = float64(cl.Tx) / cl.Secs
			cl.OKRate = float64(cl.OK) / cl.Secs
		}
		cl.P50, cl.P90, cl.P99 = pct(tot, 50), pct(tot, 90), pct(tot, 99)
		cl.AuthP50, cl.AuthP99 = pct(auth, 50), pct(auth, 99)
		cl.WallP50 = pct(wall, 50)
		if cl.Tx > 0 {
			cl.CPUTx /= float64(cl.Tx)
			cl.DCPUTx /= float64(cl.Tx)
		}
		t.Logf("%-5s N=%-6d %-8s %-7s %-5s c=%-2d %5d/%-5d ok %7.0f ok/s  p50 %.3f p99 %.3f auth p50 %.3f ms  cpu/tx %.3f + %.3f ms  %v",
			cl.Variant, cl.N, svc, model, mode, c, cl.OK, cl.Tx, cl.OKRate, cl.P50, cl.P99, cl.AuthP50, cl.CPUTx, cl.DCPUTx, cl.Fails)
		res.Cells = append(res.Cells, cl)
		// otpgate must never refuse a valid login.
		if svc == "otpgate" && mode == "code" && cl.OK != cl.Tx {
			t.Errorf("otpgate refused %d of %d valid logins (%s N=%d %s c=%d): %v", cl.Tx-cl.OK, cl.Tx, e.variant, e.n, model, c, cl.Fails)
		}
		if svc == "otpgate" && mode == "wrong" && cl.OK != 0 {
			t.Errorf("otpgate accepted %d wrong codes", cl.OK)
		}
		return cl
	}
	provisioned := func(e *env, d time.Duration) {
		res.Provis = append(res.Provis, fmt.Sprintf("%s N=%d: %v", e.variant, e.n, d.Round(time.Millisecond)))
	}

	// 1. tmpfs, every N: valid codes with worker processes, then the reject
	// path, threads and fresh processes; correctness at N=1000.
	for _, n := range sizes {
		start := time.Now()
		e := newEnv(t, "tmpfs", n, tools)
		provisioned(e, time.Since(start))
		passes := passesFor(n)
		for _, c := range concs {
			for _, svc := range services {
				measure(e, svc, "procs", "code", c, passes, 20)
			}
		}
		for _, c := range []int{1, 8} {
			if quick && c != 1 {
				continue
			}
			for _, svc := range services[1:] {
				measure(e, svc, "procs", "wrong", c, max(1, passes/2), 10)
			}
		}
		for _, svc := range services {
			measure(e, svc, "threads", "code", 8, passes, 20)
		}
		if n == 1000 || (quick && n == sizes[len(sizes)-1]) {
			for _, c := range []int{1, 8} {
				for _, svc := range services {
					measure(e, svc, "fresh", "code", c, 1, 10)
				}
			}
			freshCPURounds(t, e, res, envInts(t, "BENCH_FRESH_ROUNDS", "12")[0], 5, freshServices)
			correctness(t, e, res, reps)
		}
		e.c.Close()
	}

	// 2. Large N for the floor, google-authenticator and otpgate.
	for _, n := range big {
		start := time.Now()
		e := newEnv(t, "tmpfs", n, tools)
		provisioned(e, time.Since(start))
		for _, c := range []int{1, 32} {
			for _, svc := range []string{"permit", "ga", "otpgate"} {
				measure(e, svc, "procs", "code", c, 1, 15)
			}
		}
		for _, svc := range []string{"ga", "otpgate"} {
			measure(e, svc, "procs", "wrong", 1, 1, 10)
		}
		e.c.Close()
	}

	// 3. State on ext4 (real fsync), N=1000.
	if os.Getenv("BENCH_EXT4") != "0" {
		n := 1000
		if quick {
			n = 100
		}
		start := time.Now()
		e := newEnv(t, "ext4", n, tools)
		provisioned(e, time.Since(start))
		for _, c := range concs {
			for _, svc := range services {
				measure(e, svc, "procs", "code", c, 1, 20)
			}
		}
		e.c.Close()
	}
}

// freshServices are the PAM stacks of the fresh-process CPU cells: the
// floor, the incumbent, the loader with the reference Go library, otpgate.
var freshServices = []string{"permit", "ga", "refgo", "otpgate"}

// freshCPURounds measures the CPU of a login in a fresh process per login,
// as sshd's per-connection child: rounds rounds, each running per logins of
// every service of freshServices (a pamload pass of -w fresh -c 1), in an
// order rotated by one each round, so that the machine's load drifts over
// all of them alike. Every round takes the next users, so no code is
// reused and no state needs a reset. The figure is the median over the
// logins of each process's own user + system CPU (wait4).
func freshCPURounds(t *testing.T, e *env, res *results, rounds, per int, freshServices []string) {
	for _, svc := range freshServices {
		e.reset(svc)
	}
	res.FreshLd[0] = loadavg()
	cpu := map[string][]float64{}
	wall := map[string][]float64{}
	auth := map[string][]float64{}
	ok := map[string]int{}
	dcpu := 0.0
	for r := 0; r < rounds; r++ {
		first := (r * per) % e.n
		for k := range freshServices {
			svc := freshServices[(k+r)%len(freshServices)]
			// Each alternative library logs in users of its own:
			// otpgated would refuse otpgate's codes as replays.
			from := (first + e.altUsers[svc]) % e.n
			ps := e.pamload(svc, "-c", "1", "-w", "fresh", "-n", strconv.Itoa(per), "--first", strconv.Itoa(from), "--time-limit", "60")
			for _, rec := range ps.records {
				cpu[svc] = append(cpu[svc], rec.cpu)
				wall[svc] = append(wall[svc], rec.wl)
				auth[svc] = append(auth[svc], rec.auth)
				if rec.ok {
					ok[svc]++
				}
			}
			if svc == "otpgate" {
				dcpu += ps.daemonMS
			}
		}
	}
	res.FreshLd[1] = loadavg()
	for _, svc := range freshServices {
		f := freshCPU{Service: svc, N: e.n, Logins: len(cpu[svc]), OK: ok[svc],
			CPU50: pct(cpu[svc], 50), CPU25: pct(cpu[svc], 25), CPU75: pct(cpu[svc], 75),
			Wall50: pct(wall[svc], 50), Auth50: pct(auth[svc], 50)}
		if svc == "otpgate" && f.Logins > 0 {
			f.DCPUTx = dcpu / float64(f.Logins)
		}
		t.Logf("fresh CPU %-8s %d/%d ok: CPU p50 %.3f ms [p25 %.3f, p75 %.3f], fork to reap p50 %.3f ms, pam_authenticate p50 %.3f ms, otpgated %.3f ms",
			svc, f.OK, f.Logins, f.CPU50, f.CPU25, f.CPU75, f.Wall50, f.Auth50, f.DCPUTx)
		if svc != "ga" && f.OK != f.Logins {
			t.Errorf("fresh CPU: %s accepted %d of %d valid logins", svc, f.OK, f.Logins)
		}
		res.Fresh = append(res.Fresh, f)
	}
}

// correctness runs the same-code race and the lost-update test.
func correctness(t *testing.T, e *env, res *results, reps int) {
	if reps > e.n {
		reps = e.n
	}
	// 32 transactions of one user with one valid code, released at once.
	// Each repetition uses a different user, so no state reset is needed
	// between repetitions.
	for _, model := range []string{"procs", "threads"} {
		r := reps
		if model == "threads" {
			r = max(1, reps*2/5)
		}
		for _, svc := range services[1:] {
			rc := race{Service: svc, Model: model, Reps: r, Hist: map[int]int{}, Fails: map[string]int{}}
			e.reset(svc)
			for k := 0; k < r; k++ {
				ps := e.pamload(svc, "-c", "32", "-n", "32", "--same", "--first", strconv.Itoa(k),
					"--sync", "--freeze", "-w", model, "--time-limit", "60")
				ok := 0
				for _, rec := range ps.records {
					if rec.ok {
						ok++
					}
				}
				rc.Hist[ok]++
				for m, v := range ps.rcs {
					rc.Fails[m] += v
				}
				if svc == "otpgate" && ok != 1 {
					t.Errorf("otpgate race %s rep %d: %d successes for one code, want exactly 1", model, k, ok)
				}
			}
			t.Logf("race %-7s %-8s %d runs: successes->runs %v; failures %v", model, svc, r, rc.Hist, rc.Fails)
			res.Races = append(res.Races, rc)
		}
	}
	// Authenticate every user at concurrency c with the codes of one
	// instant T, then replay exactly the same codes: a replay accepted is a
	// lost update (the first use was not recorded) or a double acceptance.
	for _, c := range []int{2, 8, 32} {
		for _, svc := range services[1:] {
			e.reset(svc)
			ct := strconv.FormatInt(time.Now().Unix(), 10)
			args := []string{"-c", strconv.Itoa(c), "--code-time", ct, "--time-limit", "120"}
			p1 := e.pamload(svc, args...)
			p2 := e.pamload(svc, args...)
			lu := lostUpdate{Service: svc, C: c, N: e.n, Fails1: p1.rcs}
			for _, r := range p1.records {
				if r.ok {
					lu.Pass1OK++
				}
			}
			for _, r := range p2.records {
				if r.ok {
					lu.Pass2OK++
				}
			}
			t.Logf("lost updates %-8s c=%-2d pass 1 ok %d/%d, replays accepted %d; pass 1 failures %v", svc, c, lu.Pass1OK, e.n, lu.Pass2OK, p1.rcs)
			if svc == "otpgate" && (lu.Pass1OK != e.n || lu.Pass2OK != 0) {
				t.Errorf("otpgate c=%d: pass 1 accepted %d of %d valid codes, pass 2 accepted %d replays (want %d and 0)", c, lu.Pass1OK, e.n, lu.Pass2OK, e.n)
			}
			res.Lost = append(res.Lost, lu)
		}
	}
	e.reset("otpgate")
}

// pct is the nearest-rank percentile.
func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	k := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(k, len(s)-1))]
}

func writeReport(res *results, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "comparison.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	md, plots := report(res)
	for name, svg := range plots {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(svg), 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "comparison.md"), []byte(md), 0o644)
}

// TestProfile records where the CPU goes while otpgate serves one pass of
// valid codes (BENCH_PROFILE_N users, default 3000, at c = BENCH_PROFILE_C,
// default 8, worker processes, tmpfs): `perf record -a -g` over the whole
// machine, reported per command and shared object, and per symbol for
// otpgated. Not part of make bench-compare.
//
//	OTPGATE_BIN=$PWD/bin go test -tags benchcompare -run TestProfile -v ./bench/compare/
func TestProfile(t *testing.T) {
	container.Require(t, "perf", "gcc")
	n := envInts(t, "BENCH_PROFILE_N", "3000")[0]
	c := envInts(t, "BENCH_PROFILE_C", "8")[0]
	svc := os.Getenv("BENCH_PROFILE_SERVICE")
	if svc == "" {
		svc = "otpgate"
	}
	e := newEnv(t, "tmpfs", n, buildPamload(t))
	data := os.Getenv("BENCH_PROFILE_DATA") // keep perf.data there for perf report
	if data == "" {
		data = filepath.Join(t.TempDir(), "perf.data")
	}
	perf := exec.Command("perf", "record", "-a", "-g", "-F", "1999", "-o", data)
	if err := perf.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	model := os.Getenv("BENCH_PROFILE_MODEL")
	if model == "" {
		model = "procs"
	}
	ps := e.pamload(svc, "-c", strconv.Itoa(c), "-w", model, "--time-limit", "20")
	_ = perf.Process.Signal(os.Interrupt)
	_ = perf.Wait()
	ok := 0
	for _, r := range ps.records {
		if r.ok {
			ok++
		}
	}
	t.Logf("%s c=%d: %d of %d ok in %.2fs; CPU per transaction: workers %.3f ms, otpgated %.3f ms",
		svc, c, ok, len(ps.records), ps.secs, ps.cpuMS/float64(len(ps.records)), ps.daemonMS/float64(len(ps.records)))
	for _, args := range [][]string{
		{"report", "-i", data, "--stdio", "--no-children", "--sort", "comm,dso", "-g", "none", "--percent-limit", "1"},
		{"report", "-i", data, "--stdio", "--no-children", "--comm", "otpgated", "--percentage", "relative", "--sort", "dso,symbol", "-g", "none", "--percent-limit", "1"},
		{"report", "-i", data, "--stdio", "--children", "--comm", "otpgated", "--percentage", "relative", "--sort", "symbol", "-g", "none", "--percent-limit", "4"},
		{"report", "-i", data, "--stdio", "--no-children", "--comm", "pamload", "--percentage", "relative", "--sort", "dso,symbol", "-g", "none", "--percent-limit", "1"},
		{"report", "-i", data, "--stdio", "--children", "--comm", "pamload", "--percentage", "relative", "--sort", "symbol", "-g", "none", "--percent-limit", "4"},
	} {
		out, err := exec.Command("perf", args...).CombinedOutput()
		if err != nil {
			t.Errorf("perf %v: %v", args, err)
		}
		var keep []string
		for _, l := range strings.Split(string(out), "\n") {
			if l != "" && !strings.HasPrefix(l, "#") {
				keep = append(keep, l)
			}
		}
		t.Logf("perf %s:\n%s", strings.Join(args[3:], " "), strings.Join(keep[:min(len(keep), 60)], "\n"))
	}
}

// TestProvision only provisions a container for each of BENCH_SIZES
// (default 10000) and prints how long it took, `otpgate admin import` on
// its own line: the provisioning cost without a whole run. Not part of
// make bench-compare.
//
//	BENCH_SIZES=10000,100000 OTPGATE_BIN=$PWD/bin go test -tags benchcompare -run TestProvision -v ./bench/compare/
func TestProvision(t *testing.T) {
	container.Require(t, "gcc", "pkg-config", "install", "cp")
	tools := buildPamload(t)
	for _, n := range envInts(t, "BENCH_SIZES", "10000") {
		e := newEnv(t, "tmpfs", n, tools)
		e.c.Close()
	}
}

// TestFresh runs only the fresh-process CPU cells (a new process per
// login, as sshd's per-login PAM child: pam_permit, google-authenticator,
// the reference Go library and otpgate, interleaved) at N = BENCH_SIZES
// (default 1000), BENCH_FRESH_ROUNDS rounds of 5 logins each, and prints
// them: a quick look at the PAM module's start cost without a whole run.
// BENCH_FRESH_ALT names further builds of libpam_otpgate_go.so in
// OTPGATE_BIN (at most 7), measured in the same rounds as alt0, alt1, ...:
// an experiment against the current library under the same load. The
// report is not written. Not part of make bench-compare.
//
//	OTPGATE_BIN=$PWD/bin BENCH_FRESH_ALT="old.so" go test -tags benchcompare -run TestFresh -v ./bench/compare/
func TestFresh(t *testing.T) {
	container.Require(t, "gcc", "oathtool", "pkg-config", "install", "cp")
	if len(altLibs()) > 7 {
		t.Fatalf("BENCH_FRESH_ALT names %d libraries; at most 7", len(altLibs()))
	}
	tools := buildPamload(t)
	svcs := freshServices
	for i := range altLibs() {
		svcs = append(svcs[:len(svcs):len(svcs)], fmt.Sprintf("alt%d", i))
	}
	for _, n := range envInts(t, "BENCH_SIZES", "1000") {
		e := newEnv(t, "tmpfs", n, tools)
		res := &results{}
		freshCPURounds(t, e, res, envInts(t, "BENCH_FRESH_ROUNDS", "12")[0], 5, svcs)
		t.Logf("load average %s at the start, %s at the end", res.FreshLd[0], res.FreshLd[1])
		e.c.Close()
	}
}

// TestReport rewrites the report and plots from BENCH_OUT/comparison.json
// (after a change to the report's layout), without measuring anything.
//
//	go test -tags benchcompare -run TestReport ./bench/compare/
func TestReport(t *testing.T) {
	dir := os.Getenv("BENCH_OUT")
	if dir == "" {
		dir = filepath.Join(container.RepoRoot(), "docs", "bench")
	}
	data, err := os.ReadFile(filepath.Join(dir, "comparison.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res results
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	if err := writeReport(&res, dir); err != nil {
		t.Fatal(err)
	}
}
