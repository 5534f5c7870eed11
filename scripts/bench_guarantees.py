"""Guarantee letters issued end to end per second, and letters verified against the chain per second.

Issuing one letter = render the PDF (A4, embedded CJK font subset, QR code), hash it, sign the hash
with the guarantor's secp256k1 key, sign the `GuaranteeRegistry.issue` transaction that anchors the
hash, write the signature block (naming that transaction) into the PDF, send, and wait until the
transaction is final. Rendering and signing run in a process pool (`--workers`); the transactions go
out as batched `eth_sendRawTransaction` while the next letters render, spread over the validators.

Verifying one letter = parse its signature block, hash it, check the ECDSA signature (coincurve),
then look up on chain the guarantee's state, the anchoring receipt and the signer's guarantor role
(batched JSON-RPC), and give a verdict. Every verdict must be genuine_in_force.

The chain is a local chain_node network (4 validators, started here) or anvil (`--chain anvil`).
Ends with one JSON line.

    python scripts/bench_guarantees.py [--letters 2000] [--chain chain_node|anvil] [--workers 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from contracts.client import Chain, Deployment
from contracts.deploy import deploy, load_config
from contracts.records import Role, SectionTerms, id32
from contracts.toolchain import PROJECT_ROOT, compile_all
from guarantees import lifecycle
from guarantees.letter import letter_font, read_signature, signature_valid
from guarantees.records import GuaranteeApplication, IssuedGuarantee, Party, Verdict
from guarantees.verify import verify_letters

BASE_URL = "https://jz.example.cn"
BOND = 800_000_00
CHUNK = 25  # letters a worker renders per task
SEND_BATCH = 500  # transactions sent at once: the two guarantors' halves make two blocks of ~250


@contextmanager
def running_chain(kind: str) -> Iterator[tuple[list[str], list[int]]]:
    """The RPC URLs and process ids of a fresh local chain of the given kind."""
    if kind == "anvil":
        from chain_node.execution import DEFAULT_BLOCK_GAS_LIMIT
        from contracts.devnode import start_anvil

        node = start_anvil(extra_args=("--gas-limit", str(DEFAULT_BLOCK_GAS_LIMIT)))
        try:
            yield [node.rpc_url], [node.process.pid]
        finally:
            node.stop()
        return
    from chain_node.network import lay_out, start_validator, wait_for_blocks

    with tempfile.TemporaryDirectory(prefix="jz-bench-guarantees-") as folder:
        layouts = lay_out(Path(folder), 4)
        validators = [start_validator(layout, Path(folder) / "logs") for layout in layouts]
        try:
            wait_for_blocks(layouts[0].rpc_url, 1, timeout=60)
            yield [layout.rpc_url for layout in layouts], [v.process.pid for v in validators]
        finally:
            for validator in validators:
                validator.stop()


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def own_cpu_seconds() -> tuple[float, float]:
    """CPU time of this process, and of its finished children (the worker pools)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, children.ru_utime + children.ru_stime


def _cpu_used(chain_pids: list[int], chain_before: float, own_before: tuple[float, float]) -> dict[str, float]:
    main, workers = own_cpu_seconds()
    return {
        "chain": round(cpu_seconds(chain_pids) - chain_before, 2),
        "main": round(main - own_before[0], 2),
        "workers": round(workers - own_before[1], 2),
    }


def _worker_init() -> None:
    letter_font()


def _prepare_chunk(tasks: list[tuple[Any, ...]]) -> list[lifecycle.PreparedIssue]:
    return [lifecycle.prepare_issue(*task) for task in tasks]


_verifier: Deployment | None = None


def _verifier_init(url: str, manifest: dict[str, Any]) -> None:
    global _verifier
    _verifier = Deployment.from_manifest(Chain(url, timeout=120), manifest)


def _verify_chunk(pdfs: list[bytes]) -> list[str]:
    assert _verifier is not None
    return [result.verdict.value for result in verify_letters(_verifier, pdfs)]


