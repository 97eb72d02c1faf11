package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/keygate/keygate/keys"
)

// The instruction-count mode (-instructions, make bench-instructions): each proxy runs under
// valgrind's callgrind with GOMAXPROCS=1, takes a warm-up load, then a measured load of GETs with a
// cached key over 32 connections, and the user-space instructions it executed between two
// callgrind dumps are divided by the requests it answered. Unlike req/s or CPU time, the count
// does not depend on what else the machine runs (the same binary and load give the same figure
// within about 1%), so a change's effect can be read on a shared machine. It does not count the
// kernel's work (system calls, TCP), nor cache misses: the wall-clock rounds remain the verdict.

// instrSetup is one proxy measured in instruction-count mode.
type instrSetup struct {
	name string
	env  []string
	args []string // the command; the listen address is addr
	addr string
}

// instrResult is one setup's measurement.
type instrResult struct {
	name        string
	requests    int64
	instrPerReq float64
	err         error
}

func runInstructions(o options) error {
	for _, tool := range []string{"valgrind", "callgrind_control"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("-instructions needs %s (apt-get install valgrind)", tool)
		}
	}
	b, self, err := newBench(o)
	if err != nil {
		return err
	}
	defer b.close()
	if b.adminKey, err = keys.GenerateAPIKey(); err != nil {
		return err
	}
	keysFile := filepath.Join(b.dir, "bare-keys.txt")
	if err := os.WriteFile(keysFile, []byte(b.adminKey+"\n"), 0o600); err != nil {
		return err
	}
	dataDir := filepath.Join(b.dir, "data")
	sealer, _ := keys.NewSealer([]byte(strings.Repeat("\xab", 32)))
	s, err := keys.OpenBolt(dataDir, sealer, 0)
	if err != nil {
		return err
	}
	_, err = s.CreateAPIKey(context.Background(), keys.NewAPIKey{ProjectID: 1, Name: "bench admin", Role: keys.RoleAdmin, Key: b.adminKey})
	s.Close()
	if err != nil {
		return err
	}

	upstream := "http://" + b.backend
	var setups []instrSetup
	for _, fast := range []bool{false, true} {
		name, env := "bare ReverseProxy + map (std Transport)", []string(nil)
		if fast {
			name, env = "bare ReverseProxy + map (keygate's transport)", []string{"BARE_FAST=1"}
		}
		addr := freePort()
		setups = append(setups, instrSetup{name: name, env: env, addr: addr, args: []string{self, "bareproxy", addr, upstream, keysFile}})
	}
	for _, tr := range []string{"fast", "std"} {
		studio := freePort()
		setups = append(setups, instrSetup{
			name: "keygate, full policy (" + tr + " transport)", addr: studio, args: []string{b.o.keygate, "serve"},
			env: append(keygateBenchEnv(upstream), "KEYGATE_DATA_DIR="+dataDir, "KEYGATE_UPSTREAM_TRANSPORT="+tr,
				"KEYGATE_STUDIO_LISTEN="+studio, "KEYGATE_INGESTION_LISTEN="+freePort(), "KEYGATE_OPS_LISTEN="+freePort()),
		})
	}
	var results []instrResult
	for _, st := range setups {
		fmt.Fprintf(os.Stderr, "%s under callgrind…\n", st.name)
		r := b.instructions(st)
		if r.err != nil {
			fmt.Fprintf(os.Stderr, "  %v\n", r.err)
		}
		results = append(results, r)
	}
	printInstructions(results)
	return nil
}

// keygateBenchEnv is keygate's configuration in every bench run: the whole policy on, the master
// key set.
func keygateBenchEnv(upstream string) []string {
	return []string{
		"KEYGATE_STUDIO_UPSTREAM=" + upstream, "KEYGATE_INGESTION_UPSTREAM=" + upstream,
		// Limits stay on (the limiter runs on every ingestion request) but high enough not to refuse.
		"KEYGATE_LIMIT_ADMIN=1000000/s burst 1000000", "KEYGATE_LIMIT_PROJECT=1000000/s burst 1000000", "KEYGATE_LIMIT_DEVICE=1000000/s burst 1000000",
		// A cache smaller than the 10,000-key mix, so the mix exercises both the cache and the store.
		"KEYGATE_CACHE_SIZE=5000",
		"KEYGATE_MASTER_KEY=" + strings.Repeat("ab", 32),
	}
}

