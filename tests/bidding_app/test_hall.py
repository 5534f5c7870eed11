"""The online opening hall end to end on a real chain: sealed bids → deadline → the witnesses' share
batches (bad ones refused) → automatic opening → 唱标 events on the SSE stream → the record PDF →
objection and answer → a witness's attestation; a section without bids is a failed tender (流标); a bid
not confirmed after an amendment is marked at its 唱标 and in the record (JSON and PDF), which a witness's
re-check reproduces, and the section's own response window holds."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from bidding_app import outbox_sender
from bidding_app.chain import gateway
from bidding_app.covers import queue_cover_reveals
from bidding_app.db import db
from bidding_app.hall_driver import run_opening
from bidding_app.models import OpenedBid, OutboxEntry, Section, SectionOpening
from contracts.records import Role, SectionStatus
from opening.envelope import seal_bid
from opening.shares import DecryptionShare, ShareBatch
from opening.witness import AccessRequest, WitnessShare, compute_share_batch, release_shares
from tests.backends import selected_backends
from tests.bidding_app.conftest import PASSWORD, Clients, api_draft, csrf_of, login
from tests.helpers import Platform
from tests.opening.builders import KeyedSection, run_dkg

SSE = "text/event-stream"


def token_for(clients: Clients, identifier: str) -> dict[str, str]:
    client = clients.app.test_client()
    answer = client.post("/api/v1/token", json={"username": identifier, "password": PASSWORD}).json
    assert answer is not None
    return {"Authorization": f"Bearer {answer['token']}"}


def read_events(client: FlaskClient, path: str, headers: dict[str, str], until: Callable[[list[dict[str, Any]]], bool],
                last_event_id: int | None = None) -> list[dict[str, Any]]:
    """Follow the hall's SSE stream until `until(events)` holds; returns the parsed events with ids."""
    if last_event_id is not None:
        headers = headers | {"Last-Event-ID": str(last_event_id)}
    response = client.get(path, headers=headers, buffered=False)
    assert response.status_code == 200 and response.mimetype == SSE
    events: list[dict[str, Any]] = []
    buffer = b""
    heartbeats = 0
    try:
        for chunk in response.response:
            buffer += chunk if isinstance(chunk, bytes) else chunk.encode()
            while b"\n\n" in buffer:
                message, buffer = buffer.split(b"\n\n", 1)
                fields = dict(line.split(": ", 1) for line in message.decode().split("\n") if ": " in line
                              and not line.startswith(":"))
                if message.startswith(b": keep-alive"):
                    heartbeats += 1
                    assert heartbeats < 3, f"stream went quiet; got {[e['kind'] for e in events]}"
                if "data" in fields and "id" in fields:
                    events.append(json.loads(fields["data"]) | {"id": int(fields["id"])})
            if until(events):
                return events
    finally:
        response.close()
    raise AssertionError("stream ended")


def kinds(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e["data"] for e in events if e["kind"] == kind]


