"""Live fan-out of the opening hall's events to its viewers (server-sent events).

One web worker (gunicorn + gevent) serves every viewer of a hall. Per watched section there is ONE
poller (a thread; a greenlet under gevent) that reads the section's new `hall_event` rows every
`HALL_POLL_INTERVAL` and puts each message, serialised once, on every subscriber's queue; a
connection costs a queue and a greenlet, never a database query of its own. The poller stops when the
last viewer leaves. Presence (which bidders are in the hall) is what the open connections say; it is
pushed as an event without an id, so it does not move a viewer's Last-Event-ID. When the worker stops
(gunicorn's graceful SIGTERM), `close_streams` ends every stream: they never end by themselves, and the
viewers' EventSource reconnects with its Last-Event-ID to the worker that serves next.
"""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass, field

from flask import Flask

from bidding_app.db import db
from bidding_app.hall_events import events_after, sse_message

HEARTBEAT_SECONDS = 15.0
# Put on a subscriber's queue to end its stream (compared by identity; presence messages are (None, text)).
END_OF_STREAM: tuple[int | None, bytes] = (None, b"")


@dataclass(eq=False)
class Subscriber:
    section_id: int
    organisation_id: int
    organisation_name: str
    is_bidder: bool
    messages: queue.Queue[tuple[int | None, bytes]] = field(default_factory=queue.Queue)


@dataclass(eq=False)
class SectionFeed:
    section_id: int
    last_seq: int
    subscribers: set[Subscriber] = field(default_factory=set)
    thread: threading.Thread | None = None
    wake: threading.Event = field(default_factory=threading.Event)


class HallHub:
    """The web worker's registry of watched halls: subscribe, unsubscribe, one poller per section."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.interval = float(app.config["HALL_POLL_INTERVAL"])
        self.feeds: dict[int, SectionFeed] = {}
        self.lock = threading.Lock()
        self.closing = False

    def subscribe(self, section_id: int, organisation_id: int, name: str, is_bidder: bool,
                  last_seq: int) -> Subscriber:
        subscriber = Subscriber(section_id, organisation_id, name, is_bidder)
        with self.lock:
            feed = self.feeds.get(section_id)
            if feed is None:
                feed = self.feeds[section_id] = SectionFeed(section_id, last_seq)
            feed.subscribers.add(subscriber)
            if feed.thread is None:
                feed.thread = threading.Thread(target=self._poll, args=(feed,), daemon=True,
                                               name=f"hall-{section_id}")
                feed.thread.start()
            if self.closing:  # a request that came in just before the worker stopped listening
                subscriber.messages.put(END_OF_STREAM)
        self._announce_presence(section_id)
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
            if feed is None:
                return
            feed.subscribers.discard(subscriber)
            poller = feed.thread if not feed.subscribers else None
        if poller is not None:
            feed.wake.set()
            # Until it stops, or until a new viewer arrived and it carries on for that one.
            while poller is not threading.current_thread() and poller.is_alive() and not feed.subscribers:
                poller.join(timeout=0.05)
            return
        self._announce_presence(subscriber.section_id)

    def viewers(self, section_id: int) -> int:
        feed = self.feeds.get(section_id)
        return len(feed.subscribers) if feed else 0

    def bidders_present(self, section_id: int) -> list[str]:
        feed = self.feeds.get(section_id)
        if feed is None:
            return []
        return sorted({s.organisation_name for s in list(feed.subscribers) if s.is_bidder})

    def _announce_presence(self, section_id: int) -> None:
        body = json.dumps({"kind": "presence", "data": {"bidders": self.bidders_present(section_id),
                                                        "viewers": self.viewers(section_id)}}, ensure_ascii=False)
        self._broadcast(section_id, None, f"event: presence\ndata: {body}\n\n".encode())

    def _broadcast(self, section_id: int, seq: int | None, message: bytes) -> None:
        feed = self.feeds.get(section_id)
        if feed is None:
            return
        for subscriber in list(feed.subscribers):
            subscriber.messages.put((seq, message))

    def _poll(self, feed: SectionFeed) -> None:
        """Read the section's new events and fan them out, until nobody watches."""
        while True:
            with self.lock:
                if not feed.subscribers:
                    feed.thread = None
                    del self.feeds[feed.section_id]
                    return
            try:
                with self.app.app_context():
                    session = db.new_session()
                    try:
                        fresh = events_after(session, feed.section_id, feed.last_seq)
                    finally:
                        session.close()
            except Exception:  # a database hiccup must not end the hall: try again at the next tick
                fresh = []
            for event in fresh:
                self._broadcast(feed.section_id, event.seq, sse_message(event))
                feed.last_seq = event.seq
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
