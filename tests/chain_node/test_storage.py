"""The node's store: blocks with their state changes in one transaction, state history read back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from chain_node.execution import Account, StateChanges
from chain_node.storage import Store
from chain_node.trie import keccak

ALICE, BOB, TOKEN = b"\xa1" * 20, b"\xb0" * 20, b"\x70" * 20
CODE = bytes.fromhex("6000")


def _put(store: Store, number: int, changes: StateChanges) -> None:
    store.put_block(number, keccak(number.to_bytes(8, "big")), b"header", b"payload", b"seals", [], [], changes)


def test_state_history_loads_the_latest_and_answers_any_block(tmp_path: Path) -> None:
    store = Store(tmp_path / "chain.sqlite")
    store.put_genesis_state(StateChanges({ALICE: Account(balance=100)}, {}))
    token = Account(nonce=1, code=CODE, code_hash=keccak(CODE))
    _put(
        store,
        1,
        StateChanges({ALICE: Account(balance=60, nonce=1), BOB: Account(balance=40), TOKEN: token}, {(TOKEN, 7): 5}),
    )
    _put(store, 2, StateChanges({BOB: Account(), TOKEN: token}, {(TOKEN, 7): 0, (TOKEN, 8): 3}))

    accounts, storage = store.load_state()
    assert accounts == {ALICE: Account(balance=60, nonce=1), TOKEN: token}  # Bob emptied: absent
    assert storage == {TOKEN: {8: 3}}  # the cleared slot is gone

    assert store.account_at(ALICE, 0) == Account(balance=100)
    assert store.account_at(BOB, 1) == Account(balance=40)
    assert store.account_at(BOB, 2) == Account()
    assert store.account_at(TOKEN, 0) == Account() and store.account_at(TOKEN, 2).code == CODE
    assert [store.slot_at(TOKEN, 7, n) for n in (0, 1, 2)] == [0, 5, 0]
    assert store.has_state() and store.head() == 2
    store.close()


def test_a_block_and_its_state_changes_land_together_or_not_at_all(tmp_path: Path) -> None:
    store = Store(tmp_path / "chain.sqlite")
    store.put_genesis_state(StateChanges({ALICE: Account(balance=100)}, {}))
    _put(store, 1, StateChanges({ALICE: Account(balance=90)}, {}))
    with pytest.raises(sqlite3.IntegrityError):  # the same number again: refused, nothing of it kept
        _put(store, 1, StateChanges({ALICE: Account(balance=1)}, {}))
    assert store.account_at(ALICE, 1).balance == 90
    assert store.load_state()[0][ALICE].balance == 90
    store.close()
