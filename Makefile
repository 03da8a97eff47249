# wgpeer - PGXS build.  `make && sudo make install`, then `make installcheck`
# as an ordinary user (pg_regress starts its own temporary instance).

EXTENSION = wgpeer
MODULE_big = wgpeer

# The layers of src/, each a folder; dependencies point one way (see
# "make check-layers"): core <- device <- worker, core <- common <- sql,
# common <- worker, common <- webhook.  The pure C layers (core, device)
# use no postgres.h.
CORE_OBJS = $(patsubst %.c,%.o,$(wildcard src/core/*.c))
DEVICE_OBJS = $(patsubst %.c,%.o,$(wildcard src/device/*.c))
COMMON_OBJS = $(patsubst %.c,%.o,$(wildcard src/common/*.c))
SQL_OBJS = $(patsubst %.c,%.o,$(wildcard src/sql/*.c))
WORKER_OBJS = $(patsubst %.c,%.o,$(wildcard src/worker/*.c))
WEBHOOK_OBJS = $(patsubst %.c,%.o,$(wildcard src/webhook/*.c))
OBJS = src/module.o $(CORE_OBJS) $(DEVICE_OBJS) $(COMMON_OBJS) $(SQL_OBJS) \
	$(WORKER_OBJS) $(WEBHOOK_OBJS)

DEPS_PKGS = libsodium libmnl libqrencode libpng zlib libcurl
# The version lives in one place, the control file's default_version.
EXTVERSION := $(shell sed -n "s/^default_version = '\\(.*\\)'/\\1/p" $(EXTENSION).control)

# The schema: the install script of the current version is built from its
# source, one file per area in sql/schema/ (concatenated in name order; see
# CONTRIBUTING.md), so CREATE EXTENSION runs one script.  The released
# install script (0.1) and the upgrade scripts sql/wgpeer--A--B.sql are
# installed as they are; ALTER EXTENSION UPDATE runs those, and
# test/upgrade.sh proves both ways give the same schema.
SCHEMA_SRCS = $(sort $(wildcard sql/schema/*.sql))
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA = $(filter-out $(DATA_built),$(wildcard sql/$(EXTENSION)--*.sql))
PG_CPPFLAGS = -I$(srcdir)/src -DWGPEER_VERSION=\"$(EXTVERSION)\" $(shell pkg-config --cflags $(DEPS_PKGS)) \
	-Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers $(WERROR)
SHLIB_LINK = $(shell pkg-config --libs $(DEPS_PKGS))

REGRESS = keys interface pool peer config qr privileges lifecycle import events awg \
	quota config_link routes node_rows restore rates locations subscription \
	user_quota metrics webhook event_write pool_plans
ISOLATION = allocate_concurrent allocate_rollback allocate_repeatable_read \
	allocate_two_interfaces remove_interface device_limit suspend_revoke \
	events_order config_link_race routes_overlap placement_concurrent \
	rate_default_race
TEMP_INSTANCE = --temp-instance=./tmp_check --temp-config=./test/wgpeer.conf
REGRESS_OPTS = $(TEMP_INSTANCE)
ISOLATION_OPTS = $(TEMP_INSTANCE)

EXTRA_CLEAN = tmp_check output_iso $(UNIT_BINS) test/vm/wgnl_driver \
	$(addsuffix .d,$(OBJS) $(OBJS:.o=.bc))

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Each object (and bitcode file) records the headers it included in
# <object>.d, so that a changed header rebuilds what uses it.  (PGXS's own
# autodepend names these files by the source's base name, which the
# layers repeat: src/core/awg.c, src/sql/awg.c.)
override CFLAGS += -MMD -MP -MF $@.d
override BITCODE_CFLAGS += -MMD -MP -MF $@.d
-include $(wildcard $(addsuffix .d,$(OBJS) $(OBJS:.o=.bc)))

# The install script: a header, then each area file under its name.
$(DATA_built): $(SCHEMA_SRCS) $(EXTENSION).control
	{ printf '%s\n' \
		'-- wgpeer $(EXTVERSION): the install script, built by make from sql/schema/*.sql.' \
		'-- Do not edit: change the area file (and the upgrade script) instead.' \
		'\echo Use "CREATE EXTENSION $(EXTENSION)" to load this file. \quit'; \
	  for f in $(SCHEMA_SRCS); do printf '\n-- %s\n\n' "$$f"; cat "$$f"; done; } >$@.tmp
	mv $@.tmp $@

# The library checks the schema's version against the control file's.
src/common/xact.o: $(EXTENSION).control

# The layering rule of src/ (see test/check_layers.pl), checked on the
# sources' includes and the built objects' symbols.
.PHONY: check-layers
check-layers: all
	perl test/check_layers.pl src $(shell $(PG_CONFIG) --bindir)/postgres

# Unit tests of the pure C layers, built and run without PostgreSQL: one
# binary per module, test/unit/test_<module>.c, linked with the core and
# device sources.
PURE_SRCS = $(wildcard src/core/*.c src/device/*.c)
PURE_HDRS = $(wildcard src/core/*.h src/device/*.h)
TEST_HDRS = $(wildcard test/*.h)
UNIT_TESTS = test_keys test_validate test_config test_awg test_capability test_diff test_qr test_netlink test_atomic_file test_uapi test_isolate test_import test_token test_shaping test_uapi_awg test_amnezia_uri test_signature
UNIT_CFLAGS = -O1 -g -Wall -Wextra $(WERROR) -Isrc -Itest $(shell pkg-config --cflags $(DEPS_PKGS))
UNIT_BINS = $(addprefix test/unit/,$(UNIT_TESTS))

test/unit/test_%: test/unit/test_%.c test/unit/unit.h $(TEST_HDRS) $(PURE_SRCS) $(PURE_HDRS)
	$(CC) $(UNIT_CFLAGS) -o $@ $< $(PURE_SRCS) \
		$(shell pkg-config --libs $(DEPS_PKGS))

.PHONY: unittest
unittest: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do ./$$t; done

# The netlink backend's driver for the real-kernel test test/vm/netlink_smoke.sh.
test/vm/wgnl_driver: test/vm/wgnl_driver.c $(TEST_HDRS) $(PURE_SRCS) $(PURE_HDRS)
	$(CC) $(UNIT_CFLAGS) -O2 -o $@ test/vm/wgnl_driver.c $(PURE_SRCS) \
		$(shell pkg-config --libs $(DEPS_PKGS))

# libFuzzer targets (clang with its sanitizer runtime), one per parser or
# validator that takes outside bytes: test/fuzz/fuzz_<name>.c, seeded from
# test/fuzz/corpus_<name>/, linked with the pure C layers built once for
# fuzzing in test/fuzz/obj/.  Every sanitizer report is fatal, so libFuzzer
# keeps the input that caused it.  test/fuzz/run.sh builds them and gives
# each a short smoke run; bench/fuzz.sh runs each for 10 million inputs.
FUZZ_NAMES = qr netlink uapi validate config diff
FUZZ_TARGETS = $(addprefix test/fuzz/fuzz_,$(FUZZ_NAMES))
FUZZ_SANITIZE = -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS = -g -O1 $(FUZZ_SANITIZE) -Wall -Wextra $(WERROR) -Isrc -Itest \
	$(shell pkg-config --cflags $(DEPS_PKGS))
FUZZ_OBJS = $(patsubst src/%.c,test/fuzz/obj/%.o,$(PURE_SRCS))
EXTRA_CLEAN += $(FUZZ_TARGETS) test/fuzz/obj

test/fuzz/obj/%.o: src/%.c $(PURE_HDRS)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

test/fuzz/fuzz_%: test/fuzz/fuzz_%.c test/fuzz/fuzz.h $(TEST_HDRS) $(FUZZ_OBJS)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) \
		$(shell pkg-config --libs $(DEPS_PKGS))

.PHONY: fuzz
fuzz: $(FUZZ_TARGETS)

# AddressSanitizer and UndefinedBehaviorSanitizer, every report fatal:
# "make SANITIZE=1" builds the extension and the unit tests with them (in
# a clean tree: objects built without are not rebuilt).  The library then
# needs the ASan runtime loaded first in the server; test/sanitize.sh
# builds, installs and tests it so, and puts the normal build back.
SANITIZE_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
ifdef SANITIZE
override CFLAGS += $(SANITIZE_FLAGS)
UNIT_CFLAGS += $(SANITIZE_FLAGS)
SHLIB_LINK += $(SANITIZE_FLAGS)
endif
