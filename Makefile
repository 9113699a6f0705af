# Clover build targets. Everything builds pure Go (CGO_ENABLED=0) so binaries are static.
export CGO_ENABLED := 0
GO        ?= go
BIN       := bin
TOOLS     := $(CURDIR)/.tools
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
TEST_TIMEOUT ?= 15m

.PHONY: all build run test test-short fuzz chaos proto lint bench-micro bench-compare bench-scale clean tools

all: build

# The commit for --version where the go command stamps none itself (a git
# worktree, GOFLAGS=-buildvcs=false); see internal/buildinfo.
BUILDINFO  = github.com/clover-kv/clover/internal/buildinfo
LDFLAGS    = -X $(BUILDINFO).revision=$(shell git rev-parse HEAD 2>/dev/null) \
             -X $(BUILDINFO).modified=$(shell test -n "$$(git status --porcelain 2>/dev/null)" && echo true)

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

# run starts a local multi-region demo cluster (4 processes on loopback) and keeps it running until Ctrl-C.
run: build
	./scripts/demo.sh

test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

test-short:
	$(GO) test -short -count=1 ./...

# fuzz runs each fuzz target for FUZZTIME, one after another. Their seed
# corpora also run as ordinary tests under `make test`.
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeEntry$$' -fuzztime $(FUZZTIME) ./raftfsm
	$(GO) test -run '^$$' -fuzz '^FuzzRestore$$' -fuzztime $(FUZZTIME) ./raftfsm
	$(GO) test -run '^$$' -fuzz '^FuzzKVRequest$$' -fuzztime $(FUZZTIME) ./server
	$(GO) test -run '^$$' -fuzz '^FuzzCreateKeyspace$$' -fuzztime $(FUZZTIME) ./server
	$(GO) test -run '^$$' -fuzz '^FuzzGossipMetaDecode$$' -fuzztime $(FUZZTIME) ./server
	$(GO) test -run '^$$' -fuzz '^FuzzGossipMetaEncode$$' -fuzztime $(FUZZTIME) ./server
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) ./internal/nodeconfig
	$(GO) test -run '^$$' -fuzz '^FuzzLoadSetting$$' -fuzztime $(FUZZTIME) ./internal/nodeconfig
	$(GO) test -run '^$$' -fuzz '^FuzzParseLocality$$' -fuzztime $(FUZZTIME) ./placement
	$(GO) test -run '^$$' -fuzz '^FuzzParseResidency$$' -fuzztime $(FUZZTIME) ./placement
	$(GO) test -run '^$$' -fuzz '^FuzzCatalogueWith$$' -fuzztime $(FUZZTIME) ./placement
	$(GO) test -run '^$$' -fuzz '^FuzzParseExtension$$' -fuzztime $(FUZZTIME) ./identity

bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem ./raftfsm/... ./placement/... ./access/... ./client/... ./bench/

# bench-compare runs the same workloads against a local 3-node Clover cluster
# and a 3-node etcd cluster and prints the ratios (BENCH_QUICK=1 for a smoke
# run; see the script for BENCH_DURATION, BENCH_OUT, BENCH_PROFILE).
bench-compare: build
	./scripts/bench-compare.sh

# chaos runs the fault-injection suite against real cloverd processes, each in
# its own network namespace (needs root, ip and iptables): kills, pauses and
# partitions chosen from a printed seed (CHAOS_SEED=n replays it), histories
# checked with Porcupine; then CRASH_CYCLES kill -9 cycles during writes, no
# acknowledged write lost. Failures leave artifacts in chaos-out/.
CHAOS_DURATION ?= 5m
CHAOS_SEED ?=
CRASH_CYCLES ?= 50
chaos:
	CLOVER_CHAOS=$(CHAOS_DURATION) CLOVER_CRASH_CYCLES=$(CRASH_CYCLES) CLOVER_CHAOS_SEED=$(CHAOS_SEED) CLOVER_CHAOS_ARTIFACTS=$(CURDIR)/chaos-out \
		$(GO) test -count=1 -timeout 60m -run '^(TestChaos|TestCrashCycles)$$' -v ./test/e2e

# bench-scale measures a 3-node cluster's idle CPU and memory and its write
# throughput at 0, 10, 100 and 1000 shards (SCALE_QUICK=1 for a smoke run;
# see the script for SCALE_SHARDS, SCALE_IDLE, BENCH_OUT).
bench-scale: build
	./scripts/bench-scale.sh

$(TOOLS)/protoc-gen-go:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

$(TOOLS)/protoc-gen-go-grpc:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

tools: $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc

# proto regenerates api/cloverv1 from api/proto (needs Debian's protobuf-compiler).
proto: tools
	@command -v protoc >/dev/null || { echo "protoc missing: apt-get install -y protobuf-compiler"; exit 1; }
	PATH=$(TOOLS):$$PATH protoc -I api/proto \
		--go_out=api/cloverv1 --go_opt=paths=source_relative \
		--go-grpc_out=api/cloverv1 --go-grpc_opt=paths=source_relative \
		api/proto/clover/v1/clover.proto
	mv api/cloverv1/clover/v1/*.go api/cloverv1/ && rm -rf api/cloverv1/clover

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf $(BIN) $(TOOLS)
