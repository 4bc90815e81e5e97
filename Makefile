# SwiftSM: `make run` shows the main job, `make test` installs what is missing, builds and runs
# every test. Tests and tools run as release builds (the engine moves gigabytes in tests).
SWIFT      ?= swift
JOBS       ?= 2
BUILDFLAGS  = -c release -j $(JOBS) -Xswiftc -enable-testing
BIN         = $(shell $(SWIFT) build $(BUILDFLAGS) --show-bin-path 2>/dev/null)

.PHONY: deps build test unit-test cli-test run bench clean

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build $(BUILDFLAGS)

unit-test: build
	$(SWIFT) build $(BUILDFLAGS) --build-tests
	SMDRIVER=$(BIN)/smdriver $(SWIFT) test $(BUILDFLAGS) --skip-build

cli-test: build
	VHD=$(BIN)/vhd scripts/cli-tests.sh

test: unit-test cli-test

run: build
	VHD=$(BIN)/vhd scripts/quickstart.sh
	VHD=$(BIN)/vhd SMDRIVER=$(BIN)/smdriver scripts/quickstart-sm.sh

bench: deps
	bench/run.sh

clean:
	rm -rf .build var
