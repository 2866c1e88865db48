#!/usr/bin/env bash
# Reporting benchmark: QuerySeries, GetTargetProgress, GetProgramScorecard and GetIndicator
# under h2load (gRPC frames over HTTP/2, 16 concurrent streams) on 10,000,000 SYNTHETIC
# observations, against `pgbench -S` (primary-key reads) at the same concurrency on the
# same PostgreSQL, as the ceiling.
#
# One command runs everything:
#
#   bash bench/reports.sh
#
# 1. builds target/release/tradewatch;
# 2. starts it on a fresh temporary data dir (its own private PostgreSQL on a unix socket,
#    durable settings), without the seed, with metrics on a free port, logging one
#    `call finished` line per call (method, code="CODE", latency_ms, ...), and takes the
#    admin key it prints at first start (TRADEWATCH_KEY=tw_...): the setup's writes and
#    CLI imports send it, and so does h2load (`authorization: Bearer KEY`) unless
#    BENCH_ANONYMOUS=1 (the embedded default serves reads without a key);
# 3. creates BENCH_INDICATORS SYNTHETIC monthly indicators (synthetic-00001 ...) through
#    IndicatorService/CreateIndicator from a Python client generated from the protos;
# 4. loads BENCH_INDICATORS x BENCH_MONTHS SYNTHETIC observations (default 50,000 x 200 =
#    10,000,000; 2005-M01 ... 2021-M08) through the real import path, `tradewatch import`
#    (ImportObservations, client streaming), in files of BENCH_FILE_ROWS rows; then
#    VACUUM ANALYZE (untimed: what autovacuum would have done) and CHECKPOINT;
# 5. creates a SYNTHETIC programme of 7 areas, 30 initiatives in all (each listing one
#    indicator) and 20 targets (15 level, 5 growth-rate) through ProgramService;
# 6. writes each benchmarked request as a gRPC frame (0, 4-byte big-endian length,
#    protobuf from the generated stubs), sends each file's exact bytes once and checks
#    the decoded answers, and shows one answer through grpcurl;
#      QuerySeries          indicators/synthetic-00001, 2011-2020, monthly -> annual,
#                           TRANSFORM_CHANGE_YEAR_AGO (reads 2010-M01 .. 2020-M12)
#      GetTargetProgress    programs/synthetic-programme/targets/target-01
#      GetProgramScorecard  programs/synthetic-programme
#      GetIndicator         indicators/synthetic-00001
# 7. EXPLAIN (ANALYZE, BUFFERS) of the observation points query (src/store/reports.rs)
#    for QuerySeries' and the scorecard's parameters, as a custom and as a generic plan
#    (sqlx prepares its statements, so after five executions PostgreSQL may switch to
#    the generic plan), and of GetIndicator's query;
# 8. checks that the server-side error count works (4 calls failing with NOT_FOUND, which
#    h2load sees as HTTP 200, must be counted as 4 errors), then BENCH_ROUNDS rounds;
#    each round, one after another:
#    h2load -c 4 -m 4 (16 streams) per method: a BENCH_WARMUP s warm-up (-D), then
#    as many requests (-n) as the warm-up's rate gives in BENCH_DURATION s, measured
#    with --log-file (p50/p90/p99 from the per-request times; a -n run ends with every
#    request answered, where a timed one resets the streams in flight when it stops);
#    errors counted from the server's `call finished` lines, by code (gRPC errors
#    travel in HTTP 200 responses); the check before the rounds also reads them from
#    /metrics (tradewatch_grpc_calls_total);
#    then `pgbench -S -c 16 -j 2 -T BENCH_PGBENCH_SECONDS` on a pgbench database
#    (`pgbench -i -s BENCH_PGBENCH_SCALE`, untimed) of the same cluster;
#    this is pass "as-built";
# 9. only with BENCH_NODELAY_PASS=1: pass "nodelay", the same rounds again after
#    restarting the same binary on the same data with LD_PRELOAD=bench/nodelay_preload.c,
#    which sets TCP_NODELAY on the sockets it accepts. Without TCP_NODELAY a unary
#    response's trailers wait for the client's delayed ACK (~40 ms on Linux) when the
#    client sends nothing meanwhile, as h2load does. The server sets TCP_NODELAY itself
#    (since commit a0dcc8e), so both passes must agree; a gap means it regressed;
# 10. prints the rounds, their medians and the goals for each pass, and writes
#    everything (with the plans) to BENCH_REPORT.
#
# Goals (the issue): QuerySeries p50 <= 5 ms and p99 <= 20 ms; GetProgramScorecard p50
# <= 20 ms; GetIndicator throughput >= half of pgbench -S tps.
#
# Before any measurement it waits while a bench/import.sh runs (it would skew both).
#
# Environment:
#   BENCH_ROUNDS            rounds (default 3)
#   BENCH_INDICATORS        synthetic indicators (default 50000; at least 30)
#   BENCH_MONTHS            months per indicator from 2005-M01 (default 200; 192..1200)
#   BENCH_FILE_ROWS         rows per imported CSV file (default 2000000)
#   BENCH_DURATION          about how many seconds each measured h2load run lasts (default 15)
#   BENCH_WARMUP            warm-up seconds before each h2load run (default 3)
#   BENCH_PGBENCH_SECONDS   pgbench -T (default 20)
#   BENCH_PGBENCH_SCALE     pgbench -i -s (default 10)
#   BENCH_ADDR              gRPC address to serve on (default 127.0.0.1:50172; must be free)
#   BENCH_POOL_SIZE         server --pool-size (default: the server's default, 10)
#   BENCH_NODELAY_PASS      1: also run the "nodelay" pass (needs cc); default 0
#   BENCH_ANONYMOUS         1: h2load sends no API key (anonymous reads); default 0
#   BENCH_BIN               server binary to measure (default target/release/tradewatch;
#                           with it, nothing is built)
#   BENCH_REPORT            report file (default target/bench-reports/reports-UTCTIME.md)
#   BENCH_SKIP_BUILD        1: use the existing target/release/tradewatch as it is
#   BENCH_KEEP              1: keep the temporary directory (data, logs, CSV) for inspection
# Needs: cargo, PostgreSQL 15 server and client binaries (psql, pgbench), python3 with
# grpcio and grpcio-tools; h2load (nghttp2-client) and /usr/bin/time (time) are installed
# with apt-get when missing; grpcurl is used when present.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD

