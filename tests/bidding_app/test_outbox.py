"""The outbox survives a crash at each step without losing or duplicating a chain write."""

from __future__ import annotations

import os
import time

import pytest
import sqlalchemy as sa

from bidding_app.chain import gateway
from bidding_app.db import db
from bidding_app.models import Bid, OutboxEntry, OutboxLease, Section
from bidding_app.outbox import OutboxSender
from contracts.client import Signer
from contracts.records import BidCover, BidStatus, Role
from tests.bidding_app.conftest import Clients, api_draft
from tests.bidding_app.test_bids import api_client, open_section, placed_bid, register, upload
from tests.helpers import Platform


class SimulatedCrash(Exception):
    """The process dies here."""


def crash_at(sender: OutboxSender, step: str) -> None:
    def hook(reached: str, _entry: OutboxEntry) -> None:
        if reached == step:
            raise SimulatedCrash(step)

    sender.after_step = hook


def restarted(clients: Clients) -> OutboxSender:
    """A new sender, as after a restart of the app (its signers are made again from the stored keys).

    The previous sender is gone, so its lease is let run out first, as time would.
    """
    with clients.app.app_context():
        db.session.execute(sa.update(OutboxLease).values(expires_at=0))
        db.session.commit()
        return OutboxSender(clients.app, gateway())


@pytest.mark.parametrize("step", ["signed", "broadcast"])
def test_crash_between_steps_neither_loses_nor_duplicates(clients: Clients, platform: Platform, step: str) -> None:
    section, _bidder = placed_bid(clients, platform, b"sealed envelope")
    account = clients.config.with_role(Role.BIDDER)[0].signer.address
    nonce_before = platform.backend.chain.w3.eth.get_transaction_count(account)  # type: ignore[arg-type]

    first = restarted(clients)
    crash_at(first, step)
    with pytest.raises(SimulatedCrash):
        first.run_once()
    with clients.app.app_context():
        entry = db.session.scalars(sa.select(OutboxEntry).where(OutboxEntry.action == "commit_bid")).one()
        assert entry.status == "signed" and entry.tx_hash and entry.raw_tx
        signed_hash = entry.tx_hash

    assert restarted(clients).run_once() == 1
    assert restarted(clients).run_once() == 0  # nothing left: a third start sends nothing again
    with clients.app.app_context():
        entry = db.session.scalars(sa.select(OutboxEntry).where(OutboxEntry.action == "commit_bid")).one()
        bid = db.session.scalars(sa.select(Bid)).one()
        assert (entry.status, entry.tx_hash, entry.attempts) == ("confirmed", signed_hash, 1)
        assert (bid.status, bid.chain_tx) == ("committed", signed_hash)
    chain = platform.backend.chain
    assert chain.w3.eth.get_transaction_count(account) == nonce_before + 1  # type: ignore[arg-type]
    assert platform.tenders.bid(bytes.fromhex(section.chain_id[2:]), account).status == BidStatus.COMMITTED


def test_a_write_the_contract_refuses_fails_with_its_error(clients: Clients, platform: Platform) -> None:
    section, bidder = placed_bid(clients, platform, b"sealed")
    # Before the outbox sends it, the same organisation's key commits a bid there by another program.
    signer = clients.config.with_role(Role.BIDDER)[0].signer
    section_id = bytes.fromhex(section.chain_id[2:])
    platform.tenders.commit_bid(signer, section_id, os.urandom(32), BidCover.deposit(os.urandom(32)))
    clients.drain()
    with clients.app.app_context():
        entry = db.session.scalars(sa.select(OutboxEntry).where(OutboxEntry.action == "commit_bid")).one()
        bid = db.session.scalars(sa.select(Bid)).one()
    assert entry.status == "failed" and entry.error_code == "TenderRegistryBidExists"
    assert bid.status == "failed" and bid.error_code == entry.error_code
    page = bidder.get(f"/bids/{bid.id}").get_data(as_text=True)
    assert "链上拒绝" in page and entry.error_code in page


def test_only_one_sender_works_at_a_time(clients: Clients, platform: Platform) -> None:
    _section, _bidder = placed_bid(clients, platform, b"sealed")
    with clients.app.app_context():
        second = OutboxSender(clients.app, gateway())
    assert second.run_once() == 0  # the app's sender holds the lease (it drained the tender just now)
    with clients.app.app_context():
        assert db.session.scalars(sa.select(OutboxEntry.status).where(OutboxEntry.action == "commit_bid")).one() == (
            "pending")
    assert clients.drain() == 1


def test_a_stopped_sender_gives_its_lease_to_the_next_at_once(clients: Clients, platform: Platform) -> None:
    """A platform restarted: the new sender must not wait minutes for the old one's lease to run out."""
    _section, _bidder = placed_bid(clients, platform, b"sealed")
    first: OutboxSender = clients.app.extensions["jianzheng_outbox"]  # holds the lease: it drained the tender
    first.stop()
    with clients.app.app_context():
        assert db.session.get_one(OutboxLease, "sender").expires_at == 0
        second = OutboxSender(clients.app, gateway())
    assert second.run_once() == 1
    with clients.app.app_context():
        assert db.session.get_one(OutboxLease, "sender").holder == second.holder


