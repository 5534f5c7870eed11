"""The guarantee letter (保函文件): a signed A4 PDF in Simplified Chinese, its hash anchored on chain.

Design (see README.md):

- `render_letter` writes the one-page PDF itself (content stream, fonts, info, cross-reference
  table): every string in one TrueType CJK font (WenQuanYi Micro Hei, or AR PL UMing), embedded as
  subsets, so the page renders the same in any reader with no fonts installed; a QR code to the
  public verification page; the guarantor's signature block. reportlab supplies the font parsing,
  subsetting and ToUnicode maps, and the QR code's tables and function patterns. What every letter
  shares is built once per process: the subsets of the template's characters (printable ASCII and
  the fixed wording) as finished PDF objects, the QR module placement per version. Each letter lays
  out its own text, subsets the characters of its names the template lacks, encodes its QR code
  (table-driven Reed-Solomon, mask 2) and compresses its own streams: ~1.5 ms instead of ~6.
- The letter's hash is the SHA-256 of these unsigned bytes. That hash is what `GuaranteeRegistry.issue`
  anchors in its `GuaranteeIssued` event, and what the guarantor signs (ECDSA secp256k1, the key of
  its chain account, so the signer maps to an on-chain guarantor address).
- `attach_signature` appends a PDF incremental update to the unsigned bytes: one dictionary object of
  type `/JZGuaranteeSignature` (number, signed length, hash, DER signature, public key, signer address,
  anchoring transaction) and a cross-reference section chained to the original by `/Prev`. Readers
  show the letter unchanged; the unsigned letter is exactly the first `SignedLength` bytes.
- `read_signature` parses only the file's tail, and checks that the tail is byte for byte the update
  `attach_signature` would write for those fields: verification is a hash, a tail parse and one
  signature check, whatever the letter's size.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import cache, lru_cache
from itertools import accumulate
from operator import itemgetter
from pathlib import Path

import coincurve
from ecdsa import SECP256k1, SigningKey
from ecdsa.util import sigencode_der_canonize
from eth_utils import keccak, to_checksum_address
from reportlab.graphics.barcode import qrencoder
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase.ttfonts import TTFontFace, makeToUnicodeCMap

from guarantees.errors import LetterError, LetterTooLarge, NotAPdf
from guarantees.numerals import amount_in_capitals, amount_in_figures
from guarantees.records import LetterFields, LetterSignature

FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/arphic/uming.ttc"),
)
MAX_LETTER_BYTES = 2 * 1024 * 1024  # a letter is ~40 KB; anything near this size is not one of ours
SIGNATURE_TYPE = b"/JZGuaranteeSignature"
NUMBER_KEYWORD = "JZ-GUARANTEE-NUMBER:"
ALGORITHM = "ECDSA-secp256k1-SHA256"
NUMBER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{2,63}$")
CHINA_TIME = timezone(timedelta(hours=8))
_TAIL_WINDOW = 4096

CLAIM_CONDITIONS = (
    "投标人在投标截止时间后、投标有效期内撤回其投标文件的；",
    "因投标人自身原因导致其投标文件无法解密的；",
    "投标人中标后无正当理由拒绝签订合同的。",
)


class SignatureBlockMissing(LetterError):
    """The PDF carries no readable guarantor signature block (unsigned, or the block was altered)."""


class UnknownFont(LetterError):
    """None of the TrueType CJK fonts a letter needs is installed."""


# ------------------------------------------------------------------ the font


@dataclass(frozen=True)
class _Subset:
    """One embedded TrueType subset: the characters at codes 0..n-1 (code 0: the missing glyph)."""

    tag: str  # six capitals: the subset prefix of its /BaseFont
    codepoints: tuple[int, ...]


def _num(value: float) -> str:
    """A PDF number: at most three decimals, no trailing zeros (deterministic)."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


class _Face(TTFontFace):
    """reportlab's TrueType face, reading each table of the (unchanging) font file once: subsetting
    copied the whole glyph table, megabytes, out of the file for every subset."""

    _tables: dict[str, bytes] | None = None

    def get_table(self, tag: str) -> bytes:
        if self._tables is None:
            self._tables = {}
        table = self._tables.get(tag)
        if table is None:
            table = self._tables[tag] = bytes(super().get_table(tag))
        return table


class _Widths(dict[int, float]):
    """Advance widths (1/1000 em) by character; the font's default for characters it lacks."""

    def __init__(self, widths: dict[int, float], default: float) -> None:
        super().__init__(widths)
        self.default = default

    def __missing__(self, code: int) -> float:
        return self.default


