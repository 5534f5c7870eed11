"""Blinded bid covers (密文保函): what the platform keeps to reveal each bid's cover at the opening.

A bid goes on chain with only a commitment to its cover, `keccak256(abi.encode(sectionId, bidder, kind,
cover, salt))` (see `TenderRegistry.commitBid`), so no consortium member, the guarantor included, can
tell from the chain which guarantee or deposit backs which section's bid before the opening. The
platform, as the trading centre, keeps the kind, the reference and the salt on the bid row, and from
the opening time on reveals every committed bid's cover through the outbox (`reveal_cover`, signed by
the tender's agency). The reveal binds a guarantee in `GuaranteeRegistry` with all its checks and emits
`GuaranteeBound`: the on-chain opening event from which the guarantor learns the section.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from eth_utils import to_checksum_address
from hexbytes import HexBytes
from sqlalchemy.orm import Session

from bidding_app import outbox
from bidding_app.errors import InvalidInput
from bidding_app.models import Bid, OutboxEntry, Section, now
from contracts.client import Deployment
from contracts.records import BidCover, CoverKind, id32
from guarantees import errors, lifecycle
from guarantees.errors import GuaranteeError

REVEAL = "reveal_cover"
ACTIONS = (REVEAL,)  # this module's outbox actions (bidding_app.outbox.FEATURE_MODULES)
_HASH32 = re.compile(r"^0x[0-9a-f]{64}$")
# A reveal refused for this reason may simply have been sent too early; any other refusal is final.
_RETRYABLE = ("TenderRegistryBeforeOpening",)


def chain_cover(kind: str, reference: str, salt: str) -> BidCover:
    """The bid's cover as the contract sees it: a guarantee id (a 0x hash as given, else the hash of the
    guarantee number) or the hash of the cash deposit's voucher number, with the blinding salt."""
    blinding = bytes.fromhex(salt.removeprefix("0x"))
    if kind == "guarantee":
        guarantee_id = bytes.fromhex(reference[2:]) if _HASH32.match(reference) else id32(reference)
        return BidCover(CoverKind.GUARANTEE, guarantee_id, blinding)
    return BidCover(CoverKind.CASH_DEPOSIT, id32(reference), blinding)


def commitment_of(section_chain_id: str, bidder_address: str, cover: BidCover) -> str:
    """The 0x cover commitment that `commitBid` carries for this bidder and section."""
    return "0x" + cover.commitment(bytes.fromhex(section_chain_id[2:]), bidder_address).hex()


GUARANTEE_REFUSALS: dict[type[GuaranteeError], str] = {
    errors.UnknownGuarantee: "链上没有该编号的保函",
    errors.IllegalTransition: "该保函已撤销、解除、被索赔或已被其他投标使用",
    errors.WrongParty: "该保函的申请人不是贵单位",
    errors.InvalidApplication: "该保函不是为本标段出具的（或密封参考的盐值不对）",
    errors.BeneficiaryNotTenderer: "该保函的受益人不是本项目的招标人",
    errors.AmountBelowBond: "保函金额低于本标段的投标保证金",
    errors.ValidityTooShort: "保函有效期短于投标有效期",
}


def check_guarantee_cover(deployment: Deployment, section: Section, bidder_address: str, kind: str,
                          reference: str, salt: str | None) -> None:
    """A guarantee cover is checked on chain when the bid relies on it (read only: the 密文保函 stays
    sealed); the same rules the reveal at the opening applies, so a bid does not find out at the
    opening that its bond was never valid. A refusal names the rule, in Chinese, on field cover_ref."""
    if kind != "guarantee":
        return
    cover = chain_cover(kind, reference, salt or "0x" + "00" * 32)
    try:
        lifecycle.check_cover(deployment, cover.cover, bytes.fromhex(section.chain_id[2:]), bidder_address,
                              bytes.fromhex(salt[2:]) if salt else None)
    except GuaranteeError as refused:
        message = next((text for kind_, text in GUARANTEE_REFUSALS.items() if isinstance(refused, kind_)),
                       "该保函不能用于本投标")
        raise InvalidInput(message, field="cover_ref") from None


