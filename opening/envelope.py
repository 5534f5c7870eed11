"""Sealed bid envelopes: the format the browser (`static/sealing.js`) and the Python bidder client share.

A bid is sealed before it leaves the bidder: AES-256-GCM under a fresh content key; the content key
wrapped to the section's opening public key (ECDH P-256 with an ephemeral key, HKDF-SHA-256,
AES-256-GCM) and optionally also to the bidder's own P-256 key. The commitment anchored on chain is
SHA-256 of the whole envelope. Layout (integers big-endian; README "Envelope format"):

    "JZSEAL" | version 1 | flags | section id (32) | opening key hash (32) | ephemeral key (65)
    | opening wrap (48) | [flags bit 0: bidder key (65) | bidder wrap (48)] | nonce (12) | ciphertext

Plaintext: u32 header length | header (JSON, UTF-8) | bid document bytes.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import secrets
import struct
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from opening.ec import ORDER, InvalidPoint, Point, base_mul, commitment_at

MAGIC = b"JZSEAL"
VERSION = 1
FLAG_BIDDER_WRAP = 0x01
PLAINTEXT_FORMAT = "jianzheng/bid/v1"
WRAP_INFO = b"jianzheng/sealed-bid/v1/wrap"
ROLE_OPENING = 1
ROLE_BIDDER = 2
_ZERO_NONCE = b"\x00" * 12
_PREFIX = 6 + 1 + 1 + 32 + 32 + 65  # up to and including the ephemeral key: the wraps' associated data
_WRAP = 48
_NONCE = 12
_TAG = 16
OPENING_KEY_VERSION = 1


class FailureCause(enum.StrEnum):
    """Why a bid did not open, and whether 电子招标投标办法 art. 31 puts it on the bidder."""

    COMMITMENT_MISMATCH = "commitment_mismatch"
    MALFORMED_ENVELOPE = "malformed_envelope"
    WRONG_SECTION = "wrong_section"
    WRONG_OPENING_KEY = "wrong_opening_key"
    KEY_WRAP_INVALID = "key_wrap_invalid"
    CIPHERTEXT_CORRUPT = "ciphertext_corrupt"
    PLAINTEXT_MALFORMED = "plaintext_malformed"
    BIDDER_MISMATCH = "bidder_mismatch"
    ENVELOPE_UNAVAILABLE = "envelope_unavailable"
    SHARES_UNAVAILABLE = "shares_unavailable"

    @property
    def bidder_caused(self) -> bool:
        """Only a lost envelope (platform) or missing decryption shares (witnesses) are not the bidder's doing."""
        return self not in (FailureCause.ENVELOPE_UNAVAILABLE, FailureCause.SHARES_UNAVAILABLE)


class BidOpeningFailed(Exception):
    """A bid could not be opened; `cause` says why and whom art. 31 blames."""

    def __init__(self, cause: FailureCause, detail: str):
        super().__init__(f"{cause.value}: {detail}")
        self.cause = cause
        self.detail = detail


class InvalidOpeningKey(ValueError):
    """Bytes that are not an opening key as anchored by `setOpeningKey`."""


class InvalidBid(ValueError):
    """A bid the bidder client refuses to seal (announced fields or document out of shape)."""


@dataclass(frozen=True)
class OpeningKey:
    """The section's opening key as anchored on chain: threshold, witness count, DKG transcript hash and
    the aggregated Feldman commitments A_0..A_{k-1} (A_0 is the public key bids are sealed to)."""

    threshold: int
    witnesses: int
    transcript_hash: bytes
    commitments: tuple[bytes, ...]  # compressed points

    @property
    def public_key(self) -> bytes:
        return self.commitments[0]

    def encode(self) -> bytes:
        return (
            bytes([OPENING_KEY_VERSION, self.threshold, self.witnesses])
            + self.transcript_hash
            + b"".join(self.commitments)
        )

    @property
    def key_hash(self) -> bytes:
        """SHA-256 of the anchored bytes: what every envelope names to say which key it was sealed to."""
        return hashlib.sha256(self.encode()).digest()

    def public_share(self, index: int) -> Point:
        """Y_index = sum_t index^t · A_t: the public counterpart of witness `index`'s secret share."""
        return commitment_at(self.commitments, index)

    @classmethod
    def decode(cls, data: bytes) -> OpeningKey:
        if len(data) < 3 + 32 + 33 or data[0] != OPENING_KEY_VERSION:
            raise InvalidOpeningKey(f"not a version {OPENING_KEY_VERSION} opening key ({len(data)} bytes)")
        threshold, witnesses = data[1], data[2]
        body = data[35:]
        if not 1 <= threshold <= witnesses or len(body) != 33 * threshold:
            raise InvalidOpeningKey(f"threshold {threshold} of {witnesses} does not fit {len(body)} commitment bytes")
        commitments = tuple(body[i : i + 33] for i in range(0, len(body), 33))
        for commitment in commitments:
            try:
                Point.decode(commitment)
            except InvalidPoint as error:
                raise InvalidOpeningKey(f"commitment: {error}") from None
        return cls(threshold, witnesses, data[3:35], commitments)


