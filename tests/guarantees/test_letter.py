"""The PDF letter: fonts embedded, fields present, renders, signature block intact and checked."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import coincurve
import pytest
from ecdsa import SECP256k1, VerifyingKey
from ecdsa.util import sigdecode_der
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import keccak
from reportlab.graphics.barcode import qrencoder

from contracts.client import Signer, sign_offline
from contracts.records import GuaranteeTerms
from guarantees import letter, lifecycle
from guarantees.errors import LetterError, LetterTooLarge, NotAPdf
from guarantees.records import GuaranteeApplication, Party

GUARANTOR_KEY = bytes.fromhex("47c99abed3324a2707c28affff1267e45918ec8c3f20b8aa892e8b065d2942dd")
GUARANTOR = Signer.from_key(GUARANTOR_KEY)
OPENED = 1_790_000_000


def _application(sealed: bool = False, **changes: object) -> GuaranteeApplication:
    values: dict[str, object] = {
        "number": "JZBH-2026-000123",
        "applicant": Party("甲建设工程有限公司", "91350200MA00000084", "0x" + "11" * 20),
        "beneficiary": Party("市水务集团有限公司", "91350200MA00000062", "0x" + "22" * 20),
        "guarantor": Party("某银行股份有限公司", "91350200MA0000013D", GUARANTOR.address),
        "project_name": "厦门市某水厂扩建工程施工总承包",
        "section_name": "第一标段（土建）",
        "section_id": b"\x01" * 32,
        "amount": 80_000_000,
        "valid_until": OPENED + 120 * 86400,
        "applied_at": OPENED - 86400,
        "sealed": sealed,
        "salt": b"\x02" * 32 if sealed else b"",
    }
    values.update(changes)
    return GuaranteeApplication(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def unsigned() -> bytes:
    return letter.render_letter(lifecycle.letter_fields(_application(), OPENED, "https://jz.example.cn"))


@pytest.fixture(scope="module")
def signed(unsigned: bytes) -> bytes:
    return letter.sign_letter(unsigned, "JZBH-2026-000123", GUARANTOR_KEY, "0x" + "ab" * 32)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} (poppler-utils) is needed for this test")
    return path


def _text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "letter.pdf"
    path.write_bytes(pdf)
    return subprocess.run([_tool("pdftotext"), str(path), "-"], check=True, capture_output=True, text=True).stdout


def test_every_font_is_embedded(signed: bytes, tmp_path: Path) -> None:
    path = tmp_path / "letter.pdf"
    path.write_bytes(signed)
    listing = subprocess.run([_tool("pdffonts"), str(path)], check=True, capture_output=True, text=True).stdout
    rows = listing.strip().splitlines()[2:]
    assert rows, listing
    for row in rows:
        columns = row.split()
        assert columns[-5] == "yes", f"font not embedded: {row}"  # emb column
        assert "TrueType" in row


def test_text_carries_the_fields(signed: bytes, tmp_path: Path) -> None:
    text = "".join(_text(signed, tmp_path).split())
    for expected in (
        "投标保函",
        "JZBH-2026-000123",
        "甲建设工程有限公司",
        "91350200MA00000084",
        "市水务集团有限公司",
        "某银行股份有限公司",
        "厦门市某水厂扩建工程施工总承包",
        "第一标段（土建）",
        "人民币捌拾万元整",
        "¥800,000.00",
        "2026年9月21日",  # issue date, China time
        "投标截止时间后",
        "无法解密",
        "拒绝签订合同",
        "担保人（电子签章）",
        "扫码验证保函真伪",
        GUARANTOR.address,
    ):
        assert expected in text, expected


def test_sealed_letter_does_not_name_the_tender(tmp_path: Path) -> None:
    app = _application(sealed=True)
    pdf = letter.render_letter(lifecycle.letter_fields(app, OPENED, "https://jz.example.cn"))
    text = "".join(_text(pdf, tmp_path).split())
    assert "厦门市某水厂" not in text and "第一标段" not in text
    assert lifecycle.sealed_reference(app.section_id, app.salt).hex() in text
    assert "密文保函" in text


def test_page_renders_as_a4(signed: bytes, tmp_path: Path) -> None:
    path = tmp_path / "letter.pdf"
    path.write_bytes(signed)
    subprocess.run([_tool("pdftoppm"), "-r", "72", "-png", str(path), str(tmp_path / "page")], check=True)
    (page,) = tmp_path.glob("page*.png")
    png = page.read_bytes()
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width in (595, 596) and height == 842  # A4: 595.3 x 841.9 pt
    assert len(png) > 20_000  # text, table and QR code, not a blank page


def test_page_renders_the_same_without_any_installed_font(signed: bytes, tmp_path: Path) -> None:
    path = tmp_path / "letter.pdf"
    path.write_bytes(signed)
    empty = tmp_path / "fonts.conf"
    empty.write_text('<?xml version="1.0"?><fontconfig><cachedir>' + str(tmp_path) + "</cachedir></fontconfig>")
    renders: list[bytes] = []
    for env in ({}, {"FONTCONFIG_FILE": str(empty)}):
        prefix = tmp_path / f"render{len(renders)}"
        subprocess.run(
            [_tool("pdftoppm"), "-r", "50", "-png", str(path), str(prefix)],
            check=True,
            capture_output=True,
            env={"PATH": "/usr/bin:/bin", **env},
        )
        (page,) = tmp_path.glob(f"{prefix.name}*.png")
        renders.append(page.read_bytes())
    assert renders[0] == renders[1]


def test_rendering_is_deterministic(unsigned: bytes) -> None:
    again = letter.render_letter(lifecycle.letter_fields(_application(), OPENED, "https://jz.example.cn"))
    assert again == unsigned


def test_qr_code_matches_reportlab_encoder() -> None:
    url = lifecycle.verify_url("https://jz.example.cn", "JZBH-2026-000123")
    reference = qrencoder.QRCode(None, qrencoder.QRErrorCorrectLevel.M)
    reference.addData(url)
    reference.version = reference.calculate_version()
    reference.makeImpl(False, 2)
    assert letter.qr_modules(url) == [[bool(v) for v in row] for row in reference.modules]
    assert url == "https://jz.example.cn/guarantees/verify?number=JZBH-2026-000123"


@pytest.mark.parametrize(
    "text",
    [
        "https://jz.example.cn/guarantees/verify?number=JZBH-BENCH-0A1B2C3D4E5F",
        "https://a.cn/v?n=x",  # version 2, one block
        "https://verify.jz.example.cn/guarantees/verify?number=" + "JZBH-" + "9" * 59,  # version 7: version bits
        "https://jz.example.cn/guarantees/verify?number=" + "x" * 200,  # version 10+: 16-bit length, many blocks
        "HTTPS://JZ.EXAMPLE.CN/V",  # alphanumeric mode: reportlab's own path
        "12345678901234567890",  # numeric mode
        "https://jz.example.cn/保函",  # UTF-8 bytes
    ],
)
def test_qr_modules_match_reportlab_for_any_text(text: str) -> None:
    reference = qrencoder.QRCode(None, qrencoder.QRErrorCorrectLevel.M)
    reference.addData(text)
    reference.version = reference.calculate_version()
    reference.makeImpl(False, 2)
    assert letter.qr_modules(text) == [[bool(v) for v in row] for row in reference.modules]


def test_letters_differ_only_where_their_fields_do() -> None:
    """Each letter is rendered whole: other names give other font subsets and other bytes, and the
    document stays deterministic."""
    first = letter.render_letter(lifecycle.letter_fields(_application(), OPENED, "https://jz.example.cn"))
    renamed = _application(applicant=Party("乙路桥集团股份公司", "91350200MA00000099", "0x" + "11" * 20))
    other = letter.render_letter(lifecycle.letter_fields(renamed, OPENED, "https://jz.example.cn"))
    assert first != other and len({letter.letter_hash(first), letter.letter_hash(other)}) == 2
    assert letter.render_letter(lifecycle.letter_fields(renamed, OPENED, "https://jz.example.cn")) == other


def test_letter_with_rare_characters_embeds_them(tmp_path: Path) -> None:
    """Names far outside the template's characters (and one no font has) still render and extract."""
    names = "鑫犇淼燚骉有限公司𠀀"
    app = _application(applicant=Party(names, "91350200MA00000084", "0x" + "11" * 20))
    pdf = letter.render_letter(lifecycle.letter_fields(app, OPENED, "https://jz.example.cn"))
    assert "鑫犇淼燚骉有限公司" in "".join(_text(pdf, tmp_path).split())
    path = tmp_path / "rare.pdf"
    path.write_bytes(pdf)
    listing = subprocess.run([_tool("pdffonts"), str(path)], check=True, capture_output=True, text=True).stdout
    assert all(row.split()[-5] == "yes" for row in listing.strip().splitlines()[2:])


