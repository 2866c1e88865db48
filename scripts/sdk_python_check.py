#!/usr/bin/env python3
"""Proves that a client SDK can be generated from the protos and used against a server.

Generates Python stubs with grpc_tools.protoc from proto/tradewatch/v1/*.proto into a
temporary directory, imports them and calls a running tradewatch server:

* GetProgram programs/cq-2015-service-trade (jurisdiction CN-CQ);
* ListInitiatives of it (22 initiatives, 7 top-level development areas);
* GetTarget programs/cq-2015-service-trade/targets/services-trade-2020
  (target_value "30", unit_multiplier 9);
* GetProgram programs/NOPE fails with INVALID_ARGUMENT, and its `grpc-status-details-bin`
  trailer is a google.rpc.Status carrying a google.rpc.BadRequest with a field violation
  for `name` (and a google.rpc.ErrorInfo of domain tradewatch.dev).

Usage: python3 scripts/sdk_python_check.py HOST:PORT   (default 127.0.0.1:50051)
Needs: pip install grpcio grpcio-tools googleapis-common-protos
Exits non-zero if any check fails.
"""

import glob
import importlib
import os
import subprocess
import sys
import tempfile

PROGRAM = "programs/cq-2015-service-trade"
TARGET = PROGRAM + "/targets/services-trade-2020"
TIMEOUT = 10  # seconds per call

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROTO_ROOT = os.path.join(REPO, "proto")

failures = 0


def check(description, condition, detail=""):
    """Prints one check's result and counts failures."""
    global failures
    if condition:
        print(f"  ok   {description}")
    else:
        failures += 1
        print(f"  FAIL {description}" + (f": {detail}" if detail else ""), file=sys.stderr)
    return condition


def fatal(message):
    print(f"sdk_python_check: FATAL: {message}", file=sys.stderr)
    sys.exit(1)


try:
    import grpc
    import grpc_tools  # noqa: F401  (only checked here, used through `python -m`)
except ImportError as e:
    fatal(f"{e}; install with: pip install grpcio grpcio-tools")
try:
    from google.rpc import code_pb2, error_details_pb2, status_pb2
except ImportError as e:
    fatal(f"{e}; install with: pip install googleapis-common-protos")


def generate(out_dir):
    """Runs protoc (from grpcio-tools) on every tradewatch proto; returns the files."""
    protos = sorted(glob.glob(os.path.join(PROTO_ROOT, "tradewatch", "v1", "*.proto")))
    if not protos:
        fatal(f"no protos found in {PROTO_ROOT}/tradewatch/v1")
    rel = [os.path.relpath(p, REPO) for p in protos]
    cmd = [sys.executable, "-m", "grpc_tools.protoc", "-Iproto",
           f"--python_out={out_dir}", f"--grpc_python_out={out_dir}", *rel]
    print("$ " + " ".join(["python3"] + cmd[1:]))
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        fatal(f"protoc failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    generated = sorted(os.path.relpath(p, out_dir)
                       for p in glob.glob(os.path.join(out_dir, "tradewatch", "v1", "*.py")))
    return rel, generated


def main():
    addr = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051"
    with tempfile.TemporaryDirectory(prefix="tradewatch-sdk-") as out_dir:
        print(f"== Generating the Python SDK into {out_dir}")
        protos, generated = generate(out_dir)
        check(f"protoc generated {len(generated)} modules from {len(protos)} protos",
              len(generated) == 2 * len(protos), ", ".join(generated))

        sys.path.insert(0, out_dir)
        program_service_pb2 = importlib.import_module("tradewatch.v1.program_service_pb2")
        program_service_pb2_grpc = importlib.import_module("tradewatch.v1.program_service_pb2_grpc")
        program_pb2 = importlib.import_module("tradewatch.v1.program_pb2")
        print("  ok   imported tradewatch.v1.program_service_pb2(_grpc), program_pb2")

        print(f"== Connecting to {addr}")
        with grpc.insecure_channel(addr) as channel:
            try:
                grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
            except grpc.FutureTimeoutError:
                fatal(f"could not connect to {addr} within {TIMEOUT} s")
            programs = program_service_pb2_grpc.ProgramServiceStub(channel)
            run_checks(programs, program_service_pb2, program_pb2)
            reporting_pb2 = importlib.import_module("tradewatch.v1.reporting_service_pb2")
            reporting_pb2_grpc = importlib.import_module("tradewatch.v1.reporting_service_pb2_grpc")
            report_pb2 = importlib.import_module("tradewatch.v1.report_pb2")
            reports = reporting_pb2_grpc.ReportingServiceStub(channel)
            run_report_checks(reports, reporting_pb2, report_pb2)
            key = os.environ.get("TRADEWATCH_KEY", "")
            if key:
                admin_pb2 = importlib.import_module("tradewatch.v1.admin_service_pb2")
                admin_pb2_grpc = importlib.import_module("tradewatch.v1.admin_service_pb2_grpc")
                admin = admin_pb2_grpc.AdminServiceStub(channel)
                run_auth_checks(programs, program_service_pb2, program_pb2, admin, admin_pb2, key)
                run_refusal_checks(channel, key)

    if failures:
        print(f"sdk_python_check: {failures} check(s) failed", file=sys.stderr)
        sys.exit(1)
    print("sdk_python_check: all checks passed")


