"""Publishing tenders: drafts checked, written with their chain writes in one transaction, amended
before the deadline, and their attachments stored safely."""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bidding_app import amendments, outbox
from bidding_app.db import get_or_not_found
from bidding_app.errors import AfterDeadline, Forbidden, InvalidInput, UnsupportedFileType
from bidding_app.models import Amendment, Attachment, Organisation, Section, SectionWitness, Tender, now
from bidding_app.storage import store_stream
from contracts.records import Role, id32
from opening.envelope import InvalidOpeningKey, OpeningKey

MAX_SECTIONS = 20
MIN_LEAD_SECONDS = 60  # an opening time must lie at least this far in the chain's future
# The bidders' window to confirm the opening record or object to it, in minutes. Objections to an
# opening belong to the opening itself (招标投标法实施条例 art. 44: raised on the spot, answered on the
# spot), so the window is short: long enough to read the record, at most a day.
RESPONSE_WINDOW_MINUTES = (5, 24 * 60)
# Extensions accepted for tender documents, with the leading bytes their content must start with.
ATTACHMENT_TYPES: dict[str, tuple[str, tuple[bytes, ...]]] = {
    ".pdf": ("application/pdf", (b"%PDF-",)),
    ".docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", (b"PK\x03\x04",)),
    ".xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (b"PK\x03\x04",)),
    ".zip": ("application/zip", (b"PK\x03\x04",)),
    ".doc": ("application/msword", (b"\xd0\xcf\x11\xe0",)),
    ".xls": ("application/vnd.ms-excel", (b"\xd0\xcf\x11\xe0",)),
    ".txt": ("text/plain; charset=utf-8", (b"",)),
}
HEX_KEY = re.compile(r"^(0x)?([0-9a-fA-F]{2}){1,512}$")


@dataclass(frozen=True)
class SectionDraft:
    title: str
    opening_time: int
    bid_bond: int  # fen
    bid_validity_period: int  # seconds
    min_valid_bids: int
    witness_ids: tuple[int, ...]
    witness_quorum: int
    opening_key: str  # hex
    response_window: int  # seconds of chain time after the opening record for confirmations and objections


@dataclass(frozen=True)
class TenderDraft:
    title: str
    description: str
    tenderer_id: int
    sections: tuple[SectionDraft, ...]


def _text(data: Mapping[str, Any], name: str, label: str, max_length: int, *, required: bool = True) -> str:
    value = data.get(name)
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(f"{label}格式不正确", field=name)
    value = value.strip()
    if required and not value:
        raise InvalidInput(f"请填写{label}", field=name)
    if len(value) > max_length:
        raise InvalidInput(f"{label}不能超过{max_length}个字符", field=name)
    if any(unicodedata.category(ch) == "Cc" and ch not in "\r\n\t" for ch in value):
        raise InvalidInput(f"{label}含有不允许的控制字符", field=name)
    return value


def _integer(data: Mapping[str, Any], name: str, label: str, low: int, high: int) -> int:
    value = data.get(name)
    if value is None or value == "":
        raise InvalidInput(f"请填写{label}", field=name)
    if isinstance(value, bool):
        raise InvalidInput(f"{label}必须是整数", field=name)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{label}必须是整数", field=name) from None
    if isinstance(value, float) and value != number:
        raise InvalidInput(f"{label}必须是整数", field=name)
    if not low <= number <= high:
        raise InvalidInput(f"{label}必须在 {low} 到 {high} 之间", field=name)
    return number


def _check_opening_key(text: str, quorum: int, witnesses: int, label: str) -> None:
    """A key given at publication must be one bids can be sealed to and this section's witnesses can open:
    a well-formed opening key (opening/README.md) of a `quorum`-of-`witnesses` DKG."""
    try:
        key = OpeningKey.decode(bytes.fromhex(text.removeprefix("0x")))
    except (InvalidOpeningKey, ValueError) as error:
        raise InvalidInput(f"{label}开标公钥无效（{error}）", field="opening_key") from None
    if (key.threshold, key.witnesses) != (quorum, witnesses):
        raise InvalidInput(f"{label}开标公钥是 {key.threshold}/{key.witnesses} 门限的，与本标段的见证设置 "
                           f"{quorum}/{witnesses} 不一致", field="opening_key")


def _response_window(raw: Mapping[str, Any], label: str, default: int) -> int:
    """The section's response window in seconds, from `response_window_minutes` (the default when absent)."""
    if raw.get("response_window_minutes") in (None, ""):
        return default
    low, high = RESPONSE_WINDOW_MINUTES
    minutes = _integer(raw, "response_window_minutes", label + "开标记录确认与异议期限（分钟）", -(2**31), 2**31)
    if not low <= minutes <= high:
        raise InvalidInput(f"{label}开标记录确认与异议期限须在 {low} 分钟到 {high} 分钟（{high // 60} 小时）之间",
                           field="response_window_minutes")
    return minutes * 60


