#!/usr/bin/env bash
# bench/peers.sh: measure Parlor side by side with ngIRCd, InspIRCd and
# ircd-hybrid, in one run on this machine, and print one table.
#
#   bench/peers.sh [--quick] [--runs N] [--servers a,b] [--scenarios x,y]
#                  [--out FILE] [--no-install] [--keep]
#
# See bench/README.md for what is measured and how the peers are configured.
# Only 127.0.0.1 is ever contacted (apart from Debian's package repositories
# when a peer has to be installed). Every server this script starts is
# stopped by its PID when it exits.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CONFIGS=$ROOT/bench/configs
BENCH=$ROOT/target/release/parlor-bench
PARLOR=$ROOT/target/release/parlor

ALL_SERVERS=parlor,ngircd,inspircd,hybrid
ALL_SCENARIOS=fanout-200,fanout-2000,fanout-paced,dm,connect,join-2000,join-5000

# Loopback ports, one per server.
declare -A PORT=([parlor]=16700 [ngircd]=16701 [inspircd]=16702 [hybrid]=16703)

# --connect-concurrency per server. ngIRCd listens with a backlog of 10, so
# it is connected to a few at a time; InspIRCd finishes registrations on a
# one-second timer, so it needs many connections in flight to get anywhere.
# Empty = the load generator's default. Override with e.g. CC_PARLOR=200.
declare -A CC=(
    [parlor]=${CC_PARLOR-}
    [ngircd]=${CC_NGIRCD-5}
    [inspircd]=${CC_INSPIRCD-1000}
    [hybrid]=${CC_HYBRID-}
)

BENCH_TIMEOUT=600       # seconds per load generator run
START_TIMEOUT=20        # seconds for a server to start listening
STOP_TIMEOUT=10         # seconds for a server to exit after SIGTERM
# Seconds a server is left alone after it starts listening, before the
# load generator reads its RSS: start-up work (Parlor hashes an Argon2
# decoy, 19 MiB for a moment) must be over and its memory given back, or
# a later drop of it would be credited to the clients measured.
SETTLE_SECS=3

usage() {
    cat <<EOF
Usage: bench/peers.sh [options]

Measures Parlor and the IRC servers people would otherwise pick (ngIRCd,
InspIRCd, ircd-hybrid) with parlor-bench, one server at a time, and prints
one table (medians over the runs) plus Parlor ÷ best peer ratios.

Options:
  --quick            every scenario at a tenth of its size, 1 run unless
                     --runs is given (for trying the script)
  --runs N           measurements per scenario and server (default 3); the
                     table shows the median of each metric
  --servers LIST     comma-separated, from: $ALL_SERVERS
  --scenarios LIST   comma-separated, from: $ALL_SCENARIOS
  --out FILE         results file (Markdown: table and every raw JSON line);
                     default \${TMPDIR:-/tmp}/parlor-peers-DATE-TIME.md
  --no-install       do not install missing peers (skip them instead)
  --keep             keep the temp dir (configs, server and bench logs)
  -h, --help         this text

Environment: CC_PARLOR, CC_NGIRCD (default 5), CC_INSPIRCD (default 1000),
CC_HYBRID set --connect-concurrency per server (empty: the bench's default).
EOF
}

QUICK=0
RUNS=
SERVERS=$ALL_SERVERS
SCENARIOS=$ALL_SCENARIOS
OUT=
INSTALL=1
KEEP=0
while (($#)); do
    case $1 in
        --quick) QUICK=1 ;;
        --runs) RUNS=${2:?--runs needs a number}; shift ;;
        --runs=*) RUNS=${1#*=} ;;
        --servers) SERVERS=${2:?--servers needs a list}; shift ;;
        --servers=*) SERVERS=${1#*=} ;;
        --scenarios) SCENARIOS=${2:?--scenarios needs a list}; shift ;;
        --scenarios=*) SCENARIOS=${1#*=} ;;
        --out) OUT=${2:?--out needs a file}; shift ;;
        --out=*) OUT=${1#*=} ;;
        --no-install) INSTALL=0 ;;
        --keep) KEEP=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "peers.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
if [[ -z $RUNS ]]; then
    if ((QUICK)); then RUNS=1; else RUNS=3; fi
fi
if ! [[ $RUNS =~ ^[1-9][0-9]*$ ]] || ((RUNS > 20)); then
    echo "peers.sh: --runs must be 1..20" >&2
    exit 2
fi
IFS=, read -r -a SERVER_LIST <<<"$SERVERS"
IFS=, read -r -a SCENARIO_LIST <<<"$SCENARIOS"
for s in "${SERVER_LIST[@]}"; do
    [[ ,$ALL_SERVERS, == *,$s,* ]] || { echo "peers.sh: unknown server '$s' (known: $ALL_SERVERS)" >&2; exit 2; }
