"""Key generation without a dealer: Joint-Feldman (Pedersen) DKG among a section's witnesses.

Each of the n witnesses deals a random polynomial f_i of degree k-1: it publishes Feldman
commitments C_it = a_it·G and, for every witness j, f_i(j) encrypted to j's P-256 transport key
(ECDH + HKDF + AES-256-GCM), so any relay (e.g. the platform) may carry the deals and learns nothing.
A recipient whose share does not match the commitments files a complaint that reveals the ECDH
point of that one ciphertext with a DLEQ proof: anyone can then decrypt it and see who lied, with no
further round. Dealers caught (or who did not deal) are disqualified; the others form QUAL.

Result: the aggregated commitments A_t = Σ_{i∈QUAL} C_it (A_0 is the opening public key; anyone
derives witness j's public share Y_j = Σ_t j^t·A_t), and for witness j alone its secret share
x_j = Σ_{i∈QUAL} f_i(j). No one ever holds the whole private key Σ f_i(0).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from opening.ec import ORDER, InvalidPoint, Point, base_mul, commitment_at
from opening.envelope import OpeningKey, canonical_json
from opening.proofs import prove_dleq, verify_dleq

MAX_THRESHOLD = 14  # 3 + 32 + 33·k bytes must fit the contract's 512-byte opening key
_SHARE_INFO = b"jianzheng/dkg/v1/share"
_ZERO_NONCE = b"\x00" * 12
_CIPHERTEXT_SIZE = 33 + 32 + 16


class DkgFailed(Exception):
    """Too few honest dealers remain for the threshold, or the inputs contradict each other."""


class InvalidDeal(ValueError):
    """A deal (or complaint) that is malformed for these DKG parameters."""


@dataclass(frozen=True)
class DkgParams:
    """What every witness agrees on before dealing: the section, k, and the transport keys in chain order."""

    section_id: bytes
    threshold: int
    transport_keys: tuple[bytes, ...]  # compressed P-256 points; index j-1 belongs to witness j

    @property
    def witnesses(self) -> int:
        return len(self.transport_keys)

    def check(self) -> None:
        if len(self.section_id) != 32:
            raise DkgFailed("section id must be 32 bytes")
        if not 1 <= self.threshold <= min(self.witnesses, MAX_THRESHOLD):
            raise DkgFailed(f"threshold {self.threshold} must be 1..min({self.witnesses}, {MAX_THRESHOLD})")
        if len(set(self.transport_keys)) != self.witnesses:
            raise DkgFailed("two witnesses share a transport key")
        for key in self.transport_keys:
            Point.decode(key)


@dataclass(frozen=True)
class Deal:
    """One dealer's public message: its commitments and one encrypted share per witness."""

    dealer: int
    commitments: tuple[bytes, ...]
    encrypted_shares: tuple[bytes, ...]


@dataclass(frozen=True)
class Complaint:
    """Witness `recipient` says its share from `dealer` is wrong, and reveals the ECDH point to prove it."""

    dealer: int
    recipient: int
    revealed: bytes  # t_j·R, compressed
    proof: bytes  # DLEQ: log_G(T_j) = log_R(revealed)


@dataclass(frozen=True)
class DkgOutcome:
    """The public result: the opening key to anchor, who is in QUAL, who was disqualified and why."""

    opening_key: OpeningKey
    qualified: tuple[int, ...]
    disqualified: tuple[tuple[int, str], ...]
    rejected_complaints: tuple[tuple[int, int], ...]  # (recipient, dealer) of complaints that proved false


def _share_context(params: DkgParams, dealer: int, recipient: int, commitments: Sequence[bytes]) -> bytes:
    return params.section_id + bytes([dealer, recipient]) + hashlib.sha256(b"".join(commitments)).digest()


def _share_key(shared: Point, ephemeral: bytes, recipient_key: bytes, context: bytes) -> bytes:
    info = _SHARE_INFO + context + ephemeral + recipient_key
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared.x_bytes())


def _evaluate(coefficients: Sequence[int], x: int) -> int:
    value = 0
    for coefficient in reversed(coefficients):
        value = (value * x + coefficient) % ORDER
    return value


def new_transport_key() -> tuple[int, bytes]:
    """A witness's P-256 transport key pair for receiving DKG shares: (secret, compressed public key)."""
    secret = secrets.randbelow(ORDER - 1) + 1
    return secret, base_mul(secret).encode()


