# pgvigil build.  `make` builds bin/pgvigild and bin/pgvigil; `make test` installs what is
# missing, builds, and runs every unit and integration test; `make demo` runs the demo.
#
# Every .c under daemon/ except the two programs' main.c goes into build/libpv.a; each
# tests/unit/test_*.c becomes its own cmocka binary linked against it.

CC      ?= cc
PREFIX  ?= /usr/local
BUILD   ?= build
SAN     ?=
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wformat=2 \
           -Wno-format-nonliteral -fno-omit-frame-pointer \
           -I/usr/include/postgresql -Idaemon $(SAN)
LDFLAGS += $(SAN)
LIBS     = -lpq -lconfig -ljansson -lssh2 -lmicrohttpd -lpthread

LIB_SRC   := $(filter-out daemon/pgvigild/main.c daemon/pgvigil/main.c,$(wildcard daemon/*/*.c))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(wildcard tests/bench/*.c)
BENCH_BIN := $(BENCH_SRC:tests/bench/%.c=$(BUILD)/bench/%)
TOOL_SRC  := $(wildcard tests/tools/*.c)
TOOL_BIN  := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)

.PHONY: all test unit integration demo bench deps clean install lint asan valgrind

all: bin/pgvigild bin/pgvigil $(BENCH_BIN) $(TOOL_BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libpv.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

bin/pgvigild: $(BUILD)/daemon/pgvigild/main.o $(BUILD)/libpv.a
	@mkdir -p bin
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

bin/pgvigil: $(BUILD)/daemon/pgvigil/main.o $(BUILD)/libpv.a
	@mkdir -p bin
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libpv.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -Itests/unit -o $@ $< $(BUILD)/libpv.a $(LDFLAGS) $(LIBS) -lcmocka

$(BUILD)/bench/%: tests/bench/%.c $(BUILD)/libpv.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -o $@ $< $(BUILD)/libpv.a $(LDFLAGS) $(LIBS)

# Small programs the integration tests drive (e.g. the ssh module against a real sshd).
$(BUILD)/tools/%: tests/tools/%.c $(BUILD)/libpv.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -o $@ $< $(BUILD)/libpv.a $(LDFLAGS) $(LIBS)

# Installs the Debian packages the build and the tests need (idempotent; root only).
deps:
	@bash scripts/deps.sh

unit: $(UNIT_BIN)

ASAN_SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined
VALGRIND = valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite

asan-build:
	@$(MAKE) --no-print-directory BUILD=build-asan SAN="$(ASAN_SAN)" build-asan/libpv.a $(UNIT_SRC:tests/unit/%.c=build-asan/tests/%)

# Everything: unit tests (also under ASan/UBSan, built in their own tree), the integration
# tests, and the daemon under valgrind through one failover; one "N passed, N failed" line.
test: deps
	@$(MAKE) --no-print-directory all unit asan-build
	@PGVIGIL_VALGRIND_RUN="$(VALGRIND)" bash tests/run.sh

integration: all
	@bash tests/run.sh integration

asan: asan-build
	@bash tests/run.sh unit

valgrind: all
	@PGVIGILD_WRAPPER="$(VALGRIND)" bash tests/run.sh tests/integration/t_failover_kill.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/demo.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@bash tests/bench/scenarios.sh
	@bash tests/bench/cost.sh

# The layering rule of docs/architecture.md: core/ and common/ never include libpq, libssh2,
# libconfig, or anything of io/.
lint:
	@! grep -nE '#include *[<"](libpq-fe|libssh2|libconfig|io/|act/|probe/)' daemon/core/*.[ch] daemon/common/*.[ch] || \
	  { echo "lint: core/ or common/ includes an I/O layer"; exit 1; }
	@echo "lint: layering ok"

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man7 $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 755 bin/pgvigil $(DESTDIR)$(PREFIX)/bin/pgvigil
	install -m 755 bin/pgvigild $(DESTDIR)$(PREFIX)/sbin/pgvigild
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system
	install -m 644 conf/pgvigild.service $(DESTDIR)$(PREFIX)/lib/systemd/system/pgvigild.service
	for f in man/*.[1578]; do s=$${f##*.}; install -m 644 $$f $(DESTDIR)$(PREFIX)/share/man/man$$s/; done

clean:
	rm -rf build build-asan bin

-include $(LIB_OBJ:.o=.d) $(BUILD)/daemon/pgvigild/main.d $(BUILD)/daemon/pgvigil/main.d \
  $(UNIT_BIN:=.d) $(BENCH_BIN:=.d) $(TOOL_BIN:=.d)
