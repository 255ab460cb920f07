# clavis-telemetry — see README.md. `make run` to see metrics, `make test` to check everything.
GO        ?= go
BIN       := bin
PKG       := github.com/clavitor/clavis-telemetry
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH    ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w \
	-X github.com/prometheus/common/version.Version=$(VERSION) \
	-X github.com/prometheus/common/version.Revision=$(REVISION) \
	-X github.com/prometheus/common/version.Branch=$(BRANCH) \
	-X github.com/prometheus/common/version.BuildUser=clavis \
	-X github.com/prometheus/common/version.BuildDate=$(shell date -u +%Y%m%d-%H:%M:%S)
# make run: this machine only (plain HTTP, no auth); LISTEN=:9745 for every interface.
LISTEN    ?= localhost:9745
# Go test timeout for the whole suite; CI has 90 minutes on 2 cores.
TEST_TIMEOUT ?= 40m

.PHONY: all build commercial run test test-short deps tools lint lint-go lint-promtool bench stack fuzz clean

all: build

## build: the three editions of clavis-telemetry, and alertbridge
# Static binaries (no cgo), as the Dockerfile builds them: nothing to
# install on a POP, and no libc mapped into the process (about 2 MB of RSS).
# -trimpath: no build machine paths in the binary (reproducible).
BUILDFLAGS := -trimpath
build: export CGO_ENABLED = 0
build: commercial
	$(GO) build $(BUILDFLAGS) -ldflags '$(LDFLAGS)' -o $(BIN)/clavis-telemetry ./cmd/clavis-telemetry
	$(GO) build $(BUILDFLAGS) -ldflags '$(LDFLAGS)' -tags telemetry -o $(BIN)/clavis-telemetry-telemetry ./cmd/clavis-telemetry
	$(GO) build $(BUILDFLAGS) -ldflags '$(LDFLAGS)' -o $(BIN)/alertbridge ./cmd/alertbridge

## commercial: only the commercial edition, as the Dockerfile and the systemd unit ship it
commercial: export CGO_ENABLED = 0
commercial:
	$(GO) build $(BUILDFLAGS) -ldflags '$(LDFLAGS)' -tags commercial -o $(BIN)/clavis-telemetry-commercial ./cmd/clavis-telemetry

## run: the telemetry edition serving this machine's /metrics on $(LISTEN) (e.g. make run LISTEN=127.0.0.1:31745)
# The URL to open: ":9745" and "0.0.0.0:9745" are reached on localhost.
RUN_URL = http://$(patsubst :%,localhost:%,$(patsubst 0.0.0.0:%,:%,$(LISTEN)))/metrics
run:
	$(GO) build -ldflags '$(LDFLAGS)' -tags telemetry -o $(BIN)/clavis-telemetry-telemetry ./cmd/clavis-telemetry
	@echo "serving $(RUN_URL) (Ctrl-C to stop)"
	$(BIN)/clavis-telemetry-telemetry --web.listen-address=$(LISTEN)

## deps: install the real peers the tests use (Debian packages) when missing
deps:
	bash scripts/install-deps.sh

## tools: current upstream Prometheus, promtool, Alertmanager, amtool and
## VictoriaMetrics, built from their Go modules pinned in tools/ (modules of
## their own: the product's go.mod stays clean) into bin/tools; prints
## "name path" per binary. Slow once (Prometheus), then the Go build cache.
tools:
	bash tools/build.sh

# Packages holding code or tests behind the telemetry/commercial build tags.
EDITION_PKGS = ./cmd/clavis-telemetry/ ./collector/ ./tarpit/

## test: everything — vet, unit, race, fuzz seeds, end to end, for every edition
test: deps tools
	$(GO) vet ./...
	$(GO) vet -tags telemetry ./...
	$(GO) vet -tags commercial ./...
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	# The packages with edition build tags, once per tagged edition (the
	# default build is the community one, tested above).
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) -tags telemetry $(EDITION_PKGS)
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) -tags commercial $(EDITION_PKGS)
	# The 10,000,000-IP sketch accuracy check takes <1 s plain, minutes under -race.
	$(GO) test -count=1 -run '^TestWindowAccuracy10M$$' ./internal/sketch/

## test-short: unit tests only, no real peers
test-short:
	$(GO) test -short -count=1 ./...

## lint: gofmt, go vet for every edition, promtool and amtool checks of the central config, promtool check metrics of a real scrape
lint: lint-go lint-promtool

lint-go:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags telemetry ./...
	$(GO) vet -tags commercial ./...

# The central config as Prometheus and Alertmanager read it, and the
# exporter's own exposition: the telemetry edition is started on a free
# loopback port, scraped once with curl and its output linted by promtool.
lint-promtool:
	promtool check config prometheus/prometheus.yml prometheus/ha/prometheus.yml
	promtool check rules prometheus/rules/*.yml
	amtool check-config prometheus/alertmanager.yml
	$(GO) build -tags telemetry -o $(BIN)/clavis-telemetry-telemetry ./cmd/clavis-telemetry
	@set -e; log=$$(mktemp); \
	$(BIN)/clavis-telemetry-telemetry --web.listen-address=127.0.0.1:0 --tarpit.log.file= 2>$$log & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; rm -f $$log' EXIT; addr=; \
	for i in $$(seq 100); do \
	  addr=$$(sed -n 's/.*msg="Listening on" address=\([^ ]*\).*/\1/p' $$log | head -n1); \
	  [ -n "$$addr" ] && curl -sf -o /dev/null http://$$addr/-/ready && break; sleep 0.1; \
	done; \
	[ -n "$$addr" ] || { cat $$log; echo "lint-promtool: the exporter did not start"; exit 1; }; \
	echo "promtool check metrics < http://$$addr/metrics"; \
	curl -sf http://$$addr/metrics | promtool check metrics

## fuzz: run each fuzz target for FUZZTIME (seeds alone run in make test)
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; done

## bench: every benchmark script under bench/, against its real peer
bench: deps build
	@for s in bench/*.sh; do echo "== $$s"; bash $$s || exit 1; done

## stack: the central pipeline in the foreground for a person (Ctrl-C stops)
stack: build
	bash scripts/stack.sh

clean:
	rm -rf $(BIN)
