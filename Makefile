# certreg - build, test, install, demo.
#
#   make                 build certregd and certreg-admin into build/
#   make check           install missing Debian packages, build, run every test on the plain build
#   make check-slow      deb-check and the pytest suite under ASan+UBSan (CI runs both)
#   make run             the demo: PostgreSQL, PKI, data, certregd; prints commands to try
#   make demo-check      the demo's self-test: runs those commands, exit 0/1 (tests/test_demo.py in make check)
#   make install         PREFIX=/usr/local DESTDIR=  (programs, SQL, man pages, units, sysusers)
#   make deb             the Debian packages certreg and certreg-admin into build/deb/
#   make deb-check       build them, install, check and purge them in a throwaway root
#   make SANITIZER=address,undefined   instrumented build (into build/san/)
#   make fuzz FUZZ_SECONDS=N           run each libFuzzer target (clang)
#   make fuzz-short                    each fuzz target for 10 s (in make check)
#   make sanitize-check                unit + pytest suites on the ASan/UBSan build
#                                      (sanitize-unit in make check, sanitize-integration in check-slow)
#   make valgrind-unit                 each unit test program under valgrind
#   make soak                          long fuzz runs + fault suites, figures printed
#   make conformance     the x509-limbo client-auth subset through the engine (in make check)
#   make bench           certregd against nginx and the crypto limit, then bench-replica (docs/PERFORMANCE.md)
#   make bench-replica   reads on a standby vs the primary, two daemons vs one (issue 30)
#   make bench-ocsp      instructions a cached OCSP answer adds to a cold /v1/verify (issue 33)
#   make flamegraph      flame graphs of a worker in handshakes and cold /v1/verify, into docs/

PREFIX  ?= /usr/local
DESTDIR ?=
SBINDIR  = $(PREFIX)/sbin
BINDIR   = $(PREFIX)/bin
DATADIR  = $(PREFIX)/share/certreg
MANDIR   = $(PREFIX)/share/man
LOCALEDIR = $(PREFIX)/share/locale
# Both are on systemd's search paths for PREFIX=/usr/local as for /usr;
# the Debian package puts the units in /lib/systemd/system (Debian 12's
# place, which its debhelper and lintian expect).
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
VERSION  = 0.1.0

CC      ?= cc
PYTHON  ?= /usr/bin/python3
PKGS_SERVER = libevent libevent_openssl libpq openssl jansson inih libsystemd libcurl
PKGS_ADMIN  = libpq openssl jansson inih libcurl
PKGS_TEST   = cmocka

# certregd allocates with jemalloc (as Redis does): OpenSSL 3.0 makes some
# hundreds of small allocations per certificate it parses, and jemalloc
# serves them about 8 % faster than glibc's malloc (docs/PERFORMANCE.md).
# `make MALLOC=` builds with glibc's. Sanitizer builds use their own.
ifneq ($(SANITIZER),)
BUILD    ?= build/san
# Uninitialised locals are filled with a pattern (0xfe bytes), not left
# with whatever the stack held: a read of one then fails the same way on
# every run instead of passing while the stack happens to hold zeros.
SANFLAGS  = -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=all \
            -ftrivial-auto-var-init=pattern
MALLOC    =
else
BUILD    ?= build
SANFLAGS  =
MALLOC   ?= jemalloc
endif

WARN    = -Wall -Wextra -Wstrict-prototypes -Wmissing-prototypes -Wshadow -Wformat=2 \
          -Wno-missing-field-initializers
CFLAGS ?= -O2 -g
# CPPFLAGS, CFLAGS and LDFLAGS come through from the environment or the
# command line (the Debian build passes dpkg-buildflags' hardening set).
ALL_CFLAGS = $(CPPFLAGS) -std=c11 -D_GNU_SOURCE -DCERTREG_VERSION='"$(VERSION)"' \
             -DCERTREG_DATADIR='"$(DATADIR)"' -DCERTREG_LOCALEDIR='"$(LOCALEDIR)"' \
             $(WARN) $(CFLAGS) $(SANFLAGS) -Icommon -MMD -MP
