"""The platform's tables. Times are unix seconds (chain time for deadlines), amounts in fen (分).

On-chain ids (tender, section) are 32-byte hashes of the platform numbers, stored as 0x-hex text so
that they read the same in SQL, in the API and on the chain explorer.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bidding_app.db import Base


def now() -> int:
    return int(time.time())


class Organisation(Base):
    """A consortium member (or a platform-only organisation) with its roles and its encrypted chain key."""

    __tablename__ = "organisation"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    identifier: Mapped[str] = mapped_column(sa.String(64), unique=True)  # 统一社会信用代码
    roles: Mapped[int] = mapped_column(sa.Integer)  # contracts.records.Role bit mask
    address: Mapped[str | None] = mapped_column(sa.String(42), unique=True)
    encrypted_key: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    created_at: Mapped[int] = mapped_column(sa.BigInteger, default=now)

    users: Mapped[list[User]] = relationship(back_populates="organisation")


class User(Base):
    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisation.id"), index=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(100))
    password_hash: Mapped[str] = mapped_column(sa.String(256))
    api_token_hash: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[int] = mapped_column(sa.BigInteger, default=now)

    organisation: Mapped[Organisation] = relationship(back_populates="users", lazy="joined")


class LoginAttempt(Base):
    """Every failed login, kept in the database so the rate limit holds across workers and restarts."""

    __tablename__ = "login_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), index=True)
    remote_addr: Mapped[str] = mapped_column(sa.String(64), index=True)
    at: Mapped[int] = mapped_column(sa.BigInteger, index=True)


class Tender(Base):
    __tablename__ = "tender"
    __table_args__ = (sa.UniqueConstraint("agency_id", "submission_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(sa.String(40), unique=True)
    chain_id: Mapped[str] = mapped_column(sa.String(66), unique=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text)
    agency_id: Mapped[int] = mapped_column(sa.ForeignKey("organisation.id"), index=True)
    tenderer_id: Mapped[int] = mapped_column(sa.ForeignKey("organisation.id"), index=True)
    details_hash: Mapped[str] = mapped_column(sa.String(66))
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    submission_key: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[int] = mapped_column(sa.BigInteger, default=now)
    chain_tx: Mapped[str | None] = mapped_column(sa.String(66))
    chain_block: Mapped[int | None] = mapped_column(sa.BigInteger)

    agency: Mapped[Organisation] = relationship(foreign_keys=[agency_id])
    tenderer: Mapped[Organisation] = relationship(foreign_keys=[tenderer_id])
    sections: Mapped[list[Section]] = relationship(back_populates="tender", order_by="Section.position")
    attachments: Mapped[list[Attachment]] = relationship(back_populates="tender", order_by="Attachment.id")
    amendments: Mapped[list[Amendment]] = relationship(back_populates="tender", order_by="Amendment.version")


class Section(Base):
    __tablename__ = "section"

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(sa.ForeignKey("tender.id"), index=True)
    position: Mapped[int] = mapped_column(sa.Integer)
    chain_id: Mapped[str] = mapped_column(sa.String(66), unique=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    opening_time: Mapped[int] = mapped_column(sa.BigInteger)
    bid_bond: Mapped[int] = mapped_column(sa.BigInteger)
    bid_validity_period: Mapped[int] = mapped_column(sa.BigInteger)
    min_valid_bids: Mapped[int] = mapped_column(sa.Integer)
    witness_quorum: Mapped[int] = mapped_column(sa.Integer)
    opening_key: Mapped[str] = mapped_column(sa.String(200))
    chain_tx: Mapped[str | None] = mapped_column(sa.String(66))
    chain_block: Mapped[int | None] = mapped_column(sa.BigInteger)

    tender: Mapped[Tender] = relationship(back_populates="sections", lazy="joined")
    witnesses: Mapped[list[SectionWitness]] = relationship(back_populates="section")


class SectionWitness(Base):
    __tablename__ = "section_witness"

    section_id: Mapped[int] = mapped_column(sa.ForeignKey("section.id"), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisation.id"), primary_key=True)

    section: Mapped[Section] = relationship(back_populates="witnesses")
    organisation: Mapped[Organisation] = relationship(lazy="joined")


class Amendment(Base):
    """A change of the tender documents before the deadline; bids placed before it must be re-confirmed."""

    __tablename__ = "amendment"
    __table_args__ = (sa.UniqueConstraint("tender_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(sa.ForeignKey("tender.id"), index=True)
    version: Mapped[int] = mapped_column(sa.Integer)
    summary: Mapped[str] = mapped_column(sa.Text)
    details_hash: Mapped[str] = mapped_column(sa.String(66))
    created_at: Mapped[int] = mapped_column(sa.BigInteger, default=now)

    tender: Mapped[Tender] = relationship(back_populates="amendments")


class Attachment(Base):
    """A tender document; stored under the upload folder by a generated name, never the uploaded one."""

    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(sa.ForeignKey("tender.id"), index=True)
    original_name: Mapped[str] = mapped_column(sa.String(255))
    stored_name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    content_type: Mapped[str] = mapped_column(sa.String(100))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    tender_version: Mapped[int] = mapped_column(sa.Integer)
    uploaded_at: Mapped[int] = mapped_column(sa.BigInteger, default=now)

    tender: Mapped[Tender] = relationship(back_populates="attachments")


class Registration(Base):
    """A bidder's registration (报名) for a section: required before it may bid."""

    __tablename__ = "registration"
    __table_args__ = (sa.UniqueConstraint("section_id", "bidder_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    section_id: Mapped[int] = mapped_column(sa.ForeignKey("section.id"), index=True)
    bidder_id: Mapped[int] = mapped_column(sa.ForeignKey("organisation.id"), index=True)
    created_at: Mapped[int] = mapped_column(sa.BigInteger, default=now)


class Bid(Base):
    """A bidder's bid for a section: its current sealed envelope, cover and on-chain state.

    status: committing → committed; replacing → committed; withdrawing → withdrawn; failed (the chain
    refused the write, `error_code` says why). One row per bidder and section; each upload is a BidUpload.
    """

    __tablename__ = "bid"
    __table_args__ = (sa.UniqueConstraint("section_id", "bidder_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    section_id: Mapped[int] = mapped_column(sa.ForeignKey("section.id"), index=True)
    bidder_id: Mapped[int] = mapped_column(sa.ForeignKey("organisation.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String(20))
    cover_kind: Mapped[str] = mapped_column(sa.String(20))  # guarantee | cash_deposit
    cover_ref: Mapped[str] = mapped_column(sa.String(100))
    guarantee_salt: Mapped[str | None] = mapped_column(sa.String(66))
    # The cover goes on chain only blinded (commitBid's cover commitment); the platform keeps what opens
    # it and reveals it at the opening (bidding_app.covers): the salt, the commitment, the reveal's
    # transaction, or the contract's error if the cover did not reveal.
    cover_salt: Mapped[str | None] = mapped_column(sa.String(66))
    cover_commitment: Mapped[str | None] = mapped_column(sa.String(66))
    cover_reveal_tx: Mapped[str | None] = mapped_column(sa.String(66))
    cover_reveal_error: Mapped[str | None] = mapped_column(sa.String(80))
    commitment: Mapped[str] = mapped_column(sa.String(66))  # 0x SHA-256 of the current envelope
    confirmed_version: Mapped[int] = mapped_column(sa.Integer)  # tender version the bidder confirmed
    chain_tx: Mapped[str | None] = mapped_column(sa.String(66))
    chain_block: Mapped[int | None] = mapped_column(sa.BigInteger)
    error_code: Mapped[str | None] = mapped_column(sa.String(80))
    created_at: Mapped[int] = mapped_column(sa.BigInteger, default=now)
    updated_at: Mapped[int] = mapped_column(sa.BigInteger, default=now)

    section: Mapped[Section] = relationship()
    bidder: Mapped[Organisation] = relationship()
    uploads: Mapped[list[BidUpload]] = relationship(back_populates="bid", order_by="BidUpload.id")


class BidUpload(Base):
    """One sealed envelope as uploaded (opaque bytes on disk), with where it came from.

    `submission_key` (unique per bidder) makes a double-submitted upload create one record; the IP and
    user agent are kept for the regulator's collusion checks.
    """

    __tablename__ = "bid_upload"
    __table_args__ = (sa.UniqueConstraint("bidder_id", "submission_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bid_id: Mapped[int] = mapped_column(sa.ForeignKey("bid.id"), index=True)
    bidder_id: Mapped[int] = mapped_column(sa.ForeignKey("organisation.id"))
    submission_key: Mapped[str] = mapped_column(sa.String(64))
    commitment: Mapped[str] = mapped_column(sa.String(66))
    stored_name: Mapped[str] = mapped_column(sa.String(120), unique=True)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    remote_addr: Mapped[str] = mapped_column(sa.String(64))
    user_agent: Mapped[str] = mapped_column(sa.String(300))
    uploaded_at: Mapped[int] = mapped_column(sa.BigInteger, default=now)

    bid: Mapped[Bid] = relationship(back_populates="uploads")


class OutboxEntry(Base):
    """One chain write, recorded in the same transaction as the business change that needs it.

    pending → signed (nonce fixed, raw transaction stored before it is broadcast) → confirmed (final,
    with tx hash and block) or failed (the contract refused it: `error_code`). `key` is deterministic
    (action and ids), so the same business change can never enqueue the same write twice.
    """

    __tablename__ = "outbox_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisation.id"), index=True)
    action: Mapped[str] = mapped_column(sa.String(40))
    payload: Mapped[str] = mapped_column(sa.Text)  # JSON
    status: Mapped[str] = mapped_column(sa.String(20), index=True, default="pending")
    nonce: Mapped[int | None] = mapped_column(sa.BigInteger)
    raw_tx: Mapped[str | None] = mapped_column(sa.Text)
    tx_hash: Mapped[str | None] = mapped_column(sa.String(66))
    block_number: Mapped[int | None] = mapped_column(sa.BigInteger)
    error_code: Mapped[str | None] = mapped_column(sa.String(80))
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_at: Mapped[int] = mapped_column(sa.BigInteger, default=now)
    updated_at: Mapped[int] = mapped_column(sa.BigInteger, default=now)

    organisation: Mapped[Organisation] = relationship(lazy="joined")


class OutboxLease(Base):
    """Who runs the outbox sender: one sender per database, whatever the number of processes.

    A sender takes the lease when it is free or expired and renews it while it works; a sender that
    died loses it when it expires, and another takes over (resuming its signed entries by tx hash).
    """

    __tablename__ = "outbox_lease"

    name: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(sa.String(120))
    expires_at: Mapped[int] = mapped_column(sa.BigInteger)
