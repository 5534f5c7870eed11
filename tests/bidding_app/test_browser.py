"""End to end in headless Chromium (Debian's), driven by Playwright, against the platform served by
gunicorn with gevent workers in a subprocess: an agency publishes a tender, a bidder seals its bid in
the browser with the opening module's sealing.js, uploads the envelope and sees its receipt with the
on-chain transaction."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from contracts.deploy import ConsortiumConfig
from contracts.records import Role
from opening.cli import main as opening_cli
from opening.envelope import seal_bid
from opening.witness import AccessRequest, WitnessShare, release_shares, save_share
from tests.backends import selected_backends
from tests.bidding_app.conftest import CHROMIUM, PASSWORD, Served, opening_key, serve_platform
from tests.helpers import Platform
from tests.opening.builders import run_dkg


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, platform: Platform, dev_config: ConsortiumConfig
           ) -> Iterator[Served]:
    """The platform in a gunicorn subprocess on a free loopback port, over a seeded SQLite database, shared
    by a module's journeys (each publishes its own tender and looks only at its own section).

    Not longer than the module: once other tests move the chain's clock past its sections' opening
    times, its sender would open them, signing as the agency beside those tests' own transactions.
    With the first chain backend only: the browser journey does not depend on the kind of chain (the
    other tests run on each), and the whole set stays within its time budget."""
    if platform.backend.name != selected_backends()[0]:
        pytest.skip("the browser journey runs with the first chain backend only")
    with serve_platform(tmp_path_factory.mktemp("served"), platform, dev_config) as served:
        yield served


def snap(page: Page, name: str) -> None:
    """Keep a screenshot when JIANZHENG_SCREENSHOTS names a folder (for a person to look at the pages)."""
    folder = os.environ.get("JIANZHENG_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def sign_in(page: Page, url: str, username: str) -> None:
    page.goto(url + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_contain_text("欢迎")


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium not installed")
def test_agency_publishes_and_bidder_seals_and_uploads(
    served: Served, new_page: Callable[[], Page], platform: Platform, dev_config: ConsortiumConfig, tmp_path: Path
) -> None:
    url = served.url
    opening = platform.now() + 7200
    local = dt.datetime.fromtimestamp(opening, dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%dT%H:%M")
    bid_file = tmp_path / "投标文件.pdf"
    bid_file.write_bytes("%PDF-1.7 报价：12,345,678.00 元".encode() + os.urandom(2048))
    agency = new_page()
    sign_in(agency, url, dev_config.with_role(Role.AGENCY)[0].identifier)
    agency.click("text=发布招标项目")
    agency.fill("input[name=title]", "浏览器测试：污水处理厂扩建工程")
    agency.fill("textarea[name=description]", "扩建规模 5 万吨/日。")
    agency.fill("input[name=s0_title]", "施工总承包")
    agency.fill("input[name=s0_opening]", local)
    agency.fill("input[name=s0_bond]", "500000")
    for name in ("市公共资源交易中心", "市公证处"):
        agency.get_by_label(name).first.check()
    agency.fill("input[name=s0_quorum]", "2")
    agency.fill("input[name=s0_opening_key]", opening_key(2, 2))
    snap(agency, "1-publish-form")
    agency.click("#publish")
    expect(agency.locator("#tender-title")).to_have_text("浏览器测试：污水处理厂扩建工程")
    tender_url = agency.url
    for _ in range(60):  # the outbox sender in the server puts it on chain
        if "已上链" in agency.locator("#tender-chain").inner_text():
            break
        time.sleep(0.5)
        agency.reload()
    expect(agency.locator("#tender-chain")).to_contain_text("已上链")
    snap(agency, "2-tender")

    bidder = new_page()
    sign_in(bidder, url, dev_config.with_role(Role.BIDDER)[0].identifier)
    bidder.goto(tender_url)
    bidder.click("text=报名")
    bidder.click("#register")
    expect(bidder.locator("text=贵单位已于")).to_be_visible()
    bidder.select_option("#cover_kind", "cash_deposit")
    bidder.fill("#cover_ref", "XM-DEP-2026-0001")
    bidder.fill("#price", "12345678.90")
    bidder.fill("#duration", "180")
    bidder.set_input_files("#bid-file", str(bid_file))
    snap(bidder, "3-bid-form")
    bidder.click("#seal-and-upload")
    expect(bidder.locator("h1")).to_have_text("投标回执", timeout=30_000)
    expect(bidder.locator("#bid-status")).to_have_attribute("data-status", "committed", timeout=30_000)
    snap(bidder, "4-receipt")
    transaction = bidder.locator("#bid-tx").inner_text()
    assert transaction.startswith("0x") and len(transaction) == 66
    commitment = bidder.locator("#bid-commitment").inner_text()
    bidder_address = dev_config.with_role(Role.BIDDER)[0].signer.address
    chain_ids = [s for s in platform.tenders.chain.w3.eth.get_transaction_receipt(transaction)["logs"]]
    assert chain_ids, "the commit transaction emitted no event"
    section_id = bytes(chain_ids[0]["topics"][1])
    on_chain = platform.tenders.bid(section_id, bidder_address)
    assert "0x" + on_chain.ciphertext_hash.hex() == commitment
    # The envelope the server stored (other journeys' envelopes lie beside it) is the committed one.
    (stored,) = [path for path in (served.folder / "uploads" / "bids").rglob("*.sealed")
                 if "0x" + hashlib.sha256(path.read_bytes()).hexdigest() == commitment]
    sealed = stored.read_bytes()
    assert sealed.startswith(b"JZSEAL")
    assert b"12345678" not in sealed and b"%PDF" not in sealed  # nothing readable


def _api(base: str, method: str, path: str, token: str | None = None, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(base + path, data=body, method=method, headers=(headers or {}) | (
        {"Authorization": f"Bearer {token}"} if token else {}))
    with urllib.request.urlopen(request, timeout=60) as response:
        data = response.read()
    return json.loads(data) if data[:1] in (b"{", b"[") else data


def _token(base: str, identifier: str) -> str:
    body = json.dumps({"username": identifier, "password": PASSWORD}).encode()
    return str(_api(base, "POST", "/api/v1/token", body=body, headers={"Content-Type": "application/json"})["token"])


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium not installed")
def test_opening_hall_shows_the_announcements_live(
    served: Served, new_page: Callable[[], Page], platform: Platform, dev_config: ConsortiumConfig, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bidder watches the hall: at the opening time the witnesses hand in their shares (computed on their
    side), and the page shows each 唱标 as it opens, without a reload."""
    url = served.url
    keyed = run_dkg(threshold=2, witnesses=3)
    agency = _token(url, dev_config.with_role(Role.AGENCY)[0].identifier)
    members = _api(url, "GET", "/api/v1/organisations", agency)["organisations"]
    draft = {"title": "浏览器测试：开标大厅", "description": "", "submission_key": uuid.uuid4().hex,
             "tenderer_id": next(o["id"] for o in members if "tenderer" in o["roles"]),
             "sections": [{"title": "第一标段", "opening_time": platform.now() + 300, "bid_bond": 100_00,
                           "bid_validity_days": 90, "min_valid_bids": 3, "witness_quorum": 2,
                           "witness_ids": [o["id"] for o in members if "witness" in o["roles"]],
                           "opening_key": "0x" + keyed.opening_key.hex(), "response_window_minutes": 20}]}
    tender = _api(url, "POST", "/api/v1/tenders", agency, json.dumps(draft).encode(),
                  {"Content-Type": "application/json"})
    section = tender["sections"][0]
    section_id = bytes.fromhex(section["chain_id"][2:])
    bids = []
    for number, member in enumerate(dev_config.with_role(Role.BIDDER)[:3]):
        token = _token(url, member.identifier)
        _api(url, "POST", f"/api/v1/sections/{section['id']}/registration", token)
        envelope = seal_bid(section_id, keyed.opening_key, member.signer.address.lower(),
                            {"price_fen": 123_456_700 + number, "duration_days": 180}, os.urandom(256))
        bid = _api(url, "PUT", f"/api/v1/sections/{section['id']}/bid", token, envelope, {
            "Content-Type": "application/octet-stream", "X-Submission-Key": uuid.uuid4().hex,
            "X-Commitment": "0x" + hashlib.sha256(envelope).hexdigest(), "X-Cover-Kind": "cash_deposit",
            "X-Cover-Ref": f"DEP-B{number}"})
        bids.append((token, bid["id"]))
    deadline = time.monotonic() + 60
    while any(_api(url, "GET", f"/api/v1/bids/{b}", t)["status"] != "committed" for t, b in bids):
        assert time.monotonic() < deadline, "bids not committed on chain"
        time.sleep(0.3)
    # An amendment; two bidders confirm their bids for it on chain, the third does not.
    _api(url, "POST", f"/api/v1/tenders/{tender['id']}/amendments", agency,
         json.dumps({"summary": "工期改为150日历天"}).encode(), {"Content-Type": "application/json"})
    while not _api(url, "GET", f"/api/v1/bids/{bids[0][1]}", bids[0][0])["amendment_anchored"]:
        assert time.monotonic() < deadline, "amendment not on chain"
        time.sleep(0.3)
    for token, bid_id in bids[:2]:
        _api(url, "POST", f"/api/v1/bids/{bid_id}/reconfirm", token)
    while any((_api(url, "GET", f"/api/v1/bids/{b}", t)["reconfirmation"] or {}).get("status") != "confirmed"
              for t, b in bids[:2]):
        assert time.monotonic() < deadline, "confirmations not on chain"
        time.sleep(0.3)

    page = new_page()
    sign_in(page, url, dev_config.with_role(Role.BIDDER)[0].identifier)
    page.goto(f"{url}/sections/{section['id']}/hall")
    expect(page.locator("#connection")).to_have_text("已连接，实时更新")
    expect(page.locator("#presence")).to_contain_text(dev_config.with_role(Role.BIDDER)[0].name)
    expect(page.locator("#announcements tbody tr")).to_have_count(0)

    platform.backend.advance_to(section["opening_time"])
    order = [a.lower() for a in platform.tenders.witnesses(section_id)]
    request = AccessRequest(section_id, "browser-test", "decryption shares", 0)
    first, second = dev_config.with_role(Role.WITNESS)[:2]
    # The first witness with its own script: envelopes from the API, shares, batch to the API.
    index = order.index(first.signer.address.lower()) + 1
    token = _token(url, first.identifier)
    listing = _api(url, "GET", f"/api/v1/sections/{section['id']}/envelopes", token)["envelopes"]
    envelopes = {}
    for entry in listing:
        envelopes[entry["bidder"]] = tmp_path / f"{entry['bidder']}.jzb"
        envelopes[entry["bidder"]].write_bytes(_api(url, "GET", entry["url"], token))
    share = WitnessShare(section_id, index, keyed.secrets[index], keyed.opening_key)
    batch = release_shares(platform.tenders, first.signer, share, envelopes, request)
    _api(url, "POST", f"/api/v1/sections/{section['id']}/share-batches", token, batch.canonical(),
         {"Content-Type": "application/json"})
    # The second with the opening CLI against the platform (`shares --platform`).
    index = order.index(second.signer.address.lower()) + 1
    share_file = tmp_path / "share-2.json"
    save_share(share_file, "口令-2", WitnessShare(section_id, index, keyed.secrets[index], keyed.opening_key))
    monkeypatch.setenv("JZ_PASSPHRASE", "口令-2")
    monkeypatch.setenv("W2_KEY", "0x" + bytes(second.signer.account.key).hex())
    monkeypatch.setenv("JZ_PLATFORM_TOKEN", _token(url, second.identifier))
    assert opening_cli([
        "--key-env", "W2_KEY", "--rpc-url", platform.backend.chain.rpc_url, "--registry",
        platform.tenders.address, "--workers", "1", "shares", "--share-file", str(share_file),
        "--envelopes", str(tmp_path / "w2"), "--out", str(tmp_path / "shares-2.json"),
        "--platform", url, "--platform-section", str(section["id"])]) == 0

    expect(page.locator("#announcements tbody tr")).to_have_count(3, timeout=30_000)
    expect(page.locator("#announcements")).to_contain_text("1,234,567.00 元")
    unconfirmed = page.locator("#announcements tr.unconfirmed")
    expect(unconfirmed).to_have_count(1)
    expect(unconfirmed).to_contain_text(dev_config.with_role(Role.BIDDER)[2].name)
    expect(unconfirmed).to_contain_text("未确认招标文件第1次修改（投标对应最初发布的招标文件）")
    expect(page.locator("#announcements")).to_contain_text("已确认招标文件第1次修改")
    expect(page.locator("#result")).to_contain_text("开标有效", timeout=30_000)
    expect(page.locator("#record-links")).to_be_visible()
    expect(page.locator("#response-window")).to_contain_text("开标记录上链后 20 分钟")
    expect(page.locator("#window-ends")).to_contain_text("，截至 ")
    snap(page, "5-opening-hall")

    # After the record: the bidder objects in the page, the agency answers in its page once the
    # objection is on chain, and a witness has the platform redo the opening and attests.
    page.fill("#bidder-actions textarea[name=text]", "第二家报价的工期与招标文件要求不符")
    page.click("#object")
    expect(page.locator("#responses")).to_contain_text("第二家报价的工期")
    agency_page = new_page()
    sign_in(agency_page, url, dev_config.with_role(Role.AGENCY)[0].identifier)
    answer_box = agency_page.locator("#responses textarea[name=text]")
    for _ in range(60):  # the answer form appears once the objection is numbered on chain
        agency_page.goto(f"{url}/sections/{section['id']}/hall")
        if answer_box.count():
            break
        time.sleep(0.5)
    answer_box.fill("经核实，工期符合招标文件第三章的要求。")
    agency_page.get_by_role("button", name="答复异议").click()
    expect(agency_page.locator("#responses")).to_contain_text("答复：“经核实", timeout=30_000)
    witness_page = new_page()
    sign_in(witness_page, url, first.identifier)
    witness_page.goto(f"{url}/sections/{section['id']}/hall")
    witness_page.click("#attest")
    expect(page.locator("#attestations")).to_contain_text("已见证", timeout=30_000)
    snap(page, "6-opening-hall-after-record")