def run_checks(programs, pb, program_pb2):
    print(f"== GetProgram {PROGRAM}")
    program = programs.GetProgram(pb.GetProgramRequest(name=PROGRAM), timeout=TIMEOUT)
    check(f"name is {PROGRAM}", program.name == PROGRAM, program.name)
    check("jurisdiction is CN-CQ", program.jurisdiction == "CN-CQ", program.jurisdiction)
    check("returns a typed program_pb2.Program", isinstance(program, program_pb2.Program))

    print(f"== ListInitiatives of {PROGRAM} (page_size 10, following next_page_token)")
    initiatives, token, pages = [], "", 0
    while True:
        page = programs.ListInitiatives(
            pb.ListInitiativesRequest(parent=PROGRAM, page_size=10, page_token=token),
            timeout=TIMEOUT)
        initiatives.extend(page.initiatives)
        pages += 1
        token = page.next_page_token
        if not token or pages >= 20:
            break
    names = [i.name for i in initiatives]
    top_level = [i for i in initiatives if not i.parent_initiative]
    check(f"22 initiatives in {pages} pages", len(initiatives) == 22, str(len(initiatives)))
    check("no duplicates", len(set(names)) == len(names))
    check("7 top-level development areas", len(top_level) == 7, str(len(top_level)))
    check("every initiative has a state set",
          all(i.state != program_pb2.Initiative.STATE_UNSPECIFIED for i in initiatives))

    print(f"== GetTarget {TARGET}")
    target = programs.GetTarget(pb.GetTargetRequest(name=TARGET), timeout=TIMEOUT)
    check('target_value == "30"', target.target_value == "30", repr(target.target_value))
    check("unit_multiplier == 9", target.unit_multiplier == 9, str(target.unit_multiplier))
    check("kind is KIND_LEVEL", target.kind == program_pb2.Target.KIND_LEVEL,
          program_pb2.Target.Kind.Name(target.kind))

    print("== GetProgram programs/NOPE (invalid name)")
    try:
        programs.GetProgram(pb.GetProgramRequest(name="programs/NOPE"), timeout=TIMEOUT)
        check("raises grpc.RpcError", False, "the call succeeded")
        return
    except grpc.RpcError as e:
        error = e
    check("raises grpc.RpcError with code INVALID_ARGUMENT",
          error.code() == grpc.StatusCode.INVALID_ARGUMENT, str(error.code()))
    print(f"       message: {error.details()}")
    raw = [v for k, v in (error.trailing_metadata() or ()) if k == "grpc-status-details-bin"]
    if not check("trailing metadata has grpc-status-details-bin", len(raw) == 1):
        return
    status = status_pb2.Status()
    try:
        status.ParseFromString(raw[0])
    except Exception as e:  # noqa: BLE001
        check("grpc-status-details-bin decodes as google.rpc.Status", False, repr(e))
        return
    check("grpc-status-details-bin decodes as google.rpc.Status", True)
    check("Status.code is INVALID_ARGUMENT (3)", status.code == code_pb2.INVALID_ARGUMENT,
          str(status.code))
    check("Status.message equals the gRPC message", status.message == error.details(),
          repr(status.message))
    print("       details: " + ", ".join(d.type_url for d in status.details))

    violations, infos = [], []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            violations.extend(bad_request.field_violations)
        elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            infos.append(info)
    for v in violations:
        print(f"       field violation: {v.field}: {v.description}")
    for i in infos:
        print(f"       error info: reason {i.reason}, domain {i.domain}")
    check("details contain a google.rpc.BadRequest with a field violation for \"name\"",
          any(v.field == "name" for v in violations),
          str([v.field for v in violations]))
    check("details contain a google.rpc.ErrorInfo with domain tradewatch.dev",
          any(i.domain == "tradewatch.dev" and i.reason for i in infos),
          str([(i.domain, i.reason) for i in infos]))


