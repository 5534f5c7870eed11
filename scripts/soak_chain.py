"""Memory of chain_node validators over a long run: one million contract transactions, then their RSS.

The workload is contract calls the platform really sends: the bench bidders commit one bid each in
one section, then keep replacing it (`TenderRegistry.replaceBid`, allowed until the deadline), so
every transaction runs the contract, writes storage and emits an event. Transactions are signed
here with coincurve as they are sent (pre-signing a million would take minutes and gigabytes),
in batched `eth_sendRawTransaction` requests spread over the validators, with at most `--window`
transactions sent but not yet final.

Every `--sample-seconds` it records each validator's resident memory; it ends with one JSON line:
transactions, seconds, finalized tx/s, RSS per validator at the end and at each 10 % of the run,
peak RSS (VmHWM), data folder sizes, and the same workload's figures on anvil (`--prune-history`,
one block a second) for `--anvil-txs` transactions as the reference. Target: at most 300 MB per
validator after one million transactions.

    python scripts/soak_chain.py [--txs 1000000] [--bidders 200] [--anvil-txs 100000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_chain import BATCH, bidder_keys, post, prepare, rss_peak_mb
from eth_utils import keccak, to_canonical_address

from chain_node.execution import DEFAULT_BLOCK_GAS_LIMIT
from chain_node.network import key_address, lay_out, start_validator, wait_for_blocks
from contracts.client import Chain, sign_offline
from contracts.devnode import start_anvil
from contracts.records import id32
from contracts.toolchain import compile_all

GAS = 120_000


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def folder_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


class Signer1559:
    """Signs a bidder's EIP-1559 calls one after the other, offline (`contracts.client.sign_offline`)."""

    def __init__(self, key: bytes, chain_id: int, nonce: int, max_fee: int) -> None:
        self._key = key
        self._tx: dict[str, Any] = {
            "chainId": chain_id,
            "maxPriorityFeePerGas": 10**9,
            "maxFeePerGas": max_fee,
            "gas": GAS,
            "value": 0,
        }
        self.nonce = nonce

    def sign(self, to: bytes, data: bytes) -> str:
        """The raw transaction, hex."""
        _, raw = sign_offline({**self._tx, "nonce": self.nonce, "to": to, "data": data}, self._key)
        self.nonce += 1
        return raw


