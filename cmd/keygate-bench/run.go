package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/keys"
)

const defaultDuration = 5 * time.Second

// fixedRate is the open-loop rate for the added-latency measurement, well below saturation.
const fixedRate = 1000

type options struct {
	duration time.Duration
	conns    int
	keygate  string
	redis    string
	noWrk    bool

	headlineOnly bool
	rounds       int
}

type bench struct {
	o        options
	dir      string
	pinned   bool
	useWrk   bool
	procs    []*exec.Cmd
	backend  string
	adminKey string
	mixKeys  []string
	badKeys  []string
	hmacKey  string
	rows     []row
	bare     *exec.Cmd
	bareAddr string
	self     string // this binary, which also runs the backend and the bare proxies
	headline []headlineRound
}

// headlineRound is one interleaved round of the main comparison (GET with a cached key).
type headlineRound struct {
	directFixed, bareFixed, keygateFixed loadResult
	direct, bare, keygate                loadResult
	bareCPU, keygateCPU                  float64
	// keygate on the std transport (KEYGATE_UPSTREAM_TRANSPORT=std), the bare proxy on keygate's
	// transport (BARE_FAST: what the transport alone gives, with no policy), and nginx, when they ran.
	keygateStd, bareFast, nginx          loadResult
	keygateStdCPU, bareFastCPU, nginxCPU float64
}

type row struct {
	name, shape string
	res         loadResult
	cpuUS       float64 // server CPU per request (keygate/bare proxy), µs
	note        string
}

func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitPort(addr string) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s", addr)
}

