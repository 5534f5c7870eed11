"""The witness's software: keeps its secret share, and releases decryption shares only after the deadline.

A decryption share sent early would itself leak the bid (k of them open it), so the check happens
before the share is computed, against chain time read from the witness's own node, and every early
request is anchored on chain as an early-access attempt (the hash of the request; the request stays
with the witness) that the regulator sees. A witness computes shares only for envelopes whose hash
is a live commitment on chain: it is never a decryption oracle for anything else (such as the
earlier version of a replaced bid).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from contracts.client import Signer, TenderRegistryClient, TxResult
from opening.ec import ORDER, base_mul
from opening.envelope import BidOpeningFailed, OpeningKey, canonical_json, ephemeral_point, parse_envelope
from opening.shares import DecryptionShare, ShareBatch, compute_share

SECRET_FORMAT = "jianzheng/witness-secret/v1"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class EarlyAccessRefused(Exception):
    """Something that must wait for the opening time was asked for before it (in chain time)."""

    def __init__(self, section_id: bytes, opening_time: int, now: int, evidence_hash: bytes):
        super().__init__(
            f"section 0x{section_id.hex()} opens at {opening_time}, chain time is {now}: refused; "
            f"early-access attempt anchored with evidence 0x{evidence_hash.hex()}"
        )
        self.section_id = section_id
        self.opening_time = opening_time
        self.now = now
        self.evidence_hash = evidence_hash


class ShareBeforeDeadline(EarlyAccessRefused):
    """A decryption share was asked for before the opening time: the witness refuses to compute it."""


class SealedReadBeforeDeadline(EarlyAccessRefused):
    """Sealed bids were asked for before the opening time: the platform's store refuses to hand them out."""


class WrongWitnessKey(Exception):
    """The secret share does not belong to the section's anchored opening key, or the file cannot be read."""


@dataclass(frozen=True)
class AccessRequest:
    """Who asked for what: hashed into the evidence of an early-access attempt."""

    section_id: bytes
    requester: str
    purpose: str  # e.g. "decryption shares" or "read sealed bids"
    requested_at: int  # the requester's clock, unix seconds

    def evidence_hash(self, chain_time: int) -> bytes:
        value = {
            "format": "jianzheng/early-access/v1",
            "section_id": "0x" + self.section_id.hex(),
            "requester": self.requester,
            "purpose": self.purpose,
            "requested_at": self.requested_at,
            "chain_time": chain_time,
        }
        return hashlib.sha256(canonical_json(value)).digest()


@dataclass(frozen=True)
class WitnessShare:
    """A witness's secret share of one section's opening key."""

    section_id: bytes
    index: int
    secret: int
    opening_key: bytes

    def check(self) -> None:
        key = OpeningKey.decode(self.opening_key)
        if not 0 < self.secret < ORDER or base_mul(self.secret) != key.public_share(self.index):
            raise WrongWitnessKey(f"the secret share is not witness {self.index}'s share of this opening key")


def save_secret(path: Path, passphrase: str, payload: dict[str, Any]) -> None:
    """Write a secret (a transport key or a share) encrypted under a passphrase (scrypt + AES-256-GCM)."""
    salt, nonce = os.urandom(16), os.urandom(12)
    key = hashlib.scrypt(passphrase.encode("utf-8"), salt=salt, dklen=32, **_SCRYPT)
    ciphertext = AESGCM(key).encrypt(nonce, canonical_json(payload), SECRET_FORMAT.encode())
    body = {"format": SECRET_FORMAT, "salt": salt.hex(), "nonce": nonce.hex(), "ciphertext": ciphertext.hex()}
    path.write_text(json.dumps(body, indent=1), encoding="utf-8")
    path.chmod(0o600)


def load_secret(path: Path, passphrase: str) -> dict[str, Any]:
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        if body["format"] != SECRET_FORMAT:
            raise ValueError(f"not a {SECRET_FORMAT} file")
        key = hashlib.scrypt(passphrase.encode("utf-8"), salt=bytes.fromhex(body["salt"]), dklen=32, **_SCRYPT)
        plain = AESGCM(key).decrypt(
            bytes.fromhex(body["nonce"]), bytes.fromhex(body["ciphertext"]), SECRET_FORMAT.encode()
        )
    except InvalidTag:
        raise WrongWitnessKey(f"{path}: wrong passphrase or damaged file") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise WrongWitnessKey(f"{path}: {error}") from None
    value: dict[str, Any] = json.loads(plain)
    return value


def save_share(path: Path, passphrase: str, share: WitnessShare) -> None:
    save_secret(
        path,
        passphrase,
        {
            "kind": "share",
            "section_id": share.section_id.hex(),
            "index": share.index,
            "secret": format(share.secret, "064x"),
            "opening_key": share.opening_key.hex(),
        },
    )


