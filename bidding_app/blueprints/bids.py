"""Bidder pages: register for a section, upload a sealed bid, see its receipt and the list of one's bids,
replace, withdraw, re-confirm after an amendment."""

from __future__ import annotations

import contextlib
from pathlib import Path
from urllib.parse import unquote

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, send_file, url_for
from flask.typing import ResponseReturnValue

from bidding_app import amendments, covers, oversight
from bidding_app import bids as service
from bidding_app.accounts import current_user, requires
from bidding_app.chain import gateway
from bidding_app.db import db
from bidding_app.errors import AlreadyRegistered, InvalidInput, NotFound, TooLarge
from bidding_app.models import Bid
from bidding_app.storage import BodyReader, Readable
from bidding_app.web import outbox_wake, wants_json
from contracts.records import Role
from contracts.toolchain import PROJECT_ROOT

bp = Blueprint("bids", __name__)


def incoming_folder() -> Path:
    return Path(current_app.config["UPLOAD_FOLDER"]) / "incoming"


RAW_FIELDS = {"commitment": "X-Commitment", "submission_key": "X-Submission-Key", "cover_kind": "X-Cover-Kind",
              "cover_ref": "X-Cover-Ref", "guarantee_salt": "X-Guarantee-Salt"}


def upload_parts() -> tuple[dict[str, str], Readable]:
    """The upload's fields and envelope stream: a multipart form (field `envelope`), or the envelope as
    the raw body (`application/octet-stream`) with the fields in X- headers (percent-encoded UTF-8).
    The raw form is what the page's script and heavy API users send: nothing to parse, streamed to disk."""
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("envelope")
        if upload is None:
            raise InvalidInput("请上传密封后的投标文件", field="envelope")
        return {name: request.form.get(name, "") for name in RAW_FIELDS}, upload.stream
    if request.mimetype != "application/octet-stream":
        raise InvalidInput("密封投标文件须以 multipart/form-data 或 application/octet-stream 上传", field="envelope")
    fields = {name: unquote(request.headers.get(header, ""), errors="strict") for name, header in RAW_FIELDS.items()}
    length = request.content_length
    if length is None:  # sent in chunks: werkzeug's stream knows where the body ends
        return fields, request.stream
    limit = int(current_app.config["MAX_BID_BYTES"])
    if length > limit:
        raise TooLarge(f"密封投标文件不能超过 {limit // (1024 * 1024)} MB")
    return fields, BodyReader(request.environ["wsgi.input"], length)


def upload_client_ip() -> str:
    """The uploader's address for the regulator, through the configured trusted proxies only."""
    trusted = current_app.config.get("TRUSTED_PROXIES") or ()
    if isinstance(trusted, str):
        trusted = [part.strip() for part in trusted.split(",")]
    return oversight.client_ip(request.remote_addr or "", request.headers.get("X-Forwarded-For", ""), list(trusted))


def receive_bid(section_id: int) -> Bid:
    """The shared body of the page's and the API's upload: parse, receive the envelope, submit."""
    bidder = current_user().organisation
    section = service.section_of(db.session, section_id)
    try:
        fields, stream = upload_parts()
    except UnicodeDecodeError:
        raise InvalidInput("请求头中的字段须为百分号编码的 UTF-8") from None
    key = service.parse_submission_key(fields["submission_key"])
    commitment = service.parse_commitment(fields["commitment"])
    cover = None
    if fields["cover_kind"]:
        cover = service.parse_cover(fields["cover_kind"], fields["cover_ref"], fields["guarantee_salt"])
        deployment = gateway().deployment
        if deployment is not None and bidder.address is not None:  # the bond is checked on chain, read only
            covers.check_guarantee_cover(deployment, section, bidder.address, cover.kind, cover.reference,
                                         cover.salt)
    device_id = oversight.parse_device_id(request.headers.get("X-Device-Id"))
    envelope = service.receive_envelope(stream, incoming_folder(), int(current_app.config["MAX_BID_BYTES"]))
    context = service.UploadContext(key, request.remote_addr or "", request.headers.get("User-Agent", ""),
                                    gateway().now_for_deadline(section.opening_time), upload_client_ip(), device_id)
    bid = service.submit(db.session, bidder, section, cover, commitment, envelope, context)
    outbox_wake()
    return bid


