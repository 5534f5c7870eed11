"""Typed records of what the contracts store, mirroring their Solidity structs and enums.

Amounts are in fen (分), times in unix seconds of chain time, ids and hashes are 32 bytes.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address


class Role(enum.IntFlag):
    """Consortium roles, as bits of the on-chain role mask."""

    ADMIN = 1 << 0
    TENDERER = 1 << 1
    AGENCY = 1 << 2
    BIDDER = 1 << 3
    GUARANTOR = 1 << 4
    WITNESS = 1 << 5
    REGULATOR = 1 << 6

    @classmethod
    def parse(cls, names: list[str]) -> Role:
        """Roles from their names (`["admin", "agency"]`), as written in a consortium config."""
        roles = cls(0)
        for name in names:
            try:
                roles |= cls[name.upper()]
            except KeyError:
                raise ValueError(f"unknown role {name!r}; known: {[str(r.name).lower() for r in cls]}") from None
        return roles


class ProposalKind(enum.IntEnum):
    NONE = 0
    ADD_MEMBER = 1
    REMOVE_MEMBER = 2
    SET_ROLES = 3
    SET_THRESHOLD = 4


class SectionStatus(enum.IntEnum):
    NONE = 0
    BIDDING = 1
    OPENED = 2
    FAILED_TENDER = 3
    AWARDED = 4


class BidStatus(enum.IntEnum):
    NONE = 0
    COMMITTED = 1
    WITHDRAWN = 2
    OPENED = 3
    DECRYPTION_FAILED_BIDDER_CAUSED = 4
    DECRYPTION_FAILED_NOT_BIDDER_CAUSED = 5
    WITHDRAWN_AFTER_DEADLINE = 6
    COVER_REJECTED = 7


class CoverKind(enum.IntEnum):
    GUARANTEE = 0
    CASH_DEPOSIT = 1


class ClaimGround(enum.IntEnum):
    NONE = 0
    WITHDRAWAL_AFTER_DEADLINE = 1
    BIDDER_CAUSED_DECRYPTION_FAILURE = 2
    WINNER_REFUSED_TO_SIGN = 3


class GuaranteeState(enum.IntEnum):
    NONE = 0
    ISSUED = 1
    CLAIMED = 2
    PAID = 3
    RELEASED = 4
    CANCELLED = 5
    EXPIRED = 6


def org_id(identifier: str) -> bytes:
    """The on-chain id of an organisation: the hash of its identifier (e.g. 统一社会信用代码)."""
    return keccak(text=identifier.strip())


def id32(text: str) -> bytes:
    """A 32-byte id for a platform number such as a tender, section or guarantee number."""
    return keccak(text=text)


@dataclass(frozen=True)
class Member:
    account: str
    org_id: bytes
    roles: Role


@dataclass(frozen=True)
class Proposal:
    proposal_id: int
    kind: ProposalKind
    executed: bool
    approvals: int
    account: str
    org_id: bytes
    value: int


@dataclass(frozen=True)
class SectionTerms:
    opening_time: int
    bid_validity_period: int
    bid_bond: int
    witnesses: tuple[str, ...]
    witness_quorum: int
    min_valid_bids: int = 0
    opening_key: bytes = b""


@dataclass(frozen=True)
class Tender:
    agency: str
    tenderer: str
    section_count: int
    version: int  # 1 when published, +1 per amendment (amendTender)
    details_hash: bytes


@dataclass(frozen=True)
class Section:
    tenderer: str
    opening_time: int
    status: SectionStatus
    has_opening_key: bool
    min_valid_bids: int
    bid_bond: int
    bid_validity_period: int
    live_bids: int
    tender_version: int
    agency: str
    outcomes: int
    opened_bids: int
    witness_quorum: int
    attestations: int
    contract_signed: bool
    refused_to_sign: bool
    winner: str
    objections: int
    pending_objections: int
    tender_id: bytes
    opening_record_hash: bytes


@dataclass(frozen=True)
class Bid:
    status: BidStatus
    ciphertext_hash: bytes
    cover_kind: CoverKind
    cover: bytes
    announced_hash: bytes


@dataclass(frozen=True)
class BidConfirmation:
    """Which version of the tender documents a bid was made on or confirmed, against the current one."""

    confirmed_version: int
    current_version: int

    @property
    def confirmed(self) -> bool:
        """Whether the bid stands for the latest documents (no amendment since, or confirmed after it)."""
        return self.confirmed_version >= self.current_version


@dataclass(frozen=True)
class BidCover:
    """What a bid's blinded cover commitment hides until the opening: the kind, the guarantee id or the
    cash deposit's reference hash, and the salt. The bidder and the platform keep it; the guarantor
    never sees the salt, so it cannot tell from the chain which commitment is its guarantee's.

    For a guarantee with a sealed section reference the salt is also the one that opens that reference
    (`keccak256(abi.encode(sectionId, salt))`), so one secret serves both.
    """

    kind: CoverKind
    cover: bytes
    salt: bytes

    @classmethod
    def guarantee(cls, guarantee_id: bytes, salt: bytes | None = None) -> BidCover:
        """A guarantee cover; `salt` is its sealed reference's salt, or fresh random bytes if not sealed."""
        return cls(CoverKind.GUARANTEE, guarantee_id, salt if salt is not None else os.urandom(32))

    @classmethod
    def deposit(cls, deposit_ref: bytes, salt: bytes | None = None) -> BidCover:
        """A cash deposit cover, blinded by fresh random bytes unless a salt is given."""
        return cls(CoverKind.CASH_DEPOSIT, deposit_ref, salt if salt is not None else os.urandom(32))

    def commitment(self, section_id: bytes, bidder: str) -> bytes:
        """The commitment `commitBid` carries for `bidder` in `section_id`."""
        return cover_commitment(section_id, bidder, self.kind, self.cover, self.salt)


