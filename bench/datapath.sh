#!/usr/bin/env bash
# The NBD data path side by side with what a user would otherwise run: swiftsm-datapath serving a
# dynamic VHD, qemu-nbd -f vpc serving the same VHD, nbdkit file serving the same data raw.
#   sequential 1 GiB read and write with nbdcopy (page cache dropped before each run),
#   random 4 KiB read and write IOPS with fio --ioengine=nbd (iodepth 16),
#   the server's CPU time per GiB copied (steadier than speed on a shared machine),
#   peak RSS (VmHWM) of each server process.
# Usage: sudo bench/datapath.sh   (writes bench/results-datapath-<date>.md)
# Knobs: RUNS (3), SIZE_MB (1024), FIO_SECONDS (20), BIN (use these binaries, skip the build),
#        BENCH_DIR (/var/tmp), QUICK=1 (256 MiB, one run, 5 s fio, report left in the scratch folder),
#        MIX_ROUNDS (1: rounds of the 70/30 rows, medians), BIN_BEFORE (a folder with an older
#        swiftsm-datapath: the 70/30 rows run with it too, in the same rounds), ONLY_MIX=1 (only
#        the 70/30 rows; report in bench/results-datapath-mix-<date>.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
RUNS=${RUNS:-3}; SIZE_MB=${SIZE_MB:-1024}; FIO_SECONDS=${FIO_SECONDS:-20}; MIX_ROUNDS=${MIX_ROUNDS:-1}; ONLY_MIX=${ONLY_MIX:-0}
if [ "${QUICK:-0}" = 1 ]; then RUNS=1; SIZE_MB=256; FIO_SECONDS=5; fi
for tool in nbdcopy fio qemu-nbd qemu-img nbdkit; do
  command -v $tool >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libnbd-bin fio qemu-utils nbdkit >/dev/null; break; }
done
if [ -z "${BIN:-}" ]; then
  swift build -c release -j 2 --scratch-path .build-bench --product swiftsm-datapath >/dev/null
  swift build -c release -j 2 --scratch-path .build-bench --product vhd >/dev/null
  BIN=$(swift build -c release --scratch-path .build-bench --show-bin-path)
