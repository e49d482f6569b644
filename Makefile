# video-recorder: build, test, cross-compile for the Raspberry Pi, benchmark.
#
#   make run [RELEASE=1] [ARGS="--source test --port 8080"]
#   make build | release | test | pi | test-pi [PI_TESTS="recording sigterm"] [PI_UNIT=0] | bench | clean
#
# `make help` lists the targets; `make help-pi` the Pi deployment ones
# (deploy, rollback, image, flash).

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
# Also cross-compile and run the unit tests under qemu, optimised as the
# shipped binary is (they reuse its dependencies; native `make test` runs
# them with debug assertions). 0 to skip.
PI_UNIT   ?= 1

PI32_TARGET  := armv7-unknown-linux-gnueabihf
PI32_BIN     := target/$(PI32_TARGET)/release/$(BIN)
PI32_CC      ?= arm-linux-gnueabihf-gcc
PI32_CXX     ?= arm-linux-gnueabihf-g++
PI32_STRIP   ?= arm-linux-gnueabihf-strip
QEMU32       ?= qemu-arm
PI32_SYSROOT ?= /usr/arm-linux-gnueabihf
# Test binaries run against the armv7 build (cargo test flags).
PI32_TESTS   ?= --test http --test recording --test last --test camera --test cameras

ifeq ($(RELEASE),1)
PROFILE_FLAG := --release
else
PROFILE_FLAG :=
endif

.PHONY: all help run build release test audit pi test-pi pi32 test-pi32 bench clean check-pi-toolchain check-pi32-toolchain check-qemu

all: build

help:
	@echo "make run [RELEASE=1] [ARGS=...]  build, then serve on http://localhost:8000"
	@echo "make build                       debug build"
	@echo "make release                     optimised build for this machine"
	@echo "make test                        advisories, fmt check, clippy -D warnings, all tests"
	@echo "make audit                       Cargo.lock against the RustSec advisories (offline)"
	@echo "make pi                          stripped release binary for 64-bit Raspberry Pi OS"
	@echo "make test-pi [PI_TESTS=...]      integration tests against the aarch64 binary under qemu"
	@echo "make pi32                        stripped release binary for 32-bit Raspberry Pi OS (armv7)"
	@echo "make test-pi32                   a subset of the integration tests against it under qemu-arm"
	@echo "make help-pi                     deploy, rollback, image, flash for the Raspberry Pi"
	@echo "make bench                       benchmarks (bench/README.md)"
	@echo "make clean                       remove build output"

run:
	$(CARGO) run $(PROFILE_FLAG) --bin $(BIN) -- $(ARGS)

build:
	$(CARGO) build

release:
	$(CARGO) build --release

# The README's test command, then the benchmark's load client checks itself.
test: audit
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy -p vr-harness --all-targets -- -D warnings
	$(CARGO) test
	$(CARGO) test -p tiny_http --lib
	$(CARGO) test -p retina --lib
	$(CARGO) test -p vr-harness
	$(CARGO) fmt --check --manifest-path $(LOAD_MANIFEST)
	$(CARGO) clippy --manifest-path $(LOAD_MANIFEST) --all-targets -- -D warnings
	$(CARGO) test --manifest-path $(LOAD_MANIFEST)

# Cargo.lock (and the load client's) against the RustSec advisories, offline
# (.ci/audit.py: ../shared/advisory-db when present, else .ci/advisories).
audit:
	python3 .ci/audit.py

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
	  $(CARGO) test --release --target $(PI_TARGET) --bins
endif

# --- 32-bit Raspberry Pi OS (armv7 hard-float: Pi 2, 3, 4, Zero 2 W) ---------
# ARMv6 boards (Pi 1, Zero W) are out: OpenH264's ARM build always uses NEON.

pi32: check-pi32-toolchain
	CC_armv7_unknown_linux_gnueabihf=$(PI32_CC) CXX_armv7_unknown_linux_gnueabihf=$(PI32_CXX) \
	  $(CARGO) build --release --target $(PI32_TARGET) --bin $(BIN)
	$(PI32_STRIP) $(PI32_BIN)
	@ls -l $(PI32_BIN) | awk '{ printf "%s: %d bytes (%.2f MB), stripped\n", $$9, $$5, $$5 / 1048576 }'
	@file $(PI32_BIN) 2>/dev/null || true

check-pi32-toolchain:
	@rustup target list --installed 2>/dev/null | grep -qx '$(PI32_TARGET)' || { \
	  echo "error: Rust target $(PI32_TARGET) missing: rustup target add $(PI32_TARGET)" >&2; exit 1; }
	@for t in $(PI32_CC) $(PI32_CXX) $(PI32_STRIP); do command -v $$t >/dev/null || { \
	  echo "error: $$t missing: apt-get install gcc-arm-linux-gnueabihf g++-arm-linux-gnueabihf" >&2; exit 1; }; done

