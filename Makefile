# keygate — build, test, benchmark. `make test` is what CI runs (.ci/run); it installs what the
# tests need (redis-server) when it is missing.
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
PKGS        := ./...

.PHONY: all build test deps lint tree stress fuzz reliability bench bench-instructions run demo clean

all: build

build:
	$(GO) build -o bin/keygate ./cmd/keygate

# deps installs the system packages the tests drive for real (Debian/Ubuntu, as root or via sudo):
# redis-server, Debian's chromium for the Keys page's browser test, systemd-analyze for the unit
# check, and node with busboy (pinned by verify/testdata/busboy/package-lock.json, installed with
# npm ci) for the multipart differential test, and with express (pinned by
# policy/testdata/express/package-lock.json) for the routing differential test; python3 (its
# wsgiref) for the WSGI header differential test.
deps:
	@missing=; command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v systemd-analyze >/dev/null 2>&1 || missing="$$missing systemd"; \
	command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v python3 >/dev/null 2>&1 || missing="$$missing python3"; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@command -v redis-server >/dev/null 2>&1 || { echo "redis-server is required for the tests"; exit 1; }
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { echo "chromium is required for the browser test"; exit 1; }
	@cd verify/testdata/busboy && npm ci --no-audit --no-fund --loglevel=error >/dev/null || { echo "npm ci in verify/testdata/busboy failed: busboy is required for the multipart test"; exit 1; }
	@cd policy/testdata/express && npm ci --no-audit --no-fund --loglevel=error >/dev/null || { echo "npm ci in policy/testdata/express failed: express is required for the routing differential test"; exit 1; }

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

# package:target pairs.
FUZZ_TARGETS := ./verify:FuzzParseJSON ./verify:FuzzParseCBOR ./verify:FuzzSplitMultipart ./upstream:FuzzUpstreamResponse ./upstream:FuzzRequestHead ./upstream:FuzzReadResponse

# tree fails on anything but source in git: a tracked executable or a file over 1 MB (.ci/check-tree).
tree:
	@./.ci/check-tree

test: deps lint tree
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	@# A short run of each fuzz target on top of its seed corpus (make fuzz runs them longer).
	@for pf in $(FUZZ_TARGETS); do p=$${pf%%:*}; f=$${pf#*:}; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 5s $$p >/dev/null 2>&1 || { echo "fuzz $$f failed"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 1x $$p; exit 1; }; done
	@echo "fuzz: $(FUZZ_TARGETS) ran 5s each without a failure"

# stress runs every test STRESS_COUNT (10) times with the race detector in shuffled order, and the
# Keys page's browser test 20 times: run it before changing a test or a timing-sensitive path. A test
# that fails one run in ten shows up here instead of throwing away a CI run. It takes a long time
# (see README); STRESS_PKGS narrows it, e.g. STRESS_PKGS=./keys/.
STRESS_COUNT ?= 10
STRESS_PKGS  ?= $(PKGS)
BROWSER_TEST := ^TestKeysPageInBrowser$$

stress: deps
	$(GO) test -race -shuffle=on -count=$(STRESS_COUNT) -timeout 180m -skip '$(BROWSER_TEST)' $(STRESS_PKGS)
	$(GO) test -race -count=20 -timeout 60m -run '$(BROWSER_TEST)' $(STRESS_PKGS)

# fuzz runs every fuzz target of the module (found with `go test -list '^Fuzz' ./...`, so a new one
# needs no edit here) one after the other, FUZZ_TOTAL in all (at least 10 s each), and prints the
# executions and crashes of each; a crash leaves its input under the package's testdata/fuzz.
FUZZ_TOTAL ?= 10m
fuzz:
	RELIABILITY_FUZZ=$(FUZZ_TOTAL) $(GO) run ./cmd/keygate-reliability fuzz

# reliability is the fault suite (cmd/keygate-reliability, README "Reliability"): real redis-server,
# Sentinel and Cluster processes, several `keygate serve` and a Go upstream on loopback, broken under
# load; then every fuzz target (FUZZ_TOTAL). It writes docs/reliability.md and exits 1 if a figure
# misses its goal. About 25 minutes; RELIABILITY_SOAK=2m FUZZ_TOTAL=2m for about 8.
RELIABILITY_SOAK ?= 10m
reliability: deps
	@command -v redis-cli >/dev/null 2>&1 || { SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; $$SUDO apt-get install -y -qq redis-tools >/dev/null; }
	RELIABILITY_SOAK=$(RELIABILITY_SOAK) RELIABILITY_FUZZ=$(FUZZ_TOTAL) $(GO) run ./cmd/keygate-reliability -out docs/reliability.md

# bench measures keygate against a direct backend, a bare ReverseProxy, keygate on the std upstream
# transport and nginx on loopback (wrk and nginx installed from Debian's packages when missing; the
# Go load generator without wrk); about two minutes. BENCH_FLAGS=-duration=10s for longer runs.
bench: deps
	@command -v wrk >/dev/null 2>&1 || { SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; $$SUDO apt-get install -y -qq wrk >/dev/null 2>&1 || echo "wrk not installed: using the Go load generator"; }
	@command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nginx-light >/dev/null 2>&1 || echo "nginx not installed: the headline runs without it"; }
	$(GO) build -o bin/keygate ./cmd/keygate
	$(GO) build -o bin/keygate-bench ./cmd/keygate-bench
	./bin/keygate-bench -keygate bin/keygate $(BENCH_FLAGS)

# bench-instructions counts the user-space instructions per proxied GET of the bare ReverseProxy
# (std and keygate's transport) and keygate (fast and std) under valgrind's callgrind: a figure the
# machine's other load does not move (docs/benchmarks.md). About two minutes.
bench-instructions: deps
	@command -v valgrind >/dev/null 2>&1 || { SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; $$SUDO apt-get install -y -qq valgrind >/dev/null; }
	@command -v wrk >/dev/null 2>&1 || { SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; $$SUDO apt-get install -y -qq wrk >/dev/null 2>&1 || echo "wrk not installed: using the Go load generator"; }
	$(GO) build -o bin/keygate ./cmd/keygate
	$(GO) build -o bin/keygate-bench ./cmd/keygate-bench
	./bin/keygate-bench -keygate bin/keygate -instructions $(BENCH_FLAGS)

run: build
	./bin/keygate serve

demo: build
	./bin/keygate demo

clean:
	rm -rf bin
