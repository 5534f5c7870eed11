"""Electronic bid guarantees (电子投标保函): pages and `/api/v1` endpoints for bidders, guarantors, the
beneficiary side (tenderer, agency) and the regulator; and the guarantor integration API's wiring.

Each step is one function of `bidding_app.guarantee_desk`; pages and API share them through the
`STEPS` table (who may take a step, and how its fields are read), so the two never disagree.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, current_app, redirect, render_template, request, send_file, url_for
from flask.typing import ResponseReturnValue

from bidding_app import bids
from bidding_app import guarantee_desk as desk
from bidding_app.accounts import current_user, requires
from bidding_app.blueprints.api import json_body
from bidding_app.blueprints.tenders import fen_from_yuan
from bidding_app.chain import ChainGateway, gateway
from bidding_app.db import db
from bidding_app.errors import AppError, Forbidden, InvalidInput, NotFound
from bidding_app.models import GuaranteeApplication, Section, User
from bidding_app.web import csrf, outbox_wake
from contracts.records import ClaimGround, Role

bp = Blueprint("guarantees", __name__)
api = Blueprint("guarantee_api", __name__, url_prefix="/api/v1")

PARTIES = (Role.BIDDER, Role.GUARANTOR, Role.TENDERER, Role.AGENCY)


def _amount(data: Mapping[str, Any], name: str, label: str) -> int:
    """An amount in fen: `<name>_fen` (API, integer) or `<name>_yuan` (forms, text in yuan)."""
    if f"{name}_yuan" in data:
        try:
            return fen_from_yuan(str(data[f"{name}_yuan"]), label)
        except InvalidInput as error:
            raise InvalidInput(error.message, field=f"{name}_yuan") from None
    value = data.get(f"{name}_fen")
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidInput(f"请填写{label}（分，整数）", field=f"{name}_fen")
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"{label}必须是整数（分）", field=f"{name}_fen") from None


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("1", "true", "approve", "yes"))


def _who(user: User) -> str:
    return f"{user.display_name}（{user.username}）"


# ------------------------------------------------------------------ the steps


@dataclass(frozen=True)
class Step:
    roles: tuple[Role, ...]
    parts: tuple[str, ...]  # the caller's part in the application (guarantee_desk.visible_to)
    run: Callable[[GuaranteeApplication, Mapping[str, Any], User], object]


def _underwrite(a: GuaranteeApplication, data: Mapping[str, Any], user: User) -> object:
    return desk.underwrite(db.session, gateway(), a, _who(user), _flag(data.get("approve")), data.get("reason") or "")


def _premium(a: GuaranteeApplication, data: Mapping[str, Any], user: User) -> object:
    return desk.record_premium(db.session, a, _who(user), _amount(data, "paid", "保费金额"),
                               data.get("payer_account") or "", data.get("payment_ref") or "")


def _issue(a: GuaranteeApplication, _data: Mapping[str, Any], _user: User) -> object:
    return desk.issue(db.session, gateway(), a, Path(current_app.config["UPLOAD_FOLDER"]), request.host_url)


def _cancel(a: GuaranteeApplication, data: Mapping[str, Any], user: User) -> object:
    return desk.cancel(db.session, gateway(), a, _who(user), data.get("reason") or "",
                       by_bidder=a.bidder_id == user.organisation_id)


def _release(a: GuaranteeApplication, data: Mapping[str, Any], user: User) -> object:
    return desk.release(db.session, gateway(), a, _who(user), data.get("reason") or "")


def _expire(a: GuaranteeApplication, _data: Mapping[str, Any], user: User) -> object:
    return desk.expire(db.session, gateway(), a, _who(user))


def _claim(a: GuaranteeApplication, data: Mapping[str, Any], user: User) -> object:
    return desk.claim(db.session, gateway(), a, _who(user), data.get("ground"), data.get("evidence"))


def _payout(a: GuaranteeApplication, data: Mapping[str, Any], _user: User) -> object:
    return desk.record_payout(db.session, gateway(), a, _amount(data, "paid", "赔付金额"), data.get("payment_ref"))


GUARANTOR = (Role.GUARANTOR,)
STEPS: dict[str, Step] = {
    "underwrite": Step(GUARANTOR, ("guarantor",), _underwrite),
    "premium": Step(GUARANTOR, ("guarantor",), _premium),
    "issue": Step(GUARANTOR, ("guarantor",), _issue),
    "cancel": Step((Role.BIDDER, Role.GUARANTOR), ("bidder", "guarantor"), _cancel),
    "release": Step(GUARANTOR, ("guarantor",), _release),
    "expire": Step(GUARANTOR, ("guarantor",), _expire),
    "claim": Step((Role.TENDERER, Role.AGENCY), ("beneficiary",), _claim),
    "payout": Step(GUARANTOR, ("guarantor",), _payout),
}


def take_step(application_id: int, name: str, data: Mapping[str, Any]) -> tuple[GuaranteeApplication, str]:
    """Run one step for the current user: role, then visibility, then the caller's part, then the rules."""
    step = STEPS.get(name)
    if step is None:
        raise NotFound("没有该操作")
    user = current_user()
    organisation = user.organisation
    if not any(organisation.roles & role for role in step.roles):
        raise Forbidden()
    application, part = desk.application_for(db.session, organisation, application_id, gateway().now())
    if part not in step.parts:
        raise Forbidden("贵单位不是该操作的当事方")
    step.run(application, data, user)
    outbox_wake()
    return application, part


