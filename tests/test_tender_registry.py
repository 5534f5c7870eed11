"""TenderRegistry on a real node: every state-changing function's happy path, events and revert paths.

Tests build their tenders, sections, guarantees and bids with fresh ids on the session's shared
deployment. Sections in a given stage that only serve reverting calls are built once per module (see
"shared sections"). A revert is asserted with the exception named after the contract error, its values
where they say something, and reads of the state before and after that must be equal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes

from contracts import errors
from contracts.client import ZERO32, Signer, TxResult
from contracts.deploy import ConsortiumConfig, MemberConfig, deploy
from contracts.errors import ContractRevert
from contracts.records import (
    BidCover,
    BidStatus,
    ClaimGround,
    CoverKind,
    CoverState,
    GuaranteeState,
    OpeningOutcome,
    Role,
    SectionStatus,
    cover_commitment,
)
from tests.backends import Backend
from tests.helpers import (
    BOND,
    OPENING_KEY,
    VALIDITY,
    Platform,
    SectionRef,
    commit_bid,
    commit_with_deposit,
    commit_with_guarantee,
    fresh_id,
    guarantee_terms,
    issue_guarantee,
    new_section,
    new_tender,
    open_all,
    pass_deadline,
    random_hash,
    reveal_covers,
    section_terms,
    witnessed_section,
)

ZERO_ADDRESS = "0x" + "00" * 20
ROLE_AGENCY = int(Role.AGENCY)
ROLE_BIDDER = int(Role.BIDDER)


# ---------------------------------------------------------------------------------------------- helpers


def addr(value: str) -> str:
    """Addresses compared checksummed, whichever case a decoder returns."""
    return to_checksum_address(value)


@contextmanager
def reverts(
    error: type[ContractRevert], *reads: Callable[[], object]
) -> Iterator[pytest.ExceptionInfo[ContractRevert]]:
    """Expect `error`, and that every read returns the same before and after the attempt."""
    before = [read() for read in reads]
    with pytest.raises(error) as caught:
        yield caught
    assert [read() for read in reads] == before, "a reverted call changed state"


def watch(platform: Platform, section_id: bytes, *accounts: str) -> Callable[[], object]:
    """A read of the section and of the bids of `accounts`, to compare around a revert."""

    def read() -> object:
        tenders = platform.tenders
        return (tenders.section(section_id), *(tenders.bid(section_id, account) for account in accounts))

    return read


def watch_tender(platform: Platform, tender_id: bytes) -> Callable[[], object]:
    return lambda: platform.tenders.tender(tender_id)


def watch_guarantee(platform: Platform, guarantee_id: bytes) -> Callable[[], object]:
    return lambda: platform.guarantees.guarantee(guarantee_id)


def bid_cover(platform: Platform, section_id: bytes, bidder: str) -> tuple[CoverKind, bytes]:
    """The `bidCover` view (the typed client has no wrapper for it)."""
    kind, cover = platform.tenders._view("bidCover", section_id, bidder)
    return CoverKind(kind), bytes(cover)


def deadline_of(platform: Platform, section_id: bytes) -> tuple[int, str]:
    """The `deadlineOf` view (the typed client has no wrapper for it)."""
    opening_time, tenderer = platform.tenders._view("deadlineOf", section_id)
    return int(opening_time), addr(tenderer)


def who(platform: Platform, outsider: Signer, name: str) -> Signer:
    """A signer by role name; `admin` is an admin that is no witness."""
    return {
        "outsider": outsider,
        "tenderer": platform.tenderer,
        "agency": platform.agency,
        "bidder": platform.bidders[0],
        "witness": platform.witnesses[0],
        "guarantor": platform.guarantors[0],
        "admin": platform.admins[1],
        "regulator": platform.regulators[0],
    }[name]


def section_with_bids(platform: Platform, count: int, **terms: Any) -> tuple[SectionRef, list[Signer]]:
    """A new section with `count` live cash-deposit bids, still before its deadline."""
    section = new_section(platform, **terms)
    bidders = platform.bidders[:count]
    for bidder in bidders:
        commit_with_deposit(platform, section, bidder)
    return section, bidders


def closed_section(platform: Platform, opened: int = 3, **terms: Any) -> tuple[SectionRef, list[Signer], bytes]:
    """A section whose opening closed with `opened` opened bids (not yet attested)."""
    section, bidders = section_with_bids(platform, opened, **terms)
    pass_deadline(platform, section)
    open_all(platform, section, bidders)
    record = random_hash()
    platform.tenders.close_opening(platform.agency, section.section_id, record)
    return section, bidders, record


def awarded_section(platform: Platform) -> tuple[SectionRef, Signer]:
    """A witnessed section awarded to the first bidder."""
    section, _ = witnessed_section(platform)
    winner = platform.bidders[0]
    platform.tenders.award(platform.agency, section.section_id, winner.address, random_hash())
    return section, winner


def assert_time_values(values: dict[str, Any], section: SectionRef, *, after: bool) -> None:
    assert values["sectionId"] == section.section_id
    assert values["openingTime"] == section.opening_time
    if after:
        assert values["nowTime"] >= section.opening_time
    else:
        assert values["nowTime"] < section.opening_time


# ---------------------------------------------------------------------------------------------- shared sections
#
# Sections in a given stage, built once per module and used only by tests whose calls revert (each of
# those checks that nothing changed), or whose changes the other users do not depend on.

FAR = 30 * 24 * 3600  # a deadline this far ahead is not reached by the module's time travel (hours per test)


@pytest.fixture(scope="module")
def shared_tender(platform: Platform) -> bytes:
    return new_tender(platform)


@pytest.fixture(scope="module")
def bidding(platform: Platform) -> SectionRef:
    """Open for bids for long, with one live bid of bidders[0]."""
    section = new_section(platform, opening_in=FAR)
    commit_with_deposit(platform, section, platform.bidders[0])
    return section


@pytest.fixture(scope="module")
def keyless(platform: Platform) -> SectionRef:
    """Open for bids for long, without an opening key."""
    return new_section(platform, opening_in=FAR, opening_key=b"")


@pytest.fixture(scope="module")
def in_opening(platform: Platform) -> SectionRef:
    """Past its deadline, with live bids of bidders[0:3] and no outcome yet; bidders[3:] have none."""
    section, _ = section_with_bids(platform, 3)
    pass_deadline(platform, section)
    return section


@pytest.fixture(scope="module")
def objected(platform: Platform) -> SectionRef:
    """In opening, with objection 1 raised by bidders[0] and unanswered."""
    section, _ = section_with_bids(platform, 3)
    pass_deadline(platform, section)
    platform.tenders.raise_objection(platform.bidders[0], section.section_id, random_hash())
    return section


@pytest.fixture(scope="module")
def bids_in_states(platform: Platform) -> tuple[SectionRef, dict[BidStatus, str]]:
    """In opening, with a bid in every state a bid can have after the deadline, by status."""
    section = new_section(platform)
    bidders = platform.bidders[:5]
    for bidder in bidders:
        commit_with_deposit(platform, section, bidder)
    platform.tenders.withdraw_bid(bidders[0], section.section_id)
    pass_deadline(platform, section)
    agency, section_id = platform.agency, section.section_id
    platform.tenders.record_bid_opened(agency, section_id, bidders[1].address, random_hash())
    platform.tenders.record_decryption_failure(agency, section_id, bidders[2].address, True, random_hash())
    platform.tenders.record_decryption_failure(agency, section_id, bidders[3].address, False, random_hash())
    platform.tenders.record_withdrawal_after_deadline(agency, section_id, bidders[4].address, random_hash())
    by_status = {
        BidStatus.NONE: platform.tenderer.address,
        BidStatus.WITHDRAWN: bidders[0].address,
        BidStatus.OPENED: bidders[1].address,
        BidStatus.DECRYPTION_FAILED_BIDDER_CAUSED: bidders[2].address,
        BidStatus.DECRYPTION_FAILED_NOT_BIDDER_CAUSED: bidders[3].address,
        BidStatus.WITHDRAWN_AFTER_DEADLINE: bidders[4].address,
    }
    for status, account in by_status.items():
        assert platform.tenders.bid(section_id, account).status == status
    return section, by_status


@pytest.fixture(scope="module")
def opened(platform: Platform) -> tuple[SectionRef, bytes]:
    """Opening closed with three opened bids; witnesses[:2] listed, quorum 2, nobody attested."""
    section, _, record = closed_section(platform, 3, witnesses=platform.witnesses[:2])
    return section, record


@pytest.fixture(scope="module")
def witnessed(platform: Platform) -> tuple[SectionRef, dict[BidStatus, str]]:
    """Opened and witnessed: bidders[0:3] opened, bidders[3] failed to decrypt, bidders[4] withdrew late."""
    section, bidders = section_with_bids(platform, 5)
    pass_deadline(platform, section)
    agency, section_id = platform.agency, section.section_id
    open_all(platform, section, bidders[:3])
    platform.tenders.record_decryption_failure(agency, section_id, bidders[3].address, False, random_hash())
    platform.tenders.record_withdrawal_after_deadline(agency, section_id, bidders[4].address, random_hash())
    record = random_hash()
    platform.tenders.close_opening(agency, section_id, record)
    for witness in platform.witnesses[:2]:
        platform.tenders.attest_opening(witness, section_id, record)
    assert platform.tenders.section(section_id).status == SectionStatus.OPENED
    return section, {
        BidStatus.OPENED: bidders[0].address,
        BidStatus.DECRYPTION_FAILED_NOT_BIDDER_CAUSED: bidders[3].address,
        BidStatus.WITHDRAWN_AFTER_DEADLINE: bidders[4].address,
    }


@pytest.fixture(scope="module")
def failed(platform: Platform) -> SectionRef:
    """A failed tender: two live bids of bidders[0:2], fewer than the minimum, closed without outcomes."""
    section, _ = section_with_bids(platform, 2)
    pass_deadline(platform, section)
    platform.tenders.close_opening(platform.agency, section.section_id, random_hash())
    return section


@pytest.fixture(scope="module")
def awarded(platform: Platform) -> tuple[SectionRef, Signer]:
    """Awarded to bidders[0]; neither signing nor refusal recorded."""
    return awarded_section(platform)


@pytest.fixture(scope="module")
def stages(
    bidding: SectionRef,
    in_opening: SectionRef,
    opened: tuple[SectionRef, bytes],
    failed: SectionRef,
    awarded: tuple[SectionRef, Signer],
) -> dict[str, SectionRef]:
    """The shared sections by stage: before the deadline, in opening, opened, failed, awarded."""
    return {"bidding": bidding, "opening": in_opening, "opened": opened[0], "failed": failed, "awarded": awarded[0]}


STAGE_STATUS = {
    "bidding": SectionStatus.BIDDING,
    "opening": SectionStatus.BIDDING,
    "opened": SectionStatus.OPENED,
    "failed": SectionStatus.FAILED_TENDER,
    "awarded": SectionStatus.AWARDED,
}


# ---------------------------------------------------------------------------------------------- constructor


def test_constructor_rejects_a_guarantee_registry_wired_to_another_registry(
    platform: Platform, outsider: Signer
) -> None:
    chain = platform.backend.chain
    with pytest.raises(errors.TenderRegistryMiswired) as caught:
        chain.deploy(outsider, "TenderRegistry", platform.consortium.address, platform.guarantees.address)
    assert addr(caught.value.values["guaranteeRegistry"]) == platform.guarantees.address
    assert addr(caught.value.values["pointsTo"]) == platform.tenders.address


@pytest.mark.parametrize("field", ["consortium", "guaranteeRegistry"])
def test_constructor_rejects_zero_addresses(platform: Platform, outsider: Signer, field: str) -> None:
    args = {"consortium": platform.consortium.address, "guaranteeRegistry": platform.guarantees.address}
    args[field] = ZERO_ADDRESS
    with pytest.raises(errors.TenderRegistryZeroValue) as caught:
        platform.backend.chain.deploy(outsider, "TenderRegistry", args["consortium"], args["guaranteeRegistry"])
    assert caught.value.values == {"field": field}


def test_deployment_is_wired(platform: Platform) -> None:
    tenders = platform.tenders
    assert addr(tenders._view("consortium")) == platform.consortium.address
    assert addr(tenders._view("guaranteeRegistry")) == platform.guarantees.address


# ---------------------------------------------------------------------------------------------- createTender


def test_create_tender_by_agency(platform: Platform) -> None:
    tender_id, details = fresh_id("tender"), random_hash()
    result = platform.tenders.create_tender(platform.agency, tender_id, platform.tenderer.address, details)
    assert result.event("TenderCreated").args == {
        "tenderId": tender_id,
        "agency": platform.agency.address,
        "tenderer": platform.tenderer.address,
        "detailsHash": details,
    }
    tender = platform.tenders.tender(tender_id)
    assert (tender.agency, tender.tenderer, tender.section_count, tender.details_hash) == (
        platform.agency.address,
        platform.tenderer.address,
        0,
        details,
    )


def test_create_tender_by_tenderer_for_itself_makes_it_the_agency(platform: Platform) -> None:
    tenderer = platform.tenderer
    tender_id = fresh_id("tender")
    result = platform.tenders.create_tender(tenderer, tender_id, tenderer.address, random_hash())
    assert result.event("TenderCreated").args["agency"] == tenderer.address
    assert platform.tenders.tender(tender_id).agency == tenderer.address
    # As its own agency it adds sections; the agency member has no say in this tender.
    section_id = fresh_id("section")
    platform.tenders.add_section(tenderer, tender_id, section_id, section_terms(platform))
    assert platform.tenders.section(section_id).agency == tenderer.address
    with pytest.raises(errors.TenderRegistryNotAgency):
        platform.tenders.add_section(platform.agency, tender_id, fresh_id("section"), section_terms(platform))


@pytest.mark.parametrize(
    ("caller", "tenderer"),
    [
        ("outsider", "tenderer"),
        ("bidder", "tenderer"),
        ("witness", "tenderer"),
        ("guarantor", "tenderer"),
        ("admin", "tenderer"),
        ("tenderer", "bidder"),  # a tenderer may only act for itself
        ("bidder", "bidder"),  # acting for oneself needs the tenderer role
    ],
)
def test_create_tender_unauthorized(platform: Platform, outsider: Signer, caller: str, tenderer: str) -> None:
    signer, named = who(platform, outsider, caller), who(platform, outsider, tenderer)
    tender_id = fresh_id("tender")
    with reverts(errors.TenderRegistryUnauthorized, watch_tender(platform, tender_id)) as caught:
        platform.tenders.create_tender(signer, tender_id, named.address, random_hash())
    assert addr(caught.value.values["account"]) == signer.address
    assert caught.value.values["role"] == ROLE_AGENCY
    assert platform.tenders.tender(tender_id).agency == ZERO_ADDRESS


@pytest.mark.parametrize("field", ["tenderId", "detailsHash", "tenderer"])
def test_create_tender_zero_values(platform: Platform, field: str) -> None:
    args: dict[str, Any] = {
        "tenderId": fresh_id("tender"),
        "detailsHash": random_hash(),
        "tenderer": platform.tenderer.address,
    }
    zero: dict[str, Any] = {"tenderId": ZERO32, "detailsHash": ZERO32, "tenderer": ZERO_ADDRESS}
    args[field] = zero[field]
    with reverts(errors.TenderRegistryZeroValue, watch_tender(platform, args["tenderId"])) as caught:
        platform.tenders.create_tender(platform.agency, args["tenderId"], args["tenderer"], args["detailsHash"])
    assert caught.value.values == {"field": field}


def test_create_tender_duplicate_id(platform: Platform) -> None:
    tender_id = new_tender(platform)
    with reverts(errors.TenderRegistryDuplicateTender, watch_tender(platform, tender_id)) as caught:
        platform.tenders.create_tender(platform.agency, tender_id, platform.tenderer.address, random_hash())
    assert caught.value.values == {"tenderId": tender_id}
    # Also when the tenderer tries to take the id over for itself.
    with pytest.raises(errors.TenderRegistryDuplicateTender):
        platform.tenders.create_tender(platform.tenderer, tender_id, platform.tenderer.address, random_hash())


@pytest.mark.parametrize("tenderer", ["bidder", "agency", "outsider", "witness"])
def test_create_tender_names_a_non_tenderer(platform: Platform, outsider: Signer, tenderer: str) -> None:
    named = who(platform, outsider, tenderer)
    tender_id = fresh_id("tender")
    with reverts(errors.TenderRegistryTendererNotMember, watch_tender(platform, tender_id)) as caught:
        platform.tenders.create_tender(platform.agency, tender_id, named.address, random_hash())
    assert addr(caught.value.values["tenderer"]) == named.address


# ---------------------------------------------------------------------------------------------- addSection


def test_add_section_records_terms_and_emits(platform: Platform) -> None:
    tender_id = new_tender(platform)
    section_id = fresh_id("section")
    witnesses = platform.witnesses
    terms = section_terms(platform, min_valid_bids=0, quorum=2)
    result = platform.tenders.add_section(platform.agency, tender_id, section_id, terms)

    assert result.event("SectionAdded").args == {
        "tenderId": tender_id,
        "sectionId": section_id,
        "openingTime": terms.opening_time,
        "bidValidityPeriod": VALIDITY,
        "bidBond": BOND,
        "minValidBids": 3,  # zero means the default of three
        "witnessQuorum": 2,
        "witnesses": tuple(w.address for w in witnesses),
    }
    assert result.event("OpeningKeySet").args == {"sectionId": section_id, "keyHash": keccak(OPENING_KEY)}
    assert [e.name for e in result.events] == ["SectionAdded", "OpeningKeySet"]

    section = platform.tenders.section(section_id)
    assert section.status == SectionStatus.BIDDING
    assert section.tenderer == platform.tenderer.address
    assert section.agency == platform.agency.address
    assert section.opening_time == terms.opening_time
    assert (section.bid_bond, section.bid_validity_period, section.min_valid_bids) == (BOND, VALIDITY, 3)
    assert (section.witness_quorum, section.attestations, section.live_bids) == (2, 0, 0)
    assert section.has_opening_key
    assert section.tender_id == tender_id
    assert section.opening_record_hash == ZERO32
    assert platform.tenders.witnesses(section_id) == tuple(w.address for w in witnesses)
    assert platform.tenders.opening_key(section_id) == OPENING_KEY
    assert not platform.tenders.is_witnessed(section_id)
    assert platform.tenders.tender(tender_id).section_count == 1


def test_add_sections_counts_them_and_keeps_explicit_minimum(platform: Platform) -> None:
    tender_id = new_tender(platform)
    first, second = fresh_id("section"), fresh_id("section")
    platform.tenders.add_section(platform.agency, tender_id, first, section_terms(platform))
    terms = section_terms(platform, min_valid_bids=1, quorum=1, witnesses=platform.witnesses[1:2], opening_key=b"")
    result = platform.tenders.add_section(platform.agency, tender_id, second, terms)
    assert result.event("SectionAdded").args["minValidBids"] == 1
    assert result.events_named("OpeningKeySet") == []  # no key yet
    section = platform.tenders.section(second)
    assert (section.min_valid_bids, section.witness_quorum, section.has_opening_key) == (1, 1, False)
    assert platform.tenders.opening_key(second) == b""
    assert platform.tenders.witnesses(second) == (platform.witnesses[1].address,)
    assert platform.tenders.tender(tender_id).section_count == 2


def test_add_section_accepts_a_key_of_the_maximum_length(platform: Platform) -> None:
    key = b"\x07" * 512
    section = new_section(platform, opening_key=key)
    assert platform.tenders.opening_key(section.section_id) == key


def test_add_section_unknown_tender(platform: Platform) -> None:
    tender_id, section_id = fresh_id("tender"), fresh_id("section")
    with reverts(errors.TenderRegistryUnknownTender, watch(platform, section_id)) as caught:
        platform.tenders.add_section(platform.agency, tender_id, section_id, section_terms(platform))
    assert caught.value.values == {"tenderId": tender_id}


@pytest.mark.parametrize("caller", ["tenderer", "outsider", "bidder", "witness", "admin"])
def test_add_section_not_agency(platform: Platform, shared_tender: bytes, outsider: Signer, caller: str) -> None:
    signer = who(platform, outsider, caller)
    tender_id, section_id = shared_tender, fresh_id("section")
    read_tender = watch_tender(platform, tender_id)
    with reverts(errors.TenderRegistryNotAgency, read_tender, watch(platform, section_id)) as caught:
        platform.tenders.add_section(signer, tender_id, section_id, section_terms(platform))
    assert caught.value.values["id"] == tender_id
    assert addr(caught.value.values["account"]) == signer.address


def test_add_section_zero_id(platform: Platform) -> None:
    tender_id = new_tender(platform)
    with reverts(errors.TenderRegistryZeroValue, watch_tender(platform, tender_id)) as caught:
        platform.tenders.add_section(platform.agency, tender_id, ZERO32, section_terms(platform))
    assert caught.value.values == {"field": "sectionId"}


def test_add_section_duplicate_id_in_same_or_other_tender(platform: Platform) -> None:
    section = new_section(platform)
    other_tender = new_tender(platform)
    for tender_id in (section.tender_id, other_tender):
        read_section = watch(platform, section.section_id)
        read_tender = watch_tender(platform, tender_id)
        with reverts(errors.TenderRegistryDuplicateSection, read_section, read_tender) as c:
            platform.tenders.add_section(platform.agency, tender_id, section.section_id, section_terms(platform))
        assert c.value.values == {"sectionId": section.section_id}
    assert platform.tenders.witnesses(section.section_id) == tuple(w.address for w in platform.witnesses)


@pytest.mark.parametrize("offset", [0, -1, -3600])
def test_add_section_opening_time_not_in_future(platform: Platform, shared_tender: bytes, offset: int) -> None:
    tender_id, section_id = shared_tender, fresh_id("section")
    terms = dataclasses.replace(section_terms(platform), opening_time=platform.now() + offset)
    with reverts(errors.TenderRegistryOpeningTimeInPast, watch(platform, section_id)) as caught:
        platform.tenders.add_section(platform.agency, tender_id, section_id, terms)
    assert caught.value.values["openingTime"] == terms.opening_time
    assert caught.value.values["nowTime"] >= terms.opening_time


@pytest.mark.parametrize(
    ("change", "error", "field"),
    [
        ({"bid_bond": 0}, "TenderRegistryZeroValue", "bidBond"),
        ({"bid_validity_period": 0}, "TenderRegistryInvalidTerms", "bidValidityPeriod"),
        ({"witnesses": ()}, "TenderRegistryInvalidTerms", "witnesses"),
        ({"witness_quorum": 0}, "TenderRegistryInvalidTerms", "witnessQuorum"),
        ({"witness_quorum": 4}, "TenderRegistryInvalidTerms", "witnessQuorum"),  # three witnesses listed
    ],
)
def test_add_section_invalid_terms(
    platform: Platform, shared_tender: bytes, change: dict[str, Any], error: str, field: str
) -> None:
    tender_id, section_id = shared_tender, fresh_id("section")
    terms = dataclasses.replace(section_terms(platform), **change)
    read_tender = watch_tender(platform, tender_id)
    with reverts(errors.error_class(error), watch(platform, section_id), read_tender) as caught:
        platform.tenders.add_section(platform.agency, tender_id, section_id, terms)
    assert caught.value.values == {"field": field}


def test_add_section_too_many_witnesses(platform: Platform, shared_tender: bytes) -> None:
    tender_id, section_id = shared_tender, fresh_id("section")
    terms = section_terms(platform, witnesses=platform.witnesses * 11)  # 33 > 32, checked before membership
    with reverts(errors.TenderRegistryInvalidTerms, watch(platform, section_id)) as caught:
        platform.tenders.add_section(platform.agency, tender_id, section_id, terms)
    assert caught.value.values == {"field": "witnesses"}


@pytest.mark.parametrize("bad", ["bidder", "outsider", "agency", "duplicate"])
def test_add_section_invalid_witness(platform: Platform, shared_tender: bytes, outsider: Signer, bad: str) -> None:
    tender_id, section_id = shared_tender, fresh_id("section")
    culprit = platform.witnesses[0] if bad == "duplicate" else who(platform, outsider, bad)
    terms = section_terms(platform, witnesses=[platform.witnesses[0], culprit], quorum=1)
    with reverts(errors.TenderRegistryInvalidWitness, watch(platform, section_id)) as caught:
        platform.tenders.add_section(platform.agency, tender_id, section_id, terms)
    assert addr(caught.value.values["witness"]) == culprit.address
    assert platform.tenders.witnesses(section_id) == ()
    assert not platform.tenders.has_attested(section_id, platform.witnesses[0].address)


def test_add_section_opening_key_too_long(platform: Platform, shared_tender: bytes) -> None:
    tender_id, section_id = shared_tender, fresh_id("section")
    terms = section_terms(platform, opening_key=b"\x01" * 513)
    with reverts(errors.TenderRegistryInvalidOpeningKey, watch(platform, section_id)) as caught:
        platform.tenders.add_section(platform.agency, tender_id, section_id, terms)
    assert caught.value.values == {"length": 513}
    assert platform.tenders.witnesses(section_id) == ()


# ---------------------------------------------------------------------------------------------- setOpeningKey


def test_set_opening_key_then_bids_are_accepted(platform: Platform) -> None:
    section = new_section(platform, opening_key=b"")
    bidder = platform.bidders[0]
    with reverts(errors.TenderRegistryOpeningKeyMissing, watch(platform, section.section_id, bidder.address)) as c:
        commit_with_deposit(platform, section, bidder)
    assert c.value.values == {"sectionId": section.section_id}

    key = b"\x03" + b"\x42" * 32
    result = platform.tenders.set_opening_key(platform.agency, section.section_id, key)
    assert result.event("OpeningKeySet").args == {"sectionId": section.section_id, "keyHash": keccak(key)}
    assert platform.tenders.opening_key(section.section_id) == key
    assert platform.tenders.section(section.section_id).has_opening_key

    # Before any bid relies on it the key may still change.
    new_key = b"\x02" + b"\x43" * 32
    platform.tenders.set_opening_key(platform.agency, section.section_id, new_key)
    assert platform.tenders.opening_key(section.section_id) == new_key

    committed = commit_with_deposit(platform, section, bidder)
    assert committed.event("BidCommitted").args["bidder"] == bidder.address


def test_opening_key_locked_while_a_live_bid_exists(platform: Platform) -> None:
    section, (bidder,) = section_with_bids(platform, 1)
    read_key = lambda: platform.tenders.opening_key(section.section_id)  # noqa: E731
    with reverts(errors.TenderRegistryOpeningKeyLocked, read_key, watch(platform, section.section_id)) as caught:
        platform.tenders.set_opening_key(platform.agency, section.section_id, b"\x02" + b"\x99" * 32)
    assert caught.value.values == {"sectionId": section.section_id}
    assert platform.tenders.opening_key(section.section_id) == OPENING_KEY

    # Once no live bid relies on the key it may change again.
    platform.tenders.withdraw_bid(bidder, section.section_id)
    key = b"\x02" + b"\x98" * 32
    platform.tenders.set_opening_key(platform.agency, section.section_id, key)
    assert platform.tenders.opening_key(section.section_id) == key


@pytest.mark.parametrize("caller", ["tenderer", "bidder", "outsider", "witness"])
def test_set_opening_key_not_agency(platform: Platform, keyless: SectionRef, outsider: Signer, caller: str) -> None:
    signer = who(platform, outsider, caller)
    section = keyless
    with reverts(errors.TenderRegistryNotAgency, watch(platform, section.section_id)) as caught:
        platform.tenders.set_opening_key(signer, section.section_id, OPENING_KEY)
    assert caught.value.values["id"] == section.section_id
    assert addr(caught.value.values["account"]) == signer.address
    assert platform.tenders.opening_key(section.section_id) == b""


def test_set_opening_key_unknown_section(platform: Platform) -> None:
    section_id = fresh_id("section")
    with reverts(errors.TenderRegistryUnknownSection) as caught:
        platform.tenders.set_opening_key(platform.agency, section_id, OPENING_KEY)
    assert caught.value.values == {"sectionId": section_id}


def test_set_opening_key_after_deadline(platform: Platform) -> None:
    section = new_section(platform, opening_key=b"")
    pass_deadline(platform, section)
    with reverts(errors.TenderRegistryBidAfterDeadline, watch(platform, section.section_id)) as caught:
        platform.tenders.set_opening_key(platform.agency, section.section_id, OPENING_KEY)
    assert_time_values(caught.value.values, section, after=True)


@pytest.mark.parametrize("length", [0, 513])
def test_set_opening_key_invalid_length(platform: Platform, keyless: SectionRef, length: int) -> None:
    read_key = lambda: platform.tenders.opening_key(keyless.section_id)  # noqa: E731
    with reverts(errors.TenderRegistryInvalidOpeningKey, watch(platform, keyless.section_id), read_key) as caught:
        platform.tenders.set_opening_key(platform.agency, keyless.section_id, b"\x05" * length)
    assert caught.value.values == {"length": length}
    assert platform.tenders.opening_key(keyless.section_id) == b""


# ---------------------------------------------------------------------------------------------- commitBid


def test_commit_with_cash_deposit(platform: Platform) -> None:
    section = new_section(platform)
    bidder = platform.bidders[0]
    ciphertext, cover = random_hash(), BidCover.deposit(fresh_id("deposit"))
    commitment = cover.commitment(section.section_id, bidder.address)
    result = commit_bid(platform, bidder, section.section_id, ciphertext, cover)
    assert result.event("BidCommitted").args == {
        "sectionId": section.section_id,
        "bidder": bidder.address,
        "ciphertextHash": ciphertext,
        "coverCommitment": commitment,
    }
    assert [e.name for e in result.events] == ["BidCommitted"]
    bid = platform.tenders.bid(section.section_id, bidder.address)
    assert (bid.status, bid.ciphertext_hash, bid.cover_kind, bid.cover, bid.announced_hash) == (
        BidStatus.COMMITTED,
        ciphertext,
        CoverKind.GUARANTEE,  # zero: the kind is hidden too until the reveal
        ZERO32,
        ZERO32,
    )
    assert platform.tenders.cover_of(section.section_id, bidder.address) == CoverState(
        commitment, False, CoverKind.GUARANTEE, ZERO32
    )
    assert platform.tenders.section(section.section_id).live_bids == 1
    assert bid_cover(platform, section.section_id, bidder.address) == (CoverKind.GUARANTEE, ZERO32)

    # From the opening time on the agency reveals it.
    platform.backend.advance_to(section.opening_time)
    revealed = platform.tenders.reveal_cover(platform.agency, section.section_id, bidder.address, cover)
    assert [e.name for e in revealed.events] == ["CoverRevealed"]
    assert revealed.event("CoverRevealed").args == {
        "sectionId": section.section_id,
        "bidder": bidder.address,
        "kind": CoverKind.CASH_DEPOSIT,
        "cover": cover.cover,
    }
    assert bid_cover(platform, section.section_id, bidder.address) == (CoverKind.CASH_DEPOSIT, cover.cover)
    assert platform.tenders.cover_of(section.section_id, bidder.address) == CoverState(
        commitment, True, CoverKind.CASH_DEPOSIT, cover.cover
    )


def test_cover_commitment_matches_the_contract(platform: Platform) -> None:
    cover, section_id, bidder = BidCover.guarantee(random_hash()), random_hash(), platform.bidders[0].address
    on_chain = platform.tenders._view(
        "coverCommitmentOf", section_id, bidder, int(cover.kind), cover.cover, cover.salt
    )
    assert bytes(on_chain) == cover.commitment(section_id, bidder) == cover_commitment(
        section_id, bidder, cover.kind, cover.cover, cover.salt
    )


@pytest.mark.parametrize("sealed", [False, True], ids=["open-reference", "sealed-reference"])
@pytest.mark.parametrize("revealer", ["agency", "bidder"])
def test_guarantee_is_bound_only_at_the_reveal(platform: Platform, sealed: bool, revealer: str) -> None:
    """密文保函: the commit shows nothing of the guarantee; the reveal at the opening binds it."""
    section = new_section(platform)
    bidder = platform.bidders[1]
    salt = random_hash() if sealed else None
    guarantee_id = issue_guarantee(platform, section, bidder, sealed_salt=salt)
    cover = BidCover.guarantee(guarantee_id, salt)
    ciphertext = random_hash()
    result = commit_bid(platform, bidder, section.section_id, ciphertext, cover)
    assert [e.name for e in result.events] == ["BidCommitted"]
    assert not platform.guarantees.guarantee(guarantee_id).bound
    # Neither the guarantee id nor the salt appear in the commit's calldata, topics or data.
    chain = platform.backend.chain
    sent = bytes(chain.w3.eth.get_transaction(HexBytes(result.tx_hash))["input"])
    receipt = chain.w3.eth.get_transaction_receipt(HexBytes(result.tx_hash))
    seen = sent + b"".join(bytes(log["data"]) + b"".join(bytes(t) for t in log["topics"]) for log in receipt["logs"])
    assert guarantee_id not in seen and cover.salt not in seen
    assert all(log["address"] == platform.tenders.address for log in receipt["logs"])

    platform.backend.advance_to(section.opening_time)
    signer = platform.agency if revealer == "agency" else bidder
    revealed = platform.tenders.reveal_cover(signer, section.section_id, bidder.address, cover)
    assert [e.name for e in revealed.events] == ["CoverRevealed", "GuaranteeBound"]
    bound = revealed.event("GuaranteeBound")
    assert bound.address == platform.guarantees.address
    assert bound.args == {"guaranteeId": guarantee_id, "sectionId": section.section_id, "bidder": bidder.address}
    assert platform.guarantees.guarantee(guarantee_id).bound
    bid = platform.tenders.bid(section.section_id, bidder.address)
    assert (bid.status, bid.cover_kind, bid.cover) == (BidStatus.COMMITTED, CoverKind.GUARANTEE, guarantee_id)
    assert bid_cover(platform, section.section_id, bidder.address) == (CoverKind.GUARANTEE, guarantee_id)
    # Revealed once only.
    read = watch(platform, section.section_id, bidder.address)
    with reverts(errors.TenderRegistryCoverAlreadyRevealed, read, watch_guarantee(platform, guarantee_id)) as c:
        platform.tenders.reveal_cover(platform.agency, section.section_id, bidder.address, cover)
    assert c.value.values == {"sectionId": section.section_id, "bidder": bidder.address}


def test_guarantee_covering_exactly_the_bond_and_validity_is_accepted(platform: Platform) -> None:
    section = new_section(platform)
    bidder = platform.bidders[2]
    guarantee_id = issue_guarantee(platform, section, bidder, amount=BOND, valid_until=section.opening_time + VALIDITY)
    commit_bid(platform, bidder, section.section_id, random_hash(), BidCover.guarantee(guarantee_id))
    pass_deadline(platform, section)
    assert platform.guarantees.guarantee(guarantee_id).bound


def test_commit_events_carry_only_hashes_ids_addresses_and_enums(platform: Platform) -> None:
    """Nothing of a bid's content, its cover nor the salt blinding it reaches the chain's logs at commit."""
    section = new_section(platform)
    bidder = platform.bidders[0]
    salt = random_hash()
    guarantee_id = issue_guarantee(platform, section, bidder, sealed_salt=salt)
    covered = commit_bid(platform, bidder, section.section_id, random_hash(), BidCover.guarantee(guarantee_id, salt))
    deposited = commit_with_deposit(platform, section, platform.bidders[1])
    for result in (covered, deposited):
        assert [e.name for e in result.events] == ["BidCommitted"]
        committed = result.event("BidCommitted").args
        assert set(committed) == {"sectionId", "bidder", "ciphertextHash", "coverCommitment"}
        for name in ("sectionId", "ciphertextHash", "coverCommitment"):
            assert isinstance(committed[name], bytes) and len(committed[name]) == 32
        assert committed["coverCommitment"] not in (salt, guarantee_id)
        assert isinstance(committed["bidder"], str) and committed["bidder"] == to_checksum_address(committed["bidder"])
        # Every log is one we decode, and carries fixed-size words only (no hidden dynamic payload).
        receipt = platform.backend.chain.w3.eth.get_transaction_receipt(HexBytes(result.tx_hash))
        assert len(receipt["logs"]) == len(result.events)
        for log in receipt["logs"]:
            assert len(log["data"]) <= 3 * 32 and len(log["data"]) % 32 == 0
            assert salt not in bytes(log["data"]) and all(bytes(topic) != salt for topic in log["topics"])


@pytest.mark.parametrize("caller", ["outsider", "tenderer", "agency", "witness", "guarantor", "admin"])
def test_commit_unauthorized(platform: Platform, bidding: SectionRef, outsider: Signer, caller: str) -> None:
    signer = who(platform, outsider, caller)
    section = bidding
    with reverts(errors.TenderRegistryUnauthorized, watch(platform, section.section_id, signer.address)) as caught:
        commit_with_deposit(platform, section, signer)
    assert addr(caught.value.values["account"]) == signer.address
    assert caught.value.values["role"] == ROLE_BIDDER


def test_commit_unknown_section(platform: Platform) -> None:
    section_id = fresh_id("section")
    with reverts(errors.TenderRegistryUnknownSection, watch(platform, section_id, platform.bidders[0].address)) as c:
        commit_bid(platform, platform.bidders[0], section_id, random_hash(), BidCover.deposit(fresh_id("deposit")))
    assert c.value.values == {"sectionId": section_id}


def test_commit_only_before_the_deadline(platform: Platform) -> None:
    section = new_section(platform, opening_in=600)
    early, late = platform.bidders[0], platform.bidders[1]
    platform.backend.advance_to(section.opening_time - 60)
    commit_with_deposit(platform, section, early)  # a minute before: accepted
    assert platform.now() < section.opening_time
    pass_deadline(platform, section)
    with reverts(errors.TenderRegistryBidAfterDeadline, watch(platform, section.section_id, late.address)) as caught:
        commit_with_deposit(platform, section, late)
    assert_time_values(caught.value.values, section, after=True)
    assert platform.tenders.section(section.section_id).live_bids == 1


def test_commit_with_guarantee_after_the_deadline_leaves_it_unbound(platform: Platform) -> None:
    section = new_section(platform)
    bidder = platform.bidders[0]
    guarantee_id = issue_guarantee(platform, section, bidder)
    pass_deadline(platform, section)
    with reverts(errors.TenderRegistryBidAfterDeadline, watch_guarantee(platform, guarantee_id)):
        commit_bid(platform, bidder, section.section_id, random_hash(), BidCover.guarantee(guarantee_id))
    assert not platform.guarantees.guarantee(guarantee_id).bound


def test_commit_zero_ciphertext(platform: Platform, bidding: SectionRef) -> None:
    section = bidding
    bidder = platform.bidders[1]
    with reverts(errors.TenderRegistryZeroValue, watch(platform, section.section_id, bidder.address)) as caught:
        commit_bid(platform, bidder, section.section_id, ZERO32, BidCover.deposit(fresh_id("deposit")))
    assert caught.value.values == {"field": "ciphertextHash"}


def test_a_zero_cover_commitment_is_refused(platform: Platform, bidding: SectionRef) -> None:
    section = bidding
    bidder = platform.bidders[1]
    with reverts(errors.TenderRegistryInvalidCover, watch(platform, section.section_id, bidder.address)) as caught:
        platform.tenders.commit_bid_blinded(bidder, section.section_id, random_hash(), ZERO32)
    assert caught.value.values == {"sectionId": section.section_id}


def test_commit_twice_is_refused(platform: Platform) -> None:
    section, (bidder,) = section_with_bids(platform, 1)
    with reverts(errors.TenderRegistryBidExists, watch(platform, section.section_id, bidder.address)) as caught:
        commit_with_deposit(platform, section, bidder)
    assert caught.value.values["sectionId"] == section.section_id
    assert addr(caught.value.values["bidder"]) == bidder.address


def test_same_guarantee_cannot_cover_two_bids(platform: Platform) -> None:
    section = new_section(platform)
    bidder, other = platform.bidders[0], platform.bidders[1]
    guarantee_id = issue_guarantee(platform, section, bidder)
    mine, theirs = BidCover.guarantee(guarantee_id), BidCover.guarantee(guarantee_id)
    commit_bid(platform, bidder, section.section_id, random_hash(), mine)
    # Nothing stops another bidder committing to the same guarantee id: the commitment hides it ...
    platform.tenders.commit_bid(other, section.section_id, random_hash(), theirs)
    platform.backend.advance_to(section.opening_time)
    platform.tenders.reveal_cover(platform.agency, section.section_id, bidder.address, mine)
    # ... but its reveal is refused, the guarantee being bound already.
    read = watch(platform, section.section_id, bidder.address, other.address)
    with reverts(errors.GuaranteeRegistryAlreadyBound, read, watch_guarantee(platform, guarantee_id)) as caught:
        platform.tenders.reveal_cover(platform.agency, section.section_id, other.address, theirs)
    assert caught.value.values == {"guaranteeId": guarantee_id}
    assert not platform.tenders.cover_of(section.section_id, other.address).revealed


GUARANTEE_FAILURES = [
    "amount-below-bond",
    "applicant-mismatch",
    "wrong-salt",
    "sealed-without-its-salt",
    "other-section",
    "validity-too-short",
    "unknown",
    "cancelled",
    "issued-after-deadline",
]


@pytest.mark.parametrize("case", GUARANTEE_FAILURES)
def test_reveal_of_a_guarantee_bubbles_guarantee_registry_errors(platform: Platform, case: str) -> None:
    section = new_section(platform)
    bidder, other = platform.bidders[1], platform.bidders[2]
    salt: bytes | None = None
    expected: dict[str, Any]
    guarantee_id = fresh_id("guarantee")
    if case == "amount-below-bond":
        guarantee_id = issue_guarantee(platform, section, bidder, amount=BOND - 1)
        error = errors.GuaranteeRegistryAmountBelowBond
        expected = {"guaranteeId": guarantee_id, "amount": BOND - 1, "bond": BOND}
    elif case == "applicant-mismatch":
        guarantee_id = issue_guarantee(platform, section, other)
        error = errors.GuaranteeRegistryApplicantMismatch
        expected = {"guaranteeId": guarantee_id, "applicant": other.address, "bidder": bidder.address}
    elif case in ("wrong-salt", "sealed-without-its-salt"):
        # The bidder blinds its cover with a salt that does not open the guarantee's sealed reference.
        guarantee_id = issue_guarantee(platform, section, bidder, sealed_salt=random_hash())
        salt = random_hash() if case == "wrong-salt" else ZERO32
        error = errors.GuaranteeRegistrySectionMismatch
        expected = {"guaranteeId": guarantee_id, "sectionId": section.section_id}
    elif case == "other-section":
        guarantee_id = issue_guarantee(platform, new_section(platform), bidder)
        error = errors.GuaranteeRegistrySectionMismatch
        expected = {"guaranteeId": guarantee_id, "sectionId": section.section_id}
    elif case == "validity-too-short":
        required = section.opening_time + VALIDITY
        guarantee_id = issue_guarantee(platform, section, bidder, valid_until=required - 1)
        error = errors.GuaranteeRegistryValidityTooShort
        expected = {"guaranteeId": guarantee_id, "validUntil": required - 1, "requiredValidUntil": required}
    elif case == "unknown":
        error = errors.GuaranteeRegistryUnknownGuarantee
        expected = {"guaranteeId": guarantee_id}
    elif case == "cancelled":
        guarantee_id = issue_guarantee(platform, section, bidder)
        platform.guarantees.cancel(platform.guarantors[0], guarantee_id)
        error = errors.GuaranteeRegistryInvalidState
        expected = {"guaranteeId": guarantee_id, "state": GuaranteeState.CANCELLED}
    else:
        salt = random_hash()  # committed to now, issued (sealed, so unchecked at issue) after the deadline
        error = errors.GuaranteeRegistryAfterDeadline
    cover = BidCover.guarantee(guarantee_id, salt)
    commit_bid(platform, bidder, section.section_id, random_hash(), cover)
    platform.backend.advance_to(section.opening_time)
    if case == "issued-after-deadline":
        terms = guarantee_terms(platform, section, bidder, sealed_salt=salt)
        platform.guarantees.issue(platform.guarantors[0], guarantee_id, terms)
        issued_at = platform.guarantees.guarantee(guarantee_id).issued_at
        assert issued_at >= section.opening_time
        expected = {"sectionId": section.section_id, "openingTime": section.opening_time, "nowTime": issued_at}
    read = watch(platform, section.section_id, bidder.address)
    with reverts(error, read, watch_guarantee(platform, guarantee_id)) as caught:
        platform.tenders.reveal_cover(platform.agency, section.section_id, bidder.address, cover)
    assert caught.value.values == expected
    assert platform.tenders.cover_of(section.section_id, bidder.address).revealed is False
    assert not platform.guarantees.guarantee(guarantee_id).bound


@pytest.fixture(scope="module")
def two_tenderers(backend: Backend, dev_config: ConsortiumConfig) -> tuple[Platform, Signer]:
    """A separate deployment whose consortium has a second tenderer (the shared one stays untouched)."""
    second = Signer.from_key(keccak(text="test_tender_registry: second tenderer"))  # never signs here
    member = MemberConfig("另一招标人有限公司", "91350200MA0000099Z", Role.TENDERER, second)
    config = dataclasses.replace(dev_config, members=(*dev_config.members, member))
    deployment, manifest = deploy(backend.chain, config)
    return Platform.build(backend, deployment, config, manifest), second


def test_reveal_of_a_guarantee_for_another_beneficiary(two_tenderers: tuple[Platform, Signer]) -> None:
    platform, second_tenderer = two_tenderers
    tender_id, section_id = fresh_id("tender"), fresh_id("section")
    platform.tenders.create_tender(platform.agency, tender_id, second_tenderer.address, random_hash())
    terms = section_terms(platform)
    platform.tenders.add_section(platform.agency, tender_id, section_id, terms)
    section = SectionRef(tender_id, section_id, terms.opening_time, terms)
    assert platform.tenders.section(section_id).tenderer == second_tenderer.address
    bidder, other, salt = platform.bidders[0], platform.bidders[1], random_hash()
    # Sealed, so the guarantor could not check the beneficiary against the section at issue.
    wrong = issue_guarantee(platform, section, bidder, sealed_salt=salt, beneficiary=platform.tenderer.address)
    good = issue_guarantee(platform, section, other, sealed_salt=salt, beneficiary=second_tenderer.address)
    commit_bid(platform, bidder, section_id, random_hash(), BidCover.guarantee(wrong, salt))
    commit_bid(platform, other, section_id, random_hash(), BidCover.guarantee(good, salt))
    platform.backend.advance_to(section.opening_time)
    read = watch(platform, section_id, bidder.address)
    with reverts(errors.GuaranteeRegistryBeneficiaryMismatch, read, watch_guarantee(platform, wrong)) as c:
        platform.tenders.reveal_cover(platform.agency, section_id, bidder.address, BidCover.guarantee(wrong, salt))
    assert c.value.values == {
        "guaranteeId": wrong,
        "beneficiary": platform.tenderer.address,
        "tenderer": second_tenderer.address,
    }
    # A guarantee naming the right beneficiary is accepted.
    platform.tenders.reveal_cover(platform.agency, section_id, other.address, BidCover.guarantee(good, salt))
    assert platform.guarantees.guarantee(good).bound


# ---------------------------------------------------------------------------------------------- replaceBid


def test_replace_bid_keeps_the_cover(platform: Platform) -> None:
    section = new_section(platform)
    bidder = platform.bidders[0]
    guarantee_id, _ = commit_with_guarantee(platform, section, bidder)
    ciphertext = random_hash()
    result = platform.tenders.replace_bid(bidder, section.section_id, ciphertext)
    assert result.event("BidReplaced").args == {
        "sectionId": section.section_id,
        "bidder": bidder.address,
        "ciphertextHash": ciphertext,
    }
    bid = platform.tenders.bid(section.section_id, bidder.address)
    assert (bid.status, bid.ciphertext_hash) == (BidStatus.COMMITTED, ciphertext)
    assert platform.tenders.section(section.section_id).live_bids == 1
    # The cover commitment stays, and still opens to the guarantee at the opening.
    pass_deadline(platform, section)
    assert platform.tenders.bid(section.section_id, bidder.address).cover == guarantee_id
    assert platform.guarantees.guarantee(guarantee_id).bound


def test_replace_bid_unknown_section(platform: Platform) -> None:
    section_id = fresh_id("section")
    with reverts(errors.TenderRegistryUnknownSection) as caught:
        platform.tenders.replace_bid(platform.bidders[0], section_id, random_hash())
    assert caught.value.values == {"sectionId": section_id}


def test_replace_bid_after_deadline(platform: Platform, in_opening: SectionRef) -> None:
    section, bidder = in_opening, platform.bidders[0]
    with reverts(errors.TenderRegistryBidAfterDeadline, watch(platform, section.section_id, bidder.address)) as c:
        platform.tenders.replace_bid(bidder, section.section_id, random_hash())
    assert_time_values(c.value.values, section, after=True)


def test_replace_bid_zero_ciphertext(platform: Platform, bidding: SectionRef) -> None:
    section, bidder = bidding, platform.bidders[0]
    with reverts(errors.TenderRegistryZeroValue, watch(platform, section.section_id, bidder.address)) as caught:
        platform.tenders.replace_bid(bidder, section.section_id, ZERO32)
    assert caught.value.values == {"field": "ciphertextHash"}


@pytest.mark.parametrize("state", [BidStatus.NONE, BidStatus.WITHDRAWN])
def test_replace_bid_needs_a_live_bid(platform: Platform, bidding: SectionRef, state: BidStatus) -> None:
    section, bidder = bidding, platform.bidders[3]
    if state == BidStatus.WITHDRAWN:
        section, bidder = new_section(platform), platform.bidders[0]
        commit_with_deposit(platform, section, bidder)
        platform.tenders.withdraw_bid(bidder, section.section_id)
    with reverts(errors.TenderRegistryInvalidBidStatus, watch(platform, section.section_id, bidder.address)) as c:
        platform.tenders.replace_bid(bidder, section.section_id, random_hash())
    assert c.value.values == {"sectionId": section.section_id, "bidder": bidder.address, "status": state}


# ---------------------------------------------------------------------------------------------- withdrawBid


def test_withdraw_cash_bid(platform: Platform) -> None:
    section, (bidder, other) = section_with_bids(platform, 2)
    result = platform.tenders.withdraw_bid(bidder, section.section_id)
    assert result.event("BidWithdrawn").args == {"sectionId": section.section_id, "bidder": bidder.address}
    assert result.events_named("GuaranteeUnbound") == []
    assert platform.tenders.bid(section.section_id, bidder.address).status == BidStatus.WITHDRAWN
    assert platform.tenders.bid(section.section_id, other.address).status == BidStatus.COMMITTED
    assert platform.tenders.section(section.section_id).live_bids == 1
    assert bid_cover(platform, section.section_id, bidder.address) == (CoverKind.GUARANTEE, ZERO32)
    assert platform.tenders.bond_releasable(section.section_id, bidder.address)


def test_withdraw_and_recommit_with_another_cover(platform: Platform) -> None:
    section = new_section(platform)
    bidder = platform.bidders[0]
    guarantee_id, _ = commit_with_guarantee(platform, section, bidder)
    result = platform.tenders.withdraw_bid(bidder, section.section_id)
    # No guarantee was bound at commit, so none needs freeing.
    assert [e.name for e in result.events] == ["BidWithdrawn"]
    assert result.event("BidWithdrawn").args == {"sectionId": section.section_id, "bidder": bidder.address}
    assert platform.guarantees.guarantee(guarantee_id).state == GuaranteeState.ISSUED
    assert platform.tenders.section(section.section_id).live_bids == 0

    # The same guarantee covers a new commit of the same bidder, under a fresh blinding.
    ciphertext, again = random_hash(), BidCover.guarantee(guarantee_id)
    result = commit_bid(platform, bidder, section.section_id, ciphertext, again)
    assert result.event("BidCommitted").args["coverCommitment"] == again.commitment(section.section_id, bidder.address)
    bid = platform.tenders.bid(section.section_id, bidder.address)
    assert (bid.status, bid.ciphertext_hash) == (BidStatus.COMMITTED, ciphertext)
    assert platform.tenders.section(section.section_id).live_bids == 1

    # Withdrawn again, then covered by a cash deposit instead: the guarantee may be cancelled.
    platform.tenders.withdraw_bid(bidder, section.section_id)
    deposit = BidCover.deposit(fresh_id("deposit"))
    commit_bid(platform, bidder, section.section_id, random_hash(), deposit)
    platform.guarantees.cancel(platform.guarantors[0], guarantee_id)
    # The withdrawn covers cannot be revealed; the live one can.
    pass_deadline(platform, section)
    bid = platform.tenders.bid(section.section_id, bidder.address)
    assert (bid.status, bid.cover_kind, bid.cover) == (BidStatus.COMMITTED, CoverKind.CASH_DEPOSIT, deposit.cover)


def test_withdraw_unknown_section(platform: Platform) -> None:
    section_id = fresh_id("section")
    with reverts(errors.TenderRegistryUnknownSection) as caught:
        platform.tenders.withdraw_bid(platform.bidders[0], section_id)
    assert caught.value.values == {"sectionId": section_id}


def test_withdraw_after_deadline(platform: Platform) -> None:
    section = new_section(platform)
    bidder = platform.bidders[0]
    guarantee_id, _ = commit_with_guarantee(platform, section, bidder)
    pass_deadline(platform, section)
    read = watch(platform, section.section_id, bidder.address)
    with reverts(errors.TenderRegistryBidAfterDeadline, read, watch_guarantee(platform, guarantee_id)) as caught:
        platform.tenders.withdraw_bid(bidder, section.section_id)
    assert_time_values(caught.value.values, section, after=True)
    assert platform.guarantees.guarantee(guarantee_id).bound  # revealed by pass_deadline


@pytest.mark.parametrize("state", [BidStatus.NONE, BidStatus.WITHDRAWN])
def test_withdraw_needs_a_live_bid(platform: Platform, bidding: SectionRef, state: BidStatus) -> None:
    section, bidder = bidding, platform.bidders[3]
    if state == BidStatus.WITHDRAWN:
        section, bidder = new_section(platform), platform.bidders[0]
        commit_with_deposit(platform, section, bidder)
        platform.tenders.withdraw_bid(bidder, section.section_id)
    with reverts(errors.TenderRegistryInvalidBidStatus, watch(platform, section.section_id, bidder.address)) as c:
        platform.tenders.withdraw_bid(bidder, section.section_id)
    assert c.value.values == {"sectionId": section.section_id, "bidder": bidder.address, "status": state}


# ---------------------------------------------------------------------------------------------- revealCover


def _committed(platform: Platform, bidder: Signer, **terms: Any) -> tuple[SectionRef, BidCover]:
    """A new section with one live bid of `bidder` covered by a guarantee; the cover kept by the test."""
    section = new_section(platform, **terms)
    cover = BidCover.guarantee(issue_guarantee(platform, section, bidder))
    platform.tenders.commit_bid(bidder, section.section_id, random_hash(), cover)
    return section, cover


@pytest.mark.parametrize("case", ["wrong-salt", "wrong-kind", "wrong-cover", "wrong-bidder", "zero-cover"])
def test_reveal_that_does_not_open_the_commitment_is_refused(platform: Platform, case: str) -> None:
    bidder, other = platform.bidders[0], platform.bidders[1]
    section, cover = _committed(platform, bidder)
    platform.tenders.commit_bid(other, section.section_id, random_hash(), BidCover.deposit(fresh_id("deposit")))
    platform.backend.advance_to(section.opening_time)
    target, error = bidder.address, errors.TenderRegistryCoverMismatch
    if case == "wrong-salt":
        given = BidCover(cover.kind, cover.cover, random_hash())
    elif case == "wrong-kind":
        given = BidCover(CoverKind.CASH_DEPOSIT, cover.cover, cover.salt)
    elif case == "wrong-cover":
        given = BidCover(cover.kind, random_hash(), cover.salt)
    elif case == "wrong-bidder":
        given, target = cover, other.address  # the bidder's cover opened against another bid
    else:
        given, error = BidCover(cover.kind, ZERO32, cover.salt), errors.TenderRegistryInvalidCover
    read = watch(platform, section.section_id, bidder.address, other.address)
    with reverts(error, read, watch_guarantee(platform, cover.cover)) as caught:
        platform.tenders.reveal_cover(platform.agency, section.section_id, target, given)
    if error is errors.TenderRegistryCoverMismatch:
        assert caught.value.values == {"sectionId": section.section_id, "bidder": target}
    assert not platform.tenders.cover_of(section.section_id, target).revealed


def test_reveal_before_the_opening_time_is_refused(platform: Platform) -> None:
    bidder = platform.bidders[0]
    section, cover = _committed(platform, bidder, opening_in=900)
    platform.backend.advance_to(section.opening_time - 60)
    read = watch(platform, section.section_id, bidder.address)
    for signer in (platform.agency, bidder):
        with reverts(errors.TenderRegistryBeforeOpening, read, watch_guarantee(platform, cover.cover)) as caught:
            platform.tenders.reveal_cover(signer, section.section_id, bidder.address, cover)
        assert_time_values(caught.value.values, section, after=False)


@pytest.mark.parametrize("caller", ["outsider", "tenderer", "witness", "guarantor", "other-bidder"])
def test_reveal_by_a_stranger_is_refused(platform: Platform, outsider: Signer, caller: str) -> None:
    bidder = platform.bidders[0]
    section, cover = _committed(platform, bidder)
    platform.backend.advance_to(section.opening_time)
    signer = platform.bidders[1] if caller == "other-bidder" else who(platform, outsider, caller)
    read = watch(platform, section.section_id, bidder.address)
    with reverts(errors.TenderRegistryNotAgencyOrBidder, read, watch_guarantee(platform, cover.cover)) as caught:
        platform.tenders.reveal_cover(signer, section.section_id, bidder.address, cover)
    assert caught.value.values == {"sectionId": section.section_id, "account": signer.address}


def test_reveal_needs_a_bid_live_at_the_deadline(platform: Platform) -> None:
    bidder, absent = platform.bidders[0], platform.bidders[1]
    section, cover = _committed(platform, bidder)
    platform.tenders.withdraw_bid(bidder, section.section_id)
    platform.backend.advance_to(section.opening_time)
    for account, status in ((bidder.address, BidStatus.WITHDRAWN), (absent.address, BidStatus.NONE)):
        with reverts(errors.TenderRegistryInvalidBidStatus, watch(platform, section.section_id, account)) as caught:
            platform.tenders.reveal_cover(platform.agency, section.section_id, account, cover)
        assert caught.value.values == {"sectionId": section.section_id, "bidder": account, "status": status}
    with reverts(errors.TenderRegistryUnknownSection):
        platform.tenders.reveal_cover(platform.agency, fresh_id("section"), bidder.address, cover)


def test_an_unrevealed_cover_cannot_be_opened_nor_claimed(platform: Platform) -> None:
    bidder = platform.bidders[0]
    section, cover = _committed(platform, bidder)
    platform.backend.advance_to(section.opening_time)
    read = watch(platform, section.section_id, bidder.address)
    with reverts(errors.TenderRegistryCoverNotRevealed, read) as caught:
        platform.tenders.record_bid_opened(platform.agency, section.section_id, bidder.address, random_hash())
    assert caught.value.values == {"sectionId": section.section_id, "bidder": bidder.address}
    outcome = OpeningOutcome(bidder.address, BidStatus.OPENED, random_hash())
    with reverts(errors.TenderRegistryCoverNotRevealed, read):
        platform.tenders.record_outcomes(platform.agency, section.section_id, [outcome])
    # A bidder-caused failure is a claim ground, but the guarantee covers the bid only once revealed.
    platform.tenders.record_decryption_failure(platform.agency, section.section_id, bidder.address, True, random_hash())
    ground = ClaimGround.BIDDER_CAUSED_DECRYPTION_FAILURE
    with pytest.raises(errors.GuaranteeRegistryNotCoveringBid):
        platform.guarantees.claim(platform.tenderer, cover.cover, section.section_id, ground, random_hash())
    platform.tenders.reveal_cover(platform.agency, section.section_id, bidder.address, cover)
    platform.guarantees.claim(platform.tenderer, cover.cover, section.section_id, ground, random_hash())
    assert platform.guarantees.guarantee(cover.cover).state == GuaranteeState.CLAIMED


def test_withdrawn_after_deadline_then_revealed_then_claimed(platform: Platform) -> None:
    section, bidders = section_with_bids(platform, 3)
    late = platform.bidders[3]
    salt = random_hash()
    guarantee_id = issue_guarantee(platform, section, late, sealed_salt=salt)
    cover = BidCover.guarantee(guarantee_id, salt)
    platform.tenders.commit_bid(late, section.section_id, random_hash(), cover)
    pass_deadline(platform, section)  # reveals the three deposits only: the test keeps `cover`
    platform.tenders.record_withdrawal_after_deadline(platform.agency, section.section_id, late.address, random_hash())
    assert not platform.guarantees.guarantee(guarantee_id).bound
    with pytest.raises(errors.GuaranteeRegistryNotCoveringBid):
        platform.guarantees.claim(
            platform.tenderer, guarantee_id, section.section_id, ClaimGround.WITHDRAWAL_AFTER_DEADLINE, random_hash()
        )
    revealed = platform.tenders.reveal_cover(late, section.section_id, late.address, cover)  # by the bidder itself
    assert revealed.event("GuaranteeBound").args["sectionId"] == section.section_id
    assert platform.tenders.bid(section.section_id, late.address).status == BidStatus.WITHDRAWN_AFTER_DEADLINE
    assert not platform.tenders.bond_releasable(section.section_id, late.address)
    with pytest.raises(errors.GuaranteeRegistryNotReleasable):
        platform.guarantees.release(platform.guarantors[0], guarantee_id, section.section_id)
    platform.guarantees.claim(
        platform.tenderer, guarantee_id, section.section_id, ClaimGround.WITHDRAWAL_AFTER_DEADLINE, random_hash()
    )
    assert platform.guarantees.guarantee(guarantee_id).state == GuaranteeState.CLAIMED
    # Release after claim is refused.
    with pytest.raises(errors.GuaranteeRegistryInvalidState):
        platform.guarantees.release(platform.tenderer, guarantee_id, section.section_id)
    open_all(platform, section, bidders)


def test_a_cover_that_cannot_be_revealed_is_rejected_and_does_not_count(platform: Platform) -> None:
    section, bidders = section_with_bids(platform, 3)
    careless = platform.bidders[3]
    # A commitment to a guarantee below the bond: it will not reveal.
    weak = BidCover.guarantee(issue_guarantee(platform, section, careless, amount=BOND - 1))
    platform.tenders.commit_bid(careless, section.section_id, random_hash(), weak)
    pass_deadline(platform, section)
    with pytest.raises(errors.GuaranteeRegistryAmountBelowBond):
        platform.tenders.reveal_cover(platform.agency, section.section_id, careless.address, weak)
    evidence = random_hash()
    outcomes = [OpeningOutcome(b.address, BidStatus.OPENED, random_hash()) for b in bidders[:2]]
    outcomes.append(OpeningOutcome(careless.address, BidStatus.COVER_REJECTED, evidence))
    result = platform.tenders.record_outcomes(platform.agency, section.section_id, outcomes)
    assert result.event("CoverRejected").args == {
        "sectionId": section.section_id,
        "bidder": careless.address,
        "evidenceHash": evidence,
    }
    bid = platform.tenders.bid(section.section_id, careless.address)
    assert (bid.status, bid.announced_hash) == (BidStatus.COVER_REJECTED, evidence)
    assert platform.tenders.bond_releasable(section.section_id, careless.address)
    assert grounds_holding(platform, section.section_id, careless.address) == set()
    # Rejected once, not revealable any more; a revealed cover cannot be rejected.
    with reverts(errors.TenderRegistryInvalidBidStatus, watch(platform, section.section_id, careless.address)):
        platform.tenders.reveal_cover(platform.agency, section.section_id, careless.address, weak)
    rejected = OpeningOutcome(bidders[2].address, BidStatus.COVER_REJECTED, random_hash())
    with reverts(errors.TenderRegistryCoverAlreadyRevealed, watch(platform, section.section_id, bidders[2].address)):
        platform.tenders.record_outcomes(platform.agency, section.section_id, [rejected])
    # The rejected bid is not valid: three opened of four live bids.
    platform.tenders.record_bid_opened(platform.agency, section.section_id, bidders[2].address, random_hash())
    result = platform.tenders.close_opening(platform.agency, section.section_id, random_hash())
    assert result.event("OpeningClosed").args["validBids"] == 3


# ---------------------------------------------------------------------------------------------- opening steps


def _step_opened(platform: Platform, signer: Signer, section_id: bytes, bidder: str) -> TxResult:
    result: TxResult = platform.tenders.record_bid_opened(signer, section_id, bidder, random_hash())
    return result


def _step_failed(platform: Platform, signer: Signer, section_id: bytes, bidder: str) -> TxResult:
    result: TxResult = platform.tenders.record_decryption_failure(signer, section_id, bidder, True, random_hash())
    return result


def _step_late_withdrawal(platform: Platform, signer: Signer, section_id: bytes, bidder: str) -> TxResult:
    result: TxResult = platform.tenders.record_withdrawal_after_deadline(signer, section_id, bidder, random_hash())
    return result


def _step_close(platform: Platform, signer: Signer, section_id: bytes, bidder: str) -> TxResult:
    result: TxResult = platform.tenders.close_opening(signer, section_id, random_hash())
    return result


OpeningStep = Callable[[Platform, Signer, bytes, str], TxResult]
OPENING_STEPS: dict[str, OpeningStep] = {
    "recordBidOpened": _step_opened,
    "recordDecryptionFailure": _step_failed,
    "recordWithdrawalAfterDeadline": _step_late_withdrawal,
    "closeOpening": _step_close,
}


@pytest.mark.parametrize("step", OPENING_STEPS)
@pytest.mark.parametrize("caller", ["tenderer", "bidder", "witness", "outsider"])
def test_opening_steps_need_the_agency(
    platform: Platform, in_opening: SectionRef, outsider: Signer, step: str, caller: str
) -> None:
    section, bidder = in_opening, platform.bidders[0].address
    signer = who(platform, outsider, caller)
    with reverts(errors.TenderRegistryNotAgency, watch(platform, section.section_id, bidder)) as caught:
        OPENING_STEPS[step](platform, signer, section.section_id, bidder)
    assert caught.value.values == {"id": section.section_id, "account": signer.address}


@pytest.mark.parametrize("step", OPENING_STEPS)
def test_opening_steps_unknown_section(platform: Platform, step: str) -> None:
    section_id = fresh_id("section")
    with reverts(errors.TenderRegistryUnknownSection) as caught:
        OPENING_STEPS[step](platform, platform.agency, section_id, platform.bidders[0].address)
    assert caught.value.values == {"sectionId": section_id}


@pytest.mark.parametrize("step", OPENING_STEPS)
def test_opening_steps_before_the_deadline(platform: Platform, bidding: SectionRef, step: str) -> None:
    bidder = platform.bidders[0].address
    with reverts(errors.TenderRegistryBeforeOpening, watch(platform, bidding.section_id, bidder)) as caught:
        OPENING_STEPS[step](platform, platform.agency, bidding.section_id, bidder)
    assert_time_values(caught.value.values, bidding, after=False)


def test_opening_starts_at_the_deadline(platform: Platform) -> None:
    section, bidders = section_with_bids(platform, 3, opening_in=900)
    platform.backend.advance_to(section.opening_time - 60)
    read = watch(platform, section.section_id, *(b.address for b in bidders))
    with reverts(errors.TenderRegistryBeforeOpening, read) as caught:
        platform.tenders.record_bid_opened(platform.agency, section.section_id, bidders[0].address, random_hash())
    assert_time_values(caught.value.values, section, after=False)
    platform.backend.advance_to(section.opening_time)
    if platform.backend.exact_time:
        assert platform.now() == section.opening_time
    # The deadline's own second belongs to the opening: bids are refused, opening steps accepted.
    with pytest.raises(errors.TenderRegistryBidAfterDeadline):
        commit_with_deposit(platform, section, platform.bidders[3])
    reveal_covers(platform, section.section_id)
    platform.tenders.record_bid_opened(platform.agency, section.section_id, bidders[0].address, random_hash())


@pytest.mark.parametrize("step", ["recordBidOpened", "recordDecryptionFailure", "closeOpening"])
@pytest.mark.parametrize("stage", ["opened", "failed", "awarded"])
def test_opening_steps_refused_once_closed(
    platform: Platform, stages: dict[str, SectionRef], step: str, stage: str
) -> None:
    section, bidder = stages[stage], platform.bidders[0].address
    assert platform.tenders.section(section.section_id).status == STAGE_STATUS[stage]
    with reverts(errors.TenderRegistryInvalidSectionStatus, watch(platform, section.section_id, bidder)) as caught:
        OPENING_STEPS[step](platform, platform.agency, section.section_id, bidder)
    assert caught.value.values == {"sectionId": section.section_id, "status": STAGE_STATUS[stage]}


# ---------------------------------------------------------------------------------------------- recordBidOpened


def test_record_bid_opened(platform: Platform) -> None:
    section, bidders = section_with_bids(platform, 3)
    pass_deadline(platform, section)
    announced = random_hash()
    result = platform.tenders.record_bid_opened(platform.agency, section.section_id, bidders[0].address, announced)
    assert result.event("BidOpened").args == {
        "sectionId": section.section_id,
        "bidder": bidders[0].address,
        "announcedHash": announced,
    }
    bid = platform.tenders.bid(section.section_id, bidders[0].address)
    assert (bid.status, bid.announced_hash, bid.cover_kind) == (BidStatus.OPENED, announced, CoverKind.CASH_DEPOSIT)
    stored = platform.tenders.section(section.section_id)
    assert (stored.status, stored.live_bids, stored.outcomes, stored.opened_bids) == (SectionStatus.BIDDING, 3, 1, 1)


@pytest.mark.parametrize("step", ["recordBidOpened", "recordDecryptionFailure", "recordWithdrawalAfterDeadline"])
def test_bid_outcomes_need_an_evidence_hash(platform: Platform, in_opening: SectionRef, step: str) -> None:
    section_id, bidder, agency = in_opening.section_id, platform.bidders[0].address, platform.agency
    calls: dict[str, Callable[[], object]] = {
        "recordBidOpened": lambda: platform.tenders.record_bid_opened(agency, section_id, bidder, ZERO32),
        "recordDecryptionFailure": lambda: platform.tenders.record_decryption_failure(
            agency, section_id, bidder, False, ZERO32
        ),
        "recordWithdrawalAfterDeadline": lambda: platform.tenders.record_withdrawal_after_deadline(
            agency, section_id, bidder, ZERO32
        ),
    }
    with reverts(errors.TenderRegistryZeroValue, watch(platform, section_id, bidder)) as caught:
        calls[step]()
    assert caught.value.values == {"field": "announcedHash" if step == "recordBidOpened" else "evidenceHash"}


BID_STATES_AFTER_DEADLINE = [
    BidStatus.NONE,
    BidStatus.WITHDRAWN,
    BidStatus.OPENED,
    BidStatus.DECRYPTION_FAILED_BIDDER_CAUSED,
    BidStatus.DECRYPTION_FAILED_NOT_BIDDER_CAUSED,
    BidStatus.WITHDRAWN_AFTER_DEADLINE,
]


@pytest.mark.parametrize("step", ["recordBidOpened", "recordDecryptionFailure"])
@pytest.mark.parametrize("state", BID_STATES_AFTER_DEADLINE)
def test_outcome_needs_a_committed_bid(
    platform: Platform, bids_in_states: tuple[SectionRef, dict[BidStatus, str]], step: str, state: BidStatus
) -> None:
    section, by_status = bids_in_states
    subject = by_status[state]
    with reverts(errors.TenderRegistryInvalidBidStatus, watch(platform, section.section_id, subject)) as c:
        OPENING_STEPS[step](platform, platform.agency, section.section_id, subject)
    assert c.value.values == {"sectionId": section.section_id, "bidder": subject, "status": state}


# ------------------------------------------------------------------------------------- recordDecryptionFailure


@pytest.mark.parametrize(
    ("bidder_caused", "state"),
    [(True, BidStatus.DECRYPTION_FAILED_BIDDER_CAUSED), (False, BidStatus.DECRYPTION_FAILED_NOT_BIDDER_CAUSED)],
)
def test_record_decryption_failure(platform: Platform, bidder_caused: bool, state: BidStatus) -> None:
    section, bidders = section_with_bids(platform, 3)
    pass_deadline(platform, section)
    evidence = random_hash()
    bidder = bidders[1].address
    result = platform.tenders.record_decryption_failure(
        platform.agency, section.section_id, bidder, bidder_caused, evidence
    )
    assert result.event("BidDecryptionFailed").args == {
        "sectionId": section.section_id,
        "bidder": bidder,
        "bidderCaused": bidder_caused,
        "evidenceHash": evidence,
    }
    bid = platform.tenders.bid(section.section_id, bidder)
    assert (bid.status, bid.announced_hash) == (state, evidence)
    stored = platform.tenders.section(section.section_id)
    assert (stored.outcomes, stored.opened_bids, stored.live_bids) == (1, 0, 3)
    holds = platform.tenders.claim_ground_holds(
        section.section_id, bidder, ClaimGround.BIDDER_CAUSED_DECRYPTION_FAILURE
    )
    assert holds == bidder_caused


# ------------------------------------------------------------------------------- recordWithdrawalAfterDeadline


@pytest.mark.parametrize("state", [BidStatus.COMMITTED, BidStatus.OPENED])
def test_record_withdrawal_after_deadline_during_opening(platform: Platform, state: BidStatus) -> None:
    section, bidders = section_with_bids(platform, 3)
    pass_deadline(platform, section)
    bidder = bidders[2].address
    if state == BidStatus.OPENED:
        platform.tenders.record_bid_opened(platform.agency, section.section_id, bidder, random_hash())
    evidence = random_hash()
    result = platform.tenders.record_withdrawal_after_deadline(platform.agency, section.section_id, bidder, evidence)
    assert result.event("BidWithdrawnAfterDeadline").args == {
        "sectionId": section.section_id,
        "bidder": bidder,
        "evidenceHash": evidence,
    }
    assert result.events_named("TenderFailed") == []  # the opening is not closed yet
    assert platform.tenders.bid(section.section_id, bidder).status == BidStatus.WITHDRAWN_AFTER_DEADLINE
    stored = platform.tenders.section(section.section_id)
    # Either way the bid now has an outcome, and it does not count as opened; it stays a live bid.
    assert (stored.status, stored.live_bids, stored.outcomes, stored.opened_bids) == (SectionStatus.BIDDING, 3, 1, 0)
    assert platform.tenders.claim_ground_holds(section.section_id, bidder, ClaimGround.WITHDRAWAL_AFTER_DEADLINE)
    assert not platform.tenders.bond_releasable(section.section_id, bidder)


def test_late_withdrawal_after_close_fails_the_tender(platform: Platform) -> None:
    section, bidders, record = closed_section(platform, 3)
    for witness in platform.witnesses[:2]:
        platform.tenders.attest_opening(witness, section.section_id, record)
    evidence = random_hash()
    result = platform.tenders.record_withdrawal_after_deadline(
        platform.agency, section.section_id, bidders[2].address, evidence
    )
    assert result.event("BidWithdrawnAfterDeadline").args["evidenceHash"] == evidence
    assert result.event("TenderFailed").args == {
        "sectionId": section.section_id,
        "recordHash": record,
        "validBids": 2,
        "minValidBids": 3,
    }
    stored = platform.tenders.section(section.section_id)
    assert (stored.status, stored.opened_bids, stored.opening_record_hash) == (SectionStatus.FAILED_TENDER, 2, record)
    # No award any more, even though the record was witnessed; the others' bonds are free.
    with pytest.raises(errors.TenderRegistryInvalidSectionStatus):
        platform.tenders.award(platform.agency, section.section_id, bidders[0].address, random_hash())
    assert platform.tenders.bond_releasable(section.section_id, bidders[0].address)
    assert not platform.tenders.bond_releasable(section.section_id, bidders[2].address)
    assert platform.tenders.claim_ground_holds(
        section.section_id, bidders[2].address, ClaimGround.WITHDRAWAL_AFTER_DEADLINE
    )


def test_late_withdrawal_after_close_keeps_an_opening_with_enough_bids(platform: Platform) -> None:
    section, bidders, record = closed_section(platform, 4)
    result = platform.tenders.record_withdrawal_after_deadline(
        platform.agency, section.section_id, bidders[3].address, random_hash()
    )
    assert result.events_named("TenderFailed") == []
    stored = platform.tenders.section(section.section_id)
    assert (stored.status, stored.opened_bids) == (SectionStatus.OPENED, 3)
    for witness in platform.witnesses[:2]:
        platform.tenders.attest_opening(witness, section.section_id, record)
    with pytest.raises(errors.TenderRegistryInvalidBidStatus):
        platform.tenders.award(platform.agency, section.section_id, bidders[3].address, random_hash())
    platform.tenders.award(platform.agency, section.section_id, bidders[0].address, random_hash())


@pytest.mark.parametrize(
    "state",
    [
        BidStatus.NONE,
        BidStatus.WITHDRAWN,
        BidStatus.DECRYPTION_FAILED_BIDDER_CAUSED,
        BidStatus.DECRYPTION_FAILED_NOT_BIDDER_CAUSED,
        BidStatus.WITHDRAWN_AFTER_DEADLINE,
    ],
)
def test_late_withdrawal_needs_a_committed_or_opened_bid(
    platform: Platform, bids_in_states: tuple[SectionRef, dict[BidStatus, str]], state: BidStatus
) -> None:
    section, by_status = bids_in_states
    subject = by_status[state]
    with reverts(errors.TenderRegistryInvalidBidStatus, watch(platform, section.section_id, subject)) as c:
        platform.tenders.record_withdrawal_after_deadline(platform.agency, section.section_id, subject, random_hash())
    assert c.value.values == {"sectionId": section.section_id, "bidder": subject, "status": state}


@pytest.mark.parametrize("stage", ["failed", "awarded"])
def test_late_withdrawal_refused_once_failed_or_awarded(
    platform: Platform, stages: dict[str, SectionRef], stage: str
) -> None:
    section, bidder = stages[stage], platform.bidders[1].address  # committed (failed) or opened (awarded)
    with reverts(errors.TenderRegistryInvalidSectionStatus, watch(platform, section.section_id, bidder)) as c:
        platform.tenders.record_withdrawal_after_deadline(platform.agency, section.section_id, bidder, random_hash())
    assert c.value.values == {"sectionId": section.section_id, "status": STAGE_STATUS[stage]}


# ---------------------------------------------------------------------------------------------- closeOpening


@pytest.mark.parametrize(("committed", "withdrawn"), [(0, 0), (1, 0), (2, 0), (3, 1), (4, 2)])
def test_close_with_too_few_live_bids_fails_without_outcomes(
    platform: Platform, committed: int, withdrawn: int
) -> None:
    section, bidders = section_with_bids(platform, committed)
    for bidder in bidders[:withdrawn]:
        platform.tenders.withdraw_bid(bidder, section.section_id)
    pass_deadline(platform, section)
    record = random_hash()
    result = platform.tenders.close_opening(platform.agency, section.section_id, record)
    assert result.event("TenderFailed").args == {
        "sectionId": section.section_id,
        "recordHash": record,
        "validBids": 0,
        "minValidBids": 3,
    }
    assert result.events_named("OpeningClosed") == []
    stored = platform.tenders.section(section.section_id)
    assert (stored.status, stored.opening_record_hash, stored.outcomes) == (SectionStatus.FAILED_TENDER, record, 0)
    for bidder in bidders[withdrawn:]:
        assert platform.tenders.bid(section.section_id, bidder.address).status == BidStatus.COMMITTED
        assert platform.tenders.bond_releasable(section.section_id, bidder.address)


def test_close_with_too_few_live_bids_counts_those_opened(platform: Platform) -> None:
    section, bidders = section_with_bids(platform, 2)
    pass_deadline(platform, section)
    open_all(platform, section, bidders[:1])
    result = platform.tenders.close_opening(platform.agency, section.section_id, random_hash())
    assert (result.event("TenderFailed").args["validBids"], result.event("TenderFailed").args["minValidBids"]) == (1, 3)


@pytest.mark.parametrize("with_outcomes", [0, 1, 2])
def test_close_with_enough_live_bids_needs_every_outcome(platform: Platform, with_outcomes: int) -> None:
    section, bidders = section_with_bids(platform, 3)
    pass_deadline(platform, section)
    open_all(platform, section, bidders[:with_outcomes])
    read = watch(platform, section.section_id, *(b.address for b in bidders))
    with reverts(errors.TenderRegistryOutcomesPending, read) as caught:
        platform.tenders.close_opening(platform.agency, section.section_id, random_hash())
    assert caught.value.values == {"sectionId": section.section_id, "pending": 3 - with_outcomes}
    assert platform.tenders.section(section.section_id).opening_record_hash == ZERO32
    # Once the last outcome is in, it closes.
    open_all(platform, section, bidders[with_outcomes:])
    platform.tenders.close_opening(platform.agency, section.section_id, random_hash())


def test_close_with_all_outcomes_but_too_few_opened_fails(platform: Platform) -> None:
    section, bidders = section_with_bids(platform, 4)
    pass_deadline(platform, section)
    agency, section_id = platform.agency, section.section_id
    open_all(platform, section, bidders[:2])
    platform.tenders.record_decryption_failure(agency, section_id, bidders[2].address, True, random_hash())
    platform.tenders.record_withdrawal_after_deadline(agency, section_id, bidders[3].address, random_hash())
    record = random_hash()
    result = platform.tenders.close_opening(agency, section_id, record)
    assert result.event("TenderFailed").args == {
        "sectionId": section_id,
        "recordHash": record,
        "validBids": 2,
        "minValidBids": 3,
    }
    assert result.events_named("OpeningClosed") == []
    assert platform.tenders.section(section_id).status == SectionStatus.FAILED_TENDER


@pytest.mark.parametrize(("bids", "minimum"), [(3, 0), (5, 0), (1, 1), (2, 2)])
def test_close_with_enough_opened_bids(platform: Platform, bids: int, minimum: int) -> None:
    section, bidders = section_with_bids(platform, bids, min_valid_bids=minimum)
    pass_deadline(platform, section)
    open_all(platform, section, bidders)
    record = random_hash()
    result = platform.tenders.close_opening(platform.agency, section.section_id, record)
    assert result.event("OpeningClosed").args == {
        "sectionId": section.section_id,
        "recordHash": record,
        "validBids": bids,
    }
    assert result.events_named("TenderFailed") == []
    stored = platform.tenders.section(section.section_id)
    assert (stored.status, stored.opening_record_hash, stored.opened_bids, stored.outcomes) == (
        SectionStatus.OPENED,
        record,
        bids,
        bids,
    )


def test_close_counts_only_opened_bids_as_valid(platform: Platform) -> None:
    section, bidders = section_with_bids(platform, 5)
    pass_deadline(platform, section)
    agency, section_id = platform.agency, section.section_id
    open_all(platform, section, bidders[:3])
    platform.tenders.record_decryption_failure(agency, section_id, bidders[3].address, False, random_hash())
    platform.tenders.record_withdrawal_after_deadline(agency, section_id, bidders[4].address, random_hash())
    result = platform.tenders.close_opening(agency, section_id, random_hash())
    assert result.event("OpeningClosed").args["validBids"] == 3


def test_close_zero_record(platform: Platform, in_opening: SectionRef) -> None:
    section = in_opening
    with reverts(errors.TenderRegistryZeroValue, watch(platform, section.section_id)) as caught:
        platform.tenders.close_opening(platform.agency, section.section_id, ZERO32)
    assert caught.value.values == {"field": "recordHash"}


@pytest.mark.parametrize("stage", ["opened", "failed", "awarded"])
def test_close_again_is_refused(platform: Platform, stages: dict[str, SectionRef], stage: str) -> None:
    section = stages[stage]
    record = platform.tenders.section(section.section_id).opening_record_hash
    with reverts(errors.TenderRegistryInvalidSectionStatus, watch(platform, section.section_id)) as caught:
        platform.tenders.close_opening(platform.agency, section.section_id, random_hash())
    assert caught.value.values == {"sectionId": section.section_id, "status": STAGE_STATUS[stage]}
    assert platform.tenders.section(section.section_id).opening_record_hash == record != ZERO32


# ---------------------------------------------------------------------------------------------- attestOpening


def test_attest_until_quorum_and_beyond(platform: Platform) -> None:
    section, _, record = closed_section(platform, 3, quorum=2)
    first, second, third = platform.witnesses
    section_id = section.section_id

    result = platform.tenders.attest_opening(first, section_id, record)
    assert result.event("OpeningAttested").args == {
        "sectionId": section_id,
        "witness": first.address,
        "recordHash": record,
        "attestations": 1,
    }
    assert result.events_named("SectionWitnessed") == []
    assert platform.tenders.has_attested(section_id, first.address)
    assert not platform.tenders.has_attested(section_id, second.address)
    assert not platform.tenders.is_witnessed(section_id)

    result = platform.tenders.attest_opening(second, section_id, record)
    assert result.event("OpeningAttested").args["attestations"] == 2
    assert result.event("SectionWitnessed").args == {"sectionId": section_id, "recordHash": record}
    assert platform.tenders.is_witnessed(section_id)

    # A witness beyond the quorum may still attest; the section is not witnessed "again".
    result = platform.tenders.attest_opening(third, section_id, record)
    assert result.event("OpeningAttested").args["attestations"] == 3
    assert result.events_named("SectionWitnessed") == []
    assert platform.tenders.section(section_id).attestations == 3


def test_attest_a_failed_tender_and_with_quorum_one(platform: Platform) -> None:
    section, _ = section_with_bids(platform, 1, quorum=1, witnesses=platform.witnesses[2:])
    pass_deadline(platform, section)
    record = random_hash()
    platform.tenders.close_opening(platform.agency, section.section_id, record)
    result = platform.tenders.attest_opening(platform.witnesses[2], section.section_id, record)
    assert [e.name for e in result.events] == ["OpeningAttested", "SectionWitnessed"]
    assert platform.tenders.is_witnessed(section.section_id)


@pytest.mark.parametrize("caller", ["unlisted-witness", "outsider", "agency", "tenderer", "bidder", "regulator"])
def test_attest_only_by_listed_witnesses(
    platform: Platform, opened: tuple[SectionRef, bytes], outsider: Signer, caller: str
) -> None:
    signer = platform.witnesses[2] if caller == "unlisted-witness" else who(platform, outsider, caller)
    section, record = opened  # lists witnesses[:2] only
    read_attested = lambda: platform.tenders.has_attested(section.section_id, signer.address)  # noqa: E731
    with reverts(errors.TenderRegistryNotWitness, watch(platform, section.section_id), read_attested) as c:
        platform.tenders.attest_opening(signer, section.section_id, record)
    assert c.value.values == {"sectionId": section.section_id, "account": signer.address}


def test_attest_unknown_section(platform: Platform) -> None:
    section_id = fresh_id("section")
    with reverts(errors.TenderRegistryUnknownSection) as caught:
        platform.tenders.attest_opening(platform.witnesses[0], section_id, random_hash())
    assert caught.value.values == {"sectionId": section_id}


@pytest.mark.parametrize("stage", ["bidding", "opening"])
def test_attest_before_the_opening_closed(platform: Platform, stages: dict[str, SectionRef], stage: str) -> None:
    section = stages[stage]
    witness = platform.witnesses[0]
    # No record yet: even the zero hash, which equals the stored one, is refused.
    for record in (random_hash(), ZERO32):
        with reverts(errors.TenderRegistryInvalidSectionStatus, watch(platform, section.section_id)) as caught:
            platform.tenders.attest_opening(witness, section.section_id, record)
        assert caught.value.values == {"sectionId": section.section_id, "status": SectionStatus.BIDDING}
    assert not platform.tenders.has_attested(section.section_id, witness.address)


def test_attest_twice_is_refused(platform: Platform) -> None:
    section, _, record = closed_section(platform, 3, quorum=3)
    witness = platform.witnesses[1]
    platform.tenders.attest_opening(witness, section.section_id, record)
    with reverts(errors.TenderRegistryAlreadyAttested, watch(platform, section.section_id)) as caught:
        platform.tenders.attest_opening(witness, section.section_id, record)
    assert caught.value.values == {"sectionId": section.section_id, "witness": witness.address}
    assert platform.tenders.section(section.section_id).attestations == 1


@pytest.mark.parametrize("given", ["random", "zero"])
def test_attest_needs_the_exact_record_hash(platform: Platform, opened: tuple[SectionRef, bytes], given: str) -> None:
    section, record = opened
    wrong = random_hash() if given == "random" else ZERO32
    witness = platform.witnesses[0]
    read_attested = lambda: platform.tenders.has_attested(section.section_id, witness.address)  # noqa: E731
    with reverts(errors.TenderRegistryRecordMismatch, watch(platform, section.section_id), read_attested) as caught:
        platform.tenders.attest_opening(witness, section.section_id, wrong)
    assert caught.value.values == {"sectionId": section.section_id, "expected": record, "given": wrong}


# ---------------------------------------------------------------------------------------------- objections


def test_raise_and_answer_objections(platform: Platform) -> None:
    section, bidders, record = closed_section(platform, 3)
    section_id = section.section_id
    objection_hash = random_hash()
    raised = platform.tenders.raise_objection(bidders[1], section_id, objection_hash)
    assert raised.return_value == 1
    assert raised.event("ObjectionRaised").args == {
        "sectionId": section_id,
        "objectionId": 1,
        "bidder": bidders[1].address,
        "objectionHash": objection_hash,
    }
    second = platform.tenders.raise_objection(bidders[2], section_id, random_hash())
    assert second.return_value == 2
    stored = platform.tenders.section(section_id)
    assert (stored.objections, stored.pending_objections) == (2, 2)
    objection = platform.tenders.objection(section_id, 1)
    assert (objection.bidder, objection.objection_hash, objection.answer_hash) == (
        bidders[1].address,
        objection_hash,
        ZERO32,
    )

    answer = random_hash()
    answered = platform.tenders.answer_objection(platform.agency, section_id, 1, answer)
    assert answered.event("ObjectionAnswered").args == {"sectionId": section_id, "objectionId": 1, "answerHash": answer}
    assert platform.tenders.objection(section_id, 1).answer_hash == answer
    stored = platform.tenders.section(section_id)
    assert (stored.objections, stored.pending_objections) == (2, 1)

    for witness in platform.witnesses[:2]:
        platform.tenders.attest_opening(witness, section_id, record)
    with reverts(errors.TenderRegistryObjectionsPending, watch(platform, section_id)) as caught:
        platform.tenders.award(platform.agency, section_id, bidders[0].address, random_hash())
    assert caught.value.values == {"sectionId": section_id, "pending": 1}
    platform.tenders.answer_objection(platform.agency, section_id, 2, random_hash())
    platform.tenders.award(platform.agency, section_id, bidders[0].address, random_hash())


@pytest.mark.parametrize(
    "state",
    [
        BidStatus.COMMITTED,
        BidStatus.OPENED,
        BidStatus.DECRYPTION_FAILED_BIDDER_CAUSED,
        BidStatus.DECRYPTION_FAILED_NOT_BIDDER_CAUSED,
        BidStatus.WITHDRAWN_AFTER_DEADLINE,
    ],
)
def test_any_bidder_past_the_deadline_may_object(
    platform: Platform,
    in_opening: SectionRef,
    bids_in_states: tuple[SectionRef, dict[BidStatus, str]],
    state: BidStatus,
) -> None:
    section, by_status = bids_in_states
    subject = by_status.get(state)
    if state == BidStatus.COMMITTED:
        section, subject = in_opening, platform.bidders[0].address
    signer = next(b for b in platform.bidders if b.address == subject)
    objection_hash = random_hash()
    result = platform.tenders.raise_objection(signer, section.section_id, objection_hash)
    objection_id = result.return_value
    assert result.event("ObjectionRaised").args == {
        "sectionId": section.section_id,
        "objectionId": objection_id,
        "bidder": subject,
        "objectionHash": objection_hash,
    }
    assert platform.tenders.objection(section.section_id, objection_id).bidder == subject


def test_objection_on_a_failed_tender(platform: Platform, failed: SectionRef) -> None:
    result = platform.tenders.raise_objection(platform.bidders[0], failed.section_id, random_hash())
    assert result.event("ObjectionRaised").args["bidder"] == platform.bidders[0].address


def test_raise_objection_unknown_section(platform: Platform) -> None:
    section_id = fresh_id("section")
    with reverts(errors.TenderRegistryUnknownSection) as caught:
        platform.tenders.raise_objection(platform.bidders[0], section_id, random_hash())
    assert caught.value.values == {"sectionId": section_id}


def test_raise_objection_before_the_deadline(platform: Platform, bidding: SectionRef) -> None:
    bidder = platform.bidders[0]
    with reverts(errors.TenderRegistryBeforeOpening, watch(platform, bidding.section_id, bidder.address)) as caught:
        platform.tenders.raise_objection(bidder, bidding.section_id, random_hash())
    assert_time_values(caught.value.values, bidding, after=False)


def test_raise_objection_after_the_award(platform: Platform, awarded: tuple[SectionRef, Signer]) -> None:
    section, bidder = awarded[0], platform.bidders[1]
    with reverts(errors.TenderRegistryInvalidSectionStatus, watch(platform, section.section_id)) as caught:
        platform.tenders.raise_objection(bidder, section.section_id, random_hash())
    assert caught.value.values == {"sectionId": section.section_id, "status": SectionStatus.AWARDED}


def test_raise_objection_zero_hash(platform: Platform, in_opening: SectionRef) -> None:
    with reverts(errors.TenderRegistryZeroValue, watch(platform, in_opening.section_id)) as caught:
        platform.tenders.raise_objection(platform.bidders[0], in_opening.section_id, ZERO32)
    assert caught.value.values == {"field": "objectionHash"}


@pytest.mark.parametrize("caller", ["no-bid", "withdrawn", "outsider", "tenderer", "agency", "witness"])
def test_raise_objection_needs_a_bid(
    platform: Platform,
    in_opening: SectionRef,
    bids_in_states: tuple[SectionRef, dict[BidStatus, str]],
    outsider: Signer,
    caller: str,
) -> None:
    section = in_opening
    if caller == "no-bid":
        signer = platform.bidders[4]  # a bidder member without a bid in this section
    elif caller == "withdrawn":
        section = bids_in_states[0]
        signer = next(b for b in platform.bidders if b.address == bids_in_states[1][BidStatus.WITHDRAWN])
    else:
        signer = who(platform, outsider, caller)
    status = BidStatus.WITHDRAWN if caller == "withdrawn" else BidStatus.NONE
    with reverts(errors.TenderRegistryInvalidBidStatus, watch(platform, section.section_id)) as caught:
        platform.tenders.raise_objection(signer, section.section_id, random_hash())
    assert caught.value.values == {"sectionId": section.section_id, "bidder": signer.address, "status": status}


def _objected_section(platform: Platform) -> tuple[SectionRef, list[Signer]]:
    section, bidders = section_with_bids(platform, 3)
    pass_deadline(platform, section)
    platform.tenders.raise_objection(bidders[0], section.section_id, random_hash())
    return section, bidders


@pytest.mark.parametrize("caller", ["tenderer", "bidder", "witness", "outsider"])
def test_answer_objection_not_agency(platform: Platform, objected: SectionRef, outsider: Signer, caller: str) -> None:
    section = objected
    signer = who(platform, outsider, caller)
    read_objection = lambda: platform.tenders.objection(section.section_id, 1)  # noqa: E731
    with reverts(errors.TenderRegistryNotAgency, watch(platform, section.section_id), read_objection) as caught:
        platform.tenders.answer_objection(signer, section.section_id, 1, random_hash())
    assert caught.value.values == {"id": section.section_id, "account": signer.address}


def test_answer_objection_unknown_section(platform: Platform) -> None:
    section_id = fresh_id("section")
    with reverts(errors.TenderRegistryUnknownSection) as caught:
        platform.tenders.answer_objection(platform.agency, section_id, 1, random_hash())
    assert caught.value.values == {"sectionId": section_id}


def test_answer_objection_zero_hash(platform: Platform, objected: SectionRef) -> None:
    section = objected
    read_objection = lambda: platform.tenders.objection(section.section_id, 1)  # noqa: E731
    with reverts(errors.TenderRegistryZeroValue, watch(platform, section.section_id), read_objection) as caught:
        platform.tenders.answer_objection(platform.agency, section.section_id, 1, ZERO32)
    assert caught.value.values == {"field": "answerHash"}


@pytest.mark.parametrize("objection_id", [0, 2, 2**32 + 1])
def test_answer_unknown_objection(platform: Platform, objected: SectionRef, objection_id: int) -> None:
    section = objected
    with reverts(errors.TenderRegistryUnknownObjection, watch(platform, section.section_id)) as caught:
        platform.tenders.answer_objection(platform.agency, section.section_id, objection_id, random_hash())
    assert caught.value.values == {"sectionId": section.section_id, "objectionId": objection_id}
    with pytest.raises(errors.TenderRegistryUnknownObjection):
        platform.tenders.objection(section.section_id, objection_id)


def test_answer_objection_twice(platform: Platform) -> None:
    section, _ = _objected_section(platform)
    first = random_hash()
    platform.tenders.answer_objection(platform.agency, section.section_id, 1, first)
    read_objection = lambda: platform.tenders.objection(section.section_id, 1)  # noqa: E731
    with reverts(errors.TenderRegistryObjectionAnswered, watch(platform, section.section_id), read_objection) as c:
        platform.tenders.answer_objection(platform.agency, section.section_id, 1, random_hash())
    assert c.value.values == {"sectionId": section.section_id, "objectionId": 1}
    assert platform.tenders.objection(section.section_id, 1).answer_hash == first
    assert platform.tenders.section(section.section_id).pending_objections == 0


def test_objections_are_numbered_per_section(platform: Platform) -> None:
    first, _ = _objected_section(platform)
    second, _ = _objected_section(platform)
    assert platform.tenders.section(first.section_id).objections == 1
    assert platform.tenders.section(second.section_id).objections == 1
    platform.tenders.answer_objection(platform.agency, second.section_id, 1, random_hash())
    assert platform.tenders.objection(first.section_id, 1).answer_hash == ZERO32


# ---------------------------------------------------------------------------------------------- award


def test_award(platform: Platform) -> None:
    section, _ = witnessed_section(platform)
    winner = platform.bidders[1]
    award_hash = random_hash()
    result = platform.tenders.award(platform.agency, section.section_id, winner.address, award_hash)
    assert result.event("Awarded").args == {
        "sectionId": section.section_id,
        "winner": winner.address,
        "awardHash": award_hash,
    }
    stored = platform.tenders.section(section.section_id)
    assert (stored.status, stored.winner) == (SectionStatus.AWARDED, winner.address)
    assert (stored.contract_signed, stored.refused_to_sign) == (False, False)


@pytest.mark.parametrize("caller", ["tenderer", "bidder", "witness", "outsider", "regulator"])
def test_award_not_agency(
    platform: Platform, witnessed: tuple[SectionRef, dict[BidStatus, str]], outsider: Signer, caller: str
) -> None:
    section, by_status = witnessed
    signer = who(platform, outsider, caller)
    with reverts(errors.TenderRegistryNotAgency, watch(platform, section.section_id)) as caught:
        platform.tenders.award(signer, section.section_id, by_status[BidStatus.OPENED], random_hash())
    assert caught.value.values == {"id": section.section_id, "account": signer.address}


def test_award_unknown_section(platform: Platform) -> None:
    section_id = fresh_id("section")
    with reverts(errors.TenderRegistryUnknownSection) as caught:
        platform.tenders.award(platform.agency, section_id, platform.bidders[0].address, random_hash())
    assert caught.value.values == {"sectionId": section_id}


@pytest.mark.parametrize("stage", ["bidding", "opening", "failed", "awarded"])
def test_award_needs_an_opened_section(platform: Platform, stages: dict[str, SectionRef], stage: str) -> None:
    section = stages[stage]
    with reverts(errors.TenderRegistryInvalidSectionStatus, watch(platform, section.section_id)) as caught:
        platform.tenders.award(platform.agency, section.section_id, platform.bidders[1].address, random_hash())
    assert caught.value.values == {"sectionId": section.section_id, "status": STAGE_STATUS[stage]}


def test_award_a_witnessed_failed_tender_is_refused(platform: Platform) -> None:
    section, bidders = section_with_bids(platform, 2)
    pass_deadline(platform, section)
    open_all(platform, section, bidders)
    record = random_hash()
    platform.tenders.close_opening(platform.agency, section.section_id, record)
    for witness in platform.witnesses[:2]:
        platform.tenders.attest_opening(witness, section.section_id, record)
    assert platform.tenders.is_witnessed(section.section_id)
    with reverts(errors.TenderRegistryInvalidSectionStatus, watch(platform, section.section_id)) as caught:
        platform.tenders.award(platform.agency, section.section_id, bidders[0].address, random_hash())
    assert caught.value.values["status"] == SectionStatus.FAILED_TENDER


def test_award_zero_hash(platform: Platform, witnessed: tuple[SectionRef, dict[BidStatus, str]]) -> None:
    section, by_status = witnessed
    with reverts(errors.TenderRegistryZeroValue, watch(platform, section.section_id)) as caught:
        platform.tenders.award(platform.agency, section.section_id, by_status[BidStatus.OPENED], ZERO32)
    assert caught.value.values == {"field": "awardHash"}


def test_award_needs_attestations(platform: Platform, opened: tuple[SectionRef, bytes]) -> None:
    section, _ = opened
    with reverts(errors.TenderRegistryNotWitnessed, watch(platform, section.section_id)) as caught:
        platform.tenders.award(platform.agency, section.section_id, platform.bidders[0].address, random_hash())
    assert caught.value.values == {"sectionId": section.section_id, "attestations": 0, "quorum": 2}


@pytest.mark.parametrize(("quorum", "attested"), [(2, 1), (3, 2)])
def test_award_needs_the_witness_quorum(platform: Platform, quorum: int, attested: int) -> None:
    section, bidders, record = closed_section(platform, 3, quorum=quorum)
    for witness in platform.witnesses[:attested]:
        platform.tenders.attest_opening(witness, section.section_id, record)
    with reverts(errors.TenderRegistryNotWitnessed, watch(platform, section.section_id)) as caught:
        platform.tenders.award(platform.agency, section.section_id, bidders[0].address, random_hash())
    assert caught.value.values == {"sectionId": section.section_id, "attestations": attested, "quorum": quorum}
    platform.tenders.attest_opening(platform.witnesses[attested], section.section_id, record)
    platform.tenders.award(platform.agency, section.section_id, bidders[0].address, random_hash())


def test_award_blocked_by_an_unanswered_objection(platform: Platform) -> None:
    section, _ = witnessed_section(platform)
    platform.tenders.raise_objection(platform.bidders[2], section.section_id, random_hash())
    with reverts(errors.TenderRegistryObjectionsPending, watch(platform, section.section_id)) as caught:
        platform.tenders.award(platform.agency, section.section_id, platform.bidders[0].address, random_hash())
    assert caught.value.values == {"sectionId": section.section_id, "pending": 1}
    platform.tenders.answer_objection(platform.agency, section.section_id, 1, random_hash())
    platform.tenders.award(platform.agency, section.section_id, platform.bidders[0].address, random_hash())


@pytest.mark.parametrize(
    "candidate",
    ["no-bid", "zero-address", BidStatus.DECRYPTION_FAILED_NOT_BIDDER_CAUSED, BidStatus.WITHDRAWN_AFTER_DEADLINE],
)
def test_award_needs_an_opened_bid_of_the_winner(
    platform: Platform, witnessed: tuple[SectionRef, dict[BidStatus, str]], candidate: str | BidStatus
) -> None:
    section, by_status = witnessed
    if isinstance(candidate, BidStatus):
        winner, status = by_status[candidate], candidate
    else:
        winner = platform.tenderer.address if candidate == "no-bid" else ZERO_ADDRESS
        status = BidStatus.NONE
    with reverts(errors.TenderRegistryInvalidBidStatus, watch(platform, section.section_id)) as caught:
        platform.tenders.award(platform.agency, section.section_id, winner, random_hash())
    assert caught.value.values == {"sectionId": section.section_id, "bidder": winner, "status": status}


# ---------------------------------------------------------------------------------------------- signing


SIGNING = {
    "recordContractSigned": ("ContractSigned", "contractHash"),
    "recordRefusalToSign": ("RefusalToSignRecorded", "evidenceHash"),
}


def _record_signing(platform: Platform, signer: Signer, step: str, section_id: bytes, value: bytes) -> TxResult:
    if step == "recordContractSigned":
        result: TxResult = platform.tenders.record_contract_signed(signer, section_id, value)
    else:
        result = platform.tenders.record_refusal_to_sign(signer, section_id, value)
    return result


@pytest.mark.parametrize("step", SIGNING)
def test_record_signing(platform: Platform, step: str) -> None:
    section, winner = awarded_section(platform)
    value = random_hash()
    result = _record_signing(platform, platform.tenderer, step, section.section_id, value)
    event, field = SIGNING[step]
    assert result.event(event).args == {"sectionId": section.section_id, field: value}
    stored = platform.tenders.section(section.section_id)
    signed = step == "recordContractSigned"
    assert (stored.contract_signed, stored.refused_to_sign) == (signed, not signed)
    assert stored.status == SectionStatus.AWARDED
    assert platform.tenders.bond_releasable(section.section_id, winner.address) == signed
    refused = platform.tenders.claim_ground_holds(
        section.section_id, winner.address, ClaimGround.WINNER_REFUSED_TO_SIGN
    )
    assert refused == (not signed)


@pytest.mark.parametrize("step", SIGNING)
@pytest.mark.parametrize("caller", ["agency", "winner", "outsider", "witness"])
def test_record_signing_only_by_the_tenderer(
    platform: Platform, awarded: tuple[SectionRef, Signer], outsider: Signer, step: str, caller: str
) -> None:
    section, winner = awarded
    signer = winner if caller == "winner" else who(platform, outsider, caller)
    with reverts(errors.TenderRegistryNotTenderer, watch(platform, section.section_id)) as caught:
        _record_signing(platform, signer, step, section.section_id, random_hash())
    assert caught.value.values == {"sectionId": section.section_id, "account": signer.address}


@pytest.mark.parametrize("step", SIGNING)
def test_record_signing_unknown_section(platform: Platform, step: str) -> None:
    section_id = fresh_id("section")
    with reverts(errors.TenderRegistryUnknownSection) as caught:
        _record_signing(platform, platform.tenderer, step, section_id, random_hash())
    assert caught.value.values == {"sectionId": section_id}


@pytest.mark.parametrize("step", SIGNING)
@pytest.mark.parametrize("stage", ["bidding", "opening", "opened", "failed"])
def test_record_signing_needs_an_award(
    platform: Platform, stages: dict[str, SectionRef], step: str, stage: str
) -> None:
    section = stages[stage]
    with reverts(errors.TenderRegistryInvalidSectionStatus, watch(platform, section.section_id)) as caught:
        _record_signing(platform, platform.tenderer, step, section.section_id, random_hash())
    assert caught.value.values == {"sectionId": section.section_id, "status": STAGE_STATUS[stage]}


@pytest.mark.parametrize("step", SIGNING)
def test_record_signing_zero_hash(platform: Platform, awarded: tuple[SectionRef, Signer], step: str) -> None:
    section, _ = awarded
    with reverts(errors.TenderRegistryZeroValue, watch(platform, section.section_id)) as caught:
        _record_signing(platform, platform.tenderer, step, section.section_id, ZERO32)
    assert caught.value.values == {"field": SIGNING[step][1]}


@pytest.mark.parametrize("first", SIGNING)
def test_signing_recorded_once(platform: Platform, first: str) -> None:
    section, _ = awarded_section(platform)
    _record_signing(platform, platform.tenderer, first, section.section_id, random_hash())
    for second in SIGNING:
        with reverts(errors.TenderRegistrySigningRecorded, watch(platform, section.section_id)) as caught:
            _record_signing(platform, platform.tenderer, second, section.section_id, random_hash())
        assert caught.value.values == {"sectionId": section.section_id}


# ---------------------------------------------------------------------------------------------- views


def grounds_holding(platform: Platform, section_id: bytes, account: str) -> set[ClaimGround]:
    return {ground for ground in ClaimGround if platform.tenders.claim_ground_holds(section_id, account, ground)}


@pytest.mark.parametrize(
    ("state", "releasable", "grounds"),
    [
        (BidStatus.NONE, True, set()),
        (BidStatus.WITHDRAWN, True, set()),
        (BidStatus.OPENED, False, set()),
        (BidStatus.DECRYPTION_FAILED_BIDDER_CAUSED, False, {ClaimGround.BIDDER_CAUSED_DECRYPTION_FAILURE}),
        (BidStatus.DECRYPTION_FAILED_NOT_BIDDER_CAUSED, False, set()),  # released once the opening closes
        (BidStatus.WITHDRAWN_AFTER_DEADLINE, False, {ClaimGround.WITHDRAWAL_AFTER_DEADLINE}),
    ],
)
def test_views_during_the_opening(
    platform: Platform,
    bids_in_states: tuple[SectionRef, dict[BidStatus, str]],
    state: BidStatus,
    releasable: bool,
    grounds: set[ClaimGround],
) -> None:
    section, by_status = bids_in_states
    account = by_status[state]
    assert platform.tenders.bond_releasable(section.section_id, account) == releasable
    assert grounds_holding(platform, section.section_id, account) == grounds
    kind, cover = bid_cover(platform, section.section_id, account)
    if state in (BidStatus.NONE, BidStatus.WITHDRAWN):
        assert (kind, cover) == (CoverKind.GUARANTEE, ZERO32)  # no cover: nothing to claim or release
    else:
        assert (kind, cover) == (CoverKind.CASH_DEPOSIT, platform.tenders.bid(section.section_id, account).cover)
        assert cover != ZERO32


def test_views_of_unknown_section_and_bidder(platform: Platform) -> None:
    section_id, account = fresh_id("section"), platform.bidders[0].address
    assert platform.tenders.bond_releasable(section_id, account)
    assert grounds_holding(platform, section_id, account) == set()
    assert bid_cover(platform, section_id, account) == (CoverKind.GUARANTEE, ZERO32)
    assert deadline_of(platform, section_id) == (0, ZERO_ADDRESS)
    assert not platform.tenders.is_witnessed(section_id)
    assert platform.tenders.witnesses(section_id) == ()
    assert platform.tenders.section(section_id).status == SectionStatus.NONE
    assert platform.tenders.bid(section_id, account).status == BidStatus.NONE


def test_deadline_of(platform: Platform, bidding: SectionRef) -> None:
    assert deadline_of(platform, bidding.section_id) == (bidding.opening_time, platform.tenderer.address)


@pytest.mark.parametrize("ending", ["signed", "refused"])
def test_views_through_a_whole_tender(platform: Platform, ending: str) -> None:
    tenders, section = platform.tenders, new_section(platform)
    section_id, agency = section.section_id, platform.agency
    winner, second, third, careless, unlucky = platform.bidders[:5]
    guarantee_id, _ = commit_with_guarantee(platform, section, winner)
    for bidder in (second, third, careless, unlucky):
        commit_with_deposit(platform, section, bidder)

    def releasable() -> dict[str, bool]:
        return {
            name: tenders.bond_releasable(section_id, bidder.address)
            for name, bidder in [("winner", winner), ("second", second), ("careless", careless), ("unlucky", unlucky)]
        }

    assert bid_cover(platform, section_id, winner.address) == (CoverKind.GUARANTEE, ZERO32)  # until the reveal
    assert releasable() == {"winner": False, "second": False, "careless": False, "unlucky": False}
    assert all(grounds_holding(platform, section_id, b.address) == set() for b in platform.bidders[:5])

    pass_deadline(platform, section)
    assert bid_cover(platform, section_id, winner.address) == (CoverKind.GUARANTEE, guarantee_id)
    assert releasable() == {"winner": False, "second": False, "careless": False, "unlucky": False}
    open_all(platform, section, [winner, second, third])
    tenders.record_decryption_failure(agency, section_id, careless.address, True, random_hash())
    tenders.record_decryption_failure(agency, section_id, unlucky.address, False, random_hash())
    assert releasable() == {"winner": False, "second": False, "careless": False, "unlucky": False}
    assert grounds_holding(platform, section_id, careless.address) == {ClaimGround.BIDDER_CAUSED_DECRYPTION_FAILURE}

    record = random_hash()
    tenders.close_opening(agency, section_id, record)
    # A failure not caused by its bidder counts as a withdrawal: that bond is free once the opening closed.
    assert releasable() == {"winner": False, "second": False, "careless": False, "unlucky": True}
    for witness in platform.witnesses[:2]:
        tenders.attest_opening(witness, section_id, record)
    tenders.award(agency, section_id, winner.address, random_hash())
    assert releasable() == {"winner": False, "second": True, "careless": False, "unlucky": True}
    assert grounds_holding(platform, section_id, winner.address) == set()

    guarantor = platform.guarantors[0]
    if ending == "signed":
        tenders.record_contract_signed(platform.tenderer, section_id, random_hash())
        assert releasable() == {"winner": True, "second": True, "careless": False, "unlucky": True}
        assert grounds_holding(platform, section_id, winner.address) == set()
        # The guarantee registry agrees: the issuer may now release the winner's guarantee.
        platform.guarantees.release(guarantor, guarantee_id, section_id)
        assert platform.guarantees.guarantee(guarantee_id).state == GuaranteeState.RELEASED
    else:
        tenders.record_refusal_to_sign(platform.tenderer, section_id, random_hash())
        assert releasable() == {"winner": False, "second": True, "careless": False, "unlucky": True}
        assert grounds_holding(platform, section_id, winner.address) == {ClaimGround.WINNER_REFUSED_TO_SIGN}
        assert grounds_holding(platform, section_id, second.address) == set()
        with pytest.raises(errors.GuaranteeRegistryNotReleasable):
            platform.guarantees.release(guarantor, guarantee_id, section_id)
        platform.guarantees.claim(
            platform.tenderer, guarantee_id, section_id, ClaimGround.WINNER_REFUSED_TO_SIGN, random_hash()
        )
        assert platform.guarantees.guarantee(guarantee_id).state == GuaranteeState.CLAIMED
    assert grounds_holding(platform, section_id, careless.address) == {ClaimGround.BIDDER_CAUSED_DECRYPTION_FAILURE}


def test_views_on_failed_tenders(platform: Platform, failed: SectionRef) -> None:
    # Closed with too few live bids and no outcome: every committed bid's bond is free.
    for bidder in platform.bidders[:2]:
        assert platform.tenders.bid(failed.section_id, bidder.address).status == BidStatus.COMMITTED
        assert platform.tenders.bond_releasable(failed.section_id, bidder.address)
        assert grounds_holding(platform, failed.section_id, bidder.address) == set()
        assert bid_cover(platform, failed.section_id, bidder.address)[0] == CoverKind.CASH_DEPOSIT

    # Failed with every outcome recorded: the bidders at fault stay liable, the others are free.
    section, bidders = section_with_bids(platform, 4)
    pass_deadline(platform, section)
    open_all(platform, section, bidders[:2])
    platform.tenders.record_decryption_failure(
        platform.agency, section.section_id, bidders[2].address, True, random_hash()
    )
    platform.tenders.record_withdrawal_after_deadline(
        platform.agency, section.section_id, bidders[3].address, random_hash()
    )
    result = platform.tenders.close_opening(platform.agency, section.section_id, random_hash())
    assert result.event("TenderFailed").args["validBids"] == 2
    expected = {
        bidders[0].address: (True, set()),
        bidders[1].address: (True, set()),
        bidders[2].address: (False, {ClaimGround.BIDDER_CAUSED_DECRYPTION_FAILURE}),
        bidders[3].address: (False, {ClaimGround.WITHDRAWAL_AFTER_DEADLINE}),
    }
    for account, (releasable, grounds) in expected.items():
        assert platform.tenders.bond_releasable(section.section_id, account) == releasable
        assert grounds_holding(platform, section.section_id, account) == grounds


