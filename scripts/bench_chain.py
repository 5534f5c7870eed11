"""Finalized contract transactions per second: chain_node (4 validators) against anvil, same workload.

The workload is what the platform sends most: signed `TenderRegistry.commitBid` calls from many
bidders, pre-signed, then sent with batched JSON-RPC (`eth_sendRawTransaction` x 200 per request).
For each chain it measures

- the finalized throughput at full load: all transactions sent as fast as the node takes them,
  counted from the first send to the block that holds the last one;
- the finality latency (send -> seen in a final block) at half of that rate, p50 and p99;
- the CPU time the node processes used per transaction at full load (all validators together),
  which, unlike the rates, does not swing with whatever else the machine runs;
- for chain_node, the peak RSS of each validator process.

It ends with one JSON line. anvil runs with `--block-time 1 --prune-history` (its own memory
otherwise grows with every block).

    python scripts/bench_chain.py [--txs 6000] [--bidders 200] [--skip-anvil]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eth_account import Account
from eth_utils import keccak

from chain_node.execution import DEFAULT_BLOCK_GAS_LIMIT
from chain_node.network import key_address, lay_out, start_validator, wait_for_blocks
from contracts.client import Chain, Deployment, Signer
from contracts.deploy import deploy, load_config
from contracts.devnode import start_anvil
from contracts.records import CoverKind, Role, SectionTerms, cover_commitment, id32, org_id
from contracts.toolchain import PROJECT_ROOT, compile_all

BATCH = 200


def bidder_keys(count: int) -> list[bytes]:
    return [keccak(text=f"jianzheng bench bidder {i}") for i in range(count)]


def post(url: str, payload: Any, timeout: float = 60) -> Any:
    body = json.dumps(payload).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


@dataclass
class Workload:
    raw_txs: list[str]
    tx_hashes: list[str]


def prepare(chain: Chain, keys: list[bytes], sections_needed: int) -> tuple[Deployment, list[bytes]]:
    """Deploy, admit the bench bidders, and open enough sections for every bidder to bid in each."""
    config = load_config(PROJECT_ROOT / "scripts" / "consortium.dev.json")
    deployment, _ = deploy(chain, config)
    admins = [m.signer for m in config.with_role(Role.ADMIN)][:2]
    deployer = config.deployer
    for key in keys:
        bidder = Signer.from_key(key)
        if int(chain.w3.eth.get_balance(bidder.account.address)) == 0:
            chain.send(deployer, bidder.address, b"", value=10**19, gas=21_000)
        deployment.consortium.enact(
            admins,
            lambda s, b=bidder: deployment.consortium.propose_add_member(
                s, b.address, org_id(f"bench {b.address}"), Role.BIDDER
            ),
        )
    agency = config.with_role(Role.AGENCY)[0].signer
    tenderer = config.with_role(Role.TENDERER)[0].signer
    witnesses = tuple(m.signer.address for m in config.with_role(Role.WITNESS))
    tender_id = id32(f"bench tender {uuid.uuid4()}")
    deployment.tenders.create_tender(agency, tender_id, tenderer.address, keccak(text="bench"))
    sections = []
    for _ in range(sections_needed):
        section_id = id32(f"bench section {uuid.uuid4()}")
        terms = SectionTerms(chain.now() + 30 * 86400, 86400, 10_000_00, witnesses, 2, 0, b"\x02" * 33)
        deployment.tenders.add_section(agency, tender_id, section_id, terms)
        sections.append(section_id)
    return deployment, sections


def sign_commits(
    chain: Chain, deployment: Deployment, keys: list[bytes], sections: list[bytes], count: int
) -> Workload:
    contract = deployment.tenders._contract
    base_fee = int(chain.w3.eth.get_block("latest")["baseFeePerGas"])
    raw, hashes = [], []
    addresses = {key: Account.from_key(key).address for key in keys}
    nonces = {key: int(chain.w3.eth.get_transaction_count(addresses[key])) for key in keys}
    index = 0
    for section in sections:
        for key in keys:
            if index >= count:
                break
            data = contract.encode_abi(
                "commitBid",
                args=[section, keccak(index.to_bytes(8, "big")), cover_commitment(
                    section, addresses[key], CoverKind.CASH_DEPOSIT, id32(str(index)), os.urandom(32)
                )],
            )
            tx = {
                "to": deployment.tenders.address,
                "data": data,
                "gas": 160_000,
                "maxFeePerGas": 4 * base_fee + 10**9,
                "maxPriorityFeePerGas": 10**9,
                "nonce": nonces[key],
                "chainId": chain.chain_id,
                "type": 2,
            }
            nonces[key] += 1
            signed = Account.sign_transaction(tx, key)
            raw.append("0x" + bytes(signed.raw_transaction).hex())
            hashes.append("0x" + bytes(signed.hash).hex())
            index += 1
    return Workload(raw, hashes)


class BlockWatcher:
    """Polls new final blocks and records when each transaction hash was first seen in one."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: dict[str, float] = {}
        self.last_block_time = 0.0
        self._stop = threading.Event()
        self._next = int(post(url, {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"})["result"], 16) + 1
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            answer = post(
                self.url,
                {"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": [hex(self._next), False]},
            )
            block = answer.get("result")
            if block is None:
                time.sleep(0.01)
                continue
            now = time.monotonic()
            for tx_hash in block["transactions"]:
                self.seen.setdefault(tx_hash, now)
            if block["transactions"]:
                self.last_block_time = now
            self._next += 1


def send_all(urls: list[str], raw: list[str], pace: float | None = None) -> dict[str, float]:
    """Send in batches round-robin over the nodes; with `pace` (tx/s) spread sends over time."""
    sent: dict[str, float] = {}
    start = time.monotonic()
    for number, offset in enumerate(range(0, len(raw), BATCH)):
        chunk = raw[offset : offset + BATCH]
        if pace is not None:
            due = start + offset / pace
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        batch = [
            {"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": [tx]}
            for i, tx in enumerate(chunk)
        ]
        answers = post(urls[number % len(urls)], batch)
        now = time.monotonic()
        for answer in answers:
            if "result" in answer:
                sent[answer["result"]] = now
            else:
                raise RuntimeError(f"transaction refused: {answer['error']}")
    return sent


def measure(urls: list[str], workload: Workload, pace: float | None, timeout: float = 600) -> dict[str, float]:
    watcher = BlockWatcher(urls[0])
    watcher.start()
    began = time.monotonic()
    sent = send_all(urls, workload.raw_txs, pace)
    deadline = time.monotonic() + timeout
    while len(watcher.seen.keys() & sent.keys()) < len(sent):
        if time.monotonic() > deadline:
            watcher.stop()
            raise TimeoutError(f"only {len(watcher.seen.keys() & sent.keys())} of {len(sent)} final")
        time.sleep(0.05)
    watcher.stop()
    finished = max(watcher.seen[h] for h in sent)
    latencies = sorted(watcher.seen[h] - sent[h] for h in sent)
    return {
        "tx": len(sent),
        "seconds": finished - began,
        "tps": len(sent) / (finished - began),
        "latency_p50_s": statistics.median(latencies),
        "latency_p99_s": latencies[int(0.99 * (len(latencies) - 1))],
    }


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bench(
    urls: list[str],
    chain: Chain,
    keys: list[bytes],
    count: int,
    label: str,
    before_measuring: Callable[[], object] | None = None,
    pids: Sequence[int] = (),
) -> dict[str, float]:
    """Full load, then half of its rate; `pids` are the node processes whose CPU time the full load is
    charged (the figure that does not swing with whatever else the machine runs)."""
    per_section = len(keys)
    deployment, sections = prepare(chain, keys, -(-2 * count // per_section))
    if before_measuring is not None:
        before_measuring()
    full = sign_commits(chain, deployment, keys, sections[: len(sections) // 2], count)
    print(f"[{label}] full load: {len(full.raw_txs)} commitBid transactions", file=sys.stderr)
    cpu_before = sum(cpu_seconds(pid) for pid in pids)
    at_full = measure(urls, full, None)
    cpu_ms_per_tx = (sum(cpu_seconds(pid) for pid in pids) - cpu_before) * 1000 / len(full.raw_txs)
    half_rate = at_full["tps"] / 2
    paced = sign_commits(
        chain, deployment, keys, sections[len(sections) // 2 :], min(count, int(half_rate * 20) + BATCH)
    )
    print(f"[{label}] half load: {len(paced.raw_txs)} at {half_rate:.0f} tx/s", file=sys.stderr)
    at_half = measure(urls, paced, half_rate)
    return {
        "finalized_tps": round(at_full["tps"], 1),
        "node_cpu_ms_per_tx": round(cpu_ms_per_tx, 3),
        "full_load_seconds": round(at_full["seconds"], 2),
        "half_load_tps": round(half_rate, 1),
        "latency_p50_s": round(at_half["latency_p50_s"], 3),
        "latency_p99_s": round(at_half["latency_p99_s"], 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--txs", type=int, default=6000)
    parser.add_argument("--bidders", type=int, default=200)
    parser.add_argument("--validators", type=int, default=4)
    parser.add_argument(
        "--skip-anvil", action="store_true", help="measure chain_node only (e.g. CPU per tx before/after a change)"
    )
    args = parser.parse_args(argv)
    compile_all()
    keys = bidder_keys(args.bidders)
    results: dict[str, Any] = {"workload": "TenderRegistry.commitBid, batched eth_sendRawTransaction", "txs": args.txs}

    with tempfile.TemporaryDirectory(prefix="jz-bench-") as folder:
        layouts = lay_out(Path(folder), args.validators, extra_accounts=[key_address(k) for k in keys])
        running = [start_validator(layout, Path(folder) / "logs") for layout in layouts]
        try:
            wait_for_blocks(layouts[0].rpc_url, 1, timeout=60)
            urls = [layout.rpc_url for layout in layouts]
            pids = [v.process.pid for v in running]
            results["chain_node"] = bench(urls, Chain(urls[0]), keys, args.txs, "chain_node", pids=pids)
            results["chain_node"]["validators"] = args.validators
            results["chain_node"]["peak_rss_mb_per_validator"] = [round(rss_peak_mb(v.process.pid), 1) for v in running]
        finally:
            for validator in running:
                validator.stop()

    if args.skip_anvil:
        print(json.dumps(results, sort_keys=True))
        return 0
    # Same block gas limit as chain_node; set up with automine, then measure with one block a second.
    anvil = start_anvil(prune_history=True, extra_args=("--gas-limit", str(DEFAULT_BLOCK_GAS_LIMIT)))
    try:
        chain = Chain(anvil.rpc_url)
        results["anvil"] = bench(
            [anvil.rpc_url],
            chain,
            keys,
            args.txs,
            "anvil",
            before_measuring=lambda: chain.w3.provider.make_request("evm_setIntervalMining", [1]),  # type: ignore[arg-type]
            pids=[anvil.process.pid],
        )
        results["anvil"]["peak_rss_mb"] = round(rss_peak_mb(anvil.process.pid), 1)
    finally:
        anvil.stop()
    results["ratio_chain_node_to_anvil"] = round(
        results["chain_node"]["finalized_tps"] / results["anvil"]["finalized_tps"], 3
    )
    results["targets"] = {
        "finalized_tps": 1200,
        "latency_p50_s": 1.0,
        "latency_p99_s": 2.0,
        "rss_mb_per_validator": 300,
    }
    print(json.dumps(results, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
