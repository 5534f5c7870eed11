"""Bidding through the pages: register, upload a sealed envelope, receipt with the on-chain commitment,
replace, withdraw, the deadline, bad uploads, double submission and privacy between bidders."""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask.testing import FlaskClient

from bidding_app.chain import ChainGateway
from bidding_app.db import db
from bidding_app.models import Bid, BidUpload, OutboxEntry, Registration, Section
from contracts.client import Signer
from contracts.records import BidStatus, Role
from tests.bidding_app.conftest import Clients, api_draft, csrf_of
from tests.helpers import Platform


def api_client(clients: Clients, role: Role, index: int = 0) -> dict[str, str]:
    client = clients.app.test_client()
    username = clients.config.with_role(role)[index].identifier
    token = client.post("/api/v1/token", json={"username": username, "password": "测试口令-Test-2026"}).json
    assert token is not None
    return {"Authorization": f"Bearer {token['token']}"}


def open_section(clients: Clients, platform: Platform, opening_in: int = 3600) -> Section:
    """A published section, confirmed on chain."""
    response = clients.app.test_client().post(
        "/api/v1/tenders", json=api_draft(clients, platform, opening_in=opening_in),
        headers=api_client(clients, Role.AGENCY))
    assert response.status_code == 201, response.json
    clients.drain()
    with clients.app.app_context():
        section = db.session.get_one(Section, response.json["sections"][0]["id"])  # type: ignore[index]
        assert section.chain_tx
        return section


def register(bidder: FlaskClient, section: Section) -> None:
    token = csrf_of(bidder, f"/sections/{section.id}/bid")
    assert bidder.post(f"/sections/{section.id}/register", data={"csrf_token": token}).status_code == 302


def upload(bidder: FlaskClient, section: Section, content: bytes, **fields: Any) -> Any:
    data: dict[str, Any] = {
        "csrf_token": csrf_of(bidder, f"/sections/{section.id}/bid"),
        "submission_key": uuid.uuid4().hex,
        "commitment": "0x" + hashlib.sha256(content).hexdigest(),
        "cover_kind": "cash_deposit",
        "cover_ref": "DEP-" + uuid.uuid4().hex[:8],
        "envelope": (io.BytesIO(content), "bid.sealed"),
    }
    data.update(fields)
    return bidder.post(f"/sections/{section.id}/bid", data=data)


def placed_bid(clients: Clients, platform: Platform, envelope: bytes = b"sealed", **fields: Any) -> tuple[
    Section, FlaskClient
]:
    """A published section and the first bidder, logged in, registered and with a bid uploaded."""
    section = open_section(clients, platform)
    bidder = clients.logged_in(Role.BIDDER)
    register(bidder, section)
    upload(bidder, section, envelope, **fields)
    return section, bidder


def bid_row(clients: Clients) -> Bid:
    with clients.app.app_context():
        return db.session.scalars(sa.select(Bid)).one()


def test_bidder_commits_a_sealed_bid_and_gets_a_receipt(clients: Clients, platform: Platform) -> None:
    section = open_section(clients, platform)
    bidder = clients.logged_in(Role.BIDDER)
    register(bidder, section)
    envelope = os.urandom(4096)
    response = upload(bidder, section, envelope)
    assert response.status_code == 302
    receipt = response.headers["Location"]
    assert "上链中" in bidder.get(receipt).get_data(as_text=True)
    assert clients.drain() == 1
    page = bidder.get(receipt).get_data(as_text=True)
    bid = bid_row(clients)
    commitment = "0x" + hashlib.sha256(envelope).hexdigest()
    assert bid.status == "committed" and bid.commitment == commitment
    assert bid.chain_tx and bid.chain_tx in page and str(bid.chain_block) in page and commitment in page
    signer = clients.config.with_role(Role.BIDDER)[0].signer
    on_chain = platform.tenders.bid(bytes.fromhex(section.chain_id[2:]), signer.address)
    assert on_chain.status == BidStatus.COMMITTED and on_chain.ciphertext_hash.hex() == commitment[2:]
    with clients.app.app_context():
        stored = db.session.scalars(sa.select(BidUpload)).one()
    path = os.path.join(clients.app.config["UPLOAD_FOLDER"], "bids", stored.stored_name)
    with open(path, "rb") as handle:
        assert handle.read() == envelope  # kept as the opaque sealed bytes


