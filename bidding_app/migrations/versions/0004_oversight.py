"""bid upload origins for the regulator's collusion signals

Revision ID: 0004_oversight
Revises: 0003_guarantees
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_oversight"
down_revision = "0003_guarantees"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bid_upload_origin",
        sa.Column("upload_id", sa.Integer(), nullable=False),
        sa.Column("client_ip", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=300), nullable=False),
        sa.Column("recorded_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["upload_id"], ["bid_upload.id"], name=op.f("fk_bid_upload_origin_upload_id_bid_upload")
        ),
        sa.PrimaryKeyConstraint("upload_id", name=op.f("pk_bid_upload_origin")),
    )
    with op.batch_alter_table("bid_upload_origin", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bid_upload_origin_client_ip"), ["client_ip"], unique=False)
        batch_op.create_index(batch_op.f("ix_bid_upload_origin_device_id"), ["device_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bid_upload_origin", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bid_upload_origin_device_id"))
        batch_op.drop_index(batch_op.f("ix_bid_upload_origin_client_ip"))
    op.drop_table("bid_upload_origin")