class Hall:
    """A section with a real DKG opening key (3 witnesses, quorum 2) published through the API."""

    def __init__(self, clients: Clients, platform: Platform, *, opening_in: int = 300, min_valid_bids: int = 3,
                 **section_fields: Any):
        self.clients, self.platform = clients, platform
        self.keyed: KeyedSection = run_dkg(threshold=2, witnesses=3)
        witnesses = clients.org_ids(Role.WITNESS)
        draft = api_draft(clients, platform, opening_in=opening_in)
        draft["sections"][0] |= {"witness_ids": witnesses, "witness_quorum": 2, "min_valid_bids": min_valid_bids,
                                 "opening_key": "0x" + self.keyed.opening_key.hex()} | section_fields
        agency = token_for(clients, clients.config.with_role(Role.AGENCY)[0].identifier)
        created = clients.app.test_client().post("/api/v1/tenders", json=draft, headers=agency)
        assert created.status_code == 201, created.json
        assert created.json is not None
        section = created.json["sections"][0]
        self.tender_id = created.json["id"]
        self.id, self.chain_id, self.opening_time = section["id"], section["chain_id"], section["opening_time"]
        self.section_id = bytes.fromhex(self.chain_id[2:])
        clients.drain()
        chain_order = [a.lower() for a in platform.tenders.witnesses(self.section_id)]
        self.witnesses = sorted(clients.config.with_role(Role.WITNESS),
                                key=lambda m: chain_order.index(m.signer.address.lower()))
        self.agency = agency

    def witness_token(self, index: int) -> dict[str, str]:
        return token_for(self.clients, self.witnesses[index - 1].identifier)

    def bid(self, number: int, announced: dict[str, Any], *, names_bidder: str | None = None) -> None:
        member = self.clients.config.with_role(Role.BIDDER)[number]
        headers = token_for(self.clients, member.identifier)
        client = self.clients.app.test_client()
        assert client.post(f"/api/v1/sections/{self.id}/registration", headers=headers).status_code in (200, 201)
        envelope = seal_bid(self.section_id, self.keyed.opening_key, names_bidder or member.signer.address.lower(),
                            announced, f"投标文件 {number} ".encode() + os.urandom(64), f"投标文件{number}.pdf")
        put = client.put(f"/api/v1/sections/{self.id}/bid", data=envelope, headers=headers | {
            "Content-Type": "application/octet-stream", "X-Submission-Key": uuid.uuid4().hex,
            "X-Commitment": "0x" + hashlib.sha256(envelope).hexdigest(), "X-Cover-Kind": "cash_deposit",
            "X-Cover-Ref": f"DEP-{uuid.uuid4().hex[:8]}"})
        assert put.status_code == 201, put.json

    def fetch_envelopes(self, folder: Path, index: int) -> dict[str, Path]:
        """What the witness does: download the sealed envelopes (allowed from the opening time)."""
        client, headers = self.clients.app.test_client(), self.witness_token(index)
        listing = client.get(f"/api/v1/sections/{self.id}/envelopes", headers=headers).json
        assert listing is not None
        found = {}
        for entry in listing["envelopes"]:
            path = folder / f"{entry['bidder']}.jzb"
            with client.get(entry["url"], headers=headers) as body:
                path.write_bytes(body.data)
            found[entry["bidder"]] = path
        return found

    def share(self, index: int) -> WitnessShare:
        return WitnessShare(self.section_id, index, self.keyed.secrets[index], self.keyed.opening_key)

    def release_quorum(self, folder: Path) -> None:
        """Witnesses 1 and 2 (the quorum) download the envelopes into `folder`, compute their share
        batches on their side and upload them."""
        envelopes = self.fetch_envelopes(folder, 1)
        request = AccessRequest(self.section_id, "hall-test", "decryption shares", 0)
        for index in (1, 2):
            batch = release_shares(self.platform.tenders, self.witnesses[index - 1].signer, self.share(index),
                                   envelopes, request)
            assert self.upload(index, batch).status_code == 201

    def upload(self, index: int, batch: ShareBatch | bytes, as_index: int | None = None) -> Any:
        body = batch if isinstance(batch, bytes) else batch.canonical()
        return self.clients.app.test_client().post(
            f"/api/v1/sections/{self.id}/share-batches", data=body,
            headers=self.witness_token(as_index or index) | {"Content-Type": "application/json"})


@pytest.fixture
def first_backend(platform: Platform) -> None:
    """The whole journey on the first chain backend only (SQLite and PostgreSQL): the hall's rules do not
    depend on the kind of chain, and the contract tests run on each."""
    if platform.backend.name != selected_backends()[0]:
        pytest.skip("the hall journey runs with the first chain backend only")


