#!/usr/bin/env bash
# User-space instructions per replayed request, counted by callgrind: repeatable on a busy or
# shared machine (wall-clock benchmarks are not), so it compares two builds, or two revisions,
# exactly. Each binary replays the shipped cassettes under callgrind twice, once serving N
# keep-alive requests of the seed image and once serving none; the difference over N is the
# per-request cost (start-up and shutdown cancel out).
#
#   perf/instructions.sh [BINARY...]        default: target/release/ims-vcr (built if missing)
#   N=2000 perf/instructions.sh old/ims-vcr target/release/ims-vcr
#
# Needs valgrind and python3. Prints one line per binary: instructions per request, and the
# ratio to the first binary.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-2000}
SEED=/v2/images/bc6bed6e-ba3a-4447-afcc-449174a3eb52
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ims-vcr-instr.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
command -v valgrind >/dev/null || { echo "instructions: valgrind is needed" >&2; exit 1; }
if (($# == 0)); then
    [[ -x target/release/ims-vcr ]] || cargo build --release --bin ims-vcr
    set -- target/release/ims-vcr
fi

# Starts BINARY under callgrind, sends $2 requests on one keep-alive connection, stops it with
# SIGTERM, and prints the total instructions callgrind counted.
count() {
    local binary=$1 requests=$2 out=$WORK/cg.$RANDOM log=$WORK/log.$RANDOM
    valgrind --tool=callgrind --callgrind-out-file="$out" "$binary" replay \
        --cassettes cassettes --listen 127.0.0.1:0 >"$log" 2>"$log.err" &
    local pid=$!
    local url=""
    for _ in $(seq 1 600); do
        url=$(sed -n 's/^listening on //p' "$log" 2>/dev/null || true)
        [[ -n $url ]] && break
        sleep 0.1
    done
    [[ -n $url ]] || { echo "instructions: $binary did not start" >&2; cat "$log.err" >&2; exit 1; }
    python3 - "$url" "$requests" <<'PY'
import http.client, sys, urllib.parse
url, n = urllib.parse.urlparse(sys.argv[1]), int(sys.argv[2])
conn = http.client.HTTPConnection(url.hostname, url.port)
for _ in range(n):
    conn.request("GET", "/v2/images/bc6bed6e-ba3a-4447-afcc-449174a3eb52")
    response = conn.getresponse()
    body = response.read()
    assert response.status == 200 and response.getheader("x-ims-vcr") == "hit", response.status
conn.close()
PY
    kill -TERM "$pid"
    wait "$pid" || true
    awk '/^summary:|^totals:/ { print $2; exit }' "$out"
}

first=""
for binary in "$@"; do
    idle=$(count "$binary" 0)
    busy=$(count "$binary" "$N")
    per=$(((busy - idle) / N))
    [[ -n $first ]] || first=$per
    ratio=$(awk -v a="$per" -v b="$first" 'BEGIN { printf "%.3f", a / b }')
    printf '%-50s %8d instructions per request  %s x the first\n' "$binary" "$per" "$ratio"
done
