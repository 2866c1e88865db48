#!/usr/bin/env bash
# Import benchmark: ImportObservations (through `tradewatch import`) against `psql \copy`
# of the same rows into a plain table, on the same PostgreSQL.
#
# One command runs everything:
#
#   bash bench/import.sh
#
# 1. builds target/release/tradewatch;
# 2. starts it on a fresh temporary data dir (its own private PostgreSQL, unix socket
#    only, durable settings: fsync and synchronous_commit on), without the seed, with
#    metrics on a free port, and takes the admin key it prints at first start
#    (TRADEWATCH_KEY=tw_...), which the indicator creation and every import send;
# 3. creates 10,000 SYNTHETIC monthly indicators (synthetic-00001 ... synthetic-10000)
#    through IndicatorService/CreateIndicator, from a Python client generated from the
#    protos (as scripts/sdk_python_check.py does);
# 4. writes a SYNTHETIC CSV of 1,000,000 observations (10,000 indicators x 100 months,
#    2015-M01 ... 2023-M04), `indicator,period,value,status,comment,source`;
# 5. runs BENCH_ROUNDS rounds; each round, on the same PostgreSQL:
#    a. `psql \copy` of the CSV into a fresh plain table of the same columns;
#    b. `tradewatch import` of the CSV into an empty observation store
#       (observation_versions and observation_commits truncated first);
#    c. the identical re-import, which must write nothing (0 inserted, 0 revised,
#       1,000,000 unchanged, observation_versions row count unchanged);
#    and records rows/s, the ratio import/COPY, the re-import time, the server's peak RSS
#    (VmHWM, reset at the start of each round through /proc/PID/clear_refs when allowed,
#    plus VmRSS sampled every 0.2 s) and the CLI's peak RSS (/usr/bin/time);
# 6. prints a table of the rounds and their medians, and where the time went: CPU seconds
#    of the CLI, the server and PostgreSQL (all processes of its private cluster) for each
#    load, and server-side SQL time by statement (from PostgreSQL's statement log:
#    log_min_duration_statement = 0 during the rounds, in the throwaway cluster only);
# 7. checks that no call failed on the server side: no `call finished` log line and no
#    tradewatch_grpc_calls_total count (/metrics) with a code other than OK.
#
# A CHECKPOINT precedes every timed load so that none pays for the previous one's dirty
# pages. Between the import and the re-import, `VACUUM ANALYZE observation_versions`
# (untimed, reported) stands for the autovacuum that would have run by then, so the
# re-import's plan does not depend on whether autovacuum happened to finish first.
#
# Environment:
#   BENCH_ROUNDS       rounds (default 3)
#   BENCH_INDICATORS   synthetic indicators (default 10000)
#   BENCH_MONTHS       months per indicator (default 100, from 2015-M01)
#   BENCH_ADDR         gRPC address to serve on (default 127.0.0.1:50171; must be free)
#   BENCH_BATCH        rows per ImportObservations message (CLI --batch; default: the CLI's)
#   BENCH_SKIP_BUILD   1: use the existing target/release/tradewatch as it is
#   BENCH_KEEP         1: keep the temporary directory (data, logs, CSV) for inspection
# Needs: cargo, PostgreSQL server and client binaries (psql), python3 with grpcio and
# grpcio-tools; /usr/bin/time is installed with apt-get if missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD

ROUNDS=${BENCH_ROUNDS:-3}
INDICATORS=${BENCH_INDICATORS:-10000}
MONTHS=${BENCH_MONTHS:-100}
ADDR=${BENCH_ADDR:-127.0.0.1:50171}
BATCH=${BENCH_BATCH:-}
BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/tradewatch
ROWS=$((INDICATORS * MONTHS))

# The server must start its own private PostgreSQL, with info logs (the import log line).
unset DATABASE_URL TRADEWATCH_DATA_DIR TRADEWATCH_LISTEN TRADEWATCH_SERVER TRADEWATCH_KEY \
    TRADEWATCH_METRICS_LISTEN TRADEWATCH_ANONYMOUS_READ
