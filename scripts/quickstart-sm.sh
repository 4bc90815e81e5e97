#!/usr/bin/env bash
# `make run`, part 2: what xapi does to an EXT SR, through the smdriver executable and real
# methodCall documents: create the SR (path mode, under ./var), create a disk, snapshot it
# twice, clone it, delete the first snapshot, scan; each call and its result, then the tree.
set -euo pipefail
SMDRIVER=${SMDRIVER:?set SMDRIVER to the smdriver executable}
VHD=${VHD:?set VHD to the vhd executable}
root=$(cd "$(dirname "$0")/.." && pwd)
base="$root/var/sm"
# The run directory holds the datapaths' unix sockets, whose paths must fit in 107 bytes: it
# lives under a short /tmp name, linked from var/sm/run (SMlog is there).
[ -L "$base/run" ] && rm -rf "$(readlink "$base/run")"
rm -rf "$base"; mkdir -p "$base"
export SWIFTSM_RUN_DIR=$(mktemp -d /tmp/sm.XXXXXX)
# SMAPI calls start a background collector after deletes, snapshots and scans; here it is run by
# hand at the end instead, so that each step's tree is the one the call made.
export SWIFTSM_GC_AUTOSTART=0
ln -s "$SWIFTSM_RUN_DIR" "$base/run"
sr=$(cat /proc/sys/kernel/random/uuid)
srdir="$base/sr-$sr"

# call COMMAND [json-of-extra-members]: builds the methodCall as xapi does and runs EXTSR.
call() {
  local doc
  doc=$(python3 "$root/scripts/smapi-request.py" "$1" "$sr" "$srdir" "${2:-{\}}")
  printf '\n\033[1m> %s %s\033[0m\n' "$1" "${2:-}" >&2
  local out
  out=$("$SMDRIVER" --driver ext "$doc")
  python3 "$root/scripts/smapi-request.py" --show "$out" >&2
  printf '%s' "$out"
}
uuid_of() { python3 "$root/scripts/smapi-request.py" --uuid "$1"; }