def unrevealed(section: Section) -> sa.Select[Bid]:
    """The section's committed bids whose cover is neither revealed on chain nor refused for good."""
    return sa.select(Bid).where(
        Bid.section_id == section.id,
        Bid.status == "committed",
        Bid.cover_salt.is_not(None),
        Bid.cover_reveal_tx.is_(None),
        Bid.cover_reveal_error.is_(None),
    )


def _reveals_of_bid() -> sa.ColumnElement[bool]:
    """The outbox entries of the enclosing query's bid's reveal (keys `reveal_cover:<bid id>:<attempt>`)."""
    return OutboxEntry.key.startswith(sa.literal(f"{REVEAL}:") + sa.cast(Bid.id, sa.String) + sa.literal(":"))


def queue_cover_reveals(session: Session, section: Section) -> int:
    """Queue, in the caller's transaction, the reveal of every committed bid's cover in `section`;
    returns how many were queued.

    Call it once the section's opening time has passed (the chain refuses earlier reveals, and such a
    refusal is retried by the next call). Safe to call any number of times: a bid whose reveal is
    queued, sent, confirmed or refused for good is skipped; bids confirmed later are picked up by a
    later call. Commits nothing itself.
    """
    bids = session.scalars(
        unrevealed(section).where(~sa.exists().where(_reveals_of_bid(), OutboxEntry.status != "failed"))
        .order_by(Bid.id)
    ).all()
    queued = 0
    for bid in bids:
        prefix = f"{REVEAL}:{bid.id}:"
        entries = session.scalars(sa.select(OutboxEntry.status).where(OutboxEntry.key.startswith(prefix))).all()
        assert bid.cover_salt is not None and bid.bidder.address is not None
        payload = {
            "bid_id": bid.id,
            "section_id": section.chain_id,
            "bidder": to_checksum_address(bid.bidder.address),
            "cover_kind": bid.cover_kind,
            "cover_ref": bid.cover_ref,
            "salt": bid.cover_salt,
        }
        outbox.enqueue(session, section.tender.agency_id, REVEAL, prefix + str(len(entries)), payload)
        queued += 1
    session.flush()
    return queued


def encode_reveal(deployment: Deployment, payload: dict[str, Any]) -> tuple[str, bytes]:
    """The address and calldata of a `reveal_cover` outbox entry."""
    cover = chain_cover(payload["cover_kind"], payload["cover_ref"], payload["salt"])
    args = [bytes.fromhex(payload["section_id"][2:]), payload["bidder"], int(cover.kind), cover.cover, cover.salt]
    registry = deployment.tenders
    contract = deployment.chain.contract("TenderRegistry", registry.address)
    return registry.address, bytes(HexBytes(contract.encode_abi("revealCover", args=args)))


def apply_reveal_confirmed(session: Session, entry: OutboxEntry, payload: dict[str, Any]) -> None:
    bid = session.get_one(Bid, int(payload["bid_id"]))
    bid.cover_reveal_tx, bid.cover_reveal_error, bid.updated_at = entry.tx_hash, None, now()


def apply_reveal_failed(session: Session, entry: OutboxEntry, payload: dict[str, Any]) -> None:
    """Keep the contract's reason (e.g. GuaranteeRegistryAmountBelowBond): the bid's cover is invalid and
    the bid does not count at the opening; a too-early reveal is left to be queued again."""
    if entry.error_code in _RETRYABLE:
        return
    bid = session.get_one(Bid, int(payload["bid_id"]))
    bid.cover_reveal_error, bid.updated_at = entry.error_code, now()


# The outbox's interface for feature modules.


def encode_call(deployment: Deployment, action: str, payload: dict[str, Any]) -> tuple[str, bytes]:
    return encode_reveal(deployment, payload)


def apply_confirmed(session: Session, entry: OutboxEntry, payload: dict[str, Any]) -> None:
    apply_reveal_confirmed(session, entry, payload)


def apply_failed(session: Session, entry: OutboxEntry, payload: dict[str, Any]) -> None:
    apply_reveal_failed(session, entry, payload)
