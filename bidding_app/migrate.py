"""Apply the Alembic migrations under bidding_app/migrations to a database (at app start and from the CLI)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(engine: sa.Engine, response_window: int | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    if response_window is not None:
        config.attributes["hall_response_window"] = response_window
    return config


def upgrade(engine: sa.Engine, revision: str = "head", *, response_window: int | None = None) -> None:
    """Bring the schema to `revision`; a no-op when it is there already.

    `response_window` is the app's `HALL_RESPONSE_WINDOW`: the window a migration gives the sections
    published before it could be chosen per section (else the default setting)."""
    command.upgrade(alembic_config(engine, response_window), revision)


def revision(engine: sa.Engine, message: str) -> None:
    """Write a new migration from the difference between the models and the database (developers only)."""
    command.revision(alembic_config(engine), message=message, autogenerate=True)