# A named subset of the integration tests against the armv7 binary (qemu-arm).
test-pi32: pi32
	$(QEMU32) -L $(PI32_SYSROOT) $(PI32_BIN) --version
	VRTEST_BIN=$(abspath $(PI32_BIN)) VRTEST_RUNNER="$(QEMU32) -L $(PI32_SYSROOT)" \
	  $(CARGO) test --no-fail-fast $(PI32_TESTS)

# --- Pi deployment: deploy, rollback, image, flash ------------------------------
# The work is done by scripts in image/ (image/README.md); these targets only
# hand them their settings, through the environment: a value is never pasted
# into a shell command line. `make help-pi` lists the settings.

PI           ?=
SSH_PORT     ?= 22
SSH_OPTS     ?=
# Where things go on the Pi: DESTDIR in front of every path (a staging tree,
# or a test's temp dir), PREFIX for the binary (PREFIX/bin).
DESTDIR      ?=
PREFIX       ?= /usr/local
SYSTEMCTL    ?= systemctl
JOURNALCTL   ?= journalctl
SYSUSERS     ?= systemd-sysusers
CONFIG_GROUP ?= video-recorder
# auto: sudo -n when the ssh user is not root.
SUDO         ?= auto
# The service's port on the Pi (default: read from its config).
PI_PORT      ?=
DEPLOY_WAIT  ?= 60
# The config template installed (the admin password hash is added to it).
CONFIG       ?= image/video-recorder.toml
# The x86 binary that hashes the password (default: built with `make build`).
HOST_VR      ?=
BASE         ?=
OUT          ?=
SSH          ?=
IMAGE        ?=
DEV          ?=
YES          ?=
SYSFS        ?= /sys
MOUNTS       ?= /proc/mounts
SWAPS        ?= /proc/swaps

# Secrets and hashes on the command line: PASSWORD_FILE=file (read here, never
# sent), PASSWORD_HASH='$argon2id$…' (passed on as typed), PASSWORD (visible
# to `ps` and in shell history: prefer PASSWORD_FILE).
PASSWORD      ?=
PASSWORD_FILE ?=
PASSWORD_HASH ?=
LOG_LINES     ?=

# BIN names the binary for cargo; given on the command line it is the file
# to deploy or put into an image instead of the `make pi`/`make pi32` build.
PI_FILE = $(if $(filter command line,$(origin BIN)),$(value BIN),)

# Handed to the scripts as the user typed them ($(value): a `$` in a hash is
# not a make variable), overriding the command line's expanded copies.
PI_ENV_VARS := PI SSH_PORT SSH_OPTS DESTDIR PREFIX SYSTEMCTL JOURNALCTL SYSUSERS \
  CONFIG_GROUP SUDO PI_PORT DEPLOY_WAIT CONFIG HOST_VR BASE OUT SSH IMAGE DEV YES \
  SYSFS MOUNTS SWAPS LOG_LINES PASSWORD PASSWORD_FILE PASSWORD_HASH PI_BIN PI32_BIN
deploy rollback image flash: override export BIN := $(PI_FILE)
deploy rollback image flash: override export MAKE := $(MAKE)
$(foreach v,$(PI_ENV_VARS),$(eval deploy rollback image flash: override export $(v) := $$(value $(v))))

.PHONY: deploy rollback image flash help-pi

deploy:
	@image/deploy.sh deploy

rollback:
	@image/deploy.sh rollback

image:
	@image/make-image.sh

flash:
	@image/flash.sh

help-pi:
	@echo "make deploy PI=user@host [SSH_PORT=22] [SSH_OPTS='-i key']"
	@echo "    install on a Pi over ssh (binary: make pi or pi32, as the Pi needs; BIN=file"
	@echo "    to choose), keep the old binary, restart, wait for /status (DEPLOY_WAIT=60)"
	@echo "    A new install gets a random admin password, shown once; or give"
	@echo "    PASSWORD_FILE=file, PASSWORD_HASH=hash (video-recorder hash-password)."
	@echo "    Remote side: DESTDIR= PREFIX=/usr/local SYSTEMCTL= JOURNALCTL= SYSUSERS= SUDO=auto"
	@echo "make rollback PI=user@host        swap back to the previous binary, restart"
	@echo "make image BASE=raspios-lite.img OUT=vr.img [BIN=file] [SSH=1]"
	@echo "    a copy of a Raspberry Pi OS image with video-recorder installed and enabled;"
	@echo "    the admin password goes to OUT.password (0600). No root, no mounting."
	@echo "make flash IMAGE=vr.img DEV=/dev/sdX [YES=1]"
	@echo "    write to a removable, unmounted disk that is not the system's; verify"
	@echo "    (SYSFS=, MOUNTS=, SWAPS= point its checks at a fake view, for tests)"

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
