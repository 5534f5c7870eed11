"""Bidding: registration, sealed uploads checked against their commitment, replace and withdraw.

The platform stores a sealed envelope as opaque bytes and never sees a plaintext bid: the browser seals
it (opening/static/sealing.js), computes the commitment SHA-256(envelope) and sends both; the server
checks the hash, keeps the bytes and commits the hash on chain through the outbox.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bidding_app import amendments, covers, outbox
from bidding_app.chain import ChainGateway
from bidding_app.db import get_or_not_found
from bidding_app.errors import (
    AfterDeadline,
    AlreadyRegistered,
    BidStateConflict,
    CommitmentMismatch,
    Forbidden,
    InvalidInput,
    NotFound,
    NotRegistered,
)
from bidding_app.models import (
    Bid,
    BidUpload,
    BidUploadOrigin,
    Organisation,
    OutboxEntry,
    Registration,
    Section,
    now,
)
from bidding_app.storage import Readable, make_durable, store_stream

HASH32 = re.compile(r"^0x[0-9a-f]{64}$")
SUBMISSION_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


@dataclass(frozen=True)
class Cover:
    """How the bid bond is covered: a guarantee (its id, and the salt of a sealed reference) or cash."""

    kind: str  # guarantee | cash_deposit
    reference: str
    salt: str | None = None

    def blinding_salt(self) -> str:
        """The salt that blinds the cover on chain until the opening: a sealed guarantee's own salt (so
        that one secret opens both), otherwise fresh random bytes the platform keeps."""
        return self.salt or "0x" + os.urandom(32).hex()


def parse_cover(kind: str | None, reference: str | None, salt: str | None) -> Cover:
    kind = (kind or "").strip()
    reference = (reference or "").strip()
    if kind not in ("guarantee", "cash_deposit"):
        raise InvalidInput("请选择投标保证金的形式：电子保函或现金保证金", field="cover_kind")
    if not reference or len(reference) > 100 or not reference.isprintable():
        label = "保函编号" if kind == "guarantee" else "保证金缴纳凭证号"
        raise InvalidInput(f"请填写{label}（不超过100个字符）", field="cover_ref")
    salt = (salt or "").strip().lower() or None
    if salt is not None and (kind != "guarantee" or not HASH32.match(salt)):
        message = "保函密封参考的盐值必须是 0x 开头的 64 位十六进制数，且只用于电子保函"
        raise InvalidInput(message, field="guarantee_salt")
    return Cover(kind, reference, salt)


def parse_commitment(value: str | None) -> str:
    commitment = (value or "").strip().lower()
    if not HASH32.match(commitment):
        raise InvalidInput("承诺值（密封文件的 SHA-256）必须是 0x 开头的 64 位十六进制数", field="commitment")
    return commitment


def parse_submission_key(value: str | None) -> str:
    key = (value or "").strip()
    if not SUBMISSION_KEY.match(key):
        raise InvalidInput("表单缺少有效的提交标识，请刷新页面后重试", field="submission_key")
    return key


def section_of(session: Session, section_id: int) -> Section:
    return get_or_not_found(session, Section, section_id, "未找到该标段")


def section_for(
    session: Session,
    organisation: Organisation,
    section_id: int,
    admits: Callable[[Session, Organisation, Section], bool],
    refusal: str,
) -> Section:
    """The section if `admits` lets `organisation` in, else Forbidden with `refusal` (who may, in words):
    one place for the shape every per-section rule (envelopes, the opening hall) has."""
    section = section_of(session, section_id)
    if not admits(session, organisation, section):
        raise Forbidden(refusal)
    return section


def opening_key(session: Session, section: Section, gateway: ChainGateway) -> str:
    """The section's opening key (hex) that bids are sealed to; "" while the witnesses have not set it.

    The agency may give it when publishing, or the witnesses' DKG anchors it later (setOpeningKey): then
    it is read from the chain once and kept.
    """
    if section.opening_key not in ("", "0x") or gateway.deployment is None or not section.chain_tx:
        return "" if section.opening_key == "0x" else section.opening_key
    anchored = gateway.deployment.tenders.opening_key(bytes.fromhex(section.chain_id[2:]))
    if anchored:
        section.opening_key = "0x" + bytes(anchored).hex()
        session.commit()
    return section.opening_key if anchored else ""


def _before_deadline(section: Section, chain_now: int) -> None:
    if chain_now >= section.opening_time:
        raise AfterDeadline()


def register(session: Session, bidder: Organisation, section: Section, chain_now: int) -> Registration:
    _before_deadline(section, chain_now)
    if registration_of(session, bidder, section) is not None:
        raise AlreadyRegistered()
    registration = Registration(section_id=section.id, bidder_id=bidder.id)
    session.add(registration)
    session.commit()
    return registration


def registration_of(session: Session, bidder: Organisation, section: Section) -> Registration | None:
    return session.scalars(
        sa.select(Registration).where(Registration.section_id == section.id, Registration.bidder_id == bidder.id)
    ).first()


def bid_of(session: Session, bidder: Organisation, section: Section) -> Bid | None:
    return session.scalars(sa.select(Bid).where(Bid.section_id == section.id, Bid.bidder_id == bidder.id)).first()


def bids_of(session: Session, bidder: Organisation) -> list[Bid]:
    """The bidder's own bids, the latest opening first (the bidder's bid list; never another's bids)."""
    return list(session.scalars(sa.select(Bid).join(Section, Section.id == Bid.section_id)
                                .where(Bid.bidder_id == bidder.id)
                                .order_by(Section.opening_time.desc(), Bid.id.desc())))


