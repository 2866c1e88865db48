#!/usr/bin/env bash
# Soak test: minutes of mixed reads and writes at 32 concurrent calls, with zero failed
# calls and no growth of the server's memory after warm-up.
#
# One command runs everything:
#
#   bash bench/soak.sh                       # 300 s at 32 concurrent calls
#   SOAK_DURATION=60 bash bench/soak.sh      # a short run
#
# 1. builds target/release/tradewatch and the load client, examples/soak.rs
#    (`cargo build --release --bin tradewatch --example soak`);
# 2. starts the server on a fresh temporary data dir (its own private PostgreSQL on a unix
#    socket, durable settings, the Chongqing seed loaded), gRPC and metrics on free ports
#    (`--listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0`, read back from its log), and
#    takes the admin key it prints at first start (TRADEWATCH_KEY=tw_...);
# 3. loads SYNTHETIC data through the client's --setup (untimed): 12 monthly indicators
#    soak-01..soak-12 with 2,880 observations (ImportObservations), a programme
#    soak-programme of 9 initiatives and 4 targets;
# 4. scrapes /metrics, then runs the client for SOAK_DURATION s at SOAK_CONCURRENCY
#    workers over SOAK_CONNECTIONS HTTP/2 connections (mix: see examples/soak.rs), while
#    sampling the server's VmRSS and VmHWM (/proc/PID/status) every SOAK_INTERVAL s
#    into rss.csv (the server process only; PostgreSQL runs in processes of its own),
#    with the calls in flight and the database pool's connections in use (/metrics);
# 5. scrapes /metrics again and checks, failing the run on any miss:
#    - the client counted no failed call (it exits non-zero otherwise);
#    - server side, tradewatch_grpc_calls_total has no code other than OK, and its
#      increase over the run equals the client's call count (every call was counted
#      once, on both sides);
#    - tradewatch_grpc_calls_in_flight is back to 0;
#    - the server log has no `call finished` line with a code other than OK, and no
#      WARN or ERROR line;
#    - memory: VmRSS at the end minus VmRSS at the end of the warm-up (SOAK_WARMUP s)
#      is at most SOAK_RSS_GROWTH_LIMIT_MB (default 4 MiB). Why 4 MiB: the server runs
#      at about 16-20 MiB under this load, and what varies without a leak (allocator
#      arenas, tokio's, hyper's and sqlx's buffers, the pool's prepared statements)
#      reaches its working size within the warm-up; after it, VmRSS moved by less than
#      1 MiB in the runs recorded in BENCHMARKS.md. A relative limit (10 % = 1.8 MiB)
#      would sit too close to that noise. A leak shows as growth proportional to the
#      calls: 4 MiB over the roughly 80,000 calls after a 300 s run's warm-up is about
#      50 bytes per call, so any per-call leak of an allocation (a String, a map entry,
#      a task) fails the check; the script prints the exact bound for the run;
# 6. stops the server with SIGTERM, checks that it exits with status 0, and prints
#    calls/s and latency percentiles (from the client) and the RSS series.
#
# No timing is asserted: the machine may be busy; only failures and memory are.
#
# Environment:
#   SOAK_DURATION              seconds of load (default 300)
#   SOAK_CONCURRENCY           concurrent workers (default 32)
#   SOAK_CONNECTIONS           HTTP/2 connections they share (default 4)
#   SOAK_SEED                  seed of the client's random choices (default 1)
#   SOAK_WARMUP                warm-up seconds (default 60; a third of SOAK_DURATION when
#                              that is shorter than 3 x 60 s)
#   SOAK_INTERVAL              RSS sampling interval in seconds (default 10)
#   SOAK_RSS_GROWTH_LIMIT_MB   allowed VmRSS growth after warm-up, MiB (default 4)
#   SOAK_POOL_SIZE             server --pool-size (default: the server's, 10)
#   SOAK_OUT                   directory for rss.csv, client.txt, metrics and the summary
#                              (default target/bench-soak/soak-UTCTIME)
#   SOAK_SKIP_BUILD            1: use the existing binaries as they are
#   SOAK_KEEP                  1: keep the temporary directory (data, full server log)
# Needs: cargo, the PostgreSQL server binaries, curl; psql for the row counts (optional).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD

