#!/usr/bin/env bash
# The NFS SR side by side with what a user would otherwise run, on one NFS-Ganesha server on
# loopback (NFSv3, FSAL VFS, exporting a folder of BENCH_DIR):
#   sequential 1 GiB write (to a new VDI / a new file) and read through the data path
#   (nbdcopy) vs nfs-cp of the same bytes to and from the same export (libnfs-utils);
#   random 4 KiB read IOPS (fio --ioengine=nbd, iodepth 16) through the data path vs qemu-nbd
#   serving the same VHD from an nfs:// URL (qemu's libnfs driver, qemu-block-extra);
#   vdi_snapshot and vdi_clone whole-call latency (smdriver) on NFS vs on an EXT SR (a folder).
# Usage: sudo bench/nfs.sh   (writes bench/results-nfs-<date>.md)
# Knobs: RUNS (4: writes alternate which goes first), SIZE_MB (1024), FIO_SECONDS (20), CALLS (10), BENCH_DIR (/var/tmp), OUT (the results file),
#   EXPORT_DIR (the exported folder, default in BENCH_DIR; an empty folder on tmpfs takes the server's disk out), BIN (skip the build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
RUNS=${RUNS:-4}; SIZE_MB=${SIZE_MB:-1024}; FIO_SECONDS=${FIO_SECONDS:-20}; CALLS=${CALLS:-10}
scripts/install-deps.sh >/dev/null
for p in qemu-block-extra bc; do
  dpkg-query -W -f='${Status}' $p 2>/dev/null | grep -q "install ok installed" || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $p >/dev/null
done
if [ -z "${BIN:-}" ]; then
  for p in smdriver swiftsm-datapath vhd; do swift build -c release -j 2 --scratch-path .build-bench --product $p >/dev/null; done
  BIN=$(swift build -c release --scratch-path .build-bench --show-bin-path)
