"""Durable storage of final blocks, their commit seals and receipts, in one SQLite file per node.

A block, its seals, receipts, transaction index and the state changes it made are written in one
SQLite transaction, so a node killed at any moment (kill -9 included) has either the whole block or
none of it. The state is kept as its history: one row per account or slot and block that changed it
(genesis at block 0). On restart the node loads the latest row of each key instead of re-executing
every block, so restart time follows the size of the state, not the length of the chain; and any
block's balance, nonce, code or storage can be read back (`account_at`, `slot_at`). Consensus state
that must survive a restart (the locked value of the current height) is kept here too.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from chain_node.execution import Account, StateChanges
from chain_node.trie import keccak

_EMPTY_CODE_HASH = keccak(b"")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (
    number INTEGER PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    header BLOB NOT NULL,
    payload BLOB NOT NULL,
    seals BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS account_history (
    address BLOB NOT NULL,
    number INTEGER NOT NULL,
    nonce INTEGER NOT NULL,
    balance BLOB NOT NULL,
    code_hash BLOB NOT NULL,
    PRIMARY KEY (address, number)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS slot_history (
    address BLOB NOT NULL,
    slot BLOB NOT NULL,
    number INTEGER NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (address, slot, number)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS codes (
    code_hash BLOB PRIMARY KEY,
    code BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS receipts (
    number INTEGER NOT NULL,
    tx_index INTEGER NOT NULL,
    record BLOB NOT NULL,
    PRIMARY KEY (number, tx_index)
);
CREATE TABLE IF NOT EXISTS tx_locations (
    tx_hash BLOB PRIMARY KEY,
    number INTEGER NOT NULL,
    tx_index INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
"""


class StorageError(Exception):
    """The data folder is unusable or holds another chain."""


