"""TenderRegistry's additions for the threshold opening (issue #4): decryption shares, early-access
attempts and batched decryption outcomes, on a real node."""

from __future__ import annotations

import pytest

from contracts import errors
from contracts.client import ZERO32, Signer
from contracts.records import BidStatus, OpeningOutcome, SectionStatus
from tests.helpers import (
    Platform,
    SectionRef,
    commit_with_deposit,
    new_section,
    open_all,
    pass_deadline,
    random_hash,
)


def _section_with_bids(platform: Platform, count: int = 3) -> tuple[SectionRef, list[Signer]]:
    section = new_section(platform)
    bidders = platform.bidders[:count]
    for bidder in bidders:
        commit_with_deposit(platform, section, bidder)
    return section, bidders


# ------------------------------------------------------------------------------------------ shares


def test_witness_publishes_shares_after_the_deadline_once(platform: Platform) -> None:
    section, _ = _section_with_bids(platform, 1)
    witness = platform.witnesses[0]
    pass_deadline(platform, section)
    shares_hash = random_hash()
    result = platform.tenders.publish_decryption_shares(witness, section.section_id, shares_hash)
    event = result.event("DecryptionSharesPublished")
    assert event.args == {"sectionId": section.section_id, "witness": witness.address, "sharesHash": shares_hash}
    assert platform.tenders.decryption_shares_hash(section.section_id, witness.address) == shares_hash
    assert platform.tenders.decryption_shares_hash(section.section_id, platform.witnesses[1].address) == ZERO32
    with pytest.raises(errors.TenderRegistrySharesAlreadyPublished):
        platform.tenders.publish_decryption_shares(witness, section.section_id, random_hash())
    assert platform.tenders.decryption_shares_hash(section.section_id, witness.address) == shares_hash


def test_contract_refuses_shares_before_the_deadline(platform: Platform) -> None:
    section, _ = _section_with_bids(platform, 1)
    with pytest.raises(errors.TenderRegistryBeforeOpening) as caught:
        platform.tenders.publish_decryption_shares(platform.witnesses[0], section.section_id, random_hash())
    assert caught.value.values["openingTime"] == section.opening_time
    assert platform.tenders.decryption_shares_hash(section.section_id, platform.witnesses[0].address) == ZERO32


@pytest.mark.parametrize("who", ["agency", "bidder"])
def test_only_witnesses_publish_shares(platform: Platform, who: str) -> None:
    section, _ = _section_with_bids(platform, 1)
    pass_deadline(platform, section)
    signer = platform.agency if who == "agency" else platform.bidders[0]
    with pytest.raises(errors.TenderRegistryNotWitness):
        platform.tenders.publish_decryption_shares(signer, section.section_id, random_hash())


def test_shares_refused_for_unknown_section_zero_hash_and_closed_opening(platform: Platform) -> None:
    witness = platform.witnesses[0]
    with pytest.raises(errors.TenderRegistryUnknownSection):
        platform.tenders.publish_decryption_shares(witness, random_hash(), random_hash())
    section, bidders = _section_with_bids(platform, 3)
    pass_deadline(platform, section)
    with pytest.raises(errors.TenderRegistryZeroValue):
        platform.tenders.publish_decryption_shares(witness, section.section_id, ZERO32)
    open_all(platform, section, bidders)
    platform.tenders.close_opening(platform.agency, section.section_id, random_hash())
    with pytest.raises(errors.TenderRegistryInvalidSectionStatus):
        platform.tenders.publish_decryption_shares(witness, section.section_id, random_hash())


# ------------------------------------------------------------------------------------------ early access


@pytest.mark.parametrize("who", ["witness", "agency"])
def test_early_access_attempts_are_anchored_and_counted(platform: Platform, who: str) -> None:
    section, _ = _section_with_bids(platform, 1)
    reporter = platform.witnesses[1] if who == "witness" else platform.agency
    evidence = random_hash()
    result = platform.tenders.report_early_access(reporter, section.section_id, evidence)
    assert result.event("EarlyAccessAttempted").args == {
        "sectionId": section.section_id,
        "reporter": reporter.address,
        "evidenceHash": evidence,
        "attempts": 1,
    }
    platform.tenders.report_early_access(reporter, section.section_id, random_hash())
    assert platform.tenders.early_access_attempts(section.section_id) == 2


