package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"time"
)

func newGet(url, key string) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err == nil {
		req.Header.Set("x-api-key", key)
	}
	return req, err
}

func readAll(resp *http.Response) ([]byte, error) {
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

// isErrorJSON: the error shape of docs/protocol.md §3.1, {"success": false, "error": "…"}.
func isErrorJSON(b []byte) bool {
	var e struct {
		Success *bool  `json:"success"`
		Error   string `json:"error"`
	}
	return json.Unmarshal(b, &e) == nil && e.Success != nil && !*e.Success && e.Error != ""
}

func nproc() int { return runtime.NumCPU() }

type sample struct {
	at         time.Duration
	goroutines int
	heapMiB    float64
	liveMiB    float64 // the heap live at the last collection (see take)
	rssMiB     float64
	fds        int
	keys       int
}

// soak: steady load with key churn (a create and a revoke every second) for the soak duration.
func (su *suite) soak(r *report, dur time.Duration) error {
	const name = "Soak"
	red, err := startRedis(su.work, freePort(), true)
	if err != nil {
		return err
	}
	defer red.kill9()
	up, err := newUpstream()
	if err != nil {
		return err
	}
	defer up.down()
	url := "redis://" + addr(red.port) + "/0"
	kg, err := startKeygate(su.work, su.bin, "keygate-soak", url, up.url())
	if err != nil {
		return err
	}
	defer kg.stop(10 * time.Second)
	ks, err := prepare(context.Background(), url, []*keygateProc{kg}, 200, 0, 20)
	if err != nil {
		return err
	}
	client.CloseIdleConnections()
	time.Sleep(time.Second)
	quietBefore := goroutines(kg)
	fds := func() fdKinds { return procFDs(kg.pid(), []int{portOf(kg.studio), portOf(kg.ops)}, up.port, red.port) }
	fdsBefore := fds()
	redisPoolBefore, redisErrBefore := kg.metric("keygate_redis_pool_connections")
	rate := su.peak / 4
	l := newLoad([]string{"http://" + kg.studio}, rate, [numCats]int{catCached: 80, catInvalid: 10, catRevoked: 10}, ks.pools)
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	done := make(chan struct{})
	go func() { l.run(ctx); close(done) }()

	// Churn: every second a key is created through the API (and joins the load once admitted) and
	// the oldest churned key is revoked (and joins the revoked keys once refused).
	var churned pool
	created, revoked, churnErrs := 0, 0, 0
	var revokeLat []time.Duration
	churnDone := make(chan struct{})
	go func() {
		defer close(churnDone)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			c, err := kg.create(ks.admin, "churn-"+strconv.Itoa(i))
			if err != nil {
				churnErrs++
				continue
			}
			created++
			churned.add(fmt.Sprintf("%d:%s", c.id, c.key))
			if waitFor(2*time.Second, func() bool { st, _ := get(kg.url(), c.key); return st == 200 }) {
				ks.pools[catCached].add(c.key)
			}
			if churned.len() > 20 {
				old, _ := churned.removeFirst()
				var id int64
				var key string
				fmt.Sscanf(old, "%d:", &id)
				key = old[len(strconv.FormatInt(id, 10))+1:]
				// Out of the valid keys first, and a moment for requests already holding it to finish.
				ks.pools[catCached].remove(key)
				time.Sleep(200 * time.Millisecond)
				_, answered, err := kg.revoke(ks.admin, id)
				if err != nil {
					churnErrs++
					continue
				}
				if at, ok := refusedWithin(kg, key, 5*time.Second); ok {
					revoked++
					revokeLat = append(revokeLat, max(0, at.Sub(answered)))
					ks.pools[catRevoked].add(key)
				} else {
					churnErrs++
				}
			}
		}
	}()

	var samples []sample
	t0 := time.Now()
	quiet := func() int { client.CloseIdleConnections(); time.Sleep(time.Second); return goroutines(kg) }
	take := func() {
		heap, _ := kg.metric("go_memstats_heap_inuse_bytes")
		// Heap in use swings with the collector's cycle (between the live heap and its goal,
		// five times it at keygate's GOGC=400), so a sample says more about when it was taken
		// than about a leak. The goal the last collection set, divided by 1+GOGC/100, is the
		// heap that collection found live: that is what must stay flat.
		goal, _ := kg.metric("go_memstats_next_gc_bytes")
		gogc, err := kg.metric("go_gc_gogc_percent")
		if err != nil || gogc <= 0 {
			gogc = 100
		}
		rss, fds := procStatus(kg.pid())
		samples = append(samples, sample{at: time.Since(t0), goroutines: goroutines(kg), heapMiB: heap / (1 << 20),
			liveMiB: goal / (1 + gogc/100) / (1 << 20), rssMiB: rss, fds: fds, keys: ks.pools[catCached].len()})
	}
	take()
	tick := time.NewTicker(10 * time.Second)
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			take()
		}
	}
	tick.Stop()
	<-done
	<-churnDone
	quietAfter := quiet()
	fdsAfter := fds()
	idleUp, upErr := kg.metric("keygate_upstream_idle_connections")
	redisPool, redisErr := kg.metric("keygate_redis_pool_connections")
	t := count(l.window(0, time.Hour))
	s := r.section(name)
	s.p("One keygate on Redis for %s: %d requests/s (quarter of peak), 80%% cached keys, 10%% invalid, 10%% revoked; every second a key is created through the API (and joins the load once admitted) and the oldest of the last 20 created is revoked through the API (and joins the revoked keys once refused). Sampled every 10 s under load (go_goroutines counts the load's connections too):", dur, rate)
	s.p("")
	s.p("| t | go_goroutines | heap in use | heap live at the last GC | RSS | open fds | valid keys in the load |")
	s.p("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, x := range samples {
		s.p("| %s | %d | %.1f MiB | %.1f MiB | %.1f MiB | %d | %d |", x.at.Round(time.Second), x.goroutines, x.heapMiB, x.liveMiB, x.rssMiB, x.fds, x.keys)
	}
	s.p("")
	s.p("go_goroutines with no load and the load generator's connections closed: %d before the soak, %d after it.", quietBefore, quietAfter)
	s.p("")
	s.p("Open fds at rest, before → after: %d → %d in all; other than connections (files, listeners, the poller) %d → %d; upstream connections %d → %d (the pool's idle count after: %.0f); Redis connections %d → %d (the pool's %.0f → %.0f); clients %d → %d.",
		fdsBefore.total, fdsAfter.total, fdsBefore.other(), fdsAfter.other(), fdsBefore.upstream, fdsAfter.upstream, idleUp,
		fdsBefore.redis, fdsAfter.redis, redisPoolBefore, redisPool, fdsBefore.clients, fdsAfter.clients)
	s.p("")
	tallyTable(s, t)
	wrong := t.wronglyAdmitted()
	cachedFail := t.n[catCached] - t.ok[catCached]
	s.p("- Keys created: %d, revoked: %d (revoke → refusal p50 %s, max %s), churn errors: %d.", created, revoked, ms(percentile(revokeLat, 0.5)), ms(percentile(revokeLat, 1)), churnErrs)
	s.p("- **Wrongly admitted: %d.** Non-2xx for valid keys: %d. Achieved %.0f requests/s (requests the generator could not start in time: %d).", wrong, cachedFail, float64(len(l.window(0, time.Hour)))/dur.Seconds(), l.dropped.Load())
	s.p("")
	// Flat: the second half's median is within a margin of the first half's (medians, so one
	// sample taken during a GC cycle or a burst of slow answers does not decide).
	half := len(samples) / 2
	median := func(xs []sample, f func(sample) float64) float64 {
		v := make([]float64, len(xs))
		for i, x := range xs {
			v[i] = f(x)
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	flat := func(what string, f func(sample) float64, slack, abs float64) {
		if half < 2 {
			return
		}
		a, b := median(samples[1:half], f), median(samples[half:], f)
		r.check(name, what+" (median, first half → second half)", fmt.Sprintf("%.1f → %.1f", a, b), fmt.Sprintf("≤ +%.0f%%", slack*100), b <= a*(1+slack)+abs)
	}
	flat("heap live at the last GC, MiB", func(x sample) float64 { return x.liveMiB }, 0.25, 1)
	flat("RSS MiB", func(x sample) float64 { return x.rssMiB }, 0.10, 1)
	// Open fds are judged at rest, not under load: there they follow the load's concurrency and the
	// pools' high-water marks. A leak of anything but a pooled connection shows in the rest; a
	// leaked upstream connection as one the idle pool does not count.
	r.check(name, "open fds at rest other than connections, before → after", fmt.Sprintf("%d → %d", fdsBefore.other(), fdsAfter.other()), "≤ +2",
		fdsAfter.total > 0 && fdsAfter.other() <= fdsBefore.other()+2)
	r.check(name, "upstream connections at rest = idle pool", fmt.Sprintf("%d, pool %.0f", fdsAfter.upstream, idleUp), "equal",
		upErr == nil && fdsAfter.upstream == int(idleUp))
	// Pub/Sub subscriptions hold connections outside the pool's count: their number must not grow.
	outBefore, outAfter := fdsBefore.redis-int(redisPoolBefore), fdsAfter.redis-int(redisPool)
	r.check(name, "Redis connections at rest outside the pool, before → after", fmt.Sprintf("%d → %d", outBefore, outAfter), "no more",
		redisErr == nil && redisErrBefore == nil && outAfter <= outBefore)
	r.check(name, "go_goroutines at rest, before → after", fmt.Sprintf("%d → %d", quietBefore, quietAfter), "≤ +5", quietAfter >= 0 && quietAfter <= quietBefore+5)
	r.check(name, "wrongly admitted", strconv.Itoa(wrong), "0", wrong == 0)
	r.check(name, "non-2xx for valid keys", strconv.Itoa(cachedFail), "0", cachedFail == 0)
	r.check(name, "churn (creates, revokes, errors)", fmt.Sprintf("%d, %d, %d", created, revoked, churnErrs), "no errors", churnErrs == 0 && created > 0)
	return nil
}