def load_share(path: Path, passphrase: str) -> WitnessShare:
    raw = load_secret(path, passphrase)
    if raw.get("kind") != "share":
        raise WrongWitnessKey(f"{path} holds no secret share")
    share = WitnessShare(
        bytes.fromhex(raw["section_id"]), int(raw["index"]), int(raw["secret"], 16), bytes.fromhex(raw["opening_key"])
    )
    share.check()
    return share


def guard_opening_time(
    registry: TenderRegistryClient,
    reporter: Signer,
    request: AccessRequest,
    refusal: type[EarlyAccessRefused] = ShareBeforeDeadline,
) -> int:
    """Chain time, if the section's opening time has come. Before it: anchor the attempt and refuse.

    `reporter` (a witness of the section, or its agency) anchors the hash of the request on chain.
    """
    opening_time, _ = registry.deadline_of(request.section_id)
    now = registry.chain.now()
    if now < opening_time:
        evidence = request.evidence_hash(now)
        registry.report_early_access(reporter, request.section_id, evidence)
        raise refusal(request.section_id, opening_time, now, evidence)
    return now


def guard_sealed_read(registry: TenderRegistryClient, agency: Signer, request: AccessRequest) -> int:
    """What the platform's envelope store calls before handing out sealed bids: refused and anchored
    (`SealedReadBeforeDeadline`) before the opening time."""
    return guard_opening_time(registry, agency, request, SealedReadBeforeDeadline)


# ------------------------------------------------------------------------------------------ shares

_worker_share: WitnessShare | None = None


def _init_worker(share: WitnessShare) -> None:
    global _worker_share
    _worker_share = share


def _share_in_worker(task: tuple[bytes, str]) -> DecryptionShare | None:
    assert _worker_share is not None
    return _share_for(_worker_share, *task)


def _share_for(share: WitnessShare, commitment: bytes, path: str) -> DecryptionShare | None:
    """The share for one envelope, or None if the file is not the committed envelope or is malformed."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    if hashlib.sha256(data).digest() != commitment:
        return None
    try:
        ephemeral = ephemeral_point(parse_envelope(data))
    except BidOpeningFailed:
        return None  # the opener records the malformed envelope as the bidder's fault; no share needed
    return compute_share(share.secret, share.section_id, share.index, commitment, ephemeral)


def compute_share_batch(
    share: WitnessShare, commitments: Mapping[str, bytes], envelopes: Mapping[str, Path], *, workers: int = 1
) -> ShareBatch:
    """Shares for every live bid whose envelope at hand hashes to its on-chain commitment.

    Call only after `guard_opening_time` (as `release_shares` does): this function does not look at time.
    """
    lowered = {bidder.lower(): path for bidder, path in envelopes.items()}
    tasks = [
        (commitment, str(lowered[bidder.lower()]))
        for bidder, commitment in sorted(commitments.items())
        if bidder.lower() in lowered
    ]
    if workers <= 1:
        results = [_share_for(share, *task) for task in tasks]
    else:
        with multiprocessing.get_context("fork").Pool(workers, _init_worker, (share,)) as pool:
            results = pool.map(_share_in_worker, tasks, chunksize=16)
    return ShareBatch(share.section_id, share.index, tuple(r for r in results if r is not None))


def release_shares(
    registry: TenderRegistryClient,
    signer: Signer,
    share: WitnessShare,
    envelopes: Mapping[str, Path],
    request: AccessRequest,
    *,
    workers: int = 1,
) -> ShareBatch:
    """The witness's one way to produce shares: deadline check (anchoring early requests), key check, compute."""
    if request.section_id != share.section_id:
        raise WrongWitnessKey("the request is for another section than this share")
    witnesses = [w.lower() for w in registry.witnesses(share.section_id)]
    if share.index > len(witnesses) or witnesses[share.index - 1] != signer.address.lower():
        raise WrongWitnessKey(f"{signer.address} is not witness {share.index} of the section")
    guard_opening_time(registry, signer, request)
    if registry.opening_key(share.section_id) != share.opening_key:
        raise WrongWitnessKey("the section's anchored opening key is not the one this share belongs to")
    commitments = registry.live_commitments(share.section_id)
    return compute_share_batch(share, commitments, envelopes, workers=workers)


def publish_shares(registry: TenderRegistryClient, signer: Signer, batch: ShareBatch) -> TxResult:
    """Anchor the batch's hash (the contract itself refuses before the opening time)."""
    return registry.publish_decryption_shares(signer, batch.section_id, batch.digest)
