"""Ethereum Merkle-Patricia tries for a block's ordered lists (transactions, receipts) and their proofs.

A block's `transactionsRoot` and `receiptsRoot` are the roots of tries keyed by `rlp(index)` that are
built once and never updated, so this module builds a trie from a complete key/value set in one
recursive pass instead of keeping a mutable node database: simpler, and fast enough for thousands of
items. The node layout (hex-prefix paths, 17-slot branches, nodes under 32 bytes inlined in their
parent) is the one of the Yellow Paper, so the roots equal those of any Ethereum client and a proof
made here verifies with any Ethereum tooling, and the other way round.

A proof is the list of the RLP encodings of the nodes met on the way from the root to the key, in
that order; nodes inlined in their parent are not listed (they are inside it), as in `eth_getProof`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence

import rlp

keccak: Callable[[bytes], bytes]
try:  # safe-pysha3 (C): about 4x faster than eth-hash's pycryptodome backend; it hashes every node and key
    from sha3 import keccak_256 as _keccak_256

    def _keccak_pysha3(data: bytes) -> bytes:
        return bytes(_keccak_256(data).digest())

    keccak = _keccak_pysha3
except ImportError:  # pragma: no cover - same function, slower
    from eth_hash.auto import keccak as _eth_hash_keccak

    keccak = _eth_hash_keccak

# An RLP item as this module builds it: a byte string or a list of items.
RlpItem = bytes | Sequence["RlpItem"]

EMPTY_TRIE_ROOT = keccak(b"\x80")  # 0x56e81f...b421, the root of a trie with no keys


class InvalidProof(Exception):
    """A Merkle proof does not show the claimed key under the claimed root; the message says where it breaks."""


# ------------------------------------------------------------------ RLP encoding of bytes and lists
# A small encoder for the two kinds of items a trie, a receipt or a header needs. It is several times
# faster than the generic `rlp.encode` (no sedes inference), which matters when hashing every receipt.


def _length_prefix(length: int, offset: int) -> bytes:
    if length < 56:
        return bytes((offset + length,))
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((offset + 55 + len(encoded),)) + encoded


_SHORT_PREFIX = [bytes((0x80 + n,)) for n in range(56)]


def rlp_encode(item: RlpItem) -> bytes:
    """RLP of a byte string or a (nested) list of byte strings."""
    if isinstance(item, bytes):
        if len(item) == 1 and item[0] < 0x80:
            return item
        return _length_prefix(len(item), 0x80) + item
    parts: list[bytes] = []
    for element in item:
        # Byte strings inline (the common case: every trie node and header field), lists recurse.
        if isinstance(element, bytes):
            size = len(element)
            if size == 1 and element[0] < 0x80:
                parts.append(element)
            elif size < 56:
                parts.append(_SHORT_PREFIX[size])
                parts.append(element)
            else:
                parts.append(_length_prefix(size, 0x80))
                parts.append(element)
        else:
            parts.append(rlp_encode(element))
    payload = b"".join(parts)
    return _length_prefix(len(payload), 0xC0) + payload


def rlp_decode(data: bytes) -> RlpItem:
    """Strict RLP decoding of one item that spans all of `data` (canonical lengths only).

    Several times faster than `rlp.decode(strict=True)`, which matters for every transaction and
    block a node receives; raises the same `rlp.exceptions.DecodingError` on malformed input."""
    item, end = _decode_at(data, 0, len(data))
    if end != len(data):
        raise rlp.exceptions.DecodingError(f"{len(data) - end} superfluous bytes after the RLP item", data)
    return item


def _decode_at(data: bytes, start: int, limit: int) -> tuple[RlpItem, int]:
    """The item at `start` (which must end by `limit`) and the position after it."""
    if start >= limit:
        raise rlp.exceptions.DecodingError("RLP item is truncated", data)
    first = data[start]
    if first < 0x80:
        return data[start : start + 1], start + 1
    if first < 0xB8:
        size, offset = first - 0x80, start + 1
        if size == 1 and offset < limit and data[offset] < 0x80:
            raise rlp.exceptions.DecodingError("a single byte below 0x80 must be encoded as itself", data)
    elif first < 0xC0:
        size, offset = _long_length(data, start, first - 0xB7, limit)
    else:
        if first < 0xF8:
            size, offset = first - 0xC0, start + 1
        else:
            size, offset = _long_length(data, start, first - 0xF7, limit)
        end = offset + size
        if end > limit:
            raise rlp.exceptions.DecodingError("RLP list is truncated", data)
        items: list[RlpItem] = []
        position = offset
        while position < end:
            element, position = _decode_at(data, position, end)
            items.append(element)
        return items, end
    end = offset + size
    if end > limit:
        raise rlp.exceptions.DecodingError("RLP string is truncated", data)
    return data[offset:end], end


def _long_length(data: bytes, start: int, length_of_length: int, limit: int) -> tuple[int, int]:
    offset = start + 1 + length_of_length
    if offset > limit:
        raise rlp.exceptions.DecodingError("RLP length is truncated", data)
    if data[start + 1] == 0:
        raise rlp.exceptions.DecodingError("RLP length has leading zeros", data)
    size = int.from_bytes(data[start + 1 : offset], "big")
    if size < 56:
        raise rlp.exceptions.DecodingError("RLP long form used for a short item", data)
    return size, offset


def int_to_rlp_bytes(value: int) -> bytes:
    """The canonical big-endian byte string of a non-negative integer (empty for zero), as RLP wants it."""
    if value < 0:
        raise ValueError(f"RLP integers are non-negative, got {value}")
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def rlp_index_key(index: int) -> bytes:
    """The trie key of the item at `index` in a block's ordered list: `rlp(index)`."""
    return rlp_encode(int_to_rlp_bytes(index))


