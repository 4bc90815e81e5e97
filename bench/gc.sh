#!/usr/bin/env bash
# The garbage collector, measured (issue: garbage collection and coalescing):
#  1. sparse coalesce: a 4 GiB VDI whose leaf holds 1 GiB written as 8-sector runs scattered over
#     1016 blocks, its snapshot deleted; `smdriver gc` merges it into its base (one
#     snapshot-and-coalesce round, then the leaf), timed as a whole (process start, scan,
#     journals, merge, relink, records), page cache dropped first; beside it `vhd coalesce` of the
#     same leaf (the engine alone) and `cp` of the leaf file (the bytes moved). Goal: under 5 s.
#  2. steady writes: a VDI activated read-write, fio (ioengine=nbd) writing 4 KiB at random
#     without pause, a snapshot every SNAP_EVERY seconds with the previous one deleted, for
#     DURATION seconds, collectors started by the SMAPI calls as on a host; the chain depth is
#     sampled every second (goal: at most 3) and the collectors' pauses of the disk are read from
#     SMlog (the longest is reported). fio reads back what it wrote as it goes (crc32c,
#     verify_backlog) and fails on any mismatch.
# Usage: sudo bench/gc.sh   (writes bench/results-gc-<date>.md)
# Knobs: RUNS (3), DURATION (600), SNAP_EVERY (30), FIO_IOPS (2000), BIN (skip the build),
#        BENCH_DIR (/var/tmp), QUICK=1 (1 run, 60 s with a snapshot every 10 s).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
RUNS=${RUNS:-3}; DURATION=${DURATION:-600}; SNAP_EVERY=${SNAP_EVERY:-30}; FIO_IOPS=${FIO_IOPS:-2000}
if [ "${QUICK:-0}" = 1 ]; then RUNS=1; DURATION=60; SNAP_EVERY=10; fi
for tool in fio nbdcopy qemu-img; do
  command -v $tool >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fio libnbd-bin qemu-utils >/dev/null; break; }
done
if [ -z "${BIN:-}" ]; then
  for p in smdriver swiftsm-datapath vhd vhd-bench; do swift build -c release -j 2 --scratch-path .build-bench --product $p >/dev/null; done
  BIN=$(swift build -c release --scratch-path .build-bench --show-bin-path)
