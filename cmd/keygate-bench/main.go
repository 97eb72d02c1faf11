// Command keygate-bench measures keygate against a direct backend on loopback, in one run: it
// starts a trivial backend, a bare httputil.ReverseProxy with a map lookup (the floor for this
// design), and keygate (embedded store, and Redis when redis-server is installed), creates keys,
// drives load with wrk (when installed) or its own Go load generator, and prints one table with
// each figure as a ratio to the direct backend measured in the same run.
//
//	go run ./cmd/keygate-bench [-duration 5s] [-conns 32]     (make bench)
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "backend":
			runBackend(os.Args[2])
			return
		case "bareproxy":
			runBareProxy(os.Args[2], os.Args[3], os.Args[4])
			return
		case "gwproxy":
			runGatewayProxy(os.Args[2], os.Args[3], os.Args[4])
			return
		}
	}
	var o options
	flag.DurationVar(&o.duration, "duration", defaultDuration, "load time per scenario (after a 1s warm-up)")
	flag.IntVar(&o.conns, "conns", 32, "concurrent connections")
	flag.StringVar(&o.keygate, "keygate", "", "keygate binary (default: build ./cmd/keygate)")
	flag.StringVar(&o.redis, "redis", "auto", "auto: also run with Redis when redis-server is installed; on; off")
	flag.BoolVar(&o.noWrk, "no-wrk", false, "use the Go load generator even when wrk is installed")
	flag.BoolVar(&o.headlineOnly, "headline", false, "only the interleaved direct / bare proxy / keygate rounds (about a minute)")
	instructions := flag.Bool("instructions", false, "count instructions per request under callgrind instead (make bench-instructions)")
	flag.IntVar(&o.rounds, "rounds", 3, "interleaved headline rounds (more rounds: a steadier median on a noisy machine)")
	flag.Parse()
	if o.rounds < 1 {
		o.rounds = 1
	}
	runner := run
	if *instructions {
		runner = runInstructions
	}
	if err := runner(o); err != nil {
		fmt.Fprintln(os.Stderr, "keygate-bench:", err)
		os.Exit(1)
	}
}