// start runs a server process, pinned to core when taskset exists, with GOMAXPROCS=1.
func (b *bench) start(name string, core int, env []string, args ...string) (*exec.Cmd, error) {
	if b.pinned {
		args = append([]string{"taskset", "-c", strconv.Itoa(core)}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(append(os.Environ(), "GOMAXPROCS=1"), env...)
	logf, err := os.Create(filepath.Join(b.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	b.procs = append(b.procs, cmd)
	return cmd, nil
}

func (b *bench) stopAll() {
	for _, p := range b.procs {
		if p.Process == nil || p.ProcessState != nil {
			continue
		}
		// SIGTERM first: nginx's master stops its worker then (SIGKILL would orphan it).
		p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			p.Process.Kill()
			<-done
		}
	}
}

// newBench sets up what every mode needs: a scratch directory, the pinning (servers on core 0,
// this process and its load generator on core 1), wrk when installed, the keygate binary (built
// unless -keygate names one) and the backend. The caller ends with b.close.
func newBench(o options) (b *bench, self string, err error) {
	b = &bench{o: o}
	if b.dir, err = os.MkdirTemp("", "keygate-bench"); err != nil {
		return nil, "", err
	}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	_, terr := exec.LookPath("taskset")
	b.pinned = terr == nil && runtime.NumCPU() >= 2
	_, werr := exec.LookPath("wrk")
	b.useWrk = werr == nil && !o.noWrk
	if b.pinned {
		// The load generator (this process, and wrk it starts) runs on core 1; servers on core 0.
		exec.Command("taskset", "-cp", "1", strconv.Itoa(os.Getpid())).Run()
	}
	if o.keygate == "" {
		b.o.keygate = filepath.Join(b.dir, "keygate")
		fmt.Fprintln(os.Stderr, "building keygate…")
		if out, err := exec.Command("go", "build", "-o", b.o.keygate, "./cmd/keygate").CombinedOutput(); err != nil {
			return nil, "", fmt.Errorf("go build ./cmd/keygate: %v: %s", err, out)
		}
	}
	if self, err = os.Executable(); err != nil {
		return nil, "", err
	}
	b.self = self
	b.backend = freePort()
	if _, err = b.start("backend", 0, nil, self, "backend", b.backend); err != nil {
		return nil, "", err
	}
	if err = waitPort(b.backend); err != nil {
		return nil, "", err
	}
	return b, self, nil
}

// close stops every process the run started and removes its scratch directory.
func (b *bench) close() {
	b.stopAll()
	os.RemoveAll(b.dir)
}

func run(o options) error {
	b, self, err := newBench(o)
	if err != nil {
		return err
	}
	defer b.close()
	if err := b.makeKeys(); err != nil {
		return err
	}

	direct := "http://" + b.backend
	if !o.headlineOnly {
		fmt.Fprintln(os.Stderr, "direct backend…")
		b.measure("direct backend", "GET", nil, reqSpec{method: "GET", url: direct + "/v1/api/1/raw-data", keys: []string{b.adminKey}, want: 200}, false)
		b.measure("direct backend", "POST 16KiB", nil, reqSpec{method: "POST", url: direct + "/v1/api/1/raw-data/1/rename", keys: []string{b.adminKey}, body: fixedBody(16 << 10), ctype: "application/octet-stream", want: 200}, false)
		b.measure("direct backend", "POST signed 100KiB", nil, reqSpec{method: "POST", url: direct + "/api/training/data", keys: []string{b.adminKey}, body: b.signedBodies(), ctype: "application/json", want: 200}, true)
	}

	// Bare ReverseProxy + map: the floor for an httputil design.
	keysFile := filepath.Join(b.dir, "bare-keys.txt")
	os.WriteFile(keysFile, []byte(b.adminKey+"\n"), 0o600)
	bareAddr := freePort()
	bare, err := b.start("bareproxy", 0, nil, self, "bareproxy", bareAddr, direct, keysFile)
	if err != nil {
		return err
	}
	if err := waitPort(bareAddr); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "bare ReverseProxy + map…")
	if !o.headlineOnly {
		b.measure("bare ReverseProxy + map", "GET", bare, reqSpec{method: "GET", url: "http://" + bareAddr + "/v1/api/1/raw-data", keys: []string{b.adminKey}, want: 200}, false)
		b.measure("bare ReverseProxy + map", "POST 16KiB", bare, reqSpec{method: "POST", url: "http://" + bareAddr + "/v1/api/1/raw-data/1/rename", keys: []string{b.adminKey}, body: fixedBody(16 << 10), ctype: "application/octet-stream", want: 200}, false)
	}
	b.bare, b.bareAddr = bare, bareAddr

	// keygate, embedded store.
	if err := b.keygateRun("embedded", nil); err != nil {
		return err
	}
	// keygate, Redis.
	if _, err := exec.LookPath("redis-server"); !o.headlineOnly && (o.redis == "on" || (o.redis == "auto" && err == nil)) {
		raddr := freePort()
		_, port, _ := net.SplitHostPort(raddr)
		core := 1
		if _, err := b.start("redis", core, nil, "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", b.dir); err != nil {
			return err
		}
		if err := waitPort(raddr); err != nil {
			return err
		}
		if err := b.keygateRun("redis", &raddr); err != nil {
			return err
		}
	}
	b.print()
	return nil
}

func fixedBody(n int) func(int64) []byte {
	body := []byte(strings.Repeat("k", n))
	return func(int64) []byte { return body }
}

// signedBodies returns a generator of distinct ~100 KiB samples, each freshly signed the way the
// platform's clients sign (a unique device name per request, so replays are never involved).
func (b *bench) signedBodies() func(int64) []byte {
	var sb strings.Builder
	iat := time.Now().Unix()
	sb.WriteString(fmt.Sprintf(`{"protected":{"ver":"v1","alg":"HS256","iat":%d},"signature":"%s","payload":{"device_name":"bench-DEVICEXXXXXXXXXX","device_type":"BENCH","interval_ms":10,"sensors":[{"name":"accX","units":"m/s2"},{"name":"accY","units":"m/s2"},{"name":"accZ","units":"m/s2"}],"values":[`, iat, strings.Repeat("0", 64)))
	for i := 0; sb.Len() < 100<<10; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, "[%d.125,-%d.5,9.81]", i%1000, i%777)
	}
	sb.WriteString("]}}")
	tmpl := []byte(sb.String())
	devOff := strings.Index(sb.String(), "DEVICEXXXXXXXXXX")
	sigOff := strings.Index(sb.String(), strings.Repeat("0", 64))
	key := []byte(b.hmacKey)
	var seq atomic.Int64 // across warm-up and measurement: every sample is new
	return func(int64) []byte {
		out := make([]byte, len(tmpl))
		copy(out, tmpl)
		copy(out[devOff:devOff+16], fmt.Sprintf("%016d", seq.Add(1)))
		m := hmac.New(sha256.New, key)
		m.Write(out)
		hex.Encode(out[sigOff:sigOff+64], m.Sum(nil))
		return out
	}
}

