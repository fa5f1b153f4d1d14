# The two commands of the README, and the pieces they are made of. Each
# target installs what it needs first (tools/install-deps is idempotent and
# quick when everything is there), so both work on a fresh Debian 12 machine.
#
#   make demo    the embedded pipeline with a generator, no Kafka needed
#   make check   every test: unit, script, end to end against a real broker,
#                then a short run of every fuzz target
#
# Build trees: build/ (release, for the demo and benchmarks), build-check/
# (ASan + UBSan, warnings as errors, for the tests) and build-fuzz/ (clang,
# libFuzzer + ASan + UBSan, for the fuzz targets).

BUILD      ?= build
CHECK      ?= build-check
FUZZ       ?= build-fuzz
FUZZ_SECONDS ?= 12
JOBS       ?= 2
CMAKE_GEN  := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")

.PHONY: all deps deps-test build build-check build-fuzz fuzz demo demo-kafka check bench clean bench-push bench-eos

all: build

deps:
	tools/install-deps build web

deps-test:
	tools/install-deps test kafka browser

build: deps
	cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF
	cmake --build $(BUILD) -j $(JOBS)

build-check: deps-test
	cmake -S . -B $(CHECK) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DNTA_WERROR=ON \
		-DNTA_SANITIZE=ON -DBUILD_TESTING=ON
	cmake --build $(CHECK) -j $(JOBS)

# libFuzzer needs clang; its own tree keeps the gcc builds untouched.
build-fuzz: deps-test
	cmake -S . -B $(FUZZ) $(CMAKE_GEN) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
		-DNTA_WERROR=ON -DNTA_SANITIZE=ON -DNTA_FUZZ=ON -DBUILD_TESTING=OFF
	cmake --build $(FUZZ) -j $(JOBS)

# FUZZ_SECONDS per target (5 targets); tests/README.md has the longer run.
fuzz: build-fuzz
	tests/fuzz/run.sh $(FUZZ) $(FUZZ_SECONDS)

demo: build
	$(BUILD)/nta-run scripts/demo.lua

# The same demo as separate processes through the local broker.
demo-kafka: build
	tools/install-deps kafka
	scripts/demo-kafka.sh $(BUILD)/nta-run

# ctest starts the broker as a fixture before the tests that need it and
# stops it after them, also when a test fails.
check: build-check
	cd $(CHECK) && ctest --output-on-failure -j 1
	$(MAKE) fuzz

bench: build
	tools/install-deps test kafka
	bench/run.sh $(BUILD)/nta-run

# The dashboard's push latency and the cost of 50 push clients (no Kafka).
bench-push: build
	bench/push.sh $(BUILD)/nta-run

# Exactly-once against at-least-once, and restart time with 1M open keys.
bench-eos: build
	tools/install-deps kafka
	bench/eos.py $(BUILD)/nta-run

clean:
	rm -rf $(BUILD) $(CHECK) $(FUZZ)