export TRADEWATCH_LOG=info TRADEWATCH_LOG_FORMAT=text

say() { printf '\n== %s\n' "$*"; }
die() {
    echo "bench/import.sh: FATAL: $*" >&2
    exit 1
}
now() { date +%s.%N; }
# elapsed START END: seconds between two `now` readings.
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer (got $ROUNDS)"
((MONTHS >= 1 && MONTHS <= 1200)) || die "BENCH_MONTHS must be 1..1200"
((INDICATORS >= 1 && INDICATORS <= 99999)) || die "BENCH_INDICATORS must be 1..99999"

# ---------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------

say "Tools"
command -v cargo >/dev/null || die "cargo not found"
PSQL=$(command -v psql || true)
if [[ -z $PSQL ]]; then
    for d in /usr/lib/postgresql/*/bin; do [[ -x $d/psql ]] && PSQL=$d/psql; done
fi
[[ -n $PSQL ]] || die "psql not found (apt-get install postgresql-client)"
python3 -c 'import grpc, grpc_tools.protoc' 2>/dev/null ||
    die "python3 needs grpcio and grpcio-tools: pip install grpcio grpcio-tools"
if [[ ! -x /usr/bin/time ]]; then
    echo "/usr/bin/time missing: installing the 'time' package"
    DEBIAN_FRONTEND=noninteractive apt-get install -y time >/dev/null ||
        { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y time >/dev/null; }
fi
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing and could not be installed"
command -v curl >/dev/null || die "curl not found (apt-get install curl)"
echo "psql: $("$PSQL" --version), $(python3 --version), $(cargo --version)"

# ---------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------

if [[ ${BENCH_SKIP_BUILD:-0} == 1 ]]; then
    say "Build skipped (BENCH_SKIP_BUILD=1)"
    [[ -x $BIN ]] || die "$BIN does not exist"
else
    say "cargo build --release"
    cargo build --release
fi

# ---------------------------------------------------------------------------------------
# Temporary directory, server, clean-up
# ---------------------------------------------------------------------------------------

WORK=$(mktemp -d /tmp/tradewatch-bench.XXXXXX)
# As root, PostgreSQL runs as an unprivileged user, who must be able to traverse WORK.
chmod 755 "$WORK"
DATA=$WORK/data
CSV=$WORK/synthetic-observations.csv
SERVER_LOG=$WORK/server.log
RSS_LOG=$WORK/rss.log
RESULTS=$WORK/results.tsv
SERVER_PID=""
SAMPLER_PID=""

cleanup() {
    local rc=$?
    set +e
    if [[ -n $SAMPLER_PID ]]; then
        kill "$SAMPLER_PID" 2>/dev/null
        wait "$SAMPLER_PID" 2>/dev/null
    fi
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        # SIGTERM: the server drains, then stops its private PostgreSQL.
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
    # If PostgreSQL outlived the server (it was killed), stop the postmaster by its pid.
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

say "Server: $BIN --data-dir $DATA --listen $ADDR --no-seed --metrics-listen 127.0.0.1:0 (TRADEWATCH_LOG=info)"
"$BIN" --data-dir "$DATA" --listen "$ADDR" --no-seed --metrics-listen 127.0.0.1:0 >"$SERVER_LOG" 2>&1 &
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
PG_LOG=$DATA/postgres.log
# The metrics port and the admin key, as the server printed them.
METRICS=$(grep -oE 'serving Prometheus metrics on http://[0-9.:]+/metrics' "$SERVER_LOG" | head -n 1 | sed -E 's/.* on //' || true)
[[ -n $METRICS ]] || die "cannot read the metrics address from the server log"
KEY=$(grep -oE 'TRADEWATCH_KEY=tw_[A-Za-z0-9_-]+' "$SERVER_LOG" | head -n 1 | cut -d= -f2 || true)
[[ -n $KEY ]] || die "no admin key (TRADEWATCH_KEY=...) in the server log"
echo "server pid $SERVER_PID; PostgreSQL socket $SOCK; PostgreSQL log $PG_LOG; metrics $METRICS; admin key ${KEY:0:16}... (from the log)"

psql_q() { PGOPTIONS="-c client_min_messages=warning" "$PSQL" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p 5432 -U tradewatch -d tradewatch "$@"; }
psql_val() { psql_q -tA -c "$1"; }

PG_VERSION=$(psql_val "SHOW server_version")
echo "PostgreSQL $PG_VERSION: fsync=$(psql_val 'SHOW fsync'), synchronous_commit=$(psql_val 'SHOW synchronous_commit'), shared_buffers=$(psql_val 'SHOW shared_buffers'), temp_buffers=$(psql_val 'SHOW temp_buffers'), work_mem=$(psql_val 'SHOW work_mem'), max_wal_size=$(psql_val 'SHOW max_wal_size')"

# Samples the server's VmRSS every 0.2 s: "epoch_seconds kB".
(
    while kill -0 "$SERVER_PID" 2>/dev/null; do
        kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status" 2>/dev/null || true)
        [[ -n $kb ]] && echo "$(date +%s.%N) $kb"
        sleep 0.2
    done
) >"$RSS_LOG" 2>/dev/null &
SAMPLER_PID=$!

# ---------------------------------------------------------------------------------------
# Synthetic indicators and CSV
# ---------------------------------------------------------------------------------------

PY=$WORK/py
mkdir -p "$PY"
python3 -m grpc_tools.protoc -I"$REPO/proto" --python_out="$PY" --grpc_python_out="$PY" \
    "$REPO"/proto/tradewatch/v1/*.proto

cat >"$PY/bench_helper.py" <<'PYTHON'
"""Helpers of bench/import.sh. Everything written here is SYNTHETIC benchmark data."""
import os
import random
import sys
import threading
import time


def indicators(addr, n, inflight=64):
    """Creates synthetic-00001 .. synthetic-N through CreateIndicator, `inflight` at once."""
    import grpc
    from tradewatch.v1 import common_pb2, indicator_pb2
    from tradewatch.v1 import indicator_service_pb2 as svc
    from tradewatch.v1 import indicator_service_pb2_grpc as svc_grpc

    channel = grpc.insecure_channel(addr)
    grpc.channel_ready_future(channel).result(timeout=30)
    # Writes need an API key (bench/import.sh passes the admin key).
    auth = [("authorization", f"Bearer {os.environ['TRADEWATCH_KEY']}")]
    stub = svc_grpc.IndicatorServiceStub(channel)
    slots = threading.BoundedSemaphore(inflight)
    lock = threading.Lock()
    counts = {"created": 0, "existed": 0}
    errors = []

    def done(future):
        try:
            future.result()
            with lock:
                counts["created"] += 1
        except grpc.RpcError as e:
            with lock:
                if e.code() == grpc.StatusCode.ALREADY_EXISTS:
                    counts["existed"] += 1
                else:
                    errors.append(f"{e.code()}: {e.details()}")
        finally:
            slots.release()

    Ind = indicator_pb2.Indicator
    started = time.monotonic()
    for i in range(1, n + 1):
        slots.acquire()
        request = svc.CreateIndicatorRequest(
            indicator_id=f"synthetic-{i:05d}",
            indicator=Ind(
                title=f"SYNTHETIC benchmark indicator {i:05d}",
                description="Synthetic data generated by bench/import.sh; not real statistics.",
                unit="USD",
                frequency=common_pb2.FREQUENCY_MONTHLY,
                flow=Ind.FLOW_EXPORT,
                region="CN-CQ",
                aggregation=Ind.AGGREGATION_SUM,
                direction=common_pb2.DIRECTION_HIGHER_IS_BETTER,
                source_agency="SYNTHETIC (bench/import.sh)",
            ),
        )
        stub.CreateIndicator.future(request, timeout=120, metadata=auth).add_done_callback(done)
    for _ in range(inflight):
        slots.acquire()
    secs = time.monotonic() - started
    print(f"SYNTHETIC indicators: {counts['created']} created, {counts['existed']} already "
          f"existed, {len(errors)} failed in {secs:.1f} s ({n / secs:.0f} calls/s)")
    if errors:
        for e in errors[:10]:
            print("  " + e, file=sys.stderr)
        sys.exit(1)


def csv(path, n, months, seed=20150101):
    """Writes n indicators x `months` monthly observations from 2015-M01."""
    rng = random.Random(seed)
    periods = [f"{2015 + m // 12}-M{m % 12 + 1:02d}" for m in range(months)]
    source = "SYNTHETIC bench/import.sh"
    with open(path, "w", buffering=1 << 20) as f:
        f.write("indicator,period,value,status,comment,source\n")
        for i in range(1, n + 1):
            indicator = f"synthetic-{i:05d}"
            level = rng.uniform(10.0, 100000.0)
            lines = []
            for k, period in enumerate(periods):
                v = level * (1.0 + 0.003 * k) * rng.uniform(0.9, 1.1)
                value = f"{v:.1f}" if rng.random() < 0.5 else f"{v:.2f}"
                if k >= months - 3:
                    status, comment = "P", ""
                elif rng.random() < 0.02:
                    status, comment = "E", "synthetic estimate"
                else:
                    status, comment = "A", ""
                lines.append(f"{indicator},{period},{value},{status},{comment},{source}\n")
            f.write("".join(lines))


if __name__ == "__main__":
    if sys.argv[1] == "indicators":
        indicators(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "csv":
        csv(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
PYTHON

say "Creating $INDICATORS SYNTHETIC monthly indicators (CreateIndicator, 64 calls in flight)"
TRADEWATCH_KEY=$KEY PYTHONPATH=$PY python3 "$PY/bench_helper.py" indicators "$ADDR" "$INDICATORS"
n=$(psql_val "SELECT count(*) FROM indicators WHERE indicator_id LIKE 'synthetic-%'")
[[ $n == "$INDICATORS" ]] || die "expected $INDICATORS synthetic indicators, found $n"

say "Writing the SYNTHETIC CSV: $INDICATORS indicators x $MONTHS months = $ROWS rows"
t0=$(now)
python3 "$PY/bench_helper.py" csv "$CSV" "$INDICATORS" "$MONTHS"
lines=$(($(wc -l <"$CSV") - 1))
[[ $lines == "$ROWS" ]] || die "the CSV has $lines rows, expected $ROWS"
echo "$CSV: $ROWS rows, $(du -m "$CSV" | cut -f1) MB, written in $(elapsed "$t0" "$(now)") s"
head -n 4 "$CSV" | sed 's/^/  | /'

# ---------------------------------------------------------------------------------------
# Rounds
# ---------------------------------------------------------------------------------------

# Every statement's duration goes to the PostgreSQL log from here on (the rounds issue a
# few hundred statements each), to tell where the server-side time goes.
psql_q -c "ALTER SYSTEM SET log_min_duration_statement = 0" \
    -c "ALTER SYSTEM SET log_temp_files = 0" \
    -c "ALTER SYSTEM SET log_checkpoints = on" \
    -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5

# Resets the server's VmHWM to its current RSS (Linux clear_refs 5), after folding the
# peak so far into PEAK_KB (the whole run's peak, indicator creation included).
CLEAR_REFS=1
PEAK_KB=0
fold_peak() {
    local kb
    kb=$(status_kb VmHWM)
    ((kb > PEAK_KB)) && PEAK_KB=$kb
    return 0
}
reset_hwm() {
    fold_peak
    if ((CLEAR_REFS)) && ! { echo 5 >"/proc/$SERVER_PID/clear_refs"; } 2>/dev/null; then
        CLEAR_REFS=0
        echo "note: cannot reset VmHWM (/proc/$SERVER_PID/clear_refs); it is the process-lifetime peak"
    fi
}
status_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$SERVER_PID/status"; }
log_size() { stat -c %s "$PG_LOG"; }
load1() { cut -d' ' -f1 /proc/loadavg; }

# CPU seconds so far: "server postgres". PostgreSQL's is the postmaster's own and reaped
# children's time (utime, stime, cutime, cstime) plus its live children's (utime, stime).
TICKS=$(getconf CLK_TCK)
cpu_now() {
    local pg_pid
    pg_pid=$(head -n 1 "$DATA/pgdata/postmaster.pid")
    # cat, not awk, opens the files: a process may exit between the glob and the read.
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v tck="$TICKS" -v srv="$SERVER_PID" -v pm="$pg_pid" '
        {
            line = $0; pid = $1
            sub(/^.*\) /, "", line); split(line, f, " ")
            # f[2] = ppid, f[12..15] = utime stime cutime cstime
            if (pid == srv) s += f[12] + f[13]
            else if (pid == pm) p += f[12] + f[13] + f[14] + f[15]
            else if (f[2] == pm) p += f[12] + f[13]
        }
        END { printf "%.2f %.2f\n", s / tck, p / tck }'
}
# cpu_delta BEFORE AFTER: "server_s postgres_s".
cpu_delta() { awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.2f %.2f", y[1] - x[1], y[2] - x[2] }'; }

# import_cli LABEL: runs `tradewatch import` on the CSV; sets WALL, STREAM (seconds until
# the CLI had sent every row), CLI_KB, INS, REV, UNCH, and prints CPU seconds by process.
import_cli() {
    local label=$1 out=$WORK/import-$1.log tfile=$WORK/time-$1.txt t0 t1 c0 c1 args=()
    [[ -n $BATCH ]] && args=(--batch "$BATCH")
    c0=$(cpu_now)
    t0=$(now)
    if ! TRADEWATCH_KEY=$KEY /usr/bin/time -f '%e %M %U %S' -o "$tfile" "$BIN" import --server "http://$ADDR" "${args[@]}" \
        "$CSV" 2>"$out"; then
        cat "$out" >&2
        die "$label: tradewatch import failed"
    fi
    t1=$(now)
    c1=$(cpu_now)
    WALL=$(elapsed "$t0" "$t1")
    CLI_KB=$(awk 'END { print $2 }' "$tfile")
    STREAM=$(sed -nE 's/^sent [0-9]+ rows in ([0-9.]+) s.*/\1/p' "$out" | tail -n 1)
    [[ -n $STREAM ]] || STREAM=0
    local cpu cli_cpu
    cpu=$(cpu_delta "$c0" "$c1")
    cli_cpu=$(awk 'END { printf "%.2f", $3 + $4 }' "$tfile")
    local summary
    summary=$(grep -E '^imported [0-9]+ rows:' "$out" | tail -n 1)
    [[ -n $summary ]] || { cat "$out" >&2; die "$label: no summary line from tradewatch import"; }
    echo "  $label: $summary (wall $WALL s, CLI peak RSS $((CLI_KB / 1024)) MB)"
    echo "  $label: rows sent after $STREAM s, then $(elapsed "$STREAM" "$WALL") s until the response; CPU s: CLI $cli_cpu, server ${cpu%% *}, PostgreSQL ${cpu##* } (wall $WALL, $(nproc) CPUs, load $(load1))"
    read -r INS REV UNCH < <(sed -E 's/.*: ([0-9]+) inserted, ([0-9]+) revised, ([0-9]+) unchanged.*/\1 \2 \3/' <<<"$summary")
}

