#!/usr/bin/env bash
# End-to-end tests of the `vhd` executable: vhd-util's commands, flags and output formats,
# content through chains checked by hash, errors and exit codes on the corrupt fixtures.
set -uo pipefail
VHD=${VHD:?set VHD to the vhd executable}
root=$(cd "$(dirname "$0")/.." && pwd)
fx="$root/fixtures/vhd"
work=$(mktemp -d /tmp/swiftsm-cli.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
passed=0 failed=0

ok() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
expect_eq() { # name expected actual
  if [ "$2" == "$3" ]; then ok; else fail "$1: expected [$2] got [$3]"; fi
}
expect_rc() { # name rc command...
  local name=$1 want=$2; shift 2
  "$@" >/dev/null 2>&1; local rc=$?
  if [ "$rc" == "$want" ]; then ok; else fail "$name: exit $rc, expected $want"; fi
}
sha() { sha256sum | cut -d' ' -f1; }

# create: vhd-util's layout and query output
$VHD create -n d100.vhd -s 100
expect_eq "create size" 3584 "$(stat -c %s d100.vhd)"
expect_eq "query -vsfmda" "$(printf '100\n3584\nhidden: 0\nmarker: 0\nchain depth: 1\n0')" "$($VHD query -n d100.vhd -v -s -f -m -d -a)"
expect_eq "query -p no parent" "d100.vhd has no parent" "$($VHD query -n d100.vhd -p)"
expect_eq "check valid" "d100.vhd is valid" "$($VHD check -n d100.vhd)"
# bytes equal to vhd-util's except timestamp, checksum and uuid in both footer copies
diffs=$(cmp -l d100.vhd "$fx/empty/dynamic-100mib.vhd" | awk -v e=3072 '{o=$1-1; r=(o>=e)?o-e:o; if (!((r>=24&&r<28)||(r>=64&&r<84))) print o}' | wc -l)
expect_eq "create bytes as vhd-util" 0 "$diffs"
$VHD create -n f.vhd -s 2 -r
expect_eq "fixed size" $((2*1024*1024 + 512)) "$(stat -c %s f.vhd)"
expect_eq "fixed check" "f.vhd is valid" "$($VHD check -n f.vhd)"
$VHD create -n pre.vhd -s 100 -S 1024
expect_eq "query -S" 1024 "$($VHD query -n pre.vhd -S)"

# convert raw -> vhd -> raw, and cat through a chain
head -c $((6*1024*1024)) /dev/urandom > r.raw
dd if=/dev/zero of=r.raw bs=1M seek=2 count=2 conv=notrunc status=none   # a zero block in the middle
$VHD convert r.raw r.vhd
expect_eq "convert allocates only non-zero blocks" 2 "$($VHD query -n r.vhd -a)"
expect_eq "cat == raw" "$(sha < r.raw)" "$($VHD cat r.vhd | sha)"
$VHD cat r.vhd > cat.raw
expect_eq "cat into a file == raw" "$(sha < r.raw)" "$(sha < cat.raw)"
echo prefix > catapp.raw; $VHD cat r.vhd >> catapp.raw
expect_eq "cat appended to a file" "$( (echo prefix; cat r.raw) | sha)" "$(sha < catapp.raw)"
$VHD create -n huge.vhd -s 2088960
$VHD cat huge.vhd > huge.raw
expect_eq "cat of an empty 2040 GiB disk into a file: its size" $((2088960 * 1024 * 1024)) "$(stat -c %s huge.raw)"
expect_eq "cat of an empty 2040 GiB disk into a file: no space taken" 1 "$([ "$(du -k huge.raw | cut -f1)" -lt 1024 ] && echo 1 || echo 0)"
rm -f huge.raw huge.vhd
$VHD convert r.vhd back.raw
expect_eq "convert back" "$(sha < r.raw)" "$(sha < back.raw)"
expect_eq "sparse raw output" 1 "$([ "$(du -k back.raw | cut -f1)" -lt 6144 ] && echo 1 || echo 0)"
qemu-img compare -q -f vpc -F raw r.vhd r.raw; expect_eq "qemu-img compare" 0 $?

# snapshot, hidden, depth, scan, coalesce, relink
$VHD snapshot -n s1.vhd -p r.vhd
$VHD set -n r.vhd -f hidden -v 1
expect_eq "hidden set" "hidden: 1" "$($VHD query -n r.vhd -f)"
expect_eq "check -p" "$(printf 's1.vhd is valid\nr.vhd is valid')" "$($VHD check -n s1.vhd -p)"
expect_eq "snapshot parent" "$work/r.vhd" "$($VHD query -n s1.vhd -p)"
expect_eq "snapshot depth" "chain depth: 2" "$($VHD query -n s1.vhd -d)"
$VHD snapshot -n s2.vhd -p s1.vhd                # s1 is empty: s2 links to r.vhd
expect_eq "empty parent skipped" "$work/r.vhd" "$($VHD query -n s2.vhd -p)"
$VHD snapshot -n s3.vhd -p s1.vhd -e
expect_eq "-e links to empty parent" "$work/s1.vhd" "$($VHD query -n s3.vhd -p)"
expect_rc "depth limit" 7 $VHD snapshot -n s4.vhd -p s3.vhd -l 3 -e
expect_eq "nothing made over the limit" 0 "$(ls s4.vhd 2>/dev/null | wc -l)"
expect_eq "scan line" "vhd=$work/s1.vhd capacity=6291456 size=5120 hidden=0 parent=r.vhd" "$($VHD scan -f -m "$work/s1*.vhd")"
expect_eq "scan count" 3 "$($VHD scan -f -m "$work/s*.vhd" | wc -l)"
expect_eq "scan -p tree" "   vhd=$work/s1.vhd" "$($VHD scan -f -m "$work/*.vhd" -p | grep "vhd=$work/s1.vhd" | cut -d' ' -f1-4)"
$VHD modify -n s3.vhd -p r.vhd
expect_eq "modify -p relinks" "$work/r.vhd" "$($VHD query -n s3.vhd -p)"
expect_eq "relinked chain valid" "$(printf 's3.vhd is valid\nr.vhd is valid')" "$($VHD check -n s3.vhd -p)"
expect_eq "coalesce empty child" "Coalesced 0 sectors" "$($VHD coalesce -n s3.vhd)"

# coalesce of the blktap fixture chain: same chain content as vhd-util's result
cp -r "$fx/chain-depth3" c3; chmod -R u+w c3
expect_eq "coalesce sectors" "Coalesced $((5+2+4+20+1)) sectors" "$($VHD coalesce -n c3/leaf.vhd)"
expect_eq "coalesced mid valid" "$(printf 'c3/mid.vhd is valid\nc3/base.vhd is valid')" "$($VHD check -n c3/mid.vhd -p)"
expect_eq "coalesce content" "$($VHD cat "$fx/chain-depth3/leaf.vhd" | sha)" "$($VHD cat c3/mid.vhd | sha)"
expect_eq "coalesce as vhd-util" "$($VHD cat "$fx/chain-depth3/mid-coalesced.vhd" | sha)" "$($VHD cat c3/mid.vhd | sha)"

# resize: fast within -S, journaled beyond
$VHD resize -n pre.vhd -s 1000 -f
expect_eq "fast resize" 1000 "$($VHD query -n pre.vhd -v)"
expect_rc "fast resize beyond limit" 22 $VHD resize -n pre.vhd -s 2048 -f
cp r.vhd big.vhd; $VHD set -n big.vhd -f hidden -v 0
$VHD resize -n big.vhd -s 20480 -j big.journal
expect_eq "journaled resize" 20480 "$($VHD query -n big.vhd -v)"
expect_eq "journal removed" 0 "$(ls big.journal 2>/dev/null | wc -l)"
expect_eq "resized valid" "big.vhd is valid" "$($VHD check -n big.vhd)"
expect_eq "resized content" "$( (cat r.raw; head -c $((20480*1024*1024 - 6*1024*1024)) /dev/zero) | sha)" "$($VHD cat big.vhd | sha)"

# corrupt fixtures: check fails with vhd-util's words, repair restores
cp -r "$fx/corrupt" bad; chmod -R u+w bad
expect_rc "bad checksum rejected" 22 $VHD check -n bad/footer-bad-checksum.vhd
{ $VHD check -n bad/footer-bad-checksum.vhd || true; } | grep -q "invalid checksum" && ok || fail "check names the checksum"
expect_rc "cat of bad footer fails" 22 $VHD cat bad/footer-bad-cookie.vhd
expect_rc "BAT past EOF rejected" 22 $VHD cat bad/bat-entry-past-eof.vhd
{ $VHD check -n bad/bat-entry-past-eof.vhd || true; } | grep -q "clobbers footer" && ok || fail "check names the clobbered footer"
expect_rc "missing parent" 2 $VHD cat bad/diff-missing-parent.vhd
{ $VHD check -n bad/diff-parent-uuid-mismatch.vhd || true; } | grep -q "invalid parent uuid" && ok || fail "check names the parent uuid"
expect_rc "missing footer: check fails" 22 $VHD check -n bad/footer-missing-crash.vhd
expect_rc "missing footer: check -i passes" 0 $VHD check -i -n bad/footer-missing-crash.vhd
before=$(sha256sum < bad/batmap-bad-checksum.vhd)
expect_rc "no write to invalid batmap" 22 $VHD set -n bad/batmap-bad-checksum.vhd -f hidden -v 1
expect_eq "file unchanged" "$before" "$(sha256sum < bad/batmap-bad-checksum.vhd)"
for f in footer-missing-crash batmap-bad-checksum footer-bad-checksum-primary-only; do
  $VHD repair -n bad/$f.vhd >/dev/null
  expect_eq "repair $f" "bad/$f.vhd is valid" "$($VHD check -n bad/$f.vhd)"
done
# cbt: cbt-util's create/get/set on the fixtures made from the published layout (fixtures/cbt)
cfx="$root/fixtures/cbt"
$VHD cbt create -n fresh.cbtlog -s 4194304
expect_eq "cbt create flag 0" 0 "$($VHD cbt get -n fresh.cbtlog -f)"
$VHD cbt set -n fresh.cbtlog -f 1
expect_eq "cbt create+set bytes" "$(sha < "$cfx/fresh-4MiB.cbtlog")" "$(sha < fresh.cbtlog)"
expect_eq "cbt get -p" 3fb2e1e4-0f1c-4e61-9a52-7a3c4b1d2e5f "$($VHD cbt get -n "$cfx/linked-4MiB.cbtlog" -p)"
expect_eq "cbt get -c" a1b2c3d4-e5f6-4789-8abc-def012345678 "$($VHD cbt get -n "$cfx/linked-4MiB.cbtlog" -c)"
expect_eq "cbt get -s" 4194304 "$($VHD cbt get -n "$cfx/linked-4MiB.cbtlog" -s)"
expect_eq "cbt get -b" "0302000000000080" "$($VHD cbt get -n "$cfx/linked-4MiB.cbtlog" -b | xxd -p)"
expect_eq "cbt show ranges" "$(printf '0 131072\n589824 65536\n4128768 65536')" "$($VHD cbt show -n "$cfx/linked-4MiB.cbtlog" | tail -3)"
cp "$cfx/fresh-4MiB.cbtlog" l.cbtlog
$VHD cbt set -n l.cbtlog -p 3fb2e1e4-0f1c-4e61-9a52-7a3c4b1d2e5f -c a1b2c3d4-e5f6-4789-8abc-def012345678
expect_eq "cbt set links: header bytes" "$(head -c 48 "$cfx/linked-4MiB.cbtlog" | sha)" "$(head -c 48 l.cbtlog | sha)"
expect_rc "cbt check consistent" 0 $VHD cbt check -n l.cbtlog
expect_rc "cbt check inconsistent" 1 $VHD cbt check -n "$cfx/inconsistent-odd.cbtlog"
expect_rc "cbt set cannot shrink" 22 $VHD cbt set -n l.cbtlog -s 1024
head -c 40 "$cfx/fresh-4MiB.cbtlog" > short.cbtlog
expect_rc "cbt truncated log" 22 $VHD cbt get -n short.cbtlog -s

expect_rc "unknown flag" 64 $VHD query -n d100.vhd -Z
expect_rc "absent file" 2 $VHD query -n nope.vhd -v

echo "cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
