"""Signed Ethereum transactions: decoding, validation of the envelope and signature, sender recovery.

The node accepts exactly what Ethereum wallets and tools sign (web3.py/eth-account, ethers.js,
Foundry `cast`): legacy transactions with EIP-155 replay protection, EIP-2930 (type 1) and EIP-1559
(type 2). Everything that is checked without the chain state is checked here, once, when the raw
bytes arrive (JSON-RPC `eth_sendRawTransaction`, a gossiped transaction or a proposed block), so that
the execution layer only has state-dependent checks left (see `execution.check_transaction`).

Sender recovery uses coincurve (libsecp256k1), about 50 µs a signature, because every transaction of
every proposed block is recovered by every validator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import rlp
from coincurve import PublicKey

from chain_node.trie import RlpItem, int_to_rlp_bytes, keccak, rlp_decode, rlp_encode

LEGACY_TX = 0
ACCESS_LIST_TX = 1
DYNAMIC_FEE_TX = 2
SUPPORTED_TYPES = (LEGACY_TX, ACCESS_LIST_TX, DYNAMIC_FEE_TX)

# The largest raw transaction accepted: geth's pool limit (4 slots of 32 KiB). It bounds the work an
# unauthenticated peer can make us do before the signature is even checked.
MAX_TX_SIZE = 128 * 1024

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N = SECP256K1_N // 2
_UINT256_MAX = 2**256 - 1
_UINT64_MAX = 2**64 - 1

AccessList = tuple[tuple[bytes, tuple[bytes, ...]], ...]


class InvalidTransaction(Exception):
    """A transaction that cannot be accepted; subclasses name the rule, the message gives the details."""


class MalformedTransaction(InvalidTransaction):
    """The bytes are not a well-formed transaction envelope (bad RLP, field count, sizes, encodings)."""


class OversizedTransaction(MalformedTransaction):
    """The raw transaction is larger than MAX_TX_SIZE."""


class UnsupportedTransactionType(InvalidTransaction):
    """A typed envelope of a type this chain does not execute (blob and set-code transactions, others)."""


class WrongChainId(InvalidTransaction):
    """Signed for another chain, or a legacy transaction without EIP-155 replay protection."""


class InvalidSignature(InvalidTransaction):
    """v/r/s out of range, a high s (EIP-2), or a signature from which no public key can be recovered."""


@dataclass(frozen=True)
class Transaction:
    """A decoded, signature-checked transaction.

    For legacy and EIP-2930 transactions `max_fee_per_gas` and `max_priority_fee_per_gas` both equal
    `gas_price` (how EIP-1559 treats them); for EIP-1559 ones `gas_price` equals `max_fee_per_gas`.
    So fee arithmetic never needs to look at the type. `v` is the signature's v as signed: for legacy
    `chain_id * 2 + 35 + y_parity`, for typed transactions the y parity itself.
    """

    tx_type: int
    chain_id: int
    nonce: int
    gas_limit: int
    to: bytes | None
    value: int
    data: bytes
    gas_price: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    access_list: AccessList
    v: int
    r: int
    s: int
    sender: bytes
    hash: bytes
    raw: bytes

    @property
    def is_create(self) -> bool:
        return self.to is None

    @property
    def y_parity(self) -> int:
        return self.v if self.tx_type != LEGACY_TX else (self.v - 35) % 2

    def effective_gas_price(self, base_fee: int) -> int:
        """What the sender pays per gas in a block with this base fee (EIP-1559)."""
        if self.tx_type == DYNAMIC_FEE_TX:
            return min(self.max_fee_per_gas, base_fee + self.max_priority_fee_per_gas)
        return self.gas_price

    def priority_fee_per_gas(self, base_fee: int) -> int:
        """The part of the effective gas price that goes to the block's proposer (the rest is burnt)."""
        return self.effective_gas_price(base_fee) - base_fee

    def max_cost(self) -> int:
        """The balance the sender needs up front: gas limit times the fee cap, plus the value sent."""
        return self.gas_limit * self.max_fee_per_gas + self.value


