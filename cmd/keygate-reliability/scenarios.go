package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// cacheTTL is the keygate cache TTL the suite runs with (see startKeygate).
const cacheTTL = 3 * time.Second

// suite holds what every scenario shares.
type suite struct {
	work  string // scratch directory (logs, Redis data)
	bin   string // keygate binary
	peak  int    // measured peak requests/s through one replica
	scale float64
}

// d scales a scenario duration (RELIABILITY_SCALE shortens runs while developing).
func (su *suite) d(x time.Duration) time.Duration {
	return time.Duration(float64(x) * su.scale)
}

// keySet is the fixture of a load scenario: an admin key and the key pools.
type keySet struct {
	admin    string
	cached   []created
	uncached []created
	revoke   []created
	pools    [numCats]*pool
}

// prepare creates the keys on the store, warms the cached ones on every replica, revokes the
// "revoked" ones through the first replica and waits until every replica refuses each of them.
func prepare(ctx context.Context, redisURL string, kgs []*keygateProc, nCached, nUncached, nRevoked int) (*keySet, error) {
	s, err := storeFor(redisURL)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	ks := &keySet{}
	admin, err := createKeys(ctx, s, 1, "admin")
	if err != nil {
		return nil, err
	}
	ks.admin = admin[0].key
	if ks.cached, err = createKeys(ctx, s, nCached, "cached"); err != nil {
		return nil, err
	}
	if ks.uncached, err = createKeys(ctx, s, nUncached, "uncached"); err != nil {
		return nil, err
	}
	if ks.revoke, err = createKeys(ctx, s, nRevoked, "revoked"); err != nil {
		return nil, err
	}
	if err := warm(kgs, append(values(ks.cached), values(ks.revoke)...)); err != nil {
		return nil, err
	}
	if err := warm(kgs, []string{ks.admin}); err != nil {
		return nil, err
	}
	for _, c := range ks.revoke {
		if _, _, err := kgs[0].revoke(ks.admin, c.id); err != nil {
			return nil, err
		}
		for _, kg := range kgs {
			if _, ok := refusedWithin(kg, c.key, 5*time.Second); !ok {
				return nil, fmt.Errorf("revoked key still admitted by %s after 5 s", kg.studio)
			}
		}
	}
	ks.pools = [numCats]*pool{
		catCached:   {keys: values(ks.cached)},
		catUncached: {keys: values(ks.uncached), once: true},
		catInvalid:  {},
		catRevoked:  {keys: values(ks.revoke)},
	}
	return ks, nil
}

var mix = [numCats]int{catCached: 70, catUncached: 5, catInvalid: 15, catRevoked: 10}

// goroutines reads go_goroutines from a replica's /metrics (-1 if it cannot).
func goroutines(kg *keygateProc) int {
	v, err := kg.metric("go_goroutines")
	if err != nil {
		return -1
	}
	return int(v)
}

