#!/bin/bash
# iscsi-test-target.sh - run a throw-away iSCSI target (Linux tgt, userspace) on
# loopback for SwiftSM's tests and benchmarks. No systemd, no kernel iSCSI, no prompts.
# Beyond starting and stopping it, what the ISCSI tests need: killing tgtd as a crash would,
# thin-provisioned LUNs, extra portals for multipath.
#
# Usage:
#   iscsi-test-target.sh start DIR PORT IQN SIZE_MB [LUNS]
#   iscsi-test-target.sh stop DIR
#   iscsi-test-target.sh kill DIR
#   iscsi-test-target.sh status DIR
#   iscsi-test-target.sh portal-add DIR ADDR:PORT
#   iscsi-test-target.sh portal-delete DIR ADDR:PORT
#
#   DIR      state directory (created if missing). Holds the LUN backing files
#            (lun1.img .. lunN.img, sparse), tgtd.pid, tgtd.log, the tgtadm
#            control socket (tgtd.sock.0), env (shell-sourceable facts) and
#            urls (one iscsi:// URL per line). The LUN files survive "stop";
#            delete DIR to discard the data.
#   PORT     TCP port of the portal (e.g. 3261; 3260 is the standard one).
#   IQN      target name, e.g. iqn.2024-01.org.example:sr1
#   SIZE_MB  size of every LUN in MiB (files are sparse).
#   LUNS     number of LUNs, default 1. They are LUN 1..LUNS (LUN 0 is tgt's
#            own "controller" LUN, as on any tgt target).
#
#   kill     SIGKILL tgtd (a crash: no logout, connections reset); the LUN
#            files stay, so "start" with the same settings brings it back.
#   portal-add / portal-delete   add or remove a listening portal at run
#            time (tgtadm --mode portal): a second path to the same LUNs,
#            or a path taken away (its established connections are reset
#            too, with ss -K).
#
# Optional environment:
#   ISCSI_BIND                 portal address, default 127.0.0.1 (::1 works)
#   ISCSI_THIN=1               thin-provisioned LUNs (tgt's thin_provisioning=1:
#                              UNMAP offered, and it punches holes in the file)
#   ISCSI_CHAP_USER/_PASSWORD  require one-way CHAP for the target
#   ISCSI_CHAP_TARGET_USER/_PASSWORD  additionally mutual CHAP (needs the two
#                              above).
#
# Clients (libiscsi): iscsi://[USER%PASSWORD@]HOST:PORT/IQN/LUN
#   mutual CHAP: append ?target_user=U&target_password=P
#
# Behaviour:
#   * start is idempotent: if DIR's tgtd is already running with the same
#     settings it only prints the facts again and exits 0; with different
#     settings it fails (stop first).
#   * tgtd runs as a plain background process (own session, immune to the
#     caller's SIGHUP), bound to ISCSI_BIND:PORT only.
#   * tgtd does NOT exit on SIGTERM/SIGINT and, if its port is taken, keeps
#     running without listening. This script therefore checks the port before
#     starting, checks that the new tgtd owns the listener, and stops it via
#     tgtadm (delete targets, delete system), falling back to SIGKILL.
#   * Missing Debian packages (tgt, libiscsi-bin) are installed with apt-get.
#   * Exit status: 0 ok, 1 error, 2 usage, 3 (status only) not running.

set -euo pipefail

PROG=iscsi-test-target
BIND="${ISCSI_BIND:-127.0.0.1}"

die()  { echo "$PROG: error: $*" >&2; exit 1; }
info() { echo "$PROG: $*"; }
usage() {
    # Print the "Usage:" block of the header comment.
    sed -n '/^# Usage:/,/^#$/s/^# \{0,1\}//p' "$0" >&2
    exit 2
}
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}'; }

# --- helpers ---------------------------------------------------------------