class _LetterFont:
    """The CJK TrueType face and everything about it that is the same in every letter.

    Built once per process: the metrics, the code assignment of the template's characters (printable
    ASCII and the fixed wording, `TEMPLATE_TEXT`) and their subsets serialised as PDF objects, font
    program compressed. A letter then only subsets the characters of its own names that the template
    lacks (`variable_subsets`), and embeds both: every letter is self-contained.
    """

    def __init__(self, path: Path) -> None:
        self.face = _Face(str(path), subfontIndex=0)
        name = (bytes(self.face.name) + bytes(self.face.subfontNameX)).decode("latin-1")
        self.base_name = re.sub(r"[^A-Za-z0-9_-]", "", name) or "CJK"
        self.widths: dict[int, float] = _Widths(self.face.charWidths, float(self.face.defaultWidth))
        self.default_width = float(self.face.defaultWidth)
        self.glyphs: dict[int, int] = self.face.charToGlyph
        fixed = [code for code in dict.fromkeys([*range(32, 127), *map(ord, TEMPLATE_TEXT)]) if code in self.glyphs]
        self.fixed = [
            _Subset(f"JZT{index:03d}".translate(_TAG_DIGITS), (0, *fixed[start : start + 255]))
            for index, start in enumerate(range(0, len(fixed), 255))
        ]
        self.fixed_codes = _codes(self.fixed, 0)
        self.fixed_chars = frozenset(map(chr, self.fixed_codes))
        # The file starts with the header and the template's font objects: the same bytes at the same
        # offsets in every letter.
        self.prefix = _HEADER
        self.prefix_offsets: list[int] = []
        for index, subset in enumerate(self.fixed):
            first = _FIRST_FONT_OBJECT + 4 * index
            for number, body in enumerate(self.subset_objects(subset, index, first, 6), start=first):
                self.prefix_offsets.append(len(self.prefix))
                self.prefix += b"%d 0 obj\n%s\nendobj\n" % (number, body)

    def width(self, text: str, size: float) -> float:
        return sum(map(self.widths.__getitem__, map(ord, text))) * size / 1000

    def variable_subsets(self, texts: list[str]) -> tuple[list[_Subset], list[int]]:
        """Subsets of the characters of `texts` the template lacks, in order of first appearance;
        and the characters the font has no glyph for."""
        glyphs, text = self.glyphs, "".join(texts)
        new = [ord(char) for char in sorted(set(text) - self.fixed_chars, key=text.index)]
        codes = [code for code in new if code in glyphs]
        if len(codes) > 255 * (_MAX_FONTS - len(self.fixed)):
            raise LetterError(f"{len(codes)} different characters: too many for one letter")
        subsets = []
        for start in range(0, len(codes), 255):
            chunk = (0, *codes[start : start + 255])
            digest = hashlib.sha256(repr(chunk).encode("ascii")).digest()
            subsets.append(_Subset("".join(chr(65 + byte % 26) for byte in digest[:6]), chunk))
        return subsets, [code for code in new if code not in glyphs]

    def subset_objects(self, subset: _Subset, index: int, first: int, level: int = 1) -> list[bytes]:
        """The four objects of a subset, numbered from `first`: font, descriptor, program, ToUnicode."""
        face = self.face
        base_font = f"{subset.tag}+{self.base_name}"
        widths = " ".join(_num(self.widths.get(code, self.default_width)) for code in subset.codepoints)
        font = (
            f"<< /Type /Font /Subtype /TrueType /Name /F{index + 1} /BaseFont /{base_font} /FirstChar 0"
            f" /LastChar {len(subset.codepoints) - 1} /Widths [ {widths} ] /FontDescriptor {first + 1} 0 R"
            f" /ToUnicode {first + 3} 0 R >>"
        ).encode("ascii")
        flags = (int(face.flags) & ~_FF_NONSYMBOLIC) | _FF_SYMBOLIC
        bbox = " ".join(_num(v) for v in face.bbox)
        descriptor = (
            f"<< /Type /FontDescriptor /Ascent {_num(face.ascent)} /CapHeight {_num(face.capHeight)}"
            f" /Descent {_num(face.descent)} /Flags {flags} /FontBBox [ {bbox} ] /FontName /{base_font}"
            f" /ItalicAngle {_num(face.italicAngle)} /StemV {_num(face.stemV)} /FontFile2 {first + 2} 0 R"
            f" /MissingWidth {_num(self.default_width)} >>"
        ).encode("ascii")
        program = bytes(face.makeSubset(list(subset.codepoints)))
        cmap = str(makeToUnicodeCMap(base_font, list(subset.codepoints))).encode("ascii")
        return [font, descriptor, _stream(program, {"Length1": len(program)}, level), _stream(cmap, None, level)]


_FIRST_FONT_OBJECT = 5  # 1 catalog, 2 pages, 3 page, 4 content stream, then the fonts, the info last
_HEADER = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
_FF_SYMBOLIC, _FF_NONSYMBOLIC = 1 << 2, 1 << 5
_TAG_DIGITS = str.maketrans("0123456789", "ABCDEFGHIJ")


def _codes(subsets: list[_Subset], first_index: int) -> dict[int, str]:
    """A `str.translate` table: character → chr(256 × font index + code), fonts numbered from
    `first_index` (so a run of one font is a run of one 256-block, and its codes the low bytes)."""
    return {
        codepoint: chr(256 * (first_index + index) + code)
        for index, subset in enumerate(subsets)
        for code, codepoint in enumerate(subset.codepoints)
        if code
    }


_MAX_FONTS = 64
# A run of characters of one font, after translation by a `_codes` table.
_FONT_RUN = re.compile("|".join(f"[{chr(256 * k)}-{chr(256 * k + 255)}]+" for k in range(_MAX_FONTS)))


