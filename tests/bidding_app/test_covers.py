"""密文保函 on the platform: a bid's cover goes on chain blinded, and the platform reveals it at the opening
(`bidding_app.covers.queue_cover_reveals` + the outbox), binding a guarantee only then."""

from __future__ import annotations

import os

import sqlalchemy as sa
from hexbytes import HexBytes

from bidding_app.covers import queue_cover_reveals
from bidding_app.db import db
from bidding_app.models import Bid, OutboxEntry, Section
from contracts.records import CoverKind, GuaranteeTerms, Role
from tests.bidding_app.conftest import Clients
from tests.bidding_app.test_bids import open_section, register, upload
from tests.helpers import Platform, fresh_id


def _queue(clients: Clients, section: Section) -> int:
    with clients.app.app_context():
        queued = queue_cover_reveals(db.session, db.session.get_one(Section, section.id))
        db.session.commit()
        return queued


def _bid(clients: Clients) -> Bid:
    with clients.app.app_context():
        return db.session.scalars(sa.select(Bid)).one()


def _seen_on_chain(platform: Platform, tx_hash: str) -> bytes:
    """Everything a node shows of a transaction: its calldata and every log's topics and data."""
    w3 = platform.backend.chain.w3
    sent = bytes(w3.eth.get_transaction(HexBytes(tx_hash))["input"])
    logs = w3.eth.get_transaction_receipt(HexBytes(tx_hash))["logs"]
    return sent + b"".join(bytes(log["data"]) + b"".join(bytes(t) for t in log["topics"]) for log in logs)


def test_a_sealed_guarantee_is_revealed_only_at_the_opening(clients: Clients, platform: Platform) -> None:
    bidder_account = clients.config.with_role(Role.BIDDER)[0].signer.address
    target = open_section(clients, platform)
    target_id = bytes.fromhex(target.chain_id[2:])
    salt, guarantee_id = os.urandom(32), fresh_id("guarantee")
    terms = GuaranteeTerms(
        section_ref=platform.guarantees.sealed_reference(target_id, salt),
        sealed_ref=True,
        applicant=bidder_account,
        beneficiary=platform.tenderer.address,
        amount=target.bid_bond,
        valid_until=target.opening_time + target.bid_validity_period + 86_400,
        letter_hash=os.urandom(32),
    )
    platform.guarantees.issue(platform.guarantors[0], guarantee_id, terms)
    bidder = clients.logged_in(Role.BIDDER)
    register(bidder, target)
    upload(bidder, target, b"sealed with guarantee", cover_kind="guarantee", cover_ref="0x" + guarantee_id.hex(),
           guarantee_salt="0x" + salt.hex())
    assert clients.drain() == 1
    with clients.app.app_context():
        bid = db.session.scalars(sa.select(Bid).where(Bid.section_id == target.id)).one()
    assert bid.status == "committed" and bid.cover_salt == "0x" + salt.hex()
    # The commit shows neither the guarantee id nor the salt; nothing is bound yet.
    assert bid.chain_tx is not None
    seen = _seen_on_chain(platform, bid.chain_tx)
    assert guarantee_id not in seen and salt not in seen
    assert not platform.guarantees.guarantee(guarantee_id).bound
    cover = platform.tenders.cover_of(target_id, bidder_account)
    assert cover.commitment == bytes.fromhex(bid.cover_commitment[2:]) and not cover.revealed  # type: ignore[index]

    platform.backend.advance_to(target.opening_time)
    assert _queue(clients, target) == 1
    assert _queue(clients, target) == 0  # safe to call twice: the reveal is queued once
    assert clients.drain() == 1
    with clients.app.app_context():
        bid = db.session.get_one(Bid, bid.id)
        entry = db.session.scalars(sa.select(OutboxEntry).where(OutboxEntry.action == "reveal_cover")).one()
    assert entry.status == "confirmed" and bid.cover_reveal_tx == entry.tx_hash and bid.cover_reveal_error is None
    assert platform.tenders.cover_of(target_id, bidder_account).revealed
    assert platform.tenders.bid_cover(target_id, bidder_account) == (CoverKind.GUARANTEE, guarantee_id)
    assert platform.guarantees.guarantee(guarantee_id).bound
    assert entry.tx_hash is not None
    bound = platform.backend.chain.decode_logs(
        platform.backend.chain.w3.eth.get_transaction_receipt(HexBytes(entry.tx_hash))["logs"]
    )
    assert [e.name for e in bound] == ["CoverRevealed", "GuaranteeBound"]
    assert _queue(clients, target) == 0  # revealed: nothing more to do


def test_a_reveal_sent_too_early_is_queued_again_and_an_invalid_cover_is_kept(
    clients: Clients, platform: Platform
) -> None:
    # A guarantee valid when the bid relies on it (the platform checks it on chain then), which its issuer
    # cancels before the deadline: the reveal at the opening finds it cancelled.
    section = open_section(clients, platform)
    bidder = clients.logged_in(Role.BIDDER)
    register(bidder, section)
    applicant = clients.config.with_role(Role.BIDDER)[0].signer.address
    guarantee = fresh_id("guarantee")
    platform.guarantees.issue(platform.guarantors[0], guarantee, GuaranteeTerms(
        section_ref=bytes.fromhex(section.chain_id[2:]), sealed_ref=False, applicant=applicant,
        beneficiary=platform.tenderer.address, amount=section.bid_bond,
        valid_until=section.opening_time + section.bid_validity_period + 30 * 86400, letter_hash=os.urandom(32)))
    upload(bidder, section, b"sealed", cover_kind="guarantee", cover_ref="0x" + guarantee.hex())
    assert clients.drain() == 1
    platform.guarantees.cancel(platform.guarantors[0], guarantee)
    assert _bid(clients).status == "committed"  # the chain cannot tell: the cover is blinded
    # Before the opening time the chain refuses the reveal; that refusal is not final.
    assert _queue(clients, section) == 1
    assert clients.drain() == 1
    bid = _bid(clients)
    assert bid.cover_reveal_tx is None and bid.cover_reveal_error is None
    platform.backend.advance_to(section.opening_time)
    assert _queue(clients, section) == 1
    assert clients.drain() == 1
    with clients.app.app_context():
        codes = db.session.scalars(
            sa.select(OutboxEntry.error_code).where(OutboxEntry.action == "reveal_cover").order_by(OutboxEntry.id)
        ).all()
    assert codes == ["TenderRegistryBeforeOpening", "GuaranteeRegistryInvalidState"]
    bid = _bid(clients)
    assert bid.cover_reveal_error == "GuaranteeRegistryInvalidState" and bid.cover_reveal_tx is None
    assert _queue(clients, section) == 0  # refused for good: not queued again
    account = clients.config.with_role(Role.BIDDER)[0].signer.address
    assert not platform.tenders.cover_of(bytes.fromhex(section.chain_id[2:]), account).revealed


def test_a_bid_on_a_guarantee_the_chain_does_not_back_is_refused_at_upload(
    clients: Clients, platform: Platform
) -> None:
    section = open_section(clients, platform)
    bidder = clients.logged_in(Role.BIDDER)
    register(bidder, section)
    answer = upload(bidder, section, b"sealed", cover_kind="guarantee", cover_ref="BH-NO-SUCH-GUARANTEE")
    assert answer.status_code == 400 and "链上没有该编号的保函" in answer.get_data(as_text=True)
    with clients.app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Bid.id))) == 0
        assert db.session.scalar(sa.select(sa.func.count(OutboxEntry.id))) == 2  # the tender and its section
