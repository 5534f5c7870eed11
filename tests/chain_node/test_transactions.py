"""Decoding signed transactions as wallets make them, and refusing everything else with the rule broken."""

from __future__ import annotations

from typing import Any

import pytest
import rlp
from eth_account import Account as EthAccount
from eth_utils import keccak, to_checksum_address

from chain_node.transactions import (
    MAX_TX_SIZE,
    SECP256K1_N,
    InvalidSignature,
    MalformedTransaction,
    OversizedTransaction,
    Transaction,
    UnsupportedTransactionType,
    WrongChainId,
    decode_transaction,
    intrinsic_gas,
    to_rpc_dict,
)

CHAIN_ID = 4242
KEY = keccak(text="transactions-test-key")
SENDER = EthAccount.from_key(KEY).address
TO = "0x" + "35" * 20
ACCESS_LIST = [{"address": "0x" + "ab" * 20, "storageKeys": ["0x" + "00" * 31 + "01", "0x" + "11" * 32]}]


def _sign(tx: dict[str, Any], key: bytes = KEY) -> bytes:
    return bytes(EthAccount.sign_transaction(tx, key).raw_transaction)


def legacy(**overrides: Any) -> dict[str, Any]:
    tx = {
        "chainId": CHAIN_ID,
        "nonce": 7,
        "gasPrice": 2_000_000_000,
        "gas": 50_000,
        "to": to_checksum_address(TO),
        "value": 12345,
        "data": b"\x01\x00\x02",
    }
    tx.update(overrides)
    return tx


def access_list_tx(**overrides: Any) -> dict[str, Any]:
    tx = legacy(type=1, accessList=ACCESS_LIST)
    tx.update(overrides)
    return tx


def dynamic_fee(**overrides: Any) -> dict[str, Any]:
    tx = {
        "type": 2,
        "chainId": CHAIN_ID,
        "nonce": 3,
        "maxFeePerGas": 3_000_000_000,
        "maxPriorityFeePerGas": 1_500_000_000,
        "gas": 90_000,
        "to": to_checksum_address(TO),
        "value": 0,
        "data": b"\xde\xad\xbe\xef",
        "accessList": ACCESS_LIST,
    }
    tx.update(overrides)
    return tx


def test_decodes_a_legacy_eip155_transaction_signed_by_eth_account() -> None:
    signed = EthAccount.sign_transaction(legacy(), KEY)
    tx = decode_transaction(bytes(signed.raw_transaction), CHAIN_ID)
    assert tx.tx_type == 0
    assert "0x" + tx.sender.hex() == SENDER.lower()
    assert tx.hash == bytes(signed.hash)
    assert (tx.nonce, tx.gas_price, tx.gas_limit, tx.value, tx.data) == (
        7,
        2_000_000_000,
        50_000,
        12345,
        b"\x01\x00\x02",
    )
    assert tx.to == bytes.fromhex(TO[2:])
    assert (tx.v, tx.r, tx.s) == (signed.v, signed.r, signed.s)
    assert tx.max_fee_per_gas == tx.max_priority_fee_per_gas == tx.gas_price
    assert tx.effective_gas_price(10**9) == 2_000_000_000
    assert tx.raw == bytes(signed.raw_transaction)


def test_decodes_an_eip2930_transaction_with_its_access_list() -> None:
    signed = EthAccount.sign_transaction(access_list_tx(), KEY)
    tx = decode_transaction(bytes(signed.raw_transaction), CHAIN_ID)
    assert tx.tx_type == 1
    assert "0x" + tx.sender.hex() == SENDER.lower()
    assert tx.hash == bytes(signed.hash)
    assert tx.access_list == ((b"\xab" * 20, (b"\x00" * 31 + b"\x01", b"\x11" * 32)),)
    assert tx.v in (0, 1)


def test_decodes_an_eip1559_transaction_and_prices_it() -> None:
    signed = EthAccount.sign_transaction(dynamic_fee(), KEY)
    tx = decode_transaction(bytes(signed.raw_transaction), CHAIN_ID)
    assert tx.tx_type == 2
    assert "0x" + tx.sender.hex() == SENDER.lower()
    assert tx.hash == bytes(signed.hash)
    assert (tx.max_fee_per_gas, tx.max_priority_fee_per_gas) == (3_000_000_000, 1_500_000_000)
    assert tx.effective_gas_price(1_000_000_000) == 2_500_000_000  # base + tip
    assert tx.effective_gas_price(2_000_000_000) == 3_000_000_000  # capped by the fee cap
    assert tx.priority_fee_per_gas(2_000_000_000) == 1_000_000_000
    assert tx.max_cost() == 90_000 * 3_000_000_000


