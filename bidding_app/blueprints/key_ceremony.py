"""The key ceremony's relay API (witnesses' DKG software) and its status page."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

from bidding_app import key_ceremony as service
from bidding_app.accounts import current_user, requires
from bidding_app.blueprints.api import json_body
from bidding_app.chain import gateway
from bidding_app.db import db, get_or_not_found
from bidding_app.models import Section
from bidding_app.web import outbox_wake
from contracts.records import Role

bp = Blueprint("key_ceremony", __name__)
api_bp = Blueprint("key_ceremony_api", __name__, url_prefix="/api/v1")
STEPS = {"transport-key": "transport_key", "deal": "deal", "complaints": "complaints"}


def _section(section_id: int) -> Section:
    return get_or_not_found(db.session, Section, section_id, "未找到该标段")


def _ceremony(section_id: int) -> service.Ceremony:
    _, deployment = gateway().require()
    ceremony = service.load(db.session, deployment, _section(section_id))
    service.readable(ceremony, current_user().organisation)
    return ceremony


@api_bp.get("/sections/<int:section_id>/key-ceremony")
@requires()
def show(section_id: int) -> ResponseReturnValue:
    return service.summary(_ceremony(section_id))


@api_bp.post("/sections/<int:section_id>/key-ceremony/<step>")
@requires(Role.WITNESS)
def post(section_id: int, step: str) -> ResponseReturnValue:
    kind = STEPS.get(step)
    section = _section(section_id)
    if kind is None:
        return {"error": {"code": "not_found", "message": "未知的密钥生成步骤"}}, 404
    ceremony = service.post(db.session, gateway(), current_user().organisation, section, kind, json_body())
    outbox_wake()
    return service.summary(ceremony), 201


@api_bp.post("/sections/<int:section_id>/key-ceremony/close")
@requires(Role.AGENCY)
def close(section_id: int) -> ResponseReturnValue:
    ceremony = service.close(db.session, gateway(), current_user().organisation, _section(section_id))
    outbox_wake()
    return service.summary(ceremony), 202


@bp.get("/sections/<int:section_id>/key-ceremony")
@requires()
def page(section_id: int) -> ResponseReturnValue:
    return render_template("key_ceremony/section.html", ceremony=service.summary(_ceremony(section_id)),
                           section=_section(section_id))
