"""Tender pages: list, publish (agency), detail, amendments and attachments."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, current_app, redirect, render_template, request, send_file, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict

from bidding_app import amendments
from bidding_app import tenders as service
from bidding_app.accounts import current_user, has_role, requires
from bidding_app.bids import bid_of, parse_submission_key, registration_of
from bidding_app.chain import gateway
from bidding_app.db import db, get_or_not_found
from bidding_app.errors import AppError, InvalidInput
from bidding_app.models import Attachment, Organisation, Tender
from bidding_app.web import CHINA, outbox_wake
from contracts.records import Role

bp = Blueprint("tenders", __name__)
FORM_SECTIONS = 3
YUAN = re.compile(r"^\d{1,12}(\.\d{1,2})?$")


def attachment_folder() -> Path:
    return Path(current_app.config["UPLOAD_FOLDER"]) / "attachments"


def members_with(role: Role) -> list[Organisation]:
    return [o for o in db.session.scalars(sa.select(Organisation).order_by(Organisation.id)) if o.roles & role]


def fen_from_yuan(text: str, label: str) -> int:
    text = text.strip().replace(",", "")
    if not YUAN.match(text):
        raise InvalidInput(f"{label}必须是金额（元），最多两位小数", field="bid_bond")
    whole, _, cents = text.partition(".")
    return int(whole) * 100 + int((cents + "00")[:2])


def unix_from_local(text: str, label: str) -> int:
    try:
        moment = dt.datetime.strptime(text.strip(), "%Y-%m-%dT%H:%M")
    except ValueError:
        raise InvalidInput(f"请正确填写{label}（北京时间）", field="opening_time") from None
    return int(moment.replace(tzinfo=CHINA).timestamp())


def draft_from_form(form: MultiDict[str, str]) -> dict[str, Any]:
    """The HTML form (amounts in 元, Beijing time) as the API's draft data (fen, unix seconds)."""
    sections = []
    for index in range(FORM_SECTIONS):
        prefix = f"s{index}_"
        if not form.get(prefix + "title", "").strip():
            continue
        label = f"第{index + 1}标段的"
        try:
            witnesses = [int(w) for w in form.getlist(prefix + "witnesses")]
        except ValueError:
            raise InvalidInput(f"请为第{index + 1}标段选择见证机构", field="witness_ids") from None
        sections.append({
            "title": form.get(prefix + "title"),
            "opening_time": unix_from_local(form.get(prefix + "opening", ""), label + "开标时间"),
            "bid_bond": fen_from_yuan(form.get(prefix + "bond", ""), label + "投标保证金"),
            "bid_validity_days": form.get(prefix + "validity_days"),
            "min_valid_bids": form.get(prefix + "min_bids"),
            "witness_ids": witnesses,
            "witness_quorum": form.get(prefix + "quorum"),
            "opening_key": form.get(prefix + "opening_key", ""),
            "response_window_minutes": form.get(prefix + "response_minutes"),
        })
    return {"title": form.get("title"), "description": form.get("description"),
            "tenderer_id": form.get("tenderer_id"), "sections": sections}


@bp.get("/tenders")
@requires()
def index() -> ResponseReturnValue:
    tenders = db.session.scalars(sa.select(Tender).order_by(Tender.id.desc())).all()
    return render_template("tenders/list.html", tenders=tenders)


@bp.route("/tenders/new", methods=["GET", "POST"])
@requires(Role.AGENCY)
def new() -> ResponseReturnValue:
    default_window = int(current_app.config["HALL_RESPONSE_WINDOW"])
    low, high = service.RESPONSE_WINDOW_MINUTES
    # The form shows the platform's window when it is one the agency could type; else the field is left
    # empty, which means that window too.
    shown = default_window // 60 if default_window % 60 == 0 and low <= default_window // 60 <= high else ""
    context = {"tenderers": members_with(Role.TENDERER), "witnesses": members_with(Role.WITNESS),
               "form_sections": FORM_SECTIONS, "default_response_minutes": shown,
               "response_minutes": service.RESPONSE_WINDOW_MINUTES}
    if request.method == "GET":
        return render_template("tenders/new.html", form=MultiDict(), **context)
    try:
        key = parse_submission_key(request.form.get("submission_key"))
        draft = service.parse_draft(draft_from_form(request.form), response_window=default_window)
        tender, created = service.publish(db.session, current_user().organisation, draft, key, gateway().now())
        for upload in request.files.getlist("attachments"):
            if created and upload.filename:
                service.add_attachment(db.session, tender, upload.filename, upload.stream, attachment_folder(),
                                       int(current_app.config["MAX_ATTACHMENT_BYTES"]), gateway().now())
        db.session.commit()
        outbox_wake()
    except AppError as error:
        db.session.rollback()
        return render_template("tenders/new.html", form=request.form, error=error, **context), error.status
    return redirect(url_for("tenders.detail", tender_id=tender.id))


@bp.get("/tenders/<int:tender_id>")
@requires()
def detail(tender_id: int) -> ResponseReturnValue:
    tender = service.tender_of(db.session, tender_id)
    user = current_user()
    mine = {}
    if has_role(user, Role.BIDDER):
        for section in tender.sections:
            mine[section.id] = (registration_of(db.session, user.organisation, section),
                                bid_of(db.session, user.organisation, section))
    owner = tender.agency_id == user.organisation_id
    # The agency is told how many bids are not confirmed for the latest amendment, per section: a count only.
    unconfirmed = amendments.unconfirmed_bid_counts(db.session, [s.id for s in tender.sections]) if owner else {}
    return render_template("tenders/detail.html", tender=tender, mine=mine, chain_now=gateway().now(),
                           owner=owner, tenderer_view=tender.tenderer_id == user.organisation_id,
                           unconfirmed=unconfirmed, stale=sum(unconfirmed.values()))


@bp.post("/tenders/<int:tender_id>/amend")
@requires(Role.AGENCY)
def amend(tender_id: int) -> ResponseReturnValue:
    tender = service.owned_tender(db.session, current_user().organisation, tender_id)
    description = request.form.get("description")
    service.amend(db.session, tender, request.form.get("summary", ""), description or None, gateway().now())
    outbox_wake()
    return redirect(url_for("tenders.detail", tender_id=tender.id))


def attach_uploaded_file(tender_id: int) -> Attachment:
    """The page's and the API's document upload: the caller's agency's tender, the file, an amendment."""
    tender = service.owned_tender(db.session, current_user().organisation, tender_id)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InvalidInput("请选择要上传的文件", field="file")
    attachment = service.add_attachment(db.session, tender, upload.filename, upload.stream, attachment_folder(),
                                        int(current_app.config["MAX_ATTACHMENT_BYTES"]), gateway().now())
    service.amend(db.session, tender, f"新增招标文件：{attachment.original_name}", None, gateway().now())
    outbox_wake()
    return attachment


@bp.post("/tenders/<int:tender_id>/attachments")
@requires(Role.AGENCY)
def attach(tender_id: int) -> ResponseReturnValue:
    attach_uploaded_file(tender_id)
    return redirect(url_for("tenders.detail", tender_id=tender_id))


@bp.get("/attachments/<int:attachment_id>")
@requires()
def attachment(attachment_id: int) -> ResponseReturnValue:
    found = get_or_not_found(db.session, Attachment, attachment_id, "未找到该附件")
    return send_file(attachment_folder() / found.stored_name, mimetype=found.content_type, as_attachment=True,
                     download_name=found.original_name)
