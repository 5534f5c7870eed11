"""Award (定标) and the contract record: the section's award page, and the same actions in the JSON API."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from bidding_app import awards as service
from bidding_app.accounts import current_user, requires
from bidding_app.blueprints.api import json_body
from bidding_app.chain import gateway
from bidding_app.db import db
from bidding_app.errors import AppError, Forbidden, InvalidInput
from bidding_app.models import Award, Bid, Organisation, Section
from bidding_app.web import outbox_wake
from contracts.records import Role

bp = Blueprint("awards", __name__)
api_bp = Blueprint("awards_api", __name__, url_prefix="/api/v1")


def _visible_section(section_id: int, organisation: Organisation) -> Section:
    """The section, for its agency and tenderer, the regulator and admins, and its bidders (who learn the
    result of a tender they bid in)."""
    section = service.section_for_award(db.session, section_id)
    tender = section.tender
    if organisation.id in (tender.agency_id, tender.tenderer_id) or organisation.roles & (Role.REGULATOR | Role.ADMIN):
        return section
    if organisation.roles & Role.BIDDER and any(b.bidder_id == organisation.id for b in _bids(section)):
        return section
    raise Forbidden("您的机构无权查看该标段的定标")


def _bids(section: Section) -> list[Bid]:
    return list(db.session.scalars(sa.select(Bid).where(Bid.section_id == section.id)))


def award_json(section: Section, found: Award | None) -> dict[str, Any]:
    if found is None:
        return {"section_id": section.id, "status": "none"}
    return {
        "section_id": section.id, "status": found.status, "winner": {"id": found.winner.id, "name": found.winner.name},
        "summary": found.summary, "award_hash": found.award_hash, "error_code": found.error_code,
        "chain_tx": found.chain_tx, "chain_block": found.chain_block,
        "contract": {
            "status": found.contract_status, "note": found.contract_note, "hash": found.contract_hash,
            "error_code": found.contract_error_code, "chain_tx": found.contract_tx, "chain_block": found.contract_block,
        },
    }


@bp.route("/sections/<int:section_id>/award", methods=["GET", "POST"])
@requires()
def page(section_id: int) -> ResponseReturnValue:
    organisation = current_user().organisation
    section = _visible_section(section_id, organisation)
    error: AppError | None = None
    if request.method == "POST":
        try:
            if request.form.get("step") == "contract":
                service.record_contract(db.session, organisation, section, request.form.get("outcome"),
                                        request.form.get("note"))
            elif request.form.get("step") == "award":
                service.award(db.session, gateway(), organisation, section, request.form.get("winner_id"),
                              request.form.get("summary"))
            else:
                raise InvalidInput("未知的操作", field="step")
            outbox_wake()
            return redirect(url_for("awards.page", section_id=section.id))
        except AppError as failure:
            db.session.rollback()
            error = failure
    found = service.award_of(db.session, section)
    is_agency = section.tender.agency_id == organisation.id
    candidates: list[Organisation] = []
    if is_agency and (found is None or found.status == "failed"):
        _, deployment = gateway().require()
        candidates = service.candidates(db.session, deployment, section)
    body = render_template(
        "awards/section.html", section=section, award=found, candidates=candidates, is_agency=is_agency,
        is_tenderer=section.tender.tenderer_id == organisation.id, error=error, form=request.form,
    )
    return body, (error.status if error else 200)


@api_bp.get("/sections/<int:section_id>/award")
@requires()
def show(section_id: int) -> ResponseReturnValue:
    section = _visible_section(section_id, current_user().organisation)
    return award_json(section, service.award_of(db.session, section))


@api_bp.post("/sections/<int:section_id>/award")
@requires(Role.AGENCY)
def create(section_id: int) -> ResponseReturnValue:
    section, body = service.section_for_award(db.session, section_id), json_body()
    found = service.award(db.session, gateway(), current_user().organisation, section, body.get("winner_id"),
                          body.get("summary"))
    outbox_wake()
    return award_json(section, found), 202


@api_bp.post("/sections/<int:section_id>/contract")
@requires(Role.TENDERER)
def contract(section_id: int) -> ResponseReturnValue:
    section, body = service.section_for_award(db.session, section_id), json_body()
    found = service.record_contract(db.session, current_user().organisation, section, body.get("outcome"),
                                    body.get("note"))
    outbox_wake()
    return award_json(section, found), 202
