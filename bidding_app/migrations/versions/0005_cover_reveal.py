"""bid cover blinded on chain until the opening (密文保函): salt, commitment and reveal state

Revision ID: 0005_cover_reveal
Revises: 0004_oversight
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_cover_reveal"
down_revision = "0004_oversight"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bid", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cover_salt", sa.String(length=66), nullable=True))
        batch_op.add_column(sa.Column("cover_commitment", sa.String(length=66), nullable=True))
        batch_op.add_column(sa.Column("cover_reveal_tx", sa.String(length=66), nullable=True))
        batch_op.add_column(sa.Column("cover_reveal_error", sa.String(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bid", schema=None) as batch_op:
        batch_op.drop_column("cover_reveal_error")
        batch_op.drop_column("cover_reveal_tx")
        batch_op.drop_column("cover_commitment")
        batch_op.drop_column("cover_salt")