def test_replace_and_withdraw_before_the_deadline(clients: Clients, platform: Platform) -> None:
    section, bidder = placed_bid(clients, platform, b"first sealed envelope")
    clients.drain()
    second = b"second sealed envelope"
    assert upload(bidder, section, second, cover_kind="").status_code == 302
    clients.drain()
    bid = bid_row(clients)
    assert bid.status == "committed" and bid.commitment == "0x" + hashlib.sha256(second).hexdigest()
    token = csrf_of(bidder, f"/bids/{bid.id}")
    withdraw = {"csrf_token": token, "submission_key": uuid.uuid4().hex}
    assert bidder.post(f"/bids/{bid.id}/withdraw", data=withdraw).status_code == 302
    assert bidder.post(f"/bids/{bid.id}/withdraw", data=withdraw).status_code == 302  # double submit: no-op
    clients.drain()
    assert bid_row(clients).status == "withdrawn"
    signer = clients.config.with_role(Role.BIDDER)[0].signer
    assert platform.tenders.bid(bytes.fromhex(section.chain_id[2:]), signer.address).status == BidStatus.WITHDRAWN
    with clients.app.app_context():
        actions = [e.action for e in db.session.scalars(sa.select(OutboxEntry).order_by(OutboxEntry.id))]
    assert actions[2:] == ["commit_bid", "replace_bid", "withdraw_bid"]


def test_after_the_deadline_nothing_changes(clients: Clients, platform: Platform) -> None:
    section = open_section(clients, platform, opening_in=120)
    bidder = clients.logged_in(Role.BIDDER)
    register(bidder, section)
    upload(bidder, section, b"sealed before the deadline")
    clients.drain()
    platform.backend.advance_to(section.opening_time)
    response = upload(bidder, section, b"too late")
    assert response.status_code == 409 and "已过投标截止时间" in response.get_data(as_text=True)
    bid = bid_row(clients)
    token = csrf_of(bidder, f"/bids/{bid.id}")
    late = bidder.post(f"/bids/{bid.id}/withdraw", data={"csrf_token": token, "submission_key": uuid.uuid4().hex})
    assert late.status_code == 409 and "已过投标截止时间" in late.get_data(as_text=True)
    after = bid_row(clients)
    assert (after.status, after.commitment, after.chain_tx) == (bid.status, bid.commitment, bid.chain_tx)
    with clients.app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(BidUpload.id))) == 1


def test_kept_chain_time_only_accepts_and_the_outbox_catches_a_late_bid(clients: Clients, platform: Platform) -> None:
    """The upload's deadline check keeps chain time (CHAIN_TIME_MAX_AGE; here long enough to matter):
    a refusal is always asked of the node again, and a bid the kept time lets through after the
    deadline is refused by the contract and recorded on the bid by the outbox."""
    chain_gateway: ChainGateway = clients.app.extensions["jianzheng_chain"]
    chain_gateway.time_max_age = 3600.0
    section = open_section(clients, platform, opening_in=120)
    bidder = clients.logged_in(Role.BIDDER)
    register(bidder, section)
    assert upload(bidder, section, b"sealed before the deadline").status_code == 302
    clients.drain()
    kept = chain_gateway.now_for_deadline(section.opening_time)
    assert kept < section.opening_time
    platform.backend.advance_to(section.opening_time)
    assert chain_gateway.now() >= section.opening_time  # every other check asks the node
    assert chain_gateway.now_for_deadline(section.opening_time) == kept  # kept: still before the deadline
    late = upload(bidder, section, b"replaced within the kept window", cover_kind="")
    assert late.status_code == 302
    assert bid_row(clients).status == "replacing"
    clients.drain()
    bid = bid_row(clients)
    assert (bid.status, bid.error_code) == ("committed", "TenderRegistryBidAfterDeadline")
    assert bid.commitment == "0x" + hashlib.sha256(b"sealed before the deadline").hexdigest()
    signer = clients.config.with_role(Role.BIDDER)[0].signer
    on_chain = platform.tenders.bid(bytes.fromhex(section.chain_id[2:]), signer.address)
    assert on_chain.ciphertext_hash == bytes.fromhex(bid.commitment[2:])
    assert chain_gateway.now_for_deadline(kept) >= section.opening_time  # a refusal is asked again
    refused = upload(bidder, section, b"too late", cover_kind="")
    assert refused.status_code == 409 and "已过投标截止时间" in refused.get_data(as_text=True)


