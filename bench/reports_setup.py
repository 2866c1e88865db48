#!/usr/bin/env python3
"""Helpers of bench/reports.sh. Everything this writes is SYNTHETIC benchmark data:
indicators `synthetic-NNNNN` titled "SYNTHETIC ...", values from a formula, a programme
`synthetic-programme` titled "SYNTHETIC ...". None of it is real statistics.

Needs the Python stubs generated from proto/tradewatch/v1 on PYTHONPATH (bench/reports.sh
generates them with grpc_tools.protoc, as scripts/sdk_python_check.py does). Calls carry
`authorization: Bearer $TRADEWATCH_KEY` when that variable is set.

Subcommands (all called by bench/reports.sh):
  indicators ADDR N                 create synthetic-00001 .. synthetic-N (monthly, USD)
  csv PATH FIRST LAST MONTHS        observations of indicators FIRST..LAST, MONTHS months
                                    from 2005-M01, as `tradewatch import` reads them
  programme ADDR PROGRAM MONTHS     a programme of 7 areas, 30 initiatives, 20 targets
  bodies DIR PROGRAM INDICATOR      request bodies as gRPC frames, one file per method
  verify ADDR DIR                   sends each body file's exact bytes, checks the answers
  latency LOG                       p50/p90/p99/mean/max (ms) from an h2load --log-file
  serverlog LOG FROM TO PATH        the server's per-call lines for PATH in bytes FROM..TO
  metrics SCRAPE PATH               calls of PATH by code in a scrape of /metrics
  summary RESULTS.tsv PGBENCH.tsv   medians of the rounds and the goals
"""
import math
import os
import re
import statistics
import struct
import sys
import threading
import time

START_YEAR = 2005  # first month of every synthetic series: 2005-M01
PROGRAMME_AREAS = 7
PROGRAMME_INITIATIVES = 30  # areas + their measures
PROGRAMME_TARGETS = 20

# Method paths benchmarked, and the file name of each one's request body.
METHODS = [
    ("QuerySeries", "/tradewatch.v1.ReportingService/QuerySeries", "query_series.bin"),
    ("GetTargetProgress", "/tradewatch.v1.ReportingService/GetTargetProgress", "target_progress.bin"),
    ("GetProgramScorecard", "/tradewatch.v1.ReportingService/GetProgramScorecard", "scorecard.bin"),
    ("GetIndicator", "/tradewatch.v1.IndicatorService/GetIndicator", "get_indicator.bin"),
]


def fail(message):
    print(f"reports_setup.py: FATAL: {message}", file=sys.stderr)
    sys.exit(1)


def period(m):
    """The SDMX monthly period of month index m (0 = 2005-M01)."""
    return f"{START_YEAR + m // 12}-M{m % 12 + 1:02d}"


def level(i):
    """Starting level of synthetic indicator i, in USD (deterministic)."""
    return 1000.0 + (i * 7919) % 99991


def value(i, m):
    """Synthetic value of indicator i in month m: ~5 % growth a year, +-5 % wobble."""
    wobble = 1.0 + 0.005 * (((i * 31 + m * 17) % 21) - 10)
    return round(level(i) * 1.004 ** m * wobble, 2)


def annual_sum(i, year):
    first = (year - START_YEAR) * 12
    return sum(value(i, m) for m in range(first, first + 12))


def channel(addr):
    """A channel to ADDR that sends `authorization: Bearer $TRADEWATCH_KEY` on every
    call when that variable is set (bench/reports.sh sets it to the admin key the server
    prints at first start; writes need a key)."""
    import grpc

    ch = grpc.insecure_channel(addr)
    grpc.channel_ready_future(ch).result(timeout=30)
    key = os.environ.get("TRADEWATCH_KEY", "").strip()
    if key:
        ch = grpc.intercept_channel(ch, _auth_interceptor(key))
    return ch


