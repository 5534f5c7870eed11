"""Sealed envelopes for the opening (agency and witnesses, from the opening time on), and the
early-access attempts anchored on chain (regulator)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, send_file
from flask.typing import ResponseReturnValue

from bidding_app import envelopes as service
from bidding_app.accounts import current_user, requires
from bidding_app.chain import gateway
from bidding_app.db import db
from bidding_app.errors import NotFound
from bidding_app.models import Section
from contracts.records import Role
from opening.chainio import early_access_log

bp = Blueprint("envelopes", __name__, url_prefix="/api/v1")


def _upload_folder() -> Path:
    return Path(current_app.config["UPLOAD_FOLDER"])


@bp.get("/sections/<int:section_id>/envelopes")
@requires(Role.AGENCY, Role.WITNESS)
def envelopes(section_id: int) -> ResponseReturnValue:
    organisation = current_user().organisation
    section = service.readable_section(db.session, organisation, section_id)
    service.check_opening_time(gateway(), section, organisation)
    return {
        "section_id": section.id,
        "chain_id": section.chain_id,
        "envelopes": [
            {
                "bid_id": e.bid_id,
                "bidder": e.bidder,
                "commitment": e.commitment,
                "size": e.size,
                "url": f"/api/v1/sections/{section.id}/envelopes/{e.bid_id}",
            }
            for e in service.sealed_envelopes(db.session, section, _upload_folder())
        ],
    }


@bp.get("/sections/<int:section_id>/envelopes/<int:bid_id>")
@requires(Role.AGENCY, Role.WITNESS)
def envelope(section_id: int, bid_id: int) -> ResponseReturnValue:
    organisation = current_user().organisation
    section = service.readable_section(db.session, organisation, section_id)
    service.check_opening_time(gateway(), section, organisation)
    found = service.envelope_of(db.session, section, bid_id, _upload_folder())
    return send_file(found.path, mimetype="application/octet-stream", download_name=f"{found.bidder}.jzb")


@bp.get("/sections/<int:section_id>/early-access")
@requires(Role.REGULATOR, Role.ADMIN)
def early_access(section_id: int) -> ResponseReturnValue:
    section = db.session.get(Section, section_id)
    if section is None:
        raise NotFound("没有这个标段")
    _, deployment = gateway().require()
    events = early_access_log(deployment.tenders, bytes.fromhex(section.chain_id[2:]))
    return {
        "section_id": section.id,
        "attempts": [
            {
                "reporter": event.args["reporter"],
                "evidence": "0x" + bytes(event.args["evidenceHash"]).hex(),
                "count": int(event.args["attempts"]),
            }
            for event in events
        ],
    }
