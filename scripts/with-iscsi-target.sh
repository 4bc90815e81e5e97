#!/usr/bin/env bash
# Runs a command beside two throw-away iSCSI targets (tgt on loopback, scripts/iscsi-test-target.sh),
# which stop when the command ends, whatever happens:
#   * a plain one (no CHAP) with two LUNs of 256 MiB, the second thin-provisioned (UNMAP):
#     SWIFTSM_TEST_ISCSI=<host>:<port>:<iqn>, SWIFTSM_TEST_ISCSI_STATE=<its state directory>
#     (LUN n is backed by $SWIFTSM_TEST_ISCSI_STATE/lun<n>.img)
#   * one that requires mutual CHAP, one LUN of 64 MiB:
#     SWIFTSM_TEST_ISCSI_CHAP=<host>:<port>:<iqn>, SWIFTSM_TEST_ISCSI_CHAP_USER,
#     SWIFTSM_TEST_ISCSI_CHAP_PASSWORD (the initiator's), SWIFTSM_TEST_ISCSI_CHAP_TARGET_USER,
#     SWIFTSM_TEST_ISCSI_CHAP_TARGET_PASSWORD (the target's, for mutual CHAP)
# Tests that kill or restart a target start their own (scripts/iscsi-test-target.sh, another port).
#   scripts/with-iscsi-target.sh COMMAND [ARGS...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
state=$(mktemp -d /tmp/swiftsm-iscsi.XXXXXX)
port_free() { ! ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }
free_port() {
  local p
  for p in $(seq "$1" 2 "$2"); do
    if port_free "$p"; then echo "$p"; return 0; fi
  done
  return 1
}
stop() {
  "$here/iscsi-test-target.sh" stop "$state/plain" >/dev/null 2>&1 || true
  "$here/iscsi-test-target.sh" stop "$state/chap" >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap stop EXIT
port=${ISCSI_TEST_PORT:-$(free_port 23260 23400)} || { echo "with-iscsi-target: no free port" >&2; exit 1; }
iqn=iqn.2026-12.org.swiftsm.test:plain
ISCSI_THIN=0 "$here/iscsi-test-target.sh" start "$state/plain" "$port" "$iqn" 256 1 >/dev/null
# LUN 2, thin-provisioned, on the same target.
sock="$state/plain/tgtd.sock"
truncate -s 256M "$state/plain/lun2.img"
h=$(printf '%s' "$iqn/2" | sha1sum | cut -c1-40)
TGT_IPC_SOCKET=$sock timeout 5 tgtadm --lld iscsi --mode logicalunit --op new --tid 1 --lun 2 --backing-store "$state/plain/lun2.img"
TGT_IPC_SOCKET=$sock timeout 5 tgtadm --lld iscsi --mode logicalunit --op update --tid 1 --lun 2 \
  --params "scsi_id=${h:0:32},scsi_sn=${h:32:8},thin_provisioning=1"
chap_port=$(free_port $((port + 1)) 23401) || { echo "with-iscsi-target: no free port" >&2; exit 1; }
chap_iqn=iqn.2026-12.org.swiftsm.test:chap
user=swiftsm-init password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
tuser=swiftsm-target tpassword=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
ISCSI_CHAP_USER=$user ISCSI_CHAP_PASSWORD=$password ISCSI_CHAP_TARGET_USER=$tuser ISCSI_CHAP_TARGET_PASSWORD=$tpassword \
  "$here/iscsi-test-target.sh" start "$state/chap" "$chap_port" "$chap_iqn" 64 1 >/dev/null
export SWIFTSM_TEST_ISCSI="127.0.0.1:$port:$iqn"
export SWIFTSM_TEST_ISCSI_STATE="$state/plain"
export SWIFTSM_TEST_ISCSI_CHAP="127.0.0.1:$chap_port:$chap_iqn"
export SWIFTSM_TEST_ISCSI_CHAP_USER=$user SWIFTSM_TEST_ISCSI_CHAP_PASSWORD=$password
export SWIFTSM_TEST_ISCSI_CHAP_TARGET_USER=$tuser SWIFTSM_TEST_ISCSI_CHAP_TARGET_PASSWORD=$tpassword
export SWIFTSM_TEST_ISCSI_SCRIPT="$here/iscsi-test-target.sh"
set +e
"$@"
status=$?
set -e
exit $status
