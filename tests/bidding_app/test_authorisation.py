"""Every route × every role: who may use it, who is refused, and other organisations' objects."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from flask.testing import FlaskClient

from bidding_app.accounts import hash_password
from bidding_app.db import db
from bidding_app.models import Bid, BidUpload, Organisation, User
from contracts.records import Role
from tests.bidding_app.conftest import PASSWORD, Clients, csrf_of, login
from tests.bidding_app.test_bids import api_client, open_section, placed_bid
from tests.helpers import Platform

# The users of the dev consortium by the role the table speaks of (some organisations hold two roles).
USERS = {
    "admin": "12350200MB0000001X",  # admin + witness
    "regulator": "11350200MB0000002Y",  # admin + regulator
    "witness": "12350200MB00000040",
    "tenderer": "91350200MA00000062",
    "agency": "91350200MA00000073",
    "bidder": "91350200MA00000084",
    "guarantor": "91350200MA0000013D",
}
EVERYONE = set(USERS)
AGENCY, BIDDER = {"agency"}, {"bidder"}
AWARD_READERS = {"agency", "tenderer", "bidder", "regulator", "admin"}
CEREMONY_READERS = {"agency", "witness", "regulator", "admin"}
PORTAL, REGULATOR = {"admin", "regulator", "witness"}, {"admin", "regulator"}
HALL = EVERYONE - {"guarantor"}
SECTION_WITNESSES = {"admin", "witness"}
GUARANTOR, PARTIES = {"guarantor"}, {"bidder", "guarantor", "tenderer", "agency"}

# (method, path, who may use it); {t} tender, {s} section, {b} bid, {g} guarantee application.
ROUTES: list[tuple[str, str, set[str]]] = [
    ("GET", "/", EVERYONE),
    ("GET", "/tenders", EVERYONE),
    ("GET", "/tenders/new", AGENCY),
    ("POST", "/tenders/new", AGENCY),
    ("GET", "/tenders/{t}", EVERYONE),
    ("POST", "/tenders/{t}/amend", AGENCY),
    ("POST", "/tenders/{t}/attachments", AGENCY),
    ("GET", "/attachments/999999", EVERYONE),
    ("GET", "/sections/{s}/bid", BIDDER),
    ("POST", "/sections/{s}/register", BIDDER),
    ("POST", "/sections/{s}/bid", BIDDER),
    ("GET", "/bids", BIDDER),
    ("GET", "/bids/{b}", BIDDER),
    ("POST", "/bids/{b}/withdraw", BIDDER),
    ("POST", "/bids/{b}/reconfirm", BIDDER),
    ("GET", "/admin/outbox", {"admin", "regulator"}),
    ("GET", "/api/v1/me", EVERYONE),
    ("GET", "/api/v1/organisations", EVERYONE),
    ("GET", "/api/v1/tenders", EVERYONE),
    ("POST", "/api/v1/tenders", AGENCY),
    ("GET", "/api/v1/tenders/{t}", EVERYONE),
    ("POST", "/api/v1/tenders/{t}/amendments", AGENCY),
    ("POST", "/api/v1/tenders/{t}/attachments", AGENCY),
    ("POST", "/api/v1/sections/{s}/registration", BIDDER),
    ("POST", "/api/v1/sections/{s}/bid", BIDDER),
    ("GET", "/api/v1/bids", BIDDER),
    ("GET", "/api/v1/bids/{b}", BIDDER),
    ("POST", "/api/v1/bids/{b}/withdraw", BIDDER),
    ("POST", "/api/v1/bids/{b}/reconfirm", BIDDER),
    ("GET", "/api/v1/outbox", {"admin", "regulator"}),
    # The section's witnesses are the first two witness organisations: the admin's and the witness's.
    ("GET", "/api/v1/sections/{s}/envelopes", {"agency", "witness", "admin"}),
    ("GET", "/api/v1/sections/{s}/envelopes/{b}", {"agency", "witness", "admin"}),
    ("GET", "/api/v1/sections/{s}/early-access", {"admin", "regulator"}),
    # The award: the tender's agency and tenderer, the section's bidders, regulators and admins see it.
    ("GET", "/sections/{s}/award", AWARD_READERS),
    ("POST", "/sections/{s}/award", AWARD_READERS),
    ("GET", "/api/v1/sections/{s}/award", AWARD_READERS),
    ("POST", "/api/v1/sections/{s}/award", AGENCY),
    ("POST", "/api/v1/sections/{s}/contract", {"tenderer"}),
    # The key ceremony: the section's witnesses post, its agency may close it; regulators and admins watch.
    ("GET", "/sections/{s}/key-ceremony", CEREMONY_READERS),
    ("GET", "/api/v1/sections/{s}/key-ceremony", CEREMONY_READERS),
    ("POST", "/api/v1/sections/{s}/key-ceremony/transport-key", {"admin", "witness"}),
    ("POST", "/api/v1/sections/{s}/key-ceremony/close", AGENCY),
    # The witness portal: explorer and histories for witnesses, regulators, admins; proofs (linked from the
    # opening hall for every anchored item) for every signed-in user.
    ("GET", "/witness", PORTAL),
    ("GET", "/witness/blocks", PORTAL),
    ("GET", "/witness/blocks/1", PORTAL),
    ("GET", "/witness/sections/{s}/history", PORTAL),
    ("GET", "/witness/proofs/{x}", EVERYONE),
    ("GET", "/witness/proofs/{x}/bundle.json", EVERYONE),
    ("GET", "/witness/proofs/{x}/validators.json", EVERYONE),
    ("GET", "/witness/ethers.js", EVERYONE),
    ("GET", "/regulator", REGULATOR),
    ("GET", "/regulator/alerts", REGULATOR),
    ("GET", "/regulator/sections/{s}", REGULATOR),
    ("GET", "/regulator/uploads/{u}", REGULATOR),
    # The opening hall: the section's participants, regulators and admins (the guarantor is none of them).
    ("GET", "/sections/{s}/hall", HALL),
    ("GET", "/sections/{s}/hall/record.pdf", HALL),
    ("GET", "/sections/{s}/hall/record.json", HALL),
    ("GET", "/api/v1/sections/{s}/hall", HALL),
    ("POST", "/sections/{s}/share-batches", SECTION_WITNESSES),
    ("POST", "/api/v1/sections/{s}/share-batches", SECTION_WITNESSES),
    ("POST", "/sections/{s}/attestation", SECTION_WITNESSES),
    ("POST", "/api/v1/sections/{s}/attestation", SECTION_WITNESSES),
    ("POST", "/sections/{s}/responses", BIDDER),
    ("POST", "/api/v1/sections/{s}/responses", BIDDER),
    ("POST", "/sections/{s}/responses/1/answer", AGENCY),
    ("POST", "/api/v1/sections/{s}/responses/1/answer", AGENCY),
    ("POST", "/sections/{s}/hall/retry", AGENCY),
    ("POST", "/api/v1/sections/{s}/hall/retry", AGENCY),
    # Guarantees: the tenderer and agency see an application only once it covered a bid after the
    # deadline ("not found" before), which is not a refusal of their role.
    ("GET", "/sections/{s}/guarantee", BIDDER),
    ("POST", "/sections/{s}/guarantee", BIDDER),
    ("GET", "/guarantees", PARTIES),
    ("GET", "/guarantees/{g}", PARTIES),
    ("GET", "/guarantees/{g}/letter", PARTIES),
    ("POST", "/guarantees/{g}/underwrite", GUARANTOR),
    ("POST", "/guarantees/{g}/premium", GUARANTOR),
    ("POST", "/guarantees/{g}/issue", GUARANTOR),
    ("POST", "/guarantees/{g}/release", GUARANTOR),
    ("POST", "/guarantees/{g}/expire", GUARANTOR),
    ("POST", "/guarantees/{g}/payout", GUARANTOR),
    ("POST", "/guarantees/{g}/claim", {"tenderer", "agency"}),
    ("POST", "/guarantees/{g}/cancel", {"bidder", "guarantor"}),
    ("GET", "/regulator/guarantees", {"regulator"}),
    ("POST", "/api/v1/sections/{s}/guarantees", BIDDER),
    ("GET", "/api/v1/guarantees", PARTIES),
    ("GET", "/api/v1/guarantees/{g}", PARTIES),
    ("GET", "/api/v1/guarantees/{g}/letter", PARTIES),
    ("POST", "/api/v1/guarantees/{g}/underwrite", GUARANTOR),
    ("POST", "/api/v1/guarantees/{g}/premium", GUARANTOR),
    ("POST", "/api/v1/guarantees/{g}/issue", GUARANTOR),
    ("POST", "/api/v1/guarantees/{g}/release", GUARANTOR),
    ("POST", "/api/v1/guarantees/{g}/expire", GUARANTOR),
    ("POST", "/api/v1/guarantees/{g}/payout", GUARANTOR),
    ("POST", "/api/v1/guarantees/{g}/claim", {"tenderer", "agency"}),
    ("POST", "/api/v1/guarantees/{g}/cancel", {"bidder", "guarantor"}),
    ("GET", "/api/v1/regulator/guarantees", {"regulator"}),
]


def call(client: FlaskClient, method: str, path: str, token: str | None, headers: dict[str, str]) -> int:
    if method == "GET":
        return client.get(path, headers=headers).status_code
    if path.startswith("/api/"):
        return client.post(path, json={}, headers=headers).status_code
    data: dict[str, Any] = {"submission_key": uuid.uuid4().hex}
    if token:
        data["csrf_token"] = token
    return client.post(path, data=data).status_code


def test_every_route_for_every_role(clients: Clients, platform: Platform) -> None:
    section, _owner = placed_bid(clients, platform, b"sealed")
    with clients.app.app_context():
        bid = db.session.scalars(sa.select(Bid)).one()
        upload_id = db.session.scalars(sa.select(BidUpload.id)).one()

    guarantor = clients.organisation(Role.GUARANTOR).id
    applied = clients.app.test_client().post(
        f"/api/v1/sections/{section.id}/guarantees", headers=api_client(clients, Role.BIDDER),
        json={"guarantor_id": guarantor, "amount": section.bid_bond, "validity_days": 120,
              "submission_key": uuid.uuid4().hex})
    assert applied.status_code == 201 and applied.json is not None, applied.json
    ids = {"t": section.tender_id, "s": section.id, "b": bid.id, "g": applied.json["id"],
           "u": upload_id, "x": section.chain_tx}
    for role, username in USERS.items():
        client = clients.app.test_client()
        assert login(client, username).status_code == 302
        token = csrf_of(client, "/")
        api_token = client.post("/api/v1/token", json={"username": username, "password": PASSWORD}).json
        assert api_token is not None
        headers = {"Authorization": f"Bearer {api_token['token']}"}
        for method, template, allowed in ROUTES:
            path = template.format(**ids)
            status = call(client, method, path, token, headers if path.startswith("/api/") else {})
            if role in allowed:
                # 501: a proof asked of anvil, which keeps no seals (said so on purpose); never another 5xx.
                assert status not in (401, 403) and (status < 500 or status == 501), f"{role} {method} {path}: {status}"
            else:
                assert status == 403, f"{role} {method} {path}: {status} (expected 403)"
    anonymous = clients.app.test_client()
    token = csrf_of(anonymous, "/login")
    for method, template, _allowed in ROUTES:
        path = template.format(**ids)
        status = call(anonymous, method, path, token, {})
        assert status == (401 if path.startswith("/api/") else 302), f"anonymous {method} {path}: {status}"


def test_another_agency_cannot_amend_a_tender_it_did_not_publish(clients: Clients, platform: Platform) -> None:
    section = open_section(clients, platform)
    with clients.app.app_context():
        other = Organisation(name="另一招标代理有限公司", identifier="91350200MA9999999X", roles=int(Role.AGENCY))
        db.session.add(other)
        db.session.flush()
        db.session.add(User(organisation_id=other.id, username="other-agency", display_name="另一代理",
                            password_hash=hash_password(PASSWORD)))
        db.session.commit()
    client = clients.app.test_client()
    assert login(client, "other-agency").status_code == 302
    token = csrf_of(client, f"/tenders/{section.tender_id}")
    response = client.post(f"/tenders/{section.tender_id}/amend", data={"csrf_token": token, "summary": "改"})
    assert response.status_code == 403 and "只有发布该项目的招标代理机构" in response.get_data(as_text=True)
    api = client.post("/api/v1/token", json={"username": "other-agency", "password": PASSWORD}).json
    assert api is not None
    answer = client.post(f"/api/v1/tenders/{section.tender_id}/amendments", json={"summary": "改"},
                         headers={"Authorization": f"Bearer {api['token']}"})
    assert answer.status_code == 403 and answer.json == {
        "error": {"code": "forbidden", "message": "只有发布该项目的招标代理机构可以修改它"}}
