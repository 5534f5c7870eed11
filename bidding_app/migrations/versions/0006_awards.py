"""awards and contract signing

Revision ID: 0006_awards
Revises: 0005_cover_reveal
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_awards"
down_revision = "0005_cover_reveal"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "award",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("section_id", sa.Integer(), nullable=False),
        sa.Column("winner_id", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("award_hash", sa.String(length=66), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error_code", sa.String(length=80), nullable=True),
        sa.Column("chain_tx", sa.String(length=66), nullable=True),
        sa.Column("chain_block", sa.BigInteger(), nullable=True),
        sa.Column("contract_status", sa.String(length=20), nullable=False),
        sa.Column("contract_note", sa.Text(), nullable=True),
        sa.Column("contract_hash", sa.String(length=66), nullable=True),
        sa.Column("contract_error_code", sa.String(length=80), nullable=True),
        sa.Column("contract_tx", sa.String(length=66), nullable=True),
        sa.Column("contract_block", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["section_id"], ["section.id"], name=op.f("fk_award_section_id_section")),
        sa.ForeignKeyConstraint(["winner_id"], ["organisation.id"], name=op.f("fk_award_winner_id_organisation")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_award")),
        sa.UniqueConstraint("section_id", name=op.f("uq_award_section_id")),
    )
    with op.batch_alter_table("award", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_award_winner_id"), ["winner_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("award", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_award_winner_id"))
    op.drop_table("award")