# ------------------------------------------------------------------ field decoding helpers


def _as_bytes(item: Any, name: str) -> bytes:
    if not isinstance(item, bytes):
        raise MalformedTransaction(f"field {name} must be a byte string, got a list")
    return item


def _as_int(item: Any, name: str, limit: int = _UINT256_MAX) -> int:
    raw = _as_bytes(item, name)
    if raw[:1] == b"\x00":
        raise MalformedTransaction(f"field {name} is an integer with leading zero bytes (non-canonical RLP)")
    value = int.from_bytes(raw, "big")
    if value > limit:
        raise MalformedTransaction(f"field {name} = {value} exceeds its maximum {limit}")
    return value


def _as_to(item: Any) -> bytes | None:
    raw = _as_bytes(item, "to")
    if raw == b"":
        return None
    if len(raw) != 20:
        raise MalformedTransaction(f"field to must be empty (contract creation) or 20 bytes, got {len(raw)}")
    return raw


def _as_access_list(item: Any) -> AccessList:
    if not isinstance(item, list):
        raise MalformedTransaction("accessList must be a list")
    entries: list[tuple[bytes, tuple[bytes, ...]]] = []
    for position, entry in enumerate(item):
        if not isinstance(entry, list) or len(entry) != 2:
            raise MalformedTransaction(f"accessList[{position}] must be a pair [address, storageKeys]")
        address = entry[0]
        keys = entry[1]
        if not isinstance(address, bytes) or len(address) != 20:
            raise MalformedTransaction(f"accessList[{position}] address must be 20 bytes")
        if not isinstance(keys, list):
            raise MalformedTransaction(f"accessList[{position}] storageKeys must be a list")
        for key in keys:
            if not isinstance(key, bytes) or len(key) != 32:
                raise MalformedTransaction(f"accessList[{position}] storage keys must be 32 bytes each")
        entries.append((address, tuple(keys)))
    return tuple(entries)


def _access_list_rlp(access_list: AccessList) -> RlpItem:
    return [[address, list(keys)] for address, keys in access_list]


def _recover_sender(signing_hash: bytes, y_parity: int, r: int, s: int) -> bytes:
    if not 1 <= r < SECP256K1_N:
        raise InvalidSignature("signature r is out of range (must be 1..n-1)")
    if not 1 <= s < SECP256K1_N:
        raise InvalidSignature("signature s is out of range (must be 1..n-1)")
    if s > _HALF_N:
        raise InvalidSignature("signature s is in the upper half of the curve order (EIP-2 forbids it)")
    if y_parity not in (0, 1):
        raise InvalidSignature(f"signature y parity must be 0 or 1, got {y_parity}")
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((y_parity,))
    try:
        public_key = PublicKey.from_signature_and_message(signature, signing_hash, hasher=None)
    except Exception as exc:  # coincurve raises a bare Exception when recovery fails
        raise InvalidSignature(f"no public key can be recovered from the signature: {exc}") from exc
    return keccak(public_key.format(compressed=False)[1:])[12:]


# ------------------------------------------------------------------ decoding


def decode_transaction(raw: bytes, chain_id: int) -> Transaction:
    """Decode and authenticate a raw signed transaction for the chain `chain_id`.

    Raises an InvalidTransaction subclass naming the broken rule. The returned transaction's
    `sender` is recovered from the signature and `hash` is keccak(raw), the transaction hash that
    wallets compute.
    """
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise MalformedTransaction(f"raw transaction must be bytes, got {type(raw).__name__}")
    raw = bytes(raw)
    if not raw:
        raise MalformedTransaction("empty transaction")
    if len(raw) > MAX_TX_SIZE:
        raise OversizedTransaction(f"transaction of {len(raw)} bytes exceeds the {MAX_TX_SIZE}-byte limit")
    first = raw[0]
    if first >= 0xC0:
        return _decode_legacy(raw, chain_id)
    if first > 0x7F:
        raise MalformedTransaction(f"first byte 0x{first:02x} is neither a transaction type nor an RLP list")
    if first not in SUPPORTED_TYPES:
        raise UnsupportedTransactionType(
            f"transaction type {first} is not supported (this chain executes types 0, 1 and 2)"
        )
    return _decode_typed(raw, first, chain_id)


