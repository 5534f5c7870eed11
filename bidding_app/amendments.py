"""Tender amendments and bid re-confirmations anchored on chain (an outbox feature module).

An amendment of the tender documents (a new description, or a new attachment) is written to the
database and, in the same transaction, queued as `amend_tender`: the agency's `amendTender` anchors the
new details hash and bumps the tender's on-chain version, so a witness can check that the documents
bidders bid on are the ones the chain anchored. It is sent after the tender's `create_tender` and
`add_section` (the same agency's entries go out in order).

A bidder's re-confirmation of its bid after an amendment is queued as `confirm_bid` (`confirmBid` with
the version): the contract accepts only the current version, so the platform lets a bidder confirm
only once the amendment itself is on chain. If the chain refuses the confirmation, the bid goes back to
the version it stood for before.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from hexbytes import HexBytes
from sqlalchemy.orm import Session

from bidding_app import outbox
from bidding_app.errors import BidStateConflict
from bidding_app.models import Amendment, Bid, BidConfirmation, OutboxEntry, Section, Tender, now
from contracts.client import Deployment

AMEND = "amend_tender"
CONFIRM = "confirm_bid"
ACTIONS = (AMEND, CONFIRM)  # this module's outbox actions (bidding_app.outbox.FEATURE_MODULES)
LIVE = ("committing", "committed", "replacing")  # bid states that stand for a version of the documents
# What the contract does at the opening with a bid not confirmed after the last amendment: nothing
# special. `recordOutcomes` opens and counts it like any other (TenderRegistry.bidConfirmationOf says so);
# whether it answers the amended documents is for the evaluation committee. Shown wherever such a bid is.
UNCONFIRMED_TREATMENT = ("按合约规则，该投标照常解密、唱标，并计入有效投标数（不因未确认而被拒绝）；"
                         "其是否响应修改后的招标文件，由评标委员会评审")


def queue_amendment(session: Session, tender: Tender, amendment: Amendment) -> None:
    """Queue the amendment's `amendTender`, signed by the tender's agency, in the caller's transaction."""
    session.flush()
    outbox.enqueue(session, tender.agency_id, AMEND, f"{AMEND}:{tender.chain_id}:{amendment.version}", {
        "amendment_id": amendment.id, "tender_id": tender.chain_id, "details_hash": amendment.details_hash,
        "version": amendment.version,
    })


def latest_amendment(tender: Tender) -> Amendment | None:
    return tender.amendments[-1] if tender.amendments else None


def queue_confirmation(session: Session, bid: Bid) -> BidConfirmation | None:
    """Confirm `bid` for the tender's current version and queue its `confirmBid`; the caller commits.

    A bid that already stands for the current version (made on it, or confirmed: a repeated click) needs
    nothing and gets None; a confirmation the chain refused may be tried again."""
    tender = bid.section.tender
    if bid.confirmed_version >= tender.version:
        return None
    existing = session.scalars(sa.select(BidConfirmation).where(
        BidConfirmation.bid_id == bid.id, BidConfirmation.version == tender.version)).first()
    amendment = latest_amendment(tender)
    if amendment is not None and amendment.chain_tx is None:
        raise BidStateConflict("招标文件的本次修改尚在上链确认中，请稍后再确认投标", field="bid")
    if bid.status != "committed":
        raise BidStateConflict("投标尚在上链确认中，请稍后再确认", field="bid")
    confirmation = existing or BidConfirmation(bid_id=bid.id, version=tender.version,
                                               previous_version=bid.confirmed_version)
    confirmation.status, confirmation.error_code = "anchoring", None
    session.add(confirmation)
    session.flush()
    bid.confirmed_version, bid.updated_at = tender.version, now()
    outbox.enqueue(session, bid.bidder_id, CONFIRM, f"{CONFIRM}:{confirmation.id}:{now()}", {
        "confirmation_id": confirmation.id, "section_id": bid.section.chain_id, "version": tender.version,
    })
    return confirmation


def confirmation_of(session: Session, bid: Bid) -> BidConfirmation | None:
    """The bid's latest re-confirmation, if any (for the receipt and the API)."""
    return session.scalars(sa.select(BidConfirmation).where(BidConfirmation.bid_id == bid.id)
                           .order_by(BidConfirmation.version.desc())).first()


