"""Durable storage of final blocks, their commit seals and receipts, in one SQLite file per node.

A block, its seals, receipts and transaction index are written in one SQLite transaction, so a node
killed at any moment (kill -9 included) has either the whole block or none of it; on restart it
replays the stored blocks into a fresh EVM state and resumes. Consensus state that must survive a
restart (the locked value of the current height) is kept here too.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (
    number INTEGER PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    payload BLOB NOT NULL,
    seals BLOB NOT NULL
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

    def put_block(
        self,
        number: int,
        block_hash: bytes,
        payload: bytes,
        seals: bytes,
        receipts: list[bytes],
        tx_hashes: list[bytes],
    ) -> None:
        with self._lock:
            cursor = self._db.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                cursor.execute(
                    "INSERT INTO blocks (number, hash, payload, seals) VALUES (?, ?, ?, ?)",
                    (number, block_hash, payload, seals),
                )
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

    def blocks_from(self, number: int, limit: int) -> list[StoredBlock]:
        rows = self._db.execute(
            "SELECT number, hash, payload, seals FROM blocks WHERE number >= ? ORDER BY number LIMIT ?", (number, limit)
        ).fetchall()
        return [StoredBlock(*row) for row in rows]

    def receipts(self, number: int) -> list[bytes]:
        rows = self._db.execute("SELECT record FROM receipts WHERE number = ? ORDER BY tx_index", (number,)).fetchall()
        return [bytes(row[0]) for row in rows]

    def tx_location(self, tx_hash: bytes) -> tuple[int, int] | None:
        row = self._db.execute("SELECT number, tx_index FROM tx_locations WHERE tx_hash = ?", (tx_hash,)).fetchone()
        return (int(row[0]), int(row[1])) if row else None

    def get_meta(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return bytes(row[0]) if row else None

    def put_meta(self, key: str, value: bytes) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
