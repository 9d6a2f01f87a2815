# MailDesk — build and test. `make test` is what CI runs (.ci/run).
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
# Releases are stripped (-s -w: no symbol table, no DWARF; stack traces and
# pprof profiles still name functions): 172 MB → about 125 MB.
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: build test test-long vet race fuzz bench addon

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/maildesk ./cmd/maildesk
	@ls -l bin/maildesk | awk '{printf "bin/maildesk: %.1f MB\n", $$5/1e6}'

vet:
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(TESTENV) $(GO) vet ./...

# The tests build with the release's flags (CGO_ENABLED=0, -trimpath, as in
# deploy/Dockerfile), so TestDeployedBinary's `go build` of the shipped
# binary reuses the packages the tests compiled and only links; with other
# flags it recompiled every dependency (msgraph-sdk-go: minutes) and, on a
# busy 2-core machine, ran past the 10-minute package timeout.
TESTENV := CGO_ENABLED=0 GOFLAGS="$(strip $(shell $(GO) env GOFLAGS) -trimpath)"

# The whole suite: vet, Go tests in random order, and the addon's Odoo-free tests.
test: vet
	$(TESTENV) $(GO) test -shuffle=on -count=1 ./...
	@if [ -f odoo-addon/run_tests.sh ]; then bash odoo-addon/run_tests.sh; fi

# The suite with the long variants of a few tests (MAILDESK_LONG=1), e.g.
# 30 SIGKILLs instead of 12 in the chaos test, a 40 MB upload instead of
# 10 MB. make test covers each behaviour once.
test-long: vet
	MAILDESK_LONG=1 $(TESTENV) $(GO) test -shuffle=on -count=1 -timeout 30m ./...

# Race detector on the packages with the most concurrency (kept focused: 2 cores).
race:
	$(GO) test -race -count=1 ./store/... ./rpc/... ./bridge/...

# Fuzz the JSON-RPC codec; FUZZTIME=5m for the acceptance run.
FUZZTIME ?= 1m
fuzz:
	$(GO) test -run '^$$' -fuzz=FuzzCodec -fuzztime=$(FUZZTIME) ./rpc

bench:
	$(GO) test -run '^$$' -bench=BenchmarkMailboxGet -benchtime=5000x ./rpc

# The Odoo modules for one series or several: dist/<series>/{maildesk,maildesk_crm},
# ready for an addons path (odoo-addon/build.py says what differs per series).
SERIES ?= 17.0 18.0 19.0
addon:
	@for s in $(SERIES); do python3 odoo-addon/build.py $$s --out dist || exit 1; done