def _stream(data: bytes, extra: dict[str, int] | None, level: int) -> bytes:
    """A Flate-compressed stream object's body. The streams of each letter are compressed at level 1:
    barely larger, twice as fast; the template's, built once, at the default level."""
    compressed = zlib.compress(data, level)
    entries = "".join(f" /{key} {value}" for key, value in (extra or {}).items())
    head = f"<< /Filter /FlateDecode /Length {len(compressed)}{entries} >>\nstream\n".encode("ascii")
    return head + compressed + b"\nendstream"


_font_instance: _LetterFont | None = None


def _font() -> _LetterFont:
    global _font_instance
    if _font_instance is None:
        for path in FONT_CANDIDATES:
            if path.exists():
                _font_instance = _LetterFont(path)
                break
        else:
            raise UnknownFont(f"install fonts-wqy-microhei or fonts-arphic-uming (looked for {FONT_CANDIDATES})")
    return _font_instance


def letter_font() -> str:
    """Load the CJK TrueType font and build the template's subsets once per process; the font's name."""
    return _font().base_name


# ------------------------------------------------------------------ the QR code


class _LetterQr(qrencoder.QRCode):
    """reportlab's QR encoder with a fixed mask pattern (the slow path, for data that is not bytes).

    Any of the eight masks gives a valid code; searching for the best one costs eight encodings,
    more than the rest of the letter together, and buys nothing for a short URL printed this large.
    """

    def getBestMaskPattern(self) -> int:
        return _QR_MASK


_QR_MASK = 2
_DARK_RUN = re.compile(b"\x01+")
_BITS = bytes.maketrans(b"01", b"\x00\x01")
# The rectangle operator of a run (row, (start, end)) in module units: formatting them was a fifth of
# a letter's layout; there are at most 177 × 177 × 177 / 2 of them.
_RUN_TEXT: dict[tuple[int, tuple[int, int]], str] = {}
_QR_LEVEL = qrencoder.QRErrorCorrectLevel.M

# GF(256) with the QR code's polynomial x^8 + x^4 + x^3 + x^2 + 1, as exponent and logarithm tables.
_GF_EXP = [0] * 512
_GF_LOG = [0] * 256
_value = 1
for _power in range(255):
    _GF_EXP[_power] = _value
    _GF_LOG[_value] = _power
    _value <<= 1
    if _value & 0x100:
        _value ^= 0x11D
for _power in range(255, 512):
    _GF_EXP[_power] = _GF_EXP[_power - 255]


@cache
def _rs_generator(degree: int) -> tuple[int, ...]:
    """For each byte f, f × the Reed-Solomon generator (x - a^0)...(x - a^(degree-1)) without its
    leading term, as one big-endian integer of `degree` bytes."""
    poly = [1]
    for power in range(degree):
        product = [*poly, 0]
        for index, coefficient in enumerate(poly):
            if coefficient:
                product[index + 1] ^= _GF_EXP[_GF_LOG[coefficient] + power]
        poly = product
    logs = [_GF_LOG[c] for c in poly[1:]]
    rows = [0]
    for factor in range(1, 256):
        row = bytes(_GF_EXP[_GF_LOG[factor] + g] for g in logs)
        rows.append(int.from_bytes(row, "big"))
    return tuple(rows)


def _rs_remainder(data: bytes, degree: int) -> bytes:
    """The `degree` error correction codewords of one block (polynomial division by the generator,
    a byte at a time, the remainder held as one integer)."""
    rows, shift, keep = _rs_generator(degree), 8 * (degree - 1), (1 << 8 * degree) - 1
    remainder = 0
    for byte in data:
        remainder = ((remainder << 8) & keep) ^ rows[byte ^ (remainder >> shift)]
    return remainder.to_bytes(degree, "big")


@cache
def _qr_blocks(version: int) -> tuple[tuple[int, int], ...]:
    """(total, data) codewords of each block at level M."""
    return tuple((b.totalCount, b.dataCount) for b in qrencoder.QRRSBlock.getRSBlocks(version, _QR_LEVEL))


@cache
def _qr_interleave(version: int) -> Callable[[bytes], tuple[int, ...]]:
    """Picks the codewords in transmission order from the data blocks then the error correction
    blocks, each block after the other: first codewords of every block, then the second ones, ..."""
    blocks = _qr_blocks(version)
    data_starts, ec_starts, data_at, ec_at = [], [], 0, sum(d for _, d in blocks)
    for total, count in blocks:
        data_starts.append((data_at, count))
        ec_starts.append((ec_at, total - count))
        data_at, ec_at = data_at + count, ec_at + total - count
    picks: list[int] = []
    for starts in (data_starts, ec_starts):
        for index in range(max(length for _, length in starts)):
            picks.extend(start + index for start, length in starts if index < length)
    return itemgetter(*picks)


