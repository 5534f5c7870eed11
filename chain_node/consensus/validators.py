"""The validator set of a height and the commit seals that prove a block final.

A decided block carries at least a quorum of commit seals from distinct validators; because two quorums share
at least f+1 validators (hence at least one honest one, who seals only one value per height), anyone holding
the validator set can accept a sealed block as final without having watched consensus.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from chain_node.consensus.crypto import ADDRESS_LENGTH, DIGEST_LENGTH, SIGNATURE_LENGTH, commit_seal_digest, recover

Seal = tuple[bytes, bytes]
"""A commit seal: (validator address (20 bytes), signature (65 bytes) over `commit_seal_digest(digest)`)."""


@dataclass(frozen=True)
class ValidatorSet:
    """Ordered, duplicate-free tuple of 20-byte addresses; the order fixes the proposer rotation."""

    addresses: tuple[bytes, ...]
    _index: dict[bytes, int] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        addresses = tuple(bytes(a) for a in self.addresses)
        if not addresses:
            raise ValueError("a validator set needs at least one validator")
        for address in addresses:
            if len(address) != ADDRESS_LENGTH:
                raise ValueError(f"validator address must be {ADDRESS_LENGTH} bytes, got {len(address)}")
        if len(set(addresses)) != len(addresses):
            raise ValueError("duplicate validator address")
        object.__setattr__(self, "addresses", addresses)
        object.__setattr__(self, "_index", {a: i for i, a in enumerate(addresses)})

    @classmethod
    def of(cls, addresses: Iterable[bytes]) -> ValidatorSet:
        return cls(tuple(addresses))

    def __len__(self) -> int:
        return len(self.addresses)

    @property
    def size(self) -> int:
        return len(self.addresses)

    @property
    def quorum(self) -> int:
        """ceil(2n/3): any two quorums intersect in more than n/3 validators, i.e. in at least one honest one."""
        return -(-2 * len(self.addresses) // 3)

    @property
    def max_faulty(self) -> int:
        """f = floor((n-1)/3), the Byzantine validators tolerated."""
        return (len(self.addresses) - 1) // 3

    def proposer(self, height: int, round: int) -> bytes:
        """Round-robin: validators[(height + round) % n], so a silent proposer costs one round, not a height."""
        return self.addresses[(height + round) % len(self.addresses)]

    def contains(self, address: bytes) -> bool:
        return address in self._index

    def index(self, address: bytes) -> int:
        """Position of a validator (raises KeyError for a non-validator)."""
        return self._index[address]


class SealFailure(enum.Enum):
    """Why a set of commit seals does not prove a block final."""

    MALFORMED = "malformed seal"
    NOT_A_VALIDATOR = "signer is not a validator"
    DUPLICATE_SIGNER = "duplicate signer"
    WRONG_DIGEST = "seal does not sign this digest"
    TOO_FEW = "too few seals"


@dataclass(frozen=True)
class SealCheck:
    """Result of `check_commit_seals`: ok, or the first failure found with a human-readable detail."""

    ok: bool
    failure: SealFailure | None = None
    detail: str = ""

    def __bool__(self) -> bool:
        return self.ok


def check_commit_seals(digest: bytes, seals: Iterable[Seal], validators: ValidatorSet) -> SealCheck:
    """Check that `seals` prove `digest` final under `validators`, saying why not when they do not.

    Every seal must be well formed, by a validator, by a signer not seen before, and must recover to its
    claimed signer over `commit_seal_digest(digest)`; at least a quorum of them.
    """
    if len(digest) != DIGEST_LENGTH:
        return SealCheck(False, SealFailure.MALFORMED, f"digest must be {DIGEST_LENGTH} bytes")
    seal_digest = commit_seal_digest(digest)
    seen: set[bytes] = set()
    for position, seal in enumerate(seals):
        if len(seal) != 2:
            return SealCheck(False, SealFailure.MALFORMED, f"seal {position} is not an (address, signature) pair")
        address, signature = seal
        if len(address) != ADDRESS_LENGTH or len(signature) != SIGNATURE_LENGTH:
            return SealCheck(False, SealFailure.MALFORMED, f"seal {position} has a bad address or signature length")
        if not validators.contains(address):
            detail = f"seal {position}: 0x{address.hex()} is not a validator"
            return SealCheck(False, SealFailure.NOT_A_VALIDATOR, detail)
        if address in seen:
            return SealCheck(False, SealFailure.DUPLICATE_SIGNER, f"seal {position}: 0x{address.hex()} sealed twice")
        seen.add(address)
        signer = recover(seal_digest, signature)
        if signer != address:
            got = "nothing" if signer is None else f"0x{signer.hex()}"
            return SealCheck(
                False,
                SealFailure.WRONG_DIGEST,
                f"seal {position} by 0x{address.hex()} does not sign this digest (recovers to {got})",
            )
    if len(seen) < validators.quorum:
        return SealCheck(False, SealFailure.TOO_FEW, f"{len(seen)} seals, quorum is {validators.quorum}")
    return SealCheck(True)


def verify_commit_seals(digest: bytes, seals: Iterable[Seal], validators: ValidatorSet) -> bool:
    """True iff `seals` are at least a quorum of valid commit seals over `digest` from distinct validators."""
    return check_commit_seals(digest, seals, validators).ok
