#!/usr/bin/env bash
# Whole smdriver calls (process start to exit), timed with hyperfine, against the Python SM's
# figures on this kind of machine (reference smapi-v1.md §8: ~100 ms of each is Python's import).
# Usage: bench/smdriver.sh   (writes bench/results-smdriver-<date>.md)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
command -v hyperfine >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null; }
swift build -c release -j 2 --static-swift-stdlib --scratch-path .build-bench-static --product smdriver >/dev/null
swift build -c release -j 2 --static-swift-stdlib --scratch-path .build-bench-static --product vhd >/dev/null
bin=$(swift build -c release --static-swift-stdlib --scratch-path .build-bench-static --show-bin-path)
work=$(mktemp -d /var/tmp/swiftsm-bench-sm.XXXXXX)
trap 'rm -rf "$work"' EXIT
export SWIFTSM_RUN_DIR="$work/run"
sr=$(cat /proc/sys/kernel/random/uuid)
srdir="$work/sr"
req() { python3 scripts/smapi-request.py "$1" "$sr" "$srdir" "${2:-{\}}"; }
sm() { "$bin/smdriver" --driver ext "$1"; }
uuid_of() { python3 scripts/smapi-request.py --uuid "$1"; }

sm "$(req sr_create '{"args": ["0"]}')" >/dev/null
sm "$(req sr_attach)" >/dev/null
big=$(uuid_of "$(sm "$(req vdi_create '{"args": ["2190433320960", "2 TiB", "", "", "false", "19700101T00:00:00Z", "", "false"], "vdi_type": "user"}')")")
info=$(req sr_get_driver_info)
create=$(req vdi_create '{"args": ["10737418240", "disk", "", "", "false", "19700101T00:00:00Z", "", "false"], "vdi_type": "user"}')
snap=$(req vdi_snapshot "{\"vdi_uuid\": \"$big\", \"vdi_location\": \"$big\", \"driver_params\": {}}")
clone=$(req vdi_clone "{\"vdi_uuid\": \"$big\", \"vdi_location\": \"$big\", \"driver_params\": {}}")
# Each snapshot/clone run starts from a VDI with one new sector written (otherwise no base copy is made).
prepare="printf x | $bin/vhd write -n $srdir/$big.vhd -o 0"

# Every timed call must succeed: run each once and refuse a fault.
for doc in "$info" "$create" "$snap" "$clone"; do
  r=$("$bin/smdriver" --driver ext "$doc")
  if grep -q "<fault>" <<<"$r"; then echo "smdriver answered a fault: $r" >&2; exit 1; fi
done
out="$work/hf"
mkdir -p "$out"
hyperfine -N -w 3 -r 30 --export-json "$out/info.json" "$bin/smdriver --driver ext '$info'" >/dev/null
hyperfine -N -w 3 -r 30 --export-json "$out/create.json" "$bin/smdriver --driver ext '$create'" >/dev/null
hyperfine -N -w 2 -r 20 --prepare "$prepare" --export-json "$out/snapshot.json" "$bin/smdriver --driver ext '$snap'" >/dev/null
hyperfine -N -w 2 -r 20 --prepare "$prepare" --export-json "$out/clone.json" "$bin/smdriver --driver ext '$clone'" >/dev/null

# sr_scan of a second SR holding 10,000 VDIs (copies of one small VHD with fresh uuids).
sr2=$(cat /proc/sys/kernel/random/uuid); srdir2="$work/sr2"
sr="$sr2" srdir="$srdir2"
sm "$(req sr_create '{"args": ["0"]}')" >/dev/null
"$bin/vhd" create -n "$work/seed.vhd" -s 100
python3 - "$work/seed.vhd" "$srdir2" <<'PY'
import sys, uuid, shutil
seed, d = sys.argv[1], sys.argv[2]
data = bytearray(open(seed, "rb").read())
def fix(b):
    s = sum(b[i] for i in range(512) if not 64 <= i < 68)
    b[64:68] = ((~s) & 0xffffffff).to_bytes(4, "big")
for i in range(10000):
    u = uuid.uuid4()
    f = bytearray(data)
    for off in (0, len(f) - 512):
        foot = f[off:off+512]; foot[68:84] = u.bytes; fix(foot); f[off:off+512] = foot
    open(f"{d}/{uuid.uuid4()}.vhd", "wb").write(f)
PY
scan=$(req sr_scan)
r=$("$bin/smdriver" --driver ext "$scan")
if grep -q "<fault>" <<<"$r"; then echo "sr_scan answered a fault: $r" >&2; exit 1; fi
hyperfine -N -w 1 -r 10 --export-json "$out/scan.json" "$bin/smdriver --driver ext '$scan'" >/dev/null

python3 - "$out" "$root/bench" <<'PY'
import json, sys, os, platform, subprocess, datetime
out, bench = sys.argv[1], sys.argv[2]
rows = [("sr_get_driver_info", "info", 10, 116), ("vdi_create (10 GiB)", "create", 20, 140),
        ("vdi_snapshot of a 2 TiB VDI", "snapshot", 25, 191), ("vdi_clone of a 2 TiB VDI", "clone", 25, 185),
        ("sr_scan of 10,000 VDIs", "scan", 2000, None)]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
now = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")
lines = [f"# smdriver benchmark, {now}", "",
         f"Machine: {os.cpu_count()} cores, {cpu}, {round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB, kernel {platform.release()}.",
         "Method: hyperfine, whole process (exec to exit), statically linked Swift runtime; snapshot/clone runs each start after one sector is written into the VDI (hyperfine --prepare).", "",
         "| call | median ms | mean ms | min ms | goal ms | Python SM ms | goal met |", "|---|---:|---:|---:|---:|---:|---|"]
for name, key, goal, py in rows:
    r = json.load(open(f"{out}/{key}.json"))["results"][0]
    med, mean, mn = r["median"] * 1000, r["mean"] * 1000, r["min"] * 1000
    lines.append(f"| {name} | {med:.1f} | {mean:.1f} | {mn:.1f} | {goal} | {py if py else '2600-4000 for 1,000'} | {'yes' if med < goal else 'NO'} |")
text = "\n".join(lines) + "\n"
print(text)
open(f"{bench}/results-smdriver-{datetime.date.today()}.md", "w").write(text)
PY