@cache
def _qr_layout(version: int) -> tuple[Callable[[bytes], tuple[int, ...]], bytes, int, int, int]:
    """What places the data of a version: a getter that picks, from the placed data bits (one byte
    each, 0 or 1) followed by the function patterns (finders, timing, alignment, format and version
    information, drawn by reportlab's own routines), the modules in row order; those patterns; the
    mask over the data modules as one integer (first position = highest bit); the number of data
    modules; the modules a row."""
    code = _LetterQr(version, _QR_LEVEL)
    count = code.moduleCount = version * 4 + 17
    code.modules = [[False] * count for _ in range(count)]
    code.setupPositionProbePattern(0, 0)
    code.setupPositionProbePattern(count - 7, 0)
    code.setupPositionProbePattern(0, count - 7)
    code.setupPositionAdjustPattern()
    code.setupTimingPattern()
    code.setupTypeInfo(False, _QR_MASK)
    if version >= 7:
        code.setupTypeNumber(False)
    positions = [(int(col), int(row)) for col, row in code._dataPosIterator()]
    mask = qrencoder.QRUtil.getMask(_QR_MASK)
    bits = 0
    for col, row in positions:
        bits = (bits << 1) | bool(mask(row, col))
    data_index = {row * count + col: index for index, (col, row) in enumerate(positions)}
    picks = [data_index.get(flat, len(positions) + flat) for flat in range(count * count)]
    patterns = bytes(bool(v) for row in code.modules for v in row)
    return itemgetter(*picks), patterns, bits, len(positions), count


def _is_byte_mode(text: str) -> bool:
    """Whether reportlab would encode `text` in 8-bit byte mode (it tries the denser modes first)."""
    for mode in (qrencoder.QRNumber, qrencoder.QRAlphaNum, qrencoder.QRKanji):
        try:
            mode(text)
        except ValueError:
            continue
        return False
    return True


def qr_modules(text: str) -> list[list[bool]]:
    """The QR code matrix (error correction level M, mask 2) for `text`, as reportlab's encoder gives it."""
    return [[module == 1 for module in row] for row in _qr_rows(text)]


def _qr_rows(text: str) -> list[bytes]:
    """The QR code's rows, one byte a module (1 dark): the same modules as reportlab's encoder
    gives, computed with table-driven Reed-Solomon and a module placement built once per version."""
    if not _is_byte_mode(text):
        code = _LetterQr(None, _QR_LEVEL)
        code.addData(text)
        code.make()
        return [bytes(bool(v) for v in row) for row in code.modules]
    data = text.encode("utf-8")
    for version in range(1, 40):  # reportlab's version search, for byte mode
        capacity = sum(d for _, d in _qr_blocks(version))
        length_bits = 8 if version < 10 else 16
        if 4 + length_bits + 8 * len(data) <= capacity * 8:
            break
    else:
        raise LetterError(f"{len(data)} bytes do not fit a QR code")
    bits, used = (0x4 << length_bits) | len(data), 4 + length_bits
    bits, used = (bits << 8 * len(data)) | int.from_bytes(data, "big"), used + 8 * len(data)
    if used + 4 <= capacity * 8:
        bits, used = bits << 4, used + 4  # terminator
    bits, used = bits << (-used % 8), used + (-used % 8)
    codewords = bits.to_bytes(used // 8, "big") + bytes((0xEC, 0x11) * capacity)[: capacity - used // 8]
    ec_blocks, offset = [], 0
    for total, count in _qr_blocks(version):
        ec_blocks.append(_rs_remainder(codewords[offset : offset + count], total - count))
        offset += count
    final = bytes(_qr_interleave(version)(codewords + b"".join(ec_blocks)))
    pick, patterns, mask, modules, count = _qr_layout(version)
    placed = format((int.from_bytes(final, "big") << (modules - 8 * len(final))) ^ mask, f"0{modules}b")
    flat = bytes(pick(placed.encode("ascii").translate(_BITS) + patterns))
    return [flat[start : start + count] for start in range(0, count * count, count)]


@lru_cache(maxsize=1024)
def _checksummed(address: str) -> str:
    """The checksummed form of an account (two keccaks; a guarantor's account recurs in each letter)."""
    return str(to_checksum_address(address))


def china_date(timestamp: int) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC).astimezone(CHINA_TIME)
    return f"{moment.year}年{moment.month}月{moment.day}日"


def china_datetime(timestamp: int) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC).astimezone(CHINA_TIME)
    return f"{china_date(timestamp)} {moment.hour:02d}:{moment.minute:02d}"


def _wrap(font: _LetterFont, text: str, size: float, width: float) -> list[str]:
    """Break `text` into lines no wider than `width` (CJK text breaks between any two characters)."""
    limit = width * 1000 / size
    ends = list(accumulate(map(font.widths.__getitem__, map(ord, text))))  # advance after each character
    lines: list[str] = []
    start, used = 0, 0.0
    while start < len(text):
        stop = max(bisect_right(ends, used + limit, start), start + 1)  # at least one character a line
        lines.append(text[start:stop])
        start, used = stop, ends[stop - 1]
    return lines


