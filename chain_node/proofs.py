"""Check a witness's proof bundle offline: receipt in block, block final, event with given fields.

A bundle (from `jz_getProof`) holds a transaction's consensus-encoded receipt, the Merkle proof from
the block's receipts root to it, the block header and its commit seals. Given only the validator set
(a file the consortium publishes), anyone can check that the receipt is in that block, that a quorum
of the set sealed the block (so it is final), and that a given event with given fields was emitted.
Each failure is reported with exactly what did not hold.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rlp
from eth_abi.exceptions import DecodingError
from eth_utils import to_canonical_address

from chain_node.blocks import Header, InvalidBlock
from chain_node.consensus import ValidatorSet, check_commit_seals
from chain_node.trie import InvalidProof, rlp_index_key, verify_proof
from contracts.client import EventSpec


class ProofFailed(Exception):
    """The bundle does not prove what was asked; the message says which check failed."""


@dataclass(frozen=True)
class ProvenLog:
    address: bytes
    topics: tuple[bytes, ...]
    data: bytes


@dataclass(frozen=True)
class ProvenReceipt:
    block_number: int
    block_hash: bytes
    status: int
    logs: tuple[ProvenLog, ...]


def _hex(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ProofFailed(f"bundle field {what} is not 0x-hex")
    try:
        return bytes.fromhex(value[2:])
    except ValueError as error:
        raise ProofFailed(f"bundle field {what} is not hex: {error}") from error


def decode_receipt(encoded: bytes) -> tuple[int, tuple[ProvenLog, ...]]:
    payload = encoded[1:] if encoded and encoded[0] < 0x7F else encoded
    try:
        status, _cumulative, _bloom, logs = rlp.decode(payload)
        proven = tuple(ProvenLog(bytes(a), tuple(bytes(t) for t in topics), bytes(d)) for a, topics, d in logs)
    except (rlp.DecodingError, ValueError, TypeError) as error:
        raise ProofFailed(f"the receipt is not a valid consensus-encoded receipt: {error}") from error
    return (1 if status == b"\x01" else 0), proven


def verify_bundle(bundle: dict[str, Any], validators: ValidatorSet) -> ProvenReceipt:
    """Check the receipt's inclusion and the block's finality; return the proven receipt."""
    try:
        header_bytes = _hex(bundle["header"], "header")
        receipt = _hex(bundle["receipt"], "receipt")
        index = int(bundle["transactionIndex"], 16)
        proof = [_hex(node, "receiptProof") for node in bundle["receiptProof"]]
        seals = [(_hex(s["validator"], "validator"), _hex(s["signature"], "signature")) for s in bundle["commitSeals"]]
    except (KeyError, TypeError, ValueError) as error:
        raise ProofFailed(f"the bundle is incomplete: {error!r}") from error
    try:
        header = Header.decode(header_bytes)
    except InvalidBlock as error:
        raise ProofFailed(f"the header does not decode: {error}") from error
    digest = header.hash()
    if "blockHash" in bundle and _hex(bundle["blockHash"], "blockHash") != digest:
        raise ProofFailed("the header does not hash to the bundle's blockHash")
    try:
        proven = verify_proof(header.receipts_root, rlp_index_key(index), proof)
    except InvalidProof as error:
        raise ProofFailed(f"the receipt is not in the block: {error}") from error
    if proven != receipt:
        raise ProofFailed("the receipt differs from the one the proof leads to in the block's receipts root")
    check = check_commit_seals(digest, seals, validators)
    if not check:
        detail = check.failure.value if check.failure else "invalid"
        raise ProofFailed(f"the block is not final under this validator set: {detail} {check.detail}".strip())
    status, logs = decode_receipt(receipt)
    return ProvenReceipt(header.number, digest, status, logs)


def _event_abi(name: str) -> dict[str, Any]:
    from contracts.toolchain import load_artifacts

    for artifact in load_artifacts().values():
        for item in artifact.abi:
            if item.get("type") == "event" and item.get("name") == name:
                return item
    raise ProofFailed(f"no contract event named {name}")


def _normalise(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str) and value.startswith("0x"):
        return value.lower()
    return str(value).lower()


def find_event(receipt: ProvenReceipt, name: str, expected: dict[str, str]) -> dict[str, Any]:
    """The first log of event `name` whose fields equal `expected`; ProofFailed saying what differs."""
    abi = _event_abi(name)
    spec = EventSpec.from_abi(abi)
    unknown = set(expected) - set(spec.order)
    if unknown:
        raise ProofFailed(f"{name} has no field(s) {sorted(unknown)}")
    candidates = [log for log in receipt.logs if log.topics and log.topics[0] == spec.topic]
    if not candidates:
        raise ProofFailed(f"the receipt has no {name} event")
    mismatches = []
    for log in candidates:
        try:
            values = spec.decode(log.topics, log.data)
        except (ValueError, TypeError, DecodingError) as error:
            mismatches.append(f"a log does not decode as {name}: {error}")
            continue
        differing = {k: v for k, v in expected.items() if _normalise(values[k]) != _normalise(v)}
        if not differing:
            return values
        mismatches.append(", ".join(f"{k} is {_normalise(values[k])} not {v}" for k, v in differing.items()))
    raise ProofFailed(f"no {name} event with those fields: " + "; ".join(mismatches))


def load_validator_set(path: Path) -> ValidatorSet:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return ValidatorSet.of(bytes(to_canonical_address(a)) for a in raw["validators"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ProofFailed(f"{path}: not a validator set file: {error}") from error


def main(args: argparse.Namespace) -> int:
    try:
        bundle = json.loads(Path(args.bundle).read_text(encoding="utf-8"))
        validators = load_validator_set(Path(args.validators))
        receipt = verify_bundle(bundle, validators)
        print(f"OK: receipt is in block {receipt.block_number} (0x{receipt.block_hash.hex()}), final under the set")
        if receipt.status != 1:
            print("note: the transaction reverted (status 0)")
        if args.event:
            expected = {}
            for pair in args.arg:
                if "=" not in pair:
                    raise ProofFailed(f"--arg {pair!r} is not NAME=VALUE")
                key, value = pair.split("=", 1)
                expected[key] = value
            values = find_event(receipt, args.event, expected)
            print(f"OK: {args.event} emitted with {', '.join(f'{k}={_normalise(v)}' for k, v in values.items())}")
    except (OSError, ValueError) as error:
        print(f"FAILED: cannot read the bundle: {error}")
        return 1
    except ProofFailed as error:
        print(f"FAILED: {error}")
        return 1
    return 0
