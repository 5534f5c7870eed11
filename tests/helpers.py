"""Builders for the contract tests: fresh tenders, sections, guarantees and bids on a shared deployment."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import Any

from contracts.client import Deployment, Signer, TxResult
from contracts.deploy import ConsortiumConfig
from contracts.records import BidCover, BidStatus, GuaranteeTerms, Role, SectionTerms, id32
from tests.backends import Backend

BOND = 800_000_00  # 80万元 in fen
VALIDITY = 90 * 24 * 3600
OPENING_KEY = bytes.fromhex("02" + "ab" * 32)  # a compressed secp256k1 point's shape; tests never decrypt


def fresh_id(label: str) -> bytes:
    """A 32-byte id no other test uses."""
    return id32(f"{label}-{uuid.uuid4()}")


def random_hash() -> bytes:
    return os.urandom(32)


@dataclass
class Platform:
    """The deployed contracts and the dev consortium's members by role."""

    backend: Backend
    deployment: Deployment
    config: ConsortiumConfig
    manifest: dict[str, Any]
    admins: list[Signer]
    witnesses: list[Signer]
    regulators: list[Signer]
    tenderer: Signer
    agency: Signer
    bidders: list[Signer]
    guarantors: list[Signer]
    # Covers of bids committed through `commit_bid` and not revealed yet, by (section id, bidder address):
    # what the trading platform keeps off chain to reveal at the opening.
    covers: dict[tuple[bytes, str], BidCover] = field(default_factory=dict)

    @classmethod
    def build(
        cls, backend: Backend, deployment: Deployment, config: ConsortiumConfig, manifest: dict[str, Any]
    ) -> Platform:
        def signers(role: Role) -> list[Signer]:
            return [m.signer for m in config.with_role(role)]

        return cls(
            backend=backend,
            deployment=deployment,
            config=config,
            manifest=manifest,
            admins=signers(Role.ADMIN),
            witnesses=signers(Role.WITNESS),
            regulators=signers(Role.REGULATOR),
            tenderer=signers(Role.TENDERER)[0],
            agency=signers(Role.AGENCY)[0],
            bidders=signers(Role.BIDDER),
            guarantors=signers(Role.GUARANTOR),
        )

    @property
    def tenders(self) -> Any:
        return self.deployment.tenders

    @property
    def guarantees(self) -> Any:
        return self.deployment.guarantees

    @property
    def consortium(self) -> Any:
        return self.deployment.consortium

    def now(self) -> int:
        return self.backend.chain.now()


@dataclass(frozen=True)
class SectionRef:
    tender_id: bytes
    section_id: bytes
    opening_time: int
    terms: SectionTerms


def new_tender(platform: Platform) -> bytes:
    tender_id = fresh_id("tender")
    platform.tenders.create_tender(platform.agency, tender_id, platform.tenderer.address, random_hash())
    return tender_id


def section_terms(
    platform: Platform,
    *,
    opening_in: int = 3600,
    bond: int = BOND,
    validity: int = VALIDITY,
    min_valid_bids: int = 0,
    quorum: int = 2,
    witnesses: list[Signer] | None = None,
    opening_key: bytes = OPENING_KEY,
) -> SectionTerms:
    chosen = witnesses if witnesses is not None else platform.witnesses
    return SectionTerms(
        opening_time=platform.now() + opening_in,
        bid_validity_period=validity,
        bid_bond=bond,
        witnesses=tuple(w.address for w in chosen),
        witness_quorum=quorum,
        min_valid_bids=min_valid_bids,
        opening_key=opening_key,
    )


def new_section(platform: Platform, **terms_kwargs: Any) -> SectionRef:
    """A new tender with one section, open for bids for `opening_in` seconds of chain time."""
    tender_id = new_tender(platform)
    section_id = fresh_id("section")
    terms = section_terms(platform, **terms_kwargs)
    platform.tenders.add_section(platform.agency, tender_id, section_id, terms)
    return SectionRef(tender_id, section_id, terms.opening_time, terms)


