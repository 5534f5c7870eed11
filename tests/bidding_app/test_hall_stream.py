"""The hall's live fan-out: one poller per watched section serves every viewer, events reach each of
them in order, presence follows the bidders' open connections, and the poller stops with the last viewer."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

from bidding_app.db import db
from bidding_app.hall_events import emit
from bidding_app.hall_stream import END_OF_STREAM, close_streams, hub
from contracts.records import Role
from tests.bidding_app.conftest import Clients
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


def test_one_poller_fans_each_event_out_to_every_viewer(clients: Clients, platform: Platform) -> None:
    section = open_section(clients, platform)
    halls = hub(clients.app)
    viewers = [halls.subscribe(section.id, 1000 + n, f"机构{n}", n < 3, 0) for n in range(60)]
    assert len(halls.feeds) == 1 and sum(t.name == f"hall-{section.id}" for t in threading.enumerate()) == 1
    assert halls.bidders_present(section.id) == ["机构0", "机构1", "机构2"]
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
    assert hub(clients.app).viewers(section.id) == 0


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
    assert halls.viewers(section.id) == 0 and poller is not None and not poller.is_alive()
    # A request that subscribes after the worker stopped listening ends at once too.
    late = halls.subscribe(section.id, 1, "机构", False, 0)
    assert late.messages.get_nowait() is END_OF_STREAM
    halls.unsubscribe(late)
