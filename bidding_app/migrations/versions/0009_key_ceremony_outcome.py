"""the key ceremony's outcome (qualified and disqualified dealers), kept when the ceremony finishes

Revision ID: 0009_key_ceremony_outcome
Revises: 0008_amendments
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_key_ceremony_outcome"
down_revision = "0008_amendments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("section", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_ceremony_outcome", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("section", schema=None) as batch_op:
        batch_op.drop_column("key_ceremony_outcome")
