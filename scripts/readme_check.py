#!/usr/bin/env python3
"""Runs README.md top to bottom, as a newcomer would, against a fresh server.

A fresh clone of this repository's HEAD (the newcomer's checkout) in a temporary folder;
the release binary (`$CARGO_TARGET_DIR` or `target/`, built first: `cargo build
--release`) stands in for `cargo run --release` and is on PATH as `tradewatch`. It
starts with no DATABASE_URL (its private PostgreSQL under the clone's ./.tradewatch),
on the README's address 127.0.0.1:50051 and metrics port 9464, which must be free.

Session blocks (lines starting with "$ ") are compared with the README's output after
normalising timestamps, etags, rows/s and the key; sh blocks are run command by command
and must succeed (the one the README shows failing must fail); then the commands the
prose names are run and checked. Skipped: the SDK section (scripts/e2e.sh runs it), the
checks, the layout and the first two commands (CI runs them). Exits 1 on any failure.

Usage: python3 scripts/readme_check.py
Needs: git, grpcurl, curl, python3.
"""
import os, re, shlex, signal, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(HERE, "README.md")
BASE = tempfile.mkdtemp(prefix="readme-check.")
REPO = f"{BASE}/repo"
BIN = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(HERE, "target"),
                   "release", "tradewatch")

SKIP_SECTIONS = {"SDK clients", "Checks", "Layout", "The two commands"}

env = dict(os.environ)
env["PATH"] = f"{BASE}/bin:" + env["PATH"]
for k in list(env):
    if k.startswith("TRADEWATCH_") or k == "DATABASE_URL":
        del env[k]

failures = []


def norm(text):
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "<TS>", text)
    text = re.sub(r'\b[0-9a-f]{16}\b', "<ETAG>", text)
    text = re.sub(r"\(\d+ rows/s\)", "(<N> rows/s)", text)
    text = re.sub(r"tw_[A-Za-z0-9_-]+", "<KEY>", text)
    lines = [l for l in text.split("\n")
             if not l.startswith("all ") or "the server is checking and committing" not in l]
    return "\n".join(lines).rstrip("\n")


def run(cmd, merge=False):
    p = subprocess.run(["bash", "-c", cmd], cwd=REPO, env=env, capture_output=not merge,
                       stdout=subprocess.PIPE if merge else None,
                       stderr=subprocess.STDOUT if merge else None, text=True, timeout=120)
    return p.returncode, p.stdout, (p.stderr or "")


def blocks(md):
    section = None
    lines = md.split("\n")
    i = 0
    while i < len(lines):
        l = lines[i]
        if l.startswith("## "):
            section = l[3:].strip()
        if l.startswith("```"):
            lang = l[3:].strip()
            j = i + 1
            body = []
            while not lines[j].startswith("```"):
                body.append(lines[j])
                j += 1
            yield section, lang, body, i + 1
            i = j
        i += 1


def split_sh(body):
    cmds, cur = [], []
    for l in body:
        if not cur and (not l.strip() or l.lstrip().startswith("#")):
            continue
        cur.append(l)
        text = "\n".join(cur)
        if text.endswith("\\"):
            continue
        try:
            shlex.split(text, comments=True)
        except ValueError:
            continue
        cmds.append(text)
        cur = []
    assert not cur, cur
    return cmds


def split_session(body):
    items, i = [], 0
    while i < len(body):
        l = body[i]
        assert l.startswith("$ "), (i, l)
        cmd = l[2:]
        i += 1
        m = re.search(r"<<'(\w+)'", cmd)
        if m:
            while body[i] != m.group(1):
                cmd += "\n" + body[i]
                i += 1
            cmd += "\n" + body[i]
            i += 1
        out = []
        while i < len(body) and not body[i].startswith("$ "):
            out.append(body[i])
            i += 1
        items.append((cmd, "\n".join(out)))
    return items


