package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// proc is one child process the suite runs. Every child gets SIGKILL when the suite dies
// (Pdeathsig), and the suite stops every child it started before it exits.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

var (
	procsMu sync.Mutex
	procs   []*proc
)

// start runs bin with args and env (added to the suite's), its output appended to a log file.
func start(name, logPath string, env []string, bin string, args ...string) (*proc, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); lf.Close(); close(p.done) }()
	procsMu.Lock()
	procs = append(procs, p)
	procsMu.Unlock()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill9 is the crash: SIGKILL, then wait for the process to be gone.
func (p *proc) kill9() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop asks politely (SIGTERM) and kills after timeout; it reports how long the exit took.
func (p *proc) stop(timeout time.Duration) (time.Duration, bool) {
	t0 := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return time.Since(t0), true
	case <-time.After(timeout):
		p.kill9()
		return time.Since(t0), false
	}
}

// stopAll ends every child still running (the suite's exit path).
func stopAll() {
	procsMu.Lock()
	defer procsMu.Unlock()
	for _, p := range procs {
		if p.alive() {
			p.kill9()
		}
	}
	procs = nil
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// waitFor polls cond every 20 ms until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// redisProc is one redis-server (plain, replica, sentinel or cluster node).
type redisProc struct {
	*proc
	port int
	dir  string
	args []string
}

// startRedis runs redis-server on a loopback port. persist: AOF with fsync on every write, so a
// kill -9 loses nothing the suite wrote (the guidance in the report explains why).
func startRedis(work string, port int, persist bool, extra ...string) (*redisProc, error) {
	dir := filepath.Join(work, "redis-"+strconv.Itoa(port))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "",
		"--protected-mode", "no", "--daemonize", "no", "--logfile", ""}
	if persist {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	args = append(args, extra...)
	r := &redisProc{port: port, dir: dir, args: args}
	return r, r.restart(work)
}

func (r *redisProc) restart(work string) error {
	p, err := start("redis-"+strconv.Itoa(r.port), filepath.Join(work, "redis-"+strconv.Itoa(r.port)+".log"), nil, "redis-server", r.args...)
	if err != nil {
		return err
	}
	r.proc = p
	if !waitFor(10*time.Second, func() bool { return pingRedis(r.port) }) {
		return fmt.Errorf("redis on %d did not answer PING", r.port)
	}
	return nil
}

func pingRedis(port int) bool {
	c := redis.NewClient(&redis.Options{Addr: addr(port), DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	return c.Ping(ctx).Err() == nil // LOADING (AOF replay) is an error too: not ready yet
}

// keygateProc is one `keygate serve` on Redis, Studio face and ops listener on loopback.
type keygateProc struct {
	*proc
	studio, ops string
	env         []string
	bin, log    string
}

func startKeygate(work, bin, name, redisURL, upstream string, extra ...string) (*keygateProc, error) {
	k := &keygateProc{studio: addr(freePort()), ops: addr(freePort()), bin: bin, log: filepath.Join(work, name+".log")}
	k.env = append([]string{
		"KEYGATE_REDIS_URL=" + redisURL,
		"KEYGATE_DATA_DIR=" + filepath.Join(work, name+"-data"),
		"KEYGATE_STUDIO_LISTEN=" + k.studio,
		"KEYGATE_STUDIO_UPSTREAM=" + upstream,
		"KEYGATE_OPS_LISTEN=" + k.ops,
		"KEYGATE_INGESTION_LISTEN=" + addr(freePort()),
		"KEYGATE_INGESTION_UPSTREAM=",
		"KEYGATE_REMOTE_LISTEN=" + addr(freePort()),
		"KEYGATE_REMOTE_UPSTREAM=",
		"KEYGATE_ACCESS_LOG=false",
		"KEYGATE_LOG_LEVEL=warn",
		"KEYGATE_MASTER_KEY=",
		// A short TTL so a fault of a few seconds outlasts it: cached keys are then served from
		// the grace period, which is what the suite checks.
		"KEYGATE_CACHE_TTL=" + cacheTTL.String(),
		"KEYGATE_CACHE_GRACE=5m",
	}, extra...)
	return k, k.restart()
}

func (k *keygateProc) restart() error {
	p, err := start(filepath.Base(k.log), k.log, k.env, k.bin, "serve")
	if err != nil {
		return err
	}
	k.proc = p
	ok := waitFor(20*time.Second, func() bool {
		resp, err := http.Get("http://" + k.ops + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	if !ok {
		return fmt.Errorf("%s not ready after 20 s (see %s)", filepath.Base(k.log), k.log)
	}
	return nil
}

// metric reads one unlabelled sample from keygate's /metrics.
func (k *keygateProc) metric(name string) (float64, error) {
	resp, err := http.Get("http://" + k.ops + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, errors.New(name + " not in /metrics")
}

// procStatus reads VmRSS (MiB) and the open file descriptors of a process.
func procStatus(pid int) (rssMiB float64, fds int) {
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				if f := strings.Fields(v); len(f) > 0 {
					kb, _ := strconv.ParseFloat(f[0], 64)
					rssMiB = kb / 1024
				}
			}
		}
	}
	if ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd"); err == nil {
		fds = len(ents)
	}
	return rssMiB, fds
}

// fdKinds is a process's open file descriptors by what they are. Under load the connections
// follow the load's concurrency and the pools' high-water marks, so a leak check compares the
// rest (files, listeners, pipes, the poller) and holds each pool's sockets to its own count.
type fdKinds struct {
	total    int
	clients  int // connections accepted on one of the given ports
	upstream int // connections to the upstream's port
	redis    int // connections to Redis's port
}

// other is every descriptor that is not a client, upstream or Redis connection.
func (k fdKinds) other() int { return k.total - k.clients - k.upstream - k.redis }

// procFDs classifies pid's descriptors, reading its sockets' ports from its network namespace's
// TCP tables (/proc/<pid>/net/tcp and tcp6): a socket whose inode is there is a listener (counted
// with the rest), a connection accepted on one of ports, or one to upstreamPort or redisPort.
func procFDs(pid int, ports []int, upstreamPort, redisPort int) fdKinds {
	type sock struct {
		local, remote int
		listen        bool
	}
	port := func(a string) int {
		_, p, _ := strings.Cut(a, ":")
		n, _ := strconv.ParseInt(p, 16, 32)
		return int(n)
	}
	socks := map[string]sock{}
	for _, table := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/net/" + table)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(l)
			if len(f) < 10 {
				continue
			}
			socks[f[9]] = sock{local: port(f[1]), remote: port(f[2]), listen: f[3] == "0A"}
		}
	}
	var k fdKinds
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return k
	}
	for _, e := range ents {
		k.total++
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		inode, ok := strings.CutPrefix(target, "socket:[")
		if !ok {
			continue
		}
		s, ok := socks[strings.TrimSuffix(inode, "]")]
		switch {
		case !ok, s.listen: // a listener's local port is a face's: not a client
		case slices.Contains(ports, s.local):
			k.clients++
		case s.remote == upstreamPort:
			k.upstream++
		case s.remote == redisPort:
			k.redis++
		}
	}
	return k
}

// portOf is the port of a host:port address (0 if it has none).
func portOf(hostport string) int {
	_, p, _ := net.SplitHostPort(hostport)
	n, _ := strconv.Atoi(p)
	return n
}