fi
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/swiftsm-bench-nfs.XXXXXX"); run=""
port=22049
cleanup() {
  [ -f "$work/q.pid" ] && kill "$(cat "$work/q.pid")" 2>/dev/null || true
  for p in $(cat "$run"/datapath/*/*/pid 2>/dev/null); do kill "$p" 2>/dev/null || true; done
  scripts/nfs-test-server.sh stop "$work/server" >/dev/null 2>&1 || true
  [ -n "${EXPORT_DIR:-}" ] && rm -rf "${export_dir:?}/${nfs_sr:-none}" "$export_dir/copy.raw"
  rm -rf "$work" "$run"
}
trap cleanup EXIT
export_dir=${EXPORT_DIR:-$work/export}
scripts/nfs-test-server.sh start "$work/server" $port "$export_dir" >/dev/null
# The run directory must be short: datapath sockets live below it.
run=$(mktemp -d /tmp/sbn.XXXX)
export SWIFTSM_RUN_DIR="$run" SWIFTSM_GC_AUTOSTART=0
now() { date +%s.%N; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# Before a write: dirty pages written back, and the source in the page cache for both writers
# (the copy measures writing to the server, not reading this machine's disk).
warm() { sync; cat "$work/data.raw" >/dev/null; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
mbps() { printf '%.0f' "$(echo "$SIZE_MB / ($2 - $1)" | bc -l)"; }
url="nfs://127.0.0.1$export_dir"; q="nfsport=$port&mountport=$((port + 1))"

# SRs: NFS on the export, EXT on a folder. call DRIVER SR COMMAND EXTRA-JSON prints the answer.
nfs_sr=$(cat /proc/sys/kernel/random/uuid); ext_sr=$(cat /proc/sys/kernel/random/uuid)
nfs_dc="{\"SRmaster\": \"true\", \"server\": \"127.0.0.1\", \"serverpath\": \"$export_dir\", \"options\": \"port=$port,mountport=$((port + 1))\"}"
call() {
  local driver=$1 sr=$2 command=$3 extra=${4:-"{}"}
  if [ "$driver" = nfs ]; then extra=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["device_config"]=json.loads(sys.argv[2]); print(json.dumps(d))' "$extra" "$nfs_dc"); fi
  local r; r=$("$BIN/smdriver" --driver "$driver" "$(python3 scripts/smapi-request.py "$command" "$sr" "$work/ext" "$extra")")
  if grep -q "<fault>" <<<"$r"; then echo "$driver $command: $r" >&2; exit 1; fi
  echo "$r"
}
mkdir -p "$work/ext"
for d in nfs ext; do
  sr=$([ $d = nfs ] && echo "$nfs_sr" || echo "$ext_sr")
  call $d "$sr" sr_create '{"args": ["0"]}' >/dev/null
  call $d "$sr" sr_attach >/dev/null
done
vdi_args="{\"args\": [\"$((SIZE_MB << 20))\", \"bench\", \"\", \"\", \"false\", \"19700101T00:00:00Z\", \"\", \"false\"]}"
head -c $((SIZE_MB << 20)) /dev/urandom > "$work/data.raw"
declare -A w r
dp_write() { warm; t0=$(now); nbdcopy --flush "$work/data.raw" "$nbd"; sync; t1=$(now); w[swiftsm]+="$(mbps $t0 $t1) "; }
cp_write() { warm; t0=$(now); nfs-cp "$work/data.raw" "$url/copy.raw?$q" >/dev/null; sync; t1=$(now); w[nfscp]+="$(mbps $t0 $t1) "; }
for i in $(seq "$RUNS"); do
  # The data path: a new VDI each run (the write allocates every block, as on a new disk), the
  # one before deleted; nfs-cp writes a new file each run too.
  [ -n "${vdi:-}" ] && call nfs "$nfs_sr" vdi_delete "$vdi_json" >/dev/null
  vdi=$(python3 scripts/smapi-request.py --uuid "$(call nfs "$nfs_sr" vdi_create "$vdi_args")")
  vdi_json="{\"vdi_uuid\": \"$vdi\", \"vdi_location\": \"$vdi\", \"args\": [\"true\"]}"
  dp="$run/datapath/$nfs_sr/$vdi"
  nbd="nbd+unix:///$vdi?socket=$dp/nbd"
  call nfs "$nfs_sr" vdi_attach "$vdi_json" >/dev/null; call nfs "$nfs_sr" vdi_activate "$vdi_json" >/dev/null
  rm -f "$export_dir/copy.raw"
  # Writes are timed until the bytes are on the server's disk: the data path's FLUSH is a
  # COMMIT, nfs-cp has none, so both are followed by a sync of the server's file system. Which
  # of the two writes first alternates from run to run: here the second writer of a run is
  # often much slower or faster than the first (the disk behind the export is shared), and
  # the order must not favour either.
  if [ $((i % 2)) = 1 ]; then dp_write; cp_write; else cp_write; dp_write; fi
  drop; t0=$(now); nbdcopy "$nbd" null:; t1=$(now); r[swiftsm]+="$(mbps $t0 $t1) "
  rm -f "$work/back.raw"; nbdcopy "$nbd" "$work/back.raw"; cmp -s "$work/back.raw" "$work/data.raw" || { echo "read back differs" >&2; exit 1; }
  call nfs "$nfs_sr" vdi_deactivate "$vdi_json" >/dev/null; call nfs "$nfs_sr" vdi_detach "$vdi_json" >/dev/null
  rm -f "$work/back.raw"; drop; t0=$(now); nfs-cp "$url/copy.raw?$q" "$work/back.raw" >/dev/null; t1=$(now); r[nfscp]+="$(mbps $t0 $t1) "
  cmp -s "$work/back.raw" "$work/data.raw" || { echo "nfs-cp read back differs" >&2; exit 1; }
done
rm -f "$export_dir/copy.raw" "$work/back.raw"

# Random 4 KiB reads of the full VHD: the data path, and qemu-nbd over qemu's nfs:// driver
# (which finds the server through the portmapper: this server registered last).
fio_run() {
  fio --name=b --ioengine=nbd --uri="$1" --rw=randread --bs=4k --iodepth=16 --size=$((SIZE_MB << 20)) \
      --runtime="$FIO_SECONDS" --time_based --ramp_time=2 --output-format=json --output="$work/fio.json" >"$work/fio.log" 2>&1
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))["jobs"][0]["read"]; print(round(j["iops"]), round(j["clat_ns"]["mean"]/1000))' "$work/fio.json"
}
declare -A iops lat
for i in $(seq "$RUNS"); do
  call nfs "$nfs_sr" vdi_attach "$vdi_json" >/dev/null; call nfs "$nfs_sr" vdi_activate "$vdi_json" >/dev/null
  read -r i l < <(fio_run "$nbd"); iops[swiftsm]+="$i "; lat[swiftsm]+="$l "
  call nfs "$nfs_sr" vdi_deactivate "$vdi_json" >/dev/null
  qemu-nbd -r -f vpc -x b -k "$work/q.sock" --shared=16 --persistent "nfs://127.0.0.1$export_dir/$nfs_sr/$vdi.vhd" >"$work/q.log" 2>&1 &
  echo $! > "$work/q.pid"
  for _ in $(seq 200); do [ -S "$work/q.sock" ] && break; sleep 0.05; done
  read -r i l < <(fio_run "nbd+unix:///b?socket=$work/q.sock"); iops[qemu]+="$i "; lat[qemu]+="$l "
  kill "$(cat "$work/q.pid")"; wait "$(cat "$work/q.pid")" 2>/dev/null || true; rm -f "$work/q.pid" "$work/q.sock"