// makeKeys creates the admin key, 10,000 read-only keys, invalid keys and the HMAC key.
func (b *bench) makeKeys() error {
	var err error
	if b.adminKey, err = keys.GenerateAPIKey(); err != nil {
		return err
	}
	b.hmacKey = "bench-hmac-key-0123456789abcdef"
	for i := 0; i < 10000; i++ {
		k, _ := keys.GenerateAPIKey()
		b.mixKeys = append(b.mixKeys, k)
	}
	for i := 0; i < 1000; i++ {
		k, _ := keys.GenerateAPIKey()
		b.badKeys = append(b.badKeys, k)
	}
	return nil
}

func (b *bench) storeKeys(s keys.Store) error {
	ctx := context.Background()
	if _, err := s.CreateAPIKey(ctx, keys.NewAPIKey{ProjectID: 1, Name: "bench admin", Role: keys.RoleAdmin, Key: b.adminKey}); err != nil {
		return err
	}
	if _, err := s.CreateHMACKey(ctx, keys.NewHMACKey{ProjectID: 1, Name: "bench", Secret: b.hmacKey, IsDevelopmentKey: true}); err != nil {
		return err
	}
	for i, k := range b.mixKeys {
		if _, err := s.CreateAPIKey(ctx, keys.NewAPIKey{ProjectID: 1, Name: "mix " + strconv.Itoa(i), Role: keys.RoleReadOnly, Key: k}); err != nil {
			return err
		}
	}
	return nil
}

func redisCommands(rdb *redis.Client) int64 {
	info, err := rdb.Info(context.Background(), "stats").Result()
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return -1
}

