"""Handing out sealed envelopes for the opening, and only from the opening time on (chain time).

The envelopes are what the witnesses compute decryption shares over and what the opener decrypts.
Before the section's opening time nobody gets them through the platform: the request is refused and
anchored on chain as an early-access attempt (`TenderRegistry.reportEarlyAccess`, sent by the
platform for the section's agency, which the contract allows), so the regulator sees every try,
whoever made it (电子招标投标办法: no one may read a bid before the deadline). Only the tender's
agency and the section's witnesses may ask at all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bidding_app.bids import section_for
from bidding_app.chain import ChainGateway
from bidding_app.errors import AppError, ChainUnavailable, NotFound
from bidding_app.models import Bid, BidUpload, Organisation, Section, SectionWitness
from contracts import errors as chain_errors
from opening.witness import AccessRequest, SealedReadBeforeDeadline, guard_sealed_read

PURPOSE = "read sealed bids"


class SealedBeforeOpening(AppError):
    code = "sealed_before_opening"
    status = 409  # as for every step out of time (AfterDeadline): the request is allowed, not yet
    message = "开标时间未到，任何人不得读取密封投标文件；本次请求已作为提前访问记录上链存证，监管部门可见"

    def __init__(self, evidence: str) -> None:
        super().__init__(f"{type(self).message}（存证哈希 {evidence}）")
        self.evidence = evidence


@dataclass(frozen=True)
class SealedEnvelope:
    bid_id: int
    bidder: str  # the bidder's chain address
    commitment: str  # 0x SHA-256 of the envelope, as committed on chain
    size: int
    path: Path


def may_read(session: Session, organisation: Organisation, section: Section) -> bool:
    """The tender's agency and the section's witnesses run the opening; nobody else reads envelopes."""
    if section.tender.agency_id == organisation.id:
        return True
    witness = session.get(SectionWitness, (section.id, organisation.id))
    return witness is not None


def check_opening_time(gateway: ChainGateway, section: Section, requester: Organisation) -> None:
    """Pass from the opening time on; before it, anchor the attempt (as the agency) and refuse."""
    _, deployment = gateway.require()
    agency = gateway.signer_for(section.tender.agency)
    request = AccessRequest(bytes.fromhex(section.chain_id[2:]), requester.identifier, PURPOSE, int(time.time()))
    try:
        guard_sealed_read(deployment.tenders, agency, request)
    except SealedReadBeforeDeadline as refused:
        raise SealedBeforeOpening("0x" + refused.evidence_hash.hex()) from None
    except (chain_errors.ContractRevert, chain_errors.TransactionFailed, OSError) as error:
        # Fail closed: without the anchored record there is no reading either.
        raise ChainUnavailable() from error


def sealed_envelopes(session: Session, section: Section, upload_folder: Path) -> list[SealedEnvelope]:
    """The current envelope of every bid committed on chain for the section."""
    bids = session.scalars(
        sa.select(Bid).where(Bid.section_id == section.id, Bid.status == "committed").order_by(Bid.id)
    ).all()
    found = []
    for bid in bids:
        upload = session.scalars(
            sa.select(BidUpload)
            .where(BidUpload.bid_id == bid.id, BidUpload.commitment == bid.commitment)
            .order_by(BidUpload.id.desc())
        ).first()
        if upload is None:
            continue
        found.append(
            SealedEnvelope(
                bid.id,
                bid.bidder.address or "",
                bid.commitment,
                upload.size,
                upload_folder / "bids" / upload.stored_name,
            )
        )
    return found


def envelope_of(session: Session, section: Section, bid_id: int, upload_folder: Path) -> SealedEnvelope:
    for envelope in sealed_envelopes(session, section, upload_folder):
        if envelope.bid_id == bid_id:
            return envelope
    raise NotFound("没有这份已上链的投标文件")


def readable_section(session: Session, organisation: Organisation, section_id: int) -> Section:
    return section_for(session, organisation, section_id, may_read,
                       "只有该项目的招标代理机构和该标段的见证人可以读取密封投标文件")
