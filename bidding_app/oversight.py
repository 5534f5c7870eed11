"""The regulator's collusion signals (智慧监管) between the bidders of a section.

Each rule is a pure function over small frozen records, so it is tested with constructed records and
does not care where they come from: bid upload origins (this module records them at every upload),
opened documents (the opening pipeline's `opened_bid` table) and guarantee accounts (the guarantee
pages' applicant and premium payer). `Providers` says where each kind of record is read from; the
defaults read what exists on this branch, and the lead points the other two at their tables at merge
(`app.extensions["jianzheng_oversight"]`).

An alert has a stable id (the same signal gives the same id on every request, so it can be cited),
a kind, the section, the bidders involved and links to its evidence.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from bidding_app.errors import InvalidInput
from bidding_app.explorer import HistoryItem
from bidding_app.models import (
    Bid,
    BidUpload,
    BidUploadOrigin,
    GuaranteeApplication,
    GuaranteePremium,
    OpenedBid,
)

DEVICE_ID = re.compile(r"^[A-Za-z0-9-]{16,64}$")

KIND_LABELS = {
    "same_ip": "不同投标人从同一 IP 地址递交投标文件",
    "same_device": "不同投标人从同一设备（浏览器）递交投标文件",
    "same_document_hash": "不同投标人的投标文件完全相同（SHA-256 一致）",
    "same_document_metadata": "不同投标人的投标文件元数据一致（作者、创建工具、创建时间等）",
    "same_guarantee_account": "不同投标人的保函由同一账户申请或缴纳保费",
    "early_access": "开标前有人试图读取密封投标文件（已上链存证）",
}

# ------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class UploadOrigin:
    section_id: int
    bidder_org_id: int
    upload_id: int
    client_ip: str
    device_id: str | None
    user_agent: str


@dataclass(frozen=True)
class OpenedDocument:
    """An opened bid's document as the opening pipeline stores it (`opened_bid`)."""

    section_id: int
    bidder_org_id: int
    document_sha256: str
    metadata: Mapping[str, str] = field(default_factory=dict)  # PDF author, creator, producer, creation date …
    bid_id: int | None = None


@dataclass(frozen=True)
class GuaranteeAccount:
    """A bidder's guarantee for a section: the account that applied for it and the one that paid its premium."""

    section_id: int
    bidder_org_id: int
    guarantee_number: str
    applicant_account: str
    payer_account: str | None = None


@dataclass(frozen=True)
class Evidence:
    """What an alert rests on: `kind` upload (BidUpload id), bid, tx (hash), guarantee (number)."""

    kind: str
    ref: str
    label: str


@dataclass(frozen=True)
class SupervisionAlert:
    """A supervision alert (智慧监管预警) of the dashboard, about the platform's sections and organisations.

    (`guarantees.records.SupervisionAlert` is the guarantee rules' own record, keyed by on-chain section
    id and guarantee numbers; the dashboard shows these platform-side ones.)
    """

    id: str
    kind: str
    section_id: int
    bidder_org_ids: tuple[int, ...]
    detail: str
    evidence: tuple[Evidence, ...]

    @property
    def label(self) -> str:
        return KIND_LABELS[self.kind]


# ------------------------------------------------------------------------------------------- rules


def alert_id(kind: str, section_id: int, key: str) -> str:
    """Stable: the same signal (kind, section, shared value) always gets the same id."""
    return hashlib.sha256(f"{kind}|{section_id}|{key}".encode()).hexdigest()[:16]


def _shared(
    kind: str, found: Iterable[tuple[int, str, int, Evidence]], describe: Callable[[str], str]
) -> list[SupervisionAlert]:
    """Alerts for every (section, value) that two or more distinct bidders share.

    `found` holds (section, shared value, bidder, evidence) tuples; empty values share nothing.
    """
    groups: dict[tuple[int, str], list[tuple[int, Evidence]]] = defaultdict(list)
    for section_id, value, bidder, evidence in found:
        if value:
            groups[(section_id, value)].append((bidder, evidence))
    alerts = []
    for (section_id, value), members in sorted(groups.items()):
        bidders = tuple(sorted({bidder for bidder, _ in members}))
        if len(bidders) < 2:
            continue
        shown = tuple(dict.fromkeys(e for _, e in members))
        identifier = alert_id(kind, section_id, value)
        alerts.append(SupervisionAlert(identifier, kind, section_id, bidders, describe(value), shown))
    return alerts


