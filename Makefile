# SwiftSM: `make run` shows the main job, `make test` installs what is missing, builds and runs
# every test. Tests and tools run as release builds (the engine moves gigabytes in tests).
SWIFT      ?= swift
JOBS       ?= 2
BUILDFLAGS  = -c release -j $(JOBS) -Xswiftc -enable-testing
BIN         = $(shell $(SWIFT) build $(BUILDFLAGS) --show-bin-path 2>/dev/null)

.PHONY: deps build test unit-test cli-test toolstack-test run bench clean

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build $(BUILDFLAGS)

# The VHD suites (which run crash probes as exit tests in child processes) run apart from the
# suites that start datapath and smdriver processes; each run is bounded so a hang fails CI
# quickly instead of using up its time.
unit-test: build
	$(SWIFT) build $(BUILDFLAGS) --build-tests
	timeout 900 $(SWIFT) test $(BUILDFLAGS) --skip-build --filter VHDTests
	SMDRIVER=$(BIN)/smdriver timeout 900 $(SWIFT) test $(BUILDFLAGS) --skip-build --skip VHDTests

cli-test: build
	VHD=$(BIN)/vhd scripts/cli-tests.sh

# toolstackd with real clients: the PyPI XenAPI SDK (socket and TCP), xe, the socket's protection.
toolstack-test: build
	TOOLSTACKD=$(BIN)/toolstackd XE=$(BIN)/xe SMDRIVER=$(BIN)/smdriver timeout 600 scripts/toolstack-tests.sh

test: unit-test cli-test toolstack-test

run: build
	VHD=$(BIN)/vhd scripts/quickstart.sh
	VHD=$(BIN)/vhd SMDRIVER=$(BIN)/smdriver scripts/quickstart-sm.sh

bench: deps
	bench/run.sh

clean:
	rm -rf .build var
