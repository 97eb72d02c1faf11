// Command keygate-reliability is keygate's fault suite (`make reliability`): it runs real
// processes on loopback — redis-server (plain, with a replica and Sentinel, and a three-master
// Cluster), several `keygate serve` built from ./cmd/keygate, a Go upstream — breaks them under load
// and writes what it measured to docs/reliability.md. It stops by itself: every scenario is bounded
// in time and requests, and a watchdog ends the run (and every child process) past its budget.
//
// Environment: RELIABILITY_SOAK (soak duration, 10m), RELIABILITY_FUZZ (fuzzing in all, 10m),
// RELIABILITY_SCALE (multiplies the other scenarios' durations, 1), RELIABILITY_ONLY (comma-separated
// scenario names: peak is always run). `keygate-reliability fuzz` runs only the fuzz targets.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func envDuration(name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			fmt.Fprintf(os.Stderr, "%s: want a duration such as 2m, got %q\n", name, v)
			os.Exit(2)
		}
		return d
	}
	return def
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

func main() {
	out := flag.String("out", "docs/reliability.md", "where to write the report")
	bin := flag.String("keygate", "", "keygate binary (default: go build ./cmd/keygate into the scratch directory)")
	keep := flag.Bool("keep", false, "keep the scratch directory (logs of every process)")
	flag.Parse()

	soakDur := envDuration("RELIABILITY_SOAK", 10*time.Minute)
	fuzzDur := envDuration("RELIABILITY_FUZZ", 10*time.Minute)
	scale := 1.0
	if v := os.Getenv("RELIABILITY_SCALE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 || f > 10 {
			fmt.Fprintf(os.Stderr, "RELIABILITY_SCALE: want a number in (0, 10], got %q\n", v)
			os.Exit(2)
		}
		scale = f
	}

	if flag.Arg(0) == "fuzz" {
		os.Exit(fuzzOnly(fuzzDur))
	}

	for _, tool := range []string{"redis-server", "redis-cli", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			fmt.Fprintf(os.Stderr, "%s is required (make reliability installs it)\n", tool)
			os.Exit(2)
		}
	}
	work, err := os.MkdirTemp("", "keygate-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cleanup := func() {
		stopAll()
		if !*keep {
			os.RemoveAll(work)
		}
	}
	// Bounded: the whole run, whatever happens, ends within its budget.
	budget := soakDur + fuzzDur + time.Duration(float64(15*time.Minute)*scale) + 5*time.Minute
	time.AfterFunc(budget, func() {
		logf("watchdog: the run exceeded its budget of %s; stopping every process", budget)
		cleanup()
		os.Exit(3)
	})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() { <-sig; logf("interrupted"); cleanup(); os.Exit(130) }()
	defer cleanup()

	if *bin == "" {
		*bin = filepath.Join(work, "keygate")
		logf("building keygate")
		if b, err := exec.Command("go", "build", "-o", *bin, "./cmd/keygate").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build ./cmd/keygate: %v\n%s", err, b)
			os.Exit(1)
		}
	}
	su := &suite{work: work, bin: *bin, scale: scale}
	r := &report{}
	started := time.Now()
	only := map[string]bool{}
	for _, s := range strings.Split(os.Getenv("RELIABILITY_ONLY"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			only[s] = true
		}
	}
	logf("peak (calibration)")
	if err := su.calibrate(r); err != nil {
		fmt.Fprintf(os.Stderr, "calibration failed: %v (logs in %s)\n", err, work)
		*keep = true
		os.Exit(1)
	}
	logf("peak: %d requests/s", su.peak)
	scenarios := []struct {
		name, title string
		run         func(*report) error
	}{
		{"kill", "Redis kill -9 under load", su.killRedis},
		{"empty", "Redis returns empty", su.emptyRedis},
		{"sentinel", "Redis Sentinel failover", su.sentinel},
		{"cluster", "Redis Cluster (three masters)", su.cluster},
		{"revocation", "Revocation across three replicas", su.revocation},
		{"upstream", "Upstream down, slow, resetting", su.upstreamFaults},
		{"soak", "Soak", func(r *report) error { return su.soak(r, soakDur) }},
	}
	for _, sc := range scenarios {
		if len(only) > 0 && !only[sc.name] {
			continue
		}
		logf("%s", sc.title)
		t0 := time.Now()
		if err := sc.run(r); err != nil {
			logf("%s did not complete: %v", sc.title, err)
			r.section(sc.title).p("**Did not complete:** %v\n", err)
			r.check(sc.title, "scenario completed", err.Error(), "completed", false)
			*keep = true
		}
		stopAll()
		logf("%s: %s", sc.title, time.Since(t0).Round(time.Second))
	}
	if len(only) == 0 || only["fuzz"] {
		logf("fuzzing for %s", fuzzDur)
		res, err := runFuzz(fuzzDur, func(s string) { logf("%s", s) })
		if err != nil {
			r.check("Fuzzing", "ran", err.Error(), "ran", false)
		} else {
			r.fuzz(res, fuzzDur)
		}
	}
	if err := writeReport(*out, r, su, time.Since(started), soakDur, fuzzDur); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	logf("wrote %s (%s)", *out, time.Since(started).Round(time.Second))
	if *keep {
		logf("process logs kept in %s", work)
	}
	if f := r.failed(); len(f) > 0 {
		for _, c := range f {
			logf("FAIL %s: %s = %s (goal %s)", c.scenario, c.figure, c.value, c.goal)
		}
		cleanup()
		os.Exit(1)
	}
}