// calibrate measures the peak: 64 clients in a closed loop on cached keys for 3 s.
func (su *suite) calibrate(r *report) error {
	red, err := startRedis(su.work, freePort(), false)
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
	kg, err := startKeygate(su.work, su.bin, "keygate-peak", url, up.url())
	if err != nil {
		return err
	}
	defer kg.stop(10 * time.Second)
	ks, err := prepare(context.Background(), url, []*keygateProc{kg}, 200, 0, 0)
	if err != nil {
		return err
	}
	var n atomic.Int64
	deadline := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; time.Now().Before(deadline); i++ {
				if st, _ := get(kg.url(), ks.cached[i%len(ks.cached)].key); st == 200 {
					n.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	su.peak = int(n.Load() / 3)
	s := r.section("Peak (calibration)")
	s.p("One keygate on Redis, 64 clients in a closed loop on 200 cached keys for 3 s, client, keygate, Redis and upstream sharing this machine's %d cores: **%d requests/s**. \"Half of peak\" below is %d requests/s, offered open-loop (a slow answer does not slow the offered load).", nproc(), su.peak, su.peak/2)
	s.p("")
	if su.peak < 100 {
		return fmt.Errorf("peak %d requests/s: too low to run the suite", su.peak)
	}
	return nil
}

// outage runs load against replicas while fault() breaks and heals the store. fault returns the
// times (since the load started) the fault began and the store was back.
type outageResult struct {
	t                tally
	before, during   tally
	after            tally
	faultAt, backAt  time.Duration
	firstUncachedOK  time.Duration // after backAt
	lastUncachedFail time.Duration // after faultAt
	gBefore, gAfter  int
	dropped          int64
	span             time.Duration
	events           []event
}

func (su *suite) runOutage(kgs []*keygateProc, ks *keySet, rate int, weights [numCats]int, fault func(l *load) (time.Duration, time.Duration, error), tail time.Duration) (*outageResult, error) {
	targets := make([]string, len(kgs))
	for i, kg := range kgs {
		targets[i] = "http://" + kg.studio
	}
	res := &outageResult{gBefore: goroutines(kgs[0])}
	l := newLoad(targets, rate, weights, ks.pools)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.run(ctx); close(done) }()
	faultAt, backAt, err := fault(l)
	if err == nil {
		time.Sleep(tail)
	}
	cancel()
	<-done
	if err != nil {
		return nil, err
	}
	res.faultAt, res.backAt = faultAt, backAt
	all := l.window(0, time.Hour)
	res.events = all
	res.t = count(all)
	res.before = count(l.window(0, faultAt))
	res.during = count(l.window(faultAt, backAt))
	res.after = count(l.window(backAt, time.Hour))
	res.firstUncachedOK = firstOK(all, catUncached, backAt)
	if res.firstUncachedOK >= 0 {
		res.firstUncachedOK -= backAt
	}
	res.lastUncachedFail = lastFailure(l.window(faultAt, time.Hour), catUncached)
	if res.lastUncachedFail >= 0 {
		res.lastUncachedFail -= faultAt
	}
	res.dropped = l.dropped.Load()
	res.span = time.Since(l.start)
	waitFor(10*time.Second, func() bool { g := goroutines(kgs[0]); return g >= 0 && g <= res.gBefore+10 })
	res.gAfter = goroutines(kgs[0])
	return res, nil
}

// timeline prints, per half second from 2 s before the fault, the answers for valid keys.
func (res *outageResult) timeline(s *section, until time.Duration) {
	const step = 500 * time.Millisecond
	from := res.faultAt - 2*time.Second
	type bucket struct{ cachedOK, cachedFail, uncachedOK, uncachedFail, wrong int }
	bs := make([]bucket, int((until-from)/step)+1)
	for _, e := range res.events {
		if e.at < from || e.at >= until {
			continue
		}
		b := &bs[int((e.at-from)/step)]
		ok := e.status >= 200 && e.status < 300
		switch {
		case e.cat == catCached && ok:
			b.cachedOK++
		case e.cat == catCached:
			b.cachedFail++
		case e.cat == catUncached && ok:
			b.uncachedOK++
		case e.cat == catUncached:
			b.uncachedFail++
		case ok:
			b.wrong++
		}
	}
	s.p("Timeline (t = 0 at the fault; the store was back at %s):", secs(res.backAt-res.faultAt))
	s.p("")
	s.p("| t | cached 2xx | cached not 2xx | uncached 2xx | uncached not 2xx | wrongly admitted |")
	s.p("| ---: | ---: | ---: | ---: | ---: | ---: |")
	for i, b := range bs {
		s.p("| %+.1f s | %d | %d | %d | %d | %d |", (from + time.Duration(i)*step - res.faultAt).Seconds(), b.cachedOK, b.cachedFail, b.uncachedOK, b.uncachedFail, b.wrong)
	}
	s.p("")
}

func (res *outageResult) table(s *section) {
	s.p("Before the fault:")
	s.p("")
	tallyTable(s, res.before)
	s.p("During the fault (%s):", secs(res.backAt-res.faultAt))
	s.p("")
	tallyTable(s, res.during)
	s.p("After the store was back:")
	s.p("")
	tallyTable(s, res.after)
}

// killRedis: Redis kill -9 under load, restarted from its append-only file.
func (su *suite) killRedis(r *report) error {
	const name = "Redis kill -9 under load"
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
	kg, err := startKeygate(su.work, su.bin, "keygate-kill", url, up.url())
	if err != nil {
		return err
	}
	defer kg.stop(10 * time.Second)
	rate := su.peak / 2
	outage := su.d(8 * time.Second)
	ks, err := prepare(context.Background(), url, []*keygateProc{kg}, 200, rate/10*int((outage+su.d(20*time.Second))/time.Second)+500, 40)
	if err != nil {
		return err
	}
	res, err := su.runOutage([]*keygateProc{kg}, ks, rate, mix, func(l *load) (time.Duration, time.Duration, error) {
		time.Sleep(su.d(5 * time.Second))
		faultAt := time.Since(l.start)
		red.kill9()
		time.Sleep(outage)
		if err := red.restart(su.work); err != nil {
			return 0, 0, err
		}
		return faultAt, time.Since(l.start), nil
	}, su.d(10*time.Second))
	if err != nil {
		return err
	}
	s := r.section(name)
	s.p("One keygate on one Redis (append-only file, `appendfsync always`), %d requests/s offered (half of peak) with %d%% cached keys, %d%% uncached (each used once), %d%% invalid (fresh random keys) and %d%% just-revoked keys (revoked through the API and seen refused before the fault). `KEYGATE_CACHE_TTL=%s`, `KEYGATE_CACHE_GRACE=5m`: the %s outage outlasts the TTL, so cached keys are served from the grace period. Redis is killed with SIGKILL 5 s in and restarted from its AOF.",
		rate, mix[catCached], mix[catUncached], mix[catInvalid], mix[catRevoked], cacheTTL, secs(outage))
	s.p("")
	res.table(s)
	res.timeline(s, res.backAt+3*time.Second)
	wrong := res.t.wronglyAdmitted()
	cached5xx := res.t.unavailable[catCached] + res.t.other5xx[catCached] + res.t.transport[catCached]
	s.p("- **Wrongly admitted: %d** (2xx for an invalid or a revoked key, over %d such requests).", wrong, res.t.n[catInvalid]+res.t.n[catRevoked])
	s.p("- 5xx or errors for cached keys (all within the grace): %d of %d.", cached5xx, res.t.n[catCached])
	s.p("- Uncached keys during the outage: %d of %d answered 503 (the store cannot be asked; never 401).", res.during.unavailable[catUncached], res.during.n[catUncached])
	s.p("- Time to recover after Redis answered again: first uncached key admitted after %s; the last uncached failure was %s after the kill (outage %s).", ms(res.firstUncachedOK), secs(res.lastUncachedFail), secs(res.backAt-res.faultAt))
	s.p("- Offered %d requests/s, achieved %.0f (requests the generator could not start in time: %d). go_goroutines: %d before, %d after.", rate, float64(res.t.n[0]+res.t.n[1]+res.t.n[2]+res.t.n[3])/res.span.Seconds(), res.dropped, res.gBefore, res.gAfter)
	s.p("")
	r.check(name, "wrongly admitted", strconv.Itoa(wrong), "0", wrong == 0)
	r.check(name, "5xx for cached keys within the grace", strconv.Itoa(cached5xx), "0", cached5xx == 0)
	r.check(name, "uncached keys refused with 401 during the outage", strconv.Itoa(res.during.unauth[catUncached]), "0", res.during.unauth[catUncached] == 0)
	r.check(name, "time to recover after Redis is back", ms(res.firstUncachedOK), "< 2 s", res.firstUncachedOK >= 0 && res.firstUncachedOK < 2*time.Second)
	return nil
}

// emptyRedis: Redis comes back without its data (no persistence).
func (su *suite) emptyRedis(r *report) error {
	const name = "Redis returns empty"
	red, err := startRedis(su.work, freePort(), false)
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
	kg, err := startKeygate(su.work, su.bin, "keygate-empty", url, up.url())
	if err != nil {
		return err
	}
	defer kg.stop(10 * time.Second)
	rate := su.peak / 4
	ks, err := prepare(context.Background(), url, []*keygateProc{kg}, 200, 0, 20)
	if err != nil {
		return err
	}
	w := [numCats]int{catCached: 80, catInvalid: 10, catRevoked: 10}
	res, err := su.runOutage([]*keygateProc{kg}, ks, rate, w, func(l *load) (time.Duration, time.Duration, error) {
		time.Sleep(su.d(3 * time.Second))
		faultAt := time.Since(l.start)
		red.kill9()
		os.RemoveAll(red.dir) // no persistence: nothing survives
		os.MkdirAll(red.dir, 0o755)
		if err := red.restart(su.work); err != nil {
			return 0, 0, err
		}
		return faultAt, time.Since(l.start), nil
	}, su.d(8*time.Second))
	if err != nil {
		return err
	}
	// When did the last cached key pass after Redis came back empty?
	lastOK := time.Duration(-1)
	for _, e := range res.events {
		if e.cat == catCached && e.at >= res.backAt && e.status == 200 && e.at > lastOK {
			lastOK = e.at
		}
	}
	if lastOK >= 0 {
		lastOK -= res.backAt
	}
	lastOKText := "No cached key was admitted after Redis came back."
	if lastOK >= 0 {
		lastOKText = "Cached keys were last admitted " + ms(lastOK) + " after Redis came back (bound: the reconnect, else `KEYGATE_CACHE_TTL`)."
	}
	s := r.section(name)
	s.p("One keygate on a Redis without persistence, %d requests/s (quarter of peak), mostly cached keys. Redis is killed and restarted empty (the keys are gone from the store).", rate)
	s.p("")
	res.table(s)
	wrong := res.t.wronglyAdmitted()
	s.p("- **Wrongly admitted: %d.**", wrong)
	s.p("- What keygate does: on reconnecting, its subscription announces a resync and the key cache is dropped whole; every lookup then finds nothing and answers **401** (the store is the truth, and it is empty). %s", lastOKText)
	s.p("- keygate cannot rebuild the store: it caches only SHA-256 hashes of keys, never the keys, and no project data.")
	s.p("")
	s.p("**Operator guidance.** Run the keys' Redis with persistence: `appendonly yes` with `appendfsync always` (every key change is fsynced before it is acknowledged; key changes are rare, so the cost is small) or at least `everysec` (a crash may lose the last second: a key revoked in that second comes back — revoke it again after a crash). Keep RDB/AOF backups. With Sentinel or Cluster, a replica that is promoted keeps the data. If Redis did come back empty: restore the AOF/RDB backup into it (stop Redis, put the file back, start it); the keygate replicas need nothing, they resync on reconnect. Without a backup, recreate the keys (`keygate keys create`, then distribute them): every client is refused with 401 until then. Alert on `keygate_store_up` and on a jump of 401s.")
	s.p("")
	r.check(name, "wrongly admitted", strconv.Itoa(wrong), "0", wrong == 0)
	lastOKValue := "at once"
	if lastOK >= 0 {
		lastOKValue = ms(lastOK)
	}
	r.check(name, "cached keys refused after an empty restart within", lastOKValue, "< TTL (3 s)", lastOK < cacheTTL)
	return nil
}

// sentinel: failover of a master with one replica under load.
func (su *suite) sentinel(r *report) error {
	const name = "Redis Sentinel failover"
	master, err := startRedis(su.work, freePort(), true)
	if err != nil {
		return err
	}
	defer master.kill9()
	replica, err := startRedis(su.work, freePort(), true, "--replicaof", "127.0.0.1", strconv.Itoa(master.port))
	if err != nil {
		return err
	}
	defer replica.kill9()
	sport := freePort()
	conf := filepath.Join(su.work, "sentinel.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("port %d\nbind 127.0.0.1\nprotected-mode no\ndir %s\n"+
		"sentinel monitor mymaster 127.0.0.1 %d 1\nsentinel down-after-milliseconds mymaster 1000\n"+
		"sentinel failover-timeout mymaster 5000\nsentinel parallel-syncs mymaster 1\n", sport, su.work, master.port)), 0o644)
	sp, err := start("sentinel", filepath.Join(su.work, "sentinel.log"), nil, "redis-server", conf, "--sentinel")
	if err != nil {
		return err
	}
	defer sp.kill9()
	sc := redis.NewSentinelClient(&redis.Options{Addr: addr(sport)})
	defer sc.Close()
	masterAddr := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		a, err := sc.GetMasterAddrByName(ctx, "mymaster").Result()
		if err != nil || len(a) != 2 {
			return ""
		}
		return a[0] + ":" + a[1]
	}
	if !waitFor(15*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		reps, err := sc.Replicas(ctx, "mymaster").Result()
		return err == nil && len(reps) == 1 && masterAddr() == addr(master.port)
	}) {
		return fmt.Errorf("sentinel never saw the replica")
	}
	up, err := newUpstream()
	if err != nil {
		return err
	}
	defer up.down()
	url := "redis+sentinel://" + addr(sport) + "/0?master_name=mymaster"
	kg, err := startKeygate(su.work, su.bin, "keygate-sentinel", url, up.url())
	if err != nil {
		return err
	}
	defer kg.stop(10 * time.Second)
	rate := su.peak / 2
	ks, err := prepare(context.Background(), url, []*keygateProc{kg}, 200, rate/10*int(su.d(30*time.Second)/time.Second)+500, 40)
	if err != nil {
		return err
	}
	// Every key is on the replica before the master dies.
	mc := redis.NewClient(&redis.Options{Addr: addr(master.port)})
	n, err := mc.Wait(context.Background(), 1, 5000).Result()
	mc.Close()
	if err != nil || n < 1 {
		return fmt.Errorf("replica did not acknowledge the keys: %v", err)
	}
	var failoverAt time.Duration
	res, err := su.runOutage([]*keygateProc{kg}, ks, rate, mix, func(l *load) (time.Duration, time.Duration, error) {
		time.Sleep(su.d(5 * time.Second))
		faultAt := time.Since(l.start)
		master.kill9()
		if !waitFor(30*time.Second, func() bool { return masterAddr() == addr(replica.port) }) {
			return 0, 0, fmt.Errorf("sentinel did not promote the replica in 30 s")
		}
		failoverAt = time.Since(l.start)
		return faultAt, failoverAt, nil
	}, su.d(12*time.Second))
	if err != nil {
		return err
	}
	s := r.section(name)
	s.p("One master, one replica, one Sentinel (`down-after-milliseconds 1000`, quorum 1); keygate on `redis+sentinel://…?master_name=mymaster`; %d requests/s (half of peak), the same mix as the kill -9 scenario. The master is killed with SIGKILL; Sentinel promotes the replica.", rate)
	s.p("")
	res.table(s)
	wrong := res.t.wronglyAdmitted()
	cached5xx := res.t.unavailable[catCached] + res.t.other5xx[catCached] + res.t.transport[catCached]
	recovered := res.lastUncachedFail
	s.p("- **Wrongly admitted: %d.** 5xx for cached keys: %d.", wrong, cached5xx)
	s.p("- Sentinel switched the master %s after the kill. Uncached keys failed (503) until %s after the kill; first uncached key admitted %s after the switch.", secs(res.backAt-res.faultAt), secs(recovered), ms(res.firstUncachedOK))
	s.p("- go_goroutines: %d before, %d after.", res.gBefore, res.gAfter)
	s.p("")
	r.check(name, "wrongly admitted", strconv.Itoa(wrong), "0", wrong == 0)
	r.check(name, "5xx for cached keys", strconv.Itoa(cached5xx), "0", cached5xx == 0)
	r.check(name, "time to recover (kill to last uncached failure)", secs(recovered), "< failover + 3 s", recovered < res.backAt-res.faultAt+3*time.Second)
	return nil
}

