"""Builders for the opening tests: a section's keys from a real DKG, sealed bids on disk, share batches."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from opening import dkg
from opening.envelope import commitment_of, ephemeral_point, parse_envelope, seal_bid
from opening.opener import OpeningResult, SectionPublicData, open_section
from opening.shares import ShareBatch, compute_share

WITNESSES = tuple(f"0x{0xA0 + i:040x}" for i in range(1, 6))
OPENING_TIME = 1_900_000_000


@dataclass(frozen=True)
class KeyedSection:
    """A section whose five witnesses ran the DKG with threshold 3."""

    section_id: bytes
    params: dkg.DkgParams
    deals: tuple[dkg.Deal, ...]
    outcome: dkg.DkgOutcome
    transport_secrets: tuple[int, ...]
    secrets: dict[int, int]

    @property
    def opening_key(self) -> bytes:
        return self.outcome.opening_key.encode()


@dataclass
class SealedBids:
    envelopes: dict[str, Path]
    commitments: dict[str, bytes]


def run_dkg(threshold: int = 3, witnesses: int = 5, cheat: tuple[int, int] | None = None) -> KeyedSection:
    """A DKG among `witnesses`; `cheat` = (dealer, recipient) makes that dealer send a bad share."""
    section_id = os.urandom(32)
    transport = [dkg.new_transport_key() for _ in range(witnesses)]
    params = dkg.DkgParams(section_id, threshold, tuple(public for _, public in transport))
    deals = tuple(
        dkg.deal(params, i, cheat_recipient=cheat[1] if cheat and cheat[0] == i else None)
        for i in range(1, witnesses + 1)
    )
    complaints = [c for j in range(1, witnesses + 1) for c in dkg.receive(params, deals, j, transport[j - 1][0])]
    outcome = dkg.finish(params, deals, complaints)
    secrets = {j: dkg.secret_share(params, deals, outcome, j, transport[j - 1][0]) for j in range(1, witnesses + 1)}
    return KeyedSection(section_id, params, deals, outcome, tuple(s for s, _ in transport), secrets)


def bidder(number: int) -> str:
    return f"0x{0xB0 + number:040x}"


def seal_bids(keyed: KeyedSection, folder: Path, count: int = 4, size: int = 2000) -> SealedBids:
    bids = SealedBids({}, {})
    for number in range(count):
        account = bidder(number)
        announced = {"price_fen": 100_000_00 + number, "duration_days": 90 + number, "quality": "合格"}
        envelope = seal_bid(keyed.section_id, keyed.opening_key, account, announced, os.urandom(size), "投标文件.pdf")
        path = folder / f"{account}.jzb"
        path.write_bytes(envelope)
        bids.envelopes[account] = path
        bids.commitments[account] = commitment_of(envelope)
    return bids


def share_batch(keyed: KeyedSection, index: int, bids: SealedBids) -> ShareBatch:
    shares = []
    for account, commitment in sorted(bids.commitments.items()):
        ephemeral = ephemeral_point(parse_envelope(bids.envelopes[account].read_bytes()))
        shares.append(compute_share(keyed.secrets[index], keyed.section_id, index, commitment, ephemeral))
    return ShareBatch(keyed.section_id, index, tuple(shares))


def public_data(keyed: KeyedSection, bids: SealedBids, batches: Sequence[ShareBatch]) -> SectionPublicData:
    """What the chain would say: commitments and the hashes the witnesses of `batches` anchored."""
    return SectionPublicData(
        section_id=keyed.section_id,
        opening_time=OPENING_TIME,
        opening_key=keyed.opening_key,
        witnesses=WITNESSES,
        commitments=tuple(sorted(bids.commitments.items())),
        anchored_shares=tuple(sorted((b.witness_index, b.digest) for b in batches)),
    )


def open_bids(keyed: KeyedSection, bids: SealedBids, witnesses: Sequence[int] = (1, 2, 3)) -> OpeningResult:
    """Open the bids with the (anchored) share batches of `witnesses`."""
    batches = [share_batch(keyed, i, bids) for i in witnesses]
    return open_section(public_data(keyed, bids, batches), batches, bids.envelopes, 1)