# The fixed wording of every letter: its characters (and printable ASCII) are the template's font
# subsets, built once per process; a letter subsets only the characters of its names it lacks.
TEMPLATE_TEXT = "".join(
    (
        "投 标 保 函保函编号：致（受益人）：鉴于（以下简称“申请人”）参加贵方组织的“”（标段：）的投标，应申请人的申请，",
        "（以下简称“本担保人”）在此无条件地、不可撤销地向贵方保证：在本保函有效期内，如申请人发生下列情形之一，",
        "本担保人在收到贵方书面索赔通知及链上记录的相应事实后七个工作日内，向贵方支付不超过人民币的款项：",
        *CLAIM_CONDITIONS,
        "申请人受益人担保人统一社会信用代码项目名称标段名称担保金额大写小写有效期自起至止签发日期年月日",
        "零壹贰叁肆伍陆柒捌玖拾佰仟万亿元角分整",
        "本保函自签发之日起生效，有效期届满、本担保人按约定付款或受益人解除本保函后自动失效。",
        "本保函的签发、解除与索赔均在见证联盟链上存证，任何持有人可扫描右下二维码或登录公共验证页面，",
        "核验本保函的真伪与效力。本保函适用中华人民共和国法律。",
        "担保人（电子签章）：授权签字人签名账户电子签名签名数据附于本文件之后哈希已上链存证扫码验证保函真伪¥",
        "密文保函，标段密文引用开标后由交易平台依链上开标记录披露",
    )
)


class _Page:
    """The page's content stream, drawn as PDF operators; text is kept as strings until the fonts
    of the letter are known (`content`)."""

    def __init__(self, font: _LetterFont) -> None:
        self.font = font
        self.items: list[str | tuple[float, float, float, str]] = []

    def text(self, x: float, y: float, size: float, text: str) -> None:
        self.items.append((x, y, size, text))

    def centred(self, x: float, y: float, size: float, text: str) -> None:
        self.text(x - self.font.width(text, size) / 2, y, size, text)

    def right(self, x: float, y: float, size: float, text: str) -> None:
        self.text(x - self.font.width(text, size), y, size, text)

    def ops(self, operators: str) -> None:
        self.items.append(operators)

    def texts(self) -> list[str]:
        return [item[3] for item in self.items if isinstance(item, tuple)]

    def content(self, codes: dict[int, str]) -> bytes:
        """The content stream, text shown in the fonts and codes of `codes` (see `_codes`).

        A string of template characters only is shown the same way in every letter (the template's
        codes never change in a process): those operators are kept (`_TEMPLATE_SHOWS`).
        """
        out: list[str] = []
        fixed = self.font.fixed_chars
        for item in self.items:
            if isinstance(item, str):
                out.append(item)
                continue
            x, y, size, text = item
            shown = _TEMPLATE_SHOWS.get((text, size))
            if shown is None:
                # the low byte of each translated character is its code (UTF-16: two bytes each)
                shown = " ".join(
                    f"/F{(ord(run[0]) >> 8) + 1} {size:g} Tf <{run.encode('utf-16-be')[1::2].hex()}> Tj"
                    for run in _FONT_RUN.findall(text.translate(codes))
                )
                if len(_TEMPLATE_SHOWS) < _MAX_TEMPLATE_SHOWS and fixed.issuperset(text):
                    _TEMPLATE_SHOWS[text, size] = shown
            out.append(f"BT {x:.2f} {y:.2f} Td {shown} ET")
        return "\n".join(out).encode("ascii")


# Text operators of strings made of template characters only, by (string, size): the fixed wording
# recurs in every letter. Bounded, as a number or a date is template characters too.
_TEMPLATE_SHOWS: dict[tuple[str, float], str] = {}
_MAX_TEMPLATE_SHOWS = 4096


def _text_string(text: str) -> str:
    """A PDF text string: literal if plain ASCII, else UTF-16BE with its byte order mark, in hex."""
    if text.isascii() and not any(c in text for c in "()\\\r\n"):
        return f"({text})"
    return "<feff" + text.encode("utf-16-be").hex() + ">"


