#!/usr/bin/env bash
# VDI.copy side by side with what a user would otherwise run, between two EXT SRs (directories on
# one disk) of a toolstackd of its own: a SIZE_GB VDI with every other 2 MiB block written (50 %
# allocated, random data);
#   xe vdi-copy (toolstackd's copier: allocation map, 4 connections, through both SRs' data paths),
#   nbdcopy --flush of the same source export into a fresh VDI's export (the same two data paths;
#   --flush: the copy durable at the end, as xe vdi-copy's and vdi-export's are),
#   qemu-img convert -f vpc -O vpc of the source's VHD file into the destination SR's directory;
# then a delta copy of 5 % rewritten blocks against a snapshot, and xe vdi-export / vdi-import
# beside nbdcopy between the same export and a file; then xe's live migration (VDI.pool_migrate)
# of the VDI from one SR to the other while a client writes 4 KiB records to it without pause
# (the longest wait for a write's acknowledgement is the pause a VM would see);
# each RUNS times (medians), page cache dropped before each run, results checked by hash.
# Usage: sudo bench/copy.sh   (writes bench/results-copy-<date>.md)
# Knobs: SIZE_GB (4), RUNS (3), BIN (use these binaries, skip the build), BENCH_DIR (/var/tmp),
#        QUICK=1 (256 MiB, one run, report left in the scratch folder).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
SIZE_MB=$(( ${SIZE_GB:-4} * 1024 )); RUNS=${RUNS:-3}
if [ "${QUICK:-0}" = 1 ]; then SIZE_MB=256; RUNS=1; fi
if [ -z "${BIN:-}" ]; then
  swift build -c release -j 2 >/dev/null
  BIN=$(swift build -c release --show-bin-path)
fi
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/swiftsm-bench-copy.XXXXXX")
mkdir -p "$work/sm" "$work/st" "$work/a" "$work/b"
rundir=$(mktemp -d /tmp/cb-XXXXXX)   # data path socket paths must stay under 108 bytes
ln -s "$BIN/smdriver" "$work/sm/EXTSR"
mkdir -p "$work/plugins"; ln -s "$BIN/smdriver" "$work/plugins/datapath-mirror"
SWIFTSM_GC_AUTOSTART=0 "$BIN/toolstackd" --state-dir "$work/st" --socket "$work/xapi" --sm-dir "$work/sm" \
    --plugin-dir "$work/plugins" --run-dir "$rundir" 2> "$work/toolstackd.log" &
tpid=$!
cleanup() {
  local st=$?
  kill "$tpid" 2>/dev/null; wait "$tpid" 2>/dev/null || true   # errexit holds in the trap too
  for f in "$rundir"/datapath/*/*/pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
  rm -rf "$rundir"; [ "${QUICK:-0}" = 1 ] || rm -rf "$work"
  exit $st
}
trap cleanup EXIT
for _ in $(seq 100); do grep -q ready "$work/toolstackd.log" && break; sleep 0.1; done
export XE_SOCKET="$work/xapi"
xe() { "$BIN/xe" "$@"; }
drop() { sync; if [ -w /proc/sys/vm/drop_caches ]; then echo 3 > /proc/sys/vm/drop_caches; fi; }
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
sra=$(xe sr-create name-label=a type=ext device-config:path="$work/a")
srb=$(xe sr-create name-label=b type=ext device-config:path="$work/b")
src=$(xe vdi-create sr-uuid="$sra" name-label=bench virtual-size=${SIZE_MB}MiB)
# copyhelper.py: plug a dom0 VBD on a VDI and run a command with its NBD URI, or write the data / hash.
cat > "$work/copyhelper.py" <<'PY'
import os, subprocess, sys, hashlib, XenAPI
try:
    import nbd
except ImportError:
    sys.path.append("/usr/lib/python3/dist-packages"); import nbd
