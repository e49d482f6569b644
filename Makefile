# video-recorder: build, test, cross-compile for the Raspberry Pi, benchmark.
#
#   make run [RELEASE=1] [ARGS="--source test --port 8080"]
#   make build | release | test | pi | test-pi [PI_TESTS="recording sigterm"] [PI_UNIT=0] | bench | clean
#
# `make help` lists the targets. Pi deployment (deploy, image, flash) comes
# with its own issue; its targets go in the marked section below.

CARGO    ?= cargo
ARGS     ?=
RELEASE  ?=
BIN      := video-recorder
LOAD_MANIFEST := bench/load/Cargo.toml

PI_TARGET := aarch64-unknown-linux-gnu
PI_BIN    := target/$(PI_TARGET)/release/$(BIN)
PI_CC     ?= aarch64-linux-gnu-gcc
PI_CXX    ?= aarch64-linux-gnu-g++
PI_STRIP  ?= aarch64-linux-gnu-strip
QEMU      ?= qemu-aarch64
PI_SYSROOT ?= /usr/aarch64-linux-gnu
# Integration tests run against the aarch64 binary under qemu-user: libtest
# name filters (`PI_TESTS="recording sigterm"`); empty runs them all.
PI_TESTS  ?=
# Also cross-compile and run the unit tests under qemu (slow: a second
# debug build of every dependency for aarch64). 0 to skip.
PI_UNIT   ?= 1

ifeq ($(RELEASE),1)
PROFILE_FLAG := --release
else
PROFILE_FLAG :=
endif

.PHONY: all help run build release test pi test-pi bench clean check-pi-toolchain check-qemu

all: build

help:
	@echo "make run [RELEASE=1] [ARGS=...]  build, then serve on http://localhost:8000"
	@echo "make build                       debug build"
	@echo "make release                     optimised build for this machine"
	@echo "make test                        fmt check, clippy -D warnings, all tests"
	@echo "make pi                          stripped release binary for 64-bit Raspberry Pi OS"
	@echo "make test-pi [PI_TESTS=...]      integration tests against the aarch64 binary under qemu"
	@echo "make bench                       benchmarks (bench/README.md)"
	@echo "make clean                       remove build output"

run:
	$(CARGO) run $(PROFILE_FLAG) --bin $(BIN) -- $(ARGS)

build:
	$(CARGO) build

release:
	$(CARGO) build --release

# The README's test command, then the benchmark's load client checks itself.
test:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test
	$(CARGO) fmt --check --manifest-path $(LOAD_MANIFEST)
	$(CARGO) clippy --manifest-path $(LOAD_MANIFEST) --all-targets -- -D warnings
	$(CARGO) test --manifest-path $(LOAD_MANIFEST)

# --- Raspberry Pi (aarch64) -------------------------------------------------

check-pi-toolchain:
	@rustup target list --installed 2>/dev/null | grep -qx '$(PI_TARGET)' || { \
	  echo "error: Rust target $(PI_TARGET) missing: rustup target add $(PI_TARGET)" >&2; exit 1; }
	@for t in $(PI_CC) $(PI_CXX) $(PI_STRIP); do command -v $$t >/dev/null || { \
	  echo "error: $$t missing: apt-get install gcc-aarch64-linux-gnu g++-aarch64-linux-gnu" >&2; \
	  echo "       (or use the cross tool with Docker: see cross/README.md)" >&2; exit 1; }; done

check-qemu:
	@command -v $(QEMU) >/dev/null || { \
	  echo "error: $(QEMU) missing: apt-get install qemu-user" >&2; exit 1; }
	@test -e $(PI_SYSROOT)/lib/ld-linux-aarch64.so.1 || { \
	  echo "error: $(PI_SYSROOT) has no aarch64 libc: apt-get install libc6-dev-arm64-cross" >&2; exit 1; }

# openh264 builds its bundled C++ source with the `cc` crate: it needs the
# target's C and C++ compilers (.cargo/config.toml names the linker).
pi: check-pi-toolchain
	CC_aarch64_unknown_linux_gnu=$(PI_CC) CXX_aarch64_unknown_linux_gnu=$(PI_CXX) \
	  $(CARGO) build --release --target $(PI_TARGET) --bin $(BIN)
	$(PI_STRIP) $(PI_BIN)
	@ls -l $(PI_BIN) | awk '{ printf "%s: %d bytes (%.2f MB), stripped\n", $$9, $$5, $$5 / 1048576 }'
	@file $(PI_BIN) 2>/dev/null || true

# The x86 test harness drives the aarch64 binary through qemu-user
# (tests/common/mod.rs reads VRTEST_BIN and VRTEST_RUNNER).
test-pi: check-qemu pi
	$(QEMU) -L $(PI_SYSROOT) $(PI_BIN) --version
	VRTEST_BIN=$(abspath $(PI_BIN)) VRTEST_RUNNER="$(QEMU) -L $(PI_SYSROOT)" \
	  $(CARGO) test --no-fail-fast --test '*' -- $(PI_TESTS)
ifeq ($(PI_UNIT),1)
	CC_aarch64_unknown_linux_gnu=$(PI_CC) CXX_aarch64_unknown_linux_gnu=$(PI_CXX) \
	  $(CARGO) test --target $(PI_TARGET) --bins
endif

# --- Pi deployment (later issue: deploy, image, flash) -----------------------

# --- Benchmarks -------------------------------------------------------------

bench:
	$(CARGO) build --release --bin $(BIN)
	$(CARGO) build --release --manifest-path $(LOAD_MANIFEST)
	python3 bench/run.py --bin target/release/$(BIN) \
	  --load bench/load/target/release/vr-load $(if $(wildcard $(PI_BIN)),--pi-bin $(PI_BIN),)

clean:
	$(CARGO) clean
	$(CARGO) clean --manifest-path $(LOAD_MANIFEST)
	rm -rf bench/out