func fuzzOnly(total time.Duration) int {
	res, err := runFuzz(total, func(s string) { logf("%s", s) })
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	status := 0
	fmt.Printf("%-40s %-28s %10s %14s %s\n", "package", "target", "time", "executions", "crashed")
	for _, x := range res {
		fmt.Printf("%-40s %-28s %10s %14d %v\n", strings.TrimPrefix(x.pkg, "github.com/keygate/keygate/"), x.name, x.dur.Round(time.Second), x.execs, x.crashed)
		if x.crashed {
			status = 1
		}
	}
	return status
}

func cmdOutput(name string, args ...string) string {
	b, err := exec.Command(name, args...).Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

func writeReport(path string, r *report, su *suite, took, soakDur, fuzzDur time.Duration) error {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("# Reliability")
	w("")
	w("Written by `make reliability` (`go run ./cmd/keygate-reliability`): real processes on loopback — redis-server (plain, with a replica and Sentinel, a three-master Cluster), `keygate serve` built from ./cmd/keygate, a Go upstream — broken under load. Every figure below is from the run of %s (commit %s), on %d cores shared with the load generator, in %s.",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), cmdOutput("git", "rev-parse", "--short", "HEAD"), nproc(), took.Round(time.Second))
	w("%s; redis-server %s. Soak %s, fuzzing %s in all, other durations ×%g.", cmdOutput("go", "env", "GOVERSION"), strings.Fields(cmdOutput("redis-server", "--version") + " ? ? ?")[2], soakDur, fuzzDur, su.scale)
	w("")
	w("A request is **wrongly admitted** when keygate forwards it (2xx) with a key that was never created, or with a key that was revoked and that the same replica had already refused once. Rerun with `make reliability` (about 25 minutes; `RELIABILITY_SOAK=2m RELIABILITY_FUZZ=2m make reliability` for a shorter run).")
	w("")
	w("## Summary")
	w("")
	w("| scenario | figure | value | goal | |")
	w("| --- | --- | --- | --- | --- |")
	for _, c := range r.checks {
		w("| %s | %s | %s | %s | %s |", c.scenario, c.figure, strings.ReplaceAll(c.value, "|", "/"), c.goal, passMark(c.pass))
	}
	w("")
	for _, s := range r.sections {
		w("## %s", s.title)
		w("")
		b.WriteString(s.body.String())
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
