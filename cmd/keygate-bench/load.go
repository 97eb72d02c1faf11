package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// loadResult is one scenario's measurement.
type loadResult struct {
	tool     string
	requests int64
	good     int64 // answered with the expected status
	seconds  float64
	p50, p99 time.Duration
}

func (r loadResult) rps() float64 { return float64(r.requests) / r.seconds }

// reqSpec describes the requests of a scenario.
type reqSpec struct {
	method string
	url    string
	keys   []string // cycled per request
	body   func(i int64) []byte
	ctype  string
	want   int // expected status
}

// goLoad is the Go load generator: conns workers over keep-alive connections for d, recording every
// latency. Bounded by time and by a request cap.
func goLoad(spec reqSpec, conns int, d time.Duration) (loadResult, error) {
	tr := &http.Transport{MaxIdleConns: conns * 2, MaxIdleConnsPerHost: conns * 2, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var counter, good atomic.Int64
	const maxRequests = 5_000_000
	lat := make([][]time.Duration, conns)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			lat[w] = make([]time.Duration, 0, 1<<16)
			for ctx.Err() == nil {
				i := counter.Add(1)
				if i > maxRequests {
					return
				}
				var body io.Reader
				if spec.body != nil {
					body = bytes.NewReader(spec.body(i))
				}
				req, _ := http.NewRequestWithContext(ctx, spec.method, spec.url, body)
				if len(spec.keys) > 0 {
					req.Header.Set("x-api-key", spec.keys[int(i)%len(spec.keys)])
				}
				if spec.ctype != "" {
					req.Header.Set("Content-Type", spec.ctype)
				}
				t0 := time.Now()
				res, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						firstErr.CompareAndSwap(nil, err)
					}
					counter.Add(-1)
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				lat[w] = append(lat[w], time.Since(t0))
				if res.StatusCode == spec.want {
					good.Add(1)
				}
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		if e, ok := firstErr.Load().(error); ok {
			return loadResult{}, e
		}
		return loadResult{}, fmt.Errorf("no requests completed")
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	return loadResult{tool: "go", requests: int64(len(all)), good: good.Load(), seconds: elapsed,
		p50: all[len(all)*50/100], p99: all[len(all)*99/100]}, nil
}

// wrkScript writes the Lua script that cycles keys and sets the method and body.
func wrkScript(dir string, spec reqSpec) (string, error) {
	keysFile := filepath.Join(dir, "wrk-keys.txt")
	if err := os.WriteFile(keysFile, []byte(strings.Join(spec.keys, "\n")+"\n"), 0o600); err != nil {
		return "", err
	}
	var bodyLine string
	if spec.body != nil {
		bf := filepath.Join(dir, "wrk-body.bin")
		if err := os.WriteFile(bf, spec.body(0), 0o600); err != nil {
			return "", err
		}
		bodyLine = fmt.Sprintf(`local f = io.open(%q, "rb"); wrk.body = f:read("*a"); f:close()`, bf)
	}
	script := fmt.Sprintf(`
local keys = {}
for line in io.lines(%q) do if #line > 0 then keys[#keys + 1] = line end end
wrk.method = %q
%s
local hdr = {}
%s
local i = 0
request = function()
  i = i + 1
  if #keys > 0 then hdr["x-api-key"] = keys[(i %% #keys) + 1] end
  return wrk.format(nil, nil, hdr, wrk.body)
end
`, keysFile, spec.method, bodyLine, ctypeLine(spec.ctype))
	p := filepath.Join(dir, "wrk.lua")
	return p, os.WriteFile(p, []byte(script), 0o600)
}

func ctypeLine(ct string) string {
	if ct == "" {
		return ""
	}
	return fmt.Sprintf(`hdr["Content-Type"] = %q`, ct)
}

var (
	wrkRPS     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkReqs    = regexp.MustCompile(`(\d+) requests in ([0-9.]+)(us|ms|s|m)`)
	wrkPct     = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSockErr = regexp.MustCompile(`Socket errors: (.*)`)
)

func unit(v float64, u string) time.Duration {
	switch u {
	case "us":
		return time.Duration(v * float64(time.Microsecond))
	case "ms":
		return time.Duration(v * float64(time.Millisecond))
	case "m":
		return time.Duration(v * float64(time.Minute))
	}
	return time.Duration(v * float64(time.Second))
}

// wrkLoad runs wrk -t1 pinned with the orchestrator.
func wrkLoad(dir string, spec reqSpec, conns int, d time.Duration) (loadResult, error) {
	script, err := wrkScript(dir, spec)
	if err != nil {
		return loadResult{}, err
	}
	out, err := exec.Command("wrk", "-t1", "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(int(d.Seconds()))+"s", "--latency", "-s", script, spec.url).CombinedOutput()
	if err != nil {
		return loadResult{}, fmt.Errorf("wrk: %v: %s", err, out)
	}
	s := string(out)
	r := loadResult{tool: "wrk"}
	m := wrkReqs.FindStringSubmatch(s)
	if m == nil || wrkRPS.FindStringSubmatch(s) == nil {
		return r, fmt.Errorf("cannot read wrk output: %s", s)
	}
	r.requests, _ = strconv.ParseInt(m[1], 10, 64)
	v, _ := strconv.ParseFloat(m[2], 64)
	r.seconds = unit(v, m[3]).Seconds()
	for _, pm := range wrkPct.FindAllStringSubmatch(s, -1) {
		v, _ := strconv.ParseFloat(pm[2], 64)
		if pm[1] == "50" {
			r.p50 = unit(v, pm[3])
		} else {
			r.p99 = unit(v, pm[3])
		}
	}
	bad := int64(0)
	if nm := wrkNon2xx.FindStringSubmatch(s); nm != nil {
		bad, _ = strconv.ParseInt(nm[1], 10, 64)
	}
	if spec.want >= 200 && spec.want < 400 {
		r.good = r.requests - bad
	} else {
		r.good = bad
	}
	if se := wrkSockErr.FindStringSubmatch(s); se != nil {
		fmt.Fprintf(os.Stderr, "  (wrk socket errors: %s)\n", se[1])
	}
	return r, nil
}

// goLoadRate sends requests at a fixed rate (open loop) for d and reports latency percentiles: the
// added latency of a proxy below saturation, where queueing does not dominate.
func goLoadRate(spec reqSpec, rate int, conns int, d time.Duration) (loadResult, error) {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	jobs := make(chan struct{}, rate)
	var mu sync.Mutex
	var lat []time.Duration
	var good atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				req, _ := http.NewRequest(spec.method, spec.url, nil)
				req.Header.Set("x-api-key", spec.keys[0])
				t0 := time.Now()
				res, err := client.Do(req)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				dt := time.Since(t0)
				if res.StatusCode == spec.want {
					good.Add(1)
				}
				mu.Lock()
				lat = append(lat, dt)
				mu.Unlock()
			}
		}()
	}
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	next := start
	for time.Since(start) < d {
		next = next.Add(interval)
		if s := time.Until(next); s > 0 {
			time.Sleep(s)
		}
		select {
		case jobs <- struct{}{}:
		default: // the server fell behind; do not queue without bound
		}
	}
	close(jobs)
	wg.Wait()
	if len(lat) == 0 {
		return loadResult{}, fmt.Errorf("no requests completed")
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return loadResult{tool: "go-rate", requests: int64(len(lat)), good: good.Load(), seconds: time.Since(start).Seconds(),
		p50: lat[len(lat)*50/100], p99: lat[len(lat)*99/100]}, nil
}