# phases FROM_BYTE LABEL: sums the durations PostgreSQL logged since FROM_BYTE, by statement.
phases() {
    tail -c +"$(($1 + 1))" "$PG_LOG" | awk -v label="$2" '
        /duration: [0-9.]+ ms/ {
            match($0, /duration: [0-9.]+ ms/)
            ms = substr($0, RSTART + 10, RLENGTH - 13) + 0
            s = $0
            if (s ~ /COPY staging/) k = "copy_staging"
            else if (s ~ /CREATE TEMP TABLE staging/) k = "begin"
            else if (s ~ /PARTITION BY indicator_key, period/) k = "duplicates"
            else if (s ~ /CREATE TEMP TABLE classified/) k = "classify"
            else if (s ~ /FROM classified GROUP BY/) k = "counts"
            else if (s ~ /UPDATE observation_versions/) k = "close_versions"
            else if (s ~ /INSERT INTO observation_versions/) k = "insert_versions"
            else if (s ~ /lookup|FROM indicators/) k = "indicator_lookup"
            else if (s ~ /statement: COMMIT/) k = "commit"
            else k = "other"
            t[k] += ms; total += ms
            if (s ~ /(statement|execute [^:]*):/) c[k]++
        }
        END {
            printf "  %s, server-side SQL time by statement (PostgreSQL log):\n", label
            n = split("copy_staging indicator_lookup duplicates classify counts close_versions insert_versions commit begin other", order, " ")
            for (i = 1; i <= n; i++) if (order[i] in t)
                printf "    %-17s %8.2f s  (%d statements)\n", order[i], t[order[i]] / 1000, c[order[i]] + 0
            printf "    %-17s %8.2f s\n", "total", total / 1000
        }'
}

