"""The JSON API (`/api/v1`): the same actions as the pages, for programs. Bearer-token auth; errors are
`{"error": {"code", "message", "field"?}}` with a fitting HTTP status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, current_app, request
from flask.typing import ResponseReturnValue

from bidding_app import amendments
from bidding_app import bids as bid_service
from bidding_app import tenders as tender_service
from bidding_app.accounts import authenticate, current_user, issue_api_token, requires, role_labels
from bidding_app.blueprints.auth import login_policy
from bidding_app.blueprints.bids import receive_bid
from bidding_app.blueprints.tenders import attach_uploaded_file
from bidding_app.chain import gateway
from bidding_app.db import db
from bidding_app.errors import InvalidInput
from bidding_app.models import Bid, Organisation, OutboxEntry, Section, Tender
from bidding_app.web import outbox_wake
from contracts.records import Role

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput("请求体必须是 JSON 对象")
    return body


def section_json(section: Section, unconfirmed: Mapping[int, int] | None = None) -> dict[str, Any]:
    """`unconfirmed` (section id → count) for the tender's own agency only: its live bids not confirmed for
    the latest amendment."""
    found = {
        "id": section.id, "chain_id": section.chain_id, "title": section.title,
        "opening_time": section.opening_time, "bid_bond": section.bid_bond,
        "bid_validity_period": section.bid_validity_period, "min_valid_bids": section.min_valid_bids,
        "witness_quorum": section.witness_quorum,
        "witnesses": [{"id": w.organisation.id, "name": w.organisation.name} for w in section.witnesses],
        "opening_key": section.opening_key, "chain_tx": section.chain_tx, "chain_block": section.chain_block,
        "response_window": section.response_window,
    }
    if unconfirmed is not None:
        found["unconfirmed_bids"] = unconfirmed.get(section.id, 0)
    return found


def tender_json(tender: Tender) -> dict[str, Any]:
    """The tender as any user sees it; its agency also gets each section's count of unconfirmed bids."""
    unconfirmed = None
    if tender.agency_id == current_user().organisation_id:
        unconfirmed = amendments.unconfirmed_bid_counts(db.session, [s.id for s in tender.sections])
    return {
        "id": tender.id, "number": tender.number, "chain_id": tender.chain_id, "title": tender.title,
        "description": tender.description, "version": tender.version, "details_hash": tender.details_hash,
        "agency": tender.agency.name, "tenderer": tender.tenderer.name,
        "chain_tx": tender.chain_tx, "chain_block": tender.chain_block,
        "sections": [section_json(s, unconfirmed) for s in tender.sections],
        "attachments": [{"id": a.id, "name": a.original_name, "size": a.size, "sha256": a.sha256}
                        for a in tender.attachments],
        "amendments": [{"version": a.version, "summary": a.summary, "details_hash": a.details_hash,
                        "chain_tx": a.chain_tx, "chain_block": a.chain_block, "chain_error": a.chain_error}
                       for a in tender.amendments],
    }


def bid_json(bid: Bid) -> dict[str, Any]:
    """One's own bid. `confirmed_amendment` / `tender_amendment` count amendments of the tender documents
    (the bid stands for the former, the latest is the latter); `confirmed` is false while a placed bid is
    not confirmed for the latest, and `needs_reconfirmation` while it still can be (a live bid)."""
    latest = bid.uploads[-1] if bid.uploads else None
    standing = amendments.standing_of(db.session, bid)
    return {
        "id": bid.id, "section_id": bid.section_id, "status": bid.status, "cover_kind": bid.cover_kind,
        "cover_ref": bid.cover_ref, "commitment": bid.commitment,
        "latest_upload": None if latest is None else {"commitment": latest.commitment, "size": latest.size},
        "chain_tx": bid.chain_tx, "chain_block": bid.chain_block, "error_code": bid.error_code,
        "opening_time": bid.section.opening_time,
        "confirmed": standing.confirmed, "confirmed_amendment": standing.confirmed_amendment,
        "tender_amendment": standing.tender_amendment, "amended_at": standing.amended_at,
        "amendment_anchored": standing.amendment_anchored,
        "reconfirmation": None if standing.reconfirmation is None else {
            "status": standing.reconfirmation, "error_code": standing.reconfirmation_error},
        "needs_reconfirmation": standing.needs_reconfirmation,
    }


@bp.post("/token")
def token() -> ResponseReturnValue:
    body = json_body()
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
        raise InvalidInput("请提供用户名和密码")
    user = authenticate(db.session, username, password, request.remote_addr or "", login_policy())
    return {"token": issue_api_token(db.session, user)}, 201


@bp.get("/me")
@requires()
def me() -> ResponseReturnValue:
    user = current_user()
    organisation = user.organisation
    return {"username": user.username, "organisation": {"id": organisation.id, "name": organisation.name,
            "roles": role_labels(organisation.roles), "address": organisation.address}}


