#!/usr/bin/env bash
# Load benchmarks of ims-vcr on loopback; each mode prints one table (docs/performance.md).
#
#   perf/replay.sh            anchors (the default): one run, three blocks, each row against its
#                              block's anchor in requests per server CPU-second:
#                              replay:  a minimal hyper server (anchor), nginx serving the body as a
#                                       static file, Talkback, ims-vcr replay
#                              forward: nginx proxy_pass (anchor), ims-vcr passthrough
#                              record:  nginx proxy_pass (anchor), ims-vcr record
#   perf/replay.sh replay     replay: bare hyper responders (the same bytes; one header) vs ims-vcr
#                              replay vs Talkback
#   perf/replay.sh startup    start to first correct answer and idle RSS (shipped cassettes, a
#                              100,000-interaction store); export and import time of that store
#   perf/replay.sh record     record throughput, a unique image id per request, vs the upstream
#                              directly and vs forwarding alone (passthrough); how long a replay
#                              takes to listen on the store of a recorder killed with -9
#
# Environment: DURATION (s per run, 10), WARMUP (s, 1), CONNS (32), ROUNDS (interleaved rounds, the
# median is shown; 3 in replay, 1 in anchors), SERVER_CPU (0), LOAD_CPU (1), STORE_SIZE (100000),
# NICE (0; -19 as root on a machine busy with other work), LOADGEN (wrk or oha; default wrk when
# installed). Needs bash 5, cargo, curl, taskset; installs wrk (apt-get) or oha (cargo install),
# nginx (apt-get, anchors) and Talkback (npm) when node is there. Every server listens on
# 127.0.0.1; every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-anchors}
DURATION=${DURATION:-10} WARMUP=${WARMUP:-1} CONNS=${CONNS:-32}
[[ -n ${ROUNDS:-} ]] || { [[ $MODE == replay ]] && ROUNDS=3 || ROUNDS=1; }
SERVER_CPU=${SERVER_CPU:-0} LOAD_CPU=${LOAD_CPU:-1} STORE_SIZE=${STORE_SIZE:-100000} NICE=${NICE:-0}
SEED=/v2/images/bc6bed6e-ba3a-4447-afcc-449174a3eb52
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release
PATH=$PATH:${CARGO_HOME:-$HOME/.cargo}/bin:/usr/sbin # where `cargo install oha` puts it; nginx
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ims-vcr-bench.XXXXXX")
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
die() { echo "bench: $*" >&2; exit 1; }
pin() { nice -n "$NICE" taskset -c "$@"; } # pin CPU COMMAND...: on one CPU, at priority NICE
tick() { NOW=$((${EPOCHREALTIME/./} / 1000)); } # $NOW in ms, without forking
mkfifo "$WORK/nap" && exec 9<>"$WORK/nap"
nap() { read -r -t "$1" -u 9 || true; } # sleep without forking (nothing is ever written to fd 9)
rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
hwm_mb() { awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; } # peak RSS
# utime + stime of a process, all threads, in clock ticks (fields 14 and 15 of /proc/PID/stat).
cpu_ticks() { local s; s=$(<"/proc/$1/stat"); s=${s##*) }; set -- $s; echo $((${12} + ${13})); }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

build() {
    echo "== building (release)" >&2
    cargo build --release --quiet --bin ims-vcr --examples
    "$BIN/examples/bare_responder" --print-body >"$WORK/expected.json"
}

loadgen() {
    if [[ -z ${LOADGEN:-} ]] && ! command -v wrk >/dev/null && command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
        echo "== installing wrk (apt-get)" >&2
        timeout 300 sh -c 'apt-get update -qq && apt-get install -y -qq wrk' >&2 || echo "bench: no wrk from apt-get" >&2
    fi
    command -v wrk >/dev/null && LOADGEN=${LOADGEN:-wrk} || LOADGEN=${LOADGEN:-oha}
    [[ $LOADGEN == wrk ]] || command -v oha >/dev/null ||
        { echo "== installing oha (cargo install)" >&2 && cargo install --locked --quiet oha; }
}

# start NAME CPU COMMAND...: runs COMMAND on CPU, waits (polling every millisecond, at most
# 120 s) for its `listening on URL` line, and sets $PID and $URL. A plain command, not `pin`: the
# child execs nice, taskset and the server in turn, so $! is the server itself.
start() {
    local name=$1 cpu=$2 line="" t0
    shift 2
    rm -f "$WORK/$name.out" # or a line left by an earlier server of that name could be read
    tick && t0=$NOW
    nice -n "$NICE" taskset -c "$cpu" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    PID=$! && PIDS+=("$PID")
    while tick && ((NOW - t0 < 120000)); do
        { read -r line <"$WORK/$name.out"; } 2>/dev/null && [[ $line == "listening on "* ]] &&
            URL=${line#listening on } && return
        kill -0 "$PID" 2>/dev/null || die "$name exited: $(tail -3 "$WORK/$name.err")"
        nap 0.001
    done
    die "$name did not start within 120 s"
}

# stop PID: SIGTERM (servers drain and flush), up to 15 s to exit, then SIGKILL; reaps it.
stop() {
    local s
    kill -TERM "$1" 2>/dev/null || true
    for _ in {1..300}; do # the state, third field of stat, is Z once it has exited
        s=$(cat "/proc/$1/stat" 2>/dev/null) && [[ ${s##*) } != Z* ]] || break
        nap 0.05
    done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# answers URL: true when GET $SEED answers 200 with exactly the expected bytes.
answers() {
    [[ $(curl -s --max-time 5 -o "$WORK/got" -w '%{http_code}' "$1$SEED") == 200 ]] &&
        cmp -s "$WORK/got" "$WORK/expected.json"
}
check() { answers "$2" || die "$1: GET $SEED did not answer 200 with the seed body (got: $(head -c 300 "$WORK/got"))"; }
# head_block URL: the status line and headers of GET $SEED (the recorded answer has a Date, so
# hyper adds none and they do not change between runs).
head_block() { curl -s --max-time 5 -D - -o /dev/null "$1$SEED" | tr -d '\r'; }
# probe URL: the same check over bash's /dev/tcp, so that polling starts no process (starting curl
# alone takes 10-25 ms on a busy 2-CPU machine, which would swamp a 50 ms start-up).
probe() {
    local hostport=${1#http://} answer
    { exec 8<>"/dev/tcp/${hostport%:*}/${hostport##*:}"; } 2>/dev/null || return 1
    printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$SEED" "$hostport" >&8
    IFS= read -r -d '' answer <&8 || true # up to the end: the server closes after answering
    exec 8>&-
    [[ ${answer%%$'\r'*} == "HTTP/1.1 200 OK" && ${answer#*$'\r\n\r\n'} == "$(<"$WORK/expected.json")" ]]
}

# load URL OUT [unique]: one run of the load generator on LOAD_CPU; prints "req/s p50 p99 errors
# requests" (ms; requests: how many were answered in the run). With "unique", every request asks
# for an image id not asked for before in this script.
RUN=0
load() {
    local url=$1 out=$2 unique=${3:-}
    RUN=$((RUN + 1))
    if [[ $LOADGEN == wrk ]]; then
        printf 'local n = 0\nrequest = function()\n  n = n + 1\n  return wrk.format("GET", string.format("/v2/images/%08x-0000-4000-8000-%%012x", n))\nend\n' \
            "$RUN" >"$WORK/unique.lua"
        pin "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"$DURATION"s --latency ${unique:+-s "$WORK/unique.lua"} "$url" >"$out"
        awk 'function ms(v) { return v ~ /us$/ ? v / 1000 : v ~ /ms$/ ? v + 0 : v * 1000 }
            /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) } /^Requests\/sec/ { rps = $2 } / requests in / { n = $1 }
            /Socket errors/ { gsub(",", ""); err += $4 + $6 + $8 + $10 } /Non-2xx/ { err += $5 }
            END { printf "%.0f %.3f %.3f %d %d\n", rps, p50, p99, err, n }' "$out"
    else
        # rand_regex syntax, where `.` is a literal dot: random ids, a repeat is next to impossible.
        [[ -n $unique ]] && url="$url/v2/images/[0-9a-f]{8}-0000-4000-8000-[0-9a-f]{12}"
        pin "$LOAD_CPU" oha -z "$DURATION"s -c "$CONNS" --no-tui --output-format json \
            ${unique:+--rand-regex-url} "$url" | tr -d ' \n' >"$out"
        # Errors: answers other than 200, and failed requests but those cut by the end of the run.
        sed -n 's/.*"statusCodeDistribution":{\([^}]*\)}.*"errorDistribution":{\([^}]*\)}.*/\1,\2/p' "$out" |
            tr ',' '\n' | grep -v '^"200"\|deadline' >"$WORK/errors" || true
        # The first "key":number after the named block (latency percentiles are in seconds).
        awk -F: -v out="$out" 'function num(block, key,   s) { s = substr(json, index(json, "\"" block "\""))
                return match(s, "\"" key "\":[0-9.e+-]+") ? substr(s, RSTART + length(key) + 3, RLENGTH - length(key) - 3) : 0 }
            BEGIN { getline json <out } $NF ~ /^[0-9]+$/ { err += $NF }
            END { printf "%.0f %.3f %.3f %d %.0f\n", num("summary", "requestsPerSec"), num("latencyPercentiles", "p50") * 1000,
                num("latencyPercentiles", "p99") * 1000, err, num("summary", "requestsPerSec") * num("summary", "total") }' "$WORK/errors"
    fi
}

# measure NAME PID URL [unique]: warm-up, then one measured run; appends a row to $WORK/rows
# (and shows it on stderr): name req/s p50-ms p99-ms errors requests RSS-MB server-CPU-centiseconds.
measure() {
    local before after
    DURATION=$WARMUP load "$3" "$WORK/warmup.txt" "${4:-}" >/dev/null
    before=$(cpu_ticks "$2")
    load "$3" "$WORK/$1.load" "${4:-}" >"$WORK/result"
    after=$(cpu_ticks "$2")
    [[ $(wc -w <"$WORK/result") == 5 ]] || die "$1: cannot read the $LOADGEN output: $(head -c 300 "$WORK/$1.load")"
    echo "$1 $(<"$WORK/result") $(rss_mb "$2") $(((after - before) * 100 / $(getconf CLK_TCK)))" >>"$WORK/rows"
    echo "   $(tail -1 "$WORK/rows")" >&2
}

# table: per server (in order of first appearance) the run with the median req/s, with requests
# per server CPU-second and both ratios to the first server.
table() {
    awk '{ name[NR] = $1; rps[NR] = $2; row[NR] = $0; n[$1]++ }
        !($1 in n0) { n0[$1]; order[++k] = $1 }
        END {
            printf "| %-16s | %7s | %13s | %7s | %7s | %6s | %6s | %11s | %15s |\n", "server", "req/s",
                "req per CPU-s", "p50 ms", "p99 ms", "errors", "RSS MB", "ratio req/s", "ratio req/CPU-s"
            print "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
            for (i = 1; i <= NR; i++) {
                below = 0
                for (j = 1; j <= NR; j++) below += (name[j] == name[i] && (rps[j] < rps[i] || (rps[j] == rps[i] && j < i)))
                if (below == int((n[name[i]] - 1) / 2)) median[name[i]] = row[i]
            }
            for (o = 1; o <= k; o++) {
                if (order[o] == "#") { sub(/^# /, "", median["#"]); print "| " median["#"] " |"; continue }
                split(median[order[o]], f, " ")
                per_cpu = (f[8] > 0 ? f[6] * 100 / f[8] : 0)
                if (!base) { base = f[2]; base_cpu = per_cpu }
                printf "| %-16s | %7d | %13d | %7.3f | %7.3f | %6d | %6.1f | %11.2f | %15.2f |\n", f[1], f[2], per_cpu,
                    f[3], f[4], f[5], f[7], f[2] / base, (base_cpu > 0 ? per_cpu / base_cpu : 0)
            }
        }' "$WORK/rows"
}

# talkback: installs Talkback next to a copy of perf/talkback_serve.js; on failure says why.
talkback() {
    command -v node >/dev/null && command -v npm >/dev/null || { echo "node or npm not found"; return 1; }
    mkdir -p "$WORK/talkback" && cp perf/talkback_serve.js "$WORK/talkback/"
    (cd "$WORK/talkback" && timeout 300 npm install --silent --no-audit --no-fund talkback@4 >/dev/null 2>&1) ||
        { echo "npm install talkback failed"; return 1; }
}

replay_mode() {
    local why="" round
    loadgen
    why=$(talkback) || true # empty once installed, else why not
    for round in $(seq "$ROUNDS"); do
        echo "== round $round of $ROUNDS (load average $(loadavg))" >&2
        # The reference: a bare hyper server sending the very bytes ims-vcr replay sends.
        start bare-same-bytes "$SERVER_CPU" "$BIN/examples/bare_responder" 0 --as-replayed
        check bare-same-bytes "$URL" && head_block "$URL" >"$WORK/bare.head"
        measure bare-same-bytes "$PID" "$URL$SEED" && stop "$PID"
        # The least a hyper server can send: the body with one header.
        start bare "$SERVER_CPU" "$BIN/examples/bare_responder" 0
        check bare "$URL" && measure bare-1-header "$PID" "$URL$SEED" && stop "$PID"
        RUST_LOG=warn start ims-vcr "$SERVER_CPU" "$BIN/ims-vcr" replay --listen 127.0.0.1:0 --cassettes cassettes
        check ims-vcr "$URL" && head_block "$URL" >"$WORK/ims-vcr.head"
        cmp -s "$WORK/bare.head" "$WORK/ims-vcr.head" ||
            die "bare-same-bytes and ims-vcr send different headers: $(diff "$WORK/bare.head" "$WORK/ims-vcr.head")"
        measure ims-vcr-replay "$PID" "$URL$SEED" && stop "$PID"
        [[ -n $why ]] && continue
        start talkback "$SERVER_CPU" node "$WORK/talkback/talkback_serve.js" "$WORK/talkback/tapes" "$WORK/expected.json" "$SEED"
        check talkback "$URL" && measure talkback "$PID" "$URL$SEED" && stop "$PID"
    done
    [[ -z $why ]] || echo "# talkback: skipped ($why)" >>"$WORK/rows"
    echo "replay GET $SEED: $LOADGEN -c$CONNS -t1, ${DURATION}s per run after ${WARMUP}s warm-up, median of" \
        "$ROUNDS interleaved rounds; server on CPU $SERVER_CPU, load on CPU $LOAD_CPU, nice $NICE; load average $(loadavg)"
    table
}

# first_answer ARGS...: ms from spawn of `ims-vcr replay ARGS` until the seed request gets the
# right body (probed every millisecond), then the RSS after 1 s idle and the peak RSS; sets $MS, $RSS
# and $HWM. With DROP_PACK set, the RSS is read 1 s after the pack is rewritten, and $REWRITTEN is
# the ms from spawn until it was.
first_answer() {
    local t0
    tick && t0=$NOW
    RUST_LOG=warn start first "$SERVER_CPU" "$BIN/ims-vcr" replay --listen 127.0.0.1:0 "$@"
    until probe "$URL"; do
        tick && ((NOW - t0 < 120000)) || die "ims-vcr replay $* gave no correct answer within 120 s"
        nap 0.001
    done
    tick && MS=$((NOW - t0)) && check ims-vcr "$URL"
    # Replay serves a store whose pack is gone at once and rewrites the pack behind: the RSS and
    # peak are read once it is rewritten (and the store closed), so they include the rewrite.
    if [[ -n ${DROP_PACK:-} ]]; then
        until [[ -f $DROP_PACK ]]; do
            tick && ((NOW - t0 < 120000)) || die "ims-vcr replay $* rewrote no pack within 120 s"
            nap 0.01
        done
        tick && REWRITTEN=$((NOW - t0))
    fi
    nap 1 && RSS=$(rss_mb "$PID") && HWM=$(hwm_mb "$PID") && stop "$PID"
}

# startup_row WHAT RUNS ARGS...: the median (min-max) of RUNS first_answer runs, and the RSS (the
# peak RSS of the process in brackets).
# With DROP_PACK set, that file (a store's replay pack) is deleted before each run; with FRESH set
# to "FROM TO", the store folder FROM is copied to TO before each run.
startup_row() {
    local what=$1 runs=$2 times=() rss=() hwm=() rewritten=() note=""
    shift 2
    for _ in $(seq "$runs"); do
        if [[ -n ${FRESH:-} ]]; then
            rm -rf "${FRESH#* }" && cp -a "${FRESH% *}" "${FRESH#* }"
        fi
        [[ -z ${DROP_PACK:-} ]] || rm -f "$DROP_PACK"
        first_answer "$@" && times+=("$MS") && rss+=("$RSS") && hwm+=("$HWM") && rewritten+=("${REWRITTEN:-}")
    done
    local first=${times[0]}
    mapfile -t times < <(printf '%s\n' "${times[@]}" | sort -n)
    [[ -z ${DROP_PACK:-} ]] || note=" (pack rewritten behind, after ${rewritten[*]} ms)"
    echo "| $what$note | ${times[$((runs / 2))]} ms (${times[0]}-${times[-1]}, $runs runs; the first $first ms) | ${rss[-1]} (peak ${hwm[-1]}) |"
}

# recorded_store_rows: the same rows for a store as `ims-vcr record` writes it (its recordings
# in sled's log tree, src/storage/store/log.rs, where make_store's and an import's are in the
# answers tree): recorded from minimal_hyper under load for RECORD_SECONDS (4: about 100,000
# recordings here), a unique image id per request, the session ended with SIGTERM.
recorded_store_rows() {
    local upstream_pid n
    loadgen
    start upstream "$LOAD_CPU" "$BIN/examples/minimal_hyper" 0 "$WORK/expected.json"
    upstream_pid=$PID
    RUST_LOG=warn start record-store "$SERVER_CPU" "$BIN/ims-vcr" record --upstream "$URL" \
        --store "$WORK/recorded" --listen 127.0.0.1:0
    check record-store "$URL" && DURATION=${RECORD_SECONDS:-4} load "$URL" "$WORK/record-store.load" unique >/dev/null
    stop "$PID" && stop "$upstream_pid"
    n=$(grep -o '[0-9]* recorded' "$WORK/record-store.err" | cut -d' ' -f1 || true)
    startup_row "replay a store ims-vcr record wrote (${n:-?} recordings, $(du -sh "$WORK/recorded" | cut -f1)): start to first correct answer; idle RSS" 3 --store "$WORK/recorded"
    DROP_PACK="$WORK/recorded/ims-vcr-replay.pack" startup_row "… its replay pack deleted first (as a recorder killed with -9 leaves it): start to first correct answer; RSS 1 s after the rewrite" 3 --store "$WORK/recorded"
    # The same recorder killed with -9 under load: no pack, sled not flushed, the log's groups
    # since its last flush to read and check (with --fsync, a journal to redo too).
    start upstream "$LOAD_CPU" "$BIN/examples/minimal_hyper" 0 "$WORK/expected.json"
    upstream_pid=$PID
    RUST_LOG=warn start record-killed "$SERVER_CPU" "$BIN/ims-vcr" record --upstream "$URL" \
        --store "$WORK/killed" --listen 127.0.0.1:0
    local recorder=$PID
    check record-killed "$URL"
    DURATION=${RECORD_SECONDS:-4} load "$URL" "$WORK/record-killed.load" unique >/dev/null &
    local loader=$!
    nap "$((${RECORD_SECONDS:-4} - 1))" && kill -KILL "$recorder"
    wait "$recorder" 2>/dev/null || true
    wait "$loader" 2>/dev/null || true
    stop "$upstream_pid"
    FRESH="$WORK/killed $WORK/killed-run" DROP_PACK="$WORK/killed-run/ims-vcr-replay.pack" startup_row "a store whose recorder was killed with -9 under load ($(du -sh "$WORK/killed" | cut -f1), log $(du -sh "$WORK/killed/ims-vcr-log" | cut -f1)), copied before each run: start to first correct answer; RSS 1 s after the rewrite" 3 --store "$WORK/killed-run"
}

startup_mode() {
    local t0
    echo "startup: ims-vcr on CPU $SERVER_CPU, nice $NICE; $(nproc) CPUs; load average $(loadavg)"
    echo "| what | time | RSS MB (peak) |"
    echo "|---|---:|---:|"
    startup_row "replay the shipped cassettes: start to first correct answer; idle RSS" 5 --cassettes cassettes
    tick && t0=$NOW
    pin "$SERVER_CPU" "$BIN/examples/make_store" "$WORK/store" "$STORE_SIZE" 2>/dev/null
    tick && echo "| make_store: build a $STORE_SIZE-interaction store ($(du -sh "$WORK/store" | cut -f1)) | $((NOW - t0)) ms | |"
    # make_store ends as `ims-vcr import` and recording sessions do, writing the replay pack.
    startup_row "replay the $STORE_SIZE-interaction store: start to first correct answer; idle RSS" 3 --store "$WORK/store"
    # Without its pack (a recorder killed with -9 writes none), replay serves from the store while it
    # rewrites the pack behind. The rows before served the pack without opening sled, so this row's
    # first run is the first open of sled since make_store wrote the store.
    DROP_PACK="$WORK/store/ims-vcr-replay.pack" startup_row "… its replay pack deleted first (replay serves while it rewrites it): start to first correct answer; RSS 1 s after the rewrite" 3 --store "$WORK/store"
    recorded_store_rows
    tick && t0=$NOW
    pin "$SERVER_CPU" "$BIN/ims-vcr" export --store "$WORK/store" --out "$WORK/cassettes" 2>/dev/null
    tick && echo "| export $STORE_SIZE interactions ($(du -sh "$WORK/cassettes" | cut -f1) of cassettes) | $((NOW - t0)) ms | |"
    tick && t0=$NOW
    pin "$SERVER_CPU" "$BIN/ims-vcr" import --store "$WORK/imported" "$WORK/cassettes" 2>/dev/null
    tick && echo "| import them into an empty store | $((NOW - t0)) ms | |"
}

# settle: writes back what earlier rows left in the page cache (a recorded store, make_store's
# store, a killed recorder's log: hundreds of MB each), so that the kernel's writeback of it
# runs now and not inside the next row's measurement, whichever server that row measures.
settle() {
    sync
}

# record_run NAME UPSTREAM STORE [FLAGS...]: `ims-vcr record` on SERVER_CPU, a unique image id per
# request, started once the page cache is written back (`settle`).
record_run() {
    local name=$1 upstream=$2 store=$3 before recorded
    shift 3
    settle
    before=$(du -sk "$store" 2>/dev/null | cut -f1 || true)
    RUST_LOG=warn start "$name" "$SERVER_CPU" "$BIN/ims-vcr" record --upstream "$upstream" --store "$store" --listen 127.0.0.1:0 "$@"
    check "$name" "$URL" && measure "$name" "$PID" "$URL" unique && stop "$PID"
    recorded=$(grep -o '[0-9]* recorded' "$WORK/$name.err" | cut -d' ' -f1 || true)
    echo "$name: ${recorded:-?} answers recorded (each written to the store before its answer${*:+, $*}); store ${before:-0} KB -> $(du -sk "$store" | cut -f1) KB" >>"$WORK/notes"
}

# killed_run UPSTREAM STORE: `ims-vcr record` under the same load, killed with -9 (no flush, no
# pack: the log's groups past sled's counters hold what sled had not written), then how long a
# replay of that store takes to listen: its open reads and checks those groups first
# (src/storage/store/log.rs). A note, not a table row.
killed_run() {
    local upstream=$1 store=$2 log t0
    RUST_LOG=warn start record-killed "$SERVER_CPU" "$BIN/ims-vcr" record --upstream "$upstream" --store "$store" --listen 127.0.0.1:0
    check record-killed "$URL" && load "$URL" "$WORK/record-killed.load" unique >/dev/null
    kill -KILL "$PID" && wait "$PID" 2>/dev/null || true
    log=$(du -sk "$store/ims-vcr-log" | cut -f1)
    tick && t0=$NOW
    RUST_LOG=warn start killed-replay "$SERVER_CPU" "$BIN/ims-vcr" replay --store "$store" --listen 127.0.0.1:0
    tick
    echo "record-killed: killed with -9 under load, ${log} KB of log left; a replay of that store listened after $((NOW - t0)) ms" >>"$WORK/notes"
    stop "$PID"
}

record_mode() {
    loadgen
    start bare "$SERVER_CPU" "$BIN/examples/bare_responder" 0
    check bare "$URL" && measure upstream-direct "$PID" "$URL" unique && stop "$PID"
    # The upstream shares the load generator's CPU, so ims-vcr has SERVER_CPU to itself.
    start upstream "$LOAD_CPU" "$BIN/examples/bare_responder" 0
    local upstream=$URL
    # The ceiling for any recording proxy on one core: forwarding alone, nothing stored.
    RUST_LOG=warn start passthrough "$SERVER_CPU" "$BIN/ims-vcr" passthrough --upstream "$upstream" --listen 127.0.0.1:0
    check passthrough "$URL" && measure passthrough "$PID" "$URL" unique && stop "$PID"
    record_run record-empty "$upstream" "$WORK/store-empty"
    record_run record-fsync "$upstream" "$WORK/store-fsync" --fsync
    killed_run "$upstream" "$WORK/store-killed"
    pin "$SERVER_CPU" "$BIN/examples/make_store" "$WORK/store-full" "$STORE_SIZE" 2>/dev/null
    record_run "record-${STORE_SIZE}" "$upstream" "$WORK/store-full"
    echo "record GET /v2/images/{unique id}: $LOADGEN -c$CONNS -t1, ${DURATION}s per run after ${WARMUP}s warm-up;" \
        "ims-vcr on CPU $SERVER_CPU, load and upstream on CPU $LOAD_CPU, nice $NICE; load average $(loadavg)"
    table
    cat "$WORK/notes"
}

# ---- anchors: each row against its block's anchor, in requests per server CPU-second ----------

# skip BLOCK NAME REASON: the row is not measured; the table says why.
skip() { echo "$1 $2 skip ${*:3}" >>"$WORK/anchor-rows" && echo "   $1 $2: skipped (${*:3})" >&2; }

# body_ok BLOCK NAME URL EXPECTED: true when GET URL$SEED answers 200 with exactly the bytes of the
# file EXPECTED; else the row is skipped, with what came instead.
body_ok() {
    local code
    rm -f "$WORK/got"
    code=$(curl -s --max-time 5 -o "$WORK/got" -w '%{http_code}' "$3$SEED") || true
    [[ $code == 200 ]] && cmp -s "$WORK/got" "$4" && return
    if [[ ! -f $WORK/got || $code == 000 ]]; then
        skip "$1" "$2" "GET $3$SEED got no answer"
    else
        skip "$1" "$2" "GET $SEED answered $code with $(wc -c <"$WORK/got") bytes, not the" \
            "$(wc -c <"$4") bytes of $(basename "$4")$(cmp -s <(head -c 1000 "$WORK/got") <(head -c 1000 "$4") || echo ": $(head -c 80 "$WORK/got" | tr -c '[:print:]' ' ')")"
    fi
    return 1
}

# anchor_measure BLOCK NAME PID URL [unique]: warm-up, one measured run of the server PID; appends
# "BLOCK NAME req/s p50 p99 errors requests server-CPU-centiseconds" to $WORK/anchor-rows.
anchor_measure() {
    local before after
    DURATION=$WARMUP load "$4" "$WORK/warmup.txt" "${5:-}" >/dev/null
    before=$(cpu_ticks "$3")
    load "$4" "$WORK/$1-$2.load" "${5:-}" >"$WORK/result"
    after=$(cpu_ticks "$3")
    [[ $(wc -w <"$WORK/result") == 5 ]] || { skip "$1" "$2" "cannot read the $LOADGEN output"; return 1; }
    echo "$1 $2 $(<"$WORK/result") $(((after - before) * 100 / $(getconf CLK_TCK)))" >>"$WORK/anchor-rows"
    echo "   $(tail -1 "$WORK/anchor-rows")" >&2
}

# nginx_installed: true when nginx is there (installed with apt-get if need be), else says why not.
nginx_installed() {
    command -v nginx >/dev/null && return
    if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
        echo "== installing nginx (apt-get)" >&2
        timeout 300 sh -c 'apt-get install -y -qq nginx || { apt-get update -qq && apt-get install -y -qq nginx; }' \
            >"$WORK/nginx-install.log" 2>&1 || true
        command -v nginx >/dev/null && return
        echo "apt-get install nginx failed: $(tail -1 "$WORK/nginx-install.log")"
    else
        echo "nginx not found, and apt-get is not there or this is not root"
    fi
    return 1
}

# start_nginx NAME CPU SERVER_BLOCK [HTTP_BLOCK]: nginx, as the current user, with its own config and
# prefix in $WORK/NAME (no system config), one process (no master, no daemon), pinned to CPU, on a
# free port of 127.0.0.1; SERVER_BLOCK goes in its `server {}`, HTTP_BLOCK beside it. Sets $PID and
# $URL; on failure sets $WHY and returns 1.
start_nginx() {
    local name=$1 cpu=$2 dir=$WORK/$1 port user=""
    [[ $(id -u) == 0 ]] && user="user $(id -un) $(id -gn);" # else nginx runs as whoever starts it
    mkdir -p "$dir"
    for _ in {1..20}; do
        port=$((20000 + RANDOM % 40000))
        { exec 8<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null && { exec 8>&-; continue; } # taken
        cat >"$dir/nginx.conf" <<NGINX
$user
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    server_tokens off;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    default_type application/json;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    ${4:-}
    server {
        listen 127.0.0.1:$port;
        $3
    }
}
NGINX
        nice -n "$NICE" taskset -c "$cpu" nginx -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" \
            >"$dir/out" 2>"$dir/err" &
        PID=$! && PIDS+=("$PID") && URL=http://127.0.0.1:$port
        for _ in {1..2000}; do # up to 10 s
            kill -0 "$PID" 2>/dev/null || break
            { exec 8<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null && { exec 8>&-; return; }
            nap 0.005
        done
        stop "$PID"
        grep -q 'Address already in use' "$dir/err" "$dir/error.log" 2>/dev/null && continue
        WHY="nginx did not start: $(cat "$dir/err" "$dir/error.log" 2>/dev/null | grep -v '^$' | tail -1 | sed -E 's/^[0-9/]+ [0-9:]+ //')"
        return 1
    done
    WHY="no free port found for nginx"
    return 1
}

# start_nginx_proxy NAME: the nginx forwarding anchor on SERVER_CPU, keep-alive to $UPSTREAM.
start_nginx_proxy() {
    start_nginx "$1" "$SERVER_CPU" \
        'location / { proxy_pass http://upstream; proxy_http_version 1.1; proxy_set_header Connection ""; }' \
        "upstream upstream { server ${UPSTREAM#http://}; keepalive 32; keepalive_requests 1000000; }"
}

# same_head_plus_outcome REFERENCE_URL URL: true when the heads of GET $SEED from the two differ
# only by x-ims-vcr (and the date's value); else prints the difference.
same_head_plus_outcome() {
    local norm='tr -d "\r" | grep -v -i "^x-ims-vcr:" | sed -E "s/^[Dd]ate:.*/date: (any)/" | tr A-Z a-z | sort'
    diff <(curl -s --max-time 5 -D - -o /dev/null "$1$SEED" | eval "$norm") \
        <(curl -s --max-time 5 -D - -o /dev/null "$2$SEED" | eval "$norm")
}

# anchors_round: one round of the three blocks, each block's anchor first.
anchors_round() {
    local expected=$WORK/expected.json block
    # replay. The anchor: a minimal hyper server sending the body with content-type.
    start minimal-hyper "$SERVER_CPU" "$BIN/examples/minimal_hyper" 0 "$expected"
    body_ok replay minimal-hyper "$URL" "$expected" && anchor_measure replay minimal-hyper "$PID" "$URL$SEED"
    stop "$PID"
    if [[ -n $NGINX_WHY ]]; then
        skip replay nginx-static "$NGINX_WHY"
    elif start_nginx nginx-static "$SERVER_CPU" "location / { root $WORK/static; open_file_cache max=16 inactive=60s; }"; then
        body_ok replay nginx-static "$URL" "$WORK/static$SEED" && anchor_measure replay nginx-static "$PID" "$URL$SEED"
        stop "$PID"
    else
        skip replay nginx-static "$WHY"
    fi
    if [[ -n $TALKBACK_WHY ]]; then
        skip replay talkback "$TALKBACK_WHY"
    else
        start talkback "$SERVER_CPU" node "$WORK/talkback/talkback_serve.js" "$WORK/talkback/tapes" "$expected" "$SEED"
        body_ok replay talkback "$URL" "$expected" && anchor_measure replay talkback "$PID" "$URL$SEED"
        stop "$PID"
    fi
    RUST_LOG=warn start ims-vcr-replay "$SERVER_CPU" "$BIN/ims-vcr" replay --listen 127.0.0.1:0 --store "$WORK/replay-store"
    body_ok replay ims-vcr-replay "$URL" "$expected" && anchor_measure replay ims-vcr-replay "$PID" "$URL$SEED"
    stop "$PID"

    # forward and record: nginx proxy_pass to the minimal server (on LOAD_CPU, with the load
    # generator, so each proxy has SERVER_CPU to itself), then ims-vcr; a new image id per request.
    for block in forward record; do
        if [[ -n $NGINX_WHY ]]; then
            skip "$block" nginx-proxy_pass "$NGINX_WHY"
        elif start_nginx_proxy "nginx-proxy-$block"; then
            body_ok "$block" nginx-proxy_pass "$URL" "$expected" &&
                anchor_measure "$block" nginx-proxy_pass "$PID" "$URL" unique
            stop "$PID"
        else
            skip "$block" nginx-proxy_pass "$WHY"
        fi
        if [[ $block == forward ]]; then
            RUST_LOG=warn start passthrough "$SERVER_CPU" "$BIN/ims-vcr" passthrough --upstream "$UPSTREAM" \
                --listen 127.0.0.1:0
            body_ok forward ims-vcr-passthrough "$URL" "$expected" &&
                anchor_measure forward ims-vcr-passthrough "$PID" "$URL" unique
        else
            rm -rf "$WORK/record-store" # every round records into an empty store, durable (the default)
            settle
            RUST_LOG=warn start record "$SERVER_CPU" "$BIN/ims-vcr" record --upstream "$UPSTREAM" \
                --store "$WORK/record-store" --listen 127.0.0.1:0
            body_ok record ims-vcr-record "$URL" "$expected" && anchor_measure record ims-vcr-record "$PID" "$URL" unique
        fi
        stop "$PID"
    done
    # The store just recorded is written back before the next round's rows (see `settle`).
    settle
}

# anchor_table: per row (in order of first appearance) the run with the median req per CPU-s, and
# its ratio to the median of its block's anchor (the block's first row).
anchor_table() {
    awk -v rounds="$ROUNDS" '{ key = $1 " " $2; if (!(key in seen)) { seen[key]; order[++k] = key } }
        $3 == "skip" { if (!(key in why)) { why[key] = $0; sub(/^[^ ]+ [^ ]+ skip /, "", why[key]) } next }
        { m = ++runs[key]; pc[key, m] = ($8 > 0 ? $7 * 100 / $8 : 0); rps[key, m] = $3; p99[key, m] = $5; err[key] += $6 }
        END {
            print "| what | server | req per CPU-s | req/s | p99 | vs. anchor |"
            print "|---|---|---:|---:|---:|---:|"
            for (o = 1; o <= k; o++) {
                key = order[o]; split(key, w, " "); block = w[1]; name = w[2]
                first = !(block in anchor_of); if (first) anchor_of[block] = key
                if (!(key in runs)) {
                    printf "| %s | %s | skipped: %s | | | %s |\n", block, name, why[key], first ? "anchor" : ""
                    continue
                }
                n = runs[key]; best = 1 # the median run by req per CPU-s (the lower middle one of an even count)
                for (i = 1; i <= n; i++) { below = 0
                    for (j = 1; j <= n; j++) below += (pc[key, j] < pc[key, i] || (pc[key, j] == pc[key, i] && j < i))
                    if (below == int((n - 1) / 2)) best = i }
                med[key] = pc[key, best]; a = anchor_of[block]
                vs = first ? "1.00 (anchor)" : ((a in med) && med[a] > 0 ? sprintf("%.2f", med[key] / med[a]) : "n/a (no anchor)")
                printf "| %s | %s | %d | %d | %.2f ms | %s |\n", block, name, med[key], rps[key, best], p99[key, best], vs
                if (err[key] > 0) notes = notes sprintf("%s %s: %d errors (socket errors or answers other than 2xx)\n", block, name, err[key])
            }
            printf "%s", notes
            # With rounds, each row against the anchor of its block, round by round: a shared machine
            # moves both by up to a third between rounds, and the median row hides by how much.
            for (o = 1; o <= k; o++) {
                key = order[o]; split(key, w, " "); a = anchor_of[w[1]]
                # Only rows measured in every round, as their anchors: the m-th run is round m.
                if (key == a || rounds < 2 || runs[key] != rounds || runs[a] != rounds) continue
                if (!shown++) print "by round, against the anchor of the same round: req per CPU-s (p99)"
                line = ""
                for (m = 1; m <= runs[key] && m <= runs[a]; m++)
                    line = line sprintf(" %.2f (%.2f)", pc[a, m] > 0 ? pc[key, m] / pc[a, m] : 0,
                        p99[a, m] > 0 ? p99[key, m] / p99[a, m] : 0)
                printf "  %s %s:%s\n", w[1], w[2], line
            }
        }' "$WORK/anchor-rows"
}

anchors_mode() {
    local round upstream_pid
    loadgen
    NGINX_WHY=$(nginx_installed) || true # empty when nginx is there, else why not
    TALKBACK_WHY=$(talkback) || true
    # nginx's static file: the very bytes the others serve, at the path asked for.
    mkdir -p "$WORK/static${SEED%/*}" && cp "$WORK/expected.json" "$WORK/static$SEED"
    # The upstream of the forward and record blocks, and the source of the replay block's store.
    start upstream "$LOAD_CPU" "$BIN/examples/minimal_hyper" 0 "$WORK/expected.json"
    UPSTREAM=$URL upstream_pid=$PID
    # ims-vcr replay's store: the seed, recorded from that server (its bytes plus x-ims-vcr).
    RUST_LOG=warn start record-seed "$SERVER_CPU" "$BIN/ims-vcr" record --upstream "$UPSTREAM" \
        --store "$WORK/replay-store" --listen 127.0.0.1:0
    answers "$URL" || echo "recording the seed from minimal_hyper failed: $(head -c 300 "$WORK/got")" >>"$WORK/notes"
    stop "$PID"
    RUST_LOG=warn start ims-vcr-replay "$SERVER_CPU" "$BIN/ims-vcr" replay --listen 127.0.0.1:0 --store "$WORK/replay-store"
    same_head_plus_outcome "$UPSTREAM" "$URL" >"$WORK/head.diff" ||
        echo "ims-vcr replay's head differs from minimal-hyper's by more than x-ims-vcr: $(tr '\n' ' ' <"$WORK/head.diff")" >>"$WORK/notes"
    stop "$PID"
    for round in $(seq "$ROUNDS"); do
        echo "== round $round of $ROUNDS (load average $(loadavg))" >&2
        anchors_round
    done
    kill -0 "$upstream_pid" 2>/dev/null || echo "the upstream (minimal_hyper) exited during the run" >>"$WORK/notes"
    echo "anchors, GET $SEED (forward, record: GET /v2/images/{a new id per request}): $LOADGEN -c$CONNS -t1" \
        "--latency, DURATION=${DURATION}s per run after ${WARMUP}s warm-up, $ROUNDS round(s), the median run shown;" \
        "server on CPU $SERVER_CPU, load (and the upstream) on CPU $LOAD_CPU, nice $NICE; $(nproc) CPUs;" \
        "load average $(loadavg)"
    anchor_table
    [[ ! -s $WORK/notes ]] || cat "$WORK/notes"
}

build
case $MODE in
anchors) anchors_mode ;;
replay) replay_mode ;;
startup) startup_mode ;;
record) record_mode ;;
*) die "unknown mode $MODE: expected anchors, replay, startup or record" ;;
esac