def start_server():
    log = open(f"{BASE}/server.log", "w")
    p = subprocess.Popen([BIN], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(120):
        time.sleep(0.5)
        text = open(f"{BASE}/server.log").read()
        if "tradewatch is serving gRPC" in text:
            break
    else:
        sys.exit("server did not start:\n" + text)
    key = re.search(r"TRADEWATCH_KEY=(tw_\S+)", text).group(1)
    print("server pid", p.pid, "key", key[:18] + "…")
    print("".join(l + "\n" for l in text.split("\n") if not l.startswith("20")))
    return p, key


def main():
    if not os.access(BIN, os.X_OK):
        sys.exit(f"readme_check: {BIN} does not exist: cargo build --release first")
    subprocess.run(["git", "clone", "-q", HERE, REPO], check=True)
    os.makedirs(f"{BASE}/bin")
    os.symlink(BIN, f"{BASE}/bin/tradewatch")
    # Root's PostgreSQL runs as `postgres`, which must reach the data folder.
    os.chmod(BASE, 0o755)
    server, key = start_server()
    env["TRADEWATCH_KEY"] = key  # "export TRADEWATCH_KEY=tw_… with the key it printed"
    env["TRADEWATCH_SERVER"] = "http://127.0.0.1:50051"
    try:
        md = open(README).read()
        for section, lang, body, line in blocks(md):
            if section in SKIP_SECTIONS:
                print(f"--- skip block at line {line} ({section})")
                continue
            if any(l.startswith("$ ") for l in body[:1]):
                for cmd, expected in split_session(body):
                    rc, out, _ = run(cmd, merge=True)
                    ok = norm(out) == norm(expected)
                    print(f"=== [{section} l.{line}] $ {cmd.splitlines()[0]}\n    rc={rc} {'MATCH' if ok else 'DIFFERS'}")
                    if not ok:
                        failures.append((line, cmd))
                        import difflib
                        for d in difflib.unified_diff(norm(expected).split("\n"), norm(out).split("\n"),
                                                      "README", "actual", lineterm=""):
                            print("    " + d)
            elif lang == "sh":
                for cmd in split_sh(body):
                    rc, out, err = run(cmd)
                    print(f"=== [{section} l.{line}] {cmd.splitlines()[0]}{' …' if chr(10) in cmd else ''}\n    rc={rc}")
                    shown = (out + err).strip()
                    print("    " + "\n    ".join(shown.split("\n")[:12]) + ("\n    …" if shown.count("\n") >= 12 else ""))
                    expect_fail = "UDS" in cmd
                    if (rc != 0) != expect_fail:
                        failures.append((line, cmd))
            else:
                print(f"--- not a command block at line {line} ({section}): {body[0][:60]}")
        extra()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        time.sleep(1)
        pg = subprocess.run(["pgrep", "-f", f"{REPO}/.tradewatch/pgdata"], capture_output=True, text=True).stdout
        print("server exited", server.returncode, "; its PostgreSQL", "STILL RUNNING " + pg if pg else "stopped")
        print(open(f"{BASE}/server.log").read().strip().split("\n")[-1])
    print("\nFAILURES:", failures if failures else "none")
    if failures:
        sys.exit(1)
    subprocess.run(["rm", "-rf", BASE])


def check(cmd, want_rc, must=(), merge=True):
    rc, out, err = run(cmd, merge=merge)
    ok = rc == want_rc and all(m in out + err for m in must)
    print(f"=== [prose] {cmd}\n    rc={rc} {'OK' if ok else 'UNEXPECTED'}")
    print("    " + "\n    ".join((out + err).strip().split("\n")[:8]))
    if not ok:
        failures.append(("prose", cmd))


def extra():
    """Commands the README's prose names (outside code blocks)."""
    check("tradewatch report scorecard --program cq-2015-service-trade", 0,
          ["Develop offshore service outsourcing", "not assessable"])
    check("tradewatch programs list --filter 'title = \"Implementation*\"'", 0, ["cq-2015-service-trade"])
    check("tradewatch indicators list --filter 'title = \"Chongqing*\"'", 0,
          ["cq-services-trade-total", "cq-offshore-outsourcing-contracted", "cq-offshore-outsourcing-executed"])
    check("tradewatch programs list --filter 'titel = \"x\"'", 1,
          ['unknown field "titel" at 1; filterable fields: name, title'])
    check("tradewatch programs list --json", 0, ['"programs"'])
    check("tradewatch programs --json list", 0, ['"programs"'])
    check("tradewatch programs list --server 127.0.0.1:50051", 0, ["cq-2015-service-trade"])
    check("tradewatch programs list --listen 1.2.3.4:5", 2, ["--listen"])
    check("tradewatch programs list --server http://127.0.0.1:1", 3, ["cannot connect"])
    check("tradewatch import figures.csv --server 127.0.0.1:1", 3, ["error: "])
    check("tradewatch import all.csv --validate-only", 0, ["validated (nothing written) 3 rows"])
    check("tradewatch export --indicator cq-offshore-outsourcing-contracted "
          "--start-period 2019 --end-period 2019", 0, ["cq-offshore-outsourcing-contracted,2019,20.6,A"])
    check("tradewatch observations list cq-offshore-outsourcing-contracted --start 2019-13", 2,
          ['--start: "2019-13" is not a period in SDMX syntax'])
    check("tradewatch observations get cq-offshore-outsourcing-contracted 2017", 1,
          ["error: NOT_FOUND: indicators/cq-offshore-outsourcing-contracted/observations/2017 not found"])
    check("tradewatch keys create --role viewer --name readme-check", 0, ["tw_", "viewer"])
    check("tradewatch migrate", 0, ["leaving the private PostgreSQL cluster running"])
    check("tradewatch seed", 0, ["created=false"])
    check("tradewatch serve --listen 127.0.0.1:50052 --metrics-listen off", 1,
          ["another tradewatch server"])
    check("grpcurl -plaintext 127.0.0.1:50051 grpc.health.v1.Health/Check", 0, ['"SERVING"'])
    check("curl -s http://127.0.0.1:9464/metrics | grep -c '^tradewatch_grpc_calls_total'", 0)


main()