fi
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/swiftsm-bench-dp.XXXXXX")
cleanup() { for f in "$work"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT
drop() { sync; if [ -w /proc/sys/vm/drop_caches ]; then echo 3 > /proc/sys/vm/drop_caches; fi; }
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
wait_socket() { for _ in $(seq 500); do [ -S "$1" ] && return 0; sleep 0.02; done; echo "no socket $1" >&2; return 1; }

# Inputs: SIZE_MB of random data, raw and as a dynamic VHD.
head -c $((SIZE_MB << 20)) /dev/urandom > "$work/data.raw"
"$BIN/vhd" convert "$work/data.raw" "$work/data.vhd" >/dev/null 2>&1 || qemu-img convert -f raw -O vpc -o subformat=dynamic "$work/data.raw" "$work/data.vhd"
qemu-img compare -q -f raw -F vpc "$work/data.raw" "$work/data.vhd"

# The scratch folder is also an EXT SR on a directory, as `sr_attach` leaves one: the SR's
# marker in it and its plug record in a run directory of our own. The data path is started as
# vdi_activate starts it, with (driver, SR, VDI); the image it serves is hard-linked as the
# VDI's volume, beside its parents, so that relative parent locators resolve.
SR=00000000-0000-4000-8000-0000000000b1; VDI=00000000-0000-4000-8000-0000000000b2
echo "$SR" > "$work/.swiftsm-sr"
mkdir -p "$work/run/sr"
printf '{"sr":"%s","deviceConfig":{"path":"%s"}}' "$SR" "$work" > "$work/run/sr/$SR.plug.json"

# Servers: start_<name> IMAGE sets $uri; the pid goes to $work/<name>.pid. (Not run in a
# subshell: nbdkit -f exits with its parent.)
start_swiftsm() {
  rm -rf "$work/dp"
  ln -f "$1" "$work/$VDI.vhd"
  local usage; usage=$("$BIN/swiftsm-datapath" 2>&1 || true)
  if [[ $usage == *--driver* ]]; then
    "$BIN/swiftsm-datapath" --driver ext --sr "$SR" --vdi "$VDI" --export bench --dir "$work/dp" --run "$work/run" \
      >>"$work/dp.log" 2>&1 &
  else    # a binary from before the storage seam (BIN_BEFORE) takes the leaf's path
    "$BIN/swiftsm-datapath" --sr bench --vdi bench --export bench --leaf "$1" --dir "$work/dp" >>"$work/dp.log" 2>&1 &
  fi
  echo $! > "$work/swiftsm.pid"
  wait_socket "$work/dp/ctl"
  uri="nbd+unix:///bench?socket=$work/dp/nbd"
}
start_qemu() {
  rm -f "$work/q.sock"
  qemu-nbd -f vpc -x bench -k "$work/q.sock" --shared=16 --persistent "$1" >>"$work/qemu.log" 2>&1 &
  echo $! > "$work/qemu.pid"
  wait_socket "$work/q.sock"
  uri="nbd+unix:///bench?socket=$work/q.sock"
}
start_nbdkit() {
  rm -f "$work/k.sock"
  nbdkit -f -U "$work/k.sock" -e bench file file="$1" >>"$work/nbdkit.log" 2>&1 &
  echo $! > "$work/nbdkit.pid"
  wait_socket "$work/k.sock"
  uri="nbd+unix:///bench?socket=$work/k.sock"
}
# stop NAME: records the process's peak RSS (KiB) and ends it.
stop() {
  local pid; pid=$(cat "$work/$1.pid")
  awk '/VmHWM/ {print $2}' "/proc/$pid/status" >> "$work/$1.rss"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -f "$work/$1.pid"
}
image_for() { case $1 in nbdkit) echo "$2.raw" ;; *) echo "$2.vhd" ;; esac; }
fresh_target() { # name -> path of an empty target of SIZE_MB
  case $1 in
    nbdkit) rm -f "$work/t.raw"; truncate -s $((SIZE_MB << 20)) "$work/t.raw"; echo "$work/t.raw" ;;
    *) rm -f "$work/t.vhd"; "$BIN/vhd" create -n "$work/t.vhd" -s "$SIZE_MB" >/dev/null; echo "$work/t.vhd" ;;
  esac
}
servers=(swiftsm qemu nbdkit)
declare -A seqread seqwarm seqwrite randread randwrite readlat writelat diskios diskkib cpucold cpuwarm cpuwrite
# CPU time (ms, all threads) the server named $1 has used so far: what each copy costs the
# server, steadier on a shared machine than the copy's speed.
cpu_ms() { awk '{printf "%d\n", ($14 + $15) * 1000 / '"$(getconf CLK_TCK)"'}' "/proc/$(cat "$work/$1.pid")/stat"; }
# The disk under the scratch folder, whose read requests the cold reads are counted in: the
# same bytes in fewer, larger requests means the server helps the disk's readahead.
disk=$(basename "$(df --output=source "$work" | tail -1)")
diskstat() { awk -v d="$disk" '$3==d {print $4, $6}' /proc/diskstats; }

seq_runs=$RUNS; [ "$ONLY_MIX" = 1 ] && seq_runs=0
for run in $(seq "$seq_runs"); do
  for s in "${servers[@]}"; do
    start_$s "$(image_for $s "$work/data")"
    drop; { read -r i0 s0 < <(diskstat) || true; }; c0=$(cpu_ms $s); t0=$(now); nbdcopy "$uri" null:; t1=$(now); c1=$(cpu_ms $s); { read -r i1 s1 < <(diskstat) || true; }
    cpucold[$s]+="$(( (c1 - c0) * 1024 / SIZE_MB )) "
    if [ -n "${i0:-}" ] && [ "$i1" -gt "$i0" ]; then diskios[$s]+="$((i1 - i0)) "; diskkib[$s]+="$(( (s1 - s0) / 2 / (i1 - i0) )) "; fi
    seqread[$s]+="$(printf '%.0f' "$(echo "$SIZE_MB / ($t1 - $t0)" | bc -l)") "
    # Again at once: the image now in the page cache, what the server itself costs shows.
    c0=$(cpu_ms $s); t0=$(now); nbdcopy "$uri" null:; t1=$(now); c1=$(cpu_ms $s)
    cpuwarm[$s]+="$(( (c1 - c0) * 1024 / SIZE_MB )) "
    seqwarm[$s]+="$(printf '%.0f' "$(echo "$SIZE_MB / ($t1 - $t0)" | bc -l)") "
    stop $s
    target=$(fresh_target $s)
    start_$s "$target"
    drop; c0=$(cpu_ms $s); t0=$(now); nbdcopy --flush "$work/data.raw" "$uri"; t1=$(now); c1=$(cpu_ms $s)
    cpuwrite[$s]+="$(( (c1 - c0) * 1024 / SIZE_MB )) "
    seqwrite[$s]+="$(printf '%.0f' "$(echo "$SIZE_MB / ($t1 - $t0)" | bc -l)") "
    stop $s
    case $s in nbdkit) cmp -s "$target" "$work/data.raw" ;; *) qemu-img compare -q -f vpc -F raw "$target" "$work/data.raw" ;; esac \
      || { echo "$s: written image differs from the source" >&2; exit 1; }
  done