@pytest.mark.usefixtures("first_backend")
def test_opening_hall_from_share_batches_to_attestation(clients: Clients, platform: Platform, tmp_path: Path) -> None:
    hall = Hall(clients, platform)
    prices = {0: 123_456_700, 1: 120_000_000, 2: 131_000_050}
    for number, price in prices.items():
        hall.bid(number, {"price_fen": price, "duration_days": 180 + number, "quality": "合格"})
    # The fourth bidder seals a bid naming another bidder: 撤销 (its own fault), the others still open.
    hall.bid(3, {"price_fen": 99_000_000}, names_bidder=clients.config.with_role(Role.BIDDER)[0].signer.address.lower())
    clients.drain()

    # Before the opening time: no batch is accepted (and nothing is stored or sent).
    folder = tmp_path / "bids"
    folder.mkdir()
    commitments = platform.tenders.live_commitments(hall.section_id)
    assert len(commitments) == 4
    early = hall.upload(1, compute_share_batch(hall.share(1), commitments, {}))
    assert early.status_code == 409 and early.json is not None and early.json["error"]["code"] == "before_opening"

    platform.backend.advance_to(hall.opening_time)
    clients.drain()  # the driver notices the opening time: the hall's start event
    envelopes = hall.fetch_envelopes(folder, 1)
    witness_signers = [m.signer for m in hall.witnesses]
    request = AccessRequest(hall.section_id, "hall-test", "decryption shares", 0)
    batches = {i: release_shares(platform.tenders, witness_signers[i - 1], hall.share(i), envelopes, request)
               for i in (1, 2, 3)}

    # Bad batches, each with its own error; nothing stored.
    bidder = token_for(clients, clients.config.with_role(Role.BIDDER)[0].identifier)
    refused = clients.app.test_client().post(f"/api/v1/sections/{hall.id}/share-batches", headers=bidder,
                                             data=batches[1].canonical())
    assert refused.status_code == 403
    tampered_share = batches[1].shares[0]
    tampered = ShareBatch(hall.section_id, 1, (DecryptionShare(tampered_share.commitment, batches[2].shares[0].share,
                                                               tampered_share.proof), *batches[1].shares[1:]))
    answer = hall.upload(1, tampered)
    assert answer.status_code == 400 and answer.json is not None
    assert answer.json["error"]["field"] == "shares" and "证明无法验证" in answer.json["error"]["message"]
    wrong_index = hall.upload(2, batches[1], as_index=2)  # witness 2 hands in witness 1's batch
    assert wrong_index.status_code == 400 and wrong_index.json is not None
    assert wrong_index.json["error"]["field"] == "witness_index"
    clients.app.config["MAX_CONTENT_LENGTH"] = 4 * 1024 * 1024 + 1024
    oversized = hall.upload(1, b"{" + b" " * (4 * 1024 * 1024 + 10) + b"}")
    assert oversized.status_code == 413
    garbage = hall.upload(1, b"not json")
    assert garbage.status_code == 400 and garbage.json is not None and garbage.json["error"]["field"] == "batch"
    state = clients.app.test_client().get(f"/api/v1/sections/{hall.id}/hall", headers=hall.agency).json
    assert state is not None and state["batches"] == [] and state["stage"] == "started"

    # Two witnesses hand in their batches; the same batch again is the same upload, another one is refused.
    first = hall.upload(1, batches[1])
    assert first.status_code == 201 and first.json is not None
    again = hall.upload(1, batches[1])
    assert again.status_code == 201 and again.json is not None and again.json["id"] == first.json["id"]
    # The second witness uses the form on the hall page.
    witness_page = clients.app.test_client()
    assert login(witness_page, hall.witnesses[1].identifier).status_code == 302
    form = {"csrf_token": csrf_of(witness_page, f"/sections/{hall.id}/hall"),
            "batch": (io.BytesIO(batches[2].canonical()), "shares-2.json")}
    posted = witness_page.post(f"/sections/{hall.id}/share-batches", data=form)
    assert posted.status_code == 302 and posted.headers["Location"].endswith(f"/sections/{hall.id}/hall")
    other = ShareBatch(hall.section_id, 1, batches[1].shares[:1])
    duplicate = hall.upload(1, other)
    assert duplicate.status_code == 409 and duplicate.json is not None
    assert duplicate.json["error"]["code"] == "already_submitted"

    clients.drain()  # anchor the batches → open → outcomes and record on chain → closed
    state = clients.app.test_client().get(f"/api/v1/sections/{hall.id}/hall", headers=hall.agency).json
    assert state is not None and state["stage"] == "closed" and state["result"] == "opened", state
    on_chain = platform.tenders.section(hall.section_id)
    assert on_chain.status == SectionStatus.OPENED and "0x" + on_chain.opening_record_hash.hex() == state[
        "record_hash"]
    late = hall.upload(3, batches[3])
    assert late.status_code == 409 and late.json is not None and late.json["error"]["code"] == "hall_state_conflict"

    # The stream: every event from the start, in order, with the 唱标 of the three valid bids.
    client = clients.app.test_client()
    events = read_events(client, f"/api/v1/sections/{hall.id}/hall/events", bidder,
                         lambda found: any(e["kind"] == "closed" for e in found))
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    order = [e["kind"] for e in events]
    assert order.index("started") < order.index("opening") < order.index("announcement") < order.index("closed")
    announced = {a["announced"]["price_fen"] for a in kinds(events, "announcement")}
    assert announced == set(prices.values())
    (failed,) = kinds(events, "bid_failed")
    assert failed["cause"] == "bidder_mismatch" and failed["outcome_zh"] == "撤销" and failed["bidder_caused"]
    anchored = kinds(events, "batch_anchored")
    assert [a["anchored"] for a in anchored] == [1, 2] and all(a["tx"] and a["block"] for a in anchored)
    (closed,) = kinds(events, "closed")
    assert closed["result"] == "opened" and closed["tx"] and closed["valid_bids"] == 3
    # Resuming after an event id gives only what came after it.
    resumed = read_events(client, f"/api/v1/sections/{hall.id}/hall/events", bidder,
                          lambda found: any(e["kind"] == "closed" for e in found), last_event_id=events[-3]["id"])
    assert [e["id"] for e in resumed] == [e["id"] for e in events[-2:]]
    with clients.app.app_context():
        rows = db.session.scalars(sa.select(OpenedBid).order_by(OpenedBid.id)).all()
        assert len(rows) == 4 and sum(r.outcome == "opened" for r in rows) == 3
        assert all(r.document_sha256 and len(r.document_sha256) == 64 for r in rows if r.outcome == "opened")

    # The record as a PDF, in Chinese, with the anchored hash.
    pdf = client.get(f"/sections/{hall.id}/hall/record.pdf", headers=bidder)
    assert pdf.status_code == 401 or pdf.status_code == 302  # pages need a login, not a token
    page_client = clients.logged_in(Role.BIDDER)
    pdf = page_client.get(f"/sections/{hall.id}/hall/record.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    text = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf.data, capture_output=True,
                          check=True).stdout.decode()
    assert "开标记录" in text and state["record_hash"] in text and "撤销" in text and "1,234,567.00 元" in text
    assert clients.config.with_role(Role.BIDDER)[1].name in text
    record = page_client.get(f"/sections/{hall.id}/hall/record.json").data
    assert "0x" + hashlib.sha256(record).hexdigest() == state["record_hash"]
    hall_page = page_client.get(f"/sections/{hall.id}/hall").get_data(as_text=True)
    assert "开标大厅" in hall_page and 'id="confirm"' in hall_page

    # Objection and answer; a confirmation; an empty objection and a second response are refused.
    second = token_for(clients, clients.config.with_role(Role.BIDDER)[1].identifier)
    api = clients.app.test_client()
    empty = api.post(f"/api/v1/sections/{hall.id}/responses", json={"kind": "objection", "text": " "}, headers=second)
    assert empty.status_code == 400 and empty.json is not None and empty.json["error"]["field"] == "text"
    objection = api.post(f"/api/v1/sections/{hall.id}/responses",
                         json={"kind": "objection", "text": "第三标段报价读错"}, headers=second)
    assert objection.status_code == 201 and objection.json is not None
    again_response = api.post(f"/api/v1/sections/{hall.id}/responses", json={"kind": "confirmation"}, headers=second)
    assert again_response.status_code == 409
    assert api.post(f"/api/v1/sections/{hall.id}/responses", json={"kind": "confirmation"},
                    headers=bidder).status_code == 201
    response_id = objection.json["id"]
    early_answer = api.post(f"/api/v1/sections/{hall.id}/responses/{response_id}/answer", json={"text": "已核"},
                            headers=hall.agency)
    assert early_answer.status_code == 409  # not yet on chain
    clients.drain()
    assert platform.tenders.section(hall.section_id).pending_objections == 1
    stranger = api.post(f"/api/v1/sections/{hall.id}/responses/{response_id}/answer", json={"text": "x"},
                        headers=hall.witness_token(1))
    assert stranger.status_code == 403
    answered = api.post(f"/api/v1/sections/{hall.id}/responses/{response_id}/answer",
                        json={"text": "经核对录像，报价宣读无误"}, headers=hall.agency)
    assert answered.status_code == 201, answered.json
    clients.drain()
    objection_on_chain = platform.tenders.objection(hall.section_id, 1)
    assert "0x" + objection_on_chain.answer_hash.hex() == "0x" + hashlib.sha256(
        "经核对录像，报价宣读无误".encode()).hexdigest()

    # A witness attests: the platform redoes the opening from public data, then sends attestOpening.
    attest = api.post(f"/api/v1/sections/{hall.id}/attestation", headers=hall.witness_token(3))
    assert attest.status_code == 202
    clients.drain()
    assert platform.tenders.has_attested(hall.section_id, hall.witnesses[2].signer.address)
    final = read_events(client, f"/api/v1/sections/{hall.id}/hall/events", hall.agency,
                        lambda found: any(e["kind"] == "attestation" and e["data"]["status"] == "attested"
                                          for e in found), last_event_id=events[-1]["id"])
    done = kinds(final, "answer_anchored") + [a for a in kinds(final, "attestation") if a["status"] == "attested"]
    assert len(done) == 2 and all(d["tx"] for d in done)
    with clients.app.app_context():
        actions = [e.action for e in db.session.scalars(sa.select(OutboxEntry).where(OutboxEntry.status == "failed"))]
    assert actions == []

    # After the response window (chain time) a late confirmation is refused.
    platform.backend.advance_to(int(state["window_ends_at"]) + 1)
    third = token_for(clients, clients.config.with_role(Role.BIDDER)[2].identifier)
    late_response = api.post(f"/api/v1/sections/{hall.id}/responses", json={"kind": "confirmation"}, headers=third)
    assert late_response.status_code == 409 and late_response.json is not None
    assert late_response.json["error"]["code"] == "response_window_closed"