def applications(deployment: Deployment, count: int) -> tuple[list[tuple[GuaranteeApplication, Any]], dict[str, Any]]:
    """A tender with one section open for a month, and `count` applications spread over the members."""
    config = load_config(PROJECT_ROOT / "scripts" / "consortium.dev.json")
    agency = config.with_role(Role.AGENCY)[0]
    tenderer = config.with_role(Role.TENDERER)[0]
    bidders = config.with_role(Role.BIDDER)
    guarantors = config.with_role(Role.GUARANTOR)
    witnesses = tuple(m.signer.address for m in config.with_role(Role.WITNESS))
    chain = deployment.chain
    tender_id, section_id = id32(f"bench tender {uuid.uuid4()}"), id32(f"bench section {uuid.uuid4()}")
    deployment.tenders.create_tender(agency.signer, tender_id, tenderer.signer.address, hashlib.sha256(b"t").digest())
    opening = chain.now() + 30 * 86400
    terms = SectionTerms(opening, 90 * 86400, BOND, witnesses, 2, 0, b"\x02" * 33)
    deployment.tenders.add_section(agency.signer, tender_id, section_id, terms)
    now = chain.now()
    result = []
    for index in range(count):
        bidder, guarantor = bidders[index % len(bidders)], guarantors[index % len(guarantors)]
        app = GuaranteeApplication(
            number=f"JZBH-BENCH-{uuid.uuid4().hex[:12].upper()}",
            applicant=Party(bidder.name, bidder.identifier, bidder.signer.address),
            beneficiary=Party(tenderer.name, tenderer.identifier, tenderer.signer.address),
            guarantor=Party(guarantor.name, guarantor.identifier, guarantor.signer.address),
            project_name="厦门市某水厂扩建工程施工总承包",
            section_name="第一标段（土建）",
            section_id=section_id,
            amount=BOND,
            valid_until=opening + 120 * 86400,
            applied_at=now,
            sealed=index % 2 == 0,
            salt=os.urandom(32),
        )
        result.append((app, guarantor.signer))
    return result, {"section_id": "0x" + section_id.hex()}