done

fio_run() { # uri rw -> "iops mean_latency_us"
  fio --name=b --ioengine=nbd --uri="$1" --rw="$2" --bs=4k --iodepth=16 --size=$((SIZE_MB << 20)) \
      --runtime="$FIO_SECONDS" --time_based --ramp_time=2 --output-format=json --output="$work/fio.json" >"$work/fio.log" 2>&1
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))["jobs"][0]; d=j["read"] if j["read"]["iops"]>0 else j["write"]; print(round(d["iops"]), round(d["clat_ns"]["mean"]/1000))' "$work/fio.json"
}
[ "$ONLY_MIX" = 1 ] || for s in "${servers[@]}"; do
  cp --sparse=always "$(image_for $s "$work/data")" "$(image_for $s "$work/rand")"
  start_$s "$(image_for $s "$work/rand")"
  read -r iops lat < <(fio_run "$uri" randread);  randread[$s]=$iops; readlat[$s]=$lat
  read -r iops lat < <(fio_run "$uri" randwrite); randwrite[$s]=$iops; writelat[$s]=$lat
  stop $s
  rm -f "$(image_for $s "$work/rand")"
done
# Just after a snapshot: a new empty leaf over the full image, random 70/30 reads and writes
# (every write lands in a block the leaf holds only in part). nbdkit serves the raw file, which
# has no snapshot: the same I/O with nothing to look up. Beside it, the same I/O on a leaf that
# holds all its blocks (the full image itself, no snapshot): what being just after a snapshot
# costs. With BIN_BEFORE both also run with the older binary, in the same rounds (the order
# reversed every other round), for a before/after comparison on the same machine at the same time.
mix_variants=(swiftsm swiftsm-full)
[ -n "${BIN_BEFORE:-}" ] && mix_variants+=(before before-full)
mix_variants+=(qemu nbdkit)
declare -A mixread mixwrite
for round in $(seq "$MIX_ROUNDS"); do
  order=("${mix_variants[@]}")
  if (( round % 2 == 0 )); then for (( i=${#mix_variants[@]}-1, j=0; i>=0; i--, j++ )); do order[j]=${mix_variants[i]}; done; fi
  for v in "${order[@]}"; do
    case $v in
      nbdkit) cp --sparse=always "$work/data.raw" "$work/mix.raw"; target="$work/mix.raw" ;;
      *-full) cp --sparse=always "$work/data.vhd" "$work/mix.vhd"; target="$work/mix.vhd" ;;
      *) cp --sparse=always "$work/data.vhd" "$work/mixbase.vhd"; rm -f "$work/mix.vhd"
         "$BIN/vhd" snapshot -n "$work/mix.vhd" -p "$work/mixbase.vhd" >/dev/null; target="$work/mix.vhd" ;;
    esac
    case $v in
      swiftsm*) start_swiftsm "$target"; name=swiftsm ;;
      before*) BIN=$BIN_BEFORE start_swiftsm "$target"; mv "$work/swiftsm.pid" "$work/before.pid"; name=before ;;
      *) start_$v "$target"; name=$v ;;
    esac
    fio --name=b --ioengine=nbd --uri="$uri" --rw=randrw --rwmixread=70 --bs=4k --iodepth=16 --size=$((SIZE_MB << 20)) \
        --runtime="$FIO_SECONDS" --time_based --ramp_time=2 --output-format=json --output="$work/fio.json" >"$work/fio.log" 2>&1
    read -r r w < <(python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))["jobs"][0]; print(round(j["read"]["iops"]), round(j["write"]["iops"]))' "$work/fio.json")
    mixread[$v]+="$r "; mixwrite[$v]+="$w "
    stop $name
    rm -f "$work/mix.raw" "$work/mix.vhd" "$work/mixbase.vhd"
  done
done