def test_decodes_a_contract_creation() -> None:
    tx = decode_transaction(_sign(dynamic_fee(to=b"", data=b"\x60\x00" * 40)), CHAIN_ID)
    assert tx.to is None and tx.is_create
    assert intrinsic_gas(tx) == 21_000 + 32_000 + 40 * (16 + 4) + 2 * 3 + 2_400 + 2 * 1_900


def test_eip155_reference_vector() -> None:
    """The example of EIP-155 itself (chain 1), as any signer produces it."""
    raw = bytes.fromhex(
        "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe5"
        "37567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83"
    )
    tx = decode_transaction(raw, 1)
    assert tx.sender.hex() == "9d8a62f656a8d1615c1294fd71e9cfb3e4855a4f"
    assert (tx.nonce, tx.gas_price, tx.value, tx.v) == (9, 20 * 10**9, 10**18, 37)
    with pytest.raises(WrongChainId, match="signed for chain 1, this chain is 4242"):
        decode_transaction(raw, CHAIN_ID)


@pytest.mark.parametrize("build", [legacy, access_list_tx, dynamic_fee])
def test_wrong_chain_id_is_refused(build: Any) -> None:
    raw = _sign(build(chainId=CHAIN_ID + 1))
    with pytest.raises(WrongChainId, match=f"signed for chain {CHAIN_ID + 1}, this chain is {CHAIN_ID}"):
        decode_transaction(raw, CHAIN_ID)


def test_legacy_without_replay_protection_is_refused() -> None:
    tx = legacy()
    del tx["chainId"]
    with pytest.raises(WrongChainId, match="without EIP-155"):
        decode_transaction(_sign(tx), CHAIN_ID)