sock, what, uuid = sys.argv[1], sys.argv[2], sys.argv[3]
s = XenAPI.Session("http://" + sock.replace("/", "_"), transport=XenAPI.UDSTransport())
s.xenapi.login_with_password("root", "", "1.0", "bench")
x = s.xenapi
dom0 = [v for v in x.VM.get_all() if x.VM.get_is_control_domain(v)][0]
def plug(uuid, mode):
    vbd = x.VBD.create({"VM": dom0, "VDI": x.VDI.get_by_uuid(uuid), "userdevice": "autodetect", "bootable": False, "mode": mode,
                        "type": "Disk", "unpluggable": True, "empty": False, "other_config": {}, "qos_algorithm_type": "",
                        "qos_algorithm_params": {}})
    x.VBD.plug(vbd)
    sock_path, export = x.VBD.get_runtime_properties(vbd)["params_nbd"][len("nbd:unix:"):].split(":exportname=")
    return vbd, sock_path, export
def unplug(vbd):
    x.VBD.unplug(vbd); x.VBD.destroy(vbd)
if what in ("fill", "change"):   # fill: every other 2 MiB block; change: every 20th (5 %); random data
    vbd, p, e = plug(uuid, "RW")
    h = nbd.NBD(); h.set_export_name(e); h.connect_unix(p)
    size = h.get_size(); B = 2 << 20
    for off in range(0, size, (2 if what == "fill" else 20) * B):
        h.pwrite(os.urandom(B), off)
    h.flush(); h.shutdown(); unplug(vbd)
elif what == "hash":
    vbd, p, e = plug(uuid, "RO")
    h = nbd.NBD(); h.set_export_name(e); h.connect_unix(p)
    d = hashlib.sha256(); size = h.get_size(); off = 0
    while off < size:
        n = min(16 << 20, size - off); d.update(h.pread(n, off)); off += n
    h.shutdown(); unplug(vbd); print(d.hexdigest())
elif what in ("tofile", "fromfile"):   # nbdcopy between uuid's export and file argv[4]; prints the seconds
    import time
    a, pa, ea = plug(uuid, "RO" if what == "tofile" else "RW")
    uri = "nbd+unix:///%s?socket=%s" % (ea, pa)
    t = time.time()
    subprocess.run(["nbdcopy", "--flush", uri, sys.argv[4]] if what == "tofile" else ["nbdcopy", "--flush", sys.argv[4], uri], check=True)
    print(time.time() - t)
    unplug(a)
