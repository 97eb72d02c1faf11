package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// fuzzTarget is one fuzz function and its package.
type fuzzTarget struct{ pkg, name string }

type fuzzResult struct {
	fuzzTarget
	dur     time.Duration
	execs   int64
	crashed bool
	detail  string
}

// fuzzTargets lists every Fuzz function of the module (go test -list).
func fuzzTargets() ([]fuzzTarget, error) {
	out, err := exec.Command("go", "test", "-list", "^Fuzz", "./...").Output()
	if err != nil {
		return nil, fmt.Errorf("go test -list: %w", err)
	}
	var ts, pending []fuzzTarget
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(l, "Fuzz"):
			pending = append(pending, fuzzTarget{name: l})
		case strings.HasPrefix(l, "ok"):
			f := strings.Fields(l)
			for _, p := range pending {
				p.pkg = f[1]
				ts = append(ts, p)
			}
			pending = nil
		}
	}
	return ts, nil
}

var execsRE = regexp.MustCompile(`execs: (\d+)`)

// runFuzz runs every target for total/len(targets) each (at least 10 s) and reports executions and
// crashes; a crash leaves its input under the package's testdata/fuzz, as go test does.
func runFuzz(total time.Duration, log func(string)) ([]fuzzResult, error) {
	ts, err := fuzzTargets()
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, fmt.Errorf("no fuzz targets found")
	}
	each := max(10*time.Second, (total+time.Duration(len(ts))-1)/time.Duration(len(ts)))
	var res []fuzzResult
	for _, t := range ts {
		log(fmt.Sprintf("fuzz %s %s for %s", t.pkg, t.name, each))
		cmd := exec.Command("go", "test", "-run", "^$", "-fuzz", "^"+t.name+"$", "-fuzztime", each.String(), t.pkg)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		t0 := time.Now()
		err := cmd.Run()
		r := fuzzResult{fuzzTarget: t, dur: time.Since(t0), crashed: err != nil}
		for _, m := range execsRE.FindAllStringSubmatch(out.String(), -1) {
			r.execs, _ = strconv.ParseInt(m[1], 10, 64) // the last progress line has the total
		}
		if err != nil {
			r.detail = lastLines(out.String(), 15)
			fmt.Fprintf(os.Stderr, "fuzz %s FAILED:\n%s\n", t.name, r.detail)
		}
		res = append(res, r)
	}
	return res, nil
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

func (r *report) fuzz(res []fuzzResult, total time.Duration) {
	s := r.section("Fuzzing")
	s.p("Every fuzz target of the module (`go test -list '^Fuzz' ./...`), %s in all, run one after the other with `go test -fuzz` (`make fuzz` runs the same):", total)
	s.p("")
	s.p("| package | target | time | executions | crashes |")
	s.p("| --- | --- | ---: | ---: | ---: |")
	var sum int64
	crashes := 0
	for _, x := range res {
		c := 0
		if x.crashed {
			c = 1
			crashes++
		}
		sum += x.execs
		s.p("| %s | %s | %s | %d | %d |", strings.TrimPrefix(x.pkg, "github.com/keygate/keygate/"), x.name, x.dur.Round(time.Second), x.execs, c)
	}
	s.p("| | **all** | | **%d** | **%d** |", sum, crashes)
	s.p("")
	for _, x := range res {
		if x.crashed {
			s.p("%s failed:\n\n```\n%s\n```\n", x.name, x.detail)
		}
	}
	r.check("Fuzzing", "crashes", strconv.Itoa(crashes), "0", crashes == 0)
}
