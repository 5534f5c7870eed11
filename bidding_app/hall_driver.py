"""The opening hall's background work, run by the outbox sender after each of its rounds (one sender per
database holds the lease, so one driver works at a time), never in a web request.

Each call to `drive` takes every section one step further where it can:

1. `start_due_sections`: the opening time passed in chain time → the hall's *started* event.
2. `open_ready_sections`: a quorum of the witnesses' share batches is anchored (or no bid is live) → the
   opening pipeline, a sequence of named steps: `decrypt_bids` (opener.open_section over the anchored
   batches and the stored envelopes), `store_outcomes` (one opened_bid row and one 唱标 or failure event
   per bid), `enqueue_outcomes` (recordOutcomes), `enqueue_close` (closeOpening with the record hash).
   A step that must come before the outcomes are recorded (the covers' reveal) goes before
   `enqueue_outcomes`.
3. `settle_closed_sections`: closeOpening is final → read what the contract decided (opened or 流标),
   open the bidders' response window (the section's own, chosen by the agency at publication).
4. `number_objections`: an anchored objection gets its number on chain (for the agency's answer).
5. `verify_attestations`: a witness asked to attest → redo the opening from public data
   (`verify_opening`) and send attestOpening only if it gives the anchored record.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from bidding_app.chain import ChainGateway
from bidding_app.covers import queue_cover_reveals, unrevealed
from bidding_app.db import db
from bidding_app.document_metadata import metadata_of
from bidding_app.envelopes import sealed_envelopes
from bidding_app.hall import CAUSE_LABELS, confirmation_fields
from bidding_app.hall_events import emit
from bidding_app.models import (
    Bid,
    OpenedBid,
    OpeningAttestation,
    OpeningResponse,
    Section,
    SectionOpening,
    ShareBatchUpload,
)
from bidding_app.outbox import enqueue
from contracts.records import BidConfirmation, SectionStatus
from opening.chainio import OUTCOMES_PER_TRANSACTION, onchain_outcomes, read_public_data
from opening.envelope import InvalidOpeningKey
from opening.opener import OpeningMismatch, OpeningResult, SectionPublicData, open_section, verify_opening
from opening.shares import ShareBatch

BATCH = 50  # sections taken per step and call


def driver_for(app: Flask, gateway: ChainGateway) -> Callable[[], bool]:
    """`drive` bound to an app, for `OutboxSender.after_round` (runs in the sender's app context)."""

    def run() -> bool:
        with db.new_session() as session:
            return drive(session, gateway, Path(app.config["UPLOAD_FOLDER"]))

    return run


def drive(session: Session, gateway: ChainGateway, upload_folder: Path) -> bool:
    """One pass over every step; True if anything moved (the sender then runs another round)."""
    moved = False
    for step in (start_due_sections, open_ready_sections, settle_closed_sections, number_objections,
                 verify_attestations):
        moved = step(session, gateway, upload_folder) or moved
    return moved


# ---------------------------------------------------------------- 1. the opening time


def start_due_sections(session: Session, gateway: ChainGateway, _folder: Path) -> bool:
    chain_now = gateway.now()
    due = session.scalars(
        sa.select(Section).outerjoin(SectionOpening, SectionOpening.section_id == Section.id)
        .where(SectionOpening.section_id.is_(None), Section.chain_tx.is_not(None), Section.opening_time <= chain_now)
        .order_by(Section.opening_time).limit(BATCH)
    ).all()
    for section in due:
        session.add(SectionOpening(section_id=section.id, stage="started", started_at=chain_now,
                                   response_window=section.response_window))
        # 密文保函: the bids' covers are revealed (and guarantees bound) now, for the agency.
        reveals = queue_cover_reveals(session, section)
        emit(session, section.id, "started", {"chain_time": chain_now, "opening_time": section.opening_time,
                                              "cover_reveals": reveals})
    session.commit()
    return bool(due)


# ---------------------------------------------------------------- 2. the opening pipeline


def _anchored_batches(session: Session, section: Section) -> list[ShareBatch]:
    rows = session.scalars(sa.select(ShareBatchUpload).where(
        ShareBatchUpload.section_id == section.id, ShareBatchUpload.status == "anchored")).all()
    return [ShareBatch.from_json(json.loads(row.content)) for row in rows]


def _covers_settled(session: Session, section: Section) -> bool:
    """Every committed bid's cover is revealed on chain or refused for good: only then can the outcomes
    be recorded (the contract records a bid as opened only once its cover is revealed).

    The reveals were queued when the section started; they are looked at again only while a cover is
    still open (its reveal on its way, or refused as too early, which is queued again here). Both come
    from the rows, so a restart between any two steps loses no reveal."""
    open_covers = session.scalar(sa.select(sa.func.count()).select_from(unrevealed(section).subquery())) or 0
    if open_covers == 0:
        return True
    if queue_cover_reveals(session, section):
        session.commit()
    return False


def rejected_covers(session: Session, section: Section) -> dict[str, str]:
    """Bidder address → the contract's refusal, for the bids whose cover could not be revealed."""
    rows = session.scalars(sa.select(Bid).where(Bid.section_id == section.id, Bid.cover_reveal_error.is_not(None)))
    return {(bid.bidder.address or "").lower(): str(bid.cover_reveal_error) for bid in rows}


def _ready(session: Session, section: Section) -> bool:
    anchored = session.scalar(sa.select(sa.func.count(ShareBatchUpload.id)).where(
        ShareBatchUpload.section_id == section.id, ShareBatchUpload.status == "anchored")) or 0
    if anchored >= section.witness_quorum:
        return True
    live = session.scalar(sa.select(sa.func.count(Bid.id)).where(
        Bid.section_id == section.id, Bid.status == "committed")) or 0
    return live == 0  # nothing to decrypt: the record (and 流标) need no shares


def open_ready_sections(session: Session, gateway: ChainGateway, folder: Path) -> bool:
    started = session.scalars(sa.select(SectionOpening).where(SectionOpening.stage == "started")
                              .limit(BATCH)).all()
    moved = False
    for opening in started:
        section = session.get_one(Section, opening.section_id)
        if not _ready(session, section) or not _covers_settled(session, section):
            continue
        run_opening(session, gateway, section, opening, folder)
        moved = True
    return moved


def run_opening(session: Session, gateway: ChainGateway, section: Section, opening: SectionOpening,
                folder: Path) -> None:
    """The opening pipeline of one section, committed as one transaction (rows, events, chain writes):
    if a step fails (the node is unreachable), nothing is kept and the next call starts it again."""
    opening.stage = "opening"
    emit(session, section.id, "opening", {"anchored_batches": len(_anchored_batches(session, section))})
    try:
        data, result = decrypt_bids(session, gateway, section, folder)
    except InvalidOpeningKey as error:
        # No retry can help (the section's key on chain is not an opening key): the hall says so, the
        # sender goes on with its other work, and the agency must take it up off the platform.
        session.rollback()
        opening = session.get_one(SectionOpening, section.id)
        opening.stage = "failed"
        emit(session, section.id, "opening_failed", {"cause": "invalid_opening_key", "detail": str(error)})
        session.commit()
        return
    rejected = rejected_covers(session, section)
    confirmations = confirmations_at_opening(data)
    store_outcomes(session, section, result, opened_documents(folder, section), rejected, confirmations)
    enqueue_outcomes(session, section, data, result, rejected)
    enqueue_close(session, section, opening, result)
    session.commit()


def decrypt_bids(session: Session, gateway: ChainGateway, section: Section, folder: Path) -> tuple[
        SectionPublicData, OpeningResult]:
    _, deployment = gateway.require()
    data = read_public_data(deployment.tenders, bytes.fromhex(section.chain_id[2:]))
    envelopes = {e.bidder: e.path for e in sealed_envelopes(session, section, folder)}
    documents = opened_documents(folder, section)
    documents.mkdir(parents=True, exist_ok=True)
    return data, open_section(data, _anchored_batches(session, section), envelopes, gateway.now(),
                              output_dir=documents)


def confirmations_at_opening(data: SectionPublicData) -> dict[str, BidConfirmation]:
    """Bidder address → the documents' version its bid stood for and the section's, as the contract kept them
    at the deadline (`bidConfirmationOf`; no confirmation counts after it). The contract opens and records an
    unconfirmed bid like any other; the hall and the opening's rows say that it was not confirmed, from the
    very chain reads the opening record carries, so the hall and the record cannot disagree."""
    return {bidder: BidConfirmation(stood + 1, data.tender_amendment + 1)
            for bidder, stood in data.confirmed_amendment_of().items()}


def opened_documents(folder: Path, section: Section) -> Path:
    """Where the opened bids' documents are kept for the evaluation (`<bidder>.document`)."""
    return folder / "opened" / section.chain_id


def store_outcomes(
    session: Session,
    section: Section,
    result: OpeningResult,
    documents: Path | None = None,
    rejected: Mapping[str, str] | None = None,
    confirmations: Mapping[str, BidConfirmation] | None = None,
) -> None:
    """One opened_bid row per bid and its hall event: 唱标 (announcement) or the failure and its cause.

    With `documents` (the folder the opening wrote them to), each document's authoring metadata is kept
    for the regulator's collusion signs; with `confirmations` (`confirmations_at_opening`), the amendments
    each bid stood for."""
    bids = {(bid.bidder.address or "").lower(): bid for bid in session.scalars(
        sa.select(Bid).where(Bid.section_id == section.id))}
    stored_rows: dict[str, OpenedBid] = {}
    for outcome, entry in zip(sorted(result.outcomes, key=lambda o: o.bidder.lower()), result.record["bids"],
                              strict=True):
        bid = bids.get(outcome.bidder.lower())
        document = outcome.document or {}
        confirmation = (confirmations or {}).get(outcome.bidder.lower())
        row = OpenedBid(
            section_id=section.id, bid_id=bid.id if bid else None, bidder_id=bid.bidder_id if bid else None,
            bidder_address=outcome.bidder.lower(), commitment="0x" + outcome.commitment.hex(),
            outcome=outcome.kind, cause=outcome.cause.value if outcome.cause else None, detail=outcome.detail,
            announced=json.dumps(outcome.announced, ensure_ascii=False) if outcome.announced is not None else None,
            document_sha256=document.get("sha256"),
            document=json.dumps({"name": document.get("name"), "size": document.get("size"), "metadata": (
                metadata_of(documents / f"{outcome.bidder.lower()}.document") if documents else {})},
                ensure_ascii=False) if outcome.document else None,
            anchored_hash="0x" + entry["anchored_hash"],
            confirmed_amendment=confirmation.confirmed_version - 1 if confirmation else None,
            tender_amendment=confirmation.current_version - 1 if confirmation else None,
        )
        session.add(row)
        stored_rows[row.bidder_address] = row
        fields = {"bidder": bid.bidder.name if bid else outcome.bidder, "address": outcome.bidder.lower(),
                  "outcome": outcome.kind, "outcome_zh": entry["outcome_zh"], "anchored_hash": row.anchored_hash,
                  **confirmation_fields(row.confirmed_amendment, row.tender_amendment)}
        if outcome.cause is None:
            emit(session, section.id, "announcement", fields | {
                "announced": outcome.announced, "document_sha256": row.document_sha256})
        else:
            emit(session, section.id, "bid_failed", fields | {
                "cause": outcome.cause.value, "cause_zh": CAUSE_LABELS.get(outcome.cause.value, outcome.cause.value),
                "bidder_caused": outcome.cause.bidder_caused, "detail": outcome.detail})
    for address, refusal in (rejected or {}).items():
        stored = stored_rows.get(address)
        if stored is None or stored.outcome != "opened":
            continue
        stored.outcome, stored.cause, stored.detail = "cover_rejected", "cover_rejected", refusal
        bid = bids.get(address)
        emit(session, section.id, "bid_failed", {
            "bidder": bid.bidder.name if bid else address, "address": address, "outcome": "cover_rejected",
            "outcome_zh": "投标保证金无效", "anchored_hash": stored.anchored_hash, "cause": "cover_rejected",
            "cause_zh": f"投标保证金（保函或现金）揭示时被链上拒绝：{refusal}", "bidder_caused": True,
            "detail": refusal, **confirmation_fields(stored.confirmed_amendment, stored.tender_amendment)})
    for faulty in result.faulty_shares:
        emit(session, section.id, "faulty_share", {"witness_index": faulty.witness_index,
                                                   "commitment": "0x" + faulty.commitment.hex(),
                                                   "reason": faulty.reason})


def enqueue_outcomes(
    session: Session, section: Section, data: SectionPublicData, result: OpeningResult,
    rejected: Mapping[str, str] | None = None,
) -> None:
    outcomes = [[o.bidder, int(o.status), "0x" + o.hash.hex()]
                for o in onchain_outcomes(data.section_id, result, list(rejected or {}))]
    for start in range(0, len(outcomes), OUTCOMES_PER_TRANSACTION):
        enqueue(session, section.tender.agency_id, "record_outcomes", f"record_outcomes:{section.chain_id}:{start}",
                {"section_id": section.chain_id, "outcomes": outcomes[start:start + OUTCOMES_PER_TRANSACTION]})


def enqueue_close(session: Session, section: Section, opening: SectionOpening, result: OpeningResult) -> None:
    opening.stage = "closing"
    opening.opened_at = int(result.record["opened_at"])
    opening.record = result.record_bytes.decode("utf-8")
    opening.record_hash = "0x" + result.record_hash.hex()
    enqueue(session, section.tender.agency_id, "close_opening", f"close_opening:{section.chain_id}",
            {"section_id": section.chain_id, "record_hash": opening.record_hash})
    emit(session, section.id, "record", {"record_hash": opening.record_hash, "counts": result.record["counts"]})


# ---------------------------------------------------------------- 3.-5. after the record


def settle_closed_sections(session: Session, gateway: ChainGateway, _folder: Path) -> bool:
    closing = session.scalars(sa.select(SectionOpening).where(
        SectionOpening.stage == "closing", SectionOpening.close_tx.is_not(None)).limit(BATCH)).all()
    if not closing:
        return False
    _, deployment = gateway.require()
    chain_now = gateway.now()
    for opening in closing:
        section = session.get_one(Section, opening.section_id)
        on_chain = deployment.tenders.section(bytes.fromhex(section.chain_id[2:]))
        opening.result = "failed_tender" if on_chain.status == SectionStatus.FAILED_TENDER else "opened"
        opening.stage = "closed"
        opening.window_ends_at = chain_now + opening.response_window
        emit(session, section.id, "closed", {
            "result": opening.result, "record_hash": opening.record_hash, "tx": opening.close_tx,
            "block": opening.close_block, "valid_bids": on_chain.opened_bids, "min_valid_bids": on_chain.min_valid_bids,
            "window_ends_at": opening.window_ends_at})
        session.commit()
    return True


def number_objections(session: Session, gateway: ChainGateway, _folder: Path) -> bool:
    waiting = session.scalars(sa.select(OpeningResponse).where(
        OpeningResponse.status == "anchored", OpeningResponse.objection_number.is_(None)).limit(BATCH)).all()
    if not waiting:
        return False
    chain, _ = gateway.require()
    for response in waiting:
        assert response.chain_tx is not None
        receipt = chain.w3.eth.get_transaction_receipt(response.chain_tx)  # type: ignore[arg-type]
        raised = [e for e in chain.decode_logs(receipt["logs"]) if e.name == "ObjectionRaised"]
        response.objection_number = int(raised[0].args["objectionId"])
        emit(session, response.section_id, "objection_numbered", {"response_id": response.id,
                                                                   "number": response.objection_number})
        session.commit()
    return True


def verify_attestations(session: Session, gateway: ChainGateway, folder: Path) -> bool:
    asked = session.scalars(sa.select(OpeningAttestation).where(OpeningAttestation.status == "verifying")
                            .limit(BATCH)).all()
    for attestation in asked:
        section = session.get_one(Section, attestation.section_id)
        opening = session.get_one(SectionOpening, section.id)
        _, deployment = gateway.require()
        data = read_public_data(deployment.tenders, bytes.fromhex(section.chain_id[2:]))
        anchored = deployment.tenders.section(data.section_id).opening_record_hash
        envelopes = {e.bidder: e.path for e in sealed_envelopes(session, section, folder)}
        try:
            verify_opening(data, _anchored_batches(session, section), envelopes,
                           (opening.record or "").encode("utf-8"), anchored)
        except OpeningMismatch as mismatch:
            attestation.status, attestation.detail = "mismatch", str(mismatch)
            emit(session, section.id, "attestation", {"witness": attestation.witness.name, "status": "mismatch",
                                                      "detail": attestation.detail})
        else:
            attestation.status = "attesting"
            attestation.detail = "按公开数据重新解密计算，开标记录与链上哈希一致"
            # One attestation row per witness guards against doubles; a refused one may be asked again.
            enqueue(session, attestation.witness_id, "attest_opening",
                    f"attest_opening:{section.chain_id}:{attestation.witness_id}:{uuid.uuid4().hex}",
                    {"section_id": section.chain_id, "record_hash": opening.record_hash})
            emit(session, section.id, "attestation", {"witness": attestation.witness.name, "status": "attesting",
                                                      "detail": attestation.detail})
        session.commit()
    return bool(asked)
