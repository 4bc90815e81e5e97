#!/usr/bin/env bash
# Runs a command beside a throw-away NFS server (NFS-Ganesha, FSAL VFS, NFSv3 on loopback) that
# exports a new directory; the server stops when the command ends, whatever happens. The
# command sees SWIFTSM_TEST_NFS=<host>:<nfs port>:<mount port>:<exported directory> and
# SWIFTSM_TEST_NFS_STATE=<the server's state directory> (for tests that stop and restart it
# with scripts/nfs-test-server.sh, NFS_RO_EXPORT_PATH set as below) and
# SWIFTSM_TEST_NFS_RO=<a second directory, exported read-only>.
#   scripts/with-nfs-server.sh COMMAND [ARGS...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
state=$(mktemp -d /tmp/swiftsm-nfs.XXXXXX)
port_free() { ! ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }
port=${NFS_TEST_PORT:-}
if [ -z "$port" ]; then
  for p in $(seq 20049 2 20199); do
    if port_free "$p" && port_free "$((p + 1))"; then port=$p; break; fi
  done
fi
[ -n "$port" ] || { echo "with-nfs-server: no free port pair in 20049-20200" >&2; exit 1; }
stop() {
  "$here/nfs-test-server.sh" stop "$state/server" >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap stop EXIT
export NFS_RO_EXPORT_PATH="$state/readonly"
"$here/nfs-test-server.sh" start "$state/server" "$port" "$state/export" >/dev/null
export SWIFTSM_TEST_NFS="127.0.0.1:$port:$((port + 1)):$state/export"
export SWIFTSM_TEST_NFS_STATE="$state/server"
export SWIFTSM_TEST_NFS_RO="$state/readonly"
set +e
"$@"
status=$?
set -e
exit $status
