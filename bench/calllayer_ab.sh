#!/usr/bin/env bash
# What the call layer costs: GetIndicator under h2load on the server before the call
# layer existed (commit e4e50a1, the parent of a90e167 "API keys and roles, ..., call
# layer, ..., Prometheus metrics") and on the current one, on the same machine, in
# interleaved rounds, at the settings of bench/reports.sh.
#
#   bash bench/calllayer_ab.sh
#
# 1. builds $CARGO_TARGET_DIR (default target/)/release/tradewatch (current) and, from `git archive AB_BEFORE` in a
#    scratch directory, the "before" binary (its target directory starts as a copy of
#    this one's release directory, so that dependencies whose fingerprints match are
#    reused); the binary is kept as target/bench-ab/tradewatch-REV for later runs;
# 2. starts both on fresh temporary data dirs (private PostgreSQL each), without the
#    seed; the current one with metrics on a free port, and its admin key from its log;
# 3. creates AB_INDICATORS SYNTHETIC indicators on each (bench/reports_setup.py) and
#    the GetIndicator request body for indicators/synthetic-00001;
# 4. AB_ROUNDS rounds; each round measures, one after another:
#      before       the old server (its per-call log: tower-http's TraceLayer)
#      after-key    the current server, h2load sending `authorization: Bearer KEY`
#      after-anon   the current server, no key (anonymous reads, the embedded default)
#    each as `h2load -c 4 -m 4 -t 1` (16 streams) after a AB_WARMUP s warm-up (-D),
#    with -n = the warm-up's rate x AB_DURATION s; req/s from h2load, p50/p99 from its
#    per-request log, CPU seconds of the server process and of its PostgreSQL (/proc)
#    per call, and server-side errors (current: tradewatch_grpc_calls_total in
#    /metrics, codes other than OK; before: tower-http's `response failed` lines);
# 5. prints every round and the medians.
#
# Environment: AB_BEFORE (commit, default e4e50a1), AB_ROUNDS (3), AB_INDICATORS (1000),
# AB_DURATION (15), AB_WARMUP (3), AB_BEFORE_BIN (an already built "before" binary: no
# build), AB_SKIP_BUILD=1 (use target/release/tradewatch as it is), AB_KEEP=1 (keep the
# scratch directory). Needs what bench/reports.sh needs (h2load, python3 with grpcio and
# grpcio-tools, curl).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD
BEFORE_REV=${AB_BEFORE:-e4e50a1}
ROUNDS=${AB_ROUNDS:-3}
INDICATORS=${AB_INDICATORS:-1000}
DURATION=${AB_DURATION:-15}
WARMUP=${AB_WARMUP:-3}
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
AFTER_BIN=$TARGET/release/tradewatch
PATH_GI=/tradewatch.v1.IndicatorService/GetIndicator

unset DATABASE_URL TRADEWATCH_DATA_DIR TRADEWATCH_LISTEN TRADEWATCH_SERVER TRADEWATCH_POOL_SIZE \
    TRADEWATCH_KEY TRADEWATCH_METRICS_LISTEN TRADEWATCH_ANONYMOUS_READ
export TRADEWATCH_LOG_FORMAT=text

say() { printf '\n== %s\n' "$*"; }
die() {
    echo "bench/calllayer_ab.sh: FATAL: $*" >&2
    exit 1
}
command -v h2load >/dev/null || die "h2load not found (apt-get install nghttp2-client)"
command -v curl >/dev/null || die "curl not found"
python3 -c 'import grpc, grpc_tools.protoc' 2>/dev/null || die "python3 needs grpcio and grpcio-tools"