# ensure_tools "binary:package" ...  -- apt-get install what is missing.
ensure_tools() {
    local pair bin pkg missing=()
    for pair in "$@"; do
        bin=${pair%%:*}; pkg=${pair#*:}
        command -v "$bin" >/dev/null 2>&1 && continue
        [[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}) and not root: install them first"
    info "installing Debian packages: ${missing[*]}"
    local log; log=$(mktemp)
    local apt=(apt-get -y -q -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=300)
    if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" install "${missing[@]}" >"$log" 2>&1; then
        # Package lists may be missing or stale on a fresh machine: update once.
        if ! { DEBIAN_FRONTEND=noninteractive "${apt[@]}" update >>"$log" 2>&1 &&
               DEBIAN_FRONTEND=noninteractive "${apt[@]}" install "${missing[@]}" >>"$log" 2>&1; }; then
            tail -n 20 "$log" >&2; rm -f "$log"
            die "apt-get install ${missing[*]} failed"
        fi
    fi
    rm -f "$log"
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || die "${pair%%:*} still missing after installing ${pair#*:}"
    done
}

# alive PID COMM -- true if PID runs (not a zombie) and its name is COMM.
alive() {
    local pid=$1 comm=$2 st
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [ -r "/proc/$pid/stat" ] || return 1
    st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [ "$st" != Z ] || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ]
}

# port_answers HOST PORT -- TCP connect succeeds.
port_answers() {
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

# listener_pids PORT -- pids of processes listening on TCP PORT (any address).
listener_pids() {
    { ss -Htlnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u; } || true
}
# log_tail -- last lines of tgtd.log without tgtd's harmless start-up noise.
log_tail() { { grep -v -e RDMA -e oom_score_adj -e nr_open "$DIR/tgtd.log" | tail -n 5; } 2>/dev/null || true; }

url_host() { case "$1" in *:*) echo "[$1]" ;; *) echo "$1" ;; esac; }

# tgtadm on DIR's control socket; bounded, since tgtadm waits forever on a hung tgtd.
tgtadm_() { TGT_IPC_SOCKET="$DIR/tgtd.sock" timeout 5 tgtadm "$@"; }

read_pid() { [ -s "$DIR/tgtd.pid" ] && tr -dc '0-9' <"$DIR/tgtd.pid" || true; }

# Shut down the tgtd that owns DIR's control socket (pid may be empty).
shutdown_tgtd() {
    local pid=$1 tid i
    if tgtadm_ --mode sys --op show >/dev/null 2>&1; then
        tgtadm_ --mode sys --op update --name State -v offline >/dev/null 2>&1 || true
        for tid in $(tgtadm_ --lld iscsi --mode target --op show 2>/dev/null |
                     sed -n 's/^Target \([0-9][0-9]*\):.*/\1/p'); do
            tgtadm_ --lld iscsi --mode target --op delete --force --tid "$tid" >/dev/null 2>&1 || true
        done
        tgtadm_ --mode system --op delete >/dev/null 2>&1 || true
    fi
    if [ -n "$pid" ]; then
        for i in $(seq 1 100); do alive "$pid" tgtd || break; sleep 0.1; done
        if alive "$pid" tgtd; then
            info "tgtd $pid ignored the shutdown request; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            for i in $(seq 1 50); do alive "$pid" tgtd || break; sleep 0.1; done
            alive "$pid" tgtd && die "could not stop tgtd pid $pid"
        fi
    fi
    rm -f "$DIR/tgtd.pid" "$DIR/tgtd.sock.0" "$DIR/tgtd.sock.0.lock" "$DIR/state" "$DIR/env" "$DIR/urls"
}

print_facts() {
    cat "$DIR/urls"
    info "env file: $DIR/env"
}

# --- commands --------------------------------------------------------------

