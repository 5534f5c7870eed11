"""The hall's live fan-out: one poller per watched section serves every viewer, events reach each of
them in order, the poller stops with the last viewer; presence is the same in every web worker (two
apps on one database are exactly two workers), a killed worker's connections expire, and the platform
served with two gunicorn workers shows every connection to every viewer."""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from flask import Flask

from bidding_app import create_app
from bidding_app.db import db, make_engine
from bidding_app.hall_events import emit
from bidding_app.hall_stream import END_OF_STREAM, Subscriber, close_streams, current_presence, hub, now_ms
from bidding_app.models import HallPresence
from contracts.deploy import ConsortiumConfig
from contracts.records import Role
from tests.backends import selected_backends
from tests.bidding_app.conftest import (
    OPENING_KEY,
    PASSWORD,
    Clients,
    app_config,
    serve_platform,
    wait_until,
)
from tests.bidding_app.test_bids import api_client, open_section, register
from tests.helpers import Platform


def emit_committed(clients: Clients, section_id: int, kind: str, data: dict[str, object]) -> int:
    """An event written as the outbox sender writes it: its own session, committed."""
    with clients.app.app_context():
        session = db.new_session()
        try:
            event = emit(session, section_id, kind, data)
            session.commit()
            return event.seq
        finally:
            session.close()


