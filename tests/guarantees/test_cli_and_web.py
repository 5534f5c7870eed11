"""The verification CLI (exit codes) and the Flask blueprints (public page, JSON API, guarantor API)."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine

from contracts.toolchain import PROJECT_ROOT
from guarantees import integration, letter, lifecycle
from guarantees.cli import main as cli_main
from guarantees.records import Verdict
from guarantees.verify import EXIT_CODES
from guarantees.web import guarantor_blueprint, verification_blueprint
from tests.guarantees.support import application, issue
from tests.helpers import Platform, new_section

STRANGER_KEY = bytes.fromhex("44" * 32)


@pytest.fixture(scope="module")
def manifest_file(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("manifest") / "deployment.json"
    path.write_text(json.dumps(platform.manifest))
    return path


@pytest.fixture(scope="module")
def letters(platform: Platform) -> dict[str, Any]:
    """One genuine letter, one cancelled, one released, and forgeries of the genuine one."""
    section = new_section(platform)
    genuine = issue(platform, application(platform, section, platform.bidders[0]))
    cancelled = issue(platform, application(platform, section, platform.bidders[1]))
    lifecycle.cancel(platform.deployment, platform.guarantors[0], cancelled.number)
    released = issue(platform, application(platform, section, platform.bidders[2]))
    lifecycle.release(platform.deployment, platform.tenderer, released.number, section.section_id)
    block, unsigned = letter.read_signature(genuine.signed_pdf)
    changed = bytearray(genuine.signed_pdf)
    changed[len(changed) // 2] ^= 0x20
    return {
        "genuine": genuine,
        "cancelled": cancelled.signed_pdf,
        "released": released.signed_pdf,
        "tampered": bytes(changed),
        "forged": letter.sign_letter(unsigned, block.number, STRANGER_KEY, block.anchor_tx),
    }


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli_main(args)
    return code, capsys.readouterr().out


def test_exit_codes_are_distinct_and_zero_only_for_genuine() -> None:
    assert len(set(EXIT_CODES.values())) == len(Verdict)
    assert [v for v, code in EXIT_CODES.items() if code == 0] == [Verdict.GENUINE_IN_FORCE]
    assert 2 not in EXIT_CODES.values() and 3 not in EXIT_CODES.values()


def test_cli_verdicts(
    platform: Platform, manifest_file: Path, letters: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chain = ["--rpc-url", platform.backend.chain.rpc_url, "--deployment", str(manifest_file)]
    files = {
        "genuine": letters["genuine"].signed_pdf,
        "cancelled": letters["cancelled"],
        "released": letters["released"],
        "tampered": letters["tampered"],
        "forged": letters["forged"],
    }
    expected = {"genuine": 0, "cancelled": 13, "released": 14, "tampered": 10, "forged": 12}
    for name, data in files.items():
        path = tmp_path / f"{name}.pdf"
        path.write_bytes(data)
        code, out = _cli(["verify", str(path), "--json", *chain], capsys)
        assert code == expected[name], (name, out)
        answer = json.loads(out)
        assert EXIT_CODES[Verdict(answer["verdict"])] == code
    code, out = _cli(["verify", str(tmp_path / "genuine.pdf"), *chain], capsys)
    assert code == 0 and out.startswith("genuine_in_force: 真实有效") and letters["genuine"].tx_hash in out
    code, out = _cli(["verify", "--number", "JZBH-NO-SUCH-NUMBER", "--json", *chain], capsys)
    assert code == 11 and json.loads(out)["verdict"] == "unknown"
    url = lifecycle.verify_url("https://jz.example.cn", letters["genuine"].number)
    assert _cli(["verify", "--qr", url, *chain], capsys)[0] == 0


def test_cli_bad_input(
    platform: Platform, manifest_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chain = ["--rpc-url", platform.backend.chain.rpc_url, "--deployment", str(manifest_file)]
    text = tmp_path / "note.pdf"
    text.write_text("not a pdf at all")
    huge = tmp_path / "huge.pdf"
    with huge.open("wb") as handle:  # 100 MB, sparse: refused from its size, never read
        handle.truncate(100 * 1024 * 1024)
    assert _cli(["verify", str(text), *chain], capsys)[0] == 2
    code, out = _cli(["verify", str(huge), "--json", *chain], capsys)
    assert code == 2 and "too large" in json.loads(out)["error"]
    assert _cli(["verify", str(tmp_path / "missing.pdf"), *chain], capsys)[0] == 2
    assert _cli(["verify", "--number", "bad number!", *chain], capsys)[0] == 2
    assert _cli(["verify", *chain], capsys)[0] == 2
    assert _cli(["verify", str(text), "--deployment", str(tmp_path / "none.json")], capsys)[0] == 3
    unreachable = ["--rpc-url", "http://127.0.0.1:9", "--deployment", str(manifest_file)]
    assert _cli(["verify", "--number", "JZBH-1234", *unreachable], capsys)[0] == 3


def test_module_entry_point(platform: Platform, manifest_file: Path, letters: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "letter.pdf"
    path.write_bytes(letters["genuine"].signed_pdf)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "guarantees",
            "verify",
            str(path),
            "--rpc-url",
            platform.backend.chain.rpc_url,
            "--deployment",
            str(manifest_file),
            "--no-proof",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("genuine_in_force")


@pytest.fixture(scope="module")
def client(platform: Platform) -> Any:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 8 * 1024 * 1024
    app.register_blueprint(verification_blueprint(platform.deployment))
    return app.test_client()


class _CountingStream(io.RawIOBase):
    """A request body that records how much of it was read."""

    def __init__(self, size: int) -> None:
        self.size, self.read_bytes, self.position = size, 0, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = {0: offset, 1: self.position + offset, 2: self.size + offset}[whence]
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer: Any) -> int:
        count = max(0, min(len(buffer), self.size - self.position))
        buffer[:count] = b"%" * count
        self.read_bytes += count
        self.position += count
        return count


def test_public_page_and_api(platform: Platform, client: Any, letters: dict[str, Any]) -> None:
    genuine = letters["genuine"]
    page = client.get("/guarantees/verify")
    assert page.status_code == 200 and "电子投标保函真伪验证" in page.get_data(as_text=True)
    by_number = client.get(f"/guarantees/verify?number={genuine.number}")
    assert 'data-verdict="genuine_in_force"' in by_number.get_data(as_text=True)
    assert genuine.tx_hash in by_number.get_data(as_text=True)
    uploaded = client.post(
        "/guarantees/verify",
        data={"file": (io.BytesIO(letters["tampered"]), "letter.pdf")},
        content_type="multipart/form-data",
    )
    assert 'data-verdict="tampered"' in uploaded.get_data(as_text=True)
    answer = client.post("/api/guarantees/verify", data={"file": (io.BytesIO(genuine.signed_pdf), "l.pdf")})
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["verdict"] == "genuine_in_force" and body["evidence"]["tx_hash"] == genuine.tx_hash
    raw = client.post("/api/guarantees/verify", data=letters["forged"], content_type="application/pdf")
    assert raw.get_json()["verdict"] == "not_guarantor"
    assert client.get(f"/api/guarantees/{genuine.number}").get_json()["verdict"] == "genuine_in_force"
    unknown = client.get("/api/guarantees/JZBH-UNKNOWN-1")
    assert unknown.status_code == 404 and unknown.get_json()["verdict"] == "unknown"
    escaped = client.get("/guarantees/verify?number=<script>alert(1)</script>")
    assert escaped.status_code == 400 and "<script>" not in escaped.get_data(as_text=True)


def test_api_bad_input(client: Any) -> None:
    not_pdf = client.post("/api/guarantees/verify", data=b"GIF89a...", content_type="application/pdf")
    assert not_pdf.status_code == 400 and not_pdf.get_json()["code"] == "not_a_letter"
    empty = client.post("/api/guarantees/verify", data={}, content_type="multipart/form-data")
    assert empty.status_code == 400
    assert client.get("/api/guarantees/bad%20number").status_code == 400
    stream = _CountingStream(100 * 1024 * 1024)
    huge = client.post(
        "/api/guarantees/verify",
        input_stream=stream,
        headers={"Content-Length": str(stream.size), "Content-Type": "application/pdf"},
    )
    assert huge.status_code == 413 and stream.read_bytes == 0
    page = client.post(
        "/guarantees/verify",
        input_stream=_CountingStream(100 * 1024 * 1024),
        headers={"Content-Length": str(100 * 1024 * 1024), "Content-Type": "multipart/form-data; boundary=x"},
    )
    assert page.status_code == 413 and "文件过大" in page.get_data(as_text=True)


class _Recorder:
    def __init__(self) -> None:
        self.messages: list[tuple[str, integration.Message]] = []

    def handle(self, guarantor: str, message: integration.Message) -> dict[str, Any]:
        self.messages.append((guarantor, message))
        return {"number": message.number}


def test_guarantor_api(platform: Platform, letters: dict[str, Any], tmp_path: Path) -> None:
    recorder = _Recorder()
    store = integration.SqlNonceStore(create_engine(f"sqlite:///{tmp_path / 'nonces.db'}"))
    app = Flask(__name__)
    app.register_blueprint(guarantor_blueprint(platform.deployment, store, recorder))
    client = app.test_client()
    key = bytes(platform.guarantors[0].account.key)

    def post(kind: str, payload: dict[str, Any], signing_key: bytes = key, **options: Any) -> Any:
        path = f"/api/guarantor/v1/{kind}"
        body = json.dumps(payload).encode()
        headers = integration.sign_request(signing_key, "POST", path, body, int(options.get("at") or time.time()))
        response = client.post(path, data=body, headers=headers, content_type="application/json")
        if options.get("replay"):
            response = client.post(path, data=body, headers=headers, content_type="application/json")
        return response

    result = {"number": "JZBH-1", "approved": True, "underwriter": "张", "reasons": [], "premium_fen": 120_000}
    accepted = post("underwriting-results", result)
    assert accepted.status_code == 200 and accepted.get_json()["guarantor"] == platform.guarantors[0].address
    assert post("underwriting-results", result, replay=True).status_code == 409
    assert post("underwriting-results", result, at=1_000_000).status_code == 401
    assert post("underwriting-results", result, signing_key=STRANGER_KEY).status_code == 403
    assert post("underwriting-results", {"number": "JZBH-1"}).status_code == 400
    assert post("no-such-kind", result).status_code == 404
    genuine = letters["genuine"]
    letter_payload = {"number": genuine.number, "pdf_base64": base64.b64encode(genuine.signed_pdf).decode()}
    assert post("letters", letter_payload).status_code == 200
    # A letter is refused when tampered, or when pushed by another guarantor than its signer.
    tampered = {"number": genuine.number, "pdf_base64": base64.b64encode(letters["tampered"]).decode()}
    assert post("letters", tampered).status_code == 422
    other = bytes(platform.guarantors[1].account.key)
    assert post("letters", letter_payload, signing_key=other).status_code == 422
    assert [type(m).__name__ for _, m in recorder.messages] == [
        "UnderwritingResultMessage",
        "UnderwritingResultMessage",  # the first sending of the replayed request
        "LetterMessage",
    ]


def test_bad_input_leaves_the_registry_untouched(platform: Platform, client: Any, letters: dict[str, Any]) -> None:
    w3 = platform.backend.chain.w3
    accounts = [m.signer.address for m in platform.config.members]
    genuine = letters["genuine"]

    def snapshot() -> tuple[Any, ...]:
        nonces = tuple(int(w3.eth.get_transaction_count(a)) for a in accounts)  # type: ignore[arg-type]
        return nonces, platform.guarantees.guarantee(genuine.guarantee_id)

    before = snapshot()
    for data in (letters["tampered"], letters["forged"], b"not a pdf", b"%PDF-1.7\n" + b"\x00" * 1000):
        client.post("/api/guarantees/verify", data=data, content_type="application/pdf")
    client.get("/api/guarantees/JZBH-UNKNOWN-2")
    stream = _CountingStream(100 * 1024 * 1024)
    client.post(
        "/api/guarantees/verify",
        input_stream=stream,
        headers={"Content-Length": str(stream.size), "Content-Type": "application/pdf"},
    )
    assert snapshot() == before
    assert client.get(f"/api/guarantees/{genuine.number}").get_json()["verdict"] == "genuine_in_force"