@dataclass(frozen=True)
class Envelope:
    """A parsed envelope; `header` is every byte before the ciphertext (the content's associated data)."""

    section_id: bytes
    opening_key_hash: bytes
    ephemeral_key: bytes  # uncompressed
    opening_wrap: bytes
    bidder_key: bytes | None
    bidder_wrap: bytes | None
    nonce: bytes
    header: bytes
    ciphertext: memoryview  # a view into the envelope bytes: a 1 MB bid is not copied


@dataclass(frozen=True)
class BidPlaintext:
    """What an opened envelope holds: the header's fields and the bid document."""

    section_id: bytes
    bidder: str
    announced: dict[str, Any]
    document_name: str
    document_sha256: bytes
    document: memoryview  # a view into the plaintext


def commitment_of(envelope: bytes) -> bytes:
    """The commitment anchored by `commitBid`: SHA-256 of the whole envelope."""
    return hashlib.sha256(envelope).digest()


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: one byte string per value, so its hash is reproducible."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def check_announced(announced: dict[str, Any]) -> dict[str, Any]:
    """The announced fields (唱标): `price_fen` (int ≥ 0) is required; other fields are short strings or ints."""
    if not isinstance(announced, dict):
        raise InvalidBid("announced fields must be an object")
    price = announced.get("price_fen")
    if not isinstance(price, int) or isinstance(price, bool) or price < 0:
        raise InvalidBid("announced.price_fen must be a non-negative integer (fen)")
    for name, value in announced.items():
        if not isinstance(name, str) or not name or len(name) > 64:
            raise InvalidBid(f"announced field name {name!r} must be a string of 1 to 64 characters")
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, str))
            or (isinstance(value, str) and len(value) > 1000)
        ):
            raise InvalidBid(f"announced.{name} must be an integer or a string of at most 1000 characters")
    return dict(announced)


def encode_plaintext(section_id: bytes, bidder: str, announced: dict[str, Any], document: bytes, name: str) -> bytes:
    header = {
        "format": PLAINTEXT_FORMAT,
        "section_id": "0x" + section_id.hex(),
        "bidder": bidder.lower(),
        "announced": check_announced(announced),
        "document": {"name": name, "sha256": hashlib.sha256(document).hexdigest(), "size": len(document)},
    }
    encoded = canonical_json(header)
    return struct.pack(">I", len(encoded)) + encoded + document


def decode_plaintext(plaintext: bytes) -> BidPlaintext:
    """Parse and check a decrypted bid; any fault is the bidder's (PLAINTEXT_MALFORMED)."""
    try:
        (length,) = struct.unpack_from(">I", plaintext)
        header = json.loads(plaintext[4 : 4 + length].decode("utf-8"))
        document = memoryview(plaintext)[4 + length :]
        if len(plaintext) < 4 + length or header["format"] != PLAINTEXT_FORMAT:
            raise ValueError("truncated or unknown format")
        doc = header["document"]
        digest = bytes.fromhex(doc["sha256"])
        if hashlib.sha256(document).digest() != digest or doc["size"] != len(document):
            raise ValueError("document does not match its hash or size")
        section = header["section_id"]
        return BidPlaintext(
            section_id=bytes.fromhex(section[2:] if section.startswith("0x") else section),
            bidder=str(header["bidder"]).lower(),
            announced=check_announced(header["announced"]),
            document_name=str(doc["name"]),
            document_sha256=digest,
            document=document,
        )
    except (struct.error, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError, InvalidBid) as error:
        raise BidOpeningFailed(FailureCause.PLAINTEXT_MALFORMED, str(error)) from None


def wrap_key(shared_x: bytes, section_id: bytes, role: int, ephemeral: bytes, recipient: bytes) -> bytes:
    """HKDF-SHA-256 of the ECDH x-coordinate, bound to the section, the recipient's role and both keys."""
    info = WRAP_INFO + bytes([role]) + ephemeral + recipient
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=section_id, info=info).derive(shared_x)


