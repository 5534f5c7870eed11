"""QBFT messages: frozen records, their RLP encoding and their signatures.

Wire format (RLP, canonical: decoding re-checks that nothing could be encoded two ways):

    message    = [signed, payload, [signed ROUND-CHANGE ...], [signed PREPARE ...]]
    signed     = [body, signature65]
    body       = [0, height, round, digest]                      PROPOSAL
               | [1, height, round, digest]                      PREPARE
               | [2, height, round, digest, commit_seal65]       COMMIT
               | [3, height, round, []]                          ROUND-CHANGE, nothing prepared
               | [3, height, round, [prepared_round, digest]]    ROUND-CHANGE with a prepared certificate

The signature covers only the body: keccak(b"jianzheng qbft message" + rlp(body)). The attachments (payload and
justifications) are checked on their own merits (the payload against the signed digest, each justification
entry by its own signature), which lets a proposer forward round-changes and prepares it received unchanged.

    PROPOSAL     payload = the proposed block; round > 0: the quorum of ROUND-CHANGEs for that round and, if one
                 of them carries a prepared certificate, the PREPAREs of the highest one
    ROUND-CHANGE payload = the prepared block (if any); prepares = the certificate's quorum of PREPAREs
    PREPARE, COMMIT  no attachments
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from chain_node.consensus.crypto import DIGEST_LENGTH, SIGNATURE_LENGTH, keccak, recover, sign
from chain_node.trie import RlpItem, int_to_rlp_bytes, rlp_decode, rlp_encode

MESSAGE_DOMAIN = b"jianzheng qbft message"
MAX_INT_BYTES = 8
"""Heights and rounds are at most 8 bytes: larger values are malformed, not merely far in the future."""
MAX_JUSTIFICATION = 1024
"""Upper bound on entries of one justification list, whatever the validator set size: bounds decoding work."""


class MessageCode(enum.IntEnum):
    PROPOSAL = 0
    PREPARE = 1
    COMMIT = 2
    ROUND_CHANGE = 3


class MessageError(Exception):
    """Base of the errors raised while reading a message; the core counts and drops, never re-raises."""


class DecodeError(MessageError):
    """Not a canonical encoding of a well-formed message."""


@dataclass(frozen=True)
class Proposal:
    height: int
    round: int
    digest: bytes


@dataclass(frozen=True)
class Prepare:
    height: int
    round: int
    digest: bytes


@dataclass(frozen=True)
class Commit:
    height: int
    round: int
    digest: bytes
    seal: bytes
    """The sender's signature over `commit_seal_digest(digest)`: what ends up in the block."""


@dataclass(frozen=True)
class RoundChange:
    height: int
    round: int
    """The round the sender moves to (always >= 1)."""
    prepared_round: int | None = None
    prepared_digest: bytes | None = None


Body = Proposal | Prepare | Commit | RoundChange
B = TypeVar("B", bound=Body)


@dataclass(frozen=True)
class Signed(Generic[B]):
    """A body with its sender's signature; `signing_hash` is what was signed."""

    body: B
    signature: bytes
    signing_hash: bytes

    def signer(self) -> bytes | None:
        """The sender's address, or None for an unrecoverable signature (recovery is memoised)."""
        return recover(self.signing_hash, self.signature)


@dataclass(frozen=True)
class Message:
    """What travels between validators: one signed body plus its unsigned attachments."""

    signed: Signed[Any]
    payload: bytes = b""
    round_changes: tuple[Signed[RoundChange], ...] = ()
    prepares: tuple[Signed[Prepare], ...] = ()

    @property
    def body(self) -> Body:
        body: Body = self.signed.body
        return body

    @property
    def code(self) -> MessageCode:
        return message_code(self.body)


def message_code(body: Body) -> MessageCode:
    if isinstance(body, Proposal):
        return MessageCode.PROPOSAL
    if isinstance(body, Prepare):
        return MessageCode.PREPARE
    if isinstance(body, Commit):
        return MessageCode.COMMIT
    return MessageCode.ROUND_CHANGE


def _body_fields(body: Body) -> list[RlpItem]:
    head: list[RlpItem] = [
        int_to_rlp_bytes(int(message_code(body))),
        int_to_rlp_bytes(body.height),
        int_to_rlp_bytes(body.round),
    ]
    if isinstance(body, Proposal | Prepare):
        return [*head, body.digest]
    if isinstance(body, Commit):
        return [*head, body.digest, body.seal]
    prepared: list[RlpItem] = []
    if body.prepared_round is not None and body.prepared_digest is not None:
        prepared = [int_to_rlp_bytes(body.prepared_round), body.prepared_digest]
    return [*head, prepared]


def signing_hash(body: Body) -> bytes:
    """The digest a sender signs: domain-separated from commit seals and from Ethereum transactions."""
    return keccak(MESSAGE_DOMAIN + rlp_encode(_body_fields(body)))


