package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Key categories of the load mix.
const (
	catCached   = iota // valid, requested before the fault (in keygate's cache)
	catUncached        // valid, never requested before (needs a store lookup)
	catInvalid         // well-formed, never created
	catRevoked         // revoked, and seen refused by the replica since
	numCats
)

var catNames = [numCats]string{"cached", "uncached", "invalid", "revoked"}

// pool hands out keys of one category. Uncached keys are used once each (next wraps around only
// when the pool runs out, which the suite sizes to avoid).
type pool struct {
	mu   sync.Mutex
	keys []string
	next int
	once bool
}

func (p *pool) add(k ...string) { p.mu.Lock(); p.keys = append(p.keys, k...); p.mu.Unlock() }

func (p *pool) len() int { p.mu.Lock(); defer p.mu.Unlock(); return len(p.keys) }

func (p *pool) pick(i uint64) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.keys) == 0 {
		return ""
	}
	if p.once {
		k := p.keys[p.next%len(p.keys)]
		p.next++
		return k
	}
	return p.keys[i%uint64(len(p.keys))]
}

// remove takes a key out of the pool.
func (p *pool) remove(k string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.keys {
		if x == k {
			p.keys = append(p.keys[:i:i], p.keys[i+1:]...)
			return
		}
	}
}

// removeFirst takes the oldest key out of the pool.
func (p *pool) removeFirst() (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.keys) == 0 {
		return "", false
	}
	k := p.keys[0]
	p.keys = p.keys[1:]
	return k, true
}

func randomKey() string {
	var b [32]byte
	rand.Read(b[:])
	return "ei_" + hex.EncodeToString(b[:])
}

// event is one request's outcome.
type event struct {
	at     time.Duration // since the load started
	lat    time.Duration
	cat    uint8
	status int16 // 0: transport error
	target uint8
}

// load sends GET requests at a fixed rate (open loop: a slow answer does not slow the offered
// load) with a weighted mix of key categories, to one or more keygate replicas.
type load struct {
	targets []string // base URLs of Studio faces
	rate    int      // requests per second
	weights [numCats]int
	pools   [numCats]*pool
	path    string

	start   time.Time
	mu      sync.Mutex
	events  []event
	dropped atomic.Int64 // requests the generator could not start in time (workers busy)
}

func newLoad(targets []string, rate int, weights [numCats]int, pools [numCats]*pool) *load {
	return &load{targets: targets, rate: rate, weights: weights, pools: pools, path: "/v1/api/1/raw-data"}
}

var client = &http.Client{
	// At most 64 connections per keygate, as a load balancer's pool would keep: keygate's
	// goroutines, file descriptors and memory then measure keygate, not the generator's concurrency.
	Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64, IdleConnTimeout: 30 * time.Second},
	Timeout:   5 * time.Second,
}

// run offers the load until ctx ends.
func (l *load) run(ctx context.Context) {
	l.start = time.Now()
	const workers = 128
	jobs := make(chan uint64, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				l.one(i)
			}
		}()
	}
	total := 0
	for _, w := range l.weights {
		total += w
	}
	interval := time.Second / time.Duration(l.rate)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var sent uint64
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			due := uint64(time.Since(l.start) / interval)
			for ; sent < due; sent++ {
				select {
				case jobs <- sent:
				default:
					l.dropped.Add(1)
				}
			}
		}
	}
	close(jobs)
	wg.Wait()
}

func (l *load) pickCat(i uint64) uint8 {
	total := 0
	for _, w := range l.weights {
		total += w
	}
	x := int((i * 2654435761) % uint64(total))
	for c, w := range l.weights {
		if x < w {
			return uint8(c)
		}
		x -= w
	}
	return catCached
}

func (l *load) one(i uint64) {
	cat := l.pickCat(i)
	var key string
	if cat == catInvalid {
		key = randomKey()
	} else {
		key = l.pools[cat].pick(i / 7)
	}
	if key == "" {
		cat, key = catCached, l.pools[catCached].pick(i)
	}
	target := uint8(i % uint64(len(l.targets)))
	at := time.Since(l.start) // when the request was sent
	status, lat := get(l.targets[target]+l.path, key)
	l.mu.Lock()
	l.events = append(l.events, event{at: at, lat: lat, cat: cat, status: int16(status), target: target})
	l.mu.Unlock()
}

// get sends one request with a key and returns the status (0 on a transport error).
func get(url, key string) (int, time.Duration) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("x-api-key", key)
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, time.Since(t0)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(t0)
}

// window filters events in [from, to) since the load started.
func (l *load) window(from, to time.Duration) []event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []event
	for _, e := range l.events {
		if e.at >= from && e.at < to {
			out = append(out, e)
		}
	}
	return out
}

// tally counts outcomes per category.
type tally struct {
	n, ok, unauth, unavailable, other5xx, transport, other [numCats]int
	lat                                                    [numCats][]time.Duration
	odd                                                    map[int16]int // answers other than 2xx, 401, 403, 503
}

func count(evs []event) tally {
	var t tally
	for _, e := range evs {
		c := e.cat
		t.n[c]++
		t.lat[c] = append(t.lat[c], e.lat)
		switch {
		case e.status >= 200 && e.status < 300:
			t.ok[c]++
		case e.status == 401 || e.status == 403:
			t.unauth[c]++
		case e.status == 503:
			t.unavailable[c]++
		case e.status >= 500:
			t.other5xx[c]++
		case e.status == 0:
			t.transport[c]++
		default:
			t.other[c]++
		}
		if e.status == 0 || (e.status >= 300 && e.status != 401 && e.status != 403 && e.status != 503) {
			if t.odd == nil {
				t.odd = map[int16]int{}
			}
			t.odd[e.status]++
		}
	}
	return t
}

// wronglyAdmitted: a 2xx for a key that does not exist or was revoked (and seen refused).
func (t tally) wronglyAdmitted() int { return t.ok[catInvalid] + t.ok[catRevoked] }

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p * float64(len(s)-1))
	return s[i]
}

// firstOK is the first 2xx of a category at or after from; -1 if none.
func firstOK(evs []event, cat uint8, from time.Duration) time.Duration {
	best := time.Duration(-1)
	for _, e := range evs {
		if e.cat == cat && e.at >= from && e.status >= 200 && e.status < 300 && (best < 0 || e.at < best) {
			best = e.at
		}
	}
	return best
}

// lastFailure is the last non-2xx of a category among evs for valid keys; -1 if none.
func lastFailure(evs []event, cat uint8) time.Duration {
	last := time.Duration(-1)
	for _, e := range evs {
		if e.cat == cat && (e.status < 200 || e.status >= 300) && e.at > last {
			last = e.at
		}
	}
	return last
}