done

# Whole-call latency of vdi_snapshot and vdi_clone of a 10 GiB VDI with 1 MiB written, NFS vs EXT.
declare -A lsnap lclone
for d in nfs ext; do
  sr=$([ $d = nfs ] && echo "$nfs_sr" || echo "$ext_sr")
  dir=$([ $d = nfs ] && echo "$export_dir/$nfs_sr" || echo "$work/ext")
  v=$(python3 scripts/smapi-request.py --uuid "$(call $d "$sr" vdi_create '{"args": ["10737418240", "lat", "", "", "false", "19700101T00:00:00Z", "", "false"]}')")
  j="{\"vdi_uuid\": \"$v\", \"vdi_location\": \"$v\", \"driver_params\": {}}"
  for i in $(seq "$CALLS"); do
    head -c 1048576 /dev/urandom | "$BIN/vhd" write -n "$dir/$v.vhd" -o $((i << 20)) >/dev/null
    t0=$(now); call $d "$sr" vdi_snapshot "$j" >/dev/null; t1=$(now); lsnap[$d]+="$(echo "($t1 - $t0) * 1000" | bc -l) "
    head -c 1048576 /dev/urandom | "$BIN/vhd" write -n "$dir/$v.vhd" -o $((i << 20)) >/dev/null
    t0=$(now); call $d "$sr" vdi_clone "$j" >/dev/null; t1=$(now); lclone[$d]+="$(echo "($t1 - $t0) * 1000" | bc -l) "
  done
done

ratio() { printf '%.2f' "$(echo "$1 / $2" | bc -l)"; }
sw=$(median <<<"${w[swiftsm]}"); cw=$(median <<<"${w[nfscp]}"); sr_=$(median <<<"${r[swiftsm]}"); cr=$(median <<<"${r[nfscp]}")
si=$(median <<<"${iops[swiftsm]}"); qi=$(median <<<"${iops[qemu]}")
out=${OUT:-bench/results-nfs-$(date +%Y-%m-%d).md}
{
  echo "# NFS SR: data path vs nfs-cp and qemu-nbd over nfs://, snapshot and clone vs EXT"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r);"
  echo "NFS-Ganesha $(dpkg-query -W -f='${Version}' nfs-ganesha) (FSAL VFS) on loopback exporting a folder on $(df --output=fstype "$export_dir" | tail -1),"
  echo "libnfs $(dpkg-query -W -f='${Version}' libnfs13), qemu $(dpkg-query -W -f='${Version}' qemu-utils). Medians of $RUNS runs (calls: $CALLS); each run writes a new VDI and nfs-cp a new file; the source in the page cache before each write, page cache dropped before each read; writes timed until a sync of the server's file system returns (the data path's FLUSH is a COMMIT, nfs-cp sends none)."
  echo
  echo "| $SIZE_MB MiB | SwiftSM data path (NBD) | nfs-cp | ratio |"
  echo "|---|---|---|---|"
  echo "| sequential write, MiB/s | $sw | $cw | $(ratio $sw $cw) |"
  echo "| sequential read, MiB/s | $sr_ | $cr | $(ratio $sr_ $cr) |"
  echo
  echo "| random 4 KiB reads, iodepth 16 | SwiftSM data path | qemu-nbd -f vpc nfs:// | ratio |"
  echo "|---|---|---|---|"
  echo "| IOPS | $si | $qi | $(ratio $si $qi) |"
  echo "| mean latency, µs | $(median <<<"${lat[swiftsm]}") | $(median <<<"${lat[qemu]}") | |"
  echo
  echo "| whole smdriver call, ms | NFS | EXT (folder) | ratio |"
  echo "|---|---|---|---|"
  ns=$(median <<<"${lsnap[nfs]}"); es=$(median <<<"${lsnap[ext]}"); nc=$(median <<<"${lclone[nfs]}"); ec=$(median <<<"${lclone[ext]}")
  printf '| vdi_snapshot | %.1f | %.1f | %s |\n' "$ns" "$es" "$(ratio $ns $es)"
  printf '| vdi_clone | %.1f | %.1f | %s |\n' "$nc" "$ec" "$(ratio $nc $ec)"
  echo
  echo "Runs (writes: the data path wrote first in odd runs, nfs-cp in even ones): write ${w[swiftsm]}/ ${w[nfscp]}; read ${r[swiftsm]}/ ${r[nfscp]}; IOPS ${iops[swiftsm]}/ ${iops[qemu]}."
  echo
  echo "Load average (1, 5, 15 min) at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
} > "$out"
cat "$out"