// keygateRun starts keygate on one store and measures its scenarios.
func (b *bench) keygateRun(label string, redisAddr *string) error {
	fmt.Fprintf(os.Stderr, "keygate (%s store): creating 10,000 keys…\n", label)
	env := keygateBenchEnv("http://" + b.backend)
	var rdb *redis.Client
	var s keys.Store
	var err error
	if redisAddr != nil {
		env = append(env, "KEYGATE_REDIS_URL=redis://"+*redisAddr)
		rdb = redis.NewClient(&redis.Options{Addr: *redisAddr})
		defer rdb.Close()
		sealer, _ := keys.NewSealer([]byte(strings.Repeat("\xab", 32)))
		s = keys.NewRedisStore(redis.NewClient(&redis.Options{Addr: *redisAddr}), sealer)
	} else {
		dataDir := filepath.Join(b.dir, "data")
		env = append(env, "KEYGATE_DATA_DIR="+dataDir)
		sealer, _ := keys.NewSealer([]byte(strings.Repeat("\xab", 32)))
		if s, err = keys.OpenBolt(dataDir, sealer, 0); err != nil {
			return err
		}
	}
	if err := b.storeKeys(s); err != nil {
		s.Close()
		return err
	}
	s.Close()
	studio, ingestion, ops := freePort(), freePort(), freePort()
	env = append(env, "KEYGATE_STUDIO_LISTEN="+studio, "KEYGATE_INGESTION_LISTEN="+ingestion, "KEYGATE_OPS_LISTEN="+ops)
	kg, err := b.start("keygate-"+label, 0, env, b.o.keygate, "serve")
	if err != nil {
		return err
	}
	if err := waitPort(studio); err != nil {
		return err
	}
	name := "keygate (" + label + ")"
	S, I := "http://"+studio, "http://"+ingestion
	if redisAddr == nil && b.bare != nil {
		others, err := b.headlineOthers(env)
		if err != nil {
			return err
		}
		b.headlineRounds(kg, S, others)
		for _, o := range others {
			if o.p != nil {
				// SIGTERM, not SIGKILL: nginx's master then stops its worker (a killed master
				// leaves the worker running).
				o.p.Process.Signal(syscall.SIGTERM)
				o.p.Wait()
			}
		}
		if b.o.headlineOnly {
			return nil
		}
	}
	fmt.Fprintf(os.Stderr, "%s: measuring…\n", name)
	b.measure(name, "GET", kg, reqSpec{method: "GET", url: S + "/v1/api/1/raw-data", keys: []string{b.adminKey}, want: 200}, false)
	b.measure(name, "POST 16KiB", kg, reqSpec{method: "POST", url: S + "/v1/api/1/raw-data/1/rename", keys: []string{b.adminKey}, body: fixedBody(16 << 10), ctype: "application/octet-stream", want: 200}, false)
	b.measure(name, "POST signed 100KiB", kg, reqSpec{method: "POST", url: I + "/api/training/data", keys: []string{b.adminKey}, body: b.signedBodies(), ctype: "application/json", want: 200}, true)
	before := int64(-1)
	if rdb != nil {
		before = redisCommands(rdb)
	}
	b.measure(name, "invalid-key flood (1,000 keys)", kg, reqSpec{method: "GET", url: S + "/v1/api/1/raw-data", keys: b.badKeys, want: 401}, false)
	if rdb != nil {
		after := redisCommands(rdb)
		b.rows[len(b.rows)-1].note = fmt.Sprintf("Redis commands during the flood: %d (%.4f per request)", after-before,
			float64(after-before)/float64(b.rows[len(b.rows)-1].res.requests))
	}
	b.measure(name, "10,000-key mix (cache 5,000)", kg, reqSpec{method: "GET", url: S + "/v1/api/1/raw-data", keys: b.mixKeys, want: 200}, false)
	b.rows[len(b.rows)-1].note = fmt.Sprintf("peak RSS %.1f MiB, CPU %.1f s over the whole %s run", peakRSSMiB(kg.Process.Pid), cpuSeconds(kg.Process.Pid), label)
	kg.Process.Kill()
	kg.Wait()
	return nil
}

// measure warms up for a second, then runs one scenario and records the server's CPU per request.
func (b *bench) measure(name, shape string, server *exec.Cmd, spec reqSpec, forceGo bool) {
	load := func(d time.Duration) (loadResult, error) {
		if b.useWrk && !forceGo {
			return wrkLoad(b.dir, spec, b.o.conns, d)
		}
		return goLoad(spec, b.o.conns, d)
	}
	if _, err := load(time.Second); err != nil {
		fmt.Fprintf(os.Stderr, "  %s %s: warm-up: %v\n", name, shape, err)
	}
	var cpu0 float64
	if server != nil {
		cpu0 = cpuSeconds(server.Process.Pid)
	}
	res, err := load(b.o.duration)
	if err != nil {
		fmt.Fprintf(os.Stderr, "  %s %s: %v\n", name, shape, err)
		return
	}
	r := row{name: name, shape: shape, res: res}
	if server != nil && res.requests > 0 {
		r.cpuUS = (cpuSeconds(server.Process.Pid) - cpu0) / float64(res.requests) * 1e6
	}
	if res.good != res.requests {
		r.note = fmt.Sprintf("%d of %d answered with the expected status", res.good, res.requests)
	}
	b.rows = append(b.rows, r)
}

