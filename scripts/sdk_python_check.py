#!/usr/bin/env python3
"""Proves that the Python client package (clients/python) works against a server.

Run it with the Python of an environment where the package was installed as the README
says (`python3 -m pip install ./clients/python`; scripts/e2e.sh uses a fresh venv): it
imports `tradewatch.v1` from there, never from the source tree, and calls a running
tradewatch server:

* the package holds the _pb2, _pb2_grpc and .pyi module of every proto;
* GetProgram programs/cq-2015-service-trade (jurisdiction CN-CQ);
* ListInitiatives of it (22 initiatives, 7 top-level development areas);
* GetTarget programs/cq-2015-service-trade/targets/services-trade-2020
  (target_value "30", unit_multiplier 9);
* GetProgram programs/NOPE fails with INVALID_ARGUMENT, and its `grpc-status-details-bin`
  trailer is a google.rpc.Status, also as grpc_status.rpc_status.from_call reads it,
  carrying a google.rpc.BadRequest with a field violation for `name` (and a
  google.rpc.ErrorInfo of domain tradewatch.dev);
* ReportingService.GetTargetProgress of that target, as scripts/e2e.sh leaves it
  (synthetic 2018-2020 values 250, 280, 310 x 10^8 USD): STATUS_ACHIEVED, 31 x 10^9,
  attainment 31/30;
* the key (`authorization: Bearer $TRADEWATCH_KEY`, the admin key): a write without it and
  a read with a malformed one are UNAUTHENTICATED, ListApiKeys (admin only) works with it;
* request_id: CreateProgram sent twice with one request_id creates once and answers the
  same both times; the same request_id with another request is INVALID_ARGUMENT;
* x-request-id metadata comes back in the response metadata;
* a deadline (`timeout=`): a WatchObservations stream given 1 s ends with
  DEADLINE_EXCEEDED after about 1 s;
* CreateIndicator with unit "UDS": the BadRequest names indicator.unit (from_call);
* 200 bad rows in one BatchCreateObservations arrive as INVALID_ARGUMENT every time (the
  trailers stay under grpc-core's 8 KiB), naming observations[0].value first;
* the Python code of the README's "SDK clients" section and the example of
  clients/python/README.md, run as written (the address replaced).

Usage: TRADEWATCH_KEY=tw_... python3 scripts/sdk_python_check.py HOST:PORT
       (default 127.0.0.1:50051)
Needs: python3 -m pip install ./clients/python
Exits non-zero if any check fails.
"""

import glob
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid

PROGRAM = "programs/cq-2015-service-trade"
TARGET = PROGRAM + "/targets/services-trade-2020"
TIMEOUT = 10  # seconds per call
README_ADDR = "127.0.0.1:50051"  # the address the README examples are written for

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROTO_DIR = os.path.join(REPO, "proto", "tradewatch", "v1")

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


# Not from the source tree: this script's folder is sys.path[0], the repository is not.
try:
    import grpc
    from google.rpc import code_pb2, error_details_pb2, status_pb2
    from grpc_status import rpc_status

    import tradewatch.v1
    from tradewatch.v1 import (
        admin_service_pb2,
        admin_service_pb2_grpc,
        indicator_pb2,
        indicator_service_pb2,
        indicator_service_pb2_grpc,
        observation_pb2,
        observation_service_pb2,
        observation_service_pb2_grpc,
        program_pb2,
        program_service_pb2,
        program_service_pb2_grpc,
        report_pb2,
        reporting_service_pb2,
        reporting_service_pb2_grpc,
    )
except ImportError as e:
    fatal(f"{e}; install the package first: python3 -m pip install ./clients/python")


def details_of(error):
    """(violations, infos) of a failed call, read with grpc_status.rpc_status.from_call."""
    status = rpc_status.from_call(error)
    violations, infos = [], []
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            violations.extend(bad_request.field_violations)
        elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            infos.append(info)
    return status, violations, infos


def failure(call, *args, **kwargs):
    """The grpc.RpcError of a call that should fail, or None if it succeeded."""
    try:
        call(*args, **kwargs)
    except grpc.RpcError as e:
        return e
    return None