def _layout(fields: LetterFields, font: _LetterFont) -> _Page:
    """Draw the letter: title, number, undertaking, table of fields, signature block and QR code."""
    page = _Page(font)
    page_width, page_height = A4
    left, right = 22 * mm, page_width - 22 * mm
    width = right - left
    y = page_height - 28 * mm
    page.centred(page_width / 2, y, 22, "投 标 保 函")
    y -= 10 * mm
    page.right(right, y, 10.5, f"保函编号：{fields.number}")
    y -= 9 * mm

    def paragraph(text: str, size: float = 11, indent: float = 0, leading: float = 6.2 * mm) -> None:
        nonlocal y
        for line in _wrap(font, text, size, width - indent):
            page.text(left + indent, y, size, line)
            y -= leading

    amount_text = f"人民币{amount_in_capitals(fields.amount)}（{amount_in_figures(fields.amount)}）"
    paragraph(f"致（受益人）：{fields.beneficiary.name}")
    y -= 1 * mm
    paragraph(
        f"鉴于{fields.applicant.name}（以下简称“申请人”）参加贵方组织的“{fields.project_name}”"
        f"（标段：{fields.section_name}）的投标，应申请人的申请，{fields.guarantor.name}（以下简称“本担保人”）"
        f"在此无条件地、不可撤销地向贵方保证：在本保函有效期内，如申请人发生下列情形之一，"
        f"本担保人在收到贵方书面索赔通知及链上记录的相应事实后七个工作日内，"
        f"向贵方支付不超过{amount_text}的款项："
    )
    for index, condition in enumerate(CLAIM_CONDITIONS, start=1):
        paragraph(f"（{index}）{condition}", indent=8 * mm)
    y -= 2 * mm

    rows = (
        ("保函编号", fields.number),
        ("申请人", f"{fields.applicant.name}（统一社会信用代码 {fields.applicant.identifier}）"),
        ("受益人", f"{fields.beneficiary.name}（统一社会信用代码 {fields.beneficiary.identifier}）"),
        ("担保人", f"{fields.guarantor.name}（统一社会信用代码 {fields.guarantor.identifier}）"),
        ("项目名称", fields.project_name),
        ("标段名称", fields.section_name),
        ("担保金额（大写）", f"人民币{amount_in_capitals(fields.amount)}"),
        ("担保金额（小写）", amount_in_figures(fields.amount)),
        ("有效期", f"自{china_date(fields.valid_from)}起至{china_datetime(fields.valid_until)}止"),
        ("签发日期", china_date(fields.issued_at)),
    )
    label_width = 36 * mm
    table_top = y + 4.5 * mm
    rules = ["0.5 w"]
    for label, value in rows:
        page.text(left + 2 * mm, y, 10.5, label)
        for line in _wrap(font, value, 10.5, width - label_width - 4 * mm):
            page.text(left + label_width + 2 * mm, y, 10.5, line)
            y -= 5.6 * mm
        y -= 1.4 * mm
        rules.append(f"{_num(left)} {_num(y + 4.4 * mm)} m {_num(right)} {_num(y + 4.4 * mm)} l S")
    bottom = y + 4.4 * mm
    rules.append(f"{_num(left)} {_num(bottom)} {_num(width)} {_num(table_top - bottom)} re S")
    rules.append(f"{_num(left + label_width)} {_num(bottom)} m {_num(left + label_width)} {_num(table_top)} l S")
    page.ops("\n".join(rules))
    y -= 3 * mm

    paragraph(
        "本保函自签发之日起生效，有效期届满、本担保人按约定付款或受益人解除本保函后自动失效。"
        "本保函的签发、解除与索赔均在见证联盟链上存证，任何持有人可扫描右下二维码或登录公共验证页面，"
        "核验本保函的真伪与效力。本保函适用中华人民共和国法律。",
        size=10,
        leading=5.6 * mm,
    )

    # Signature block (left) and QR code (right).
    block_top = 68 * mm
    page.text(left, block_top, 11, f"担保人（电子签章）：{fields.guarantor.name}")
    page.text(left, block_top - 8 * mm, 11, f"{fields.signatory}：")
    page.text(left, block_top - 16 * mm, 11, f"签发日期：{china_date(fields.issued_at)}")
    page.text(left, block_top - 24 * mm, 8.5, f"签名账户：{_checksummed(fields.guarantor.account)}")
    page.text(left, block_top - 29 * mm, 8.5, f"电子签名：{ALGORITHM}，签名数据附于本文件之后，哈希已上链存证")

    modules = _qr_rows(fields.verify_url)
    size = 34 * mm
    box = size / (len(modules) + 8)
    qr_left, qr_top = right - size, block_top + 6 * mm
    # In module units (one unit = one module, y down from the quiet zone's top left corner): one
    # rectangle per run of dark modules in a row.
    runs = [f"q {_num(box)} 0 0 {_num(-box)} {_num(qr_left)} {_num(qr_top)} cm"]
    for row_index, row in enumerate(modules):
        for run in _DARK_RUN.finditer(row):
            key = (row_index, run.span())
            text = _RUN_TEXT.get(key)
            if text is None:
                start, end = key[1]
                text = _RUN_TEXT[key] = f"{start + 4} {row_index + 4} {end - start} 1 re"
            runs.append(text)
    runs.append("f Q")
    page.ops("\n".join(runs))
    page.centred(right - size / 2, qr_top - size - 1 * mm, 8, "扫码验证保函真伪")
    return page


