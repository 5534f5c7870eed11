"""Tender amendments anchored on chain through the platform: amendments and attachments send
`amendTender`, re-confirmations send `confirmBid`, late amendments are refused with nothing stored, the
witness portal lists both events, and a bid not confirmed for the latest amendment is marked wherever it
is listed."""

from __future__ import annotations

import io
from pathlib import Path

import sqlalchemy as sa

from bidding_app.db import db
from bidding_app.models import Amendment, Attachment, Bid, BidConfirmation, OutboxEntry, Section, Tender
from bidding_app.web import cst
from contracts.records import BidConfirmation as ChainConfirmation
from contracts.records import Role
from tests.bidding_app.conftest import Clients, csrf_of
from tests.bidding_app.test_bids import api_client, bid_row, open_section, placed_bid
from tests.helpers import Platform


def _b32(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def _amend(clients: Clients, tender_id: int, summary: str) -> tuple[int, str]:
    agency = clients.logged_in(Role.AGENCY)
    token = csrf_of(agency, f"/tenders/{tender_id}")
    response = agency.post(f"/tenders/{tender_id}/amend", data={"csrf_token": token, "summary": summary})
    return response.status_code, response.get_data(as_text=True)


def test_amendments_and_attachments_are_anchored_and_shown(clients: Clients, platform: Platform) -> None:
    section = open_section(clients, platform)
    assert _amend(clients, section.tender_id, "工期改为150日历天")[0] == 302
    agency = clients.logged_in(Role.AGENCY)
    token = csrf_of(agency, f"/tenders/{section.tender_id}")
    attached = agency.post(f"/tenders/{section.tender_id}/attachments",
                           data={"csrf_token": token, "file": (io.BytesIO(b"%PDF-1.7 addendum"), "补遗.pdf")})
    assert attached.status_code == 302
    assert clients.drain() == 2
    with clients.app.app_context():
        tender = db.session.get_one(Tender, section.tender_id)
        amendments = db.session.scalars(sa.select(Amendment).order_by(Amendment.version)).all()
        assert [a.version for a in amendments] == [2, 3] and all(a.chain_tx for a in amendments)
        on_chain = platform.tenders.tender(_b32(tender.chain_id))
        assert (on_chain.version, on_chain.details_hash) == (3, _b32(tender.details_hash))
        assert platform.tenders.section(_b32(section.chain_id)).tender_version == 3
        shown = [(a.chain_tx, a.chain_block) for a in amendments]
    page = clients.logged_in(Role.BIDDER).get(f"/tenders/{section.tender_id}").get_data(as_text=True)
    for tx, block in shown:
        assert f"{tx}</span>，区块 {block}" in page


def test_reconfirmation_goes_on_chain_once_the_amendment_has(clients: Clients, platform: Platform) -> None:
    section, bidder = placed_bid(clients, platform, b"sealed bid")
    clients.drain()
    bid = bid_row(clients)
    assert _amend(clients, section.tender_id, "工期改为150日历天")[0] == 302
    # The amendment is not on chain yet: the contract would refuse a confirmation of version 2.
    token = csrf_of(bidder, f"/bids/{bid.id}")
    early = bidder.post(f"/bids/{bid.id}/reconfirm", data={"csrf_token": token})
    assert early.status_code == 409 and "尚在上链确认中" in early.get_data(as_text=True)
    assert bid_row(clients).confirmed_version == 1
    clients.drain()
    assert bidder.post(f"/bids/{bid.id}/reconfirm", data={"csrf_token": token}).status_code == 302
    assert "待确认" not in bidder.get(f"/bids/{bid.id}").get_data(as_text=True)
    # The API's repeated confirmation is the same one, not a second transaction.
    again = clients.app.test_client().post(f"/api/v1/bids/{bid.id}/reconfirm",
                                           headers=api_client(clients, Role.BIDDER))
    assert again.status_code == 200 and again.json is not None and not again.json["needs_reconfirmation"]
    assert clients.drain() == 1
    bidder_address = clients.organisation(Role.BIDDER).address
    assert bidder_address is not None
    chain_section = _b32(section.chain_id)
    assert platform.tenders.bid_confirmation(chain_section, bidder_address) == ChainConfirmation(2, 2)
    with clients.app.app_context():
        confirmation = db.session.scalars(sa.select(BidConfirmation)).one()
        assert (confirmation.status, confirmation.version) == ("confirmed", 2) and confirmation.chain_tx
        assert db.session.get_one(Bid, bid.id).confirmed_version == 2
    witness = clients.logged_in(Role.WITNESS, 1)
    history = witness.get(f"/witness/sections/{section.id}/history").get_data(as_text=True)
    assert 'data-event="TenderAmended"' in history and 'data-event="BidConfirmed"' in history


def test_late_amendment_is_refused_and_nothing_is_stored(
    clients: Clients, platform: Platform, tmp_path: Path
) -> None:
    section = open_section(clients, platform, opening_in=600)
    platform.backend.advance_to(section.opening_time)
    status, page = _amend(clients, section.tender_id, "迟到的修改")
    assert status == 409 and "已过投标截止时间，不能再发布澄清或修改" in page
    agency = clients.logged_in(Role.AGENCY)
    token = csrf_of(agency, f"/tenders/{section.tender_id}")
    late = agency.post(f"/tenders/{section.tender_id}/attachments",
                       data={"csrf_token": token, "file": (io.BytesIO(b"%PDF-1.7 late"), "迟到.pdf")})
    assert late.status_code == 409 and "不能再上传招标文件" in late.get_data(as_text=True)
    with clients.app.app_context():
        assert db.session.get_one(Tender, section.tender_id).version == 1
        assert db.session.scalar(sa.select(sa.func.count(Amendment.id))) == 0
        assert db.session.scalar(sa.select(sa.func.count(Attachment.id))) == 0
        assert {e.action for e in db.session.scalars(sa.select(OutboxEntry))} == {"create_tender", "add_section"}
        chain_id = db.session.get_one(Section, section.id).tender.chain_id
    assert platform.tenders.tender(_b32(chain_id)).version == 1
    folder = Path(clients.app.config["UPLOAD_FOLDER"]) / "attachments"
    assert not folder.exists() or not any(folder.iterdir())


def test_an_unconfirmed_bid_is_marked_wherever_it_is_listed(clients: Clients, platform: Platform) -> None:
    """Receipt, the bid list, the section page, the tender page and the API tell the bidder (with the
    confirm action once it can be given); the agency gets a count per section only; the regulator sees it."""
    section, bidder = placed_bid(clients, platform, b"sealed bid")
    clients.drain()
    bid = bid_row(clients)
    api, token = clients.app.test_client(), api_client(clients, Role.BIDDER)
    before = api.get(f"/api/v1/bids/{bid.id}", headers=token).json
    assert before is not None and (before["confirmed"], before["confirmed_amendment"], before["tender_amendment"]) == (
        True, 0, 0) and before["amended_at"] is None
    assert "待确认" not in bidder.get(f"/bids/{bid.id}").get_data(as_text=True)

    assert _amend(clients, section.tender_id, "工期改为150日历天")[0] == 302
    with clients.app.app_context():
        amended_at = db.session.scalars(sa.select(Amendment)).one().created_at
    notice = f"待确认：招标文件已于 {cst(amended_at)} 修改（第1次），请重新确认"
    receipt = bidder.get(f"/bids/{bid.id}").get_data(as_text=True)
    # The amendment is not on chain yet: no confirm button, the reason instead.
    assert notice in receipt and "本次修改尚在上链确认中" in receipt and 'class="reconfirm"' not in receipt
    pending = api.get(f"/api/v1/bids/{bid.id}", headers=token).json
    assert pending is not None and {k: pending[k] for k in (
        "confirmed", "confirmed_amendment", "tender_amendment", "amended_at", "amendment_anchored",
        "needs_reconfirmation")} == {"confirmed": False, "confirmed_amendment": 0, "tender_amendment": 1,
                                     "amended_at": amended_at, "amendment_anchored": False,
                                     "needs_reconfirmation": True}
    clients.drain()
    for page in (f"/bids/{bid.id}", "/bids", f"/sections/{section.id}/bid", f"/tenders/{section.tender_id}",
                 f"/sections/{section.id}/hall"):
        shown = bidder.get(page).get_data(as_text=True)
        assert notice in shown and 'class="reconfirm"' in shown and 'data-confirmed-amendment="0"' in shown, page
    listed = api.get("/api/v1/bids", headers=token).json
    assert listed is not None and [(b["id"], b["confirmed"], b["tender_amendment"]) for b in listed["bids"]] == [
        (bid.id, False, 1)]
    # Another bidder lists only its own bids (none), and sees no count.
    other = api_client(clients, Role.BIDDER, 1)
    assert api.get("/api/v1/bids", headers=other).json == {"bids": []}
    assert "待确认" not in clients.logged_in(Role.BIDDER, 1).get("/bids").get_data(as_text=True)
    seen_by_other = api.get(f"/api/v1/tenders/{section.tender_id}", headers=other).json
    assert seen_by_other is not None and "unconfirmed_bids" not in seen_by_other["sections"][0]

    # The agency: a count per section, on its page and in its API; nothing about the bid itself.
    agency_page = clients.logged_in(Role.AGENCY).get(f"/tenders/{section.tender_id}").get_data(as_text=True)
    assert f'data-section-id="{section.id}" data-count="1"' in agency_page
    assert "待投标人按第1次修改重新确认的投标：1 份" in agency_page
    assert bid.commitment not in agency_page and "DEP-" not in agency_page
    agency_api = api.get(f"/api/v1/tenders/{section.tender_id}", headers=api_client(clients, Role.AGENCY)).json
    assert agency_api is not None and agency_api["sections"][0]["unconfirmed_bids"] == 1
    regulator = clients.logged_in(Role.REGULATOR).get(f"/regulator/sections/{section.id}").get_data(as_text=True)
    assert "未确认第1次修改（仅确认到最初发布的版本）" in regulator

    # Confirmed: anchoring, then final; the agency's count goes to zero.
    assert bidder.post(f"/bids/{bid.id}/reconfirm", data={"csrf_token": csrf_of(bidder, f"/bids/{bid.id}")}
                       ).status_code == 302
    anchoring = bidder.get(f"/bids/{bid.id}").get_data(as_text=True)
    assert "已确认招标文件第1次修改，确认上链中" in anchoring and notice not in anchoring
    answer = api.get(f"/api/v1/bids/{bid.id}", headers=token).json
    assert answer is not None and answer["confirmed"] and answer["reconfirmation"] == {
        "status": "anchoring", "error_code": None}
    clients.drain()
    assert "已确认招标文件第1次修改后的版本" in bidder.get("/bids").get_data(as_text=True)
    agency_api = api.get(f"/api/v1/tenders/{section.tender_id}", headers=api_client(clients, Role.AGENCY)).json
    assert agency_api is not None and agency_api["sections"][0]["unconfirmed_bids"] == 0