// server is a process under test and the base URL it answers on.
type server struct {
	p    *exec.Cmd
	base string
}

// headlineOthers starts what the headline compares keygate with besides the bare proxy: keygate on
// the std transport (its own embedded store holding the admin key: bbolt admits one process), the
// bare proxy on keygate's transport, and nginx when installed. env is the fast keygate's
// environment.
func (b *bench) headlineOthers(env []string) (others [3]server, err error) {
	std, bareFast, nginx := &others[0], &others[1], &others[2]
	dataDir := filepath.Join(b.dir, "data-std")
	sealer, _ := keys.NewSealer([]byte(strings.Repeat("\xab", 32)))
	s, err := keys.OpenBolt(dataDir, sealer, 0)
	if err != nil {
		return others, err
	}
	_, err = s.CreateAPIKey(context.Background(), keys.NewAPIKey{ProjectID: 1, Name: "bench admin", Role: keys.RoleAdmin, Key: b.adminKey})
	s.Close()
	if err != nil {
		return others, err
	}
	studio, ingestion, ops := freePort(), freePort(), freePort()
	senv := append(append([]string(nil), env...), "KEYGATE_DATA_DIR="+dataDir, "KEYGATE_UPSTREAM_TRANSPORT=std",
		"KEYGATE_STUDIO_LISTEN="+studio, "KEYGATE_INGESTION_LISTEN="+ingestion, "KEYGATE_OPS_LISTEN="+ops)
	if std.p, err = b.start("keygate-std", 0, senv, b.o.keygate, "serve"); err != nil {
		return others, err
	}
	if err := waitPort(studio); err != nil {
		return others, err
	}
	std.base = "http://" + studio
	keysFile := filepath.Join(b.dir, "bare-keys.txt")
	addr := freePort()
	if bareFast.p, err = b.start("bareproxy-fast", 0, []string{"BARE_FAST=1"}, b.self, "bareproxy", addr, "http://"+b.backend, keysFile); err != nil {
		return others, err
	}
	if err := waitPort(addr); err != nil {
		return others, err
	}
	bareFast.base = "http://" + addr
	p, addr, err := b.startNginx()
	if err != nil {
		fmt.Fprintln(os.Stderr, "nginx did not start (see its log in the temp dir):", err)
	} else if p != nil {
		*nginx = server{p: p, base: "http://" + addr}
	} else {
		fmt.Fprintln(os.Stderr, "nginx not installed: the headline runs without it (make bench installs it)")
	}
	return others, nil
}

