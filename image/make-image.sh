#!/usr/bin/env bash
# make image BASE=raspios-lite.img OUT=video-recorder.img: a copy of a
# Raspberry Pi OS image with video-recorder installed and enabled, made
# without root and without mounting anything:
#
#   partitions   sfdisk --json: 2 partitions, FAT boot + ext4 root
#   root (ext4)  debugfs -w on "OUT?offset=BYTES" (e2fsprogs' unix I/O
#                offset), so no copy of the partition is needed
#   boot (FAT)   mtools on "OUT@@BYTES"
#
# Installed: /usr/local/bin/video-recorder, the unit (enabled by its
# multi-user.target.wants link), /usr/lib/sysusers.d/video-recorder.conf
# (the system user, created by systemd-sysusers at first boot, with an id
# free in this image), /etc/video-recorder/video-recorder.toml (0640,
# root:video-recorder, on the LAN with an admin password), and
# video-recorder.txt in the boot partition. SSH=1 also enables sshd at first
# boot (the boot partition's `ssh` file).
set -euo pipefail

PROG=${0##*/}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=image/lib.sh
. "$HERE/lib.sh"

BASE=${BASE:-}
OUT=${OUT:-}
CONFIG=${CONFIG:-$HERE/video-recorder.toml}
SSH=${SSH:-}
# debugfs pages `stat` output otherwise.
export DEBUGFS_PAGER=__none__ PAGER=__none__ MTOOLS_SKIP_CHECK=1

[[ -n $BASE ]] || die "usage: make image BASE=raspios-lite.img [OUT=video-recorder.img]"
[[ -f $BASE && -r $BASE ]] || die "BASE=$BASE: no such readable file"
if [[ -z $OUT ]]; then
  OUT=$(basename "${BASE%.xz}" .img)-video-recorder.img
fi
# `?` and `@@` separate the offset in debugfs' and mtools' image names.
[[ $OUT != *\?* && $OUT != *@@* ]] || die "OUT=$OUT: the name may not contain ? or @@"
[[ $(realpath -m -- "$OUT") != $(realpath -m -- "$BASE") ]] || die "OUT must not be BASE: the base image is never changed"
[[ -r $CONFIG ]] || die "CONFIG=$CONFIG cannot be read"
for tool in sfdisk debugfs e2fsck mcopy mtype mdir od sha256sum; do
  command -v "$tool" >/dev/null || die "$tool is needed (apt-get install fdisk e2fsprogs mtools)"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/vr-image.XXXXXX")
[[ $WORK =~ ^[A-Za-z0-9_./-]+$ ]] || die "the temporary directory $WORK has characters debugfs cannot take; set TMPDIR"
TMP=$OUT.partial
cleanup() {
  rm -rf "$WORK"
  rm -f -- "$TMP"
}
trap cleanup EXIT

say "==> copying $BASE to $OUT"
case $BASE in
  *.xz) xz -dc -- "$BASE" >"$TMP" || die "cannot decompress $BASE" ;;
  *) cp --sparse=always -- "$BASE" "$TMP" ;;
esac
IMG_BYTES=$(stat -c %s -- "$TMP")

# --- Recognise the image -------------------------------------------------------

refuse() { die "$BASE is not an image this can use: $*"; }

json=$(sfdisk --json -- "$TMP" 2>"$WORK/sfdisk.err") ||
  refuse "no partition table (MBR or GPT): $(tr '\n' ' ' <"$WORK/sfdisk.err")"
