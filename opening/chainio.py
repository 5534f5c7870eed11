"""What the opening reads from and writes to the chain: public data in, outcomes and record hash out."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from eth_utils import keccak
from hexbytes import HexBytes

from contracts.client import ZERO32, Event, Signer, TenderRegistryClient, TxResult
from contracts.records import BidStatus, OpeningOutcome
from opening.opener import OpeningResult, SectionPublicData, outcome_hash

OUTCOMES_PER_TRANSACTION = 300  # about 34k gas each (50k at most): at most 15M gas, inside a block


def read_public_data(registry: TenderRegistryClient, section_id: bytes) -> SectionPublicData:
    """The section's opening time, opening key, witnesses, live commitments, anchored share hashes, and the
    amendments of its tender documents with the one each live bid stands for.

    Read after the deadline, these no longer change: amendments and confirmations are refused from the
    opening time on, so the opener and every later re-check read the same values."""
    section = registry.section(section_id)
    witnesses = registry.witnesses(section_id)
    anchored = []
    for index, witness in enumerate(witnesses, start=1):
        shares_hash = registry.decryption_shares_hash(section_id, witness)
        if shares_hash != ZERO32:
            anchored.append((index, shares_hash))
    commitments = registry.live_commitments(section_id)
    tender_amendment = max(section.tender_version - 1, 0)  # an unknown section reads as version 0
    confirmed: tuple[tuple[str, int], ...] = ()
    if tender_amendment > 0:  # most tenders are never amended: then no bid needs a read of its own
        stood = registry.bid_confirmations(section_id, sorted(commitments))
        confirmed = tuple((bidder, found.confirmed_version - 1) for bidder, found in stood.items())
    return SectionPublicData(
        section_id=section_id,
        opening_time=section.opening_time,
        opening_key=registry.opening_key(section_id),
        witnesses=tuple(witnesses),
        commitments=tuple(sorted(commitments.items())),
        anchored_shares=tuple(anchored),
        tender_amendment=tender_amendment,
        confirmed_amendments=confirmed,
    )


def onchain_outcomes(
    section_id: bytes, result: OpeningResult, rejected_covers: Collection[str] = ()
) -> list[OpeningOutcome]:
    """Each bid's art. 31 outcome as the contract records it. A bid that opened but whose cover (bid bond)
    could not be revealed (`rejected_covers`: bidder addresses) is recorded as COVER_REJECTED: it does
    not count as a valid bid, and the decryption record stays what it is."""
    rejected = {bidder.lower() for bidder in rejected_covers}
    outcomes = []
    for outcome in result.outcomes:
        if outcome.cause is None and outcome.bidder.lower() in rejected:
            status = BidStatus.COVER_REJECTED
        elif outcome.cause is None:
            status = BidStatus.OPENED
        elif outcome.cause.bidder_caused:
            status = BidStatus.DECRYPTION_FAILED_BIDDER_CAUSED
        else:
            status = BidStatus.DECRYPTION_FAILED_NOT_BIDDER_CAUSED
        outcomes.append(OpeningOutcome(outcome.bidder, status, outcome_hash(section_id, outcome)))
    return outcomes


def anchor_opening(
    registry: TenderRegistryClient,
    agency: Signer,
    section_id: bytes,
    result: OpeningResult,
    rejected_covers: Collection[str] = (),
) -> TxResult:
    """Record every bid's outcome (in batches) and close the opening with the record's hash."""
    outcomes = onchain_outcomes(section_id, result, rejected_covers)
    for start in range(0, len(outcomes), OUTCOMES_PER_TRANSACTION):
        registry.record_outcomes(agency, section_id, outcomes[start : start + OUTCOMES_PER_TRANSACTION])
    return registry.close_opening(agency, section_id, result.record_hash)


def attest_opening(
    registry: TenderRegistryClient, witnesses: Sequence[Signer], section_id: bytes, record_hash: bytes
) -> list[TxResult]:
    """Each witness attests the record hash (each should first run `verify_opening` itself)."""
    return [registry.attest_opening(witness, section_id, record_hash) for witness in witnesses]


def early_access_log(registry: TenderRegistryClient, section_id: bytes, from_block: int = 0) -> list[Event]:
    """The section's anchored early-access attempts (reporter, evidence hash, running count): what the
    regulator reads."""
    topic = keccak(text="EarlyAccessAttempted(bytes32,address,bytes32,uint256)")
    # In windows of blocks, as nodes limit a log query's range.
    return [
        found.event
        for found in registry.chain.logs(registry.address, [HexBytes(topic), HexBytes(section_id)], from_block)
    ]
