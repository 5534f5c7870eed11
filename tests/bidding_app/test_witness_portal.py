"""The witness portal: block explorer with commit seals, a section's on-chain history, proof bundles
(download, offline verification, tampering), sections awaiting attestation, and a plain node (anvil)
answered with a clear "not available"."""

from __future__ import annotations

import argparse
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from eth_typing import HexStr
from playwright.sync_api import Page, expect

from bidding_app.db import db
from bidding_app.models import Bid
from chain_node import proofs
from contracts.deploy import ConsortiumConfig
from contracts.records import Role
from tests.bidding_app.conftest import CHROMIUM, PASSWORD, Clients, opening_key, serve_platform
from tests.bidding_app.test_bids import open_section, placed_bid, register, upload
from tests.bidding_app.test_browser import sign_in, snap
from tests.helpers import Platform, random_hash


def committed_bid(clients: Clients, platform: Platform) -> tuple[int, str, int]:
    """A section with one bid committed on chain: section id, the commit's tx hash and block."""
    section, _bidder = placed_bid(clients, platform, b"sealed-for-the-portal")
    clients.drain()
    with clients.app.app_context():
        bid = db.session.scalars(sa.select(Bid)).one()
        assert bid.chain_tx and bid.chain_block
        return section.id, bid.chain_tx, bid.chain_block