def deal(params: DkgParams, dealer: int, *, cheat_recipient: int | None = None) -> Deal:
    """Witness `dealer` (1-based) deals a fresh random polynomial.

    `cheat_recipient` is for tests only: it sends that witness a wrong share, as a cheating dealer would.
    """
    params.check()
    coefficients = [secrets.randbelow(ORDER - 1) + 1 for _ in range(params.threshold)]
    commitments = tuple(base_mul(a).encode() for a in coefficients)
    encrypted = []
    for recipient, key in enumerate(params.transport_keys, start=1):
        share = _evaluate(coefficients, recipient)
        if recipient == cheat_recipient:
            share = (share + 1) % ORDER
        ephemeral_secret = secrets.randbelow(ORDER - 1) + 1
        ephemeral = base_mul(ephemeral_secret).encode()
        context = _share_context(params, dealer, recipient, commitments)
        kek = _share_key(Point.decode(key) * ephemeral_secret, ephemeral, key, context)
        encrypted.append(ephemeral + AESGCM(kek).encrypt(_ZERO_NONCE, share.to_bytes(32, "big"), context))
    return Deal(dealer, commitments, tuple(encrypted))


def check_deal_shape(params: DkgParams, deal_: Deal) -> None:
    """Refuse (InvalidDeal) a deal that cannot be one for these parameters: a relay checks this on receipt."""
    if not 1 <= deal_.dealer <= params.witnesses:
        raise InvalidDeal(f"dealer {deal_.dealer} is not a witness index")
    if len(deal_.commitments) != params.threshold or len(deal_.encrypted_shares) != params.witnesses:
        raise InvalidDeal(f"deal of {deal_.dealer} has the wrong number of commitments or shares")
    for commitment in deal_.commitments:
        try:
            Point.decode(commitment)
        except InvalidPoint as error:
            raise InvalidDeal(f"deal of {deal_.dealer}: {error}") from None
    if any(len(c) != _CIPHERTEXT_SIZE for c in deal_.encrypted_shares):
        raise InvalidDeal(f"deal of {deal_.dealer} has a malformed encrypted share")
    for ciphertext in deal_.encrypted_shares:
        try:
            Point.decode(ciphertext[:33])
        except InvalidPoint as error:
            raise InvalidDeal(f"deal of {deal_.dealer}: encrypted share key: {error}") from None


def _decrypt_with(params: DkgParams, deal_: Deal, recipient: int, shared: Point) -> int | None:
    """The share f_dealer(recipient) if it decrypts and matches the commitments, else None."""
    ciphertext = deal_.encrypted_shares[recipient - 1]
    ephemeral = ciphertext[:33]
    context = _share_context(params, deal_.dealer, recipient, deal_.commitments)
    kek = _share_key(shared, ephemeral, params.transport_keys[recipient - 1], context)
    try:
        share = int.from_bytes(AESGCM(kek).decrypt(_ZERO_NONCE, ciphertext[33:], context), "big")
    except InvalidTag:
        return None
    if share >= ORDER or base_mul(share) != commitment_at(deal_.commitments, recipient):
        return None
    return share


def _complaint_context(params: DkgParams, dealer: int, recipient: int) -> bytes:
    return b"jianzheng/dkg/v1/complaint" + params.section_id + bytes([dealer, recipient])


def receive(params: DkgParams, deals: Sequence[Deal], recipient: int, transport_secret: int) -> list[Complaint]:
    """Witness `recipient` checks its share in every deal; a complaint for each share that fails."""
    complaints = []
    for deal_ in deals:
        try:
            check_deal_shape(params, deal_)
        except InvalidDeal:
            continue  # disqualified publicly by `finish`; nothing to prove
        ephemeral = Point.decode(deal_.encrypted_shares[recipient - 1][:33])
        if _decrypt_with(params, deal_, recipient, ephemeral * transport_secret) is None:
            context = _complaint_context(params, deal_.dealer, recipient)
            revealed, proof = prove_dleq(transport_secret, ephemeral, context)
            complaints.append(Complaint(deal_.dealer, recipient, revealed.encode(), proof))
    return complaints


def _complaint_holds(params: DkgParams, deal_: Deal, complaint: Complaint) -> bool | None:
    """True: the dealer cheated. False: the share was fine (complaint rejected). None: the proof is bad."""
    if not 1 <= complaint.recipient <= params.witnesses:
        return None
    try:
        ephemeral = Point.decode(deal_.encrypted_shares[complaint.recipient - 1][:33])
        revealed = Point.decode(complaint.revealed)
        transport = Point.decode(params.transport_keys[complaint.recipient - 1])
    except InvalidPoint:
        return None
    context = _complaint_context(params, complaint.dealer, complaint.recipient)
    if not verify_dleq(transport, ephemeral, revealed, complaint.proof, context):
        return None
    return _decrypt_with(params, deal_, complaint.recipient, revealed) is None


def transcript_hash(params: DkgParams, deals: Sequence[Deal], complaints: Sequence[Complaint]) -> bytes:
    """SHA-256 over the whole public transcript, in a canonical order: anchored inside the opening key."""
    return hashlib.sha256(
        canonical_json(
            {
                "format": "jianzheng/dkg-transcript/v1",
                "section_id": params.section_id.hex(),
                "threshold": params.threshold,
                "transport_keys": [k.hex() for k in params.transport_keys],
                "deals": [
                    [d.dealer, [c.hex() for c in d.commitments], [s.hex() for s in d.encrypted_shares]]
                    for d in sorted(deals, key=lambda d: d.dealer)
                ],
                "complaints": sorted([c.dealer, c.recipient, c.revealed.hex(), c.proof.hex()] for c in complaints),
            }
        )
    ).digest()