def main():
    addr = sys.argv[1] if len(sys.argv) > 1 else README_ADDR
    key = os.environ.get("TRADEWATCH_KEY", "")
    if not key:
        fatal("set TRADEWATCH_KEY to an admin key of the server")
    auth = [("authorization", f"Bearer {key}")]

    print(f"== The installed package: {os.path.dirname(tradewatch.v1.__file__)}")
    check("tradewatch.v1 is imported from an installed package, not the source tree",
          not os.path.abspath(tradewatch.v1.__file__).startswith(REPO + os.sep),
          tradewatch.v1.__file__)
    protos = sorted(os.path.basename(p)[:-len(".proto")]
                    for p in glob.glob(os.path.join(PROTO_DIR, "*.proto")))
    package_dir = os.path.dirname(tradewatch.v1.__file__)
    missing = [f"{p}{suffix}" for p in protos for suffix in ("_pb2.py", "_pb2_grpc.py", "_pb2.pyi")
               if not os.path.exists(os.path.join(package_dir, p + suffix))]
    check(f"it has the _pb2, _pb2_grpc and .pyi modules of all {len(protos)} protos",
          protos and not missing, ", ".join(missing))

    print(f"== Connecting to {addr}")
    with grpc.insecure_channel(addr) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
        except grpc.FutureTimeoutError:
            fatal(f"could not connect to {addr} within {TIMEOUT} s")
        programs = program_service_pb2_grpc.ProgramServiceStub(channel)
        run_checks(programs)
        run_report_checks(reporting_service_pb2_grpc.ReportingServiceStub(channel))
        run_auth_checks(programs, admin_service_pb2_grpc.AdminServiceStub(channel), auth)
        run_request_id_checks(programs, auth)
        run_deadline_checks(observation_service_pb2_grpc.ObservationServiceStub(channel))
        run_bad_request_checks(indicator_service_pb2_grpc.IndicatorServiceStub(channel), auth)
        run_refusal_checks(observation_service_pb2_grpc.ObservationServiceStub(channel), auth)
        run_readme_checks(programs, addr, key, auth)

    if failures:
        print(f"sdk_python_check: {failures} check(s) failed", file=sys.stderr)
        sys.exit(1)
    print("sdk_python_check: all checks passed")


def run_checks(programs):
    pb = program_service_pb2
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
    error = failure(programs.GetProgram, pb.GetProgramRequest(name="programs/NOPE"), timeout=TIMEOUT)
    if not check("raises grpc.RpcError", error is not None, "the call succeeded"):
        return
    check("with code INVALID_ARGUMENT", error.code() == grpc.StatusCode.INVALID_ARGUMENT,
          str(error.code()))
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

    try:
        from_call, violations, infos = details_of(error)
    except ValueError as e:  # from_call: the trailer disagrees with the call's status
        check("grpc_status.rpc_status.from_call reads the status", False, repr(e))
        return
    check("grpc_status.rpc_status.from_call gives the same google.rpc.Status",
          from_call == status, repr(from_call))
    for v in violations:
        print(f"       field violation: {v.field}: {v.description}")
    for i in infos:
        print(f"       error info: reason {i.reason}, domain {i.domain}")
    check("details contain a google.rpc.BadRequest with a field violation for \"name\"",
          any(v.field == "name" for v in violations), str([v.field for v in violations]))
    check("details contain a google.rpc.ErrorInfo with domain tradewatch.dev",
          any(i.domain == "tradewatch.dev" and i.reason for i in infos),
          str([(i.domain, i.reason) for i in infos]))


def run_report_checks(reports):
    """Target progress as scripts/e2e.sh left it: synthetic 2018-2020 values of 250, 280
    and 310 (x 10^8 USD) against 30 x 10^9 USD in 2020."""
    print(f"== GetTargetProgress {TARGET}")
    progress = reports.GetTargetProgress(
        reporting_service_pb2.GetTargetProgressRequest(name=TARGET), timeout=TIMEOUT)
    check("status is STATUS_ACHIEVED",
          progress.status == report_pb2.TargetProgress.STATUS_ACHIEVED,
          report_pb2.TargetProgress.Status.Name(progress.status))
    check("latest 2020 value is 31 (x 10^9 USD)",
          (progress.latest_period, progress.latest_value, progress.unit_multiplier) == ("2020", "31", 9),
          f"{progress.latest_period} {progress.latest_value} x 10^{progress.unit_multiplier}")
    check("attainment is 31/30",  # 31 / 30
          progress.HasField("attainment") and abs(progress.attainment - 31 / 30) < 1e-12,
          str(progress.attainment))


def new_program(program_id, title="SDK"):
    return program_service_pb2.CreateProgramRequest(
        program_id=program_id,
        program=program_pb2.Program(title=title, jurisdiction="CN-CQ", start_year=2020,
                                    end_year=2021))


def delete_program(programs, auth, name):
    """Deletes NAME if it exists (so that the checks can run again on one server)."""
    try:
        programs.DeleteProgram(program_service_pb2.DeleteProgramRequest(name=name, force=True),
                               metadata=auth, timeout=TIMEOUT)
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.NOT_FOUND:
            raise


