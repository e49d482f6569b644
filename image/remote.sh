#!/bin/sh
# Runs on the Pi, sent there by deploy.sh and run as root (or with sudo):
#   sh remote.sh ACTION KEY=VALUE...
# ACTION: install (from SRC, a directory deploy.sh uploaded), rollback,
# config (prints the installed one). Keys: DESTDIR PREFIX SYSTEMCTL
# SYSUSERS GROUP SRC. Values are taken as they are, never evaluated. POSIX sh: the Pi
# may only have dash.
set -eu

say() { printf '  %s\n' "$*"; }
die() {
  printf 'remote: error: %s\n' "$*" >&2
  exit 1
}

ACTION=${1:-}
[ $# -gt 0 ] && shift
DESTDIR=''
PREFIX=/usr/local
SYSTEMCTL=systemctl
SYSUSERS=systemd-sysusers
GROUP=video-recorder
SRC=
for kv in "$@"; do
  case $kv in
    DESTDIR=*) DESTDIR=${kv#*=} ;;
    PREFIX=*) PREFIX=${kv#*=} ;;
    SYSTEMCTL=*) SYSTEMCTL=${kv#*=} ;;
    SYSUSERS=*) SYSUSERS=${kv#*=} ;;
    GROUP=*) GROUP=${kv#*=} ;;
    SRC=*) SRC=${kv#*=} ;;
    *) die "unknown argument: $kv" ;;
  esac
done

SERVICE=video-recorder.service
BIN=$DESTDIR$PREFIX/bin/video-recorder
PREV=$BIN.prev
UNIT=$DESTDIR/etc/systemd/system/$SERVICE
CONFDIR=$DESTDIR/etc/video-recorder
CONF=$CONFDIR/video-recorder.toml
# sha256 of the config as we last installed it: a config that no longer
# matches was edited by someone, and is never overwritten.
RECORD=$CONFDIR/.video-recorder.toml.sha256
SYSUSERS_CONF=$DESTDIR/usr/lib/sysusers.d/video-recorder.conf

sha() { sha256sum "$1" | cut -d' ' -f1; }

# Copies $1 to $2 through a temporary name, so nothing ever sees half a file
# (and the running binary is replaced, not rewritten: no "text file busy").
put() { # SRC DST MODE [GROUP]
  cp "$1" "$2.deploy-tmp"
  if [ -n "${4:-}" ]; then chgrp "$4" "$2.deploy-tmp"; fi
  chmod "$3" "$2.deploy-tmp"
  mv -f "$2.deploy-tmp" "$2"
}

restart() {
  "$SYSTEMCTL" daemon-reload
  "$SYSTEMCTL" enable "$SERVICE"
  "$SYSTEMCTL" restart "$SERVICE"
  say "service: $SYSTEMCTL restart $SERVICE"
}

install_all() {
  [ -d "$SRC" ] || die "nothing uploaded at $SRC"
  mkdir -p "$(dirname "$BIN")" "$(dirname "$UNIT")" "$CONFDIR" "$(dirname "$SYSUSERS_CONF")"

  # The service's user first: the config's group and the unit need it.
  put "$SRC/video-recorder.sysusers.conf" "$SYSUSERS_CONF" 0644
  "$SYSUSERS" "$SYSUSERS_CONF"

  if [ -e "$BIN" ] && cmp -s "$SRC/video-recorder" "$BIN"; then
    say "binary: $BIN unchanged"
  else
    if [ -e "$BIN" ]; then
      put "$BIN" "$PREV" 0755
      say "binary: previous one kept as $PREV (make rollback)"
    fi
    put "$SRC/video-recorder" "$BIN" 0755
    say "binary: installed $BIN"
  fi

  if [ -e "$UNIT" ] && cmp -s "$SRC/$SERVICE" "$UNIT"; then
    say "unit: $UNIT unchanged"
  else
    put "$SRC/$SERVICE" "$UNIT" 0644
    say "unit: installed $UNIT"
  fi

  # Readable by the service's group only: it holds the password hash.
  new=$SRC/video-recorder.toml
  if [ ! -e "$CONF" ]; then
    put "$new" "$CONF" 0640 "$GROUP"
    sha "$CONF" >"$RECORD"
    say "config: installed $CONF"
  elif cmp -s "$new" "$CONF"; then
    sha "$CONF" >"$RECORD"
    say "config: $CONF unchanged"
  elif [ -f "$RECORD" ] && [ "$(cat "$RECORD")" = "$(sha "$CONF")" ]; then
    put "$new" "$CONF" 0640 "$GROUP"
    sha "$CONF" >"$RECORD"
    say "config: updated $CONF (it had not been edited)"
  else
    put "$new" "$CONF.new" 0640 "$GROUP"
    say "config: KEPT your edited $CONF; the new default is $CONF.new"
    say "        (compare: diff $CONF $CONF.new)"
  fi

  restart
}

rollback() {
  [ -e "$PREV" ] || die "no previous binary at $PREV to roll back to"
  mv -f "$BIN" "$BIN.rollback-tmp"
  mv -f "$PREV" "$BIN"
  mv -f "$BIN.rollback-tmp" "$PREV"
  say "binary: $PREV is $BIN again; the one it replaced is now $PREV"
  restart
}

case $ACTION in
  install) install_all ;;
  rollback) rollback ;;
  config) if [ -e "$CONF" ]; then cat "$CONF"; fi ;;
  *) die "unknown action '$ACTION' (install, rollback, config)" ;;
esac
