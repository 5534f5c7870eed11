"""the opening hall's presence in the database (one row per open event stream), for several web workers

Revision ID: 0011_hall_presence
Revises: 0010_window_confirmations
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_hall_presence"
down_revision = "0010_window_confirmations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hall_presence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("section_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("is_bidder", sa.Boolean(), nullable=False),
        sa.Column("worker", sa.String(length=80), nullable=False),
        sa.Column("seen_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"],
                                name=op.f("fk_hall_presence_organisation_id_organisation")),
        sa.ForeignKeyConstraint(["section_id"], ["section.id"], name=op.f("fk_hall_presence_section_id_section")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hall_presence")),
        sa.UniqueConstraint("token", name=op.f("uq_hall_presence_token")),
    )
    with op.batch_alter_table("hall_presence", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hall_presence_section_id"), ["section_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_hall_presence_seen_ms"), ["seen_ms"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("hall_presence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hall_presence_seen_ms"))
        batch_op.drop_index(batch_op.f("ix_hall_presence_section_id"))
    op.drop_table("hall_presence")