done
for s in "${SCENARIO_LIST[@]}"; do
    [[ ,$ALL_SCENARIOS, == *,$s,* ]] || { echo "peers.sh: unknown scenario '$s' (known: $ALL_SCENARIOS)" >&2; exit 2; }
done

log() { printf '[peers %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# The load generator's arguments for a scenario, full size or a tenth.
scenario_args() {
    local id=$1 q=$QUICK
    case $id in
        fanout-200)   ((q)) && echo "fanout --clients 20 --senders 4 --messages 50" \
                            || echo "fanout --clients 200 --senders 4 --messages 500" ;;
        fanout-2000)  ((q)) && echo "fanout --clients 200 --senders 2 --messages 10" \
                            || echo "fanout --clients 2000 --senders 2 --messages 100" ;;
        fanout-paced) ((q)) && echo "fanout --clients 20 --senders 4 --messages 50 --rate 500" \
                            || echo "fanout --clients 200 --senders 4 --messages 500 --rate 500" ;;
        dm)           ((q)) && echo "dm --pairs 50 --messages 20" \
                            || echo "dm --pairs 500 --messages 200" ;;
        connect)      ((q)) && echo "connect --clients 1000 --hold-secs 2" \
                            || echo "connect --clients 10000 --hold-secs 2" ;;
        join-2000)    ((q)) && echo "join-storm --clients 200" \
                            || echo "join-storm --clients 2000" ;;
        join-5000)    ((q)) && echo "join-storm --clients 500" \
                            || echo "join-storm --clients 5000" ;;
    esac
}

command -v python3 >/dev/null || { echo "peers.sh: python3 is needed for the table" >&2; exit 1; }

# ---------------------------------------------------------------- cleanup --
TMP=$(mktemp -d "${TMPDIR:-/tmp}/parlor-peers.XXXXXX")
chmod 755 "$TMP"
STARTED_PIDS=()         # every long-running process this script started
POLICY_CREATED=0