def test_explorer_shows_blocks_seals_history_and_proofs(clients: Clients, platform: Platform, tmp_path: Path) -> None:
    section_id, tx, block = committed_bid(clients, platform)
    witness = clients.logged_in(Role.WITNESS, 1)  # the witness organisation (not the admin's)
    seals = platform.backend.name == "chain_node"

    index = witness.get("/witness").get_data(as_text=True)
    assert "最新区块" in index and ("no-seals" in index) != seals
    listed = witness.get(f"/witness/blocks?before={block + 1}").get_data(as_text=True)
    assert listed.index(f'href="/witness/blocks/{block}"') < listed.index(
        f'href="/witness/blocks/{block - 1}"')

    page = witness.get(f"/witness/blocks/{block}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and tx in text
    if seals:
        assert 'data-final="yes"' in text and 'data-valid="no"' not in text
        assert text.count('data-valid="yes"') >= 3  # a quorum of the 4 validators
    else:
        assert 'id="no-seals"' in text and "anvil" in text

    history = witness.get(f"/witness/sections/{section_id}/history").get_data(as_text=True)
    order = [history.index(f'data-event="{name}"') for name in ("TenderCreated", "SectionAdded", "BidCommitted")]
    assert order == sorted(order) and tx[:18] in history

    proof = witness.get(f"/witness/proofs/{tx}")
    if not seals:
        assert proof.status_code == 501 and "不提供提交签名与存证证明" in proof.get_data(as_text=True)
        answer = witness.get(f"/witness/proofs/{tx}/bundle.json", headers={"Accept": "application/json"})
        assert answer.status_code == 501 and answer.json["error"]["code"] == "seals_unavailable"  # type: ignore[index]
        return
    assert proof.status_code == 200 and 'id="proof-bundle"' in proof.get_data(as_text=True)
    bundle = witness.get(f"/witness/proofs/{tx}/bundle.json")
    assert bundle.headers["Content-Disposition"].startswith("attachment")
    validators = witness.get(f"/witness/proofs/{tx}/validators.json")
    (tmp_path / "bundle.json").write_bytes(bundle.data)
    (tmp_path / "validators.json").write_bytes(validators.data)
    bidder = clients.config.with_role(Role.BIDDER)[0].signer.address
    arguments = argparse.Namespace(bundle=str(tmp_path / "bundle.json"), validators=str(tmp_path / "validators.json"),
                                   event="BidCommitted", arg=[f"bidder={bidder}"])
    assert proofs.main(arguments) == 0  # what `python -m chain_node verify` runs

    tampered = json.loads(bundle.data)
    receipt = bytearray(bytes.fromhex(tampered["receipt"][2:]))
    receipt[-1] ^= 0x01
    tampered["receipt"] = "0x" + receipt.hex()
    validator_set = proofs.load_validator_set(tmp_path / "validators.json")
    with pytest.raises(proofs.ProofFailed, match="the receipt differs"):
        proofs.verify_bundle(tampered, validator_set)


def test_bad_and_unknown_input_gets_specific_answers(clients: Clients, platform: Platform) -> None:
    regulator = clients.logged_in(Role.REGULATOR)
    bad = regulator.get("/witness/proofs/0x1234", headers={"Accept": "application/json"})
    assert bad.status_code == 400 and bad.json == {"error": {"code": "invalid_input", "field": "tx_hash",
                                                             "message": "交易哈希必须是 0x 开头的 64 位十六进制数"}}
    assert regulator.get("/witness/blocks/99999999").status_code == 404
    assert regulator.get("/witness/blocks?before=abc").status_code == 400
    assert regulator.get("/witness/sections/999999/history").status_code == 404
    unknown = regulator.get("/witness/proofs/0x" + "ab" * 32)
    assert unknown.status_code == (404 if platform.backend.name == "chain_node" else 501)


def test_a_bidder_sees_another_bidders_proof_only_after_the_opening_time(clients: Clients, platform: Platform) -> None:
    if platform.backend.name != "chain_node":
        pytest.skip("proofs need chain_node (anvil answers 501 to everyone, tested above)")
    section = open_section(clients, platform, opening_in=120)
    first, second = clients.logged_in(Role.BIDDER, 0), clients.logged_in(Role.BIDDER, 1)
    for bidder in (first, second):
        register(bidder, section)
    upload(first, section, b"sealed-first")
    clients.drain()
    with clients.app.app_context():
        tx = db.session.scalars(sa.select(Bid.chain_tx)).one()
    assert tx
    assert first.get(f"/witness/proofs/{tx}").status_code == 200  # its own transaction
    before = second.get(f"/witness/proofs/{tx}/bundle.json", headers={"Accept": "application/json"})
    assert before.status_code == 404 and before.json is not None and before.json["error"]["code"] == "not_found"
    assert clients.logged_in(Role.WITNESS, 1).get(f"/witness/proofs/{tx}").status_code == 200
    platform.backend.advance_to(section.opening_time + 1)
    assert second.get(f"/witness/proofs/{tx}").status_code == 200


def test_sections_awaiting_attestation_are_listed_for_their_witnesses_only(
    clients: Clients, platform: Platform
) -> None:
    section = open_section(clients, platform, opening_in=120)
    chain_id = bytes.fromhex(section.chain_id[2:])
    witness = clients.logged_in(Role.WITNESS, 1)
    assert f"/sections/{section.id}/hall" not in witness.get("/witness").get_data(as_text=True)  # not closed yet
    platform.backend.advance_to(section.opening_time + 1)
    platform.deployment.tenders.close_opening(platform.agency, chain_id, random_hash())  # no bids: failed tender
    page = witness.get("/witness").get_data(as_text=True)
    assert f"/sections/{section.id}/hall" in page and "流标" in page
    # A witness organisation that is not one of the section's witnesses sees nothing of it.
    outsider = clients.logged_in(Role.WITNESS, 2)
    assert f"/sections/{section.id}/hall" not in outsider.get("/witness").get_data(as_text=True)


# ------------------------------------------------------------------------------------ in the browser


@pytest.fixture
def served_with_seals(tmp_path: Path, platform: Platform, dev_config: ConsortiumConfig) -> Iterator[str]:
    """The platform served by gunicorn (as test_browser.py does), on the chain_node backend: the journey
    needs commit seals, which only chain_node keeps."""
    if platform.backend.name != "chain_node":
        pytest.skip("the witness journey needs chain_node's commit seals")
    with serve_platform(tmp_path, platform, dev_config) as served:
        yield served.url


def publish_over_api(url: str, platform: Platform, dev_config: ConsortiumConfig) -> int:
    """A tender with one section sealed to a real DKG opening key, published and put on chain; its section id."""
    http = requests.Session()
    token = http.post(url + "/api/v1/token", json={"username": dev_config.with_role(Role.AGENCY)[0].identifier,
                                                   "password": PASSWORD}).json()["token"]
    http.headers["Authorization"] = f"Bearer {token}"
    members = http.get(url + "/api/v1/organisations").json()["organisations"]
    witnesses = [m["id"] for m in members if "witness" in m["roles"]][:2]
    draft = {"title": "见证门户测试：雨水管网工程", "description": "管网。", "submission_key": uuid.uuid4().hex,
             "tenderer_id": next(m["id"] for m in members if "tenderer" in m["roles"]),
             "sections": [{"title": "第一标段", "opening_time": platform.now() + 7200, "bid_bond": 10_000_000,
                           "bid_validity_days": 90, "min_valid_bids": 3, "witness_ids": witnesses,
                           "witness_quorum": 2, "opening_key": opening_key(2, 2)}]}
    published = http.post(url + "/api/v1/tenders", json=draft)
    assert published.status_code == 201, published.text
    tender = published.json()
    for _ in range(120):
        if http.get(url + f"/api/v1/tenders/{tender['id']}").json()["sections"][0].get("chain_tx"):
            break
        time.sleep(0.25)
    section_id: int = tender["sections"][0]["id"]
    return section_id


def bid_in_browser(page: Page, url: str, username: str, section_id: int, document: Path) -> str:
    """Sign in, register, seal and upload a bid, wait for its commitment on chain, sign out; its tx hash."""
    sign_in(page, url, username)
    page.goto(url + f"/sections/{section_id}/bid")
    page.click("#register")
    page.select_option("#cover_kind", "cash_deposit")
    page.fill("#cover_ref", "DEP-" + uuid.uuid4().hex[:8])
    page.fill("#price", "1000000.00")
    page.fill("#duration", "120")
    page.set_input_files("#bid-file", str(document))
    page.click("#seal-and-upload")
    expect(page.locator("h1")).to_have_text("投标回执", timeout=30_000)
    for _ in range(60):
        if page.locator("#bid-status").get_attribute("data-status") == "committed":
            break
        time.sleep(0.5)
        page.reload()
    expect(page.locator("#bid-status")).to_have_attribute("data-status", "committed")
    transaction = page.locator("#bid-tx").inner_text()
    page.click("text=退出")
    return transaction


TAMPER_SCRIPT = """async (bundle) => {
  const { verifyBundle } = await import("/static/proof_verify.js");
  const validators = JSON.parse(document.getElementById("validator-file").textContent).validators;
  const flip = (hex, at) => hex.slice(0, at) + (hex[at] === "0" ? "1" : "0") + hex.slice(at + 1);
  const attempt = (changed, set) => {
    try { verifyBundle(changed, set); return ["ok", ""]; } catch (error) { return [error.step, error.message]; }
  };
  const seal = structuredClone(bundle);
  seal.commitSeals[0].signature = flip(seal.commitSeals[0].signature, 10);
  return {
    header: attempt({ ...bundle, header: flip(bundle.header, 20) }, validators),
    seal: attempt(seal, validators),
    validators: attempt(bundle, validators.filter((v) => v.toLowerCase() !== bundle.commitSeals[0].validator)),
  };
}"""


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium not installed")
def test_witness_verifies_a_proof_in_the_page_and_regulator_sees_a_same_device_alert(
    served_with_seals: str, new_page: Callable[..., Page], platform: Platform, dev_config: ConsortiumConfig,
    tmp_path: Path,
) -> None:
    url = served_with_seals
    section_id = publish_over_api(url, platform, dev_config)
    document = tmp_path / "投标文件.pdf"
    document.write_bytes(b"%PDF-1.7 " + os.urandom(1024))
    # Two bidders take turns in one browser (one localStorage): the same device.
    shared = new_page()
    bidders = dev_config.with_role(Role.BIDDER)[:2]
    transactions = [bid_in_browser(shared, url, b.identifier, section_id, document) for b in bidders]

    regulator = new_page()
    sign_in(regulator, url, dev_config.with_role(Role.REGULATOR)[0].identifier)
    regulator.click("text=智慧监管")
    regulator.click("text=查看全部预警")
    in_section = f":has(a[href='/regulator/sections/{section_id}'])"
    alert = regulator.locator("tr.alert[data-kind=same_device]" + in_section)
    expect(alert).to_contain_text(bidders[0].name)
    expect(alert).to_contain_text(bidders[1].name)
    snap(regulator, "portal-1-alerts")
    alert.locator("a.evidence").first.click()
    expect(regulator.locator("#origin-device")).to_have_text(re.compile(r"^[0-9a-f]{32}$"))
    regulator.goto(url + f"/regulator/sections/{section_id}")
    expect(regulator.locator("#alerts tr.alert[data-kind=same_device]")).to_have_count(1)
    snap(regulator, "portal-1b-section")

    witness = new_page(accept_downloads=True)
    sign_in(witness, url, dev_config.with_role(Role.WITNESS)[1].identifier)
    witness.click("text=见证门户")
    expect(witness.locator("#block-list")).to_be_visible()
    snap(witness, "portal-2a-index")
    receipt_of = platform.backend.chain.w3.eth.get_transaction_receipt
    block = int(receipt_of(HexStr(transactions[0]))["blockNumber"])
    witness.goto(url + f"/witness/blocks/{block}")
    expect(witness.locator("#seal-verdict")).to_have_attribute("data-final", "yes")
    assert witness.locator("#seal-table tr[data-valid=yes]").count() >= 3  # a quorum of the 4 validators
    snap(witness, "portal-2-block")
    witness.locator(f"#tx-list tr:has-text('{transactions[0]}') a").click()
    verdict = witness.locator("#verify-verdict")
    expect(verdict).to_have_attribute("data-result", "ok", timeout=20_000)
    expect(verdict).to_contain_text(f"区块 {block}")
    expect(witness.locator("#verify-events")).to_contain_text("TenderRegistry.BidCommitted")
    snap(witness, "portal-3-proof")

    with witness.expect_download() as download:
        witness.click("#download-bundle")
    bundle = json.loads(Path(download.value.path()).read_text())
    receipt = bytearray(bytes.fromhex(bundle["receipt"][2:]))
    receipt[-1] ^= 0x01  # one byte of the receipt changed
    bundle["receipt"] = "0x" + receipt.hex()
    (tmp_path / "tampered.json").write_text(json.dumps(bundle))
    witness.set_input_files("#own-bundle", str(tmp_path / "tampered.json"))
    expect(verdict).to_have_attribute("data-result", "failed")
    expect(verdict).to_have_attribute("data-step", "receipt")
    expect(verdict).to_contain_text("收据被改动")
    snap(witness, "portal-4-tampered")
    # One byte of the header, or of a seal's signature: each its own failure, from the page's module.
    failures = witness.evaluate(TAMPER_SCRIPT, json.loads(Path(download.value.path()).read_text()))
    assert failures["header"][0] == "header" and "区块头" in failures["header"][1]
    assert failures["seal"][0] == "seals" and "提交签名 1" in failures["seal"][1]
    assert failures["validators"][0] == "seals" and "不在共识节点集合中" in failures["validators"][1]