@pytest.mark.usefixtures("first_backend")
def test_the_agency_retries_a_refused_record_write_once(clients: Clients, platform: Platform, tmp_path: Path) -> None:
    """recordOutcomes refused by the contract (the bid's cover was not yet revealed on chain: here the test
    runs the opening before the reveal, as a driver that got the order wrong would), then closeOpening
    (outcomes pending); once the reveal is on chain the agency retries both from the hall page, once
    although the form is sent twice, and the opening closes."""
    hall = Hall(clients, platform, min_valid_bids=1)
    hall.bid(0, {"price_fen": 88_000_000, "duration_days": 90})
    clients.drain()
    sender = outbox_sender(clients.app)
    driver, sender.after_round = sender.after_round, lambda: False  # the sender alone, without the hall
    try:
        platform.backend.advance_to(hall.opening_time)
        hall.release_quorum(tmp_path)
        clients.drain()  # the batches are anchored; no reveal is queued (no driver)
        with clients.app.app_context():
            section = db.session.get_one(Section, hall.id)
            opening = SectionOpening(section_id=section.id, stage="started", started_at=hall.opening_time,
                                     response_window=1800)
            db.session.add(opening)
            db.session.flush()
            run_opening(db.session, gateway(), section, opening, Path(clients.app.config["UPLOAD_FOLDER"]))
        clients.drain()
    finally:
        sender.after_round = driver

    def writes() -> list[tuple[str, str, str | None]]:
        with clients.app.app_context():
            return [(e.key.split(":0x")[0] + (":retry" if ":retry:" in e.key else ""), e.status, e.error_code)
                    for e in db.session.scalars(sa.select(OutboxEntry).where(
                        OutboxEntry.action.in_(("record_outcomes", "close_opening"))).order_by(OutboxEntry.id))]

    assert writes() == [("record_outcomes", "failed", "TenderRegistryCoverNotRevealed"),
                        ("close_opening", "failed", "TenderRegistryOutcomesPending")]
    api = clients.app.test_client()
    state = api.get(f"/api/v1/sections/{hall.id}/hall", headers=hall.agency).json
    assert state is not None and state["stage"] == "closing"
    assert [w["action"] for w in state["refused_writes"]] == ["record_outcomes", "close_opening"]
    # Only the section's agency sees the button and may retry.
    agency = clients.logged_in(Role.AGENCY)
    page = agency.get(f"/sections/{hall.id}/hall").get_data(as_text=True)
    assert 'id="retry-writes"' in page and "TenderRegistryCoverNotRevealed" in page
    assert 'id="retry-writes"' not in clients.logged_in(Role.REGULATOR).get(f"/sections/{hall.id}/hall").get_data(
        as_text=True)
    refused = api.post(f"/api/v1/sections/{hall.id}/hall/retry", headers=hall.witness_token(1))
    assert refused.status_code == 403

    # The cause goes away: the cover is revealed (the step the opening skipped).
    with clients.app.app_context():
        assert queue_cover_reveals(db.session, db.session.get_one(Section, hall.id)) == 1
        db.session.commit()
    clients.drain()
    bidder_address = clients.config.with_role(Role.BIDDER)[0].signer.address
    assert platform.tenders.cover_of(hall.section_id, bidder_address).revealed

    # The agency retries from the page; the form sent twice queues each write once.
    token = csrf_of(agency, f"/sections/{hall.id}/hall")
    for _ in range(2):
        posted = agency.post(f"/sections/{hall.id}/hall/retry", data={"csrf_token": token})
        assert posted.status_code == 302 and posted.headers["Location"].endswith(f"/sections/{hall.id}/hall")
    again = api.post(f"/api/v1/sections/{hall.id}/hall/retry", headers=hall.agency)
    assert again.status_code == 202 and again.json is not None
    assert [r["action"] for r in again.json["retries"]] == ["record_outcomes", "close_opening"]
    assert writes()[2:] == [("record_outcomes:retry", "pending", None), ("close_opening:retry", "pending", None)]
    assert 'id="retry-writes"' not in agency.get(f"/sections/{hall.id}/hall").get_data(as_text=True)

    clients.drain()  # the outcomes, then the record hash, are on chain; the opening closes
    assert [w[1] for w in writes()] == ["failed", "failed", "confirmed", "confirmed"]
    assert platform.tenders.section(hall.section_id).status == SectionStatus.OPENED
    state = api.get(f"/api/v1/sections/{hall.id}/hall", headers=hall.agency).json
    assert state is not None and state["stage"] == "closed" and state["result"] == "opened"
    assert state["refused_writes"] == []
    events = read_events(api, f"/api/v1/sections/{hall.id}/hall/events", hall.agency,
                         lambda found: any(e["kind"] == "closed" for e in found))
    order = [e["kind"] for e in events]
    assert order.count("chain_write_failed") == 2 and order.count("chain_write_retried") == 1
    assert order.index("chain_write_retried") < order.index("outcomes_anchored") < order.index("closed")
    nothing = api.post(f"/api/v1/sections/{hall.id}/hall/retry", headers=hall.agency)
    assert nothing.status_code == 409 and nothing.json is not None
    assert nothing.json["error"]["code"] == "hall_state_conflict"