ROUNDS=${BENCH_ROUNDS:-3}
INDICATORS=${BENCH_INDICATORS:-50000}
MONTHS=${BENCH_MONTHS:-200}
FILE_ROWS=${BENCH_FILE_ROWS:-2000000}
DURATION=${BENCH_DURATION:-15}
WARMUP=${BENCH_WARMUP:-3}
PGB_SECONDS=${BENCH_PGBENCH_SECONDS:-20}
PGB_SCALE=${BENCH_PGBENCH_SCALE:-10}
ADDR=${BENCH_ADDR:-127.0.0.1:50172}
POOL_SIZE=${BENCH_POOL_SIZE:-}
NODELAY_PASS=${BENCH_NODELAY_PASS:-0}
ANONYMOUS=${BENCH_ANONYMOUS:-0}
BIN=${BENCH_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/tradewatch}
ROWS=$((INDICATORS * MONTHS))
CLIENTS=4
STREAMS=4
CONCURRENCY=$((CLIENTS * STREAMS))
PROGRAM=synthetic-programme
SERIES_INDICATOR=synthetic-00001
STARTED_UTC=$(date -u +%Y%m%dT%H%M%SZ)
REPORT=${BENCH_REPORT:-$REPO/target/bench-reports/reports-$STARTED_UTC.md}
HELPER=$REPO/bench/reports_setup.py

# The server must start its own private PostgreSQL; info logs give one line per call.
unset DATABASE_URL TRADEWATCH_DATA_DIR TRADEWATCH_LISTEN TRADEWATCH_SERVER TRADEWATCH_POOL_SIZE \
    TRADEWATCH_KEY TRADEWATCH_METRICS_LISTEN TRADEWATCH_ANONYMOUS_READ
export TRADEWATCH_LOG=info TRADEWATCH_LOG_FORMAT=text

say() { printf '\n== %s\n' "$*"; }
die() {
    echo "bench/reports.sh: FATAL: $*" >&2
    exit 1
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
is_int() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }

for v in ROUNDS INDICATORS MONTHS FILE_ROWS DURATION WARMUP PGB_SECONDS PGB_SCALE; do
    is_int "${!v}" || die "$v must be a positive integer (got ${!v})"
done
((MONTHS >= 192 && MONTHS <= 1200)) || die "BENCH_MONTHS must be 192..1200 (QuerySeries reads 2010-M01..2020-M12)"
((INDICATORS >= 30 && INDICATORS <= 99999)) || die "BENCH_INDICATORS must be 30..99999"
((FILE_ROWS >= MONTHS)) || die "BENCH_FILE_ROWS must be at least BENCH_MONTHS"
[[ -z $POOL_SIZE ]] || is_int "$POOL_SIZE" || die "BENCH_POOL_SIZE must be a positive integer"
[[ $NODELAY_PASS == 0 || $NODELAY_PASS == 1 ]] || die "BENCH_NODELAY_PASS must be 0 or 1"
[[ $ANONYMOUS == 0 || $ANONYMOUS == 1 ]] || die "BENCH_ANONYMOUS must be 0 or 1"
command -v curl >/dev/null || die "curl not found (apt-get install curl)"

# Waits while another benchmark runs on this machine.
wait_for_import_bench() {
    local waited=0
    while pgrep -f 'bench/import\.sh' >/dev/null; do
        ((waited == 0)) && echo "bench/import.sh is running: waiting for it to finish (polling every 30 s)"
        waited=1
        sleep 30
    done
    return 0
}

# ---------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------