class FinalCounter:
    """Counts transactions in final blocks as they appear."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.final = 0
        self._next = int(post(url, {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"})["result"], 16) + 1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            request = {"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": [hex(self._next), False]}
            block = post(self.url, request).get("result")
            if block is None:
                time.sleep(0.02)
                continue
            self.final += len(block["transactions"])
            self._next += 1


def soak(
    urls: list[str],
    chain: Chain,
    keys: list[bytes],
    count: int,
    window: int,
    label: str,
    sample: Callable[[], list[float]],
    sample_seconds: float,
    before_measuring: Callable[[], object] | None = None,
) -> dict[str, Any]:
    deployment, sections = prepare(chain, keys, 1)
    section = sections[0]
    tenders = deployment.tenders
    base_fee = int(chain.w3.eth.get_block("latest")["baseFeePerGas"])
    signers = [
        Signer1559(
            key,
            chain.chain_id,
            int(chain.w3.eth.get_transaction_count(chain.w3.to_checksum_address("0x" + key_address(key).hex()))),
            4 * base_fee + 10**9,
        )
        for key in keys
    ]
    to = bytes(to_canonical_address(tenders.address))
    commit = bytes.fromhex(
        tenders._contract.encode_abi(
            "commitBid", args=[section, b"\x01" * 32, keccak(id32("soak deposit"))]
        )[2:]
    )
    replace_selector = bytes.fromhex(tenders._contract.encode_abi("replaceBid", args=[section, b"\x00" * 32])[2:10])
    if before_measuring is not None:
        before_measuring()
    counter = FinalCounter(urls[0])
    samples: list[dict[str, Any]] = []
    step = max(count // 10, 1)
    next_milestone = step
    next_progress = time.monotonic() + sample_seconds
    sent = 0
    began = time.monotonic()
    try:
        while sent < count or counter.final < count:
            now = time.monotonic()
            if counter.final >= next_milestone:
                samples.append({"final": counter.final, "seconds": round(now - began, 1), "rss_mb": sample()})
                next_milestone += step
            if now >= next_progress:
                print(f"[{label}] {counter.final} final, rss {sample()} MB", file=sys.stderr, flush=True)
                next_progress = now + sample_seconds
            if sent >= count or sent - counter.final >= window:
                time.sleep(0.02)
                continue
            batch = []
            for _ in range(min(BATCH, count - sent)):
                signer = signers[sent % len(signers)]
                first = sent < len(signers)
                data = commit if first else replace_selector + section + keccak(sent.to_bytes(8, "big"))
                raw = signer.sign(to, data)
                batch.append({"jsonrpc": "2.0", "id": sent, "method": "eth_sendRawTransaction", "params": [raw]})
                sent += 1
            answers = post(urls[(sent // BATCH) % len(urls)], batch)
            refused = [a["error"] for a in answers if "error" in a]
            if refused:
                raise RuntimeError(f"transactions refused: {refused[:3]}")
            if sent <= len(signers):  # every first bid must be final before its replacements
                while counter.final < sent:
                    time.sleep(0.05)
    finally:
        counter.stop()
    seconds = time.monotonic() - began
    return {"txs": count, "seconds": round(seconds, 1), "finalized_tps": round(count / seconds, 1), "samples": samples}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--txs", type=int, default=1_000_000)
    parser.add_argument("--bidders", type=int, default=200)
    parser.add_argument("--window", type=int, default=20_000, help="most transactions sent but not final")
    parser.add_argument("--sample-seconds", type=float, default=30.0)
    parser.add_argument("--anvil-txs", type=int, default=100_000, help="reference run on anvil (0: none)")
    args = parser.parse_args(argv)
    compile_all()
    keys = bidder_keys(args.bidders)
    results: dict[str, Any] = {"workload": "TenderRegistry.commitBid then replaceBid, batched", "txs": args.txs}

    with tempfile.TemporaryDirectory(prefix="jz-soak-") as name:
        folder = Path(name)
        layouts = lay_out(folder, 4, extra_accounts=[key_address(k) for k in keys])
        running = [start_validator(layout, folder / "logs") for layout in layouts]
        try:
            wait_for_blocks(layouts[0].rpc_url, 1, timeout=60)
            urls = [layout.rpc_url for layout in layouts]

            def sample() -> list[float]:
                return [round(rss_mb(v.process.pid), 1) for v in running]

            result = soak(urls, Chain(urls[0]), keys, args.txs, args.window, "chain_node", sample, args.sample_seconds)
            result["rss_mb_end"] = sample()
            result["rss_mb_peak"] = [round(rss_peak_mb(v.process.pid), 1) for v in running]
            result["data_mb"] = [round(folder_mb(folder / f"data-{i}"), 1) for i in range(len(layouts))]
            results["chain_node"] = result
        finally:
            for validator in running:
                validator.stop()

    if args.anvil_txs:
        anvil = start_anvil(prune_history=True, extra_args=("--gas-limit", str(DEFAULT_BLOCK_GAS_LIMIT)))
        try:
            chain = Chain(anvil.rpc_url)
            result = soak(
                [anvil.rpc_url],
                chain,
                keys,
                args.anvil_txs,
                args.window,
                "anvil",
                lambda: [round(rss_mb(anvil.process.pid), 1)],
                args.sample_seconds,
                before_measuring=lambda: chain.w3.provider.make_request("evm_setIntervalMining", [1]),  # type: ignore[arg-type]
            )
            result["rss_mb_end"] = [round(rss_mb(anvil.process.pid), 1)]
            result["rss_mb_peak"] = [round(rss_peak_mb(anvil.process.pid), 1)]
            results["anvil"] = result
        finally:
            anvil.stop()
    node = results["chain_node"]
    results["rss_mb_per_validator_end_max"] = max(node["rss_mb_end"])
    results["target_rss_mb_per_validator"] = 300
    results["meets_target"] = results["rss_mb_per_validator_end_max"] <= 300
    print(json.dumps(results, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