def _auth_interceptor(key):
    """A client interceptor adding the API key to the metadata of unary and
    client-streaming calls."""
    import collections

    import grpc

    class Details(collections.namedtuple(
            "Details", ("method", "timeout", "metadata", "credentials", "wait_for_ready",
                        "compression")), grpc.ClientCallDetails):
        pass

    class Auth(grpc.UnaryUnaryClientInterceptor, grpc.StreamUnaryClientInterceptor):
        def _with_key(self, d):
            metadata = list(d.metadata or ()) + [("authorization", f"Bearer {key}")]
            return Details(d.method, d.timeout, metadata, d.credentials,
                           getattr(d, "wait_for_ready", None), getattr(d, "compression", None))

        def intercept_unary_unary(self, continuation, details, request):
            return continuation(self._with_key(details), request)

        def intercept_stream_unary(self, continuation, details, request_iterator):
            return continuation(self._with_key(details), request_iterator)

    return Auth()


# ---------------------------------------------------------------------------------------
# Data


def indicators(addr, n, inflight=64):
    """Creates synthetic-00001 .. synthetic-N through CreateIndicator, `inflight` at once."""
    import grpc
    from tradewatch.v1 import common_pb2, indicator_pb2
    from tradewatch.v1 import indicator_service_pb2 as svc
    from tradewatch.v1 import indicator_service_pb2_grpc as svc_grpc

    stub = svc_grpc.IndicatorServiceStub(channel(addr))
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
                title=f"SYNTHETIC reporting benchmark indicator {i:05d}",
                description="Synthetic data generated by bench/reports.sh; not real statistics.",
                unit="USD",
                frequency=common_pb2.FREQUENCY_MONTHLY,
                flow=Ind.FLOW_EXPORT,
                service_category="SJ",
                region="CN-CQ",
                aggregation=Ind.AGGREGATION_SUM,
                direction=common_pb2.DIRECTION_HIGHER_IS_BETTER,
                source_agency="SYNTHETIC (bench/reports.sh)",
            ),
        )
        stub.CreateIndicator.future(request, timeout=120).add_done_callback(done)
    for _ in range(inflight):
        slots.acquire()
    secs = time.monotonic() - started
    print(f"SYNTHETIC indicators: {counts['created']} created, {counts['existed']} already "
          f"existed, {len(errors)} failed in {secs:.1f} s ({n / secs:.0f} calls/s)")
    if errors:
        for e in errors[:10]:
            print("  " + e, file=sys.stderr)
        sys.exit(1)


def csv(path, first, last, months):
    """Writes indicators first..last x `months` monthly observations from 2005-M01."""
    periods = [period(m) for m in range(months)]
    source = "SYNTHETIC bench/reports.sh"
    rows = 0
    with open(path, "w", buffering=1 << 20) as f:
        f.write("indicator,period,value,status,comment,source\n")
        for i in range(first, last + 1):
            prefix = f"synthetic-{i:05d},"
            base = level(i)
            lines = []
            for m, p in enumerate(periods):
                wobble = 1.0 + 0.005 * (((i * 31 + m * 17) % 21) - 10)
                lines.append(f"{prefix}{p},{round(base * 1.004 ** m * wobble, 2):.2f},A,,{source}\n")
            f.write("".join(lines))
            rows += months
    return rows