# Report.
date_tag=$(date +%Y-%m-%d)
out="$root/bench/results-datapath-$date_tag.md"
[ "$ONLY_MIX" = 1 ] && out="$root/bench/results-datapath-mix-$date_tag.md"
[ "${QUICK:-0}" = 1 ] && out="$work/../results-datapath-quick-$date_tag.md"
med() { echo "$1" | tr ' ' '\n' | grep -v '^$' | median; }
rss() { sort -n "$work/$1.rss" | tail -1; }
ratio() { printf '%.2f' "$(echo "$1 / $2" | bc -l)"; }
# The 70/30 rows: medians over the rounds; the ratio of a leaf just after a snapshot to a leaf
# holding all its blocks is of read + write IOPS.
mr() { med "${mixread[$1]:-}"; }
mw() { med "${mixwrite[$1]:-}"; }
mt() { echo "$(mr "$1") + $(mw "$1")" | bc; }
mix_rows() {
  echo "| random 4 KiB 70/30 read/write just after a snapshot, fio iodepth 16 (read / write IOPS) | $(mr swiftsm) / $(mw swiftsm) | $(mr qemu) / $(mw qemu) | $(mr nbdkit) / $(mw nbdkit) (raw, no snapshot) | $(ratio "$(mt swiftsm)" "$(mt qemu)") | $(ratio "$(mt swiftsm)" "$(mt nbdkit)") |"
  echo "| the same 70/30 on a leaf holding all its blocks (the image itself, no snapshot) | $(mr swiftsm-full) / $(mw swiftsm-full) | | | | $(ratio "$(mt swiftsm-full)" "$(mt nbdkit)") |"
  echo "| just after a snapshot / leaf holding all its blocks (70/30 IOPS) | $(ratio "$(mt swiftsm)" "$(mt swiftsm-full)") | | | | |"
  if [ -n "${BIN_BEFORE:-}" ]; then
    echo "| before (\`$BIN_BEFORE\`): 70/30 just after a snapshot / on a full leaf (read / write IOPS) | $(mr before) / $(mw before) and $(mr before-full) / $(mw before-full) | | | | $(ratio "$(mt before)" "$(mt nbdkit)") |"
    echo "| before: just after a snapshot / leaf holding all its blocks (70/30 IOPS) | $(ratio "$(mt before)" "$(mt before-full)") | | | | |"
  fi
}
mix_runs() {
  echo "Every 70/30 round, read / write IOPS ($MIX_ROUNDS rounds, order reversed every other round):"
  echo
  for v in "${mix_variants[@]}"; do
    local r=(${mixread[$v]}) w=(${mixwrite[$v]}) line="" i
    for i in "${!r[@]}"; do line+="${r[i]} / ${w[i]}; "; done
    echo "- $v: ${line%; }"
  done
}
declare -A R H W
[ "$ONLY_MIX" = 1 ] || for s in "${servers[@]}"; do
  R[$s]=$(printf '%.0f' "$(med "${seqread[$s]}")"); H[$s]=$(printf '%.0f' "$(med "${seqwarm[$s]}")"); W[$s]=$(printf '%.0f' "$(med "${seqwrite[$s]}")")