def test_signature_block_round_trip(unsigned: bytes, signed: bytes) -> None:
    assert signed.startswith(unsigned)
    block, covered = letter.read_signature(signed)
    assert covered == unsigned
    assert block.letter_hash == hashlib.sha256(unsigned).digest() == letter.letter_hash(unsigned)
    assert block.signer == GUARANTOR.address
    assert block.anchor_tx == "0x" + "ab" * 32
    assert letter.signature_valid(block, block.letter_hash)
    # The same DER signature verifies with pure-python ecdsa and is low-S (libsecp256k1 accepts it).
    key = VerifyingKey.from_string(block.public_key, curve=SECP256k1)
    assert key.verify_digest(block.signature, block.letter_hash, sigdecode=sigdecode_der)
    assert coincurve.PublicKey(block.public_key).verify(block.signature, block.letter_hash, hasher=None)


def test_tail_changes_are_detected(unsigned: bytes, signed: bytes) -> None:
    block, _ = letter.read_signature(signed)
    with pytest.raises(letter.SignatureBlockMissing):
        letter.read_signature(signed.replace(b"/Prev", b"/Prew"))
    with pytest.raises(letter.SignatureBlockMissing):
        letter.read_signature(unsigned)
    other_key = dataclasses.replace(block, signer=Signer.from_key("0x" + "22" * 32).address)
    assert not letter.signature_valid(other_key, block.letter_hash)
    assert not letter.signature_valid(block, hashlib.sha256(b"other").digest())
    bad_key = dataclasses.replace(block, public_key=b"\x02" + b"\x00" * 32)
    assert not letter.signature_valid(bad_key, block.letter_hash)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", NotAPdf),
        (b"hello, this is not a pdf", NotAPdf),
        (b"%PDF-1.4\ntruncated", letter.SignatureBlockMissing),  # a PDF, but no signed letter
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, NotAPdf),
        (b"%PDF-1.4\n" + b" " * (letter.MAX_LETTER_BYTES + 1) + b"%%EOF\n", LetterTooLarge),
    ],
)
def test_what_is_not_a_signed_letter(data: bytes, error: type[LetterError]) -> None:
    with pytest.raises(error):
        letter.read_signature(data)


