"""The online opening hall: the live page, its event stream (SSE), the record (PDF and JSON), and what
participants hand in: witnesses' share batches and attestation requests, bidders' confirmations and
objections, the agency's answers. The same actions under `/api/v1` for programs (token auth)."""

from __future__ import annotations

import json
import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from bidding_app import hall as service
from bidding_app.accounts import current_user, requires
from bidding_app.bids import bid_of
from bidding_app.blueprints.api import json_body
from bidding_app.chain import gateway
from bidding_app.db import db
from bidding_app.errors import AppError, InvalidInput, NotFound
from bidding_app.hall_events import events_after, sse_message
from bidding_app.hall_stream import END_OF_STREAM, HEARTBEAT_SECONDS, current_presence, hub
from bidding_app.models import (
    HallEvent,
    OpenedBid,
    OpeningAttestation,
    OpeningResponse,
    Organisation,
    Registration,
    Section,
    SectionOpening,
    ShareBatchUpload,
)
from bidding_app.record_pdf import RecordContext, render_record
from bidding_app.web import outbox_wake
from contracts.records import Role

bp = Blueprint("hall", __name__)
api_bp = Blueprint("hall_api", __name__, url_prefix="/api/v1")

PROOF_URL = "/witness/proofs/{tx}"  # the witness portal's proof page of a transaction


def _upload_folder() -> Path:
    return Path(current_app.config["UPLOAD_FOLDER"])


def _section() -> Section:
    section_id = request.view_args["section_id"] if request.view_args else 0
    return service.hall_section(db.session, current_user().organisation, int(section_id))


def opening_state(section: Section) -> dict[str, Any]:
    """The hall as it stands (for the API and the page's first render)."""
    opening = db.session.get(SectionOpening, section.id)
    batches = db.session.scalars(sa.select(ShareBatchUpload).where(ShareBatchUpload.section_id == section.id)
                                 .order_by(ShareBatchUpload.witness_index)).all()
    opened = db.session.scalars(sa.select(OpenedBid).where(OpenedBid.section_id == section.id)
                                .order_by(OpenedBid.bidder_address)).all()
    responses = db.session.scalars(sa.select(OpeningResponse).where(OpeningResponse.section_id == section.id)
                                   .order_by(OpeningResponse.id)).all()
    attestations = db.session.scalars(sa.select(OpeningAttestation)
                                      .where(OpeningAttestation.section_id == section.id)).all()
    return {
        "section_id": section.id, "chain_id": section.chain_id, "opening_time": section.opening_time,
        "witness_quorum": section.witness_quorum, "witnesses": len(section.witnesses),
        "min_valid_bids": section.min_valid_bids,
        "stage": opening.stage if opening else "waiting",
        "result": opening.result if opening else None,
        "record_hash": opening.record_hash if opening else None,
        "close_tx": opening.close_tx if opening else None, "close_block": opening.close_block if opening else None,
        # The section's window until the hall starts; then the one the hall took (they are the same).
        "response_window": opening.response_window if opening else section.response_window,
        "window_ends_at": opening.window_ends_at if opening else None,
        "batches": [{"witness": b.witness.name, "witness_index": b.witness_index, "status": b.status,
                     "digest": b.digest, "tx": b.chain_tx, "block": b.chain_block, "error": b.error_code}
                    for b in batches],
        "bids": [{"bidder": b.bidder.name if b.bidder else b.bidder_address, "address": b.bidder_address,
                  "outcome": b.outcome, "cause": b.cause, "detail": b.detail,
                  "announced": json.loads(b.announced) if b.announced else None,
                  "document_sha256": b.document_sha256, "anchored_hash": b.anchored_hash,
                  **service.confirmation_fields(b.confirmed_amendment, b.tender_amendment)} for b in opened],
        "responses": [{"id": r.id, "bidder": r.bidder.name, "kind": r.kind, "text": r.text,
                       "text_hash": r.text_hash, "status": r.status, "tx": r.chain_tx, "block": r.chain_block,
                       "number": r.objection_number, "answer": r.answer, "answer_status": r.answer_status,
                       "answer_tx": r.answer_tx, "answer_block": r.answer_block} for r in responses],
        "attestations": [{"witness": a.witness.name, "status": a.status, "detail": a.detail, "tx": a.chain_tx,
                          "block": a.chain_block} for a in attestations],
        "refused_writes": [{"action": e.action, "error": e.error_code}
                           for e in service.refused_opening_writes(db.session, section)],
        # From the rows every worker's stream reads, so the first render and the live updates agree.
        "presence": current_presence(current_app, db.session, section.id).as_json(),
    }


# ---------------------------------------------------------------- the live page and its stream