def next_presence(viewer: Subscriber, timeout: float = 10.0) -> dict[str, Any]:
    """The next presence event on the viewer's queue (hall events in between are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        seq, message = viewer.messages.get(timeout=max(0.01, deadline - time.monotonic()))
        if seq is None:
            data: dict[str, Any] = json.loads(message.decode().split("data: ", 1)[1])["data"]
            return data


def presence_reaching(viewer: Subscriber, bidders: list[str], viewers: int, timeout: float = 10.0) -> None:
    """Wait for the presence event that says exactly this (earlier ones may still be on the way)."""
    deadline = time.monotonic() + timeout
    seen: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            seen.append(next_presence(viewer, deadline - time.monotonic()))
        except queue.Empty:
            break
        if seen[-1] == {"bidders": bidders, "viewers": viewers}:
            return
    raise AssertionError(f"presence never became {bidders} / {viewers}: {seen}")


def presence_rows(app: Flask, section_id: int) -> list[HallPresence]:
    with app.app_context():
        session = db.new_session()
        try:
            return list(session.scalars(sa.select(HallPresence).where(HallPresence.section_id == section_id)))
        finally:
            session.close()


def test_one_poller_fans_each_event_out_to_every_viewer(clients: Clients, platform: Platform) -> None:
    section = open_section(clients, platform)
    halls = hub(clients.app)
    bidders = [clients.organisation(Role.BIDDER, n) for n in range(3)]
    agency = clients.organisation(Role.AGENCY)
    viewers = [halls.subscribe(section.id, bidders[n].id if n < 3 else agency.id, n < 3, 0) for n in range(60)]
    assert len(halls.feeds) == 1 and sum(t.name == f"hall-{section.id}" for t in threading.enumerate()) == 1
    presence_reaching(viewers[-1], sorted(b.name for b in bidders), 60)
    first = emit_committed(clients, section.id, "started", {"chain_time": 1})
    second = emit_committed(clients, section.id, "announcement", {"bidder": "甲", "announced": {"price_fen": 1}})
    for viewer in viewers:
        received: list[tuple[int, bytes]] = []
        while len(received) < 2:
            seq, message = viewer.messages.get(timeout=10)
            if seq is not None:
                received.append((seq, message))
        assert [seq for seq, _ in received] == [first, second]
        body = received[1][1].decode()
        assert body.startswith(f"id: {second}\nevent: announcement\ndata: ")
        assert json.loads(body.split("data: ", 1)[1])["data"]["bidder"] == "甲"
    thread = halls.feeds[section.id].thread
    for viewer in viewers:
        halls.unsubscribe(viewer)
    assert thread is not None
    thread.join(timeout=5)
    assert not thread.is_alive() and section.id not in halls.feeds
    assert presence_rows(clients.app, section.id) == []  # every connection took its row with it


def test_the_stream_sends_the_backlog_then_live_events_and_presence(clients: Clients, platform: Platform) -> None:
    section = open_section(clients, platform)
    bidder = clients.logged_in(Role.BIDDER)
    register(bidder, section)
    before = emit_committed(clients, section.id, "started", {"chain_time": 1})
    response = clients.app.test_client().get(f"/api/v1/sections/{section.id}/hall/events",
                                             headers=api_client(clients, Role.BIDDER), buffered=False)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-cache"
    chunks: Iterator[bytes] = iter(response.response)  # type: ignore[arg-type]
    try:
        assert next(chunks) == b"retry: 2000\n\n"
        assert next(chunks).startswith(f"id: {before}\nevent: started".encode())
        presence = next(chunks).decode()
        assert presence.startswith("event: presence") and "甲建设工程有限公司" in presence
        live = emit_committed(clients, section.id, "opening", {"anchored_batches": 2})
        assert next(chunks).startswith(f"id: {live}\nevent: opening".encode())
    finally:
        response.close()
    assert hub(clients.app).local_viewers(section.id) == 0
    assert presence_rows(clients.app, section.id) == []


def test_closing_the_hub_ends_every_stream(clients: Clients, platform: Platform) -> None:
    """What the web worker does on a graceful stop (SIGTERM): a stream never ends by itself, and the worker
    waits for every open response before it exits."""
    section = open_section(clients, platform)
    response = clients.app.test_client().get(f"/api/v1/sections/{section.id}/hall/events",
                                             headers=api_client(clients, Role.AGENCY), buffered=False)
    chunks: Iterator[bytes] = iter(response.response)  # type: ignore[arg-type]
    try:
        assert next(chunks) == b"retry: 2000\n\n"
        halls = hub(clients.app)
        poller = halls.feeds[section.id].thread
        close_streams(clients.app)
        assert all(chunk.startswith(b"event: presence") for chunk in chunks)  # then the stream ends
    finally:
        response.close()
    assert halls.local_viewers(section.id) == 0 and poller is not None and not poller.is_alive()
    assert presence_rows(clients.app, section.id) == []
    # A request that subscribes after the worker stopped listening ends at once too.
    late = halls.subscribe(section.id, 1, False, 0)
    assert late.messages.get_nowait() is END_OF_STREAM
    halls.unsubscribe(late)


def test_two_workers_on_one_database_show_the_same_presence(
    clients: Clients, platform: Platform, database_url: str, tmp_path: Path
) -> None:
    """Two apps on one database are two gunicorn workers: each viewer sees the bidders connected to the
    other one, the page's first render shows them too, and a departure on one reaches the other."""
    section = open_section(clients, platform)
    for index in range(2):
        register(clients.logged_in(Role.BIDDER, index), section)
    first, second = (clients.organisation(Role.BIDDER, index) for index in range(2))
    other = create_app(app_config(database_url, tmp_path / "other", platform))
    here, there = hub(clients.app), hub(other)
    assert here.worker != there.worker
    try:
        watching = here.subscribe(section.id, first.id, True, 0)
        away = there.subscribe(section.id, second.id, True, 0)
        agency = there.subscribe(section.id, clients.organisation(Role.AGENCY).id, False, 0)
        both = sorted([first.name, second.name])
        presence_reaching(watching, both, 3)
        presence_reaching(agency, both, 3)
        assert {row.worker for row in presence_rows(clients.app, section.id)} == {here.worker, there.worker}

        page = clients.logged_in(Role.TENDERER).get(f"/sections/{section.id}/hall").get_data(as_text=True)
        assert f'<dd id="presence">{"、".join(both)}</dd>' in page
        state = clients.app.test_client().get(f"/api/v1/sections/{section.id}/hall",
                                              headers=api_client(clients, Role.AGENCY)).json
        assert state is not None and state["presence"] == {"bidders": both, "viewers": 3}

        there.unsubscribe(away)
        presence_reaching(watching, [first.name], 2)
        here.unsubscribe(watching)
        presence_reaching(agency, [], 1)
        there.unsubscribe(agency)
        assert presence_rows(clients.app, section.id) == []
        page = clients.logged_in(Role.TENDERER).get(f"/sections/{section.id}/hall").get_data(as_text=True)
        assert '<dd id="presence">暂无</dd>' in page
    finally:
        other.extensions["jianzheng_db"].engine.dispose()


def test_a_killed_workers_connections_expire(clients: Clients, platform: Platform) -> None:
    """A worker killed with connections open leaves rows nobody refreshes: after three refresh intervals
    they no longer count and are deleted, while a live worker keeps its own rows fresh."""
    clients.app.config["HALL_PRESENCE_REFRESH"] = 0.3  # before the hub is made: it reads the setting once
    section = open_section(clients, platform)
    alive, killed = (clients.organisation(Role.BIDDER, index) for index in range(2))
    with clients.app.app_context():
        db.session.add(HallPresence(token=uuid.uuid4().hex, section_id=section.id, organisation_id=killed.id,
                                    is_bidder=True, worker="killed-host:4242:dead", seen_ms=now_ms()))
        db.session.commit()
    halls = hub(clients.app)
    viewer = halls.subscribe(section.id, alive.id, True, 0)
    try:
        presence_reaching(viewer, sorted([alive.name, killed.name]), 2)
        presence_reaching(viewer, [alive.name], 1, timeout=5)
        wait_until(lambda: [row.worker for row in presence_rows(clients.app, section.id)] == [halls.worker], 5)
        time.sleep(1.5)  # five refresh intervals: the live connection's row is refreshed, not expired
        rows = presence_rows(clients.app, section.id)
        assert [row.worker for row in rows] == [halls.worker] and now_ms() - rows[0].seen_ms < 1000
        with clients.app.app_context():
            assert current_presence(clients.app, db.session, section.id).bidders == (alive.name,)
    finally:
        halls.unsubscribe(viewer)
    assert presence_rows(clients.app, section.id) == []