DURATION=${SOAK_DURATION:-300}
CONCURRENCY=${SOAK_CONCURRENCY:-32}
CONNECTIONS=${SOAK_CONNECTIONS:-4}
SEED=${SOAK_SEED:-1}
INTERVAL=${SOAK_INTERVAL:-10}
RSS_LIMIT_MB=${SOAK_RSS_GROWTH_LIMIT_MB:-4}
POOL_SIZE=${SOAK_POOL_SIZE:-}
BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/tradewatch
CLIENT=${CARGO_TARGET_DIR:-$REPO/target}/release/examples/soak
STARTED_UTC=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${SOAK_OUT:-$REPO/target/bench-soak/soak-$STARTED_UTC}

unset DATABASE_URL TRADEWATCH_DATA_DIR TRADEWATCH_LISTEN TRADEWATCH_SERVER TRADEWATCH_KEY \
    TRADEWATCH_POOL_SIZE TRADEWATCH_METRICS_LISTEN TRADEWATCH_ANONYMOUS_READ
export TRADEWATCH_LOG=info TRADEWATCH_LOG_FORMAT=text

say() { printf '\n== %s\n' "$*"; }
die() {
    echo "bench/soak.sh: FATAL: $*" >&2
    exit 1
}
is_int() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }
for v in DURATION CONCURRENCY CONNECTIONS INTERVAL RSS_LIMIT_MB; do
    is_int "${!v}" || die "$v must be a positive integer (got ${!v})"
done
[[ $SEED =~ ^[0-9]+$ ]] || die "SOAK_SEED must be a non-negative integer"
[[ -z $POOL_SIZE ]] || is_int "$POOL_SIZE" || die "SOAK_POOL_SIZE must be a positive integer"
if [[ -n ${SOAK_WARMUP:-} ]]; then
    WARMUP=$SOAK_WARMUP
    is_int "$WARMUP" || die "SOAK_WARMUP must be a positive integer"
elif ((DURATION >= 180)); then
    WARMUP=60
else
    WARMUP=$((DURATION / 3 > 0 ? DURATION / 3 : 1))
fi
((WARMUP < DURATION)) || die "SOAK_WARMUP ($WARMUP) must be shorter than SOAK_DURATION ($DURATION)"
command -v curl >/dev/null || die "curl not found"
PSQL=$(command -v psql || true)

# ---------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------

if [[ ${SOAK_SKIP_BUILD:-0} == 1 ]]; then
    say "Build skipped (SOAK_SKIP_BUILD=1)"
else
    say "cargo build --release --bin tradewatch --example soak"
    cargo build --release --bin tradewatch --example soak
fi
[[ -x $BIN ]] || die "$BIN does not exist"
[[ -x $CLIENT ]] || die "$CLIENT does not exist"

# ---------------------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------------------

mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/tradewatch-soak.XXXXXX)
# As root, PostgreSQL runs as an unprivileged user, who must be able to traverse WORK.
chmod 755 "$WORK"
DATA=$WORK/data
LOG=$WORK/server.log
RSS_CSV=$OUT/rss.csv
SERVER_PID=""
SAMPLER_PID=""

