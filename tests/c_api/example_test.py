#!/usr/bin/env python3
"""Run one example host on a small audience and check what it distributed.

    example_test.py [--server PLATFORM_SERVER] -- COMMAND [ARG...]

The example gets CONFIG AUDIENCE DESTINATION... appended to COMMAND. The audience goes to a file
destination and, with --server, to a Meta audience on the platform test server, which this
script starts on a free loopback port and stops by its PID. The check: the example exits 0,
reports the job completed and each destination at 100 %, the file destination's manifest counts
exactly the usable rows, and the test server contains exactly the usable members.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request

USABLE_ROWS = 120
INVALID_ROWS = 7
META_TOKEN_VARIABLE = "ACT_EXAMPLE_META_TOKEN"
META_TOKEN = "example-token"


def write_audience(folder: str) -> None:
    with open(os.path.join(folder, "audience.csv"), "w", encoding="utf-8") as out:
        out.write("CUSTOMERID,EMAIL,PHONE,COUNTRY\n")
        for i in range(1, USABLE_ROWS + 1):
            out.write(f"c{i},Member.{i}@Example.com,,US\n")
        for i in range(INVALID_ROWS):
            # Nothing usable is left: an invalid email and no phone.
            out.write(f",no-at-sign-{i},,US\n")


def write_config(folder: str, meta_url: str | None) -> list[str]:
    """Write activation.json and return the destination names it defines."""
    destinations = {
        "files": {"type": "file", "profile": "meta", "settings": {"directory": "out", "format": "meta_csv", "fsync": False}}
    }
    if meta_url:
        destinations["meta_test"] = {
            "type": "meta",
            "profile": "meta",
            "settings": {"ad_account_id": "act_1001", "audience_name": "example customers", "base_url": meta_url},
            "secrets": {"access_token": META_TOKEN_VARIABLE},
        }
    config = {
        "store": "store/activation.db",
        "engine": {"workers": 1, "parallelism": 2, "batch_size": 50, "lease_seconds": 10, "heartbeat_seconds": 2},
        "audiences": {
            "customers": {
                "source": {"type": "csv", "path": "audience.csv"},
                "mapping": {"EMAIL": "email", "PHONE": "phone", "COUNTRY": "country"},
            }
        },
        "destinations": destinations,
    }
    with open(os.path.join(folder, "activation.json"), "w", encoding="utf-8") as out:
        json.dump(config, out, indent=2)
    return list(destinations)


def start_server(path: str) -> tuple[subprocess.Popen, int]:
    server = subprocess.Popen(
        [path, "--port", "0", "--token", META_TOKEN], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    line = server.stdout.readline().strip()
    if not line.isdigit():
        stop_server(server)
        raise SystemExit(f"example_test: the platform server printed no port (got {line!r})")
    return server, int(line)


def stop_server(server: subprocess.Popen) -> None:
    os.kill(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)


def fail(message: str, output: str = "") -> None:
    raise SystemExit(f"example_test: {message}\n--- example output ---\n{output}")


def check_server(port: int) -> None:
    # No proxy: the server listens on loopback, and a proxy from the environment would not reach it.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}/__inspect/meta/audiences", timeout=10) as answer:
        audiences = json.load(answer)["audiences"]
    counts = {audience["name"]: audience["member_count"] for audience in audiences}
    if counts != {"example customers": USABLE_ROWS}:
        fail(f"the test server holds {counts}, expected {USABLE_ROWS} members in 'example customers'")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", help="the activation-platform-server program")
    parser.add_argument("command", nargs="+")
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="act-example-")
    server = None
    try:
        write_audience(folder)
        port = None
        if args.server:
            server, port = start_server(args.server)
        destinations = write_config(folder, f"http://127.0.0.1:{port}/meta" if port else None)

        env = dict(os.environ, **{META_TOKEN_VARIABLE: META_TOKEN})
        command = args.command + [os.path.join(folder, "activation.json"), "customers"] + destinations
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        output = result.stdout + result.stderr
        if result.returncode != 0:
            fail(f"{' '.join(command)} exited with {result.returncode}", output)
        if "completed" not in result.stdout:
            fail("the example did not report a completed job", output)
        for destination in destinations:
            if not re.search(rf"^{destination}\s+100\.0%.*\bdone$", result.stdout, re.MULTILINE):
                fail(f"no progress line shows {destination} done at 100 %", output)

        manifests = glob.glob(os.path.join(folder, "out", "job-*", "manifest.json"))
        if len(manifests) != 1:
            fail(f"expected one manifest, found {manifests}", output)
        with open(manifests[0], encoding="utf-8") as file:
            totals = json.load(file)["totals"]
        if (totals["add_rows"], totals["invalid"]) != (USABLE_ROWS, INVALID_ROWS):
            fail(f"the manifest counts {totals}, expected {USABLE_ROWS} added and {INVALID_ROWS} invalid", output)
        if port:
            check_server(port)
        print(result.stdout, end="")
        print(f"example_test: {' '.join(args.command)} distributed to {', '.join(destinations)}")
    finally:
        if server is not None:
            stop_server(server)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