# ------------------------------------------------------------------ JSON shapes


def application_json(application: GuaranteeApplication, part: str, gw: ChainGateway) -> dict[str, Any]:
    """The application as the caller's part may see it: the guarantor gets the sealed view only."""
    base: dict[str, Any] = {
        "id": application.id, "number": application.number, "guarantee_id": application.guarantee_id,
        "amount": application.amount, "valid_until": application.valid_until, "state": application.state,
        "state_text": desk.STATE_LABELS[application.state], "error_code": application.error_code,
        "section_ref": application.section_ref, "guarantor": application.guarantor.name,
        "premium_due": desk.premium_due(application),
    }
    letter = desk.letter_of(db.session, application)
    if letter is not None:
        base["letter"] = {"letter_hash": letter.letter_hash, "tx_hash": letter.tx_hash, "block": letter.block,
                          "url": url_for("guarantee_api.letter", application_id=application.id)}
    claim = desk.claim_of(db.session, application)
    if claim is not None:
        base["claim"] = {"ground": ClaimGround(claim.ground).name.lower(), "evidence_hash": claim.evidence_hash,
                         "tx_hash": claim.tx_hash, "payout": claim.payout, "payout_tx": claim.payout_tx}
    section = application.section
    if part == "guarantor":
        view = desk.guarantor_view(application, gw.deployment)
        base["applicant"] = application.bidder.name
        base["revealed"] = None if view.revealed is None else {
            "section_id": section.chain_id, "tender": section.tender.title, "section": section.title,
            "tenderer": section.tender.tenderer.name, "opening_tx": view.revealed.opening_tx}
        return base
    base.update({"applicant": application.bidder.name, "section_id": section.id, "tender": section.tender.title,
                 "section": section.title, "beneficiary": section.tender.tenderer.name})
    if part == "bidder":
        base["salt"] = application.salt  # the bidder needs it to rely on the guarantee in its bid
    return base


# ------------------------------------------------------------------ pages


@bp.app_template_global()
def guarantee_covers(section: Section) -> list[GuaranteeApplication]:
    """For the bid form: the current bidder's issued guarantees for this section."""
    user = current_user()
    return desk.guarantees_for_cover(db.session, user.organisation, section)


@bp.route("/sections/<int:section_id>/guarantee", methods=["GET", "POST"])
@requires(Role.BIDDER)
def apply_page(section_id: int) -> ResponseReturnValue:
    section = bids.section_of(db.session, section_id)
    error: AppError | None = None
    if request.method == "POST":
        try:
            amount = _amount(request.form, "amount", "担保金额")
            draft = desk.parse_draft(request.form.to_dict(), amount=amount)
            application, _created = desk.apply(db.session, gateway(), current_user().organisation, section, draft)
            return redirect(url_for("guarantees.detail", application_id=application.id))
        except AppError as refused:
            error = refused
    return render_template("guarantees/apply.html", section=section, guarantors=desk.guarantors(db.session),
                           error=error, form=request.form, min_days=section.bid_validity_period // 86400), (
        error.status if error else 200)


@bp.get("/guarantees")
@requires(*PARTIES)
def index() -> ResponseReturnValue:
    gw = gateway()
    chain_now = gw.now()
    rows = desk.applications_for(db.session, current_user().organisation, chain_now)
    flags = desk.claimable(gw, [row for row, _part in rows], chain_now)
    views = {row.id: desk.guarantor_view(row, gw.deployment) for row, part in rows if part == "guarantor"}
    return render_template("guarantees/list.html", rows=rows, flags=flags, views=views, labels=desk.STATE_LABELS,
                           grounds=desk.GROUND_LABELS)


@bp.get("/guarantees/<int:application_id>")
@requires(*PARTIES)
def detail(application_id: int) -> ResponseReturnValue:
    gw = gateway()
    chain_now = gw.now()
    application, part = desk.application_for(db.session, current_user().organisation, application_id, chain_now)
    view = desk.guarantor_view(application, gw.deployment) if part == "guarantor" else None
    rules = desk.rule_results(gw, application) if part == "guarantor" and application.state == "applied" else []
    underwriting = desk.underwriting_of(db.session, application)
    return render_template(
        "guarantees/detail.html", a=application, part=part, view=view, rules=rules, chain_now=chain_now,
        underwriting=underwriting, rule_refusals=json.loads(underwriting.rule_results) if underwriting else [],
        premium=desk.premium_of(db.session, application), letter=desk.letter_of(db.session, application),
        claim=desk.claim_of(db.session, application), endings=desk.endings_of(db.session, application),
        flag=desk.claimable(gw, [application], chain_now).get(application.id), labels=desk.STATE_LABELS,
        grounds=desk.GROUND_LABELS, premium_due=desk.premium_due(application))