def _sse_presence(response: requests.Response, viewers: int, timeout: float) -> dict[str, Any]:
    """Read one served stream until its presence says `viewers` connections (or the time is up)."""
    deadline = time.monotonic() + timeout
    event = ""
    last: dict[str, Any] = {}
    for raw in response.iter_lines():
        line = raw.decode()
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event == "presence":
            last = json.loads(line[6:])["data"]
            if last["viewers"] == viewers:
                return last
        if time.monotonic() > deadline:
            break
    return last


def test_the_platform_served_by_two_workers_shows_every_connection(
    tmp_path: Path, platform: Platform, dev_config: ConsortiumConfig
) -> None:
    """`run_platform.py` with its default of two workers: streams held by both workers, each of them
    hears of all the connections. With the first chain backend only: the presence does not depend on it."""
    if platform.backend.name != selected_backends()[0]:
        pytest.skip("the served platform runs with the first chain backend only")
    with serve_platform(tmp_path, platform, dev_config) as served:
        _two_workers_hear_every_connection(served.url, tmp_path, platform, dev_config)


def _two_workers_hear_every_connection(url: str, tmp_path: Path, platform: Platform,
                                       dev_config: ConsortiumConfig) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'served.db'}")
    streams: list[requests.Response] = []
    try:
        def token(role: Role, index: int = 0) -> str:
            username = dev_config.with_role(role)[index].identifier
            answer = requests.post(url + "/api/v1/token", json={"username": username, "password": PASSWORD},
                                   timeout=30)
            assert answer.status_code == 201, answer.text
            return str(answer.json()["token"])

        agency = token(Role.AGENCY)
        created = requests.post(url + "/api/v1/tenders", json=_draft(url, agency, dev_config, platform), timeout=30,
                                headers={"Authorization": f"Bearer {agency}"})
        assert created.status_code == 201, created.text
        section_id = created.json()["sections"][0]["id"]
        tokens = [agency, token(Role.REGULATOR, 0), token(Role.REGULATOR, 1)]
        workers: set[str] = set()
        while len(workers) < 2 and len(streams) < 40:
            stream = requests.get(f"{url}/api/v1/sections/{section_id}/hall/events", stream=True, timeout=20,
                                  headers={"Authorization": f"Bearer {tokens[len(streams) % 3]}"})
            assert stream.status_code == 200, stream.text
            streams.append(stream)
            wait_until(lambda: _rows(engine, section_id) == len(streams), 10)
            with engine.connect() as connection:
                workers = set(connection.scalars(sa.select(HallPresence.worker)))
        assert len(workers) == 2, f"all {len(streams)} connections went to one worker"
        for stream in streams:
            assert _sse_presence(stream, len(streams), 10)["viewers"] == len(streams)
    finally:
        for stream in streams:
            stream.close()
        engine.dispose()


def _draft(url: str, token: str, config: ConsortiumConfig, platform: Platform) -> dict[str, Any]:
    """A one-section tender for the served platform, its organisations' ids from the API."""
    members = requests.get(url + "/api/v1/organisations", headers={"Authorization": f"Bearer {token}"},
                           timeout=30).json()
    by_identifier = {member["identifier"]: member["id"] for member in members["organisations"]}
    return {"title": "供水管网改造工程", "description": "管网改造。", "submission_key": uuid.uuid4().hex,
            "tenderer_id": by_identifier[config.with_role(Role.TENDERER)[0].identifier],
            "sections": [{"title": "第一标段", "opening_time": platform.now() + 3600, "bid_bond": 80_000_000,
                          "bid_validity_days": 90, "min_valid_bids": 3, "witness_quorum": 2,
                          "witness_ids": [by_identifier[m.identifier] for m in config.with_role(Role.WITNESS)[:2]],
                          "opening_key": OPENING_KEY}]}


def _rows(engine: sa.Engine, section_id: int) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(sa.select(sa.func.count(HallPresence.id))
                                     .where(HallPresence.section_id == section_id)) or 0)
