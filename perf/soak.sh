#!/usr/bin/env bash
# Soak test: ims-vcr under 64 keep-alive connections for a fixed time, on loopback only.
#
#   1. replay: the shipped cassettes, wrk on the seed image;
#   2. record: against a local fake IMS (python3), wrk asking for a new image id every request.
#
# Each phase reports wrk's errors (non-2xx answers + socket errors, must be 0) and the proxy's
# RSS after a short warm-up and at the end, which must be flat: end <= start * 1.5 + 5 MiB. A
# recording proxy keeps every answer it records in memory (the tapes that `auto` replays from) and
# in sled's cache (capped at 64 MiB), so the record phase allows PER_ANSWER_KIB (default 6) more
# per answer recorded on top, and checks that the store holds an answer for every request.
#
#   bash perf/soak.sh                 # 60 s per phase
#   DURATION=10 bash perf/soak.sh     # short mode
#   CONNECTIONS=64 THREADS=2 WARMUP=3 PER_ANSWER_KIB=6   # the other knobs (defaults shown)
#
# Exits non-zero if any check fails. Needs wrk (installed with apt-get when missing), curl and
# python3. Everything listens on 127.0.0.1 and everything started here is stopped on exit.
set -euo pipefail

DURATION=${DURATION:-60}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-3}
PER_ANSWER_KIB=${PER_ANSWER_KIB:-6}
SEED_ID=bc6bed6e-ba3a-4447-afcc-449174a3eb52

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release/ims-vcr
PIDS=()
FAILED=0

cleanup() {
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

# Drops a reaped pid from the cleanup list (its number may be reused by then).
forget() {
    local keep=()
    for pid in "${PIDS[@]}"; do
        [ "$pid" = "$1" ] || keep+=("$pid")
    done
    PIDS=("${keep[@]}")
}

fail() {
    echo "FAIL: $*" >&2
    FAILED=1
}

if ! command -v wrk >/dev/null; then
    echo "== installing wrk"
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
for tool in wrk curl python3; do
    command -v "$tool" >/dev/null || { echo "soak: $tool is required" >&2; exit 2; }
done

echo "== build (release)"
(cd "$ROOT" && cargo build --release --bin ims-vcr)

# Starts `ims-vcr ARGS...` in $WORK with its output in $WORK/$name.{out,log}; sets PID and URL.
start_proxy() {
    local name=$1
    shift
    (cd "$WORK" && RUST_LOG=warn exec "$BIN" "$@" --listen 127.0.0.1:0 >"$name.out" 2>"$name.log") &
    PID=$!
    PIDS+=("$PID")
    URL=$(wait_for_listening "$WORK/$name.out" "$PID")
}

# Waits up to 10 s for the `listening on http://HOST:PORT` line and prints the URL.
wait_for_listening() {
    local out=$1 pid=$2
    for _ in $(seq 100); do
        if grep -q '^listening on ' "$out" 2>/dev/null; then
            sed -n 's/^listening on //p' "$out" | head -n1
            return
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "soak: no listening line from pid $pid:" >&2
    cat "$out" "${out%.out}.log" >&2 || true
    exit 1
}

rss_kib() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# Runs wrk; prints its report and sets REQUESTS and ERRORS (non-2xx/3xx + socket errors).
load() {
    local seconds=$1 url=$2
    shift 2
    local report
    report=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${seconds}s" --latency "$@" "$url")
    echo "$report"
    REQUESTS=$(awk '/requests in/ { print $1 }' <<<"$report")
    local non2xx socket
    non2xx=$(awk -F': ' '/Non-2xx or 3xx responses/ { print $2 }' <<<"$report")
    socket=$(awk '/Socket errors/ {
        n = 0; for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) n += $i; print n }' <<<"$report")
    ERRORS=$((${non2xx:-0} + ${socket:-0}))
}

# Checks errors and RSS of one phase: name, errors, RSS at start and at end, and what the phase
# may keep by design (all in KiB).
check_phase() {
    local name=$1 errors=$2 start=$3 end=$4 kept=${5:-0}
    local limit=$((start * 3 / 2 + 5 * 1024 + kept))
    echo "-- $name: errors $errors, RSS start $((start / 1024)) MiB, end $((end / 1024)) MiB (limit $((limit / 1024)) MiB)"
    [ "$errors" -eq 0 ] || fail "$name: $errors errors"
    [ "$end" -le "$limit" ] || fail "$name: RSS grew from $start KiB to $end KiB (limit $limit KiB)"
}