// cluster: three masters; serving, revocation across two keygate replicas, one node restarted.
func (su *suite) cluster(r *report) error {
	const name = "Redis Cluster (three masters)"
	var nodes []*redisProc
	defer func() {
		for _, n := range nodes {
			if n.proc != nil && n.alive() {
				n.kill9()
			}
		}
	}()
	var addrs []string
	for i := 0; i < 3; i++ {
		n, err := startRedis(su.work, freePort(), true, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
		if err != nil {
			return err
		}
		nodes = append(nodes, n)
		addrs = append(addrs, addr(n.port))
	}
	out, err := exec.Command("redis-cli", append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("redis-cli --cluster create: %v: %s", err, out)
	}
	clusterOK := func() bool {
		for _, n := range nodes {
			c := redis.NewClient(&redis.Options{Addr: addr(n.port), MaxRetries: -1})
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			info, err := c.ClusterInfo(ctx).Result()
			cancel()
			c.Close()
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				return false
			}
		}
		return true
	}
	if !waitFor(20*time.Second, clusterOK) {
		return fmt.Errorf("cluster did not reach cluster_state:ok")
	}
	up, err := newUpstream()
	if err != nil {
		return err
	}
	defer up.down()
	url := "redis+cluster://" + addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2]
	var kgs []*keygateProc
	for i := 0; i < 2; i++ {
		kg, err := startKeygate(su.work, su.bin, "keygate-cluster-"+strconv.Itoa(i), url, up.url())
		if err != nil {
			return err
		}
		defer kg.stop(10 * time.Second)
		kgs = append(kgs, kg)
	}
	rate := su.peak / 2
	ks, err := prepare(context.Background(), url, kgs, 200, rate/10*int(su.d(30*time.Second)/time.Second)+500, 20)
	if err != nil {
		return err
	}
	// Revocation across replicas: revoke through replica 0, time until replica 1 refuses.
	st, err := storeFor(url)
	if err != nil {
		return err
	}
	toRevoke, err := createKeys(context.Background(), st, 20, "cluster-revoke")
	st.Close()
	if err != nil {
		return err
	}
	if err := warm(kgs, values(toRevoke)); err != nil {
		return err
	}
	var lat []time.Duration
	misses := 0
	for _, c := range toRevoke {
		_, answered, err := kgs[0].revoke(ks.admin, c.id)
		if err != nil {
			return err
		}
		at, ok := refusedWithin(kgs[1], c.key, 5*time.Second)
		if !ok {
			misses++
			continue
		}
		lat = append(lat, max(0, at.Sub(answered)))
	}
	// The same load as the other scenarios, across both replicas, with node 2 killed and restarted.
	var restartedAt time.Duration
	res, err := su.runOutage(kgs, ks, rate, mix, func(l *load) (time.Duration, time.Duration, error) {
		time.Sleep(su.d(5 * time.Second))
		faultAt := time.Since(l.start)
		nodes[1].kill9()
		time.Sleep(su.d(4 * time.Second)) // past cluster-node-timeout: the cluster notices
		if err := nodes[1].restart(su.work); err != nil {
			return 0, 0, err
		}
		restartedAt = time.Since(l.start)
		if !waitFor(30*time.Second, clusterOK) {
			return 0, 0, fmt.Errorf("cluster not ok 30 s after the node restarted")
		}
		return faultAt, time.Since(l.start), nil
	}, su.d(10*time.Second))
	if err != nil {
		return err
	}
	s := r.section(name)
	s.p("Three masters on loopback (no replicas, `cluster-node-timeout 2000`, AOF), created with `redis-cli --cluster create`; two keygate replicas on `redis+cluster://…`; %d requests/s (half of peak) across both, the same mix as the kill -9 scenario.", rate)
	s.p("")
	s.p("**Revocation across replicas**: 20 keys revoked through replica 0, each polled on replica 1 until refused: p50 %s, max %s after the API answered; never refused within 5 s: %d.", ms(percentile(lat, 0.5)), ms(percentile(lat, 1)), misses)
	s.p("")
	s.p("**One node restarted**: node 2 killed with SIGKILL, restarted %s later from its AOF and nodes.conf; the cluster was ok again %s after the kill.", secs(restartedAt-res.faultAt), secs(res.backAt-res.faultAt))
	s.p("")
	res.table(s)
	wrong := res.t.wronglyAdmitted()
	cached5xx := res.t.unavailable[catCached] + res.t.other5xx[catCached] + res.t.transport[catCached]
	s.p("- **Wrongly admitted: %d.** 5xx for cached keys: %d.", wrong, cached5xx)
	s.p("- Uncached keys during the restart: %d of %d answered 503 (the whole cluster refuses queries while a master's slots are uncovered: `cluster-require-full-coverage yes`). First uncached key admitted %s after the cluster was ok.", res.during.unavailable[catUncached], res.during.n[catUncached], ms(res.firstUncachedOK))
	s.p("")
	r.check(name, "wrongly admitted", strconv.Itoa(wrong), "0", wrong == 0)
	r.check(name, "5xx for cached keys", strconv.Itoa(cached5xx), "0", cached5xx == 0)
	r.check(name, "revocations seen by the other replica", fmt.Sprintf("%d/20 (max %s)", 20-misses, ms(percentile(lat, 1))), "20/20", misses == 0)
	r.check(name, "time to recover after the cluster is ok", ms(res.firstUncachedOK), "< 2 s", res.firstUncachedOK >= 0 && res.firstUncachedOK < 2*time.Second)
	return nil
}