def render_letter(fields: LetterFields) -> bytes:
    """The unsigned letter as PDF bytes (deterministic: the same fields give the same bytes).

    One A4 page; every string in the CJK TrueType font, embedded as subsets: the template's (built
    once per process) and one of this letter's other characters (built for each letter).
    """
    if not NUMBER_PATTERN.match(fields.number):
        raise LetterError(f"guarantee number {fields.number!r}: 3-64 letters, digits or '-'")
    font = _font()
    page = _layout(fields, font)
    variable, missing = font.variable_subsets(page.texts())
    codes = {**font.fixed_codes, **_codes(variable, len(font.fixed)), **dict.fromkeys(missing, "\x00")}

    objects: list[bytes] = [b""] * 4  # catalog, pages, page, content stream; the template's fonts follow
    first = _FIRST_FONT_OBJECT + len(font.prefix_offsets)
    for index, subset in enumerate(variable, start=len(font.fixed)):
        objects.extend(font.subset_objects(subset, index, first + len(objects) - 4))
    font_count = len(font.fixed) + len(variable)
    font_refs = " ".join(f"/F{i + 1} {_FIRST_FONT_OBJECT + 4 * i} 0 R" for i in range(font_count))
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[1] = b"<< /Type /Pages /Count 1 /Kids [ 3 0 R ] >>"
    objects[2] = (
        f"<< /Type /Page /Parent 2 0 R /MediaBox [ 0 0 {_num(A4[0])} {_num(A4[1])} ] /Contents 4 0 R"
        f" /Resources << /ProcSet [ /PDF /Text ] /Font << {font_refs} >> >> >>"
    ).encode("ascii")
    objects[3] = _stream(page.content(codes), None, 1)
    issued = datetime.fromtimestamp(fields.issued_at, UTC).astimezone(CHINA_TIME)
    created = f"D:{issued:%Y%m%d%H%M%S}+08'00'"
    info = {
        "Title": _text_string(f"投标保函 {fields.number}"),
        "Author": _text_string(fields.guarantor.name),
        "Subject": _text_string("电子投标保函"),
        "Keywords": f"({NUMBER_KEYWORD}{fields.number})",  # ties the number to the signed bytes
        "Creator": "(Jianzheng guarantees)",
        "Producer": "(Jianzheng guarantees, fonts subset with ReportLab)",
        "CreationDate": f"({created})",
        "ModDate": f"({created})",
    }
    objects.append(("<< " + " ".join(f"/{key} {value}" for key, value in info.items()) + " >>").encode("ascii"))

    # The template's fonts (objects 5...) lead the file; this letter's objects follow, numbered 1-4
    # and after the template's.
    numbers = [1, 2, 3, 4, *range(first, first + len(objects) - 4)]
    out = [font.prefix]
    offsets, position = dict(zip(range(_FIRST_FONT_OBJECT, first), font.prefix_offsets, strict=True)), len(font.prefix)
    for number, body in zip(numbers, objects, strict=True):
        chunk = b"%d 0 obj\n%s\nendobj\n" % (number, body)
        offsets[number] = position
        out.append(chunk)
        position += len(chunk)
    document_id = hashlib.sha256(b"".join(out[1:])).hexdigest()[:32]  # the part that is this letter's own
    xref = "".join(f"{offsets[number]:010d} 00000 n \n" for number in range(1, len(offsets) + 1))
    out.append(
        (
            f"xref\n0 {len(offsets) + 1}\n0000000000 65535 f \n{xref}"
            f"trailer\n<< /Size {len(offsets) + 1} /Root 1 0 R /Info {numbers[-1]} 0 R"
            f" /ID [ <{document_id}> <{document_id}> ] >>\nstartxref\n{position}\n%%EOF\n"
        ).encode("ascii")
    )
    return b"".join(out)


# ------------------------------------------------------------------ hashing and signing


def letter_hash(unsigned_pdf: bytes) -> bytes:
    """The hash anchored on chain and signed by the guarantor: SHA-256 of the unsigned letter."""
    return hashlib.sha256(unsigned_pdf).digest()


@lru_cache(maxsize=1024)
def address_of_public_key(public_key: bytes) -> str:
    """The chain account (address) of a secp256k1 public key, compressed or not (remembered)."""
    point = coincurve.PublicKey(public_key).format(compressed=False)
    return to_checksum_address(keccak(point[1:])[-20:])


@lru_cache(maxsize=16)
def _signing_key(private_key: bytes) -> SigningKey:
    """The key object, kept: deriving its public point costs as much as a signature."""
    key = SigningKey.from_string(private_key, curve=SECP256k1)
    key.get_verifying_key().precompute()
    return key


def sign_digest(private_key: bytes, digest: bytes) -> tuple[bytes, bytes]:
    """ECDSA (secp256k1, RFC 6979 nonce, low-S) over a 32-byte digest; (DER signature, compressed key)."""
    key = _signing_key(private_key)
    signature = key.sign_digest_deterministic(digest, hashfunc=hashlib.sha256, sigencode=sigencode_der_canonize)
    public_key = key.get_verifying_key().to_string("compressed")
    return bytes(signature), bytes(public_key)


def signature_valid(signature: LetterSignature, digest: bytes) -> bool:
    """Whether the block's signature is over `digest` by its public key, and that key is its signer."""
    try:
        key = coincurve.PublicKey(signature.public_key)
        if not key.verify(signature.signature, digest, hasher=None):
            return False
    except (ValueError, TypeError):
        return False
    return address_of_public_key(signature.public_key) == signature.signer


def _trailer_facts(unsigned_pdf: bytes) -> tuple[int, int, int, int]:
    """(Size, Root object, Info object, startxref) of the unsigned PDF's last trailer."""
    tail = unsigned_pdf[-_TAIL_WINDOW:]
    size = re.findall(rb"/Size (\d+)", tail)
    root = re.findall(rb"/Root (\d+) 0 R", tail)
    info = re.findall(rb"/Info (\d+) 0 R", tail)
    start = re.findall(rb"startxref\s+(\d+)\s+%%EOF", tail)
    if not (size and root and info and start):
        raise SignatureBlockMissing("the letter's trailer is not readable")
    return int(size[-1]), int(root[-1]), int(info[-1]), int(start[-1])


