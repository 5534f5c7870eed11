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
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from bidding_app import create_app
from bidding_app.launch import start_platform
from contracts.deploy import ConsortiumConfig
from contracts.records import Role
from opening import dkg
from tests.backends import selected_backends
from tests.bidding_app.conftest import KEK, PASSWORD, app_config, free_port, seeded
from tests.helpers import Platform

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]

def real_opening_key(witnesses: int = 2, threshold: int = 2) -> str:
    """An opening key as the witnesses' DKG (opening.dkg) makes it, in its anchored encoding.

    Opening bids sealed to it is the opening module's own test domain; here it is what the browser
    seals to through opening/static/sealing.js.
    """
    transport = [dkg.new_transport_key() for _ in range(witnesses)]
    params = dkg.DkgParams(os.urandom(32), threshold, tuple(public for _, public in transport))
    deals = [dkg.deal(params, dealer) for dealer in range(1, witnesses + 1)]
    return "0x" + dkg.finish(params, deals, []).opening_key.encode().hex()


@pytest.fixture
def served(tmp_path: Path, platform: Platform, dev_config: ConsortiumConfig) -> Iterator[str]:
    """The platform in a gunicorn subprocess on a free loopback port, over a seeded SQLite database.

    With the first chain backend only: the browser journey does not depend on the kind of chain (the
    other tests run on each), and the whole set stays within its time budget."""
    if platform.backend.name != selected_backends()[0]:
        pytest.skip("the browser journey runs with the first chain backend only")
    database = f"sqlite:///{tmp_path / 'browser.db'}"
    seeder = seeded(create_app(app_config(database, tmp_path, platform)), dev_config)
    seeder.extensions["jianzheng_db"].engine.dispose()
    manifest = tmp_path / "deployment.json"
    manifest.write_text(json.dumps(platform.manifest))
    running = start_platform(
        free_port(),
        ["--rpc-url", platform.backend.chain.rpc_url, "--deployment", str(manifest), "--database-url", database],
        {"JIANZHENG_KEY_ENCRYPTION_KEY": KEK, "JIANZHENG_UPLOAD_FOLDER": str(tmp_path / "uploads"),
         "JIANZHENG_SECRET_KEY": "browser-test-secret"},
        tmp_path / "server.log",
    )
    try:
        yield running.url
    finally:
        running.stop()


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
    served: str, platform: Platform, dev_config: ConsortiumConfig, tmp_path: Path
) -> None:
    opening = platform.now() + 7200
    local = dt.datetime.fromtimestamp(opening, dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%dT%H:%M")
    bid_file = tmp_path / "投标文件.pdf"
    bid_file.write_bytes("%PDF-1.7 报价：12,345,678.00 元".encode() + os.urandom(2048))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            agency = browser.new_context(locale="zh-CN").new_page()
            sign_in(agency, served, dev_config.with_role(Role.AGENCY)[0].identifier)
            agency.click("text=发布招标项目")
            agency.fill("input[name=title]", "浏览器测试：污水处理厂扩建工程")
            agency.fill("textarea[name=description]", "扩建规模 5 万吨/日。")
            agency.fill("input[name=s0_title]", "施工总承包")
            agency.fill("input[name=s0_opening]", local)
            agency.fill("input[name=s0_bond]", "500000")
            for name in ("市公共资源交易中心", "市公证处"):
                agency.get_by_label(name).first.check()
            agency.fill("input[name=s0_quorum]", "2")
            agency.fill("input[name=s0_opening_key]", real_opening_key())
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

            bidder = browser.new_context(locale="zh-CN").new_page()
            sign_in(bidder, served, dev_config.with_role(Role.BIDDER)[0].identifier)
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
            (stored,) = (tmp_path / "uploads" / "bids").rglob("*.sealed")
            sealed = stored.read_bytes()
            assert sealed.startswith(b"JZSEAL") and "0x" + hashlib.sha256(sealed).hexdigest() == commitment
            assert b"12345678" not in sealed and b"%PDF" not in sealed  # nothing readable
        finally:
            browser.close()