def _resign_fields(raw: bytes, **changes: int) -> bytes:
    """Re-encode a typed transaction with some signature fields replaced (positions from the end)."""
    fields = rlp.decode(raw[1:])
    positions = {"y": -3, "r": -2, "s": -1}
    for name, value in changes.items():
        fields[positions[name]] = value.to_bytes((value.bit_length() + 7) // 8, "big")
    encoded: bytes = rlp.encode(fields)
    return raw[:1] + encoded


def test_bad_signatures_are_refused_with_the_reason() -> None:
    raw = _sign(dynamic_fee())
    fields = rlp.decode(raw[1:])
    s = int.from_bytes(fields[-1], "big")
    with pytest.raises(InvalidSignature, match="upper half"):
        decode_transaction(_resign_fields(raw, s=SECP256K1_N - s), CHAIN_ID)
    with pytest.raises(InvalidSignature, match="r is out of range"):
        decode_transaction(_resign_fields(raw, r=0), CHAIN_ID)
    with pytest.raises(InvalidSignature, match="s is out of range"):
        decode_transaction(_resign_fields(raw, s=0), CHAIN_ID)
    with pytest.raises(InvalidSignature, match="y parity"):
        decode_transaction(_resign_fields(raw, y=2), CHAIN_ID)
    with pytest.raises(InvalidSignature, match="r is out of range"):
        decode_transaction(_resign_fields(raw, r=SECP256K1_N), CHAIN_ID)
    # An r that is not the x of any curve point: recovery fails.
    with pytest.raises(InvalidSignature):
        decode_transaction(_resign_fields(raw, r=5), CHAIN_ID)


def test_a_changed_field_recovers_another_sender() -> None:
    raw = _sign(dynamic_fee())
    fields = rlp.decode(raw[1:])
    fields[6] = b"\x01"  # value 0 -> 1: the signature no longer belongs to our key
    try:
        tx = decode_transaction(raw[:1] + rlp.encode(fields), CHAIN_ID)
    except InvalidSignature:
        return
    assert "0x" + tx.sender.hex() != SENDER.lower()


@pytest.mark.parametrize(
    ("raw", "error", "message"),
    [
        (b"", MalformedTransaction, "empty"),
        (b"\x03" + rlp.encode([b"\x01"]), UnsupportedTransactionType, "type 3"),
        (b"\x04\xc0", UnsupportedTransactionType, "type 4"),
        (b"\x7f\xc0", UnsupportedTransactionType, "type 127"),
        (b"\x80", MalformedTransaction, "neither a transaction type nor an RLP list"),
        (b"\x02", MalformedTransaction, "not valid RLP"),
        (b"\x02\x80", MalformedTransaction, "must be an RLP list"),
        (rlp.encode([b"\x01"] * 8), MalformedTransaction, "has 8 fields, want 9"),
        (b"\x02" + rlp.encode([b"\x01"] * 11), MalformedTransaction, "has 11 fields, want 12"),
        (b"\x01" + rlp.encode([b"\x01"] * 12), MalformedTransaction, "has 12 fields, want 11"),
    ],
)
def test_malformed_envelopes_are_refused(raw: bytes, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        decode_transaction(raw, CHAIN_ID)


def test_truncated_and_padded_transactions_are_refused() -> None:
    for raw in (_sign(legacy()), _sign(dynamic_fee())):
        for cut in (1, 10, len(raw) // 2, len(raw) - 1):
            with pytest.raises(MalformedTransaction):
                decode_transaction(raw[:cut], CHAIN_ID)
        with pytest.raises(MalformedTransaction, match="superfluous"):
            decode_transaction(raw + b"\x00", CHAIN_ID)


def test_oversized_transactions_are_refused_before_any_work() -> None:
    raw = _sign(dynamic_fee(data=b"\x01" * MAX_TX_SIZE, gas=3_000_000))
    with pytest.raises(OversizedTransaction, match=f"exceeds the {MAX_TX_SIZE}-byte limit"):
        decode_transaction(raw, CHAIN_ID)


def test_non_canonical_and_out_of_range_fields_are_refused() -> None:
    raw = _sign(dynamic_fee())
    fields = rlp.decode(raw[1:])
    with pytest.raises(MalformedTransaction, match="leading zero"):
        decode_transaction(raw[:1] + rlp.encode([*fields[:1], b"\x00\x03", *fields[2:]]), CHAIN_ID)
    with pytest.raises(MalformedTransaction, match="field to must be empty"):
        decode_transaction(raw[:1] + rlp.encode([*fields[:5], b"\x01" * 19, *fields[6:]]), CHAIN_ID)
    with pytest.raises(MalformedTransaction, match="nonce"):
        decode_transaction(raw[:1] + rlp.encode([fields[0], b"\xff" * 8, *fields[2:]]), CHAIN_ID)
    with pytest.raises(MalformedTransaction, match="accessList"):
        decode_transaction(raw[:1] + rlp.encode([*fields[:8], [[b"\x01" * 19, []]], *fields[9:]]), CHAIN_ID)
    with pytest.raises(MalformedTransaction, match="must be a byte string"):
        decode_transaction(raw[:1] + rlp.encode([*fields[:7], [b"x"], *fields[8:]]), CHAIN_ID)


def test_priority_fee_above_the_fee_cap_is_refused() -> None:
    raw = _sign(dynamic_fee())
    fields = rlp.decode(raw[1:])
    fields[2] = (4_000_000_000).to_bytes(4, "big")  # maxPriorityFeePerGas > maxFeePerGas (3 gwei)
    with pytest.raises(MalformedTransaction, match="higher than maxFeePerGas"):
        decode_transaction(raw[:1] + rlp.encode(fields), CHAIN_ID)


def test_rpc_dict_of_a_mined_dynamic_fee_transaction() -> None:
    signed = EthAccount.sign_transaction(dynamic_fee(), KEY)
    tx = decode_transaction(bytes(signed.raw_transaction), CHAIN_ID)
    block_hash = b"\x42" * 32
    view = to_rpc_dict(tx, block_hash, 9, 2, base_fee=1_000_000_000)
    assert view["hash"] == "0x" + bytes(signed.hash).hex()
    assert view["blockHash"] == "0x" + "42" * 32
    assert (view["blockNumber"], view["transactionIndex"], view["type"], view["chainId"]) == (
        "0x9",
        "0x2",
        "0x2",
        hex(CHAIN_ID),
    )
    assert view["from"] == SENDER.lower()
    assert view["to"] == TO
    assert view["gasPrice"] == hex(2_500_000_000)  # effective price once mined
    assert view["maxFeePerGas"] == hex(3_000_000_000)
    assert view["maxPriorityFeePerGas"] == hex(1_500_000_000)
    assert view["input"] == "0xdeadbeef"
    assert view["yParity"] == view["v"] == hex(signed.v)
    assert view["r"] == hex(signed.r) and view["s"] == hex(signed.s)
    assert view["accessList"] == [{"address": "0x" + "ab" * 20, "storageKeys": ACCESS_LIST[0]["storageKeys"]}]
    pending = to_rpc_dict(tx, None, None, None)
    assert pending["blockHash"] is None and pending["gasPrice"] == hex(3_000_000_000)


def test_rpc_dict_of_legacy_and_creation() -> None:
    tx = decode_transaction(_sign(legacy(to=b"")), CHAIN_ID)
    view = to_rpc_dict(tx, b"\x01" * 32, 1, 0, base_fee=10**9)
    assert view["to"] is None
    assert view["type"] == "0x0"
    assert view["gasPrice"] == hex(2_000_000_000)
    assert "accessList" not in view and "yParity" not in view and "maxFeePerGas" not in view
    assert int(view["v"], 16) in (CHAIN_ID * 2 + 35, CHAIN_ID * 2 + 36)


def test_transactions_are_immutable_records() -> None:
    tx = decode_transaction(_sign(legacy()), CHAIN_ID)
    assert isinstance(tx, Transaction)
    with pytest.raises(AttributeError):
        tx.nonce = 8  # type: ignore[misc]
