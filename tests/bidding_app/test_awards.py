"""Award (定标) and the contract record: refused in words while the chain does not allow them, then sent
through the outbox and final on chain."""

from __future__ import annotations

import os

from contracts.records import Role, SectionStatus
from tests.bidding_app.conftest import Clients
from tests.bidding_app.test_bids import api_client, open_section, register, upload
from tests.helpers import Platform, random_hash


def test_award_then_contract_signed(clients: Clients, platform: Platform) -> None:
    section = open_section(clients, platform, opening_in=300)
    bidders = [clients.logged_in(Role.BIDDER, index) for index in range(3)]
    for bidder in bidders:
        register(bidder, section)
        upload(bidder, section, os.urandom(64))
    clients.drain()
    client = clients.app.test_client()
    agency, tenderer = api_client(clients, Role.AGENCY), api_client(clients, Role.TENDERER)
    winner = clients.organisation(Role.BIDDER, 1)
    url = f"/api/v1/sections/{section.id}/award"

    def refused(body: dict[str, object], code: str, words: str, headers: dict[str, str] = agency) -> None:
        answer = client.post(url, json=body, headers=headers)
        assert answer.status_code in (400, 403, 409) and answer.json is not None, answer.data
        assert answer.json["error"]["code"] == code and words in answer.json["error"]["message"], answer.json

    refused({"winner_id": winner.id, "summary": "评标第一名"}, "award_refused", "开标尚未结束")
    sid = bytes.fromhex(section.chain_id[2:])
    platform.backend.advance_to(section.opening_time)
    clients.drain()  # the opening hall starts and reveals the bids' covers (密文保函) for the agency
    for index in range(3):
        bidder_address = clients.organisation(Role.BIDDER, index).address
        assert bidder_address
        platform.tenders.record_bid_opened(platform.agency, sid, bidder_address, random_hash())
    record = random_hash()
    platform.tenders.close_opening(platform.agency, sid, record)
    refused({"winner_id": winner.id, "summary": "评标第一名"}, "award_refused", "见证人确认开标记录 0 家")
    for witness in platform.witnesses[:2]:
        platform.tenders.attest_opening(witness, sid, record)

    refused({"winner_id": winner.id}, "invalid_input", "请填写定标说明")
    refused({"winner_id": "x", "summary": "s"}, "invalid_input", "请选择中标人")
    refused({"winner_id": clients.organisation(Role.WITNESS).id, "summary": "s"}, "invalid_input", "中标人必须是投标人")
    refused({"winner_id": winner.id, "summary": "s"}, "forbidden", "", headers=tenderer)
    assert client.post(url, data="{", headers=agency).status_code == 400
    assert client.post(f"/api/v1/sections/{section.id}/contract", json={"outcome": "signed", "note": "合同"},
                       headers=tenderer).json["error"]["code"] == "contract_step_refused"  # type: ignore[index]

    answer = client.post(url, json={"winner_id": winner.id, "summary": "综合评分第一名"}, headers=agency)
    assert answer.status_code == 202 and answer.json is not None and answer.json["status"] == "awarding"
    refused({"winner_id": winner.id, "summary": "again"}, "award_refused", "不能重复定标")
    clients.drain()
    shown = client.get(url, headers=api_client(clients, Role.BIDDER, 2)).json
    assert shown is not None and shown["status"] == "awarded" and shown["chain_tx"]
    assert shown["winner"]["id"] == winner.id
    on_chain = platform.tenders.section(sid)
    assert on_chain.status == SectionStatus.AWARDED and on_chain.winner.lower() == (winner.address or "").lower()

    contract = f"/api/v1/sections/{section.id}/contract"
    assert client.post(contract, json={"outcome": "maybe", "note": "x"}, headers=tenderer).status_code == 400
    assert client.post(contract, json={"outcome": "signed", "note": "x"}, headers=agency).status_code == 403
    answer = client.post(contract, json={"outcome": "signed", "note": "合同编号 HT-2026-001"}, headers=tenderer)
    assert answer.status_code == 202
    clients.drain()
    assert platform.tenders.section(sid).contract_signed
    page = clients.logged_in(Role.TENDERER).get(f"/sections/{section.id}/award").get_data(as_text=True)
    assert "中标人已签订合同" in page and "HT-2026-001" in page

    # Someone with no part in the tender sees nothing of it.
    assert client.get(url, headers=api_client(clients, Role.GUARANTOR)).status_code == 403


def test_award_page_for_the_agency(clients: Clients, platform: Platform) -> None:
    section = open_section(clients, platform)
    agency = clients.logged_in(Role.AGENCY)
    page = agency.get(f"/sections/{section.id}/award")
    assert page.status_code == 200 and "尚未定标" in page.get_data(as_text=True)
    assert "暂无可中标的投标" in page.get_data(as_text=True)
    assert clients.logged_in(Role.BIDDER).get(f"/sections/{section.id}/award").status_code == 403
