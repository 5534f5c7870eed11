"""Benchmark: open a section of 1,000 sealed bids of 1 MB each with 3-of-5 witnesses (issue #4).

Setup (not measured, but printed): a chain (anvil from node_modules, or --rpc-url), the contracts with
five witnesses and one bidder member per bid, a section with witnessQuorum 3, the witnesses' DKG and
the anchored opening key, every bid sealed to disk and committed on chain.

Measured: three witnesses release their decryption shares (deadline check in chain time, each
envelope's hash checked against its commitment, shares and DLEQ proofs) and anchor them; the opening
reads the public data, verifies every share, combines k of them, decrypts every bid, checks every
commitment, builds the opening record, records the outcomes and closes the opening on chain, and the
witnesses attest the record. Envelopes stream from disk: memory holds the bids in flight only.
Target: <= 10 s on the 2-core machine. Ends with one JSON line.

    python scripts/bench_opening.py [--bids 1000] [--size 1048576] [--workers 2] [--rpc-url URL]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from hexbytes import HexBytes

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from contracts.client import Chain, Deployment, Signer
from contracts.deploy import ConsortiumConfig, MemberConfig, deploy, load_config
from contracts.devnode import RunningNode, mine_at, start_anvil
from contracts.records import BidCover, Role, SectionTerms, id32, org_id
from contracts.toolchain import PROJECT_ROOT, compile_all
from opening import dkg
from opening.chainio import anchor_opening, attest_opening, read_public_data
from opening.envelope import commitment_of, seal_bid
from opening.opener import open_section
from opening.witness import AccessRequest, WitnessShare, publish_shares, release_shares

T = TypeVar("T")
WITNESSES, THRESHOLD = 5, 3
THREADS = 16


def _parallel(function: Callable[[T], Any], items: Sequence[T]) -> list[Any]:
    """Send many transactions at once: each signer's nonces stay ordered, the waits overlap."""
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(function, items))


def _key(label: str) -> str:
    return "0x" + hashlib.sha256(f"jianzheng bench {label}".encode()).hexdigest()


def _config(bidders: int) -> ConsortiumConfig:
    """The dev consortium plus witnesses up to five; the bidders are added afterwards, in parallel."""
    config = load_config(PROJECT_ROOT / "scripts" / "consortium.dev.json")
    extra = [
        MemberConfig(f"见证机构{i}", f"BENCHWITNESS{i}", Role.WITNESS, Signer.from_key(_key(f"witness {i}")))
        for i in range(WITNESSES - len(config.with_role(Role.WITNESS)))
    ]
    return replace(config, members=config.members + tuple(extra))