def issue_all(
    urls: list[str],
    deployment: Deployment,
    apps: list[tuple[GuaranteeApplication, Any]],
    workers: int,
    send_batch: int = SEND_BATCH,
    one_node: bool = False,
) -> tuple[list[IssuedGuarantee], float]:
    """Issue every application end to end; the issued guarantees and the seconds it took.

    Workers render and sign `CHUNK` letters at a time; the transactions go out once `send_batch`
    are ready (fewer towards the end), so blocks are large: each block costs the validators
    ~20 ms of CPU whatever it holds. 1,000 letters sent 25 at a time took 37 blocks and 2.6 ms of
    chain CPU per letter; sent 500 at a time, 4 blocks and 2.0 ms.
    """
    chain = deployment.chain
    latest = chain.w3.eth.get_block("latest")
    base_fee = int(latest.get("baseFeePerGas") or 0)
    fees = (
        {"maxFeePerGas": 4 * base_fee + 10**9, "maxPriorityFeePerGas": 10**9}
        if base_fee
        else {"gasPrice": int(chain.w3.eth.gas_price) * 2}
    )
    context = lifecycle.TxContext(chain.chain_id, deployment.guarantees.address, fees)
    nonces: dict[str, int] = {}
    tasks = []
    now = chain.now()
    for app, signer in apps:
        if signer.address not in nonces:
            nonces[signer.address] = int(chain.w3.eth.get_transaction_count(signer.account.address, "pending"))
        fields = lifecycle.letter_fields(app, now, BASE_URL)
        tasks.append((app, fields, bytes(signer.account.key), nonces[signer.address], context))
        nonces[signer.address] += 1
    chunks = [tasks[i : i + CHUNK] for i in range(0, len(tasks), CHUNK)]
    # Each guarantor's transactions go, in nonce order, to "its" validator (or all to the first);
    # gossip does the rest.
    senders = {
        address: Chain(urls[0 if one_node else i % len(urls)], timeout=300) for i, address in enumerate(sorted(nonces))
    }
    waiter = Chain(urls[0], timeout=300, poll_interval=0.1)
    started = time.perf_counter()
    sent: list[lifecycle.PreparedIssue] = []
    ready: list[lifecycle.PreparedIssue] = []

    def send(batch: list[lifecycle.PreparedIssue]) -> None:
        for address, sender in senders.items():
            mine = [p.signed_tx for p in batch if p.signed_tx.tx["from"] == address]
            if mine:
                sender.send_raw_many(mine)
        sent.extend(batch)

    with multiprocessing.get_context("fork").Pool(workers, initializer=_worker_init) as pool:
        for prepared in pool.imap(_prepare_chunk, chunks):
            ready.extend(prepared)
            # Batches shrink towards the end (half of what is left), so the chain's last blocks,
            # which nothing overlaps, are small.
            if len(ready) >= max(CHUNK, min(send_batch, (len(tasks) - len(sent)) // 2)):
                send(ready)
                ready = []
    if ready:
        send(ready)
    all_sent = time.perf_counter() - started
    issued = lifecycle.await_prepared(waiter, sent)
    print(f"prepared and sent in {all_sent:.2f} s; all final {time.perf_counter() - started:.2f} s", file=sys.stderr)
    return issued, time.perf_counter() - started


def verify_all(
    urls: list[str], manifest: dict[str, Any], pdfs: list[bytes], workers: int, chunk: int
) -> tuple[Counter[str], float]:
    parts = [pdfs[i : i + chunk] for i in range(0, len(pdfs), chunk)]
    verdicts: Counter[str] = Counter()
    pools = []
    context = multiprocessing.get_context("fork")
    for index in range(workers):
        pools.append(context.Pool(1, initializer=_verifier_init, initargs=(urls[index % len(urls)], manifest)))
    try:
        for pool in pools:  # warm up each worker's connection and caches
            pool.apply(_verify_chunk, (pdfs[:1],))
        started = time.perf_counter()
        pending = [pools[i % workers].apply_async(_verify_chunk, (part,)) for i, part in enumerate(parts)]
        for future in pending:
            verdicts.update(future.get())
        elapsed = time.perf_counter() - started
    finally:
        for pool in pools:
            pool.close()
            pool.join()
    return verdicts, elapsed


def signature_speed(pdf: bytes, rounds: int = 2000) -> dict[str, float]:
    """Letter signature checks per second: coincurve (used) against pure-Python ecdsa."""
    from ecdsa import SECP256k1, VerifyingKey
    from ecdsa.util import sigdecode_der

    block, unsigned = read_signature(pdf)
    digest = hashlib.sha256(unsigned).digest()
    started = time.perf_counter()
    for _ in range(rounds):
        assert signature_valid(block, digest)
    coincurve_rate = rounds / (time.perf_counter() - started)
    key = VerifyingKey.from_string(block.public_key, curve=SECP256k1)
    slow_rounds = rounds // 10
    started = time.perf_counter()
    for _ in range(slow_rounds):
        assert key.verify_digest(block.signature, digest, sigdecode=sigdecode_der)
    ecdsa_rate = slow_rounds / (time.perf_counter() - started)
    return {"coincurve_per_s": round(coincurve_rate), "python_ecdsa_per_s": round(ecdsa_rate)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--letters", type=int, default=2000)
    parser.add_argument("--verifications", type=int, default=0, help="default: as many as letters")
    parser.add_argument("--chain", choices=("chain_node", "anvil"), default="chain_node")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--verify-chunk", type=int, default=250)
    parser.add_argument("--send-batch", type=int, default=SEND_BATCH, help="issue transactions sent at once")
    parser.add_argument("--one-node", action="store_true", help="send every transaction to the first validator")
    args = parser.parse_args(argv)
    compile_all()
    letter_font()
    with running_chain(args.chain) as (urls, chain_pids):
        chain = Chain(urls[0], timeout=300)
        config = load_config(PROJECT_ROOT / "scripts" / "consortium.dev.json")
        deployment, manifest = deploy(chain, config)
        apps, section = applications(deployment, args.letters)
        print(f"[{args.chain}] issuing {len(apps)} letters with {args.workers} workers", file=sys.stderr)
        chain_cpu, own_cpu = cpu_seconds(chain_pids), own_cpu_seconds()
        issued, issue_seconds = issue_all(urls, deployment, apps, args.workers, args.send_batch, args.one_node)
        issue_cpu = _cpu_used(chain_pids, chain_cpu, own_cpu)
        pdfs = [guarantee.signed_pdf for guarantee in issued]
        wanted = args.verifications or len(pdfs)
        sample = (pdfs * (wanted // len(pdfs) + 1))[:wanted]
        print(f"[{args.chain}] verifying {len(sample)} letters", file=sys.stderr)
        chain_cpu, own_cpu = cpu_seconds(chain_pids), own_cpu_seconds()
        verdicts, verify_seconds = verify_all(urls, manifest, sample, args.workers, args.verify_chunk)
        verify_cpu = _cpu_used(chain_pids, chain_cpu, own_cpu)
        signatures = signature_speed(pdfs[0])
    genuine = verdicts.get(Verdict.GENUINE_IN_FORCE.value, 0)
    results = {
        "chain": args.chain,
        "validators": len(urls) if args.chain == "chain_node" else 1,
        "workers": args.workers,
        "letters": len(issued),
        "issue_seconds": round(issue_seconds, 2),
        "letters_per_s": round(len(issued) / issue_seconds, 1),
        "letter_bytes_avg": round(sum(len(p) for p in pdfs) / len(pdfs)),
        "blocks_used": len({g.block_number for g in issued}),
        "verifications": len(sample),
        "verify_seconds": round(verify_seconds, 2),
        "verifications_per_s": round(len(sample) / verify_seconds, 1),
        "verdicts": dict(verdicts),
        "all_genuine": genuine == len(sample),
        "signature_checks": signatures,
        # CPU seconds used, whatever else runs on the machine: what the rates would be if these
        # processes had the machine's cores to themselves.
        "issue_cpu_seconds": issue_cpu,
        "issue_cpu_ms_per_letter": {part: round(1000 * used / len(issued), 2) for part, used in issue_cpu.items()},
        "verify_cpu_seconds": verify_cpu,
        "cores": os.cpu_count(),
        "cpu_bound_letters_per_s": round(len(issued) * (os.cpu_count() or 1) / sum(issue_cpu.values()), 1),
        "cpu_bound_verifications_per_s": round(len(sample) * (os.cpu_count() or 1) / sum(verify_cpu.values()), 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "section_id": section["section_id"],
        "targets": {"letters_per_s": 200, "verifications_per_s": 1000},
    }
    print(json.dumps(results, sort_keys=True))
    return 0 if genuine == len(sample) else 1


if __name__ == "__main__":
    sys.exit(main())
