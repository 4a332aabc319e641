# zinc: `make run` serves on 127.0.0.1:8080 with storage in ./data; `make test` runs every
# test (unit + end-to-end, normal and ASan+UBSan builds). Both install missing packages.
JOBS ?= $(shell nproc)
# ctest entries at once in `make test`: two per core, as most e2e entries wait on timers and
# sockets more than they compute (test/CMakeLists.txt starts the longest first).
TEST_JOBS ?= $(shell echo $$(( $(JOBS) * 2 )))
BUILD_DIR ?= build
ASAN_DIR ?= build-asan
FUZZ_DIR ?= build-fuzz
# make fuzz: seconds each libFuzzer target runs (make fuzz FUZZ_SECONDS=600 for a longer look)
FUZZ_SECONDS ?= 60
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo
# -Werror only where the compiler is ours: `make test` (and so CI) sets it ON.
WERROR ?= OFF

.PHONY: all deps deps-test deps-bench build build-asan build-fuzz fuzz run test test-unit test-asan bench bench-s3 soak clean

all: build

deps:
	@.ci/deps.sh build

deps-test:
	@.ci/deps.sh test

deps-bench:
	@.ci/deps.sh bench

build: deps
	@cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS) -DZN_WERROR=$(WERROR) >/dev/null
	@cmake --build $(BUILD_DIR) -j$(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=Debug -DZN_SANITIZE=ON -DZN_WERROR=$(WERROR) >/dev/null
	@cmake --build $(ASAN_DIR) -j$(JOBS)

# libFuzzer targets (test/fuzz/fuzz_*.c), clang with ASan+UBSan, in their own build tree.
build-fuzz: deps-test
	@cmake -S . -B $(FUZZ_DIR) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DZN_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_DIR) -j$(JOBS) --target fuzzers

# Each target runs FUZZ_SECONDS from its seed corpus (new inputs go to $(FUZZ_DIR)/corpus/<name>,
# the seeds in the repo stay as they are); a crash stops `make fuzz` with the input saved
# as $(FUZZ_DIR)/crash-*. Keep a real crasher in test/fuzz/corpus/<name>/ as a regression input.
fuzz: build-fuzz
	@set -e; for src in test/fuzz/fuzz_*.c; do \
	  name=$$(basename $$src .c | sed 's/^fuzz_//'); log=$(FUZZ_DIR)/fuzz_$$name.log; \
	  mkdir -p $(FUZZ_DIR)/corpus/$$name; dict=; \
	  if [ -f test/fuzz/fuzz_$$name.dict ]; then dict=-dict=test/fuzz/fuzz_$$name.dict; fi; \
	  echo "=== fuzz_$$name ($(FUZZ_SECONDS) s, log in $$log) ==="; \
	  $(FUZZ_DIR)/test/fuzz/fuzz_$$name -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$dict \
	    -artifact_prefix=$(FUZZ_DIR)/ $(FUZZ_DIR)/corpus/$$name test/fuzz/corpus/$$name >$$log 2>&1 || \
	    { tail -n 60 $$log; echo "fuzz_$$name failed"; exit 1; }; \
	  grep -E '^Done [0-9]+ runs' $$log; \
	done

run: build
	@mkdir -p data
	exec $(BUILD_DIR)/server/zinc serve $(CONFIG)

# The sanitizer build runs the whole suite first (but the Docker image test: the image
# compiles its own release zinc, so running it twice would only double its cost); the
# release build runs last so its summary line ends the output. Both always run.
test: deps-test
	@$(MAKE) --no-print-directory build build-asan WERROR=ON
	@echo "=== ASan+UBSan build ==="
	@cd $(ASAN_DIR) && ctest --output-on-failure -j$(TEST_JOBS) -E '^e2e_test_docker$$'; echo $$? > $(CURDIR)/$(ASAN_DIR)/.ctest-status
	@echo "=== release build ==="
	@cd $(BUILD_DIR) && ctest --output-on-failure -j$(TEST_JOBS); rc=$$?; \
	  asan=$$(cat $(CURDIR)/$(ASAN_DIR)/.ctest-status); \
	  if [ "$$asan" != 0 ]; then echo "ASan+UBSan suite failed (see above)"; exit 1; fi; exit $$rc

test-unit: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -R '^unit_'

bench: deps-bench build
	@bench/run.sh

# zinc on S3 vs Distribution's s3 driver on one throw-away Ceph RGW (bench/s3.py), recorded
# in bench/RESULTS.md. Needs the Ceph packages (make deps-test) and docker-registry.
bench-s3: deps-bench deps-test build
	@ZINC_BIN=$(CURDIR)/$(BUILD_DIR)/server/zinc /usr/bin/python3 bench/s3.py

# A bounded soak (bench/soak.py): mixed push/pull/delete/GC/profile load on the release
# build for SOAK_SECONDS, then no fd/thread/anonymous-RSS growth and every live object
# pullable by digest. Not part of `make test`.
SOAK_SECONDS ?= 1200
soak: deps-test build
	@SOAK_SECONDS=$(SOAK_SECONDS) ZINC_BIN=$(CURDIR)/$(BUILD_DIR)/server/zinc /usr/bin/python3 bench/soak.py

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(FUZZ_DIR)