def programme(addr, program_id, months):
    """Programme `program_id`: 7 development areas, 30 initiatives in all (each listing
    one indicator), 20 targets on synthetic indicators (15 level, 5 growth-rate; 18 on
    initiatives, 2 on the programme itself)."""
    from tradewatch.v1 import common_pb2, program_pb2
    from tradewatch.v1 import program_service_pb2 as svc
    from tradewatch.v1 import program_service_pb2_grpc as svc_grpc

    last_full_year = START_YEAR + months // 12 - 1
    if last_full_year < 2016:
        fail("the programme's targets need data through 2016 at least (MONTHS >= 144)")
    stub = svc_grpc.ProgramServiceStub(channel(addr))
    parent = f"programs/{program_id}"
    stub.CreateProgram(svc.CreateProgramRequest(
        program_id=program_id,
        program=program_pb2.Program(
            title="SYNTHETIC reporting benchmark programme (not a real plan)",
            issuing_body="SYNTHETIC (bench/reports.sh)",
            jurisdiction="CN-CQ",
            start_year=2015,
            end_year=2025,
            summary="Synthetic data generated by bench/reports.sh.",
        )), timeout=30)

    # Areas area-1..area-7; measures measure-01..measure-23 spread over them (4, 4, 3, ...).
    initiatives = []  # (initiative id, parent id or None)
    for a in range(1, PROGRAMME_AREAS + 1):
        initiatives.append((f"area-{a}", None))
    children = PROGRAMME_INITIATIVES - PROGRAMME_AREAS
    for c in range(children):
        initiatives.append((f"measure-{c + 1:02d}", f"area-{c % PROGRAMME_AREAS + 1}"))
    State = program_pb2.Initiative
    for n, (iid, par) in enumerate(initiatives, start=1):
        stub.CreateInitiative(svc.CreateInitiativeRequest(
            parent=parent,
            initiative_id=iid,
            initiative=program_pb2.Initiative(
                parent_initiative=f"{parent}/initiatives/{par}" if par else "",
                title=f"SYNTHETIC {'area' if par is None else 'measure'} {iid}",
                state=State.STATE_ACTIVE,
                indicators=[f"indicators/synthetic-{n:05d}"],
                position=n,
            )), timeout=30)

    Target = program_pb2.Target
    for t in range(1, PROGRAMME_TARGETS + 1):
        # Targets 1-18 belong to the first 18 initiatives (7 areas, 11 measures);
        # 19 and 20 to the programme itself.
        initiative = f"{parent}/initiatives/{initiatives[t - 1][0]}" if t <= 18 else ""
        base = annual_sum(t, 2015)
        if t % 4 == 0:  # targets 4, 8, ..., 20: 6 % a year from 2015
            target = Target(kind=Target.KIND_GROWTH_RATE, target_value="6",
                            baseline_period="2015")
        else:  # 1.6 x the 2015 level by 2025, in thousands of USD
            target = Target(kind=Target.KIND_LEVEL, unit_multiplier=3,
                            target_value=f"{base * 1.6 / 1000:.3f}",
                            baseline_value=f"{base / 1000:.3f}", baseline_period="2015")
        target.title = f"SYNTHETIC target {t:02d}"
        target.indicator = f"indicators/synthetic-{t:05d}"
        target.initiative = initiative
        target.target_period = "2025"
        target.direction = common_pb2.DIRECTION_HIGHER_IS_BETTER
        stub.CreateTarget(svc.CreateTargetRequest(
            parent=parent, target_id=f"target-{t:02d}", target=target), timeout=30)
    print(f"SYNTHETIC programme {parent}: {PROGRAMME_AREAS} areas, {len(initiatives)} "
          f"initiatives, {PROGRAMME_TARGETS} targets")


# ---------------------------------------------------------------------------------------
# Request bodies


def frame(message):
    """A gRPC length-prefixed message: 0 (uncompressed), 4-byte big-endian length, bytes."""
    data = message.SerializeToString()
    return struct.pack(">BI", 0, len(data)) + data


def requests(program_id, indicator):
    from tradewatch.v1 import common_pb2
    from tradewatch.v1 import indicator_service_pb2 as ind
    from tradewatch.v1 import reporting_service_pb2 as rep

    return {
        "QuerySeries": rep.QuerySeriesRequest(
            indicator=f"indicators/{indicator}", start_period="2011", end_period="2020",
            frequency=common_pb2.FREQUENCY_ANNUAL, transform=rep.TRANSFORM_CHANGE_YEAR_AGO),
        "GetTargetProgress": rep.GetTargetProgressRequest(
            name=f"programs/{program_id}/targets/target-01"),
        "GetProgramScorecard": rep.GetProgramScorecardRequest(name=f"programs/{program_id}"),
        "GetIndicator": ind.GetIndicatorRequest(name=f"indicators/{indicator}"),
    }


def bodies(out_dir, program_id, indicator):
    from tradewatch.v1 import indicator_service_pb2 as ind

    reqs = requests(program_id, indicator)
    # For the check of the error count: a call that fails (NOT_FOUND) inside HTTP 200.
    with open(os.path.join(out_dir, "get_indicator_missing.bin"), "wb") as f:
        f.write(frame(ind.GetIndicatorRequest(name="indicators/synthetic-missing")))
    for method, path, file in METHODS:
        body = frame(reqs[method])
        with open(os.path.join(out_dir, file), "wb") as f:
            f.write(body)
        print(f"  {file}: {len(body)} bytes = gRPC frame of {path} {{{str(reqs[method]).strip().replace(chr(10), ', ')}}}")


