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
    opening_key: Mapped[str] = mapped_column(sa.String(1026))  # 0x + up to 512 bytes (opening/README.md)
    # Seconds of chain time the bidders have, once the opening record is on chain, to confirm it or object
    # (set by the agency at publication; the contract has no such window: it takes objections until the award).
    response_window: Mapped[int] = mapped_column(sa.Integer)
    chain_tx: Mapped[str | None] = mapped_column(sa.String(66))
    chain_block: Mapped[int | None] = mapped_column(sa.BigInteger)
    # Set when the witnesses' key ceremony anchored the opening key after publication (setOpeningKey).
    opening_key_tx: Mapped[str | None] = mapped_column(sa.String(66))
    opening_key_block: Mapped[int | None] = mapped_column(sa.BigInteger)
    key_ceremony_error: Mapped[str | None] = mapped_column(sa.String(600))
    # JSON {"qualified", "disqualified"} of `dkg.finish`, kept when the ceremony finished (key_ceremony.py).
    key_ceremony_outcome: Mapped[str | None] = mapped_column(sa.Text)

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
    # Anchored by `amendTender` through the outbox (bidding_app.amendments); the chain's refusal is kept.
    chain_tx: Mapped[str | None] = mapped_column(sa.String(66))
    chain_block: Mapped[int | None] = mapped_column(sa.BigInteger)
    chain_error: Mapped[str | None] = mapped_column(sa.String(100))

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


class Award(Base):
    """The agency's award of a section (定标) and the tenderer's record of the contract that followed.

    status: awarding → awarded (final on chain) or failed (`error_code`); contract_status: none →
    recording → signed | refused, or failed. The chain has the last word: the agency may award only a
    bid that opened, once the witnesses' quorum attested and no objection is pending.
    """

    __tablename__ = "award"

    id: Mapped[int] = mapped_column(primary_key=True)
    section_id: Mapped[int] = mapped_column(sa.ForeignKey("section.id"), unique=True)
    winner_id: Mapped[int] = mapped_column(sa.ForeignKey("organisation.id"), index=True)
    summary: Mapped[str] = mapped_column(sa.Text)
    award_hash: Mapped[str] = mapped_column(sa.String(66))
    status: Mapped[str] = mapped_column(sa.String(20))
    error_code: Mapped[str | None] = mapped_column(sa.String(80))
    chain_tx: Mapped[str | None] = mapped_column(sa.String(66))
    chain_block: Mapped[int | None] = mapped_column(sa.BigInteger)
    contract_status: Mapped[str] = mapped_column(sa.String(20), default="none")
    contract_note: Mapped[str | None] = mapped_column(sa.Text)
    contract_hash: Mapped[str | None] = mapped_column(sa.String(66))
    contract_error_code: Mapped[str | None] = mapped_column(sa.String(80))
    contract_tx: Mapped[str | None] = mapped_column(sa.String(66))
    contract_block: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[int] = mapped_column(sa.BigInteger, default=now)
    updated_at: Mapped[int] = mapped_column(sa.BigInteger, default=now)

    section: Mapped[Section] = relationship()
    winner: Mapped[Organisation] = relationship(lazy="joined")