def run_auth_checks(programs, admin, auth):
    """Writes need an API key, sent as `authorization: Bearer <key>` metadata."""
    print("== CreateProgram without a key")
    error = failure(programs.CreateProgram, new_program("sdk-python"), timeout=TIMEOUT)
    check("raises UNAUTHENTICATED", error and error.code() == grpc.StatusCode.UNAUTHENTICATED,
          str(error and error.code()))
    print("== GetProgram with a malformed key (the server reads the metadata)")
    error = failure(programs.GetProgram, program_service_pb2.GetProgramRequest(name=PROGRAM),
                    metadata=[("authorization", "Bearer tw_not-a-key")], timeout=TIMEOUT)
    check("raises UNAUTHENTICATED", error and error.code() == grpc.StatusCode.UNAUTHENTICATED,
          str(error and error.code()))
    print("== ListApiKeys with the admin key")
    keys = admin.ListApiKeys(admin_service_pb2.ListApiKeysRequest(), metadata=auth, timeout=TIMEOUT)
    check("at least the admin key is listed, without secrets",
          len(keys.api_keys) >= 1 and all(k.name.startswith("apiKeys/") for k in keys.api_keys),
          str([k.name for k in keys.api_keys]))
    check("an admin key is among them",
          any(k.role == admin_service_pb2.ROLE_ADMIN for k in keys.api_keys))


def run_request_id_checks(programs, auth):
    name = "programs/sdk-python-retry"
    delete_program(programs, auth, name)
    request = new_program("sdk-python-retry")
    request.request_id = str(uuid.uuid4())
    print(f"== CreateProgram {name} with the key and request_id {request.request_id}, twice")
    first = programs.CreateProgram(request, metadata=auth, timeout=TIMEOUT)
    check(f"the first call creates {name}", first.name == name, first.name)
    error = failure(programs.CreateProgram, request, metadata=auth, timeout=TIMEOUT)
    check("the retry succeeds too (no ALREADY_EXISTS)", error is None, str(error and error.code()))
    if error is None:
        again = programs.CreateProgram(request, metadata=auth, timeout=TIMEOUT)
        check("and answers the original programme (same etag and create_time)",
              (again.etag, again.create_time) == (first.etag, first.create_time),
              f"{again.etag} vs {first.etag}")
    print("== The same request_id with another title")
    other = new_program("sdk-python-retry", title="Another")
    other.request_id = request.request_id
    error = failure(programs.CreateProgram, other, metadata=auth, timeout=TIMEOUT)
    check("is INVALID_ARGUMENT", error and error.code() == grpc.StatusCode.INVALID_ARGUMENT,
          str(error and error.code()))
    if error:
        _, violations, infos = details_of(error)
        check("its details say REQUEST_ID_REUSED for the field request_id",
              any(i.reason == "REQUEST_ID_REUSED" for i in infos)
              and any(v.field == "request_id" for v in violations),
              f"{[i.reason for i in infos]} {[v.field for v in violations]}")
    programs.DeleteProgram(program_service_pb2.DeleteProgramRequest(name=name, etag=first.etag),
                           metadata=auth, timeout=TIMEOUT)
    print(f"  deleted {name}")

    print("== GetProgram with x-request-id: sdk-python-trace")
    _, call = programs.GetProgram.with_call(
        program_service_pb2.GetProgramRequest(name=PROGRAM),
        metadata=auth + [("x-request-id", "sdk-python-trace")], timeout=TIMEOUT)
    check("the response metadata carries x-request-id: sdk-python-trace",
          ("x-request-id", "sdk-python-trace") in tuple(call.initial_metadata() or ()),
          str(call.initial_metadata()))


def run_deadline_checks(observations):
    print("== WatchObservations (a stream that never ends by itself) with timeout=1")
    start = time.monotonic()
    received, code = 0, None
    try:
        for _ in observations.WatchObservations(
                observation_service_pb2.WatchObservationsRequest(from_beginning=True), timeout=1):
            received += 1
    except grpc.RpcError as e:
        code = e.code()
    elapsed = time.monotonic() - start
    check(f"ends with DEADLINE_EXCEEDED after about 1 s ({elapsed:.2f} s, {received} changes)",
          code == grpc.StatusCode.DEADLINE_EXCEEDED and 0.9 <= elapsed < 5, str(code))


def run_bad_request_checks(indicators, auth):
    print('== CreateIndicator with unit "UDS" (the README\'s example)')
    request = indicator_service_pb2.CreateIndicatorRequest(
        indicator_id="x", indicator=indicator_pb2.Indicator(title="x", unit="UDS"))
    error = failure(indicators.CreateIndicator, request, metadata=auth, timeout=TIMEOUT)
    check("raises INVALID_ARGUMENT", error and error.code() == grpc.StatusCode.INVALID_ARGUMENT,
          str(error and error.code()))
    if error:
        status, violations, _ = details_of(error)
        for v in violations:
            print(f"       field violation: {v.field}: {v.description}")
        check("rpc_status.from_call finds a BadRequest naming indicator.unit",
              status and any(v.field == "indicator.unit" for v in violations),
              str([v.field for v in violations]))


