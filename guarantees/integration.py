"""Guarantor integration API: how a bank's or insurer's own system talks to the trading platform.

As guarantors connect to trading centres today, each side posts JSON over HTTPS; here every request
is also signed with the sender's consortium key (secp256k1 ECDSA, low-S, DER), so the platform knows
which guarantor sent it without shared secrets, and a captured request cannot be replayed:

    canonical = "JZ-GUARANTOR-API-V1\\n" + METHOD + "\\n" + PATH + "\\n" + TIMESTAMP + "\\n" + NONCE
                + "\\n" + hex(sha256(body))
    signature = ECDSA-secp256k1(sha256(canonical))

sent in the headers `X-JZ-Account`, `X-JZ-Timestamp` (unix seconds), `X-JZ-Nonce` (16-64 characters
of [A-Za-z0-9_-]), `X-JZ-Public-Key` (compressed, hex) and `X-JZ-Signature` (DER, hex). The receiver
refuses a bad signature, a key that is not the account's, a timestamp more than `max_skew` seconds
away from its clock, a nonce it has seen from that account (kept in a `NonceStore`), and a sender
that is not a guarantor member.

Messages: the platform sends applications (`ApplicationMessage`; for a 密文保函 only the sealed
reference, never the tender); the guarantor pushes underwriting results, premiums received, letters, releases and
claim payouts (`UnderwritingResultMessage`, `PremiumMessage`, `LetterMessage`, `ReleaseMessage`,
`PayoutMessage`), and pulls its applications with a signed `GET` (empty body).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import coincurve
from sqlalchemy import Column, Integer, MetaData, String, Table, delete, insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from guarantees.errors import GuaranteeError
from guarantees.letter import address_of_public_key, sign_digest
from guarantees.lifecycle import NUMBER_PATTERN
from guarantees.records import GuaranteeApplication

PROTOCOL = "JZ-GUARANTOR-API-V1"
HEADERS = ("X-JZ-Account", "X-JZ-Timestamp", "X-JZ-Nonce", "X-JZ-Public-Key", "X-JZ-Signature")
NONCE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_SKEW = 300


class IntegrationError(GuaranteeError):
    """A request of the guarantor API was refused; `status` is the HTTP status to answer with."""

    status = 400


class MalformedRequest(IntegrationError):
    """Headers missing or malformed, or a body that is not the message expected."""


class BadSignature(IntegrationError):
    """The signature does not verify, or the key is not the account's."""

    status = 401


class StaleRequest(IntegrationError):
    """The timestamp is too far from the receiver's clock."""

    status = 401


class ReplayedRequest(IntegrationError):
    """This account already used this nonce."""

    status = 409


class NotAGuarantor(IntegrationError):
    """The sender is not a guarantor member of the consortium."""

    status = 403


class UnknownApplication(IntegrationError):
    """The message names a guarantee number the receiver has no application of this guarantor for."""

    status = 404


class StepRefused(IntegrationError):
    """The receiver refused the step the message reports (wrong state, terms or chain facts)."""

    status = 409


class NonceStore(Protocol):
    """Remembers the nonces each account has used, for as long as their timestamps are acceptable."""

    def use(self, account: str, nonce: str, expires_at: int) -> bool:
        """Record the nonce; False if the account has used it already."""
        ...


class SqlNonceStore:
    """A `NonceStore` in any SQLAlchemy database (the platform's, later): one row per used nonce.

    The primary key (account, nonce) makes the check and the record one atomic insert, so two
    workers receiving the same replayed request cannot both accept it.
    """

    def __init__(self, engine: Engine, table_name: str = "guarantor_api_nonces") -> None:
        self.engine = engine
        self.metadata = MetaData()
        self.table = Table(
            table_name,
            self.metadata,
            Column("account", String(42), primary_key=True),
            Column("nonce", String(64), primary_key=True),
            Column("expires_at", Integer, nullable=False, index=True),
        )
        self.metadata.create_all(engine)

    def use(self, account: str, nonce: str, expires_at: int) -> bool:
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(self.table).values(account=account, nonce=nonce, expires_at=expires_at))
        except IntegrityError:
            return False
        return True

    def purge(self, now: int) -> int:
        """Forget nonces whose timestamps are too old to be accepted anyway; how many were removed."""
        with self.engine.begin() as connection:
            return int(connection.execute(delete(self.table).where(self.table.c.expires_at < now)).rowcount)


