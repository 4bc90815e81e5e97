#!/usr/bin/env bash
# The cost of changed-block tracking, in one run:
#   4 KiB random writes (fio --ioengine=nbd, iodepth 16) and sequential 256 KiB writes (iodepth 4)
#   through swiftsm-datapath into a fully allocated dynamic VHD, with the VDI's CBT log absent
#   (off) and present (on), rounds alternating off/on so both see the same machine load;
#   vdi_list_changed_blocks through smdriver over a chain of 10 logs of a 2 TiB VDI (each bitmap
#   4 MiB, one bit in 16 set at random), the whole call (process start included) and the time
#   `vhd cbt get -b` takes to read one log, for scale.
# Usage: bench/cbt.sh   (writes bench/results-cbt-<date>.md)
# Knobs: ROUNDS (3), SIZE_MB (1024), FIO_SECONDS (15), BIN (binaries; default: this tree's
#        release build, built if missing), BENCH_DIR (/var/tmp), QUICK=1 (256 MiB, 1 round, 5 s).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
ROUNDS=${ROUNDS:-3}; SIZE_MB=${SIZE_MB:-1024}; FIO_SECONDS=${FIO_SECONDS:-15}
if [ "${QUICK:-0}" = 1 ]; then ROUNDS=1; SIZE_MB=256; FIO_SECONDS=5; fi
for tool in fio qemu-img python3; do command -v $tool >/dev/null || { echo "needs $tool (scripts/install-deps.sh)" >&2; exit 1; }; done
if [ -z "${BIN:-}" ]; then
  swift build -c release -j 2 -Xswiftc -enable-testing >/dev/null
  BIN=$(swift build -c release -j 2 -Xswiftc -enable-testing --show-bin-path)
