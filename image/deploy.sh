#!/usr/bin/env bash
# make deploy / make rollback: install video-recorder on a Pi over ssh, then
# wait until its /status answers through an ssh tunnel.
#
#   image/deploy.sh deploy|rollback      (settings from the environment;
#                                         `make help-pi` lists them)
#
# One ssh connection is opened and shared by every step (ControlMaster):
# one password prompt at most, and quick steps. Nothing secret goes on a
# command line here or there: the password is hashed locally from stdin,
# and only its hash travels, inside the config file.
set -euo pipefail

PROG=${0##*/}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=image/lib.sh
. "$HERE/lib.sh"

ACTION=${1:-deploy}
case $ACTION in deploy | rollback) ;; *) die "usage: $0 deploy|rollback" ;; esac

PI=${PI:-}
SSH_PORT=${SSH_PORT:-22}
SSH_OPTS=${SSH_OPTS:-}
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
SYSTEMCTL=${SYSTEMCTL:-systemctl}
JOURNALCTL=${JOURNALCTL:-journalctl}
SYSUSERS=${SYSUSERS:-systemd-sysusers}
CONFIG_GROUP=${CONFIG_GROUP:-video-recorder}
SUDO=${SUDO:-auto}
PI_PORT=${PI_PORT:-}
DEPLOY_WAIT=${DEPLOY_WAIT:-60}
CONFIG=${CONFIG:-$HERE/video-recorder.toml}
LOG_LINES=${LOG_LINES:-40}

# --- Check everything before connecting --------------------------------------

[[ -n $PI ]] || die "say which Pi: make $ACTION PI=user@host (or PI=host)"
# user@host or host: a host name, IPv4 or IPv6 address. Never an option.
[[ $PI =~ ^([A-Za-z0-9_][A-Za-z0-9._-]*@)?[A-Za-z0-9][A-Za-z0-9.:%_-]*$ ]] ||
  die "PI=$PI is not user@host or host"
if ! [[ $SSH_PORT =~ ^[0-9]{1,5}$ ]] || ((SSH_PORT == 0 || SSH_PORT > 65535)); then
  die "SSH_PORT=$SSH_PORT is not a port"
fi
[[ -z $PI_PORT || $PI_PORT =~ ^[0-9]{1,5}$ ]] || die "PI_PORT=$PI_PORT is not a port"
[[ $DEPLOY_WAIT =~ ^[0-9]+$ ]] || die "DEPLOY_WAIT=$DEPLOY_WAIT is not a number of seconds"
[[ $LOG_LINES =~ ^[0-9]+$ ]] || die "LOG_LINES=$LOG_LINES is not a number"
[[ -z $DESTDIR ]] || check_path DESTDIR "$DESTDIR"
check_path PREFIX "$PREFIX"
check_command SYSTEMCTL "$SYSTEMCTL"
check_command JOURNALCTL "$JOURNALCTL"
check_command SYSUSERS "$SYSUSERS"
check_command CONFIG_GROUP "$CONFIG_GROUP"
[[ $SUDO == auto || -z $SUDO ]] || check_command SUDO "$SUDO"
[[ -r $CONFIG ]] || die "CONFIG=$CONFIG cannot be read"
for tool in ssh tar curl od sha256sum; do
  command -v "$tool" >/dev/null || die "$tool is needed here (apt-get install openssh-client curl)"
done
# The user's own ssh options (identity file, jump host, …), split into words
# locally. They are arguments to ssh, never part of a remote command.
read -ra OPTS <<<"$SSH_OPTS"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/vr-deploy.XXXXXX")
CTL=$WORK/ssh
RTMP=

ssh_() { ssh -p "$SSH_PORT" -o ControlPath="$CTL" "${OPTS[@]}" -o ConnectTimeout=15 "$@"; }
# A command on the Pi: one string, for the login shell there. Every value in
# it went through `q`.
on_pi() { ssh_ -- "$PI" "$1"; }

