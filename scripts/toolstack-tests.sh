#!/bin/bash
# toolstackd end to end with real clients: the public XenAPI SDK (PyPI `xenapi`) over the local
# socket and TCP, xe, and the socket's protection (an unprivileged user cannot connect).
# Needs TOOLSTACKD, XE and SMDRIVER (built executables). Prints 'N passed, M failed'.
set -u
: "${TOOLSTACKD:?set TOOLSTACKD}" "${XE:?set XE}" "${SMDRIVER:?set SMDRIVER}"
here=$(cd "$(dirname "$0")" && pwd)
python3 -c "import XenAPI" 2>/dev/null || pip install --quiet xenapi
root=$(mktemp -d /tmp/tsk-XXXXXX)
mkdir -p "$root/sm" "$root/srdir" "$root/st"
ln -s "$SMDRIVER" "$root/sm/EXTSR"
ln -s "$SMDRIVER" "$root/sm/NFSSR"
password="pw-$RANDOM-$RANDOM"
echo "root-password-hash = $(echo "$password" | "$TOOLSTACKD" --hash-password)" > "$root/st/toolstackd.conf"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
SWIFTSM_GC_AUTOSTART=0 "$TOOLSTACKD" --state-dir "$root/st" --socket "$root/sock/xapi" --port "$port" --nbd-port 0 \
    --sm-dir "$root/sm" --run-dir "$root/r" 2> "$root/toolstackd.log" &
pid=$!
pool_pids=(); pgdir=""
cleanup() {
    kill "$pid" "${pool_pids[@]}" 2>/dev/null; wait "$pid" "${pool_pids[@]}" 2>/dev/null
    [ -n "$pgdir" ] && "$here/postgres-test-server.sh" stop "$pgdir"
    rm -rf "$root"
}
trap cleanup EXIT
for _ in $(seq 100); do [ -S "$root/sock/xapi" ] && grep -q "ready" "$root/toolstackd.log" && break; sleep 0.1; done

passed=0; failed=0
ok()   { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }

if python3 "$here/toolstack-sdk-test.py" "$root/sock/xapi" "$port" "$password" "$root/srdir" > "$root/sdk.out" 2>&1; then
    ok "XenAPI SDK test ($(tail -1 "$root/sdk.out"))"
else
    cat "$root/sdk.out"; fail "XenAPI SDK test"
fi
# The password never reaches the log or the database in clear.
if grep -q "$password" "$root/toolstackd.log" "$root/st/"* 2>/dev/null; then fail "password not stored or logged"; else ok "password not stored or logged"; fi
# The local socket: 0600 in a 0700 directory; an unprivileged user cannot connect.
[ "$(stat -c %a "$root/sock/xapi")" = 600 ] && [ "$(stat -c %a "$root/sock")" = 700 ] && ok "socket mode 0600 in a 0700 directory" || fail "socket modes"
chmod 755 "$root"
# (exit 3 only for PermissionError, so a python the user cannot run does not pass for a refusal)
runuser -u nobody -- /usr/bin/python3 -c "
import socket,sys
s=socket.socket(socket.AF_UNIX)
try: s.connect(sys.argv[1])
except PermissionError: sys.exit(3)" "$root/sock/xapi" 2>/dev/null
[ $? -eq 3 ] && ok "an unprivileged user cannot connect" || fail "an unprivileged user cannot connect"
# The certificate made at first start, and its key, stay root's.
[ "$(stat -c %a "$root/st/xapi-ssl.pem")" = 600 ] && openssl x509 -noout -in "$root/st/xapi-ssl.pem" 2>/dev/null \
    && ok "self-signed certificate made at first start (0600)" || fail "certificate"
# xe over HTTPS with -s -p -u -pw, and its failure for a wrong password.
# xe verifies the host's certificate: against the one it trusts (--cafile), never silently.
openssl x509 -in "$root/st/xapi-ssl.pem" -out "$root/host-cert.pem"
out=$("$XE" -s 127.0.0.1 -p "$port" --cafile "$root/host-cert.pem" -u root -pw "$password" pool-list --minimal 2>&1)
[[ "$out" =~ ^[0-9a-f-]{36}$ ]] && ok "xe over HTTPS" || fail "xe over HTTPS: $out"
if "$XE" -s 127.0.0.1 -p "$port" -u root -pw "$password" pool-list > /dev/null 2> "$root/xe.err"; then
    fail "xe accepted an unverified certificate"
else
    grep -q "could not be verified" "$root/xe.err" && ok "xe refuses a certificate it cannot verify" || { cat "$root/xe.err"; fail "xe unverified certificate message"; }