done
if [ "$ONLY_MIX" = 1 ]; then
{
  echo "# Datapath benchmark, 70/30 rows only, $date_tag $(date +%H:%M)"
  echo
  echo "Machine: $(uname -srm); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(nproc) CPUs;" \
       "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM; scratch on $(df -h "$work" | awk 'NR==2 {print $1}'); load $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "Tools: $(qemu-nbd --version | head -1), $(nbdkit --version), $(fio --version)."
  echo "Data: $SIZE_MB MiB of random bytes. \`fio --ioengine=nbd --rw=randrw --rwmixread=70 --bs=4k --iodepth=16" \
       "--runtime=$FIO_SECONDS --time_based --ramp_time=2\`; medians of $MIX_ROUNDS rounds. BIN=\`$BIN\`${BIN_BEFORE:+, BIN_BEFORE=\`$BIN_BEFORE\`}."
  echo
  echo "| | swiftsm-datapath (VHD) | qemu-nbd -f vpc (VHD) | nbdkit file (raw) | ours / qemu-nbd | ours / nbdkit |"
  echo "|---|---:|---:|---:|---:|---:|"
  mix_rows
  echo "| peak RSS of the server (MiB) | $(( $(rss swiftsm) / 1024 )) | $(( $(rss qemu) / 1024 )) | $(( $(rss nbdkit) / 1024 )) | | |"
  echo
  mix_runs
} > "$out"
cat "$out"
exit 0
fi
{
  echo "# Datapath benchmark, $date_tag"
  echo
  echo "Machine: $(uname -srm); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(nproc) CPUs;" \
       "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM; scratch on $(df -h "$work" | awk 'NR==2 {print $1}')."
  echo "Tools: $(qemu-nbd --version | head -1), $(nbdkit --version), $(nbdcopy --version | head -1), $(fio --version)."
  echo "Data: $SIZE_MB MiB of random bytes; the same dynamic VHD for swiftsm-datapath and qemu-nbd -f vpc," \
       "the raw file for nbdkit file. Medians of $RUNS runs; page cache dropped before each nbdcopy run except the warm read, which follows the cold one at once."
  echo
  echo "| | swiftsm-datapath (VHD) | qemu-nbd -f vpc (VHD) | nbdkit file (raw) | ours / qemu-nbd | ours / nbdkit |"
  echo "|---|---:|---:|---:|---:|---:|"
  echo "| sequential read, nbdcopy URI null: (MiB/s) | ${R[swiftsm]} | ${R[qemu]} | ${R[nbdkit]} | $(ratio "${R[swiftsm]}" "${R[qemu]}") | $(ratio "${R[swiftsm]}" "${R[nbdkit]}") |"
  echo "| disk read requests per cold read, count / mean KiB | $(med "${diskios[swiftsm]:-0}") / $(med "${diskkib[swiftsm]:-0}") | $(med "${diskios[qemu]:-0}") / $(med "${diskkib[qemu]:-0}") | $(med "${diskios[nbdkit]:-0}") / $(med "${diskkib[nbdkit]:-0}") | | |"
  echo "| sequential read again, image in the page cache (MiB/s) | ${H[swiftsm]} | ${H[qemu]} | ${H[nbdkit]} | $(ratio "${H[swiftsm]}" "${H[qemu]}") | $(ratio "${H[swiftsm]}" "${H[nbdkit]}") |"
  echo "| sequential write into an empty image, nbdcopy --flush (MiB/s) | ${W[swiftsm]} | ${W[qemu]} | ${W[nbdkit]} | $(ratio "${W[swiftsm]}" "${W[qemu]}") | $(ratio "${W[swiftsm]}" "${W[nbdkit]}") |"
  echo "| server CPU per GiB: cold read / warm read / write (ms) | $(med "${cpucold[swiftsm]}") / $(med "${cpuwarm[swiftsm]}") / $(med "${cpuwrite[swiftsm]}") | $(med "${cpucold[qemu]}") / $(med "${cpuwarm[qemu]}") / $(med "${cpuwrite[qemu]}") | $(med "${cpucold[nbdkit]}") / $(med "${cpuwarm[nbdkit]}") / $(med "${cpuwrite[nbdkit]}") | | |"
  echo "| random 4 KiB read, fio iodepth 16 (IOPS) | ${randread[swiftsm]} | ${randread[qemu]} | ${randread[nbdkit]} | $(ratio "${randread[swiftsm]}" "${randread[qemu]}") | $(ratio "${randread[swiftsm]}" "${randread[nbdkit]}") |"
  echo "| random 4 KiB write, fio iodepth 16 (IOPS) | ${randwrite[swiftsm]} | ${randwrite[qemu]} | ${randwrite[nbdkit]} | $(ratio "${randwrite[swiftsm]}" "${randwrite[qemu]}") | $(ratio "${randwrite[swiftsm]}" "${randwrite[nbdkit]}") |"
  mix_rows
  echo "| mean completion latency read / write (µs) | ${readlat[swiftsm]} / ${writelat[swiftsm]} | ${readlat[qemu]} / ${writelat[qemu]} | ${readlat[nbdkit]} / ${writelat[nbdkit]} | | |"
  echo "| peak RSS of the server (MiB) | $(( $(rss swiftsm) / 1024 )) | $(( $(rss qemu) / 1024 )) | $(( $(rss nbdkit) / 1024 )) | | |"
  echo
  mix_runs
  echo
  echo "Every run, MiB/s:"
  echo
  for s in "${servers[@]}"; do echo "- $s: read ${seqread[$s]% }; read warm ${seqwarm[$s]% }; write ${seqwrite[$s]% }"; done
  echo
  echo "Commands: \`nbdcopy URI null:\`; \`nbdcopy --flush data.raw URI\` into a fresh empty image (checked afterwards" \
       "with qemu-img compare / cmp); \`fio --ioengine=nbd --rw=randread|randwrite --bs=4k --iodepth=16" \
       "--runtime=$FIO_SECONDS --time_based --ramp_time=2\` over the whole image (random writes overwrite allocated blocks)." \
       "Servers: \`swiftsm-datapath --driver ext --sr SR --vdi VDI --dir DIR\` (the VDI's volume a hard link to the image), \`qemu-nbd -f vpc --shared=16 --persistent\`, \`nbdkit -U SOCK file\`."
} > "$out"
cat "$out"
