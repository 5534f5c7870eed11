"""The per-transaction shortcuts of a validator give exactly what the plain way gives.

Two validators are built in-process from a laid-out network (nothing listens): one proposes a block
from its pool, the other validates it with an empty pool, as when a proposal overtakes the gossip.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account as EthAccount
from eth_utils import keccak

import chain_node.node as node_module
from chain_node.api import receipt_record
from chain_node.blocks import Log, Receipt
from chain_node.config import load_node_config
from chain_node.consensus.crypto import commit_seal_digest, sign
from chain_node.execution import NonceTooLow, _storage_writes
from chain_node.network import key_address, lay_out
from chain_node.node import Validator
from chain_node.transactions import Transaction, decode_transaction

SENDER_KEY = keccak(text="jianzheng hot paths sender")


def _network(tmp_path: Path) -> tuple[list[Validator], list[bytes]]:
    """Two in-process validators of a 4-validator network, and the keys of all four (to seal blocks)."""
    sender = bytes.fromhex(EthAccount.from_key(SENDER_KEY).address[2:])
    configs = [load_node_config(layout.config_path) for layout in lay_out(tmp_path, 4, extra_accounts=[sender])]
    return [Validator(config) for config in configs[:2]], [config.private_key for config in configs]


def _transfers(chain_id: int, count: int) -> list[bytes]:
    signed = []
    for nonce in range(count):
        tx = {
            "chainId": chain_id,
            "nonce": nonce,
            "to": "0x" + "42" * 20,
            "value": 1 + nonce,
            "gas": 21_000,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 10**9,
            "type": 2,
        }
        signed.append(bytes(EthAccount.sign_transaction(tx, SENDER_KEY).raw_transaction))
    return signed


def test_a_validator_recovers_each_sender_once_whether_proposal_gossip_or_sync_brings_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (proposer, other), keys = _network(tmp_path)
    try:
        raws = _transfers(proposer.chain_id, 3)
        for raw in raws:
            proposer.submit_raw_transaction(raw, gossip=False)
        block = proposer.build_block(1)
        assert len(block.transactions) == 3
        assert other._validate(1, block.encode()) == block.header.hash()

        decoded: list[bytes] = []

        def counting_decode(raw: bytes, chain_id: int) -> Transaction:
            decoded.append(raw)
            return decode_transaction(raw, chain_id)

        monkeypatch.setattr(node_module, "decode_transaction", counting_decode)
        # Gossip that arrives while the proposal is executed tentatively: refused as before (its nonce
        # is used), but without recovering its sender a second time.
        with pytest.raises(NonceTooLow):
            other.submit_raw_transaction(raws[0], gossip=False)
        # Once the tentative block is dropped, the gossip is pooled: the same transaction, not decoded again.
        other.settle()
        pooled = other.submit_raw_transaction(raws[1], gossip=False)
        assert decoded == []
        assert pooled == decode_transaction(raws[1], other.chain_id)
        assert other.pool.get(pooled.hash) is pooled

        # Once the block is final its transactions are forgotten, and gossip is decoded as before.
        digest = block.header.hash()
        seals = tuple((key_address(key), sign(key, commit_seal_digest(digest))) for key in keys[:3])
        other.commit(block, seals)
        assert other.head.number == 1
        assert not other._proposed_txs
        late = _transfers(proposer.chain_id, 4)[3]
        other.submit_raw_transaction(late, gossip=False)
        assert decoded == [late]

        # Catching up by sync reuses the pooled transactions, and passes over a block sent twice.
        synced = other.serve_sync(1)
        assert proposer.apply_synced(synced) is not None
        assert proposer.apply_synced(synced) is None
        assert proposer.head.hash() == other.head.hash()
        assert decoded == [late]
    finally:
        proposer.store.close()
        other.store.close()


@pytest.mark.parametrize(
    "receipt",
    [
        Receipt(
            status=1,
            cumulative_gas_used=150_000,
            logs=(Log(address=b"\x11" * 20, topics=(b"\x22" * 32, b"\x33" * 32), data=b"\x01\x02"),),
            tx_type=2,
            gas_used=105_863,
            contract_address=None,
            effective_gas_price=2_000_000_000,
            tx_hash=b"\x44" * 32,
            sender=b"\x55" * 20,
            to=b"\x66" * 20,
        ),
        Receipt(
            status=0,
            cumulative_gas_used=53_000,
            logs=(),
            tx_type=0,
            gas_used=53_000,
            contract_address=b"\x77" * 20,
            effective_gas_price=1,
            tx_hash=b"\x88" * 32,
            sender=b"\x99" * 20,
            to=None,
            revert_data=b"\xde\xad",
        ),
    ],
)
def test_receipt_records_are_the_json_they_always_were(receipt: Receipt) -> None:
    """Stored records must stay readable by nodes of any version: same bytes as `json.dumps` wrote."""
    expected = json.dumps(
        {
            "encoded": receipt.encode().hex(),
            "txHash": receipt.tx_hash.hex(),
            "from": receipt.sender.hex(),
            "to": receipt.to.hex() if receipt.to is not None else None,
            "firstLogIndex": 7,
            "gasUsed": receipt.gas_used,
            "effectiveGasPrice": receipt.effective_gas_price,
            "contractAddress": receipt.contract_address.hex() if receipt.contract_address else None,
        },
        separators=(",", ":"),
    ).encode()
    assert receipt_record(receipt, 7) == expected


def test_storage_writes_are_read_from_the_journal_text_and_loads_are_not() -> None:
    """The shape of pyrevm 0.3.7's journal text (revm 8 `JournalEntry` debug output)."""
    a, b = "ab" * 20, "cd" * 20
    journal = (
        ", journal: [[AccountLoaded { address: 0x" + a + " }], ["
        f"StorageChange {{ address: 0x{a}, key: 7, had_value: None }}, "
        f"StorageChange {{ address: 0x{a}, key: 7, had_value: Some(0) }}, "
        f"TransientStorageChange {{ address: 0x{b}, key: 1, had_value: 0 }}, "
        f"StorageChange {{ address: 0x{b}, key: {2**255}, had_value: Some(5) }}, "
        f"StorageChange {{ address: 0x{a}, key: 7, had_value: Some(3) }}]]"
    )
    assert _storage_writes(journal) == [(a, 7), (b, 2**255), (a, 7)]
    assert _storage_writes(", journal: [[]]") == []
