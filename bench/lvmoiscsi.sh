#!/usr/bin/env bash
# The LVM-over-iSCSI SR (smdriver --driver lvmoiscsi: VHDs in LVs of a VG on one LUN, reached
# through libiscsi) side by side with what a user would otherwise run, on throw-away tgt
# targets on loopback (sparse LUN files on BENCH_DIR):
#   sequential write and read of SIZE_MB through the data path of a new VDI (nbdcopy) vs raw
#     libiscsi on a LUN of SIZE_MB of a second target: qemu-img convert -n onto its iscsi://
#     URL (writes), iscsi-perf -b 2048 -m 8 for the time our read took (reads), and one pass
#     read with nbdcopy from qemu-nbd -f raw serving the iscsi:// URL;
#   random 4 KiB reads and writes at iodepth 16 (fio --ioengine=nbd) through the data path vs
#     iscsi-perf -r -b 8 -m 16 (reads) and, as Debian has no raw libiscsi writer, the same fio
#     job against qemu-nbd -f raw serving the iscsi:// URL (qemu's libiscsi driver) (writes;
#     reads too, for a reference with an NBD hop as ours);
#   vdi_snapshot and vdi_clone whole-call latency (smdriver) on the LVM SR vs on an EXT SR (a
#     folder), 1 MiB written through the data path before each call;
#   sr_scan of an LVM SR holding SCAN_VDIS VDIs of 8 MiB (on a second LUN) and of an EXT SR
#     holding as many, and how long creating them took.
# Usage: sudo bench/lvmoiscsi.sh   (writes bench/results-lvmoiscsi-<date>.md)
# Knobs: RUNS (3), SIZE_MB (1024), FIO_SECONDS (20), CALLS (10), SNAP_MB (10240), SCAN_VDIS
#   (1000), SCAN_RUNS (5), SKIP_EXT_SCAN (0), LUN_MB (262144, sparse), BENCH_DIR (/var/tmp),
#   PORT (first free even port from 25320), BIN (skip the build), OUT (the results file).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
RUNS=${RUNS:-3}; SIZE_MB=${SIZE_MB:-1024}; FIO_SECONDS=${FIO_SECONDS:-20}; CALLS=${CALLS:-10}
SNAP_MB=${SNAP_MB:-10240}; SCAN_VDIS=${SCAN_VDIS:-1000}; SCAN_RUNS=${SCAN_RUNS:-5}; LUN_MB=${LUN_MB:-262144}
for p in tgt libiscsi-bin qemu-utils qemu-block-extra nbd-client libnbd-bin fio bc; do
  dpkg-query -W -f='${Status}' $p 2>/dev/null | grep -q "install ok installed" || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $p >/dev/null
done
if [ -z "${BIN:-}" ]; then
  for p in smdriver swiftsm-datapath; do swift build -c release -j 1 --scratch-path .build-bench --product $p >/dev/null; done
  BIN=$(swift build -c release --scratch-path .build-bench --show-bin-path)
