"""The regulator dashboard (智慧监管): every tender and section with its opening state, early-access
attempts anchored on chain, and collusion signals between the bidders of a section, each alert with
links to its evidence. Regulators and admins only."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, current_app, render_template, url_for
from flask.typing import ResponseReturnValue

from bidding_app import explorer, oversight
from bidding_app.accounts import requires
from bidding_app.db import db, get_or_not_found
from bidding_app.models import Bid, BidUpload, BidUploadOrigin, Organisation, Section, Tender
from bidding_app.web import wants_json
from contracts.records import Role

bp = Blueprint("regulator", __name__, url_prefix="/regulator")

REGULATOR_ROLES = (Role.REGULATOR, Role.ADMIN)
OVERVIEW_LIMIT = 200
GUARANTEES_PAGE = "/regulator/guarantees"  # the guarantee supervision page (built with the guarantee pages)


def evidence_url(evidence: oversight.Evidence, section_id: int) -> str | None:
    """Where a person checks an alert's evidence."""
    if evidence.kind == "upload":
        return url_for("regulator.upload", upload_id=int(evidence.ref))
    if evidence.kind == "bid":
        return url_for("regulator.section", section_id=section_id, _anchor=f"bid-{evidence.ref}")
    if evidence.kind == "tx":
        return url_for("witness.proof", tx_hash=evidence.ref)
    if evidence.kind == "guarantee":
        return f"{GUARANTEES_PAGE}?number={evidence.ref}"
    return None


def alert_json(alert: oversight.SupervisionAlert, names: dict[int, str]) -> dict[str, Any]:
    return {
        "id": alert.id,
        "kind": alert.kind,
        "label": alert.label,
        "section_id": alert.section_id,
        "bidders": [{"id": b, "name": names.get(b, "")} for b in alert.bidder_org_ids],
        "detail": alert.detail,
        "evidence": [{"kind": e.kind, "ref": e.ref, "label": e.label, "url": evidence_url(e, alert.section_id)}
                     for e in alert.evidence],
    }


def organisation_names() -> dict[int, str]:
    return {organisation_id: name for organisation_id, name in db.session.execute(
        sa.select(Organisation.id, Organisation.name))}


@bp.get("")
@requires(*REGULATOR_ROLES)
def index() -> ResponseReturnValue:
    _, deployment = explorer.chain_link()
    tenders = db.session.scalars(sa.select(Tender).order_by(Tender.id.desc()).limit(OVERVIEW_LIMIT)).all()
    sections = [s for t in tenders for s in t.sections]
    alerts = oversight.collusion_alerts(db.session, [s.id for s in sections], oversight.providers(current_app))
    states = {}
    for section in sections:
        if section.chain_tx:
            chain_id = bytes.fromhex(section.chain_id[2:])
            state = deployment.tenders.section(chain_id)
            states[section.id] = {"status": explorer.STATUS_LABELS[state.status], "state": state,
                                  "early_access": deployment.tenders.early_access_attempts(chain_id)}
    return render_template("regulator/index.html", tenders=tenders, states=states, alerts=alerts)


@bp.get("/alerts")
@requires(*REGULATOR_ROLES)
def alerts() -> ResponseReturnValue:
    """Every collusion alert (from the platform's records; early-access alerts are on each section's page)."""
    section_ids = list(db.session.scalars(sa.select(Section.id)))
    found = oversight.collusion_alerts(db.session, section_ids, oversight.providers(current_app))
    flat = [alert for section_id in sorted(found) for alert in found[section_id]]
    names = organisation_names()
    if wants_json():
        return {"alerts": [alert_json(alert, names) for alert in flat]}
    return render_template("regulator/alerts.html", alerts=flat, names=names, evidence_url=evidence_url)


@bp.get("/sections/<int:section_id>")
@requires(*REGULATOR_ROLES)
def section(section_id: int) -> ResponseReturnValue:
    _, deployment = explorer.chain_link()
    found = get_or_not_found(db.session, Section, section_id, "未找到该标段")
    history: list[explorer.HistoryItem] = []
    state = None
    if found.chain_tx:
        history = explorer.section_history(deployment, found.tender.chain_id, found.chain_id,
                                           found.tender.chain_block or 0)
        state = deployment.tenders.section(bytes.fromhex(found.chain_id[2:]))
    attempts = explorer.early_access_attempts(history)
    alerts = (oversight.early_access_alerts(found.id, attempts)
              + oversight.collusion_alerts(db.session, [found.id], oversight.providers(current_app)).get(found.id, []))
    bids = db.session.scalars(sa.select(Bid).where(Bid.section_id == found.id).order_by(Bid.id)).all()
    origins = {o.upload_id: o for o in db.session.scalars(
        sa.select(BidUploadOrigin).join(BidUpload).join(Bid).where(Bid.section_id == found.id))}
    names = organisation_names()
    if wants_json():
        return {"section_id": found.id, "alerts": [alert_json(alert, names) for alert in alerts],
                "early_access": [{"tx": a.tx_hash, "block": a.block_number, **dict(a.args)} for a in attempts]}
    return render_template("regulator/section.html", section=found, state=state,
                           status=explorer.STATUS_LABELS[state.status] if state else "未上链", attempts=attempts,
                           alerts=alerts, bids=bids, origins=origins, names=names, evidence_url=evidence_url)


@bp.get("/uploads/<int:upload_id>")
@requires(*REGULATOR_ROLES)
def upload(upload_id: int) -> ResponseReturnValue:
    """One bid upload as evidence: who, when, commitment, and where it came from."""
    record = get_or_not_found(db.session, BidUpload, upload_id, "未找到该投标文件递交记录")
    origin = db.session.get(BidUploadOrigin, upload_id)
    return render_template("regulator/upload.html", upload=record, origin=origin,
                           bidder=db.session.get_one(Organisation, record.bidder_id))
