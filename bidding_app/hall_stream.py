"""Live fan-out of the opening hall's events to its viewers (server-sent events), in every web worker.

Per watched section each web worker (gunicorn + gevent) runs ONE poller (a thread; a greenlet under
gevent) that reads the section's new `hall_event` rows every `HALL_POLL_INTERVAL` and puts each
message, serialised once, on every subscriber's queue; a connection costs a queue and a greenlet,
never a database query of its own. The poller stops when the worker's last viewer of the section
leaves.

Presence (who is in the hall) must be the same whichever worker a viewer is connected to, so it lives
in the database too: one `hall_presence` row per open connection, inserted when it subscribes and
deleted when it leaves. The poller keeps its own connections' rows fresh (one UPDATE per section every
`HALL_PRESENCE_REFRESH` seconds, for all of them) and reads the section's presence once a second, or
at the next tick after one of its own viewers came or went. Rows older than `MISSED_REFRESHES`
refreshes belong to a worker that was killed: they are not counted, and deleted. A change is pushed
as a `presence` event without an id, so it does not move a viewer's Last-Event-ID; a new connection
gets the presence its worker last read at once. When the worker stops
(gunicorn's graceful SIGTERM), `close_streams` ends every stream: they never end by themselves, and the
viewers' EventSource reconnects with its Last-Event-ID to the worker that serves next.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from bidding_app.db import db
from bidding_app.hall_events import events_after, sse_message
from bidding_app.models import HallPresence, Organisation

HEARTBEAT_SECONDS = 15.0
# Put on a subscriber's queue to end its stream (compared by identity; presence messages are (None, text)).
END_OF_STREAM: tuple[int | None, bytes] = (None, b"")
PRESENCE_READ_SECONDS = 1.0  # a section's presence is read at least this often while it is watched
MISSED_REFRESHES = 3  # a presence row this many refreshes old is a dead worker's


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Presence:
    """Who is in a section's hall: the bidders with an open connection, and how many connections."""

    bidders: tuple[str, ...]
    viewers: int

    def as_json(self) -> dict[str, Any]:
        return {"bidders": list(self.bidders), "viewers": self.viewers}

    def message(self) -> bytes:
        body = json.dumps({"kind": "presence", "data": self.as_json()}, ensure_ascii=False)
        return f"event: presence\ndata: {body}\n\n".encode()


def read_presence(session: Session, section_id: int, fresh_since_ms: int) -> Presence:
    """The section's presence from the connections of every worker seen since `fresh_since_ms`."""
    rows = session.execute(
        sa.select(Organisation.name, HallPresence.is_bidder, sa.func.count(HallPresence.id))
        .join(Organisation, Organisation.id == HallPresence.organisation_id)
        .where(HallPresence.section_id == section_id, HallPresence.seen_ms >= fresh_since_ms)
        .group_by(Organisation.id, Organisation.name, HallPresence.is_bidder)
    ).all()
    return Presence(tuple(sorted({name for name, is_bidder, _ in rows if is_bidder})),
                    sum(count for _, _, count in rows))


def presence_expiry_ms(app: Flask) -> int:
    return int(MISSED_REFRESHES * float(app.config["HALL_PRESENCE_REFRESH"]) * 1000)


def current_presence(app: Flask, session: Session, section_id: int) -> Presence:
    """The presence a new page shows: the same rows, and the same freshness rule, as the pollers use."""
    return read_presence(session, section_id, now_ms() - presence_expiry_ms(app))


@dataclass(eq=False)
class Subscriber:
    section_id: int
    organisation_id: int
    is_bidder: bool
    token: str  # its hall_presence row
    messages: queue.Queue[tuple[int | None, bytes]] = field(default_factory=queue.Queue)


@dataclass(eq=False)
class SectionFeed:
    section_id: int
    last_seq: int
    subscribers: set[Subscriber] = field(default_factory=set)
    thread: threading.Thread | None = None
    wake: threading.Event = field(default_factory=threading.Event)
    presence: Presence | None = None  # as last read; None until the first read
    presence_due: bool = True  # one of this worker's viewers came or went since the last read
    presence_read_at: float = 0.0  # monotonic
    refreshed_at: float = field(default_factory=time.monotonic)