fi
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/swiftsm-bench-cbt.XXXXXX")
cleanup() { [ -f "$work/dp.pid" ] && kill "$(cat "$work/dp.pid")" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
wait_socket() { for _ in $(seq 500); do [ -S "$1" ] && return 0; sleep 0.02; done; echo "no socket $1" >&2; return 1; }

# An EXT SR on a directory, as sr_attach leaves one (marker + plug record), one VDI in it.
SR=00000000-0000-4000-8000-0000000000c1; VDI=00000000-0000-4000-8000-0000000000c2
echo "$SR" > "$work/.swiftsm-sr"
mkdir -p "$work/run/sr"
printf '{"sr":"%s","deviceConfig":{"path":"%s"}}' "$SR" "$work" > "$work/run/sr/$SR.plug.json"
head -c $((SIZE_MB << 20)) /dev/urandom > "$work/data.raw"
"$BIN/vhd" convert "$work/data.raw" "$work/data.vhd" >/dev/null

start() { # on|off: a fresh copy of the full VHD as the VDI, with or without its log
  rm -rf "$work/dp" "$work/$VDI.cbtlog"
  cp --sparse=always "$work/data.vhd" "$work/$VDI.vhd"
  if [ "$1" = on ]; then
    "$BIN/vhd" cbt create -n "$work/$VDI.cbtlog" -s $((SIZE_MB << 20))
    "$BIN/vhd" cbt set -n "$work/$VDI.cbtlog" -f 1
  fi
  "$BIN/swiftsm-datapath" --driver ext --sr "$SR" --vdi "$VDI" --export bench --dir "$work/dp" --run "$work/run" >>"$work/dp.log" 2>&1 &
  echo $! > "$work/dp.pid"
  wait_socket "$work/dp/ctl"
  uri="nbd+unix:///bench?socket=$work/dp/nbd"
}
stop() {
  local pid; pid=$(cat "$work/dp.pid"); kill "$pid"; wait "$pid" 2>/dev/null || true; rm -f "$work/dp.pid"
}
# CPU time (µs, all threads) swiftsm-datapath has used so far.
cpu_us() { awk '{printf "%d\n", ($14 + $15) * 1000000 / '"$(getconf CLK_TCK)"'}' "/proc/$(cat "$work/dp.pid")/stat"; }
fio_run() { # rw bs iodepth -> "iops cpu_ns_per_write" (the server's CPU time per request: steadier than IOPS on a shared machine)
  local c0 c1; c0=$(cpu_us)
  fio --name=b --ioengine=nbd --uri="$uri" --rw="$1" --bs="$2" --iodepth="$3" --size=$((SIZE_MB << 20)) \
      --runtime="$FIO_SECONDS" --time_based --ramp_time=2 --output-format=json --output="$work/fio.json" >"$work/fio.log" 2>&1
  c1=$(cpu_us)
  python3 -c 'import json,sys; w=json.load(open(sys.argv[1]))["jobs"][0]["write"]; print(round(w["iops"]), round(int(sys.argv[2]) * 1000 / max(1, w["total_ios"])))' "$work/fio.json" "$((c1 - c0))"
}
declare -A rand seq randcpu seqcpu marked
for round in $(seq "$ROUNDS"); do
  for mode in off on; do
    start $mode
    read -r iops cpu < <(fio_run randwrite 4k 16); rand[$mode]+="$iops "; randcpu[$mode]+="$cpu "
    read -r iops cpu < <(fio_run write 256k 4); seq[$mode]+="$iops "; seqcpu[$mode]+="$cpu "
    stop
    if [ $mode = on ]; then
      # The log is consistent after the clean stop and marks what fio wrote.
      "$BIN/vhd" cbt check -n "$work/$VDI.cbtlog" >/dev/null || { echo "log left inconsistent" >&2; exit 1; }
      marked[$mode]=$("$BIN/vhd" cbt show -n "$work/$VDI.cbtlog" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["changedBlocks"])')
    fi
  done
done
m() { echo "${1}" | tr ' ' '\n' | grep . | median; }
pct() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{(b-a)/a*100:+.1f} %')" "$1" "$2"; }

# vdi_list_changed_blocks over 10 logs of a 2 TiB VDI.
python3 - "$work" <<'PY'
import os, struct, sys, uuid, random
work = sys.argv[1]; size = 2 << 40; nbytes = size // 65536 // 8
ids = ["00000000-0000-4000-8000-%012x" % (0xd00 + i) for i in range(11)]
rnd = random.Random(14)
for i, u in enumerate(ids):
    parent = uuid.UUID(ids[i - 1]).bytes if i > 0 else bytes(16)
    child = uuid.UUID(ids[i + 1]).bytes if i + 1 < len(ids) else bytes(16)
    x = -1
    for _ in range(4):                    # four random masks ANDed: one bit in 16 set
        x &= int.from_bytes(rnd.randbytes(nbytes), "little")
    bits = x.to_bytes(nbytes, "little")
    with open(os.path.join(work, u + ".cbtlog"), "wb") as f:
        f.write(struct.pack('@16s16siQ', parent, child, 1, size) + bits)
print(ids[0], ids[-1])
PY
FROM=00000000-0000-4000-8000-000000000d00; TO=00000000-0000-4000-8000-000000000d0a
req() {
  printf '<methodCall><methodName>%s</methodName><params><param><value><struct>' "$1"
  printf '<member><name>command</name><value>%s</value></member>' "$1"
  printf '<member><name>args</name><value><array><data><value>%s</value></data></array></value></member>' "$TO"
  printf '<member><name>device_config</name><value><struct><member><name>SRmaster</name><value>true</value></member>'
  printf '<member><name>path</name><value>%s</value></member></struct></value></member>' "$work"
  printf '<member><name>sr_uuid</name><value>%s</value></member><member><name>vdi_uuid</name><value>%s</value></member>' "$SR" "$FROM"
  printf '<member><name>vdi_location</name><value>%s</value></member></struct></value></param></params></methodCall>' "$FROM"
}
call() { SWIFTSM_RUN_DIR="$work/run" "$BIN/smdriver" --driver ext "$(req "$1")"; }
call vdi_list_changed_blocks > "$work/list.xml"
grep -q '<string>' "$work/list.xml" || { echo "list failed: $(head -c 400 "$work/list.xml")" >&2; exit 1; }
listms=""; readms=""
for i in $(seq 5); do
  t0=$(now); call vdi_list_changed_blocks > /dev/null; t1=$(now)
  listms+="$(echo "($t1 - $t0) * 1000" | bc -l) "
  t0=$(now); "$BIN/vhd" cbt get -n "$work/$TO.cbtlog" -b > /dev/null; t1=$(now)
  readms+="$(echo "($t1 - $t0) * 1000" | bc -l) "
done
b64=$(python3 -c 'import re,sys; print(len(re.search(r"<string>([^<]*)</string>", open(sys.argv[1]).read()).group(1)))' "$work/list.xml")

out="bench/results-cbt-$(date -u +%Y-%m-%d).md"
{
  echo "# CBT cost, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Machine: $(nproc) CPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, load $(cut -d' ' -f1-3 /proc/loadavg) at the end; scratch on $(df --output=fstype "$work" | tail -1)."
  echo "Runs: $ROUNDS rounds alternating off/on, ${SIZE_MB} MiB fully allocated dynamic VHD, fio ${FIO_SECONDS} s per row (medians)."
  echo
  echo "| workload | CBT off | CBT on | on vs off |"
  echo "|---|---|---|---|"
  echo "| random 4 KiB writes, fio nbd iodepth 16 (IOPS) | $(m "${rand[off]}") | $(m "${rand[on]}") | $(pct "$(m "${rand[off]}")" "$(m "${rand[on]}")") |"
  echo "| sequential 256 KiB writes, fio nbd iodepth 4 (IOPS) | $(m "${seq[off]}") | $(m "${seq[on]}") | $(pct "$(m "${seq[off]}")" "$(m "${seq[on]}")") |"
  echo "| datapath CPU per random 4 KiB write (ns, all threads; lower is better) | $(m "${randcpu[off]}") | $(m "${randcpu[on]}") | $(pct "$(m "${randcpu[off]}")" "$(m "${randcpu[on]}")") |"
  echo "| datapath CPU per sequential 256 KiB write (ns) | $(m "${seqcpu[off]}") | $(m "${seqcpu[on]}") | $(pct "$(m "${seqcpu[off]}")" "$(m "${seqcpu[on]}")") |"
  echo
  echo "All runs: random off [${rand[off]}] on [${rand[on]}]; sequential off [${seq[off]}] on [${seq[on]}];"
  echo "CPU ns per write: random off [${randcpu[off]}] on [${randcpu[on]}]; sequential off [${seqcpu[off]}] on [${seqcpu[on]}]."
  echo "After the last CBT-on run the log was consistent and marked ${marked[on]} of $((SIZE_MB * 16)) blocks."
  echo
  echo "| vdi_list_changed_blocks, 2 TiB VDI, chain of 10 logs (4 MiB bitmaps) | median of 5 |"
  echo "|---|---|"
  echo "| whole smdriver call (process start, 10 headers + 10 bitmaps read, OR, base64 of 4 MiB, XML) | $(printf '%.0f' "$(m "$listms")") ms |"
  echo "| for scale: \`vhd cbt get -b\` of one log (process start, 4 MiB read and written) | $(printf '%.0f' "$(m "$readms")") ms |"
  echo
  echo "Answer: ${b64} base64 characters (4 MiB bitmap)."
} > "$out"
cat "$out"