cleanup() {
  if [[ -S $CTL ]]; then
    [[ -z $RTMP ]] || on_pi "rm -rf $(q "$RTMP")" || true
    ssh_ -O exit -- "$PI" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

say "==> connecting to $PI (ssh port $SSH_PORT)"
# ControlPersist: should this script be killed, the master still goes away
# after 10 idle minutes (long enough for a `make pi` in between).
ssh_ -o ControlMaster=yes -o ControlPersist=600 -f -N -- "$PI" || die "cannot ssh to $PI on port $SSH_PORT"

# Round trips are few: each one starts a login shell on the Pi.
# The userland's architecture (a 32-bit Raspberry Pi OS may run a 64-bit
# kernel, so dpkg is asked first, uname only without dpkg), who we are, and
# a private directory for the upload.
# shellcheck disable=SC2016 # expanded on the Pi
info=$(on_pi 'printf "%s|%s|%s|%s\n" "$(dpkg --print-architecture 2>/dev/null)" "$(uname -m)" "$(id -u)" "$(mktemp -d /tmp/video-recorder-deploy.XXXXXX)"') ||
  die "cannot run commands on $PI"
IFS='|' read -r dpkg_arch machine remote_uid RTMP <<<"$info"
[[ $RTMP == /tmp/video-recorder-deploy.* ]] || die "cannot make a temporary directory on $PI"
if [[ -n $dpkg_arch ]]; then
  REMOTE_ARCH=$(dpkg_to_elf "$dpkg_arch")
else
  case $machine in
    aarch64) REMOTE_ARCH=aarch64 ;;
    armv7l | armv8l) REMOTE_ARCH=armhf ;;
    *) REMOTE_ARCH=$machine ;;
  esac
fi
[[ $machine != armv6l ]] || die "$PI is an ARMv6 board (Pi 1 / Zero W): the H.264 encoder needs ARMv7 NEON"

if [[ $SUDO == auto ]]; then
  if [[ $remote_uid == 0 ]]; then SUDO=; else SUDO=sudo; fi
fi
# sudo must not wait for a password nobody can type: fail at once instead.
if [[ $SUDO == sudo ]]; then SUDO_CMD='sudo -n '; elif [[ -n $SUDO ]]; then SUDO_CMD="$SUDO "; else SUDO_CMD=; fi

# The command that runs remote.sh as root with our settings.
remote() { # ACTION [KEY=VALUE...]
  local cmd kv
  cmd="${SUDO_CMD}sh $(q "$RTMP/remote.sh") $(q "$1")"
  shift
  for kv in "DESTDIR=$DESTDIR" "PREFIX=$PREFIX" "SYSTEMCTL=$SYSTEMCTL" \
    "SYSUSERS=$SYSUSERS" "GROUP=$CONFIG_GROUP" "$@"; do
    cmd+=" $(q "$kv")"
  done
  printf '%s' "$cmd"
}

# Upload remote.sh and read the installed config (for its password hash).
on_pi "cat > $(q "$RTMP/remote.sh") && $(remote config)" <"$HERE/remote.sh" >"$WORK/old.toml" ||
  die "cannot read the installed config on $PI (sudo without a password is needed, or PI=root@…)"

# --- deploy: stage, upload, install -------------------------------------------

KEPT=
if [[ $ACTION == deploy ]]; then
  bin=$(pi_binary "$REMOTE_ARCH")
  arch=$(elf_arch "$bin")
  if [[ -n $arch && $arch != "$REMOTE_ARCH" ]]; then
    die "$bin is built for $arch but $PI runs $REMOTE_ARCH: build with make $(make_target_for "$REMOTE_ARCH" || echo '…') or give BIN="
  fi

  choose_hash "$(config_hash <"$WORK/old.toml")"
  umask 077
  stage=$WORK/stage
  mkdir "$stage"
  cp -- "$bin" "$stage/video-recorder"
  sed "s#/usr/local/bin/video-recorder#$PREFIX/bin/video-recorder#g" "$HERE/video-recorder.service" >"$stage/video-recorder.service"
  cp -- "$HERE/video-recorder.sysusers.conf" "$stage/video-recorder.sysusers.conf"
  render_config "$CONFIG" "$HASH" >"$stage/video-recorder.toml"

  say "==> installing on $PI ($REMOTE_ARCH): $bin ($(wc -c <"$bin") bytes)"
  tar -C "$stage" -cf - . | on_pi "mkdir $(q "$RTMP/src") && tar -xf - -C $(q "$RTMP/src")" ||
    die "upload to $PI failed"
  installed=1
  out=$(on_pi "$(remote install "SRC=$RTMP/src"); rc=\$?; rm -rf $(q "$RTMP"); exit \$rc") || installed=
  RTMP=
  printf '%s\n' "$out"
  if [[ $out == *"config: KEPT"* ]]; then
    KEPT=1
    cp "$WORK/old.toml" "$WORK/now.toml"
  else
    cp "$stage/video-recorder.toml" "$WORK/now.toml"
  fi
  # Shown as soon as its hash is on the Pi, whatever happens next: a
  # password that was never shown would lock its owner out.
  if [[ -n $NEW_PASSWORD && $out == *"config: "* ]]; then
    say ""
    if [[ -n $KEPT ]]; then
      say "  admin password (shown once) of the new default config only:"
      say "  $DESTDIR/etc/video-recorder/video-recorder.toml.new; your kept config has its own"
    else
      say "  admin password (shown once; the Pi keeps only its hash):"
    fi
    say ""
    say "      $NEW_PASSWORD"
    say ""
  fi
  [[ -n $installed ]] || die "installing on $PI failed"
