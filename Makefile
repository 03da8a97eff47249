# wgpeer - PGXS build.  `make && sudo make install`, then `make installcheck`
# as an ordinary user (pg_regress starts its own temporary instance).

EXTENSION = wgpeer
MODULE_big = wgpeer
DATA = sql/wgpeer--0.1.sql

# Pure C cores (no postgres.h) and the SQL-callable wrappers around them.
CORE_OBJS = src/keys.o src/validate.o src/config.o src/qr.o src/capability.o src/netlink.o src/diff.o src/atomic_file.o src/uapi.o
OBJS = src/wgpeer.o $(CORE_OBJS) \
	src/keys_sql.o src/interface.o src/pool.o src/peer.o src/worker.o src/apply.o src/reconcile.o src/expiry.o src/show.o src/qr_sql.o src/export.o

DEPS_PKGS = libsodium libmnl libqrencode libpng
PG_CPPFLAGS = $(shell pkg-config --cflags $(DEPS_PKGS)) \
	-Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers
SHLIB_LINK = $(shell pkg-config --libs $(DEPS_PKGS))

REGRESS = keys interface pool peer config qr privileges
ISOLATION = allocate_concurrent allocate_rollback allocate_repeatable_read \
	allocate_two_interfaces remove_interface
TEMP_INSTANCE = --temp-instance=./tmp_check --temp-config=./test/wgpeer.conf
REGRESS_OPTS = $(TEMP_INSTANCE)
ISOLATION_OPTS = $(TEMP_INSTANCE)

EXTRA_CLEAN = tmp_check output_iso $(UNIT_BINS) test/vm/wgnl_driver

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Unit tests of the pure cores, built and run without PostgreSQL: one
# binary per core, test/unit/test_<core>.c, linked with the core objects.
UNIT_TESTS = test_keys test_validate test_config test_capability test_diff test_qr test_netlink test_atomic_file test_uapi
UNIT_CFLAGS = -O1 -g -Wall -Wextra -Werror -Isrc $(shell pkg-config --cflags $(DEPS_PKGS))
UNIT_BINS = $(addprefix test/unit/,$(UNIT_TESTS))

test/unit/test_%: test/unit/test_%.c test/unit/unit.h $(CORE_OBJS:.o=.c) src/*.h
	$(CC) $(UNIT_CFLAGS) -o $@ $< $(CORE_OBJS:.o=.c) \
		$(shell pkg-config --libs $(DEPS_PKGS))

.PHONY: unittest
unittest: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do ./$$t; done

# The netlink backend's driver for the real-kernel test test/vm/netlink_smoke.sh.
test/vm/wgnl_driver: test/vm/wgnl_driver.c src/netlink.c src/netlink.h src/keys.c src/keys.h
	$(CC) $(UNIT_CFLAGS) -O2 -o $@ test/vm/wgnl_driver.c src/netlink.c src/keys.c \
		$(shell pkg-config --libs $(DEPS_PKGS))

# libFuzzer targets (clang with its sanitizer runtime); test/fuzz/run.sh
# builds them and gives each a short smoke run.
FUZZ_TARGETS = test/fuzz/fuzz_qr
FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
	$(shell pkg-config --cflags $(DEPS_PKGS))
EXTRA_CLEAN += $(FUZZ_TARGETS)

test/fuzz/fuzz_qr: test/fuzz/fuzz_qr.c src/qr.c src/qr.h
	clang $(FUZZ_CFLAGS) -o $@ test/fuzz/fuzz_qr.c src/qr.c \
		$(shell pkg-config --libs $(DEPS_PKGS))

.PHONY: fuzz
fuzz: $(FUZZ_TARGETS)