def test_bad_uploads_are_refused_with_a_reason(clients: Clients, platform: Platform) -> None:
    section = open_section(clients, platform)
    bidder = clients.logged_in(Role.BIDDER)
    unregistered = upload(bidder, section, b"sealed")
    assert unregistered.status_code == 409 and "尚未报名" in unregistered.get_data(as_text=True)
    register(bidder, section)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"commitment": "0x" + "00" * 32}, 400, "哈希与提交的承诺值不一致"),
        ({"commitment": "abc"}, 400, "承诺值"),
        ({"cover_kind": "gold"}, 400, "投标保证金的形式"),
        ({"cover_ref": ""}, 400, "缴纳凭证号"),
        ({"submission_key": "../x"}, 400, "提交标识"),
        ({"envelope": (io.BytesIO(b""), "bid.sealed"), "commitment": "0x" + hashlib.sha256(b"").hexdigest()},
         400, "密封投标文件是空的"),
    ]
    for fields, status, message in cases:
        response = upload(bidder, section, b"sealed bytes", **fields)
        assert response.status_code == status, message
        assert message in response.get_data(as_text=True), message
    with clients.app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Bid.id))) == 0
    assert not os.listdir(os.path.join(clients.app.config["UPLOAD_FOLDER"], "incoming"))


def test_oversized_bid_is_refused_before_the_body_is_read(clients: Clients, platform: Platform) -> None:
    section = open_section(clients, platform)
    bidder = clients.logged_in(Role.BIDDER)
    register(bidder, section)
    clients.app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    response = upload(bidder, section, os.urandom(128 * 1024))
    assert response.status_code == 413 and "不能超过" in response.get_data(as_text=True)


def test_double_submitted_upload_creates_one_record(clients: Clients, platform: Platform) -> None:
    section = open_section(clients, platform)
    bidder = clients.logged_in(Role.BIDDER)
    register(bidder, section)
    envelope = b"sealed once"
    fields = {"submission_key": uuid.uuid4().hex, "cover_ref": "DEP-1"}
    first = upload(bidder, section, envelope, **fields)
    second = upload(bidder, section, envelope, **fields)
    assert first.headers["Location"] == second.headers["Location"]
    with clients.app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(BidUpload.id))) == 1
        assert db.session.scalar(sa.select(sa.func.count(OutboxEntry.id)).where(
            OutboxEntry.action == "commit_bid")) == 1


def test_a_bidder_never_sees_another_bidders_bid(clients: Clients, platform: Platform) -> None:
    section = open_section(clients, platform)
    first = clients.logged_in(Role.BIDDER, 0)
    register(first, section)
    upload(first, section, b"first bidder's sealed bid")
    clients.drain()
    bid = bid_row(clients)
    other = clients.logged_in(Role.BIDDER, 1)
    assert other.get(f"/bids/{bid.id}").status_code == 404
    token = csrf_of(other, f"/sections/{section.id}/bid")
    assert other.post(f"/bids/{bid.id}/withdraw", data={"csrf_token": token,
                                                        "submission_key": uuid.uuid4().hex}).status_code == 404
    page = other.get(f"/tenders/{section.tender_id}").get_data(as_text=True)
    assert bid.commitment not in page
    assert "甲建设" not in other.get(f"/sections/{section.id}/bid").get_data(as_text=True)
    headers = api_client(clients, Role.BIDDER, 1)
    assert clients.app.test_client().get(f"/api/v1/bids/{bid.id}", headers=headers).status_code == 404


def test_amendment_asks_placed_bids_to_be_reconfirmed(clients: Clients, platform: Platform) -> None:
    section, bidder = placed_bid(clients, platform, b"sealed bid")
    clients.drain()
    bid = bid_row(clients)
    agency = clients.logged_in(Role.AGENCY)
    token = csrf_of(agency, f"/tenders/{section.tender_id}")
    assert agency.post(f"/tenders/{section.tender_id}/amend",
                       data={"csrf_token": token, "summary": "工期改为150日历天"}).status_code == 302
    clients.drain()  # the bid can be confirmed once the amendment is on chain (tests/bidding_app/test_amendments.py)
    page = bidder.get(f"/bids/{bid.id}").get_data(as_text=True)
    assert "修改（第1次），请重新确认" in page and 'class="reconfirm"' in page
    token = csrf_of(bidder, f"/bids/{bid.id}")
    assert bidder.post(f"/bids/{bid.id}/reconfirm", data={"csrf_token": token}).status_code == 302
    assert "请重新确认" not in bidder.get(f"/bids/{bid.id}").get_data(as_text=True)


def raw_upload_setup(clients: Clients, platform: Platform, envelope: bytes, cover_ref: str) -> tuple[
    Section, FlaskClient, dict[str, str], dict[str, str]
]:
    """A section the first bidder registered for through the API: its API headers, and those of a
    raw-body upload of `envelope` (fields in X- headers)."""
    section = open_section(clients, platform)
    headers = api_client(clients, Role.BIDDER)
    client = clients.app.test_client()
    assert client.post(f"/api/v1/sections/{section.id}/registration", headers=headers).status_code == 201
    raw = headers | {"Content-Type": "application/octet-stream", "X-Submission-Key": uuid.uuid4().hex,
                     "X-Commitment": "0x" + hashlib.sha256(envelope).hexdigest(), "X-Cover-Kind": "cash_deposit",
                     "X-Cover-Ref": cover_ref}
    return section, client, headers, raw