stop_postgres() {
    local pidfile=$DATA/pgdata/postmaster.pid pg_pid
    [[ -f $pidfile ]] || return 0
    pg_pid=$(head -n 1 "$pidfile")
    if [[ $pg_pid =~ ^[0-9]+$ ]] && kill -0 "$pg_pid" 2>/dev/null; then
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
    if [[ -n $SAMPLER_PID ]]; then
        kill "$SAMPLER_PID" 2>/dev/null
        wait "$SAMPLER_PID" 2>/dev/null
    fi
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null
        for _ in $(seq 1 300); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$SERVER_PID" 2>/dev/null && kill -KILL "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    stop_postgres
    if [[ ${SOAK_KEEP:-0} == 1 ]]; then
        echo "kept $WORK (SOAK_KEEP=1)"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

server_args=(--data-dir "$DATA" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0)
[[ -n $POOL_SIZE ]] && server_args+=(--pool-size "$POOL_SIZE")
say "Server: $BIN ${server_args[*]} (TRADEWATCH_LOG=$TRADEWATCH_LOG)"
"$BIN" "${server_args[@]}" >"$LOG" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 1200); do
    grep -q "tradewatch is serving gRPC" "$LOG" && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$LOG" >&2; die "the server exited"; }
    sleep 0.1
done
grep -q "tradewatch is serving gRPC" "$LOG" || { cat "$LOG" >&2; die "the server did not start in 120 s"; }
ADDR=$(sed -nE 's/^tradewatch is serving gRPC \([a-zA-Z]+\) on ([0-9.:]+)$/\1/p' "$LOG" | head -n 1)
METRICS=$(grep -oE 'serving Prometheus metrics on http://[0-9.:]+/metrics' "$LOG" | head -n 1 | sed -E 's/.* on //')
KEY=$(grep -oE 'TRADEWATCH_KEY=tw_[A-Za-z0-9_-]+' "$LOG" | head -n 1 | cut -d= -f2)
[[ -n $ADDR ]] || die "cannot read the gRPC address from the server log"
[[ -n $METRICS ]] || die "cannot read the metrics address from the server log"
[[ -n $KEY ]] || die "no admin key (TRADEWATCH_KEY=...) in the server log"
SOCK=$DATA/run
echo "server pid $SERVER_PID; gRPC $ADDR; metrics $METRICS; admin key ${KEY:0:16}... (from the log)"
psql_val() { [[ -n $PSQL ]] && PGOPTIONS="-c client_min_messages=warning" "$PSQL" -X -q -tA -h "$SOCK" -p 5432 -U tradewatch -d tradewatch -c "$1" 2>/dev/null || echo "?"; }
PG_VERSION=$(psql_val "SHOW server_version")

scrape() { curl -fsS --max-time 10 "$METRICS" >"$1" || die "cannot scrape $METRICS"; }
# calls_by_code FILE: "CODE COUNT" lines, summed over services and methods.
calls_by_code() {
    awk '/^tradewatch_grpc_calls_total\{/ {
            match($0, /code="[^"]*"/); code = substr($0, RSTART + 6, RLENGTH - 7)
            n[code] += $NF
        }
        END { for (c in n) printf "%s %d\n", c, n[c] }' "$1" | sort
}
status_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$SERVER_PID/status"; }

# ---------------------------------------------------------------------------------------
# Setup, then the soak
# ---------------------------------------------------------------------------------------

say "SYNTHETIC data (soak --setup, untimed)"
"$CLIENT" --server "http://$ADDR" --key "$KEY" --setup --duration 0 || die "the client's setup failed"

scrape "$OUT/metrics-before.txt"
RSS_BEFORE_KB=$(status_kb VmRSS)
echo "server VmRSS after setup: $((RSS_BEFORE_KB / 1024)) MiB"