def parse_draft(data: Mapping[str, Any], *, response_window: int) -> TenderDraft:
    """A tender draft from API-shaped data (amounts in fen, times in unix seconds, the response window in
    minutes); `response_window` (seconds, the platform's `HALL_RESPONSE_WINDOW`) for a section without one."""
    raw_sections = data.get("sections")
    if not isinstance(raw_sections, list) or not raw_sections:
        raise InvalidInput("至少需要一个标段", field="sections")
    if len(raw_sections) > MAX_SECTIONS:
        raise InvalidInput(f"标段不能超过{MAX_SECTIONS}个", field="sections")
    sections = []
    for index, raw in enumerate(raw_sections):
        if not isinstance(raw, Mapping):
            raise InvalidInput(f"第{index + 1}个标段格式不正确", field="sections")
        label = f"第{index + 1}标段的"
        witnesses = raw.get("witness_ids")
        if not isinstance(witnesses, list) or not witnesses or not all(
            isinstance(w, int) and not isinstance(w, bool) for w in witnesses
        ):
            raise InvalidInput(f"请为第{index + 1}标段选择见证机构", field="witness_ids")
        if len(set(witnesses)) != len(witnesses):
            raise InvalidInput(f"第{index + 1}标段的见证机构有重复", field="witness_ids")
        # Optional: usually the witnesses' DKG anchors it after publication (setOpeningKey).
        opening_key = _text(raw, "opening_key", label + "开标公钥", 1026, required=False)
        if opening_key and not HEX_KEY.match(opening_key):
            raise InvalidInput(f"{label}开标公钥必须是十六进制字节串", field="opening_key")
        quorum = _integer(raw, "witness_quorum", label + "见证法定人数", 1, len(witnesses))
        if opening_key:
            _check_opening_key(opening_key, quorum, len(witnesses), label)
        sections.append(
            SectionDraft(
                title=_text(raw, "title", label + "名称", 200),
                opening_time=_integer(raw, "opening_time", label + "开标时间", 1, 2**40),
                bid_bond=_integer(raw, "bid_bond", label + "投标保证金", 1, 10**14),
                bid_validity_period=_integer(raw, "bid_validity_days", label + "投标有效期（天）", 1, 3650) * 86400,
                min_valid_bids=_integer(raw, "min_valid_bids", label + "最少有效投标数", 1, 100),
                witness_ids=tuple(witnesses),
                witness_quorum=quorum,
                opening_key="0x" + opening_key.removeprefix("0x").lower(),
                response_window=_response_window(raw, label, response_window),
            )
        )
    tenderer_id = _integer(data, "tenderer_id", "招标人", 1, 2**31)
    return TenderDraft(
        title=_text(data, "title", "项目名称", 200),
        description=_text(data, "description", "项目概况", 20000, required=False),
        tenderer_id=tenderer_id,
        sections=tuple(sections),
    )


def _member(session: Session, organisation_id: int, role: Role, message: str, field: str) -> Organisation:
    organisation = session.get(Organisation, organisation_id)
    if organisation is None or not organisation.roles & role or organisation.address is None:
        raise InvalidInput(message, field=field)
    return organisation


def details_hash(tender: Tender, sections: list[dict[str, Any]], attachments: list[str]) -> str:
    """What the chain anchors for the tender: the hash of its published details, not the details."""
    document = {"number": tender.number, "title": tender.title, "description": tender.description,
                "version": tender.version, "sections": sections, "attachments": attachments}
    canonical = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return "0x" + hashlib.sha256(canonical.encode()).hexdigest()