LDFLAGS_ALL = $(LDFLAGS) $(SANFLAGS)

pc_cflags = $(shell pkg-config --cflags $(1) 2>/dev/null)
pc_libs   = $(shell pkg-config --libs $(1) 2>/dev/null)

COMMON_SRC = $(sort $(wildcard common/*.c))
SERVER_SRC = $(sort $(wildcard server/*.c))
ADMIN_SRC  = $(sort $(wildcard admin/*.c))
UNIT_SRC   = $(sort $(wildcard tests/unit/test_*.c))

COMMON_OBJ = $(COMMON_SRC:%.c=$(BUILD)/%.o)
SERVER_OBJ = $(SERVER_SRC:%.c=$(BUILD)/%.o)
ADMIN_OBJ  = $(ADMIN_SRC:%.c=$(BUILD)/%.o)
# Unit tests link the module under test from these, so main() stays out.
SERVER_LIB_OBJ = $(filter-out $(BUILD)/server/main.o,$(SERVER_OBJ))
ADMIN_LIB_OBJ  = $(filter-out $(BUILD)/admin/main.o,$(ADMIN_OBJ))
UNIT_BIN   = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

CERTREGD = $(BUILD)/certregd
ADMIN    = $(BUILD)/certreg-admin

# certreg-admin's messages in Chinese (admin/i18n.c): po/zh_CN.po compiled
# beside the program, where the build tree's certreg-admin looks first.
# `make pot` extracts the texts anew into po/certreg-admin.pot (POT= another
# file); the cli_* functions and report_done translate their format
# arguments, report_summary and report_list their noun pairs. A text to
# translate is one literal: no macro pasted into it.
ADMIN_MO = $(BUILD)/locale/zh_CN/LC_MESSAGES/certreg-admin.mo
POT     ?= po/certreg-admin.pot
XGETTEXT_KEYWORDS = --keyword=_ --keyword=N_ --keyword=cli_error:2 --keyword=cli_hint:2 \
        --keyword=cli_detail:2 --keyword=cli_usage:3 --keyword=cli_refuse:3 \
        --keyword=report_done:3 --keyword=report_summary:2,3 --keyword=report_list:5,6 \
        --keyword=i18n_ntext:1,2 --keyword=NC_:1c,2 \
        --flag=cli_error:2:c-format --flag=cli_hint:2:c-format --flag=cli_detail:2:c-format \
        --flag=cli_usage:3:c-format --flag=cli_refuse:3:c-format --flag=report_done:3:c-format

.DEFAULT_GOAL := all

# Objects that compile in DATADIR are rebuilt when PREFIX changes.
DATADIR_STAMP = $(BUILD)/datadir.stamp
$(DATADIR_STAMP): FORCE
	@mkdir -p $(@D)
	@echo '$(DATADIR)' | cmp -s - $@ || echo '$(DATADIR)' > $@
$(BUILD)/admin/migrate.o $(BUILD)/admin/i18n.o: $(DATADIR_STAMP)
FORCE:

# The systemd units name the installed programs: written from deploy/*.in
# with @SBINDIR@ replaced, again when PREFIX (SBINDIR) changes.
SBINDIR_STAMP = $(BUILD)/sbindir.stamp
$(SBINDIR_STAMP): FORCE
	@mkdir -p $(@D)
	@echo '$(SBINDIR)' | cmp -s - $@ || echo '$(SBINDIR)' > $@
UNITS_GEN = $(BUILD)/deploy/certregd.service $(BUILD)/deploy/certreg-crl-refresh.service
$(BUILD)/deploy/%.service: deploy/%.service.in $(SBINDIR_STAMP)
	@mkdir -p $(@D)
	sed 's|@SBINDIR@|$(SBINDIR)|g' $< > $@.tmp && mv $@.tmp $@

.PHONY: all deps check check-slow unit integration run demo-check install install-daemon install-admin uninstall clean \
        deb deb-check fuzz conformance bench bench-tools bench-replica bench-ocsp flamegraph \
        format format-check lint bench soak pot
all: $(CERTREGD) $(ADMIN) $(ADMIN_MO)

deps:
	@scripts/deps.sh

$(ADMIN_MO): po/zh_CN.po
	@mkdir -p $(@D)
	msgfmt --check -o $@.tmp $< && mv $@.tmp $@

# Sorted by file, no line numbers: the .pot changes only when a text does.
pot:
	xgettext --from-code=UTF-8 --language=C --add-comments=TRANSLATORS: $(XGETTEXT_KEYWORDS) \
		--sort-by-file --no-location --package-name=certreg-admin \
		--package-version=$(VERSION) --msgid-bugs-address=certreg@certreg.invalid \
		-o $(POT) $(ADMIN_SRC) admin/*.h

$(BUILD)/common/%.o: common/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(call pc_cflags,$(PKGS_SERVER)) -c -o $@ $<

$(BUILD)/server/%.o: server/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Iserver $(call pc_cflags,$(PKGS_SERVER)) -c -o $@ $<

$(BUILD)/admin/%.o: admin/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Iadmin $(call pc_cflags,$(PKGS_ADMIN)) -c -o $@ $<

$(BUILD)/libcommon.a: $(COMMON_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(CERTREGD): $(SERVER_OBJ) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(call pc_libs,$(PKGS_SERVER) $(MALLOC)) -lm

# The same certregd linked with glibc's malloc, for tests/test_clock.py
# only: libfaketime cannot start under jemalloc, whose start-up reads the
# clock libfaketime wraps before libfaketime is ready.
$(BUILD)/certregd-libc-malloc: $(SERVER_OBJ) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(call pc_libs,$(PKGS_SERVER)) -lm

$(ADMIN): $(ADMIN_OBJ) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(call pc_libs,$(PKGS_ADMIN)) -lm

# A unit test of common/X links libcommon.a; of server/X or admin/X also that
# program's objects (without main), so one program's build never blocks
# another's tests.
.SECONDEXPANSION:
$(BUILD)/tests/%.o: tests/unit/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Iserver -Iadmin $(call pc_cflags,$(PKGS_SERVER) $(PKGS_TEST)) -c -o $@ $<

unit_objs = $(if $(wildcard server/$(1).c),$(SERVER_LIB_OBJ)) $(if $(wildcard admin/$(1).c),$(ADMIN_LIB_OBJ))
$(BUILD)/tests/test_%: $(BUILD)/tests/test_%.o $$(call unit_objs,$$*) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS_ALL) -o $@ $(filter %.o %.a,$^) $(call pc_libs,$(PKGS_SERVER) $(PKGS_TEST) \
		$(if $(wildcard admin/$*.c),libcurl)) -lm
# test_jws stops and moves the clock ES256 nonces are aged by: jws.c's
# clock_gettime calls go to the test's __wrap_clock_gettime.
$(BUILD)/tests/test_jws: LDFLAGS_ALL += -Wl,--wrap=clock_gettime

# Every test on the plain build: the Python scripts' static check (the
# bench's run.py runs only under make bench), unit, conformance and
# integration suites, each fuzz target briefly, the unit tests under
# valgrind and again on the ASan+UBSan build. The two slow suites, the
# Debian packages (deb-check) and the whole pytest suite again on the
# sanitizer build, are check-slow: CI (.ci/run) runs both targets, and
# make check stays well inside its half hour.
check: deps
	$(MAKE) all
	$(MAKE) bench-tools
	$(MAKE) lint
	$(MAKE) unit
	$(MAKE) conformance
	$(MAKE) integration
	$(MAKE) fuzz-short
	$(MAKE) valgrind-unit
	$(MAKE) sanitize-unit

check-slow: deps
	@if [ "$$(id -u)" -eq 0 ]; then $(MAKE) deb-check; else \
		echo "check-slow: deb-check skipped, it needs root (overlay mount): sudo make deb-check"; fi
	$(MAKE) sanitize-integration

unit: $(UNIT_BIN)
	@tests/run-unit.sh $(BUILD) $(UNIT_BIN)

integration: all $(BUILD)/certregd-libc-malloc
	CERTREG_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q tests $(PYTEST_ARGS)

# Only what building and the demo need (scripts/deps.sh run): no test tools.
run:
	@scripts/deps.sh run
	$(MAKE) all
	@BUILD=$(BUILD) scripts/demo.sh

demo-check:
	@scripts/deps.sh run
	$(MAKE) all
	@BUILD=$(BUILD) scripts/demo.sh --selftest

# Only the engine: the conformance run does not wait for the programs.
$(BUILD)/tests/conformance: tests/conformance.c $(BUILD)/libcommon.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(call pc_cflags,$(PKGS_ADMIN)) -o $@ $< $(BUILD)/libcommon.a \
		$(LDFLAGS_ALL) $(call pc_libs,$(PKGS_ADMIN)) -lm

# The disagreements left must be exactly docs/VERIFY.md's list (issue 33).
conformance: $(BUILD)/tests/conformance
	$(BUILD)/tests/conformance ../shared/conformance/limbo/limbo.json \
		../shared/conformance/limbo/client-auth-subset.tsv docs/VERIFY.md

# Benchmarks (docs/PERFORMANCE.md): the load generator, the reference
# verify loop and the stall probe, then tests/bench/run.py, which starts
# PostgreSQL with the generated dataset, certregd and nginx, and prints the
# comparison table.
BENCH_TOOLS = build/bench/loadgen build/bench/verify_ref build/bench/stallprobe build/bench/ipcrtt \
              build/bench/ocspcost
BENCH_ARGS ?=
build/bench/%: tests/bench/%.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) -O2 -g -o $@ $< \
		$(call pc_cflags,libevent libevent_openssl openssl) \
		$(call pc_libs,libevent libevent_openssl openssl)
# The reference loop also runs certreg's engine (--engine): it links the
# plain build's libcommon.a.
build/bench/verify_ref: tests/bench/verify_ref.c build/libcommon.a
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) -O2 -g -Icommon -o $@ $^ \
		$(call pc_cflags,$(PKGS_ADMIN)) $(call pc_libs,$(PKGS_ADMIN))
# The OCSP cost counter runs the daemon's own OCSP step (revocation.c, the
# shared cache) after the engine: those objects of the plain build too.
OCSPCOST_OBJ = build/server/revocation.o build/server/httpc.o build/server/ocspcache.o \
              build/server/promtext.o
build/bench/ocspcost: tests/bench/ocspcost.c $(OCSPCOST_OBJ) build/libcommon.a
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) -O2 -g -Icommon -Iserver -o $@ $^ \
		$(call pc_cflags,$(PKGS_SERVER)) $(call pc_libs,$(PKGS_SERVER)) -lpthread

bench-tools: $(BENCH_TOOLS)

bench: all bench-tools
	$(PYTHON) tests/bench/run.py $(BENCH_ARGS)
	$(PYTHON) tests/bench/replica.py $(filter --quick,$(BENCH_ARGS)) $(REPLICA_ARGS)
	$(MAKE) --no-print-directory bench-ocsp

# Issue 33's row: the instructions a cached OCSP answer adds to a cold
# /v1/verify (engine + OCSP step, callgrind; tests/bench/ocspcost.c), on
# OCSP_LEAVES distinct leaves of a fresh test PKI; build/bench/ocsp.json.
OCSP_LEAVES ?= 200
bench-ocsp: build/bench/ocspcost
	@rm -rf build/bench/ocsp && mkdir -p build/bench/ocsp
	@$(PYTHON) tests/pki/mkpki.py build/bench/ocsp/pki >/dev/null
	@build/bench/ocspcost --ca build/bench/ocsp/pki/ca/trust.pem \
		--intermediates build/bench/ocsp/pki/ca/intermediates.pem \
		--crl-dir build/bench/ocsp/pki/crl-all --issuer-cert build/bench/ocsp/pki/ca/int.pem \
		--issuer-key build/bench/ocsp/pki/ca/int.key --leaves $(OCSP_LEAVES) \
		--out-dir build/bench/ocsp --json build/bench/ocsp.json

# Issue 30's rows alone: decisions read on a streaming standby vs on the
# primary, and two daemons behind an nginx stream balancer vs one, each
# daemon held to a CPU quota in a cgroup of its own where the machine allows
# (tests/bench/replica.py, cpugroup.py; build/bench/replica.json).
REPLICA_ARGS ?=
bench-replica: all bench-tools
	$(PYTHON) tests/bench/replica.py $(REPLICA_ARGS)

# Flame graphs of one certregd worker (perf record -e cpu-clock with DWARF
# call chains, folded by tests/bench/flamegraph.py), during the first
# certregd round of rows 1 (full mTLS handshakes) and 3 (cold /v1/verify)
# of a small run: docs/flame-handshake.svg and docs/flame-cold-verify.svg,
# where the time goes in build/bench/flame-*.txt. perf is linux-perf
# (scripts/deps.sh build, `make deps`). A few minutes, most of it the setup.
FLAME_DIR ?= docs
flamegraph: all bench-tools
	$(PYTHON) tests/bench/run.py --keys 10000 --certs 500 --rounds 1 --duration 8 \
		--rows 1,3 --flame $(FLAME_DIR) $(BENCH_ARGS)

# libFuzzer targets: tests/fuzz/fuzz_NAME.c with seeds in tests/fuzz/corpus/NAME/,
# built with clang into build/fuzz/ (fuzz_verify over the engine's sources
# only), run for FUZZ_SECONDS each against a freshly generated test PKI.
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_FLAGS    = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_SRC      = common/verify.c common/trust.c common/certinfo.c common/outcome.c common/x509ctx.c
FUZZ_TARGETS  = $(patsubst tests/fuzz/%.c,build/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_SRC) common/verify.h common/trust.h common/certinfo.h
	@mkdir -p $(@D)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE $(FUZZ_FLAGS) -Icommon $(call pc_cflags,openssl) \
		-o $@ $< $(FUZZ_SRC) $(call pc_libs,openssl)

fuzz: $(FUZZ_TARGETS)
	rm -rf build/fuzz/pki
	$(PYTHON) tests/pki/mkpki.py build/fuzz/pki --now 1795435200 >/dev/null
	$(PYTHON) tests/fuzz/seed.py build/fuzz/pki build/fuzz
	for t in $(FUZZ_TARGETS); do \
		name=$${t##*/fuzz_}; mkdir -p build/fuzz/corpus-$$name || exit 1; \
		cp build/fuzz/pki/leaf/*.pem build/fuzz/pki/leaf/*.der build/fuzz/corpus-$$name/; \
		CERTREG_FUZZ_PKI=build/fuzz/pki $$t -max_total_time=$(FUZZ_SECONDS) \
			-max_len=66000 -artifact_prefix=build/fuzz/ \
			build/fuzz/corpus-$$name tests/fuzz/corpus/$$name || exit 1; \
	done

# fuzz_pasted is certreg-admin's reading of pasted identifiers alone.
build/fuzz/fuzz_pasted: tests/fuzz/fuzz_pasted.c admin/pasted.c admin/pasted.h
	@mkdir -p $(@D)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE $(FUZZ_FLAGS) -Iadmin $(call pc_cflags,openssl) \
		-o $@ $< admin/pasted.c $(call pc_libs,openssl)

# fuzz_lang is the Accept-Language negotiation alone (common/outcome.c, in
# FUZZ_SRC): the rule above.

# Every other target links the daemon's modules (built once, with
# coverage, into build/fuzz/obj/) and tests/fuzz/store.c.
FUZZ_APP_TARGETS = $(filter-out build/fuzz/fuzz_verify build/fuzz/fuzz_pasted build/fuzz/fuzz_lang,\
                   $(FUZZ_TARGETS))
FUZZ_APP_OBJ     = $(patsubst %.c,build/fuzz/obj/%.o,$(COMMON_SRC) \
                   $(filter-out server/main.c,$(SERVER_SRC)) tests/fuzz/store.c)

build/fuzz/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -DCERTREG_VERSION='"$(VERSION)"' \
		-DCERTREG_DATADIR='"$(DATADIR)"' -g -O1 -fno-sanitize-recover=all \
		-fsanitize=fuzzer-no-link,address,undefined -Icommon -Iserver \
		$(call pc_cflags,$(PKGS_SERVER)) -MMD -MP -c -o $@ $<

$(FUZZ_APP_TARGETS): build/fuzz/%: tests/fuzz/%.c tests/fuzz/store.h $(FUZZ_APP_OBJ)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE $(FUZZ_FLAGS) -Icommon -Iserver -Itests/fuzz \
		$(call pc_cflags,$(PKGS_SERVER)) -o $@ $< $(FUZZ_APP_OBJ) \
		$(call pc_libs,$(PKGS_SERVER)) -lm

-include $(shell find build/fuzz/obj -name '*.d' 2>/dev/null)

.PHONY: fuzz-short sanitize-check sanitize-build sanitize-unit sanitize-integration valgrind-unit
# CI's bounded run of every target.
fuzz-short:
	$(MAKE) fuzz FUZZ_SECONDS=10

# The unit tests and the whole pytest suite against the ASan+UBSan build in
# build/san. Every program halts on its first report, and the daemon
# fixture fails a test whose daemon log shows one.
SAN_ENV = ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1 \
          UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
          LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp):print_suppressions=0
sanitize-check: sanitize-unit sanitize-integration

sanitize-build:
	$(MAKE) BUILD=build/san SANITIZER=address,undefined all build/san/certregd-libc-malloc

sanitize-unit: sanitize-build
	$(SAN_ENV) $(MAKE) BUILD=build/san SANITIZER=address,undefined unit

sanitize-integration: sanitize-build
	$(SAN_ENV) CERTREG_BUILD=$(abspath build/san) $(PYTHON) -m pytest -q tests $(PYTEST_ARGS)

# Each unit test program under valgrind (the plain build: valgrind and the
# sanitizers do not mix).
valgrind-unit: $(UNIT_BIN)
	@test -z "$(SANITIZER)" || { echo "valgrind-unit: build without SANITIZER"; exit 2; }
	@for t in $(UNIT_BIN); do \
		echo "valgrind $$t"; \
		CERTREG_BUILD=$(BUILD) CERTREG_UNIT_QUICK=1 valgrind -q --error-exitcode=1 --leak-check=full \
			--errors-for-leak-kinds=definite,indirect $$t >/dev/null || exit 1; \
	done

# Long runs, figures printed: each fuzz target for SOAK_FUZZ_SECONDS, then
# the fault, hostile-client and long-life suites with more load and more
# rounds, and the upgrade from an older commit's own programs (built here:
# an old tree may stop building with a newer toolchain, which is no failure
# of this one's).
SOAK_FUZZ_SECONDS ?= 300
soak: all
	$(MAKE) fuzz FUZZ_SECONDS=$(SOAK_FUZZ_SECONDS)
	CERTREG_SOAK=1 CERTREG_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q -s \
		tests/test_faults.py tests/test_hostile.py tests/test_long_life.py \
		tests/test_upgrade.py $(PYTEST_ARGS)

# Two halves, one per Debian package: the daemon's side (certregd, the CRL
# refresh script, the units, the sysusers entry, certregd(8)) and the
# counter staff's (certreg-admin, the SQL it migrates with, its man page and
# bash completion when deploy/ has one).
install: install-daemon install-admin

install-daemon: $(CERTREGD) $(UNITS_GEN)
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) \
		$(DESTDIR)$(MANDIR)/man8
	install -m 755 $(CERTREGD) deploy/certreg-crl-refresh $(DESTDIR)$(SBINDIR)/
	install -m 644 $(UNITS_GEN) deploy/certreg-crl-refresh.timer $(DESTDIR)$(UNITDIR)/
	install -m 644 deploy/certreg.sysusers $(DESTDIR)$(SYSUSERSDIR)/certreg.conf
	install -m 644 docs/man/*.8 $(DESTDIR)$(MANDIR)/man8/

install-admin: $(ADMIN) $(ADMIN_MO)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/sql $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(LOCALEDIR)/zh_CN/LC_MESSAGES
	install -m 755 $(ADMIN) $(DESTDIR)$(BINDIR)/certreg-admin
	install -m 644 $(ADMIN_MO) $(DESTDIR)$(LOCALEDIR)/zh_CN/LC_MESSAGES/certreg-admin.mo
	install -m 644 sql/*.sql $(DESTDIR)$(DATADIR)/sql/
	install -d $(DESTDIR)$(DATADIR)/sql/functions
	install -m 644 sql/functions/*.sql $(DESTDIR)$(DATADIR)/sql/functions/
	install -m 644 docs/man/*.1 $(DESTDIR)$(MANDIR)/man1/
	if [ -f deploy/bash-completion/certreg-admin ]; then \
		install -d $(DESTDIR)$(BASHCOMPDIR) && \
		install -m 644 deploy/bash-completion/certreg-admin $(DESTDIR)$(BASHCOMPDIR)/; fi

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/certregd $(DESTDIR)$(SBINDIR)/certreg-crl-refresh \
		$(DESTDIR)$(BINDIR)/certreg-admin $(DESTDIR)$(SYSUSERSDIR)/certreg.conf \
		$(DESTDIR)$(UNITDIR)/certregd.service $(DESTDIR)$(UNITDIR)/certreg-crl-refresh.service \
		$(DESTDIR)$(UNITDIR)/certreg-crl-refresh.timer $(DESTDIR)$(BASHCOMPDIR)/certreg-admin \
		$(DESTDIR)$(LOCALEDIR)/zh_CN/LC_MESSAGES/certreg-admin.mo \
		$(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(wildcard docs/man/*.8))) \
		$(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(wildcard docs/man/*.1)))
	rm -rf $(DESTDIR)$(DATADIR)

# The Debian packages (debian/), built unsigned from this tree. dpkg-buildpackage
# writes its results into the parent directory, the only place it writes outside
# the tree; they are moved into build/deb/ at once. debian/rules cleans its own
# leftovers, so the tree is as it was (git status stays clean). The version is
# read by the recipe, not when make reads this file: on a fresh machine
# dpkg-parsechangelog only arrives with deps.sh's dpkg-dev, in the recipe's
# first line (read earlier, it was empty and the build's results were left in
# the parent directory).
deb:
	@scripts/deps.sh deb
	rm -rf build/deb && mkdir -p build/deb
	changes=certreg_$$(dpkg-parsechangelog -S Version)_$$(dpkg --print-architecture).changes; \
		dpkg-buildpackage -us -uc -b --post-clean; rc=$$?; \
		if [ -e ../$$changes ]; then \
			for f in $$(awk '/^Files:/ { on = 1; next } /^[^ ]/ { on = 0 } on { print $$5 }' \
				../$$changes); do mv -f ../$$f build/deb/; done; \
			mv -f ../$$changes build/deb/; \
		fi; \
		[ $$rc -eq 0 ] || exit $$rc; \
		lintian --fail-on error,warning build/deb/$$changes
	@ls -l build/deb

# Installs the packages into a throwaway copy-on-write view of this system
# (overlayfs over /, in a private mount namespace), runs the checks and
# purges them (tests/deb-check.sh).
deb-check: deb
	tests/deb-check.sh build/deb

format:
	clang-format -i common/*.[ch] server/*.[ch] admin/*.[ch] tests/unit/*.[ch] tests/fuzz/*.c tests/bench/*.c

# Undefined names and unused imports in the Python tests and scripts.
lint: format-check
	$(PYTHON) -m pyflakes tests/*.py tests/fixtures/*.py tests/bench/*.py tests/pki/*.py tests/fuzz/*.py

format-check:
	clang-format --dry-run --Werror common/*.[ch] server/*.[ch] admin/*.[ch] tests/unit/*.[ch] tests/fuzz/*.c tests/bench/*.c

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
