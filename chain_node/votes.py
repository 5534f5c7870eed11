"""Validator set changes by vote of the current validators, carried in block headers.

A validator's operator asks its node (`jz_voteValidator`) to add or remove an account; the node puts
that vote in the `extra` field of the blocks it proposes. Once a quorum (⌈2n/3⌉) of the current
validators has voted for the same change, it takes effect at the next block boundary, and all
pending votes start over. Everything follows from the headers of final blocks, so every node (and a
node syncing from scratch) derives the same validator set for every height.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import rlp

from chain_node.blocks import Header
from chain_node.consensus import ValidatorSet


class InvalidVote(Exception):
    """A header's vote is malformed, from a non-validator, or a change that changes nothing."""


@dataclass(frozen=True)
class Vote:
    account: bytes
    add: bool


def encode_vote(vote: Vote) -> bytes:
    return bytes(rlp.encode([b"jz-vote", vote.account, b"\x01" if vote.add else b""]))


def decode_vote(extra: bytes) -> Vote | None:
    """The vote in a header's extra field, None when it carries none."""
    if not extra:
        return None
    try:
        tag, account, add = rlp.decode(extra)
    except (rlp.DecodingError, ValueError) as error:
        raise InvalidVote(f"extra is not a vote: {error}") from error
    if tag != b"jz-vote" or not isinstance(account, bytes) or len(account) != 20 or add not in (b"", b"\x01"):
        raise InvalidVote("extra is not a well-formed vote")
    return Vote(account, add == b"\x01")


def check_vote(vote: Vote, validators: ValidatorSet) -> None:
    if vote.add and validators.contains(vote.account):
        raise InvalidVote(f"0x{vote.account.hex()} is a validator already")
    if not vote.add and not validators.contains(vote.account):
        raise InvalidVote(f"0x{vote.account.hex()} is not a validator")
    if not vote.add and len(validators) == 1:
        raise InvalidVote("the last validator cannot be removed")


@dataclass
class Tally:
    """Votes counted since the last change, by the proposers of final blocks."""

    votes: dict[Vote, set[bytes]] = field(default_factory=dict)

    def count(self, header: Header, validators: ValidatorSet) -> ValidatorSet | None:
        """Count the header's vote; return the new set when a change reaches its quorum."""
        vote = decode_vote(header.extra)
        if vote is None:
            return None
        check_vote(vote, validators)
        if not validators.contains(header.proposer):
            raise InvalidVote("the proposer is not a validator")
        voters = self.votes.setdefault(vote, set())
        voters.add(header.proposer)
        if len(voters) < validators.quorum:
            return None
        self.votes.clear()
        if vote.add:
            return ValidatorSet.of((*validators.addresses, vote.account))
        return ValidatorSet.of(a for a in validators.addresses if a != vote.account)