@dataclass(frozen=True)
class BidStanding:
    """Which amendment of the tender documents a bid stands for, against the latest one, counted as the
    contract counts them (`confirmedAmendments`: the documents' version minus one). What the bidder, the
    API and the regulator are shown wherever the bid is listed.

    `reconfirmation` is the status (anchoring | confirmed | failed) of the bid's re-confirmation of the
    latest amendment, if it asked for one: the platform counts an anchoring one as made (the bidder need
    not ask twice), and a refused one puts the bid back (`apply_failed`)."""

    confirmed_amendment: int
    tender_amendment: int
    amended_at: int | None  # when the latest amendment was published
    amendment_anchored: bool  # the latest amendment is on chain: only then can the bid be confirmed for it
    live: bool
    reconfirmation: str | None
    reconfirmation_error: str | None

    @property
    def confirmed(self) -> bool:
        return self.confirmed_amendment >= self.tender_amendment

    @property
    def needs_reconfirmation(self) -> bool:
        return self.live and not self.confirmed


def standing_of(session: Session, bid: Bid) -> BidStanding:
    tender = bid.section.tender
    # Most tenders are never amended: then there is neither an amendment nor a re-confirmation to read.
    latest = latest_amendment(tender) if tender.version > 1 else None
    confirmation = confirmation_of(session, bid) if tender.version > 1 else None
    if confirmation is not None and confirmation.version != tender.version:
        confirmation = None  # one of an earlier amendment says nothing about the latest
    return BidStanding(
        confirmed_amendment=bid.confirmed_version - 1, tender_amendment=tender.version - 1,
        amended_at=latest.created_at if latest else None,
        amendment_anchored=latest is None or latest.chain_tx is not None, live=bid.status in LIVE,
        reconfirmation=confirmation.status if confirmation else None,
        reconfirmation_error=confirmation.error_code if confirmation else None,
    )


def unconfirmed_bid_counts(session: Session, section_ids: Collection[int]) -> dict[int, int]:
    """Section id → its live bids not (yet) confirmed for the latest amendment: what the agency is told.

    A count only: the agency learns neither who bid nor what, and the contract's live bid count is public
    anyway."""
    if not section_ids:
        return {}
    rows = session.execute(
        sa.select(Bid.section_id, sa.func.count(Bid.id)).join(Section, Section.id == Bid.section_id)
        .join(Tender, Tender.id == Section.tender_id)
        .where(Bid.section_id.in_(section_ids), Bid.status.in_(LIVE), Bid.confirmed_version < Tender.version)
        .group_by(Bid.section_id)
    )
    return {section_id: 0 for section_id in section_ids} | {row[0]: int(row[1]) for row in rows}


# The outbox's interface for feature modules.


def encode_call(deployment: Deployment, action: str, payload: dict[str, Any]) -> tuple[str, bytes]:
    registry = deployment.tenders
    contract = deployment.chain.contract("TenderRegistry", registry.address)
    if action == AMEND:
        function = "amendTender"
        args: list[Any] = [bytes(HexBytes(payload["tender_id"])), bytes(HexBytes(payload["details_hash"]))]
    else:
        function, args = "confirmBid", [bytes(HexBytes(payload["section_id"])), int(payload["version"])]
    return registry.address, bytes(HexBytes(contract.encode_abi(function, args=args)))


def apply_confirmed(session: Session, entry: OutboxEntry, payload: dict[str, Any]) -> None:
    row: Amendment | BidConfirmation
    if entry.action == AMEND:
        row = session.get_one(Amendment, int(payload["amendment_id"]))
    else:
        row = session.get_one(BidConfirmation, int(payload["confirmation_id"]))
        row.status = "confirmed"
    row.chain_tx, row.chain_block = entry.tx_hash, entry.block_number


def apply_failed(session: Session, entry: OutboxEntry, payload: dict[str, Any]) -> None:
    """Keep the chain's reason. A refused confirmation does not stand: the bid goes back to the version it
    stood for before (if nothing else changed it meanwhile)."""
    if entry.action == AMEND:
        session.get_one(Amendment, int(payload["amendment_id"])).chain_error = entry.error_code
        return
    confirmation = session.get_one(BidConfirmation, int(payload["confirmation_id"]))
    confirmation.status, confirmation.error_code = "failed", entry.error_code
    bid = session.get_one(Bid, confirmation.bid_id)
    if bid.confirmed_version == confirmation.version and bid.status == "committed":
        bid.confirmed_version, bid.updated_at = confirmation.previous_version, now()