def cover_commitment(section_id: bytes, bidder: str, kind: CoverKind, cover: bytes, salt: bytes) -> bytes:
    """`TenderRegistry.coverCommitmentOf`: keccak256(abi.encode(sectionId, bidder, kind, cover, salt))."""
    encoded = abi_encode(
        ["bytes32", "address", "uint8", "bytes32", "bytes32"],
        [section_id, to_checksum_address(bidder), int(kind), cover, salt],
    )
    return keccak(encoded)


@dataclass(frozen=True)
class CoverState:
    """A bid's cover as the chain shows it: the commitment, and the cover once revealed at the opening."""

    commitment: bytes
    revealed: bool
    kind: CoverKind
    cover: bytes


@dataclass(frozen=True)
class Objection:
    bidder: str
    objection_hash: bytes
    answer_hash: bytes


@dataclass(frozen=True)
class GuaranteeTerms:
    section_ref: bytes
    sealed_ref: bool
    applicant: str
    beneficiary: str
    amount: int
    valid_until: int
    letter_hash: bytes


@dataclass(frozen=True)
class Guarantee:
    issuer: str
    valid_until: int
    state: GuaranteeState
    sealed_ref: bool
    bound: bool
    applicant: str
    amount: int
    beneficiary: str
    issued_at: int  # chain time of the issue
    section_ref: bytes
    letter_hash: bytes  # from the GuaranteeIssued event (zero for an unknown guarantee)
    issued_tx_hash: str  # the transaction that anchored it ("" for an unknown guarantee)
    issued_block: int


@dataclass(frozen=True)
class Claim:
    ground: ClaimGround
    section_id: bytes
    evidence_hash: bytes
    paid_amount: int
    payment_ref: bytes


@dataclass(frozen=True)
class OpeningOutcome:
    """One bid's decryption outcome for `TenderRegistry.recordOutcomes`: OPENED with the announced fields'
    hash (its cover must be revealed), one of the two DECRYPTION_FAILED statuses with the failure's
    evidence hash, or COVER_REJECTED (its commitment opens to no valid cover) with the evidence hash."""

    bidder: str
    status: BidStatus
    hash: bytes
