#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the benchmarks need, if any is missing.
set -euo pipefail
packages=(
  qemu-utils          # qemu-img: interop tests and benchmarks
  libnbd-bin python3-libnbd fio nbdkit   # NBD clients (nbdinfo, nbdcopy, libnbd) and servers: datapath tests and benchmarks
  libnbd-dev          # the toolstack's copier: NBD client (CNBD)
  libiscsi-dev libnfs-dev libdevmapper-dev liblvm2-dev libxen-dev   # C shims
  libxml2-dev         # FoundationXML
  e2fsprogs util-linux  # mkfs.ext4, losetup
  lvm2                # pvs/vgs/lvs/vgck/pvck: the LVM engine's interop tests (activation off, loop devices)
  libsqlite3-dev libcrypt-dev   # toolstackd: the embedded store (GRDB), root's password hash (crypt(3))
  python3-pip         # the XenAPI SDK (PyPI xenapi) for the toolstack tests
  postgresql postgresql-client openssl   # toolstackd's PostgreSQL store (a real server in the tests), its TLS certificate
  nfs-ganesha nfs-ganesha-vfs rpcbind libnfs-utils iproute2   # the NFS SR's tests: a user-space NFS server (NFSv3) and nfs-cp
  tgt libiscsi-bin    # the iSCSI tests: a user-space target (tgtd, tgtadm) and libiscsi's tools (iscsi-ls, iscsi-perf)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The public XenAPI SDK the toolstack tests drive toolstackd with.
python3 -c "import XenAPI" 2>/dev/null || python3 -m pip install --quiet xenapi 2>/dev/null \
  || python3 -m pip install --quiet --break-system-packages xenapi