def test_bad_numbers_are_refused() -> None:
    fields = lifecycle.letter_fields(_application(), OPENED, "https://jz.example.cn")
    with pytest.raises(LetterError):
        letter.render_letter(dataclasses.replace(fields, number="JZ) /Evil (x"))


@pytest.mark.parametrize(
    "fees",
    [
        {"maxFeePerGas": 4 * 10**10, "maxPriorityFeePerGas": 10**9, "chainId": 1337},
        {"maxFeePerGas": 7, "maxPriorityFeePerGas": 0, "chainId": 2**40},
        {"gasPrice": 2 * 10**9, "chainId": 31337},
        {"gasPrice": 0, "chainId": 1},
    ],
)
@pytest.mark.parametrize("nonce", [0, 1, 127, 128, 65_536])
def test_issue_transactions_are_signed_as_eth_account_signs_them(fees: dict[str, int], nonce: int) -> None:
    tx = {
        "to": GUARANTOR.address,
        "data": hashlib.sha256(str(nonce).encode()).digest() * 9,
        "value": 0,
        "gas": lifecycle.ISSUE_GAS,
        "nonce": nonce,
        **fees,
    }
    reference = Account.sign_transaction(tx, GUARANTOR_KEY)
    tx_hash, raw = sign_offline({**tx, "from": GUARANTOR.address}, GUARANTOR_KEY)
    assert raw == "0x" + bytes(reference.raw_transaction).hex()
    assert tx_hash == "0x" + bytes(reference.hash).hex()


@pytest.mark.parametrize("sealed", [True, False])
@pytest.mark.parametrize("amount", [0, 80_000_000, 2**96 - 1])
def test_issue_call_data_is_the_abi_encoding(sealed: bool, amount: int) -> None:
    terms = GuaranteeTerms(
        section_ref=hashlib.sha256(b"section").digest(),
        sealed_ref=sealed,
        applicant=GUARANTOR.address,
        beneficiary=Signer.from_key("0x" + "22" * 32).address,
        amount=amount,
        valid_until=2**64 - 1 if sealed else OPENED,
        letter_hash=hashlib.sha256(b"letter").digest(),
    )
    guarantee = lifecycle.guarantee_id("JZBH-2026-000123")
    values = (
        terms.section_ref,
        terms.sealed_ref,
        terms.applicant,
        terms.beneficiary,
        terms.amount,
        terms.valid_until,
        terms.letter_hash,
    )
    expected = keccak(text=lifecycle.ISSUE_SIGNATURE)[:4] + abi_encode(
        ["bytes32", "(bytes32,bool,address,address,uint96,uint64,bytes32)"], [guarantee, values]
    )
    assert lifecycle.issue_call_data(guarantee, terms) == expected


def test_cross_reference_table_points_at_every_object(unsigned: bytes) -> None:
    """The letter is written without a PDF library: every xref entry must be its object's offset."""
    start = int(re.findall(rb"startxref\s+(\d+)\s+%%EOF", unsigned)[-1])
    section = unsigned[start:].split(b"trailer")[0].split(b"\n")
    assert section[0] == b"xref"
    count = int(section[1].split()[1])
    entries = section[3 : 2 + count]
    assert len(entries) == count - 1
    for number, entry in enumerate(entries, start=1):
        assert unsigned.startswith(b"%d 0 obj\n" % number, int(entry[:10])), number
    assert re.search(rb"/Size %d /Root 1 0 R /Info %d 0 R" % (count, count - 1), unsigned[start:])


def test_rendering_is_the_same_in_another_process(unsigned: bytes) -> None:
    """Nothing depends on the process: hash seed, order of first use, or what was rendered before."""
    script = (
        "import sys, hashlib\n"
        "from tests.guarantees.test_letter import _application, OPENED\n"
        "from guarantees import letter, lifecycle\n"
        "fields = lifecycle.letter_fields(_application(), OPENED, 'https://jz.example.cn')\n"
        "sys.stdout.write(hashlib.sha256(letter.render_letter(fields)).hexdigest())\n"
    )
    root = Path(__file__).resolve().parents[2]
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(root)}
        done = subprocess.run(
            [sys.executable, "-c", script], check=True, capture_output=True, text=True, env=env, cwd=root
        )
        assert done.stdout == hashlib.sha256(unsigned).hexdigest()