def test_a_signed_write_whose_nonce_was_taken_is_signed_again(clients: Clients, platform: Platform) -> None:
    _section, _bidder = placed_bid(clients, platform, b"sealed envelope")
    first = restarted(clients)
    crash_at(first, "signed")
    with pytest.raises(SimulatedCrash):
        first.run_once()
    with clients.app.app_context():
        stale = db.session.scalars(sa.select(OutboxEntry).where(OutboxEntry.action == "commit_bid")).one()
    # Meanwhile another program spends that nonce with the same key (a plain transfer).
    key = clients.config.with_role(Role.BIDDER)[0].signer.account.key
    other = Signer.from_key(bytes(key))
    platform.backend.chain.send(other, other.address, b"", value=1, gas=21_000)
    assert restarted(clients).run_once() == 1
    with clients.app.app_context():
        entry = db.session.scalars(sa.select(OutboxEntry).where(OutboxEntry.action == "commit_bid")).one()
    assert stale.nonce is not None
    assert entry.status == "confirmed" and entry.tx_hash != stale.tx_hash and entry.nonce == stale.nonce + 1
    assert entry.attempts == 2


def test_a_bid_queued_behind_its_section_waits_for_it(clients: Clients, platform: Platform) -> None:
    """Tender, section and bid all queued: the bid's estimate fails until the section exists, and it
    is deferred to the next round instead of failed."""
    client = clients.app.test_client()
    created = client.post("/api/v1/tenders", json=api_draft(clients, platform),
                          headers=api_client(clients, Role.AGENCY))
    assert created.json is not None
    section_id = created.json["sections"][0]["id"]
    bidder = clients.logged_in(Role.BIDDER)
    with clients.app.app_context():
        section = db.session.get_one(Section, section_id)
    register(bidder, section)
    upload(bidder, section, b"sealed early")
    assert clients.drain() == 3
    with clients.app.app_context():
        assert {e.status for e in db.session.scalars(sa.select(OutboxEntry))} == {"confirmed"}


def test_the_outbox_api_counts_every_entry_by_action_and_status(clients: Clients, platform: Platform) -> None:
    placed_bid(clients, platform, b"sealed")
    client = clients.app.test_client()
    before = client.get("/api/v1/outbox", headers=api_client(clients, Role.REGULATOR)).json
    assert before is not None and before["counts"]["commit_bid"] == {"pending": 1}
    clients.drain()
    after = client.get("/api/v1/outbox", headers=api_client(clients, Role.REGULATOR)).json
    assert after is not None and after["counts"]["commit_bid"] == {"confirmed": 1}
    assert after["counts"]["create_tender"] == {"confirmed": 1}
    assert [e["status"] for e in after["entries"] if e["action"] == "commit_bid"] == ["confirmed"]


def test_a_refused_organisation_waits_alone_and_its_writes_keep_their_order(
    clients: Clients, platform: Platform
) -> None:
    """The node refuses one bidder's transactions (its account emptied): the other bidder's bid is
    committed at once, nothing waits for a write that cannot land, and once the account is funded again
    the refused bidder's two bids land in the order they were made."""
    if platform.backend.name != "anvil":
        pytest.skip("anvil_setBalance empties an account")
    sections = [open_section(clients, platform) for _ in range(2)]
    first, second = clients.logged_in(Role.BIDDER, 0), clients.logged_in(Role.BIDDER, 1)
    for number, section in enumerate(sections):
        register(first, section)
        upload(first, section, f"sealed by the first bidder {number}".encode())
    register(second, sections[0])
    upload(second, sections[0], b"sealed by the second bidder")
    chain = platform.backend.chain
    refused = clients.config.with_role(Role.BIDDER)[0].signer.address
    balance = chain.w3.eth.get_balance(refused)  # type: ignore[arg-type]
    chain.w3.provider.make_request("anvil_setBalance", [refused, "0x0"])  # type: ignore[arg-type]
    try:
        started = time.monotonic()
        clients.drain()
        assert time.monotonic() - started < 10  # not the 60 s chain timeout
        with clients.app.app_context():
            commits = db.session.scalars(sa.select(OutboxEntry).where(OutboxEntry.action == "commit_bid")
                                         .order_by(OutboxEntry.id)).all()
            assert [entry.status for entry in commits] != ["confirmed"] * 3
            assert commits[2].status == "confirmed"  # the second bidder's
            assert {entry.status for entry in commits[:2]} <= {"pending", "signed"}
    finally:
        chain.w3.provider.make_request("anvil_setBalance", [refused, hex(balance)])  # type: ignore[arg-type]
    clients.drain()
    with clients.app.app_context():
        commits = db.session.scalars(sa.select(OutboxEntry).where(OutboxEntry.action == "commit_bid")
                                     .order_by(OutboxEntry.id)).all()
        assert [entry.status for entry in commits] == ["confirmed"] * 3
        first_bid, second_bid = commits[:2]
        assert first_bid.nonce is not None and second_bid.nonce is not None
        assert first_bid.nonce < second_bid.nonce
        assert (first_bid.block_number or 0) <= (second_bid.block_number or 0)