fi
load() { cut -d' ' -f1-3 /proc/loadavg; }
load_before=$(load); started=$(date -u '+%Y-%m-%d %H:%M UTC'); t_start=$(date +%s)
busy_before=$(ps -eo pcpu=,comm= --sort=-pcpu | head -4 | awk '$1 > 5 {printf "%s %s%%; ", $2, $1}')
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/swiftsm-bench-lvm.XXXXXX"); run=""
# The run directory must be short: datapath sockets live below it.
run=$(mktemp -d /tmp/sbl.XXXX)
export SWIFTSM_RUN_DIR="$run" SWIFTSM_GC_AUTOSTART=0
cleanup() {
  [ -f "$work/q.pid" ] && kill "$(cat "$work/q.pid")" 2>/dev/null
  # Only the data paths this run started, by their pid files.
  for p in $(cat "$run"/datapath/*/*/pid 2>/dev/null); do kill "$p" 2>/dev/null; done
  scripts/iscsi-test-target.sh stop "$work/target" >/dev/null 2>&1 || true
  scripts/iscsi-test-target.sh stop "$work/raw" >/dev/null 2>&1 || true
  rm -rf "$work" "$run"
}
trap cleanup EXIT
free_port() { local p; for p in $(seq "$1" 2 $(($1 + 200))); do ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }; done; }
port=${PORT:-$(free_port 25320)}
iqn=iqn.2026-12.org.swiftsm.bench:lvm; raw_iqn=iqn.2026-12.org.swiftsm.bench:raw
# The SR target: LUN 1 for the data path and snapshot/clone SR, LUN 2 for the scan SR.
scripts/iscsi-test-target.sh start "$work/target" "$port" "$iqn" "$LUN_MB" 2 >/dev/null
raw_port=$(free_port $((port + 2)))
scripts/iscsi-test-target.sh start "$work/raw" "$raw_port" "$raw_iqn" "$SIZE_MB" 1 >/dev/null
raw_url="iscsi://127.0.0.1:$raw_port/$raw_iqn/1"
now() { date +%s.%N; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
mbps() { printf '%.0f' "$(echo "$SIZE_MB / ($2 - $1)" | bc -l)"; }
ms() { printf "%.1f" "$(echo "($2 - $1) * 1000" | bc -l)"; }
# A member of a methodResponse's struct.
member() { python3 -c 'import sys,xmlrpc.client; (v,),_=xmlrpc.client.loads(sys.argv[1]); print(v[sys.argv[2]])' "$1" "$2"; }

# The SCSI ids of the target's LUNs, as sr_probe without SCSIid lists them (stderr, fault 107).
probe=$("$BIN/smdriver" --driver lvmoiscsi "$(python3 scripts/smapi-request.py sr_probe "$(cat /proc/sys/kernel/random/uuid)" /x \
  "{\"device_config\": {\"SRmaster\": \"true\", \"target\": \"127.0.0.1\", \"port\": \"$port\", \"targetIQN\": \"$iqn\"}}")" 2>&1 || true)
scsi_of() { python3 -c '
import re,sys
for lun in re.findall(r"<LUN>(.*?)</LUN>", sys.stdin.read(), re.S):
    if re.search(r"<LUNid>\s*%s\s*</LUNid>" % sys.argv[1], lun): print(re.search(r"<SCSIid>\s*(\S+?)\s*</SCSIid>", lun).group(1))' "$1" <<<"$probe"; }
scsi1=$(scsi_of 1); scsi2=$(scsi_of 2)
[ -n "$scsi1" ] && [ -n "$scsi2" ] || { echo "sr_probe listed no SCSI ids: $probe" >&2; exit 1; }

# SRs: lvm (LUN 1) and lvmscan (LUN 2) over iSCSI, ext and extscan in folders.
# call KIND SR COMMAND EXTRA-JSON prints the answer; the documents carry no session_ref, so
# smdriver makes no XenAPI callbacks (with one and no xapi it would fail, fault 154).
lvm_sr=$(cat /proc/sys/kernel/random/uuid); lvmscan_sr=$(cat /proc/sys/kernel/random/uuid)
ext_sr=$(cat /proc/sys/kernel/random/uuid); extscan_sr=$(cat /proc/sys/kernel/random/uuid)
dc() { echo "{\"SRmaster\": \"true\", \"target\": \"127.0.0.1\", \"port\": \"$port\", \"targetIQN\": \"$iqn\", \"SCSIid\": \"$1\"}"; }
# doc KIND SR COMMAND EXTRA-JSON prints the request document (made before a call is timed);
# call KIND SR COMMAND EXTRA-JSON prints the answer; timed KIND DOC runs smdriver on a document.
driver_of() { case $1 in lvm|lvmscan) echo lvmoiscsi;; *) echo ext;; esac; }
doc() {
  local kind=$1 sr=$2 command=$3 extra=${4:-"{}"}
  case $kind in
    lvm|lvmscan) extra=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["device_config"]=json.loads(sys.argv[2]); print(json.dumps(d))' \
                   "$extra" "$(dc "$([ "$kind" = lvm ] && echo "$scsi1" || echo "$scsi2")")") ;;
  esac
  python3 scripts/smapi-request.py "$command" "$sr" "$work/$kind" "$extra"
}
timed() {
  local r; r=$("$BIN/smdriver" --driver "$(driver_of "$1")" "$2")
  if grep -q "<fault>" <<<"$r"; then echo "$1: $r" >&2; exit 1; fi
  echo "$r"
}
call() { timed "$1" "$(doc "$@")"; }
sr_of() { case $1 in lvm) echo "$lvm_sr";; lvmscan) echo "$lvmscan_sr";; ext) echo "$ext_sr";; extscan) echo "$extscan_sr";; esac; }
mkdir -p "$work/ext" "$work/extscan"
for k in lvm ext; do
  call $k "$(sr_of $k)" sr_create '{"args": ["0"]}' >/dev/null
  call $k "$(sr_of $k)" sr_attach >/dev/null