@bp.get("/organisations")
@requires()
def organisations() -> ResponseReturnValue:
    """The members, so that a program can name a tenderer and witnesses when it publishes."""
    found = db.session.scalars(sa.select(Organisation).order_by(Organisation.id)).all()
    return {"organisations": [{"id": o.id, "name": o.name, "identifier": o.identifier, "address": o.address,
                               "roles": [r.name.lower() for r in Role if o.roles & r and r.name]} for o in found]}


@bp.get("/tenders")
@requires()
def tenders() -> ResponseReturnValue:
    found = db.session.scalars(sa.select(Tender).order_by(Tender.id.desc())).all()
    return {"tenders": [tender_json(t) for t in found]}


@bp.post("/tenders")
@requires(Role.AGENCY)
def publish() -> ResponseReturnValue:
    body = json_body()
    key = bid_service.parse_submission_key(body.get("submission_key"))
    draft = tender_service.parse_draft(body, response_window=int(current_app.config["HALL_RESPONSE_WINDOW"]))
    tender, created = tender_service.publish(db.session, current_user().organisation, draft, key, gateway().now())
    db.session.commit()
    outbox_wake()
    return tender_json(tender), 201 if created else 200


@bp.get("/tenders/<int:tender_id>")
@requires()
def tender(tender_id: int) -> ResponseReturnValue:
    return tender_json(tender_service.tender_of(db.session, tender_id))


@bp.post("/tenders/<int:tender_id>/amendments")
@requires(Role.AGENCY)
def amend(tender_id: int) -> ResponseReturnValue:
    body = json_body()
    found = tender_service.owned_tender(db.session, current_user().organisation, tender_id)
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidInput("项目概况格式不正确", field="description")
    summary = body.get("summary")
    amendment = tender_service.amend(db.session, found, summary if isinstance(summary, str) else "",
                                     description, gateway().now())
    outbox_wake()
    return {"version": amendment.version, "details_hash": amendment.details_hash}, 201


@bp.post("/tenders/<int:tender_id>/attachments")
@requires(Role.AGENCY)
def attach(tender_id: int) -> ResponseReturnValue:
    attachment = attach_uploaded_file(tender_id)
    return {"id": attachment.id, "name": attachment.original_name, "sha256": attachment.sha256}, 201


@bp.post("/sections/<int:section_id>/registration")
@requires(Role.BIDDER)
def register(section_id: int) -> ResponseReturnValue:
    section = bid_service.section_of(db.session, section_id)
    registration = bid_service.register(db.session, current_user().organisation, section, gateway().now())
    return {"section_id": section.id, "registered_at": registration.created_at}, 201


@bp.route("/sections/<int:section_id>/bid", methods=["POST", "PUT"])
@requires(Role.BIDDER)
def upload(section_id: int) -> ResponseReturnValue:
    return bid_json(receive_bid(section_id)), 201


@bp.get("/bids")
@requires(Role.BIDDER)
def bids() -> ResponseReturnValue:
    """The caller's own bids (never another bidder's), each with where it stands against the amendments."""
    return {"bids": [bid_json(b) for b in bid_service.bids_of(db.session, current_user().organisation)]}


@bp.get("/bids/<int:bid_id>")
@requires(Role.BIDDER)
def bid(bid_id: int) -> ResponseReturnValue:
    return bid_json(bid_service.own_bid(db.session, current_user().organisation, bid_id))


@bp.post("/bids/<int:bid_id>/withdraw")
@requires(Role.BIDDER)
def withdraw(bid_id: int) -> ResponseReturnValue:
    found = bid_service.own_bid(db.session, current_user().organisation, bid_id)
    key = bid_service.parse_submission_key(json_body().get("submission_key"))
    bid_service.withdraw(db.session, found, key, gateway().now())
    outbox_wake()
    return bid_json(found)


@bp.post("/bids/<int:bid_id>/reconfirm")
@requires(Role.BIDDER)
def reconfirm(bid_id: int) -> ResponseReturnValue:
    found = bid_service.own_bid(db.session, current_user().organisation, bid_id)
    confirmed = bid_service.reconfirm(db.session, found, gateway().now())
    outbox_wake()
    return bid_json(confirmed)


@bp.get("/outbox")
@requires(Role.ADMIN, Role.REGULATOR)
def outbox() -> ResponseReturnValue:
    """The newest 500 entries, and how many entries of each action are in each status (all of them)."""
    entries = db.session.scalars(sa.select(OutboxEntry).order_by(OutboxEntry.id.desc()).limit(500)).all()
    counts: dict[str, dict[str, int]] = {}
    for action, status, count in db.session.execute(
            sa.select(OutboxEntry.action, OutboxEntry.status, sa.func.count()).group_by(OutboxEntry.action,
                                                                                        OutboxEntry.status)):
        counts.setdefault(action, {})[status] = int(count)
    return {"entries": [{"id": e.id, "key": e.key, "action": e.action, "status": e.status,
                         "organisation": e.organisation.name, "tx_hash": e.tx_hash, "block": e.block_number,
                         "error_code": e.error_code, "attempts": e.attempts} for e in entries],
            "counts": counts}
