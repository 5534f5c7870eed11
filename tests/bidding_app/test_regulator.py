"""The regulator dashboard: the collusion rules on constructed records, upload origins recorded at every
upload (trusted proxies only), the dashboard's pages and alerts with evidence, early-access attempts."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
import zipfile
from pathlib import Path

import sqlalchemy as sa
from flask.testing import FlaskClient

from bidding_app import oversight
from bidding_app.db import db
from bidding_app.models import Bid, BidUpload, BidUploadOrigin, OpenedBid
from bidding_app.oversight import GuaranteeAccount, OpenedDocument, UploadOrigin
from contracts.records import Role
from tests.bidding_app.conftest import Clients, csrf_of
from tests.bidding_app.test_bids import api_client, open_section, register, upload
from tests.helpers import Platform

DEVICE = "d3v1ce-0123456789abcdef"

# ------------------------------------------------------------------------------------ rules (pure)


def origin(section: int, bidder: int, upload_id: int, ip: str, device: str | None) -> UploadOrigin:
    return UploadOrigin(section, bidder, upload_id, ip, device, "Mozilla/5.0 Chromium")


def test_shared_ip_and_device_between_different_bidders_of_a_section() -> None:
    alerts = oversight.shared_origin_alerts([
        origin(1, 10, 100, "203.0.113.7", "dev-aaaaaaaaaaaaaaaa"),
        origin(1, 11, 101, "203.0.113.7", "dev-bbbbbbbbbbbbbbbb"),
        origin(1, 12, 102, "198.51.100.1", "dev-bbbbbbbbbbbbbbbb"),
        origin(1, 10, 103, "198.51.100.9", "dev-cccccccccccccccc"),  # one bidder's own uploads share nothing
        origin(1, 10, 104, "198.51.100.9", "dev-cccccccccccccccc"),
        origin(2, 13, 105, "203.0.113.7", None),  # same IP, but another section
    ])
    assert [(a.kind, a.section_id, a.bidder_org_ids) for a in alerts] == [
        ("same_ip", 1, (10, 11)), ("same_device", 1, (11, 12))]
    same_ip, same_device = alerts
    assert [e.ref for e in same_ip.evidence] == ["100", "101"] and {e.kind for e in same_ip.evidence} == {"upload"}
    assert "203.0.113.7" in same_ip.detail and "Chromium" in same_device.detail
    again = oversight.shared_origin_alerts([origin(1, 11, 101, "203.0.113.7", None),
                                            origin(1, 10, 100, "203.0.113.7", None)])
    assert again[0].id == same_ip.id  # stable: the same signal has the same id


def test_identical_documents_and_metadata() -> None:
    metadata = {"author": "张三", "creator": "WPS Office", "CreationDate": "D:20260301120000+08'00'"}
    documents = [
        OpenedDocument(5, 20, "aa" * 32, metadata, bid_id=1),
        OpenedDocument(5, 21, "AA" * 32, {"Author": " 张三 ", **{k: v for k, v in metadata.items() if k != "author"}},
                       bid_id=2),
        OpenedDocument(5, 22, "bb" * 32, {"producer": "WPS Office", "author": ""}, bid_id=3),
        OpenedDocument(5, 23, "cc" * 32, {"producer": "WPS Office"}, bid_id=4),  # one field: no sign
    ]
    alerts = oversight.identical_document_alerts(documents)
    assert [(a.kind, a.bidder_org_ids) for a in alerts] == [("same_document_hash", (20, 21)),
                                                            ("same_document_metadata", (20, 21))]
    assert [e.ref for e in alerts[0].evidence] == ["1", "2"] and alerts[0].evidence[0].kind == "bid"
    apart = [OpenedDocument(5, 20, "aa" * 32), OpenedDocument(6, 21, "aa" * 32)]  # different sections
    assert oversight.identical_document_alerts(apart) == []


def test_guarantees_applied_for_or_paid_from_the_same_account() -> None:
    alerts = oversight.shared_guarantee_account_alerts([
        GuaranteeAccount(7, 30, "BH-1", "6222 0001", "6222 9999"),
        GuaranteeAccount(7, 31, "BH-2", "6222 0002", "6222 9999"),  # same payer
        GuaranteeAccount(7, 32, "BH-3", "6222 0001", None),  # applicant = another's applicant
        GuaranteeAccount(7, 33, "BH-4", "6222 0004", "6222 0004"),  # its own account twice: nothing
    ])
    assert sorted((a.detail, a.bidder_org_ids) for a in alerts) == [
        ("账户 6222 0001", (30, 32)), ("账户 6222 9999", (30, 31))]
    assert all(a.kind == "same_guarantee_account" and a.evidence[0].kind == "guarantee" for a in alerts)


def test_client_ip_trusts_forwarded_addresses_from_configured_proxies_only() -> None:
    assert oversight.client_ip("198.51.100.4", "203.0.113.9", []) == "198.51.100.4"
    assert oversight.client_ip("10.0.0.2", "203.0.113.9, 10.0.0.1", ["10.0.0.2", "10.0.0.1"]) == "203.0.113.9"
    # The left part is the client's to forge: only the hop our proxy added counts.
    assert oversight.client_ip("10.0.0.2", "1.2.3.4, 203.0.113.9", ["10.0.0.2"]) == "203.0.113.9"
    assert oversight.client_ip("10.0.0.2", "not-an-ip", ["10.0.0.2"]) == "10.0.0.2"


# ------------------------------------------------------------------------------------ the dashboard


def device_upload(bidder: FlaskClient, section_id: int, content: bytes, device: str, **headers: str) -> None:
    response = bidder.post(f"/sections/{section_id}/bid", data=_form(bidder, section_id, content),
                           headers={"X-Device-Id": device, **headers})
    assert response.status_code == 302, response.get_data(as_text=True)


def _form(bidder: FlaskClient, section_id: int, content: bytes) -> dict[str, object]:
    return {"csrf_token": csrf_of(bidder, f"/sections/{section_id}/bid"), "submission_key": uuid.uuid4().hex,
            "commitment": "0x" + hashlib.sha256(content).hexdigest(), "cover_kind": "cash_deposit",
            "cover_ref": "DEP-" + uuid.uuid4().hex[:8], "envelope": (io.BytesIO(content), "bid.sealed")}


def test_two_bidders_from_one_device_raise_an_alert_with_evidence(clients: Clients, platform: Platform) -> None:
    clients.app.config["TRUSTED_PROXIES"] = ["127.0.0.1"]
    section = open_section(clients, platform)
    first, second = clients.logged_in(Role.BIDDER, 0), clients.logged_in(Role.BIDDER, 1)
    for bidder in (first, second):
        register(bidder, section)
    device_upload(first, section.id, b"sealed-one", DEVICE, **{"X-Forwarded-For": "203.0.113.50"})
    device_upload(second, section.id, b"sealed-two", DEVICE)
    clients.drain()

    regulator = clients.logged_in(Role.REGULATOR)
    answer = regulator.get("/regulator/alerts", headers={"Accept": "application/json"}).json
    assert answer is not None
    (alert,) = [a for a in answer["alerts"] if a["kind"] == "same_device"]
    bidder_ids = {clients.organisation(Role.BIDDER, 0).id, clients.organisation(Role.BIDDER, 1).id}
    assert alert["section_id"] == section.id and {b["id"] for b in alert["bidders"]} == bidder_ids
    assert all(e["url"].startswith("/regulator/uploads/") for e in alert["evidence"]) and len(alert["evidence"]) == 2
    # Behind the trusted proxy the forwarded address counts: the two uploads do not share an IP.
    assert not [a for a in answer["alerts"] if a["kind"] == "same_ip" and a["section_id"] == section.id]

    evidence = regulator.get(alert["evidence"][0]["url"]).get_data(as_text=True)
    assert DEVICE in evidence and "203.0.113.50" in evidence
    page = regulator.get(f"/regulator/sections/{section.id}").get_data(as_text=True)
    assert f'id="alert-{alert["id"]}"' in page and "不同投标人从同一设备" in page
    overview = regulator.get("/regulator").get_data(as_text=True)
    assert f'data-section="{section.id}"' in overview and "投标中" in overview


def test_a_malformed_device_id_is_refused_and_stores_nothing(clients: Clients, platform: Platform) -> None:
    section = open_section(clients, platform)
    bidder = clients.logged_in(Role.BIDDER)
    register(bidder, section)
    response = bidder.post(f"/sections/{section.id}/bid", data=_form(bidder, section.id, b"sealed"),
                           headers={"X-Device-Id": "<script>", "Accept": "application/json"})
    assert response.status_code == 400 and response.json is not None
    assert response.json["error"]["field"] == "device_id"
    with clients.app.app_context():
        assert db.session.scalars(sa.select(Bid)).all() == []
        assert db.session.scalars(sa.select(BidUploadOrigin)).all() == []
    # An API upload without a device id is recorded with its address only.
    upload(bidder, section, b"sealed")
    with clients.app.app_context():
        (recorded,) = db.session.scalars(sa.select(BidUploadOrigin)).all()
        assert recorded.device_id is None and recorded.client_ip == "127.0.0.1"
        assert recorded.upload_id == db.session.scalars(sa.select(BidUpload.id)).one()


def test_early_access_attempts_and_provided_records_become_alerts(clients: Clients, platform: Platform) -> None:
    section = open_section(clients, platform)
    agency = api_client(clients, Role.AGENCY)
    refused = clients.app.test_client().get(f"/api/v1/sections/{section.id}/envelopes", headers=agency)
    assert refused.status_code == 409
    bidders = clients.org_ids(Role.BIDDER)[:2]
    clients.app.extensions["jianzheng_oversight"] = oversight.Providers(
        opened_documents=lambda _session, ids: [OpenedDocument(i, b, "ee" * 32) for i in ids for b in bidders],
        guarantee_accounts=lambda _session, ids: [GuaranteeAccount(i, b, f"BH-{b}", "6222 7777") for i in ids
                                                  for b in bidders],
    )
    regulator = clients.logged_in(Role.REGULATOR)
    answer = regulator.get(f"/regulator/sections/{section.id}", headers={"Accept": "application/json"}).json
    assert answer is not None
    kinds = {a["kind"]: a for a in answer["alerts"]}
    assert set(kinds) == {"early_access", "same_document_hash", "same_guarantee_account"}
    (attempt,) = answer["early_access"]
    assert kinds["early_access"]["evidence"][0]["url"] == f"/witness/proofs/{attempt['tx']}"
    assert kinds["same_guarantee_account"]["evidence"][0]["url"].startswith("/regulator/guarantees?number=BH-")
    page = regulator.get(f"/regulator/sections/{section.id}").get_data(as_text=True)
    assert attempt["tx"][:18] in page and "开标前有人试图读取密封投标文件" in page


def test_document_metadata_is_read_from_pdfs_and_office_files(tmp_path: Path) -> None:
    from reportlab.pdfgen import canvas

    from bidding_app.document_metadata import metadata_of

    pdf = tmp_path / "bid.document"
    drawing = canvas.Canvas(str(pdf))
    drawing.setAuthor("张三")
    drawing.setCreator("投标文件制作工具 3.1")
    drawing.drawString(100, 700, "bid")
    drawing.save()
    found = metadata_of(pdf)
    assert found["author"] == "张三" and found["creator"] == "投标文件制作工具 3.1" and "producer" in found
    docx = tmp_path / "bid2.document"
    with zipfile.ZipFile(docx, "w") as archive:
        archive.writestr("docProps/core.xml", '<cp:coreProperties xmlns:cp="urn:cp" xmlns:dc="urn:dc">'
                         "<dc:creator>李四</dc:creator><cp:lastModifiedBy>李四</cp:lastModifiedBy>"
                         "</cp:coreProperties>")
    assert metadata_of(docx) == {"author": "李四", "last_modified_by": "李四"}
    (tmp_path / "plain.document").write_bytes(b"not a document format we read")
    assert metadata_of(tmp_path / "plain.document") == {}
    (tmp_path / "broken.document").write_bytes(b"%PDF-1.7 broken")
    assert metadata_of(tmp_path / "broken.document") == {}


def test_opened_documents_come_from_the_hall_table(clients: Clients, platform: Platform) -> None:
    section = open_section(clients, platform)
    bidders = clients.org_ids(Role.BIDDER)[:3]
    metadata = {"author": "张三", "creator": "投标文件制作工具 3.1"}
    with clients.app.app_context():
        for index, bidder in enumerate(bidders):
            db.session.add(OpenedBid(
                section_id=section.id, bidder_id=bidder, bidder_address=f"0x{index:040x}", commitment="0x" + "00" * 32,
                outcome="opened", detail="", document_sha256=("aa" if index < 2 else "bb") * 32,
                document=json.dumps({"name": "bid.pdf", "size": 10, "metadata": metadata if index else {}}),
                anchored_hash="0x" + "11" * 32))
        db.session.commit()
        found = oversight.opened_documents_from_hall(db.session, [section.id])
        alerts = oversight.collusion_alerts(db.session, [section.id], oversight.Providers())[section.id]
    assert sorted(d.document_sha256[:2] for d in found) == ["aa", "aa", "bb"]
    kinds = sorted(a.kind for a in alerts)
    assert kinds == ["same_document_hash", "same_document_metadata"]