@bp.get("/sections/<int:section_id>/hall")
@requires()
def page(section_id: int) -> ResponseReturnValue:
    section = _section()
    organisation = current_user().organisation
    state = opening_state(section)
    is_bidder = service.is_bidder_of(db.session, organisation, section)
    return render_template(
        "hall/hall.html", section=section, tender=section.tender, state=state,
        chain_now=gateway().now(), proof_url=PROOF_URL,
        is_witness=service.is_witness_of(db.session, organisation, section),
        is_bidder=is_bidder,
        is_agency=section.tender.agency_id == organisation.id,
        bidder_names=_bidder_names(section),
        refused_writes=state["refused_writes"] if section.tender.agency_id == organisation.id else [],
        own_bid=bid_of(db.session, organisation, section) if is_bidder else None,  # only ever one's own
    )


def _bidder_names(section: Section) -> dict[int, str]:
    rows = db.session.execute(sa.select(Organisation.id, Organisation.name).join(
        Registration, Registration.bidder_id == Organisation.id).where(Registration.section_id == section.id))
    return {row.id: row.name for row in rows}


def _last_event_id() -> int:
    raw = request.headers.get("Last-Event-ID") or request.args.get("after") or "0"
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput("Last-Event-ID 必须是事件序号", field="Last-Event-ID") from None
    if value < 0:
        raise InvalidInput("Last-Event-ID 必须是事件序号", field="Last-Event-ID")
    return value


def event_stream() -> ResponseReturnValue:
    """SSE: the events after Last-Event-ID from the database, then live ones from the section's poller."""
    section = _section()
    organisation = current_user().organisation
    after = _last_event_id()
    is_bidder = service.is_bidder_of(db.session, organisation, section)
    section_id, organisation_id = section.id, organisation.id
    current = db.session.scalar(sa.select(sa.func.max(HallEvent.seq)).where(HallEvent.section_id == section_id))
    # One pooled connection at a time per request: subscribing writes the presence row on a session of its
    # own, and a burst of viewers (the opening, a worker's restart) must not each hold two.
    db.session.close()
    halls = hub(current_app._get_current_object())  # type: ignore[attr-defined]
    subscriber = halls.subscribe(section_id, organisation_id, is_bidder, current or 0)
    try:
        backlog = [(event.seq, sse_message(event)) for event in events_after(db.session, section_id, after, 100_000)]
    except Exception:
        halls.unsubscribe(subscriber)
        raise
    db.session.close()  # the stream holds no database connection: the section's poller reads for everyone

    def generate() -> Iterator[bytes]:
        sent = after
        try:
            yield b"retry: 2000\n\n"
            for number, message in backlog:
                sent = number
                yield message
            while True:
                try:
                    item = subscriber.messages.get(timeout=HEARTBEAT_SECONDS)
                except queue.Empty:
                    yield b": keep-alive\n\n"
                    continue
                if item is END_OF_STREAM:
                    return  # the worker is stopping; the browser reconnects with its Last-Event-ID
                seq, live = item
                if seq is not None:
                    if seq <= sent:
                        continue  # already sent from the backlog
                    sent = seq
                yield live
        finally:
            halls.unsubscribe(subscriber)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return Response(generate(), mimetype="text/event-stream", headers=headers)


@bp.get("/sections/<int:section_id>/hall/events")
@requires()
def events(section_id: int) -> ResponseReturnValue:
    return event_stream()


@api_bp.get("/sections/<int:section_id>/hall/events")
@requires()
def api_events(section_id: int) -> ResponseReturnValue:
    return event_stream()


@api_bp.get("/sections/<int:section_id>/hall")
@requires()
def api_state(section_id: int) -> ResponseReturnValue:
    return opening_state(_section())


# ---------------------------------------------------------------- the record


def _record_context(section: Section, opening: SectionOpening) -> RecordContext:
    addressed = {(o.address or "").lower(): o.name for o in db.session.scalars(
        sa.select(Organisation).where(Organisation.address.is_not(None)))}
    return RecordContext(
        tender_title=section.tender.title, tender_number=section.tender.number, section_title=section.title,
        agency=section.tender.agency.name, tenderer=section.tender.tenderer.name,
        bidder_names=addressed, witness_names=addressed, record_hash=opening.record_hash or "",
        close_tx=opening.close_tx, close_block=opening.close_block, result=opening.result,
        min_valid_bids=section.min_valid_bids,
    )


def _opening_with_record(section: Section) -> SectionOpening:
    opening = db.session.get(SectionOpening, section.id)
    if opening is None or opening.record is None:
        raise NotFound("开标记录尚未生成")
    return opening


@bp.get("/sections/<int:section_id>/hall/record.pdf")
@requires()
def record_pdf(section_id: int) -> ResponseReturnValue:
    section = _section()
    opening = _opening_with_record(section)
    pdf = render_record(opening.record or "", _record_context(section, opening))
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f"attachment; filename=opening-record-{section.id}.pdf",
        "X-Record-Hash": opening.record_hash or ""})


@bp.get("/sections/<int:section_id>/hall/record.json")
@requires()
def record_json(section_id: int) -> ResponseReturnValue:
    """The canonical record byte for byte: its SHA-256 is the anchored record hash."""
    opening = _opening_with_record(_section())
    return Response(opening.record or "", mimetype="application/json")


