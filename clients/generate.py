#!/usr/bin/env python3
"""Regenerates the checked-in client code from proto/tradewatch/v1/*.proto.

* clients/python/tradewatch/v1/: *_pb2.py, *_pb2.pyi and *_pb2_grpc.py, the output of
      python3 -m grpc_tools.protoc -Iproto --python_out=clients/python \\
          --pyi_out=clients/python --grpc_python_out=clients/python proto/tradewatch/v1/*.proto
* clients/node/proto/: a copy of proto/tradewatch/v1/*.proto, and google/rpc/status.proto
  and error_details.proto as googleapis-common-protos ships them (@grpc/proto-loader
  loads them at run time).

The output depends on the versions of grpcio-tools (its protoc) and
googleapis-common-protos, so it refuses to run with others than those pinned in
clients/requirements-generate.txt. With --check it writes nothing and fails when the
checked-in files differ from what it would write (scripts/e2e.sh runs it so).

Usage: python3 clients/generate.py [--check]
"""

import difflib
import glob
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIENTS = os.path.join(REPO, "clients")
PINS = os.path.join(CLIENTS, "requirements-generate.txt")
PY_DIR = os.path.join("clients", "python")           # --python_out etc.
PY_GENERATED = os.path.join(PY_DIR, "tradewatch", "v1")
NODE_PROTO = os.path.join("clients", "node", "proto")
GOOGLE_RPC = ["status.proto", "error_details.proto"]
PY_PATTERNS = ("*_pb2.py", "*_pb2.pyi", "*_pb2_grpc.py")


def fatal(message):
    print(f"generate: {message}", file=sys.stderr)
    sys.exit(1)


def check_versions():
    """The installed generator versions are the pinned ones."""
    pins = {}
    with open(PINS, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if "==" in line:
                name, version = line.split("==", 1)
                pins[name.strip()] = version.strip()
    hint = ("install the pinned versions: python3 -m venv /tmp/tw-gen && "
            "/tmp/tw-gen/bin/python -m pip install -r clients/requirements-generate.txt, "
            "then run /tmp/tw-gen/bin/python clients/generate.py")
    for name in ("grpcio-tools", "googleapis-common-protos"):
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            fatal(f"{name} is not installed; {hint}")
        if have != pins.get(name):
            fatal(f"{name} {have} is installed, clients/requirements-generate.txt pins "
                  f"{pins.get(name)}; {hint}")


def protos():
    found = sorted(glob.glob(os.path.join(REPO, "proto", "tradewatch", "v1", "*.proto")))
    if not found:
        fatal("no protos in proto/tradewatch/v1")
    return [os.path.relpath(p, REPO) for p in found]


def generate(root):
    """Writes everything generated under ROOT (a stand-in for the repository root)."""
    rel = protos()
    out = os.path.join(root, PY_DIR)
    os.makedirs(out, exist_ok=True)
    cmd = [sys.executable, "-m", "grpc_tools.protoc", "-Iproto", f"--python_out={out}",
           f"--pyi_out={out}", f"--grpc_python_out={out}", *rel]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        fatal(f"protoc failed ({result.returncode}):\n{result.stdout}{result.stderr}")

    node = os.path.join(root, NODE_PROTO)
    for proto in rel:  # proto/tradewatch/v1/x.proto -> clients/node/proto/tradewatch/v1/x.proto
        dest = os.path.join(node, os.path.relpath(proto, "proto"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(os.path.join(REPO, proto), dest)
    import google.rpc.status_pb2  # googleapis-common-protos ships the .proto files beside
    rpc_dir = os.path.dirname(google.rpc.status_pb2.__file__)
    os.makedirs(os.path.join(node, "google", "rpc"), exist_ok=True)
    for name in GOOGLE_RPC:
        shutil.copyfile(os.path.join(rpc_dir, name), os.path.join(node, "google", "rpc", name))


def managed(root):
    """The generated files under ROOT, as paths relative to it."""
    files = []
    for pattern in PY_PATTERNS:
        files += glob.glob(os.path.join(root, PY_GENERATED, pattern))
    files += glob.glob(os.path.join(root, NODE_PROTO, "**", "*.proto"), recursive=True)
    return sorted(os.path.relpath(f, root) for f in files)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def main():
    check = sys.argv[1:] == ["--check"]
    if sys.argv[1:] and not check:
        fatal("usage: python3 clients/generate.py [--check]")
    check_versions()
    with tempfile.TemporaryDirectory(prefix="tradewatch-clients-") as tmp:
        generate(tmp)
        want, have = managed(tmp), managed(REPO)
        stale = [f for f in have if f not in want]
        changed = [f for f in want
                   if f not in have or read(os.path.join(tmp, f)) != read(os.path.join(REPO, f))]
        if check:
            for f in stale:
                print(f"generate: {f} is not generated from the protos any more", file=sys.stderr)
            for f in changed:
                old = read(os.path.join(REPO, f)).splitlines(True) if f in have else []
                diff = list(difflib.unified_diff(old, read(os.path.join(tmp, f)).splitlines(True),
                                                 f"a/{f}", f"b/{f}"))
                print(f"generate: {f} is not current", file=sys.stderr)
                sys.stderr.writelines(diff[:40])
            if stale or changed:
                fatal(f"{len(stale) + len(changed)} file(s) differ from the protos; "
                      "run python3 clients/generate.py")
            print(f"generate: the {len(want)} generated client files are current")
            return
        for f in stale:
            os.remove(os.path.join(REPO, f))
        for f in changed:
            os.makedirs(os.path.dirname(os.path.join(REPO, f)), exist_ok=True)
            shutil.copyfile(os.path.join(tmp, f), os.path.join(REPO, f))
        print(f"generate: {len(changed)} written, {len(stale)} removed, "
              f"{len(want) - len(changed)} unchanged")


if __name__ == "__main__":
    main()
