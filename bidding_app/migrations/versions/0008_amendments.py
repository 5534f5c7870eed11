"""tender amendments and bid re-confirmations anchored on chain

Revision ID: 0008_amendments
Revises: 0007_key_ceremony
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_amendments"
down_revision = "0007_key_ceremony"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("amendment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain_tx", sa.String(length=66), nullable=True))
        batch_op.add_column(sa.Column("chain_block", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("chain_error", sa.String(length=100), nullable=True))
    op.create_table(
        "bid_confirmation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bid_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("previous_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("chain_tx", sa.String(length=66), nullable=True),
        sa.Column("chain_block", sa.BigInteger(), nullable=True),
        sa.Column("error_code", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(["bid_id"], ["bid.id"], name=op.f("fk_bid_confirmation_bid_id_bid")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bid_confirmation")),
        sa.UniqueConstraint("bid_id", "version", name=op.f("uq_bid_confirmation_bid_id_version")),
    )
    with op.batch_alter_table("bid_confirmation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bid_confirmation_bid_id"), ["bid_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bid_confirmation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bid_confirmation_bid_id"))
    op.drop_table("bid_confirmation")
    with op.batch_alter_table("amendment", schema=None) as batch_op:
        batch_op.drop_column("chain_error")
        batch_op.drop_column("chain_block")
        batch_op.drop_column("chain_tx")