printf 'round\tcopy_s\tcopy_rps\timport_s\timport_rps\tratio\timport_stream_s\timport_merge_s\treimport_s\tserver_hwm_mb\tserver_sampled_mb\tcli_mb\tload1\tversions\n' >"$RESULTS"

for round in $(seq 1 "$ROUNDS"); do
    say "Round $round of $ROUNDS (SYNTHETIC data, $ROWS rows)"
    reset_hwm
    round_start=$(now)

    # (a) psql \copy into a fresh plain table of the same columns.
    psql_q -c "DROP TABLE IF EXISTS bench_copy" \
        -c "CREATE TABLE bench_copy (indicator text, period text, value numeric, status text, comment text, source text)" \
        -c "CHECKPOINT"
    c0=$(cpu_now)
    t0=$(now)
    psql_q -c "\\copy bench_copy (indicator, period, value, status, comment, source) FROM '$CSV' WITH (FORMAT csv, HEADER true, FORCE_NOT_NULL (comment, source))"
    t1=$(now)
    sleep 0.5 # the psql backend exits and is reaped: its CPU time moves to the postmaster
    c1=$(cpu_now)
    COPY_S=$(elapsed "$t0" "$t1")
    n=$(psql_val "SELECT count(*) FROM bench_copy")
    [[ $n == "$ROWS" ]] || die "bench_copy has $n rows, expected $ROWS"
    cpu=$(cpu_delta "$c0" "$c1")
    echo "  psql \\copy: $ROWS rows in $COPY_S s; CPU s: PostgreSQL ${cpu##* } (load $(load1))"
    # Dropped at once, so that autovacuum does not analyze it during the import.
    psql_q -c "DROP TABLE bench_copy"

    # (b) Import into an empty observation store.
    psql_q -c "TRUNCATE observation_versions, observation_commits" -c "CHECKPOINT"
    from=$(log_size)
    import_cli "round$round-import"
    IMPORT_S=$WALL
    IMPORT_STREAM=$STREAM
    [[ $INS == "$ROWS" && $REV == 0 && $UNCH == 0 ]] ||
        die "import: expected $ROWS inserted, 0 revised, 0 unchanged; got $INS, $REV, $UNCH"
    versions=$(psql_val "SELECT count(*) FROM observation_versions")
    [[ $versions == "$ROWS" ]] || die "observation_versions has $versions rows after the import, expected $ROWS"
    phases "$from" "import"

    # What autovacuum would have done by the time of a later re-import (untimed).
    t0=$(now)
    psql_q -c "VACUUM ANALYZE observation_versions" -c "CHECKPOINT"
    echo "  (untimed) VACUUM ANALYZE observation_versions + CHECKPOINT: $(elapsed "$t0" "$(now)") s"

    # (c) The identical re-import: writes nothing.
    commits=$(psql_val "SELECT count(*) FROM observation_commits")
    from=$(log_size)
    import_cli "round$round-reimport"
    REIMPORT_S=$WALL
    [[ $INS == 0 && $REV == 0 && $UNCH == "$ROWS" ]] ||
        die "re-import: expected 0 inserted, 0 revised, $ROWS unchanged; got $INS, $REV, $UNCH"
    versions_after=$(psql_val "SELECT count(*) FROM observation_versions")
    commits_after=$(psql_val "SELECT count(*) FROM observation_commits")
    [[ $versions_after == "$versions" && $commits_after == "$commits" ]] ||
        die "re-import changed the store: versions $versions -> $versions_after, commits $commits -> $commits_after"
    echo "  re-import check: observation_versions $versions -> $versions_after rows, observation_commits $commits -> $commits_after (unchanged)"
    phases "$from" "re-import"

    round_end=$(now)
    LOAD=$(load1)
    HWM_KB=$(status_kb VmHWM)
    SAMPLED_KB=$(awk -v a="$round_start" -v b="$round_end" '$1 >= a && $1 <= b && $2 > m { m = $2 } END { print m + 0 }' "$RSS_LOG")
    echo "  server: VmHWM $((HWM_KB / 1024)) MB, VmRSS sampled peak $((SAMPLED_KB / 1024)) MB, VmRSS now $(($(status_kb VmRSS) / 1024)) MB"
    grep -E '\bimport\b' "$SERVER_LOG" | sed -e 's/\x1b\[[0-9;]*m//g' | tail -n 2 | sed 's/^/  server log: /'

    awk -v r="$round" -v rows="$ROWS" -v c="$COPY_S" -v i="$IMPORT_S" -v st="$IMPORT_STREAM" -v ri="$REIMPORT_S" \
        -v h="$HWM_KB" -v s="$SAMPLED_KB" -v cli="$CLI_KB" -v l="$LOAD" -v v="$versions_after" 'BEGIN {
        printf "%d\t%.3f\t%.0f\t%.3f\t%.0f\t%.3f\t%.3f\t%.3f\t%.3f\t%.1f\t%.1f\t%.1f\t%.2f\t%d\n",
            r, c, rows / c, i, rows / i, (rows / i) / (rows / c), st, i - st, ri, h / 1024, s / 1024, cli / 1024, l, v }' >>"$RESULTS"
