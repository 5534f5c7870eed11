"""The transaction pool: checked transactions waiting for a block, in nonce order per sender.

Bounded in total and per sender, so a flood of transactions with nonce gaps or from one account
cannot exhaust a validator's memory; a transaction replaced by one with the same nonce and a higher
fee takes its place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chain_node.transactions import Transaction


class PoolFull(Exception):
    """The pool (or this sender's share of it) is full."""


class AlreadyKnown(Exception):
    """This exact transaction is in the pool already."""


class ReplacementUnderpriced(Exception):
    """A transaction with this nonce is pending and the new one does not pay more."""


@dataclass
class _SenderQueue:
    by_nonce: dict[int, Transaction] = field(default_factory=dict)


class TxPool:
    def __init__(self, max_total: int = 200_000, max_per_sender: int = 20_000) -> None:
        self.max_total = max_total
        self.max_per_sender = max_per_sender
        self._senders: dict[bytes, _SenderQueue] = {}
        self._by_hash: dict[bytes, Transaction] = {}

    def __len__(self) -> int:
        return len(self._by_hash)

    def get(self, tx_hash: bytes) -> Transaction | None:
        return self._by_hash.get(tx_hash)

    def add(self, tx: Transaction) -> None:
        if tx.hash in self._by_hash:
            raise AlreadyKnown(f"transaction {tx.hash.hex()} is already pending")
        queue = self._senders.setdefault(tx.sender, _SenderQueue())
        existing = queue.by_nonce.get(tx.nonce)
        if existing is not None:
            if _fee_cap(tx) <= _fee_cap(existing):
                raise ReplacementUnderpriced(f"nonce {tx.nonce} is pending; a replacement must pay more")
            del self._by_hash[existing.hash]
        elif len(self._by_hash) >= self.max_total:
            raise PoolFull(f"transaction pool is full ({self.max_total})")
        elif len(queue.by_nonce) >= self.max_per_sender:
            raise PoolFull(f"sender has {self.max_per_sender} pending transactions")
        queue.by_nonce[tx.nonce] = tx
        self._by_hash[tx.hash] = tx

    def pending_nonce(self, sender: bytes, state_nonce: int) -> int:
        """The next nonce after the sender's contiguous run of pooled transactions."""
        queue = self._senders.get(sender)
        nonce = state_nonce
        if queue is None:
            return nonce
        while nonce in queue.by_nonce:
            nonce += 1
        return nonce

    def select(
        self, gas_limit: int, state_nonce: dict[bytes, int] | None = None, max_count: int = 10_000
    ) -> list[Transaction]:
        """Executable transactions for a block: per sender in nonce order, senders round-robin."""
        nonces = state_nonce or {}
        chosen: list[Transaction] = []
        gas = 0
        cursors = {sender: nonces.get(sender, min(q.by_nonce)) for sender, q in self._senders.items() if q.by_nonce}
        progress = True
        while progress and len(chosen) < max_count:
            progress = False
            for sender, nonce in list(cursors.items()):
                tx = self._senders[sender].by_nonce.get(nonce)
                if tx is None:
                    del cursors[sender]
                    continue
                if gas + tx.gas_limit > gas_limit:
                    del cursors[sender]
                    continue
                chosen.append(tx)
                gas += tx.gas_limit
                cursors[sender] = nonce + 1
                progress = True
                if len(chosen) >= max_count:
                    break
        return chosen

    def remove_below(self, sender: bytes, nonce: int) -> None:
        """Forget the sender's transactions with nonces below `nonce` (included or made stale)."""
        queue = self._senders.get(sender)
        if queue is None:
            return
        for stale in [n for n in queue.by_nonce if n < nonce]:
            tx = queue.by_nonce.pop(stale)
            self._by_hash.pop(tx.hash, None)
        if not queue.by_nonce:
            del self._senders[sender]

    def senders(self) -> list[bytes]:
        return list(self._senders)


def _fee_cap(tx: Transaction) -> int:
    return tx.max_fee_per_gas if tx.tx_type == 2 else tx.gas_price
