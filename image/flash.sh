#!/usr/bin/env bash
# make flash IMAGE=video-recorder.img DEV=/dev/sdX [YES=1]: write an image to
# an SD card, then read it back and compare checksums.
#
# Refuses, before anything is written: a device that is not a whole disk, a
# disk holding the running system (/, /boot, /boot/firmware, /usr), a disk
# with anything mounted or used as swap (also through device-mapper), a disk
# that is not removable (SD cards in a built-in mmc slot count as
# removable), and a disk smaller than the image. Asks for "yes" unless YES=1.
#
# SYSFS, MOUNTS and SWAPS (default /sys, /proc/mounts, /proc/swaps) can point
# to a fake view, so the checks are tested on files, never on a real disk.
set -euo pipefail

PROG=${0##*/}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=image/lib.sh
. "$HERE/lib.sh"

IMAGE=${IMAGE:-}
DEV=${DEV:-}
YES=${YES:-}
SYSFS=${SYSFS:-/sys}
MOUNTS=${MOUNTS:-/proc/mounts}
SWAPS=${SWAPS:-/proc/swaps}

[[ -n $IMAGE && -n $DEV ]] || die "usage: make flash IMAGE=video-recorder.img DEV=/dev/sdX [YES=1]"
[[ -f $IMAGE && -r $IMAGE ]] || die "IMAGE=$IMAGE: no such readable file"
case $IMAGE in *.xz | *.gz | *.zip | *.zst) die "IMAGE=$IMAGE is compressed: decompress it first" ;; esac
dev=$(realpath -e -- "$DEV") || die "DEV=$DEV does not exist"
# With the real /sys only a block device will do; a fake view (tests) maps
# its names to plain files.
[[ $SYSFS != /sys || -b $dev ]] || die "DEV=$DEV is not a block device"
name=$(basename -- "$dev")
disk=$SYSFS/block/$name

if [[ ! -d $disk ]]; then
  for p in "$SYSFS"/block/*/"$name"/partition; do
    [[ -e $p ]] || continue
    parent=$(basename -- "$(dirname -- "$(dirname -- "$p")")")
    die "$DEV is a partition of $parent: give the whole disk (DEV=/dev/$parent)"
  done
  die "$DEV is not a disk ($disk does not exist)"
fi

# The disk's own name, its partitions', and whatever sits on them
# (device-mapper, md): anything mounted under one of these names uses it.
names=("$name")
for p in "$disk"/*/partition; do
  [[ -e $p ]] && names+=("$(basename -- "$(dirname -- "$p")")")
done
for h in "$disk"/holders/* "$disk"/*/holders/*; do
  [[ -e $h ]] && names+=("$(basename -- "$h")")
done
is_ours() { # NAME
  local n
  for n in "${names[@]}"; do [[ $n == "$1" ]] && return 0; done
  return 1
}
dev_name() { # /dev path as in /proc/mounts → kernel name
  [[ $1 == /* ]] || return 1
  basename -- "$(realpath -m -- "$1")"
}

# The whole disk under a sysfs block device directory, through partitions and
# device-mapper/md slaves.
disks_under() { # SYSFS_DIR
  local d s
  d=$(realpath -e -- "$1") || return 0
  if [[ -e $d/partition ]]; then
    basename -- "$(dirname -- "$d")"
  elif compgen -G "$d/slaves/*" >/dev/null; then
    for s in "$d"/slaves/*; do disks_under "$s"; done
  else
    basename -- "$d"
  fi
}

system_disks() {
  local path majmin src mnt _
  for path in / /boot /boot/firmware /usr; do
    [[ -e $path ]] || continue
    majmin=$(stat -c '%Hd:%Ld' -- "$path")
    [[ -e $SYSFS/dev/block/$majmin ]] && disks_under "$SYSFS/dev/block/$majmin"
  done
  # Where the device number is not a disk (overlay, /dev/root): the mounts.
  while read -r src mnt _; do
    case $mnt in / | /boot | /boot/firmware | /usr) ;; *) continue ;; esac
    src=$(dev_name "$src") || continue
    if [[ -d $SYSFS/class/block/$src ]]; then
      disks_under "$SYSFS/class/block/$src"
    elif [[ -d $SYSFS/block/$src ]]; then
      echo "$src"
    fi
  done <"$MOUNTS"
}

refuse_unsafe() {
  local d src mnt _
  while read -r d; do
    [[ $d != "$name" ]] || die "$DEV is the disk this system runs from: refusing to overwrite it"
  done < <(system_disks | sort -u)

  while read -r src mnt _; do
    d=$(dev_name "$src") || continue
    if is_ours "$d"; then
      die "$src is mounted on $(printf '%b' "$mnt"): unmount everything on $DEV first (umount $src)"
    fi
  done <"$MOUNTS"
  if [[ -r $SWAPS ]]; then
    while read -r src _; do
      d=$(dev_name "$src") || continue
      ! is_ours "$d" || die "$src is in use as swap: swapoff $src first"
    done < <(tail -n +2 "$SWAPS")
  fi

  local removable
  removable=$(cat "$disk/removable" 2>/dev/null || echo '?')
  if [[ $removable != 1 ]]; then
    # A card in a laptop's own SD slot is an mmc disk with removable=0.
    if [[ ! ($name == mmcblk* && $(cat "$disk/device/type" 2>/dev/null) == SD) ]]; then
      die "$DEV is not removable ($disk/removable is $removable): refusing to write to a fixed disk"
    fi
  fi
}

refuse_unsafe

img_bytes=$(stat -c %s -- "$IMAGE")
dev_bytes=$(($(cat "$disk/size") * 512)) # sysfs counts 512-byte sectors
((dev_bytes > 0)) || die "$DEV has no medium (size 0): insert the card"
((img_bytes <= dev_bytes)) || die "$IMAGE ($img_bytes bytes) does not fit on $DEV ($dev_bytes bytes)"

model=$(cat "$disk/device/vendor" "$disk/device/model" 2>/dev/null | tr -s ' \n' ' ' || true)
what="$DEV (${model:+${model% } }$((dev_bytes / 1000000)) MB)"
if [[ $YES != 1 ]]; then
  printf 'Write %s (%d MB) to %s?\nEverything on %s is lost. Type yes to go on: ' \
    "$IMAGE" $((img_bytes / 1000000)) "$what" "$DEV"
  answer=
  read -r answer || true
  [[ -t 0 ]] || echo
  [[ $answer == yes ]] || die "not confirmed: nothing written"
  # Something may have mounted it while we waited (desktop automount).
  refuse_unsafe
fi
[[ -w $dev ]] || die "cannot write $DEV: run it as root (sudo make flash ...)"

say "==> writing $IMAGE to $what"
dd if="$IMAGE" of="$dev" bs=4M conv=fsync status=progress || die "writing $DEV failed"
sync

say "==> verifying: reading $img_bytes bytes back from $DEV"
want=$(sha256_of "$IMAGE")
if [[ -b $dev ]] && ((img_bytes % 512 == 0)); then
  # O_DIRECT: from the card, not from the page cache we just filled.
  got=$(dd if="$dev" iflag=direct,count_bytes bs=4M count="$img_bytes" status=none | sha256sum | cut -d' ' -f1)
else
  got=$(head -c "$img_bytes" -- "$dev" | sha256sum | cut -d' ' -f1)
fi
[[ $got == "$want" ]] || die "VERIFY FAILED: $DEV reads back sha256 $got, the image is $want (a failing card?)"
say "==> done: $DEV holds $IMAGE (sha256 $want verified); it can be removed"
