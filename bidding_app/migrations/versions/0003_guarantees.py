"""electronic bid guarantees: applications, underwriting, premiums, letters, endings, claims, API nonces

Revision ID: 0003_guarantees
Revises: 0002_opening_hall
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_guarantees"
down_revision = "0002_opening_hall"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "guarantor_api_nonces",
        sa.Column("account", sa.String(length=42), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("account", "nonce", name=op.f("pk_guarantor_api_nonces")),
    )
    with op.batch_alter_table("guarantor_api_nonces", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_guarantor_api_nonces_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "guarantee_application",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("guarantee_id", sa.String(length=66), nullable=False),
        sa.Column("bidder_id", sa.Integer(), nullable=False),
        sa.Column("section_id", sa.Integer(), nullable=False),
        sa.Column("guarantor_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("valid_until", sa.BigInteger(), nullable=False),
        sa.Column("salt", sa.String(length=66), nullable=False),
        sa.Column("section_ref", sa.String(length=66), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("error_code", sa.String(length=80), nullable=True),
        sa.Column("submission_key", sa.String(length=64), nullable=False),
        sa.Column("applied_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bidder_id"], ["organisation.id"], name=op.f("fk_guarantee_application_bidder_id_organisation")
        ),
        sa.ForeignKeyConstraint(
            ["guarantor_id"], ["organisation.id"], name=op.f("fk_guarantee_application_guarantor_id_organisation")
        ),
        sa.ForeignKeyConstraint(
            ["section_id"], ["section.id"], name=op.f("fk_guarantee_application_section_id_section")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guarantee_application")),
        sa.UniqueConstraint(
            "bidder_id", "submission_key", name=op.f("uq_guarantee_application_bidder_id_submission_key")
        ),
        sa.UniqueConstraint("guarantee_id", name=op.f("uq_guarantee_application_guarantee_id")),
        sa.UniqueConstraint("number", name=op.f("uq_guarantee_application_number")),
    )
    with op.batch_alter_table("guarantee_application", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_guarantee_application_bidder_id"), ["bidder_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_guarantee_application_guarantor_id"), ["guarantor_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_guarantee_application_section_id"), ["section_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_guarantee_application_state"), ["state"], unique=False)

    op.create_table(
        "guarantee_claim",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("ground", sa.Integer(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("evidence_hash", sa.String(length=66), nullable=False),
        sa.Column("claimed_by", sa.String(length=100), nullable=False),
        sa.Column("claimed_at", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("block", sa.BigInteger(), nullable=True),
        sa.Column("payout", sa.BigInteger(), nullable=True),
        sa.Column("payout_ref", sa.String(length=64), nullable=True),
        sa.Column("payout_tx", sa.String(length=66), nullable=True),
        sa.Column("payout_block", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["guarantee_application.id"],
            name=op.f("fk_guarantee_claim_application_id_guarantee_application"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guarantee_claim")),
        sa.UniqueConstraint("application_id", name=op.f("uq_guarantee_claim_application_id")),
    )
    op.create_table(
        "guarantee_ending",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("block", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["guarantee_application.id"],
            name=op.f("fk_guarantee_ending_application_id_guarantee_application"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guarantee_ending")),
    )
    with op.batch_alter_table("guarantee_ending", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_guarantee_ending_application_id"), ["application_id"], unique=False)

    op.create_table(
        "guarantee_letter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("stored_name", sa.String(length=80), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("letter_hash", sa.String(length=66), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("issued_at", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("block", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["guarantee_application.id"],
            name=op.f("fk_guarantee_letter_application_id_guarantee_application"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guarantee_letter")),
        sa.UniqueConstraint("application_id", name=op.f("uq_guarantee_letter_application_id")),
        sa.UniqueConstraint("stored_name", name=op.f("uq_guarantee_letter_stored_name")),
    )
    op.create_table(
        "guarantee_premium",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("payer_account", sa.String(length=64), nullable=False),
        sa.Column("payment_ref", sa.String(length=64), nullable=False),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        sa.Column("paid_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["guarantee_application.id"],
            name=op.f("fk_guarantee_premium_application_id_guarantee_application"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guarantee_premium")),
        sa.UniqueConstraint("application_id", name=op.f("uq_guarantee_premium_application_id")),
    )
    with op.batch_alter_table("guarantee_premium", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_guarantee_premium_payer_account"), ["payer_account"], unique=False)

    op.create_table(
        "guarantee_underwriting",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("rule_results", sa.Text(), nullable=False),
        sa.Column("approved", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=False),
        sa.Column("decided_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["guarantee_application.id"],
            name=op.f("fk_guarantee_underwriting_application_id_guarantee_application"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guarantee_underwriting")),
        sa.UniqueConstraint("application_id", name=op.f("uq_guarantee_underwriting_application_id")),
    )


def downgrade() -> None:
    op.drop_table("guarantee_underwriting")
    with op.batch_alter_table("guarantee_premium", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guarantee_premium_payer_account"))

    op.drop_table("guarantee_premium")
    op.drop_table("guarantee_letter")
    with op.batch_alter_table("guarantee_ending", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guarantee_ending_application_id"))

    op.drop_table("guarantee_ending")
    op.drop_table("guarantee_claim")
    with op.batch_alter_table("guarantee_application", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guarantee_application_state"))
        batch_op.drop_index(batch_op.f("ix_guarantee_application_section_id"))
        batch_op.drop_index(batch_op.f("ix_guarantee_application_guarantor_id"))
        batch_op.drop_index(batch_op.f("ix_guarantee_application_bidder_id"))

    op.drop_table("guarantee_application")
    with op.batch_alter_table("guarantor_api_nonces", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guarantor_api_nonces_expires_at"))

    op.drop_table("guarantor_api_nonces")
