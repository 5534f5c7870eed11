"""Sealed-bid upload throughput of the platform, served as in production (gunicorn + gevent).

Starts anvil with the dev consortium deployed, the platform (`scripts/run_platform.py`) on a fresh
SQLite database, publishes `--sections` sections through the API, registers the five dev bidders for
each, then uploads one sealed envelope of `--size` bytes per bidder and section from `--clients`
concurrent HTTP connections (bodies built before the clock starts). Measures accepted bids per second
and request latency, then how long the outbox took to confirm every commitment on chain.

Target (issue #6): >= 100 sealed 1 MB bids/s.

The hall half (`--hall-viewers`, default 500): one section with a real DKG opening key (3 witnesses,
quorum 2) gets the five dev bidders' sealed bids; N viewers hold server-sent-event connections to its
opening hall (`/api/v1/sections/<id>/hall/events`, one asyncio connection each, tokens of the section's
admitted organisations); chain time moves past the opening time, two witnesses upload their share
batches, and the platform's outbox sender anchors them, opens the bids and emits one 唱标 event per bid.
Measured per viewer and event: receipt time minus the event's creation time (`created_ms`, same
machine). Target: every viewer receives every 唱标 event within 1 s. Ends with one JSON line.

    python scripts/bench_web.py [--sections 100] [--size 1048576] [--clients 16] [--workers 2] [--hall-viewers 500]
    python scripts/bench_web.py --only hall      # the opening hall half alone
    python scripts/bench_web.py --keep           # keep the working folder (removed by default)
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import http.client
import json
import os
import queue
import shutil
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
from contracts.client import Chain, TenderRegistryClient
from contracts.deploy import deploy, load_config
from contracts.devnode import mine_at, start_anvil
from contracts.records import Role
from contracts.toolchain import PROJECT_ROOT, compile_all
from opening import dkg
from opening.envelope import seal_bid
from opening.witness import AccessRequest, WitnessShare, release_shares

PASSWORD = "bench-password"
KEK = "6a" * 32


def upload_opening_key() -> str:
    """A real 1-of-2 opening key for the upload half's sections (the platform checks keys at publication;
    the upload half never opens its random envelopes, so nobody keeps the shares)."""
    return "0x" + dkg.key_dealt_in_one_place(1, 2).encode().hex()
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


def tree_cpu_seconds(root: int) -> dict[str, float]:
    """CPU seconds (user + system) used so far by `root` and each of its descendants, by command name
    (e.g. the gunicorn workers and the outbox sender under the platform), read from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[str, float] = {}
    pending = [root]
    while pending:
        pid = pending.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            for task in Path(f"/proc/{pid}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
        name = "sender" if b"send-outbox" in command else "worker" if pid != root else "master"
        found[name] = found.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return found


def node_cpu_seconds(chain: Chain) -> dict[str, float]:
    """CPU seconds used so far by the local node that `chain` talks to (anvil here), found by its port."""
    port = chain.rpc_url.rsplit(":", 1)[1].split("/")[0]
    for stat in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = stat.read_bytes().split(b"\0")
        except OSError:
            continue
        if command and command[0].endswith(b"anvil") and port.encode() in command:
            return {"node": tree_cpu_seconds(int(stat.parent.name))["master"]}
    return {}


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


Timings = list[list[float]]  # per viewer: the delay of each 唱标 event received, seconds


async def _viewer(port: int, path: str, token: str, delays: list[float], connected: list[int],
                  stop: asyncio.Event) -> None:
    """One hall viewer: an SSE connection (HTTP/1.0, so the body is the raw stream) that notes, for
    each 唱标 event, how long after its creation it arrived."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
    writer.write(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"hall stream refused: {status!r}")
    connected[0] += 1
    try:
        while not stop.is_set():
            line = await reader.readline()
            if not line:
                break
            if line.startswith(b"data: "):
                received = time.time()
                event = json.loads(line[6:])
                if event.get("kind") == "announcement":
                    delays.append(received - event["created_ms"] / 1000)
    finally:
        writer.close()


async def _watch(port: int, path: str, tokens: list[str], viewers: int, expected: int,
                 trigger: threading.Event, done: threading.Event, timeout: float) -> Timings:
    """Connect every viewer, signal `trigger` once all are in, wait until each got `expected` events."""
    stop = asyncio.Event()
    delays: Timings = [[] for _ in range(viewers)]
    connected = [0]
    tasks = [asyncio.create_task(_viewer(port, path, tokens[n % len(tokens)], delays[n], connected, stop))
             for n in range(viewers)]
    started = time.monotonic()
    while connected[0] < viewers and time.monotonic() - started < 120:
        await asyncio.sleep(0.1)
    print(f"{connected[0]} viewers connected to the hall in {time.monotonic() - started:.1f} s", flush=True)
    trigger.set()
    started = time.monotonic()
    while time.monotonic() - started < timeout and any(len(d) < expected for d in delays):
        await asyncio.sleep(0.1)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    done.set()
    return delays


def bench_hall(base: str, port: int, chain: Chain, registry: TenderRegistryClient, consortium: Any, token: Any,
               viewers: int, workspace: Path) -> dict[str, Any]:
    """The opening hall half: N viewers of one hall, each receiving every 唱标 event."""
    agency = token(consortium.with_role(Role.AGENCY)[0].identifier)
    members = api(base, "GET", "/api/v1/organisations", agency)["organisations"]
    tenderer_id = next(o["id"] for o in members if "tenderer" in o["roles"])
    witness_ids = [o["id"] for o in members if "witness" in o["roles"]]
    transport = [dkg.new_transport_key() for _ in witness_ids]
    params = dkg.DkgParams(os.urandom(32), 2, tuple(public for _, public in transport))
    deals = [dkg.deal(params, dealer) for dealer in range(1, len(witness_ids) + 1)]
    outcome = dkg.finish(params, deals, [])
    opening_key = outcome.opening_key.encode()
    opening = chain.now() + 120
    draft = {"title": "开标大厅压力测试", "description": "", "tenderer_id": tenderer_id,
             "submission_key": uuid.uuid4().hex, "sections": [
                 {"title": "大厅标段", "opening_time": opening, "bid_bond": 100_00, "bid_validity_days": 90,
                  "min_valid_bids": 3, "witness_ids": witness_ids, "witness_quorum": 2,
                  "opening_key": "0x" + opening_key.hex()}]}
    section = api(base, "POST", "/api/v1/tenders", agency, draft)["sections"][0]
    section_id = bytes.fromhex(section["chain_id"][2:])
    bidders = consortium.with_role(Role.BIDDER)
    bids = []
    for number, member in enumerate(bidders):
        bidder_token = token(member.identifier)
        api(base, "POST", f"/api/v1/sections/{section['id']}/registration", bidder_token)
        envelope = seal_bid(section_id, opening_key, member.signer.address.lower(),
                            {"price_fen": 100_000_000 + number * 1_000_00, "duration_days": 180}, os.urandom(4096))
        request = urllib.request.Request(base + f"/api/v1/sections/{section['id']}/bid", data=envelope, method="PUT",
                                         headers={"Authorization": f"Bearer {bidder_token}",
                                                  "Content-Type": "application/octet-stream",
                                                  "X-Submission-Key": uuid.uuid4().hex,
                                                  "X-Commitment": "0x" + hashlib.sha256(envelope).hexdigest(),
                                                  "X-Cover-Kind": "cash_deposit", "X-Cover-Ref": f"DEP-H{number}"})
        with urllib.request.urlopen(request, timeout=60) as response:
            bids.append((bidder_token, json.loads(response.read())["id"]))
    while any(api(base, "GET", f"/api/v1/bids/{bid}", t)["status"] != "committed" for t, bid in bids):
        time.sleep(0.5)
    print(f"hall section {section['id']}: {len(bids)} sealed bids committed on chain", flush=True)

    admitted = [m.identifier for m in [*consortium.with_role(Role.AGENCY), *consortium.with_role(Role.TENDERER),
                                       *consortium.with_role(Role.WITNESS), *consortium.with_role(Role.REGULATOR)]]
    tokens = [t for t, _ in bids] + [token(identifier) for identifier in admitted]
    trigger, done = threading.Event(), threading.Event()
    result: list[Timings] = []
    path = f"/api/v1/sections/{section['id']}/hall/events"
    watcher = threading.Thread(target=lambda: result.append(asyncio.run(
        _watch(port, path, tokens, viewers, len(bids), trigger, done, 90))))
    watcher.start()
    trigger.wait()

    # The opening: chain time passes the opening time; two witnesses compute their batches on their side
    # (the witness software: deadline check, key check, shares with proofs) and upload them.
    mine_at(chain, opening)
    witnesses = consortium.with_role(Role.WITNESS)
    order = [a.lower() for a in registry.witnesses(section_id)]
    folder = workspace / "witness-envelopes"
    folder.mkdir(parents=True, exist_ok=True)
    for member in witnesses[:2]:
        index = order.index(member.signer.address.lower()) + 1
        secret = dkg.secret_share(params, deals, outcome, index, transport[index - 1][0])
        witness_token = token(member.identifier)
        listing = api(base, "GET", f"/api/v1/sections/{section['id']}/envelopes", witness_token)["envelopes"]
        envelopes = {}
        for entry in listing:
            request = urllib.request.Request(base + entry["url"], headers={"Authorization": f"Bearer {witness_token}"})
            with urllib.request.urlopen(request, timeout=60) as response:
                envelopes[entry["bidder"]] = folder / f"{entry['bidder']}.jzb"
                envelopes[entry["bidder"]].write_bytes(response.read())
        batch = release_shares(registry, member.signer,
                               WitnessShare(section_id, index, secret, opening_key), envelopes,
                               AccessRequest(section_id, member.identifier, "decryption shares", int(time.time())))
        upload = urllib.request.Request(base + f"/api/v1/sections/{section['id']}/share-batches",
                                        data=batch.canonical(), method="POST",
                                        headers={"Authorization": f"Bearer {witness_token}",
                                                 "Content-Type": "application/json"})
        urllib.request.urlopen(upload, timeout=60).close()
    print("two share batches uploaded; waiting for the 唱标 events ...", flush=True)
    watcher.join()
    delays = result[0]
    every = sorted(d for viewer in delays for d in viewer)
    complete = sum(1 for viewer in delays if len(viewer) == len(bids))
    within = sum(1 for viewer in delays if len(viewer) == len(bids) and max(viewer) <= 1.0)
    p50 = statistics.median(every) * 1000 if every else None
    p99 = every[min(len(every) - 1, int(len(every) * 0.99))] * 1000 if every else None
    worst = every[-1] * 1000 if every else None
    print(f"hall: {viewers} viewers, {len(bids)} 唱标 events each: {complete} got all, {within} got all within 1 s; "
          f"delay p50 {p50 or 0:.0f} ms, p99 {p99 or 0:.0f} ms, max {worst or 0:.0f} ms", flush=True)
    return {"opening_hall_viewers": viewers, "hall_announcements": len(bids), "hall_viewers_complete": complete,
            "hall_viewers_all_within_1s": within,
            "hall_delay_p50_ms": round(p50, 1) if p50 is not None else None,
            "hall_delay_p99_ms": round(p99, 1) if p99 is not None else None,
            "hall_delay_max_ms": round(worst, 1) if worst is not None else None,
            "hall_meets_target": within == viewers}


def bench_uploads(base: str, port: int, platform_pid: int, chain: Chain, consortium: Any, token: Any,
                  args: argparse.Namespace) -> (
        dict[str, Any]):
    agency = token(consortium.with_role(Role.AGENCY)[0].identifier)
    members = api(base, "GET", "/api/v1/organisations", agency)["organisations"]
    tenderer_id = next(o["id"] for o in members if "tenderer" in o["roles"])
    witness_ids = [o["id"] for o in members if "witness" in o["roles"]][:2]
    sections: list[int] = []
    opening, opening_key = chain.now() + 3600, upload_opening_key()
    print(f"publishing {args.sections} sections ...", flush=True)
    while len(sections) < args.sections:
        count = min(SECTIONS_PER_TENDER, args.sections - len(sections))
        draft = {"title": "压力测试项目", "description": "", "tenderer_id": tenderer_id,
                 "submission_key": uuid.uuid4().hex, "sections": [
                     {"title": f"标段{i + 1}", "opening_time": opening, "bid_bond": 100_00,
                      "bid_validity_days": 90, "min_valid_bids": 1, "witness_ids": witness_ids,
                      "witness_quorum": 1, "opening_key": opening_key} for i in range(count)]}
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

    print(f"uploading {len(jobs)} sealed bids of {args.size} bytes from {args.clients} connections ...", flush=True)
    cpu_before, bench_before = tree_cpu_seconds(platform_pid) | node_cpu_seconds(chain), os.times()
    wall, latencies, failures = upload_all(port, jobs, args.clients)
    cpu_after, bench_after = tree_cpu_seconds(platform_pid) | node_cpu_seconds(chain), os.times()
    cpu_ms = {name: round((cpu_after[name] - cpu_before.get(name, 0.0)) * 1000 / len(jobs), 2) for name in cpu_after}
    cpu_ms["bench_clients"] = round((bench_after.user + bench_after.system - bench_before.user - bench_before.system)
                                    * 1000 / len(jobs), 2)
    rate = (len(jobs) - failures) / wall
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    print(f"accepted {len(jobs) - failures}/{len(jobs)} in {wall:.2f} s: {rate:.1f} bids/s "
          f"({rate * args.size / 2**20:.1f} MB/s), latency p50 {p50:.0f} ms, p99 {p99:.0f} ms", flush=True)
    print(f"CPU ms per upload: {cpu_ms}", flush=True)

    started = time.perf_counter()
    admin = token(consortium.with_role(Role.REGULATOR)[0].identifier)
    while True:
        counts = api(base, "GET", "/api/v1/outbox", admin)["counts"]
        open_entries = sum(by_status.get("pending", 0) + by_status.get("signed", 0) for by_status in counts.values())
        if not open_entries or time.perf_counter() - started > 600:
            break
        time.sleep(1)
    drained = time.perf_counter() - started
    confirmed = counts.get("commit_bid", {}).get("confirmed", 0)
    print(f"outbox: {confirmed} commitments confirmed on chain {drained:.1f} s after the last upload", flush=True)
    return {"bids": len(jobs), "bid_bytes": args.size, "clients": args.clients, "failures": failures,
            "bids_per_s": round(rate, 1), "target_bids_per_s": 100, "meets_target": rate >= 100 and failures == 0,
            "latency_p50_ms": round(p50, 1), "latency_p99_ms": round(p99, 1), "cpu_ms_per_upload": cpu_ms,
            "commitments_confirmed": confirmed,
            "outbox_drain_s_after_uploads": round(drained, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", type=int, default=100)
    parser.add_argument("--size", type=int, default=1024 * 1024)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers of the platform (as served)")
    parser.add_argument("--hall-viewers", type=int, default=500, help="SSE viewers of one opening hall")
    parser.add_argument("--only", choices=("uploads", "hall"), help="run one half only")
    parser.add_argument("--keep", action="store_true",
                        help="keep the working folder (database, uploads, server.log); removed otherwise")
    args = parser.parse_args()

    compile_all()
    consortium = load_config(PROJECT_ROOT / "scripts" / "consortium.dev.json")
    folder = Path(tempfile.mkdtemp(prefix="bench-web-"))
    node = start_anvil()
    server: RunningPlatform | None = None
    try:
        chain = Chain(node.rpc_url)
        deployment, manifest = deploy(chain, consortium)
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
        tokens: dict[str, str] = {}

        def token(identifier: str) -> str:
            """One API token per user, kept: asking again would replace (revoke) the earlier one."""
            if identifier not in tokens:
                tokens[identifier] = str(api(base, "POST", "/api/v1/token",
                                             body={"username": identifier, "password": PASSWORD})["token"])
            return tokens[identifier]

        line: dict[str, Any] = {"bench": "web", "workers": args.workers, "cores": os.cpu_count()}
        if args.only != "hall":
            line |= bench_uploads(base, port, server.process.pid, chain, consortium, token, args)
        if args.only != "uploads":
            line |= bench_hall(base, port, chain, deployment.tenders, consortium, token, args.hall_viewers, folder)
        line["load_average_1m"] = round(os.getloadavg()[0], 2)
        print(json.dumps(line, ensure_ascii=False))
        return 0
    finally:
        if server is not None:
            server.stop()
        node.stop()
        if args.keep:
            print(f"kept {folder}", flush=True)
        else:  # 500 MB of envelopes per 500 uploads
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
