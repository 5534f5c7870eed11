"""initial schema

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("remote_addr", sa.String(length=64), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempt")),
    )
    with op.batch_alter_table("login_attempt", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_login_attempt_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_login_attempt_remote_addr"), ["remote_addr"], unique=False)
        batch_op.create_index(batch_op.f("ix_login_attempt_username"), ["username"], unique=False)

    op.create_table(
        "organisation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("identifier", sa.String(length=64), nullable=False),
        sa.Column("roles", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=True),
        sa.Column("encrypted_key", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisation")),
        sa.UniqueConstraint("address", name=op.f("uq_organisation_address")),
        sa.UniqueConstraint("identifier", name=op.f("uq_organisation_identifier")),
    )
    op.create_table(
        "outbox_lease",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("holder", sa.String(length=120), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_outbox_lease")),
    )
    op.create_table(
        "outbox_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=True),
        sa.Column("raw_tx", sa.Text(), nullable=True),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("error_code", sa.String(length=80), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisation.id"], name=op.f("fk_outbox_entry_organisation_id_organisation")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_entry")),
        sa.UniqueConstraint("key", name=op.f("uq_outbox_entry_key")),
    )
    with op.batch_alter_table("outbox_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_entry_organisation_id"), ["organisation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_entry_status"), ["status"], unique=False)

    op.create_table(
        "tender",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("chain_id", sa.String(length=66), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("tenderer_id", sa.Integer(), nullable=False),
        sa.Column("details_hash", sa.String(length=66), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("submission_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("chain_tx", sa.String(length=66), nullable=True),
        sa.Column("chain_block", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["agency_id"], ["organisation.id"], name=op.f("fk_tender_agency_id_organisation")),
        sa.ForeignKeyConstraint(["tenderer_id"], ["organisation.id"], name=op.f("fk_tender_tenderer_id_organisation")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tender")),
        sa.UniqueConstraint("agency_id", "submission_key", name=op.f("uq_tender_agency_id_submission_key")),
        sa.UniqueConstraint("chain_id", name=op.f("uq_tender_chain_id")),
        sa.UniqueConstraint("number", name=op.f("uq_tender_number")),
    )
    with op.batch_alter_table("tender", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tender_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tender_tenderer_id"), ["tenderer_id"], unique=False)

    op.create_table(
        "user_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("api_token_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisation.id"], name=op.f("fk_user_account_organisation_id_organisation")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_account")),
        sa.UniqueConstraint("api_token_hash", name=op.f("uq_user_account_api_token_hash")),
        sa.UniqueConstraint("username", name=op.f("uq_user_account_username")),
    )
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_account_organisation_id"), ["organisation_id"], unique=False)

    op.create_table(
        "amendment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tender_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("details_hash", sa.String(length=66), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["tender_id"], ["tender.id"], name=op.f("fk_amendment_tender_id_tender")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_amendment")),
        sa.UniqueConstraint("tender_id", "version", name=op.f("uq_amendment_tender_id_version")),
    )
    with op.batch_alter_table("amendment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_amendment_tender_id"), ["tender_id"], unique=False)

    op.create_table(
        "attachment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tender_id", sa.Integer(), nullable=False),
        sa.Column("original_name", sa.String(length=255), nullable=False),
        sa.Column("stored_name", sa.String(length=80), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("tender_version", sa.Integer(), nullable=False),
        sa.Column("uploaded_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["tender_id"], ["tender.id"], name=op.f("fk_attachment_tender_id_tender")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachment")),
        sa.UniqueConstraint("stored_name", name=op.f("uq_attachment_stored_name")),
    )
    with op.batch_alter_table("attachment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attachment_tender_id"), ["tender_id"], unique=False)

    op.create_table(
        "section",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tender_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("chain_id", sa.String(length=66), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("opening_time", sa.BigInteger(), nullable=False),
        sa.Column("bid_bond", sa.BigInteger(), nullable=False),
        sa.Column("bid_validity_period", sa.BigInteger(), nullable=False),
        sa.Column("min_valid_bids", sa.Integer(), nullable=False),
        sa.Column("witness_quorum", sa.Integer(), nullable=False),
        sa.Column("opening_key", sa.String(length=200), nullable=False),
        sa.Column("chain_tx", sa.String(length=66), nullable=True),
        sa.Column("chain_block", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["tender_id"], ["tender.id"], name=op.f("fk_section_tender_id_tender")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_section")),
        sa.UniqueConstraint("chain_id", name=op.f("uq_section_chain_id")),
    )
    with op.batch_alter_table("section", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_section_tender_id"), ["tender_id"], unique=False)

    op.create_table(
        "bid",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("section_id", sa.Integer(), nullable=False),
        sa.Column("bidder_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("cover_kind", sa.String(length=20), nullable=False),
        sa.Column("cover_ref", sa.String(length=100), nullable=False),
        sa.Column("guarantee_salt", sa.String(length=66), nullable=True),
        sa.Column("commitment", sa.String(length=66), nullable=False),
        sa.Column("confirmed_version", sa.Integer(), nullable=False),
        sa.Column("chain_tx", sa.String(length=66), nullable=True),
        sa.Column("chain_block", sa.BigInteger(), nullable=True),
        sa.Column("error_code", sa.String(length=80), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["bidder_id"], ["organisation.id"], name=op.f("fk_bid_bidder_id_organisation")),
        sa.ForeignKeyConstraint(["section_id"], ["section.id"], name=op.f("fk_bid_section_id_section")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bid")),
        sa.UniqueConstraint("section_id", "bidder_id", name=op.f("uq_bid_section_id_bidder_id")),
    )
    with op.batch_alter_table("bid", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bid_bidder_id"), ["bidder_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_bid_section_id"), ["section_id"], unique=False)

    op.create_table(
        "registration",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("section_id", sa.Integer(), nullable=False),
        sa.Column("bidder_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bidder_id"], ["organisation.id"], name=op.f("fk_registration_bidder_id_organisation")
        ),
        sa.ForeignKeyConstraint(["section_id"], ["section.id"], name=op.f("fk_registration_section_id_section")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registration")),
        sa.UniqueConstraint("section_id", "bidder_id", name=op.f("uq_registration_section_id_bidder_id")),
    )
    with op.batch_alter_table("registration", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_registration_bidder_id"), ["bidder_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_registration_section_id"), ["section_id"], unique=False)

    op.create_table(
        "section_witness",
        sa.Column("section_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisation.id"], name=op.f("fk_section_witness_organisation_id_organisation")
        ),
        sa.ForeignKeyConstraint(["section_id"], ["section.id"], name=op.f("fk_section_witness_section_id_section")),
        sa.PrimaryKeyConstraint("section_id", "organisation_id", name=op.f("pk_section_witness")),
    )
    op.create_table(
        "bid_upload",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bid_id", sa.Integer(), nullable=False),
        sa.Column("bidder_id", sa.Integer(), nullable=False),
        sa.Column("submission_key", sa.String(length=64), nullable=False),
        sa.Column("commitment", sa.String(length=66), nullable=False),
        sa.Column("stored_name", sa.String(length=120), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("remote_addr", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=False),
        sa.Column("uploaded_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["bid_id"], ["bid.id"], name=op.f("fk_bid_upload_bid_id_bid")),
        sa.ForeignKeyConstraint(["bidder_id"], ["organisation.id"], name=op.f("fk_bid_upload_bidder_id_organisation")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bid_upload")),
        sa.UniqueConstraint("bidder_id", "submission_key", name=op.f("uq_bid_upload_bidder_id_submission_key")),
        sa.UniqueConstraint("stored_name", name=op.f("uq_bid_upload_stored_name")),
    )
    with op.batch_alter_table("bid_upload", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bid_upload_bid_id"), ["bid_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bid_upload", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bid_upload_bid_id"))

    op.drop_table("bid_upload")
    op.drop_table("section_witness")
    with op.batch_alter_table("registration", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registration_section_id"))
        batch_op.drop_index(batch_op.f("ix_registration_bidder_id"))

    op.drop_table("registration")
    with op.batch_alter_table("bid", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bid_section_id"))
        batch_op.drop_index(batch_op.f("ix_bid_bidder_id"))

    op.drop_table("bid")
    with op.batch_alter_table("section", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_section_tender_id"))

    op.drop_table("section")
    with op.batch_alter_table("attachment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attachment_tender_id"))

    op.drop_table("attachment")
    with op.batch_alter_table("amendment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_amendment_tender_id"))

    op.drop_table("amendment")
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_account_organisation_id"))

    op.drop_table("user_account")
    with op.batch_alter_table("tender", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tender_tenderer_id"))
        batch_op.drop_index(batch_op.f("ix_tender_agency_id"))

    op.drop_table("tender")
    with op.batch_alter_table("outbox_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_entry_status"))
        batch_op.drop_index(batch_op.f("ix_outbox_entry_organisation_id"))

    op.drop_table("outbox_entry")
    op.drop_table("outbox_lease")
    op.drop_table("organisation")
    with op.batch_alter_table("login_attempt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_attempt_username"))
        batch_op.drop_index(batch_op.f("ix_login_attempt_remote_addr"))
        batch_op.drop_index(batch_op.f("ix_login_attempt_at"))

    op.drop_table("login_attempt")