def own_bid(session: Session, bidder: Organisation, bid_id: int) -> Bid:
    """A bid of the caller's organisation; another organisation's bid is 'not found', never 'forbidden'."""
    bid = session.get(Bid, bid_id)
    if bid is None or bid.bidder_id != bidder.id:
        raise NotFound("未找到该投标")
    return bid


@dataclass(frozen=True)
class Envelope:
    """A sealed envelope received into the upload folder; not yet part of any bid."""

    path: Path
    size: int
    sha256: str


def receive_envelope(stream: Readable, folder: Path, max_bytes: int) -> Envelope:
    """Copy the upload to disk while hashing it, refusing it past `max_bytes` or when empty."""
    stored = store_stream(stream, folder / f"{uuid.uuid4().hex}.sealed", max_bytes, label="密封投标文件",
                          field="envelope")
    return Envelope(stored.path, stored.size, "0x" + stored.sha256)


@dataclass(frozen=True)
class UploadContext:
    """Who sent an upload from where, and the chain time its deadline is checked against."""

    submission_key: str
    remote_addr: str
    user_agent: str
    chain_now: int
    client_ip: str = ""  # the regulator's origin record (bid_upload_origin): peer or trusted-proxy client
    device_id: str | None = None


def submit(
    session: Session,
    bidder: Organisation,
    section: Section,
    cover: Cover | None,
    commitment: str,
    envelope: Envelope,
    context: UploadContext,
) -> Bid:
    """Place (or replace) the bidder's sealed bid; the chain write and the upload's origin record go in
    the same transaction, after the envelope is on disk (`make_durable`).

    A repeated `submission_key` returns the bid of the first submission and stores nothing new.
    """
    try:
        earlier = session.scalars(
            sa.select(BidUpload).where(
                BidUpload.bidder_id == bidder.id, BidUpload.submission_key == context.submission_key
            )
        ).first()
        if earlier is not None:
            envelope.path.unlink(missing_ok=True)
            return earlier.bid
        if registration_of(session, bidder, section) is None:
            raise NotRegistered()
        _before_deadline(section, context.chain_now)
        if envelope.sha256 != commitment:
            raise CommitmentMismatch()
        bid = bid_of(session, bidder, section)
        if bid is not None and bid.status in ("committing", "replacing", "withdrawing"):
            raise BidStateConflict("上一次投标操作尚在上链确认中，请稍候再试")
        replacing = bid is not None and bid.status == "committed"
        if not replacing and cover is None:
            raise InvalidInput("请填写投标保证金的形式和凭证", field="cover_kind")
        if not replacing and bidder.address is None:
            raise InvalidInput("贵单位尚无链上账户，无法投标", field="cover_kind")
        # The envelope goes to its place and onto disk before the first write of the transaction: the
        # disk flush lets other requests run (gevent), and none of them may find the database locked
        # by a transaction that waits for the disk (SQLite's busy wait would block the whole worker).
        stored = Path(section.chain_id[2:18]) / envelope.path.name
        final = envelope.path.parent.parent / "bids" / stored
        try:
            os.replace(envelope.path, final)
        except FileNotFoundError:  # the section's first envelope: its folder is made once
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(envelope.path, final)
        envelope = Envelope(final, envelope.size, envelope.sha256)  # so that a failure below removes it
        make_durable(final)
        if bid is None:
            assert cover is not None
            bid = Bid(section=section, bidder_id=bidder.id, uploads=[], status="committing", cover_kind=cover.kind,
                      cover_ref=cover.reference, guarantee_salt=cover.salt, commitment=commitment,
                      confirmed_version=section.tender.version)
            session.add(bid)
        elif not replacing:
            assert cover is not None
            bid.status, bid.cover_kind, bid.cover_ref, bid.guarantee_salt = (
                "committing", cover.kind, cover.reference, cover.salt)
        else:
            bid.status = "replacing"
        if not replacing:
            assert cover is not None and bidder.address is not None
            bid.cover_salt = cover.blinding_salt()
            blinded = covers.chain_cover(cover.kind, cover.reference, bid.cover_salt)
            bid.cover_commitment = covers.commitment_of(section.chain_id, bidder.address, blinded)
            bid.cover_reveal_tx = bid.cover_reveal_error = None
        bid.confirmed_version, bid.error_code, bid.updated_at = section.tender.version, None, now()
        session.flush()
        # Through the relationships, so that the receipt built after the commit needs no query.
        upload = BidUpload(bid=bid, bidder_id=bidder.id, submission_key=context.submission_key,
                           commitment=commitment, stored_name=str(stored), size=envelope.size,
                           remote_addr=context.remote_addr[:64], user_agent=context.user_agent[:300])
        session.add(upload)
        session.flush()
        session.add(BidUploadOrigin(upload_id=upload.id, client_ip=context.client_ip[:64],
                                    device_id=context.device_id, user_agent=context.user_agent[:300]))
        payload = {"bid_id": bid.id, "section_id": section.chain_id, "ciphertext_hash": commitment}
        if replacing:
            outbox.enqueue(session, bidder.id, "replace_bid", f"replace_bid:{upload.id}", payload)
        else:
            assert cover is not None
            outbox.enqueue(session, bidder.id, "commit_bid", f"commit_bid:{upload.id}",
                           payload | {"cover_commitment": bid.cover_commitment})
        session.commit()
        return bid
    except BaseException:
        session.rollback()
        envelope.path.unlink(missing_ok=True)
        raise


def withdraw(session: Session, bid: Bid, submission_key: str, chain_now: int) -> Bid:
    """Withdraw a committed bid before the deadline (through the outbox); a repeated submission is a no-op."""
    key = f"withdraw_bid:{bid.id}:{submission_key}"
    if session.scalars(sa.select(OutboxEntry.id).where(OutboxEntry.key == key)).first() is not None:
        return bid
    _before_deadline(bid.section, chain_now)
    if bid.status != "committed":
        raise BidStateConflict("只有已上链确认的投标才能撤回")
    bid.status, bid.updated_at = "withdrawing", now()
    outbox.enqueue(session, bid.bidder_id, "withdraw_bid", key, {"bid_id": bid.id, "section_id": bid.section.chain_id})
    session.commit()
    return bid


def reconfirm(session: Session, bid: Bid, chain_now: int) -> Bid:
    """The bidder confirms its bid still stands after an amendment of the tender documents, on chain
    (`confirm_bid`, see bidding_app.amendments)."""
    _before_deadline(bid.section, chain_now)
    if bid.status not in ("committing", "committed", "replacing"):
        raise BidStateConflict("该投标当前无需确认")
    amendments.queue_confirmation(session, bid)
    session.commit()
    return bid
