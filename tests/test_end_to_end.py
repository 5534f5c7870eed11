"""One whole tender on chain: publish, guarantees, sealed bids, opening, witnesses, award, release, claim."""

from __future__ import annotations

from contracts.records import BidCover, BidStatus, ClaimGround, GuaranteeState, SectionStatus
from tests.helpers import (
    Platform,
    fresh_id,
    issue_guarantee,
    new_section,
    pass_deadline,
    random_hash,
)


def test_whole_tender(platform: Platform) -> None:
    tenders, guarantees = platform.tenders, platform.guarantees
    section = new_section(platform, min_valid_bids=3, quorum=2)
    bidders = platform.bidders[:4]

    guarantee_ids = []
    covers: list[BidCover] = []
    for index, bidder in enumerate(bidders):
        salt = random_hash() if index == 0 else None
        guarantee_id = issue_guarantee(platform, section, bidder, sealed_salt=salt)
        guarantee_ids.append(guarantee_id)
        cover = BidCover.guarantee(guarantee_id, salt)
        result = tenders.commit_bid(bidder, section.section_id, random_hash(), cover)
        assert result.event("BidCommitted").args["bidder"] == bidder.address
        assert not guarantees.guarantee(guarantee_id).bound  # bound only at the reveal
        covers.append(cover)

    pass_deadline(platform, section)
    agency = platform.agency
    for bidder, cover in zip(bidders, covers, strict=True):
        tenders.reveal_cover(agency, section.section_id, bidder.address, cover)
    assert all(guarantees.guarantee(g).bound for g in guarantee_ids)
    for bidder in bidders[:3]:
        tenders.record_bid_opened(agency, section.section_id, bidder.address, random_hash())
    tenders.record_decryption_failure(agency, section.section_id, bidders[3].address, True, random_hash())

    record = random_hash()
    closed = tenders.close_opening(agency, section.section_id, record)
    assert closed.event("OpeningClosed").args["validBids"] == 3
    for witness in platform.witnesses[:2]:
        attested = tenders.attest_opening(witness, section.section_id, record)
    assert attested.event("SectionWitnessed").args["recordHash"] == record

    tenders.award(agency, section.section_id, bidders[0].address, random_hash())
    assert tenders.section(section.section_id).status == SectionStatus.AWARDED

    # Non-winners are released at once; the winner after signing; the bidder-caused failure is claimed.
    guarantor = platform.guarantors[0]
    for guarantee_id in guarantee_ids[1:3]:
        guarantees.release(guarantor, guarantee_id, section.section_id)
    tenders.record_contract_signed(platform.tenderer, section.section_id, random_hash())
    guarantees.release(guarantor, guarantee_ids[0], section.section_id)
    assert tenders.bid(section.section_id, bidders[3].address).status == BidStatus.DECRYPTION_FAILED_BIDDER_CAUSED
    guarantees.claim(
        platform.tenderer,
        guarantee_ids[3],
        section.section_id,
        ClaimGround.BIDDER_CAUSED_DECRYPTION_FAILURE,
        random_hash(),
    )
    paid = guarantees.record_payout(guarantor, guarantee_ids[3], section.terms.bid_bond, fresh_id("payment"))
    assert paid.event("GuaranteePaid").args["amount"] == section.terms.bid_bond
    states = [guarantees.guarantee(g).state for g in guarantee_ids]
    assert states == [GuaranteeState.RELEASED] * 3 + [GuaranteeState.PAID]