def test_raw_body_upload_with_fields_in_headers(clients: Clients, platform: Platform) -> None:
    envelope = os.urandom(10_000)
    # 现金-001, percent-encoded UTF-8
    section, client, headers, raw = raw_upload_setup(clients, platform, envelope, "%E7%8E%B0%E9%87%91-001")
    placed = client.put(f"/api/v1/sections/{section.id}/bid", data=envelope, headers=raw)
    assert placed.status_code == 201 and placed.json is not None and placed.json["cover_ref"] == "现金-001"
    wrong_type = client.put(f"/api/v1/sections/{section.id}/bid", data=envelope,
                            headers=headers | {"Content-Type": "text/plain"})
    assert wrong_type.status_code == 400 and wrong_type.json is not None
    assert wrong_type.json["error"]["field"] == "envelope"


def test_raw_body_too_long_or_cut_short_is_refused_and_nothing_kept(clients: Clients, platform: Platform) -> None:
    envelope = os.urandom(20_000)
    section, client, _headers, raw = raw_upload_setup(clients, platform, envelope, "DEP-1")
    clients.app.config["MAX_BID_BYTES"] = 10_000
    too_long = client.put(f"/api/v1/sections/{section.id}/bid", data=envelope,
                          headers=raw | {"X-Submission-Key": uuid.uuid4().hex})
    assert too_long.status_code == 413 and too_long.json is not None
    assert too_long.json["error"]["code"] == "too_large"
    clients.app.config["MAX_BID_BYTES"] = 50 * 1024 * 1024
    # The client says 20,000 bytes and goes away after 5,000: refused as cut short, not stored as a bid.
    cut = client.put(f"/api/v1/sections/{section.id}/bid", input_stream=io.BytesIO(envelope[:5_000]),
                     environ_overrides={"CONTENT_LENGTH": str(len(envelope))},
                     headers=raw | {"X-Submission-Key": uuid.uuid4().hex})
    assert cut.status_code == 400 and cut.json is not None
    assert cut.json["error"].get("field") == "envelope" and "上传中断" in cut.json["error"]["message"]
    with clients.app.app_context():
        assert db.session.scalars(sa.select(Bid)).first() is None
    incoming = Path(clients.app.config["UPLOAD_FOLDER"]) / "incoming"
    assert not incoming.exists() or not any(incoming.iterdir())


def test_double_submitted_registration_registers_once(clients: Clients, platform: Platform) -> None:
    section = open_section(clients, platform)
    bidder = clients.logged_in(Role.BIDDER)
    register(bidder, section)
    register(bidder, section)
    with clients.app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Registration.id))) == 1


def test_the_sealing_module_is_served_from_the_opening_folder(clients: Clients) -> None:
    from bidding_app.blueprints.bids import SEALING_JS

    response = clients.logged_in(Role.BIDDER).get("/opening/sealing.js")
    if SEALING_JS.is_file():
        assert response.status_code == 200 and response.mimetype == "text/javascript"
    else:
        assert response.status_code == 404 and "密封模块尚未安装" in response.get_data(as_text=True)
    response.close()


def test_opening_key_set_later_on_chain_is_picked_up(clients: Clients, platform: Platform) -> None:
    """Published without an opening key: no bid form until the witnesses' key is anchored on chain."""
    draft = api_draft(clients, platform)
    draft["sections"][0]["opening_key"] = ""
    created = clients.app.test_client().post("/api/v1/tenders", json=draft, headers=api_client(clients, Role.AGENCY))
    assert created.status_code == 201 and created.json is not None
    clients.drain()
    with clients.app.app_context():
        section = db.session.get_one(Section, created.json["sections"][0]["id"])
    bidder = clients.logged_in(Role.BIDDER)
    register(bidder, section)
    page = bidder.get(f"/sections/{section.id}/bid").get_data(as_text=True)
    assert "开标公钥尚未" in page and 'id="bid-form"' not in page
    key = bytes.fromhex("01" + "ab" * 40)
    agency = Signer.from_key(bytes(platform.agency.account.key))  # the app has used this key: a fresh nonce
    platform.tenders.set_opening_key(agency, bytes.fromhex(section.chain_id[2:]), key)
    page = bidder.get(f"/sections/{section.id}/bid").get_data(as_text=True)
    assert 'id="bid-form"' in page and f'data-opening-key="0x{key.hex()}"' in page