class HallHub:
    """The web worker's registry of watched halls: subscribe, unsubscribe, one poller per section."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.interval = float(app.config["HALL_POLL_INTERVAL"])
        self.refresh = float(app.config["HALL_PRESENCE_REFRESH"])
        self.expiry_ms = presence_expiry_ms(app)
        # Made after the fork (the hub is made on first use), so each worker has its own.
        self.worker = f"{socket.gethostname()[:50]}:{os.getpid()}:{secrets.token_hex(4)}"
        self.feeds: dict[int, SectionFeed] = {}
        # Tokens of connections that left, deleted again at the next refresh: a departure's own deletion may
        # have failed, or raced a refresh that put the row back.
        self.gone: set[str] = set()
        self.lock = threading.Lock()
        self.closing = False

    def subscribe(self, section_id: int, organisation_id: int, is_bidder: bool, last_seq: int) -> Subscriber:
        """Enter the hall: the connection's presence row is committed before the pollers may read it."""
        subscriber = Subscriber(section_id, organisation_id, is_bidder, secrets.token_hex(16))
        with self.app.app_context():
            session = db.new_session()
            try:
                session.add(HallPresence(token=subscriber.token, section_id=section_id,
                                         organisation_id=organisation_id, is_bidder=is_bidder,
                                         worker=self.worker, seen_ms=now_ms()))
                session.commit()
            finally:
                session.close()
        with self.lock:
            feed = self.feeds.get(section_id)
            if feed is None:
                feed = self.feeds[section_id] = SectionFeed(section_id, last_seq)
            feed.subscribers.add(subscriber)
            feed.presence_due = True
            if feed.presence is not None:
                subscriber.messages.put((None, feed.presence.message()))
            if feed.thread is None:
                feed.thread = threading.Thread(target=self._poll, args=(feed,), daemon=True,
                                               name=f"hall-{section_id}")
                feed.thread.start()
            if self.closing:  # a request that came in just before the worker stopped listening
                subscriber.messages.put(END_OF_STREAM)
        return subscriber

    def close(self) -> None:
        """End every viewer's stream now: the worker is stopping, and it waits for open responses."""
        with self.lock:
            self.closing = True
            subscribers = [s for feed in self.feeds.values() for s in feed.subscribers]
        for subscriber in subscribers:
            subscriber.messages.put(END_OF_STREAM)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Leave the hall; the last viewer to leave also waits for the poller to finish (it holds no
        database connection afterwards, so an engine can be disposed right after)."""
        with self.lock:
            feed = self.feeds.get(subscriber.section_id)
            poller = None
            if feed is not None:
                feed.subscribers.discard(subscriber)
                poller = feed.thread if not feed.subscribers else None
            self.gone.add(subscriber.token)
        try:
            with self.app.app_context():
                session = db.new_session()
                try:
                    session.execute(sa.delete(HallPresence).where(HallPresence.token == subscriber.token))
                    session.commit()
                finally:
                    session.close()
        except sa.exc.SQLAlchemyError:  # the connection is gone all the same: the next refresh tries again
            pass
        if feed is not None:
            feed.presence_due = True  # after the deletion, so the read it asks for no longer counts this one
        if feed is not None and poller is not None:
            feed.wake.set()
            # Until it stops, or until a new viewer arrived and it carries on for that one.
            while poller is not threading.current_thread() and poller.is_alive() and not feed.subscribers:
                poller.join(timeout=0.05)

    def local_viewers(self, section_id: int) -> int:
        """The connections this worker holds to the section's hall (the hall's presence is `read_presence`)."""
        feed = self.feeds.get(section_id)
        return len(feed.subscribers) if feed else 0

    def _broadcast(self, feed: SectionFeed, seq: int | None, message: bytes) -> None:
        for subscriber in list(feed.subscribers):
            subscriber.messages.put((seq, message))

    def _announce(self, feed: SectionFeed, presence: Presence) -> None:
        """Push a changed presence; kept on the feed (under the lock) so a viewer subscribing meanwhile
        gets either this message from `subscribe` or from here, never neither."""
        message = presence.message()
        with self.lock:
            feed.presence = presence
            subscribers = list(feed.subscribers)
        for subscriber in subscribers:
            subscriber.messages.put((None, message))

    def _refresh(self, session: Session, feed: SectionFeed) -> None:
        """Mark this worker's connections to the section as alive, in one statement for all of them, and
        drop rows nobody refreshed (a killed worker's). Rows of live connections that went missing (this
        worker stalled past the expiry and another purged them) are put back."""
        stamp = now_ms()
        with self.lock:
            local = list(feed.subscribers)
            gone = set(self.gone)
        if gone:
            session.execute(sa.delete(HallPresence).where(HallPresence.token.in_(gone)))
        mine = sa.and_(HallPresence.worker == self.worker, HallPresence.section_id == feed.section_id)
        updated = session.execute(sa.update(HallPresence).where(mine).values(seen_ms=stamp))
        if updated.rowcount < len(local):  # type: ignore[attr-defined]
            stored = set(session.scalars(sa.select(HallPresence.token).where(mine)))
            with self.lock:  # not one that has left meanwhile (it is in `gone` from then on)
                still_here = {s.token for s in feed.subscribers} - self.gone
            session.add_all(HallPresence(token=s.token, section_id=s.section_id, organisation_id=s.organisation_id,
                                         is_bidder=s.is_bidder, worker=self.worker, seen_ms=stamp)
                            for s in local if s.token not in stored and s.token in still_here)
        session.commit()
        # Apart from the refresh: two workers purging never hold each other's fresh rows while they wait.
        session.execute(sa.delete(HallPresence).where(HallPresence.seen_ms < stamp - self.expiry_ms))
        session.commit()
        with self.lock:
            self.gone -= gone

    def _poll(self, feed: SectionFeed) -> None:
        """Read the section's new events and fan them out, until nobody watches. Per tick one query for
        the events; once a second (or after a local arrival or departure) one for the presence; once a
        refresh interval one transaction for this worker's presence rows. None per viewer."""
        while True:
            with self.lock:
                if not feed.subscribers:
                    feed.thread = None
                    del self.feeds[feed.section_id]
                    return
            presence: Presence | None = None
            clock = time.monotonic()
            try:
                with self.app.app_context():
                    session = db.new_session()
                    try:
                        fresh = events_after(session, feed.section_id, feed.last_seq)
                        if clock - feed.refreshed_at >= self.refresh:
                            self._refresh(session, feed)
                            feed.refreshed_at = clock
                        if feed.presence_due or clock - feed.presence_read_at >= PRESENCE_READ_SECONDS:
                            feed.presence_due = False  # a viewer arriving during the read is read next tick
                            feed.presence_read_at = clock
                            presence = read_presence(session, feed.section_id, now_ms() - self.expiry_ms)
                    finally:
                        session.close()
            except Exception:  # a database hiccup must not end the hall: try again at the next tick
                fresh = []
                feed.presence_due = True
            for event in fresh:
                self._broadcast(feed, event.seq, sse_message(event))
                feed.last_seq = event.seq
            if presence is not None and presence != feed.presence:
                self._announce(feed, presence)
            feed.wake.wait(self.interval)
            feed.wake.clear()


def close_streams(app: Flask) -> None:
    """End the app's open hall streams (if it has any): for the web worker's graceful stop."""
    found = app.extensions.get("jianzheng_hall")
    if isinstance(found, HallHub):
        found.close()


def hub(app: Flask) -> HallHub:
    found = app.extensions.get("jianzheng_hall")
    if found is None:
        found = app.extensions["jianzheng_hall"] = HallHub(app)
    assert isinstance(found, HallHub)
    return found
