# The Makefile is the project's interface: CI calls only these targets.
GO        ?= go
BIN       ?= bin
STATICCHECK_VERSION := v0.8.2
GOBIN     := $(shell $(GO) env GOPATH)/bin

.PHONY: run build test test-race bench lint fmt vet staticcheck clean

## run: start the server on the embedded SQLite store in ./payledger-data (no setup)
run:
	$(GO) run ./cmd/payledger serve

## build: build the binary into ./bin
build:
	$(GO) build -o $(BIN)/payledger ./cmd/payledger

## test: the whole test suite against real PostgreSQL (127.0.0.1:5432) and SQLite
test:
	@command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432 || { echo "make test: PostgreSQL must be running on 127.0.0.1:5432 (user postgres, trust auth); see README"; exit 1; }
	@command -v chromium >/dev/null || [ -n "$$PAYLEDGER_SKIP_BROWSER" ] || { echo "make test: the browser test needs Debian's chromium: apt-get install -y chromium (or set PAYLEDGER_SKIP_BROWSER=1)"; exit 1; }
	$(GO) test -count=1 -timeout 15m ./...

## test-race: the suite under the race detector (slower)
test-race:
	$(GO) test -race -count=1 -timeout 30m ./...

## bench: Go benchmarks, the raw PostgreSQL INSERT ceiling and the HTTP load command
bench:
	bash scripts/bench.sh

## lint: gofmt, go vet, staticcheck and the compose file
lint: vet staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); [ -z "$$out" ] || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	@if [ -f scripts/validate-compose.sh ]; then bash scripts/validate-compose.sh; fi

vet:
	$(GO) vet ./...

staticcheck:
	@command -v staticcheck >/dev/null || [ -x $(GOBIN)/staticcheck ] || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	PATH="$(GOBIN):$$PATH" staticcheck ./...

## fmt: format the code
fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)