cmd_start() {
    [ $# -ge 4 ] && [ $# -le 5 ] || usage
    local dir=$1 port=$2 iqn=$3 size_mb=$4 luns=${5:-1}
    [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || die "bad PORT '$port'"
    [[ "$iqn" =~ ^(iqn\.[0-9]{4}-[0-9]{2}\.[a-z0-9.-]+(:[^[:space:]/]+)?|eui\.[0-9A-Fa-f]{16})$ ]] ||
        die "bad IQN '$iqn' (want e.g. iqn.2024-01.org.example:sr1)"
    [[ "$size_mb" =~ ^[0-9]+$ ]] && [ "$size_mb" -ge 1 ] || die "bad SIZE_MB '$size_mb'"
    [[ "$luns" =~ ^[0-9]+$ ]] && [ "$luns" -ge 1 ] && [ "$luns" -le 255 ] || die "bad LUNS '$luns' (1..255)"
    if [ -n "${ISCSI_CHAP_TARGET_USER:-}" ] && [ -z "${ISCSI_CHAP_USER:-}" ]; then
        die "mutual CHAP (ISCSI_CHAP_TARGET_USER) needs ISCSI_CHAP_USER too"
    fi
    if [ -n "${ISCSI_CHAP_USER:-}" ] && [ -z "${ISCSI_CHAP_PASSWORD:-}" ]; then
        die "ISCSI_CHAP_USER set but ISCSI_CHAP_PASSWORD empty"
    fi
    if [ -n "${ISCSI_CHAP_TARGET_USER:-}" ] && [ -z "${ISCSI_CHAP_TARGET_PASSWORD:-}" ]; then
        die "ISCSI_CHAP_TARGET_USER set but ISCSI_CHAP_TARGET_PASSWORD empty"
    fi

    mkdir -p "$dir" || die "cannot create $dir"
    DIR=$(cd "$dir" && pwd -P)
    # The control socket path must fit in sun_path (108 bytes).
    [ ${#DIR} -le 90 ] || die "DIR path too long for tgtd's unix socket (max 90 chars): $DIR"

    exec 9>"$DIR/.lock"
    flock -w 120 9 || die "timed out waiting for the lock on $DIR"

    ensure_tools tgtd:tgt tgtadm:tgt iscsi-ls:libiscsi-bin ss:iproute2 flock:util-linux

    local chap_sig=""
    [ -n "${ISCSI_CHAP_USER:-}" ] && chap_sig="chap=$ISCSI_CHAP_USER/$(printf '%s' "${ISCSI_CHAP_PASSWORD}" | sha1sum | cut -c1-8)"
    [ -n "${ISCSI_CHAP_TARGET_USER:-}" ] && chap_sig="$chap_sig;mutual=$ISCSI_CHAP_TARGET_USER/$(printf '%s' "${ISCSI_CHAP_TARGET_PASSWORD}" | sha1sum | cut -c1-8)"
    local want="bind=$BIND port=$port iqn=$iqn size_mb=$size_mb luns=$luns thin=${ISCSI_THIN:-0}${chap_sig:+ $chap_sig}"

    local pid; pid=$(read_pid)
    if alive "$pid" tgtd; then
        if [ "$(cat "$DIR/state" 2>/dev/null)" = "$want" ] && port_answers "$BIND" "$port"; then
            info "already running (pid $pid) with the same settings"
            print_facts
            return 0
        fi
        die "a tgtd (pid $pid) already runs for $DIR with other settings ($(cat "$DIR/state" 2>/dev/null || echo unknown)); run '$PROG stop $DIR' first"
    fi
    # Stale state (crashed tgtd, reboot): clean it, including an orphan tgtd
    # that still holds the control socket but lost its pid file.
    shutdown_tgtd ""

    local holders; holders=$(listener_pids "$port" | paste -sd' ')
    if [ -n "$holders" ] || port_answers "$BIND" "$port"; then
        die "TCP port $port is already in use (pids: ${holders:-unknown}); tgtd would start without listening"
    fi

    # Sparse backing files; existing ones (from an earlier run) are kept.
    local i f bytes=$((size_mb * 1024 * 1024))
    for i in $(seq 1 "$luns"); do
        f="$DIR/lun$i.img"
        if [ -e "$f" ]; then
            [ "$(stat -c %s "$f")" -eq "$bytes" ] ||
                die "$f exists with size $(stat -c %s "$f") != $bytes; remove it or use the old SIZE_MB"
        else
            truncate -s "$bytes" "$f" || die "cannot create $f"
        fi
    done

    local t0; t0=$(date +%s.%N)
    : >"$DIR/tgtd.log"
    # The wrapper writes its own pid and execs tgtd, so the pid is tgtd's even
    # if setsid has to fork. setsid: new session, so the caller's SIGHUP or
    # process-group kill does not reach it.
    TGT_IPC_SOCKET="$DIR/tgtd.sock" setsid bash -c 'echo $$ >"$0/tgtd.pid"; exec tgtd -f --iscsi "portal=$1"' \
        "$DIR" "$(url_host "$BIND"):$port" >>"$DIR/tgtd.log" 2>&1 </dev/null 9>&- &
    for i in $(seq 1 100); do [ -s "$DIR/tgtd.pid" ] && break; sleep 0.05; done
    pid=$(read_pid)
    [ -n "$pid" ] || die "tgtd did not start; log: $(tail -n 5 "$DIR/tgtd.log")"

    for i in $(seq 1 200); do
        tgtadm_ --mode sys --op show >/dev/null 2>&1 && break
        alive "$pid" tgtd || break
        sleep 0.05
    done
    if ! alive "$pid" tgtd || ! tgtadm_ --mode sys --op show >/dev/null 2>&1; then
        local log; log=$(log_tail)
        shutdown_tgtd "$pid"
        die "tgtd failed to come up: $log"
    fi

    configure() {
        tgtadm_ --lld iscsi --mode target --op new --tid 1 --targetname "$iqn" || return 1
        local i h
        for i in $(seq 1 "$luns"); do
            tgtadm_ --lld iscsi --mode logicalunit --op new --tid 1 --lun "$i" \
                --backing-store "$DIR/lun$i.img" || return 1
            # Unique, stable SCSI identity per IQN+LUN (tgt's default
            # "IET 0001000N" would collide between targets).
            h=$(printf '%s' "$iqn/$i" | sha1sum | cut -c1-40)
            tgtadm_ --lld iscsi --mode logicalunit --op update --tid 1 --lun "$i" \
                --params "scsi_id=${h:0:32},scsi_sn=${h:32:8}" || return 1
            if [ "${ISCSI_THIN:-}" = 1 ]; then
                tgtadm_ --lld iscsi --mode logicalunit --op update --tid 1 --lun "$i" \
                    --params thin_provisioning=1 || return 1
            fi
        done
        tgtadm_ --lld iscsi --mode target --op bind --tid 1 --initiator-address ALL || return 1
        if [ -n "${ISCSI_CHAP_USER:-}" ]; then
            tgtadm_ --lld iscsi --mode account --op new --user "$ISCSI_CHAP_USER" --password "$ISCSI_CHAP_PASSWORD" || return 1
            tgtadm_ --lld iscsi --mode account --op bind --tid 1 --user "$ISCSI_CHAP_USER" || return 1
        fi
        if [ -n "${ISCSI_CHAP_TARGET_USER:-}" ]; then
            tgtadm_ --lld iscsi --mode account --op new --user "$ISCSI_CHAP_TARGET_USER" --password "$ISCSI_CHAP_TARGET_PASSWORD" || return 1
            tgtadm_ --lld iscsi --mode account --op bind --tid 1 --user "$ISCSI_CHAP_TARGET_USER" --outgoing || return 1
        fi
    }
    local out
    if ! out=$(configure 2>&1); then
        shutdown_tgtd "$pid"
        die "configuring the target failed: $out"
    fi

    # Ready = our tgtd owns the listener, the port answers, discovery sees IQN.
    local ok=""
    for i in $(seq 1 200); do
        if listener_pids "$port" | grep -qx "$pid" && port_answers "$BIND" "$port"; then ok=1; break; fi
        alive "$pid" tgtd || break
        sleep 0.05
    done
    if [ -z "$ok" ]; then
        local log; log=$(log_tail)
        shutdown_tgtd "$pid"
        die "tgtd is not listening on $BIND:$port: $log"
    fi
    local portal; portal="$(url_host "$BIND"):$port"
    iscsi-ls "iscsi://$portal" 2>&1 | grep -qF "Target:$iqn " ||
        { shutdown_tgtd "$pid"; die "iSCSI discovery on $portal does not list $iqn"; }

    local cred=""
    [ -n "${ISCSI_CHAP_USER:-}" ] && cred="$ISCSI_CHAP_USER%$ISCSI_CHAP_PASSWORD@"
    local q=""
    [ -n "${ISCSI_CHAP_TARGET_USER:-}" ] && q="?target_user=$ISCSI_CHAP_TARGET_USER&target_password=$ISCSI_CHAP_TARGET_PASSWORD"
    : >"$DIR/urls"
    for i in $(seq 1 "$luns"); do echo "iscsi://$cred$portal/$iqn/$i$q" >>"$DIR/urls"; done
    {
        echo "ISCSI_PID=$pid"
        echo "ISCSI_HOST=$BIND"
        echo "ISCSI_PORT=$port"
        echo "ISCSI_PORTAL=$portal"
        echo "ISCSI_IQN=$iqn"
        echo "ISCSI_LUNS=$luns"
        echo "ISCSI_SIZE_MB=$size_mb"
        echo "TGT_IPC_SOCKET=$DIR/tgtd.sock"
    } >"$DIR/env"
    echo "$want" >"$DIR/state"
    info "started tgtd pid $pid on $portal, target $iqn, $luns LUN(s) of $size_mb MiB (ready in $(elapsed "$t0")s)"
    print_facts
}

cmd_stop() {
    [ $# -eq 1 ] || usage
    if [ ! -d "$1" ]; then info "not running (no directory $1)"; return 0; fi
    DIR=$(cd "$1" && pwd -P)
    exec 9>"$DIR/.lock"
    flock -w 120 9 || die "timed out waiting for the lock on $DIR"
    command -v tgtadm >/dev/null 2>&1 || { rm -f "$DIR/tgtd.pid" "$DIR/state"; info "not running (tgt not installed)"; return 0; }
    local pid; pid=$(read_pid)
    if alive "$pid" tgtd; then
        shutdown_tgtd "$pid"
        info "stopped tgtd pid $pid (LUN files kept in $DIR)"
    else
        shutdown_tgtd ""
        info "not running (cleaned stale state in $DIR)"
    fi
}

cmd_kill() {
    [ $# -eq 1 ] || usage
    [ -d "$1" ] || { info "not running (no directory $1)"; return 0; }
    DIR=$(cd "$1" && pwd -P)
    local pid i; pid=$(read_pid)
    if alive "$pid" tgtd; then
        kill -KILL "$pid" 2>/dev/null || true
        for i in $(seq 1 100); do alive "$pid" tgtd || break; sleep 0.05; done
        alive "$pid" tgtd && die "tgtd $pid survived SIGKILL"
        info "killed tgtd pid $pid (LUN files kept in $DIR)"
    else
        info "not running"
    fi
    rm -f "$DIR/tgtd.pid" "$DIR/state"
}

cmd_portal() {
    [ $# -eq 3 ] || usage
    local op=$1 address=$3
    DIR=$(cd "$2" && pwd -P)
    alive "$(read_pid)" tgtd || die "not running"
    tgtadm_ --lld iscsi --mode portal --op "$op" --param "portal=$address" || die "portal $op $address failed"
    if [ "$op" = delete ]; then
        # Deleting a portal only stops new logins on it: reset the connections it carries too
        # (ss -K, the kernel's socket destroy), so that the path is really gone.
        local host=${address%:*} port=${address##*:}
        host=${host#[}; host=${host%]}
        ss -K -tn "src $host and sport = :$port" >/dev/null 2>&1 || true
    fi
    info "portal $op $address"
}

cmd_status() {
    [ $# -eq 1 ] || usage
    [ -d "$1" ] || { info "not running"; exit 3; }
    DIR=$(cd "$1" && pwd -P)
    local pid; pid=$(read_pid)
    if alive "$pid" tgtd; then
        info "running, pid $pid ($(cat "$DIR/state" 2>/dev/null))"
        [ -f "$DIR/urls" ] && cat "$DIR/urls"
        return 0
    fi
    info "not running"
    exit 3
}

[ $# -ge 1 ] || usage
cmd=$1; shift
case "$cmd" in
    start)  cmd_start "$@" ;;
    stop)   cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    kill)   cmd_kill "$@" ;;
    portal-add)    cmd_portal new "$@" ;;
    portal-delete) cmd_portal delete "$@" ;;
    -h|--help|help) usage ;;
    *) echo "$PROG: unknown command '$cmd'" >&2; usage ;;
esac
