#!/bin/bash
# Builds the Debian package from an installed tree: `make-deb.sh ROOT VERSION OUT.deb`. Depends is
# computed from the libraries the binaries load (ldd, then dpkg -S), so it names what is really needed.
set -euo pipefail
root=$1 version=$2 out=$3
arch=$(dpkg --print-architecture)
deps=$(for f in "$root"/usr/bin/* "$root"/usr/libexec/swiftsm/*; do ldd "$f" 2>/dev/null | awk '/=> \//{print $3}'; done \
       | sort -u | while read -r lib; do dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib" 2>/dev/null || true; done \
       | cut -d: -f1 | sort -u | paste -sd, | sed 's/,/, /g')
install -d "$root/DEBIAN"
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@DEPENDS@|${deps:-libc6}, openssl, e2fsprogs|" packaging/control > "$root/DEBIAN/control"
dpkg-deb --root-owner-group --build "$root" "$out"
