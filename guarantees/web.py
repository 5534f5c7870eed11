"""Flask blueprints: the public verification page and API, and the guarantor integration API.

The platform registers them on its app (`app.register_blueprint(verification_blueprint(deployment))`).
Both are made by functions that take the chain deployment, so the blueprints hold no global state.

Public (no login): `GET /guarantees/verify` (page: upload a letter or type a number; the letters' QR
codes point here with `?number=`), `POST /guarantees/verify` (the page's form), `POST
/api/guarantees/verify` (a PDF as multipart field `file` or as the raw body) and `GET
/api/guarantees/<number>`, both answering JSON with the verdict and the on-chain evidence. Uploads
above `MAX_LETTER_BYTES` are refused from their Content-Length, before any byte is read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Protocol

from flask import Blueprint, Response, jsonify, render_template_string, request

from contracts.client import Deployment
from contracts.errors import ContractRevert, TransactionFailed
from contracts.records import Role
from guarantees import integration
from guarantees.errors import LetterError, LetterTooLarge
from guarantees.letter import MAX_LETTER_BYTES
from guarantees.records import Verdict, VerificationResult
from guarantees.verify import BadNumber, verify_letter, verify_number

_PAGE = """<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>电子投标保函真伪验证</title>
<style>
body{font-family:sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}
form{border:1px solid #ccc;padding:1rem;margin:1rem 0;border-radius:4px}
.verdict{padding:1rem;border-radius:4px;margin:1rem 0}
.ok{background:#e6f4ea;border:1px solid #34a853}.bad{background:#fce8e6;border:1px solid #d93025}
dt{font-weight:bold;margin-top:.4rem}code{word-break:break-all}
</style></head>
<body>
<h1>电子投标保函真伪验证</h1>
<p>上传保函 PDF 文件，或输入保函编号（扫描保函二维码将直接打开本页）。验证结果依据见证联盟链上的存证。</p>
<form method="post" enctype="multipart/form-data" action="{{ action }}">
  <label>保函文件（PDF）：<input type="file" name="file" accept="application/pdf"></label>
  <button type="submit">验证文件</button>
</form>
<form method="get" action="{{ action }}">
  <label>保函编号：<input type="text" name="number" value="{{ number }}" maxlength="64"></label>
  <button type="submit">查询编号</button>
</form>
{% if error %}<div class="verdict bad" role="alert"><strong>无法验证：</strong>{{ error }}</div>{% endif %}
{% if result %}
<div class="verdict {{ 'ok' if result.verdict.value == 'genuine_in_force' else 'bad' }}" role="status">
  <strong id="verdict" data-verdict="{{ result.verdict.value }}">{{ result.text }}</strong>
  <dl>
    <dt>保函编号</dt><dd>{{ result.number or '—' }}</dd>
    <dt>说明</dt><dd>{{ result.reason }}</dd>
    {% if result.amount %}<dt>担保金额</dt><dd>{{ amount }}</dd>{% endif %}
    {% if result.issuer %}<dt>签发担保机构账户</dt><dd><code>{{ result.issuer }}</code></dd>{% endif %}
    {% if result.letter_hash %}<dt>文件哈希（SHA-256）</dt><dd><code>{{ result.letter_hash }}</code></dd>{% endif %}
    {% if result.evidence %}
    <dt>链上存证</dt><dd>交易 <code>{{ result.evidence.tx_hash }}</code><br>
      区块 {{ result.evidence.block_number }}（<code>{{ result.evidence.block_hash }}</code>）
      {% if result.evidence.proof %}<br>已附共识节点签名的存证证明（jz_getProof）{% endif %}</dd>
    {% endif %}
  </dl>
</div>
{% endif %}
</body></html>
"""


def _error(message: str, code: str, status: int) -> tuple[Response, int]:
    return jsonify({"error": message, "code": code}), status


def _amount(fen: int) -> str:
    from guarantees.numerals import amount_in_capitals, amount_in_figures

    return f"人民币{amount_in_capitals(fen)}（{amount_in_figures(fen)}）"


def _upload_too_large() -> bool:
    length = request.content_length
    return length is not None and length > MAX_LETTER_BYTES + 64 * 1024


def _read_upload() -> bytes:
    """The uploaded PDF (multipart `file` or raw body); LetterError if there is none or it is too large."""
    if _upload_too_large():
        raise LetterTooLarge(f"uploads are limited to {MAX_LETTER_BYTES} bytes")
    request.max_content_length = MAX_LETTER_BYTES + 64 * 1024
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            raise LetterError("no file uploaded (multipart field 'file')")
        data = upload.stream.read(MAX_LETTER_BYTES + 1)
    else:
        data = request.get_data(cache=False)
    if len(data) > MAX_LETTER_BYTES:
        raise LetterTooLarge(f"uploads are limited to {MAX_LETTER_BYTES} bytes")
    if not data:
        raise LetterError("the upload is empty")
    return data


def verification_blueprint(deployment: Deployment, *, with_proof: bool = True) -> Blueprint:
    """The public verification page and JSON API, bound to a deployment."""
    blueprint = Blueprint("guarantee_verification", __name__)

    def page(result: VerificationResult | None = None, error: str = "", number: str = "", status: int = 200) -> Any:
        html = render_template_string(
            _PAGE,
            action=request.path if request.path.endswith("/verify") else "/guarantees/verify",
            result=result,
            error=error,
            number=number,
            amount=_amount(result.amount) if result and result.amount else "",
        )
        return html, status

    @blueprint.get("/guarantees/verify")
    def verify_page() -> Any:
        number = request.args.get("number", "").strip()
        if not number:
            return page()
        try:
            return page(verify_number(deployment, number, with_proof=with_proof), number=number)
        except BadNumber as error:
            return page(error=f"保函编号格式不正确：{error}", number=number[:64], status=400)
        except (OSError, TransactionFailed, ContractRevert) as error:
            return page(error=f"暂时无法连接联盟链：{error}", status=502)

    @blueprint.post("/guarantees/verify")
    def verify_upload_page() -> Any:
        try:
            return page(verify_letter(deployment, _read_upload(), with_proof=with_proof))
        except LetterTooLarge:
            return page(error=f"文件过大：保函文件不超过 {MAX_LETTER_BYTES // 1024 // 1024} MB", status=413)
        except LetterError as error:
            return page(error=f"不是有效的保函 PDF 文件：{error}", status=400)
        except (OSError, TransactionFailed, ContractRevert) as error:
            return page(error=f"暂时无法连接联盟链：{error}", status=502)

    @blueprint.post("/api/guarantees/verify")
    def verify_upload_api() -> Any:
        try:
            result = verify_letter(deployment, _read_upload(), with_proof=with_proof)
        except LetterTooLarge as error:
            return _error(str(error), "too_large", 413)
        except LetterError as error:
            return _error(str(error), "not_a_letter", 400)
        except (OSError, TransactionFailed, ContractRevert) as error:
            return _error(f"chain unavailable: {error}", "chain_unavailable", 502)
        return jsonify(result.to_json())

    @blueprint.get("/api/guarantees/<path:number>")
    def verify_number_api(number: str) -> Any:
        try:
            result = verify_number(deployment, number, with_proof=with_proof)
        except BadNumber as error:
            return _error(str(error), "bad_number", 400)
        except (OSError, TransactionFailed, ContractRevert) as error:
            return _error(f"chain unavailable: {error}", "chain_unavailable", 502)
        return jsonify(result.to_json()), 200 if result.verdict is not Verdict.UNKNOWN else 404

    return blueprint


class GuarantorHandler(Protocol):
    """What the platform does with each authenticated message from a guarantor (its database, later)."""

    def handle(self, guarantor: str, message: integration.Message) -> dict[str, Any]:
        """Act on the message; the JSON acknowledgement to send back."""
        ...


class ApplicationSource(Protocol):
    """Where a guarantor's system pulls the applications addressed to it from (the platform's database)."""

    def applications(self, guarantor: str) -> list[dict[str, Any]]:
        """The guarantor's open applications, as `integration.ApplicationMessage` JSON (sealed: no tender)."""
        ...


def guarantor_blueprint(
    deployment: Deployment,
    nonces: integration.NonceStore,
    handler: GuarantorHandler,
    *,
    clock: Callable[[], float] = time.time,
    source: ApplicationSource | None = None,
) -> Blueprint:
    """`POST /api/guarantor/v1/<kind>` for kind in underwriting-results, premiums, letters, releases,
    payouts; with a `source`, also `GET /api/guarantor/v1/applications` (signed, empty body).

    Every request is authenticated (`integration.authenticate`); a letter is accepted only if it
    verifies as genuine and in force and was signed by the sending guarantor. A handler refuses a
    step with an `integration.IntegrationError` (answered with its status and class name as code).
    """
    blueprint = Blueprint("guarantor_api", __name__)

    def is_guarantor(account: str) -> bool:
        return deployment.consortium.has_role(account, Role.GUARANTOR)

    if source is not None:
        pulling = source

        @blueprint.get("/api/guarantor/v1/applications")
        def pull() -> Any:
            if (request.content_length or 0) > integration.MAX_BODY_BYTES:
                return _error("a pull request has an empty body", "too_large", 413)
            try:
                guarantor = integration.authenticate(
                    request.method,
                    request.path,
                    {name: request.headers.get(name, "") for name in integration.HEADERS if name in request.headers},
                    request.get_data(cache=False),
                    now=int(clock()),
                    nonces=nonces,
                    is_guarantor=is_guarantor,
                )
            except integration.IntegrationError as error:
                return _error(str(error), type(error).__name__, error.status)
            return jsonify({"guarantor": guarantor, "applications": pulling.applications(guarantor)})

    @blueprint.post("/api/guarantor/v1/<kind>")
    def receive(kind: str) -> Any:
        parser = integration.PARSERS.get(kind)
        if parser is None:
            return _error(f"unknown message kind {kind!r}", "unknown_kind", 404)
        length = request.content_length
        if length is None or length > integration.MAX_BODY_BYTES:
            return _error("a Content-Length of at most 4 MB is required", "too_large", 413)
        body = request.get_data(cache=False)
        try:
            guarantor = integration.authenticate(
                request.method,
                request.path,
                {name: request.headers.get(name, "") for name in integration.HEADERS if name in request.headers},
                body,
                now=int(clock()),
                nonces=nonces,
                is_guarantor=is_guarantor,
            )
            try:
                payload = json.loads(body)
            except ValueError:
                raise integration.MalformedRequest("the body is not JSON") from None
            if not isinstance(payload, dict):
                raise integration.MalformedRequest("the body must be a JSON object")
            message = parser(payload)
            if isinstance(message, integration.LetterMessage):
                result = verify_letter(deployment, message.pdf, with_proof=False)
                if result.verdict is not Verdict.GENUINE_IN_FORCE or result.signer != guarantor:
                    return _error(f"letter refused: {result.verdict.value} ({result.reason})", "letter_refused", 422)
            answer = handler.handle(guarantor, message)
        except integration.IntegrationError as error:
            return _error(str(error), type(error).__name__, error.status)
        except LetterError as error:
            return _error(f"letter refused: {error}", "letter_refused", 422)
        return jsonify({"accepted": True, "guarantor": guarantor, **answer})

    return blueprint