def test_hall_admits_only_the_sections_participants(clients: Clients, platform: Platform) -> None:
    hall = Hall(clients, platform, opening_in=600)
    guarantor = clients.logged_in(Role.GUARANTOR)
    assert guarantor.get(f"/sections/{hall.id}/hall").status_code == 403
    unregistered = token_for(clients, clients.config.with_role(Role.BIDDER)[4].identifier)
    response = clients.app.test_client().get(f"/api/v1/sections/{hall.id}/hall/events", headers=unregistered)
    assert response.status_code == 403 and response.json is not None
    assert response.json["error"]["code"] == "forbidden"
    for role in (Role.AGENCY, Role.TENDERER, Role.REGULATOR, Role.WITNESS):
        page = clients.logged_in(role).get(f"/sections/{hall.id}/hall")
        assert page.status_code == 200 and "开标大厅" in page.get_data(as_text=True), role
    assert clients.app.test_client().get(f"/api/v1/sections/{hall.id}/hall/events",
                                         headers={"Last-Event-ID": "x"} | hall.agency).status_code == 400


@pytest.mark.usefixtures("first_backend")
def test_a_section_without_bids_is_a_failed_tender(clients: Clients, platform: Platform) -> None:
    hall = Hall(clients, platform, opening_in=120)
    platform.backend.advance_to(hall.opening_time)
    clients.drain()
    assert platform.tenders.section(hall.section_id).status == SectionStatus.FAILED_TENDER
    events = read_events(clients.app.test_client(), f"/api/v1/sections/{hall.id}/hall/events", hall.agency,
                         lambda found: any(e["kind"] == "closed" for e in found))
    (closed,) = kinds(events, "closed")
    assert closed["result"] == "failed_tender" and closed["valid_bids"] == 0 and closed["min_valid_bids"] == 3
    pdf = clients.logged_in(Role.TENDERER).get(f"/sections/{hall.id}/hall/record.pdf")
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf.data, capture_output=True, check=True).stdout.decode()
    assert "流标" in text and "少于最低 3 份" in text