def verify(addr, body_dir):
    """Sends every body file's exact bytes (after checking its 5-byte gRPC prefix) as a
    unary call and decodes the answer: what h2load will send, answered as expected."""
    from tradewatch.v1 import indicator_pb2, report_pb2
    from tradewatch.v1 import reporting_service_pb2 as rep

    ch = channel(addr)
    responses = {
        "QuerySeries": rep.QuerySeriesResponse,
        "GetTargetProgress": report_pb2.TargetProgress,
        "GetProgramScorecard": rep.ProgramScorecard,
        "GetIndicator": indicator_pb2.Indicator,
    }
    problems = []
    for method, path, file in METHODS:
        with open(os.path.join(body_dir, file), "rb") as f:
            body = f.read()
        flag, length = struct.unpack(">BI", body[:5])
        if flag != 0 or length != len(body) - 5:
            problems.append(f"{file}: bad gRPC prefix (flag {flag}, length {length}, {len(body)} bytes)")
            continue
        call = ch.unary_unary(path)  # no serializers: raw bytes both ways
        raw = call(body[5:], timeout=30)
        resp = responses[method].FromString(raw)
        print(f"  {method}: OK, {len(raw)} response bytes")
        if method == "QuerySeries":
            pts = list(resp.points)
            for p in pts:
                print(f"    {p.period}: change on a year earlier {p.value} (parts {p.parts}/{p.expected_parts})")
            want = [str(y) for y in range(2011, 2021)]
            if [p.period for p in pts] != want or any(p.partial or not p.value or p.parts != 12 for p in pts):
                problems.append("QuerySeries: expected 10 complete annual points 2011..2020 with values")
        elif method == "GetTargetProgress":
            status = report_pb2.TargetProgress.Status.Name(resp.status)
            print(f"    {resp.target}: {status}, latest {resp.latest_period} = {resp.latest_value} "
                  f"x 10^{resp.unit_multiplier} {resp.unit}, target {resp.target_value} in {resp.target_period}")
            if resp.status == report_pb2.TargetProgress.STATUS_NOT_ASSESSABLE or not resp.latest_value:
                problems.append("GetTargetProgress: not assessed")
        elif method == "GetProgramScorecard":
            def walk(cards):
                n = t = k = 0
                for c in cards:
                    n += 1
                    t += len(c.targets)
                    k += len(c.indicators)
                    a, b, d = walk(c.children)
                    n, t, k = n + a, t + b, k + d
                return n, t, k
            n, t, k = walk(resp.initiatives)
            t += len(resp.targets)
            print(f"    {resp.program.name}: {len(resp.initiatives)} areas, {n} initiatives, "
                  f"{t} targets assessed, {k} indicator latest values")
            statuses = {}
            def count(cards):
                for c in cards:
                    for p in c.targets:
                        s = report_pb2.TargetProgress.Status.Name(p.status)
                        statuses[s] = statuses.get(s, 0) + 1
                    count(c.children)
            count(resp.initiatives)
            for p in resp.targets:
                s = report_pb2.TargetProgress.Status.Name(p.status)
                statuses[s] = statuses.get(s, 0) + 1
            print(f"    statuses: {statuses}")
            if (len(resp.initiatives), n, t, k) != (PROGRAMME_AREAS, PROGRAMME_INITIATIVES,
                                                    PROGRAMME_TARGETS, PROGRAMME_INITIATIVES):
                problems.append("GetProgramScorecard: expected 7 areas, 30 initiatives, 20 targets, 30 indicators")
        else:
            print(f"    {resp.name}: {resp.title!r}")
            if not resp.title.startswith("SYNTHETIC"):
                problems.append("GetIndicator: unexpected indicator")
    if problems:
        for p in problems:
            print("  PROBLEM " + p, file=sys.stderr)
        sys.exit(1)


# ---------------------------------------------------------------------------------------
# Measurements