def guarantee_terms(
    platform: Platform,
    section: SectionRef,
    applicant: Signer,
    *,
    amount: int | None = None,
    valid_until: int | None = None,
    sealed_salt: bytes | None = None,
    beneficiary: str | None = None,
) -> GuaranteeTerms:
    section_ref = section.section_id
    if sealed_salt is not None:
        section_ref = platform.guarantees.sealed_reference(section.section_id, sealed_salt)
    return GuaranteeTerms(
        section_ref=section_ref,
        sealed_ref=sealed_salt is not None,
        applicant=applicant.address,
        beneficiary=beneficiary or platform.tenderer.address,
        amount=amount if amount is not None else section.terms.bid_bond,
        valid_until=valid_until or section.opening_time + section.terms.bid_validity_period + 30 * 24 * 3600,
        letter_hash=random_hash(),
    )


def issue_guarantee(
    platform: Platform, section: SectionRef, applicant: Signer, *, guarantor: Signer | None = None, **kwargs: Any
) -> bytes:
    guarantee_id = fresh_id("guarantee")
    terms = guarantee_terms(platform, section, applicant, **kwargs)
    platform.guarantees.issue(guarantor or platform.guarantors[0], guarantee_id, terms)
    return guarantee_id


def commit_bid(
    platform: Platform, bidder: Signer, section_id: bytes, ciphertext_hash: bytes, cover: BidCover
) -> TxResult:
    """`TenderRegistryClient.commit_bid`, keeping the cover for `reveal_covers` as the platform does."""
    result: TxResult = platform.tenders.commit_bid(bidder, section_id, ciphertext_hash, cover)
    platform.covers[(section_id, bidder.address)] = cover
    return result


def commit_with_deposit(platform: Platform, section: SectionRef, bidder: Signer) -> TxResult:
    return commit_bid(platform, bidder, section.section_id, random_hash(), BidCover.deposit(fresh_id("deposit")))


def commit_with_guarantee(platform: Platform, section: SectionRef, bidder: Signer) -> tuple[bytes, TxResult]:
    guarantee_id = issue_guarantee(platform, section, bidder)
    cover = BidCover.guarantee(guarantee_id)
    return guarantee_id, commit_bid(platform, bidder, section.section_id, random_hash(), cover)


def reveal_covers(platform: Platform, section_id: bytes) -> list[TxResult]:
    """Reveal, as the agency, every kept cover of the section's bids that is still live (after the deadline)."""
    results = []
    for (kept_section, bidder), cover in list(platform.covers.items()):
        if kept_section != section_id:
            continue
        del platform.covers[(kept_section, bidder)]
        state = platform.tenders.cover_of(section_id, bidder)
        if state.revealed or state.commitment != cover.commitment(section_id, bidder):
            continue  # revealed by the test itself, or committed again with another cover
        if platform.tenders.bid(section_id, bidder).status in (BidStatus.WITHDRAWN, BidStatus.COVER_REJECTED):
            continue
        results.append(platform.tenders.reveal_cover(platform.agency, section_id, bidder, cover))
    return results


def pass_deadline(platform: Platform, section: SectionRef) -> None:
    """Reach the opening time and reveal the covers of the bids committed with `commit_bid`, as the
    trading platform does when the opening starts."""
    platform.backend.advance_to(section.opening_time)
    reveal_covers(platform, section.section_id)


def open_all(platform: Platform, section: SectionRef, bidders: list[Signer]) -> None:
    """Record every listed bid as opened (after the deadline; their covers revealed)."""
    for bidder in bidders:
        platform.tenders.record_bid_opened(platform.agency, section.section_id, bidder.address, random_hash())


def witnessed_section(platform: Platform, *, bidders: int = 3, guarantees: bool = False) -> tuple[SectionRef, bytes]:
    """A section whose opening closed with `bidders` opened bids and whose record the quorum attested."""
    section = new_section(platform)
    chosen = platform.bidders[:bidders]
    for bidder in chosen:
        if guarantees:
            commit_with_guarantee(platform, section, bidder)
        else:
            commit_with_deposit(platform, section, bidder)
    pass_deadline(platform, section)
    open_all(platform, section, chosen)
    record = random_hash()
    platform.tenders.close_opening(platform.agency, section.section_id, record)
    for witness in platform.witnesses[: section.terms.witness_quorum]:
        platform.tenders.attest_opening(witness, section.section_id, record)
    return section, record
