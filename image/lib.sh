# shellcheck shell=bash disable=SC2016,SC2034 # '$argon2' is literal; globals are read by callers
# Shared by deploy.sh, make-image.sh and flash.sh (sourced, bash).
# Nothing here builds a shell command from its input: values reach other
# programs as separate arguments, and the one remote command line is quoted
# with `q`.

say() { printf '%s\n' "$*"; }
warn() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  exit 1
}

# Single-quotes one word for a POSIX shell on the other end of ssh.
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

# Absolute path made of harmless characters (remote paths, commands).
check_path() { # NAME VALUE
  case $2 in
    /*) ;;
    *) die "$1 must be an absolute path, got '$2'" ;;
  esac
  [[ $2 =~ ^[A-Za-z0-9_./+-]+$ ]] || die "$1 may only use letters, digits and _ . / + -, got '$2'"
}

# A command for the remote side: one word, a name or an absolute path.
check_command() { # NAME VALUE
  [[ $2 =~ ^[A-Za-z0-9_./+-]+$ && $2 != -* ]] || die "$1 must be one command name or path, got '$2'"
}

# The ELF machine of a file: aarch64, armhf, x86_64, other:<n>, or "" when
# the file is not ELF (a script).
elf_arch() {
  local head
  head=$(od -An -v -tx1 -N20 -- "$1" 2>/dev/null | tr -d ' \n') || return 0
  [[ ${head:0:8} == 7f454c46 ]] || return 0
  case ${head:36:4} in # e_machine, little endian
    b700) echo aarch64 ;;
    2800) echo armhf ;;
    3e00) echo x86_64 ;;
    0300) echo i386 ;;
    *) echo "other:${head:36:4}" ;;
  esac
}

# Debian's architecture names (dpkg --print-architecture) as ELF machines.
dpkg_to_elf() {
  case $1 in
    arm64) echo aarch64 ;;
    armhf) echo armhf ;;
    amd64) echo x86_64 ;;
    i386) echo i386 ;;
    *) echo "$1" ;;
  esac
}

# The make target that builds a binary for an ELF machine.
make_target_for() {
  case $1 in
    aarch64) echo pi ;;
    armhf) echo pi32 ;;
    *) return 1 ;;
  esac
}

# The Pi binary: BIN when given, else built with `make pi` / `make pi32`.
# Prints the path.
pi_binary() { # ARCH
  if [[ -n ${BIN:-} ]]; then
    [[ -f $BIN ]] || die "BIN=$BIN: no such file"
    printf '%s\n' "$BIN"
    return
  fi
  local target
  target=$(make_target_for "$1") ||
    die "no build for a $1 system (64-bit Raspberry Pi OS is arm64, 32-bit is armhf); give BIN=path"
  say "building the $1 binary: ${MAKE:-make} $target" >&2
  "${MAKE:-make}" --no-print-directory "$target" >&2 || die "make $target failed"
  case $target in
    pi) printf '%s\n' "$PI_BIN" ;;
    pi32) printf '%s\n' "$PI32_BIN" ;;
  esac
}

# A random admin password: 20 characters, 120 bits.
gen_password() { head -c 15 /dev/urandom | base64 | tr '+/' '-_'; }

# The Argon2 hash of a password given on stdin, from this machine's build
# (`video-recorder hash-password`; the password never goes on a command line).
hash_password() {
  local hasher=${HOST_VR:-}
  if [[ -z $hasher ]]; then
    "${MAKE:-make}" --no-print-directory build >&2 || die "cannot build the host binary that hashes the password"
    # cargo puts it under CARGO_TARGET_DIR when that is set.
    hasher=${CARGO_TARGET_DIR:-target}/debug/video-recorder
    [[ $hasher == /* ]] || hasher=$PWD/$hasher
  fi
  local h
  h=$("$hasher" hash-password) || die "hashing the password with $hasher failed"
  [[ $h == '$argon2'* ]] || die "$hasher hash-password printed no Argon2 hash"
  printf '%s\n' "$h"
}

# The admin password's hash for a new config, into HASH, taken from (in this
# order) PASSWORD_HASH, PASSWORD_FILE, PASSWORD, the hash already installed
# ($1), or a new random password, whose text goes into NEW_PASSWORD for the
# caller to show once. Not in a subshell: it sets globals.
HASH=
NEW_PASSWORD=
choose_hash() { # EXISTING_HASH
  NEW_PASSWORD=
  if [[ -n ${PASSWORD_HASH:-} ]]; then
    [[ $PASSWORD_HASH == '$argon2'* && $PASSWORD_HASH != *[\"\\[:space:]]* ]] ||
      die "PASSWORD_HASH is not an Argon2 hash (make one with: video-recorder hash-password)"
    HASH=$PASSWORD_HASH
  elif [[ -n ${PASSWORD_FILE:-} ]]; then
    [[ -r $PASSWORD_FILE ]] || die "PASSWORD_FILE=$PASSWORD_FILE cannot be read"
    HASH=$(head -n1 -- "$PASSWORD_FILE" | hash_password)
  elif [[ -n ${PASSWORD:-} ]]; then
    HASH=$(printf '%s\n' "$PASSWORD" | hash_password)
  elif [[ -n $1 ]]; then
    HASH=$1
  else
    NEW_PASSWORD=$(gen_password)
    HASH=$(printf '%s\n' "$NEW_PASSWORD" | hash_password)
  fi
}

# The `password_hash` value in a config (text on stdin), or nothing.
config_hash() { sed -n 's/^[[:space:]]*password_hash[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' | tail -n1; }

# The port a config (text on stdin) listens on; 8000 when not set.
config_port() {
  local p
  p=$(sed -n 's/^[[:space:]]*port[[:space:]]*=[[:space:]]*\([0-9][0-9]*\).*/\1/p' | tail -n1)
  printf '%s\n' "${p:-8000}"
}

# The installed config: the template with its password_hash set (replaced
# where the template has one, else appended). Template path, hash.
render_config() {
  local template=$1 hash=$2
  if grep -q '^[[:space:]]*password_hash[[:space:]]*=' "$template"; then
    awk -v h="$hash" '/^[[:space:]]*password_hash[[:space:]]*=/ { print "password_hash = \"" h "\""; next } { print }' "$template"
  else
    cat "$template"
    printf '\n# Added by make deploy / make image: the Argon2 hash of the admin password.\n'
    printf '# A new one: video-recorder hash-password (reads the password on stdin).\n'
    printf 'password_hash = "%s"\n' "$hash"
  fi
}

# sha256 of a file, hex only.
sha256_of() { sha256sum -- "$1" | cut -d' ' -f1; }
