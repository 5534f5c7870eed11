"""Award (定标) and the contract that follows: the agency names the winner, the tenderer records whether the
winner signed the contract. Both are chain writes through the outbox.

The contract refuses an award unless the opening is closed, the witnesses' quorum attested its record, no
objection is pending and the winner's bid opened. The app checks the same facts on the chain first, so
that a refusal reaches the agency at once, in words, instead of as a failed outbox entry later. The
guarantees follow from what is recorded here: non-winners' bonds are releasable at the award, the
winner's once the contract is signed, and a refusal to sign is a claim ground.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import sqlalchemy as sa
from eth_utils import to_checksum_address
from hexbytes import HexBytes
from sqlalchemy.orm import Session

from bidding_app import outbox
from bidding_app.chain import ChainGateway
from bidding_app.db import get_or_not_found
from bidding_app.errors import AppError, Forbidden, InvalidInput, NotFound
from bidding_app.models import Award, Bid, Organisation, OutboxEntry, Section, now
from contracts.client import Deployment
from contracts.records import BidStatus, Role, SectionStatus

ACTIONS = ("award", "record_contract_signed", "record_refusal_to_sign")
MAX_TEXT = 5000


class AwardRefused(AppError):
    """The chain's state does not allow the award (yet); the message says which rule."""

    code = "award_refused"
    status = 409
    message = "当前不能定标"


class ContractStepRefused(AppError):
    code = "contract_step_refused"
    status = 409
    message = "当前不能登记合同签订情况"


def _canonical_hash(fields: dict[str, Any]) -> str:
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "0x" + hashlib.sha256(text.encode()).hexdigest()


def _text(value: Any, label: str, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"请填写{label}", field=field)
    text = value.strip()
    if len(text) > MAX_TEXT or not all(ch.isprintable() or ch in "\r\n\t" for ch in text):
        raise InvalidInput(f"{label}不能超过{MAX_TEXT}个字符，且不能含控制字符", field=field)
    return text


def _attempts(session: Session, kind: str, section: Section) -> int:
    """How many writes of this kind the section had: a refused one may be retried under a new outbox key."""
    count = session.scalar(sa.select(sa.func.count()).select_from(OutboxEntry).where(
        OutboxEntry.key.like(f"{kind}:{section.chain_id}:%")))
    return int(count or 0)


def award_of(session: Session, section: Section) -> Award | None:
    return session.scalars(sa.select(Award).where(Award.section_id == section.id)).one_or_none()


def candidates(session: Session, deployment: Deployment, section: Section) -> list[Organisation]:
    """The bidders the agency may name: those whose bid opened on chain."""
    bids = session.scalars(sa.select(Bid).where(Bid.section_id == section.id).order_by(Bid.id)).all()
    section_id = bytes.fromhex(section.chain_id[2:])
    opened = []
    for bid in bids:
        if bid.bidder.address and deployment.tenders.bid(section_id, bid.bidder.address).status == BidStatus.OPENED:
            opened.append(bid.bidder)
    return opened


def award(
    session: Session, gateway: ChainGateway, agency: Organisation, section: Section, winner_id: Any, summary: Any
) -> Award:
    """Queue the award of `section` to the bidder `winner_id`, once the chain says it is allowed."""
    if section.tender.agency_id != agency.id:
        raise Forbidden("只有该项目的招标代理机构可以定标")
    existing = award_of(session, section)
    if existing is not None and existing.status != "failed":
        raise AwardRefused("该标段已定标（或正在上链），不能重复定标")
    if not isinstance(winner_id, int) and not (isinstance(winner_id, str) and winner_id.isdigit()):
        raise InvalidInput("请选择中标人", field="winner_id")
    winner = session.get(Organisation, int(winner_id))
    if winner is None or not winner.roles & Role.BIDDER or winner.address is None:
        raise InvalidInput("中标人必须是投标人", field="winner_id")
    text = _text(summary, "定标说明", "summary")
    _, deployment = gateway.require()
    section_id = bytes.fromhex(section.chain_id[2:])
    state = deployment.tenders.section(section_id)
    if state.status == SectionStatus.FAILED_TENDER:
        raise AwardRefused("该标段已流标，不能定标")
    if state.status == SectionStatus.AWARDED:
        raise AwardRefused("该标段已在链上定标")
    if state.status != SectionStatus.OPENED:
        raise AwardRefused("开标尚未结束（开标记录未上链），不能定标")
    if state.attestations < state.witness_quorum:
        raise AwardRefused(f"见证人确认开标记录 {state.attestations} 家，未达到 {state.witness_quorum} 家，不能定标")
    if state.pending_objections:
        raise AwardRefused(f"尚有 {state.pending_objections} 项异议未答复，不能定标")
    if deployment.tenders.bid(section_id, winner.address).status != BidStatus.OPENED:
        raise AwardRefused(f"{winner.name}的投标未被有效开启，不能中标", field="winner_id")
    award_hash = _canonical_hash({"section_id": section.chain_id, "winner": winner.address.lower(), "summary": text})
    if existing is None:
        existing = Award(section_id=section.id, winner_id=winner.id, summary=text, award_hash=award_hash)
        session.add(existing)
    existing.winner_id, existing.summary, existing.award_hash = winner.id, text, award_hash
    existing.status, existing.error_code, existing.updated_at = "awarding", None, now()
    key = f"award:{section.chain_id}:{_attempts(session, 'award', section)}"
    outbox.enqueue(session, agency.id, "award", key, {
        "section_id": section.chain_id, "winner": winner.address, "award_hash": award_hash,
    })
    session.commit()
    return existing


