"""Validators crash and come back: real processes, killed with SIGKILL, restarted, wiped.

The longer scenarios (two of four down, partitions, load while faulty) live in scripts/chaos_chain.py;
these are the ones every change must keep passing.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chain_node.network import (
    NodeLayout,
    RunningValidator,
    block_hash_at,
    head_number,
    lay_out,
    start_validator,
    wait_for_blocks,
)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def network(tmp_path: Path) -> Iterator[tuple[list[NodeLayout], list[RunningValidator], Path]]:
    layouts = lay_out(tmp_path, 4, block_period_ms=200)
    running = [start_validator(layout, tmp_path / "logs") for layout in layouts]
    try:
        wait_for_blocks(layouts[0].rpc_url, 2, timeout=60)
        yield layouts, running, tmp_path
    finally:
        for validator in running:
            validator.stop(kill=True)


def test_one_of_four_killed_keeps_finalizing_then_rejoins_from_an_empty_folder(
    network: tuple[list[NodeLayout], list[RunningValidator], Path],
) -> None:
    layouts, running, folder = network
    running[3].stop(kill=True)
    before = head_number(layouts[0].rpc_url)
    wait_for_blocks(layouts[0].rpc_url, before + 5, timeout=60)  # 3 of 4 is a quorum

    shutil.rmtree(folder / "data-3")
    running[3] = start_validator(layouts[3], folder / "logs")
    target = head_number(layouts[0].rpc_url)
    wait_for_blocks(layouts[3].rpc_url, target, timeout=60)  # synced from its peers
    assert block_hash_at(layouts[3].rpc_url, target) == block_hash_at(layouts[0].rpc_url, target)

    # It takes part again: with validator 0 down, blocks need validator 3's votes.
    running[0].stop(kill=True)
    resumed = head_number(layouts[1].rpc_url)
    wait_for_blocks(layouts[1].rpc_url, resumed + 3, timeout=90)


def test_two_of_four_down_halts_without_forking_and_one_back_resumes(
    network: tuple[list[NodeLayout], list[RunningValidator], Path],
) -> None:
    layouts, running, folder = network
    running[2].stop(kill=True)
    running[3].stop(kill=True)
    time.sleep(1.0)
    stalled = head_number(layouts[0].rpc_url)
    time.sleep(4.0)
    assert head_number(layouts[0].rpc_url) <= stalled + 1  # at most a block already under way
    halted_at = head_number(layouts[0].rpc_url)
    assert block_hash_at(layouts[0].rpc_url, halted_at) == block_hash_at(layouts[1].rpc_url, halted_at)

    running[3] = start_validator(layouts[3], folder / "logs")  # restarted with its data: kill -9 lost nothing
    started = time.monotonic()
    wait_for_blocks(layouts[0].rpc_url, halted_at + 3, timeout=60)
    assert time.monotonic() - started < 30
    for number in range(1, halted_at + 1):
        assert block_hash_at(layouts[3].rpc_url, number) == block_hash_at(layouts[0].rpc_url, number)
