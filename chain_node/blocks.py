"""Blocks, headers, receipts and logs: the records the chain agrees on, with Ethereum encodings.

Receipts, logs blooms and the transactions/receipts roots use Ethereum's consensus encodings
exactly, so that a receipt (and the Merkle proof of it) made here can be checked by any Ethereum
tool against the `receiptsRoot` of our block, and so that they can be compared one to one with
anvil's in tests. The header is ours: a BFT chain has no ommers, difficulty or mix hash, and its
state commitment is not a state trie root (see `execution.WorldState`). Its hash is the digest the
validators decide on and seal; seals are kept beside the header (they sign its hash) and are not
part of it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import rlp

from chain_node.transactions import InvalidTransaction, Transaction, decode_transaction
from chain_node.trie import (
    EMPTY_TRIE_ROOT,
    InvalidProof,
    RlpItem,
    int_to_rlp_bytes,
    keccak,
    ordered_trie_proof,
    ordered_trie_root,
    rlp_decode,
    rlp_encode,
    rlp_index_key,
    verify_proof,
)

__all__ = [
    "BASE_FEE_CHANGE_DENOMINATOR",
    "ELASTICITY_MULTIPLIER",
    "EMPTY_TRIE_ROOT",
    "GENESIS_BASE_FEE_PER_GAS",
    "MIN_BASE_FEE_PER_GAS",
    "Block",
    "Header",
    "InvalidBlock",
    "InvalidProof",
    "Log",
    "Receipt",
    "block_logs_bloom",
    "bloom_contains",
    "genesis_header",
    "logs_bloom",
    "next_base_fee",
    "receipt_proof",
    "receipts_root",
    "transaction_proof",
    "transactions_root",
    "verify_receipt_proof",
    "verify_transaction_proof",
]

BLOOM_BYTES = 256
EMPTY_BLOOM = bytes(BLOOM_BYTES)

# EIP-1559 parameters. The base fee starts at 1 gwei and never falls below it: a consortium chain
# has no fee market to speak of, and a floor keeps a spammer from getting block space for nothing
# after a quiet spell, while the usual 12.5 %-per-block rise still prices out a flood.
ELASTICITY_MULTIPLIER = 2
BASE_FEE_CHANGE_DENOMINATOR = 8
GENESIS_BASE_FEE_PER_GAS = 1_000_000_000
MIN_BASE_FEE_PER_GAS = 1_000_000_000


class InvalidBlock(Exception):
    """Block or header bytes that do not decode, or hold a field of the wrong size."""


# ------------------------------------------------------------------ logs and blooms


@dataclass(frozen=True)
class Log:
    """An event emitted by a contract, as it appears in a receipt."""

    address: bytes
    topics: tuple[bytes, ...]
    data: bytes

    def rlp_item(self) -> RlpItem:
        return [self.address, list(self.topics), self.data]


@functools.lru_cache(maxsize=65_536)
def _bloom_bits(item: bytes) -> tuple[int, int, int]:
    """The three bloom bits of an address or topic; cached, since a contract's address and event
    topics recur in almost every receipt."""
    digest = keccak(item)
    return (
        ((digest[0] << 8) | digest[1]) & 2047,
        ((digest[2] << 8) | digest[3]) & 2047,
        ((digest[4] << 8) | digest[5]) & 2047,
    )


def logs_bloom(logs: tuple[Log, ...] | list[Log]) -> bytes:
    """The 2048-bit bloom filter of the logs' addresses and topics (Yellow Paper, M3:2048)."""
    bloom = 0
    for log in logs:
        for item in (log.address, *log.topics):
            for bit in _bloom_bits(item):
                bloom |= 1 << bit
    return bloom.to_bytes(BLOOM_BYTES, "big")


def bloom_contains(bloom: bytes, item: bytes) -> bool:
    """Whether an address or topic may be in the logs behind `bloom` (false positives possible)."""
    value = int.from_bytes(bloom, "big")
    return all(value >> bit & 1 for bit in _bloom_bits(item))


def _or_blooms(blooms: list[bytes]) -> bytes:
    value = 0
    for bloom in blooms:
        value |= int.from_bytes(bloom, "big")
    return value.to_bytes(BLOOM_BYTES, "big")


# ------------------------------------------------------------------ receipts


