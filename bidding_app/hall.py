"""The online opening hall (开标大厅): who is admitted, the hall's event log, and the rules for what
participants hand in (witnesses' share batches, bidders' confirmations and objections, the agency's
answers, witnesses' attestation requests).

Every change is a row plus hall events in the same database transaction; chain writes go through the
outbox (`bidding_app.hall_chain`), and the heavy work (opening the bids, redoing it for a witness) is
done by the outbox sender process (`bidding_app.hall_driver`), never in a request.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bidding_app.amendments import UNCONFIRMED_TREATMENT
from bidding_app.bids import section_for
from bidding_app.chain import ChainGateway
from bidding_app.envelopes import sealed_envelopes
from bidding_app.errors import AppError, Forbidden, InvalidInput, NotFound, TooLarge
from bidding_app.hall_events import emit
from bidding_app.models import (
    OpeningAttestation,
    OpeningResponse,
    Organisation,
    OutboxEntry,
    Registration,
    Section,
    SectionOpening,
    SectionWitness,
    ShareBatchUpload,
)
from bidding_app.outbox import enqueue
from contracts.records import Role
from opening.envelope import BidOpeningFailed, InvalidOpeningKey, OpeningKey, ephemeral_point, parse_envelope
from opening.shares import InvalidShareBatch, ShareBatch, share_is_valid

MAX_SHARE_BATCH_BYTES = 4 * 1024 * 1024  # ~250 bytes a bid: room for 10,000 bids
MAX_RESPONSE_CHARS = 5000
ENVELOPE_HEAD_BYTES = 512  # enough of an envelope to read its ephemeral key (the rest is ciphertext)

ADMITTED_ROLES = Role.REGULATOR | Role.ADMIN

CAUSE_LABELS = {
    "commitment_mismatch": "投标文件与链上哈希不符",
    "malformed_envelope": "密封格式错误",
    "wrong_section": "密封到其他标段",
    "wrong_opening_key": "密封到错误的开标公钥",
    "key_wrap_invalid": "密钥封装无效",
    "ciphertext_corrupt": "密文损坏",
    "plaintext_malformed": "明文格式错误",
    "bidder_mismatch": "投标文件载明的投标人与递交人不符",
    "envelope_unavailable": "平台未能提供投标文件",
    "shares_unavailable": "有效解密份额不足",
}


def confirmation_fields(confirmed_amendment: int | None, tender_amendment: int | None) -> dict[str, Any]:
    """How a bid stood against the amendments of the tender documents at the opening, for the hall's events
    and state: the API's fields and the sentence the page shows (None without an amendment, or for an
    opening recorded before this was kept)."""
    if confirmed_amendment is None or tender_amendment is None:
        return {"confirmed": None, "confirmed_amendment": None, "tender_amendment": None, "confirmation_zh": None}
    confirmed = confirmed_amendment >= tender_amendment
    note = None
    if tender_amendment and confirmed:
        note = f"已确认招标文件第{tender_amendment}次修改"
    elif tender_amendment:
        stood = "最初发布的招标文件" if confirmed_amendment == 0 else f"第{confirmed_amendment}次修改后的招标文件"
        note = f"未确认招标文件第{tender_amendment}次修改（投标对应{stood}）。{UNCONFIRMED_TREATMENT}"
    return {"confirmed": confirmed, "confirmed_amendment": confirmed_amendment,
            "tender_amendment": tender_amendment, "confirmation_zh": note}


class BeforeOpening(AppError):
    code = "before_opening"
    status = 409
    message = "开标时间未到（以区块链时间为准），不接受解密份额"


class HallStateConflict(AppError):
    code = "hall_state_conflict"
    status = 409
    message = "开标当前阶段不允许此操作"


class AlreadySubmitted(AppError):
    code = "already_submitted"
    status = 409
    message = "已提交过，不能重复提交"


class ResponseWindowClosed(AppError):
    code = "response_window_closed"
    status = 409
    message = "确认与异议期限已过"


# ---------------------------------------------------------------- who is admitted


def is_bidder_of(session: Session, organisation: Organisation, section: Section) -> bool:
    registration = session.scalars(
        sa.select(Registration).where(Registration.section_id == section.id,
                                      Registration.bidder_id == organisation.id)
    ).first()
    return registration is not None


def is_witness_of(session: Session, organisation: Organisation, section: Section) -> bool:
    return session.get(SectionWitness, (section.id, organisation.id)) is not None


def admitted(session: Session, organisation: Organisation, section: Section) -> bool:
    """The tender's agency and tenderer, the section's witnesses and registered bidders, regulators, admins."""
    if organisation.roles & ADMITTED_ROLES:
        return True
    if organisation.id in (section.tender.agency_id, section.tender.tenderer_id):
        return True
    return is_witness_of(session, organisation, section) or is_bidder_of(session, organisation, section)


def hall_section(session: Session, organisation: Organisation, section_id: int) -> Section:
    return section_for(session, organisation, section_id, admitted,
                       "只有该标段的招标人、招标代理机构、见证机构、已报名的投标人和监管部门可以进入开标大厅")


# ---------------------------------------------------------------- state


def opening_of(session: Session, section: Section) -> SectionOpening | None:
    return session.get(SectionOpening, section.id)


def sha256_hex(text: str) -> str:
    return "0x" + hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- share batches from the witnesses


def parse_share_batch(raw: bytes) -> ShareBatch:
    if len(raw) > MAX_SHARE_BATCH_BYTES:
        raise TooLarge(f"解密份额文件过大：不能超过 {MAX_SHARE_BATCH_BYTES // (1024 * 1024)} MB")
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("解密份额文件不是 JSON", field="batch") from None
    try:
        return ShareBatch.from_json(value)
    except InvalidShareBatch:
        raise InvalidInput("解密份额文件不是 jianzheng/decryption-shares/v1 格式", field="batch") from None


def check_share_batch(
    session: Session, gateway: ChainGateway, section: Section, witness: Organisation, batch: ShareBatch,
    upload_folder: Path,
) -> None:
    """A batch counts only if it is for this section, from this witness at its index in the chain's
    order, after the opening time, for live commitments only, and every proof verifies."""
    if not is_witness_of(session, witness, section):
        raise Forbidden("只有该标段的见证机构可以提交解密份额")
    _, deployment = gateway.require()
    section_id = bytes.fromhex(section.chain_id[2:])
    if gateway.now() < section.opening_time:
        raise BeforeOpening()
    opening = opening_of(session, section)
    if opening is not None and opening.stage != "started":
        raise HallStateConflict("已开始解密，不再接受解密份额")
    if batch.section_id != section_id:
        raise InvalidInput("解密份额属于其他标段", field="section_id")
    registry = deployment.tenders
    order = [w.lower() for w in registry.witnesses(section_id)]
    address = (witness.address or "").lower()
    if address not in order or order.index(address) + 1 != batch.witness_index:
        raise InvalidInput("解密份额的见证人序号与贵机构在该标段的序号不符", field="witness_index")
    try:
        key = OpeningKey.decode(registry.opening_key(section_id))
    except InvalidOpeningKey:
        raise HallStateConflict("该标段在链上没有可用的开标公钥") from None
    public_share = key.public_share(batch.witness_index)
    ephemerals = {}
    for envelope in sealed_envelopes(session, section, upload_folder):
        try:
            with open(envelope.path, "rb") as handle:
                head = handle.read(ENVELOPE_HEAD_BYTES)
            ephemerals[bytes.fromhex(envelope.commitment[2:])] = ephemeral_point(parse_envelope(head))
        except (OSError, BidOpeningFailed):
            continue  # a malformed or lost envelope has no share; the opening records it
    live = set(registry.live_commitments(section_id).values())
    for number, share in enumerate(batch.shares, start=1):
        if share.commitment not in live or share.commitment not in ephemerals:
            raise InvalidInput(f"第 {number} 份解密份额所对应的投标文件不是该标段的有效投标", field="shares")
        if not share_is_valid(public_share, section_id, batch.witness_index, ephemerals[share.commitment], share):
            raise InvalidInput(f"第 {number} 份解密份额的证明无法验证（份额被篡改或密钥不符）", field="shares")


def accept_share_batch(
    session: Session, gateway: ChainGateway, section: Section, witness: Organisation, raw: bytes, upload_folder: Path
) -> ShareBatchUpload:
    """Check, store and anchor (`publishDecryptionShares` for the witness, via the outbox) a batch.

    The same batch again gives the stored one; another batch from the same witness is refused: the
    contract anchors one hash per witness.
    """
    batch = parse_share_batch(raw)
    digest = "0x" + batch.digest.hex()
    existing = session.scalars(
        sa.select(ShareBatchUpload).where(ShareBatchUpload.section_id == section.id,
                                          ShareBatchUpload.witness_id == witness.id)
    ).first()
    if existing is not None and existing.status != "failed":
        if existing.digest == digest:
            return existing
        raise AlreadySubmitted("贵机构已提交该标段的解密份额，链上每个见证人只能登记一次")
    check_share_batch(session, gateway, section, witness, batch, upload_folder)
    if existing is not None:
        session.delete(existing)
        session.flush()
    row = ShareBatchUpload(section_id=section.id, witness_id=witness.id, witness_index=batch.witness_index,
                           digest=digest, content=batch.canonical().decode("utf-8"),
                           share_count=len(batch.shares), status="anchoring")
    session.add(row)
    session.flush()
    # The row (one per section and witness) keeps a batch from being sent twice; the key only has to
    # differ from that of an earlier attempt the chain refused.
    key = f"publish_decryption_shares:{section.chain_id}:{witness.id}:{uuid.uuid4().hex}"
    enqueue(session, witness.id, "publish_decryption_shares", key,
            {"section_id": section.chain_id, "shares_hash": digest, "batch_id": row.id})
    emit(session, section.id, "batch_received", {"witness": witness.name, "witness_index": batch.witness_index,
                                                 "shares": len(batch.shares), "digest": digest})
    return row


# ---------------------------------------------------------------- bidders' responses and the agency's answers


def _clean_text(text: str | None, label: str, field: str) -> str:
    value = (text or "").strip()
    if not value:
        raise InvalidInput(f"请填写{label}", field=field)
    if len(value) > MAX_RESPONSE_CHARS:
        raise InvalidInput(f"{label}不能超过 {MAX_RESPONSE_CHARS} 字", field=field)
    return value


def respond(
    session: Session, gateway: ChainGateway, section: Section, bidder: Organisation, kind: str, text: str | None
) -> OpeningResponse:
    """A bidder confirms the record or objects to it, once, within the section's response window.

    An objection's text stays here; its SHA-256 goes on chain (`raiseObjection`, sent for the bidder).
    """
    if kind not in ("confirmation", "objection"):
        raise InvalidInput("请选择确认或提出异议", field="kind")
    if not is_bidder_of(session, bidder, section):
        raise Forbidden("只有该标段的投标人可以确认开标记录或提出异议")
    opening = opening_of(session, section)
    if opening is None or opening.stage != "closed" or opening.window_ends_at is None:
        raise HallStateConflict("开标记录尚未生成，暂不能确认或提出异议")
    if gateway.now() > opening.window_ends_at:
        raise ResponseWindowClosed()
    value = "确认开标记录无误" if kind == "confirmation" and not (text or "").strip() else _clean_text(
        text, "异议内容", "text")
    existing = session.scalars(
        sa.select(OpeningResponse).where(OpeningResponse.section_id == section.id,
                                         OpeningResponse.bidder_id == bidder.id)
    ).first()
    if existing is not None:
        raise AlreadySubmitted("贵单位已对开标记录作出确认或提出异议")
    row = OpeningResponse(section_id=section.id, bidder_id=bidder.id, kind=kind, text=value,
                          text_hash=sha256_hex(value), status="recorded" if kind == "confirmation" else "anchoring")
    session.add(row)
    session.flush()
    if kind == "objection":
        enqueue(session, bidder.id, "raise_objection", f"raise_objection:{section.chain_id}:{bidder.id}",
                {"section_id": section.chain_id, "objection_hash": row.text_hash, "response_id": row.id})
    emit(session, section.id, kind, {"response_id": row.id, "bidder": bidder.name, "text": value,
                                     "text_hash": row.text_hash})
    return row


def answer(session: Session, section: Section, agency: Organisation, response_id: int, text: str | None) -> (
        OpeningResponse):
    """The agency answers an objection once it is anchored (its number on chain is known)."""
    if section.tender.agency_id != agency.id:
        raise Forbidden("只有该项目的招标代理机构可以答复异议")
    row = session.get(OpeningResponse, response_id)
    if row is None or row.section_id != section.id or row.kind != "objection":
        raise NotFound("没有这项异议")
    if row.answer is not None and row.answer_status != "failed":
        raise AlreadySubmitted("该异议已答复")
    if row.status != "anchored" or row.objection_number is None:
        raise HallStateConflict("异议尚未上链，请稍后再答复")
    value = _clean_text(text, "答复内容", "text")
    row.answer, row.answer_hash, row.answer_status = value, sha256_hex(value), "anchoring"
    key = f"answer_objection:{section.chain_id}:{row.objection_number}:{uuid.uuid4().hex}"  # a refused one may retry
    enqueue(session, agency.id, "answer_objection", key,
            {"section_id": section.chain_id, "objection_id": row.objection_number, "answer_hash": row.answer_hash,
             "response_id": row.id})
    emit(session, section.id, "answer", {"response_id": row.id, "bidder": row.bidder.name, "text": value,
                                         "answer_hash": row.answer_hash})
    return row


def request_attestation(session: Session, section: Section, witness: Organisation) -> OpeningAttestation:
    """A witness asks the platform to redo the opening from public data and, if it matches, attest it."""
    if not is_witness_of(session, witness, section):
        raise Forbidden("只有该标段的见证机构可以见证开标记录")
    opening = opening_of(session, section)
    if opening is None or opening.stage != "closed":
        raise HallStateConflict("开标记录尚未上链，暂不能见证")
    existing = session.get(OpeningAttestation, (section.id, witness.id))
    if existing is not None and existing.status != "failed":
        raise AlreadySubmitted("贵机构已申请见证该开标记录")
    if existing is not None:
        session.delete(existing)
        session.flush()
    row = OpeningAttestation(section_id=section.id, witness_id=witness.id, status="verifying", detail="")
    session.add(row)
    emit(session, section.id, "attestation", {"witness": witness.name, "status": "verifying"})
    return row


# ---------------------------------------------------------------- the agency retries a refused record write

OPENING_WRITES = ("record_outcomes", "close_opening")  # the agency's writes of the opening's result
RETRY = ":retry:"  # a retry's key: the write's first key, then this and the attempt number


def _opening_write_attempts(session: Session, section: Section) -> list[list[OutboxEntry]]:
    """Every recordOutcomes and closeOpening write of the section, each as its attempts in order (the
    first entry, then its retries), the writes in the order they were first queued."""
    entries = session.scalars(
        sa.select(OutboxEntry)
        .where(sa.or_(*(OutboxEntry.key.startswith(f"{action}:{section.chain_id}") for action in OPENING_WRITES)))
        .order_by(OutboxEntry.id)
    ).all()
    writes: dict[str, list[OutboxEntry]] = {}
    for entry in entries:
        writes.setdefault(entry.key.split(RETRY)[0], []).append(entry)
    return list(writes.values())


def refused_opening_writes(session: Session, section: Section) -> list[OutboxEntry]:
    """The opening's writes whose latest attempt failed (refused by the chain, or not sendable): the
    opening cannot close until the agency has them sent again."""
    return [attempts[-1] for attempts in _opening_write_attempts(session, section) if attempts[-1].status == "failed"]


def retry_opening_writes(session: Session, section: Section, agency: Organisation) -> list[OutboxEntry]:
    """Queue every refused write of the opening again (the same call, a fresh outbox entry), once the
    agency has dealt with the cause (a cover revealed late, the agency's key restored, ...).

    Idempotent: the section row is locked first and a retry's key is its write's next attempt number, so
    a double submission, concurrent or not, queues each retry once; the second gets the retries on their
    way. Returns the retries queued or still on their way; HallStateConflict when there is none."""
    if section.tender.agency_id != agency.id:
        raise Forbidden("只有该项目的招标代理机构可以重新提交开标结果上链")
    session.execute(sa.select(Section.id).where(Section.id == section.id).with_for_update())
    queued: list[OutboxEntry] = []
    on_their_way: list[OutboxEntry] = []
    for attempts in _opening_write_attempts(session, section):
        latest = attempts[-1]
        if latest.status == "failed":
            key = f"{attempts[0].key}{RETRY}{len(attempts)}"
            queued.append(enqueue(session, agency.id, latest.action, key, json.loads(latest.payload)))
        elif len(attempts) > 1 and latest.status in ("pending", "signed"):
            on_their_way.append(latest)
    if not queued and not on_their_way:
        raise HallStateConflict("没有被链上拒绝的开标结果或开标记录，无需重新提交")
    if queued:
        opening = opening_of(session, section)
        if opening is not None:
            opening.error = None
        emit(session, section.id, "chain_write_retried", {"actions": [e.action for e in queued],
                                                          "organisation": agency.name})
    return on_their_way + queued
