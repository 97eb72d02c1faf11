package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// check is one figure of the summary with its goal.
type check struct {
	scenario, figure, value, goal string
	pass                          bool
}

// section is one scenario's part of the report.
type section struct {
	title string
	body  strings.Builder
}

func (s *section) p(format string, a ...any) { fmt.Fprintf(&s.body, format+"\n", a...) }

type report struct {
	checks   []check
	sections []*section
}

func (r *report) section(title string) *section {
	s := &section{title: title}
	r.sections = append(r.sections, s)
	return s
}

func (r *report) check(scenario, figure, value, goal string, pass bool) {
	r.checks = append(r.checks, check{scenario, figure, value, goal, pass})
}

func (r *report) failed() []check {
	var out []check
	for _, c := range r.checks {
		if !c.pass {
			out = append(out, c)
		}
	}
	return out
}

func ms(d time.Duration) string {
	if d < 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func secs(d time.Duration) string {
	if d < 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func passMark(ok bool) string {
	if ok {
		return "ok"
	}
	return "**FAIL**"
}

// tallyTable renders outcomes per key category.
func tallyTable(s *section, t tally) {
	s.p("| keys | requests | 2xx | 401/403 | 503 | other 5xx | transport errors | other | p50 | p99 |")
	s.p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for c := 0; c < numCats; c++ {
		if t.n[c] == 0 {
			continue
		}
		s.p("| %s | %d | %d | %d | %d | %d | %d | %d | %s | %s |", catNames[c], t.n[c], t.ok[c], t.unauth[c], t.unavailable[c],
			t.other5xx[c], t.transport[c], t.other[c], ms(percentile(t.lat[c], 0.5)), ms(percentile(t.lat[c], 0.99)))
	}
	s.p("")
	if len(t.odd) > 0 {
		var parts []string
		for st, n := range t.odd {
			name := strconv.Itoa(int(st))
			if st == 0 {
				name = "transport error"
			}
			parts = append(parts, fmt.Sprintf("%d × %s", n, name))
		}
		sort.Strings(parts)
		s.p("Other answers: %s.", strings.Join(parts, ", "))
		s.p("")
	}
}