done
create() { python3 scripts/smapi-request.py --uuid "$(call "$1" "$(sr_of "$1")" vdi_create "{\"args\": [\"$2\", \"$3\", \"\", \"\", \"false\", \"19700101T00:00:00Z\", \"\", \"false\"]}")"; }
vj() { echo "{\"vdi_uuid\": \"$1\", \"vdi_location\": \"$1\", \"args\": [\"true\"]}"; }
# up KIND VDI: attach and activate read-write; prints the nbd+unix URL of params_nbd.
up() {
  local a; a=$(call "$1" "$(sr_of "$1")" vdi_attach "$(vj "$2")"); call "$1" "$(sr_of "$1")" vdi_activate "$(vj "$2")" >/dev/null
  local p; p=$(member "$a" params_nbd)   # nbd:unix:<socket>:exportname=<vdi>
  local s=${p#nbd:unix:}; echo "nbd+unix:///${s##*:exportname=}?socket=${s%:exportname=*}"
}
down() { call "$1" "$(sr_of "$1")" vdi_deactivate "$(vj "$2")" >/dev/null; call "$1" "$(sr_of "$1")" vdi_detach "$(vj "$2")" >/dev/null; }
head -c $((SIZE_MB << 20)) /dev/urandom > "$work/data.raw"

fio_run() {   # URI randread|randwrite: "IOPS mean-latency-µs"
  fio --name=b --ioengine=nbd --uri="$1" --rw="$2" --bs=4k --iodepth=16 --size=$((SIZE_MB << 20)) \
      --runtime="$FIO_SECONDS" --time_based --ramp_time=2 --output-format=json --output="$work/fio.json" >"$work/fio.log" 2>&1
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))["jobs"][0][sys.argv[2]]; print(round(j["iops"]), round(j["clat_ns"]["mean"]/1000))' \
    "$work/fio.json" "${2#rand}"
}
# iscsi-perf's last "iops average N" over its run.
perf_iops() { iscsi-perf "$@" "$raw_url" 2>&1 | tr '\r' '\n' | sed -n 's/.*iops average \([0-9]*\).*/\1/p' | tail -1; }

