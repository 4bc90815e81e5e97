#!/usr/bin/env bash
# VHD engine benchmarks, side by side with the tool a user would otherwise use (qemu-img, dd, cp).
# See bench/README.md. Run as root from anywhere: bench/run.sh
#
# Environment (all optional):
#   BENCH_DIR=/var/tmp    where the scratch folder goes (needs NEED_GIB free)
#   NEED_GIB=20           free space required before starting
#   RUNS=5                runs per tool for convert and full-block coalesce
#   RUNS_SPARSE=3         runs of the sparse-run coalesce
#   SLOW_LIMIT=60         stop repeating a command after one run longer than this (seconds)
#   SNAP_ITERS=300        in-process Snapshot.create iterations;  SNAP_CMD_RUNS=30 whole `vhd snapshot` runs
#   SCAN_COUNT=10000      VHDs in the scan folder; SCAN_ITERS=10 in-process Scan.run iterations
#   SCAN_CMD_RUNS=5       warm `vhd scan` runs (plus 3 cold ones)
#   SKIP_BUILD=1          use an existing .build-bench (for re-runs)
#   QUICK=1               a small version of everything (512 MiB disks, one run each) to test this
#                         script; its report goes to the scratch folder's parent, README untouched
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/var/tmp}
NEED_GIB=${NEED_GIB:-20}
RUNS=${RUNS:-5}
RUNS_SPARSE=${RUNS_SPARSE:-3}
SLOW_LIMIT=${SLOW_LIMIT:-60}
SNAP_ITERS=${SNAP_ITERS:-300}
SNAP_CMD_RUNS=${SNAP_CMD_RUNS:-30}
SCAN_COUNT=${SCAN_COUNT:-10000}
SCAN_ITERS=${SCAN_ITERS:-10}
SCAN_CMD_RUNS=${SCAN_CMD_RUNS:-5}
SCRATCH_BUILD="$ROOT/.build-bench"
SIZE_MB=4096 FILL_BLOCKS=1052 SPARSE_BLOCKS=1016
if [[ -n ${QUICK:-} ]]; then
    SIZE_MB=512 FILL_BLOCKS=131 SPARSE_BLOCKS=127 NEED_GIB=3
    RUNS=1 RUNS_SPARSE=1 SNAP_ITERS=20 SNAP_CMD_RUNS=3 SCAN_COUNT=500 SCAN_ITERS=2 SCAN_CMD_RUNS=1
fi

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'bench/run.sh: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Preconditions: root, space, tools.
[[ $(id -u) -eq 0 ]] || die "run as root (drop_caches and apt-get need it)"
mkdir -p "$BENCH_DIR"
avail_kb=$(df -Pk "$BENCH_DIR" | awk 'NR==2 {print $4}')
if (( avail_kb < NEED_GIB * 1024 * 1024 )); then
    die "$BENCH_DIR has $((avail_kb / 1024 / 1024)) GiB free, the benchmark needs $NEED_GIB GiB (set BENCH_DIR elsewhere)"
fi

