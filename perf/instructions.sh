#!/usr/bin/env bash
# User-space instructions per request, counted by callgrind: repeatable on a busy or shared
# machine (wall-clock benchmarks are not), so it compares two builds, or two revisions, exactly.
# Each binary runs under callgrind twice, once serving N keep-alive requests and once serving
# none; the difference over N is the per-request cost (start-up and shutdown cancel out).
#
#   MODE=replay       (the default) `ims-vcr replay` of the shipped cassettes, N requests of the
#                     seed image
#   MODE=passthrough  `ims-vcr passthrough` to examples/minimal_hyper (run natively, so only the
#                     proxy's instructions are counted), N requests each for a new image id
#   MODE=record       `ims-vcr record` into a new store, as passthrough otherwise; the replay pack
#                     written when the session ends is counted too (N answers' worth)
#
#   perf/instructions.sh [BINARY...]        default: target/release/ims-vcr (built if missing)
#   N=2000 perf/instructions.sh old/ims-vcr target/release/ims-vcr
#   MODE=passthrough KEEP=/tmp/profiles perf/instructions.sh   # keeps the callgrind profiles
#
# KEEP (a directory) keeps each binary's busy profile as KEEP/callgrind.MODE.K (K: the binary's
# position, from 1), for `callgrind_annotate`. Needs valgrind and python3. Prints one line per
# binary: instructions per request, and the ratio to the first binary.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-2000} MODE=${MODE:-replay}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ims-vcr-instr.XXXXXX")
UPSTREAM_PID=""
cleanup() {
    [[ -z $UPSTREAM_PID ]] || { kill "$UPSTREAM_PID" 2>/dev/null || true; wait "$UPSTREAM_PID" 2>/dev/null || true; }
    rm -rf "$WORK"
}
trap cleanup EXIT
command -v valgrind >/dev/null || { echo "instructions: valgrind is needed" >&2; exit 1; }
if (($# == 0)); then
    [[ -x target/release/ims-vcr ]] || cargo build --release --bin ims-vcr
    set -- target/release/ims-vcr
fi
[[ -z ${KEEP:-} ]] || mkdir -p "$KEEP"

# listening LOG: waits (at most 60 s) for the `listening on URL` line of LOG; prints the URL.
listening() {
    local url=""
    for _ in $(seq 1 600); do
        url=$(sed -n 's/^listening on //p' "$1" 2>/dev/null || true)
        [[ -n $url ]] && echo "$url" && return
        sleep 0.1
    done
    return 1
}

case $MODE in
replay)
    SERVE=(replay --cassettes cassettes) EXPECT=hit UNIQUE=0 ;;
passthrough | record)
    [[ -x target/release/examples/minimal_hyper ]] || cargo build --release --example minimal_hyper
    target/release/examples/minimal_hyper 0 >"$WORK/upstream.log" 2>&1 &
    UPSTREAM_PID=$!
    UPSTREAM=$(listening "$WORK/upstream.log") || { echo "instructions: minimal_hyper did not start" >&2; exit 1; }
    SERVE=("$MODE" --upstream "$UPSTREAM") EXPECT=forwarded UNIQUE=1
    [[ $MODE == passthrough ]] || EXPECT=recorded ;;
*)
    echo "instructions: unknown MODE $MODE: expected replay, passthrough or record" >&2; exit 1 ;;
esac

# count BINARY REQUESTS [PROFILE]: starts BINARY under callgrind, sends REQUESTS requests on one
# keep-alive connection, stops it with SIGTERM, and prints the total instructions callgrind
# counted (keeping the profile as PROFILE when given).
count() {
    local binary=$1 requests=$2 out=${3:-$WORK/cg.$RANDOM} log=$WORK/log.$RANDOM
    # record: a new store each run.
    local store=()
    [[ $MODE != record ]] || store=(--store "$WORK/store.$RANDOM$RANDOM")
    valgrind --tool=callgrind --callgrind-out-file="$out" "$binary" "${SERVE[@]}" "${store[@]}" \
        --listen 127.0.0.1:0 >"$log" 2>"$log.err" &
    local pid=$! url
    url=$(listening "$log") || { echo "instructions: $binary did not start" >&2; cat "$log.err" >&2; exit 1; }
    python3 - "$url" "$requests" "$EXPECT" "$UNIQUE" <<'PY'
import http.client, sys, urllib.parse
url, n, expect, unique = urllib.parse.urlparse(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
conn = http.client.HTTPConnection(url.hostname, url.port)
for i in range(n):
    path = "/v2/images/%08x-0000-4000-8000-000000000000" % i if unique else "/v2/images/bc6bed6e-ba3a-4447-afcc-449174a3eb52"
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    assert response.status == 200 and response.getheader("x-ims-vcr") == expect, (response.status, response.getheader("x-ims-vcr"))
conn.close()
PY
    kill -TERM "$pid"
    wait "$pid" || true
    # Less what threads spent spinning in sled's one-time initialisation (`sled::lazy::Lazy`):
    # callgrind runs one thread at a time, so a thread that spins while another initialises
    # spins for a whole time slice, and how many slices it gets varies by hundreds of millions
    # of instructions between two runs (natively the wait is a few microseconds).
    local total spun
    total=$(awk '/^summary:|^totals:/ { print $2; exit }' "$out")
    spun=$(callgrind_annotate --inclusive=no --threshold=100 "$out" 2>/dev/null |
        awk '/sled::lazy::Lazy<.*::deref/ { gsub(",", "", $1); n += $1 } END { printf "%.0f\n", n }')
    echo $((total - spun))
}

first="" k=0
for binary in "$@"; do
    k=$((k + 1))
    idle=$(count "$binary" 0)
    busy=$(count "$binary" "$N" ${KEEP:+"$KEEP/callgrind.$MODE.$k"})
    per=$(((busy - idle) / N))
    [[ -n $first ]] || first=$per
    ratio=$(awk -v a="$per" -v b="$first" 'BEGIN { printf "%.3f", a / b }')
    printf '%-50s %8d instructions per request (%s)  %s x the first\n' "$binary" "$per" "$MODE" "$ratio"
done