fi
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/swiftsm-bench-gc.XXXXXX")
export SWIFTSM_RUN_DIR=$(mktemp -d /tmp/smb.XXXXXX)
cleanup() {
  for d in "$SWIFTSM_RUN_DIR"/datapath/*/*/; do [ -f "$d/pid" ] && kill "$(cat "$d/pid")" 2>/dev/null; done
  pkill -f "smdriver --driver ext gc" 2>/dev/null || true
  [ -n "${srdir:-}" ] && umount "$srdir" 2>/dev/null || true
  [ -n "${loop:-}" ] && losetup -d "$loop" 2>/dev/null || true
  rm -rf "$work" "$SWIFTSM_RUN_DIR"
}
trap cleanup EXIT
drop() { sync; if [ -w /proc/sys/vm/drop_caches ]; then echo 3 > /proc/sys/vm/drop_caches; fi; }
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
sr=$(cat /proc/sys/kernel/random/uuid)
# A device-mode EXT SR as on a host: sr_create formats a block device (here a loop device over a
# sparse image) ext4 and sr_attach mounts it under the run directory, with SwiftSM's mount
# options (the root filesystem here is mounted with online discard, which makes every unlink
# of a large file wait for the discards).
truncate -s 32G "$work/sr.img"
loop=$(losetup -f --show "$work/sr.img")
srdir="$SWIFTSM_RUN_DIR/sr-mount/$sr"
call() { # COMMAND [json] -> methodResponse on stdout
  "$BIN/smdriver" --driver ext "$(python3 scripts/smapi-request.py "$1" "$sr" "$loop" "${2:-{\}}")"
}
uuid_of() { python3 scripts/smapi-request.py --uuid "$1"; }
vdi_args() { printf '{"vdi_uuid": "%s", "vdi_location": "%s", "driver_params": {}%s}' "$1" "$1" "${2:-}"; }
new_vdi() { uuid_of "$(call vdi_create "{\"args\": [\"$1\", \"bench\", \"\", \"\", \"false\", \"19700101T00:00:00Z\", \"\", \"false\"], \"vdi_type\": \"user\", \"vdi_sm_config\": {}}")"; }
export SWIFTSM_GC_AUTOSTART=0
call sr_create '{"args": ["0"]}' >/dev/null
call sr_attach >/dev/null

# 1. Sparse coalesce through the collector.
v=$(new_vdi $((4096 << 20)))
s=$(uuid_of "$(call vdi_snapshot "$(vdi_args "$v")")")
"$BIN/vhd-bench" fill-sparse "$srdir/$v.vhd" --blocks 1016 --runs 256 --sectors 8 --seed 11 >/dev/null
call vdi_delete "$(vdi_args "$s")" >/dev/null
base=$(basename "$(ls "$srdir"/*.vhd | grep -v "$v")" .vhd)
mkdir -p "$work/keep"; cp --sparse=always "$srdir/$v.vhd" "$srdir/$base.vhd" "$work/keep/"
expect=$("$BIN/vhd" cat "$srdir/$v.vhd" | md5sum | cut -d' ' -f1)
restore() { rm -f "$srdir"/*.vhd "$srdir"/journal-* "$srdir"/OLD_*; cp --sparse=always "$work/keep/$v.vhd" "$work/keep/$base.vhd" "$srdir/"; }
declare -a t_gc t_vhd t_cp
for r in $(seq "$RUNS"); do
  restore; drop; t0=$(now); "$BIN/smdriver" --driver ext gc --sr "$sr" > "$work/gc.out"; sync; t1=$(now)
  t_gc+=("$(echo "$t1 - $t0" | bc -l)")
  grep -q "leaf-coalesced 1" "$work/gc.out" || { cat "$work/gc.out"; echo "the collector did not merge the leaf" >&2; exit 1; }
  [ "$("$BIN/vhd" cat "$srdir/$v.vhd" | md5sum | cut -d' ' -f1)" = "$expect" ] || { echo "content changed" >&2; exit 1; }
  restore; drop; t0=$(now); "$BIN/vhd" coalesce -n "$srdir/$v.vhd" >/dev/null; sync; t1=$(now)
  t_vhd+=("$(echo "$t1 - $t0" | bc -l)")
  restore; drop; t0=$(now); cp "$srdir/$v.vhd" "$work/copy.vhd"; sync; t1=$(now); rm -f "$work/copy.vhd"
  t_cp+=("$(echo "$t1 - $t0" | bc -l)")
done
restore
gc_med=$(printf '%s\n' "${t_gc[@]}" | median); vhd_med=$(printf '%s\n' "${t_vhd[@]}" | median); cp_med=$(printf '%s\n' "${t_cp[@]}" | median)
call vdi_delete "$(vdi_args "$v")" >/dev/null
"$BIN/smdriver" --driver ext gc --sr "$sr" >/dev/null

# 2. Steady random writes, snapshots every SNAP_EVERY s, collectors started by the SMAPI calls.
export SWIFTSM_GC_AUTOSTART=1
d=$(new_vdi $((1024 << 20)))
rw=", \"args\": [\"true\"]"
attach=$(call vdi_attach "$(vdi_args "$d" "$rw")")
call vdi_activate "$(vdi_args "$d" "$rw")" >/dev/null
sock=$(python3 -c 'import sys, xmlrpc.client; print(xmlrpc.client.loads(sys.argv[1])[0][0]["params_nbd"])' "$attach")
sock=${sock#nbd:unix:}; sock=${sock%:exportname=*}
fio --name=steady --ioengine=nbd --uri="nbd+unix:///$d?socket=$sock" --rw=randwrite --bs=4k --iodepth=4 \
    --size=512m --time_based --runtime="$DURATION" --rate_iops="$FIO_IOPS" --verify=crc32c --verify_backlog=4096 --verify_state_save=0 \
    --do_verify=0 --output="$work/fio.out" >/dev/null 2>&1 &
fio_pid=$!
start=$(now); last_snap=$start; prev=""; snaps=0; max_depth=0; : > "$work/depths"
while kill -0 $fio_pid 2>/dev/null; do
  dd=$("$BIN/vhd" query -d -n "$srdir/$d.vhd" 2>/dev/null | grep -oE '[0-9]+' | tail -1 || echo 0)
  echo "$dd" >> "$work/depths"; [ "${dd:-0}" -gt "$max_depth" ] && max_depth=$dd
  if [ "$(echo "$(now) - $last_snap >= $SNAP_EVERY" | bc -l)" = 1 ]; then
    snap=$(uuid_of "$(call vdi_snapshot "$(vdi_args "$d")")"); snaps=$((snaps + 1))
    [ -n "$prev" ] && call vdi_delete "$(vdi_args "$prev")" >/dev/null
    prev=$snap; last_snap=$(now)
  fi
  sleep 1
done
# fio reads back what it wrote as it goes (verify_backlog) and fails on any mismatch.
wait $fio_pid && verified=yes || verified=NO
grep -qi 'verify.*\(bad\|fail\)' "$work/fio.out" && verified=NO
write_iops=$(grep -oP 'write: IOPS=\K[0-9.k]+' "$work/fio.out" | head -1)
pauses=$(grep -ohP 'was paused \K[0-9.]+' "$SWIFTSM_RUN_DIR/SMlog" | sort -g)
# Every hold of the disk's requests, the snapshots' pauses included.
holds=$(grep -ohP 'held its requests \K[0-9.]+' "$SWIFTSM_RUN_DIR/SMlog" | sort -g)
nholds=$(printf '%s\n' $holds | grep -c . || true)
longest_hold=$(printf '%s\n' $holds | tail -1); longest_hold=${longest_hold:-0}
npauses=$(printf '%s\n' $pauses | grep -c . || true)
longest=$(printf '%s\n' $pauses | tail -1); longest=${longest:-0}
collectors=$(grep -c 'GC: started' "$SWIFTSM_RUN_DIR/SMlog" || true)
merged=$(grep -c 'GC: merged' "$SWIFTSM_RUN_DIR/SMlog" || true)
leafs=$(grep -c 'which now carries its uuid' "$SWIFTSM_RUN_DIR/SMlog" || true)
call vdi_deactivate "$(vdi_args "$d" "$rw")" >/dev/null
call sr_detach >/dev/null

date=$(date +%F)
out="bench/results-gc-$date.md"
[ "${QUICK:-0}" = 1 ] && out="$work/../results-gc-quick.md"
{
  echo "# Garbage collector benchmark, $date"
  echo
  echo "Machine: $(nproc) vCPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/ {print $2}') GiB; $(uname -r)."
  echo
  echo "## 1. Sparse coalesce (1 GiB in 8-sector runs over 1016 blocks of a 4 GiB leaf), page cache dropped"
  echo
  echo "| | runs (s) | median (s) |"
  echo "|---|---|---|"
  echo "| \`smdriver gc\` (whole collector: round + leaf) | ${t_gc[*]} | $gc_med |"
  echo "| \`vhd coalesce\` (engine alone) | ${t_vhd[*]} | $vhd_med |"
  echo "| \`cp\` of the leaf file | ${t_cp[*]} | $cp_med |"
  echo
  echo "Goal: under 5 s with the collector's overhead: $(echo "$gc_med < 5" | bc -l | sed 's/1/met/;s/0/MISSED/')."
  echo
  echo "## 2. Steady random writes for $DURATION s, snapshot every $SNAP_EVERY s, older one deleted"
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| fio randwrite 4 KiB, iodepth 4, rate $FIO_IOPS IOPS | $write_iops IOPS achieved |"
  echo "| snapshots taken | $snaps |"
  echo "| collectors started / merges / leaf coalesces | $collectors / $merged / $leafs |"
  echo "| deepest chain of the disk (sampled each second) | $max_depth (goal ≤ 3: $([ "$max_depth" -le 3 ] && echo met || echo MISSED)) |"
  echo "| pauses of the disk by the collector | $npauses, longest $longest s |"
  echo "| every pause of the disk (snapshots included) | $nholds, longest $longest_hold s |"
  echo "| written blocks read back and verified by fio over NBD (crc32c, verify_backlog) | $verified |"
} > "$out"
cp "$SWIFTSM_RUN_DIR/SMlog" "${BENCH_DIR:-/var/tmp}/swiftsm-bench-gc.SMlog"
cat "$out"
