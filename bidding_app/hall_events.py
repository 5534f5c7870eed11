"""The opening hall's event log: numbered rows per section that the live page streams (SSE).

Kept apart from the hall's rules so that the outbox's effects (`hall_chain`) can write events without
importing the outbox back.
"""

from __future__ import annotations

import json
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bidding_app.models import HallEvent, Section


def emit(session: Session, section_id: int, kind: str, data: dict[str, Any]) -> HallEvent:
    """Append an event to the section's hall in the caller's transaction (numbered after the last one).

    The section row is locked first (PostgreSQL; SQLite has one writer anyway) so that two writers
    cannot number two events alike, and a viewer never sees a later number before an earlier one.
    """
    session.execute(sa.select(Section.id).where(Section.id == section_id).with_for_update())
    last = session.scalar(sa.select(sa.func.max(HallEvent.seq)).where(HallEvent.section_id == section_id))
    event = HallEvent(section_id=section_id, seq=(last or 0) + 1, kind=kind,
                      data=json.dumps(data, ensure_ascii=False, sort_keys=True),
                      created_ms=int(time.time() * 1000))
    session.add(event)
    session.flush()
    return event


def events_after(session: Session, section_id: int, after: int, limit: int = 1000) -> list[HallEvent]:
    return list(session.scalars(
        sa.select(HallEvent).where(HallEvent.section_id == section_id, HallEvent.seq > after)
        .order_by(HallEvent.seq).limit(limit)
    ))


def sse_message(event: HallEvent) -> bytes:
    """The event as one server-sent-events message; `id` is its number, for Last-Event-ID."""
    body = json.dumps({"seq": event.seq, "kind": event.kind, "created_ms": event.created_ms,
                       "data": json.loads(event.data)}, ensure_ascii=False)
    return f"id: {event.seq}\nevent: {event.kind}\ndata: {body}\n\n".encode()
