#!/bin/bash
# make install (DESTDIR, PREFIX) and make deb, then the package installed and removed with dpkg:
# the plugins answer sr_get_driver_info where xapi looks for them, toolstackd and xe run.
set -u
cd "$(dirname "$0")/.."
passed=0; failed=0
ok()   { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }
info='<?xml version="1.0"?><methodCall><methodName>sr_get_driver_info</methodName><params><param><value><struct><member><name>command</name><value>sr_get_driver_info</value></member><member><name>args</name><value><array><data/></array></value></member><member><name>device_config</name><value><struct/></value></member></struct></value></param></params></methodCall>'

dest=$(mktemp -d /tmp/swiftsm-install-XXXXXX)
trap 'rm -rf "$dest"' EXIT
make -s install DESTDIR="$dest" PREFIX=/opt/swiftsm > "$dest.log" 2>&1 && ok "make install" || { tail -20 "$dest.log"; fail "make install"; }
[ -L "$dest/opt/xensource/sm/EXTSR" ] && [ "$(readlink "$dest/opt/xensource/sm/EXTSR")" = /opt/swiftsm/libexec/swiftsm/smdriver ] \
    && ok "EXTSR links to smdriver" || fail "EXTSR link"
[ "$(readlink "$dest/opt/xensource/sm/NFSSR")" = /opt/swiftsm/libexec/swiftsm/smdriver ] && ok "NFSSR links to smdriver" || fail "NFSSR link"
[ "$(readlink "$dest/opt/xensource/sm/LVMoISCSISR")" = /opt/swiftsm/libexec/swiftsm/smdriver ] && ok "LVMoISCSISR links to smdriver" || fail "LVMoISCSISR link"
"$dest/opt/xensource/sm/LVMoISCSISR" "$info" | grep -q "LVHD over iSCSI" \
    && ok "installed LVMoISCSISR answers" || fail "installed LVMoISCSISR answers"
for p in tapdisk-pause lvhd-thin datapath-mirror; do
    [ "$(readlink "$dest/etc/xapi.d/plugins/$p")" = /opt/swiftsm/libexec/swiftsm/smdriver ] && ok "$p plugin links to smdriver" || fail "$p link"
done
grep -q "ExecStart=/opt/swiftsm/bin/toolstackd" "$dest/lib/systemd/system/swiftsm-toolstackd.service" && ok "service unit" || fail "service unit"
ldd "$dest/opt/swiftsm/libexec/swiftsm/smdriver" | grep -q libswiftCore && fail "static Swift runtime" || ok "static Swift runtime"
"$dest/opt/swiftsm/libexec/swiftsm/smdriver" --driver ext "$info" | grep -q "Local EXT4 VHD" && ok "installed smdriver answers" || fail "installed smdriver answers"

rm -f .build/swiftsm_*.deb
make -s deb > "$dest.log" 2>&1 && ok "make deb" || { tail -20 "$dest.log"; fail "make deb"; }
deb=$(ls .build/swiftsm_*.deb 2>/dev/null | head -1)
if [ -n "$deb" ] && dpkg -i "$deb" > "$dest.log" 2>&1; then
    ok "dpkg -i"
    /opt/xensource/sm/EXTSR "$info" | grep -q "Local EXT4 VHD" && ok "/opt/xensource/sm/EXTSR answers" || fail "/opt/xensource/sm/EXTSR answers"
    xe help | grep -q vdi-snapshot && ok "xe installed" || fail "xe installed"
    [ -f /lib/systemd/system/swiftsm-toolstackd.service ] && ok "unit installed" || fail "unit installed"
    dpkg -r swiftsm > "$dest.log" 2>&1 && ok "dpkg -r" || fail "dpkg -r"
    [ ! -e /opt/xensource/sm/EXTSR ] && [ ! -e /usr/bin/toolstackd ] && ok "removed cleanly" || fail "removed cleanly"
else
    cat "$dest.log"; fail "dpkg -i"
fi
rm -f "$dest.log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
