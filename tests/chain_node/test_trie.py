"""Merkle-Patricia tries: roots equal Ethereum's test vectors, proofs verify, tampering is caught with a reason."""

from __future__ import annotations

from typing import Any

import pytest
import rlp
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from chain_node.blocks import Log, Receipt, receipt_proof, receipts_root, verify_receipt_proof
from chain_node.trie import (
    EMPTY_TRIE_ROOT,
    InvalidProof,
    ordered_trie_proof,
    ordered_trie_root,
    rlp_decode,
    rlp_encode,
    rlp_index_key,
    trie_proof,
    trie_root,
    verify_proof,
)

# From ethereum/tests TrieTests (trieanyorder.json / trietest.json): any correct trie gives these roots.
VECTORS = [
    (
        {b"do": b"verb", b"dog": b"puppy", b"doge": b"coin", b"horse": b"stallion"},
        "5991bb8c6514148a29db676a14ac506cd2cd5775ace63c30a4fe457715e9ac84",
    ),
    ({b"foo": b"bar", b"food": b"bass"}, "17beaa1648bafa633cda809c90c04af50fc8aed3cb40d16efbddee6fdf63c4c3"),
    ({b"be": b"e", b"dog": b"puppy", b"bed": b"d"}, "3f67c7a47520f79faa29255d2d3c084a7a6df0453116ed7232ff10277a8be68b"),
    ({b"test": b"test", b"te": b"testy"}, "8452568af70d8d140f58d941338542f645fcca50094b20f3c3d8c3df49337928"),
    (
        {b"doe": b"reindeer", b"dog": b"puppy", b"dogglesworth": b"cat"},
        "8aad789dff2f538bca5d8ea56e8abe10f4c7ba3a5dea95fea4cd6e7c3a1168d3",
    ),
]


def test_empty_trie_root_is_ethereums() -> None:
    assert EMPTY_TRIE_ROOT.hex() == "56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421"
    assert ordered_trie_root([]) == EMPTY_TRIE_ROOT
    assert receipts_root([]) == EMPTY_TRIE_ROOT


@pytest.mark.parametrize(("items", "root"), VECTORS)
def test_roots_match_ethereum_test_vectors(items: dict[bytes, bytes], root: str) -> None:
    assert trie_root(items.items()).hex() == root
    assert trie_root(reversed(list(items.items()))).hex() == root  # order of insertion does not matter
    for key, value in items.items():
        assert verify_proof(bytes.fromhex(root), key, trie_proof(items.items(), key)) == value


def test_rlp_encoder_matches_pyrlp() -> None:
    samples: list[object] = [
        b"",
        b"\x00",
        b"\x7f",
        b"\x80",
        b"a" * 55,
        b"a" * 56,
        b"a" * 1024,
        [],
        [b"", [b"x"]],
        [b"y" * 60] * 3,
    ]
    for sample in samples:
        assert rlp_encode(sample) == rlp.encode(sample)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=80), min_size=1, max_size=300))
def test_every_item_of_an_ordered_trie_is_proven(values: list[bytes]) -> None:
    root = ordered_trie_root(values)
    for index in {0, len(values) // 2, len(values) - 1}:
        proof = ordered_trie_proof(values, index)
        assert verify_proof(root, rlp_index_key(index), proof) == values[index]


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.binary(max_size=5), st.binary(min_size=1, max_size=40), min_size=1, max_size=40))
def test_arbitrary_keys_including_prefixes_of_each_other(items: dict[bytes, bytes]) -> None:
    root = trie_root(items.items())
    for key, value in items.items():
        assert verify_proof(root, key, trie_proof(items.items(), key)) == value


def _receipts(count: int) -> list[Receipt]:
    receipts = []
    cumulative = 0
    for index in range(count):
        cumulative += 21_000 + index
        logs = tuple(
            Log(bytes([index % 256]) * 20, (keccak(bytes([index % 256])),), b"\x01" * index) for _ in range(index % 3)
        )
        receipts.append(
            Receipt(
                status=index % 2,
                cumulative_gas_used=cumulative,
                logs=logs,
                tx_type=index % 3,
                gas_used=21_000 + index,
                contract_address=None,
                effective_gas_price=1,
                tx_hash=keccak(bytes([index % 256])),
                sender=b"\x01" * 20,
                to=b"\x02" * 20,
            )
        )
    return receipts