def percentile(sorted_values, q):
    """Nearest-rank percentile."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def latency(log):
    """h2load --log-file: start time (us since epoch), HTTP status (-1: failed), us.
    Prints "requests non200 p50 p90 p99 mean max" (milliseconds)."""
    us, non200 = [], 0
    with open(log) as f:
        for line in f:
            parts = line.split("\t")
            if len(parts) < 3:
                continue
            if parts[1].strip() != "200":
                non200 += 1
            us.append(int(parts[2]))
    us.sort()
    if not us:
        print("0 0 nan nan nan nan nan")
        return
    ms = lambda v: v / 1000.0
    print(f"{len(us)} {non200} {ms(percentile(us, 50)):.3f} {ms(percentile(us, 90)):.3f} "
          f"{ms(percentile(us, 99)):.3f} {ms(statistics.fmean(us)):.3f} {ms(us[-1]):.3f}")


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def serverlog(log, start, end, path):
    """Counts the server's per-call lines for `path` in bytes [start, end) of its log.

    The call layer logs every call once, when it ends, as a line containing
    `call finished` with `method=PATH` and `code="CODE"` (the gRPC status code name,
    whether the status travelled in the headers or in the trailers; a call that the
    client cut is logged as CANCELLED). Errors are the lines whose code is not OK.
    Prints "calls ok errors codes", codes like OK:1234,NOT_FOUND:2."""
    with open(log, "rb") as f:
        f.seek(start)
        text = f.read(end - start).decode("utf-8", "replace")
    method = re.compile(r"\bmethod=" + re.escape(path) + r"(\s|$)")
    code_re = re.compile(r'\bcode="?([A-Z_]+)"?')
    calls = ok = 0
    codes = {}
    for line in text.splitlines():
        line = ANSI.sub("", line)
        if "call finished" not in line or not method.search(line):
            continue
        m = code_re.search(line)
        code = m.group(1) if m else "?"
        calls += 1
        ok += code == "OK"
        codes[code] = codes.get(code, 0) + 1
    errors = calls - ok
    print(f"{calls} {ok} {errors} " + (",".join(f"{k}:{v}" for k, v in sorted(codes.items())) or "-"))


def metrics(path, method):
    """Finished calls of one method (`Service/Method`) by code in a scrape of /metrics
    (tradewatch_grpc_calls_total). Prints "calls ok errors codes"."""
    service, name = method.strip("/").split("/")
    pattern = re.compile(r"^tradewatch_grpc_calls_total\{([^}]*)\}\s+(\d+)")
    codes = {}
    with open(path) as f:
        for line in f:
            m = pattern.match(line)
            if not m:
                continue
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            if labels.get("service") == service and labels.get("method") == name:
                codes[labels.get("code", "?")] = codes.get(labels.get("code", "?"), 0) + int(m.group(2))
    calls = sum(codes.values())
    ok = codes.get("OK", 0)
    print(f"{calls} {ok} {calls - ok} " + (",".join(f"{k}:{v}" for k, v in sorted(codes.items())) or "-"))


def summary(results, pgbench):
    """Tables of the rounds and their medians, and the goals, for each pass ("as-built":
    the binary as it is; "nodelay": the same binary with TCP_NODELAY set on accepted
    sockets by bench/nodelay_preload.c)."""
    def read(path):
        with open(path) as f:
            header = f.readline().rstrip("\n").split("\t")
            return [dict(zip(header, l.rstrip("\n").split("\t"))) for l in f if l.strip()]

    rows, pg = read(results), read(pgbench)
    med = statistics.median

    def table(cols, data):
        print("| " + " | ".join(cols) + " |")
        print("|" + "|".join("---:" for _ in cols) + "|")
        for r in data:
            print("| " + " | ".join(r.get(c, "") for c in cols) + " |")

    print("### Rounds")
    print()
    table(["pass", "round", "method", "rps", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "max_ms",
           "requests", "h2load_non200", "h2load_failed", "server_calls", "server_errors", "codes",
           "cpu_server_s", "cpu_pg_s", "cpu_client_s", "load1"], rows)
    print()
    table(["pass", "round", "tps", "latency_avg_ms", "transactions", "failed", "cpu_pg_s",
           "cpu_client_s", "load1"], pg)
    passes = list(dict.fromkeys(r["pass"] for r in rows))
    verdict = lambda ok: "MET" if ok else "NOT MET"
    for name in passes:
        rs_all = [r for r in rows if r["pass"] == name]
        ps = [r for r in pg if r["pass"] == name]
        print()
        print(f"### Medians of the rounds, pass {name}")
        print()
        print("| method | req/s | p50 ms | p90 ms | p99 ms | mean ms | requests (all rounds) | "
              "server-side errors (all rounds) | server CPU us/call | PostgreSQL CPU us/call | client CPU us/call |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        medians = {}
        for method, _, _ in METHODS:
            rs = [r for r in rs_all if r["method"] == method]
            if not rs:
                continue
            m = {k: med(float(r[k]) for r in rs) for k in ("rps", "p50_ms", "p90_ms", "p99_ms", "mean_ms")}
            per_call = lambda k: med(float(r[k]) * 1e6 / max(1.0, float(r["server_calls"])) for r in rs)
            m["errors"] = sum(int(r["server_errors"]) for r in rs)
            m["requests"] = sum(int(r["requests"]) for r in rs)
            medians[method] = m
            print(f"| {method} | {m['rps']:,.0f} | {m['p50_ms']:.2f} | {m['p90_ms']:.2f} | {m['p99_ms']:.2f} | "
                  f"{m['mean_ms']:.2f} | {m['requests']:,} | {m['errors']} | {per_call('cpu_server_s'):.0f} | "
                  f"{per_call('cpu_pg_s'):.0f} | {per_call('cpu_client_s'):.0f} |")
        tps = med(float(r["tps"]) for r in ps) if ps else float("nan")
        if ps:
            per_tx = lambda k: med(float(r[k]) * 1e6 / max(1.0, float(r["transactions"])) for r in ps)
            print(f"| pgbench -S (ceiling) | {tps:,.0f} | | | | {med(float(r['latency_avg_ms']) for r in ps):.2f} (avg) | "
                  f"{sum(int(r['transactions']) for r in ps):,} | {sum(int(r['failed']) for r in ps)} | | "
                  f"{per_tx('cpu_pg_s'):.0f} | {per_tx('cpu_client_s'):.0f} |")
        print()
        qs, sc, gi = (medians.get(k) for k in ("QuerySeries", "GetProgramScorecard", "GetIndicator"))
        if qs:
            print(f"- goal QuerySeries p50 <= 5 ms: {qs['p50_ms']:.2f} ms -> {verdict(qs['p50_ms'] <= 5)}")
            print(f"- goal QuerySeries p99 <= 20 ms: {qs['p99_ms']:.2f} ms -> {verdict(qs['p99_ms'] <= 20)}")
        if sc:
            print(f"- goal GetProgramScorecard p50 <= 20 ms: {sc['p50_ms']:.2f} ms -> {verdict(sc['p50_ms'] <= 20)}")
        if gi and ps:
            ratio = gi["rps"] / tps
            print(f"- goal GetIndicator >= 0.5 x pgbench -S: {gi['rps']:,.0f} req/s / {tps:,.0f} tps = "
                  f"{ratio:.3f} -> {verdict(ratio >= 0.5)}")
        print(f"- server-side errors over all measured calls of this pass: {sum(m['errors'] for m in medians.values())}")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "indicators":
        indicators(args[0], int(args[1]))
    elif cmd == "csv":
        print(csv(args[0], int(args[1]), int(args[2]), int(args[3])))
    elif cmd == "programme":
        programme(args[0], args[1], int(args[2]))
    elif cmd == "bodies":
        bodies(args[0], args[1], args[2])
    elif cmd == "verify":
        verify(args[0], args[1])
    elif cmd == "latency":
        latency(args[0])
    elif cmd == "serverlog":
        serverlog(args[0], int(args[1]), int(args[2]), args[3])
    elif cmd == "metrics":
        metrics(args[0], args[1])
    elif cmd == "summary":
        summary(args[0], args[1])
    else:
        fail(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