WORK=$(mktemp -d /tmp/tradewatch-ab.XXXXXX)
chmod 755 "$WORK"
declare -A PID=() DATA=() LOG=() ADDR=()
stop() {
    local name=$1 pg
    if [[ -n ${PID[$name]:-} ]] && kill -0 "${PID[$name]}" 2>/dev/null; then
        kill -TERM "${PID[$name]}" 2>/dev/null
        for _ in $(seq 1 300); do
            kill -0 "${PID[$name]}" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "${PID[$name]}" 2>/dev/null && kill -KILL "${PID[$name]}" 2>/dev/null
        wait "${PID[$name]}" 2>/dev/null
    fi
    if [[ -f ${DATA[$name]:-/nonexistent}/pgdata/postmaster.pid ]]; then
        pg=$(head -n 1 "${DATA[$name]}/pgdata/postmaster.pid")
        [[ $pg =~ ^[0-9]+$ ]] && kill -INT "$pg" 2>/dev/null
        sleep 1
    fi
    return 0
}
cleanup() {
    local rc=$?
    set +e
    stop before
    stop after
    if [[ ${AB_KEEP:-0} == 1 ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------
# Binaries
# ---------------------------------------------------------------------------------------

if [[ ${AB_SKIP_BUILD:-0} != 1 ]]; then
    say "cargo build --release --bin tradewatch (current: $(git rev-parse --short HEAD))"
    cargo build --release --bin tradewatch
fi
[[ -x $AFTER_BIN ]] || die "$AFTER_BIN does not exist"
# The "before" binary is kept in target/bench-ab/ and reused by later runs.
KEPT=$TARGET/bench-ab/tradewatch-$(git rev-parse --short "$BEFORE_REV")
if [[ -n ${AB_BEFORE_BIN:-} ]]; then
    BEFORE_BIN=$AB_BEFORE_BIN
elif [[ -x $KEPT ]]; then
    BEFORE_BIN=$KEPT
    echo "using $KEPT (built by an earlier run)"
else
    say "Building the server of $BEFORE_REV in $WORK/before"
    mkdir -p "$WORK/before/src" "$WORK/before/target"
    git archive "$BEFORE_REV" | tar -x -C "$WORK/before/src"
    # Start from this checkout's compiled dependencies (same versions are reused).
    cp -r "$TARGET/release" "$WORK/before/target/release"
    (cd "$WORK/before/src" && CARGO_TARGET_DIR=$WORK/before/target cargo build --release --bin tradewatch)
    mkdir -p "$(dirname "$KEPT")"
    cp "$WORK/before/target/release/tradewatch" "$KEPT"
    rm -rf "$WORK/before"
    BEFORE_BIN=$KEPT
fi
[[ -x $BEFORE_BIN ]] || die "$BEFORE_BIN does not exist"

# ---------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------

# start NAME BIN LOGFILTER ARGS...: starts a server on a free port with a fresh data dir.
start() {
    local name=$1 bin=$2 filter=$3
    shift 3
    DATA[$name]=$WORK/data-$name
    LOG[$name]=$WORK/server-$name.log
    TRADEWATCH_LOG=$filter "$bin" --data-dir "${DATA[$name]}" --listen 127.0.0.1:0 --no-seed "$@" >"${LOG[$name]}" 2>&1 &
    PID[$name]=$!
    for _ in $(seq 1 1200); do
        grep -q "tradewatch is serving gRPC" "${LOG[$name]}" && break
        kill -0 "${PID[$name]}" 2>/dev/null || { cat "${LOG[$name]}" >&2; die "server $name exited"; }
        sleep 0.1
    done
    ADDR[$name]=$(sed -nE 's/^tradewatch is serving gRPC( \([a-zA-Z]+\))? on ([0-9.:]+).*$/\2/p' "${LOG[$name]}" | head -n 1)
    [[ -n ${ADDR[$name]} ]] || { cat "${LOG[$name]}" >&2; die "cannot read server $name's address"; }
    echo "server $name: pid ${PID[$name]}, $(basename "$bin") on ${ADDR[$name]}"
}
say "Servers"
# The old server's per-call lines: tower-http's on_response at info, on_failure at debug.
start before "$BEFORE_BIN" "info,tower_http::trace::on_failure=debug"
start after "$AFTER_BIN" info --metrics-listen 127.0.0.1:0
METRICS=$(grep -oE 'serving Prometheus metrics on http://[0-9.:]+/metrics' "${LOG[after]}" | head -n 1 | sed -E 's/.* on //')
KEY=$(grep -oE 'TRADEWATCH_KEY=tw_[A-Za-z0-9_-]+' "${LOG[after]}" | head -n 1 | cut -d= -f2)
[[ -n $METRICS && -n $KEY ]] || die "no metrics address or admin key in the current server's log"

PY=$WORK/py
mkdir -p "$PY" "$WORK/bodies"
python3 -m grpc_tools.protoc -I"$REPO/proto" --python_out="$PY" --grpc_python_out="$PY" \
    "$REPO"/proto/tradewatch/v1/*.proto
helper() { TRADEWATCH_KEY=$KEY PYTHONPATH=$PY python3 "$REPO/bench/reports_setup.py" "$@"; }
for name in before after; do
    echo "server $name:"
    helper indicators "${ADDR[$name]}" "$INDICATORS" | sed 's/^/  /'
done
helper bodies "$WORK/bodies" synthetic-programme synthetic-00001 | grep get_indicator
BODY=$WORK/bodies/get_indicator.bin

# ---------------------------------------------------------------------------------------
# Rounds
# ---------------------------------------------------------------------------------------

TICKS=$(getconf CLK_TCK)
# cpu NAME: "server_s postgres_s" so far for server NAME.
cpu() {
    local srv=${PID[$1]} pm
    pm=$(head -n 1 "${DATA[$1]}/pgdata/postmaster.pid")
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v tck="$TICKS" -v srv="$srv" -v pm="$pm" '
        {
            line = $0; pid = substr(line, 1, index(line, " ") - 1)
            sub(/^.*\) /, "", line); split(line, f, " ")
            if (pid == srv) s += f[12] + f[13]
            else if (pid == pm) p += f[12] + f[13] + f[14] + f[15]
            else if (f[2] == pm) p += f[12] + f[13]
        }
        END { printf "%.2f %.2f\n", s / tck, p / tck }'
}
not_ok_metrics() {
    curl -fsS --max-time 10 "$METRICS" | awk '/^tradewatch_grpc_calls_total\{/ && /method="GetIndicator"/ && !/code="OK"/ { s += $NF } END { print s + 0 }'
}

RESULTS=$WORK/results.tsv
printf 'round\tvariant\trps\tp50_ms\tp99_ms\trequests\tserver_errors\tserver_us_per_call\tpg_us_per_call\tload1\n' >"$RESULTS"
say "Rounds: $ROUNDS x (before, after-key, after-anon); h2load -c 4 -m 4 -t 1, ${WARMUP} s warm-up, about ${DURATION} s measured"
for round in $(seq 1 "$ROUNDS"); do
    for variant in before after-key after-anon; do
        name=${variant%%-*}
        auth=()
        [[ $variant == after-key ]] && auth=(-H "authorization: Bearer $KEY")
        h2=(h2load -c 4 -m 4 -t 1 -H 'content-type: application/grpc' -H 'te: trailers' "${auth[@]}" -d "$BODY")
        out=$WORK/h2load-$round-$variant
        "${h2[@]}" -D "$WARMUP" "http://${ADDR[$name]}$PATH_GI" >"$out-warmup.txt" 2>&1 || { cat "$out-warmup.txt" >&2; die "h2load warm-up failed"; }
        n=$(sed -nE 's/^finished in [^,]+, ([0-9.]+) req\/s.*/\1/p' "$out-warmup.txt" |
            awk -v d="$DURATION" '{ n = int($1 * d / 16 + 0.5) * 16; print (n < 64 ? 64 : n) }')
        sleep 0.5
        from=$(stat -c %s "${LOG[$name]}")
        e0=$([[ $name == after ]] && not_ok_metrics || echo 0)
        c0=$(cpu "$name")
        "${h2[@]}" -n "$n" --log-file="$out.log" "http://${ADDR[$name]}$PATH_GI" >"$out.txt" 2>&1 || { cat "$out.txt" >&2; die "h2load failed"; }
        c1=$(cpu "$name")
        sleep 0.5
        if [[ $name == after ]]; then
            errors=$(($(not_ok_metrics) - e0))
        else
            errors=$(tail -c +"$((from + 1))" "${LOG[$name]}" | grep -c 'response failed' || true)
        fi
        rps=$(sed -nE 's/^finished in [^,]+, ([0-9.]+) req\/s.*/\1/p' "$out.txt")
        read -r reqs _ p50 _ p99 _ _ < <(helper latency "$out.log")
        awk -v r="$round" -v v="$variant" -v rps="$rps" -v p50="$p50" -v p99="$p99" -v n="$reqs" -v e="$errors" \
            -v c0="$c0" -v c1="$c1" -v l="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
            split(c0, a, " "); split(c1, b, " ")
            printf "%d\t%s\t%.0f\t%.2f\t%.2f\t%d\t%d\t%.0f\t%.0f\t%s\n", r, v, rps, p50, p99, n, e,
                (b[1] - a[1]) * 1e6 / n, (b[2] - a[2]) * 1e6 / n, l }' | tee -a "$RESULTS"
    done
done

say "Medians of $ROUNDS rounds (GetIndicator, 16 streams)"
python3 - "$RESULTS" <<'PYTHON'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
head, rows = rows[0], [dict(zip(rows[0], r)) for r in rows[1:]]
print("| variant | req/s | p50 ms | p99 ms | server CPU us/call | PostgreSQL CPU us/call | calls | server-side errors |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
med = {}
for v in ("before", "after-key", "after-anon"):
    rs = [r for r in rows if r["variant"] == v]
    m = lambda k: statistics.median(float(r[k]) for r in rs)
    med[v] = {k: m(k) for k in ("rps", "p50_ms", "p99_ms", "server_us_per_call", "pg_us_per_call")}
    print(f"| {v} | {m('rps'):,.0f} | {m('p50_ms'):.2f} | {m('p99_ms'):.2f} | {m('server_us_per_call'):.0f} | "
          f"{m('pg_us_per_call'):.0f} | {sum(int(r['requests']) for r in rs):,} | {sum(int(r['server_errors']) for r in rs)} |")
b = med["before"]
for v in ("after-key", "after-anon"):
    a = med[v]
    print(f"- {v} vs before: throughput {100 * (a['rps'] / b['rps'] - 1):+.1f} %, server CPU per call "
          f"{a['server_us_per_call'] - b['server_us_per_call']:+.0f} us ({100 * (a['server_us_per_call'] / b['server_us_per_call'] - 1):+.1f} %)")
PYTHON
echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(h2load --version), before = $BEFORE_REV, after = $(git rev-parse --short HEAD), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