@bp.post("/guarantees/<int:application_id>/<step>")
@requires(*PARTIES)
def step_page(application_id: int, step: str) -> ResponseReturnValue:
    take_step(application_id, step, request.form.to_dict())
    return redirect(url_for("guarantees.detail", application_id=application_id))


def _send_letter(application_id: int) -> ResponseReturnValue:
    application, _part = desk.application_for(db.session, current_user().organisation, application_id,
                                              gateway().now())
    letter = desk.letter_of(db.session, application)
    if letter is None:
        raise NotFound("该保函尚未出具")
    path = desk.letter_path(Path(current_app.config["UPLOAD_FOLDER"]), letter.stored_name)
    return send_file(path, mimetype="application/pdf", as_attachment=True,
                     download_name=f"{application.number}.pdf")


@bp.get("/guarantees/<int:application_id>/letter")
@requires(*PARTIES)
def letter_page(application_id: int) -> ResponseReturnValue:
    return _send_letter(application_id)


def _report_json() -> dict[str, Any]:
    report = desk.supervision_report(db.session, gateway())
    alerts = []
    for alert in report.alerts:
        section = report.sections.get(alert.section_id)
        alerts.append({
            "kind": alert.kind.value, "detail": alert.detail, "section_id": "0x" + alert.section_id.hex(),
            "section": None if section is None else f"{section.tender.title} · {section.title}",
            "section_url": None if section is None else url_for("tenders.detail", tender_id=section.tender_id),
            "numbers": list(alert.numbers), "accounts": list(alert.accounts),
            "evidence": [url_for("guarantee_verification.verify_page", number=n) for n in alert.numbers],
        })
    return {"cash_deposits_freed": report.cash_deposits_freed, "guarantees": report.guarantees, "alerts": alerts}


ALERT_LABELS = {
    "issued_after_deadline": "投标截止后出具保函",
    "below_bond": "担保金额低于投标保证金",
    "beneficiary_not_tenderer": "受益人不是标段的招标人",
    "several_guarantees_for_one_bid": "同一投标多份保函",
    "shared_premium_account": "竞争投标人的保费由同一账户支付",
}


@bp.get("/regulator/guarantees")
@requires(Role.REGULATOR)
def supervision_page() -> ResponseReturnValue:
    return render_template("guarantees/supervision.html", report=_report_json(), labels=ALERT_LABELS)


# ------------------------------------------------------------------ JSON API


@api.post("/sections/<int:section_id>/guarantees")
@requires(Role.BIDDER)
def api_apply(section_id: int) -> ResponseReturnValue:
    section = bids.section_of(db.session, section_id)
    draft = desk.parse_draft(json_body())
    application, created = desk.apply(db.session, gateway(), current_user().organisation, section, draft)
    return application_json(application, "bidder", gateway()), 201 if created else 200


@api.get("/guarantees")
@requires(*PARTIES)
def api_list() -> ResponseReturnValue:
    gw = gateway()
    rows = desk.applications_for(db.session, current_user().organisation, gw.now())
    return {"guarantees": [application_json(row, part, gw) for row, part in rows]}


@api.get("/guarantees/<int:application_id>")
@requires(*PARTIES)
def api_detail(application_id: int) -> ResponseReturnValue:
    gw = gateway()
    chain_now = gw.now()
    application, part = desk.application_for(db.session, current_user().organisation, application_id, chain_now)
    answer = application_json(application, part, gw)
    flag = desk.claimable(gw, [application], chain_now).get(application.id)
    answer["claimable"] = None if flag is None else {"ground": flag.ground.name.lower(), "fact_tx": flag.tx_hash}
    if part == "guarantor" and application.state == "applied":
        answer["rule_refusals"] = desk.rule_results(gw, application)
    return answer


@api.post("/guarantees/<int:application_id>/<step>")
@requires(*PARTIES)
def api_step(application_id: int, step: str) -> ResponseReturnValue:
    application, part = take_step(application_id, step, json_body())
    return application_json(application, part, gateway())


@api.get("/guarantees/<int:application_id>/letter")
@requires(*PARTIES)
def letter(application_id: int) -> ResponseReturnValue:
    return _send_letter(application_id)


@api.get("/regulator/guarantees")
@requires(Role.REGULATOR)
def api_supervision() -> ResponseReturnValue:
    return _report_json()


# ------------------------------------------------------------------ wiring


def register(app: Flask, gw: ChainGateway) -> None:
    """Register the pages and API, and (with a chain) the guarantor integration API on the platform DB."""
    app.register_blueprint(bp)
    app.register_blueprint(api)
    csrf.exempt(api)
    if gw.deployment is None:
        return
    from bidding_app.guarantor_link import PlatformGuarantorLink
    from guarantees.integration import SqlNonceStore
    from guarantees.web import guarantor_blueprint

    link = PlatformGuarantorLink(app, gw)
    nonces = SqlNonceStore(app.extensions["jianzheng_db"].engine)
    integration = guarantor_blueprint(gw.deployment, nonces, link, source=link)
    app.register_blueprint(integration)
    csrf.exempt(integration)