done

psql_q -c "ALTER SYSTEM RESET log_min_duration_statement" -c "ALTER SYSTEM RESET log_temp_files" \
    -c "ALTER SYSTEM RESET log_checkpoints" -c "SELECT pg_reload_conf()" >/dev/null

# Server-side failures: the call layer logs every call once ("call finished ...
# code=\"CODE\"") and counts it in tradewatch_grpc_calls_total{code}.
say "Server-side call outcomes"
curl -fsS --max-time 10 "$METRICS" >"$WORK/metrics.txt" || die "cannot scrape $METRICS"
CALLS_BY_CODE=$(awk '/^tradewatch_grpc_calls_total\{/ {
        match($0, /method="[^"]*"/); m = substr($0, RSTART + 8, RLENGTH - 9)
        match($0, /code="[^"]*"/); c = substr($0, RSTART + 6, RLENGTH - 7)
        n[m " " c] += $NF
    }
    END { for (k in n) printf "%s %d\n", k, n[k] }' "$WORK/metrics.txt" | sort)
echo "/metrics, tradewatch_grpc_calls_total by method and code:"
sed 's/^/  /' <<<"$CALLS_BY_CODE"
NOT_OK_METRICS=$(awk '$2 != "OK" { s += $3 } END { print s + 0 }' <<<"$CALLS_BY_CODE")
LOG_CALLS=$(grep -c 'call finished' "$SERVER_LOG" || true)
NOT_OK_LOG=$(grep 'call finished' "$SERVER_LOG" | grep -vc 'code="OK"' || true)
echo "server log: $LOG_CALLS 'call finished' lines, $NOT_OK_LOG with a code other than OK"
((NOT_OK_METRICS == 0 && NOT_OK_LOG == 0)) ||
    die "server-side failures: $NOT_OK_METRICS in /metrics, $NOT_OK_LOG in the log"

# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------

say "Results: SYNTHETIC data, $ROWS rows ($INDICATORS indicators x $MONTHS months), $ROUNDS rounds"
fold_peak
python3 - "$RESULTS" "$ROWS" <<'PYTHON'
import statistics
import sys

path, rows = sys.argv[1], int(sys.argv[2])
with open(path) as f:
    header = f.readline().rstrip("\n").split("\t")
    data = [dict(zip(header, line.rstrip("\n").split("\t"))) for line in f if line.strip()]

cols = [
    ("round", "round", "{}"),
    ("copy_rps", "COPY rows/s", "{:,.0f}"),
    ("import_rps", "import rows/s", "{:,.0f}"),
    ("ratio", "ratio import/COPY", "{:.3f}"),
    ("copy_s", "COPY s", "{:.2f}"),
    ("import_s", "import s", "{:.2f}"),
    ("import_stream_s", "of which streaming s", "{:.2f}"),
    ("import_merge_s", "of which merge s", "{:.2f}"),
    ("reimport_s", "re-import s", "{:.2f}"),
    ("server_hwm_mb", "server VmHWM MB", "{:.1f}"),
    ("server_sampled_mb", "server RSS sampled MB", "{:.1f}"),
    ("cli_mb", "CLI max RSS MB", "{:.1f}"),
    ("load1", "load avg 1 min", "{:.2f}"),
]
table = [[title for _, title, _ in cols]]
for d in data:
    table.append([fmt.format(int(d[k]) if k == "round" else float(d[k])) for k, _, fmt in cols])