def _rlp_list(payload: bytes, what: str) -> list[Any]:
    try:
        decoded = rlp_decode(payload)
    except rlp.exceptions.DecodingError as exc:
        raise MalformedTransaction(f"{what} is not valid RLP: {exc}") from exc
    if not isinstance(decoded, list):
        raise MalformedTransaction(f"{what} must be an RLP list")
    return decoded


def _decode_legacy(raw: bytes, chain_id: int) -> Transaction:
    fields = _rlp_list(raw, "legacy transaction")
    if len(fields) != 9:
        raise MalformedTransaction(f"legacy transaction has {len(fields)} fields, want 9")
    nonce = _as_int(fields[0], "nonce", _UINT64_MAX - 1)
    gas_price = _as_int(fields[1], "gasPrice")
    gas_limit = _as_int(fields[2], "gas", _UINT64_MAX)
    to = _as_to(fields[3])
    value = _as_int(fields[4], "value")
    data = _as_bytes(fields[5], "data")
    v = _as_int(fields[6], "v")
    r = _as_int(fields[7], "r")
    s = _as_int(fields[8], "s")
    if v in (27, 28):
        raise WrongChainId("legacy transaction without EIP-155 replay protection (v is 27 or 28); sign with a chain id")
    if v < 35:
        raise InvalidSignature(f"legacy signature v = {v} is neither 27/28 nor EIP-155 (>= 35)")
    signed_chain_id = (v - 35) // 2
    if signed_chain_id != chain_id:
        raise WrongChainId(f"transaction is signed for chain {signed_chain_id}, this chain is {chain_id}")
    y_parity = (v - 35) % 2
    unsigned = [
        int_to_rlp_bytes(nonce),
        int_to_rlp_bytes(gas_price),
        int_to_rlp_bytes(gas_limit),
        to or b"",
        int_to_rlp_bytes(value),
        data,
        int_to_rlp_bytes(chain_id),
        b"",
        b"",
    ]
    sender = _recover_sender(keccak(rlp_encode(unsigned)), y_parity, r, s)
    return Transaction(
        tx_type=LEGACY_TX,
        chain_id=chain_id,
        nonce=nonce,
        gas_limit=gas_limit,
        to=to,
        value=value,
        data=data,
        gas_price=gas_price,
        max_fee_per_gas=gas_price,
        max_priority_fee_per_gas=gas_price,
        access_list=(),
        v=v,
        r=r,
        s=s,
        sender=sender,
        hash=keccak(raw),
        raw=raw,
    )


