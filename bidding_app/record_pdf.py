"""The opening record (开标记录) as a PDF: A4, Simplified Chinese, the CJK font embedded as a subset.

The PDF is a rendering of the canonical opening record (the JSON whose SHA-256 `closeOpening`
anchored): it prints that hash, the transaction and block that anchored it, and every bid's outcome,
so a reader checks the PDF against the chain by the record hash (the JSON is served beside it). A bid
not confirmed after the tender's latest amendment gets a mark and a footnote: the contract opens and
counts it like any other, so the evaluation committee must see it to judge it. The font is the one the
guarantee letters use (`guarantees.letter.FONT_CANDIDATES`); reportlab embeds the subset of the
characters used.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from bidding_app.amendments import UNCONFIRMED_TREATMENT
from bidding_app.hall import CAUSE_LABELS
from guarantees.letter import FONT_CANDIDATES, UnknownFont, china_datetime

FONT_NAME = "JianzhengCJK"
MARGIN = 18 * mm
LINE = 6 * mm
UNCONFIRMED_MARK = "※"  # beside the result of a bid not confirmed after the last amendment, with a footnote


@dataclass(frozen=True)
class RecordContext:
    """What the record itself does not say but a reader needs: names, and where it is anchored."""

    tender_title: str
    tender_number: str
    section_title: str
    agency: str
    tenderer: str
    bidder_names: dict[str, str]  # lower-case address → organisation name
    witness_names: dict[str, str]
    record_hash: str
    close_tx: str | None
    close_block: int | None
    result: str | None  # opened | failed_tender
    min_valid_bids: int


@cache
def _font() -> str:
    for path in FONT_CANDIDATES:
        if path.exists():
            pdfmetrics.registerFont(TTFont(FONT_NAME, str(path), subfontIndex=0))
            return FONT_NAME
    raise UnknownFont(f"install fonts-wqy-microhei or fonts-arphic-uming (looked for {FONT_CANDIDATES})")


def _unconfirmed(bid: dict[str, Any], amendments: int) -> bool:
    """Whether the bid stands for documents older than the latest amendment (the record says so per bid)."""
    return amendments > 0 and int(bid.get("confirmed_amendment", amendments)) < amendments


def _price(announced: dict[str, Any] | None) -> str:
    if not announced or not isinstance(announced.get("price_fen"), int):
        return "—"
    fen = int(announced["price_fen"])
    return f"{fen // 100:,}.{fen % 100:02d} 元"


class _Writer:
    """Lines top to bottom, a new page when the page is full."""

    def __init__(self, canvas: Canvas) -> None:
        self.canvas = canvas
        self.width, self.height = A4
        self.y = self.height - MARGIN
        self.font = _font()

    def line(self, text: str, size: float = 10, indent: float = 0) -> None:
        if self.y < MARGIN + LINE:
            self.canvas.showPage()
            self.y = self.height - MARGIN
        self.canvas.setFont(self.font, size)
        self.canvas.drawString(MARGIN + indent, self.y, text)
        self.y -= LINE * size / 10

    def wrapped(self, text: str, size: float = 10, indent: float = 0) -> None:
        limit = self.width - 2 * MARGIN - indent
        current = ""
        for char in text:
            if pdfmetrics.stringWidth(current + char, self.font, size) > limit:
                self.line(current, size, indent)
                current = ""
            current += char
        if current:
            self.line(current, size, indent)

    def columns(self, cells: Sequence[str], widths: Sequence[float], size: float = 9) -> None:
        if self.y < MARGIN + LINE:
            self.canvas.showPage()
            self.y = self.height - MARGIN
        self.canvas.setFont(self.font, size)
        x = MARGIN
        for cell, width in zip(cells, widths, strict=True):
            self.canvas.drawString(x, self.y, cell)
            x += width
        self.y -= LINE * 0.9


def render_record(record_json: str, context: RecordContext) -> bytes:
    """The PDF of an opening record (the canonical JSON as anchored) with its context."""
    record = json.loads(record_json)
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, pageCompression=1, invariant=1, initialFontName=_font())
    canvas.setTitle(f"开标记录 {context.tender_number} {context.section_title}")
    canvas.setAuthor("见证 · 公共资源交易不见面开标平台")
    out = _Writer(canvas)
    out.line("开标记录", 18)
    out.y -= LINE / 2
    out.wrapped(f"项目：{context.tender_title}（{context.tender_number}）")
    out.wrapped(f"标段：{context.section_title}")
    out.line(f"招标人：{context.tenderer}    招标代理机构：{context.agency}")
    opened_at = china_datetime(int(record["opened_at"]))
    out.line(f"开标时间：{china_datetime(int(record['opening_time']))}    解密完成：{opened_at}")
    out.line(f"门限：{record['threshold']} / {len(record['witnesses'])} 家见证机构")
    names = [context.witness_names.get(w, w) for w in record["witnesses"]]
    out.wrapped("见证机构：" + "、".join(names))
    counts = record["counts"]
    out.line(f"解密结果：已解密 {counts['opened']} 份，撤销 {counts['revoked']} 份，撤回 {counts['withdrawn']} 份")
    amendments = int(record.get("tender_amendment", 0))  # records before format v2 do not say
    unconfirmed = [bid for bid in record["bids"] if _unconfirmed(bid, amendments)]
    if amendments:
        out.line(f"招标文件修改：截止时共修改 {amendments} 次；未确认最近一次修改的投标 {len(unconfirmed)} 份")
    if context.result == "failed_tender":
        out.line(f"结论：流标（有效投标 {counts['opened']} 份，少于最低 {context.min_valid_bids} 份）", 12)
    elif context.result == "opened":
        out.line(f"结论：开标有效（有效投标 {counts['opened']} 份）", 12)
    out.y -= LINE / 2
    out.line("唱标", 13)
    widths = [60 * mm, 20 * mm, 50 * mm, 44 * mm]
    out.columns(["投标人", "结果", "投标报价", "工期（日历天）"], widths)
    for bid in record["bids"]:
        announced = bid["announced"] or {}
        name = context.bidder_names.get(bid["bidder"], bid["bidder"])
        mark = UNCONFIRMED_MARK if _unconfirmed(bid, amendments) else ""
        out.columns([name[:20], bid["outcome_zh"] + mark, _price(bid["announced"]),
                     str(announced.get("duration_days", "—"))], widths)
        if mark:
            stood = int(bid["confirmed_amendment"])
            version = "最初发布的招标文件" if stood == 0 else f"第{stood}次修改后的招标文件"
            out.wrapped(f"{mark} 未确认第{amendments}次修改（投标对应{version}）", 8, 4 * mm)
        others = "，".join(f"{k}：{v}" for k, v in sorted(announced.items()) if k not in ("price_fen", "duration_days"))
        if others:
            out.wrapped(f"其他唱标内容：{others}", 8, 4 * mm)
        if bid["failure"]:
            cause = bid["failure"]["cause"]
            whose = "投标人原因" if bid["failure"]["bidder_caused"] else "非投标人原因"
            out.wrapped(f"原因：{CAUSE_LABELS.get(cause, cause)}（{whose}）", 8, 4 * mm)
        if bid["document"]:
            out.line(f"投标文件 SHA-256：{bid['document']['sha256']}", 7, 4 * mm)
    if unconfirmed:
        out.y -= LINE / 4
        out.wrapped(f"{UNCONFIRMED_MARK} 投标人未就招标文件第{amendments}次修改重新确认其投标（据链上记录）。"
                    + UNCONFIRMED_TREATMENT, 8)
    if record["faulty_shares"]:
        out.y -= LINE / 2
        out.line("无效的解密份额", 12)
        for faulty in record["faulty_shares"]:
            out.line(f"见证人 {faulty['witness_index']}：{faulty['reason']}（投标 {faulty['commitment'][:16]}…）", 9)
    out.y -= LINE / 2
    out.line("存证", 13)
    out.line(f"开标记录哈希（SHA-256，规范 JSON）：{context.record_hash}", 8)
    if context.close_tx:
        out.line(f"上链交易：{context.close_tx}  区块 {context.close_block}", 8)
    out.wrapped("本记录由平台按各见证机构的解密份额解密全部投标文件后生成；任何人可用公开数据重新计算，"
                "结果与链上开标记录哈希一致方为有效。", 9)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()