def sign_body(private_key: bytes, body: B) -> Signed[B]:
    digest = signing_hash(body)
    return Signed(body, sign(private_key, digest), digest)


def encode_message(message: Message) -> bytes:
    return rlp_encode(
        [
            _signed_fields(message.signed),
            message.payload,
            [_signed_fields(s) for s in message.round_changes],
            [_signed_fields(s) for s in message.prepares],
        ]
    )


def _signed_fields(signed: Signed[Any]) -> list[RlpItem]:
    return [_body_fields(signed.body), signed.signature]


def encode_signed(signed: Signed[Any]) -> bytes:
    """One signed body on its own (used for the persisted prepared certificate)."""
    return rlp_encode(_signed_fields(signed))


def decode_signed(data: bytes, kind: type[B]) -> Signed[B]:
    """Inverse of `encode_signed` for a body of the given kind; raises DecodeError."""
    try:
        item = rlp_decode(data)
    except Exception as exc:
        raise DecodeError(f"not RLP: {exc}") from exc
    return _signed_of(kind, item)


# --- decoding -----------------------------------------------------------------------------------------------


def decode_message(data: bytes) -> Message:
    """Parse a wire message; raises DecodeError for anything malformed. Signatures are checked by the caller."""
    try:
        item = rlp_decode(data)
    except Exception as exc:  # rlp raises its own DecodingError hierarchy, and others on odd input
        raise DecodeError(f"not RLP: {exc}") from exc
    top = _list(item, 4, "message")
    signed = _signed(top[0])
    payload = _bytes(top[1], "payload")
    rc_items = _list(top[2], None, "round-change justification")
    prepare_items = _list(top[3], None, "prepare justification")
    if len(rc_items) > MAX_JUSTIFICATION or len(prepare_items) > MAX_JUSTIFICATION:
        raise DecodeError("justification too long")
    round_changes = tuple(_signed_of(RoundChange, x) for x in rc_items)
    prepares = tuple(_signed_of(Prepare, x) for x in prepare_items)
    return Message(signed, payload, round_changes, prepares)


def _signed_of(kind: type[B], item: Any) -> Signed[B]:
    signed = _signed(item)
    if not isinstance(signed.body, kind):
        raise DecodeError(f"expected a {kind.__name__} in a justification")
    return signed


def _signed(item: Any) -> Signed[Any]:
    pair = _list(item, 2, "signed body")
    body = _body(pair[0])
    signature = _bytes(pair[1], "signature")
    if len(signature) != SIGNATURE_LENGTH:
        raise DecodeError("signature must be 65 bytes")
    return Signed(body, signature, signing_hash(body))


def _body(item: Any) -> Body:
    fields = _list(item, None, "body")
    if len(fields) < 4:
        raise DecodeError("body too short")
    code = _int(fields[0], "code")
    height = _int(fields[1], "height")
    round_ = _int(fields[2], "round")
    if code in (MessageCode.PROPOSAL, MessageCode.PREPARE):
        _expect_len(fields, 4)
        digest = _digest(fields[3])
        return Proposal(height, round_, digest) if code == MessageCode.PROPOSAL else Prepare(height, round_, digest)
    if code == MessageCode.COMMIT:
        _expect_len(fields, 5)
        seal = _bytes(fields[4], "seal")
        if len(seal) != SIGNATURE_LENGTH:
            raise DecodeError("commit seal must be 65 bytes")
        return Commit(height, round_, _digest(fields[3]), seal)
    if code == MessageCode.ROUND_CHANGE:
        _expect_len(fields, 4)
        prepared = _list(fields[3], None, "prepared")
        if not prepared:
            return RoundChange(height, round_)
        if len(prepared) != 2:
            raise DecodeError("prepared must be [round, digest]")
        return RoundChange(height, round_, _int(prepared[0], "prepared round"), _digest(prepared[1]))
    raise DecodeError(f"unknown message code {code}")


def _expect_len(fields: list[Any], n: int) -> None:
    if len(fields) != n:
        raise DecodeError(f"body has {len(fields)} fields, expected {n}")


def _list(item: Any, n: int | None, what: str) -> list[Any]:
    if not isinstance(item, list):
        raise DecodeError(f"{what} must be a list")
    if n is not None and len(item) != n:
        raise DecodeError(f"{what} has {len(item)} items, expected {n}")
    return item


def _bytes(item: Any, what: str) -> bytes:
    if not isinstance(item, bytes):
        raise DecodeError(f"{what} must be a byte string")
    return item


def _int(item: Any, what: str) -> int:
    raw = _bytes(item, what)
    if len(raw) > MAX_INT_BYTES:
        raise DecodeError(f"{what} too large")
    if raw[:1] == b"\x00":
        raise DecodeError(f"{what} is not minimally encoded")
    return int.from_bytes(raw, "big")


def _digest(item: Any) -> bytes:
    raw = _bytes(item, "digest")
    if len(raw) != DIGEST_LENGTH:
        raise DecodeError("digest must be 32 bytes")
    return raw