// headlineRounds interleaves direct, bare proxy, keygate, keygate on the std transport and nginx
// three times (the machine is noisy: compare inside a round, then take the median).
func (b *bench) headlineRounds(kg *exec.Cmd, studio string, others [3]server) {
	fmt.Fprintln(os.Stderr, "interleaved rounds: direct / bare proxy / keygate / keygate std / bare fast / nginx…")
	get := func(u string) reqSpec {
		return reqSpec{method: "GET", url: u + "/v1/api/1/raw-data", keys: []string{b.adminKey}, want: 200}
	}
	run := func(spec reqSpec, p *exec.Cmd) (loadResult, float64) {
		load := func(d time.Duration) (loadResult, error) {
			if b.useWrk {
				return wrkLoad(b.dir, spec, b.o.conns, d)
			}
			return goLoad(spec, b.o.conns, d)
		}
		load(time.Second)
		var c0 float64
		if p != nil {
			c0 = treeCPUSeconds(p.Process.Pid)
		}
		r, err := load(3 * time.Second)
		if err != nil {
			fmt.Fprintln(os.Stderr, "  ", err)
			return r, 0
		}
		cpu := 0.0
		if p != nil && r.requests > 0 {
			cpu = (treeCPUSeconds(p.Process.Pid) - c0) / float64(r.requests) * 1e6
		}
		return r, cpu
	}
	for i := 0; i < b.o.rounds; i++ {
		var h headlineRound
		h.direct, _ = run(get("http://"+b.backend), nil)
		h.bare, h.bareCPU = run(get("http://"+b.bareAddr), b.bare)
		h.keygate, h.keygateCPU = run(get(studio), kg)
		if o := others[0]; o.p != nil {
			h.keygateStd, h.keygateStdCPU = run(get(o.base), o.p)
		}
		if o := others[1]; o.p != nil {
			h.bareFast, h.bareFastCPU = run(get(o.base), o.p)
		}
		if o := others[2]; o.p != nil {
			h.nginx, h.nginxCPU = run(get(o.base), o.p)
		}
		h.directFixed, _ = goLoadRate(get("http://"+b.backend), fixedRate, 16, 3*time.Second)
		h.bareFixed, _ = goLoadRate(get("http://"+b.bareAddr), fixedRate, 16, 3*time.Second)
		h.keygateFixed, _ = goLoadRate(get(studio), fixedRate, 16, 3*time.Second)
		b.headline = append(b.headline, h)
	}
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}

func (b *bench) printHeadline() {
	if len(b.headline) == 0 {
		return
	}
	fmt.Printf("\nHeadline: GET with a cached key, %d interleaved rounds of 3 s (median of the rounds):\n", len(b.headline))
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "round\tdirect req/s\tbare req/s\tkeygate req/s\tkeygate std req/s\tbare fast req/s\tnginx req/s\tkeygate/bare\tkeygate std/bare\tbare fast/bare\tkeygate/nginx\tkeygate/direct\tbare p99\tkeygate p99\tbare CPU/req\tkeygate CPU/req\tkeygate std CPU/req\tbare fast CPU/req\tnginx CPU/req\t")
	ratio := func(a, b loadResult) float64 {
		if a.requests == 0 || b.requests == 0 {
			return 0
		}
		return a.rps() / b.rps()
	}
	var kb, ksb, fb, kf, kn, kd, added, cpuB, cpuN []float64
	for i, h := range b.headline {
		if h.keygateCPU > 0 {
			cpuB = append(cpuB, h.bareCPU/h.keygateCPU)
			if h.nginxCPU > 0 {
				cpuN = append(cpuN, h.nginxCPU/h.keygateCPU)
			}
		}
		r1, r2, r3, r4 := ratio(h.keygate, h.bare), ratio(h.keygateStd, h.bare), ratio(h.keygate, h.nginx), ratio(h.keygate, h.direct)
		r5 := ratio(h.bareFast, h.bare)
		kb, ksb, kn, kd = append(kb, r1), append(ksb, r2), append(kn, r3), append(kd, r4)
		fb, kf = append(fb, r5), append(kf, ratio(h.keygate, h.bareFast))
		added = append(added, float64(h.keygate.p99-h.direct.p99)/float64(time.Millisecond))
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t%s\t%.0f µs\t%.0f µs\t%.0f µs\t%.0f µs\t%.0f µs\t\n", i+1,
			h.direct.rps(), h.bare.rps(), h.keygate.rps(), rpsOr0(h.keygateStd), rpsOr0(h.bareFast), rpsOr0(h.nginx), r1, r2, r5, r3, r4,
			round(h.bare.p99), round(h.keygate.p99), h.bareCPU, h.keygateCPU, h.keygateStdCPU, h.bareFastCPU, h.nginxCPU)
	}
	tw.Flush()
	fmt.Printf("median: keygate/bare %.2f (spread %.2f–%.2f), keygate std/bare %.2f, keygate/nginx %.2f, keygate/direct %.2f, added p99 %.2f ms (at %d connections, saturated)\n",
		median(kb), minOf(kb), maxOf(kb), median(ksb), median(kn), median(kd), median(added), b.o.conns)
	if len(fb) > 0 && median(fb) > 0 {
		// The bare proxy on keygate's transport is what the transport gives with no policy at all:
		// the ceiling for keygate/bare in this design (docs/benchmarks.md).
		fmt.Printf("transport alone: bare fast/bare %.2f (spread %.2f–%.2f); keygate/bare fast %.2f\n",
			median(fb), minOf(fb), maxOf(fb), median(kf))
	}
	if len(cpuB) > 0 {
		// CPU per request is the steadier figure on a shared machine (docs/benchmarks.md).
		fmt.Printf("by CPU per request (the steadier figure): bare/keygate %.2f (spread %.2f–%.2f)", median(cpuB), minOf(cpuB), maxOf(cpuB))
		if len(cpuN) > 0 {
			fmt.Printf(", nginx/keygate %.2f", median(cpuN))
		}
		fmt.Println()
	}
	var fixedAdded, fixedAdded50, bareAdded, bareAdded50 []float64
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	for _, h := range b.headline {
		fixedAdded = append(fixedAdded, ms(h.keygateFixed.p99-h.directFixed.p99))
		fixedAdded50 = append(fixedAdded50, ms(h.keygateFixed.p50-h.directFixed.p50))
		bareAdded = append(bareAdded, ms(h.bareFixed.p99-h.directFixed.p99))
		bareAdded50 = append(bareAdded50, ms(h.bareFixed.p50-h.directFixed.p50))
	}
	fmt.Printf("fixed %d req/s (below saturation), added over direct (median of rounds): keygate p50 +%.3f ms p99 +%.3f ms; bare proxy p50 +%.3f ms p99 +%.3f ms\n",
		fixedRate, median(fixedAdded50), median(fixedAdded), median(bareAdded50), median(bareAdded))
}