say "Tools"
command -v cargo >/dev/null || die "cargo not found"
pg_tool() {
    local t
    t=$(command -v "$1" || true)
    if [[ -z $t ]]; then
        for d in /usr/lib/postgresql/*/bin; do [[ -x $d/$1 ]] && t=$d/$1; done
    fi
    echo "$t"
}
PSQL=$(pg_tool psql)
PGBENCH=$(pg_tool pgbench)
[[ -n $PSQL ]] || die "psql not found (apt-get install postgresql-client)"
[[ -n $PGBENCH ]] || die "pgbench not found (apt-get install postgresql-client)"
python3 -c 'import grpc, grpc_tools.protoc' 2>/dev/null ||
    die "python3 needs grpcio and grpcio-tools: pip install grpcio grpcio-tools"
apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >/dev/null ||
        { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >/dev/null; }
}
if ! command -v h2load >/dev/null; then
    echo "h2load missing: installing nghttp2-client"
    apt_install nghttp2-client
fi
command -v h2load >/dev/null || die "h2load is missing and could not be installed"
if [[ ! -x /usr/bin/time ]]; then
    echo "/usr/bin/time missing: installing the 'time' package"
    apt_install time
fi
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing and could not be installed"
GRPCURL=$(command -v grpcurl || true)
if [[ $NODELAY_PASS == 1 ]] && ! command -v cc >/dev/null; then
    echo "cc missing: installing gcc (for the nodelay pass)"
    apt_install gcc libc6-dev
fi
[[ $NODELAY_PASS == 0 ]] || command -v cc >/dev/null || die "cc is missing (needed by BENCH_NODELAY_PASS=1)"
echo "$("$PSQL" --version), $("$PGBENCH" --version), $(h2load --version), $(python3 --version), $(cargo --version)${GRPCURL:+, grpcurl $("$GRPCURL" -version 2>&1 | awk '{print $2}')}"

wait_for_import_bench

# ---------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------

if [[ -n ${BENCH_BIN:-} ]]; then
    say "Build skipped (BENCH_BIN=$BIN)"
    [[ -x $BIN ]] || die "$BIN does not exist"
elif [[ ${BENCH_SKIP_BUILD:-0} == 1 ]]; then
    say "Build skipped (BENCH_SKIP_BUILD=1)"
    [[ -x $BIN ]] || die "$BIN does not exist"
else
    say "cargo build --release"
    cargo build --release
fi

# ---------------------------------------------------------------------------------------
# Temporary directory, server, clean-up
# ---------------------------------------------------------------------------------------

WORK=$(mktemp -d /tmp/tradewatch-reports.XXXXXX)
# As root, PostgreSQL runs as an unprivileged user, who must be able to traverse WORK.
chmod 755 "$WORK"
DATA=$WORK/data
SERVER_LOG=""
RESULTS=$WORK/results.tsv
PGB_RESULTS=$WORK/pgbench.tsv
EXPLAIN=$WORK/explain.txt
BODIES=$WORK/bodies
SERVER_PID=""

# Stops the server (SIGTERM: it drains, then stops its private PostgreSQL), and the
# postmaster by its pid if it outlived the server.
stop_server() {
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null
        for _ in $(seq 1 300); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "server $SERVER_PID did not stop in 30 s: SIGKILL" >&2
            kill -KILL "$SERVER_PID" 2>/dev/null
        fi
        wait "$SERVER_PID" 2>/dev/null
    fi
    SERVER_PID=""
    local pidfile=$DATA/pgdata/postmaster.pid pg_pid
    if [[ -f $pidfile ]]; then
        pg_pid=$(head -n 1 "$pidfile")
        if [[ $pg_pid =~ ^[0-9]+$ ]] && kill -0 "$pg_pid" 2>/dev/null; then
            kill -INT "$pg_pid" 2>/dev/null
            for _ in $(seq 1 100); do
                kill -0 "$pg_pid" 2>/dev/null || break
                sleep 0.1
            done
        fi
    fi
    return 0
}

cleanup() {
    local rc=$?
    set +e
    stop_server
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then
        echo "kept $WORK (BENCH_KEEP=1)"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

server_args=(--data-dir "$DATA" --listen "$ADDR" --no-seed --metrics-listen 127.0.0.1:0)
[[ -n $POOL_SIZE ]] && server_args+=(--pool-size "$POOL_SIZE")
# start_server LOG [PRELOAD]: starts the server logging to LOG (with LD_PRELOAD=PRELOAD).
start_server() {
    SERVER_LOG=$1
    local preload=${2:-}
    say "Server: ${preload:+LD_PRELOAD=$preload }$BIN ${server_args[*]} (TRADEWATCH_LOG=$TRADEWATCH_LOG)"
    if [[ -n $preload ]]; then
        LD_PRELOAD=$preload "$BIN" "${server_args[@]}" >"$SERVER_LOG" 2>&1 &
    else
        "$BIN" "${server_args[@]}" >"$SERVER_LOG" 2>&1 &
    fi
    SERVER_PID=$!
    for _ in $(seq 1 1200); do
        grep -q "serving gRPC" "$SERVER_LOG" && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$SERVER_LOG" >&2; die "the server exited"; }
        sleep 0.1
    done
    grep -q "serving gRPC" "$SERVER_LOG" || { cat "$SERVER_LOG" >&2; die "the server did not start in 120 s"; }
    # The private cluster's socket directory, as the server logged it (DATA/run normally).
    SOCK=$(sed -e 's/\x1b\[[0-9;]*m//g' "$SERVER_LOG" | grep -o 'socket=[^ ]*' | head -n 1 | cut -d= -f2 || true)
    [[ -n $SOCK && -S $SOCK/.s.PGSQL.5432 ]] || SOCK=$DATA/run
    [[ -S $SOCK/.s.PGSQL.5432 ]] || die "no PostgreSQL socket in $SOCK"
    # The metrics port (a free one, --metrics-listen 127.0.0.1:0), as the server logged it.
    METRICS=$(grep -oE 'serving Prometheus metrics on http://[0-9.:]+/metrics' "$SERVER_LOG" | head -n 1 | sed -E 's/.* on //')
    [[ -n $METRICS ]] || die "cannot read the metrics address from the server log"
    # The admin key is printed at the first start only (the nodelay pass reuses the data).
    local key
    key=$(grep -oE 'TRADEWATCH_KEY=tw_[A-Za-z0-9_-]+' "$SERVER_LOG" | head -n 1 | cut -d= -f2 || true)
    [[ -n $key ]] && KEY=$key
    [[ -n $KEY ]] || die "no admin key (TRADEWATCH_KEY=...) in the server log"
    echo "server pid $SERVER_PID; PostgreSQL socket $SOCK; metrics $METRICS; admin key ${KEY:0:16}... (from the log)"
}
KEY=""
start_server "$WORK/server.log"

psql_db() {
    local db=$1
    shift
    PGOPTIONS="-c client_min_messages=warning" "$PSQL" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p 5432 -U tradewatch -d "$db" "$@"
}
psql_q() { psql_db tradewatch "$@"; }
psql_val() { psql_q -tA -c "$1"; }

PG_VERSION=$(psql_val "SHOW server_version")
PG_SETTINGS="fsync=$(psql_val 'SHOW fsync'), synchronous_commit=$(psql_val 'SHOW synchronous_commit'), shared_buffers=$(psql_val 'SHOW shared_buffers'), work_mem=$(psql_val 'SHOW work_mem'), effective_cache_size=$(psql_val 'SHOW effective_cache_size'), max_connections=$(psql_val 'SHOW max_connections'), jit=$(psql_val 'SHOW jit')"
echo "PostgreSQL $PG_VERSION: $PG_SETTINGS"

# CPU seconds so far: "server postgres". PostgreSQL's is the postmaster's own and reaped
# children's time (utime, stime, cutime, cstime) plus its live children's (utime, stime).
TICKS=$(getconf CLK_TCK)
cpu_now() {
    local pg_pid
    pg_pid=$(head -n 1 "$DATA/pgdata/postmaster.pid")
    # cat skips the processes that exit meanwhile; each stat file is one line.
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v tck="$TICKS" -v srv="$SERVER_PID" -v pm="$pg_pid" '
        {
            line = $0; pid = substr(line, 1, index(line, " ") - 1)
            sub(/^.*\) /, "", line); split(line, f, " ")
            if (pid == srv) s += f[12] + f[13]
            else if (pid == pm) p += f[12] + f[13] + f[14] + f[15]
            else if (f[2] == pm) p += f[12] + f[13]
        }
        END { printf "%.2f %.2f\n", s / tck, p / tck }'
}
# cpu_delta BEFORE AFTER: "server_s postgres_s" (negative, i.e. unmeasurable: "nan").
cpu_delta() {
    awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " ");
        s = y[1] - x[1]; p = y[2] - x[2];
        printf "%s %s\n", (s < 0 ? "nan" : sprintf("%.2f", s)), (p < 0 ? "nan" : sprintf("%.2f", p)) }'
}
log_size() { stat -c %s "$SERVER_LOG"; }
load1() { cut -d' ' -f1 /proc/loadavg; }

# ---------------------------------------------------------------------------------------
# Synthetic data
# ---------------------------------------------------------------------------------------

PY=$WORK/py
mkdir -p "$PY" "$BODIES"
python3 -m grpc_tools.protoc -I"$REPO/proto" --python_out="$PY" --grpc_python_out="$PY" \
    "$REPO"/proto/tradewatch/v1/*.proto
# The helper's calls carry the admin key (writes need one).
helper() { TRADEWATCH_KEY=$KEY PYTHONPATH=$PY python3 "$HELPER" "$@"; }

say "Creating $INDICATORS SYNTHETIC monthly indicators (CreateIndicator, 64 calls in flight)"
helper indicators "$ADDR" "$INDICATORS"
n=$(psql_val "SELECT count(*) FROM indicators WHERE indicator_id LIKE 'synthetic-%'")
[[ $n == "$INDICATORS" ]] || die "expected $INDICATORS synthetic indicators, found $n"

PER_FILE=$((FILE_ROWS / MONTHS))
say "Loading $ROWS SYNTHETIC observations ($INDICATORS indicators x $MONTHS months from 2005-M01) with tradewatch import, $((PER_FILE * MONTHS)) rows a file"
LOAD_T0=$(now)
first=1
while ((first <= INDICATORS)); do
    last=$((first + PER_FILE - 1))
    ((last > INDICATORS)) && last=$INDICATORS
    csv=$WORK/synthetic-$first.csv
    t0=$(now)
    rows=$(helper csv "$csv" "$first" "$last" "$MONTHS")
    t1=$(now)
    out=$WORK/import-$first.log
    if ! TRADEWATCH_KEY=$KEY "$BIN" import --server "http://$ADDR" "$csv" >"$out" 2>&1; then
        cat "$out" >&2
        die "tradewatch import of $csv failed"
    fi
    t2=$(now)
    summary=$(grep -E '^imported [0-9]+ rows:' "$out" | tail -n 1)
    [[ $summary == "imported $rows rows: $rows inserted, 0 revised, 0 unchanged"* ]] ||
        { cat "$out" >&2; die "unexpected import result for $csv: $summary"; }
    echo "  synthetic-$(printf %05d "$first")..$(printf %05d "$last"): CSV $(elapsed "$t0" "$t1") s; $summary (wall $(elapsed "$t1" "$t2") s)"
    rm -f "$csv"
    first=$((last + 1))
done
LOAD_S=$(elapsed "$LOAD_T0" "$(now)")
n=$(psql_val "SELECT count(*) FROM observation_versions")
[[ $n == "$ROWS" ]] || die "observation_versions has $n rows, expected $ROWS"
echo "loaded $n rows in $LOAD_S s (CSV generation included)"
t0=$(now)
psql_q -c "VACUUM ANALYZE" -c "CHECKPOINT"
echo "(untimed) VACUUM ANALYZE + CHECKPOINT: $(elapsed "$t0" "$(now)") s"
SIZES=$(psql_val "SELECT format('observation_versions: %s rows, heap %s, primary key %s, observation_versions_current %s, total with indexes %s',
    (SELECT reltuples::bigint FROM pg_class WHERE relname = 'observation_versions'),
    pg_size_pretty(pg_relation_size('observation_versions')),
    pg_size_pretty(pg_relation_size('observation_versions_pkey')),
    pg_size_pretty(pg_relation_size('observation_versions_current')),
    pg_size_pretty(pg_total_relation_size('observation_versions')))")
echo "$SIZES"

say "SYNTHETIC programme, request bodies, checks"
helper programme "$ADDR" "$PROGRAM" "$MONTHS"
helper bodies "$BODIES" "$PROGRAM" "$SERIES_INDICATOR"
echo "sending each body file's exact bytes once and decoding the answers:"
helper verify "$ADDR" "$BODIES"
if [[ -n $GRPCURL ]]; then
    echo "by hand with grpcurl: QuerySeries (first lines)"
    "$GRPCURL" -plaintext -d "{\"indicator\": \"indicators/$SERIES_INDICATOR\", \"start_period\": \"2011\", \"end_period\": \"2020\", \"frequency\": \"FREQUENCY_ANNUAL\", \"transform\": \"TRANSFORM_CHANGE_YEAR_AGO\"}" \
        "$ADDR" tradewatch.v1.ReportingService/QuerySeries >"$WORK/grpcurl.json" ||
        die "grpcurl QuerySeries failed"
    head -n 24 "$WORK/grpcurl.json" | sed 's/^/  | /'
    echo "  | ... ($(grep -c '"period"' "$WORK/grpcurl.json") points)"
fi
echo "the server's per-call log lines look like this:"
sed -e 's/\x1b\[[0-9;]*m//g' "$SERVER_LOG" | grep 'call finished' | tail -n 3 | sed 's/^/  | /' || true

say "pgbench database (pgbench -i -s $PGB_SCALE, untimed)"
psql_q -c "DROP DATABASE IF EXISTS pgbench_ceiling" -c "CREATE DATABASE pgbench_ceiling"
"$PGBENCH" -i -q -s "$PGB_SCALE" -h "$SOCK" -p 5432 -U tradewatch pgbench_ceiling 2>&1 | tail -n 2 | sed 's/^/  /'
psql_q -c "CHECKPOINT"

# ---------------------------------------------------------------------------------------
# Plans
# ---------------------------------------------------------------------------------------

say "EXPLAIN (ANALYZE, BUFFERS) on $ROWS rows"
SERIES_KEY=$(psql_val "SELECT indicator_key FROM indicators WHERE indicator_id = '$SERIES_INDICATOR'")
CARD_KEYS=$(psql_val "SELECT '{' || string_agg(indicator_key::text, ',' ORDER BY indicator_key) || '}' FROM indicators WHERE indicator_id IN (SELECT DISTINCT indicator_id FROM initiative_indicators WHERE program_id = '$PROGRAM' UNION SELECT indicator_id FROM targets WHERE program_id = '$PROGRAM')")
INDICATOR_COLUMNS="indicator_id::text AS indicator_id, title, description, unit, unit_multiplier, frequency, flow, service_category, region::text AS region, dimensions, aggregation, year_to_date, direction, source_agency, create_time, update_time, version"
# The SQL of Snapshot::points without as_of (src/store/reports.rs; since 74f9893 a
# statement of its own, with the period bounds defaulting to '0000' and '9999~') and of
# indicators::get, verbatim.
POINTS_SQL="SELECT indicator_key, period::text AS period, value::text AS value FROM observation_versions WHERE indicator_key = ANY(\$1) AND known_until IS NULL AND NOT deleted AND period BETWEEN \$2 AND \$3 ORDER BY indicator_key, period"
GET_SQL="SELECT $INDICATOR_COLUMNS FROM indicators WHERE indicator_id = \$1"
SERIES_ARGS="'{$SERIES_KEY}', '2010-M01', '2020-M12'"
CARD_ARGS="'$CARD_KEYS', '0000', '9999~'"
{
    echo "-- $SIZES"
    echo "-- PostgreSQL $PG_VERSION: $PG_SETTINGS"
    echo "PREPARE points(int4[], text, text) AS $POINTS_SQL;"
    echo "PREPARE get_indicator(text) AS $GET_SQL;"
    for i in 1 2 3 4 5; do
        echo "EXECUTE points($SERIES_ARGS) \\g /dev/null"
        echo "EXECUTE get_indicator('$SERIES_INDICATOR') \\g /dev/null"
    done
    for mode in auto force_custom_plan force_generic_plan; do
        echo "SET plan_cache_mode = $mode;"
        echo "\\echo '---- QuerySeries points: 1 indicator (key $SERIES_KEY), 2010-M01..2020-M12, plan_cache_mode = $mode$([[ $mode == auto ]] && echo ', 6th execution: the plan the server gets')'"
        echo "EXPLAIN (ANALYZE, BUFFERS) EXECUTE points($SERIES_ARGS);"
    done
    for mode in force_custom_plan force_generic_plan; do
        echo "SET plan_cache_mode = $mode;"
        echo "\\echo '---- GetProgramScorecard points: $(tr -cd ',' <<<"$CARD_KEYS" | wc -c | awk '{print $1 + 1}') indicators, all periods, plan_cache_mode = $mode'"
        echo "EXPLAIN (ANALYZE, BUFFERS) EXECUTE points($CARD_ARGS);"
    done
    echo "SET plan_cache_mode = auto;"
    echo "\\echo '---- GetIndicator: indicators::get, plan_cache_mode = auto, 6th execution'"
    echo "EXPLAIN (ANALYZE, BUFFERS) EXECUTE get_indicator('$SERIES_INDICATOR');"
    echo "\\echo '---- pgbench -S, for comparison'"
    echo "\\c pgbench_ceiling"
    echo "EXPLAIN (ANALYZE, BUFFERS) SELECT abalance FROM pgbench_accounts WHERE aid = 424242;"
} >"$WORK/explain.sql"
psql_q -f "$WORK/explain.sql" >"$EXPLAIN" 2>&1 || { cat "$EXPLAIN" >&2; die "EXPLAIN failed"; }
cat "$EXPLAIN"
if grep -q 'Seq Scan on observation_versions' "$EXPLAIN"; then
    echo "WARNING: a plan reads observation_versions sequentially (see above)"
fi

# ---------------------------------------------------------------------------------------
# Rounds
# ---------------------------------------------------------------------------------------

METHODS=(
    "QuerySeries /tradewatch.v1.ReportingService/QuerySeries query_series.bin"
    "GetTargetProgress /tradewatch.v1.ReportingService/GetTargetProgress target_progress.bin"
    "GetProgramScorecard /tradewatch.v1.ReportingService/GetProgramScorecard scorecard.bin"
    "GetIndicator /tradewatch.v1.IndicatorService/GetIndicator get_indicator.bin"
)
# h2load_args PATH BODY [OPTION...]: sets H2LOAD to the h2load command line.
h2load_args() {
    local path=$1 body=$2
    shift 2
    H2LOAD=(h2load -c "$CLIENTS" -m "$STREAMS" -t 1
        -H 'content-type: application/grpc' -H 'te: trailers' "${AUTH_HEADER[@]}" -d "$body" "$@" "http://$ADDR$path")
}
# h2load sends the admin key unless BENCH_ANONYMOUS=1.
AUTH_HEADER=()
[[ $ANONYMOUS == 1 ]] || AUTH_HEADER=(-H "authorization: Bearer $KEY")
scrape() { curl -fsS --max-time 10 "$METRICS" >"$1" || die "cannot scrape $METRICS"; }

# The error count works: 4 calls that fail with NOT_FOUND come back as HTTP 200 to h2load
# and are counted as errors from the server's log and from /metrics.
check_error_count() {
    local path=/tradewatch.v1.IndicatorService/GetIndicator from to out=$WORK/h2load-errcheck.txt
    from=$(log_size)
    scrape "$WORK/metrics-errcheck-before.txt"
    h2load -n 4 -c 1 -m 1 -H 'content-type: application/grpc' -H 'te: trailers' "${AUTH_HEADER[@]}" \
        -d "$BODIES/get_indicator_missing.bin" "http://$ADDR$path" >"$out" 2>&1 || { cat "$out" >&2; die "h2load failed"; }
    sleep 0.5
    to=$(log_size)
    scrape "$WORK/metrics-errcheck-after.txt"
    local calls ok errors codes m0 m1
    read -r calls ok errors codes < <(helper serverlog "$SERVER_LOG" "$from" "$to" "$path")
    # NOT_FOUND calls of GetIndicator in /metrics, before and after.
    m0=$(helper metrics "$WORK/metrics-errcheck-before.txt" "$path" | grep -oE 'NOT_FOUND:[0-9]+' | cut -d: -f2 || true)
    m1=$(helper metrics "$WORK/metrics-errcheck-after.txt" "$path" | grep -oE 'NOT_FOUND:[0-9]+' | cut -d: -f2 || true)
    echo "error-count check: 4 GetIndicator calls for a missing indicator: h2load says '$(grep -E '^status codes:' "$out")'; server log: $calls calls, $errors errors (codes $codes); /metrics: NOT_FOUND ${m0:-0} -> ${m1:-0}"
    [[ $calls == 4 && $errors == 4 ]] || die "the server-side error count does not work (expected 4 calls, 4 errors)"
    (( ${m1:-0} - ${m0:-0} == 4 )) || die "/metrics did not count the 4 NOT_FOUND calls"
}

printf 'pass\tround\tmethod\trps\tp50_ms\tp90_ms\tp99_ms\tmean_ms\tmax_ms\trequests\th2load_non200\th2load_failed\tserver_calls\tserver_ok\tserver_errors\tcodes\tcpu_server_s\tcpu_pg_s\tcpu_client_s\tload1\n' >"$RESULTS"
printf 'pass\tround\ttps\tlatency_avg_ms\ttransactions\tfailed\tcpu_pg_s\tcpu_client_s\tload1\n' >"$PGB_RESULTS"

# run_rounds PASS: BENCH_ROUNDS rounds of the four methods and pgbench.
run_rounds() {
    local pass=$1 round spec method path body from to c0 c1 out log rps ndone succeeded failed errored requests
    local n non200 p50 p90 p99 mean max calls ok errors codes cs cp cc l tps lat txs fails
    wait_for_import_bench
    check_error_count
    say "Measurement, pass $pass: $ROUNDS rounds; h2load -c $CLIENTS -m $STREAMS ($CONCURRENCY streams) ${WARMUP} s warm-up + about ${DURATION} s per method; pgbench -S -c $CONCURRENCY -j 2 -T $PGB_SECONDS"
    for round in $(seq 1 "$ROUNDS"); do
        say "Pass $pass, round $round of $ROUNDS"
        for spec in "${METHODS[@]}"; do
            read -r method path body <<<"$spec"
            # Warm-up, timed (-D): its rate sets the measured run's request count, so that
            # the measured run (-n) lasts about BENCH_DURATION s and ends with every
            # request answered (a timed run resets the streams in flight when it stops,
            # which the server logs as calls failing with UNKNOWN).
            out=$WORK/h2load-$pass-$round-$method-warmup.txt
            h2load_args "$path" "$BODIES/$body" -D "$WARMUP"
            "${H2LOAD[@]}" >"$out" 2>&1 || { cat "$out" >&2; die "$method: h2load warm-up failed"; }
            requests=$(sed -nE 's/^finished in [^,]+, ([0-9.]+) req\/s.*/\1/p' "$out" |
                awk -v d="$DURATION" -v c="$CONCURRENCY" '{ n = int($1 * d / c + 0.5) * c; print (n < 4 * c ? 4 * c : n) }')
            [[ -n $requests ]] || { cat "$out" >&2; die "$method: cannot read the warm-up's rate"; }
            sleep 0.5
            from=$(log_size)
            c0=$(cpu_now)
            out=$WORK/h2load-$pass-$round-$method.txt
            log=$WORK/h2load-$pass-$round-$method.log
            h2load_args "$path" "$BODIES/$body" -n "$requests" --log-file="$log"
            /usr/bin/time -f '%U %S' -o "$WORK/time-h2load.txt" "${H2LOAD[@]}" >"$out" 2>&1 ||
                { cat "$out" >&2; die "$method: h2load failed"; }
            c1=$(cpu_now)
            sleep 0.5
            to=$(log_size)
            rps=$(sed -nE 's/^finished in [^,]+, ([0-9.]+) req\/s.*/\1/p' "$out")
            read -r _ _ _ _ _ ndone _ succeeded _ failed _ errored _ < <(grep -E '^requests:' "$out" | tr -d ',')
            read -r n non200 p50 p90 p99 mean max < <(helper latency "$log")
            read -r calls ok errors codes < <(helper serverlog "$SERVER_LOG" "$from" "$to" "$path")
            read -r cs cp < <(cpu_delta "$c0" "$c1")
            cc=$(awk '{ printf "%.2f", $1 + $2 }' "$WORK/time-h2load.txt")
            l=$(load1)
            printf '%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
                "$pass" "$round" "$method" "$rps" "$p50" "$p90" "$p99" "$mean" "$max" "$n" "$non200" "$((failed + errored))" \
                "$calls" "$ok" "$errors" "$codes" "$cs" "$cp" "$cc" "$l" >>"$RESULTS"
            printf '  %-20s %9s req/s  p50 %7s ms  p90 %7s ms  p99 %7s ms  (h2load: %s done, %s succeeded, %s failed, %s errored, %s non-200 in its log; server log: %s calls, %s errors, %s; CPU s server %s, PostgreSQL %s, h2load %s; load %s)\n' \
                "$method" "$rps" "$p50" "$p90" "$p99" "$ndone" "$succeeded" "$failed" "$errored" "$non200" \
                "$calls" "$errors" "$codes" "$cs" "$cp" "$cc" "$l"
            ((errors == 0)) || echo "  WARNING: $method: $errors calls did not return OK ($codes)"
        done

        sleep 0.5
        out=$WORK/pgbench-$pass-$round.txt
        c0=$(cpu_now)
        /usr/bin/time -f '%U %S' -o "$WORK/time-pgbench.txt" \
            "$PGBENCH" -S -n -c "$CONCURRENCY" -j 2 -T "$PGB_SECONDS" -h "$SOCK" -p 5432 -U tradewatch pgbench_ceiling >"$out" 2>&1 ||
            { cat "$out" >&2; die "pgbench failed"; }
        sleep 0.5 # the backends exit and are reaped: their CPU moves to the postmaster's
        c1=$(cpu_now)
        tps=$(sed -nE 's/^tps = ([0-9.]+) \(without initial connection time\).*/\1/p' "$out")
        lat=$(sed -nE 's/^latency average = ([0-9.]+) ms.*/\1/p' "$out")
        txs=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$out")
        fails=$(sed -nE 's/^number of failed transactions: ([0-9]+).*/\1/p' "$out")
        [[ -n $tps && -n $txs ]] || { cat "$out" >&2; die "cannot read pgbench's output"; }
        read -r _ cp < <(cpu_delta "$c0" "$c1")
        cc=$(awk '{ printf "%.2f", $1 + $2 }' "$WORK/time-pgbench.txt")
        l=$(load1)
        printf '%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$pass" "$round" "$tps" "$lat" "$txs" "${fails:-0}" "$cp" "$cc" "$l" >>"$PGB_RESULTS"
        printf '  %-20s %9s tps    latency average %s ms (%s transactions, %s failed; CPU s PostgreSQL %s, pgbench %s; load %s)\n' \
            "pgbench -S" "$tps" "$lat" "$txs" "${fails:-0}" "$cp" "$cc" "$l"
    done
}

