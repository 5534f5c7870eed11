"""the opening hall: hall events, share batches, opened bids (唱标), responses, attestations

Revision ID: 0002_opening_hall
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002_opening_hall'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A DKG opening key is up to 512 bytes (opening/README.md): 0x + 1024 hex digits, not 200 characters.
    with op.batch_alter_table('section', schema=None) as batch_op:
        batch_op.alter_column('opening_key', existing_type=sa.String(length=200), type_=sa.String(length=1026),
                              existing_nullable=False)
    op.create_table('hall_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('section_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['section_id'], ['section.id'], name=op.f('fk_hall_event_section_id_section')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hall_event')),
    sa.UniqueConstraint('section_id', 'seq', name=op.f('uq_hall_event_section_id_seq'))
    )
    with op.batch_alter_table('hall_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hall_event_section_id'), ['section_id'], unique=False)

    op.create_table('opening_attestation',
    sa.Column('section_id', sa.Integer(), nullable=False),
    sa.Column('witness_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('chain_tx', sa.String(length=66), nullable=True),
    sa.Column('chain_block', sa.BigInteger(), nullable=True),
    sa.Column('requested_at', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['section_id'], ['section.id'], name=op.f('fk_opening_attestation_section_id_section')),
    sa.ForeignKeyConstraint(['witness_id'], ['organisation.id'],
        name=op.f('fk_opening_attestation_witness_id_organisation')),
    sa.PrimaryKeyConstraint('section_id', 'witness_id', name=op.f('pk_opening_attestation'))
    )
    op.create_table('opening_response',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('section_id', sa.Integer(), nullable=False),
    sa.Column('bidder_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('text_hash', sa.String(length=66), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('chain_tx', sa.String(length=66), nullable=True),
    sa.Column('chain_block', sa.BigInteger(), nullable=True),
    sa.Column('objection_number', sa.Integer(), nullable=True),
    sa.Column('answer', sa.Text(), nullable=True),
    sa.Column('answer_hash', sa.String(length=66), nullable=True),
    sa.Column('answer_status', sa.String(length=20), nullable=True),
    sa.Column('answer_tx', sa.String(length=66), nullable=True),
    sa.Column('answer_block', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['bidder_id'], ['organisation.id'],
        name=op.f('fk_opening_response_bidder_id_organisation')),
    sa.ForeignKeyConstraint(['section_id'], ['section.id'], name=op.f('fk_opening_response_section_id_section')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_opening_response')),
    sa.UniqueConstraint('section_id', 'bidder_id', name=op.f('uq_opening_response_section_id_bidder_id'))
    )
    with op.batch_alter_table('opening_response', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_opening_response_section_id'), ['section_id'], unique=False)

    op.create_table('section_opening',
    sa.Column('section_id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=20), nullable=False),
    sa.Column('started_at', sa.BigInteger(), nullable=False),
    sa.Column('opened_at', sa.BigInteger(), nullable=True),
    sa.Column('record', sa.Text(), nullable=True),
    sa.Column('record_hash', sa.String(length=66), nullable=True),
    sa.Column('result', sa.String(length=20), nullable=True),
    sa.Column('close_tx', sa.String(length=66), nullable=True),
    sa.Column('close_block', sa.BigInteger(), nullable=True),
    sa.Column('response_window', sa.Integer(), nullable=False),
    sa.Column('window_ends_at', sa.BigInteger(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['section_id'], ['section.id'], name=op.f('fk_section_opening_section_id_section')),
    sa.PrimaryKeyConstraint('section_id', name=op.f('pk_section_opening'))
    )
    op.create_table('share_batch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('section_id', sa.Integer(), nullable=False),
    sa.Column('witness_id', sa.Integer(), nullable=False),
    sa.Column('witness_index', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=66), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('share_count', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('chain_tx', sa.String(length=66), nullable=True),
    sa.Column('chain_block', sa.BigInteger(), nullable=True),
    sa.Column('error_code', sa.String(length=80), nullable=True),
    sa.Column('uploaded_at', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['section_id'], ['section.id'], name=op.f('fk_share_batch_section_id_section')),
    sa.ForeignKeyConstraint(['witness_id'], ['organisation.id'], name=op.f('fk_share_batch_witness_id_organisation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_share_batch')),
    sa.UniqueConstraint('section_id', 'witness_id', name=op.f('uq_share_batch_section_id_witness_id'))
    )
    with op.batch_alter_table('share_batch', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_share_batch_section_id'), ['section_id'], unique=False)

    op.create_table('opened_bid',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('section_id', sa.Integer(), nullable=False),
    sa.Column('bid_id', sa.Integer(), nullable=True),
    sa.Column('bidder_id', sa.Integer(), nullable=True),
    sa.Column('bidder_address', sa.String(length=42), nullable=False),
    sa.Column('commitment', sa.String(length=66), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('cause', sa.String(length=40), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('announced', sa.Text(), nullable=True),
    sa.Column('document_sha256', sa.String(length=64), nullable=True),
    sa.Column('document', sa.Text(), nullable=True),
    sa.Column('anchored_hash', sa.String(length=66), nullable=False),
    sa.ForeignKeyConstraint(['bid_id'], ['bid.id'], name=op.f('fk_opened_bid_bid_id_bid')),
    sa.ForeignKeyConstraint(['bidder_id'], ['organisation.id'], name=op.f('fk_opened_bid_bidder_id_organisation')),
    sa.ForeignKeyConstraint(['section_id'], ['section.id'], name=op.f('fk_opened_bid_section_id_section')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_opened_bid')),
    sa.UniqueConstraint('section_id', 'bidder_address', name=op.f('uq_opened_bid_section_id_bidder_address'))
    )
    with op.batch_alter_table('opened_bid', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_opened_bid_bidder_id'), ['bidder_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_opened_bid_document_sha256'), ['document_sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_opened_bid_section_id'), ['section_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('section', schema=None) as batch_op:
        batch_op.alter_column('opening_key', existing_type=sa.String(length=1026), type_=sa.String(length=200),
                              existing_nullable=False)
    with op.batch_alter_table('opened_bid', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_opened_bid_section_id'))
        batch_op.drop_index(batch_op.f('ix_opened_bid_document_sha256'))
        batch_op.drop_index(batch_op.f('ix_opened_bid_bidder_id'))

    op.drop_table('opened_bid')
    with op.batch_alter_table('share_batch', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_share_batch_section_id'))

    op.drop_table('share_batch')
    op.drop_table('section_opening')
    with op.batch_alter_table('opening_response', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_opening_response_section_id'))

    op.drop_table('opening_response')
    op.drop_table('opening_attestation')
    with op.batch_alter_table('hall_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hall_event_section_id'))

    op.drop_table('hall_event')
