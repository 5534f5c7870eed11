"""Validator set changes by vote of the current validators, on a real network of processes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from chain_node.network import head_number, lay_out, rpc_call, start_validator, wait_for_blocks
from chain_node.votes import InvalidVote, Vote, decode_vote, encode_vote

pytestmark = pytest.mark.timeout(300)


def test_votes_round_trip_and_refuse_garbage() -> None:
    vote = Vote(b"\x12" * 20, True)
    assert decode_vote(encode_vote(vote)) == vote
    assert decode_vote(b"") is None
    with pytest.raises(InvalidVote):
        decode_vote(b"\xc0")


def test_a_follower_voted_in_then_needed_for_finality(tmp_path: Path) -> None:
    layouts = lay_out(tmp_path, 5, genesis_validators=4, block_period_ms=200)
    running = [start_validator(layout, tmp_path / "logs") for layout in layouts]
    newcomer = "0x" + layouts[4].address.hex()
    try:
        wait_for_blocks(layouts[0].rpc_url, 2, timeout=60)
        assert newcomer not in rpc_call(layouts[0].rpc_url, "jz_validators", ["latest"])
        # A follower syncs the chain before it takes part.
        wait_for_blocks(layouts[4].rpc_url, head_number(layouts[0].rpc_url), timeout=60)
        refused = None
        try:
            rpc_call(layouts[4].rpc_url, "jz_voteValidator", [newcomer, True])
        except RuntimeError as error:
            refused = str(error)
        assert refused is not None and "not a validator" in refused

        for layout in layouts[:3]:  # a quorum of the 4 current validators
            rpc_call(layout.rpc_url, "jz_voteValidator", [newcomer, True])
        deadline = time.monotonic() + 60
        while newcomer not in rpc_call(layouts[0].rpc_url, "jz_validators", ["latest"]):
            assert time.monotonic() < deadline, "the vote did not take effect"
            time.sleep(0.2)
        assert len(rpc_call(layouts[2].rpc_url, "jz_validators", ["latest"])) == 5

        # With one original validator down, 4 of 5 (the quorum) includes the newcomer: it must be signing.
        running[0].stop(kill=True)
        now = head_number(layouts[1].rpc_url)
        wait_for_blocks(layouts[1].rpc_url, now + 3, timeout=90)
    finally:
        for validator in running:
            validator.stop(kill=True)


def test_a_validator_voted_out_is_no_longer_needed_for_finality(tmp_path: Path) -> None:
    layouts = lay_out(tmp_path, 4, block_period_ms=200)
    running = [start_validator(layout, tmp_path / "logs") for layout in layouts]
    leaving = "0x" + layouts[3].address.hex()
    try:
        wait_for_blocks(layouts[0].rpc_url, 2, timeout=60)
        for layout in layouts[:3]:  # a quorum of the 4 validators votes the fourth out
            rpc_call(layout.rpc_url, "jz_voteValidator", [leaving, False])
        deadline = time.monotonic() + 60
        while leaving in rpc_call(layouts[0].rpc_url, "jz_validators", ["latest"]):
            assert time.monotonic() < deadline, "the vote did not take effect"
            time.sleep(0.2)
        assert len(rpc_call(layouts[1].rpc_url, "jz_validators", ["latest"])) == 3

        # Two of the remaining three are a quorum: with the one voted out and one more down, blocks
        # still finalize (with the old set of four, two down would stall the chain).
        running[3].stop(kill=True)
        running[0].stop(kill=True)
        now = head_number(layouts[1].rpc_url)
        wait_for_blocks(layouts[1].rpc_url, now + 3, timeout=90)
        assert head_number(layouts[2].rpc_url) >= now + 2
    finally:
        for validator in running:
            validator.stop(kill=True)