# ---------------------------------------------------------------- what participants hand in


def _done(section: Section, api: bool, body: dict[str, Any], status: int = 201) -> ResponseReturnValue:
    db.session.commit()
    outbox_wake()
    if api:
        return body, status
    return redirect(url_for("hall.page", section_id=section.id))


def _share_batch(api: bool) -> ResponseReturnValue:
    section = _section()
    if api:
        raw = request.get_data(cache=False)
    else:
        upload = request.files.get("batch")
        if upload is None or not upload.filename:
            raise InvalidInput("请选择解密份额文件", field="batch")
        raw = upload.stream.read(service.MAX_SHARE_BATCH_BYTES + 1)
    try:
        row = service.accept_share_batch(db.session, gateway(), section, current_user().organisation, raw,
                                         _upload_folder())
    except AppError:
        db.session.rollback()
        raise
    return _done(section, api, {"id": row.id, "digest": row.digest, "status": row.status,
                                "witness_index": row.witness_index, "shares": row.share_count})


@bp.post("/sections/<int:section_id>/share-batches")
@requires(Role.WITNESS)
def share_batch(section_id: int) -> ResponseReturnValue:
    return _share_batch(api=False)


@api_bp.post("/sections/<int:section_id>/share-batches")
@requires(Role.WITNESS)
def api_share_batch(section_id: int) -> ResponseReturnValue:
    return _share_batch(api=True)


def _fields(api: bool) -> dict[str, Any]:
    return json_body() if api else dict(request.form)


def _respond(api: bool) -> ResponseReturnValue:
    section = _section()
    fields = _fields(api)
    try:
        row = service.respond(db.session, gateway(), section, current_user().organisation,
                              str(fields.get("kind", "")), fields.get("text"))
    except AppError:
        db.session.rollback()
        raise
    return _done(section, api, {"id": row.id, "kind": row.kind, "text_hash": row.text_hash, "status": row.status})


@bp.post("/sections/<int:section_id>/responses")
@requires(Role.BIDDER)
def respond(section_id: int) -> ResponseReturnValue:
    return _respond(api=False)


@api_bp.post("/sections/<int:section_id>/responses")
@requires(Role.BIDDER)
def api_respond(section_id: int) -> ResponseReturnValue:
    return _respond(api=True)


def _answer(api: bool, response_id: int) -> ResponseReturnValue:
    section = _section()
    fields = _fields(api)
    try:
        row = service.answer(db.session, section, current_user().organisation, response_id, fields.get("text"))
    except AppError:
        db.session.rollback()
        raise
    return _done(section, api, {"id": row.id, "answer_hash": row.answer_hash, "status": row.answer_status})


@bp.post("/sections/<int:section_id>/responses/<int:response_id>/answer")
@requires(Role.AGENCY)
def answer(section_id: int, response_id: int) -> ResponseReturnValue:
    return _answer(False, response_id)


@api_bp.post("/sections/<int:section_id>/responses/<int:response_id>/answer")
@requires(Role.AGENCY)
def api_answer(section_id: int, response_id: int) -> ResponseReturnValue:
    return _answer(True, response_id)


def _attest(api: bool) -> ResponseReturnValue:
    section = _section()
    try:
        row = service.request_attestation(db.session, section, current_user().organisation)
    except AppError:
        db.session.rollback()
        raise
    return _done(section, api, {"status": row.status}, 202)


@bp.post("/sections/<int:section_id>/attestation")
@requires(Role.WITNESS)
def attest(section_id: int) -> ResponseReturnValue:
    return _attest(False)


@api_bp.post("/sections/<int:section_id>/attestation")
@requires(Role.WITNESS)
def api_attest(section_id: int) -> ResponseReturnValue:
    return _attest(True)


def _retry_writes(api: bool) -> ResponseReturnValue:
    section = _section()
    agency = current_user().organisation
    try:
        retries = service.retry_opening_writes(db.session, section, agency)
        db.session.commit()
    except sa.exc.IntegrityError:
        # A concurrent submission queued the same retries first: answer with those (and keep any retry
        # this second look still queues, if those have been refused again meanwhile).
        db.session.rollback()
        retries = service.retry_opening_writes(db.session, section, agency)
        db.session.commit()
    except AppError:
        db.session.rollback()
        raise
    return _done(section, api, {"retries": [{"action": e.action, "status": e.status} for e in retries]}, 202)


@bp.post("/sections/<int:section_id>/hall/retry")
@requires(Role.AGENCY)
def retry_writes(section_id: int) -> ResponseReturnValue:
    return _retry_writes(False)


@api_bp.post("/sections/<int:section_id>/hall/retry")
@requires(Role.AGENCY)
def api_retry_writes(section_id: int) -> ResponseReturnValue:
    return _retry_writes(True)