# ------------------------------------------------------------------ trie construction


def _nibbles(key: bytes) -> tuple[int, ...]:
    out: list[int] = []
    for byte in key:
        out.append(byte >> 4)
        out.append(byte & 0x0F)
    return tuple(out)


def _hex_prefix(path: Sequence[int], leaf: bool) -> bytes:
    """Compact (hex-prefix) encoding of a nibble path, with the leaf flag in the first nibble."""
    flag = 2 if leaf else 0
    nibbles = [flag + 1, *path] if len(path) % 2 else [flag, 0, *path]
    return bytes((nibbles[i] << 4) | nibbles[i + 1] for i in range(0, len(nibbles), 2))


def _decode_hex_prefix(encoded: bytes) -> tuple[tuple[int, ...], bool]:
    if not encoded:
        raise InvalidProof("empty hex-prefix path in a leaf or extension node")
    nibbles = _nibbles(encoded)
    flag = nibbles[0]
    if flag > 3:
        raise InvalidProof(f"hex-prefix flag {flag} is not 0-3")
    leaf = flag >= 2
    if flag % 2:
        return nibbles[1:], leaf
    if nibbles[1] != 0:
        raise InvalidProof("hex-prefix padding nibble is not zero")
    return nibbles[2:], leaf


class _Builder:
    """Builds the trie for a sorted list of (nibble path, value) pairs and remembers every hashed node."""

    def __init__(self) -> None:
        self.hashed: dict[bytes, bytes] = {}  # keccak(node rlp) -> node rlp, for the nodes referenced by hash

    def reference(self, node: RlpItem) -> RlpItem:
        """How a parent refers to `node`: inline when its encoding is under 32 bytes, else by its hash."""
        encoded = rlp_encode(node)
        if len(encoded) < 32:
            return node
        digest = keccak(encoded)
        self.hashed[digest] = encoded
        return digest

    def build(self, pairs: Sequence[tuple[tuple[int, ...], bytes]], depth: int) -> RlpItem:
        if len(pairs) == 1:
            path, value = pairs[0]
            return [_hex_prefix(path[depth:], leaf=True), value]
        # Length of the nibble prefix that every path shares beyond `depth`.
        first, last = pairs[0][0], pairs[-1][0]  # sorted: the common prefix of all is that of first and last
        shared = 0
        limit = min(len(first), len(last)) - depth
        while shared < limit and first[depth + shared] == last[depth + shared]:
            shared += 1
        if shared:
            child = self.build(pairs, depth + shared)
            return [_hex_prefix(first[depth : depth + shared], leaf=False), self.reference(child)]
        branch: list[RlpItem] = [b""] * 17
        start = 0
        if len(first) == depth:  # a key ends exactly here: its value sits in the branch's 17th slot
            branch[16] = pairs[0][1]
            start = 1
        index = start
        while index < len(pairs):
            nibble = pairs[index][0][depth]
            end = index
            while end < len(pairs) and pairs[end][0][depth] == nibble:
                end += 1
            branch[nibble] = self.reference(self.build(pairs[index:end], depth + 1))
            index = end
        return branch


def _build_trie(items: Iterable[tuple[bytes, bytes]]) -> tuple[bytes, dict[bytes, bytes]]:
    pairs = sorted((_nibbles(key), value) for key, value in items)
    for (path_a, _), (path_b, _) in itertools.pairwise(pairs):
        if path_a == path_b:
            raise ValueError("duplicate key in trie items")
    for _, value in pairs:
        if not value:
            raise ValueError("trie values must be non-empty (an empty value means 'absent')")
    if not pairs:
        return EMPTY_TRIE_ROOT, {EMPTY_TRIE_ROOT: b"\x80"}
    builder = _Builder()
    root_node = builder.build(pairs, 0)
    encoded = rlp_encode(root_node)
    root = keccak(encoded)
    builder.hashed[root] = encoded  # the root is always referenced by hash, however short
    return root, builder.hashed