declare -A w r iops lat loads
for i in $(seq "$RUNS"); do
  # The data path: a new VDI each run (the first write allocates every VHD block, as on a new disk).
  v=$(create lvm "$((SIZE_MB << 20))" "bench-$i"); nbd=$(up lvm "$v")
  # Writes are timed until the bytes are in the LUN's file: the data path's FLUSH and qemu's
  # final flush are SYNCHRONIZE CACHE; both are followed by a sync of the target's file system.
  drop; t0=$(now); nbdcopy --flush "$work/data.raw" "$nbd"; sync; t1=$(now); w[lvm]+="$(mbps $t0 $t1) "
  drop; t0=$(now); nbdcopy "$nbd" null:; t1=$(now); r[lvm]+="$(mbps $t0 $t1) "; read_s=$(echo "$t1 - $t0" | bc -l)
  if [ "$i" = 1 ]; then
    rm -f "$work/back.raw"; nbdcopy "$nbd" "$work/back.raw"; cmp -s "$work/back.raw" "$work/data.raw" || { echo "read back differs" >&2; exit 1; }; rm -f "$work/back.raw"
  fi
  drop; read -r a b < <(fio_run "$nbd" randread); iops[lvm_r]+="$a "; lat[lvm_r]+="$b "
  read -r a b < <(fio_run "$nbd" randwrite); iops[lvm_w]+="$a "; lat[lvm_w]+="$b "
  down lvm "$v"
  call lvm "$lvm_sr" vdi_delete "$(vj "$v")" >/dev/null
  # Raw libiscsi on a LUN of the same size: qemu-img writes, iscsi-perf reads for the time our
  # read took (one pass of the LUN, rounded up to whole seconds: iscsi-perf wraps around).
  drop; t0=$(now); qemu-img convert -n -f raw -O raw "$work/data.raw" "$raw_url"; sync; t1=$(now); w[raw]+="$(mbps $t0 $t1) "
  drop; r[raw]+="$(perf_iops -t "$(python3 -c 'import math,sys; print(max(1, math.ceil(float(sys.argv[1]))))' "$read_s")" -b 2048 -m 8) "
  drop; iops[raw_r]+="$(perf_iops -t "$FIO_SECONDS" -r -b 8 -m 16) "
  qemu-nbd -f raw -x b -k "$work/q.sock" --shared=16 --persistent "$raw_url" >"$work/q.log" 2>&1 &
  echo $! > "$work/q.pid"
  for _ in $(seq 200); do [ -S "$work/q.sock" ] && break; sleep 0.05; done
  drop; t0=$(now); nbdcopy "nbd+unix:///b?socket=$work/q.sock" null:; t1=$(now); r[qemu]+="$(mbps $t0 $t1) "
  drop; read -r a b < <(fio_run "nbd+unix:///b?socket=$work/q.sock" randread); iops[qemu_r]+="$a "; lat[qemu_r]+="$b "
  read -r a b < <(fio_run "nbd+unix:///b?socket=$work/q.sock" randwrite); iops[qemu_w]+="$a "; lat[qemu_w]+="$b "
  kill "$(cat "$work/q.pid")"; wait "$(cat "$work/q.pid")" 2>/dev/null || true; rm -f "$work/q.pid" "$work/q.sock"
  loads[data]+="$(awk '{print $1}' /proc/loadavg) "
done

# Whole-call latency of vdi_snapshot and vdi_clone of a SNAP_MB VDI with 1 MiB written
# (through the data path, untimed) before each call, LVM vs EXT.
head -c 1048576 /dev/urandom > "$work/mib.raw"
declare -A lsnap lclone
for k in lvm ext; do
  sr=$(sr_of $k)
  v=$(create $k "$((SNAP_MB << 20))" lat)
  j="{\"vdi_uuid\": \"$v\", \"vdi_location\": \"$v\", \"driver_params\": {}}"
  for i in $(seq "$CALLS"); do
    for op in snapshot clone; do
      nbd=$(up $k "$v"); qemu-io -f raw -c "write -P $((i % 256)) $((i << 20)) 1M" "$nbd" >/dev/null; down $k "$v"
      d=$(doc $k "$sr" vdi_$op "$j"); t0=$(now); timed $k "$d" >/dev/null; t1=$(now)
      if [ $op = snapshot ]; then lsnap[$k]+="$(ms $t0 $t1) "; else lclone[$k]+="$(ms $t0 $t1) "; fi
    done
  done
done
loads[calls]="$(awk '{print $1}' /proc/loadavg)"

