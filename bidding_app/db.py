"""The database extension: one engine and one session per request (or per sender loop), bound by `init_app`.

SQLite is the embedded default; PostgreSQL works through a `postgresql+psycopg://` URL. SQLite gets
WAL and a busy timeout so the outbox sender thread and the request handlers can write side by side.
"""

from __future__ import annotations

from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy import event
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def normalise_url(url: str) -> str:
    """Accept the usual `postgres://` and `postgresql://` spellings and use psycopg 3 for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL keeps the database consistent and every committed transaction survives a crash
    # of the application; only an OS crash or power loss may drop the last commits. FULL would add an
    # fsync to every commit (most of the cost of a bid upload). Deployments that need more use PostgreSQL.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> sa.Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        # A gevent worker serves many requests at once: keep enough connections open that a burst does
        # not open (and set up) fresh ones and close them again.
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 10},
                                  pool_size=20, max_overflow=40)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


T = TypeVar("T")


def get_or_not_found(session: Session, model: type[T], key: int, message: str) -> T:
    """The row of `model` with primary key `key`, or NotFound with the message a person reads."""
    from bidding_app.errors import NotFound

    row = session.get(model, key)
    if row is None:
        raise NotFound(message)
    return row


class Database:
    """Engine and scoped session of one app; `db.session` is the current request's session."""

    def __init__(self, app: Flask | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        engine = make_engine(app.config["DATABASE_URL"])
        factory = sessionmaker(bind=engine, expire_on_commit=False)
        app.extensions["jianzheng_db"] = _Bound(engine, factory, scoped_session(factory))

        @app.teardown_appcontext
        def _remove_session(_exc: BaseException | None) -> None:
            app.extensions["jianzheng_db"].scoped.remove()

    @staticmethod
    def _bound() -> _Bound:
        bound: _Bound = current_app.extensions["jianzheng_db"]
        return bound

    @property
    def session(self) -> Session:
        return self._bound().scoped()

    @property
    def engine(self) -> sa.Engine:
        return self._bound().engine

    def new_session(self) -> Session:
        """A session of its own, for work outside a request (the outbox sender)."""
        return self._bound().factory()


class _Bound:
    def __init__(self, engine: sa.Engine, factory: sessionmaker[Session], scoped: scoped_session[Session]) -> None:
        self.engine = engine
        self.factory = factory
        self.scoped = scoped


db = Database()
