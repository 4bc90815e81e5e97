#!/bin/bash
# The toolstack tour: toolstackd on the embedded store (SQLite under ./var/toolstack) with a local
# EXT SR on a directory, driven with xe as a user would: sr-list, vdi-create, vdi-snapshot,
# vdi-clone, vdi-list, and the VHD chain the plugin made. Leaves toolstackd running and says how to
# go on (TOUR_STOP=1 stops it at the end, as the tests do).
set -euo pipefail
: "${TOOLSTACKD:?set TOOLSTACKD}" "${XE:?set XE}" "${SMDRIVER:?set SMDRIVER}" "${VHD:?set VHD}"
root=$(cd "$(dirname "$0")/.." && pwd)
state=${TOUR_DIR:-$root/var/toolstack}
run=${TOUR_RUN_DIR:-/tmp/swiftsm-tour}     # short: datapath sockets live there
[ -f "$state/toolstackd.pid" ] && kill "$(cat "$state/toolstackd.pid")" 2>/dev/null && sleep 0.5
rm -rf "$state" "$run"
mkdir -p "$state/sm" "$state/sr"
ln -s "$SMDRIVER" "$state/sm/EXTSR"
export XE_SOCKET=$state/xapi.sock
step() { printf '\n\033[1m$ xe %s\033[0m\n' "$*" >&2; "$XE" "$@"; }

SWIFTSM_GC_AUTOSTART=0 "$TOOLSTACKD" --state-dir "$state" --socket "$XE_SOCKET" --sm-dir "$state/sm" --run-dir "$run" \
    2> "$state/toolstackd.log" &
echo $! > "$state/toolstackd.pid"
for _ in $(seq 100); do grep -q ready "$state/toolstackd.log" 2>/dev/null && break; sleep 0.1; done
printf '\033[1mtoolstackd\033[0m (pid %s) serves the XenAPI on %s; its records live in %s/state.db\n' \
    "$(cat "$state/toolstackd.pid")" "$XE_SOCKET" "$state" >&2

step sm-list
sr=$(step sr-create name-label="Local storage" type=ext device-config:path="$state/sr")
echo "$sr"
step sr-list
disk=$(step vdi-create sr-uuid="$sr" name-label=disk0 virtual-size=1GiB)
echo "$disk"
snap=$(step vdi-snapshot uuid="$disk")
echo "$snap"
clone=$(step vdi-clone uuid="$snap" new-name-label="clone of disk0")
echo "$clone"
step vdi-list sr-uuid="$sr" params=uuid,name-label,is-a-snapshot,managed,sm-config
printf '\n\033[1mThe VHD chain the plugin made\033[0m (the hidden base copy parents the disk, its snapshot and the clone)\n' >&2
"$VHD" scan -f -m "$state/sr/*.vhd" -p | python3 "$root/scripts/smapi-request.py" --tree "disk0=$disk" "snapshot=$snap" "clone=$clone" >&2

if [ "${TOUR_STOP:-0}" = 1 ]; then
    kill "$(cat "$state/toolstackd.pid")"
    rm -f "$state/toolstackd.pid"
    exit 0
fi
cat >&2 <<MSG

toolstackd keeps running. Try:
  export XE_SOCKET=$XE_SOCKET
  $XE vdi-list params=all
  $XE vdi-snapshot uuid=$disk
  $XE vdi-resize uuid=$disk disk-size=2GiB
  $XE sr-scan uuid=$sr
  $XE help
or the XenAPI SDK: XenAPI.Session("http://$(echo "$XE_SOCKET" | tr / _)", transport=XenAPI.UDSTransport())
Stop it with: kill \$(cat $state/toolstackd.pid)
MSG