# sr_scan of an SR holding SCAN_VDIS VDIs of 8 MiB: LVM on LUN 2 (each thick LV about 16 MiB), EXT in a folder.
declare -A mk mk_first mk_last scan
kinds="lvmscan"; [ "${SKIP_EXT_SCAN:-0}" = 1 ] || kinds="lvmscan extscan"
for k in $kinds; do
  call $k "$(sr_of $k)" sr_create '{"args": ["0"]}' >/dev/null
  call $k "$(sr_of $k)" sr_attach >/dev/null
  # One document for every call (the SR picks each VDI's uuid); only smdriver is timed.
  d=$(doc $k "$(sr_of $k)" vdi_create '{"args": ["8388608", "scan", "", "", "false", "19700101T00:00:00Z", "", "false"]}')
  each=""
  for i in $(seq "$SCAN_VDIS"); do t0=$(now); timed $k "$d" >/dev/null; t1=$(now); each+="$(ms $t0 $t1) "; done
  mk[$k]=$(tr ' ' '\n' <<<"$each" | awk '{s+=$1} END {printf "%.1f", s/1000}')
  mk_first[$k]=$(tr ' ' '\n' <<<"$each" | grep . | head -20 | median); mk_last[$k]=$(tr ' ' '\n' <<<"$each" | grep . | tail -20 | median)
  d=$(doc $k "$(sr_of $k)" sr_scan)
  for i in $(seq "$SCAN_RUNS"); do
    t0=$(now); timed $k "$d" >/dev/null; t1=$(now); scan[$k]+="$(ms $t0 $t1) "
  done
done
loads[scan]="$(awk '{print $1}' /proc/loadavg)"
load_after=$(load); t_end=$(date +%s)