def seal(
    section_id: bytes,
    opening_key: bytes,
    plaintext: bytes,
    *,
    bidder_key: bytes | None = None,
) -> bytes:
    """Seal `plaintext` to the section's anchored opening key (and optionally to the bidder's own key)."""
    key = OpeningKey.decode(opening_key)
    recipient = Point.decode(key.public_key).encode(compressed=False)
    secret = secrets.randbelow(ORDER - 1) + 1
    ephemeral = base_mul(secret).encode(compressed=False)
    prefix = MAGIC + bytes([VERSION, FLAG_BIDDER_WRAP if bidder_key else 0]) + section_id + key.key_hash + ephemeral
    content_key = os.urandom(32)

    def wrap(role: int, recipient_key: bytes) -> bytes:
        shared = (Point.decode(recipient_key) * secret).x_bytes()
        kek = wrap_key(shared, section_id, role, ephemeral, recipient_key)
        return AESGCM(kek).encrypt(_ZERO_NONCE, content_key, prefix)

    header = prefix + wrap(ROLE_OPENING, recipient)
    if bidder_key:
        own = Point.decode(bidder_key).encode(compressed=False)
        header += own + wrap(ROLE_BIDDER, own)
    nonce = os.urandom(_NONCE)
    header += nonce
    return header + AESGCM(content_key).encrypt(nonce, plaintext, header)


def seal_bid(
    section_id: bytes,
    opening_key: bytes,
    bidder: str,
    announced: dict[str, Any],
    document: bytes,
    document_name: str = "bid.pdf",
    *,
    bidder_key: bytes | None = None,
) -> bytes:
    """The Python bidder client: the envelope of a bid, byte-for-byte the format `sealing.js` writes."""
    plaintext = encode_plaintext(section_id, bidder, announced, document, document_name)
    return seal(section_id, opening_key, plaintext, bidder_key=bidder_key)


def parse_envelope(data: bytes) -> Envelope:
    """Split an envelope into its fields; a wrong shape is the bidder's fault (MALFORMED_ENVELOPE)."""
    if len(data) < _PREFIX + _WRAP + _NONCE + _TAG or data[:6] != MAGIC or data[6] != VERSION:
        raise BidOpeningFailed(FailureCause.MALFORMED_ENVELOPE, "not a version 1 sealed bid")
    flags = data[7]
    if flags & ~FLAG_BIDDER_WRAP:
        raise BidOpeningFailed(FailureCause.MALFORMED_ENVELOPE, f"unknown flags {flags:#04x}")
    offset = _PREFIX + _WRAP
    bidder_key = bidder_wrap = None
    if flags & FLAG_BIDDER_WRAP:
        bidder_key, bidder_wrap = data[offset : offset + 65], data[offset + 65 : offset + 65 + _WRAP]
        offset += 65 + _WRAP
    if len(data) < offset + _NONCE + _TAG:
        raise BidOpeningFailed(FailureCause.MALFORMED_ENVELOPE, "truncated")
    return Envelope(
        section_id=data[8:40],
        opening_key_hash=data[40:72],
        ephemeral_key=data[72:_PREFIX],
        opening_wrap=data[_PREFIX : _PREFIX + _WRAP],
        bidder_key=bidder_key,
        bidder_wrap=bidder_wrap,
        nonce=data[offset : offset + _NONCE],
        header=data[: offset + _NONCE],
        ciphertext=memoryview(data)[offset + _NONCE :],
    )


def ephemeral_point(envelope: Envelope) -> Point:
    """E, the point the witnesses' decryption shares are computed on; a bad point is the bidder's fault."""
    try:
        return Point.decode(envelope.ephemeral_key)
    except InvalidPoint as error:
        raise BidOpeningFailed(FailureCause.MALFORMED_ENVELOPE, f"ephemeral key: {error}") from None


def open_with_shared_point(envelope: Envelope, shared: Point, role: int, recipient: bytes) -> bytes:
    """Unwrap the content key with the ECDH point (d·E, here combined from the witnesses' shares) and decrypt."""
    kek = wrap_key(shared.x_bytes(), envelope.section_id, role, envelope.ephemeral_key, recipient)
    wrapped = envelope.opening_wrap if role == ROLE_OPENING else envelope.bidder_wrap
    try:
        content_key = AESGCM(kek).decrypt(_ZERO_NONCE, wrapped or b"", envelope.header[:_PREFIX])
    except InvalidTag:
        raise BidOpeningFailed(FailureCause.KEY_WRAP_INVALID, "the content key does not unwrap") from None
    try:
        return AESGCM(content_key).decrypt(envelope.nonce, envelope.ciphertext, envelope.header)
    except InvalidTag:
        raise BidOpeningFailed(FailureCause.CIPHERTEXT_CORRUPT, "the content fails authentication") from None


def open_as_bidder(data: bytes, bidder_secret: int) -> BidPlaintext:
    """The bidder decrypts its own envelope with its own key (only if it sealed with `bidder_key`)."""
    envelope = parse_envelope(data)
    if envelope.bidder_key is None:
        raise BidOpeningFailed(FailureCause.KEY_WRAP_INVALID, "sealed without a wrap for the bidder")
    shared = ephemeral_point(envelope) * bidder_secret
    return decode_plaintext(open_with_shared_point(envelope, shared, ROLE_BIDDER, envelope.bidder_key))