class _RssSampler(threading.Thread):
    """Peak resident memory of this process plus its worker processes (not the chain node), sampled
    every 20 ms from /proc. Forked workers share pages with this process, so the sum overstates."""

    def __init__(self, exclude: set[int]):
        super().__init__(daemon=True)
        self.exclude = exclude
        self.peak_total = 0
        self.peak_main = 0
        self._stop_event = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def _rss(self, pid: int) -> int:
        try:
            return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * self._page
        except (OSError, IndexError, ValueError):
            return 0

    def _children(self) -> list[int]:
        found = []
        for task in Path(f"/proc/{os.getpid()}/task").iterdir():
            try:
                found += [int(pid) for pid in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
        return [pid for pid in found if pid not in self.exclude]

    def run(self) -> None:
        while not self._stop_event.wait(0.02):
            main = self._rss(os.getpid())
            self.peak_main = max(self.peak_main, main)
            self.peak_total = max(self.peak_total, main + sum(self._rss(pid) for pid in self._children()))

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


class _SetupSender:
    """Setup transactions signed with fixed gas and fees and sent without waiting (anvil mines each at
    once): a thousand bidders join and commit in seconds. Each sender's nonces are counted here, so
    these signers are not used through `Chain.send` afterwards. Results are checked on the final state.
    """

    def __init__(self, chain: Chain):
        self.chain = chain
        base_fee = int(chain.w3.eth.get_block("latest").get("baseFeePerGas") or 10**9)
        self.fees = {"maxFeePerGas": 4 * base_fee + 10**9, "maxPriorityFeePerGas": 10**9}
        self.nonces: dict[str, int] = {}
        self.last: dict[str, str] = {}
        self.sent = 0

    def send(self, signer: Signer, to: str, data: bytes = b"", *, value: int = 0, gas: int = 300_000) -> None:
        nonce = self.nonces.get(signer.address)
        if nonce is None:
            nonce = int(self.chain.w3.eth.get_transaction_count(signer.account.address, "pending"))
        tx: dict[str, Any] = {"to": to, "data": data, "value": value, "gas": gas, "nonce": nonce}
        tx["chainId"] = self.chain.chain_id
        raw = signer.account.sign_transaction({**tx, **self.fees}).raw_transaction
        answer = self.chain.w3.provider.make_request("eth_sendRawTransaction", ["0x" + raw.hex()])  # type: ignore[arg-type]
        if "error" in answer:
            raise RuntimeError(f"setup transaction refused: {answer['error']}")
        self.nonces[signer.address] = nonce + 1
        self.last[signer.address] = str(answer["result"])
        self.sent += 1
        if self.sent % 50 == 0:  # anvil slows down badly with a long queue of pending transactions
            self.chain.wait(self.last[signer.address])

    def wait(self) -> None:
        """Until each sender's last transaction is final (its earlier ones are mined before it)."""
        for tx_hash in self.last.values():
            self.chain.wait(tx_hash)


def _add_bidders(chain: Chain, deployment: Deployment, config: ConsortiumConfig, count: int) -> list[Signer]:
    existing = [m.signer for m in config.with_role(Role.BIDDER)]
    fresh = [Signer.from_key(_key(f"bidder {i}")) for i in range(max(0, count - len(existing)))]
    # Admins that are not witnesses: the witnesses go on sending through `Chain.send` later.
    admins = [m.signer for m in config.with_role(Role.ADMIN) if not m.roles & Role.WITNESS]
    consortium = chain.contract("Consortium", deployment.consortium.address)
    sender = _SetupSender(chain)
    first_proposal = int(consortium.functions.proposalCount().call()) + 1
    for bidder in fresh:
        sender.send(config.deployer, bidder.address, value=10**17, gas=21_000)
        args = [bidder.address, org_id(bidder.address), int(Role.BIDDER)]
        sender.send(admins[0], consortium.address, bytes(HexBytes(consortium.encode_abi("proposeAddMember", args))))
    for proposal_id in range(first_proposal, first_proposal + len(fresh)):
        sender.send(admins[1], consortium.address, bytes(HexBytes(consortium.encode_abi("approve", [proposal_id]))))
    sender.wait()
    if fresh and not deployment.consortium.has_role(fresh[-1].address, Role.BIDDER):
        raise RuntimeError("the bidders did not join the consortium")
    return (existing + fresh)[:count]


def _commit_all(chain: Chain, registry: Any, section_id: bytes, bids: list[tuple[Signer, bytes]]) -> list[BidCover]:
    """Commit every bid with a blinded cash-deposit cover; returns the covers, which the platform keeps."""
    contract = chain.contract("TenderRegistry", registry.address)
    sender = _SetupSender(chain)
    covers = []
    for bidder, commitment in bids:
        cover = BidCover.deposit(os.urandom(32))
        args = [section_id, commitment, cover.commitment(section_id, bidder.address)]
        sender.send(bidder, registry.address, bytes(HexBytes(contract.encode_abi("commitBid", args))), gas=200_000)
        covers.append(cover)
    sender.wait()
    live = registry.section(section_id).live_bids
    if live != len(bids):
        raise RuntimeError(f"{live} of {len(bids)} bids committed")
    return covers


def _reveal_all(
    chain: Chain, registry: Any, agency: Signer, section_id: bytes, bids: list[tuple[Signer, BidCover]]
) -> None:
    """Reveal every bid's cover as the agency, as the platform does when the opening starts."""
    contract = chain.contract("TenderRegistry", registry.address)
    sender = _SetupSender(chain)
    for bidder, cover in bids:
        args = [section_id, bidder.address, int(cover.kind), cover.cover, cover.salt]
        sender.send(agency, registry.address, bytes(HexBytes(contract.encode_abi("revealCover", args))), gas=200_000)
    sender.wait()
    if not all(registry.cover_of(section_id, bidder.address).revealed for bidder, _ in bids[-3:]):
        raise RuntimeError("the covers were not revealed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bids", type=int, default=1000)
    parser.add_argument("--size", type=int, default=1 << 20, help="bytes of each bid document")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--rpc-url", help="an existing dev chain (anvil) instead of a fresh anvil")
    parser.add_argument("--dir", type=Path, help="where to write the envelopes (default: a temporary folder)")
    args = parser.parse_args()
    if args.bids < 1 or args.size < 1:
        parser.error("--bids and --size must be positive")

    compile_all()
    node: RunningNode | None = None
    if args.rpc_url:
        chain_name, rpc_url = "given", args.rpc_url
    else:
        node = start_anvil(prune_history=False)  # concurrent sends read recent blocks
        chain_name, rpc_url = "anvil", node.rpc_url
    folder = args.dir or Path(tempfile.mkdtemp(prefix="bench-opening-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        excluded = {node.process.pid} if node is not None else set()
        return _run(args, Chain(rpc_url), chain_name, folder, excluded)
    finally:
        if node is not None:
            node.stop()
        if args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)


def _run(args: argparse.Namespace, chain: Chain, chain_name: str, folder: Path, excluded: set[int]) -> int:
    setup_started = time.perf_counter()
    config = _config(args.bids)
    deployment, _ = deploy(chain, config)
    registry = deployment.tenders
    bidders = _add_bidders(chain, deployment, config, args.bids)
    witnesses = [m.signer for m in config.with_role(Role.WITNESS)][:WITNESSES]
    agency = config.with_role(Role.AGENCY)[0].signer
    tenderer = config.with_role(Role.TENDERER)[0].signer
    tender_id, section_id = id32(f"bench-tender-{uuid.uuid4()}"), id32(f"bench-section-{uuid.uuid4()}")
    registry.create_tender(agency, tender_id, tenderer.address, os.urandom(32))
    opening_time = chain.now() + 24 * 3600
    terms = SectionTerms(opening_time, 90 * 86400, 800_000_00, tuple(w.address for w in witnesses), THRESHOLD)
    registry.add_section(agency, tender_id, section_id, terms)

    # The witnesses' DKG (each would run its part on its own machine) and the anchored opening key.
    transport = [dkg.new_transport_key() for _ in witnesses]
    params = dkg.DkgParams(section_id, THRESHOLD, tuple(public for _, public in transport))
    deals = [dkg.deal(params, i) for i in range(1, WITNESSES + 1)]
    complaints = [c for j in range(1, WITNESSES + 1) for c in dkg.receive(params, deals, j, transport[j - 1][0])]
    outcome = dkg.finish(params, deals, complaints)
    opening_key = outcome.opening_key.encode()
    registry.set_opening_key(agency, section_id, opening_key)
    shares = [
        WitnessShare(section_id, j, dkg.secret_share(params, deals, outcome, j, transport[j - 1][0]), opening_key)
        for j in range(1, WITNESSES + 1)
    ]
    chain_setup = time.perf_counter() - setup_started

    sealing_started = time.perf_counter()
    envelopes: dict[str, Path] = {}
    commitments: list[bytes] = []
    for number, bidder in enumerate(bidders):
        document = hashlib.sha256(bidder.address.encode()).digest() * (args.size // 32 + 1)
        announced = {"price_fen": 10_000_000_00 + number, "duration_days": 180, "quality": "合格"}
        envelope = seal_bid(section_id, opening_key, bidder.address, announced, document[: args.size], "投标文件.pdf")
        path = folder / f"{bidder.address.lower()}.jzb"
        path.write_bytes(envelope)
        envelopes[bidder.address] = path
        commitments.append(commitment_of(envelope))
    sealing = time.perf_counter() - sealing_started
    commit_started = time.perf_counter()
    covers = _commit_all(chain, registry, section_id, list(zip(bidders, commitments, strict=True)))
    mine_at(chain, opening_time)
    committing = time.perf_counter() - commit_started
    reveal_started = time.perf_counter()
    _reveal_all(chain, registry, agency, section_id, list(zip(bidders, covers, strict=True)))
    revealing = time.perf_counter() - reveal_started
    print(
        f"setup: chain {chain_setup:.1f} s, sealing {sealing:.1f} s, commits {committing:.1f} s, "
        f"cover reveals {revealing:.1f} s",
        file=sys.stderr,
    )

    phases: dict[str, float] = {}
    sampler = _RssSampler(excluded)
    sampler.start()
    started = time.perf_counter()
    mark = started

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases[name] = round(now - mark, 3)
        mark = now

    batches = []
    for witness, share in zip(witnesses[:THRESHOLD], shares[:THRESHOLD], strict=True):
        request = AccessRequest(section_id, witness.address, "decryption shares", int(time.time()))
        batches.append(release_shares(registry, witness, share, envelopes, request, workers=args.workers))
    lap("shares_and_proofs")
    # Each witness anchors its own batch from its own account: independent transactions, sent together.
    _parallel(lambda pair: publish_shares(registry, *pair), list(zip(witnesses, batches, strict=False)))
    lap("shares_anchored")
    data = read_public_data(registry, section_id)
    lap("public_data_read")
    result = open_section(data, batches, envelopes, chain.now(), workers=args.workers)
    lap("verify_combine_decrypt_record")
    anchor_opening(registry, agency, section_id, result)
    _parallel(
        lambda witness: attest_opening(registry, [witness], section_id, result.record_hash), witnesses[:THRESHOLD]
    )
    lap("outcomes_record_anchored_attested")
    seconds = time.perf_counter() - started
    sampler.stop()

    counts = result.record["counts"]
    ok = counts["opened"] == args.bids and not result.faulty_shares and registry.is_witnessed(section_id)
    print(f"opened {counts['opened']} of {args.bids} bids in {seconds:.2f} s; record 0x{result.record_hash.hex()}")
    for name, value in phases.items():
        print(f"  {name:36s} {value:7.3f} s")
    summary = {
        "seconds": round(seconds, 3),
        "bids": args.bids,
        "bytes": sum(path.stat().st_size for path in envelopes.values()),
        "k": THRESHOLD,
        "n": WITNESSES,
        "workers": args.workers,
        "chain": chain_name,
        "peak_rss_mb": round(sampler.peak_total / 2**20, 1),
        "peak_rss_main_mb": round(sampler.peak_main / 2**20, 1),
        "phases": phases,
        "setup_seconds": {
            "chain": round(chain_setup, 1),
            "sealing": round(sealing, 1),
            "commits": round(committing, 1),
            "cover_reveals": round(revealing, 1),
        },
        "all_opened": ok,
        "meets_target": ok and seconds <= 10.0,
    }
    print(json.dumps(summary))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
