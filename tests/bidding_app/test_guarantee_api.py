"""Guarantees through `/api/v1` and the guarantor integration API: bad input and illegal steps refused
with specific codes and nothing stored; signed requests (pull, push), replays, stale and forged ones."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from bidding_app import guarantee_desk as desk
from bidding_app.db import db
from bidding_app.models import GuaranteeApplication, GuaranteeUnderwriting, IssuedGuaranteeLetter, OutboxEntry, Section
from contracts.records import GuaranteeState, Role
from guarantees import integration, lifecycle
from guarantees.records import Decision, PremiumPayment, UnderwritingDecision
from tests.bidding_app.conftest import Clients, api_draft
from tests.bidding_app.test_bids import api_client, open_section, register, upload
from tests.bidding_app.test_guarantee_lifecycle import resync_signers
from tests.helpers import Platform

__all__ = ["resync_signers"]  # autouse: the platform signs with the session's keys


class Api:
    """One role's API calls."""

    def __init__(self, clients: Clients, role: Role, index: int = 0) -> None:
        self.client: FlaskClient = clients.app.test_client()
        self.headers = api_client(clients, role, index)

    def post(self, path: str, body: Any) -> Any:
        return self.client.post(f"/api/v1{path}", json=body, headers=self.headers)

    def get(self, path: str) -> Any:
        return self.client.get(f"/api/v1{path}", headers=self.headers)


def error_of(response: Any) -> tuple[int, str, str | None]:
    error = response.json["error"]
    return response.status_code, error["code"], error.get("field")


def applying(clients: Clients, section: Section, **changes: Any) -> dict[str, Any]:
    body = {"guarantor_id": clients.organisation(Role.GUARANTOR).id, "amount": section.bid_bond,
            "validity_days": 120, "submission_key": uuid.uuid4().hex}
    body.update(changes)
    return body


