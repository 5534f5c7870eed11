"""the witnesses' key ceremony relayed by the platform

Revision ID: 0007_key_ceremony
Revises: 0006_awards
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_key_ceremony"
down_revision = "0006_awards"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("section", schema=None) as batch_op:
        batch_op.add_column(sa.Column("opening_key_tx", sa.String(length=66), nullable=True))
        batch_op.add_column(sa.Column("opening_key_block", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("key_ceremony_error", sa.String(length=600), nullable=True))
    op.create_table(
        "key_ceremony_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("section_id", sa.Integer(), nullable=False),
        sa.Column("witness_index", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"],
                                name=op.f("fk_key_ceremony_message_organisation_id_organisation")),
        sa.ForeignKeyConstraint(["section_id"], ["section.id"],
                                name=op.f("fk_key_ceremony_message_section_id_section")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_ceremony_message")),
        sa.UniqueConstraint("section_id", "witness_index", "kind",
                            name=op.f("uq_key_ceremony_message_section_id_witness_index_kind")),
    )
    with op.batch_alter_table("key_ceremony_message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_key_ceremony_message_section_id"), ["section_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("key_ceremony_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_key_ceremony_message_section_id"))
    op.drop_table("key_ceremony_message")
    with op.batch_alter_table("section", schema=None) as batch_op:
        batch_op.drop_column("key_ceremony_error")
        batch_op.drop_column("opening_key_block")
        batch_op.drop_column("opening_key_tx")