def shared_origin_alerts(origins: Iterable[UploadOrigin]) -> list[SupervisionAlert]:
    """Different bidders of a section who uploaded from the same client IP, or from the same device."""
    origins = list(origins)

    def upload(origin: UploadOrigin) -> Evidence:
        return Evidence("upload", str(origin.upload_id), f"投标文件递交记录 #{origin.upload_id}")

    same_ip = _shared("same_ip", ((o.section_id, o.client_ip, o.bidder_org_id, upload(o)) for o in origins),
                      lambda ip: f"IP 地址 {ip}")
    same_device = _shared(
        "same_device",
        ((o.section_id, o.device_id or "", o.bidder_org_id, upload(o)) for o in origins),
        lambda device: f"设备标识 {device}（浏览器：{_agents(origins, device)}）",
    )
    return same_ip + same_device


def _agents(origins: Sequence[UploadOrigin], device: str) -> str:
    return "；".join(sorted({o.user_agent[:120] for o in origins if o.device_id == device})) or "未知"


def normalised_metadata(metadata: Mapping[str, str]) -> str:
    """The metadata as one comparable string: keys lower-cased, values stripped, empty ones dropped."""
    cleaned = {k.strip().lower(): str(v).strip() for k, v in metadata.items() if str(v).strip()}
    return "；".join(f"{k}={cleaned[k]}" for k in sorted(cleaned))


def identical_document_alerts(documents: Iterable[OpenedDocument]) -> list[SupervisionAlert]:
    """Different bidders of a section whose opened documents are byte-identical (same SHA-256), or whose
    document metadata is identical.

    Metadata counts only with at least two non-empty fields: two documents that merely share the
    producer of a common office suite are no sign; the same author, tool and creation time are.
    """
    documents = list(documents)

    def bid(document: OpenedDocument) -> Evidence:
        if document.bid_id is not None:
            return Evidence("bid", str(document.bid_id), f"投标 #{document.bid_id}")
        return Evidence("document", document.document_sha256, f"文件 SHA-256 {document.document_sha256[:16]}…")

    same_hash = _shared(
        "same_document_hash",
        ((d.section_id, d.document_sha256.lower(), d.bidder_org_id, bid(d)) for d in documents),
        lambda digest: f"文件 SHA-256 {digest}",
    )
    same_metadata = _shared(
        "same_document_metadata",
        ((d.section_id, normalised_metadata(d.metadata), d.bidder_org_id, bid(d))
         for d in documents if len([v for v in d.metadata.values() if str(v).strip()]) >= 2),
        lambda text: f"元数据 {text}",
    )
    return same_hash + same_metadata


def shared_guarantee_account_alerts(guarantees: Iterable[GuaranteeAccount]) -> list[SupervisionAlert]:
    """Different bidders of a section whose guarantees were applied for or paid from the same account
    (one bidder's payer being another's applicant counts too)."""
    found = []
    for g in guarantees:
        evidence = Evidence("guarantee", g.guarantee_number, f"保函 {g.guarantee_number}")
        for account in {g.applicant_account.strip(), (g.payer_account or "").strip()}:
            found.append((g.section_id, account, g.bidder_org_id, evidence))
    return _shared("same_guarantee_account", found, lambda account: f"账户 {account}")


def early_access_alerts(section_id: int, attempts: Iterable[HistoryItem]) -> list[SupervisionAlert]:
    """One alert per early-access attempt anchored on chain, its transaction as the evidence."""
    alerts = []
    for item in attempts:
        args = dict(item.args)
        detail = (f"第 {args.get('attempts', '?')} 次，报告方 {args.get('reporter', '?')}，"
                  f"证据哈希 {args.get('evidenceHash', '?')}")
        evidence = (Evidence("tx", item.tx_hash, f"交易 {item.tx_hash[:18]}…（区块 {item.block_number}）"),)
        key = f"{item.tx_hash}:{item.log_index}"
        identifier = alert_id("early_access", section_id, key)
        alerts.append(SupervisionAlert(identifier, "early_access", section_id, (), detail, evidence))
    return alerts