class KeyCeremonyMessage(Base):
    """One witness's message in a section's key ceremony (DKG): its transport key, its deal or its
    complaints, as JSON. Public data: deals are encrypted to the recipients' transport keys."""

    __tablename__ = "key_ceremony_message"
    __table_args__ = (sa.UniqueConstraint("section_id", "witness_index", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    section_id: Mapped[int] = mapped_column(sa.ForeignKey("section.id"), index=True)
    witness_index: Mapped[int] = mapped_column(sa.Integer)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisation.id"))
    kind: Mapped[str] = mapped_column(sa.String(20))  # transport_key | deal | complaints
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[int] = mapped_column(sa.BigInteger, default=now)


class BidUploadOrigin(Base):
    """Where one bid upload came from, for the regulator's collusion signals (issue #6, 智慧监管).

    `client_ip` is the peer address, or the forwarded client address when the peer is a configured
    trusted proxy (`TRUSTED_PROXIES`); `device_id` is the random id the bid page keeps in the
    browser's localStorage (none for API uploads that send no `X-Device-Id`).
    """

    __tablename__ = "bid_upload_origin"

    upload_id: Mapped[int] = mapped_column(sa.ForeignKey("bid_upload.id"), primary_key=True)
    client_ip: Mapped[str] = mapped_column(sa.String(64), index=True)
    device_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    user_agent: Mapped[str] = mapped_column(sa.String(300))
    recorded_at: Mapped[int] = mapped_column(sa.BigInteger, default=now)

    upload: Mapped[BidUpload] = relationship(lazy="joined")


# ---------------------------------------------------------------- the opening hall (开标大厅)


class SectionOpening(Base):
    """A section's opening as the platform runs it, from the opening time to the closed record.

    stage: started (opening time passed, waiting for the witnesses' share batches) → opening (quorum of
    anchored batches: the platform opens) → closing (outcomes and record hash sent) → closed (the
    contract decided: `result` opened or failed_tender 流标), or failed (the anchored opening key is not
    one: nothing can open the bids). `record` is the canonical opening record
    whose SHA-256 (`record_hash`) `closeOpening` anchors; bidders respond until `window_ends_at`.
    """

    __tablename__ = "section_opening"

    section_id: Mapped[int] = mapped_column(sa.ForeignKey("section.id"), primary_key=True)
    stage: Mapped[str] = mapped_column(sa.String(20))
    started_at: Mapped[int] = mapped_column(sa.BigInteger)  # chain time the hall noticed the opening time
    opened_at: Mapped[int | None] = mapped_column(sa.BigInteger)
    record: Mapped[str | None] = mapped_column(sa.Text)
    record_hash: Mapped[str | None] = mapped_column(sa.String(66))
    result: Mapped[str | None] = mapped_column(sa.String(20))
    close_tx: Mapped[str | None] = mapped_column(sa.String(66))
    close_block: Mapped[int | None] = mapped_column(sa.BigInteger)
    response_window: Mapped[int] = mapped_column(sa.Integer)  # seconds of chain time after the record
    window_ends_at: Mapped[int | None] = mapped_column(sa.BigInteger)
    error: Mapped[str | None] = mapped_column(sa.Text)


class HallEvent(Base):
    """One thing that happened in a section's opening hall, numbered per section (`seq`, from 1).

    Rows, not in-process messages: the outbox sender (another process) writes most of them, and a
    reconnecting viewer resumes after the last `seq` it saw (SSE `Last-Event-ID`).
    """

    __tablename__ = "hall_event"
    __table_args__ = (sa.UniqueConstraint("section_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    section_id: Mapped[int] = mapped_column(sa.ForeignKey("section.id"), index=True)
    seq: Mapped[int] = mapped_column(sa.Integer)
    kind: Mapped[str] = mapped_column(sa.String(40))
    data: Mapped[str] = mapped_column(sa.Text)  # JSON
    created_ms: Mapped[int] = mapped_column(sa.BigInteger)  # wall clock, milliseconds


class HallPresence(Base):
    """One open event-stream connection to a section's opening hall, in whichever web worker holds it.

    A row, not a worker's memory, so that every worker shows the same people in the hall. The worker
    that holds the connection refreshes `seen_ms` while it lives; a row not refreshed for a few rounds
    belongs to a worker that died, and is neither counted nor kept (`hall_stream`).
    """

    __tablename__ = "hall_presence"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(sa.String(32), unique=True)  # random, one per connection
    section_id: Mapped[int] = mapped_column(sa.ForeignKey("section.id"), index=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisation.id"))
    is_bidder: Mapped[bool] = mapped_column(sa.Boolean)  # a registered bidder of the section when it connected
    worker: Mapped[str] = mapped_column(sa.String(80))  # host:pid:random of the holding worker
    seen_ms: Mapped[int] = mapped_column(sa.BigInteger, index=True)  # wall clock, milliseconds


class ShareBatchUpload(Base):
    """A witness's decryption-share batch as uploaded (canonical JSON), checked, and anchored by its hash."""

    __tablename__ = "share_batch"
    __table_args__ = (sa.UniqueConstraint("section_id", "witness_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    section_id: Mapped[int] = mapped_column(sa.ForeignKey("section.id"), index=True)
    witness_id: Mapped[int] = mapped_column(sa.ForeignKey("organisation.id"))
    witness_index: Mapped[int] = mapped_column(sa.Integer)
    digest: Mapped[str] = mapped_column(sa.String(66))  # 0x SHA-256 of the canonical batch: sharesHash
    content: Mapped[str] = mapped_column(sa.Text)
    share_count: Mapped[int] = mapped_column(sa.Integer)
    status: Mapped[str] = mapped_column(sa.String(20))  # anchoring | anchored | failed
    chain_tx: Mapped[str | None] = mapped_column(sa.String(66))
    chain_block: Mapped[int | None] = mapped_column(sa.BigInteger)
    error_code: Mapped[str | None] = mapped_column(sa.String(80))
    uploaded_at: Mapped[int] = mapped_column(sa.BigInteger, default=now)

    witness: Mapped[Organisation] = relationship(lazy="joined")


class OpenedBid(Base):
    """Each bid's outcome at the opening: 唱标 fields when it opened, else the art. 31 cause.

    The regulator's collusion checks read `document_sha256` and `document` (name, size) from here.
    """

    __tablename__ = "opened_bid"
    __table_args__ = (sa.UniqueConstraint("section_id", "bidder_address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    section_id: Mapped[int] = mapped_column(sa.ForeignKey("section.id"), index=True)
    bid_id: Mapped[int | None] = mapped_column(sa.ForeignKey("bid.id"))
    bidder_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organisation.id"), index=True)
    bidder_address: Mapped[str] = mapped_column(sa.String(42))
    commitment: Mapped[str] = mapped_column(sa.String(66))
    outcome: Mapped[str] = mapped_column(sa.String(20))  # opened | revoked (撤销) | withdrawn (撤回)
    cause: Mapped[str | None] = mapped_column(sa.String(40))
    detail: Mapped[str] = mapped_column(sa.Text)
    announced: Mapped[str | None] = mapped_column(sa.Text)  # JSON of the announced fields (唱标)
    document_sha256: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    document: Mapped[str | None] = mapped_column(sa.Text)  # JSON: name, size
    anchored_hash: Mapped[str] = mapped_column(sa.String(66))
    # The amendments of the tender documents the bid stood for at the deadline, and the section's, as the
    # contract kept them (`bidConfirmationOf`); None for openings recorded before they were kept.
    confirmed_amendment: Mapped[int | None] = mapped_column(sa.Integer)
    tender_amendment: Mapped[int | None] = mapped_column(sa.Integer)

    bidder: Mapped[Organisation | None] = relationship()


class OpeningResponse(Base):
    """A bidder's answer to the opening record: a confirmation (off chain) or an objection (异议, its
    text's hash anchored by `raiseObjection`), and the agency's answer (`answerObjection`)."""

    __tablename__ = "opening_response"
    __table_args__ = (sa.UniqueConstraint("section_id", "bidder_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    section_id: Mapped[int] = mapped_column(sa.ForeignKey("section.id"), index=True)
    bidder_id: Mapped[int] = mapped_column(sa.ForeignKey("organisation.id"))
    kind: Mapped[str] = mapped_column(sa.String(20))  # confirmation | objection
    text: Mapped[str] = mapped_column(sa.Text)
    text_hash: Mapped[str] = mapped_column(sa.String(66))
    status: Mapped[str] = mapped_column(sa.String(20))  # recorded | anchoring | anchored | failed
    chain_tx: Mapped[str | None] = mapped_column(sa.String(66))
    chain_block: Mapped[int | None] = mapped_column(sa.BigInteger)
    objection_number: Mapped[int | None] = mapped_column(sa.Integer)
    answer: Mapped[str | None] = mapped_column(sa.Text)
    answer_hash: Mapped[str | None] = mapped_column(sa.String(66))
    answer_status: Mapped[str | None] = mapped_column(sa.String(20))
    answer_tx: Mapped[str | None] = mapped_column(sa.String(66))
    answer_block: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[int] = mapped_column(sa.BigInteger, default=now)

    bidder: Mapped[Organisation] = relationship(lazy="joined")


class OpeningAttestation(Base):
    """A witness's attestation of the record: the platform redoes the opening for it (`verify_opening`)
    and, if it matches, sends `attestOpening`. status: verifying → attesting → attested | mismatch | failed."""

    __tablename__ = "opening_attestation"

    section_id: Mapped[int] = mapped_column(sa.ForeignKey("section.id"), primary_key=True)
    witness_id: Mapped[int] = mapped_column(sa.ForeignKey("organisation.id"), primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(20))
    detail: Mapped[str] = mapped_column(sa.Text, default="")
    chain_tx: Mapped[str | None] = mapped_column(sa.String(66))
    chain_block: Mapped[int | None] = mapped_column(sa.BigInteger)
    requested_at: Mapped[int] = mapped_column(sa.BigInteger, default=now)

    witness: Mapped[Organisation] = relationship(lazy="joined")


# ---------------------------------------------------------------- electronic bid guarantees (issue #5)


class GuaranteeApplication(Base):
    """A bidder's application for a bid guarantee (投标保函) for a section, to a guarantor of its choice.

    Always a 密文保函: the chain and the guarantor get `section_ref` = keccak(sectionId, salt); the salt
    is shown to the bidder only (it needs it to rely on the guarantee in its bid). `state` (see
    `bidding_app.guarantee_desk.STATES`) moves through underwriting, premium, issue and what follows;
    a chain write in progress has its own state until the outbox confirms it.
    """

    __tablename__ = "guarantee_application"
    __table_args__ = (sa.UniqueConstraint("bidder_id", "submission_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(sa.String(64), unique=True)  # 保函编号; keccak of it is the chain id
    guarantee_id: Mapped[str] = mapped_column(sa.String(66), unique=True)
    bidder_id: Mapped[int] = mapped_column(sa.ForeignKey("organisation.id"), index=True)
    section_id: Mapped[int] = mapped_column(sa.ForeignKey("section.id"), index=True)
    guarantor_id: Mapped[int] = mapped_column(sa.ForeignKey("organisation.id"), index=True)
    amount: Mapped[int] = mapped_column(sa.BigInteger)  # fen
    valid_until: Mapped[int] = mapped_column(sa.BigInteger)
    salt: Mapped[str] = mapped_column(sa.String(66))  # for the bidder only
    section_ref: Mapped[str] = mapped_column(sa.String(66))  # what the guarantor and the chain see
    state: Mapped[str] = mapped_column(sa.String(20), index=True)
    error_code: Mapped[str | None] = mapped_column(sa.String(80))
    submission_key: Mapped[str] = mapped_column(sa.String(64))
    applied_at: Mapped[int] = mapped_column(sa.BigInteger, default=now)
    updated_at: Mapped[int] = mapped_column(sa.BigInteger, default=now)

    bidder: Mapped[Organisation] = relationship(foreign_keys=[bidder_id], lazy="joined")
    guarantor: Mapped[Organisation] = relationship(foreign_keys=[guarantor_id], lazy="joined")
    section: Mapped[Section] = relationship(lazy="joined")


class GuaranteeUnderwriting(Base):
    """The guarantor's decision: the results of its rules and a person's (or its system's) decision."""

    __tablename__ = "guarantee_underwriting"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(sa.ForeignKey("guarantee_application.id"), unique=True)
    rule_results: Mapped[str] = mapped_column(sa.Text)  # JSON list of the rules' refusals ([] = all passed)
    approved: Mapped[bool] = mapped_column(sa.Boolean)
    reason: Mapped[str] = mapped_column(sa.Text)
    decided_by: Mapped[str] = mapped_column(sa.String(100))  # user name, or "rules", or the API's underwriter
    decided_at: Mapped[int] = mapped_column(sa.BigInteger, default=now)


class GuaranteePremium(Base):
    """The premium recorded as paid, with the account it came from (the regulator compares accounts)."""

    __tablename__ = "guarantee_premium"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(sa.ForeignKey("guarantee_application.id"), unique=True)
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    payer_account: Mapped[str] = mapped_column(sa.String(64), index=True)
    payment_ref: Mapped[str] = mapped_column(sa.String(64))
    recorded_by: Mapped[str] = mapped_column(sa.String(100))
    paid_at: Mapped[int] = mapped_column(sa.BigInteger, default=now)


class IssuedGuaranteeLetter(Base):
    """The signed letter, on disk under the upload folder, and where its hash was anchored.

    Written (with the outbox entry that anchors it) before anything is sent: `tx_hash` and `block` stay
    empty until the outbox confirms the `issue` transaction.
    """

    __tablename__ = "guarantee_letter"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(sa.ForeignKey("guarantee_application.id"), unique=True)
    stored_name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    letter_hash: Mapped[str] = mapped_column(sa.String(66))  # SHA-256 of the unsigned letter (anchored)
    source: Mapped[str] = mapped_column(sa.String(20))  # platform | guarantor_api
    issued_at: Mapped[int] = mapped_column(sa.BigInteger, default=now)
    tx_hash: Mapped[str | None] = mapped_column(sa.String(66))
    block: Mapped[int | None] = mapped_column(sa.BigInteger)


class GuaranteeEnding(Base):
    """A cancellation, release or expiry of a guarantee: who asked, why, and its transaction."""

    __tablename__ = "guarantee_ending"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(sa.ForeignKey("guarantee_application.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(20))  # cancel | release | expire
    requested_by: Mapped[str] = mapped_column(sa.String(100))
    reason: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[int] = mapped_column(sa.BigInteger, default=now)
    tx_hash: Mapped[str | None] = mapped_column(sa.String(66))
    block: Mapped[int | None] = mapped_column(sa.BigInteger)


class GuaranteeClaim(Base):
    """The beneficiary's claim on a ground the chain confirms, its evidence, and the payout."""

    __tablename__ = "guarantee_claim"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(sa.ForeignKey("guarantee_application.id"), unique=True)
    ground: Mapped[int] = mapped_column(sa.Integer)  # contracts.records.ClaimGround
    evidence: Mapped[str] = mapped_column(sa.Text)
    evidence_hash: Mapped[str] = mapped_column(sa.String(66))  # SHA-256 of the evidence (anchored)
    claimed_by: Mapped[str] = mapped_column(sa.String(100))
    claimed_at: Mapped[int] = mapped_column(sa.BigInteger, default=now)
    tx_hash: Mapped[str | None] = mapped_column(sa.String(66))
    block: Mapped[int | None] = mapped_column(sa.BigInteger)
    payout: Mapped[int | None] = mapped_column(sa.BigInteger)
    payout_ref: Mapped[str | None] = mapped_column(sa.String(64))
    payout_tx: Mapped[str | None] = mapped_column(sa.String(66))
    payout_block: Mapped[int | None] = mapped_column(sa.BigInteger)


class GuarantorApiNonce(Base):
    """Nonces of the guarantor integration API, one row per used (account, nonce): replays are refused.

    The same table `guarantees.integration.SqlNonceStore` writes to (its primary key makes the check one
    atomic insert); declared here so that the migrations create it.
    """

    __tablename__ = "guarantor_api_nonces"

    account: Mapped[str] = mapped_column(sa.String(42), primary_key=True)
    nonce: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    expires_at: Mapped[int] = mapped_column(sa.Integer, index=True)


class BidConfirmation(Base):
    """A bidder's re-confirmation of its bid for an amended version of the tender documents, anchored by
    `confirmBid` through the outbox. status: anchoring → confirmed | failed (the chain's error kept)."""

    __tablename__ = "bid_confirmation"
    __table_args__ = (sa.UniqueConstraint("bid_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bid_id: Mapped[int] = mapped_column(sa.ForeignKey("bid.id"), index=True)
    version: Mapped[int] = mapped_column(sa.Integer)
    previous_version: Mapped[int] = mapped_column(sa.Integer)  # restored on the bid if the chain refuses
    status: Mapped[str] = mapped_column(sa.String(20))
    created_at: Mapped[int] = mapped_column(sa.BigInteger, default=now)
    chain_tx: Mapped[str | None] = mapped_column(sa.String(66))
    chain_block: Mapped[int | None] = mapped_column(sa.BigInteger)
    error_code: Mapped[str | None] = mapped_column(sa.String(100))
