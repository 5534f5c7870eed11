"""Opening a section: verify the witnesses' shares, combine k of them, decrypt every bid, build the record.

`open_section` is the one entry point. It is deterministic in its inputs (the section's public data
from the chain, the anchored share batches, the envelopes and the opening instant), so anyone holding
them gets the same opening record and record hash: `verify_opening` does exactly that.
Each bid opens on its own: a bid that fails (bidder's fault: 撤销, or not: 撤回) never stops the others.
Work is spread over processes by bid; each worker holds one envelope at a time.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opening.ec import Point
from opening.envelope import (
    ROLE_OPENING,
    BidOpeningFailed,
    FailureCause,
    OpeningKey,
    canonical_json,
    commitment_of,
    decode_plaintext,
    ephemeral_point,
    open_with_shared_point,
    parse_envelope,
)
from opening.shares import DecryptionShare, ShareBatch, combine, index_shares, share_is_valid

RECORD_FORMAT = "jianzheng/opening-record/v2"  # v2: the amendments each bid stood for
OUTCOME_LABELS = {"opened": "已解密", "revoked": "撤销", "withdrawn": "撤回"}


class OpeningMismatch(Exception):
    """A recomputed opening record differs from the one claimed or anchored."""


@dataclass(frozen=True)
class SectionPublicData:
    """Everything public an opening rests on, as read from the chain (`opening.chainio.read_public_data`)."""

    section_id: bytes
    opening_time: int
    opening_key: bytes  # as anchored by setOpeningKey
    witnesses: tuple[str, ...]  # chain order: witness index i is witnesses[i-1]
    commitments: tuple[tuple[str, bytes], ...]  # (bidder, commitment) of every live bid
    anchored_shares: tuple[tuple[int, bytes], ...]  # (witness index, sharesHash) published on chain
    # Amendments of the tender documents (the section's tender version minus one) and, once there is one,
    # (bidder, amendments its bid was made on or confirmed for) of every live bid: the contract's
    # `bidConfirmationOf`, fixed from the deadline on. Never amended: every bid stands for the documents as
    # published, and nothing needs to be read per bid.
    tender_amendment: int = 0
    confirmed_amendments: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        # A record that passed over a bid's confirmation would say it stands for the latest documents.
        if self.tender_amendment:
            missing = {b.lower() for b, _ in self.commitments} - {b.lower() for b, _ in self.confirmed_amendments}
            if missing:
                raise ValueError(f"no confirmed amendment for the bids of {sorted(missing)}")

    def confirmed_amendment_of(self) -> dict[str, int]:
        """Lower-case bidder → the amendments of the tender documents its live bid stands for."""
        if not self.tender_amendment:
            return {bidder.lower(): 0 for bidder, _ in self.commitments}
        return {bidder.lower(): count for bidder, count in self.confirmed_amendments}


@dataclass(frozen=True)
class FaultyShare:
    """A share that failed its proof: the witness is named, with the bid it was for."""

    witness_index: int
    witness: str
    commitment: bytes
    reason: str


@dataclass(frozen=True)
class BidOutcome:
    bidder: str
    commitment: bytes
    announced: dict[str, Any] | None
    document: dict[str, Any] | None
    cause: FailureCause | None
    detail: str

    @property
    def kind(self) -> str:
        """opened, revoked (撤销: the bidder's fault) or withdrawn (撤回: not the bidder's fault)."""
        if self.cause is None:
            return "opened"
        return "revoked" if self.cause.bidder_caused else "withdrawn"


@dataclass(frozen=True)
class OpeningResult:
    record: dict[str, Any]
    record_bytes: bytes
    record_hash: bytes
    outcomes: tuple[BidOutcome, ...]
    faulty_shares: tuple[FaultyShare, ...]
    ignored_batches: tuple[str, ...]  # why a given batch was not used (not anchored, other section...)


def announced_hash(section_id: bytes, bidder: str, announced: Mapping[str, Any]) -> bytes:
    """What `recordBidOpened` anchors: SHA-256 of the canonical announced fields with section and bidder."""
    value = {"section_id": "0x" + section_id.hex(), "bidder": bidder.lower(), "announced": dict(announced)}
    return hashlib.sha256(canonical_json(value)).digest()


def evidence_hash(section_id: bytes, outcome: BidOutcome) -> bytes:
    """What `recordDecryptionFailure` anchors: SHA-256 of the canonical failure (bid, cause, detail)."""
    value = {
        "section_id": "0x" + section_id.hex(),
        "bidder": outcome.bidder.lower(),
        "commitment": outcome.commitment.hex(),
        "cause": outcome.cause.value if outcome.cause else None,
        "detail": outcome.detail,
    }
    return hashlib.sha256(canonical_json(value)).digest()


def outcome_hash(section_id: bytes, outcome: BidOutcome) -> bytes:
    if outcome.announced is not None:
        return announced_hash(section_id, outcome.bidder, outcome.announced)
    return evidence_hash(section_id, outcome)


# ------------------------------------------------------------------------------------------ one bid


@dataclass(frozen=True)
class _Context:
    section_id: bytes
    key_hash: bytes
    threshold: int
    public_shares: dict[int, bytes]
    witnesses: tuple[str, ...]
    output_dir: str | None


@dataclass(frozen=True)
class _Task:
    bidder: str
    commitment: bytes
    path: str | None
    shares: tuple[tuple[int, DecryptionShare], ...]


_worker_context: _Context | None = None


def _init_worker(context: _Context) -> None:
    global _worker_context
    _worker_context = context


def _open_in_worker(task: _Task) -> tuple[BidOutcome, list[FaultyShare]]:
    assert _worker_context is not None
    return _open_bid(_worker_context, task)


def _open_bid(context: _Context, task: _Task) -> tuple[BidOutcome, list[FaultyShare]]:
    faulty: list[FaultyShare] = []

    def failed(error: BidOpeningFailed) -> tuple[BidOutcome, list[FaultyShare]]:
        return BidOutcome(task.bidder, task.commitment, None, None, error.cause, error.detail), faulty

    if task.path is None:
        return failed(BidOpeningFailed(FailureCause.ENVELOPE_UNAVAILABLE, "no envelope for this commitment"))
    try:
        data = Path(task.path).read_bytes()
    except OSError as error:
        return failed(BidOpeningFailed(FailureCause.ENVELOPE_UNAVAILABLE, f"envelope unreadable: {error.strerror}"))
    try:
        if commitment_of(data) != task.commitment:
            raise BidOpeningFailed(FailureCause.COMMITMENT_MISMATCH, "the envelope does not hash to its commitment")
        envelope = parse_envelope(data)
        del data
        if envelope.section_id != context.section_id:
            raise BidOpeningFailed(FailureCause.WRONG_SECTION, "sealed for another section")
        if envelope.opening_key_hash != context.key_hash:
            raise BidOpeningFailed(FailureCause.WRONG_OPENING_KEY, "sealed to another opening key")
        ephemeral = ephemeral_point(envelope)
        valid: list[tuple[int, bytes]] = []
        for index, share in task.shares:
            public = Point.decode(context.public_shares[index])
            if share_is_valid(public, context.section_id, index, ephemeral, share):
                if index not in {i for i, _ in valid}:
                    valid.append((index, share.share))
            else:
                witness = context.witnesses[index - 1]
                faulty.append(FaultyShare(index, witness, task.commitment, "proof does not verify"))
        if len(valid) < context.threshold:
            raise BidOpeningFailed(
                FailureCause.SHARES_UNAVAILABLE, f"{len(valid)} valid shares, {context.threshold} needed"
            )
        shared = combine(sorted(valid)[: context.threshold])
        opening_key = Point.decode(context.public_shares[0])
        plaintext = open_with_shared_point(envelope, shared, ROLE_OPENING, opening_key.encode(compressed=False))
        bid = decode_plaintext(plaintext)
        del plaintext
        if bid.section_id != context.section_id:
            raise BidOpeningFailed(FailureCause.WRONG_SECTION, "the bid names another section")
        if bid.bidder != task.bidder.lower():
            raise BidOpeningFailed(FailureCause.BIDDER_MISMATCH, f"the bid names bidder {bid.bidder}")
    except BidOpeningFailed as error:
        return failed(error)
    if context.output_dir is not None:
        Path(context.output_dir, f"{task.bidder.lower()}.document").write_bytes(bid.document)
    document = {"name": bid.document_name, "sha256": bid.document_sha256.hex(), "size": len(bid.document)}
    return BidOutcome(task.bidder, task.commitment, bid.announced, document, None, ""), faulty


# ------------------------------------------------------------------------------------------ the section


def _usable_batches(data: SectionPublicData, batches: Iterable[ShareBatch]) -> tuple[list[ShareBatch], list[str]]:
    """Only batches whose canonical hash is what their witness anchored count; replays collapse."""
    anchored = dict(data.anchored_shares)
    usable: dict[int, ShareBatch] = {}
    ignored: list[str] = []
    for batch in batches:
        if batch.section_id != data.section_id:
            ignored.append(f"witness {batch.witness_index}: batch for another section")
        elif not 1 <= batch.witness_index <= len(data.witnesses):
            ignored.append(f"witness {batch.witness_index}: no such witness of the section")
        elif anchored.get(batch.witness_index) != batch.digest:
            ignored.append(f"witness {batch.witness_index}: batch hash {batch.digest.hex()} is not anchored")
        else:
            usable[batch.witness_index] = batch
    return [usable[i] for i in sorted(usable)], ignored


def _tasks(data: SectionPublicData, batches: list[ShareBatch], envelopes: Mapping[str, Path]) -> Iterator[_Task]:
    by_bid = index_shares(batches)
    lowered = {bidder.lower(): path for bidder, path in envelopes.items()}
    for bidder, commitment in sorted(data.commitments, key=lambda item: item[0].lower()):
        per_witness = by_bid.get(commitment, {})
        shares = tuple((index, share) for index in sorted(per_witness) for share in per_witness[index])
        path = lowered.get(bidder.lower())
        yield _Task(bidder, commitment, str(path) if path is not None else None, shares)


def build_record(
    data: SectionPublicData, opened_at: int, outcomes: list[BidOutcome], faulty: list[FaultyShare]
) -> dict[str, Any]:
    """The opening record (开标记录) as a JSON value; its canonical bytes are what gets hashed and anchored.

    Each bid says which amendment of the tender documents it stands for (`confirmed_amendment`, against the
    record's `tender_amendment`): the contract opens and counts a bid not confirmed after the last
    amendment like any other, so the record is where the evaluation committee learns it must judge that
    bid's responsiveness. Both come from the chain, so a re-check reproduces them."""
    key = OpeningKey.decode(data.opening_key)
    confirmed_amendment = data.confirmed_amendment_of()
    bids = []
    for outcome in sorted(outcomes, key=lambda o: o.bidder.lower()):
        stood = confirmed_amendment[outcome.bidder.lower()]
        failure = None
        if outcome.cause is not None:
            failure = {
                "cause": outcome.cause.value,
                "bidder_caused": outcome.cause.bidder_caused,
                "detail": outcome.detail,
            }
        bids.append(
            {
                "bidder": outcome.bidder.lower(),
                "commitment": outcome.commitment.hex(),
                "outcome": outcome.kind,
                "outcome_zh": OUTCOME_LABELS[outcome.kind],
                "announced": outcome.announced,
                "document": outcome.document,
                "failure": failure,
                "anchored_hash": outcome_hash(data.section_id, outcome).hex(),
                "confirmed_amendment": stood,
                "amendment_confirmed": stood >= data.tender_amendment,
            }
        )
    kinds = [o.kind for o in outcomes]
    return {
        "format": RECORD_FORMAT,
        "section_id": "0x" + data.section_id.hex(),
        "opening_time": data.opening_time,
        "tender_amendment": data.tender_amendment,
        "opened_at": opened_at,
        "opening_key_hash": key.key_hash.hex(),
        "threshold": key.threshold,
        "witnesses": [w.lower() for w in data.witnesses],
        "counts": {kind: kinds.count(kind) for kind in ("opened", "revoked", "withdrawn")},
        "bids": bids,
        "faulty_shares": [
            {
                "witness_index": f.witness_index,
                "witness": f.witness.lower(),
                "commitment": f.commitment.hex(),
                "reason": f.reason,
            }
            for f in sorted(faulty, key=lambda f: (f.witness_index, f.commitment, f.reason))
        ],
    }


def open_section(
    data: SectionPublicData,
    batches: Iterable[ShareBatch],
    envelopes: Mapping[str, Path],
    opened_at: int,
    *,
    workers: int = 1,
    output_dir: Path | None = None,
) -> OpeningResult:
    """Open every live bid of the section and build the opening record.

    `envelopes` maps bidder → envelope file (a bidder without one is 撤回, not its fault: the platform
    lost it). `opened_at` is the chain time the opening is recorded at. With `output_dir`, each opened
    bid's document is written there as `<bidder>.document`.
    """
    key = OpeningKey.decode(data.opening_key)
    usable, ignored = _usable_batches(data, batches)
    public_shares = {0: key.public_key}
    public_shares.update({i: key.public_share(i).encode() for i in range(1, len(data.witnesses) + 1)})
    context = _Context(
        data.section_id,
        key.key_hash,
        key.threshold,
        public_shares,
        data.witnesses,
        str(output_dir) if output_dir is not None else None,
    )
    tasks = _tasks(data, usable, envelopes)
    outcomes: list[BidOutcome] = []
    faulty: list[FaultyShare] = []
    if workers <= 1:
        results: Iterable[tuple[BidOutcome, list[FaultyShare]]] = (_open_bid(context, task) for task in tasks)
        for outcome, found in results:
            outcomes.append(outcome)
            faulty.extend(found)
    else:
        with multiprocessing.get_context("fork").Pool(workers, _init_worker, (context,)) as pool:
            for outcome, found in pool.imap(_open_in_worker, tasks, chunksize=8):
                outcomes.append(outcome)
                faulty.extend(found)
    record = build_record(data, opened_at, outcomes, faulty)
    record_bytes = canonical_json(record)
    return OpeningResult(
        record, record_bytes, hashlib.sha256(record_bytes).digest(), tuple(outcomes), tuple(faulty), tuple(ignored)
    )


def verify_opening(
    data: SectionPublicData,
    batches: Iterable[ShareBatch],
    envelopes: Mapping[str, Path],
    claimed_record: bytes,
    anchored_hash: bytes | None = None,
    *,
    workers: int = 1,
) -> OpeningResult:
    """Redo the opening from public data and check that it gives the claimed record (and anchored hash).

    The opening instant is taken from the claimed record: it is the one input that is not derived.
    """
    try:
        claimed = json.loads(claimed_record.decode("utf-8"))
        opened_at = int(claimed["opened_at"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise OpeningMismatch(f"the claimed record is not an opening record: {error!r}") from None
    if claimed.get("format") != RECORD_FORMAT:
        # Said apart from a mere difference: the record may be sound but older than this software.
        raise OpeningMismatch(f"the claimed record is in format {claimed.get('format')!r}; this redoes {RECORD_FORMAT}")
    result = open_section(data, batches, envelopes, opened_at, workers=workers)
    if result.record_bytes != claimed_record:
        raise OpeningMismatch("the recomputed opening record differs from the claimed one")
    if anchored_hash is not None and result.record_hash != anchored_hash:
        raise OpeningMismatch(f"record hash {result.record_hash.hex()} is not the anchored {anchored_hash.hex()}")
    return result