def canonical_request(method: str, path: str, timestamp: int, nonce: str, body: bytes) -> bytes:
    """The bytes whose SHA-256 is signed: method, path, time, nonce and the body's hash."""
    return "\n".join((PROTOCOL, method.upper(), path, str(timestamp), nonce, hashlib.sha256(body).hexdigest())).encode(
        "utf-8"
    )


def sign_request(
    private_key: bytes, method: str, path: str, body: bytes, now: int, nonce: str | None = None
) -> dict[str, str]:
    """The headers that authenticate a request (the client side, as a guarantor's system sends it)."""
    chosen = nonce or secrets.token_urlsafe(24)
    digest = hashlib.sha256(canonical_request(method, path, now, chosen, body)).digest()
    signature, public_key = sign_digest(private_key, digest)
    return {
        "X-JZ-Account": address_of_public_key(public_key),
        "X-JZ-Timestamp": str(now),
        "X-JZ-Nonce": chosen,
        "X-JZ-Public-Key": public_key.hex(),
        "X-JZ-Signature": signature.hex(),
    }


def authenticate(
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: int,
    nonces: NonceStore,
    is_guarantor: Callable[[str], bool],
    max_skew: int = DEFAULT_MAX_SKEW,
) -> str:
    """The account that signed the request; a named IntegrationError for anything else.

    Checks run cheapest first; the nonce is recorded only for a request that passed every other check,
    so a forged request cannot burn a genuine sender's nonce.
    """
    if len(body) > MAX_BODY_BYTES:
        raise MalformedRequest(f"body over {MAX_BODY_BYTES} bytes")
    try:
        values = {name: headers[name] for name in HEADERS}
    except KeyError as missing:
        raise MalformedRequest(f"header {missing.args[0]} is missing") from None
    try:
        timestamp = int(values["X-JZ-Timestamp"])
        public_key = bytes.fromhex(values["X-JZ-Public-Key"])
        signature = bytes.fromhex(values["X-JZ-Signature"])
    except ValueError:
        raise MalformedRequest("X-JZ-Timestamp, X-JZ-Public-Key or X-JZ-Signature is malformed") from None
    nonce = values["X-JZ-Nonce"]
    if not NONCE_PATTERN.match(nonce):
        raise MalformedRequest("X-JZ-Nonce must be 16-64 characters of [A-Za-z0-9_-]")
    if abs(now - timestamp) > max_skew:
        raise StaleRequest(f"timestamp {timestamp} is more than {max_skew} s from now ({now})")
    digest = hashlib.sha256(canonical_request(method, path, timestamp, nonce, body)).digest()
    try:
        key = coincurve.PublicKey(public_key)
        valid = key.verify(signature, digest, hasher=None)
    except (ValueError, TypeError):
        valid = False
    if not valid:
        raise BadSignature("the signature does not verify for this request")
    account = address_of_public_key(public_key)
    if account.lower() != values["X-JZ-Account"].lower():
        raise BadSignature("the public key is not the key of X-JZ-Account")
    if not is_guarantor(account):
        raise NotAGuarantor(f"{account} is not a guarantor member")
    if not nonces.use(account, nonce, timestamp + max_skew):
        raise ReplayedRequest(f"nonce {nonce} was already used by {account}")
    return account


# ------------------------------------------------------------------ messages


def _field(payload: Mapping[str, Any], name: str, kind: type, *, optional: bool = False) -> Any:
    value = payload.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise MalformedRequest(f"field {name!r} must be a {kind.__name__}")
    return value


def _number(payload: Mapping[str, Any]) -> str:
    number = _field(payload, "number", str)
    if not NUMBER_PATTERN.match(number):
        raise MalformedRequest(f"field 'number' is not a guarantee number: {number[:70]!r}")
    return str(number)


def _hex32(payload: Mapping[str, Any], name: str) -> str:
    value = _field(payload, name, str)
    if not re.fullmatch(r"0x[0-9a-fA-F]{64}", value):
        raise MalformedRequest(f"field {name!r} must be 0x and 64 hex digits")
    return str(value).lower()