def _update_bytes(unsigned_pdf: bytes, signature: LetterSignature) -> bytes:
    """The incremental update carrying `signature`, to append right after the unsigned letter."""
    size, root, info, previous_xref = _trailer_facts(unsigned_pdf)
    obj = (
        f"{size} 0 obj\n<< /Type /JZGuaranteeSignature /Algorithm ({ALGORITHM}) /Number ({signature.number})"
        f" /SignedLength {signature.signed_length} /LetterHash <{signature.letter_hash.hex()}>"
        f" /Signature <{signature.signature.hex()}> /PublicKey <{signature.public_key.hex()}>"
        f" /Signer ({signature.signer}) /AnchorTx ({signature.anchor_tx}) >>\nendobj\n"
    ).encode("ascii")
    object_offset = len(unsigned_pdf)
    xref_offset = object_offset + len(obj)
    xref = (
        f"xref\n0 1\n0000000000 65535 f \n{size} 1\n{object_offset:010d} 00000 n \n"
        f"trailer\n<< /Size {size + 1} /Root {root} 0 R /Info {info} 0 R /Prev {previous_xref}"
        f" /JZSignature {size} 0 R >>\nstartxref\n{xref_offset}\n%%EOF\n"
    ).encode("ascii")
    return obj + xref


def attach_signature(unsigned_pdf: bytes, signature: LetterSignature) -> bytes:
    """The signed letter: the unsigned bytes followed by the signature update."""
    if signature.signed_length != len(unsigned_pdf):
        raise LetterError("the signature's SignedLength must be the unsigned letter's length")
    return unsigned_pdf + _update_bytes(unsigned_pdf, signature)


def sign_letter(unsigned_pdf: bytes, number: str, private_key: bytes, anchor_tx: str) -> bytes:
    """Sign the unsigned letter's hash with the guarantor's key and attach the signature block."""
    digest = letter_hash(unsigned_pdf)
    der, public_key = sign_digest(private_key, digest)
    block = LetterSignature(
        number=number,
        signed_length=len(unsigned_pdf),
        letter_hash=digest,
        signature=der,
        public_key=public_key,
        signer=address_of_public_key(public_key),
        anchor_tx=anchor_tx,
    )
    return attach_signature(unsigned_pdf, block)


_SIGNATURE_OBJECT = re.compile(
    rb"(\d+) 0 obj\n<< /Type /JZGuaranteeSignature /Algorithm \(([^)]*)\) /Number \(([A-Za-z0-9-]{1,64})\)"
    rb" /SignedLength (\d{1,10}) /LetterHash <([0-9a-f]{64})> /Signature <([0-9a-f]{1,200})>"
    rb" /PublicKey <([0-9a-f]{66})> /Signer \((0x[0-9a-fA-F]{40})\) /AnchorTx \((0x[0-9a-f]{64}|)\) >>\nendobj\n"
)


def check_pdf(data: bytes) -> None:
    """Refuse what cannot be a letter before any parsing: not a PDF, or far too large."""
    if len(data) > MAX_LETTER_BYTES:
        raise LetterTooLarge(f"{len(data)} bytes: a guarantee letter is at most {MAX_LETTER_BYTES} bytes")
    if not data.startswith(b"%PDF-"):
        raise NotAPdf("the file does not start with %PDF-: it is not a PDF document")


def read_signature(data: bytes) -> tuple[LetterSignature, bytes]:
    """The signature block and the unsigned letter it covers.

    Raises NotAPdf / LetterTooLarge for what is no letter, and SignatureBlockMissing when the PDF has
    no block, or a tail that differs in any byte from the update `attach_signature` writes.
    """
    check_pdf(data)
    window_start = max(0, len(data) - _TAIL_WINDOW)
    matches = list(_SIGNATURE_OBJECT.finditer(data, window_start))
    if not matches:
        raise SignatureBlockMissing("the PDF carries no guarantor signature block")
    match = matches[-1]
    signed_length = int(match.group(4))
    if signed_length != match.start() or signed_length > len(data):
        raise SignatureBlockMissing("the signature block does not start where the signed letter ends")
    if match.group(2).decode() != ALGORITHM:
        raise SignatureBlockMissing(f"unknown signature algorithm {match.group(2).decode()!r}")
    block = LetterSignature(
        number=match.group(3).decode(),
        signed_length=signed_length,
        letter_hash=bytes.fromhex(match.group(5).decode()),
        signature=bytes.fromhex(match.group(6).decode()),
        public_key=bytes.fromhex(match.group(7).decode()),
        signer=match.group(8).decode(),
        anchor_tx=match.group(9).decode(),
    )
    unsigned = data[:signed_length]
    if data[signed_length:] != _update_bytes(unsigned, block):
        raise SignatureBlockMissing("the bytes after the signed letter are not its signature block")
    keyword = f"/Keywords ({NUMBER_KEYWORD}{block.number})".encode("ascii")
    if unsigned.rfind(keyword, max(0, len(unsigned) - 4 * _TAIL_WINDOW)) < 0:
        raise SignatureBlockMissing("the signature block names another guarantee number than the signed letter")
    return block, unsigned
