"""The guarantor integration API's message signing: accepted once, refused when forged, stale or replayed."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from contracts.client import Signer
from guarantees import integration
from guarantees.records import GuaranteeApplication, Party

GUARANTOR_KEY = bytes.fromhex("47c99abed3324a2707c28affff1267e45918ec8c3f20b8aa892e8b065d2942dd")
GUARANTOR = Signer.from_key(GUARANTOR_KEY).address
STRANGER_KEY = bytes.fromhex("33" * 32)
PATH = "/api/guarantor/v1/underwriting-results"
NOW = 1_790_000_000
BODY = json.dumps(
    {"number": "JZBH-1", "approved": True, "underwriter": "张审核", "reasons": [], "premium_fen": 120_000},
    ensure_ascii=False,
).encode()


@pytest.fixture
def store(tmp_path: Path) -> integration.SqlNonceStore:
    return integration.SqlNonceStore(create_engine(f"sqlite:///{tmp_path / 'nonces.db'}"))


def _check(store: integration.NonceStore, headers: dict[str, str], body: bytes = BODY, now: int = NOW) -> str:
    return integration.authenticate(
        "POST", PATH, headers, body, now=now, nonces=store, is_guarantor=lambda account: account == GUARANTOR
    )


def test_signed_request_is_accepted_once(store: integration.SqlNonceStore) -> None:
    headers = integration.sign_request(GUARANTOR_KEY, "POST", PATH, BODY, NOW)
    assert headers["X-JZ-Account"] == GUARANTOR
    assert _check(store, headers) == GUARANTOR
    with pytest.raises(integration.ReplayedRequest):
        _check(store, headers, now=NOW + 5)
    fresh = integration.sign_request(GUARANTOR_KEY, "POST", PATH, BODY, NOW + 1)
    assert _check(store, fresh, now=NOW + 2) == GUARANTOR


def test_stale_or_future_timestamps(store: integration.SqlNonceStore) -> None:
    old = integration.sign_request(GUARANTOR_KEY, "POST", PATH, BODY, NOW - 301)
    with pytest.raises(integration.StaleRequest):
        _check(store, old)
    future = integration.sign_request(GUARANTOR_KEY, "POST", PATH, BODY, NOW + 301)
    with pytest.raises(integration.StaleRequest):
        _check(store, future)


def test_forgeries(store: integration.SqlNonceStore) -> None:
    headers = integration.sign_request(GUARANTOR_KEY, "POST", PATH, BODY, NOW)
    with pytest.raises(integration.BadSignature):
        _check(store, headers, body=BODY.replace(b"true", b"false"))
    with pytest.raises(integration.BadSignature):
        integration.authenticate(
            "POST", "/api/guarantor/v1/payouts", headers, BODY, now=NOW, nonces=store, is_guarantor=lambda a: True
        )
    with pytest.raises(integration.BadSignature):
        _check(store, {**headers, "X-JZ-Timestamp": str(NOW + 1)})
    stranger = integration.sign_request(STRANGER_KEY, "POST", PATH, BODY, NOW)
    with pytest.raises(integration.BadSignature):  # a stranger's signature presented as the guarantor's
        _check(store, {**stranger, "X-JZ-Account": GUARANTOR})
    with pytest.raises(integration.NotAGuarantor):
        _check(store, stranger)
    # None of the refused requests used up the genuine nonce.
    assert _check(store, headers) == GUARANTOR


@pytest.mark.parametrize(
    "change",
    [
        {"X-JZ-Nonce": "short"},
        {"X-JZ-Nonce": "x" * 65},
        {"X-JZ-Timestamp": "yesterday"},
        {"X-JZ-Signature": "zz"},
        {"X-JZ-Public-Key": "not hex"},
    ],
)
def test_malformed_headers(store: integration.SqlNonceStore, change: dict[str, str]) -> None:
    headers = {**integration.sign_request(GUARANTOR_KEY, "POST", PATH, BODY, NOW), **change}
    with pytest.raises(integration.MalformedRequest):
        _check(store, headers)


def test_missing_header(store: integration.SqlNonceStore) -> None:
    headers = integration.sign_request(GUARANTOR_KEY, "POST", PATH, BODY, NOW)
    del headers["X-JZ-Signature"]
    with pytest.raises(integration.MalformedRequest):
        _check(store, headers)


def test_nonce_store_purges_expired(store: integration.SqlNonceStore) -> None:
    assert store.use(GUARANTOR, "n" * 16, NOW)
    assert not store.use(GUARANTOR, "n" * 16, NOW)
    assert store.use("0x" + "00" * 20, "n" * 16, NOW)  # nonces are per account
    assert store.purge(NOW + 1) == 2
    assert store.use(GUARANTOR, "n" * 16, NOW + 600)


def test_message_parsers() -> None:
    result = integration.parse_underwriting_result(json.loads(BODY))
    assert result.approved and result.premium_fen == 120_000
    letter = integration.parse_letter({"number": "JZBH-1", "pdf_base64": base64.b64encode(b"%PDF-").decode()})
    assert letter.pdf == b"%PDF-"
    release = integration.parse_release(
        {"number": "JZBH-1", "section_id": "0x" + "ab" * 32, "tx_hash": "0x" + "CD" * 32}
    )
    assert release.tx_hash == "0x" + "cd" * 32
    payout = integration.parse_payout(
        {"number": "JZBH-1", "paid_fen": 5, "payment_ref": "P1", "tx_hash": "0x" + "01" * 32}
    )
    assert payout.paid_fen == 5
    for bad in (
        lambda: integration.parse_underwriting_result({"number": "JZBH-1", "approved": "yes"}),
        lambda: integration.parse_underwriting_result({**json.loads(BODY), "premium_fen": True}),
        lambda: integration.parse_letter({"number": "JZBH-1", "pdf_base64": "***"}),
        lambda: integration.parse_release({"number": "../etc", "section_id": "0x00", "tx_hash": "0x00"}),
        lambda: integration.parse_payout(
            {"number": "JZBH-1", "paid_fen": 0, "payment_ref": "P", "tx_hash": "0x" + "01" * 32}
        ),
    ):
        with pytest.raises(integration.MalformedRequest):
            bad()


def test_application_message_of_a_sealed_guarantee_hides_the_tender() -> None:
    party = Party("甲", "91350200MA00000084", "0x" + "11" * 20)
    app = GuaranteeApplication(
        "JZBH-1", party, party, party, "某项目", "一标段", b"\x01" * 32, 1, 2, 0, True, b"\x02" * 32
    )
    message = integration.application_message(app, b"\x03" * 32).to_json()
    assert message["project_name"] is None and message["section_ref"] == "0x" + "03" * 32
    assert "某项目" not in json.dumps(message, ensure_ascii=False)