@dataclass(frozen=True)
class ApplicationMessage:
    """Platform → guarantor: an application to underwrite. Sealed: no tender, only the reference."""

    number: str
    applicant_name: str
    applicant_identifier: str
    applicant_account: str
    beneficiary_name: str
    beneficiary_account: str
    amount: int
    valid_until: int
    section_ref: str
    sealed: bool
    project_name: str | None  # None for a 密文保函

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def application_message(application: GuaranteeApplication, section_ref: bytes) -> ApplicationMessage:
    return ApplicationMessage(
        number=application.number,
        applicant_name=application.applicant.name,
        applicant_identifier=application.applicant.identifier,
        applicant_account=application.applicant.account,
        beneficiary_name=application.beneficiary.name,
        beneficiary_account=application.beneficiary.account,
        amount=application.amount,
        valid_until=application.valid_until,
        section_ref="0x" + section_ref.hex(),
        sealed=application.sealed,
        project_name=None if application.sealed else application.project_name,
    )


@dataclass(frozen=True)
class UnderwritingResultMessage:
    number: str
    approved: bool
    underwriter: str
    reasons: tuple[str, ...]
    premium_fen: int


@dataclass(frozen=True)
class PremiumMessage:
    """The premium received: amount, the account it came from and the payment reference."""

    number: str
    paid_fen: int
    payer_account: str
    payment_ref: str


@dataclass(frozen=True)
class LetterMessage:
    number: str
    pdf: bytes


@dataclass(frozen=True)
class ReleaseMessage:
    number: str
    section_id: str
    tx_hash: str


@dataclass(frozen=True)
class PayoutMessage:
    number: str
    paid_fen: int
    payment_ref: str
    tx_hash: str


Message = UnderwritingResultMessage | PremiumMessage | LetterMessage | ReleaseMessage | PayoutMessage


def parse_underwriting_result(payload: Mapping[str, Any]) -> UnderwritingResultMessage:
    reasons = _field(payload, "reasons", list)
    if not all(isinstance(r, str) and len(r) <= 500 for r in reasons):
        raise MalformedRequest("field 'reasons' must be a list of short strings")
    premium = _field(payload, "premium_fen", int)
    if premium < 0:
        raise MalformedRequest("field 'premium_fen' must not be negative")
    return UnderwritingResultMessage(
        _number(payload),
        _field(payload, "approved", bool),
        _field(payload, "underwriter", str),
        tuple(reasons),
        premium,
    )


def parse_premium(payload: Mapping[str, Any]) -> PremiumMessage:
    paid = _field(payload, "paid_fen", int)
    if paid <= 0:
        raise MalformedRequest("field 'paid_fen' must be positive")
    account, reference = _field(payload, "payer_account", str), _field(payload, "payment_ref", str)
    if not 1 <= len(account) <= 34 or not 1 <= len(reference) <= 64:
        raise MalformedRequest("fields 'payer_account' (1-34) and 'payment_ref' (1-64 characters) are required")
    return PremiumMessage(_number(payload), paid, account, reference)


def parse_letter(payload: Mapping[str, Any]) -> LetterMessage:
    encoded = _field(payload, "pdf_base64", str)
    try:
        pdf = base64.b64decode(encoded, validate=True)
    except ValueError:
        raise MalformedRequest("field 'pdf_base64' is not base64") from None
    return LetterMessage(_number(payload), pdf)


def parse_release(payload: Mapping[str, Any]) -> ReleaseMessage:
    return ReleaseMessage(_number(payload), _hex32(payload, "section_id"), _hex32(payload, "tx_hash"))


def parse_payout(payload: Mapping[str, Any]) -> PayoutMessage:
    paid = _field(payload, "paid_fen", int)
    if paid <= 0:
        raise MalformedRequest("field 'paid_fen' must be positive")
    reference = _field(payload, "payment_ref", str)
    if not 1 <= len(reference) <= 64:
        raise MalformedRequest("field 'payment_ref' must be 1-64 characters")
    return PayoutMessage(_number(payload), paid, reference, _hex32(payload, "tx_hash"))


PARSERS: dict[str, Callable[[Mapping[str, Any]], Message]] = {
    "underwriting-results": parse_underwriting_result,
    "premiums": parse_premium,
    "letters": parse_letter,
    "releases": parse_release,
    "payouts": parse_payout,
}