fi
"$XE" -s 127.0.0.1 -p "$port" --cafile "$root/host-cert.pem" -u root -pw wrong pool-list > /dev/null 2> "$root/xe.err"
[ $? -eq 1 ] && grep -q "^Error code: SESSION_AUTHENTICATION_FAILED" "$root/xe.err" && ok "xe refused with a wrong password" || fail "xe wrong password"
# The daemon survives garbage.
printf 'POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n<<<<<' | timeout 5 python3 -c "
import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect('$root/sock/xapi'); s.sendall(sys.stdin.buffer.read()); print(s.recv(4096).decode())" | grep -q XMLRPC_UNMARSHAL_FAILURE \
    && ok "malformed XML-RPC answered with an error" || fail "malformed XML-RPC"
XE_SOCKET="$root/sock/xapi" "$XE" host-list --minimal | grep -qE '^[0-9a-f-]{36}$' && ok "still serving after bad input" || fail "still serving"
# An NFS SR through xe, on the NFS-Ganesha server scripts/with-nfs-server.sh runs beside the
# tests (SWIFTSM_TEST_NFS=<host>:<port>:<mount port>:<export>): shared, VDIs made and
# snapshotted, the VHD files where NFSSR puts them on the server, and xe's probe of the export.
if [ -n "${SWIFTSM_TEST_NFS:-}" ]; then
    IFS=: read -r nhost nport nmport nexport <<<"$SWIFTSM_TEST_NFS"
    mkdir -p "$nexport/tsk"
    xn() { XE_SOCKET="$root/sock/xapi" "$XE" "$@"; }
    nfs_dc=(device-config:server="$nhost" device-config:serverpath="$nexport/tsk" device-config:options="port=$nport,mountport=$nmport")
    nsr=$(xn sr-create name-label=nfs-sr type=nfs shared=true "${nfs_dc[@]}" 2>&1)
    if [[ "$nsr" =~ ^[0-9a-f-]{36}$ ]] && [ "$(xn sr-param-get uuid="$nsr" param-name=shared)" = true ]; then
        ok "xe sr-create type=nfs (shared)"
        nv=$(xn vdi-create sr-uuid="$nsr" name-label=nfs-disk virtual-size=64MiB 2>&1)
        ns=$(xn vdi-snapshot uuid="$nv" 2>&1)
        if [ -f "$nexport/tsk/$nsr/$nv.vhd" ] && [ -f "$nexport/tsk/$nsr/$ns.vhd" ] \
            && "$VHD" check -n "$nexport/tsk/$nsr/$nv.vhd" > /dev/null; then
            ok "xe vdi-create and vdi-snapshot on NFS: the VHDs are on the server"
        else
            fail "NFS VDIs: $nv $ns $(ls "$nexport/tsk/$nsr" 2>&1)"
        fi
        # xe vdi-import and vdi-export over HTTPS (the certificate verified, the password checked):
        # 5 MiB of random data in, the same bytes out; a wrong password refused.
        xs() { "$XE" -s 127.0.0.1 -p "$port" --cafile "$root/host-cert.pem" -u root -pw "$password" "$@"; }
        head -c 5M /dev/urandom > "$root/in.raw"
        if xs vdi-import uuid="$nv" filename="$root/in.raw" 2> "$root/xe.err" && xs vdi-export uuid="$nv" filename="$root/out.raw" 2>> "$root/xe.err" \
            && [ "$(head -c 5M "$root/out.raw" | sha256sum)" = "$(sha256sum < "$root/in.raw")" ] \
            && [ "$(stat -c %s "$root/out.raw")" = $((64 << 20)) ] && cmp -s <(tail -c +$((5 * 1048576 + 1)) "$root/out.raw") <(head -c $((59 << 20)) /dev/zero); then
            ok "xe vdi-import and vdi-export over HTTPS: the bytes come back"
        else
            cat "$root/xe.err"; fail "xe vdi-import/vdi-export over HTTPS"
        fi
        "$XE" -s 127.0.0.1 -p "$port" --cafile "$root/host-cert.pem" -u root -pw wrong vdi-export uuid="$nv" filename="$root/no.raw" > /dev/null 2> "$root/xe.err"
        [ $? -ne 0 ] && grep -q "SESSION_AUTHENTICATION_FAILED" "$root/xe.err" && ok "xe vdi-export with a wrong password: refused" \
            || { cat "$root/xe.err"; fail "xe vdi-export with a wrong password"; }
        xn sr-probe type=nfs device-config:server="$nhost" device-config:serverpath="$nexport/tsk" \
            device-config:options="port=$nport,mountport=$nmport" 2>&1 | grep -q "<UUID>$nsr</UUID>" \
            && ok "xe sr-probe type=nfs lists the SR" || fail "xe sr-probe type=nfs"
    else
        fail "xe sr-create type=nfs: $nsr"
    fi
