#!/usr/bin/env bash
# ISCSIStore (libiscsi, our sessions and poll loop) side by side with libiscsi's own iscsi-perf
# and qemu's libiscsi driver (qemu-img convert), on one LUN of a throw-away tgt target on
# loopback (a sparse file on BENCH_DIR):
#   sequential write of SIZE_MB: iscsi-bench seqwrite (8 MiB calls: 8 commands of 1 MiB in
#     flight) vs qemu-img convert -n of a raw file onto the LUN;
#   sequential read: iscsi-bench seqread (8 MiB calls) vs iscsi-perf -b 2048 -m 8 (1 MiB
#     requests, 8 in flight);
#   random 4 KiB reads at 1 and 8 in flight: iscsi-bench randread --threads 1|8 (a session per
#     thread) vs iscsi-perf -r -b 8 -m 1|8 (one session, async);
#   random 4 KiB writes, 8 threads: iscsi-bench only (libiscsi-bin has no writing tool).
# Usage: sudo bench/iscsi.sh   (writes bench/results-iscsi-<date>.md)
# Knobs: RUNS (3), SIZE_MB (1024), SECONDS_RANDOM (10), BENCH_DIR (/var/tmp), BIN (skip the build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
RUNS=${RUNS:-3}; SIZE_MB=${SIZE_MB:-1024}; SECONDS_RANDOM=${SECONDS_RANDOM:-10}
for p in tgt libiscsi-bin qemu-utils qemu-block-extra bc; do
  dpkg-query -W -f='${Status}' $p 2>/dev/null | grep -q "install ok installed" || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $p >/dev/null
done
if [ -z "${BIN:-}" ]; then
  swift build -c release -j 2 --scratch-path .build-bench --product iscsi-bench >/dev/null
  BIN=$(swift build -c release --scratch-path .build-bench --show-bin-path)
fi
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/swiftsm-bench-iscsi.XXXXXX")
cleanup() { scripts/iscsi-test-target.sh stop "$work/target" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
port=${PORT:-}
if [ -z "$port" ]; then
  for p in $(seq 25260 2 25400); do ss -Htln "sport = :$p" | grep -q . || { port=$p; break; }; done
fi
iqn=iqn.2026-12.org.swiftsm.bench:lun
scripts/iscsi-test-target.sh start "$work/target" "$port" "$iqn" "$SIZE_MB" 1 >/dev/null
url="iscsi://127.0.0.1:$port/$iqn/1"
head -c $((SIZE_MB << 20)) /dev/urandom > "$work/data.raw"
now() { date +%s.%N; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
ours() { "$BIN/iscsi-bench" "127.0.0.1:$port" "$iqn" 1 "$@" | awk '{print $2, $3}'; }
# iscsi-perf's last "iops average N" over its run; MiB/s from it and the request size.
perf_iops() { iscsi-perf "$@" "$url" 2>&1 | tr '\r' '\n' | sed -n 's/.*iops average \([0-9]*\).*/\1/p' | tail -1; }
load() { awk '{print $1}' /proc/loadavg; }

declare -A r
for i in $(seq 1 "$RUNS"); do
  drop; r[sw_ours]+=" $(ours seqwrite --size "$SIZE_MB" --request 8192 | cut -d' ' -f1)"
  drop; t0=$(now); qemu-img convert -n -f raw -O raw "$work/data.raw" "$url"; t1=$(now)
  r[sw_qemu]+=" $(printf '%.1f' "$(echo "$SIZE_MB / ($t1 - $t0)" | bc -l)")"
  drop; r[sr_ours]+=" $(ours seqread --size "$SIZE_MB" --request 8192 | cut -d' ' -f1)"
  drop; r[sr_perf]+=" $(perf_iops -t "$SECONDS_RANDOM" -b 2048 -m 8)"
  for d in 1 8; do
    drop; r[rr${d}_ours]+=" $(ours randread --size "$SIZE_MB" --request 4 --threads $d --seconds "$SECONDS_RANDOM" | cut -d' ' -f2)"
    drop; r[rr${d}_perf]+=" $(perf_iops -t "$SECONDS_RANDOM" -r -b 8 -m $d)"
  done
  r[rw8_ours]+=" $(ours randwrite --size "$SIZE_MB" --request 4 --threads 8 --seconds "$SECONDS_RANDOM" | cut -d' ' -f2)"
  r[load]+=" $(load)"
done
m() { echo "${r[$1]}" | median; }
ratio() { printf '%.2f' "$(echo "$1 / $2" | bc -l)"; }
sr_perf=$(m sr_perf)   # 1 MiB requests: IOPS = MiB/s
out="bench/results-iscsi-$(date +%Y-%m-%d).md"
{
  echo "# iSCSI: ISCSIStore vs libiscsi's iscsi-perf and qemu-img's libiscsi driver"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r);"
  echo "tgt $(dpkg-query -W -f='${Version}' tgt) on loopback, one $SIZE_MB MiB LUN backed by a sparse file on $(df -T "$work" | awk 'NR==2 {print $2}'),"
  echo "libiscsi $(dpkg-query -W -f='${Version}' libiscsi7), qemu $(dpkg-query -W -f='${Version}' qemu-utils). Medians of $RUNS runs;"
  echo "page cache dropped before each; 1-minute load average at the end of each run:${r[load]} (the machine is shared)."
  echo
  echo "| $SIZE_MB MiB | ISCSIStore (iscsi-bench) | reference | ratio |"
  echo "|---|---|---|---|"
  echo "| sequential write, MiB/s (8 MiB calls) | $(m sw_ours) | $(m sw_qemu) (qemu-img convert -n) | $(ratio "$(m sw_ours)" "$(m sw_qemu)") |"
  echo "| sequential read, MiB/s (8 MiB calls) | $(m sr_ours) | $sr_perf (iscsi-perf -b 2048 -m 8) | $(ratio "$(m sr_ours)" "$sr_perf") |"
  echo "| random 4 KiB reads, IOPS, 1 in flight | $(m rr1_ours) | $(m rr1_perf) (iscsi-perf -r -b 8 -m 1) | $(ratio "$(m rr1_ours)" "$(m rr1_perf)") |"
  echo "| random 4 KiB reads, IOPS, 8 in flight | $(m rr8_ours) (8 threads) | $(m rr8_perf) (iscsi-perf -r -b 8 -m 8) | $(ratio "$(m rr8_ours)" "$(m rr8_perf)") |"
  echo "| random 4 KiB writes, IOPS, 8 threads | $(m rw8_ours) | — | |"
  echo
  echo "Runs: seq write${r[sw_ours]} /${r[sw_qemu]} ; seq read${r[sr_ours]} /${r[sr_perf]} ;"
  echo "rand read 1${r[rr1_ours]} /${r[rr1_perf]} ; rand read 8${r[rr8_ours]} /${r[rr8_perf]} ; rand write 8${r[rw8_ours]} ."
} > "$out"
cat "$out"