def trie_root(items: Iterable[tuple[bytes, bytes]]) -> bytes:
    """Root hash of the trie holding these (key, value) pairs."""
    return _build_trie(items)[0]


def ordered_trie_root(values: Sequence[bytes]) -> bytes:
    """Root of the trie mapping `rlp(i)` to `values[i]`: a block's transactions or receipts root."""
    return trie_root((rlp_index_key(i), value) for i, value in enumerate(values))


def _walk(root: bytes, key: bytes, lookup: dict[bytes, bytes], collect: list[bytes] | None) -> bytes:
    """Follow `key` from `root` through nodes found by hash in `lookup`; return the value.

    `collect`, when given, receives the encoding of every node met that is referenced by hash: the proof.
    Raises InvalidProof (with the reason) when a node is missing or malformed or the key is absent.
    """
    path = _nibbles(key)
    position = 0
    reference: RlpItem = root
    depth = 0
    while True:
        if isinstance(reference, bytes):
            if len(reference) != 32:
                raise InvalidProof(f"node reference of {len(reference)} bytes at depth {depth} (want 32 or inline)")
            encoded = lookup.get(reference)
            if encoded is None:
                raise InvalidProof(f"no proof node hashes to 0x{reference.hex()} (depth {depth})")
            if collect is not None:
                collect.append(encoded)
            try:
                node = rlp.decode(encoded)
            except rlp.exceptions.DecodingError as exc:
                raise InvalidProof(f"proof node at depth {depth} is not valid RLP: {exc}") from exc
        else:
            node = reference
        depth += 1
        if not isinstance(node, list):
            raise InvalidProof(f"trie node at depth {depth} is not a list")
        if len(node) == 17:
            if position == len(path):
                value = node[16]
                if not isinstance(value, bytes) or not value:
                    raise InvalidProof("key not in trie: the branch where it ends holds no value")
                return value
            child = node[path[position]]
            position += 1
            if child == b"":
                raise InvalidProof(f"key not in trie: empty branch slot at nibble {position - 1}")
            reference = child
            continue
        if len(node) == 2:
            encoded_path = node[0]
            if not isinstance(encoded_path, bytes):
                raise InvalidProof("leaf or extension path is not a byte string")
            segment, leaf = _decode_hex_prefix(encoded_path)
            if tuple(path[position : position + len(segment)]) != segment:
                raise InvalidProof(f"key not in trie: path diverges at nibble {position}")
            position += len(segment)
            if leaf:
                if position != len(path):
                    raise InvalidProof("key not in trie: a leaf ends before the key does")
                value = node[1]
                if not isinstance(value, bytes):
                    raise InvalidProof("leaf value is not a byte string")
                return value
            if not segment:
                raise InvalidProof("extension node with an empty path")
            reference = node[1]
            continue
        raise InvalidProof(f"trie node with {len(node)} items (want 2 or 17)")


def trie_proof(items: Iterable[tuple[bytes, bytes]], key: bytes) -> list[bytes]:
    """The nodes (RLP) from the root to `key`'s leaf in the trie of `items`."""
    root, hashed = _build_trie(items)
    proof: list[bytes] = []
    _walk(root, key, hashed, proof)
    return proof


def verify_proof(root: bytes, key: bytes, proof: Sequence[bytes]) -> bytes:
    """The value stored under `key` in the trie whose root hash is `root`, as shown by `proof`.

    Every hashed node of the proof must be used, in order, each one hashing to the reference its
    parent holds; otherwise (or when the key is absent) InvalidProof says what is wrong.
    """
    if len(root) != 32:
        raise InvalidProof(f"root must be 32 bytes, got {len(root)}")
    if not proof:
        raise InvalidProof("empty proof")
    lookup = {keccak(node): node for node in proof}
    if keccak(proof[0]) != root:
        raise InvalidProof(f"first proof node does not hash to the root 0x{root.hex()}")
    used: list[bytes] = []
    value = _walk(root, key, lookup, used)
    # Some tools also list the nodes inlined in their parent (under 32 bytes); they prove nothing more.
    expected = [proof[0], *(node for node in proof[1:] if len(node) >= 32)]
    if used != expected:
        raise InvalidProof(
            f"proof has {len(expected)} hashed nodes but the path to the key uses {len(used)}, or another order"
        )
    return value


def ordered_trie_proof(values: Sequence[bytes], index: int) -> list[bytes]:
    """Proof of `values[index]` in the ordered trie of `values`."""
    if not 0 <= index < len(values):
        raise IndexError(f"index {index} outside a list of {len(values)}")
    return trie_proof(((rlp_index_key(i), value) for i, value in enumerate(values)), rlp_index_key(index))