call sr_create '{"args": ["0"]}' >/dev/null
call sr_attach >/dev/null
disk=$(uuid_of "$(call vdi_create '{"args": ["1073741824", "my disk", "", "", "false", "19700101T00:00:00Z", "", "false"], "vdi_type": "user", "vdi_sm_config": {}}')")
head -c 4194304 /dev/urandom | "$VHD" write -n "$srdir/$disk.vhd" -o 0
snap1=$(uuid_of "$(call vdi_snapshot "{\"vdi_uuid\": \"$disk\", \"vdi_location\": \"$disk\", \"driver_params\": {}}")")
printf 'more data' | "$VHD" write -n "$srdir/$disk.vhd" -o 8388608
snap2=$(uuid_of "$(call vdi_snapshot "{\"vdi_uuid\": \"$disk\", \"vdi_location\": \"$disk\", \"driver_params\": {}}")")
clone=$(uuid_of "$(call vdi_clone "{\"vdi_uuid\": \"$disk\", \"vdi_location\": \"$disk\", \"driver_params\": {}}")")
call vdi_delete "{\"vdi_uuid\": \"$snap1\", \"vdi_location\": \"$snap1\"}" >/dev/null
call sr_scan >/dev/null

printf >&2 '\n\033[1mThe VHD tree of SR %s\033[0m (disk %s)\n' "$sr" "$disk"
"$VHD" scan -f -m "$srdir/*.vhd" -p | python3 "$root/scripts/smapi-request.py" --tree "the disk=$disk" "snapshot 2=$snap2" "clone=$clone" >&2

# The data path: attach and activate the disk (a swiftsm-datapath process serves its VHD chain
# over NBD), write through NBD with nbdcopy, snapshot it while it is active (the datapath pauses,
# the chain changes under it, it resumes on the new leaf), write again, read both back.
args_rw() { printf '{"vdi_uuid": "%s", "vdi_location": "%s", "args": ["%s"]}' "$1" "$1" "$2"; }
field() { python3 -c 'import sys, xmlrpc.client; print(xmlrpc.client.loads(sys.argv[1])[0][0][sys.argv[2]])' "$1" "$2"; }
attach=$(call vdi_attach "$(args_rw "$disk" true)")
params=$(field "$attach" params_nbd)
sock=${params#nbd:unix:}; sock=${sock%:exportname=*}
uri="nbd+unix:///$disk?socket=$sock"
call vdi_activate "$(args_rw "$disk" true)" >/dev/null
printf >&2 '\n\033[1m$ nbdinfo %s\033[0m\n' "$uri"
nbdinfo "$uri" | grep -E 'export=|export-size|is_read_only|can_multi_conn' >&2
head -c 2097152 /dev/urandom > "$base/before.bin"
printf >&2 '\n\033[1m$ nbdcopy --flush before.bin %s\033[0m  (2 MiB at offset 0)\n' "$uri"
nbdcopy --flush "$base/before.bin" "$uri"
snap3=$(uuid_of "$(call vdi_snapshot "{\"vdi_uuid\": \"$disk\", \"vdi_location\": \"$disk\", \"driver_params\": {}}")")
head -c 1048576 /dev/urandom > "$base/after.bin"
printf >&2 '\n\033[1m$ qemu-img convert -n after.bin %s\033[0m  (1 MiB at offset 0, after the snapshot)\n' "$params"
qemu-img convert -n -f raw -O raw "$base/after.bin" "$params" 2>/dev/null || nbdcopy "$base/after.bin" "$uri"
printf >&2 '\n\033[1mdatapath stats\033[0m: '
python3 - "${sock%/nbd}/ctl" >&2 <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"stats\n")
st = json.loads(s.recv(65536).decode().split(" ", 1)[1])
print(", ".join(f"{k}={st[k]}" for k in ["requests", "bytesWritten", "bytesRead", "pauses", "latencyMeanMicros", "leaf"]))
PY
nbdcopy "$uri" "$base/live.raw"
# TRIM (a guest's discard) gives the space back: holes are punched in the leaf file.
ondisk() { echo $(( $(stat -c %b "$srdir/$disk.vhd") / 2 )); }
kib=$(ondisk)
printf >&2 '\n\033[1m$ qemu-io -f raw -c "discard 0 1M" %s\033[0m  (TRIM)\n' "$uri"
qemu-io -f raw -c "discard 0 1M" "$uri" >/dev/null
zeros=$(qemu-io -f raw -c "read -P 0 0 1M" "$uri" 2>&1)
case $zeros in *"failed"*) echo "the trimmed MiB does not read as zeros" >&2; exit 1 ;; esac
printf >&2 '  leaf file on disk: %s KiB before, %s KiB after; the trimmed MiB reads as zeros\n' "$kib" "$(ondisk)"
call vdi_activate "$(args_rw "$snap3" false)" >/dev/null
snapsock=${sock%/*/nbd}/$snap3/nbd
nbdcopy "nbd+unix:///$snap3?socket=$snapsock" "$base/snap.raw"
call vdi_deactivate "$(args_rw "$snap3" false)" >/dev/null
call vdi_deactivate "$(args_rw "$disk" true)" >/dev/null
call vdi_detach "$(args_rw "$disk" true)" >/dev/null
check() { # what file offset length expected
  if cmp -s <(dd if="$2" bs=1M skip="$3" count="$4" status=none) "$5"; then printf >&2 '  %-66s intact\n' "$1"
  else printf >&2 '  %-66s DIFFERENT\n' "$1"; exit 1; fi
}
printf >&2 '\n\033[1mRead back through NBD\033[0m\n'
check "snapshot: the 2 MiB written before it" "$base/snap.raw" 0 2 "$base/before.bin"
check "live disk: the 1 MiB written after the snapshot" "$base/live.raw" 0 1 "$base/after.bin"
check "live disk: the rest of the 2 MiB from before" "$base/live.raw" 1 1 <(tail -c 1048576 "$base/before.bin")
"$VHD" check -n "$srdir/$disk.vhd" -p >&2

# The garbage collector: the snapshots above left hidden base copies in a chain; deleting the
# oldest remaining snapshot leaves more. `smdriver gc` removes what nothing needs, merges each
# hidden node that is its parent's only child into the parent, merges leaves into a parent they
# are alone on, and relinks the rest: the shortest chains that keep every VDI's content.
call vdi_delete "{\"vdi_uuid\": \"$snap2\", \"vdi_location\": \"$snap2\"}" >/dev/null
tree() { "$VHD" scan -f -m "$srdir/*.vhd" -p | python3 "$root/scripts/smapi-request.py" --tree "the disk=$disk" "snapshot 3=$snap3" "clone=$clone" >&2; }
sums() { for v in "$disk" "$snap3" "$clone"; do printf '%s ' "$("$VHD" cat "$srdir/$v.vhd" | md5sum | cut -c1-12)"; done; }
printf >&2 '\n\033[1mBefore the collector\033[0m (disk, snapshot, clone)\n'
tree
before=$(sums)
printf >&2 '\n\033[1m$ smdriver gc --sr %s\033[0m\n' "$sr"
"$SMDRIVER" --driver ext gc --sr "$sr" >&2
printf >&2 '\n\033[1mAfter the collector\033[0m\n'
tree
after=$(sums)
printf >&2 '\n  content of disk, snapshot, clone before: %s\n  content of disk, snapshot, clone after:  %s\n' "$before" "$after"
[ "$before" = "$after" ] || { echo "the collector changed a VDI's content" >&2; exit 1; }
"$SMDRIVER" --driver ext gc --sr "$sr" --status >&2
for v in "$disk" "$snap3" "$clone"; do "$VHD" check -n "$srdir/$v.vhd" -p >/dev/null; done
printf >&2 '  every VHD passes check\n'