def run_auth_checks(programs, pb, program_pb2, admin, admin_pb2, key):
    """Writes need an API key, sent as `authorization: Bearer <key>` metadata."""
    print("== CreateProgram without a key")
    request = pb.CreateProgramRequest(
        program_id="sdk-python",
        program=program_pb2.Program(title="SDK", jurisdiction="CN-CQ", start_year=2020,
                                    end_year=2021))
    try:
        programs.CreateProgram(request, timeout=TIMEOUT)
        check("raises UNAUTHENTICATED", False, "the call succeeded")
    except grpc.RpcError as e:
        check("raises UNAUTHENTICATED", e.code() == grpc.StatusCode.UNAUTHENTICATED, str(e.code()))
    print("== ListApiKeys with the admin key")
    auth = [("authorization", f"Bearer {key}")]
    keys = admin.ListApiKeys(admin_pb2.ListApiKeysRequest(), metadata=auth, timeout=TIMEOUT)
    check("at least the admin key is listed, without secrets",
          len(keys.api_keys) >= 1 and all(k.name.startswith("apiKeys/") for k in keys.api_keys),
          str([k.name for k in keys.api_keys]))
    check("an admin key is among them",
          any(k.role == admin_pb2.ROLE_ADMIN for k in keys.api_keys))


def run_refusal_checks(channel, key):
    """A batch of 200 bad rows: grpcio (like every grpc-core client) refuses trailers
    over 8 KiB with RESOURCE_EXHAUSTED, so the refusal must stay under that to arrive as
    INVALID_ARGUMENT, every time."""
    obs_pb2 = importlib.import_module("tradewatch.v1.observation_service_pb2")
    obs_grpc = importlib.import_module("tradewatch.v1.observation_service_pb2_grpc")
    observation_pb2 = importlib.import_module("tradewatch.v1.observation_pb2")
    observations = obs_grpc.ObservationServiceStub(channel)
    rows = [observation_pb2.Observation(
                name=f"indicators/cq-services-trade-total/observations/{1800 + i}",
                value="n/a", status=observation_pb2.Observation.STATUS_NORMAL)
            for i in range(200)]
    print("== BatchCreateObservations of 200 bad rows, 10 times")
    auth = [("authorization", f"Bearer {key}")]
    codes = []
    for _ in range(10):
        try:
            observations.BatchCreateObservations(
                obs_pb2.BatchCreateObservationsRequest(observations=rows),
                metadata=auth, timeout=TIMEOUT)
            codes.append("OK")
        except grpc.RpcError as e:
            codes.append(e.code().name)
            last = e
    check("every answer is INVALID_ARGUMENT (not RESOURCE_EXHAUSTED)",
          codes == ["INVALID_ARGUMENT"] * 10, str(codes))
    if codes and codes[-1] == "INVALID_ARGUMENT":
        raw = [v for k, v in (last.trailing_metadata() or ()) if k == "grpc-status-details-bin"]
        status = status_pb2.Status()
        if raw:
            status.ParseFromString(raw[0])
        names = []
        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
                names = [v.field for v in bad_request.field_violations]
        check("the message counts the problems in the 200 rows",
              "problems in the 200 rows" in last.details(), last.details())
        check("the details name the first bad rows, observations[0].value first",
              names[:1] == ["observations[0].value"], str(names[:3]))


def run_report_checks(reports, pb, report_pb2):
    """Target progress as scripts/e2e.sh left it: synthetic 2018-2020 values of 250, 280
    and 310 (x 10^8 USD) against 30 x 10^9 USD in 2020."""
    target = f"{PROGRAM}/targets/services-trade-2020"
    print(f"== GetTargetProgress {target}")
    progress = reports.GetTargetProgress(pb.GetTargetProgressRequest(name=target), timeout=TIMEOUT)
    check("status is STATUS_ACHIEVED",
          progress.status == report_pb2.TargetProgress.STATUS_ACHIEVED,
          report_pb2.TargetProgress.Status.Name(progress.status))
    check("latest 2020 value is 31 (x 10^9 USD)",
          (progress.latest_period, progress.latest_value, progress.unit_multiplier) == ("2020", "31", 9),
          f"{progress.latest_period} {progress.latest_value} x 10^{progress.unit_multiplier}")
    # attainment = 31 / 30
    check("attainment is 31/30",
          progress.HasField("attainment") and abs(progress.attainment - 31 / 30) < 1e-12,
          str(progress.attainment))


if __name__ == "__main__":
    main()