med = ["median"]
for k, _, fmt in cols[1:]:
    med.append(fmt.format(statistics.median(float(d[k]) for d in data)))
table.append(med)
widths = [max(len(r[i]) for r in table) for i in range(len(cols))]
for n, r in enumerate(table):
    print("| " + " | ".join(c.rjust(w) for c, w in zip(r, widths)) + " |")
    if n == 0:
        print("|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|")

m = lambda k: statistics.median(float(d[k]) for d in data)
ratio = m("ratio")
hwm = max(float(d["server_hwm_mb"]) for d in data)
print()
print(f"goal 1, import >= 0.5 x COPY rate: median ratio {ratio:.3f} -> {'MET' if ratio >= 0.5 else 'NOT MET'}")
print(f"goal 2, server peak RSS < 200 MB: highest VmHWM {hwm:.1f} MB -> {'MET' if hwm < 200 else 'NOT MET'}")
print(f"goal 3, identical re-import writes no new versions: 0 inserted, 0 revised, {rows:,} unchanged, "
      f"observation_versions count unchanged in every round -> MET (checked; the script stops otherwise)")
PYTHON
echo "server peak RSS over the whole run (VmHWM, indicator creation included): $((PEAK_KB / 1024)) MB"
echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, PostgreSQL $PG_VERSION, $(rustc --version 2>/dev/null || echo 'rustc ?'), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "all data above is SYNTHETIC (indicators synthetic-00001..; titles 'SYNTHETIC ...')"