def finish(params: DkgParams, deals: Sequence[Deal], complaints: Sequence[Complaint]) -> DkgOutcome:
    """Decide QUAL from the public transcript and aggregate the opening key. Anyone can run this."""
    params.check()
    by_dealer: dict[int, Deal] = {}
    disqualified: dict[int, str] = {}
    for deal_ in deals:
        try:
            check_deal_shape(params, deal_)
        except InvalidDeal as error:
            disqualified[deal_.dealer] = f"malformed deal: {error}"
            continue
        if deal_.dealer in by_dealer and by_dealer[deal_.dealer] != deal_:
            disqualified[deal_.dealer] = "two different deals"
        by_dealer.setdefault(deal_.dealer, deal_)
    rejected = []
    for complaint in complaints:
        accused = by_dealer.get(complaint.dealer)
        if accused is None or complaint.dealer in disqualified:
            continue
        holds = _complaint_holds(params, accused, complaint)
        if holds:
            disqualified[complaint.dealer] = f"wrong share to witness {complaint.recipient}"
        elif holds is False or holds is None:
            rejected.append((complaint.recipient, complaint.dealer))
    for dealer in range(1, params.witnesses + 1):
        if dealer not in by_dealer:
            disqualified.setdefault(dealer, "no deal")
    qualified = tuple(d for d in range(1, params.witnesses + 1) if d not in disqualified)
    if len(qualified) < params.threshold:
        raise DkgFailed(f"only {len(qualified)} qualified dealers for threshold {params.threshold}")
    aggregated = []
    for t in range(params.threshold):
        total = Point.decode(by_dealer[qualified[0]].commitments[t])
        for dealer in qualified[1:]:
            total = total + Point.decode(by_dealer[dealer].commitments[t])
        aggregated.append(total.encode())
    key = OpeningKey(params.threshold, params.witnesses, transcript_hash(params, deals, complaints), tuple(aggregated))
    return DkgOutcome(key, qualified, tuple(sorted(disqualified.items())), tuple(sorted(rejected)))


def secret_share(
    params: DkgParams, deals: Sequence[Deal], outcome: DkgOutcome, recipient: int, transport_secret: int
) -> int:
    """Witness `recipient`'s secret share x_j = Σ_{i∈QUAL} f_i(j), checked against the opening key."""
    by_dealer = {d.dealer: d for d in deals}
    total = 0
    for dealer in outcome.qualified:
        deal_ = by_dealer[dealer]
        ephemeral = Point.decode(deal_.encrypted_shares[recipient - 1][:33])
        share = _decrypt_with(params, deal_, recipient, ephemeral * transport_secret)
        if share is None:
            raise DkgFailed(f"the share from qualified dealer {dealer} does not verify: complain first")
        total = (total + share) % ORDER
    if base_mul(total) != outcome.opening_key.public_share(recipient):
        raise DkgFailed("the combined share does not match the aggregated commitments")
    return total


def key_dealt_in_one_place(threshold: int, witnesses: int) -> OpeningKey:
    """A well-formed k-of-n opening key from a whole DKG run in this one process, with fresh keys.

    For tests, benchmarks and demos only: this process saw every deal, so nobody can open what is sealed
    to the key (the shares are dropped) — which is what a bid sealed to a wrong key, or a publication
    check, needs. Witnesses make real keys with `deal`, `receive` and `finish` on their own machines."""
    params = DkgParams(secrets.token_bytes(32), threshold, tuple(new_transport_key()[1] for _ in range(witnesses)))
    return finish(params, [deal(params, dealer) for dealer in range(1, witnesses + 1)], []).opening_key


def deal_to_json(deal_: Deal) -> dict[str, object]:
    return {
        "dealer": deal_.dealer,
        "commitments": [c.hex() for c in deal_.commitments],
        "encrypted_shares": [s.hex() for s in deal_.encrypted_shares],
    }


def deal_from_json(raw: dict[str, Any]) -> Deal:
    return Deal(
        int(raw["dealer"]),
        tuple(bytes.fromhex(c) for c in raw["commitments"]),
        tuple(bytes.fromhex(s) for s in raw["encrypted_shares"]),
    )


def complaint_to_json(complaint: Complaint) -> dict[str, object]:
    return {
        "dealer": complaint.dealer,
        "recipient": complaint.recipient,
        "revealed": complaint.revealed.hex(),
        "proof": complaint.proof.hex(),
    }


def complaint_from_json(raw: dict[str, Any]) -> Complaint:
    return Complaint(
        int(raw["dealer"]), int(raw["recipient"]), bytes.fromhex(raw["revealed"]), bytes.fromhex(raw["proof"])
    )