ratio() { printf '%.2f' "$(echo "$1 / $2" | bc -l)"; }
m() { median <<<"$1"; }
out=${OUT:-"bench/results-lvmoiscsi-$(date +%Y-%m-%d).md"}
{
  echo "# LVM-over-iSCSI SR: data path vs raw libiscsi, snapshot and clone vs EXT, sr_scan of $SCAN_VDIS VDIs"
  echo
  echo "Started $started, $((t_end - t_start)) s in all. $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)),"
  echo "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r). Load average (1, 5, 15 min) before: $load_before; after: $load_after;"
  echo "1-minute load at the end of each data run: ${loads[data]}, after the calls: ${loads[calls]}, after the scans: ${loads[scan]}."
  echo "Busy processes at the start (over 5 % CPU): ${busy_before:-none}. The machine is shared with another engineer's builds and tests: expect noise."
  echo
  echo "tgt $(dpkg-query -W -f='${Version}' tgt) on loopback (LUN files sparse on $(df -T "$work" | awk 'NR==2 {print $2}')); libiscsi $(dpkg-query -W -f='${Version}' libiscsi7),"
  echo "qemu $(dpkg-query -W -f='${Version}' qemu-utils), fio $(fio --version). Thick SR (allocation default). Medians of $RUNS runs (calls: $CALLS, scans: $SCAN_RUNS);"
  echo "page cache dropped before each copy; writes timed until a sync of the target's file system returns."
  echo "The reference LUN is a second tgt target with one LUN of $SIZE_MB MiB; the SR's LUN is $LUN_MB MiB."
  echo
  echo "| $SIZE_MB MiB, one VDI | SwiftSM data path (NBD) | raw libiscsi | reference | ratio (goal ≥ 0.8) |"
  echo "|---|---:|---:|---|---:|"
  echo "| sequential write, MiB/s | $(m "${w[lvm]}") | $(m "${w[raw]}") | qemu-img convert -n to iscsi:// | $(ratio "$(m "${w[lvm]}")" "$(m "${w[raw]}")") |"
  echo "| sequential read, MiB/s | $(m "${r[lvm]}") | $(m "${r[raw]}") | iscsi-perf -b 2048 -m 8, for the time our read took | $(ratio "$(m "${r[lvm]}")" "$(m "${r[raw]}")") |"
  echo "| sequential read, MiB/s, one pass | $(m "${r[lvm]}") | $(m "${r[qemu]}") | nbdcopy from qemu-nbd -f raw iscsi:// (libiscsi through qemu, an NBD hop as ours) | $(ratio "$(m "${r[lvm]}")" "$(m "${r[qemu]}")") |"
  echo "| random 4 KiB reads, iodepth 16, IOPS | $(m "${iops[lvm_r]}") | $(m "${iops[raw_r]}") | iscsi-perf -r -b 8 -m 16 | $(ratio "$(m "${iops[lvm_r]}")" "$(m "${iops[raw_r]}")") |"
  echo "| random 4 KiB reads, iodepth 16, IOPS, through NBD | $(m "${iops[lvm_r]}") | $(m "${iops[qemu_r]}") | same fio job on qemu-nbd -f raw iscsi:// | $(ratio "$(m "${iops[lvm_r]}")" "$(m "${iops[qemu_r]}")") |"
  echo "| random 4 KiB writes, iodepth 16, IOPS | $(m "${iops[lvm_w]}") | $(m "${iops[qemu_w]}") | same fio job on qemu-nbd -f raw iscsi:// (no raw libiscsi writer in Debian) | $(ratio "$(m "${iops[lvm_w]}")" "$(m "${iops[qemu_w]}")") |"
  echo "| mean fio latency, reads / writes, µs | $(m "${lat[lvm_r]}") / $(m "${lat[lvm_w]}") | $(m "${lat[qemu_r]}") / $(m "${lat[qemu_w]}") | qemu-nbd -f raw iscsi:// | |"
  echo
  echo "| whole smdriver call, ms ($SNAP_MB MiB VDI, 1 MiB written before each) | LVM over iSCSI | EXT (folder) | ratio |"
  echo "|---|---:|---:|---:|"
  ls_=$(m "${lsnap[lvm]}"); es=$(m "${lsnap[ext]}"); lc=$(m "${lclone[lvm]}"); ec=$(m "${lclone[ext]}")
  printf '| vdi_snapshot | %.1f | %.1f | %s |\n' "$ls_" "$es" "$(ratio "$ls_" "$es")"
  printf '| vdi_clone | %.1f | %.1f | %s |\n' "$lc" "$ec" "$(ratio "$lc" "$ec")"
  echo
  echo "| $SCAN_VDIS VDIs of 8 MiB | LVM over iSCSI | EXT (folder) |"
  echo "|---|---:|---:|"
  ex() { [ -n "${2:-}" ] && printf "$1" "$2" || echo "not run"; }
  echo "| creating them (one vdi_create call each, smdriver time summed), s | ${mk[lvmscan]} | $(ex '%s' "${mk[extscan]:-}") |"
  echo "| one vdi_create, ms: median of the first 20 / of the last 20 | ${mk_first[lvmscan]} / ${mk_last[lvmscan]} | $(ex '%s' "${mk_first[extscan]:-}") / $(ex '%s' "${mk_last[extscan]:-}") |"
  echo "| sr_scan, whole call, ms (median of $SCAN_RUNS) | $(printf '%.1f' "$(m "${scan[lvmscan]}")") | $(ex '%.1f' "$( [ -n "${scan[extscan]:-}" ] && m "${scan[extscan]}")") |"
  echo
  echo "Runs: write ${w[lvm]}/ ${w[raw]}; read ${r[lvm]}/ ${r[raw]}/ ${r[qemu]}; rand read IOPS ${iops[lvm_r]}/ ${iops[raw_r]}/ ${iops[qemu_r]};"
  echo "rand write IOPS ${iops[lvm_w]}/ ${iops[qemu_w]}; snapshot ms ${lsnap[lvm]}/ ${lsnap[ext]}; clone ms ${lclone[lvm]}/ ${lclone[ext]};"
  echo "scan ms ${scan[lvmscan]}/ ${scan[extscan]:-}."
} > "$out"
cat "$out"
