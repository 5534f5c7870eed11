"""Guarantees through the platform's pages and API on a real chain: apply, the guarantor's sealed view
(密文保函) before and after the opening, underwriting, premium, issue through the outbox, the letter,
the bid's cover, cancellation, claim on a chain fact, payout, release, and illegal steps refused."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from bidding_app.db import db
from bidding_app.models import GuaranteeApplication, OutboxEntry, Section
from contracts.records import ClaimGround, GuaranteeState, Role
from guarantees import lifecycle
from guarantees.records import Verdict
from guarantees.verify import verify_letter
from tests.bidding_app.conftest import Clients, csrf_of
from tests.bidding_app.test_bids import api_client, open_section, register, upload
from tests.helpers import Platform


@pytest.fixture(autouse=True)
def resync_signers(platform: Platform) -> Iterator[None]:
    """The platform signs with the same keys as the session's signers (the guarantors' above all): make
    those re-read their nonces from the node afterwards, so no later test meets a stale nonce."""
    yield
    for member in platform.config.members:
        member.signer._next_nonce.clear()


def apply_page(bidder: FlaskClient, clients: Clients, section: Section, **fields: str) -> Any:
    data = {
        "csrf_token": csrf_of(bidder, f"/sections/{section.id}/guarantee"),
        "submission_key": uuid.uuid4().hex,
        "guarantor_id": str(clients.organisation(Role.GUARANTOR).id),
        "amount_yuan": f"{section.bid_bond / 100:.2f}",
        "validity_days": "120",
    }
    data.update(fields)
    return bidder.post(f"/sections/{section.id}/guarantee", data=data)


def step(client: FlaskClient, application_id: int, name: str, **fields: str) -> Any:
    token = csrf_of(client, f"/guarantees/{application_id}")
    return client.post(f"/guarantees/{application_id}/{name}", data={"csrf_token": token, **fields})


def application(clients: Clients, application_id: int) -> GuaranteeApplication:
    with clients.app.app_context():
        found = db.session.get_one(GuaranteeApplication, application_id)
        db.session.expunge(found)
        return found


def issued_guarantee(clients: Clients, section: Section, bidder_index: int = 0, payer: str = "") -> tuple[
    FlaskClient, int
]:
    """A bidder (registered for the section) with a guarantee issued and anchored, through the pages."""
    bidder = clients.logged_in(Role.BIDDER, bidder_index)
    register(bidder, section)
    applied = apply_page(bidder, clients, section)
    assert applied.status_code == 302, applied.get_data(as_text=True)
    application_id = int(applied.headers["Location"].rsplit("/", 1)[1])
    guarantor = clients.logged_in(Role.GUARANTOR)
    assert step(guarantor, application_id, "underwrite", approve="1", reason="资信良好").status_code == 302
    due = application(clients, application_id).amount * 15 // 10_000
    premium = {"paid_yuan": f"{max(due, 30_000) / 100:.2f}", "payer_account": payer or f"6222-{bidder_index}-0001",
               "payment_ref": f"PAY-{uuid.uuid4().hex[:8]}"}
    assert step(guarantor, application_id, "premium", **premium).status_code == 302
    assert step(guarantor, application_id, "issue").status_code == 302
    assert application(clients, application_id).state == "issuing"
    clients.drain()
    assert application(clients, application_id).state == "issued"
    return bidder, application_id


def test_guarantee_lifecycle_through_the_platform(clients: Clients, platform: Platform) -> None:
    section = open_section(clients, platform, opening_in=1800)
    sid = bytes.fromhex(section.chain_id[2:])
    guarantor = clients.logged_in(Role.GUARANTOR)
    tenderer = clients.logged_in(Role.TENDERER)

    # Bidder 0 applies; the guarantor sees only the sealed reference, never the tender or the tenderer.
    shared_account = f"6222-{uuid.uuid4().hex[:10]}"  # both bidders' premiums from one account: an alert
    first_bidder, first = issued_guarantee(clients, section, 0, shared_account)
    listing = guarantor.get("/guarantees").get_data(as_text=True)
    detail = guarantor.get(f"/guarantees/{first}").get_data(as_text=True)
    row = application(clients, first)
    for page in (listing, detail):
        assert row.section_ref in page
        assert section.tender.title not in page and section.title not in page and "市水务集团" not in page
    sealed = clients.app.test_client().get(f"/api/v1/guarantees/{first}", headers=api_client(clients, Role.GUARANTOR))
    assert sealed.json is not None and sealed.json["revealed"] is None
    assert "tender" not in sealed.json and "beneficiary" not in sealed.json and "salt" not in sealed.json
    on_chain = lifecycle.on_chain(platform.deployment, row.number)
    assert on_chain.state == GuaranteeState.ISSUED and on_chain.sealed_ref
    assert on_chain.section_ref.hex() == row.section_ref[2:] and on_chain.section_ref != sid

    # The bidder downloads a letter that verifies as genuine, and picks the guarantee as its bid's cover.
    letter = first_bidder.get(f"/guarantees/{first}/letter")
    assert letter.status_code == 200 and letter.data.startswith(b"%PDF")
    letter.close()
    assert verify_letter(platform.deployment, letter.data, with_proof=False).verdict is Verdict.GENUINE_IN_FORCE
    bid_page = first_bidder.get(f"/sections/{section.id}/bid?cover={row.number}").get_data(as_text=True)
    assert f'value="{row.number}"' in bid_page and f'value="{row.salt}"' in bid_page
    assert upload(first_bidder, section, os.urandom(64), cover_kind="guarantee", cover_ref=row.number,
                  guarantee_salt=row.salt).status_code == 302

    # Bidder 1 bids with a guarantee too, bidder 2 with cash; bidder 3's guarantee is cancelled before the deadline.
    second_bidder, second = issued_guarantee(clients, section, 1, shared_account)
    second_row = application(clients, second)
    upload(second_bidder, section, os.urandom(64), cover_kind="guarantee", cover_ref=second_row.number,
           guarantee_salt=second_row.salt)
    cash_bidder = clients.logged_in(Role.BIDDER, 2)
    register(cash_bidder, section)
    upload(cash_bidder, section, os.urandom(64))
    spare_bidder, spare = issued_guarantee(clients, section, 3)
    assert step(spare_bidder, spare, "cancel", reason="改用现金保证金").status_code == 302
    assert application(clients, spare).state == "cancelling"
    clients.drain()
    assert application(clients, spare).state == "cancelled"
    assert lifecycle.on_chain(platform.deployment, application(clients, spare).number).state == GuaranteeState.CANCELLED
    with clients.app.app_context():
        assert all(e.status == "confirmed" for e in db.session.scalars(sa.select(OutboxEntry)))

    # Before the tender ends: no release; the beneficiary does not even see who holds guarantees.
    refused = step(guarantor, second, "release")
    assert refused.status_code == 409 and "解除" in refused.get_data(as_text=True)
    assert tenderer.get(f"/guarantees/{first}").status_code == 404
    early = step(guarantor, second, "expire")
    assert early.status_code == 409 and "尚在有效期内" in early.get_data(as_text=True)

    # The opening: bidder 0's envelope fails to decrypt by its own fault, the others open; too few: 流标.
    platform.backend.advance_to(section.opening_time)
    clients.drain()  # the opening hall starts and reveals the covers (密文保函): guarantees bind now
    cancel_late = step(guarantor, second, "cancel")
    assert cancel_late.status_code == 409 and "不能撤销" in cancel_late.get_data(as_text=True)
    agency = platform.agency
    bidders = [m.signer.address for m in clients.config.with_role(Role.BIDDER)[:3]]
    platform.tenders.record_decryption_failure(agency, sid, bidders[0], True, os.urandom(32))
    platform.tenders.record_bid_opened(agency, sid, bidders[1], os.urandom(32))
    platform.tenders.record_bid_opened(agency, sid, bidders[2], os.urandom(32))
    platform.tenders.close_opening(agency, sid, os.urandom(32))

    # Revealed to the guarantor by the on-chain opening; claimable from the chain's facts.
    detail = guarantor.get(f"/guarantees/{first}").get_data(as_text=True)
    assert section.title in detail and 'id="revealed-by"' in detail and 'id="claimable"' in detail
    listing = tenderer.get("/guarantees").get_data(as_text=True)
    assert row.number in listing and second_row.number in listing and "可索赔" in listing
    assert application(clients, spare).number not in listing  # cancelled before the deadline: never shown

    # Claims: a ground the chain does not support and a claim without evidence are refused.
    wrong = step(tenderer, second, "claim", ground=str(int(ClaimGround.BIDDER_CAUSED_DECRYPTION_FAILURE)),
                 evidence="开标记录")
    assert wrong.status_code == 409 and "不支持该索赔事由" in wrong.get_data(as_text=True)
    bare = step(tenderer, first, "claim", ground=str(int(ClaimGround.BIDDER_CAUSED_DECRYPTION_FAILURE)), evidence=" ")
    assert bare.status_code == 400
    claimed = step(tenderer, first, "claim", ground=str(int(ClaimGround.BIDDER_CAUSED_DECRYPTION_FAILURE)),
                   evidence="开标记录第3页：投标文件因投标人使用错误密钥无法解密")
    assert claimed.status_code == 302
    clients.drain()
    assert application(clients, first).state == "claimed"

    # After a claim: no release; payout within the amount only.
    after_claim = step(guarantor, first, "release")
    assert after_claim.status_code == 409 and "不能进行此操作" in after_claim.get_data(as_text=True)
    over = step(guarantor, first, "payout", paid_yuan=f"{row.amount / 100 + 1:.2f}", payment_ref="PO-1")
    assert over.status_code == 400 and "赔付金额" in over.get_data(as_text=True)
    assert step(guarantor, first, "payout", paid_yuan=f"{row.amount / 100:.2f}", payment_ref="PO-1").status_code == 302
    clients.drain()
    assert application(clients, first).state == "paid_out"
    assert lifecycle.on_chain(platform.deployment, row.number).state == GuaranteeState.PAID

    # A failed tender frees the other bidders' bonds: bidder 1's guarantee is released.
    assert step(guarantor, second, "release", reason="流标").status_code == 302
    clients.drain()
    assert application(clients, second).state == "released"
    page = second_bidder.get(f"/guarantees/{second}").get_data(as_text=True)
    assert re.search(r'data-state="released"', page)

    # The regulator: deposits freed by the two guarantees, and the shared premium account, with evidence.
    report = clients.app.test_client().get("/api/v1/regulator/guarantees", headers=api_client(clients, Role.REGULATOR))
    assert report.status_code == 200 and report.json is not None
    assert report.json["cash_deposits_freed"] >= 2 * section.bid_bond
    alert = next(a for a in report.json["alerts"]
                 if a["kind"] == "shared_premium_account" and row.number in a["numbers"])
    assert alert["numbers"] == sorted([row.number, second_row.number]) and alert["section_url"] == (
        f"/tenders/{section.tender_id}")
    assert alert["evidence"] == [f"/guarantees/verify?number={n}" for n in alert["numbers"]]
    page = clients.logged_in(Role.REGULATOR).get("/regulator/guarantees").get_data(as_text=True)
    assert "竞争投标人的保费由同一账户支付" in page and f"/guarantees/verify?number={row.number}" in page
