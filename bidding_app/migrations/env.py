"""Alembic environment: the engine comes from `bidding_app.migrate` (never from an ini file)."""

from __future__ import annotations

from alembic import context

from bidding_app import models  # noqa: F401  (registers the tables on Base.metadata)
from bidding_app.db import Base

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