echo "h2load command: h2load -c $CLIENTS -m $STREAMS -t 1 -H 'content-type: application/grpc' -H 'te: trailers'$([[ $ANONYMOUS == 1 ]] || echo " -H 'authorization: Bearer KEY'") -d BODY -n N --log-file LOG http://$ADDR/PATH, N = the warm-up's rate x $DURATION s (after a $WARMUP s warm-up, h2load ... -D $WARMUP)"
run_rounds as-built

# The same binary again, with TCP_NODELAY on its accepted sockets (see
# bench/nodelay_preload.c): what the calls cost without Nagle's wait for the ACK.
if [[ $NODELAY_PASS == 1 ]]; then
    say "Pass nodelay: restarting the server with LD_PRELOAD=bench/nodelay_preload.c (TCP_NODELAY on accepted sockets)"
    SHIM=$WORK/nodelay_preload.so
    cc -shared -fPIC -O2 -o "$SHIM" "$REPO/bench/nodelay_preload.c" -ldl
    stop_server
    start_server "$WORK/server-nodelay.log" "$SHIM"
    helper verify "$ADDR" "$BODIES" >/dev/null
    run_rounds nodelay
fi

# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------

say "Results: SYNTHETIC data, $ROWS observations ($INDICATORS indicators x $MONTHS months), $ROUNDS rounds"
MACHINE="$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r), PostgreSQL $PG_VERSION, $(rustc --version 2>/dev/null || echo 'rustc ?'), $(h2load --version)"
mkdir -p "$(dirname "$REPORT")"
{
    echo "# Reporting benchmark (SYNTHETIC data), $STARTED_UTC"
    echo
    echo "- command: \`bash bench/reports.sh\` (BENCH_ROUNDS=$ROUNDS BENCH_INDICATORS=$INDICATORS BENCH_MONTHS=$MONTHS BENCH_DURATION=$DURATION BENCH_WARMUP=$WARMUP BENCH_PGBENCH_SECONDS=$PGB_SECONDS BENCH_PGBENCH_SCALE=$PGB_SCALE BENCH_NODELAY_PASS=$NODELAY_PASS BENCH_ANONYMOUS=$ANONYMOUS${POOL_SIZE:+ BENCH_POOL_SIZE=$POOL_SIZE}${BENCH_BIN:+ BENCH_BIN=$BENCH_BIN})"
    echo "- machine: $MACHINE"
    echo "- PostgreSQL settings: $PG_SETTINGS"
    echo "- data: $SIZES; loaded through \`tradewatch import\` in $LOAD_S s"
    echo "- h2load: \`h2load -c $CLIENTS -m $STREAMS -t 1 -H 'content-type: application/grpc' -H 'te: trailers'$([[ $ANONYMOUS == 1 ]] || echo " -H 'authorization: Bearer KEY'") -d BODY -n N --log-file LOG http://$ADDR/PATH\`, N = the rate of a $WARMUP s warm-up (\`-D $WARMUP\`) x $DURATION s, rounded to a multiple of $CONCURRENCY"
    echo "- passes: as-built$([[ $NODELAY_PASS == 1 ]] && echo '; nodelay (same binary and data, server restarted with LD_PRELOAD=bench/nodelay_preload.c: TCP_NODELAY on accepted sockets)')"
    echo "- pgbench: \`pgbench -S -n -c $CONCURRENCY -j 2 -T $PGB_SECONDS\` on \`pgbench -i -s $PGB_SCALE\`, same cluster, unix socket"
    echo
    helper summary "$RESULTS" "$PGB_RESULTS"
    echo
    echo "## Plans"
    echo
    echo '```'
    cat "$EXPLAIN"
    echo '```'
} >"$REPORT"
helper summary "$RESULTS" "$PGB_RESULTS"
echo
echo "machine: $MACHINE"
echo "report with the plans: $REPORT"
echo "all data above is SYNTHETIC (indicators synthetic-NNNNN, programme $PROGRAM; titles 'SYNTHETIC ...')"