@dataclass(frozen=True)
class StoredBlock:
    number: int
    hash: bytes
    payload: bytes
    seals: bytes


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def head(self) -> int | None:
        row = self._db.execute("SELECT MAX(number) FROM blocks").fetchone()
        return None if row[0] is None else int(row[0])

    def has_state(self) -> bool:
        """Whether the genesis state was written (a data folder of this format)."""
        return self._db.execute("SELECT 1 FROM account_history WHERE number = 0 LIMIT 1").fetchone() is not None

    def put_genesis_state(self, changes: StateChanges) -> None:
        with self._lock:
            cursor = self._db.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                _write_changes(cursor, 0, changes)
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise

    def put_block(
        self,
        number: int,
        block_hash: bytes,
        header: bytes,
        payload: bytes,
        seals: bytes,
        receipts: list[bytes],
        tx_hashes: list[bytes],
        changes: StateChanges,
    ) -> None:
        with self._lock:
            cursor = self._db.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                cursor.execute(
                    "INSERT INTO blocks (number, hash, header, payload, seals) VALUES (?, ?, ?, ?, ?)",
                    (number, block_hash, header, payload, seals),
                )
                _write_changes(cursor, number, changes)
                cursor.executemany(
                    "INSERT INTO receipts (number, tx_index, record) VALUES (?, ?, ?)",
                    [(number, index, record) for index, record in enumerate(receipts)],
                )
                cursor.executemany(
                    "INSERT OR REPLACE INTO tx_locations (tx_hash, number, tx_index) VALUES (?, ?, ?)",
                    [(tx_hash, number, index) for index, tx_hash in enumerate(tx_hashes)],
                )
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise

    def block_by_number(self, number: int) -> StoredBlock | None:
        row = self._db.execute("SELECT number, hash, payload, seals FROM blocks WHERE number = ?", (number,)).fetchone()
        return StoredBlock(*row) if row else None

    def block_by_hash(self, block_hash: bytes) -> StoredBlock | None:
        row = self._db.execute(
            "SELECT number, hash, payload, seals FROM blocks WHERE hash = ?", (block_hash,)
        ).fetchone()
        return StoredBlock(*row) if row else None

    def headers_from(self, number: int) -> Iterator[tuple[int, bytes]]:
        """Encoded headers from `number` on, in order (restart reads these, not whole blocks)."""
        cursor = self._db.execute("SELECT number, header FROM blocks WHERE number >= ? ORDER BY number", (number,))
        for row in cursor:
            yield int(row[0]), bytes(row[1])

    def header_of(self, number: int) -> bytes | None:
        row = self._db.execute("SELECT header FROM blocks WHERE number = ?", (number,)).fetchone()
        return bytes(row[0]) if row else None

    def number_of(self, block_hash: bytes) -> int | None:
        row = self._db.execute("SELECT number FROM blocks WHERE hash = ?", (block_hash,)).fetchone()
        return int(row[0]) if row else None

    # ------------------------------------------------------------------ state history

    def load_state(self) -> tuple[dict[bytes, Account], dict[bytes, dict[int, int]]]:
        """The state after the last stored block: the latest row of every account and slot."""
        codes = {bytes(h): bytes(c) for h, c in self._db.execute("SELECT code_hash, code FROM codes")}
        accounts: dict[bytes, Account] = {}
        # SQLite returns the other columns of the row that holds MAX(number) (its documented bare-column rule).
        for address, nonce, balance, code_hash, _ in self._db.execute(
            "SELECT address, nonce, balance, code_hash, MAX(number) FROM account_history GROUP BY address"
        ):
            account = _account(nonce, balance, code_hash, codes)
            if not account.is_empty():
                accounts[bytes(address)] = account
        storage: dict[bytes, dict[int, int]] = {}
        for address, slot, value, _ in self._db.execute(
            "SELECT address, slot, value, MAX(number) FROM slot_history GROUP BY address, slot"
        ):
            number = int.from_bytes(value, "big")
            if number:
                storage.setdefault(bytes(address), {})[int.from_bytes(slot, "big")] = number
        return accounts, storage

    def account_at(self, address: bytes, number: int) -> Account:
        """The account as it was after block `number` (the empty account if it did not exist)."""
        row = self._db.execute(
            "SELECT nonce, balance, code_hash FROM account_history WHERE address = ? AND number <= ? "
            "ORDER BY number DESC LIMIT 1",
            (address, number),
        ).fetchone()
        if row is None:
            return Account()
        code_hash = bytes(row[2])
        codes: dict[bytes, bytes] = {}
        if code_hash != _EMPTY_CODE_HASH:
            found = self._db.execute("SELECT code FROM codes WHERE code_hash = ?", (code_hash,)).fetchone()
            codes[code_hash] = bytes(found[0]) if found else b""
        return _account(row[0], row[1], code_hash, codes)

    def slot_at(self, address: bytes, slot: int, number: int) -> int:
        """A storage slot's value after block `number`."""
        row = self._db.execute(
            "SELECT value FROM slot_history WHERE address = ? AND slot = ? AND number <= ? "
            "ORDER BY number DESC LIMIT 1",
            (address, slot.to_bytes(32, "big"), number),
        ).fetchone()
        return int.from_bytes(row[0], "big") if row else 0

    def blocks_from(self, number: int, limit: int) -> list[StoredBlock]:
        rows = self._db.execute(
            "SELECT number, hash, payload, seals FROM blocks WHERE number >= ? ORDER BY number LIMIT ?", (number, limit)
        ).fetchall()
        return [StoredBlock(*row) for row in rows]

    def receipts(self, number: int) -> list[bytes]:
        rows = self._db.execute("SELECT record FROM receipts WHERE number = ? ORDER BY tx_index", (number,)).fetchall()
        return [bytes(row[0]) for row in rows]

    def receipt(self, number: int, tx_index: int) -> bytes | None:
        row = self._db.execute(
            "SELECT record FROM receipts WHERE number = ? AND tx_index = ?", (number, tx_index)
        ).fetchone()
        return bytes(row[0]) if row else None

    def tx_location(self, tx_hash: bytes) -> tuple[int, int] | None:
        row = self._db.execute("SELECT number, tx_index FROM tx_locations WHERE tx_hash = ?", (tx_hash,)).fetchone()
        return (int(row[0]), int(row[1])) if row else None

    def get_meta(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return bytes(row[0]) if row else None

    def put_meta(self, key: str, value: bytes) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


def _account(nonce: int, balance: bytes, code_hash: bytes, codes: dict[bytes, bytes]) -> Account:
    code_hash = bytes(code_hash)
    return Account(
        balance=int.from_bytes(balance, "big"),
        nonce=int(nonce),
        code=codes.get(code_hash, b"") if code_hash != _EMPTY_CODE_HASH else b"",
        code_hash=code_hash,
    )


def _write_changes(cursor: sqlite3.Cursor, number: int, changes: StateChanges) -> None:
    cursor.executemany(
        "INSERT OR REPLACE INTO account_history (address, number, nonce, balance, code_hash) VALUES (?, ?, ?, ?, ?)",
        [
            (address, number, account.nonce, account.balance.to_bytes(32, "big"), account.code_hash)
            for address, account in changes.accounts.items()
        ],
    )
    cursor.executemany(
        "INSERT OR IGNORE INTO codes (code_hash, code) VALUES (?, ?)",
        [(a.code_hash, a.code) for a in changes.accounts.values() if a.code_hash != _EMPTY_CODE_HASH],
    )
    cursor.executemany(
        "INSERT OR REPLACE INTO slot_history (address, slot, number, value) VALUES (?, ?, ?, ?)",
        [
            (address, slot.to_bytes(32, "big"), number, value.to_bytes(32, "big"))
            for (address, slot), value in changes.slots.items()
        ],
    )