label=$(sed -n 's/.*"label": *"\([^"]*\)".*/\1/p' <<<"$json" | head -n1)
sector=$(sed -n 's/.*"sectorsize": *\([0-9]*\).*/\1/p' <<<"$json" | head -n1)
sector=${sector:-512}
case $label in dos | gpt) ;; *) refuse "partition table '$label' (want dos or gpt)" ;; esac
# One "start size type" line per partition, whether sfdisk printed each
# partition on one line or spread over several.
mapfile -t parts < <(tr ',{}[]' '\n' <<<"$json" |
  sed -n 's/^[[:space:]]*"\([a-z]*\)":[[:space:]]*"\{0,1\}\([^"]*\)"\{0,1\}[[:space:]]*$/\1 \2/p' |
  awk '$1 == "node" { n++ } n && ($1 == "start" || $1 == "size" || $1 == "type") { v[n, $1] = $2 }
       END { for (i = 1; i <= n; i++) print v[i, "start"], v[i, "size"], v[i, "type"] }')
((${#parts[@]} == 2)) ||
  refuse "${#parts[@]} partitions; Raspberry Pi OS has 2 (FAT boot, ext4 root)"
read -r boot_start _ boot_type <<<"${parts[0]}"
read -r root_start root_size root_type <<<"${parts[1]}"
[[ $boot_start =~ ^[0-9]+$ && $root_start =~ ^[0-9]+$ && $root_size =~ ^[0-9]+$ ]] ||
  refuse "sfdisk's partition list could not be read"
BOOT_OFF=$((boot_start * sector))
ROOT_OFF=$((root_start * sector))
ROOT_BYTES=$((root_size * sector))
((ROOT_OFF + ROOT_BYTES <= IMG_BYTES)) ||
  refuse "the root partition ends beyond the image's end (a truncated download?)"
shopt -s nocasematch
case $label:$boot_type in
  dos:b | dos:c | dos:e | dos:6 | dos:4 | dos:1 | gpt:EBD0A0A2-B9E5-4433-87C0-68B6B72699C7 | gpt:C12A7328-F81F-11D2-BA4B-00A0C93EC93B) ;;
  *) refuse "partition 1 has type $boot_type, not FAT" ;;
esac
case $label:$root_type in
  dos:83 | gpt:0FC63DAF-8483-4772-8E79-3D69D8477DE4 | gpt:B921B045-1DF0-41C3-AF44-4C6F280D3FAE) ;;
  *) refuse "partition 2 has type $root_type, not a Linux file system" ;;
esac
shopt -u nocasematch

BOOT_FS="$TMP@@$BOOT_OFF"
mdir -b -i "$BOOT_FS" :: >/dev/null 2>"$WORK/mtools.err" ||
  refuse "partition 1 is not a FAT file system: $(tr '\n' ' ' <"$WORK/mtools.err")"
mtype -i "$BOOT_FS" ::config.txt >/dev/null 2>&1 ||
  refuse "partition 1 has no config.txt: not a Raspberry Pi boot partition"

ROOT_FS="$TMP?offset=$ROOT_OFF"
dfs() { debugfs -R "$1" "$ROOT_FS" 2>>"$WORK/debugfs.err"; }
exists() { dfs "stat $1" | grep -q '^Inode:'; }
stats=$(dfs stats)
[[ $stats == *"Filesystem magic number:  0xEF53"* ]] || refuse "partition 2 is not an ext2/3/4 file system"
blocks=$(sed -n 's/^Block count: *\([0-9]*\)/\1/p' <<<"$stats")
bsize=$(sed -n 's/^Block size: *\([0-9]*\)/\1/p' <<<"$stats")
((blocks * bsize <= ROOT_BYTES)) || refuse "the root file system is larger than its partition"
os=$(dfs "cat /etc/os-release")
[[ -n $os ]] || refuse "the root file system has no /etc/os-release"
os_id=$(sed -n 's/^ID="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' <<<"$os")
os_like=$(sed -n 's/^ID_LIKE="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' <<<"$os")
case " $os_id $os_like " in
  *" debian "* | *" raspbian "*) ;;
  *) refuse "/etc/os-release says ID=$os_id: not Raspberry Pi OS or Debian" ;;
esac
exists /usr/lib/systemd/systemd || exists /lib/systemd/systemd || refuse "no systemd in the root file system"
passwd=$(dfs "cat /etc/passwd")
group=$(dfs "cat /etc/group")
[[ -n $passwd && -n $group ]] || refuse "no /etc/passwd or /etc/group in the root file system"

