#!/bin/bash
# nfs-test-server.sh - run a throw-away userspace NFS server (NFS-Ganesha, FSAL VFS)
# on loopback for tests and CI. No systemd, no dbus, no kernel NFS, no prompts.
#
# Usage:
#   nfs-test-server.sh start DIR PORT EXPORT_PATH
#   nfs-test-server.sh stop DIR
#   nfs-test-server.sh status DIR
#
#   DIR          state directory (created if missing): ganesha.conf,
#                ganesha.log, ganesha.pid, recovery/, env (shell-sourceable
#                facts) and urls (libnfs URLs, one per line).
#   PORT         TCP port for NFS. The MOUNT protocol (NFSv3) uses PORT+1
#                unless NFS_MOUNT_PORT is set.
#   EXPORT_PATH  absolute local directory to export (created if missing).
#                Clients see it under the same path, as with a kernel NFS
#                server: nfs://127.0.0.1/EXPORT_PATH (set NFS_PSEUDO_PATH
#                to publish it under another path).
#
# Optional environment:
#   NFS_BIND         listen address, default 127.0.0.1
#   NFS_MOUNT_PORT   MOUNT port, default PORT+1
#   NFS_PROTOCOLS    "3,4" (default), "3" or "4". NFSv3 needs rpcbind (see
#                    below); "4" needs none, but libnfs 4.0.0 (Debian 12)
#                    fails NFSv4 writes of 4 KiB or more per request
#                    ("ZDR error: Failed to encode COMPOUND4args").
#   NFS_PSEUDO_PATH  path clients use, default EXPORT_PATH
#   NFS_RO_EXPORT_PATH  a second directory to export read-only (same path for
#                    clients), for tests of what a read-only export refuses
#
# Clients (libnfs, no portmapper needed):
#   nfs://127.0.0.1/EXPORT_PATH?nfsport=PORT&mountport=MPORT      (NFSv3)
#   nfs://127.0.0.1/EXPORT_PATH?version=4&nfsport=PORT            (NFSv4)
#
# rpcbind: ganesha aborts at start-up (exit 2) if NFSv3 is enabled and it
#   cannot register with rpcbind. The script therefore starts rpcbind when
#   none answers on 127.0.0.1:111 (pid in /run/nfs-server-tool/rpcbind.pid)
#   and stops it again with the last ganesha it knows of. rpcbind is a
#   host-wide singleton; Debian 12's rpcbind crashes with "-h ADDR", so it
#   listens on port 111 of all addresses. Several nfs-server instances can
#   run at once on different ports; the portmapper then only knows the last
#   one started, so clients should pass nfsport= and mountport= explicitly.
#
# Behaviour: start is idempotent (same settings -> prints facts, exit 0;
#   other settings -> error, stop first). ganesha runs as a plain background
#   process in its own session, with Graceless=true (no 90 s grace period),
#   no NLM/RQUOTA/UDP, root not squashed, and Attr_Expiration_Time=0 so that
#   files changed directly in EXPORT_PATH are seen at once. Missing Debian
#   packages (nfs-ganesha, nfs-ganesha-vfs, rpcbind, libnfs-utils) are
#   installed with apt-get. Exit status: 0 ok, 1 error, 2 usage,
#   3 (status only) not running.

set -euo pipefail

PROG=nfs-test-server
BIND="${NFS_BIND:-127.0.0.1}"
PROTOCOLS="${NFS_PROTOCOLS:-3,4}"
RUNDIR=/run/nfs-server-tool
PLUGINS=/usr/lib/x86_64-linux-gnu/ganesha

die()  { echo "$PROG: error: $*" >&2; exit 1; }
info() { echo "$PROG: $*"; }
usage() {
    # Print the "Usage:" block of the header comment.
    sed -n '/^# Usage:/,/^#$/s/^# \{0,1\}//p' "$0" >&2
    exit 2
}
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}'; }

# --- helpers ---------------------------------------------------------------

