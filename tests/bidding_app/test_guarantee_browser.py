"""In headless Chromium against the platform served as in production: a bidder applies for a guarantee,
the guarantor (seeing only the sealed reference) underwrites, records the premium and issues it, and the
bidder downloads a letter that verifies as genuine against the chain."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect

from contracts.deploy import ConsortiumConfig
from contracts.records import Role
from guarantees.records import Verdict
from guarantees.verify import verify_letter
from tests.bidding_app.conftest import CHROMIUM, OPENING_KEY, PASSWORD, Served
from tests.bidding_app.test_browser import served, sign_in, snap
from tests.bidding_app.test_guarantee_lifecycle import resync_signers
from tests.helpers import Platform

__all__ = ["resync_signers", "served"]  # fixtures shared with the other journeys


def published_section(url: str, platform: Platform, config: ConsortiumConfig) -> tuple[int, str]:
    """A section published through the served platform's API and confirmed on chain; (id, tender title)."""
    http = requests.Session()
    token = http.post(f"{url}/api/v1/token", json={"username": config.with_role(Role.AGENCY)[0].identifier,
                                                   "password": PASSWORD}, timeout=10).json()["token"]
    http.headers["Authorization"] = f"Bearer {token}"
    members = http.get(f"{url}/api/v1/organisations", timeout=10).json()["organisations"]
    witnesses = [m["id"] for m in members if "witness" in m["roles"]][:2]
    tenderer = next(m["id"] for m in members if "tenderer" in m["roles"])
    title = f"浏览器保函测试工程 {uuid.uuid4().hex[:6]}"
    created = http.post(f"{url}/api/v1/tenders", timeout=10, json={
        "title": title, "description": "保函。", "tenderer_id": tenderer, "submission_key": uuid.uuid4().hex,
        "sections": [{"title": "施工", "opening_time": platform.now() + 7200, "bid_bond": 50_000_000,
                      "bid_validity_days": 60, "min_valid_bids": 3, "witness_ids": witnesses, "witness_quorum": 2,
                      "opening_key": OPENING_KEY}]}).json()
    for _ in range(120):
        tender = http.get(f"{url}/api/v1/tenders/{created['id']}", timeout=10).json()
        if tender["sections"][0]["chain_tx"]:
            return int(tender["sections"][0]["id"]), title
        time.sleep(0.25)
    raise TimeoutError("the section did not reach the chain")


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium not installed")
def test_bidder_applies_guarantor_issues_bidder_downloads(
    served: Served, new_page: Callable[..., Page], platform: Platform, dev_config: ConsortiumConfig, tmp_path: Path
) -> None:
    url = served.url
    section_id, title = published_section(url, platform, dev_config)
    bidder = new_page(accept_downloads=True)
    sign_in(bidder, url, dev_config.with_role(Role.BIDDER)[0].identifier)
    bidder.goto(f"{url}/sections/{section_id}/bid")
    bidder.click("#register")
    bidder.click("#apply-guarantee")
    bidder.select_option("#guarantor_id", label=dev_config.with_role(Role.GUARANTOR)[0].name)
    snap(bidder, "g1-apply")
    bidder.click("#apply")
    expect(bidder.locator("#guarantee-state")).to_have_attribute("data-state", "applied")
    detail_url = bidder.url

    guarantor = new_page()
    sign_in(guarantor, url, dev_config.with_role(Role.GUARANTOR)[0].identifier)
    guarantor.goto(detail_url)
    expect(guarantor.locator("#sealed-ref")).to_contain_text("密文引用")
    assert title not in guarantor.content()
    expect(guarantor.locator("#rule-results")).to_contain_text("全部通过")
    guarantor.fill("#reason", "资信良好")
    guarantor.click("#approve")
    guarantor.fill("#payer_account", "6222020200112233")
    guarantor.fill("#payment_ref", "PAY-BROWSER-1")
    guarantor.click("#record-premium")
    snap(guarantor, "g2-premium-recorded")
    guarantor.click("#issue")
    expect(guarantor.locator("#guarantee-state")).to_have_attribute("data-state", "issued", timeout=30_000)
    snap(guarantor, "g3-issued")

    bidder.reload()
    expect(bidder.locator("#guarantee-state")).to_have_attribute("data-state", "issued")
    with bidder.expect_download() as downloading:
        bidder.click("#letter-link")
    saved = tmp_path / "letter.pdf"
    downloading.value.save_as(saved)
    pdf = saved.read_bytes()
    assert pdf.startswith(b"%PDF")
    assert verify_letter(platform.deployment, pdf, with_proof=False).verdict is Verdict.GENUINE_IN_FORCE