echo
echo "== replay: shipped cassettes, $CONNECTIONS connections, ${DURATION}s"
start_proxy replay replay --cassettes "$ROOT/cassettes"
IMAGE_URL="$URL/v2/images/$SEED_ID"
# The answer must be the recorded body, byte for byte, before load means anything.
curl -fsS -o "$WORK/seed.json" -D "$WORK/seed.headers" "$IMAGE_URL"
grep -qi '^x-ims-vcr: hit' "$WORK/seed.headers" || fail "replay: the seed image is not a hit"
python3 - "$ROOT"/cassettes/get_v2_images_"$SEED_ID"_*.json "$WORK/seed.json" <<'EOF' || fail "replay: body differs from the cassette"
import json, sys
cassette, got = sys.argv[1], sys.argv[2]
want = json.load(open(cassette))["answers"][0]["body"]["json"]
sys.exit(0 if json.load(open(got)) == want else 1)
EOF
REPLAY_PID=$PID
RSS_IDLE=$(rss_kib "$REPLAY_PID")
load "$WARMUP" "$IMAGE_URL" >/dev/null
RSS_START=$(rss_kib "$REPLAY_PID")
load "$DURATION" "$IMAGE_URL"
RSS_END=$(rss_kib "$REPLAY_PID")
echo "   RSS idle $((RSS_IDLE / 1024)) MiB before warm-up"
check_phase replay "$ERRORS" "$RSS_START" "$RSS_END"
echo "   $REQUESTS requests"

echo
echo "== record: fake IMS upstream, a new image id per request, $CONNECTIONS connections, ${DURATION}s"
# The stand-in IMS: the seed image for any GET, with the id asked for. HTTP/1.1 keep-alive, so
# the proxy's pool reuses connections as it would against the real endpoint.
cat >"$WORK/fake_ims.py" <<'EOF'
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

seed = json.load(open(sys.argv[1]))["answers"][0]["body"]["json"]

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        image = dict(seed, id=self.path.rsplit("/", 1)[-1])
        body = json.dumps(image, separators=(",", ":")).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

server = Server(("127.0.0.1", 0), Handler)
print(f"listening on http://127.0.0.1:{server.server_port}", flush=True)
server.serve_forever()
EOF
python3 "$WORK/fake_ims.py" "$ROOT"/cassettes/get_v2_images_"$SEED_ID"_*.json >"$WORK/fake.out" 2>"$WORK/fake.log" &
PIDS+=("$!")
UPSTREAM=$(wait_for_listening "$WORK/fake.out" "$!")

# Every request asks for an image id never asked before: thread number and a per-thread counter.
cat >"$WORK/unique.lua" <<'EOF'
local threads = 0
function setup(thread)
    thread:set("tid", threads)
    threads = threads + 1
end
function init(args)
    counter = 0
end
function request()
    counter = counter + 1
    return wrk.format("GET", string.format("/v2/images/%08x-0000-4000-8000-%012x", tid, counter))
end
EOF
STORE="$WORK/store"
start_proxy record record --upstream "$UPSTREAM" --store "$STORE"
RECORD_PID=$PID
curl -fsS -o /dev/null "$URL/v2/images/$SEED_ID" || fail "record: the first request failed"
RSS_IDLE=$(rss_kib "$RECORD_PID")
load "$WARMUP" "$URL" -s "$WORK/unique.lua" >/dev/null
WARM_REQUESTS=$REQUESTS
RSS_START=$(rss_kib "$RECORD_PID")
# The warm-up's threads restart their counters: start ids past them so every id stays new.
sed -i 's/counter = 0/counter = 1000000000/' "$WORK/unique.lua"
load "$DURATION" "$URL" -s "$WORK/unique.lua"
RSS_END=$(rss_kib "$RECORD_PID")
kill -TERM "$RECORD_PID"
wait "$RECORD_PID" || fail "record: exit status $? on SIGTERM"
forget "$RECORD_PID"
echo "   RSS idle $((RSS_IDLE / 1024)) MiB before warm-up"
echo "   $REQUESTS answers recorded: $(((RSS_END - RSS_START) / (REQUESTS > 0 ? REQUESTS : 1))) KiB of RSS growth each (budget $PER_ANSWER_KIB KiB)"
check_phase record "$ERRORS" "$RSS_START" "$RSS_END" $((REQUESTS * PER_ANSWER_KIB))

"$BIN" export --store "$STORE" --out "$WORK/exported" 2>"$WORK/export.log"
cat "$WORK/export.log"
STORED=$(sed -n 's/^exported [0-9]* requests\? (\([0-9]*\) answers\?).*/\1/p' "$WORK/export.log")
EXPECTED=$((1 + WARM_REQUESTS + REQUESTS))
echo "-- record: $STORED answers stored for $EXPECTED requests completed (1 + warm-up $WARM_REQUESTS + $REQUESTS)"
# Requests still in flight when wrk stops are recorded but not counted by wrk: at least, not equal.
[ "${STORED:-0}" -ge "$EXPECTED" ] || fail "record: the store holds fewer answers than requests answered"

echo
if [ "$FAILED" -ne 0 ]; then
    echo "soak: FAILED" >&2
    exit 1
fi
echo "soak: ok"