stop_pid() {            # stop_pid PID: SIGTERM, wait (bounded), then SIGKILL
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        # A child of this shell stays a zombie until waited for.
        if [[ $(ps -o stat= -p "$pid" 2>/dev/null) == Z* ]]; then break; fi
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null && [[ $(ps -o stat= -p "$pid" 2>/dev/null) != Z* ]]; then
        log "PID $pid did not exit within ${STOP_TIMEOUT}s of SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$? i
    trap - EXIT INT TERM
    # Newest first: the load generator, then the server, then the resolver.
    for ((i = ${#STARTED_PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${STARTED_PIDS[i]}"
    done
    if ((POLICY_CREATED)) && [[ -f /usr/sbin/policy-rc.d ]]; then
        rm -f /usr/sbin/policy-rc.d
    fi
    if ((KEEP)); then
        log "kept the temp dir: $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------ environment --
# As many file descriptors as allowed: the connect scenario holds 10,000
# connections in the server and as many again in the load generator.
HARD=$(ulimit -Hn)
if [[ $HARD == unlimited ]]; then HARD=1048576; fi
ulimit -n "$HARD" 2>/dev/null || true
MAXFD=$(ulimit -n)
if ((MAXFD < 10100)); then
    log "warning: only $MAXFD file descriptors allowed (ulimit -Hn); the 10,000-client scenario will fail"
fi

IS_ROOT=0
[[ $(id -u) == 0 ]] && IS_ROOT=1

# InspIRCd and ircd-hybrid refuse to run as root. When this script runs as
# root, the peers run as the unprivileged 'irc' user (Debian's, or 'nobody').
RUN_USER=
if ((IS_ROOT)); then
    if id irc >/dev/null 2>&1; then RUN_USER=irc; else RUN_USER=nobody; fi
fi
as_run_user() {         # exec "$@" as RUN_USER (or as is when not root)
    if [[ -n $RUN_USER ]]; then
        exec setpriv --reuid="$RUN_USER" --regid="$(id -g "$RUN_USER")" --clear-groups -- "$@"
    else
        exec "$@"
    fi
}
own_dir() {             # make a run dir usable by RUN_USER
    if [[ -n $RUN_USER ]]; then chown -R "$RUN_USER:$(id -g "$RUN_USER")" "$1"; fi
}

port_busy() {           # port_busy PORT: is anything listening on 127.0.0.1:PORT?
    if command -v ss >/dev/null; then
        [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

# --------------------------------------------------------------- install --
declare -A SKIP_REASON=()   # server -> why it is left out
declare -A VERSION=()
HYBRID_ROOT=            # extracted ircd-hybrid package (when not installed)
HYBRID_BIN=

deb_installed() { [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]; }

APT_UPDATED=0
apt_update_once() {
    if ((!APT_UPDATED)); then
        log "apt-get update"
        apt-get update -qq >"$TMP/apt-update.log" 2>&1 || { tail -5 "$TMP/apt-update.log" >&2; return 1; }
        APT_UPDATED=1
    fi
}

# Debian's maintainer scripts may start a freshly installed ircd on 6667.
# A policy-rc.d that exits 101 forbids that; if there is none, one is put in
# place for the install and removed right after.
with_no_service_start() {
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\n# Put here by parlor bench/peers.sh for one apt-get install.\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        POLICY_CREATED=1
    fi
    local rc=0
    "$@" || rc=$?
    if ((POLICY_CREATED)); then
        rm -f /usr/sbin/policy-rc.d
        POLICY_CREATED=0
    fi
    return "$rc"
}

# Stops a daemon the install started anyway: only the PID in the package's
# own PID file, only if that file did not exist before, and only if the
# process is that package's binary.
stop_packaged_daemon() {    # PIDFILE BINARY EXISTED_BEFORE
    local pidfile=$1 binary=$2 existed=$3 pid exe
    [[ $existed == 0 && -r $pidfile ]] || return 0
    pid=$(tr -dc 0-9 <"$pidfile")
    [[ -n $pid ]] || return 0
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
    if [[ $exe == "$binary" ]]; then
        log "the package install started $binary (PID $pid); stopping it"
        kill -TERM "$pid" 2>/dev/null || true
        local i
        for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
}

WHY=                    # why the last install_debs / prepare_hybrid failed
install_debs() {            # install_debs PKG...: the ones not installed yet
    local missing=() p
    for p in "$@"; do deb_installed "$p" || missing+=("$p"); done
    ((${#missing[@]})) || return 0
    if ((!INSTALL)); then
        WHY="not installed (--no-install): ${missing[*]}"
        return 1
    fi
    if ((!IS_ROOT)); then
        WHY="not installed and not root: run 'sudo apt-get install ${missing[*]}' or this script as root"
        return 1
    fi
    apt_update_once || { WHY="apt-get update failed"; return 1; }
    local ng_pid=0 in_pid=0
    [[ -e /run/ngircd/ngircd.pid ]] && ng_pid=1
    [[ -e /run/inspircd/inspircd.pid ]] && in_pid=1
    log "apt-get install ${missing[*]}"
    if ! with_no_service_start env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$TMP/apt-install.log" 2>&1; then
        tail -5 "$TMP/apt-install.log" >&2
        WHY="apt-get install ${missing[*]} failed"
        return 1
    fi
    stop_packaged_daemon /run/ngircd/ngircd.pid /usr/sbin/ngircd "$ng_pid"
    stop_packaged_daemon /run/inspircd/inspircd.pid /usr/sbin/inspircd "$in_pid"
    return 0
}

# ircd-hybrid conflicts with ngircd in Debian, so unless it is installed it
# is unpacked (not installed) into a cache dir; its runtime libraries are
# installed normally. It looks for its modules under /usr/lib/ircd-hybrid
# and for its resolver in /etc/resolv.conf (both compiled in), so it runs in
# a private mount namespace where an overlay adds /usr/lib/ircd-hybrid and
# /etc/resolv.conf names 127.0.0.1. That needs root.
prepare_hybrid() {
    if ((!IS_ROOT)); then
        WHY="needs root (a private mount namespace, and port 53 on 127.0.0.1 for its DNS lookups)"
        return 1
    fi
    if ! unshare --mount --propagation private -- true 2>/dev/null; then
        WHY="cannot create a mount namespace (unshare --mount failed)"
        return 1
    fi
    if command -v ss >/dev/null && ss -Hlun 2>/dev/null | awk '{print $4}' | grep -q -E '^(127\.0\.0\.1|0\.0\.0\.0|\*|\[::\]):53$'; then
        WHY="something already listens on UDP port 53 of 127.0.0.1 (needed to answer hybrid's reverse DNS)"
        return 1
    fi
    if deb_installed ircd-hybrid; then
        HYBRID_BIN=/usr/sbin/ircd-hybrid
        HYBRID_ROOT=
        VERSION[hybrid]=$(dpkg-query -W -f='${Version}' ircd-hybrid)
        return 0
    fi
    local cache=${XDG_CACHE_HOME:-$HOME/.cache}/parlor-bench/ircd-hybrid deb deps
    mkdir -p "$cache"
    deb=$(find "$cache" -maxdepth 1 -name 'ircd-hybrid_*.deb' | head -n1)
    if [[ -z $deb ]]; then
        if ((!INSTALL)); then WHY="not downloaded (--no-install)"; return 1; fi
        apt_update_once || { WHY="apt-get update failed"; return 1; }
        log "apt-get download ircd-hybrid (unpacked into $cache, not installed: it conflicts with ngircd)"
        (cd "$cache" && apt-get download -qq ircd-hybrid) >"$TMP/apt-download.log" 2>&1 \
            || { WHY="apt-get download ircd-hybrid failed"; return 1; }
        deb=$(find "$cache" -maxdepth 1 -name 'ircd-hybrid_*.deb' | head -n1)
    fi
    if [[ ! -x $cache/root/usr/sbin/ircd-hybrid ]]; then
        rm -rf "$cache/root"
        dpkg-deb -x "$deb" "$cache/root" || { WHY="dpkg-deb -x $deb failed"; return 1; }
    fi
    # Its runtime libraries, installed normally (lsb-base is for the init
    # script, which is not used).
    deps=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -e 's/([^)]*)//g; s/|.*//; s/[[:space:]]//g' \
        | grep -v -x -e '' -e lsb-base || true)
    # shellcheck disable=SC2086
    install_debs $deps || return 1
    HYBRID_ROOT=$cache/root
    HYBRID_BIN=$HYBRID_ROOT/usr/sbin/ircd-hybrid
    VERSION[hybrid]="$(dpkg-deb -f "$deb" Version) (Debian package, unpacked)"
    return 0
}

for s in "${SERVER_LIST[@]}"; do
    WHY=
    case $s in
        parlor) ;;
        ngircd|inspircd)
            # The Debian package has the server's own name.
            if install_debs "$s"; then
                VERSION[$s]=$(dpkg-query -W -f='${Version}' "$s")
            else
                SKIP_REASON[$s]=$WHY
            fi ;;
        hybrid)
            prepare_hybrid || SKIP_REASON[hybrid]=$WHY ;;
    esac
done
for s in "${!SKIP_REASON[@]}"; do
    log "skipping $s: ${SKIP_REASON[$s]}"
done

# ------------------------------------------------------------------ build --
log "cargo build --release -p parlor -p parlor-bench"
(cd "$ROOT" && cargo build --release -q -p parlor -p parlor-bench) || { echo "peers.sh: build failed" >&2; exit 1; }
[[ -x $BENCH ]] || { echo "peers.sh: $BENCH was not built" >&2; exit 1; }
VERSION[parlor]="$("$PARLOR" --version 2>/dev/null | awk '{print $NF}') ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || echo '+changes'))"

# -------------------------------------------------- start / stop servers --
# start_server SERVER RUNDIR: starts it, sets SERVER_PID; 1 on failure.
SERVER_PID=
DNS_PID=
render() {              # render TEMPLATE OUT PORT DIR
    sed -e "s|@PORT@|$3|g; s|@DIR@|$4|g; s|@MAXFD@|$MAXFD|g; s|@MAXCLIENTS@|$((MAXFD - 100))|g" "$1" >"$2"
}

start_dns_responder() {
    # Answers every DNS query on 127.0.0.1:53 with NXDOMAIN at once, so
    # ircd-hybrid's reverse lookups end immediately and never leave the host.
    [[ -n $DNS_PID ]] && kill -0 "$DNS_PID" 2>/dev/null && return 0
    cat >"$TMP/nxdomain.py" <<'EOF'
import os, signal, socket, struct
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
while True:
    data, addr = s.recvfrom(4096)
    if len(data) < 12 or addr[0] != "127.0.0.1":
        continue
    qid, flags = struct.unpack(">HH", data[:4])
    i = 12
    while i < len(data) and data[i] != 0:
        i += data[i] + 1
    question = data[12:i + 5]
    # QR=1, opcode and RD copied, RA=1, RCODE=3 (NXDOMAIN)
    reply_flags = 0x8000 | (flags & 0x7900) | 0x0080 | 3
    s.sendto(struct.pack(">HHHHHH", qid, reply_flags, 1, 0, 0, 0) + question, addr)
EOF
    python3 "$TMP/nxdomain.py" >"$TMP/nxdomain.log" 2>&1 &
    DNS_PID=$!
    STARTED_PIDS+=("$DNS_PID")
    sleep 0.3
    kill -0 "$DNS_PID" 2>/dev/null || { cat "$TMP/nxdomain.log" >&2; return 1; }
}

start_server() {
    local s=$1 dir=$2 port=${PORT[$1]}
    SERVER_PID=
    mkdir -p "$dir"
    cp "$CONFIGS/motd.txt" "$dir/motd.txt"
    if port_busy "$port"; then
        echo "port $port on 127.0.0.1 is already in use" >"$dir/start-error"
        return 1
    fi
    case $s in
        parlor)
            render "$CONFIGS/parlor.toml.in" "$dir/parlor.toml" "$port" "$dir"
            mkdir -p "$dir/data"
            "$PARLOR" --config "$dir/parlor.toml" --listen "127.0.0.1:$port" --data-dir "$dir/data" \
                >"$dir/server.log" 2>&1 &
            SERVER_PID=$! ;;
        ngircd)
            render "$CONFIGS/ngircd.conf.in" "$dir/ngircd.conf" "$port" "$dir"
            mkdir -p "$dir/conf.d"
            own_dir "$dir"
            (as_run_user /usr/sbin/ngircd --nodaemon --config "$dir/ngircd.conf") >"$dir/server.log" 2>&1 &
            SERVER_PID=$! ;;
        inspircd)
            render "$CONFIGS/inspircd.conf.in" "$dir/inspircd.conf" "$port" "$dir"
            own_dir "$dir"
            (as_run_user /usr/sbin/inspircd --nofork --config="$dir/inspircd.conf") >"$dir/server.log" 2>&1 &
            SERVER_PID=$! ;;
        hybrid)
            start_dns_responder || { echo "could not start the DNS responder on 127.0.0.1:53" >"$dir/start-error"; return 1; }
            render "$CONFIGS/ircd-hybrid.conf.in" "$dir/ircd.conf" "$port" "$dir"
            echo "nameserver 127.0.0.1" >"$dir/resolv.conf"
            own_dir "$dir"
            local args=(-foreground -configfile "$dir/ircd.conf" -klinefile "$dir/kline.db"
                -dlinefile "$dir/dline.db" -xlinefile "$dir/xline.db" -resvfile "$dir/resv.db"
                -logfile "$dir/ircd.log" -pidfile "$dir/ircd.pid")
            local mounts="mount --bind '$dir/resolv.conf' /etc/resolv.conf"
            if [[ -n $HYBRID_ROOT ]]; then
                mounts="mount -t overlay overlay -o 'lowerdir=$HYBRID_ROOT/usr/lib:/usr/lib' /usr/lib && $mounts"
            fi
            # unshare, sh, setpriv and the ircd all exec in turn: one PID.
            (exec unshare --mount --propagation private -- sh -c "$mounts && exec \"\$0\" \"\$@\"" \
                setpriv --reuid="$RUN_USER" --regid="$(id -g "$RUN_USER")" --clear-groups -- \
                "$HYBRID_BIN" "${args[@]}") >"$dir/server.log" 2>&1 &
            SERVER_PID=$! ;;
    esac
    STARTED_PIDS+=("$SERVER_PID")
    local i
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null || [[ $(ps -o stat= -p "$SERVER_PID" 2>/dev/null) == Z* ]]; then
            { echo "exited at start:"; tail -n 5 "$dir/server.log"; } >"$dir/start-error"
            stop_server
            return 1
        fi
        port_busy "$port" && return 0
        sleep 0.1
    done
    echo "not listening on 127.0.0.1:$port after ${START_TIMEOUT}s" >"$dir/start-error"
    stop_server
    return 1
}

unlist_pid() {           # forget a PID that has been stopped or waited for
    local keep=() p
    for p in "${STARTED_PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    STARTED_PIDS=("${keep[@]}")
}

stop_server() {
    [[ -n $SERVER_PID ]] || return 0
    stop_pid "$SERVER_PID"
    unlist_pid "$SERVER_PID"
    SERVER_PID=
}

# --------------------------------------------------------------- measure --
RAW=$TMP/raw.jsonl      # one line per run: {"id","server","run","result"|"error"}
: >"$RAW"

record() {              # record ID SERVER RUN (RESULT_JSON_FILE | '' ERROR)
    python3 - "$@" >>"$RAW" <<'EOF'
import json, sys
sid, server, run, path = sys.argv[1:5]
entry = {"id": sid, "server": server, "run": int(run)}
if path:
    entry["result"] = json.load(open(path))
else:
    entry["error"] = sys.argv[5]
print(json.dumps(entry))
EOF
}

last_json_line() {      # last_json_line FILE OUT: the last line, if it is a JSON object
    python3 - "$1" "$2" <<'EOF'
import json, sys
lines = [l for l in open(sys.argv[1], errors="replace").read().splitlines() if l.strip()]
if not lines:
    sys.exit(1)
try:
    obj = json.loads(lines[-1])
except ValueError:
    sys.exit(1)
if not isinstance(obj, dict):
    sys.exit(1)
json.dump(obj, open(sys.argv[2], "w"))
EOF
}

ACTIVE_SERVERS=()
for s in "${SERVER_LIST[@]}"; do
    [[ -n ${SKIP_REASON[$s]-} ]] || ACTIVE_SERVERS+=("$s")
done
((${#ACTIVE_SERVERS[@]})) || { echo "peers.sh: no server left to measure" >&2; exit 1; }

log "servers: ${ACTIVE_SERVERS[*]}; scenarios: ${SCENARIO_LIST[*]}; runs: $RUNS$( ((QUICK)) && echo ' (quick: a tenth of the size)')"
START_TIME=$(date +%s)
# Runs are interleaved (run 1 of every server, then run 2, ...) so a slow
# drift of the machine does not land on one server.
for id in "${SCENARIO_LIST[@]}"; do
    read -r -a sargs <<<"$(scenario_args "$id")"
    for ((run = 1; run <= RUNS; run++)); do
        for s in "${ACTIVE_SERVERS[@]}"; do
            dir=$TMP/$id/$s/run$run
            if ! start_server "$s" "$dir"; then
                err="server did not start: $(tr '\n' ' ' <"$dir/start-error")"
                log "$id $s run $run: $err"
                record "$id" "$s" "$run" "" "$err"
                continue
            fi
            sleep "$SETTLE_SECS"
            cc=()
            [[ -n ${CC[$s]} ]] && cc=(--connect-concurrency "${CC[$s]}")
            log "$id $s run $run/$RUNS: parlor-bench ${sargs[*]} ${cc[*]}"
            rc=0
            # In the background and waited for, so that an interrupt is
            # handled at once (the trap stops it with everything else).
            timeout --kill-after=10 "$BENCH_TIMEOUT" "$BENCH" "${sargs[@]}" \
                --addr "127.0.0.1:${PORT[$s]}" --server-pid "$SERVER_PID" --label "$s" "${cc[@]}" \
                >"$dir/bench.out" 2>"$dir/bench.err" </dev/null &
            bench_pid=$!
            STARTED_PIDS+=("$bench_pid")
            wait "$bench_pid" || rc=$?
            unlist_pid "$bench_pid"
            alive=1
            kill -0 "$SERVER_PID" 2>/dev/null && [[ $(ps -o stat= -p "$SERVER_PID" 2>/dev/null) != Z* ]] || alive=0
            stop_server
            if last_json_line "$dir/bench.out" "$dir/result.json"; then
                record "$id" "$s" "$run" "$dir/result.json"
                ((rc == 0)) || log "$id $s run $run: parlor-bench exited $rc but printed its JSON line"
                ((alive)) || log "$id $s run $run: the server was gone at the end of the run"
            else
                if ((rc == 124 || rc == 137)); then
                    err="timed out after ${BENCH_TIMEOUT}s"
                else
                    err="parlor-bench exited $rc: $(tail -n 3 "$dir/bench.err" | tr '\n' ' ' | cut -c1-300)"
                fi
                ((alive)) || err="$err (server exited during the run)"
                log "$id $s run $run: $err"
                record "$id" "$s" "$run" "" "$err"
            fi
        done
    done
done
ELAPSED=$(( $(date +%s) - START_TIME ))

# ----------------------------------------------------------------- report --
if [[ -z $OUT ]]; then
    OUT=${TMPDIR:-/tmp}/parlor-peers-$(date +%F-%H%M%S).md
fi
mkdir -p "$(dirname "$OUT")"
{
    for s in "${SERVER_LIST[@]}"; do
        printf '%s\t%s\t%s\t%s\n' "$s" "${VERSION[$s]-}" "${SKIP_REASON[$s]-}" "${CC[$s]-}"
    done
} >"$TMP/servers.tsv"

cat >"$TMP/table.py" <<'EOF'
import json, statistics, sys, os, platform, datetime

raw_path, servers_path, out_path = sys.argv[1:4]
runs, quick, scenarios, elapsed, maxfd = int(sys.argv[4]), sys.argv[5] == "1", sys.argv[6].split(","), int(sys.argv[7]), sys.argv[8]
scen_args = dict(a.split("=", 1) for a in sys.argv[9:])

servers, versions, skipped, ccs = [], {}, {}, {}
for line in open(servers_path):
    name, ver, why, cc = (line.rstrip("\n").split("\t") + ["", "", ""])[:4]
    servers.append(name); versions[name] = ver; ccs[name] = cc
    if why:
        skipped[name] = why
entries = [json.loads(l) for l in open(raw_path) if l.strip()]

NUMERIC = ["deliveries", "expected_deliveries", "losses", "duplicates", "reordered", "wall_secs",
           "deliveries_per_sec", "server_cpu_us", "cpu_us_per_delivery", "registrations",
           "registrations_per_sec", "cpu_us_per_registration", "rss_kib_before", "rss_kib_after",
           "rss_kib_per_client", "bench_cpu_us"]

def median(values):
    values = [v for v in values if isinstance(v, (int, float))]
    return statistics.median(values) if values else None

def summarize(results):
    m = {k: median([r.get(k) for r in results]) for k in NUMERIC}
    for q in ("p50", "p90", "p99", "max"):
        m["lat_" + q] = median([(r.get("latency_us") or {}).get(q) for r in results])
    errs = []
    for r in results:
        for e in r.get("errors") or []:
            if e not in errs:
                errs.append(e)
    m["errors"] = errs
    m["latency_of"] = next((r.get("latency_of") for r in results if r.get("latency_of")), None)
    return m

def is_connect(sid):
    return sid == "connect"

def fmt(v, digits=1):
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"

def ms(us):
    return None if us is None else us / 1000.0

rows, ratio_lines = [], []
cell = {}
for sid in scenarios:
    for s in servers:
        if s in skipped:
            continue
        mine = [e for e in entries if e["id"] == sid and e["server"] == s]
        ok = [e["result"] for e in mine if "result" in e]
        failed = [e["error"] for e in mine if "error" in e]
        cell[(sid, s)] = (summarize(ok) if ok else None, failed, len(mine))

header = ("| scenario | server | CPU µs/op | ops/s | p50 ms | p99 ms | RSS KiB/client | losses | notes |\n"
          "|---|---|--:|--:|--:|--:|--:|--:|---|")
for sid in scenarios:
    conn = is_connect(sid)
    for s in servers:
        if (sid, s) not in cell:
            continue
        m, failed, n = cell[(sid, s)]
        op = "reg" if conn else "delivery"
        notes = []
        if failed:
            notes.append(f"{len(failed)}/{n} runs failed: {failed[0]}")
        if m is None:
            rows.append(f"| {sid} | {s} | - | - | - | - | - | - | {'; '.join(notes)} |")
            continue
        if m["errors"]:
            more = f" (+{len(m['errors']) - 1} more)" if len(m["errors"]) > 1 else ""
            notes.append("errors: " + m["errors"][0][:160] + more)
        for k in ("duplicates", "reordered"):
            if m[k]:
                notes.append(f"{k} {fmt(m[k], 0)}")
        # Server CPU is in ns (schedstat), but falls back to /proc/PID/stat's 10 ms
        # clock ticks (±2 ticks) if a server thread exited mid-phase: flag where that is coarse.
        if m["server_cpu_us"] is not None and m["server_cpu_us"] < 20_000:
            notes.append(f"server CPU only {m['server_cpu_us'] / 1000:.1f} ms in {fmt(m['wall_secs'], 3)} s: "
                         "±20 ms if the bench fell back to clock ticks")
        cpu = m["cpu_us_per_registration"] if conn else m["cpu_us_per_delivery"]
        rate = m["registrations_per_sec"] if conn else m["deliveries_per_sec"]
        if cpu is None and not conn:       # scenarios without deliveries
            cpu, rate, op = m["cpu_us_per_registration"], m["registrations_per_sec"], "reg"
        losses = m["losses"]
        rows.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            sid, s, fmt(cpu, 2) + ("" if op == "delivery" else " /reg"),
            fmt(rate, 0) + ("" if op == "delivery" else " reg/s"),
            fmt(ms(m["lat_p50"]), 2), fmt(ms(m["lat_p99"]), 2),
            fmt(m["rss_kib_per_client"], 2), fmt(losses, 0), "; ".join(notes)))

def best_peer(sid, key, lower_is_better):
    vals = []
    for s in servers:
        if s == "parlor" or (sid, s) not in cell:
            continue
        m = cell[(sid, s)][0]
        if m and m.get(key) is not None:
            vals.append((m[key], s))
    if not vals:
        return None
    return min(vals) if lower_is_better else max(vals)

def ratio(sid, key, label, lower_is_better):
    p = cell.get((sid, "parlor"))
    pv = p[0].get(key) if p and p[0] else None
    b = best_peer(sid, key, lower_is_better)
    if pv is None or b is None:
        return f"{label}: n/a"
    if not b[0]:
        return f"{label}: n/a (best peer {b[1]} measured 0)"
    better = "lower is better" if lower_is_better else "higher is better"
    return (f"{label} {pv / b[0]:.2f} (Parlor {fmt(pv, 2)} vs {b[1]} {fmt(b[0], 2)}; {better}"
            + paired(sid, key, lower_is_better) + ")")

def paired(sid, key, lower_is_better):
    """The ratio run by run, Parlor's run k to the best peer's run k: the
    servers of one run are measured minutes apart, so this follows the
    machine's drift over a long table less than the ratio of medians."""
    by_run = {}
    for e in entries:
        if e["id"] == sid and "result" in e and e["server"] not in skipped:
            v = e["result"].get(key)
            if key == "lat_p99":
                v = (e["result"].get("latency_us") or {}).get("p99")
            if v is not None:
                by_run.setdefault(e["run"], {})[e["server"]] = v
    ratios = []
    for run in sorted(by_run):
        vals = by_run[run]
        peers = [v for s, v in vals.items() if s != "parlor"]
        if "parlor" not in vals or not peers:
            continue
        best = min(peers) if lower_is_better else max(peers)
        if best:
            ratios.append(vals["parlor"] / best)
    if len(ratios) < 2:
        return ""
    listed = ", ".join(f"{r:.2f}" for r in ratios)
    return f"; run by run {statistics.median(ratios):.2f} ({listed})"

for sid in scenarios:
    if "parlor" not in servers or "parlor" in skipped:
        break
    if is_connect(sid):
        parts = [ratio(sid, "registrations_per_sec", "registrations/s", False),
                 ratio(sid, "cpu_us_per_registration", "CPU µs/registration", True),
                 ratio(sid, "rss_kib_per_client", "RSS KiB/client", True)]
    else:
        m = cell.get((sid, "parlor"), (None,))[0]
        key = "cpu_us_per_delivery" if (m is None or m.get("cpu_us_per_delivery") is not None) else "cpu_us_per_registration"
        parts = [ratio(sid, key, "CPU µs/" + ("delivery" if key == "cpu_us_per_delivery" else "registration"), True)]
        if sid == "fanout-paced":
            parts.append(ratio(sid, "lat_p99", "p99 latency", True))
    ratio_lines.append(f"- **{sid}**: Parlor ÷ best peer: " + "; ".join(parts))

table = header + "\n" + "\n".join(rows)
ratios = "\n".join(ratio_lines)

def cpu_model():
    try:
        for l in open("/proc/cpuinfo"):
            if l.startswith("model name"):
                return l.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"

def mem_gib():
    try:
        for l in open("/proc/meminfo"):
            if l.startswith("MemTotal"):
                return f"{int(l.split()[1]) / 1048576:.0f} GiB"
    except OSError:
        pass
    return "?"

now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
lines = []
lines.append(f"# Parlor vs peers, {now}\n")
lines.append(f"Machine: {os.cpu_count()} cores ({cpu_model()}), {mem_gib()}, Linux {platform.release()}; "
             f"the load generator shares the cores with the server. File descriptors: {maxfd}.\n")
lines.append(f"Runs per cell: {runs} (median shown){', quick mode (a tenth of each size)' if quick else ''}; "
             f"total time {elapsed // 60} min {elapsed % 60} s.\n")
lines.append("Servers:\n")
for s in servers:
    v = versions.get(s) or "?"
    cc = f", --connect-concurrency {ccs[s]}" if ccs.get(s) else ""
    lines.append(f"- {s}: {v}{cc}" + (f" — skipped: {skipped[s]}" if s in skipped else ""))
lines.append("\nScenarios:\n")
for sid in scenarios:
    lines.append(f"- {sid}: `parlor-bench {scen_args.get(sid, '?')}`")
lines.append("\nCPU µs/op is server CPU (on-CPU ns summed over /proc/PID/task/*/schedstat; /proc/PID/stat "
             "clock ticks if a server thread exited) over the measured phase per delivery "
             "(per registration, marked /reg, where there are no deliveries); ops/s likewise; "
             "latency is what each scenario's `latency_of` says; RSS KiB/client is the RSS growth with "
             "all clients connected divided by their number.\n")
lines.append(table)
lines.append("")
lines.append(ratios)
with open(out_path, "w") as f:
    f.write("\n".join(lines) + "\n\n## Raw results\n\nOne JSON object per run: `id`, `server`, `run`, and the "
            "load generator's last output line as `result` (or `error`).\n\n```json\n")
    for e in entries:
        f.write(json.dumps(e) + "\n")
    f.write("```\n")
print(table)
print()
print(ratios)
EOF

scen_kv=()
for id in "${SCENARIO_LIST[@]}"; do scen_kv+=("$id=$(scenario_args "$id")"); done
echo
python3 "$TMP/table.py" "$RAW" "$TMP/servers.tsv" "$OUT" "$RUNS" "$QUICK" \
    "$(IFS=,; echo "${SCENARIO_LIST[*]}")" "$ELAPSED" "$MAXFD" "${scen_kv[@]}"
echo
for s in "${!SKIP_REASON[@]}"; do echo "skipped $s: ${SKIP_REASON[$s]}"; done
echo "results (table and raw JSON): $OUT"
