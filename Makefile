# zinc: `make run` serves on 127.0.0.1:8080 with storage in ./data; `make test` runs every
# test (unit + end-to-end, normal and ASan+UBSan builds). Both install missing packages.
JOBS ?= $(shell nproc)
BUILD_DIR ?= build
ASAN_DIR ?= build-asan
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo
# -Werror only where the compiler is ours: `make test` (and so CI) sets it ON.
WERROR ?= OFF

.PHONY: all deps deps-test deps-bench build build-asan run test test-unit test-asan bench clean

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

run: build
	@mkdir -p data
	exec $(BUILD_DIR)/server/zinc serve $(CONFIG)

# The sanitizer build runs the whole suite first (but the Docker image test: the image
# compiles its own release zinc, so running it twice would only double its cost); the
# release build runs last so its summary line ends the output. Both always run.
test: deps-test
	@$(MAKE) --no-print-directory build build-asan WERROR=ON
	@echo "=== ASan+UBSan build ==="
	@cd $(ASAN_DIR) && ctest --output-on-failure -j$(JOBS) -E '^e2e_test_docker$$'; echo $$? > $(CURDIR)/$(ASAN_DIR)/.ctest-status
	@echo "=== release build ==="
	@cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS); rc=$$?; \
	  asan=$$(cat $(CURDIR)/$(ASAN_DIR)/.ctest-status); \
	  if [ "$$asan" != 0 ]; then echo "ASan+UBSan suite failed (see above)"; exit 1; fi; exit $$rc

test-unit: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -R '^unit_'

bench: deps-bench build
	@bench/run.sh

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR)