def _decode_typed(raw: bytes, tx_type: int, chain_id: int) -> Transaction:
    what = "EIP-2930 transaction" if tx_type == ACCESS_LIST_TX else "EIP-1559 transaction"
    fields = _rlp_list(raw[1:], what)
    want = 11 if tx_type == ACCESS_LIST_TX else 12
    if len(fields) != want:
        raise MalformedTransaction(f"{what} has {len(fields)} fields, want {want}")
    signed_chain_id = _as_int(fields[0], "chainId")
    if signed_chain_id != chain_id:
        raise WrongChainId(f"transaction is signed for chain {signed_chain_id}, this chain is {chain_id}")
    nonce = _as_int(fields[1], "nonce", _UINT64_MAX - 1)
    if tx_type == ACCESS_LIST_TX:
        gas_price = _as_int(fields[2], "gasPrice")
        max_fee = priority_fee = gas_price
        rest = fields[3:]
    else:
        priority_fee = _as_int(fields[2], "maxPriorityFeePerGas")
        max_fee = _as_int(fields[3], "maxFeePerGas")
        if priority_fee > max_fee:
            raise MalformedTransaction(f"maxPriorityFeePerGas {priority_fee} is higher than maxFeePerGas {max_fee}")
        gas_price = max_fee
        rest = fields[4:]
    gas_limit = _as_int(rest[0], "gas", _UINT64_MAX)
    to = _as_to(rest[1])
    value = _as_int(rest[2], "value")
    data = _as_bytes(rest[3], "data")
    access_list = _as_access_list(rest[4])
    y_parity = _as_int(rest[5], "yParity")
    r = _as_int(rest[6], "r")
    s = _as_int(rest[7], "s")
    if y_parity > 1:
        raise InvalidSignature(f"signature y parity must be 0 or 1, got {y_parity}")
    # The signed payload is the envelope without its last three (signature) fields.
    signing_hash = keccak(bytes((tx_type,)) + rlp_encode(fields[:-3]))
    sender = _recover_sender(signing_hash, y_parity, r, s)
    return Transaction(
        tx_type=tx_type,
        chain_id=chain_id,
        nonce=nonce,
        gas_limit=gas_limit,
        to=to,
        value=value,
        data=data,
        gas_price=gas_price,
        max_fee_per_gas=max_fee,
        max_priority_fee_per_gas=priority_fee,
        access_list=access_list,
        v=y_parity,
        r=r,
        s=s,
        sender=sender,
        hash=keccak(raw),
        raw=raw,
    )


# ------------------------------------------------------------------ JSON-RPC representation


def _hex(value: int) -> str:
    return hex(value)


def _data(value: bytes) -> str:
    return "0x" + value.hex()


def to_rpc_dict(
    tx: Transaction,
    block_hash: bytes | None,
    block_number: int | None,
    index: int | None,
    base_fee: int | None = None,
) -> dict[str, Any]:
    """The transaction in the shape of `eth_getTransactionByHash` (geth's field set).

    `block_hash`, `block_number` and `index` are None for a pending transaction. For an EIP-1559
    transaction `gasPrice` is the effective price paid when `base_fee` (of its block) is given, else
    its fee cap, as geth reports pending transactions.
    """
    result: dict[str, Any] = {
        "blockHash": _data(block_hash) if block_hash is not None else None,
        "blockNumber": _hex(block_number) if block_number is not None else None,
        "transactionIndex": _hex(index) if index is not None else None,
        "hash": _data(tx.hash),
        "type": _hex(tx.tx_type),
        "chainId": _hex(tx.chain_id),
        "nonce": _hex(tx.nonce),
        "from": _data(tx.sender),
        "to": _data(tx.to) if tx.to is not None else None,
        "value": _hex(tx.value),
        "gas": _hex(tx.gas_limit),
        "input": _data(tx.data),
        "gasPrice": _hex(tx.effective_gas_price(base_fee) if base_fee is not None else tx.gas_price),
        "v": _hex(tx.v),
        "r": _hex(tx.r),
        "s": _hex(tx.s),
    }
    if tx.tx_type != LEGACY_TX:
        result["accessList"] = [
            {"address": _data(address), "storageKeys": [_data(key) for key in keys]} for address, keys in tx.access_list
        ]
        result["yParity"] = _hex(tx.y_parity)
    if tx.tx_type == DYNAMIC_FEE_TX:
        result["maxFeePerGas"] = _hex(tx.max_fee_per_gas)
        result["maxPriorityFeePerGas"] = _hex(tx.max_priority_fee_per_gas)
    return result


def intrinsic_gas(tx: Transaction) -> int:
    """Gas charged before any code runs (Cancun rules): base, calldata, creation, initcode, access list."""
    zero_bytes = tx.data.count(0)
    gas = 21_000 + 4 * zero_bytes + 16 * (len(tx.data) - zero_bytes)
    if tx.to is None:
        gas += 32_000 + 2 * ((len(tx.data) + 31) // 32)  # EIP-3860 initcode word cost
    for _, keys in tx.access_list:
        gas += 2_400 + 1_900 * len(keys)
    return gas