def test_early_access_reports_need_a_witness_or_the_agency(platform: Platform) -> None:
    section, _ = _section_with_bids(platform, 1)
    for signer in (platform.bidders[0], platform.regulators[0], platform.tenderer):
        with pytest.raises(errors.TenderRegistryNotWitnessOrAgency):
            platform.tenders.report_early_access(signer, section.section_id, random_hash())
    with pytest.raises(errors.TenderRegistryZeroValue):
        platform.tenders.report_early_access(platform.agency, section.section_id, ZERO32)
    with pytest.raises(errors.TenderRegistryUnknownSection):
        platform.tenders.report_early_access(platform.agency, random_hash(), random_hash())
    assert platform.tenders.early_access_attempts(section.section_id) == 0


# ------------------------------------------------------------------------------------------ batched outcomes


def test_record_outcomes_in_one_transaction(platform: Platform) -> None:
    section, bidders = _section_with_bids(platform, 4)
    pass_deadline(platform, section)
    hashes = [random_hash() for _ in bidders]
    statuses = [
        BidStatus.OPENED,
        BidStatus.OPENED,
        BidStatus.DECRYPTION_FAILED_BIDDER_CAUSED,
        BidStatus.DECRYPTION_FAILED_NOT_BIDDER_CAUSED,
    ]
    outcomes = [OpeningOutcome(b.address, s, h) for b, s, h in zip(bidders, statuses, hashes, strict=True)]
    result = platform.tenders.record_outcomes(platform.agency, section.section_id, outcomes)
    assert [e.args["bidder"] for e in result.events_named("BidOpened")] == [b.address for b in bidders[:2]]
    assert [e.args["bidderCaused"] for e in result.events_named("BidDecryptionFailed")] == [True, False]
    for bidder, status, digest in zip(bidders, statuses, hashes, strict=True):
        bid = platform.tenders.bid(section.section_id, bidder.address)
        assert (bid.status, bid.announced_hash) == (status, digest)
    stored = platform.tenders.section(section.section_id)
    assert (stored.outcomes, stored.opened_bids) == (4, 2)
    closed = platform.tenders.close_opening(platform.agency, section.section_id, random_hash())
    assert closed.event("TenderFailed").args["validBids"] == 2  # 2 opened < minimum 3


def test_record_outcomes_is_all_or_nothing(platform: Platform) -> None:
    section, bidders = _section_with_bids(platform, 3)
    pass_deadline(platform, section)
    good = OpeningOutcome(bidders[0].address, BidStatus.OPENED, random_hash())
    before = platform.tenders.section(section.section_id)
    for bad, error in (
        (OpeningOutcome(bidders[1].address, BidStatus.WITHDRAWN, random_hash()), errors.TenderRegistryInvalidOutcome),
        (OpeningOutcome(bidders[1].address, BidStatus.OPENED, ZERO32), errors.TenderRegistryZeroValue),
        (OpeningOutcome(bidders[0].address, BidStatus.OPENED, random_hash()), errors.TenderRegistryInvalidBidStatus),
        (
            OpeningOutcome(platform.bidders[4].address, BidStatus.OPENED, random_hash()),
            errors.TenderRegistryInvalidBidStatus,
        ),
    ):
        with pytest.raises(error):
            platform.tenders.record_outcomes(platform.agency, section.section_id, [good, bad])
    assert platform.tenders.section(section.section_id) == before
    assert platform.tenders.bid(section.section_id, bidders[0].address).status == BidStatus.COMMITTED


def test_record_outcomes_needs_the_agency_after_the_deadline(platform: Platform) -> None:
    section, bidders = _section_with_bids(platform, 1)
    outcome = [OpeningOutcome(bidders[0].address, BidStatus.OPENED, random_hash())]
    with pytest.raises(errors.TenderRegistryBeforeOpening):
        platform.tenders.record_outcomes(platform.agency, section.section_id, outcome)
    pass_deadline(platform, section)
    with pytest.raises(errors.TenderRegistryNotAgency):
        platform.tenders.record_outcomes(platform.witnesses[0], section.section_id, outcome)
    platform.tenders.record_outcomes(platform.agency, section.section_id, outcome)
    assert platform.tenders.section(section.section_id).status == SectionStatus.BIDDING


def test_live_commitments_follow_commits_replacements_and_withdrawals(platform: Platform) -> None:
    section = new_section(platform)
    first, second, third = platform.bidders[:3]
    commit_with_deposit(platform, section, first)
    commit_with_deposit(platform, section, second)
    commit_with_deposit(platform, section, third)
    replacement = random_hash()
    platform.tenders.replace_bid(second, section.section_id, replacement)
    platform.tenders.withdraw_bid(third, section.section_id)
    live = platform.tenders.live_commitments(section.section_id)
    assert live == {
        first.address: platform.tenders.bid(section.section_id, first.address).ciphertext_hash,
        second.address: replacement,
    }