@bp.app_template_global()
def bid_standing(bid: Bid) -> amendments.BidStanding:
    """For every page that lists a bid to someone who may see it: where it stands against the amendments."""
    return amendments.standing_of(db.session, bid)


@bp.app_context_processor
def _amendment_texts() -> dict[str, str]:
    return {"unconfirmed_treatment": amendments.UNCONFIRMED_TREATMENT}


@bp.get("/bids")
@requires(Role.BIDDER)
def index() -> ResponseReturnValue:
    bids = service.bids_of(db.session, current_user().organisation)
    return render_template("bids/list.html", bids=bids, chain_now=gateway().now())


@bp.get("/sections/<int:section_id>/bid")
@requires(Role.BIDDER)
def section_page(section_id: int) -> ResponseReturnValue:
    bidder = current_user().organisation
    section = service.section_of(db.session, section_id)
    return render_template("bids/section.html", section=section, chain_now=gateway().now(),
                           opening_key=service.opening_key(db.session, section, gateway()),
                           registration=service.registration_of(db.session, bidder, section),
                           bid=service.bid_of(db.session, bidder, section),
                           max_mb=int(current_app.config["MAX_BID_BYTES"]) // (1024 * 1024))


@bp.post("/sections/<int:section_id>/register")
@requires(Role.BIDDER)
def register(section_id: int) -> ResponseReturnValue:
    section = service.section_of(db.session, section_id)
    # A second click on the form (a double submission) lands on the same page, registered once.
    with contextlib.suppress(AlreadyRegistered):
        service.register(db.session, current_user().organisation, section, gateway().now())
    return redirect(url_for("bids.section_page", section_id=section.id))


@bp.route("/sections/<int:section_id>/bid", methods=["POST", "PUT"])
@requires(Role.BIDDER)
def upload(section_id: int) -> ResponseReturnValue:
    bid = receive_bid(section_id)
    receipt = url_for("bids.receipt", bid_id=bid.id)
    if wants_json():
        return jsonify({"bid_id": bid.id, "receipt_url": receipt}), 201
    return redirect(receipt)


@bp.get("/bids/<int:bid_id>")
@requires(Role.BIDDER)
def receipt(bid_id: int) -> ResponseReturnValue:
    bid = service.own_bid(db.session, current_user().organisation, bid_id)
    return render_template("bids/receipt.html", bid=bid, chain_now=gateway().now())


@bp.post("/bids/<int:bid_id>/withdraw")
@requires(Role.BIDDER)
def withdraw(bid_id: int) -> ResponseReturnValue:
    bid = service.own_bid(db.session, current_user().organisation, bid_id)
    key = service.parse_submission_key(request.form.get("submission_key"))
    service.withdraw(db.session, bid, key, gateway().now())
    outbox_wake()
    return redirect(url_for("bids.receipt", bid_id=bid.id))


@bp.post("/bids/<int:bid_id>/reconfirm")
@requires(Role.BIDDER)
def reconfirm(bid_id: int) -> ResponseReturnValue:
    bid = service.own_bid(db.session, current_user().organisation, bid_id)
    service.reconfirm(db.session, bid, gateway().now())
    outbox_wake()
    return redirect(url_for("bids.receipt", bid_id=bid.id))


SEALING_JS = PROJECT_ROOT / "opening" / "static" / "sealing.js"


@bp.get("/opening/sealing.js")
def sealing_module() -> ResponseReturnValue:
    """The opening module's browser sealing code, served read-only from its own folder."""
    if not SEALING_JS.is_file():
        raise NotFound("密封模块尚未安装")
    return send_file(SEALING_JS, mimetype="text/javascript", max_age=300)