missing=()
[[ -x /usr/bin/time ]] || missing+=(time)
command -v qemu-img >/dev/null || missing+=(qemu-utils)
if (( ${#missing[@]} )); then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null ||
        { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
fi

# ---------------------------------------------------------------------------------------------
# Build (release, own scratch path, no -enable-testing).
if [[ -z ${SKIP_BUILD:-} ]]; then
    say "building vhd and vhd-bench (release) into $SCRATCH_BUILD"
    for p in vhd vhd-bench; do
        (cd "$ROOT" && swift build -c release -j 2 --scratch-path "$SCRATCH_BUILD" --product "$p" >&2) || die "build of $p failed"
    done
fi
BIN=$(cd "$ROOT" && swift build -c release --scratch-path "$SCRATCH_BUILD" --show-bin-path)
[[ -x $BIN/vhd && -x $BIN/vhd-bench ]] || die "no vhd / vhd-bench in $BIN"
export PATH="$BIN:$PATH"

# ---------------------------------------------------------------------------------------------
# Scratch folder, removed on exit.
WORK=$(mktemp -d "$BENCH_DIR/vhd-bench.XXXXXX")
cleanup() { cd /; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$WORK"
DROP=yes
drop_caches() {
    sync
    if [[ $DROP == yes ]] && ! { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
        DROP=no
        echo "warning: cannot drop caches; runs are warm" >&2
    fi
}

# ---------------------------------------------------------------------------------------------
# Measurement helpers.
declare -A CMD RUNS_S MED RSS_MAX   # by key
NOTES=() SETUP_LOG=() CHECKS=() LOADS=()

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) printf "%.3f", a[(NR+1)/2]; else printf "%.3f", (a[NR/2]+a[NR/2+1])/2}'; }

# measure KEY SETUP COMMAND: one cold run of COMMAND (with the final sync) under /usr/bin/time -v.
measure() {
    local key=$1 setup=$2 cmd=$3 secs rss
    CMD[$key]=$cmd
    bash -c "$setup"
    drop_caches
    if ! /usr/bin/time -v -o "$WORK/time.txt" bash -c "$cmd && sync" >"$WORK/out.txt" 2>&1; then
        cat "$WORK/out.txt" "$WORK/time.txt" >&2
        die "failed: $cmd"
    fi
    secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]; printf "%.2f", s}' "$WORK/time.txt")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")
    RUNS_S[$key]="${RUNS_S[$key]:-} $secs"
    if (( rss > ${RSS_MAX[$key]:-0} )); then RSS_MAX[$key]=$rss; fi
    printf '  %-14s run %-2s %7.2f s  maxrss %6.1f MiB  (%s)\n' "$key" "$(wc -w <<<"${RUNS_S[$key]}")" "$secs" \
        "$(awk -v k="$rss" 'BEGIN {print k / 1024}')" "$cmd" >&2
}

# pair N "KEY|SETUP|COMMAND|CHECK" ...: N rounds, the commands interleaved (the order rotating
# each round); CHECK (if any) runs once after the first run of its command, untimed.
pair() {
    local n=$1 i j k spec key setup cmd check
    shift
    local -a specs=("$@")
    declare -A slow=()
    for ((i = 0; i < n; i++)); do
        for ((j = 0; j < ${#specs[@]}; j++)); do
            spec=${specs[$(((i + j) % ${#specs[@]}))]}
            IFS='|' read -r key setup cmd check <<<"$spec"
            if [[ -n ${slow[$key]:-} ]]; then continue; fi
            measure "$key" "$setup" "$cmd"
            if (( i == 0 )) && [[ -n $check ]]; then
                if out=$(bash -c "$check" 2>&1); then CHECKS+=("$key: \`$check\` → $(tr '\n' ' ' <<<"$out")")
                else CHECKS+=("$key: \`$check\` → FAILED: $(tr '\n' ' ' <<<"$out")"); die "check failed for $key: $out"; fi
            fi
            k=$(awk '{print $NF}' <<<"${RUNS_S[$key]}")
            if awk -v s="$k" -v l="$SLOW_LIMIT" 'BEGIN {exit !(s > l)}'; then
                slow[$key]=1
                NOTES+=("$key: one run took $k s (> SLOW_LIMIT=$SLOW_LIMIT s), not repeated.")
            fi
        done
    done
    for spec in "${specs[@]}"; do
        key=${spec%%|*}
        MED[$key]=$(median <<<"${RUNS_S[$key]}")
    done
}

setup_step() {  # setup_step COMMAND: fixture creation, logged with its time
    local t0=$EPOCHREALTIME out
    out=$(bash -c "$1" 2>&1) || { echo "$out" >&2; die "setup failed: $1"; }
    SETUP_LOG+=("\`$1\` ($(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}') s) $(tail -1 <<<"$out")")
    echo "  setup: $1 ($(tail -1 <<<"$out"))" >&2
}

load() {  # load STAGE: load average and CPU pressure (share of time some task waited for a CPU)
    local psi=""
    [[ -r /proc/pressure/cpu ]] && psi=", CPU pressure avg60 $(awk '/^some/ {sub("avg60=", "", $3); print $3 "%"}' /proc/pressure/cpu)"
    LOADS+=("$1: load $(cut -d' ' -f1-3 /proc/loadavg)$psi")
}
T_START=$EPOCHREALTIME

# ---------------------------------------------------------------------------------------------
say "fixtures in $WORK"
load "start"
mkdir -p A C S scan
setup_step "vhd-bench fill-half tap50.vhd --size-mb $SIZE_MB --blocks $FILL_BLOCKS --seed 7"
setup_step "vhd convert tap50.vhd raw50.raw"
setup_step "vhd create -n A/parent.vhd -s $SIZE_MB && cp -p A/parent.vhd A/parent.pristine && vhd snapshot -n A/child.vhd -p A/parent.vhd"
setup_step "vhd-bench fill-half A/child.vhd --blocks $FILL_BLOCKS --seed 11"
setup_step "vhd create -n C/parent.vhd -s $SIZE_MB && cp -p C/parent.vhd C/parent.pristine && vhd snapshot -n C/child.vhd -p C/parent.vhd"
setup_step "vhd-bench fill-sparse C/child.vhd --blocks $SPARSE_BLOCKS --runs 256 --sectors 8 --seed 11"
setup_step "vhd create -n S/big.vhd -s 2088960"
setup_step "vhd-bench make-vhds scan --count $SCAN_COUNT --size-mb 8192"
SUM_A=$(vhd cat A/child.vhd | md5sum | cut -d' ' -f1)
SUM_C=$(vhd cat C/child.vhd | md5sum | cut -d' ' -f1)
sync

# ---------------------------------------------------------------------------------------------
say "1. convert VHD -> raw (tap50.vhd: $FILL_BLOCKS of $((SIZE_MB / 2)) blocks of random data)"
load "convert vhd->raw"
pair "$RUNS" \
    "vhd2raw.vhd|rm -f out.raw; sync|vhd convert tap50.vhd out.raw|qemu-img compare -f vpc -F raw tap50.vhd out.raw" \
    "vhd2raw.qemu|rm -f out.raw; sync|qemu-img convert -f vpc -O raw tap50.vhd out.raw|"
rm -f out.raw

say "1. convert raw -> VHD (raw50.raw: the same data, sparse)"
load "convert raw->vhd"
pair "$RUNS" \
    "raw2vhd.vhd|rm -f out.vhd; sync|vhd convert raw50.raw out.vhd|vhd check -n out.vhd && qemu-img compare -f raw -F vpc raw50.raw out.vhd" \
    "raw2vhd.qemu|rm -f out.vhd; sync|qemu-img convert -f raw -O vpc raw50.raw out.vhd|"
rm -f out.vhd

say "2. coalesce $FILL_BLOCKS full blocks into an empty parent, vs copying the child file"
load "coalesce full blocks"
pair "$RUNS" \
    "coalA.vhd|cp -p A/parent.pristine A/parent.vhd; sync|vhd coalesce -n A/child.vhd|vhd check -n A/parent.vhd && test \"\$(vhd cat A/parent.vhd | md5sum | cut -d' ' -f1)\" = $SUM_A && echo content identical to the chain before coalesce" \
    "coalA.dd|rm -f A/copy.bin; sync|dd if=A/child.vhd of=A/copy.bin bs=4M status=none|" \
    "coalA.cp|rm -f A/copy.bin; sync|cp A/child.vhd A/copy.bin|"
rm -f A/copy.bin A/parent.vhd

say "3. coalesce $SPARSE_BLOCKS blocks x 256 runs of 8 sectors into an empty parent"
load "coalesce sparse runs"
pair "$RUNS_SPARSE" \
    "coalC.vhd|cp -p C/parent.pristine C/parent.vhd; sync|vhd coalesce -n C/child.vhd|vhd check -n C/parent.vhd && test \"\$(vhd cat C/parent.vhd | md5sum | cut -d' ' -f1)\" = $SUM_C && echo content identical to the chain before coalesce"
rm -f C/parent.vhd

# ---------------------------------------------------------------------------------------------
say "4. snapshot of a 2040 GiB VHD"
load "snapshot"
sync
SNAP_INPROC=$(vhd-bench time-snapshot S/big.vhd --iterations "$SNAP_ITERS" --breakdown)
echo "$SNAP_INPROC" >&2
snap_runs=""
for ((i = 0; i < SNAP_CMD_RUNS; i++)); do
    t0=$EPOCHREALTIME
    vhd snapshot -n "S/cmd-$i.vhd" -p S/big.vhd
    t1=$EPOCHREALTIME
    snap_runs+=" $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", (b - a) * 1000}')"
    rm -f "S/cmd-$i.vhd"
done
SNAP_CMD_MED=$(median <<<"$snap_runs")
echo "  vhd snapshot (whole command) median $SNAP_CMD_MED ms: $snap_runs" >&2

say "4. scan of $SCAN_COUNT VHDs"
load "scan"
SCAN_INPROC=$(vhd-bench time-scan scan --iterations "$SCAN_ITERS")
echo "$SCAN_INPROC" >&2
SCAN_LINES=$(vhd scan -f -m 'scan/*.vhd' | grep -c '^vhd=')
[[ $SCAN_LINES -eq $SCAN_COUNT ]] || die "vhd scan listed $SCAN_LINES of $SCAN_COUNT VHDs"
scan_warm=""
for ((i = 0; i < SCAN_CMD_RUNS; i++)); do
    t0=$EPOCHREALTIME; vhd scan -f -m 'scan/*.vhd' >/dev/null; t1=$EPOCHREALTIME
    scan_warm+=" $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')"
done
scan_cold=""
for ((i = 0; i < 3; i++)); do
    drop_caches
    t0=$EPOCHREALTIME; vhd scan -f -m 'scan/*.vhd' >/dev/null; t1=$EPOCHREALTIME
    scan_cold+=" $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')"
done
SCAN_WARM_MED=$(median <<<"$scan_warm")
SCAN_COLD_MED=$(median <<<"$scan_cold")
echo "  vhd scan warm median $SCAN_WARM_MED s: $scan_warm; cold median $SCAN_COLD_MED s: $scan_cold" >&2
load "end"

# ---------------------------------------------------------------------------------------------
# Report.
field() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k {print $2}'; }
mib() { awk -v k="${1:-0}" 'BEGIN {printf "%.1f", k / 1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
yesno() { if awk "BEGIN {exit !($1)}"; then echo "**met**"; else echo "**missed**"; fi; }
runs() { sed 's/^ //' <<<"${RUNS_S[$1]}"; }

SNAP_MED=$(field "$(grep '^snapshot ' <<<"$SNAP_INPROC")" median_ms)
SNAP_OPEN=$(field "$(grep '^open-parent-with-bat ' <<<"$SNAP_INPROC")" median_ms)
SNAP_HDR=$(field "$(grep '^open-parent-header-only ' <<<"$SNAP_INPROC")" median_ms)
SNAP_WRITE=$(field "$(grep '^write-new' <<<"$SNAP_INPROC")" median_ms)
SCAN_MED=$(field "$SCAN_INPROC" median_ms)
SCAN_MED_S=$(awk -v m="$SCAN_MED" 'BEGIN {printf "%.3f", m / 1000}')

r_v2r=$(ratio "${MED[vhd2raw.qemu]}" "${MED[vhd2raw.vhd]}")
r_r2v=$(ratio "${MED[raw2vhd.qemu]}" "${MED[raw2vhd.vhd]}")
r_dd=$(ratio "${MED[coalA.vhd]}" "${MED[coalA.dd]}")
r_cp=$(ratio "${MED[coalA.vhd]}" "${MED[coalA.cp]}")
rss_all=0
for k in vhd2raw.vhd raw2vhd.vhd coalA.vhd coalC.vhd; do
    if (( ${RSS_MAX[$k]} > rss_all )); then rss_all=${RSS_MAX[$k]}; fi
done

row() {  # case | command | runs | median | max RSS | comparison | goal | met
    printf '| %s | `%s` | %s | %s | %s | %s | %s | %s |\n' "$@"
}
TABLE=$(
    echo "| Case | Command | Runs (s) | Median (s) | Max RSS (MiB) | vs comparison | Goal | Result |"
    echo "|---|---|---|---:|---:|---|---|---|"
    row "1a VHD→raw" "${CMD[vhd2raw.vhd]}" "$(runs vhd2raw.vhd)" "${MED[vhd2raw.vhd]}" "$(mib "${RSS_MAX[vhd2raw.vhd]}")" "speed-up vs qemu-img: ${r_v2r}×" "≥ 1.5× faster" "$(yesno "$r_v2r >= 1.5")"
    row "1a VHD→raw" "${CMD[vhd2raw.qemu]}" "$(runs vhd2raw.qemu)" "${MED[vhd2raw.qemu]}" "$(mib "${RSS_MAX[vhd2raw.qemu]}")" "comparison" "" ""
    row "1b raw→VHD" "${CMD[raw2vhd.vhd]}" "$(runs raw2vhd.vhd)" "${MED[raw2vhd.vhd]}" "$(mib "${RSS_MAX[raw2vhd.vhd]}")" "speed-up vs qemu-img: ${r_r2v}×" "≥ 1.5× faster" "$(yesno "$r_r2v >= 1.5")"
    row "1b raw→VHD" "${CMD[raw2vhd.qemu]}" "$(runs raw2vhd.qemu)" "${MED[raw2vhd.qemu]}" "$(mib "${RSS_MAX[raw2vhd.qemu]}")" "comparison" "" ""
    row "2 coalesce, $FILL_BLOCKS full blocks" "${CMD[coalA.vhd]}" "$(runs coalA.vhd)" "${MED[coalA.vhd]}" "$(mib "${RSS_MAX[coalA.vhd]}")" "${r_dd}× dd's time (${r_cp}× cp's)" "≤ 1.10× dd" "$(yesno "$r_dd <= 1.10")"
    row "2 copy of the child" "${CMD[coalA.dd]}" "$(runs coalA.dd)" "${MED[coalA.dd]}" "$(mib "${RSS_MAX[coalA.dd]}")" "comparison" "" ""
    row "2 copy of the child" "${CMD[coalA.cp]}" "$(runs coalA.cp)" "${MED[coalA.cp]}" "$(mib "${RSS_MAX[coalA.cp]}")" "comparison" "" ""
    row "3 coalesce, $SPARSE_BLOCKS blocks × 256 runs of 8 sectors" "${CMD[coalC.vhd]}" "$(runs coalC.vhd)" "${MED[coalC.vhd]}" "$(mib "${RSS_MAX[coalC.vhd]}")" "blktap: ~182.65 s (reference §7)" "< 4 s" "$(yesno "${MED[coalC.vhd]} < 4")"
    row "4 snapshot of 2040 GiB, in-process" "vhd-bench time-snapshot S/big.vhd --iterations $SNAP_ITERS" "$(field "$(grep '^snapshot ' <<<"$SNAP_INPROC")" min_ms)–$(field "$(grep '^snapshot ' <<<"$SNAP_INPROC")" max_ms) ms, p90 $(field "$(grep '^snapshot ' <<<"$SNAP_INPROC")" p90_ms) ms" "${SNAP_MED} ms" "" "open parent with BAT ${SNAP_OPEN} ms (header only: ${SNAP_HDR} ms) + write child ${SNAP_WRITE} ms (medians, timed apart)" "< 2 ms" "$(yesno "$SNAP_MED < 2")"
    row "4 snapshot, whole command" "vhd snapshot -n S/cmd-\$i.vhd -p S/big.vhd" "$(sed 's/^ //' <<<"$snap_runs") ms" "${SNAP_CMD_MED} ms" "" "process start to exit, for scale" "" ""
    row "4 scan of $SCAN_COUNT VHDs, in-process" "vhd-bench time-scan scan --iterations $SCAN_ITERS" "$(field "$SCAN_INPROC" min_ms)–$(field "$SCAN_INPROC" max_ms) ms" "$SCAN_MED_S" "" "warm cache" "< 1 s" "$(yesno "$SCAN_MED_S < 1")"
    row "4 scan, whole command, warm" "vhd scan -f -m 'scan/*.vhd'" "$(sed 's/^ //' <<<"$scan_warm")" "$SCAN_WARM_MED" "" "for scale" "" ""
    row "4 scan, whole command, cold" "sync; echo 3 > /proc/sys/vm/drop_caches; vhd scan -f -m 'scan/*.vhd'" "$(sed 's/^ //' <<<"$scan_cold")" "$SCAN_COLD_MED" "" "for scale" "" ""
    row "5 peak memory" "vhd convert (both ways), vhd coalesce (cases 2, 3)" "" "" "$(mib "$rss_all")" "qemu-img: $(mib "${RSS_MAX[vhd2raw.qemu]}") / $(mib "${RSS_MAX[raw2vhd.qemu]}") MiB" "< 64 MiB" "$(yesno "$rss_all < 65536")"
)

DATE=$(date +%Y-%m-%d)
OUT="$ROOT/bench/results-$DATE.md"
[[ -z ${QUICK:-} ]] || OUT="$BENCH_DIR/vhd-bench-quick-$DATE.md"
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1024 / 1024}' /proc/meminfo)
fs=$(findmnt -no SOURCE,FSTYPE,OPTIONS -T "$BENCH_DIR" 2>/dev/null || df -PT "$BENCH_DIR" | awk 'NR==2 {print $1, $2}')
rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$ROOT" status --porcelain -- Sources/VHD Sources/Commands/vhd 2>/dev/null | awk '{print $2}' | tr '\n' ' ')
{
    echo "# VHD engine benchmark results, $DATE"
    echo
    echo "Produced by \`bench/run.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC')."
    echo
    echo "## Machine"
    echo
    echo "- CPUs (nproc): $(nproc); CPU: $cpu"
    echo "- Memory: $mem; kernel: $(uname -r); $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
    echo "- Scratch filesystem ($BENCH_DIR): $fs"
    echo "- Tools: $(swift --version 2>/dev/null | head -1); $(qemu-img --version | head -1); $(dd --version | head -1); $(/usr/bin/time -V 2>&1 | head -1)"
    echo "- Source: commit $rev; uncommitted changes in: ${dirty:-none}"
    echo "- Caches dropped before each timed run: $DROP"
    echo "- Load at each stage (load average 1/5/15 min; CPU pressure from /proc/pressure/cpu):"
    for l in "${LOADS[@]}"; do echo "  - $l"; done
    echo "- Whole benchmark (fixtures, runs, checks): $(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.0f", b - a}') s"
    echo
    echo "## Method"
    echo
    echo "Each timed run: its setup (untimed), \`sync; echo 3 > /proc/sys/vm/drop_caches\`, then"
    echo "\`/usr/bin/time -v bash -c \"<command> && sync\"\` in the scratch folder (\`vhd\`, \`vhd-bench\` are the"
    echo "release builds in \`.build-bench\`). The tools of one case run interleaved, round by round, so"
    echo "background load hits both. Seconds are /usr/bin/time's wall clock; max RSS is its"
    echo "\"Maximum resident set size\" (the largest process of the run). Ratios are of medians."
    echo "Snapshot and scan are also timed in-process by \`vhd-bench\` (monotonic clock, warm cache)."
    echo
    echo "The machine is shared (2 vCPUs, another engineer building and testing at the same time) and"
    echo "the disk is a virtio disk under ext4 mounted with \`discard\`: expect run-to-run noise of"
    echo "tens of percent; medians are the figures to read."
    echo
    echo "## Inputs (untimed)"
    echo
    for s in "${SETUP_LOG[@]}"; do echo "- $s"; done
    echo
    echo "Per-run setup: \`rm -f out.raw\` / \`rm -f out.vhd\` / \`rm -f A/copy.bin\` before a conversion or copy;"
    echo "\`cp -p X/parent.pristine X/parent.vhd\` (the empty parent, same uuid) before each coalesce."
    echo
    echo "## Results"
    echo
    echo "$TABLE"
    echo
    echo "In-process timings (vhd-bench):"
    echo
    echo '```'
    echo "$SNAP_INPROC"
    echo "$SCAN_INPROC"
    echo '```'
    echo
    echo "## Checks (untimed, after the first run)"
    echo
    for c in "${CHECKS[@]}"; do echo "- $c"; done
    if (( ${#NOTES[@]} )); then
        echo
        echo "## Notes"
        echo
        for n in "${NOTES[@]}"; do echo "- $n"; done
    fi
} >"$OUT"

# The latest table into bench/README.md, between its markers.
README="$ROOT/bench/README.md"
if [[ -z ${QUICK:-} && -f $README ]] && grep -q '<!-- results:start -->' "$README"; then
    {
        sed '/<!-- results:start -->/q' "$README"
        echo
        echo "From \`bench/results-$DATE.md\` ($(nproc) × $cpu, $mem, $(uname -r), scratch on $(awk '{print $2}' <<<"$fs"); shared machine, expect noise):"
        echo
        echo "$TABLE"
        echo
        sed -n '/<!-- results:end -->/,$p' "$README"
    } >"$README.new" && mv "$README.new" "$README"
fi

echo
echo "$TABLE"
echo
echo "written: $OUT"
