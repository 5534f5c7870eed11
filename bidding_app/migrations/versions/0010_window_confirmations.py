"""per-section response window; the bids' confirmed amendments as the opening found them

Revision ID: 0010_window_confirmations
Revises: 0009_key_ceremony_outcome
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bidding_app.config import defaults

revision = "0010_window_confirmations"
down_revision = "0009_key_ceremony_outcome"
branch_labels = None
depends_on = None


def _configured_window() -> int:
    """Sections published before the agency could choose keep the window the platform gave them: the
    `HALL_RESPONSE_WINDOW` of the app that runs the migration (`bidding_app.migrate.upgrade`)."""
    config = op.get_context().config
    window = config.attributes.get("hall_response_window") if config is not None else None
    return int(window if window is not None else defaults()["HALL_RESPONSE_WINDOW"])


def upgrade() -> None:
    # A server default fills the existing rows: on SQLite a NOT NULL column can be added only with one, and
    # dropping it again would rebuild the section table, which SQLite's foreign keys to it forbid. The
    # models always set the value, so the default is only ever used here.
    with op.batch_alter_table("section", schema=None) as batch_op:
        batch_op.add_column(sa.Column("response_window", sa.Integer(), nullable=False,
                                      server_default=str(_configured_window())))
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("section", "response_window", server_default=None)
    with op.batch_alter_table("opened_bid", schema=None) as batch_op:
        batch_op.add_column(sa.Column("confirmed_amendment", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("tender_amendment", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("opened_bid", schema=None) as batch_op:
        batch_op.drop_column("tender_amendment")
        batch_op.drop_column("confirmed_amendment")
    with op.batch_alter_table("section", schema=None) as batch_op:
        batch_op.drop_column("response_window")
