"""The chain backends the one conformance suite runs on.

Contract and RPC tests never start a node themselves: they take the `backend` fixture, which is
parametrised over the backends named in JIANZHENG_BACKENDS (default: anvil and chain_node). Each
backend is a real node (or network of nodes) reached through JSON-RPC only.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from contracts.client import Chain
from contracts.devnode import mine_at, start_anvil

# Accounts the tests use that are not consortium members (an outsider, a stand-in contract caller):
# a permissioned chain must permit them in its genesis, as a real network would for its tooling.
TEST_ACCOUNT_KEYS = ("11" * 32, "22" * 32)


@dataclass
class Backend:
    """A running chain the tests talk to through JSON-RPC only."""

    name: str
    chain: Chain
    set_next_timestamp: Callable[[int], None]
    rpc_urls: list[str] = field(default_factory=list)
    # Whether `advance_to` lands on exactly the timestamp asked for (a dev node that mines on demand),
    # or on some later second (a network producing blocks on its own clock).
    exact_time: bool = True

    def advance_to(self, timestamp: int) -> None:
        """Make the chain's latest block carry a timestamp of at least `timestamp`."""
        if self.chain.now() >= timestamp:
            return
        self.set_next_timestamp(timestamp)
        deadline = time.monotonic() + 30
        while self.chain.now() < timestamp:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: no block reached timestamp {timestamp}")
            time.sleep(0.05)

    def advance_by(self, seconds: int) -> None:
        self.advance_to(self.chain.now() + seconds)


@contextmanager
def _anvil() -> Iterator[Backend]:
    node = start_anvil()
    chain = Chain(node.rpc_url)

    try:
        yield Backend("anvil", chain, lambda timestamp: mine_at(chain, timestamp), [node.rpc_url], exact_time=True)
    finally:
        node.stop()


@contextmanager
def _chain_node() -> Iterator[Backend]:
    from chain_node.network import (
        PROJECT_ROOT,
        key_address,
        lay_out,
        rpc_call,
        start_validator,
        stop_validators,
        wait_for_blocks,
    )

    # Kept under build/ (not a temporary folder) so that the validators' logs survive a failed run.
    folder = Path(tempfile.mkdtemp(prefix="chain-", dir=PROJECT_ROOT / "build"))
    layouts = lay_out(folder, 4, extra_accounts=[key_address(bytes.fromhex(k)) for k in TEST_ACCOUNT_KEYS])
    running = [start_validator(layout, folder / "logs") for layout in layouts]
    try:
        wait_for_blocks(layouts[0].rpc_url, 1, timeout=60)
        chain = Chain(layouts[0].rpc_url)
        urls = [layout.rpc_url for layout in layouts]

        def set_next_timestamp(timestamp: int) -> None:
            # Every validator's development clock moves forward together; blocks follow.
            gap = timestamp - chain.now()
            for url in urls:
                rpc_call(url, "jz_devIncreaseTime", [hex(max(gap, 0))])

        yield Backend("chain_node", chain, set_next_timestamp, urls, exact_time=False)
    finally:
        stop_validators(running)
    shutil.rmtree(folder, ignore_errors=True)


STARTERS: dict[str, Callable[[], AbstractContextManager[Backend]]] = {"anvil": _anvil, "chain_node": _chain_node}


def selected_backends() -> list[str]:
    names = [n.strip() for n in os.environ.get("JIANZHENG_BACKENDS", "anvil,chain_node").split(",") if n.strip()]
    unknown = [n for n in names if n not in STARTERS]
    if unknown:
        raise ValueError(f"unknown backends {unknown}; known: {sorted(STARTERS)}")
    return names