# ------------------------------------------------------------------------------------------- upload origins


def client_ip(remote_addr: str, forwarded_for: str, trusted_proxies: Sequence[str]) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy; then the right-most address of
    X-Forwarded-For that is not itself a trusted proxy. A client can forge the left part of the header, so
    nothing is taken from it unless a proxy we trust put it there."""
    trusted = set(trusted_proxies)
    address = remote_addr
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    while address in trusted and hops:
        candidate = hops.pop()
        try:
            address = str(ipaddress.ip_address(candidate))
        except ValueError:
            break
    return address[:64]


def parse_device_id(value: str | None) -> str | None:
    """The page's random device id (X-Device-Id); absent is allowed (API uploads), malformed is not."""
    if not value:
        return None
    if not DEVICE_ID.match(value):
        raise InvalidInput("设备标识（X-Device-Id）格式不正确：应为 16 至 64 位字母、数字或连字符", field="device_id")
    return value


# ------------------------------------------------------------------------------------------- providers


def origins_from_uploads(session: Session, section_ids: Sequence[int]) -> list[UploadOrigin]:
    rows = session.execute(
        sa.select(Bid.section_id, BidUpload.bidder_id, BidUploadOrigin)
        .join(BidUpload, BidUploadOrigin.upload_id == BidUpload.id)
        .join(Bid, BidUpload.bid_id == Bid.id)
        .where(Bid.section_id.in_(section_ids))
        .order_by(BidUpload.id)
    ).all()
    return [UploadOrigin(section_id, bidder_id, origin.upload_id, origin.client_ip, origin.device_id,
                         origin.user_agent) for section_id, bidder_id, origin in rows]


def opened_documents_from_hall(session: Session, section_ids: Sequence[int]) -> list[OpenedDocument]:
    """The documents the opening hall opened (`opened_bid`): their SHA-256 and authoring metadata."""
    rows = session.scalars(sa.select(OpenedBid).where(
        OpenedBid.section_id.in_(section_ids), OpenedBid.document_sha256.is_not(None),
        OpenedBid.bidder_id.is_not(None)))
    found = []
    for row in rows:
        described = json.loads(row.document or "{}")
        metadata = described.get("metadata") or {}
        found.append(OpenedDocument(row.section_id, int(row.bidder_id or 0), str(row.document_sha256),
                                    {str(k): str(v) for k, v in metadata.items()}, row.bid_id))
    return found


def guarantee_accounts_from_desk(session: Session, section_ids: Sequence[int]) -> list[GuaranteeAccount]:
    """The guarantee applications of the sections with the account each premium was paid from. The
    applicant account is the bidder's own chain account (the platform knows no other for an applicant)."""
    rows = session.execute(
        sa.select(GuaranteeApplication, GuaranteePremium.payer_account)
        .outerjoin(GuaranteePremium, GuaranteePremium.application_id == GuaranteeApplication.id)
        .where(GuaranteeApplication.section_id.in_(section_ids))
    ).all()
    return [GuaranteeAccount(application.section_id, application.bidder_id, application.number,
                             application.bidder.address or "", payer) for application, payer in rows]


@dataclass(frozen=True)
class Providers:
    origins: Callable[[Session, Sequence[int]], list[UploadOrigin]] = origins_from_uploads
    opened_documents: Callable[[Session, Sequence[int]], list[OpenedDocument]] = opened_documents_from_hall
    guarantee_accounts: Callable[[Session, Sequence[int]], list[GuaranteeAccount]] = guarantee_accounts_from_desk


def providers(app: Flask) -> Providers:
    found: Providers = app.extensions.get("jianzheng_oversight") or Providers()
    return found


def collusion_alerts(
    session: Session, section_ids: Sequence[int], source: Providers
) -> dict[int, list[SupervisionAlert]]:
    """Every collusion alert of the given sections, by section."""
    if not section_ids:
        return {}
    alerts = (shared_origin_alerts(source.origins(session, section_ids))
              + identical_document_alerts(source.opened_documents(session, section_ids))
              + shared_guarantee_account_alerts(source.guarantee_accounts(session, section_ids)))
    by_section: dict[int, list[SupervisionAlert]] = defaultdict(list)
    for alert in alerts:
        by_section[alert.section_id].append(alert)
    return dict(by_section)
