#!/usr/bin/env bash
# `make run`: the VHD engine at work on a disk under ./var, step by step, with the tree at the
# end. (The storage manager issue extends this into the full SMAPIv1 quickstart.)
set -euo pipefail
VHD=${VHD:?set VHD to the vhd executable}
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/var/quickstart"
rm -rf "$dir"; mkdir -p "$dir"; cd "$dir"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step $VHD create -n disk.vhd -s 64
head -c 3145728 /dev/urandom > data.bin
step $VHD write -n disk.vhd -o 1048576 -i data.bin
step $VHD snapshot -n snap1.vhd -p disk.vhd
step $VHD set -n disk.vhd -f hidden -v 1
printf 'written after the first snapshot' | $VHD write -n snap1.vhd -o 512
step $VHD snapshot -n snap2.vhd -p snap1.vhd
step $VHD set -n snap1.vhd -f hidden -v 1
printf 'written after the second snapshot' | $VHD write -n snap2.vhd -o 40000000
step $VHD info snap2.vhd
step $VHD map snap2.vhd
step $VHD check -n snap2.vhd -p
step $VHD coalesce -n snap2.vhd
step $VHD scan -f -m "$dir/*.vhd" -p
printf '\nread back through the chain (after coalescing snap2 into snap1):\n'
$VHD cat snap1.vhd > disk.raw
printf '  sector 1:        %s\n' "$(dd if=disk.raw bs=512 skip=1 count=1 status=none | tr -d '\0')"
printf '  offset 40000000: %s\n' "$(dd if=disk.raw bs=1 skip=40000000 count=33 status=none)"
if cmp -s <(dd if=disk.raw bs=1M skip=1 count=3 status=none) data.bin; then echo "  3 MiB of data written before the snapshots: intact"
else echo "  3 MiB of data: DIFFERENT"; exit 1; fi
