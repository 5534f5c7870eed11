"""Tender amendments on chain: `amendTender` before the earliest opening time, versions copied into the
sections, bids confirmed by `confirmBid` (or by replacing them), and what the opening does with a bid
that was not confirmed (it opens as usual; `bidConfirmationOf` tells the record and the hall)."""

from __future__ import annotations

import pytest

from contracts import errors
from contracts.client import Signer
from contracts.records import BidConfirmation, BidStatus
from tests.helpers import (
    Platform,
    SectionRef,
    commit_with_deposit,
    fresh_id,
    new_section,
    open_all,
    pass_deadline,
    random_hash,
    section_terms,
)
from tests.test_tender_registry import reverts, watch, watch_tender


def _second_section(platform: Platform, tender_id: bytes, opening_in: int) -> bytes:
    section_id = fresh_id("section")
    terms = section_terms(platform, opening_in=opening_in)
    platform.tenders.add_section(platform.agency, tender_id, section_id, terms)
    return section_id


def test_amend_bumps_the_version_in_the_tender_and_its_sections(platform: Platform) -> None:
    section = new_section(platform)
    second = _second_section(platform, section.tender_id, 7200)
    details = random_hash()
    result = platform.tenders.amend_tender(platform.agency, section.tender_id, details)
    assert result.event("TenderAmended").args == {"tenderId": section.tender_id, "version": 2, "detailsHash": details}
    tender = platform.tenders.tender(section.tender_id)
    assert (tender.version, tender.details_hash, tender.section_count) == (2, details, 2)
    assert platform.tenders.sections_of(section.tender_id) == (section.section_id, second)
    assert platform.tenders.section(section.section_id).tender_version == 2
    assert platform.tenders.section(second).tender_version == 2
    platform.tenders.amend_tender(platform.agency, section.tender_id, random_hash())
    assert platform.tenders.tender(section.tender_id).version == 3
    # A section added after amendments starts at the tender's current version.
    third = _second_section(platform, section.tender_id, 9000)
    assert platform.tenders.section(third).tender_version == 3


def test_bids_track_the_version_they_were_made_on_and_confirmations(platform: Platform) -> None:
    section = new_section(platform)
    first, second, third = platform.bidders[:3]
    commit_with_deposit(platform, section, first)
    commit_with_deposit(platform, section, second)
    assert platform.tenders.bid_confirmation(section.section_id, first.address) == BidConfirmation(1, 1)
    platform.tenders.amend_tender(platform.agency, section.tender_id, random_hash())
    unconfirmed = platform.tenders.bid_confirmation(section.section_id, first.address)
    assert unconfirmed == BidConfirmation(1, 2) and not unconfirmed.confirmed
    # Confirming anchors the version; replacing the document counts as a confirmation too.
    result = platform.tenders.confirm_bid(first, section.section_id, 2)
    assert result.event("BidConfirmed").args == {"sectionId": section.section_id, "bidder": first.address,
                                                 "version": 2}
    assert platform.tenders.bid_confirmation(section.section_id, first.address).confirmed
    platform.tenders.replace_bid(second, section.section_id, random_hash())
    assert platform.tenders.bid_confirmation(section.section_id, second.address) == BidConfirmation(2, 2)
    # A bid committed after the amendment is made on the amended documents.
    commit_with_deposit(platform, section, third)
    assert platform.tenders.bid_confirmation(section.section_id, third.address).confirmed


def test_unconfirmed_bid_is_opened_and_marked(platform: Platform) -> None:
    """电子招标投标办法 practice: the amendment is part of the tender documents; a bid not confirmed after it
    is still opened (唱标) and counted; the chain tells the evaluation which bids did not confirm."""
    section = new_section(platform)
    bidders = platform.bidders[:3]
    for bidder in bidders:
        commit_with_deposit(platform, section, bidder)
    platform.tenders.amend_tender(platform.agency, section.tender_id, random_hash())
    for bidder in bidders[:2]:
        platform.tenders.confirm_bid(bidder, section.section_id, 2)
    pass_deadline(platform, section)
    open_all(platform, section, bidders)
    platform.tenders.close_opening(platform.agency, section.section_id, random_hash())
    assert platform.tenders.bid(section.section_id, bidders[2].address).status == BidStatus.OPENED
    confirmed = [platform.tenders.bid_confirmation(section.section_id, b.address).confirmed for b in bidders]
    assert confirmed == [True, True, False]


def test_amend_after_the_earliest_opening_time_is_refused(platform: Platform) -> None:
    section = new_section(platform, opening_in=600)
    later = _second_section(platform, section.tender_id, 7200)
    platform.backend.advance_to(section.opening_time)
    reads = (watch_tender(platform, section.tender_id), watch(platform, later))
    with reverts(errors.TenderRegistryAmendmentAfterDeadline, *reads) as caught:
        platform.tenders.amend_tender(platform.agency, section.tender_id, random_hash())
    assert caught.value.values["sectionId"] == section.section_id
    assert caught.value.values["nowTime"] >= section.opening_time


@pytest.mark.parametrize("caller", ["outsider", "tenderer", "bidder"])
def test_amend_by_a_stranger_is_refused(platform: Platform, outsider: Signer, caller: str) -> None:
    section = new_section(platform)
    signer = {"outsider": outsider, "tenderer": platform.tenderer, "bidder": platform.bidders[0]}[caller]
    with reverts(errors.TenderRegistryNotAgency, watch_tender(platform, section.tender_id)):
        platform.tenders.amend_tender(signer, section.tender_id, random_hash())


def test_amend_unknown_tender_and_zero_hash(platform: Platform) -> None:
    with reverts(errors.TenderRegistryUnknownTender):
        platform.tenders.amend_tender(platform.agency, fresh_id("tender"), random_hash())
    section = new_section(platform)
    with reverts(errors.TenderRegistryZeroValue, watch_tender(platform, section.tender_id)):
        platform.tenders.amend_tender(platform.agency, section.tender_id, b"\0" * 32)


def _amended_with_bid(platform: Platform) -> tuple[SectionRef, Signer]:
    section = new_section(platform)
    bidder = platform.bidders[0]
    commit_with_deposit(platform, section, bidder)
    platform.tenders.amend_tender(platform.agency, section.tender_id, random_hash())
    return section, bidder


def test_confirm_refusals(platform: Platform) -> None:
    section, bidder = _amended_with_bid(platform)
    read = watch(platform, section.section_id, bidder.address, platform.bidders[1].address)
    for stale in (1, 3):
        with reverts(errors.TenderRegistryStaleVersion, read) as caught:
            platform.tenders.confirm_bid(bidder, section.section_id, stale)
        assert (caught.value.values["given"], caught.value.values["current"]) == (stale, 2)
    with reverts(errors.TenderRegistryInvalidBidStatus, read):
        platform.tenders.confirm_bid(platform.bidders[1], section.section_id, 2)
    platform.backend.advance_to(section.opening_time)
    with reverts(errors.TenderRegistryBidAfterDeadline, read):
        platform.tenders.confirm_bid(bidder, section.section_id, 2)
    assert not platform.tenders.bid_confirmation(section.section_id, bidder.address).confirmed
