#!/usr/bin/env bash
# Load benchmarks of ims-vcr on loopback; each mode prints one table (docs/performance.md).
#
#   perf/replay.sh            replay: bare hyper responders (the same bytes; one header) vs ims-vcr
#                              replay vs Talkback
#   perf/replay.sh startup    start to first correct answer and idle RSS (shipped cassettes, a
#                              100,000-interaction store); export and import time of that store
#   perf/replay.sh record     record throughput, a unique image id per request, vs the upstream
#                              directly and vs forwarding alone (passthrough)
#
# Environment: DURATION (s per run, 10), WARMUP (s, 1), CONNS (32), ROUNDS (replay: interleaved
# rounds, the median is shown, 3), SERVER_CPU (0), LOAD_CPU (1), STORE_SIZE (100000), NICE (0; -19
# as root on a machine busy with other work), LOADGEN (wrk or oha; default wrk when installed).
# Needs bash 5, cargo, curl, taskset; installs wrk (apt-get) or oha (cargo install), and Talkback
# (npm) when node is there. Every server listens on 127.0.0.1; every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-replay}
DURATION=${DURATION:-10} WARMUP=${WARMUP:-1} CONNS=${CONNS:-32} ROUNDS=${ROUNDS:-3}
SERVER_CPU=${SERVER_CPU:-0} LOAD_CPU=${LOAD_CPU:-1} STORE_SIZE=${STORE_SIZE:-100000} NICE=${NICE:-0}
SEED=/v2/images/bc6bed6e-ba3a-4447-afcc-449174a3eb52
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release
PATH=$PATH:${CARGO_HOME:-$HOME/.cargo}/bin # where `cargo install oha` puts it
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
# utime + stime of a process, all threads, in clock ticks (fields 14 and 15 of /proc/PID/stat).
cpu_ticks() { local s; s=$(<"/proc/$1/stat"); s=${s##*) }; set -- $s; echo $((${12} + ${13})); }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

build() {
    echo "== building (release)" >&2
    cargo build --release --quiet --bin ims-vcr --example bare_responder --example make_store
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

# start NAME CPU COMMAND...: runs COMMAND on CPU, waits (polling every 5 ms, at most 120 s) for
# its `listening on URL` line, and sets $PID and $URL. A plain command, not `pin`: the child
# execs nice, taskset and the server in turn, so $! is the server itself.
start() {
    local name=$1 cpu=$2 line=""
    shift 2
    rm -f "$WORK/$name.out" # or a line left by an earlier server of that name could be read
    nice -n "$NICE" taskset -c "$cpu" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    PID=$! && PIDS+=("$PID")
    for _ in {1..24000}; do
        { read -r line <"$WORK/$name.out"; } 2>/dev/null && [[ $line == "listening on "* ]] &&
            URL=${line#listening on } && return
        kill -0 "$PID" 2>/dev/null || die "$name exited: $(tail -3 "$WORK/$name.err")"
        nap 0.005
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

# load URL OUT [unique]: one run of the load generator on LOAD_CPU; prints "req/s p50 p99 errors"
# (ms). With "unique", every request asks for an image id not asked for before in this script.
RUN=0
load() {
    local url=$1 out=$2 unique=${3:-}
    RUN=$((RUN + 1))
    if [[ $LOADGEN == wrk ]]; then
        printf 'local n = 0\nrequest = function()\n  n = n + 1\n  return wrk.format("GET", string.format("/v2/images/%08x-0000-4000-8000-%%012x", n))\nend\n' \
            "$RUN" >"$WORK/unique.lua"
        pin "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"$DURATION"s --latency ${unique:+-s "$WORK/unique.lua"} "$url" >"$out"
        awk 'function ms(v) { return v ~ /us$/ ? v / 1000 : v ~ /ms$/ ? v + 0 : v * 1000 }
            /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) } /^Requests\/sec/ { rps = $2 }
            /Socket errors/ { gsub(",", ""); err += $4 + $6 + $8 + $10 } /Non-2xx/ { err += $5 }
            END { printf "%.0f %.3f %.3f %d\n", rps, p50, p99, err }' "$out"
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
            END { printf "%.0f %.3f %.3f %d\n", num("summary", "requestsPerSec"), num("latencyPercentiles", "p50") * 1000,
                num("latencyPercentiles", "p99") * 1000, err }' "$WORK/errors"
    fi
}

# measure NAME PID URL [unique]: warm-up, then one measured run; appends a row to $WORK/rows
# (and shows it on stderr): name req/s p50-ms p99-ms errors RSS-MB server-CPU-centiseconds.
measure() {
    local before after
    DURATION=$WARMUP load "$3" "$WORK/warmup.txt" "${4:-}" >/dev/null
    before=$(cpu_ticks "$2")
    load "$3" "$WORK/$1.load" "${4:-}" >"$WORK/result"
    after=$(cpu_ticks "$2")
    [[ $(wc -w <"$WORK/result") == 4 ]] || die "$1: cannot read the $LOADGEN output: $(head -c 300 "$WORK/$1.load")"
    echo "$1 $(<"$WORK/result") $(rss_mb "$2") $(((after - before) * 100 / $(getconf CLK_TCK)))" >>"$WORK/rows"
    echo "   $(tail -1 "$WORK/rows")" >&2
}

# table: per server (in order of first appearance) the run with the median req/s, with requests
# per server CPU-second and both ratios to the first server.
table() {
    awk -v duration="$DURATION" '{ name[NR] = $1; rps[NR] = $2; row[NR] = $0; n[$1]++ }
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
                per_cpu = (f[7] > 0 ? f[2] * duration * 100 / f[7] : 0)
                if (!base) { base = f[2]; base_cpu = per_cpu }
                printf "| %-16s | %7d | %13d | %7.3f | %7.3f | %6d | %6.1f | %11.2f | %15.2f |\n", f[1], f[2], per_cpu,
                    f[3], f[4], f[5], f[6], f[2] / base, (base_cpu > 0 ? per_cpu / base_cpu : 0)
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
# right body (probed every 5 ms), then the RSS after 1 s idle; sets $MS and $RSS.
first_answer() {
    local t0
    tick && t0=$NOW
    RUST_LOG=warn start first "$SERVER_CPU" "$BIN/ims-vcr" replay --listen 127.0.0.1:0 "$@"
    until probe "$URL"; do
        tick && ((NOW - t0 < 120000)) || die "ims-vcr replay $* gave no correct answer within 120 s"
        nap 0.005
    done
    tick && MS=$((NOW - t0)) && check ims-vcr "$URL" && nap 1 && RSS=$(rss_mb "$PID") && stop "$PID"
}

# startup_row WHAT RUNS ARGS...: the median (min-max) of RUNS first_answer runs, and the RSS.
# With DROP_PACK set, that file (a store's replay pack) is deleted before each run.
startup_row() {
    local what=$1 runs=$2 times=() rss=()
    shift 2
    for _ in $(seq "$runs"); do
        [[ -z ${DROP_PACK:-} ]] || rm -f "$DROP_PACK"
        first_answer "$@" && times+=("$MS") && rss+=("$RSS")
    done
    mapfile -t times < <(printf '%s\n' "${times[@]}" | sort -n)
    echo "| $what | ${times[$((runs / 2))]} ms (${times[0]}-${times[-1]}, $runs runs) | ${rss[-1]} |"
}

startup_mode() {
    local t0
    echo "startup: ims-vcr on CPU $SERVER_CPU, nice $NICE; $(nproc) CPUs; load average $(loadavg)"
    echo "| what | time | RSS MB |"
    echo "|---|---:|---:|"
    startup_row "replay the shipped cassettes: start to first correct answer; idle RSS" 5 --cassettes cassettes
    tick && t0=$NOW
    pin "$SERVER_CPU" "$BIN/examples/make_store" "$WORK/store" "$STORE_SIZE" 2>/dev/null
    tick && echo "| make_store: build a $STORE_SIZE-interaction store ($(du -sh "$WORK/store" | cut -f1)) | $((NOW - t0)) ms | |"
    # make_store ends as `ims-vcr import` and recording sessions do, writing the replay pack.
    startup_row "replay the $STORE_SIZE-interaction store: start to first correct answer; idle RSS" 3 --store "$WORK/store"
    # Without its pack (a recorder killed with -9 writes none), replay first rewrites it.
    DROP_PACK="$WORK/store/ims-vcr-replay.pack" startup_row "… its replay pack deleted first (replay rewrites it): start to first correct answer; RSS" 3 --store "$WORK/store"
    tick && t0=$NOW
    pin "$SERVER_CPU" "$BIN/ims-vcr" export --store "$WORK/store" --out "$WORK/cassettes" 2>/dev/null
    tick && echo "| export $STORE_SIZE interactions ($(du -sh "$WORK/cassettes" | cut -f1) of cassettes) | $((NOW - t0)) ms | |"
    tick && t0=$NOW
    pin "$SERVER_CPU" "$BIN/ims-vcr" import --store "$WORK/imported" "$WORK/cassettes" 2>/dev/null
    tick && echo "| import them into an empty store | $((NOW - t0)) ms | |"
}

# record_run NAME UPSTREAM STORE [FLAGS...]: `ims-vcr record` on SERVER_CPU, a unique image id per
# request.
record_run() {
    local name=$1 upstream=$2 store=$3 before recorded
    shift 3
    before=$(du -sk "$store" 2>/dev/null | cut -f1 || true)
    RUST_LOG=warn start "$name" "$SERVER_CPU" "$BIN/ims-vcr" record --upstream "$upstream" --store "$store" --listen 127.0.0.1:0 "$@"
    check "$name" "$URL" && measure "$name" "$PID" "$URL" unique && stop "$PID"
    recorded=$(grep -o '[0-9]* recorded' "$WORK/$name.err" | cut -d' ' -f1 || true)
    echo "$name: ${recorded:-?} answers recorded (each in the journal before its answer${*:+, $*}); store ${before:-0} KB -> $(du -sk "$store" | cut -f1) KB" >>"$WORK/notes"
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
    pin "$SERVER_CPU" "$BIN/examples/make_store" "$WORK/store-full" "$STORE_SIZE" 2>/dev/null
    record_run "record-${STORE_SIZE}" "$upstream" "$WORK/store-full"
    echo "record GET /v2/images/{unique id}: $LOADGEN -c$CONNS -t1, ${DURATION}s per run after ${WARMUP}s warm-up;" \
        "ims-vcr on CPU $SERVER_CPU, load and upstream on CPU $LOAD_CPU, nice $NICE; load average $(loadavg)"
    table
    cat "$WORK/notes"
}

build
case $MODE in
replay) replay_mode ;;
startup) startup_mode ;;
record) record_mode ;;
*) die "unknown mode $MODE: expected replay, startup or record" ;;
esac