def publish(
    session: Session, agency: Organisation, draft: TenderDraft, submission_key: str, chain_now: int
) -> tuple[Tender, bool]:
    """Add the tender and its sections, and their chain writes, to the caller's transaction.

    Returns the tender and whether it is new: the same `submission_key` from the same agency returns
    the tender created the first time.
    """
    existing = session.scalars(
        sa.select(Tender).where(Tender.agency_id == agency.id, Tender.submission_key == submission_key)
    ).first()
    if existing is not None:
        return existing, False
    tenderer = _member(session, draft.tenderer_id, Role.TENDERER, "所选招标人不是联盟中的招标人", "tenderer_id")
    for index, planned in enumerate(draft.sections):
        if planned.opening_time <= chain_now + MIN_LEAD_SECONDS:
            raise InvalidInput(f"第{index + 1}标段的开标时间必须晚于当前时间至少一分钟", field="opening_time")
        for witness_id in planned.witness_ids:
            _member(session, witness_id, Role.WITNESS, f"第{index + 1}标段所选的见证机构无效", "witness_ids")
    number = f"JZ{now()}{uuid.uuid4().hex[:8].upper()}"
    tender = Tender(number=number, chain_id="0x" + id32(number).hex(), title=draft.title,
                    description=draft.description, agency_id=agency.id, tenderer_id=tenderer.id,
                    details_hash="", version=1, submission_key=submission_key)
    # Every term of the sections, the bidders' response window included, is in the anchored details hash.
    tender.details_hash = details_hash(tender, [asdict(s) for s in draft.sections], [])
    session.add(tender)
    session.flush()
    outbox.enqueue(session, agency.id, "create_tender", f"create_tender:{tender.chain_id}",
                   {"tender_id": tender.chain_id, "tenderer": tenderer.address, "details_hash": tender.details_hash})
    for position, item in enumerate(draft.sections, start=1):
        section_number = f"{number}-{position:02d}"
        section = Section(tender_id=tender.id, position=position, chain_id="0x" + id32(section_number).hex(),
                          title=item.title, opening_time=item.opening_time, bid_bond=item.bid_bond,
                          bid_validity_period=item.bid_validity_period, min_valid_bids=item.min_valid_bids,
                          witness_quorum=item.witness_quorum, opening_key=item.opening_key,
                          response_window=item.response_window)
        session.add(section)
        session.flush()
        witnesses = [session.get_one(Organisation, w) for w in item.witness_ids]
        session.add_all(SectionWitness(section_id=section.id, organisation_id=w.id) for w in witnesses)
        outbox.enqueue(session, agency.id, "add_section", f"add_section:{section.chain_id}", {
            "tender_id": tender.chain_id, "section_id": section.chain_id, "opening_time": item.opening_time,
            "bid_validity_period": item.bid_validity_period, "bid_bond": item.bid_bond,
            "min_valid_bids": item.min_valid_bids, "witness_quorum": item.witness_quorum,
            "witnesses": [w.address for w in witnesses], "opening_key": item.opening_key,
        })
    session.flush()
    return tender, True


def tender_of(session: Session, tender_id: int) -> Tender:
    return get_or_not_found(session, Tender, tender_id, "未找到该招标项目")


def owned_tender(session: Session, agency: Organisation, tender_id: int) -> Tender:
    tender = tender_of(session, tender_id)
    if tender.agency_id != agency.id:
        raise Forbidden("只有发布该项目的招标代理机构可以修改它")
    return tender


def deadline(tender: Tender) -> int:
    """The earliest opening time of the tender's sections: amendments must come before it."""
    return min(section.opening_time for section in tender.sections)


def amend(session: Session, tender: Tender, summary: str, description: str | None, chain_now: int) -> Amendment:
    """Amend the documents before the deadline, anchoring the new details hash on chain (`amend_tender`).
    Bids placed so far must be re-confirmed by their bidders."""
    if chain_now >= deadline(tender):
        raise AfterDeadline("已过投标截止时间，不能再发布澄清或修改")
    summary = _text({"summary": summary}, "summary", "修改说明", 5000)
    if description is not None:
        tender.description = _text({"description": description}, "description", "项目概况", 20000, required=False)
    tender.version += 1
    tender.details_hash = details_hash(
        tender, [{"chain_id": s.chain_id} for s in tender.sections], [a.sha256 for a in tender.attachments]
    )
    amendment = Amendment(tender_id=tender.id, version=tender.version, summary=summary,
                          details_hash=tender.details_hash)
    session.add(amendment)
    amendments.queue_amendment(session, tender, amendment)
    session.commit()
    return amendment


def safe_display_name(filename: str) -> str:
    """The uploaded file's own name, for display only: no folders, no control characters."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().lstrip(".")
    return name[:200] or "附件"


def add_attachment(
    session: Session, tender: Tender, filename: str, stream: IO[bytes], folder: Path, max_bytes: int, chain_now: int
) -> Attachment:
    """Store a tender document under a generated name after checking its type and size.

    Adding a document to a published tender is an amendment: it must come before the deadline and
    asks the bids placed so far to be re-confirmed.
    """
    if tender.sections and chain_now >= deadline(tender):
        raise AfterDeadline("已过投标截止时间，不能再上传招标文件")
    display = safe_display_name(filename)
    extension = os.path.splitext(display)[1].lower()
    if extension not in ATTACHMENT_TYPES:
        raise UnsupportedFileType(f"不支持的文件类型“{extension or '无扩展名'}”，允许：" + "、".join(ATTACHMENT_TYPES))
    content_type, magics = ATTACHMENT_TYPES[extension]
    stored = store_stream(stream, folder / f"{uuid.uuid4().hex}{extension}", max_bytes, label="附件", field="file")
    if not any(stored.head.startswith(magic) for magic in magics):
        stored.path.unlink()
        raise UnsupportedFileType(f"文件内容与扩展名“{extension}”不符")
    attachment = Attachment(tender_id=tender.id, original_name=display, stored_name=stored.path.name,
                            content_type=content_type, size=stored.size, sha256=stored.sha256,
                            tender_version=tender.version)
    session.add(attachment)
    session.flush()
    return attachment