def record_contract(
    session: Session, tenderer: Organisation, section: Section, outcome: Any, note: Any
) -> Award:
    """Queue the tenderer's record that the winner signed the contract (`signed`) or refused (`refused`)."""
    if section.tender.tenderer_id != tenderer.id:
        raise Forbidden("只有该项目的招标人可以登记合同签订情况")
    found = award_of(session, section)
    if found is None or found.status != "awarded":
        raise ContractStepRefused("该标段尚未在链上定标")
    if found.contract_status in ("recording", "signed", "refused"):
        raise ContractStepRefused("合同签订情况已登记")
    if outcome not in ("signed", "refused"):
        raise InvalidInput("请选择：中标人已签订合同，或拒绝签订", field="outcome")
    label = "合同编号及说明" if outcome == "signed" else "拒签情况及证据说明"
    text = _text(note, label, "note")
    digest = _canonical_hash({"section_id": section.chain_id, "outcome": outcome, "note": text})
    found.contract_status, found.contract_note, found.contract_hash = "recording", text, digest
    found.contract_error_code, found.updated_at = None, now()
    action = "record_contract_signed" if outcome == "signed" else "record_refusal_to_sign"
    key = f"contract:{section.chain_id}:{_attempts(session, 'contract', section)}"
    outbox.enqueue(session, tenderer.id, action, key, {"section_id": section.chain_id, "hash": digest})
    session.commit()
    return found


def section_for_award(session: Session, section_id: int) -> Section:
    return get_or_not_found(session, Section, section_id, "未找到该标段")


# ---------------------------------------------------------------- the outbox's side


def encode_call(deployment: Deployment, action: str, payload: dict[str, Any]) -> tuple[str, bytes]:
    registry = deployment.tenders
    section_id = bytes.fromhex(payload["section_id"][2:])
    if action == "award":
        function = "award"
        args: list[Any] = [section_id, to_checksum_address(payload["winner"]), bytes.fromhex(payload["award_hash"][2:])]
    else:
        function = "recordContractSigned" if action == "record_contract_signed" else "recordRefusalToSign"
        args = [section_id, bytes.fromhex(payload["hash"][2:])]
    contract = deployment.chain.contract("TenderRegistry", registry.address)
    return registry.address, bytes(HexBytes(contract.encode_abi(function, args=args)))


def _award_of_payload(session: Session, payload: dict[str, Any]) -> Award:
    found = session.scalars(
        sa.select(Award).join(Section, Award.section_id == Section.id).where(Section.chain_id == payload["section_id"])
    ).one_or_none()
    if found is None:
        raise NotFound("award of an outbox entry is gone")
    return found


def apply_confirmed(session: Session, entry: OutboxEntry, payload: dict[str, Any]) -> None:
    found = _award_of_payload(session, payload)
    if entry.action == "award":
        found.status, found.chain_tx, found.chain_block = "awarded", entry.tx_hash, entry.block_number
    else:
        found.contract_status = "signed" if entry.action == "record_contract_signed" else "refused"
        found.contract_tx, found.contract_block = entry.tx_hash, entry.block_number
    found.updated_at = now()


def apply_failed(session: Session, entry: OutboxEntry, payload: dict[str, Any]) -> None:
    found = _award_of_payload(session, payload)
    if entry.action == "award":
        found.status, found.error_code = "failed", entry.error_code
    else:
        found.contract_status, found.contract_error_code = "failed", entry.error_code
    found.updated_at = now()