say "Soak: $DURATION s, $CONCURRENCY workers over $CONNECTIONS connections, seed $SEED; VmRSS every $INTERVAL s; warm-up $WARMUP s"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
T0=$(date +%s.%N)
echo "elapsed_s,vmrss_kib,vmhwm_kib,threads,calls_in_flight,pool_in_use,pool_saturated" >"$RSS_CSV"
# One row of rss.csv: memory from /proc, and from /metrics the calls in flight and the
# database pool (connections in use; 1 when every one is, so further calls wait).
sample() {
    local m
    m=$(curl -fsS --max-time 5 "$METRICS" 2>/dev/null | awk '
        /^tradewatch_grpc_calls_in_flight\{/ { f += $NF }
        /^tradewatch_db_pool_connections\{state="in_use"\}/ { u = $NF }
        /^tradewatch_db_pool_saturated / { s = $NF }
        END { printf "%d,%d,%d", f, u, s }') || m=",,"
    awk -v t="$1" -v m="$m" '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } /^Threads:/ { n = $2 }
        END { if (r != "") printf "%d,%d,%d,%d,%s\n", t, r, h, n, m }' "/proc/$SERVER_PID/status"
}
(
    k=0
    while kill -0 "$SERVER_PID" 2>/dev/null; do
        sample $((k * INTERVAL))
        k=$((k + 1))
        # Sleep until the next multiple of INTERVAL since T0 (no drift).
        sleep "$(awk -v t0="$T0" -v k="$k" -v i="$INTERVAL" -v now="$(date +%s.%N)" 'BEGIN { d = t0 + k * i - now; printf "%.3f", (d > 0 ? d : 0) }')"
    done
) >>"$RSS_CSV" 2>/dev/null &
SAMPLER_PID=$!

set +e
"$CLIENT" --server "http://$ADDR" --key "$KEY" --duration "$DURATION" --concurrency "$CONCURRENCY" \
    --connections "$CONNECTIONS" --seed "$SEED" 2>&1 | tee "$OUT/client.txt"
CLIENT_RC=${PIPESTATUS[0]}
set -e
T_END=$(awk -v t0="$T0" -v now="$(date +%s.%N)" 'BEGIN { printf "%d", now - t0 + 0.5 }')
kill "$SAMPLER_PID" 2>/dev/null || true
wait "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=""
# The end sample: every call has finished.
sample "$T_END" >>"$RSS_CSV"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

scrape "$OUT/metrics-after.txt"

# ---------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------

say "Checks"
FAILED=0
fail() {
    echo "  FAIL: $*"
    FAILED=1
}
pass() { echo "  ok: $*"; }

SUMMARY=$(grep -E '^summary: ' "$OUT/client.txt" | tail -n 1 || true)
field() { sed -nE "s/.* $1=([^ ]+).*/\\1/p" <<<" ${SUMMARY#summary: }"; }
C_CALLS=$(field calls)
C_FAILS=$(field failures)
if [[ $CLIENT_RC == 0 && -n $SUMMARY && $C_FAILS == 0 ]]; then
    pass "client: $C_CALLS calls, 0 failed"
else
    fail "client: exit status $CLIENT_RC, ${C_FAILS:-?} failed calls of ${C_CALLS:-?}"
fi

# Server-side call counts over the run (after minus before), by code.
declare -A BEFORE=() AFTER=()
while read -r code n; do BEFORE[$code]=$n; done < <(calls_by_code "$OUT/metrics-before.txt")
while read -r code n; do AFTER[$code]=$n; done < <(calls_by_code "$OUT/metrics-after.txt")
S_TOTAL=0
S_NOT_OK=0
CODES=""
for code in "${!AFTER[@]}"; do
    d=$((AFTER[$code] - ${BEFORE[$code]:-0}))
    S_TOTAL=$((S_TOTAL + d))
    CODES+="$code:$d "
    [[ $code == OK ]] || S_NOT_OK=$((S_NOT_OK + AFTER[$code]))
done
echo "  server (tradewatch_grpc_calls_total, increase over the run): $S_TOTAL calls; by code: $CODES"
if ((S_NOT_OK == 0)); then
    pass "server: no call ended with a code other than OK (setup included)"
else
    fail "server: $S_NOT_OK calls ended with a code other than OK"
    grep -E '^tradewatch_grpc_calls_total\{' "$OUT/metrics-after.txt" | grep -v 'code="OK"' | sed 's/^/    /'
fi
if [[ -n $C_CALLS && $S_TOTAL == "$C_CALLS" ]]; then
    pass "server counted exactly the client's $C_CALLS calls"
else
    fail "server counted $S_TOTAL calls, the client ${C_CALLS:-?}"
fi
IN_FLIGHT=$(awk '/^tradewatch_grpc_calls_in_flight\{/ { s += $NF } END { print s + 0 }' "$OUT/metrics-after.txt")
if [[ $IN_FLIGHT == 0 ]]; then
    pass "tradewatch_grpc_calls_in_flight is 0 after the run"
else
    fail "tradewatch_grpc_calls_in_flight is $IN_FLIGHT after the run"
fi

LOG_CALLS=$(grep -c 'call finished' "$LOG" || true)
LOG_NOT_OK=$(grep 'call finished' "$LOG" | grep -vc 'code="OK"' || true)
LOG_WARN=$(grep -cE '^\S+\s+(WARN|ERROR) ' "$LOG" || true)
echo "  server log: $LOG_CALLS 'call finished' lines (setup included), $LOG_NOT_OK not OK, $LOG_WARN WARN/ERROR lines"
((LOG_NOT_OK == 0)) || { fail "the server log has $LOG_NOT_OK calls not OK"; grep 'call finished' "$LOG" | grep -v 'code="OK"' | head -n 5 | sed 's/^/    /'; }
((LOG_WARN == 0)) || { fail "the server log has $LOG_WARN WARN/ERROR lines"; grep -E '^\S+\s+(WARN|ERROR) ' "$LOG" | head -n 10 | sed 's/^/    /'; }

# Memory: VmRSS at the end of the warm-up and at the end.
read -r W_T W_KB < <(awk -F, -v w="$WARMUP" 'NR > 1 && $1 >= w { print $1, $2; exit }' "$RSS_CSV")
read -r E_T E_KB < <(awk -F, 'NR > 1 { t = $1; r = $2 } END { print t, r }' "$RSS_CSV")
[[ -n ${W_KB:-} && -n ${E_KB:-} ]] || die "no RSS samples at or after the warm-up in $RSS_CSV"
CALLS_AFTER_WARMUP=$(awk -v c="${C_CALLS:-0}" -v d="$DURATION" -v w="$W_T" 'BEGIN { printf "%d", c * (d - w) / d }')
python3 - "$RSS_CSV" "$W_T" "$RSS_LIMIT_MB" "$CALLS_AFTER_WARMUP" <<'PYTHON' | tee "$OUT/rss-summary.txt"
import sys
path, warm_t, limit_mb, calls_after = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
rows = [tuple(int(x) for x in l.split(",")[:4]) for l in open(path).read().split()[1:]]
mib = lambda kb: kb / 1024
w = next(r for r in rows if r[0] >= warm_t)
end = rows[-1]
after = [r for r in rows if r[0] >= warm_t]
print(f"  VmRSS samples: {len(rows)}, from {mib(rows[0][1]):.1f} MiB at {rows[0][0]} s to {mib(end[1]):.1f} MiB at {end[0]} s; "
      f"min {mib(min(r[1] for r in rows)):.1f}, max {mib(max(r[1] for r in rows)):.1f} MiB; VmHWM {mib(end[2]):.1f} MiB; threads {end[3]}")
print(f"  after warm-up ({w[0]} s .. {end[0]} s): min {mib(min(r[1] for r in after)):.1f}, max {mib(max(r[1] for r in after)):.1f} MiB")
# Least-squares slope of VmRSS after the warm-up, for information (not a check).
if len(after) >= 3:
    n = len(after)
    mx = sum(r[0] for r in after) / n
    my = sum(r[1] for r in after) / n
    sxx = sum((r[0] - mx) ** 2 for r in after)
    slope = sum((r[0] - mx) * (r[1] - my) for r in after) / sxx if sxx else 0.0
    print(f"  trend after warm-up (least squares): {slope * 60 / 1024:+.2f} MiB/min")
growth = end[1] - w[1]
print(f"  growth from the end of the warm-up ({mib(w[1]):.1f} MiB at {w[0]} s) to the end ({mib(end[1]):.1f} MiB at {end[0]} s): "
      f"{growth / 1024:+.2f} MiB (limit {limit_mb:g} MiB)")
if calls_after > 0:
    bound = max(growth, 0) * 1024 / calls_after
    print(f"  about {calls_after} calls after the warm-up: a per-call leak above "
          f"{limit_mb * 1024 * 1024 / calls_after:.0f} bytes would exceed the limit; this run grew {bound:.1f} bytes per call")
PYTHON
# Calls in flight and the database pool, from the same samples (during the load).
awk -F, -v end="$T_END" 'NR > 1 && $1 < end && $5 != "" {
        n++; f += $5; u += $6; s += $7; if ($5 > fm) fm = $5
    }
    END { if (n) printf "  during the load (%d samples): calls in flight %.1f on average (max %d); database pool: %.1f of its connections in use on average, all in use (saturated) in %d of %d samples\n", n, f / n, fm, u / n, s, n }' "$RSS_CSV" |
    tee -a "$OUT/rss-summary.txt"
GROWTH_KB=$((E_KB - W_KB))
if ((GROWTH_KB <= RSS_LIMIT_MB * 1024)); then
    pass "VmRSS growth after warm-up $((GROWTH_KB / 1024)) MiB ($GROWTH_KB KiB) <= $RSS_LIMIT_MB MiB"
else
    fail "VmRSS grew by $GROWTH_KB KiB after warm-up (limit $RSS_LIMIT_MB MiB)"
fi

echo "  database pool at the end: $(grep -E '^tradewatch_db_pool_(connections|max)' "$OUT/metrics-after.txt" | sed -E 's/^tradewatch_db_pool_//' | tr '\n' ' ')"
echo "  observation rows written (tradewatch_observation_rows_total): $(grep -E '^tradewatch_observation_rows_total\{' "$OUT/metrics-after.txt" | sed -E 's/.*outcome="([a-z]+)".* ([0-9]+)$/\1=\2/' | tr '\n' ' ')"
echo "  observation_versions: $(psql_val 'SELECT count(*) FROM observation_versions') rows; database size $(psql_val "SELECT pg_size_pretty(pg_database_size('tradewatch'))")"

# ---------------------------------------------------------------------------------------
# Stop
# ---------------------------------------------------------------------------------------

say "SIGTERM to the server"
kill -TERM "$SERVER_PID"
set +e
wait "$SERVER_PID"
SERVER_RC=$?
set -e
SERVER_PID=""
if [[ $SERVER_RC == 0 ]]; then
    pass "the server exited with status 0"
else
    fail "the server exited with status $SERVER_RC"
fi
# Everything in the log except the per-call lines: start, warnings, shutdown.
grep -v 'call finished' "$LOG" | grep -v 'TRADEWATCH_KEY=' >"$OUT/server-log-excerpt.txt" || true
tail -n 3 "$OUT/server-log-excerpt.txt" | sed 's/^/  | /'

# ---------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------

say "Summary"
{
    echo "command: SOAK_DURATION=$DURATION SOAK_CONCURRENCY=$CONCURRENCY SOAK_CONNECTIONS=$CONNECTIONS SOAK_SEED=$SEED bash bench/soak.sh"
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ) (started $STARTED_UTC)"
    echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, PostgreSQL $PG_VERSION, $(rustc --version 2>/dev/null || echo 'rustc ?'); code $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "client: $SUMMARY"
    echo "server: $S_TOTAL calls, by code: $CODES"
    echo "VmRSS: after setup $((RSS_BEFORE_KB / 1024)) MiB; end of warm-up ${W_T} s $((W_KB / 1024)) MiB ($W_KB KiB); end ${E_T} s $((E_KB / 1024)) MiB ($E_KB KiB); growth $GROWTH_KB KiB"
    echo "result: $([[ $FAILED == 0 ]] && echo PASS || echo FAIL)"
} | tee "$OUT/summary.txt"
echo "files: $OUT (rss.csv, client.txt, metrics-before.txt, metrics-after.txt, rss-summary.txt, server-log-excerpt.txt, summary.txt)"
echo "all data written is SYNTHETIC (indicators soak-NN and soak-tmp-*, programme soak-programme)"
exit "$FAILED"
