"""The chain backends the one conformance suite runs on.

Contract and RPC tests never start a node themselves: they take the `backend` fixture, which is
parametrised over the backends named in JIANZHENG_BACKENDS (default: anvil). A backend that lands
later (our chain_node) only needs a `start_*` function here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from contracts.client import Chain
from contracts.devnode import start_anvil


@dataclass
class Backend:
    """A running chain the tests talk to through JSON-RPC only."""

    name: str
    chain: Chain
    can_set_time: bool

    def advance_to(self, timestamp: int) -> None:
        """Make the chain's latest block carry a timestamp of at least `timestamp`.

        Nodes with a development clock (anvil) jump there; others are waited for.
        """
        if self.chain.now() >= timestamp:
            return
        if self.can_set_time:
            self.chain.w3.provider.make_request("evm_setNextBlockTimestamp", [timestamp])  # type: ignore[arg-type]
            self.chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            return
        while self.chain.now() < timestamp:
            time.sleep(0.2)

    def advance_by(self, seconds: int) -> None:
        self.advance_to(self.chain.now() + seconds)


@contextmanager
def _anvil() -> Iterator[Backend]:
    node = start_anvil()
    try:
        yield Backend("anvil", Chain(node.rpc_url), can_set_time=True)
    finally:
        node.stop()


STARTERS: dict[str, Callable[[], AbstractContextManager[Backend]]] = {"anvil": _anvil}


def selected_backends() -> list[str]:
    names = [n.strip() for n in os.environ.get("JIANZHENG_BACKENDS", "anvil").split(",") if n.strip()]
    unknown = [n for n in names if n not in STARTERS]
    if unknown:
        raise ValueError(f"unknown backends {unknown}; known: {sorted(STARTERS)}")
    return names