# ensure_tools "binary-or-file:package" ...  -- apt-get install what is missing.
ensure_tools() {
    local pair what pkg missing=()
    for pair in "$@"; do
        what=${pair%%:*}; pkg=${pair#*:}
        if [[ "$what" == /* ]]; then [ -e "$what" ] && continue
        else command -v "$what" >/dev/null 2>&1 && continue; fi
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

port_answers() { timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null; }

listener_pids() {
    { ss -Htlnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u; } || true
}

# libnfs 4.0.0 parses IPv6 hosts only WITHOUT brackets: nfs://::1/path
url_host() { echo "$1"; }

read_pidfile() { [ -s "$1" ] && tr -dc '0-9' <"$1" || true; }

rpcbind_answers() { timeout 5 rpcinfo -p 127.0.0.1 >/dev/null 2>&1; }

# live ganesha.nfsd processes other than $1
other_ganeshas() {
    local p
    for p in $(pgrep -x ganesha.nfsd 2>/dev/null || true); do
        [ "$p" = "${1:-}" ] && continue
        alive "$p" ganesha.nfsd && echo "$p"
    done
    return 0
}

# Start rpcbind if nothing answers on 127.0.0.1:111 (serialised host-wide).
ensure_rpcbind() {
    mkdir -p "$RUNDIR"
    exec 8>"$RUNDIR/rpcbind.lock"
    flock -w 120 8 || die "timed out waiting for $RUNDIR/rpcbind.lock"
    if rpcbind_answers; then exec 8>&-; return 0; fi
    local old; old=$(read_pidfile "$RUNDIR/rpcbind.pid")
    if alive "$old" rpcbind; then kill -TERM "$old" 2>/dev/null || true; sleep 0.5; fi
    # rpcbind keeps warm-start state in /run/rpcbind (owned by _rpc).
    if id _rpc >/dev/null 2>&1; then install -d -o _rpc -m 0755 /run/rpcbind 2>/dev/null || true
    else mkdir -p /run/rpcbind; fi
    setsid bash -c 'echo $$ >"$0/rpcbind.pid"; exec rpcbind -f' "$RUNDIR" \
        >"$RUNDIR/rpcbind.log" 2>&1 </dev/null 8>&- 9>&- &
    for _ in $(seq 1 100); do rpcbind_answers && break; sleep 0.05; done
    rpcbind_answers || die "rpcbind did not come up: $(tail -n 3 "$RUNDIR/rpcbind.log" 2>/dev/null)"
    info "started rpcbind pid $(read_pidfile "$RUNDIR/rpcbind.pid") (0.0.0.0:111, host-wide)"
    exec 8>&-
}

# Stop the rpcbind this tool started, once no ganesha is left.
maybe_stop_rpcbind() {
    [ -d "$RUNDIR" ] || return 0
    exec 8>"$RUNDIR/rpcbind.lock"
    flock -w 120 8 || return 0
    local pid; pid=$(read_pidfile "$RUNDIR/rpcbind.pid")
    if alive "$pid" rpcbind && [ -z "$(other_ganeshas "")" ]; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do alive "$pid" rpcbind || break; sleep 0.1; done
        alive "$pid" rpcbind && kill -KILL "$pid" 2>/dev/null || true
        rm -f "$RUNDIR/rpcbind.pid"
        info "stopped rpcbind pid $pid (no ganesha left)"
    elif ! alive "$pid" rpcbind; then
        rm -f "$RUNDIR/rpcbind.pid"
    fi
    exec 8>&-
}

stop_ganesha() {
    local pid=$1
    if alive "$pid" ganesha.nfsd; then
        kill -TERM "$pid" 2>/dev/null || true      # clean shutdown takes ~2 s
        for _ in $(seq 1 150); do alive "$pid" ganesha.nfsd || break; sleep 0.1; done
        if alive "$pid" ganesha.nfsd; then
            info "ganesha $pid did not exit after SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do alive "$pid" ganesha.nfsd || break; sleep 0.1; done
            alive "$pid" ganesha.nfsd && die "could not stop ganesha pid $pid"
        fi
    fi
    rm -f "$DIR/ganesha.pid" "$DIR/state" "$DIR/env" "$DIR/urls"
}

fatal_lines() {
    { grep -E ':(FATAL|MAJ|CRIT) :' "$DIR/ganesha.log" |
      grep -v -e DBUS -e krb5 -e keytab -e 'credentials for principal' | tail -n 5; } 2>/dev/null || true
}

# export_block ID PATH PSEUDO ACCESS -- one EXPORT of the configuration (root not squashed,
# TCP, attribute cache off so that files changed in PATH directly are seen at once).
export_block() {
    cat <<EOF
EXPORT {
    Export_Id = $1;
    Path = "$2";
    Pseudo = "$3";
    Access_Type = $4;
    Squash = No_Root_Squash;
    SecType = sys;
    Transports = TCP;
    Attr_Expiration_Time = 0;
    FSAL { Name = VFS; }
}
EOF
}

# --- commands --------------------------------------------------------------

cmd_start() {
    [ $# -eq 3 ] || usage
    local dir=$1 port=$2 export_path=$3
    [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65534 ] || die "bad PORT '$port'"
    local mport=${NFS_MOUNT_PORT:-$((port + 1))}
    [[ "$mport" =~ ^[0-9]+$ ]] && [ "$mport" -ge 1 ] && [ "$mport" -le 65535 ] && [ "$mport" != "$port" ] ||
        die "bad NFS_MOUNT_PORT '$mport'"
    [[ "$export_path" == /* ]] || die "EXPORT_PATH must be absolute: '$export_path'"
    export_path=$(realpath -m "$export_path")
    [ "$export_path" != / ] || die "exporting / is not supported"
    local pseudo=${NFS_PSEUDO_PATH:-$export_path}
    [[ "$pseudo" == /* ]] && [ "$pseudo" != / ] || die "bad NFS_PSEUDO_PATH '$pseudo'"
    local v3="" v4=""
    case "${PROTOCOLS// /}" in
        3,4|4,3) PROTOCOLS="3, 4"; v3=1; v4=1 ;;
        3)       PROTOCOLS="3";    v3=1 ;;
        4)       PROTOCOLS="4";    v4=1 ;;
        *) die "bad NFS_PROTOCOLS '$PROTOCOLS' (3,4 or 3 or 4)" ;;
    esac
    case "$export_path$pseudo" in *'"'*|*'\'*) die "quotes/backslashes in paths are not supported" ;; esac

    mkdir -p "$dir" || die "cannot create $dir"
    DIR=$(cd "$dir" && pwd -P)
    case "$DIR" in *'"'*|*'\'*) die "quotes/backslashes in DIR are not supported" ;; esac
    mkdir -p "$export_path" || die "cannot create $export_path"
    exec 9>"$DIR/.lock"
    flock -w 120 9 || die "timed out waiting for the lock on $DIR"

    ensure_tools ganesha.nfsd:nfs-ganesha "$PLUGINS/libfsalvfs.so:nfs-ganesha-vfs" \
        rpcbind:rpcbind rpcinfo:rpcbind nfs-ls:libnfs-utils ss:iproute2 flock:util-linux
    [ -e "$PLUGINS/libfsalvfs.so" ] || die "FSAL VFS plugin missing: $PLUGINS/libfsalvfs.so"

    local want="bind=$BIND port=$port mport=$mport export=$export_path pseudo=$pseudo protocols=$PROTOCOLS ro=${NFS_RO_EXPORT_PATH:-}"
    local pid; pid=$(read_pidfile "$DIR/ganesha.pid")
    if alive "$pid" ganesha.nfsd; then
        if [ "$(cat "$DIR/state" 2>/dev/null)" = "$want" ] && port_answers "$BIND" "$port"; then
            info "already running (pid $pid) with the same settings"
            cat "$DIR/urls"
            return 0
        fi
        die "a ganesha (pid $pid) already runs for $DIR with other settings ($(cat "$DIR/state" 2>/dev/null || echo unknown)); run '$PROG stop $DIR' first"
    fi
    rm -f "$DIR/ganesha.pid" "$DIR/state" "$DIR/env" "$DIR/urls"

    local p holders
    for p in "$port" ${v3:+"$mport"}; do
        holders=$(listener_pids "$p" | paste -sd' ')
        if [ -n "$holders" ] || port_answers "$BIND" "$p"; then
            die "TCP port $p is already in use (pids: ${holders:-unknown})"
        fi
    done

    [ -n "$v3" ] && ensure_rpcbind

    mkdir -p "$DIR/recovery"
    cat >"$DIR/ganesha.conf" <<EOF
# Generated by $PROG. Userspace NFS server for tests: loopback, no NLM,
# no RQUOTA, no UDP, no grace period, root not squashed.
NFS_CORE_PARAM {
    Bind_addr = $BIND;
    NFS_Port = $port;
    MNT_Port = $mport;
    Protocols = $PROTOCOLS;
    Enable_UDP = false;
    Enable_NLM = false;
    Enable_RQUOTA = false;
    mount_path_pseudo = true;
    Plugins_Dir = "$PLUGINS";
}
NFSv4 {
    Graceless = true;
    RecoveryRoot = "$DIR/recovery";
    Only_Numeric_Owners = true;
}
EOF
    export_block 1 "$export_path" "$pseudo" RW >>"$DIR/ganesha.conf"
    if [ -n "${NFS_RO_EXPORT_PATH:-}" ]; then
        mkdir -p "$NFS_RO_EXPORT_PATH"
        export_block 2 "$NFS_RO_EXPORT_PATH" "$NFS_RO_EXPORT_PATH" RO >>"$DIR/ganesha.conf"
    fi
    echo 'LOG { Default_Log_Level = EVENT; }' >>"$DIR/ganesha.conf"

    local t0; t0=$(date +%s.%N)
    : >"$DIR/ganesha.log"
    setsid bash -c 'echo $$ >"$0/ganesha.pid"; exec ganesha.nfsd -F -f "$0/ganesha.conf" -L "$0/ganesha.log" -p "$0/ganesha.self.pid"' \
        "$DIR" >"$DIR/ganesha.out" 2>&1 </dev/null 9>&- &
    for _ in $(seq 1 100); do [ -s "$DIR/ganesha.pid" ] && break; sleep 0.05; done
    pid=$(read_pidfile "$DIR/ganesha.pid")
    [ -n "$pid" ] || die "ganesha did not start: $(tail -n 5 "$DIR/ganesha.out")"

    local ok=""
    for _ in $(seq 1 300); do
        if listener_pids "$port" | grep -qx "$pid" && port_answers "$BIND" "$port" &&
           { [ -z "$v3" ] || { listener_pids "$mport" | grep -qx "$pid" && port_answers "$BIND" "$mport"; }; }; then
            ok=1; break
        fi
        alive "$pid" ganesha.nfsd || break
        sleep 0.05
    done
    if [ -z "$ok" ]; then
        local why; why=$(fatal_lines)
        stop_ganesha "$pid"
        [ -n "$v3" ] && maybe_stop_rpcbind
        die "ganesha did not come up on $BIND:$port: ${why:-see $DIR/ganesha.log}"
    fi

    local host; host=$(url_host "$BIND")
    local url3="nfs://$host$pseudo?nfsport=$port&mountport=$mport"
    local url4="nfs://$host$pseudo?version=4&nfsport=$port"
    local check=$url4; [ -n "$v3" ] && check=$url3
    if ! nfs-ls "$check" >/dev/null 2>"$DIR/check.err"; then
        local why; why=$(cat "$DIR/check.err")
        stop_ganesha "$pid"
        [ -n "$v3" ] && maybe_stop_rpcbind
        die "ganesha runs but '$check' fails: $why"
    fi
    rm -f "$DIR/check.err"

    { if [ -n "$v3" ]; then echo "$url3"; fi; if [ -n "$v4" ]; then echo "$url4"; fi; } >"$DIR/urls"
    {
        echo "NFS_PID=$pid"
        echo "NFS_HOST=$BIND"
        echo "NFS_PORT=$port"
        echo "NFS_MOUNT_PORT=$mport"
        echo "NFS_EXPORT_PATH=$export_path"
        echo "NFS_PSEUDO_PATH=$pseudo"
        echo "NFS_URL=$(head -n 1 "$DIR/urls")"
    } >"$DIR/env"
    echo "$want" >"$DIR/state"
    info "started ganesha pid $pid on $BIND port $port${v3:+ (mount $mport)}, exporting $export_path as $pseudo (ready in $(elapsed "$t0")s)"
    cat "$DIR/urls"
}

cmd_stop() {
    [ $# -eq 1 ] || usage
    if [ ! -d "$1" ]; then info "not running (no directory $1)"; return 0; fi
    DIR=$(cd "$1" && pwd -P)
    exec 9>"$DIR/.lock"
    flock -w 120 9 || die "timed out waiting for the lock on $DIR"
    local pid; pid=$(read_pidfile "$DIR/ganesha.pid")
    if alive "$pid" ganesha.nfsd; then
        stop_ganesha "$pid"
        info "stopped ganesha pid $pid"
    else
        stop_ganesha ""
        info "not running (cleaned stale state in $DIR)"
    fi
    exec 9>&-
    maybe_stop_rpcbind
}

cmd_status() {
    [ $# -eq 1 ] || usage
    [ -d "$1" ] || { info "not running"; exit 3; }
    DIR=$(cd "$1" && pwd -P)
    local pid; pid=$(read_pidfile "$DIR/ganesha.pid")
    if alive "$pid" ganesha.nfsd; then
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
    -h|--help|help) usage ;;
    *) echo "$PROG: unknown command '$cmd'" >&2; usage ;;
esac