// revocation: time from revoke to first refusal on each of three replicas, under load.
func (su *suite) revocation(r *report) error {
	const name = "Revocation across three replicas"
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
	var kgs []*keygateProc
	for i := 0; i < 3; i++ {
		kg, err := startKeygate(su.work, su.bin, "keygate-rev-"+strconv.Itoa(i), url, up.url())
		if err != nil {
			return err
		}
		defer kg.stop(10 * time.Second)
		kgs = append(kgs, kg)
	}
	n := 60
	ks, err := prepare(context.Background(), url, kgs, 200, 0, 0)
	if err != nil {
		return err
	}
	st, err := storeFor(url)
	if err != nil {
		return err
	}
	victims, err := createKeys(context.Background(), st, n, "victim")
	st.Close()
	if err != nil {
		return err
	}
	if err := warm(kgs, values(victims)); err != nil {
		return err
	}
	rate := su.peak / 4
	targets := []string{"http://" + kgs[0].studio, "http://" + kgs[1].studio, "http://" + kgs[2].studio}
	l := newLoad(targets, rate, [numCats]int{catCached: 90, catInvalid: 10}, ks.pools)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.run(ctx); close(done) }()
	time.Sleep(time.Second)
	perReplica := make([][]time.Duration, 3)
	var fromSent []time.Duration
	var all []time.Duration
	var never, readmitted int
	for i, v := range victims {
		sent, answered, err := kgs[i%3].revoke(ks.admin, v.id)
		if err != nil {
			cancel()
			<-done
			return err
		}
		var wg sync.WaitGroup
		at := make([]time.Time, 3)
		ok := make([]bool, 3)
		for j := range kgs {
			wg.Add(1)
			go func() { defer wg.Done(); at[j], ok[j] = refusedWithin(kgs[j], v.key, 5*time.Second) }()
		}
		wg.Wait()
		for j := range kgs {
			if !ok[j] {
				never++
				continue
			}
			d := max(0, at[j].Sub(answered))
			perReplica[j] = append(perReplica[j], d)
			all = append(all, d)
			fromSent = append(fromSent, at[j].Sub(sent))
			for k := 0; k < 5; k++ { // once refused, never admitted again
				if s, _ := get(kgs[j].url(), v.key); s == 200 {
					readmitted++
				}
			}
		}
	}
	cancel()
	<-done
	bg := count(l.window(0, time.Hour))
	s := r.section(name)
	s.p("Three keygate replicas on one Redis, %d requests/s of background load (quarter of peak) across them. %d keys, each cached on all three, revoked one at a time through the replicas in turn (`DELETE /v1/api/1/apikeys/{id}`); each replica is then polled with the key (one request at a time) until it refuses it. Time from the API's answer to the first refusal (0 when the refusal came first):", rate, n)
	s.p("")
	s.p("| replica | revocations | p50 | p99 | max |")
	s.p("| --- | ---: | ---: | ---: | ---: |")
	for j, d := range perReplica {
		s.p("| %d | %d | %s | %s | %s |", j, len(d), ms(percentile(d, 0.5)), ms(percentile(d, 0.99)), ms(percentile(d, 1)))
	}
	s.p("| all | %d | %s | %s | %s |", len(all), ms(percentile(all, 0.5)), ms(percentile(all, 0.99)), ms(percentile(all, 1)))
	s.p("")
	s.p("From the moment the DELETE was sent: p50 %s, p99 %s, max %s. Never refused within 5 s: %d. Admitted again after a refusal: %d. Background load: %d requests, %d wrongly admitted, %d non-2xx for cached keys.",
		ms(percentile(fromSent, 0.5)), ms(percentile(fromSent, 0.99)), ms(percentile(fromSent, 1)), never, readmitted, bg.n[catCached]+bg.n[catInvalid], bg.wronglyAdmitted(), bg.n[catCached]-bg.ok[catCached])
	s.p("")
	p99 := percentile(all, 0.99)
	r.check(name, "revoke → first refusal, p99 over "+strconv.Itoa(len(all)), ms(p99), "< 100 ms", p99 < 100*time.Millisecond && len(all) >= 50)
	r.check(name, "wrongly admitted (readmitted after refusal, or background)", strconv.Itoa(readmitted+bg.wronglyAdmitted()+never), "0", readmitted+bg.wronglyAdmitted()+never == 0)
	return nil
}