@pytest.mark.usefixtures("first_backend")
def test_unconfirmed_bid_is_marked_and_the_sections_window_holds(clients: Clients, platform: Platform,
                                                                  tmp_path: Path) -> None:
    """Two bids, an amendment, one re-confirmation: both open and count (the contract does not refuse the
    unconfirmed one), the hall, the canonical record and its PDF say which was not confirmed (the record from
    chain reads a witness's re-check repeats: it attests) and how the contract treated it; the agency's
    7-minute window, not the platform's 30, closes the responses."""
    hall = Hall(clients, platform, min_valid_bids=2, response_window_minutes=7)
    for number in (0, 1):
        hall.bid(number, {"price_fen": 100_000_000 + number, "duration_days": 150, "quality": "合格"})
    clients.drain()
    api = clients.app.test_client()
    amended = api.post(f"/api/v1/tenders/{hall.tender_id}/amendments", json={"summary": "工期改为150日历天"},
                       headers=hall.agency)
    assert amended.status_code == 201
    clients.drain()
    tokens = [token_for(clients, m.identifier) for m in clients.config.with_role(Role.BIDDER)[:2]]
    listed = [api.get("/api/v1/bids", headers=t).json for t in tokens]
    assert all(found is not None and len(found["bids"]) == 1 for found in listed)
    first_bid = listed[0]["bids"][0]["id"]  # type: ignore[index]
    assert api.post(f"/api/v1/bids/{first_bid}/reconfirm", headers=tokens[0]).status_code == 200
    clients.drain()
    second = clients.app.test_client()
    assert login(second, clients.config.with_role(Role.BIDDER)[1].identifier).status_code == 302
    page = second.get(f"/sections/{hall.id}/hall").get_data(as_text=True)
    assert 'id="own-bid"' in page and "待确认：招标文件已于" in page and "开标记录上链后 7 分钟" in page

    platform.backend.advance_to(hall.opening_time)
    clients.drain()
    folder = tmp_path / "bids"
    folder.mkdir()
    hall.release_quorum(folder)
    clients.drain()

    state = api.get(f"/api/v1/sections/{hall.id}/hall", headers=hall.agency).json
    assert state is not None and state["stage"] == "closed" and state["result"] == "opened", state
    addresses = [m.signer.address.lower() for m in clients.config.with_role(Role.BIDDER)[:2]]
    stood = {b["address"]: (b["outcome"], b["confirmed"], b["confirmed_amendment"], b["tender_amendment"])
             for b in state["bids"]}
    assert stood == {addresses[0]: ("opened", True, 1, 1), addresses[1]: ("opened", False, 0, 1)}
    events = read_events(api, f"/api/v1/sections/{hall.id}/hall/events", tokens[0],
                         lambda found: any(e["kind"] == "closed" for e in found))
    announced = {a["address"]: a for a in kinds(events, "announcement")}
    assert announced[addresses[0]]["confirmation_zh"] == "已确认招标文件第1次修改"
    note = announced[addresses[1]]["confirmation_zh"]
    assert note.startswith("未确认招标文件第1次修改（投标对应最初发布的招标文件）") and "照常解密、唱标" in note
    (closed,) = kinds(events, "closed")
    assert closed["valid_bids"] == 2  # the unconfirmed bid counts
    with clients.app.app_context():
        rows = db.session.scalars(sa.select(OpenedBid).order_by(OpenedBid.bidder_address)).all()
        assert {(r.bidder_address, r.confirmed_amendment, r.tender_amendment) for r in rows} == {
            (addresses[0], 1, 1), (addresses[1], 0, 1)}
    # The canonical record says it too, from the chain: a witness's re-check reproduces it and attests.
    record_bytes = second.get(f"/sections/{hall.id}/hall/record.json").data
    assert "0x" + hashlib.sha256(record_bytes).hexdigest() == state["record_hash"]
    record = json.loads(record_bytes)
    assert record["tender_amendment"] == 1
    assert {b["bidder"]: (b["confirmed_amendment"], b["amendment_confirmed"]) for b in record["bids"]} == {
        addresses[0]: (1, True), addresses[1]: (0, False)}
    assert api.post(f"/api/v1/sections/{hall.id}/attestation", headers=hall.witness_token(3)).status_code == 202
    clients.drain()
    assert platform.tenders.has_attested(hall.section_id, hall.witnesses[2].signer.address)
    pdf = second.get(f"/sections/{hall.id}/hall/record.pdf")
    assert pdf.status_code == 200 and pdf.headers["X-Record-Hash"] == state["record_hash"]
    lines = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf.data, capture_output=True,
                           check=True).stdout.decode().splitlines()
    names = [m.name[:20] for m in clients.config.with_role(Role.BIDDER)[:2]]
    rows_of = {name: next(line for line in lines if name in line) for name in names}
    assert "已解密※" not in rows_of[names[0]] and "已解密※" in rows_of[names[1]]
    assert sum("※ 未确认第1次修改（投标对应最初发布的招标文件）" in line for line in lines) == 1
    assert "未确认最近一次修改的投标 1 份" in "\n".join(lines)
    receipt = second.get(f"/bids/{listed[1]['bids'][0]['id']}").get_data(as_text=True)  # type: ignore[index]
    assert "未重新确认" in receipt and "照常解密、唱标" in receipt and 'class="reconfirm"' not in receipt

    # The section's window: 7 minutes of chain time after the record, shown in the hall.
    assert state["response_window"] == 420
    close_time = int(platform.backend.chain.w3.eth.get_block(state["close_block"])["timestamp"])
    assert 420 <= state["window_ends_at"] - close_time <= 480
    assert "开标记录上链后 7 分钟" in second.get(f"/sections/{hall.id}/hall").get_data(as_text=True)
    platform.backend.advance_to(int(state["window_ends_at"]) + 1)  # well within the platform's 30 minutes
    late = api.post(f"/api/v1/sections/{hall.id}/responses", json={"kind": "confirmation"}, headers=tokens[1])
    assert late.status_code == 409 and late.json is not None
    assert late.json["error"]["code"] == "response_window_closed"