@dataclass(frozen=True)
class Receipt:
    """The outcome of one included transaction.

    Only status, cumulative gas, bloom and logs are consensus data (what `encode()` and the
    receipts root cover); the other fields are what `eth_getTransactionReceipt` reports.
    `revert_data` holds the revert payload of a failed transaction (empty on success or on a halt
    such as out-of-gas), which Ethereum does not keep in receipts but our RPC and tools want.
    """

    status: int
    cumulative_gas_used: int
    logs: tuple[Log, ...]
    tx_type: int
    gas_used: int
    contract_address: bytes | None
    effective_gas_price: int
    tx_hash: bytes
    sender: bytes
    to: bytes | None
    revert_data: bytes = b""
    bloom: bytes = field(default=b"", compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.bloom:
            object.__setattr__(self, "bloom", logs_bloom(self.logs))

    def encode(self) -> bytes:
        """Ethereum's consensus encoding: `rlp([status, cumulativeGasUsed, bloom, logs])`, typed-enveloped.

        Kept once computed: the receipts root and the stored record both need it."""
        cached: bytes | None = self.__dict__.get("_encoded")
        if cached is None:
            cached = self._encode()
            object.__setattr__(self, "_encoded", cached)
        return cached

    def _encode(self) -> bytes:
        payload = rlp_encode(
            [
                b"\x01" if self.status else b"",
                int_to_rlp_bytes(self.cumulative_gas_used),
                self.bloom,
                [log.rlp_item() for log in self.logs],
            ]
        )
        if self.tx_type == 0:
            return payload
        return bytes((self.tx_type,)) + payload


# ------------------------------------------------------------------ roots and proofs


def transactions_root(txs: tuple[Transaction, ...] | list[Transaction]) -> bytes:
    """Ethereum `transactionsRoot`: the ordered trie of the raw (signed, enveloped) transactions."""
    return ordered_trie_root([tx.raw for tx in txs])


def receipts_root(receipts: tuple[Receipt, ...] | list[Receipt]) -> bytes:
    """Ethereum `receiptsRoot`: the ordered trie of the consensus-encoded receipts."""
    return ordered_trie_root([receipt.encode() for receipt in receipts])


def receipt_proof(receipts: tuple[Receipt, ...] | list[Receipt], index: int) -> list[bytes]:
    """The trie nodes from the receipts root down to receipt `index` (what a witness checks)."""
    return ordered_trie_proof([receipt.encode() for receipt in receipts], index)


def verify_receipt_proof(root: bytes, index: int, proof: list[bytes]) -> bytes:
    """The encoded receipt at `index` under `root`, or InvalidProof saying why the proof fails."""
    return verify_proof(root, rlp_index_key(index), proof)


def transaction_proof(txs: tuple[Transaction, ...] | list[Transaction], index: int) -> list[bytes]:
    """The trie nodes from the transactions root down to transaction `index`."""
    return ordered_trie_proof([tx.raw for tx in txs], index)


def verify_transaction_proof(root: bytes, index: int, proof: list[bytes]) -> bytes:
    """The raw transaction at `index` under `root`, or InvalidProof saying why the proof fails."""
    return verify_proof(root, rlp_index_key(index), proof)


# ------------------------------------------------------------------ headers and blocks


def _int_field(item: Any, name: str) -> int:
    if not isinstance(item, bytes):
        raise InvalidBlock(f"header field {name} must be a byte string")
    if item[:1] == b"\x00":
        raise InvalidBlock(f"header field {name} has leading zero bytes")
    return int.from_bytes(item, "big")


def _fixed_field(item: Any, name: str, size: int) -> bytes:
    if not isinstance(item, bytes) or len(item) != size:
        raise InvalidBlock(f"header field {name} must be {size} bytes")
    return item


@dataclass(frozen=True)
class Header:
    """A block header. `hash()` is the digest that consensus decides and validators sign."""

    parent_hash: bytes
    number: int
    timestamp: int
    proposer: bytes
    transactions_root: bytes
    receipts_root: bytes
    state_root: bytes
    logs_bloom: bytes
    gas_limit: int
    gas_used: int
    base_fee_per_gas: int
    extra: bytes = b""

    def rlp_item(self) -> RlpItem:
        return [
            self.parent_hash,
            int_to_rlp_bytes(self.number),
            int_to_rlp_bytes(self.timestamp),
            self.proposer,
            self.transactions_root,
            self.receipts_root,
            self.state_root,
            self.logs_bloom,
            int_to_rlp_bytes(self.gas_limit),
            int_to_rlp_bytes(self.gas_used),
            int_to_rlp_bytes(self.base_fee_per_gas),
            self.extra,
        ]

    def encode(self) -> bytes:
        """RLP of the twelve fields in declaration order."""
        return rlp_encode(self.rlp_item())

    def hash(self) -> bytes:
        """keccak(encode()): the block hash."""
        return keccak(self.encode())

    @classmethod
    def from_rlp_item(cls, item: Any) -> Header:
        if not isinstance(item, list) or len(item) != 12:
            raise InvalidBlock("a header is an RLP list of 12 fields")
        return cls(
            parent_hash=_fixed_field(item[0], "parent_hash", 32),
            number=_int_field(item[1], "number"),
            timestamp=_int_field(item[2], "timestamp"),
            proposer=_fixed_field(item[3], "proposer", 20),
            transactions_root=_fixed_field(item[4], "transactions_root", 32),
            receipts_root=_fixed_field(item[5], "receipts_root", 32),
            state_root=_fixed_field(item[6], "state_root", 32),
            logs_bloom=_fixed_field(item[7], "logs_bloom", BLOOM_BYTES),
            gas_limit=_int_field(item[8], "gas_limit"),
            gas_used=_int_field(item[9], "gas_used"),
            base_fee_per_gas=_int_field(item[10], "base_fee_per_gas"),
            extra=_extra_field(item[11]),
        )

    @classmethod
    def decode(cls, data: bytes) -> Header:
        try:
            item = rlp_decode(data)
        except rlp.exceptions.DecodingError as exc:
            raise InvalidBlock(f"header is not valid RLP: {exc}") from exc
        return cls.from_rlp_item(item)


def _extra_field(item: Any) -> bytes:
    if not isinstance(item, bytes):
        raise InvalidBlock("header field extra must be a byte string")
    return item


@dataclass(frozen=True)
class Block:
    """A header and its transactions: what a proposer broadcasts and every node stores."""

    header: Header
    transactions: tuple[Transaction, ...]

    def hash(self) -> bytes:
        return self.header.hash()

    def encode(self) -> bytes:
        """`rlp([header, [raw transaction, ...]])`, each raw transaction as a byte string."""
        return rlp_encode([self.header.rlp_item(), [tx.raw for tx in self.transactions]])

    @classmethod
    def decode(
        cls, data: bytes, chain_id: int, known: Callable[[bytes], Transaction | None] | None = None
    ) -> Block:
        """Decode a block and every transaction in it (signatures are checked, senders recovered).

        `known` may return an already decoded transaction by its hash (e.g. from the pool), which
        saves recovering its sender again; it must only return transactions decoded for this chain.
        Raises InvalidBlock, naming the position of a transaction that does not decode.
        """
        item = _block_item(data)
        header = Header.from_rlp_item(item[0])
        txs: list[Transaction] = []
        for position, raw in enumerate(item[1]):
            if not isinstance(raw, bytes):
                raise InvalidBlock(f"transaction {position} must be a byte string")
            cached = known(keccak(raw)) if known is not None else None
            if cached is not None and cached.raw == raw:
                txs.append(cached)
                continue
            try:
                txs.append(decode_transaction(raw, chain_id))
            except InvalidTransaction as exc:
                raise InvalidBlock(f"transaction {position}: {type(exc).__name__}: {exc}") from exc
        return cls(header=header, transactions=tuple(txs))

    @staticmethod
    def decode_header(data: bytes) -> Header:
        """The header of an encoded block, without decoding its transactions (each would cost a
        sender recovery): enough to pass over a block already held, e.g. one synced twice."""
        return Header.from_rlp_item(_block_item(data)[0])


def _block_item(data: bytes) -> list[Any]:
    try:
        item = rlp_decode(data)
    except rlp.exceptions.DecodingError as exc:
        raise InvalidBlock(f"block is not valid RLP: {exc}") from exc
    if not isinstance(item, list) or len(item) != 2 or not isinstance(item[1], list):
        raise InvalidBlock("a block is an RLP list [header, [transactions]]")
    return item


def block_logs_bloom(receipts: tuple[Receipt, ...] | list[Receipt]) -> bytes:
    """The header's logs bloom: the union of the receipts' blooms."""
    return _or_blooms([receipt.bloom for receipt in receipts])


def next_base_fee(
    parent: Header,
    *,
    elasticity: int = ELASTICITY_MULTIPLIER,
    denominator: int = BASE_FEE_CHANGE_DENOMINATOR,
    floor: int = MIN_BASE_FEE_PER_GAS,
) -> int:
    """The base fee of the child of `parent` (EIP-1559), never below `floor`."""
    base = parent.base_fee_per_gas
    target = parent.gas_limit // elasticity
    if target == 0 or parent.gas_used == target:
        return max(base, floor)
    if parent.gas_used > target:
        delta = max(base * (parent.gas_used - target) // target // denominator, 1)
        return max(base + delta, floor)
    delta = base * (target - parent.gas_used) // target // denominator
    return max(base - delta, floor)


def genesis_header(
    *, state_root: bytes, timestamp: int, gas_limit: int, extra: bytes = b"", base_fee: int = GENESIS_BASE_FEE_PER_GAS
) -> Header:
    """Block 0: no parent, no transactions, the genesis state commitment and base fee."""
    return Header(
        parent_hash=bytes(32),
        number=0,
        timestamp=timestamp,
        proposer=bytes(20),
        transactions_root=EMPTY_TRIE_ROOT,
        receipts_root=EMPTY_TRIE_ROOT,
        state_root=state_root,
        logs_bloom=EMPTY_BLOOM,
        gas_limit=gas_limit,
        gas_used=0,
        base_fee_per_gas=base_fee,
        extra=extra,
    )
