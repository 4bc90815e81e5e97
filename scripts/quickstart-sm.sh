#!/usr/bin/env bash
# `make run`, part 2: what xapi does to an EXT SR, through the smdriver executable and real
# methodCall documents: create the SR (path mode, under ./var), create a disk, snapshot it
# twice, clone it, delete the first snapshot, scan; each call and its result, then the tree.
set -euo pipefail
SMDRIVER=${SMDRIVER:?set SMDRIVER to the smdriver executable}
VHD=${VHD:?set VHD to the vhd executable}
root=$(cd "$(dirname "$0")/.." && pwd)
base="$root/var/sm"
rm -rf "$base"; mkdir -p "$base"
export SWIFTSM_RUN_DIR="$base/run"
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
"$VHD" scan -f -m "$srdir/*.vhd" -p | python3 "$root/scripts/smapi-request.py" --tree "$disk" "$snap2" "$clone" >&2