fi
# VDI.copy as a job (full, delta, errors, cancel, a daemon killed midway, xe vdi-copy) and VDI
# export/import over HTTP (raw, VHD, differences; bad uploads; a daemon killed mid-export),
# against a toolstackd of its own that the script starts, kills and restarts.
mkdir -p "$root/copy"
python3 "$here/toolstack-copy-test.py" "$TOOLSTACKD" "$XE" "$root/sm" "$root/copy" "${SWIFTSM_TEST_NFS:-}" "${VHD:-}" > "$root/copy.out" 2>&1
copy_rc=$?
cat "$root/copy.out"
grep -q "^ok   " "$root/copy.out" && passed=$((passed + $(grep -c "^ok   " "$root/copy.out")))
failed=$((failed + $(grep -c "^FAIL " "$root/copy.out")))
[ $copy_rc -ne 0 ] && ! grep -q "^FAIL " "$root/copy.out" && fail "VDI.copy test script ended early ($copy_rc)"
# A pool: two toolstackd processes sharing one PostgreSQL database. What one makes, the other sees.
pgdir=$(mktemp -d /tmp/pg-XXXXXX)
pgport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
if "$here/postgres-test-server.sh" start "$pgdir" "$pgport" \
    && psql -q -h 127.0.0.1 -p "$pgport" -U swiftsm -d postgres -c "CREATE DATABASE pool" > /dev/null; then
    url="postgres://swiftsm@127.0.0.1:$pgport/pool"
    mkdir -p "$root/srpool"
    for h in a b; do
        SWIFTSM_GC_AUTOSTART=0 "$TOOLSTACKD" --state-dir "$root/$h/st" --socket "$root/$h/sock/xapi" --sm-dir "$root/sm" \
            --run-dir "$root/$h/r" --database "$url" 2> "$root/$h.log" &
        pool_pids+=($!)
        for _ in $(seq 100); do grep -q "ready" "$root/$h.log" 2>/dev/null && break; sleep 0.1; done
    done
    xa() { XE_SOCKET="$root/a/sock/xapi" "$XE" "$@"; }
    xb() { XE_SOCKET="$root/b/sock/xapi" "$XE" "$@"; }
    sr=$(xa sr-create name-label=pool-sr type=ext device-config:path="$root/srpool")
    vdi=$(xa vdi-create sr-uuid="$sr" name-label=made-on-a virtual-size=4MiB)
    seen=""
    for _ in $(seq 50); do
        seen=$(xb vdi-list uuid="$vdi" params=name-label --minimal 2>/dev/null)
        [ "$seen" = made-on-a ] && break; sleep 0.1
    done
    [ "$seen" = made-on-a ] && ok "pool on PostgreSQL: a VDI made through one toolstackd is seen through the other" \
        || { tail -5 "$root/a.log" "$root/b.log"; fail "pool on PostgreSQL: VDI not seen ($seen)"; }
    [ "$(xb host-list --minimal | tr ',' '\n' | wc -l)" = 2 ] && ok "pool on PostgreSQL: two hosts, one pool" || fail "pool on PostgreSQL: hosts"
    xb vdi-param-set uuid="$vdi" name-label=renamed-on-b
    seen=""
    for _ in $(seq 50); do
        seen=$(xa vdi-list uuid="$vdi" params=name-label --minimal 2>/dev/null)
        [ "$seen" = renamed-on-b ] && break; sleep 0.1
    done
    [ "$seen" = renamed-on-b ] && ok "pool on PostgreSQL: a change made through the other is seen back" || fail "pool on PostgreSQL: rename not seen ($seen)"
    kill "${pool_pids[@]}"; wait "${pool_pids[@]}" 2>/dev/null; pool_pids=()
else
    fail "PostgreSQL test server"
fi
"$here/postgres-test-server.sh" stop "$pgdir"; pgdir=""
# The make run tour, stopped at its end.
if [ -n "${VHD:-}" ]; then
    if TOUR_STOP=1 TOUR_DIR="$root/tour" TOUR_RUN_DIR="$root/tr" "$here/quickstart-toolstack.sh" > "$root/tour.out" 2>&1 \
        && grep -q "base copy (hidden)" "$root/tour.out" && grep -q "\[clone\]" "$root/tour.out"; then
        ok "make run tour"
    else
        tail -20 "$root/tour.out"; fail "make run tour"
    fi
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