// instructions runs one setup under callgrind and measures it.
func (b *bench) instructions(st instrSetup) instrResult {
	res := instrResult{name: st.name}
	out := filepath.Join(b.dir, "callgrind-"+strconv.Itoa(len(b.procs))+".out")
	args := append([]string{"valgrind", "--tool=callgrind", "--callgrind-out-file=" + out}, st.args...)
	// Asynchronous preemption's signals would be counted as work; GOMAXPROCS=1 is set by start.
	p, err := b.start(filepath.Base(out), 0, append([]string{"GODEBUG=asyncpreemptoff=1"}, st.env...), args...)
	if err != nil {
		res.err = err
		return res
	}
	defer func() {
		p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			p.Process.Kill()
			<-done
		}
	}()
	if res.err = waitPortFor(st.addr, 2*time.Minute); res.err != nil {
		return res
	}
	spec := reqSpec{method: "GET", url: "http://" + st.addr + "/v1/api/1/raw-data", keys: []string{b.adminKey}, want: 200}
	load := func(d time.Duration) (loadResult, error) {
		if b.useWrk {
			return wrkLoad(b.dir, spec, b.o.conns, d)
		}
		return goLoad(spec, b.o.conns, d)
	}
	if _, err := load(3 * time.Second); err != nil {
		res.err = err
		return res
	}
	dump := func() (int64, error) {
		if o, err := exec.Command("callgrind_control", "-d", strconv.Itoa(p.Process.Pid)).CombinedOutput(); err != nil {
			return 0, fmt.Errorf("callgrind_control: %v: %s", err, o)
		}
		return lastDumpTotal(out)
	}
	if _, err := dump(); err != nil { // the next dump counts from here
		res.err = err
		return res
	}
	r, err := load(10 * time.Second)
	if err != nil {
		res.err = err
		return res
	}
	if r.good != r.requests || r.requests == 0 {
		res.err = fmt.Errorf("%d of %d answers were not 200", r.requests-r.good, r.requests)
		return res
	}
	after, err := dump()
	if err != nil {
		res.err = err
		return res
	}
	res.requests = r.requests
	res.instrPerReq = float64(after) / float64(r.requests)
	return res
}

// lastDumpTotal reads the instruction total of the newest callgrind dump of out (out.1, out.2, …),
// waiting for callgrind to finish writing it.
func lastDumpTotal(out string) (int64, error) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		matches, _ := filepath.Glob(out + ".*")
		best, bestN := "", 0
		for _, m := range matches {
			if n, err := strconv.Atoi(strings.TrimPrefix(m, out+".")); err == nil && n > bestN {
				best, bestN = m, n
			}
		}
		if best != "" {
			if total, ok := dumpTotal(best); ok {
				if err := os.Rename(best, best+".read"); err == nil {
					return total, nil
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return 0, fmt.Errorf("no callgrind dump in %s", filepath.Dir(out))
}

// dumpTotal is a dump's "summary:" (or "totals:") line: the instructions since the previous dump.
func dumpTotal(path string) (int64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, p := range []string{"summary: ", "totals: "} {
			if v, ok := strings.CutPrefix(line, p); ok {
				n, err := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
				return n, err == nil
			}
		}
	}
	return 0, false
}

func printInstructions(rs []instrResult) {
	fmt.Println("\nInstructions per proxied GET (callgrind, user space, GOMAXPROCS=1, 32 connections, 10 s):")
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "setup\trequests\tinstructions/request\tbare (std) / setup\t")
	base := 0.0
	if len(rs) > 0 && rs[0].err == nil {
		base = rs[0].instrPerReq
	}
	for _, r := range rs {
		if r.err != nil {
			fmt.Fprintf(tw, "%s\t–\t%v\t\t\n", r.name, r.err)
			continue
		}
		ratio := "–"
		if base > 0 {
			ratio = fmt.Sprintf("%.2f", base/r.instrPerReq)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t\n", r.name, r.requests, r.instrPerReq, ratio)
	}
	tw.Flush()
}

// waitPortFor is waitPort with a longer wait (a program under valgrind starts slowly).
func waitPortFor(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if waitPort(addr) == nil {
			return nil
		}
	}
	return fmt.Errorf("nothing listens on %s after %v", addr, d)
}
