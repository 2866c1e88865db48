#!/usr/bin/env bash
# Write benchmark for the issue "Observation writes that scale": BatchCreateObservations
# of 10-row batches from 1 to 64 writers, on one and two replicas, over TCP and on the
# private cluster, each beside a pgbench ceiling measured next to it; and the import
# (`tradewatch import`) against `psql \copy` into a keyed table, in the same run.
#
# One command runs everything and prints markdown tables at the end:
#
#   bash bench/writes.sh
#   BENCH_ROUNDS=1 BENCH_SECONDS=3 bash bench/writes.sh      # a quick check (~5 min)
#
# 1. Builds target/release/tradewatch and the load client, examples/writes.rs
#    (`cargo build --release --bin tradewatch --example writes`), unless BENCH_SKIP_BUILD=1.
#    The binaries are taken from $CARGO_TARGET_DIR when it is set.
# 2. Two database set-ups, one after the other; each gets its servers, its rounds and its
#    import:
#    - tcp: a throwaway PostgreSQL 15 cluster this script starts itself (initdb + pg_ctl
#      in the temporary directory; as root, as the `postgres` OS user, since PostgreSQL
#      refuses root), listening on 127.0.0.1 on the first free port from BENCH_PG_PORT
#      (55433), trust authentication, durable: fsync on, synchronous_commit on;
#      shared_buffers 128MB, max_connections 200. Database `bench`. Two tradewatch
#      servers on DATABASE_URL=postgres://postgres@127.0.0.1:PORT/bench
#      (--anonymous-read=false --no-seed): gRPC 127.0.0.1:50281 and :50282, metrics :9581
#      and :9582. The admin key comes from `tradewatch keys create --role admin` on the
#      same DATABASE_URL (it prints the secret on stdout).
#    - private: tradewatch with DATABASE_URL unset and TRADEWATCH_DATA_DIR a fresh
#      directory (--no-seed): it starts its own PostgreSQL on a unix socket and prints its
#      admin key once at first start (TRADEWATCH_KEY=tw_..., taken from its log). The
#      second replica connects to the first one's cluster through its socket
#      (DATABASE_URL=postgres://tradewatch@localhost/tradewatch?host=SOCKETDIR&port=5432;
#      the socket directory is read from the start-up line `using the private PostgreSQL
#      cluster ... socket=...`). pgbench connects to the same socket, as the OS user that
#      owns it.
# 3. Writes, BENCH_ROUNDS rounds per set-up. In every round each configuration runs once,
#    right after its own pgbench ceiling run, so every ratio has a baseline measured
#    next to it (ceiling, writes, ceiling, writes, ...):
#    - ceiling: `pgbench -n -c 16 -j 2 -T BENCH_SECONDS -f insert.sql`, where insert.sql
#      is one 10-row `INSERT ... ON CONFLICT DO NOTHING` per transaction into a fresh
#      keyed table bench_ceiling (indicator text, period text, value numeric, status
#      text, comment text, source text, PRIMARY KEY (indicator, period)), keys fresh per
#      transaction (`\set p random(1, 2000000000)` and :client_id);
#    - writes: examples/writes with --rows 10, BENCH_WARMUP s of warm-up (not counted),
#      then BENCH_SECONDS s measured:
#        own-N     N writers (BENCH_WRITERS, default "1 4 16 64"), each its own
#                  indicator, one replica;
#        shared-N  N writers with --share-half (BENCH_SHARED_WRITERS, default "16 64"):
#                  writers i >= N/2 write to the indicator of writer i - N/2, one replica;
#        2rep-N    N writers, own indicators, on two replicas (BENCH_REPLICA_WRITERS,
#                  default "16 64"; writers alternate between the two servers).
#      Before every writes run the observation store is emptied (TRUNCATE
#      observation_versions, and observation_commits where it exists; indicators stay),
#      so every run starts from the same state and writes only fresh periods; the client
#      checks that every answer reports inserted = 10. Before every ceiling run the
#      ceiling table is recreated. A CHECKPOINT precedes every timed run.
#    The report gives per configuration the median calls/s, median p50 and p99, the
#    median ceiling tps and the ratio median calls/s / median ceiling tps; where the CPU
#    went (ms of CPU per call of the servers and of the cluster's PostgreSQL processes,
#    from /proc/PID/stat, and calls per committed transaction from pg_stat_database:
#    the batches a grouped write carried); and the
#    ratios "16 writers / 1 writer" and "two replicas / one replica" (16 and 64 writers).
# 4. Import, per set-up: a SYNTHETIC CSV of BENCH_IMPORT_ROWS rows
#    (`indicator,period,value,status,comment,source`; indicators bench-imp-000, ...
#    x 100 months from 2015-M01), whose indicators the load client creates first
#    (`writes --setup --duration 0`, CreateIndicator 32 at a time). Then BENCH_ROUNDS
#    rounds of:
#    a. `psql \copy` of the CSV into a fresh keyed table bench_copy (same columns,
#       PRIMARY KEY (indicator, period));
#    b. `tradewatch import` of the CSV into an emptied observation store;
#    c. (untimed) VACUUM ANALYZE observation_versions, standing in for the autovacuum
#       that would have run before a real re-import, as bench/import.sh does;
#    d. the identical re-import, which must report 0 inserted, 0 revised and leave the
#       row count of observation_versions unchanged (the script stops otherwise);
#    with a CHECKPOINT before each timed load, and the server's peak RSS (VmHWM of the
#    serving process, reset at the start of each round through /proc/PID/clear_refs when
#    allowed). Reported: rows/s of each, the ratio import / \copy, the peak RSS.
# 5. Server-side failures: gRPC errors travel as HTTP 200, so client-side counts are not
#    enough: every `call finished` log line of every server with a code other than OK
#    is counted and printed; any makes the script fail (after the report).
# 6. Prints the machine (nproc, CPU model, memory, PostgreSQL version, date), the exact
#    commands, and the markdown tables with the issue's goals.
# 7. On exit (trap) stops the servers (SIGTERM), the throwaway cluster (pg_ctl stop) and
#    any private cluster a killed server left behind, and removes the temporary
#    directory /tmp/writesbench.XXXXXX unless BENCH_KEEP=1.
#
# Environment:
#   BENCH_ROUNDS            rounds of every measurement (default 3)
#   BENCH_SECONDS           measured seconds of every pgbench and writes run (default 10)
#   BENCH_WARMUP            warm-up seconds of every writes run (default 2)
#   BENCH_WRITERS           writer counts of the own-indicator runs (default "1 4 16 64")
#   BENCH_SHARED_WRITERS    writer counts of the --share-half runs (default "16 64")
#   BENCH_REPLICA_WRITERS   writer counts of the two-replica runs (default "16 64")
#   BENCH_IMPORT_ROWS       rows of the import CSV (default 300000; 100 months per indicator)
#   BENCH_ONLY              subset, words among: tcp private (set-ups), writes import
#                           (measurements); e.g. "tcp", "private import". Default: all
#   BENCH_PG_PORT           first TCP port to try for the throwaway cluster (default 55433)
#   BENCH_POOL_SIZE         servers' --pool-size (default: the server's own)
#   BENCH_PGBIN             PostgreSQL server binaries (default /usr/lib/postgresql/15/bin)
#   BENCH_SKIP_BUILD        1: use the existing binaries as they are
#   BENCH_KEEP              1: keep the temporary directory (logs, data, CSV, results.tsv)
# Needs: cargo, PostgreSQL 15 server binaries, psql, pgbench, python3 (for the report).
# Everything written is SYNTHETIC (indicators bench-w..., bench-imp-..., titles and
# sources starting with "SYNTHETIC").
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD

ROUNDS=${BENCH_ROUNDS:-3}
DUR=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-2}
WRITERS=${BENCH_WRITERS:-1 4 16 64}
SHARED_WRITERS=${BENCH_SHARED_WRITERS:-16 64}
REPLICA_WRITERS=${BENCH_REPLICA_WRITERS:-16 64}
IMPORT_ROWS=${BENCH_IMPORT_ROWS:-300000}
PG_PORT_FROM=${BENCH_PG_PORT:-55433}
POOL_SIZE=${BENCH_POOL_SIZE:-}
PGBIN=${BENCH_PGBIN:-/usr/lib/postgresql/15/bin}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BIN=$TARGET_DIR/release/tradewatch
CLIENT=$TARGET_DIR/release/examples/writes
MONTHS=100
GRPC_PORTS=(50281 50282)
METRICS_PORTS=(9581 9582)
CEILING_CLIENTS=16

# Servers get their database from this script only, with info logs (the `call finished`
# lines the failure check counts).
unset DATABASE_URL TRADEWATCH_DATA_DIR TRADEWATCH_LISTEN TRADEWATCH_SERVER TRADEWATCH_KEY \
    TRADEWATCH_METRICS_LISTEN TRADEWATCH_ANONYMOUS_READ TRADEWATCH_POOL_SIZE TRADEWATCH_NO_SEED
export TRADEWATCH_LOG=info TRADEWATCH_LOG_FORMAT=text

say() { printf '\n== %s\n' "$*"; }
die() {
    echo "bench/writes.sh: FATAL: $*" >&2
    exit 1
}
now() { date +%s.%N; }
# elapsed START END: seconds between two `now` readings.
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
is_int() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }
load1() { cut -d' ' -f1 /proc/loadavg; }
strip_ansi() { sed -e 's/\x1b\[[0-9;]*m//g' "$@"; }
# port_busy PORT: something listens on 127.0.0.1:PORT.
port_busy() { (: </dev/tcp/127.0.0.1/"$1") 2>/dev/null; }

for v in ROUNDS DUR WARMUP IMPORT_ROWS PG_PORT_FROM; do
    is_int "${!v}" || die "${v} must be a positive integer (got ${!v})"
done
for n in $WRITERS $SHARED_WRITERS $REPLICA_WRITERS; do
    is_int "$n" || die "writer counts must be positive integers (got $n)"
done
[[ -z $POOL_SIZE ]] || is_int "$POOL_SIZE" || die "BENCH_POOL_SIZE must be a positive integer"
((IMPORT_ROWS <= 100000000)) || die "BENCH_IMPORT_ROWS must be at most 100000000"

# BENCH_ONLY: which set-ups and which measurements.
SETUPS=()
PARTS=()
for w in ${BENCH_ONLY:-}; do
    case $w in
    tcp | private) SETUPS+=("$w") ;;
    writes | import) PARTS+=("$w") ;;
    *) die "BENCH_ONLY: unknown word '$w' (use tcp, private, writes, import)" ;;
    esac
