# SwiftSM: `make run` shows the main job, `make test` installs what is missing, builds and runs
# every test. Tests and tools run as release builds (the engine moves gigabytes in tests).
SWIFT      ?= swift
JOBS       ?= 2
BUILDFLAGS  = -c release -j $(JOBS) -Xswiftc -enable-testing
BIN         = $(shell $(SWIFT) build $(BUILDFLAGS) --show-bin-path 2>/dev/null)

.PHONY: deps build test unit-test cli-test toolstack-test package-test run bench bench-toolstack clean install deb static

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build $(BUILDFLAGS)

# The VHD suites (which run crash probes as exit tests in child processes) run apart from the
# suites that start datapath and smdriver processes, which run beside a throw-away NFS-Ganesha
# server (scripts/with-nfs-server.sh) for the NFS SR's tests and throw-away iSCSI targets (tgt,
# scripts/with-iscsi-target.sh) for the ISCSI tests; each run is bounded so a hang
# fails CI quickly instead of using up its time.
unit-test: build
	$(SWIFT) build $(BUILDFLAGS) --build-tests
	timeout 900 $(SWIFT) test $(BUILDFLAGS) --skip-build --filter VHDTests
	SMDRIVER=$(BIN)/smdriver timeout 1200 scripts/with-nfs-server.sh scripts/with-iscsi-target.sh $(SWIFT) test $(BUILDFLAGS) --skip-build --skip VHDTests

cli-test: build
	VHD=$(BIN)/vhd scripts/cli-tests.sh

# toolstackd with real clients: the PyPI XenAPI SDK (socket and TCP), xe, the socket's protection.
toolstack-test: build
	TOOLSTACKD=$(BIN)/toolstackd XE=$(BIN)/xe SMDRIVER=$(BIN)/smdriver VHD=$(BIN)/vhd timeout 600 scripts/with-nfs-server.sh scripts/toolstack-tests.sh

test: unit-test cli-test toolstack-test

run: build
	VHD=$(BIN)/vhd scripts/quickstart.sh
	VHD=$(BIN)/vhd SMDRIVER=$(BIN)/smdriver scripts/quickstart-sm.sh
	VHD=$(BIN)/vhd SMDRIVER=$(BIN)/smdriver TOOLSTACKD=$(BIN)/toolstackd XE=$(BIN)/xe scripts/quickstart-toolstack.sh

# Installed like a product: release binaries with the static Swift runtime (process start is most
# of an SM call), the plugins where xapi looks for them (links to smdriver), toolstackd with its
# unit, xe. DESTDIR and PREFIX as usual; `make deb` packages the same with dpkg-deb.
PREFIX     ?= /usr/local
DESTDIR    ?=
STATICDIR   = .build/static
STATICBIN   = $(STATICDIR)/release
PRODUCTS    = smdriver swiftsm-datapath vhd toolstackd xe
VERSION    ?= 0.1.0

static: deps
	for p in $(PRODUCTS); do $(SWIFT) build -c release -j $(JOBS) --scratch-path $(STATICDIR) --static-swift-stdlib --product $$p || exit 1; done

install: static
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/libexec/swiftsm $(DESTDIR)/opt/xensource/sm $(DESTDIR)/lib/systemd/system
	install -m 755 $(STATICBIN)/smdriver $(STATICBIN)/swiftsm-datapath $(DESTDIR)$(PREFIX)/libexec/swiftsm/
	install -m 755 $(STATICBIN)/vhd $(STATICBIN)/toolstackd $(STATICBIN)/xe $(DESTDIR)$(PREFIX)/bin/
	# The drivers this build carries, under the Python SM's names.
	for t in EXT NFS LVMoISCSI; do ln -sf $(PREFIX)/libexec/swiftsm/smdriver $(DESTDIR)/opt/xensource/sm/$${t}SR; done
	# The host plugins: the SR master pauses a VDI's data path here (tapdisk-pause); the master
	# inflates and deflates thin LVHD leaves for the other hosts (lvhd-thin).
	install -d $(DESTDIR)/etc/xapi.d/plugins
	for p in tapdisk-pause lvhd-thin datapath-mirror; do ln -sf $(PREFIX)/libexec/swiftsm/smdriver $(DESTDIR)/etc/xapi.d/plugins/$$p; done
	sed 's|@PREFIX@|$(PREFIX)|' packaging/swiftsm-toolstackd.service > $(DESTDIR)/lib/systemd/system/swiftsm-toolstackd.service

deb:
	rm -rf .build/deb && $(MAKE) install DESTDIR=$(CURDIR)/.build/deb/root PREFIX=/usr
	scripts/make-deb.sh .build/deb/root $(VERSION) .build/swiftsm_$(VERSION).deb

package-test:
	scripts/package-tests.sh

bench: deps
	bench/run.sh

# toolstackd: VDI.snapshot through the SDK and xe vs smdriver directly; concurrent SDK clients.
bench-toolstack: build
	TOOLSTACKD=$(BIN)/toolstackd XE=$(BIN)/xe SMDRIVER=$(BIN)/smdriver python3 bench/toolstack-bench.py
	TOOLSTACKD=$(BIN)/toolstackd XE=$(BIN)/xe SMDRIVER=$(BIN)/smdriver STORE=postgres python3 bench/toolstack-bench.py

clean:
	rm -rf .build var
