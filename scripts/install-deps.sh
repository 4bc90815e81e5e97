#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the benchmarks need, if any is missing.
set -euo pipefail
packages=(
  qemu-utils          # qemu-img: interop tests and benchmarks
  libnbd-bin python3-libnbd fio nbdkit   # NBD clients (nbdinfo, nbdcopy, libnbd) and servers: datapath tests and benchmarks
  libiscsi-dev libnfs-dev libdevmapper-dev liblvm2-dev libxen-dev   # C shims
  libxml2-dev         # FoundationXML
  e2fsprogs util-linux  # mkfs.ext4, losetup
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