done
((${#SETUPS[@]})) || SETUPS=(tcp private)
((${#PARTS[@]})) || PARTS=(writes import)
want_part() { [[ " ${PARTS[*]} " == *" $1 "* ]]; }

# ---------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------

say "Tools"
for t in initdb pg_ctl postgres; do
    [[ -x $PGBIN/$t ]] || die "$PGBIN/$t not found (apt-get install postgresql-15, or set BENCH_PGBIN)"
done
PSQL=$(command -v psql || echo "$PGBIN/psql")
PGBENCH=$(command -v pgbench || echo "$PGBIN/pgbench")
[[ -x $PSQL ]] || die "psql not found (apt-get install postgresql-client)"
[[ -x $PGBENCH ]] || die "pgbench not found (apt-get install postgresql-contrib or postgresql-15)"
command -v python3 >/dev/null || die "python3 not found (it prints the report)"
AS_ROOT=0
if [[ $(id -u) == 0 ]]; then
    AS_ROOT=1
    id postgres >/dev/null 2>&1 || die "running as root: a 'postgres' OS user must exist to run PostgreSQL"
fi
echo "$("$PGBIN/postgres" --version); $("$PSQL" --version); $("$PGBENCH" --version); $(python3 --version)"
echo "set-ups: ${SETUPS[*]}; measurements: ${PARTS[*]}; $ROUNDS round(s) of $DUR s (+ $WARMUP s warm-up)"

# ---------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------

if [[ ${BENCH_SKIP_BUILD:-0} == 1 ]]; then
    say "Build skipped (BENCH_SKIP_BUILD=1)"
else
    say "cargo build --release --bin tradewatch --example writes"
    cargo build --release --bin tradewatch --example writes
fi
[[ -x $BIN ]] || die "$BIN does not exist"
[[ -x $CLIENT ]] || die "$CLIENT does not exist"
echo "server $BIN ($(stat -c %y "$BIN" | cut -d. -f1)), client $CLIENT ($(stat -c %y "$CLIENT" | cut -d. -f1))"

# ---------------------------------------------------------------------------------------
# Temporary directory, processes, clean-up
# ---------------------------------------------------------------------------------------

WORK=$(mktemp -d /tmp/writesbench.XXXXXX)
# As root, PostgreSQL runs as `postgres`, who must be able to traverse WORK and read
# insert.sql.
chmod 755 "$WORK"
RUNS=$WORK/runs
mkdir -p "$RUNS"
RESULTS=$WORK/results.tsv
IMPORTS=$WORK/imports.tsv
FAILED_RUNS=$WORK/failed-runs.txt
: >"$FAILED_RUNS"
SERVER_PIDS=()
SERVER_URLS=()
SERVER_LOGS=()
ALL_SERVER_LOGS=()
TCP_PGDATA=""
PRIVATE_DATA=""

# stop_pid PID: SIGTERM, then SIGKILL after 30 s.
stop_pid() {
    local pid=$1
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "process $pid did not stop in 30 s: SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null || true
}

stop_servers() {
    local i
    # The second replica first: the first one owns the private cluster.
    for ((i = ${#SERVER_PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${SERVER_PIDS[$i]}"
    done
    SERVER_PIDS=()
    SERVER_URLS=()
    SERVER_LOGS=()
}

# as_pg CMD...: runs CMD as the `postgres` OS user when this script runs as root.
as_pg() {
    if ((AS_ROOT)); then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

stop_tcp_cluster() {
    [[ -n $TCP_PGDATA && -f $TCP_PGDATA/postmaster.pid ]] || return 0
    as_pg "$PGBIN/pg_ctl" -D "$TCP_PGDATA" -m fast -w -t 60 stop >/dev/null 2>&1 ||
        echo "pg_ctl stop of $TCP_PGDATA failed" >&2
}

# A private cluster whose server was killed: stop its postmaster by its pid.
stop_private_leftover() {
    local pidfile=$PRIVATE_DATA/pgdata/postmaster.pid pg_pid
    [[ -n $PRIVATE_DATA && -f $pidfile ]] || return 0
    pg_pid=$(head -n 1 "$pidfile")
    if [[ $pg_pid =~ ^[0-9]+$ ]] && kill -0 "$pg_pid" 2>/dev/null &&
        [[ $(cat "/proc/$pg_pid/comm" 2>/dev/null) == postgres ]]; then
        kill -INT "$pg_pid" 2>/dev/null
        for _ in $(seq 1 100); do
            kill -0 "$pg_pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
}

cleanup() {
    local rc=$?
    set +e
    stop_servers
    stop_private_leftover
    stop_tcp_cluster
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

# start_server N LOG [VAR=VALUE...]: starts replica N (0 or 1) with the environment given,
# waits until it serves, and appends it to SERVER_PIDS/URLS/LOGS.
start_server() {
    local n=$1 log=$2 grpc=${GRPC_PORTS[$1]} metrics=${METRICS_PORTS[$1]} pid args=()
    shift 2
    port_busy "$grpc" && die "port $grpc (gRPC of replica $((n + 1))) is in use"
    port_busy "$metrics" && die "port $metrics (metrics of replica $((n + 1))) is in use"
    [[ -n $POOL_SIZE ]] && args+=(--pool-size "$POOL_SIZE")
    env "$@" "$BIN" --listen "127.0.0.1:$grpc" --metrics-listen "127.0.0.1:$metrics" --no-seed \
        "${args[@]}" "${SERVER_FLAGS[@]}" >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 1 1200); do
        grep -q "tradewatch is serving gRPC" "$log" && break
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "server $log exited at start"; }
        sleep 0.1
    done
    grep -q "tradewatch is serving gRPC" "$log" || { cat "$log" >&2; die "server $log did not start in 120 s"; }
    SERVER_PIDS+=("$pid")
    SERVER_URLS+=("http://127.0.0.1:$grpc")
    SERVER_LOGS+=("$log")
    ALL_SERVER_LOGS+=("$log")
    echo "replica $((n + 1)): pid $pid, gRPC 127.0.0.1:$grpc, metrics http://127.0.0.1:$metrics/metrics, log $log"
}

check_servers_alive() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null || die "server pid $pid died (logs: ${SERVER_LOGS[*]}; BENCH_KEEP=1 keeps them)"
    done
}

# ---------------------------------------------------------------------------------------
# Database helpers (PSQL_CONN, PGBENCH_AS, SETUP are set per set-up)
# ---------------------------------------------------------------------------------------

psql_q() { PGOPTIONS="-c client_min_messages=warning" "$PSQL" -X -q -v ON_ERROR_STOP=1 "${PSQL_CONN[@]}" "$@"; }
psql_val() { psql_q -tA -c "$1"; }

# The observation store, emptied before every writes run and every import.
reset_store() {
    local tables=observation_versions
    [[ $(psql_val "SELECT to_regclass('observation_bulk') IS NOT NULL") == t ]] &&
        tables+=", observation_bulk"
    [[ $(psql_val "SELECT to_regclass('observation_commits') IS NOT NULL") == t ]] &&
        tables+=", observation_commits"
    psql_q -c "TRUNCATE $tables" -c "CHECKPOINT"
}

INSERT_SQL=$WORK/insert.sql
{
    echo '\set p random(1, 2000000000)'
    echo 'INSERT INTO bench_ceiling (indicator, period, value, status, comment, source) VALUES'
    for k in 0 1 2 3 4 5 6 7 8 9; do
        sep=,
        [[ $k == 9 ]] && sep=''
        echo "  ('pgbench-' || :client_id, :p || '-$k', $((1234 + k)).5, 'A', '', 'SYNTHETIC bench/writes.sh')$sep"
    done
    echo 'ON CONFLICT DO NOTHING;'
} >"$INSERT_SQL"
chmod 644 "$INSERT_SQL"

# ceiling LABEL: one pgbench ceiling run; sets CEIL_TPS.
ceiling() {
    local out=$RUNS/$1.pgbench.log
    psql_q -c "DROP TABLE IF EXISTS bench_ceiling" \
        -c "CREATE TABLE bench_ceiling (indicator text, period text, value numeric, status text, comment text, source text, PRIMARY KEY (indicator, period))" \
        -c "CHECKPOINT"
    if ! "${PGBENCH_AS[@]}" "$PGBENCH" -n -c "$CEILING_CLIENTS" -j 2 -T "$DUR" -f "$INSERT_SQL" "${PGBENCH_CONN[@]}" >"$out" 2>&1; then
        cat "$out" >&2
        die "$1: pgbench failed"
    fi
    CEIL_TPS=$(sed -nE 's/^tps = ([0-9.]+) \(without initial connection time\).*/\1/p' "$out" | tail -n 1)
    [[ -n $CEIL_TPS ]] || { cat "$out" >&2; die "$1: no tps in the pgbench output"; }
    local failed
    failed=$(sed -nE 's/^number of failed transactions: ([0-9]+).*/\1/p' "$out")
    [[ -z $failed || $failed == 0 ]] || die "$1: pgbench reports $failed failed transactions"
}

# cpu_ticks PID...: CPU time (user + system, in clock ticks) the processes have used.
cpu_ticks() {
    local pid total=0 f
    for pid in "$@"; do
        f=$(cut -d')' -f2 "/proc/$pid/stat" 2>/dev/null) || continue
        # Fields after the command: state is 3rd in stat, utime 14th and stime 15th.
        total=$((total + $(awk '{ print $12 + $13 }' <<<"$f")))
    done
    echo "$total"
}
# postgres_pids: the postmaster of the set-up's cluster and its children (backends,
# WAL writer, checkpointer ...).
postgres_pids() {
    local pidfile pm
    if [[ $SETUP == tcp ]]; then pidfile=$TCP_PGDATA/postmaster.pid; else pidfile=$PRIVATE_DATA/pgdata/postmaster.pid; fi
    pm=$(head -n 1 "$pidfile" 2>/dev/null) || return 0
    echo "$pm"
    # `ps -o pid=` pads the numbers to one width: without the spaces, or /proc/ PID fails.
    ps --ppid "$pm" -o pid= 2>/dev/null | tr -d ' ' || true
}
# cpu_by_pid PID...: "PID TICKS" per process still there (see cpu_ticks).
cpu_by_pid() {
    local pid f
    for pid in "$@"; do
        f=$(cut -d')' -f2 "/proc/$pid/stat" 2>/dev/null) || continue
        echo "$pid $(awk '{ print $12 + $13 }' <<<"$f")"
    done
}
# ticks_since BEFORE AFTER: CPU ticks between two cpu_by_pid outputs, over the processes
# of AFTER (a process that started in between counts from 0: a backend a new pooled
# connection started during the run).
ticks_since() {
    awk 'NR == FNR { before[$1] = $2; next } { total += $2 - ($1 in before ? before[$1] : 0) } END { print total + 0 }' \
        <(echo "$1") <(echo "$2")
}
CLK_TCK=$(getconf CLK_TCK)

# writes_run LABEL WRITERS SHARE(0|1) REPLICAS: one load-client run; sets W_* from its
# summary line, and W_SRV_MS / W_PG_MS: CPU milliseconds per call of the servers and of
# PostgreSQL over the run (warm-up included, at about the measured rate); W_GROUP: calls
# per committed transaction of the database (how many batches a grouped write carried,
# on average; the client's indicator set-up and the health checks count too).
writes_run() {
    local label=$1 n=$2 share=$3 replicas=$4 out=$RUNS/$1.writes.log args=() i rc=0
    local srv0 pg0 srv1 pg1 pgs t0 t1 x0 x1
    for ((i = 0; i < replicas; i++)); do args+=(--server "${SERVER_URLS[$i]}"); done
    ((share)) && args+=(--share-half)
    reset_store
    mapfile -t pgs < <(postgres_pids)
    srv0=$(cpu_ticks "${SERVER_PIDS[@]}")
    pg0=$(cpu_by_pid "${pgs[@]}")
    x0=$(psql_val "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
    t0=$(now)
    TRADEWATCH_KEY=$KEY "$CLIENT" "${args[@]}" --writers "$n" --rows 10 --duration "$DUR" \
        --warmup "$WARMUP" --setup --prefix bench-w >"$out" 2>&1 || rc=$?
    t1=$(now)
    srv1=$(cpu_ticks "${SERVER_PIDS[@]}")
    mapfile -t pgs < <(postgres_pids)
    pg1=$(ticks_since "$pg0" "$(cpu_by_pid "${pgs[@]}")")
    # Statistics reach pg_stat_database within 0.5 s of a commit (PGSTAT_MIN_INTERVAL).
    sleep 0.6
    x1=$(psql_val "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
    W_LOAD=$(load1)
    local line
    line=$(grep '^summary: ' "$out" | tail -n 1 || true)
    if [[ -z $line || $rc != 0 ]]; then
        echo "  $label: the client exited with status $rc; last lines of $out:" >&2
        tail -n 25 "$out" | sed 's/^/    | /' >&2
        echo "$label (client exit status $rc)" >>"$FAILED_RUNS"
    fi
    if [[ -z $line ]]; then
        W_CPS=nan W_P50=nan W_P99=nan W_MAX=nan W_CALLS=0 W_FAIL=nan W_SRV_MS=nan W_PG_MS=nan W_GROUP=nan
        return
    fi
    # shellcheck disable=SC2046
    read -r W_CPS W_P50 W_P99 W_MAX W_CALLS W_FAIL < <(awk '{
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        print v["calls_per_s"], v["p50_ms"], v["p99_ms"], v["max_ms"], v["calls"], v["failures"] }' <<<"$line")
    read -r W_SRV_MS W_PG_MS W_GROUP < <(awk -v s="$((srv1 - srv0))" -v p="$pg1" -v hz="$CLK_TCK" \
        -v x="$((x1 - x0))" -v cps="$W_CPS" -v wall="$(elapsed "$t0" "$t1")" 'BEGIN {
        calls = cps * wall; if (calls <= 0 || x <= 0) { print "nan nan nan"; exit }
        printf "%.3f %.3f %.2f\n", s * 1000 / hz / calls, p * 1000 / hz / calls, calls / x }')
}

printf 'setup\tconfig\twriters\tshare\treplicas\tround\tceiling_tps\tcalls_per_s\tp50_ms\tp99_ms\tmax_ms\tcalls\tfailures\tload1\tserver_cpu_ms\tpg_cpu_ms\tcalls_per_xact\n' >"$RESULTS"
printf 'setup\tround\trows\tcopy_s\tcopy_rps\timport_s\timport_rps\treimport_s\treimport_rps\tratio\treimport_inserted\treimport_revised\tversions\thwm_mb\tload1\n' >"$IMPORTS"

# writes_rounds: every configuration, BENCH_ROUNDS times, each beside a ceiling run.
writes_rounds() {
    local configs=() c round name n share replicas
    for n in $WRITERS; do configs+=("own-$n $n 0 1"); done
    for n in $SHARED_WRITERS; do configs+=("shared-$n $n 1 1"); done
    if ((${#SERVER_URLS[@]} >= 2)); then
        for n in $REPLICA_WRITERS; do configs+=("2rep-$n $n 0 2"); done
    fi
    for round in $(seq 1 "$ROUNDS"); do
        say "$SETUP: writes, round $round of $ROUNDS (${#configs[@]} configurations, each after a pgbench ceiling run)"
        for c in "${configs[@]}"; do
            read -r name n share replicas <<<"$c"
            check_servers_alive
            ceiling "$SETUP-$name-r$round"
            writes_run "$SETUP-$name-r$round" "$n" "$share" "$replicas"
            printf '  %-16s ceiling %8.1f tps | writes %8s calls/s  p50 %7s ms  p99 %8s ms  max %8s ms  failures %s  CPU/call: servers %s ms, PostgreSQL %s ms; calls/transaction %s  (load %s)\n' \
                "$name" "$CEIL_TPS" "$W_CPS" "$W_P50" "$W_P99" "$W_MAX" "$W_FAIL" "$W_SRV_MS" "$W_PG_MS" "$W_GROUP" "$W_LOAD"
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$SETUP" "$name" "$n" "$share" "$replicas" \
                "$round" "$CEIL_TPS" "$W_CPS" "$W_P50" "$W_P99" "$W_MAX" "$W_CALLS" "$W_FAIL" "$W_LOAD" "$W_SRV_MS" "$W_PG_MS" "$W_GROUP" >>"$RESULTS"
        done
    done
}

# ---------------------------------------------------------------------------------------
# Import
# ---------------------------------------------------------------------------------------

IMP_INDICATORS=$(((IMPORT_ROWS + MONTHS - 1) / MONTHS))
CSV=$WORK/import.csv
make_csv() {
    [[ -f $CSV ]] && return 0
    local t0
    t0=$(now)
    awk -v n="$IMPORT_ROWS" -v months="$MONTHS" 'BEGIN {
        print "indicator,period,value,status,comment,source"
        for (r = 0; r < n; r++) {
            i = int(r / months); m = r % months
            v = (1000 + (i * 7919) % 9991) * (1 + 0.004 * m) * (1 + 0.01 * ((i * 31 + m * 17) % 21 - 10))
            printf "bench-imp-%03d,%d-M%02d,%.2f,A,,SYNTHETIC bench/writes.sh\n", i, 2015 + int(m / 12), m % 12 + 1, v
        }
    }' >"$CSV"
    chmod 644 "$CSV"
    echo "SYNTHETIC CSV $CSV: $IMPORT_ROWS rows ($IMP_INDICATORS indicators bench-imp-000.. x up to $MONTHS months from 2015-M01), $(du -m "$CSV" | cut -f1) MB, in $(elapsed "$t0" "$(now)") s"
    head -n 3 "$CSV" | sed 's/^/  | /'
}

status_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$2/status"; }
CLEAR_REFS=1

# import_cli LABEL: `tradewatch import` of the CSV through replica 1; sets WALL, INS, REV, UNCH.
import_cli() {
    local out=$RUNS/$1.log t0 t1 summary
    t0=$(now)
    if ! "$BIN" import --server "${SERVER_URLS[0]}" --key "$KEY" "$CSV" >"$out" 2>&1; then
        cat "$out" >&2
        die "$1: tradewatch import failed"
    fi
    t1=$(now)
    WALL=$(elapsed "$t0" "$t1")
    summary=$(grep -E '^imported [0-9]+ rows:' "$out" | tail -n 1 || true)
    [[ -n $summary ]] || { cat "$out" >&2; die "$1: no 'imported N rows: ...' line from tradewatch import"; }
    read -r INS REV UNCH < <(sed -E 's/.*: ([0-9]+) inserted, ([0-9]+) revised, ([0-9]+) unchanged.*/\1 \2 \3/' <<<"$summary")
    echo "  $1: $summary (wall $WALL s)"
}

import_rounds() {
    local round t0 t1 copy_s n versions versions_after hwm pid=${SERVER_PIDS[0]}
    say "$SETUP: import, $IMPORT_ROWS SYNTHETIC rows"
    make_csv
    TRADEWATCH_KEY=$KEY "$CLIENT" --server "${SERVER_URLS[0]}" --setup --duration 0 \
        --writers "$IMP_INDICATORS" --prefix bench-imp- >"$RUNS/$SETUP-import-indicators.log" 2>&1 ||
        { cat "$RUNS/$SETUP-import-indicators.log" >&2; die "creating the import's indicators failed"; }
    sed 's/^/  /' "$RUNS/$SETUP-import-indicators.log"
    for round in $(seq 1 "$ROUNDS"); do
        say "$SETUP: import, round $round of $ROUNDS"
        check_servers_alive
        # (a) psql \copy into a fresh keyed table.
        psql_q -c "DROP TABLE IF EXISTS bench_copy" \
            -c "CREATE TABLE bench_copy (indicator text, period text, value numeric, status text, comment text, source text, PRIMARY KEY (indicator, period))" \
            -c "CHECKPOINT"
        t0=$(now)
        psql_q -c "\\copy bench_copy (indicator, period, value, status, comment, source) FROM '$CSV' WITH (FORMAT csv, HEADER true, FORCE_NOT_NULL (comment, source))"
        t1=$(now)
        copy_s=$(elapsed "$t0" "$t1")
        n=$(psql_val "SELECT count(*) FROM bench_copy")
        [[ $n == "$IMPORT_ROWS" ]] || die "bench_copy has $n rows, expected $IMPORT_ROWS"
        echo "  psql \\copy into the keyed table: $IMPORT_ROWS rows in $copy_s s"
        psql_q -c "DROP TABLE bench_copy"

        # (b) the import into an emptied store; peak RSS from here.
        reset_store
        if ((CLEAR_REFS)) && ! { echo 5 >"/proc/$pid/clear_refs"; } 2>/dev/null; then
            CLEAR_REFS=0
            echo "  note: cannot reset VmHWM (/proc/$pid/clear_refs); it is the process-lifetime peak"
        fi
        import_cli "$SETUP-import-r$round"
        local import_s=$WALL
        [[ $INS == "$IMPORT_ROWS" && $REV == 0 && $UNCH == 0 ]] ||
            die "import: expected $IMPORT_ROWS inserted, 0 revised, 0 unchanged; got $INS, $REV, $UNCH"
        versions=$(psql_val "SELECT count(*) FROM observation_versions")
        [[ $versions == "$IMPORT_ROWS" ]] || die "observation_versions has $versions rows after the import, expected $IMPORT_ROWS"

        # (c) untimed: what autovacuum would have done before a real re-import.
        psql_q -c "VACUUM ANALYZE observation_versions" -c "CHECKPOINT"

        # (d) the identical re-import writes nothing.
        import_cli "$SETUP-reimport-r$round"
        local reimport_s=$WALL
        versions_after=$(psql_val "SELECT count(*) FROM observation_versions")
        [[ $INS == 0 && $REV == 0 ]] ||
            die "re-import: expected 0 inserted, 0 revised; got $INS inserted, $REV revised, $UNCH unchanged"
        [[ $versions_after == "$versions" ]] ||
            die "re-import changed observation_versions: $versions -> $versions_after rows"
        hwm=$(status_kb VmHWM "$pid")
        echo "  re-import wrote nothing: observation_versions $versions -> $versions_after rows; server VmHWM $((hwm / 1024)) MB"
        awk -v s="$SETUP" -v r="$round" -v rows="$IMPORT_ROWS" -v c="$copy_s" -v i="$import_s" -v ri="$reimport_s" \
            -v ins="$INS" -v rev="$REV" -v v="$versions_after" -v h="$hwm" -v l="$(load1)" 'BEGIN {
            printf "%s\t%d\t%d\t%.3f\t%.0f\t%.3f\t%.0f\t%.3f\t%.0f\t%.3f\t%d\t%d\t%d\t%.1f\t%s\n",
                s, r, rows, c, rows / c, i, rows / i, ri, rows / ri, (rows / i) / (rows / c), ins, rev, v, h / 1024, l }' >>"$IMPORTS"
    done
}

# ---------------------------------------------------------------------------------------
# Set-ups
# ---------------------------------------------------------------------------------------

PG_INFO=()

setup_tcp() {
    SETUP=tcp
    say "tcp: throwaway PostgreSQL cluster on 127.0.0.1"
    local port=$PG_PORT_FROM dir=$WORK/tcp-pg
    while port_busy "$port"; do
        port=$((port + 1))
        ((port < PG_PORT_FROM + 100)) || die "no free port in $PG_PORT_FROM..$((PG_PORT_FROM + 99))"
    done
    mkdir -p "$dir/sock"
    ((AS_ROOT)) && chown -R postgres: "$dir"
    TCP_PGDATA=$dir/data
    as_pg "$PGBIN/initdb" -D "$TCP_PGDATA" -U postgres -A trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    as_pg tee -a "$TCP_PGDATA/postgresql.conf" >/dev/null <<CONF

# bench/writes.sh
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir/sock'
fsync = on
synchronous_commit = on
full_page_writes = on
shared_buffers = 128MB
max_connections = 200
CONF
    as_pg "$PGBIN/pg_ctl" -D "$TCP_PGDATA" -l "$dir/postgres.log" -w -t 60 start >/dev/null ||
        { cat "$dir/postgres.log" >&2; die "pg_ctl start failed"; }
    PSQL_CONN=(-h 127.0.0.1 -p "$port" -U postgres -d postgres)
    psql_q -c "CREATE DATABASE bench"
    PSQL_CONN=(-h 127.0.0.1 -p "$port" -U postgres -d bench)
    PGBENCH_CONN=(-h 127.0.0.1 -p "$port" -U postgres bench)
    PGBENCH_AS=()
    local url=postgres://postgres@127.0.0.1:$port/bench
    echo "cluster $TCP_PGDATA on 127.0.0.1:$port; DATABASE_URL=$url"
    SERVER_FLAGS=(--anonymous-read=false)
    start_server 0 "$WORK/tcp-server1.log" DATABASE_URL="$url"
    KEY=$(DATABASE_URL=$url "$BIN" keys create --role admin --name "bench/writes.sh" 2>"$RUNS/tcp-keys.log") ||
        { cat "$RUNS/tcp-keys.log" >&2; die "tradewatch keys create failed"; }
    [[ $KEY == tw_* ]] || die "tradewatch keys create printed no secret"
    echo "admin key ${KEY:0:16}... (tradewatch keys create --role admin)"
    start_server 1 "$WORK/tcp-server2.log" DATABASE_URL="$url"
    pg_info
}

setup_private() {
    SETUP=private
    say "private: tradewatch's own PostgreSQL cluster (DATABASE_URL unset)"
    PRIVATE_DATA=$WORK/private
    SERVER_FLAGS=()
    start_server 0 "$WORK/private-server1.log" TRADEWATCH_DATA_DIR="$PRIVATE_DATA"
    local log=$WORK/private-server1.log sock enc
    sock=$(strip_ansi "$log" | grep 'using the private PostgreSQL cluster' | grep -o 'socket=[^ ]*' | head -n 1 | cut -d= -f2 || true)
    [[ -n $sock && -S $sock/.s.PGSQL.5432 ]] || sock=$PRIVATE_DATA/run
    [[ -S $sock/.s.PGSQL.5432 ]] || die "no PostgreSQL socket in $sock"
    KEY=$(grep -oE 'TRADEWATCH_KEY=tw_[A-Za-z0-9_-]+' "$log" | head -n 1 | cut -d= -f2 || true)
    [[ -n $KEY ]] || die "no admin key (TRADEWATCH_KEY=...) in $log"
    echo "socket $sock; admin key ${KEY:0:16}... (from the log)"
    PSQL_CONN=(-h "$sock" -p 5432 -U tradewatch -d tradewatch)
    PGBENCH_CONN=(-h "$sock" -p 5432 -U tradewatch tradewatch)
    local owner
    owner=$(stat -c %U "$sock")
    PGBENCH_AS=()
    if ((AS_ROOT)) && [[ $owner != root ]]; then PGBENCH_AS=(runuser -u "$owner" --); fi
    enc=$(sed 's|/|%2F|g' <<<"$sock")
    start_server 1 "$WORK/private-server2.log" \
        DATABASE_URL="postgres://tradewatch@localhost/tradewatch?host=$enc&port=5432"
    pg_info
}

pg_info() {
    local i
    i="$SETUP: PostgreSQL $(psql_val 'SHOW server_version'), fsync=$(psql_val 'SHOW fsync'), synchronous_commit=$(psql_val 'SHOW synchronous_commit'), shared_buffers=$(psql_val 'SHOW shared_buffers'), max_connections=$(psql_val 'SHOW max_connections')"
    echo "$i"
    PG_INFO+=("$i")
}

STARTED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
for SETUP in "${SETUPS[@]}"; do
    "setup_$SETUP"
    want_part writes && writes_rounds
    want_part import && import_rounds
    say "$SETUP: stopping the servers"
    stop_servers
    [[ $SETUP == tcp ]] && stop_tcp_cluster
done
FINISHED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# ---------------------------------------------------------------------------------------
# Server-side failures
# ---------------------------------------------------------------------------------------

say "Server-side call outcomes (\`call finished\` log lines)"
SERVER_FAILURES=0
for log in "${ALL_SERVER_LOGS[@]}"; do
    total=$(strip_ansi "$log" | grep -c 'call finished' || true)
    bad=$(strip_ansi "$log" | grep 'call finished' | grep -vc 'code="OK"' || true)
    echo "  $(basename "$log"): $total calls, $bad with a code other than OK"
    if ((bad > 0)); then
        strip_ansi "$log" | grep 'call finished' | grep -v 'code="OK"' |
            sed -nE 's/.*method=([^ ]*).* code="?([A-Z_]+)"?.*/\1 \2/p' | sort | uniq -c | sed 's/^/    /'
        strip_ansi "$log" | grep 'call finished' | grep -v 'code="OK"' | head -n 3 | sed 's/^/    e.g. /'
    fi
    SERVER_FAILURES=$((SERVER_FAILURES + bad))
done

# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------

say "Machine and commands"
echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, $(uname -sr), $("$PGBIN/postgres" --version), $(rustc --version 2>/dev/null || echo 'rustc ?')"
echo "run: $STARTED_AT .. $FINISHED_AT; code: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?') ($(git -C "$REPO" status --porcelain -- src migrations 2>/dev/null | wc -l) changed files under src/ and migrations/ in the working tree); server binary built $(stat -c %y "$BIN" | cut -d. -f1)"
for i in "${PG_INFO[@]}"; do echo "$i"; done
cat <<CMDS
commands (BENCH_ROUNDS=$ROUNDS BENCH_SECONDS=$DUR BENCH_WARMUP=$WARMUP):
  ceiling:  pgbench -n -c $CEILING_CLIENTS -j 2 -T $DUR -f insert.sql   (fresh bench_ceiling; insert.sql below)
  writes:   target/release/examples/writes --server http://127.0.0.1:50281 [--server http://127.0.0.1:50282] --key KEY --writers N --rows 10 --duration $DUR --warmup $WARMUP --setup --prefix bench-w [--share-half]
  copy:     psql -c "\\copy bench_copy (indicator, period, value, status, comment, source) FROM 'import.csv' WITH (FORMAT csv, HEADER true, FORCE_NOT_NULL (comment, source))"
  import:   target/release/tradewatch import --server http://127.0.0.1:50281 --key KEY import.csv   (twice: import, identical re-import)
  servers:  tradewatch --listen 127.0.0.1:5028{1,2} --metrics-listen 127.0.0.1:958{1,2} --no-seed [--anonymous-read=false]  (tcp: DATABASE_URL=postgres://postgres@127.0.0.1:PORT/bench; private: TRADEWATCH_DATA_DIR=DIR, replica 2 on its socket)
insert.sql:
CMDS
sed 's/^/  | /' "$INSERT_SQL"

say "Results"
python3 - "$RESULTS" "$IMPORTS" "$SERVER_FAILURES" "$FAILED_RUNS" <<'PYTHON'
import math
import statistics
import sys

results, imports, server_failures, failed_runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]


def read(path):
    with open(path) as f:
        header = f.readline().rstrip("\n").split("\t")
        return [dict(zip(header, l.rstrip("\n").split("\t"))) for l in f if l.strip()]


def num(x):
    try:
        return float(x)
    except ValueError:
        return math.nan


def med(xs):
    xs = [x for x in xs if not math.isnan(x)]
    return statistics.median(xs) if xs else math.nan


def f(x, fmt="{:,.1f}"):
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def table(head, rows, left=2):
    """A markdown table; the first `left` columns are text (left-aligned), the others figures."""
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |")
    print("|" + "|".join(("-" * (w + 1) + ":") if i >= left else ("-" * (w + 2)) for i, w in enumerate(widths)) + "|")
    for r in rows:
        print("| " + " | ".join(str(c).rjust(w) if i >= left else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths))) + " |")


runs = read(results)
imps = read(imports)
goals = []
# Medians per (set-up, configuration), in the order of the runs.
order, groups = [], {}
for r in runs:
    k = (r["setup"], r["config"])
    if k not in groups:
        order.append(k)
        groups[k] = []
    groups[k].append(r)
M = {}
rows = []
for k in order:
    g = groups[k]
    cps = med([num(r["calls_per_s"]) for r in g])
    ceil = med([num(r["ceiling_tps"]) for r in g])
    m = {
        "cps": cps,
        "p50": med([num(r["p50_ms"]) for r in g]),
        "p99": med([num(r["p99_ms"]) for r in g]),
        "ceil": ceil,
        "ratio": cps / ceil if ceil and not math.isnan(ceil) else math.nan,
        "fail": sum(int(num(r["failures"])) if not math.isnan(num(r["failures"])) else 1 for r in g),
        "srv": med([num(r.get("server_cpu_ms", "nan")) for r in g]),
        "pg": med([num(r.get("pg_cpu_ms", "nan")) for r in g]),
        "grp": med([num(r.get("calls_per_xact", "nan")) for r in g]),
    }
    M[k] = m
    r0 = g[0]
    rows.append([k[0], k[1], r0["writers"], "yes" if r0["share"] == "1" else "no", r0["replicas"], len(g),
                 f(m["cps"]), f(m["p50"], "{:.2f}"), f(m["p99"], "{:.2f}"), f(m["ceil"]), f(m["ratio"], "{:.3f}"),
                 f(m["srv"], "{:.3f}"), f(m["pg"], "{:.3f}"), f(m["grp"], "{:.2f}"), m["fail"]])
if rows:
    print("Writes: BatchCreateObservations of 10 new rows per call; medians over the rounds; ceiling = pgbench "
          "10-row INSERT ... ON CONFLICT DO NOTHING, 16 clients, measured just before each run")
    print()
    table(["set-up", "configuration", "writers", "shared", "replicas", "rounds", "calls/s", "p50 ms", "p99 ms",
           "ceiling tps", "ratio calls/s ÷ ceiling", "server CPU ms/call", "PostgreSQL CPU ms/call", "calls/transaction", "failed calls"],
          rows)
    print()
    drows = []
    for s in dict.fromkeys(k[0] for k in order):
        def ratio(a, b):
            if (s, a) in M and (s, b) in M and M[(s, b)]["cps"]:
                return M[(s, a)]["cps"] / M[(s, b)]["cps"]
            return math.nan
        for what, a, b in [("16 writers ÷ 1 writer", "own-16", "own-1"),
                           ("two replicas ÷ one replica, 16 writers", "2rep-16", "own-16"),
                           ("two replicas ÷ one replica, 64 writers", "2rep-64", "own-64"),
                           ("shared ÷ own indicators, 16 writers", "shared-16", "own-16"),
                           ("shared ÷ own indicators, 64 writers", "shared-64", "own-64")]:
            if (s, a) in M and (s, b) in M:
                drows.append([s, what, f(ratio(a, b), "{:.2f}")])
        # The same ratios with each side taken against the ceiling measured next to it: the
        # machine's speed drifts between runs (the ceiling's spread says by how much).
        for what, a, b in [("two replicas ÷ one replica, 16 writers, each ÷ its ceiling", "2rep-16", "own-16"),
                           ("two replicas ÷ one replica, 64 writers, each ÷ its ceiling", "2rep-64", "own-64")]:
            if (s, a) in M and (s, b) in M and M[(s, b)]["ratio"]:
                drows.append([s, what, f(M[(s, a)]["ratio"] / M[(s, b)]["ratio"], "{:.2f}")])
        r16 = ratio("own-16", "own-1")
        if not math.isnan(r16):
            goals.append((f"{s}: 16 writers get at least 4x one writer's rate", f"{r16:.2f}x", r16 >= 4))
        for n in ("16", "64"):
            rr = ratio(f"2rep-{n}", f"own-{n}")
            if not math.isnan(rr):
                goals.append((f"{s}: two replicas not slower than one ({n} writers)", f"{rr:.2f}x", rr >= 1.0))
    if drows:
        table(["set-up", "ratio of median calls/s", "value"], drows)
        print()
    if ("tcp", "own-16") in M:
        r = M[("tcp", "own-16")]["ratio"]
        goals.insert(0, ("16 writers over TCP reach at least 0.25x the pgbench ceiling", f(r, "{:.3f}x"),
                         not math.isnan(r) and r >= 0.25))
    if ("tcp", "own-1") in M:
        p = M[("tcp", "own-1")]["p50"]
        goals.append(("one writer's p50 at most 3 ms over TCP", f(p, "{:.2f} ms"), not math.isnan(p) and p <= 3))

if imps:
    irows = []
    for s in dict.fromkeys(r["setup"] for r in imps):
        g = [r for r in imps if r["setup"] == s]
        copy, imp, reimp = (med([num(r[c]) for r in g]) for c in ("copy_rps", "import_rps", "reimport_rps"))
        ratio = med([num(r["ratio"]) for r in g])
        hwm = max(num(r["hwm_mb"]) for r in g)
        wrote = sum(int(r["reimport_inserted"]) + int(r["reimport_revised"]) for r in g)
        irows.append([s, g[0]["rows"], len(g), f(copy, "{:,.0f}"), f(imp, "{:,.0f}"), f(ratio, "{:.3f}"),
                      f(reimp, "{:,.0f}"), f"{wrote} ({g[-1]['versions']} versions before and after)", f(hwm)])
        goals.append((f"{s}: import reaches at least 0.5x \\copy into the keyed table", f"{ratio:.3f}x", ratio >= 0.5))
        goals.append((f"{s}: peak server RSS under 200 MB", f"{hwm:.1f} MB", hwm < 200))
        goals.append((f"{s}: identical re-import writes nothing", f"{wrote} rows written", wrote == 0))
    print("Import: tradewatch import vs psql \\copy into a keyed table (PRIMARY KEY (indicator, period)); "
          "medians over the rounds; peak RSS = highest VmHWM of the server")
    print()
    table(["set-up", "rows", "rounds", "\\copy rows/s", "import rows/s", "ratio import ÷ \\copy", "re-import rows/s",
           "re-import inserted + revised", "peak server RSS MB"], irows, left=1)
    print()

if goals:
    print("Goals of the issue")
    print()
    table(["goal", "value", "status"], [[g, v, "MET" if ok else "NOT MET"] for g, v, ok in goals], left=1)
    print()
with open(failed_runs) as fr:
    failed = [l.strip() for l in fr if l.strip()]
total_client = sum(M[k]["fail"] for k in M) if runs else 0
print(f"failed calls: client side {total_client} (after warm-up) in {len(failed)} failed client run(s); "
      f"server side {server_failures} `call finished` lines with a code other than OK")
for l in failed:
    print(f"  failed run: {l}")
PYTHON

if ((SERVER_FAILURES > 0)) || [[ -s $FAILED_RUNS ]]; then
    die "some calls failed (server side: $SERVER_FAILURES; failed client runs: $(wc -l <"$FAILED_RUNS")); BENCH_KEEP=1 keeps the logs"
fi
echo "all data above is SYNTHETIC (indicators bench-w..., bench-imp-...; sources 'SYNTHETIC ...')"