// upstreamFaults: upstream down, slow and resetting; JSON errors and no goroutine growth.
func (su *suite) upstreamFaults(r *report) error {
	const name = "Upstream down, slow, resetting"
	red, err := startRedis(su.work, freePort(), false)
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
	kg, err := startKeygate(su.work, su.bin, "keygate-upstream", url, up.url(), "KEYGATE_UPSTREAM_TIMEOUT=1s", "KEYGATE_UPSTREAM_DIAL_TIMEOUT=1s")
	if err != nil {
		return err
	}
	defer kg.stop(10 * time.Second)
	ks, err := prepare(context.Background(), url, []*keygateProc{kg}, 50, 0, 0)
	if err != nil {
		return err
	}
	burst := func(n, conc int) (map[int]int, int, time.Duration) {
		statuses := map[int]int{}
		var mu sync.Mutex
		badJSON := 0
		var lats []time.Duration
		sem := make(chan struct{}, conc)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				st, body, lat := getBody(kg.url(), ks.cached[i%len(ks.cached)].key)
				mu.Lock()
				defer mu.Unlock()
				statuses[st]++
				lats = append(lats, lat)
				if st != 200 && !isErrorJSON(body) {
					badJSON++
				}
			}()
		}
		wg.Wait()
		return statuses, badJSON, percentile(lats, 0.99)
	}
	burst(200, 20)
	// Idle keep-alive connections of this client hold a goroutine each in keygate: close them
	// before every reading, so what is compared is what keygate keeps by itself.
	settle := func() { client.CloseIdleConnections(); time.Sleep(500 * time.Millisecond) }
	settle()
	base := goroutines(kg)
	type phase struct {
		name, want string
		wantStatus int
		set, reset func()
		n, conc    int
	}
	phases := []phase{
		{"down (connection refused)", "502", 502, up.down, func() { up.up() }, 400, 40},
		{"slow (answers after 3 s; keygate's upstream timeout is 1 s)", "504", 504, func() { up.mode.Store(upSlow) }, func() { up.mode.Store(upNormal) }, 150, 50},
		{"resetting connections (RST, no answer)", "502", 502, func() { up.mode.Store(upReset) }, func() { up.mode.Store(upNormal) }, 400, 40},
	}
	s := r.section(name)
	s.p("One keygate (`KEYGATE_UPSTREAM_TIMEOUT=1s`, `KEYGATE_UPSTREAM_DIAL_TIMEOUT=1s`) in front of a Go upstream that fails on demand; cached keys; go_goroutines read from keygate's /metrics (baseline after warm-up, with the load generator's idle connections closed: %d; \"after\" is read the same way, within 15 s).", base)
	s.p("")
	s.p("| upstream | requests (concurrency) | answers | not the JSON error shape | p99 | go_goroutines peak | after (settled) |")
	s.p("| --- | ---: | --- | ---: | ---: | ---: | ---: |")
	for _, ph := range phases {
		ph.set()
		var peak atomic.Int64
		peak.Store(int64(base))
		stop := make(chan struct{})
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
					if g := int64(goroutines(kg)); g > peak.Load() {
						peak.Store(g)
					}
				}
			}
		}()
		statuses, bad, p99 := burst(ph.n, ph.conc)
		close(stop)
		ph.reset()
		settled := waitFor(15*time.Second, func() bool { client.CloseIdleConnections(); g := goroutines(kg); return g >= 0 && g <= base+5 })
		after := goroutines(kg)
		var parts []string
		keysS := make([]int, 0, len(statuses))
		for k := range statuses {
			keysS = append(keysS, k)
		}
		sort.Ints(keysS)
		for _, k := range keysS {
			parts = append(parts, fmt.Sprintf("%d×%d", statuses[k], k))
		}
		s.p("| %s | %d (%d) | %s | %d | %s | %d | %d |", ph.name, ph.n, ph.conc, strings.Join(parts, ", "), bad, ms(p99), peak.Load(), after)
		r.check(name, ph.name+": "+ph.want+" JSON", fmt.Sprintf("%d/%d", statuses[ph.wantStatus], ph.n), "all", statuses[ph.wantStatus] == ph.n && bad == 0)
		r.check(name, ph.name+": goroutines back to baseline", fmt.Sprintf("%d → %d", base, after), "≤ baseline + 5", settled)
	}
	st, _, _ := burst(200, 20)
	s.p("")
	s.p("After the faults, the upstream healthy again: %d of 200 requests answered 200.", st[200])
	s.p("")
	r.check(name, "recovers when the upstream does", fmt.Sprintf("%d/200", st[200]), "200/200", st[200] == 200)
	return nil
}

func getBody(url, key string) (int, []byte, time.Duration) {
	req, _ := newGet(url, key)
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, time.Since(t0)
	}
	defer resp.Body.Close()
	b, _ := readAll(resp)
	return resp.StatusCode, b, time.Since(t0)
}