def run_refusal_checks(observations, auth):
    """A batch of 200 bad rows: grpcio (like every grpc-core client) refuses trailers
    over 8 KiB with RESOURCE_EXHAUSTED, so the refusal must stay under that to arrive as
    INVALID_ARGUMENT, every time."""
    rows = [observation_pb2.Observation(
                name=f"indicators/cq-services-trade-total/observations/{1800 + i}",
                value="n/a", status=observation_pb2.Observation.STATUS_NORMAL)
            for i in range(200)]
    print("== BatchCreateObservations of 200 bad rows, 10 times")
    codes, last = [], None
    for _ in range(10):
        error = failure(observations.BatchCreateObservations,
                        observation_service_pb2.BatchCreateObservationsRequest(observations=rows),
                        metadata=auth, timeout=TIMEOUT)
        codes.append(error.code().name if error else "OK")
        last = error or last
    check("every answer is INVALID_ARGUMENT (not RESOURCE_EXHAUSTED)",
          codes == ["INVALID_ARGUMENT"] * 10, str(codes))
    if codes and codes[-1] == "INVALID_ARGUMENT":
        try:
            _, violations, _ = details_of(last)
            check("grpc_status.rpc_status.from_call reads its details", True)
        except ValueError as e:  # the google.rpc.Status has another message than the call
            check("grpc_status.rpc_status.from_call reads its details", False, str(e))
            raw = [v for k, v in (last.trailing_metadata() or ()) if k == "grpc-status-details-bin"]
            status = status_pb2.Status.FromString(raw[0]) if raw else status_pb2.Status()
            violations = []
            for detail in status.details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad_request = error_details_pb2.BadRequest()
                    detail.Unpack(bad_request)
                    violations.extend(bad_request.field_violations)
        names = [v.field for v in violations]
        check("the message counts the problems in the 200 rows",
              "problems in the 200 rows" in last.details(), last.details())
        check("the details name the first bad rows, observations[0].value first",
              names[:1] == ["observations[0].value"], str(names[:3]))


def code_blocks(path, language, section=None):
    """The ```LANGUAGE code blocks of the Markdown file PATH (of its ## SECTION only)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if section:
        match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
        text = match.group(1) if match else ""
    return re.findall(rf"^```{language}\n(.*?)^```$", text, re.M | re.S)


def run_example(description, source, addr, key):
    """Runs SOURCE as a program of this Python, in an empty folder; returns its output."""
    source = source.replace(README_ADDR, addr)
    with tempfile.TemporaryDirectory(prefix="tradewatch-example-") as cwd:
        result = subprocess.run([sys.executable, "-c", source], cwd=cwd, capture_output=True,
                                text=True, timeout=60, env={**os.environ, "TRADEWATCH_KEY": key})
    for line in (result.stdout + result.stderr).splitlines():
        print(f"       | {line}")
    check(f"{description} runs without error", result.returncode == 0,
          f"exit status {result.returncode}")
    return result.stdout


def run_readme_checks(programs, addr, key, auth):
    print('== The Python code of the README\'s "SDK clients" section, as written')
    blocks = code_blocks(os.path.join(REPO, "README.md"), "python", "SDK clients")
    check("the section has Python code", blocks, "no ```python blocks")
    for name in ("programs/sdk-python-demo", "programs/sdk-python-bad"):
        delete_program(programs, auth, name)
    out = run_example("it", "\n".join(blocks), addr, key)
    check("it created programs/sdk-python-demo (key, deadline, request_id)",
          "programs/sdk-python-demo" in out.splitlines())
    check("it printed the BadRequest field violations of the bad programme",
          any(line.startswith("INVALID_ARGUMENT program.jurisdiction: ") for line in out.splitlines())
          and any(line.startswith("INVALID_ARGUMENT program.end_year: ") for line in out.splitlines()))
    delete_program(programs, auth, "programs/sdk-python-demo")

    print("== The example of clients/python/README.md, as written")
    blocks = code_blocks(os.path.join(REPO, "clients", "python", "README.md"), "python")
    check("it is one block of two lines", len(blocks) == 1 and blocks[0].count("\n") == 2,
          repr(blocks))
    out = run_example("it", "\n".join(blocks), addr, key)
    check("it printed the programme's title",
          out.startswith("Implementation Opinion of Chongqing People's Government"), repr(out))


if __name__ == "__main__":
    main()
