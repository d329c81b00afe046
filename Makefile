# fraisier: build, test, demo, bench, lint. Every target works on a fresh
# Debian machine with Go; whatever a target needs beyond Go it installs itself.

GO      ?= go
BIN     ?= bin/fraisier
PKG     := github.com/fraiseql/fraisier
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS  = -s -w \
	-X $(PKG)/internal/version.Version=$(VERSION) \
	-X $(PKG)/internal/version.Commit=$(COMMIT) \
	-X $(PKG)/internal/version.Date=$(DATE)

.PHONY: all build test test-deps demo bench lint fmt clean reliability package

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/fraisier

# TESTTAGS compiles the engine's fault injection (FRAISIER_FAULT, see
# internal/deploy/fault.go) into the test binaries: internal/cli's crash
# tests run their test binary as fraisier and kill it at exact points.
# build never passes it, so the shipped binary ignores FRAISIER_FAULT (a
# test in internal/cli checks a binary built by make build). Without the
# tag, go test skips the crash tests and says why.
TESTTAGS := -tags fraisier_faults

# test runs everything CI runs: lint, the parts integration tests need
# (installed when missing), then every package's tests.
test: lint test-deps
	$(GO) test $(TESTTAGS) -count=1 ./...
	$(MAKE) --no-print-directory fuzz-short

test-deps:
	./scripts/test-deps.sh

# reliability runs what make test cannot afford: the long load and attack
# runs and the slow fault injections (tests named TestReliability*, which
# run only with FRAISIER_RELIABILITY=1). docs/reliability.md lists them.
reliability: build test-deps
	FRAISIER_RELIABILITY=1 FRAISIER_TEST_STRICT=1 $(GO) test $(TESTTAGS) -count=1 -timeout 30m -run 'Reliability' ./...

demo: build
	./scripts/demo.sh $(BIN)

bench: build
	./bench/run.sh $(BIN)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet $(TESTTAGS) ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin dist

# package builds the Debian package dist/fraisier_<version>_<arch>.deb
# (packaging/README.md lists what it installs): the binary make build
# writes, man pages and completions from packaging/gendocs, and the files
# under packaging/, put together by nfpm (tools/go.mod pins it, outside the
# main module: it is not part of the binary). nfpm expands no variable in
# file names, so packaging/nfpm.yaml's @NAMES@ are replaced into
# $(DIST)/nfpm.yaml. DIST and BIN may be absolute (the package's tests
# build into a temporary directory).
DIST           ?= dist
DEB_VERSION    ?= $(shell packaging/debian/version.sh)
DEB_ARCH       ?= $(shell $(GO) env GOARCH)
DEB_MAINTAINER ?= $(shell git log -1 --format='%an <%ae>')
# The commit's time dates the man pages and every file in the package, so
# that the same commit gives the same .deb.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct)
# The packaged binary's build date is that time too (a target-specific
# value, which make build inherits as package's prerequisite).
package: DATE = $(shell date -u -d @$(SOURCE_DATE_EPOCH) +%Y-%m-%dT%H:%M:%SZ)

package: build
	rm -rf $(DIST)/gen $(DIST)/fraisier_*.deb
	mkdir -p $(DIST)
	$(GO) run ./packaging/gendocs -out $(DIST)/gen -version '$(DEB_VERSION)' -date '$(SOURCE_DATE_EPOCH)'
	printf 'fraisier (%s) unstable; urgency=medium\n\n  * Built from commit %s by make package.\n\n -- %s  %s\n' \
		'$(DEB_VERSION)' "$$(git rev-parse HEAD)" '$(DEB_MAINTAINER)' "$$(date -u -R -d @$(SOURCE_DATE_EPOCH))" \
		| gzip -9n >$(DIST)/gen/changelog.gz
	sed -e 's|@BIN@|$(abspath $(BIN))|g' -e 's|@GEN@|$(abspath $(DIST))/gen|g' \
		-e 's|@VERSION@|$(DEB_VERSION)|g' -e 's|@ARCH@|$(DEB_ARCH)|g' \
		-e 's|@MAINTAINER@|$(DEB_MAINTAINER)|g' packaging/nfpm.yaml >$(DIST)/nfpm.yaml
	SOURCE_DATE_EPOCH='$(SOURCE_DATE_EPOCH)' $(GO) tool -modfile=tools/go.mod nfpm package \
		--config $(DIST)/nfpm.yaml --packager deb --target $(DIST)/

# fuzz runs every fuzz target for FUZZTIME each (go test takes one -fuzz
# target at a time); fuzz-short is the quick pass CI can afford. Inputs that
# fail are saved under the package's testdata/fuzz and then run by make test.
FUZZTIME ?= 60s
FUZZ_TARGETS := ./internal/forge:FuzzParse ./internal/forge:FuzzDecodeGitHubPush ./internal/forge:FuzzAuthenticate ./internal/config:FuzzLoad

.PHONY: fuzz fuzz-short

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=5s