def test_receipt_proofs_verify_for_every_position() -> None:
    receipts = _receipts(140)  # past 128: keys rlp(128..) are two bytes long
    root = receipts_root(receipts)
    for index in (0, 1, 15, 16, 127, 128, 139):
        proof = receipt_proof(receipts, index)
        assert verify_receipt_proof(root, index, proof) == receipts[index].encode()


def test_tampered_proofs_fail_with_a_reason() -> None:
    receipts = _receipts(40)
    root = receipts_root(receipts)
    proof = receipt_proof(receipts, 7)

    leaf = bytearray(proof[-1])
    leaf[-1] ^= 1  # flip a bit of the receipt inside the leaf node
    with pytest.raises(InvalidProof, match="no proof node hashes to"):
        verify_receipt_proof(root, 7, [*proof[:-1], bytes(leaf)])

    first = bytearray(proof[0])
    first[5] ^= 1
    with pytest.raises(InvalidProof, match="does not hash to the root"):
        verify_receipt_proof(root, 7, [bytes(first), *proof[1:]])

    with pytest.raises(InvalidProof, match="no proof node hashes to"):
        verify_receipt_proof(root, 7, proof[:-1])  # truncated
    with pytest.raises(InvalidProof, match="empty proof"):
        verify_receipt_proof(root, 7, [])
    with pytest.raises(InvalidProof, match="hashed nodes but the path"):
        verify_receipt_proof(root, 7, [*proof, receipt_proof(receipts, 8)[-1]])  # an unused extra node
    with pytest.raises(InvalidProof):
        verify_receipt_proof(root, 8, proof)  # the proof of 7 does not show 8
    with pytest.raises(InvalidProof, match="root must be 32 bytes"):
        verify_receipt_proof(root[:31], 7, proof)

    other = _receipts(41)
    with pytest.raises(InvalidProof):
        verify_receipt_proof(receipts_root(other), 7, proof)  # another block's root


def test_a_proof_of_an_absent_index_says_so() -> None:
    receipts = _receipts(3)
    root = receipts_root(receipts)
    proof = receipt_proof(receipts, 2)
    with pytest.raises(InvalidProof, match="key not in trie"):
        verify_receipt_proof(root, 5, proof)


def test_single_item_trie_root_is_the_hash_of_its_leaf() -> None:
    value = b"\x05" * 40
    root = ordered_trie_root([value])
    leaf = rlp_encode([bytes([0x20]) + b"\x80", value])  # even leaf path: flag 0x20, then the key nibbles 8,0
    assert root == keccak(leaf)
    assert ordered_trie_proof([value], 0) == [leaf]


def test_duplicate_keys_and_empty_values_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        trie_root([(b"a", b"1"), (b"a", b"2")])
    with pytest.raises(ValueError, match="non-empty"):
        trie_root([(b"a", b"")])


_items = st.recursive(st.binary(max_size=80), lambda children: st.lists(children, max_size=6), max_leaves=20)


@given(_items)
def test_rlp_decode_round_trips_what_rlp_encode_makes(item: Any) -> None:
    assert rlp_decode(rlp_encode(item)) == item
    assert rlp_encode(item) == rlp.encode(item)


@given(st.one_of(st.binary(max_size=64), _items.map(lambda item: rlp.encode(item)[:-1] + b"\x00")))
def test_rlp_decode_accepts_and_refuses_exactly_what_pyrlp_strict_does(data: bytes) -> None:
    try:
        expected = rlp.decode(data, strict=True)
    except rlp.exceptions.DecodingError:
        with pytest.raises(rlp.exceptions.DecodingError):
            rlp_decode(data)
        return
    assert rlp_decode(data) == expected


@pytest.mark.parametrize(
    "data",
    [b"", b"\x81\x05", b"\xb8\x05hello", b"\xb9\x00\x38" + b"a" * 56, b"\xc2\x01", b"\x83ab", b"\xc1\x01\x02"],
)
def test_rlp_decode_refuses_non_canonical_or_truncated_input(data: bytes) -> None:
    with pytest.raises(rlp.exceptions.DecodingError):
        rlp_decode(data)