def count(clients: Clients, model: Any) -> int:
    with clients.app.app_context():
        return int(db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def test_bad_input_and_illegal_steps_are_refused(clients: Clients, platform: Platform) -> None:
    section = open_section(clients, platform, opening_in=900)
    bidder, guarantor = Api(clients, Role.BIDDER), Api(clients, Role.GUARANTOR)
    path = f"/sections/{section.id}/guarantees"
    assert error_of(bidder.post(path, applying(clients, section))) == (409, "not_registered", None)
    assert bidder.post(f"/sections/{section.id}/registration", {}).status_code == 201
    refusals: list[tuple[dict[str, Any], tuple[int, str, str | None]]] = [
        ({"amount": section.bid_bond - 1}, (400, "amount_below_bond", "amount")),
        ({"validity_days": 89}, (400, "validity_too_short", "validity_days")),
        ({"guarantor_id": clients.organisation(Role.BIDDER, 1).id}, (400, "invalid_input", "guarantor_id")),
        ({"amount": "八十万"}, (400, "invalid_input", "amount")),
        ({"amount": 2**96}, (400, "invalid_input", "amount")),
        ({"validity_days": True}, (400, "invalid_input", "validity_days")),
        ({"submission_key": "x"}, (400, "invalid_input", "submission_key")),
    ]
    for change, expected in refusals:
        assert error_of(bidder.post(path, applying(clients, section, **change))) == expected, change
    not_json = bidder.client.post(f"/api/v1{path}", data="amount=1", headers=bidder.headers)
    assert error_of(not_json) == (400, "invalid_input", None)
    assert count(clients, GuaranteeApplication) == 0

    body = applying(clients, section)
    created, again = bidder.post(path, body), bidder.post(path, body)
    assert created.status_code == 201 and again.status_code == 200 and again.json["id"] == created.json["id"]
    application_id = created.json["id"]
    assert created.json["salt"].startswith("0x") and created.json["state"] == "applied"
    steps = f"/guarantees/{application_id}"
    # Out of order: premium before underwriting, issue before premium; a decline needs a reason.
    assert error_of(guarantor.post(f"{steps}/premium", {"paid_fen": 120_000, "payer_account": "6222000011",
                                                        "payment_ref": "P1"}))[:2] == (409, "not_underwritten")
    assert error_of(guarantor.post(f"{steps}/issue", {}))[:2] == (409, "not_underwritten")
    assert error_of(guarantor.post(f"{steps}/underwrite", {"approve": False})) == (400, "invalid_input", "reason")
    rules = guarantor.get(steps).json
    assert rules["rule_refusals"] == [] and rules["revealed"] is None and "tender" not in rules
    approved = guarantor.post(f"{steps}/underwrite", {"approve": True, "reason": "资信良好"})
    assert approved.status_code == 200 and approved.json["state"] == "approved"
    assert error_of(guarantor.post(f"{steps}/underwrite", {"approve": False, "reason": "改变主意"}))[:2] == (
        409, "illegal_transition")
    assert error_of(guarantor.post(f"{steps}/issue", {}))[:2] == (409, "premium_not_paid")
    due = desk.premium_due(application_row(clients, application_id))
    premium = {"paid_fen": due + 1, "payer_account": "6222000011", "payment_ref": "P1"}
    assert error_of(guarantor.post(f"{steps}/premium", premium)) == (400, "premium_mismatch", "amount")
    premium.update(paid_fen=due, payer_account="账号?")
    assert error_of(guarantor.post(f"{steps}/premium", premium)) == (400, "invalid_input", "payer_account")
    premium.update(payer_account="6222000011")
    assert guarantor.post(f"{steps}/premium", premium).json["state"] == "paid"
    # Nobody else sees it: another bidder, another guarantor, the tenderer before the deadline.
    for role, index in ((Role.BIDDER, 1), (Role.GUARANTOR, 1), (Role.TENDERER, 0)):
        assert error_of(Api(clients, role, index).get(steps))[:2] == (404, "not_found")
    assert error_of(bidder.post(f"{steps}/underwrite", {"approve": True}))[:2] == (403, "forbidden")

    # Above the guarantor's limit: its rules refuse, so no one can approve; a decline keeps the rules' reasons.
    large = bidder.post(path, applying(clients, section, amount=desk.RULES.max_amount + 1)).json["id"]
    assert error_of(guarantor.post(f"/guarantees/{large}/underwrite", {"approve": True}))[:2] == (
        409, "rules_refused")
    assert guarantor.get(f"/guarantees/{large}").json["rule_refusals"]
    declined = guarantor.post(f"/guarantees/{large}/underwrite", {"approve": False, "reason": "超出限额"})
    assert declined.json["state"] == "declined"

    # Issue after the deadline: refused in the app, before any chain write, with nothing stored.
    platform.backend.advance_to(section.opening_time)
    assert error_of(guarantor.post(f"{steps}/issue", {}))[:2] == (409, "after_deadline")
    assert error_of(bidder.post(path, applying(clients, section)))[:2] == (409, "after_deadline")
    assert application_row(clients, application_id).state == "paid"
    assert count(clients, IssuedGuaranteeLetter) == 0
    with clients.app.app_context():
        assert not db.session.scalars(sa.select(OutboxEntry).where(OutboxEntry.action == "issue_guarantee")).all()
    letters = Path(clients.app.config["UPLOAD_FOLDER"]) / "guarantees"
    assert not letters.exists() or not any(letters.iterdir())


def application_row(clients: Clients, application_id: int) -> GuaranteeApplication:
    with clients.app.app_context():
        row = db.session.get_one(GuaranteeApplication, application_id)
        db.session.expunge(row)
        return row


def signed(client: FlaskClient, key: bytes, method: str, kind: str, payload: dict[str, Any] | None = None, *,
           at: int | None = None, replay: bool = False, headers: dict[str, str] | None = None) -> Any:
    path = f"/api/guarantor/v1/{kind}"
    body = b"" if payload is None else json.dumps(payload).encode()
    chosen = headers or integration.sign_request(key, method, path, body, at or int(time.time()))
    send = client.get if method == "GET" else client.post
    response = send(path, data=body, headers=chosen, content_type="application/json")
    return send(path, data=body, headers=chosen, content_type="application/json") if replay else response


def test_guarantor_system_through_the_integration_api(clients: Clients, platform: Platform) -> None:
    section = open_section(clients, platform, opening_in=900)
    bidder = Api(clients, Role.BIDDER)
    assert bidder.post(f"/sections/{section.id}/registration", {}).status_code == 201
    applied = bidder.post(f"/sections/{section.id}/guarantees", applying(clients, section)).json
    number = applied["number"]
    system, key = clients.app.test_client(), bytes(platform.guarantors[0].account.key)

    # Pull: only the sealed reference, never the tender; authentication refusals, each with its code.
    pulled = signed(system, key, "GET", "applications")
    assert pulled.status_code == 200, pulled.json
    mine = next(a for a in pulled.json["applications"] if a["number"] == number)
    assert mine["sealed"] and mine["project_name"] is None and mine["section_ref"] == applied["section_ref"]
    assert section.tender.title not in json.dumps(pulled.json, ensure_ascii=False)
    assert signed(system, key, "GET", "applications", replay=True).json["code"] == "ReplayedRequest"
    assert signed(system, key, "GET", "applications", at=int(time.time()) - 3600).status_code == 401
    forged = integration.sign_request(key, "GET", "/api/guarantor/v1/other", b"", int(time.time()))
    assert signed(system, key, "GET", "applications", headers=forged).json["code"] == "BadSignature"
    bidder_key = bytes(platform.bidders[0].account.key)
    assert signed(system, bidder_key, "GET", "applications").status_code == 403
    assert system.get("/api/guarantor/v1/applications").status_code == 400
    other = bytes(platform.guarantors[1].account.key)
    assert all(a["number"] != number for a in signed(system, other, "GET", "applications").json["applications"])

    # Push: underwriting (premium must be the computed one), premium, a letter it anchored itself.
    due = mine["premium_due_fen"]
    result = {"number": number, "approved": True, "underwriter": "银行核保系统", "reasons": [], "premium_fen": due + 1}
    assert signed(system, key, "POST", "underwriting-results", result).status_code == 409
    unknown = signed(system, key, "POST", "underwriting-results", {**result, "number": "JZBH-NO-SUCH-ONE"})
    assert unknown.status_code == 404 and unknown.json["code"] == "UnknownApplication"
    assert signed(system, other, "POST", "underwriting-results", {**result, "premium_fen": due}).status_code == 404
    answer = signed(system, key, "POST", "underwriting-results", {**result, "premium_fen": due})
    assert answer.status_code == 200 and answer.json["state"] == "approved"
    paid = {"number": number, "paid_fen": due, "payer_account": "6222000099", "payment_ref": "BANK-1"}
    assert signed(system, key, "POST", "premiums", paid).json["state"] == "paid"
    assert signed(system, key, "POST", "premiums", paid).json["code"] == "StepRefused"  # paid already
    with clients.app.app_context():
        row = db.session.scalars(sa.select(GuaranteeApplication).where(GuaranteeApplication.number == number)).one()
        record = desk.record_of(row)
        assert db.session.scalars(sa.select(GuaranteeUnderwriting)).one().decided_by.startswith("银行核保系统")
    decision = UnderwritingDecision(number, Decision.APPROVED, (), "银行核保系统", int(time.time()))
    payment = PremiumPayment(number, due, "6222000099", "BANK-1", int(time.time()))
    issued = lifecycle.issue(platform.deployment, platform.guarantors[0], record, decision, payment,
                             base_url="https://jz.example.cn")
    letter = {"number": number, "pdf_base64": base64.b64encode(issued.signed_pdf).decode()}
    accepted = signed(system, key, "POST", "letters", letter)
    assert accepted.status_code == 200 and accepted.json["state"] == "issued", accepted.json
    download = bidder.client.get(f"/api/v1/guarantees/{applied['id']}/letter", headers=bidder.headers)
    assert download.status_code == 200 and download.data == issued.signed_pdf
    download.close()
    assert bidder.get(f"/guarantees/{applied['id']}").json["letter"]["tx_hash"] == issued.tx_hash

    # A release the chain has not seen is refused; once released on chain, it is recorded.
    release = {"number": number, "section_id": section.chain_id, "tx_hash": issued.tx_hash}
    assert signed(system, key, "POST", "releases", release).json["code"] == "StepRefused"
    section_id = bytes.fromhex(section.chain_id[2:])
    released = lifecycle.release(platform.deployment, platform.guarantors[0], number, section_id)
    answer = signed(system, key, "POST", "releases", {**release, "tx_hash": released.tx_hash})
    assert answer.status_code == 200 and answer.json["state"] == "released"
    assert lifecycle.on_chain(platform.deployment, number).state == GuaranteeState.RELEASED
    payout = {"number": number, "paid_fen": 1, "payment_ref": "X", "tx_hash": released.tx_hash}
    assert signed(system, key, "POST", "payouts", payout).status_code == 409


def issued_through_the_api(clients: Clients, section: Section, validity_days: int, index: int = 0) -> tuple[
    Api, Api, int
]:
    """A bidder registered, a guarantee applied for, underwritten, paid and issued on chain; (bidder, guarantor, id)."""
    bidder, guarantor = Api(clients, Role.BIDDER, index), Api(clients, Role.GUARANTOR)
    assert bidder.post(f"/sections/{section.id}/registration", {}).status_code == 201
    applied = bidder.post(f"/sections/{section.id}/guarantees", applying(clients, section, validity_days=validity_days))
    application_id = applied.json["id"]
    steps = f"/guarantees/{application_id}"
    assert guarantor.post(f"{steps}/underwrite", {"approve": True, "reason": "可"}).status_code == 200
    premium = {"paid_fen": applied.json["premium_due"], "payer_account": "6222000077", "payment_ref": "P7"}
    assert guarantor.post(f"{steps}/premium", premium).status_code == 200
    assert guarantor.post(f"{steps}/issue", {}).json["state"] == "issuing"
    clients.drain()
    assert bidder.get(steps).json["state"] == "issued"
    return bidder, guarantor, application_id


def one_day_section(clients: Clients, platform: Platform) -> Section:
    """A section on chain whose bid validity period is one day (so its guarantees may end soon)."""
    draft = api_draft(clients, platform, opening_in=600)
    draft["sections"][0]["bid_validity_days"] = 1
    published = Api(clients, Role.AGENCY).post("/tenders", draft)
    assert published.status_code == 201, published.json
    clients.drain()
    with clients.app.app_context():
        section = db.session.get_one(Section, published.json["sections"][0]["id"])
        db.session.expunge(section)
        return section


def test_a_refusal_by_the_contract_surfaces_and_expiry(clients: Clients, platform: Platform) -> None:
    bidder, guarantor, application_id = issued_through_the_api(clients, one_day_section(clients, platform), 1)
    steps = f"/guarantees/{application_id}"
    number = bidder.get(steps).json["number"]
    # The bidder asks for cancellation; before the outbox sends it, the guarantor's own system cancels on
    # chain: the contract refuses the platform's write, and the application says so.
    assert bidder.post(f"{steps}/cancel", {"reason": "不再投标"}).json["state"] == "cancelling"
    lifecycle.cancel(platform.deployment, platform.guarantors[0], number)
    clients.drain()
    answer = bidder.get(steps).json
    assert answer["state"] == "issued" and answer["error_code"] == "GuaranteeRegistryInvalidState"
    page = clients.logged_in(Role.BIDDER).get(f"/guarantees/{application_id}").get_data(as_text=True)
    assert "链上拒绝：GuaranteeRegistryInvalidState" in page

    # Expiry: refused while in force, recorded on chain once the validity has ended.
    _bidder, guarantor, application_id = issued_through_the_api(clients, one_day_section(clients, platform), 1)
    steps = f"/guarantees/{application_id}"
    assert error_of(guarantor.post(f"{steps}/expire", {}))[:2] == (409, "not_expired")
    platform.backend.advance_to(guarantor.get(steps).json["valid_until"] + 1)
    assert guarantor.post(f"{steps}/expire", {}).json["state"] == "expiring"
    clients.drain()
    expired = guarantor.get(steps).json
    assert expired["state"] == "expired"
    assert lifecycle.on_chain(platform.deployment, expired["number"]).state == GuaranteeState.EXPIRED


def test_release_non_winner_at_once_winner_after_the_contract(clients: Clients, platform: Platform) -> None:
    if not clients.app.config["DATABASE_URL"].startswith("sqlite"):
        pytest.skip("chain rules, not database behaviour: once is enough")
    section = open_section(clients, platform, opening_in=600)
    sid = bytes.fromhex(section.chain_id[2:])
    issued = [issued_through_the_api(clients, section, 120, index) for index in (0, 1)]
    for index, (bidder, _guarantor, application_id) in enumerate(issued):
        row = bidder.get(f"/guarantees/{application_id}").json
        page = clients.logged_in(Role.BIDDER, index)
        assert upload(page, section, os.urandom(32), cover_kind="guarantee", cover_ref=row["number"],
                      guarantee_salt=row["salt"]).status_code == 302
    cash = clients.logged_in(Role.BIDDER, 2)
    register(cash, section)
    upload(cash, section, os.urandom(32))
    clients.drain()
    platform.backend.advance_to(section.opening_time)
    clients.drain()  # the opening hall starts and reveals the covers (密文保函): guarantees bind now
    bidders = [m.signer for m in clients.config.with_role(Role.BIDDER)[:3]]
    for signer in bidders:
        platform.tenders.record_bid_opened(platform.agency, sid, signer.address, os.urandom(32))
    record = os.urandom(32)
    platform.tenders.close_opening(platform.agency, sid, record)
    for witness in platform.witnesses[:2]:
        platform.tenders.attest_opening(witness, sid, record)
    platform.tenders.award(platform.agency, sid, bidders[0].address, os.urandom(32))

    guarantor = Api(clients, Role.GUARANTOR)  # a new token (each login to the API replaces the last one)
    (_, _, winner), (_, _, loser) = issued
    released = guarantor.post(f"/guarantees/{loser}/release", {"reason": "未中标"})
    assert released.status_code == 200 and released.json["state"] == "releasing", released.json
    assert error_of(guarantor.post(f"/guarantees/{winner}/release", {}))[:2] == (409, "not_releasable")
    platform.tenders.record_contract_signed(platform.tenderer, sid, os.urandom(32))
    assert guarantor.post(f"/guarantees/{winner}/release", {"reason": "合同已签订"}).json["state"] == "releasing"
    clients.drain()
    assert [guarantor.get(f"/guarantees/{i}").json["state"] for i in (winner, loser)] == ["released", "released"]