else
  say "==> rolling back on $PI"
  on_pi "$(remote rollback); rc=\$?; rm -rf $(q "$RTMP"); exit \$rc" || die "rollback on $PI failed"
  RTMP=
  cp "$WORK/old.toml" "$WORK/now.toml"
fi

# --- wait for /status ------------------------------------------------------------

port=${PI_PORT:-$(config_port <"$WORK/now.toml")}
scheme=http
if grep -Eq '^[[:space:]]*(tls_self_signed[[:space:]]*=[[:space:]]*true|tls_cert[[:space:]]*=[[:space:]]*"[^"])' "$WORK/now.toml"; then
  scheme=https
fi
admin=$(sed -n 's/^[[:space:]]*admin_user[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$WORK/now.toml" | tail -n1)
admin=${admin:-admin}

# The password we know, if any (curl reads it from stdin, not argv).
password=${NEW_PASSWORD:-}
if [[ -z ${PASSWORD_HASH:-} ]]; then
  if [[ -n ${PASSWORD_FILE:-} ]]; then password=$(head -n1 -- "$PASSWORD_FILE"); elif [[ -n ${PASSWORD:-} ]]; then password=$PASSWORD; fi
fi
[[ -z $KEPT ]] || password= # the kept config has its own password
curl_config() {
  if [[ -n $password ]]; then
    local up="$admin:$password"
    up=${up//\\/\\\\}
    printf 'user = "%s"\n' "${up//\"/\\\"}"
  fi
}

sock=$WORK/http.sock
ssh_ -O forward -L "$sock:127.0.0.1:$port" -- "$PI" >/dev/null || die "cannot open an ssh tunnel to port $port on $PI"
say "==> waiting up to ${DEPLOY_WAIT}s for $scheme://127.0.0.1:$port/status on $PI (through the ssh tunnel)"
start=$SECONDS
code=000
while :; do
  code=$(curl_config | curl -sS -K - -k -o "$WORK/status.json" -w '%{http_code}' --max-time 5 \
    --unix-socket "$sock" "$scheme://127.0.0.1:$port/status" 2>"$WORK/curl.err") || true
  case $code in
    200)
      say "==> up after $((SECONDS - start))s: /status answered 200"
      grep -o '"version":"[^"]*"\|"state":"[^"]*"\|"warning":"[^"]*"' "$WORK/status.json" | sed 's/^/  /' || true
      break
      ;;
    401)
      if [[ -z $password ]]; then
        say "==> up after $((SECONDS - start))s: /status answered (401: it asks for the admin password)"
        break
      fi
      code="401 (the admin password was refused)"
      ;;
  esac
  if ((SECONDS - start >= DEPLOY_WAIT)); then
    {
      say ""
      say "$ACTION FAILED: video-recorder on $PI did not answer /status within ${DEPLOY_WAIT}s"
      say "  last answer: HTTP $code $(tr '\n' ' ' <"$WORK/curl.err")"
      say "  last $LOG_LINES log lines ($JOURNALCTL -u video-recorder.service):"
      on_pi "${SUDO_CMD}$(q "$JOURNALCTL") -u video-recorder.service -n $LOG_LINES --no-pager" 2>&1 | sed 's/^/    /' || true
      if [[ $ACTION == deploy ]]; then
        say "  the previous binary is kept: make rollback PI=$PI"
      fi
    } >&2
    exit 1
  fi
  sleep 1
done

say "==> open $scheme://${PI#*@}:$port/ (user $admin)"
say "    uploads to S3: set s3_bucket (and the lines around it, commented) in $DESTDIR/etc/video-recorder/video-recorder.toml"