# The userland's architecture, from its dynamic loader (what the binary needs).
if exists /lib/ld-linux-aarch64.so.1; then
  IMAGE_ARCH=aarch64
elif exists /lib/ld-linux-armhf.so.3; then
  IMAGE_ARCH=armhf
else
  refuse "no /lib/ld-linux-aarch64.so.1 or /lib/ld-linux-armhf.so.3: not an arm64 or armhf system"
fi
PRETTY=$(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' <<<"$os")
say "    $label table; boot FAT at byte $BOOT_OFF; root ext4 at byte $ROOT_OFF ($((ROOT_BYTES / 1048576)) MiB): ${PRETTY:-$os_id}, $IMAGE_ARCH"

bin=$(pi_binary "$IMAGE_ARCH")
arch=$(elf_arch "$bin")
[[ $arch == "$IMAGE_ARCH" ]] || die "$bin is ${arch:-not an ELF binary}, the image needs $IMAGE_ARCH: make $(make_target_for "$IMAGE_ARCH")"

# --- The service's user: an id free in this image ------------------------------

# systemd-sysusers creates the user at first boot; the id is fixed now so
# that the config file can belong to its group already.
id_used() { cut -d: -f3 <<<"$passwd" | grep -qx "$1" || cut -d: -f3 <<<"$group" | grep -qx "$1"; }
SVC_ID=$(awk -F: '$1 == "video-recorder" { print $3 }' <<<"$passwd")
if [[ -z $SVC_ID ]]; then
  for ((i = 999; i >= 100; i--)); do
    if ! id_used "$i"; then
      SVC_ID=$i
      break
    fi
  done
fi
[[ -n $SVC_ID ]] || refuse "no free system user id (100-999)"

# --- Stage the files ---------------------------------------------------------------

umask 077
S=$WORK/stage
mkdir "$S"
cp -- "$bin" "$S/video-recorder"
cp -- "$HERE/video-recorder.service" "$S/video-recorder.service"
sed "s/^u video-recorder - /u video-recorder $SVC_ID /" "$HERE/video-recorder.sysusers.conf" >"$S/sysusers.conf"
grep -q "^u video-recorder $SVC_ID " "$S/sysusers.conf" || die "unexpected $HERE/video-recorder.sysusers.conf"

CONF=/etc/video-recorder/video-recorder.toml
old_conf=$(dfs "cat $CONF")
choose_hash "$(config_hash <<<"$old_conf")"
render_config "$CONFIG" "$HASH" >"$S/video-recorder.toml"
sha256_of "$S/video-recorder.toml" >"$S/record"
CONF_DEST=$CONF
if [[ -n $old_conf ]] && ! cmp -s <(printf '%s\n' "$old_conf") "$S/video-recorder.toml"; then
  CONF_DEST=$CONF.new
  say "    $CONF is already in the image: kept; ours goes to $CONF_DEST"
fi

cat >"$S/video-recorder.txt" <<EOF
video-recorder $(date -u +%Y-%m-%d) — installed in this image's root file system:

  /usr/local/bin/video-recorder        the program
  /etc/video-recorder/video-recorder.toml   its settings (camera, port, password hash)
  /etc/systemd/system/video-recorder.service   started at boot
  /var/lib/video-recorder/clips        the clips

Open http://<this Pi's address>:$(config_port <"$S/video-recorder.toml")/ and log in as admin with the password
printed by \`make image\` (also in the .password file next to the image it made).
Update it later from the build machine: make deploy PI=user@<address>
EOF
: >"$S/ssh"

# --- Write the root file system --------------------------------------------------

say "==> writing into the root file system (debugfs)"
{
  for d in /usr/local /usr/local/bin /usr/lib/sysusers.d /etc/systemd/system \
    /etc/systemd/system/multi-user.target.wants /etc/video-recorder; do
    if ! exists "$d"; then
      printf 'mkdir %s\nsif %s mode 040755\nsif %s uid 0\nsif %s gid 0\n' "$d" "$d" "$d" "$d"
    fi
  done
  put() { # LOCAL PATH MODE GID
    printf 'rm %s\nwrite %s %s\nsif %s mode %s\nsif %s uid 0\nsif %s gid %s\n' "$2" "$S/$1" "$2" "$2" "$3" "$2" "$2" "$4"
  }
  put video-recorder /usr/local/bin/video-recorder 0100755 0
  put video-recorder.service /etc/systemd/system/video-recorder.service 0100644 0
  put sysusers.conf /usr/lib/sysusers.d/video-recorder.conf 0100644 0
  put video-recorder.toml "$CONF_DEST" 0100640 "$SVC_ID"
  if [[ $CONF_DEST == "$CONF" ]]; then
    put record /etc/video-recorder/.video-recorder.toml.sha256 0100644 0
  fi
  link=/etc/systemd/system/multi-user.target.wants/video-recorder.service
  printf 'rm %s\nsymlink %s /etc/systemd/system/video-recorder.service\n' "$link" "$link"
  # /usr newer than /etc/.updated: systemd's ConditionNeedsUpdate then runs
  # systemd-sysusers (and the other update services) once at first boot.
  printf 'sif /usr mtime @%s\n' "$(date +%s)"
} >"$WORK/debugfs.cmd"
debugfs -w -f "$WORK/debugfs.cmd" "$ROOT_FS" >"$WORK/debugfs.out" 2>&1 || die "debugfs failed: $(tail -n5 "$WORK/debugfs.out")"

# debugfs carries on after a failed command: check every file it wrote.
check() { # LOCAL PATH MODE UID GID
  local st
  st=$(dfs "stat $2")
  if [[ $(dfs "cat $2" | sha256sum | cut -d' ' -f1) != $(sha256_of "$S/$1") ]] ||
    ! [[ $st =~ Mode:\ +0?$3\  && $st =~ User:\ +$4\ +Group:\ +$5\  ]]; then
    die "$2 did not land in the image intact (root file system full?): $(grep -i -m3 'error\|no space\|already\|not found' "$WORK/debugfs.out" | tr '\n' ' ')"
  fi
}
check video-recorder /usr/local/bin/video-recorder 755 0 0
check video-recorder.service /etc/systemd/system/video-recorder.service 644 0 0
check sysusers.conf /usr/lib/sysusers.d/video-recorder.conf 644 0 0
check video-recorder.toml "$CONF_DEST" 640 0 "$SVC_ID"
dfs "stat $link" | grep -q 'Fast link dest: "/etc/systemd/system/video-recorder.service"' ||
  die "the unit's enablement link $link is missing"
e2fsck -fn "$ROOT_FS" >"$WORK/e2fsck.out" 2>&1 || die "the root file system does not check clean after writing: $(tail -n5 "$WORK/e2fsck.out")"

# --- The boot partition ----------------------------------------------------------

mcopy -o -i "$BOOT_FS" "$S/video-recorder.txt" ::video-recorder.txt || die "cannot write video-recorder.txt to the boot partition"
if [[ $SSH == 1 ]]; then
  mcopy -o -i "$BOOT_FS" "$S/ssh" ::ssh || die "cannot write the ssh file to the boot partition"
  say "    sshd enabled at first boot (boot partition file 'ssh')"
fi

mv -f -- "$TMP" "$OUT"
say "==> $OUT: video-recorder ($arch, $(wc -c <"$bin") bytes) installed and enabled; user video-recorder (id $SVC_ID) at first boot"
if [[ -n $NEW_PASSWORD ]]; then
  printf '%s\n' "$NEW_PASSWORD" >"$OUT.password.tmp"
  mv -f -- "$OUT.password.tmp" "$OUT.password"
  say ""
  say "  admin password (shown once; also in $OUT.password, mode 0600):"
  say ""
  say "      $NEW_PASSWORD"
  say ""
fi
