#!/usr/bin/env python3
"""Generates docs/api.md from the comments in proto/tradewatch/v1/*.proto.

Compiles the protos with grpc_tools.protoc (keeping source info, i.e. the comments) into
a descriptor set and writes one Markdown page: every service and method, every message
with its fields, every enum with its values, and the resource name patterns found in
the comments. CI runs it with --check, which fails when docs/api.md is not current.

Usage: python3 scripts/gen_api_docs.py [--check]
"""

import glob
import re
import os
import subprocess
import sys
import tempfile

from google.protobuf import descriptor_pb2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "docs", "api.md")

# Field types as written in .proto files.
TYPE_NAMES = {
    descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE: "double",
    descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT: "float",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT64: "int64",
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT64: "uint64",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT32: "int32",
    descriptor_pb2.FieldDescriptorProto.TYPE_FIXED64: "fixed64",
    descriptor_pb2.FieldDescriptorProto.TYPE_FIXED32: "fixed32",
    descriptor_pb2.FieldDescriptorProto.TYPE_BOOL: "bool",
    descriptor_pb2.FieldDescriptorProto.TYPE_STRING: "string",
    descriptor_pb2.FieldDescriptorProto.TYPE_BYTES: "bytes",
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT32: "uint32",
    descriptor_pb2.FieldDescriptorProto.TYPE_SFIXED32: "sfixed32",
    descriptor_pb2.FieldDescriptorProto.TYPE_SFIXED64: "sfixed64",
    descriptor_pb2.FieldDescriptorProto.TYPE_SINT32: "sint32",
    descriptor_pb2.FieldDescriptorProto.TYPE_SINT64: "sint64",
}


def compile_protos():
    protos = sorted(glob.glob(os.path.join(ROOT, "proto", "tradewatch", "v1", "*.proto")))
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "api.pb")
        subprocess.run(
            [sys.executable, "-m", "grpc_tools.protoc", "-I" + os.path.join(ROOT, "proto"),
             "--include_source_info", "-o", out] + protos,
            check=True)
        fds = descriptor_pb2.FileDescriptorSet()
        with open(out, "rb") as f:
            fds.ParseFromString(f.read())
    return fds


def comments(file_proto):
    """Maps a source path (tuple) to its leading comment."""
    found = {}
    for loc in file_proto.source_code_info.location:
        text = loc.leading_comments.strip("\n")
        if text:
            lines = [line[1:] if line.startswith(" ") else line for line in text.split("\n")]
            found[tuple(loc.path)] = "\n".join(lines).strip()
    return found


def one_line(text):
    return " ".join(text.split()).replace("|", "\\|")


def type_of(field):
    if field.type_name:
        name = field.type_name.lstrip(".")
        local = name[len("tradewatch.v1."):] if name.startswith("tradewatch.v1.") else name
        if name.startswith("tradewatch.v1."):
            return f"[`{local}`](#{local.lower().replace('.', '')})"
        return f"`{name}`"
    return f"`{TYPE_NAMES[field.type]}`"


def render(fds):
    files = [f for f in fds.file if f.package == "tradewatch.v1"]
    files.sort(key=lambda f: f.name)
    out = ["# tradewatch API reference", "",
           "Generated from the comments in `proto/tradewatch/v1/*.proto` by "
           "`scripts/gen_api_docs.py`; do not edit by hand (CI checks it is current).", "",
           "Package `tradewatch.v1`. Errors follow AIP-193 (see `ProgramService`).", ""]

    patterns = []
    for f in files:
        for c in comments(f).values():
            for line in c.split("\n"):
                if "Resource name pattern:" in line:
                    rest = line.split("Resource name pattern:")[1]
                    patterns += re.findall(r"`[^`]+`", rest)
    if patterns:
        out += ["## Resource names", ""] + [f"- {p}" for p in sorted(set(patterns))] + [""]

    # The hand-written worked example (docs/worked-example.md), kept beside the reference.
    example = os.path.join(ROOT, "docs", "worked-example.md")
    if os.path.exists(example):
        out += ["## Worked example: a statistician's questions", "",
                "From `docs/worked-example.md` (hand-written; the figures come from a real "
                "server run).", ""]
        out += open(example).read().rstrip("\n").split("\n") + [""]

    out += ["## Services", ""]
    for f in files:
        c = comments(f)
        for si, svc in enumerate(f.service):
            out += [f"### {svc.name}", "", c.get((6, si), ""), "",
                    "| Method | Request | Response | Description |", "|---|---|---|---|"]
            for mi, m in enumerate(svc.method):
                req = m.input_type.lstrip(".").replace("tradewatch.v1.", "")
                resp = m.output_type.lstrip(".").replace("tradewatch.v1.", "")
                if m.client_streaming:
                    req = "stream " + req
                if m.server_streaming:
                    resp = "stream " + resp
                out.append(f"| `{m.name}` | `{req}` | `{resp}` | {one_line(c.get((6, si, 2, mi), ''))} |")
            out.append("")

    out += ["## Messages", ""]

    def message(msg, path, c, prefix):
        full = prefix + msg.name
        lines = [f"### {full}", "", c.get(path, ""), ""]
        if msg.field:
            lines += ["| Field | Number | Type | Description |", "|---|---|---|---|"]
            for fi, field in enumerate(msg.field):
                t = type_of(field)
                if field.label == descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED:
                    t = "repeated " + t
                if field.proto3_optional:
                    t = "optional " + t
                lines.append(f"| `{field.name}` | {field.number} | {t} | {one_line(c.get(path + (2, fi), ''))} |")
            lines.append("")
        for ei, enum in enumerate(msg.enum_type):
            lines += enum_block(enum, path + (4, ei), c, full + ".")
        for ni, nested in enumerate(msg.nested_type):
            if nested.options.map_entry:
                continue
            lines += message(nested, path + (3, ni), c, full + ".")
        return lines

    def enum_block(enum, path, c, prefix):
        lines = [f"### {prefix}{enum.name}", "", c.get(path, ""), "",
                 "| Value | Number | Description |", "|---|---|---|"]
        for vi, v in enumerate(enum.value):
            lines.append(f"| `{v.name}` | {v.number} | {one_line(c.get(path + (2, vi), ''))} |")
        return lines + [""]

    for f in files:
        c = comments(f)
        for mi, msg in enumerate(f.message_type):
            out += message(msg, (4, mi), c, "")
    out += ["## Enums", ""]
    for f in files:
        c = comments(f)
        for ei, enum in enumerate(f.enum_type):
            out += enum_block(enum, (5, ei), c, "")
    return "\n".join(line.rstrip() for line in out).rstrip() + "\n"


def main():
    text = render(compile_protos())
    if "--check" in sys.argv:
        current = open(OUT).read() if os.path.exists(OUT) else ""
        if current != text:
            print("docs/api.md is out of date: run python3 scripts/gen_api_docs.py", file=sys.stderr)
            sys.exit(1)
        print("docs/api.md is current")
        return
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write(text)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
