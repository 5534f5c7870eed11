"""Decryption shares: witness i's s_i·E for each bid, with a DLEQ proof against its public share Y_i.

A witness publishes one batch per section (its shares for every live bid) and anchors the batch's
hash with `publishDecryptionShares`. The hash is over the canonical form (shares sorted by bid
commitment), so the order in which shares travel, or a replay of the same batch, changes nothing.
Any k valid shares of a bid combine by Lagrange interpolation in the exponent into d·E, the ECDH
point of the bid's ephemeral key with the section's (never assembled) private key d.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from opening.ec import InvalidPoint, Point, lagrange_at_zero
from opening.envelope import canonical_json
from opening.proofs import prove_dleq, verify_dleq

SHARES_FORMAT = "jianzheng/decryption-shares/v1"


class InvalidShareBatch(ValueError):
    """A share batch file that is not in the published format."""


@dataclass(frozen=True)
class DecryptionShare:
    commitment: bytes  # the bid's commitment (SHA-256 of its envelope)
    share: bytes  # s_i·E, compressed
    proof: bytes  # DLEQ c ‖ z


@dataclass(frozen=True)
class ShareBatch:
    """One witness's shares for a section, in canonical order."""

    section_id: bytes
    witness_index: int
    shares: tuple[DecryptionShare, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": SHARES_FORMAT,
            "section_id": "0x" + self.section_id.hex(),
            "witness_index": self.witness_index,
            "shares": [
                {"commitment": s.commitment.hex(), "share": s.share.hex(), "proof": s.proof.hex()}
                for s in sorted(set(self.shares), key=lambda s: (s.commitment, s.share, s.proof))
            ],
        }

    def canonical(self) -> bytes:
        return canonical_json(self.to_json())

    @property
    def digest(self) -> bytes:
        """What the witness anchors on chain: SHA-256 of the canonical batch."""
        return hashlib.sha256(self.canonical()).digest()

    @classmethod
    def from_json(cls, raw: Any) -> ShareBatch:
        try:
            if raw["format"] != SHARES_FORMAT:
                raise ValueError(f"format is not {SHARES_FORMAT}")
            section = str(raw["section_id"])
            shares = tuple(
                DecryptionShare(bytes.fromhex(s["commitment"]), bytes.fromhex(s["share"]), bytes.fromhex(s["proof"]))
                for s in raw["shares"]
            )
            index = int(raw["witness_index"])
            section_id = bytes.fromhex(section[2:] if section.startswith("0x") else section)
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidShareBatch(f"not a share batch: {error!r}") from None
        if len(section_id) != 32 or not 1 <= index <= 255:
            raise InvalidShareBatch("section id must be 32 bytes and the witness index 1..255")
        return cls(section_id, index, shares)


def share_context(section_id: bytes, witness_index: int, commitment: bytes) -> bytes:
    """Domain separation of a share's proof: the section, the witness and the bid."""
    return b"jianzheng/decryption-share/v1" + section_id + bytes([witness_index]) + commitment


def compute_share(
    secret: int, section_id: bytes, witness_index: int, commitment: bytes, ephemeral: Point
) -> DecryptionShare:
    point, proof = prove_dleq(secret, ephemeral, share_context(section_id, witness_index, commitment))
    return DecryptionShare(commitment, point.encode(), proof)


def share_is_valid(
    public_share: Point, section_id: bytes, witness_index: int, ephemeral: Point, share: DecryptionShare
) -> bool:
    try:
        point = Point.decode(share.share)
    except InvalidPoint:
        return False
    context = share_context(section_id, witness_index, share.commitment)
    return verify_dleq(public_share, ephemeral, point, share.proof, context)


def combine(shares: Sequence[tuple[int, bytes]]) -> Point:
    """d·E from exactly k valid shares (witness index, s_i·E): Lagrange interpolation at 0 in the exponent."""
    indices = [index for index, _ in shares]
    total: Point | None = None
    for index, share in shares:
        term = Point.decode(share) * lagrange_at_zero(index, indices)
        total = term if total is None else total + term
    if total is None:
        raise ValueError("no shares to combine")
    return total


def index_shares(batches: Iterable[ShareBatch]) -> dict[bytes, dict[int, list[DecryptionShare]]]:
    """Shares by bid commitment and witness; replays collapse, conflicting duplicates stay (to be named)."""
    found: dict[bytes, dict[int, list[DecryptionShare]]] = {}
    for batch in batches:
        for share in batch.shares:
            per_witness = found.setdefault(share.commitment, {}).setdefault(batch.witness_index, [])
            if share not in per_witness:
                per_witness.append(share)
    return found