func rpsOr0(r loadResult) float64 {
	if r.requests == 0 {
		return 0
	}
	return r.rps()
}

func minOf(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = min(m, x)
	}
	return m
}

func maxOf(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

func (b *bench) print() {
	b.printHeadline()
	direct := map[string]loadResult{}
	for _, r := range b.rows {
		if r.name == "direct backend" {
			direct[r.shape] = r.res
		}
	}
	fmt.Printf("\nkeygate-bench: %d connections, %s per scenario, %d CPUs", b.o.conns, b.o.duration, runtime.NumCPU())
	if b.pinned {
		fmt.Printf("; servers pinned to core 0 (GOMAXPROCS=1), load generator and Redis on core 1 (taskset)")
	} else {
		fmt.Printf("; not pinned (no taskset or a single CPU)")
	}
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "setup\trequest\ttool\treq/s\tp50\tp99\treq/s vs direct\tp99 vs direct\tserver CPU/req\t")
	for _, r := range b.rows {
		shape := r.shape
		if strings.HasPrefix(shape, "invalid") || strings.HasPrefix(shape, "10,000") {
			shape = "GET"
		}
		d, ok := direct[shape]
		ratio, p99r := "-", "-"
		if ok && d.requests > 0 {
			ratio = fmt.Sprintf("%.2f", r.res.rps()/d.rps())
			p99r = fmt.Sprintf("%.2f", float64(r.res.p99)/float64(d.p99))
		}
		cpu := "-"
		if r.cpuUS > 0 {
			cpu = fmt.Sprintf("%.0f µs", r.cpuUS)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t\n", r.name, r.shape, r.res.tool, r.res.rps(),
			round(r.res.p50), round(r.res.p99), ratio, p99r, cpu)
	}
	tw.Flush()
	for _, r := range b.rows {
		if r.note != "" {
			fmt.Printf("  %s, %s: %s\n", r.name, r.shape, r.note)
		}
	}
}

func round(d time.Duration) string {
	switch {
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%dµs", d.Microseconds())
	}
}