elif what == "migrate":   # VDI.pool_migrate of uuid to SR argv[4] while a client writes; prints figures
    import struct, threading, time
    vbd, p, e = plug(uuid, "RW")
    h = nbd.NBD(); h.set_export_name(e); h.connect_unix(p)
    size = h.get_size(); slots = 1024; area = size - slots * 4096   # the records go in the last 4 MiB
    d = hashlib.sha256(); off = 0
    while off < area:
        n = min(16 << 20, area - off); d.update(h.pread(n, off)); off += n
    last, waits, state = {}, [], {"halt": False, "error": None}
    def write():
        i = 0
        try:
            while not state["halt"]:
                i += 1; slot = i % slots; t0 = time.monotonic()
                h.pwrite(struct.pack(">QQ", i, slot) * 256, area + slot * 4096)
                waits.append(time.monotonic() - t0); last[slot] = i
        except Exception as ex:
            state["error"] = ex
    w = threading.Thread(target=write, daemon=True); w.start()
    time.sleep(0.5)
    sr = x.SR.get_by_uuid(sys.argv[4]); t = time.time()
    task = x.Async.VDI.pool_migrate(x.VDI.get_by_uuid(uuid), sr, {})
    while x.task.get_status(task) == "pending": time.sleep(0.02)
    took = time.time() - t; rec = x.task.get_record(task); during = len(waits)
    time.sleep(0.5); state["halt"] = True; w.join(); h.flush()
    region = bytearray(h.pread(slots * 4096, area))
    for slot, i in last.items(): assert region[slot * 4096:(slot + 1) * 4096] == struct.pack(">QQ", i, slot) * 256
    d.update(bytes(region)); h.shutdown()
    new = rec["result"].replace("<value>", "").replace("</value>", "")
    x.VBD.unplug(vbd); x.VBD.destroy(vbd)
    ws = sorted(waits)
    print("%.2f %.1f %.2f %s %d %d %s %s %s" % (took, ws[-1] * 1000, ws[len(ws) // 2] * 1000, rec["other_config"].get("migrate_switch_seconds"),
          during, len(waits), rec["status"] if state["error"] is None else "writer-error", x.VDI.get_uuid(new), d.hexdigest()))
elif what == "nbdcopy":     # nbdcopy from uuid's export into argv[4]'s export; prints the seconds
    import time
    a, pa, ea = plug(uuid, "RO"); b, pb, eb = plug(sys.argv[4], "RW")
    t = time.time()
    subprocess.run(["nbdcopy", "--flush", "nbd+unix:///%s?socket=%s" % (ea, pa), "nbd+unix:///%s?socket=%s" % (eb, pb)], check=True)
    print(time.time() - t)
    unplug(a); unplug(b)
PY
python3 "$work/copyhelper.py" "$work/xapi" fill "$src"
want=$(python3 "$work/copyhelper.py" "$work/xapi" hash "$src")
vhd_src="$work/a/$src.vhd"   # a directory SR keeps <vdi>.vhd at its top
ours=(); theirs=(); qimg=(); checks=""
for run in $(seq "$RUNS"); do
  drop; t0=$(now); dst=$(xe vdi-copy uuid="$src" sr-uuid="$srb"); t1=$(now)
  ours+=("$(echo "$t1 - $t0" | bc)")
  [ "$(python3 "$work/copyhelper.py" "$work/xapi" hash "$dst")" = "$want" ] && checks+="xe ok; " || checks+="xe HASH MISMATCH; "
  xe vdi-destroy uuid="$dst"
  dst=$(xe vdi-create sr-uuid="$srb" name-label=nbdcopy virtual-size=${SIZE_MB}MiB)
  drop; theirs+=("$(python3 "$work/copyhelper.py" "$work/xapi" nbdcopy "$src" "$dst")")
  [ "$(python3 "$work/copyhelper.py" "$work/xapi" hash "$dst")" = "$want" ] && checks+="nbdcopy ok; " || checks+="nbdcopy HASH MISMATCH; "
  xe vdi-destroy uuid="$dst"
  drop; t0=$(now); qemu-img convert -f vpc -O vpc -o subformat=dynamic "$vhd_src" "$work/b/qemu-img-copy.vhd"; t1=$(now)
  qimg+=("$(echo "$t1 - $t0" | bc)")
  qemu-img compare -q -f vpc -F vpc "$vhd_src" "$work/b/qemu-img-copy.vhd" && checks+="qemu-img ok; " || checks+="qemu-img MISMATCH; "
  rm -f "$work/b/qemu-img-copy.vhd"
done
# Delta copy: 5 % of the blocks rewritten after a snapshot, copied against the snapshot into a
# copy of it. Export and import: to and from files, beside nbdcopy between the same export and file.
snap=$(xe vdi-snapshot uuid="$src")
python3 "$work/copyhelper.py" "$work/xapi" change "$src"
want2=$(python3 "$work/copyhelper.py" "$work/xapi" hash "$src")
delta=(); xraw=(); nraw=(); xvhd=(); ximp=(); nimp=()
for run in $(seq "$RUNS"); do
  into=$(xe vdi-copy uuid="$snap" sr-uuid="$srb")
  drop; t0=$(now); xe vdi-copy uuid="$src" sr-uuid="$srb" base-vdi-uuid="$snap" into-vdi-uuid="$into" > /dev/null; t1=$(now)
  delta+=("$(echo "$t1 - $t0" | bc)")
  [ "$(python3 "$work/copyhelper.py" "$work/xapi" hash "$into")" = "$want2" ] && checks+="delta ok; " || checks+="delta HASH MISMATCH; "
  xe vdi-destroy uuid="$into"
  drop; t0=$(now); xe vdi-export uuid="$src" filename="$work/x.raw"; t1=$(now); xraw+=("$(echo "$t1 - $t0" | bc)")
  [ "$(sha256sum < "$work/x.raw" | cut -d' ' -f1)" = "$want2" ] && checks+="export raw ok; " || checks+="export raw MISMATCH; "
  rm -f "$work/n.raw"; drop; nraw+=("$(python3 "$work/copyhelper.py" "$work/xapi" tofile "$src" "$work/n.raw")")
  [ "$(sha256sum < "$work/n.raw" | cut -d' ' -f1)" = "$want2" ] && checks+="nbdcopy to file ok; " || checks+="nbdcopy to file MISMATCH; "
  drop; t0=$(now); xe vdi-export uuid="$src" filename="$work/x.vhd" format=vhd; t1=$(now); xvhd+=("$(echo "$t1 - $t0" | bc)")
  qemu-img compare -q -f vpc -F raw "$work/x.vhd" "$work/x.raw" && checks+="export vhd ok; " || checks+="export vhd MISMATCH; "
  dst=$(xe vdi-create sr-uuid="$srb" name-label=import virtual-size=${SIZE_MB}MiB)
  drop; t0=$(now); xe vdi-import uuid="$dst" filename="$work/x.raw"; t1=$(now); ximp+=("$(echo "$t1 - $t0" | bc)")
  [ "$(python3 "$work/copyhelper.py" "$work/xapi" hash "$dst")" = "$want2" ] && checks+="import raw ok; " || checks+="import raw MISMATCH; "
  xe vdi-destroy uuid="$dst"
  dst=$(xe vdi-create sr-uuid="$srb" name-label=nbdcopy-import virtual-size=${SIZE_MB}MiB)
  drop; nimp+=("$(python3 "$work/copyhelper.py" "$work/xapi" fromfile "$dst" "$work/x.raw")")
  [ "$(python3 "$work/copyhelper.py" "$work/xapi" hash "$dst")" = "$want2" ] && checks+="nbdcopy from file ok; " || checks+="nbdcopy from file MISMATCH; "
  xe vdi-destroy uuid="$dst"
  rm -f "$work/x.raw" "$work/n.raw" "$work/x.vhd"
done
# Live migration A -> B, then back, while a client writes (one run each way: it moves the VDI).
mig=(); migchecks=""
for target in "$srb" "$sra"; do
  read -r took longest median switch during total status new hash <<< "$(python3 "$work/copyhelper.py" "$work/xapi" migrate "$src" "$target")"
  mig+=("$took $longest $median $switch $during $total")
  [ "$status" = success ] && [ "$(python3 "$work/copyhelper.py" "$work/xapi" hash "$new")" = "$hash" ] \
    && migchecks+="migration ok; " || migchecks+="migration $status MISMATCH; "
  src=$new
done
m_ours=$(printf '%s\n' "${ours[@]}" | median); m_theirs=$(printf '%s\n' "${theirs[@]}" | median); m_q=$(printf '%s\n' "${qimg[@]}" | median)
m_delta=$(printf '%s\n' "${delta[@]}" | median); m_xraw=$(printf '%s\n' "${xraw[@]}" | median); m_nraw=$(printf '%s\n' "${nraw[@]}" | median)
m_xvhd=$(printf '%s\n' "${xvhd[@]}" | median); m_ximp=$(printf '%s\n' "${ximp[@]}" | median); m_nimp=$(printf '%s\n' "${nimp[@]}" | median)
data_mb=$((SIZE_MB / 2))
out="$root/bench/results-copy-$(date -u +%Y-%m-%d).md"
[ "${QUICK:-0}" = 1 ] && out="$work/results-copy-quick.md"
{
  echo "# VDI.copy between two EXT SRs: $((SIZE_MB)) MiB VDI, $data_mb MiB allocated (every other 2 MiB block)"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load at start: $(cut -d' ' -f1-3 /proc/loadavg); runs: $RUNS (medians); BENCH_DIR ${BENCH_DIR:-/var/tmp}"
  echo
  echo "| copier | seconds (median) | MB/s of allocated data | runs | ratio to xe vdi-copy |"
  echo "|---|---|---|---|---|"
  echo "| xe vdi-copy (toolstackd) | $m_ours | $(echo "$data_mb / $m_ours" | bc) | ${ours[*]} | 1 |"
  echo "| nbdcopy --flush between the same two data paths | $m_theirs | $(echo "$data_mb / $m_theirs" | bc) | ${theirs[*]} | $(echo "scale=2; $m_theirs / $m_ours" | bc) |"
  echo "| qemu-img convert -f vpc -O vpc (files) | $m_q | $(echo "$data_mb / $m_q" | bc) | ${qimg[*]} | $(echo "scale=2; $m_q / $m_ours" | bc) |"
  echo
  echo "Delta copy (every 20th block rewritten after a snapshot: $((SIZE_MB / 40)) MiB changed), against the snapshot into a copy of it:"
  echo
  echo "| copy | seconds (median) | runs | share of the full copy's time |"
  echo "|---|---|---|---|"
  echo "| xe vdi-copy base-vdi-uuid= into-vdi-uuid= | $m_delta | ${delta[*]} | $(echo "scale=2; $m_delta / $m_ours" | bc) |"
  echo
  echo "Export and import through files (the disk as above after the delta's changes; raw files of $SIZE_MB MiB):"
  echo
  echo "| transfer | seconds (median) | runs | ratio to the alternative's time |"
  echo "|---|---|---|---|"
  echo "| xe vdi-export (raw, holes kept) | $m_xraw | ${xraw[*]} | 1 |"
  echo "| nbdcopy --flush from the same export to a file | $m_nraw | ${nraw[*]} | $(echo "scale=2; $m_nraw / $m_xraw" | bc) |"
  echo "| xe vdi-export format=vhd | $m_xvhd | ${xvhd[*]} | qemu-img convert VHD to VHD above: $(echo "scale=2; $m_q / $m_xvhd" | bc) |"
  echo "| xe vdi-import (raw, into a new VDI) | $m_ximp | ${ximp[*]} | 1 |"
  echo "| nbdcopy --flush from the file to a new VDI's export | $m_nimp | ${nimp[*]} | $(echo "scale=2; $m_nimp / $m_ximp" | bc) |"
  echo
  echo "Live migration (xe's VDI.pool_migrate, the VDI above) while a client writes 4 KiB records to its last 4 MiB without pause, one run each way:"
  echo
  echo "| migration | seconds | longest wait for a write's ack (ms) | median wait (ms) | switch call (s) | writes during the migration / in all |"
  echo "|---|---|---|---|---|---|"
  for i in 0 1; do
    read -r a b c d e f <<< "${mig[$i]}"
    echo "| $([ $i = 0 ] && echo "A -> B" || echo "B -> A") | $a | $b | $c | $d | $e / $f |"
  done
  echo
  echo "For scale: the offline full copy (xe vdi-copy) above takes $m_ours s."
  echo
  echo "Checks: $checks $migchecks"
  echo
  echo "xe vdi-copy includes creating the destination VDI and plugging/unplugging both VBDs (plugin calls); nbdcopy's time excludes them. Every copier ends with its data durable (nbdcopy --flush; qemu-img convert syncs its output)."
} > "$out"
cat "$out"
