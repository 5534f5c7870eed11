"""Sealed-bid upload throughput of the platform, served as in production (gunicorn + gevent).

Starts anvil with the dev consortium deployed, the platform (`scripts/run_platform.py`) on a fresh
SQLite database, publishes `--sections` sections through the API, registers the five dev bidders for
each, then uploads one sealed envelope of `--size` bytes per bidder and section from `--clients`
concurrent HTTP connections (bodies built before the clock starts). Measures accepted bids per second
and request latency, then how long the outbox took to confirm every commitment on chain.

Target (issue #6): >= 100 sealed 1 MB bids/s. The other target, 500 viewers of one opening hall, waits
for the opening hall. Ends with one JSON line.

    python scripts/bench_web.py [--sections 100] [--size 1048576] [--clients 16]
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import queue
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bidding_app.launch import RunningPlatform, start_platform
from contracts.client import Chain
from contracts.deploy import deploy, load_config
from contracts.devnode import start_anvil
from contracts.records import Role
from contracts.toolchain import PROJECT_ROOT, compile_all

PASSWORD = "bench-password"
KEK = "6a" * 32
OPENING_KEY = "0x02" + "ab" * 32
SECTIONS_PER_TENDER = 20


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def api(base: str, method: str, path: str, token: str | None = None, body: Any = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


Job = tuple[str, dict[str, str], bytes]


def upload_all(port: int, jobs: list[Job], clients: int) -> tuple[float, list[float], int]:
    """PUT every envelope (raw body, fields in headers) from `clients` keep-alive connections;
    returns the wall time, the latencies and the number of refused uploads."""
    work: queue.Queue[Job] = queue.Queue()
    for job in jobs:
        work.put(job)
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            try:
                path, headers, body = work.get_nowait()
            except queue.Empty:
                break
            started = time.perf_counter()
            connection.request("PUT", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if response.status != 201:
                    failures[0] += 1
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies, failures[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", type=int, default=100)
    parser.add_argument("--size", type=int, default=1024 * 1024)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers of the platform")
    args = parser.parse_args()

    compile_all()
    consortium = load_config(PROJECT_ROOT / "scripts" / "consortium.dev.json")
    folder = Path(tempfile.mkdtemp(prefix="bench-web-"))
    node = start_anvil()
    server: RunningPlatform | None = None
    try:
        chain = Chain(node.rpc_url)
        _deployment, manifest = deploy(chain, consortium)
        (folder / "deployment.json").write_text(json.dumps(manifest))
        port = free_port()
        server = start_platform(
            port,
            ["--rpc-url", node.rpc_url, "--deployment", str(folder / "deployment.json"),
             "--database-url", f"sqlite:///{folder / 'bench.db'}", "--workers", str(args.workers),
             "--seed", str(PROJECT_ROOT / "scripts" / "consortium.dev.json"), "--password", PASSWORD],
            {"JIANZHENG_KEY_ENCRYPTION_KEY": KEK, "JIANZHENG_UPLOAD_FOLDER": str(folder / "uploads"),
             "JIANZHENG_SECRET_KEY": "bench-" + uuid.uuid4().hex},
            folder / "server.log",
        )
        base = server.url

        def token(identifier: str) -> str:
            return str(api(base, "POST", "/api/v1/token", body={"username": identifier, "password": PASSWORD})["token"])

        agency = token(consortium.with_role(Role.AGENCY)[0].identifier)
        members = api(base, "GET", "/api/v1/organisations", agency)["organisations"]
        tenderer_id = next(o["id"] for o in members if "tenderer" in o["roles"])
        witness_ids = [o["id"] for o in members if "witness" in o["roles"]][:2]
        sections: list[int] = []
        opening = chain.now() + 3600
        print(f"publishing {args.sections} sections ...", flush=True)
        while len(sections) < args.sections:
            count = min(SECTIONS_PER_TENDER, args.sections - len(sections))
            draft = {"title": "压力测试项目", "description": "", "tenderer_id": tenderer_id,
                     "submission_key": uuid.uuid4().hex, "sections": [
                         {"title": f"标段{i + 1}", "opening_time": opening, "bid_bond": 100_00,
                          "bid_validity_days": 90, "min_valid_bids": 1, "witness_ids": witness_ids,
                          "witness_quorum": 1, "opening_key": OPENING_KEY} for i in range(count)]}
            sections += [s["id"] for s in api(base, "POST", "/api/v1/tenders", agency, draft)["sections"]]

        bidders = [m.identifier for m in consortium.with_role(Role.BIDDER)]
        bidder_tokens = [token(b) for b in bidders]
        print(f"registering {len(bidders)} bidders and building {len(bidders) * len(sections)} bodies ...", flush=True)
        jobs = []
        for bidder_token in bidder_tokens:
            for section in sections:
                api(base, "POST", f"/api/v1/sections/{section}/registration", bidder_token)
                envelope = os.urandom(args.size)
                headers = {"Authorization": f"Bearer {bidder_token}", "Content-Type": "application/octet-stream",
                           "X-Submission-Key": uuid.uuid4().hex,
                           "X-Commitment": "0x" + hashlib.sha256(envelope).hexdigest(),
                           "X-Cover-Kind": "cash_deposit", "X-Cover-Ref": f"DEP-{uuid.uuid4().hex[:10]}"}
                jobs.append((f"/api/v1/sections/{section}/bid", headers, envelope))

        print(f"uploading {len(jobs)} sealed bids of {args.size} bytes from {args.clients} connections ...",
              flush=True)
        wall, latencies, failures = upload_all(port, jobs, args.clients)
        rate = (len(jobs) - failures) / wall
        latencies.sort()
        p50 = statistics.median(latencies) * 1000
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
        print(f"accepted {len(jobs) - failures}/{len(jobs)} in {wall:.2f} s: {rate:.1f} bids/s "
              f"({rate * args.size / 2**20:.1f} MB/s), latency p50 {p50:.0f} ms, p99 {p99:.0f} ms", flush=True)

        started = time.perf_counter()
        admin = token(consortium.with_role(Role.REGULATOR)[0].identifier)
        while True:
            entries = api(base, "GET", "/api/v1/outbox", admin)["entries"]
            open_entries = [e for e in entries if e["status"] in ("pending", "signed")]
            if not open_entries or time.perf_counter() - started > 600:
                break
            time.sleep(1)
        drained = time.perf_counter() - started
        confirmed = sum(1 for e in entries if e["action"] == "commit_bid" and e["status"] == "confirmed")
        print(f"outbox: {confirmed} commitments confirmed on chain {drained:.1f} s after the last upload", flush=True)
        print(json.dumps({
            "bench": "web_bid_upload", "bids": len(jobs), "bid_bytes": args.size, "clients": args.clients,
            "workers": args.workers, "cores": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2),
            "failures": failures, "bids_per_s": round(rate, 1), "target_bids_per_s": 100,
            "meets_target": rate >= 100 and failures == 0, "latency_p50_ms": round(p50, 1),
            "latency_p99_ms": round(p99, 1), "commitments_confirmed": confirmed,
            "outbox_drain_s_after_uploads": round(drained, 1), "opening_hall_viewers": None,
        }))
        return 0
    finally:
        if server is not None:
            server.stop()
        node.stop()


if __name__ == "__main__":
    sys.exit(main())
