"""GuaranteeRegistry on a real node: issue, bind/unbind, cancel, release, claim, payout and expiry.

Every state-changing function is driven through the typed client, through real tender flows where the
registry asks the tender registry for bid facts. Each revert is checked by error and arguments, and the
guarantee (with its claim) must read the same after the revert as before it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any
from unittest.mock import ANY

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes

from contracts import errors
from contracts.client import GuaranteeRegistryClient, Signer, TenderRegistryClient, TxResult
from contracts.deploy import ConsortiumConfig
from contracts.records import (
    BidCover,
    Claim,
    ClaimGround,
    CoverKind,
    Guarantee,
    GuaranteeState,
    Role,
    SectionStatus,
)
from tests.backends import TEST_ACCOUNT_KEYS, Backend
from tests.helpers import (
    Platform,
    SectionRef,
    commit_bid,
    fresh_id,
    guarantee_terms,
    issue_guarantee,
    new_section,
    open_all,
    pass_deadline,
    random_hash,
    reveal_covers,
    witnessed_section,
)

ZERO32 = b"\x00" * 32
ZERO_ADDRESS = "0x" + "00" * 20
DAY = 24 * 3600

# ---------------------------------------------------------------------------------------------- helpers


def _norm(value: Any) -> Any:
    """Addresses in revert values come lower-case from the ABI decoder: compare them checksummed."""
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return to_checksum_address(value)
    return value


def registry(platform: Platform) -> GuaranteeRegistryClient:
    guarantees: GuaranteeRegistryClient = platform.guarantees
    return guarantees


def tenders_of(platform: Platform) -> TenderRegistryClient:
    tenders: TenderRegistryClient = platform.tenders
    return tenders


def stored(guarantees: GuaranteeRegistryClient, guarantee_id: bytes) -> tuple[Guarantee, Claim]:
    return guarantees.guarantee(guarantee_id), guarantees.claim_of(guarantee_id)


def assert_reverts(
    guarantees: GuaranteeRegistryClient,
    guarantee_id: bytes,
    error: type[errors.ContractRevert],
    action: Callable[[], object],
    **expected: Any,
) -> errors.ContractRevert:
    """`action` reverts with exactly `error(**expected)` and leaves the guarantee and its claim as they were."""
    before = stored(guarantees, guarantee_id)
    with pytest.raises(error) as caught:
        action()
    assert caught.value.error_name == error.error_name
    assert {k: _norm(v) for k, v in caught.value.values.items()} == {k: _norm(v) for k, v in expected.items()}
    assert stored(guarantees, guarantee_id) == before
    return caught.value


def only_event(result: TxResult, name: str, address: str) -> dict[str, Any]:
    """The args of the single `name` event, which `address` must have emitted."""
    found = result.events_named(name)
    assert len(found) == 1, [e.name for e in result.events]
    assert found[0].address == address
    return found[0].args


def bound_guarantee(
    platform: Platform, section: SectionRef, bidder: Signer, *, salt: bytes | None = None, **kwargs: Any
) -> bytes:
    """Issue a guarantee for `bidder` and commit a bid relying on it: bound once `pass_deadline` reveals it."""
    guarantee_id = issue_guarantee(platform, section, bidder, sealed_salt=salt, **kwargs)
    commit_bid(platform, bidder, section.section_id, random_hash(), BidCover.guarantee(guarantee_id, salt))
    return guarantee_id


def cover_of(platform: Platform, section: SectionRef, bidder: Signer) -> bytes:
    bid = tenders_of(platform).bid(section.section_id, bidder.address)
    assert bid.cover_kind == CoverKind.GUARANTEE
    return bid.cover


def sealed_ref(section_id: bytes, salt: bytes) -> bytes:
    return bytes(keccak(abi_encode(["bytes32", "bytes32"], [section_id, salt])))


def send_raw(backend: Backend, signer: Signer, address: str, function: str, *args: Any) -> TxResult:
    """Call a GuaranteeRegistry function the typed client does not expose (bind)."""
    contract = backend.chain.contract("GuaranteeRegistry", address)
    data = HexBytes(contract.encode_abi(function, args=list(args)))
    return backend.chain.send(signer, address, bytes(data))


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def guarantor(platform: Platform) -> Signer:
    return platform.guarantors[0]


@pytest.fixture
def other_guarantor(platform: Platform) -> Signer:
    return platform.guarantors[1]


@pytest.fixture(scope="module")
def stub_tender_registry(backend: Backend, dev_config: ConsortiumConfig) -> Signer:
    """A funded plain account that a separately deployed GuaranteeRegistry trusts as its tender registry."""
    signer = Signer.from_key("0x" + TEST_ACCOUNT_KEYS[1])
    backend.chain.send(dev_config.deployer, signer.address, b"", value=10**20, gas=21_000)
    return signer


@pytest.fixture(scope="module")
def stubbed(
    platform: Platform, backend: Backend, dev_config: ConsortiumConfig, stub_tender_registry: Signer
) -> Iterator[GuaranteeRegistryClient]:
    """A GuaranteeRegistry on the shared consortium whose `bind`/`unbind` a test account may call."""
    address, _ = backend.chain.deploy(
        dev_config.deployer, "GuaranteeRegistry", platform.consortium.address, stub_tender_registry.address
    )
    yield GuaranteeRegistryClient(backend.chain, address)


# ---------------------------------------------------------------------------------------------- deployment


def test_wiring_and_views(platform: Platform) -> None:
    guarantees = registry(platform)
    assert guarantees.chain.contract("GuaranteeRegistry", guarantees.address).functions.tenderRegistry().call() == (
        platform.tenders.address
    )
    assert guarantees.chain.contract("GuaranteeRegistry", guarantees.address).functions.consortium().call() == (
        platform.consortium.address
    )
    unknown = fresh_id("unknown")
    assert guarantees.guarantee(unknown) == Guarantee(
        issuer=ZERO_ADDRESS,
        valid_until=0,
        state=GuaranteeState.NONE,
        sealed_ref=False,
        bound=False,
        applicant=ZERO_ADDRESS,
        amount=0,
        beneficiary=ZERO_ADDRESS,
        issued_at=0,
        section_ref=ZERO32,
        letter_hash=ZERO32,
        issued_tx_hash="",
        issued_block=0,
    )
    assert guarantees.claim_of(unknown) == Claim(ClaimGround.NONE, ZERO32, ZERO32, 0, ZERO32)


@pytest.mark.parametrize("zero", ["consortium", "tenderRegistry"])
def test_constructor_rejects_zero_addresses(
    platform: Platform, backend: Backend, dev_config: ConsortiumConfig, zero: str
) -> None:
    consortium = ZERO_ADDRESS if zero == "consortium" else platform.consortium.address
    tender_registry = ZERO_ADDRESS if zero == "tenderRegistry" else platform.tenders.address
    with pytest.raises(errors.GuaranteeRegistryZeroValue) as caught:
        backend.chain.deploy(dev_config.deployer, "GuaranteeRegistry", consortium, tender_registry)
    assert caught.value.values == {"field": zero}


# ---------------------------------------------------------------------------------------------- issue


def test_issue_open_reference(platform: Platform, guarantor: Signer) -> None:
    guarantees = registry(platform)
    section = new_section(platform)
    bidder = platform.bidders[0]
    guarantee_id = fresh_id("guarantee")
    terms = guarantee_terms(platform, section, bidder)
    result = guarantees.issue(guarantor, guarantee_id, terms)

    assert only_event(result, "GuaranteeIssued", guarantees.address) == {
        "guaranteeId": guarantee_id,
        "issuer": guarantor.address,
        "applicant": bidder.address,
        "beneficiary": platform.tenderer.address,
        "sectionRef": section.section_id,
        "sealedRef": False,
        "amount": section.terms.bid_bond,
        "validUntil": terms.valid_until,
        "letterHash": terms.letter_hash,
    }
    assert guarantees.guarantee(guarantee_id) == Guarantee(
        issuer=guarantor.address,
        valid_until=terms.valid_until,
        state=GuaranteeState.ISSUED,
        sealed_ref=False,
        bound=False,
        applicant=bidder.address,
        amount=section.terms.bid_bond,
        beneficiary=platform.tenderer.address,
        issued_at=platform.backend.chain.w3.eth.get_block(result.block_number)["timestamp"],
        section_ref=section.section_id,
        letter_hash=terms.letter_hash,
        issued_tx_hash=result.tx_hash,
        issued_block=result.block_number,
    )
    assert guarantees.claim_of(guarantee_id) == Claim(ClaimGround.NONE, ZERO32, ZERO32, 0, ZERO32)


def test_issue_sealed_reference_names_no_section(platform: Platform, other_guarantor: Signer) -> None:
    guarantees = registry(platform)
    section = new_section(platform)
    bidder = platform.bidders[1]
    salt = random_hash()
    terms = guarantee_terms(platform, section, bidder, sealed_salt=salt)
    assert terms.section_ref == sealed_ref(section.section_id, salt) != section.section_id
    guarantee_id = fresh_id("guarantee")
    result = guarantees.issue(other_guarantor, guarantee_id, terms)
    args = only_event(result, "GuaranteeIssued", guarantees.address)
    assert args["sealedRef"] is True
    assert args["sectionRef"] == terms.section_ref
    assert args["issuer"] == other_guarantor.address
    stored_guarantee = guarantees.guarantee(guarantee_id)
    assert stored_guarantee.sealed_ref
    assert stored_guarantee.section_ref == terms.section_ref
    assert stored_guarantee.state == GuaranteeState.ISSUED

    # The registry cannot tell which section a sealed reference names, so it checks no section at issue:
    # one for a section that does not exist (or whose deadline passed) is accepted, and binds to nothing.
    unknown_section_terms = dataclasses.replace(terms, section_ref=sealed_ref(fresh_id("nowhere"), salt))
    other_id = fresh_id("guarantee")
    guarantees.issue(other_guarantor, other_id, unknown_section_terms)
    assert guarantees.guarantee(other_id).state == GuaranteeState.ISSUED


def test_sealed_reference_view(platform: Platform) -> None:
    guarantees = registry(platform)
    section_id, salt = fresh_id("section"), random_hash()
    reference = guarantees.sealed_reference(section_id, salt)
    assert reference == sealed_ref(section_id, salt)
    assert reference != guarantees.sealed_reference(section_id, random_hash())
    assert reference != guarantees.sealed_reference(fresh_id("section"), salt)


@pytest.mark.parametrize("who", ["bidder", "tenderer", "agency", "admin", "outsider"])
def test_issue_needs_guarantor_role(platform: Platform, outsider: Signer, who: str) -> None:
    guarantees = registry(platform)
    signer = {
        "bidder": platform.bidders[0],
        "tenderer": platform.tenderer,
        "agency": platform.agency,
        "admin": platform.admins[0],
        "outsider": outsider,
    }[who]
    section = new_section(platform)
    guarantee_id = fresh_id("guarantee")
    terms = guarantee_terms(platform, section, platform.bidders[0])
    assert_reverts(
        guarantees,
        guarantee_id,
        errors.GuaranteeRegistryUnauthorized,
        lambda: guarantees.issue(signer, guarantee_id, terms),
        account=signer.address,
        role=int(Role.GUARANTOR),
    )
    assert guarantees.guarantee(guarantee_id).state == GuaranteeState.NONE


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("guaranteeId", {}),
        ("sectionRef", {"section_ref": ZERO32}),
        ("letterHash", {"letter_hash": ZERO32}),
        ("amount", {"amount": 0}),
        ("applicant", {"applicant": ZERO_ADDRESS}),
        ("beneficiary", {"beneficiary": ZERO_ADDRESS}),
    ],
)
def test_issue_rejects_zero_values(platform: Platform, guarantor: Signer, field: str, change: dict[str, Any]) -> None:
    guarantees = registry(platform)
    section = new_section(platform)
    terms = dataclasses.replace(guarantee_terms(platform, section, platform.bidders[0]), **change)
    guarantee_id = ZERO32 if field == "guaranteeId" else fresh_id("guarantee")
    assert_reverts(
        guarantees,
        guarantee_id,
        errors.GuaranteeRegistryZeroValue,
        lambda: guarantees.issue(guarantor, guarantee_id, terms),
        field=field,
    )
    assert guarantees.guarantee(guarantee_id).state == GuaranteeState.NONE


def test_issue_rejects_duplicate_id(platform: Platform, guarantor: Signer, other_guarantor: Signer) -> None:
    guarantees = registry(platform)
    section = new_section(platform)
    guarantee_id = issue_guarantee(platform, section, platform.bidders[0], guarantor=guarantor)
    for signer, applicant in ((guarantor, platform.bidders[0]), (other_guarantor, platform.bidders[1])):
        terms = guarantee_terms(platform, section, applicant)
        assert_reverts(
            guarantees,
            guarantee_id,
            errors.GuaranteeRegistryDuplicateGuarantee,
            partial(guarantees.issue, signer, guarantee_id, terms),
            guaranteeId=guarantee_id,
        )
    # Also once the first guarantee has ended: ids are never reused.
    guarantees.cancel(guarantor, guarantee_id)
    terms = guarantee_terms(platform, section, platform.bidders[0])
    assert_reverts(
        guarantees,
        guarantee_id,
        errors.GuaranteeRegistryDuplicateGuarantee,
        lambda: guarantees.issue(guarantor, guarantee_id, terms),
        guaranteeId=guarantee_id,
    )


@pytest.mark.parametrize("sealed", [False, True])
def test_issue_rejects_ended_validity(platform: Platform, guarantor: Signer, sealed: bool) -> None:
    guarantees = registry(platform)
    section = new_section(platform)
    now = platform.now()
    salt = random_hash() if sealed else None
    terms = guarantee_terms(platform, section, platform.bidders[0], valid_until=now, sealed_salt=salt)
    guarantee_id = fresh_id("guarantee")
    caught = assert_reverts(
        guarantees,
        guarantee_id,
        errors.GuaranteeRegistryValidityEnded,
        lambda: guarantees.issue(guarantor, guarantee_id, terms),
        guaranteeId=guarantee_id,
        validUntil=now,
        nowTime=ANY,
    )
    assert caught.values["nowTime"] >= now


@pytest.mark.parametrize("who", ["tenderer", "guarantor", "admin", "outsider"])
def test_issue_applicant_must_be_bidder(platform: Platform, guarantor: Signer, outsider: Signer, who: str) -> None:
    guarantees = registry(platform)
    applicant = {
        "tenderer": platform.tenderer,
        "guarantor": guarantor,
        "admin": platform.admins[0],
        "outsider": outsider,
    }[who]
    section = new_section(platform)
    for salt in (None, random_hash()):
        terms = guarantee_terms(platform, section, applicant, sealed_salt=salt)
        guarantee_id = fresh_id("guarantee")
        assert_reverts(
            guarantees,
            guarantee_id,
            errors.GuaranteeRegistryApplicantNotBidder,
            partial(guarantees.issue, guarantor, guarantee_id, terms),
            applicant=applicant.address,
        )


def test_issue_open_reference_to_unknown_section(platform: Platform, guarantor: Signer) -> None:
    guarantees = registry(platform)
    section = new_section(platform)
    unknown = fresh_id("section")
    terms = dataclasses.replace(guarantee_terms(platform, section, platform.bidders[0]), section_ref=unknown)
    guarantee_id = fresh_id("guarantee")
    assert_reverts(
        guarantees,
        guarantee_id,
        errors.GuaranteeRegistryUnknownSection,
        lambda: guarantees.issue(guarantor, guarantee_id, terms),
        sectionId=unknown,
    )


def test_issue_open_reference_after_deadline(platform: Platform, guarantor: Signer) -> None:
    guarantees = registry(platform)
    section = new_section(platform)
    pass_deadline(platform, section)
    terms = guarantee_terms(platform, section, platform.bidders[0])
    guarantee_id = fresh_id("guarantee")
    caught = assert_reverts(
        guarantees,
        guarantee_id,
        errors.GuaranteeRegistryAfterDeadline,
        lambda: guarantees.issue(guarantor, guarantee_id, terms),
        sectionId=section.section_id,
        openingTime=section.opening_time,
        nowTime=ANY,
    )
    assert caught.values["nowTime"] >= section.opening_time


@pytest.mark.parametrize("who", ["bidder", "agency", "outsider"])
def test_issue_open_reference_beneficiary_must_be_the_sections_tenderer(
    platform: Platform, guarantor: Signer, outsider: Signer, who: str
) -> None:
    guarantees = registry(platform)
    beneficiary = {"bidder": platform.bidders[1], "agency": platform.agency, "outsider": outsider}[who]
    section = new_section(platform)
    terms = guarantee_terms(platform, section, platform.bidders[0], beneficiary=beneficiary.address)
    guarantee_id = fresh_id("guarantee")
    assert_reverts(
        guarantees,
        guarantee_id,
        errors.GuaranteeRegistryBeneficiaryMismatch,
        lambda: guarantees.issue(guarantor, guarantee_id, terms),
        guaranteeId=guarantee_id,
        beneficiary=beneficiary.address,
        tenderer=platform.tenderer.address,
    )


@pytest.mark.parametrize("who", ["bidder", "agency", "guarantor", "outsider"])
def test_issue_sealed_reference_beneficiary_must_be_a_tenderer(
    platform: Platform, guarantor: Signer, outsider: Signer, who: str
) -> None:
    guarantees = registry(platform)
    beneficiary = {
        "bidder": platform.bidders[1],
        "agency": platform.agency,
        "guarantor": guarantor,
        "outsider": outsider,
    }[who]
    section = new_section(platform)
    terms = guarantee_terms(
        platform, section, platform.bidders[0], beneficiary=beneficiary.address, sealed_salt=random_hash()
    )
    guarantee_id = fresh_id("guarantee")
    assert_reverts(
        guarantees,
        guarantee_id,
        errors.GuaranteeRegistryBeneficiaryNotTenderer,
        lambda: guarantees.issue(guarantor, guarantee_id, terms),
        beneficiary=beneficiary.address,
    )


# ---------------------------------------------------------------------------------------------- bind at the reveal


def test_reveal_binds_and_nothing_binds_before(platform: Platform, guarantor: Signer) -> None:
    guarantees, tenders = registry(platform), tenders_of(platform)
    section = new_section(platform)
    bidder = platform.bidders[0]
    guarantee_id = issue_guarantee(platform, section, bidder)

    committed = tenders.commit_bid(bidder, section.section_id, random_hash(), BidCover.guarantee(guarantee_id))
    assert [e.name for e in committed.events] == ["BidCommitted"]
    assert not guarantees.guarantee(guarantee_id).bound
    # A withdrawal before the deadline touches no guarantee: none was bound.
    withdrawn = tenders.withdraw_bid(bidder, section.section_id)
    assert [e.name for e in withdrawn.events] == ["BidWithdrawn"]
    assert guarantees.guarantee(guarantee_id).state == GuaranteeState.ISSUED

    # The bidder's new bid relies on it again; the reveal at the opening binds it.
    commit_bid(platform, bidder, section.section_id, random_hash(), BidCover.guarantee(guarantee_id))
    platform.backend.advance_to(section.opening_time)
    (revealed,) = reveal_covers(platform, section.section_id)
    assert only_event(revealed, "GuaranteeBound", guarantees.address) == {
        "guaranteeId": guarantee_id,
        "sectionId": section.section_id,
        "bidder": bidder.address,
    }
    assert only_event(revealed, "CoverRevealed", tenders.address)["cover"] == guarantee_id
    assert guarantees.guarantee(guarantee_id).bound
    assert guarantees.guarantee(guarantee_id).state == GuaranteeState.ISSUED


@pytest.mark.parametrize("who", ["guarantor", "tenderer", "bidder", "outsider"])
def test_bind_only_by_tender_registry(platform: Platform, backend: Backend, outsider: Signer, who: str) -> None:
    guarantees = registry(platform)
    caller = {
        "guarantor": platform.guarantors[0],
        "tenderer": platform.tenderer,
        "bidder": platform.bidders[0],
        "outsider": outsider,
    }[who]
    section = new_section(platform)
    unbound = issue_guarantee(platform, section, platform.bidders[0])
    assert_reverts(
        guarantees,
        unbound,
        errors.GuaranteeRegistryNotTenderRegistry,
        lambda: send_raw(
            backend,
            caller,
            guarantees.address,
            "bind",
            unbound,
            platform.bidders[0].address,
            section.section_id,
            ZERO32,
            platform.tenderer.address,
            section.terms.bid_bond,
            section.opening_time + section.terms.bid_validity_period,
            section.opening_time,
        ),
        account=caller.address,
    )
    assert not guarantees.guarantee(unbound).bound


def _commit(
    platform: Platform, bidder: Signer, section: SectionRef, guarantee_id: bytes, salt: bytes | None = None
) -> BidCover:
    """Commit `bidder`'s bid on `guarantee_id` without keeping the cover for `pass_deadline` to reveal."""
    cover = BidCover.guarantee(guarantee_id, salt)
    tenders_of(platform).commit_bid(bidder, section.section_id, random_hash(), cover)
    return cover


def _assert_reveal_reverts(
    platform: Platform,
    bidder: Signer,
    section: SectionRef,
    cover: BidCover,
    error: type[errors.ContractRevert],
    /,
    **expected: Any,
) -> None:
    """Revealing `cover` (after the deadline) reverts with the guarantee registry's error; nothing changes."""
    guarantees, tenders = registry(platform), tenders_of(platform)
    platform.backend.advance_to(section.opening_time)
    assert_reverts(
        guarantees,
        cover.cover,
        error,
        lambda: tenders.reveal_cover(platform.agency, section.section_id, bidder.address, cover),
        **expected,
    )
    assert not tenders.cover_of(section.section_id, bidder.address).revealed
    assert tenders.bid(section.section_id, bidder.address).cover == ZERO32


def test_reveal_of_unknown_guarantee(platform: Platform) -> None:
    section = new_section(platform)
    unknown = fresh_id("guarantee")
    cover = _commit(platform, platform.bidders[0], section, unknown)
    _assert_reveal_reverts(
        platform, platform.bidders[0], section, cover, errors.GuaranteeRegistryUnknownGuarantee, guaranteeId=unknown
    )


@pytest.mark.parametrize("ending", ["cancel", "release"])
def test_reveal_of_ended_guarantee(platform: Platform, guarantor: Signer, ending: str) -> None:
    guarantees = registry(platform)
    section = new_section(platform)
    bidder = platform.bidders[0]
    guarantee_id = issue_guarantee(platform, section, bidder)
    cover = _commit(platform, bidder, section, guarantee_id)
    # Unbound until the opening, so its issuer (or the beneficiary) can still end it: the bid then has no cover.
    if ending == "cancel":
        guarantees.cancel(guarantor, guarantee_id)
        state = GuaranteeState.CANCELLED
    else:
        guarantees.release(platform.tenderer, guarantee_id)
        state = GuaranteeState.RELEASED
    _assert_reveal_reverts(
        platform, bidder, section, cover, errors.GuaranteeRegistryInvalidState, guaranteeId=guarantee_id, state=state
    )


def test_reveal_of_guarantee_already_bound(platform: Platform) -> None:
    section = new_section(platform)
    applicant, other = platform.bidders[0], platform.bidders[1]
    guarantee_id = bound_guarantee(platform, section, applicant)
    cover = _commit(platform, other, section, guarantee_id)
    pass_deadline(platform, section)  # reveals the applicant's, binding it
    _assert_reveal_reverts(
        platform, other, section, cover, errors.GuaranteeRegistryAlreadyBound, guaranteeId=guarantee_id
    )


def test_reveal_of_someone_elses_guarantee(platform: Platform) -> None:
    section = new_section(platform)
    applicant, other = platform.bidders[0], platform.bidders[1]
    guarantee_id = issue_guarantee(platform, section, applicant)
    cover = _commit(platform, other, section, guarantee_id)
    _assert_reveal_reverts(
        platform,
        other,
        section,
        cover,
        errors.GuaranteeRegistryApplicantMismatch,
        guaranteeId=guarantee_id,
        applicant=applicant.address,
        bidder=other.address,
    )


def test_reveal_of_guarantee_for_another_section(platform: Platform) -> None:
    first, second = new_section(platform), new_section(platform)
    bidder = platform.bidders[0]
    guarantee_id = issue_guarantee(platform, first, bidder)
    cover = _commit(platform, bidder, second, guarantee_id)
    _assert_reveal_reverts(
        platform,
        bidder,
        second,
        cover,
        errors.GuaranteeRegistrySectionMismatch,
        guaranteeId=guarantee_id,
        sectionId=second.section_id,
    )


def test_reveal_of_guarantee_below_bond(platform: Platform) -> None:
    section = new_section(platform)
    bidder, other = platform.bidders[0], platform.bidders[1]
    amount = section.terms.bid_bond - 1
    guarantee_id = issue_guarantee(platform, section, bidder, amount=amount)
    cover = _commit(platform, bidder, section, guarantee_id)
    # More than the bond is fine.
    enough = bound_guarantee(platform, section, other, amount=section.terms.bid_bond + 1)
    _assert_reveal_reverts(
        platform,
        bidder,
        section,
        cover,
        errors.GuaranteeRegistryAmountBelowBond,
        guaranteeId=guarantee_id,
        amount=amount,
        bond=section.terms.bid_bond,
    )
    reveal_covers(platform, section.section_id)
    assert registry(platform).guarantee(enough).bound


def test_reveal_of_guarantee_too_short(platform: Platform) -> None:
    section = new_section(platform)
    bidder, other = platform.bidders[0], platform.bidders[1]
    required = section.opening_time + section.terms.bid_validity_period
    guarantee_id = issue_guarantee(platform, section, bidder, valid_until=required - 1)
    cover = _commit(platform, bidder, section, guarantee_id)
    # Lasting exactly as long as the bids bind is enough.
    exact = bound_guarantee(platform, section, other, valid_until=required)
    _assert_reveal_reverts(
        platform,
        bidder,
        section,
        cover,
        errors.GuaranteeRegistryValidityTooShort,
        guaranteeId=guarantee_id,
        validUntil=required - 1,
        requiredValidUntil=required,
    )
    reveal_covers(platform, section.section_id)
    assert registry(platform).guarantee(exact).bound


@pytest.mark.parametrize("case", ["zero-salt", "other-salt", "other-section", "right"])
def test_reveal_of_sealed_guarantee_needs_its_salt(platform: Platform, case: str) -> None:
    guarantees = registry(platform)
    section, other_section = new_section(platform), new_section(platform)
    bidder = platform.bidders[2]
    salt = random_hash()
    guarantee_id = issue_guarantee(platform, section, bidder, sealed_salt=salt)
    if case == "right":
        commit_bid(platform, bidder, section.section_id, random_hash(), BidCover.guarantee(guarantee_id, salt))
        platform.backend.advance_to(section.opening_time)
        (revealed,) = reveal_covers(platform, section.section_id)
        assert only_event(revealed, "GuaranteeBound", guarantees.address) == {
            "guaranteeId": guarantee_id,
            "sectionId": section.section_id,
            "bidder": bidder.address,
        }
        assert guarantees.guarantee(guarantee_id).bound
        assert cover_of(platform, section, bidder) == guarantee_id
        return
    # A wrong salt, or the right one for another section, does not open the sealed reference.
    target = other_section if case == "other-section" else section
    given = {"zero-salt": ZERO32, "other-salt": random_hash(), "other-section": salt}[case]
    cover = _commit(platform, bidder, target, guarantee_id, given)
    _assert_reveal_reverts(
        platform,
        bidder,
        target,
        cover,
        errors.GuaranteeRegistrySectionMismatch,
        guaranteeId=guarantee_id,
        sectionId=target.section_id,
    )


def test_bind_checks_through_a_stub_tender_registry(
    platform: Platform,
    backend: Backend,
    stubbed: GuaranteeRegistryClient,
    stub_tender_registry: Signer,
    guarantor: Signer,
) -> None:
    """`bind` on its own, with the arguments a tender registry passes, including a tenderer the shared
    registry can never pass (a sealed guarantee names a tenderer other than the section's)."""
    section = new_section(platform)
    bidder, other = platform.bidders[0], platform.bidders[1]
    salt = random_hash()
    terms = guarantee_terms(platform, section, bidder, sealed_salt=salt)
    guarantee_id = fresh_id("guarantee")
    stubbed.issue(guarantor, guarantee_id, terms)
    tenderer = platform.tenderer.address
    bond = section.terms.bid_bond
    required = terms.valid_until

    def bind(
        bidder_address: str = bidder.address,
        section_id: bytes = section.section_id,
        with_salt: bytes = salt,
        tenderer_address: str = tenderer,
        bond_amount: int = bond,
        valid_until: int = required,
        guarantee: bytes = guarantee_id,
        opening_time: int = section.opening_time,
    ) -> TxResult:
        return send_raw(
            backend,
            stub_tender_registry,
            stubbed.address,
            "bind",
            guarantee,
            bidder_address,
            section_id,
            with_salt,
            tenderer_address,
            bond_amount,
            valid_until,
            opening_time,
        )

    unknown = fresh_id("guarantee")
    assert_reverts(
        stubbed, unknown, errors.GuaranteeRegistryUnknownGuarantee, lambda: bind(guarantee=unknown), guaranteeId=unknown
    )
    assert_reverts(
        stubbed,
        guarantee_id,
        errors.GuaranteeRegistryApplicantMismatch,
        lambda: bind(bidder_address=other.address),
        guaranteeId=guarantee_id,
        applicant=bidder.address,
        bidder=other.address,
    )
    assert_reverts(
        stubbed,
        guarantee_id,
        errors.GuaranteeRegistryBeneficiaryMismatch,
        lambda: bind(tenderer_address=platform.agency.address),
        guaranteeId=guarantee_id,
        beneficiary=tenderer,
        tenderer=platform.agency.address,
    )
    assert_reverts(
        stubbed,
        guarantee_id,
        errors.GuaranteeRegistrySectionMismatch,
        lambda: bind(with_salt=random_hash()),
        guaranteeId=guarantee_id,
        sectionId=section.section_id,
    )
    assert_reverts(
        stubbed,
        guarantee_id,
        errors.GuaranteeRegistryAmountBelowBond,
        lambda: bind(bond_amount=terms.amount + 1),
        guaranteeId=guarantee_id,
        amount=terms.amount,
        bond=terms.amount + 1,
    )
    assert_reverts(
        stubbed,
        guarantee_id,
        errors.GuaranteeRegistryValidityTooShort,
        lambda: bind(valid_until=required + 1),
        guaranteeId=guarantee_id,
        validUntil=required,
        requiredValidUntil=required + 1,
    )

    issued_at = stubbed.guarantee(guarantee_id).issued_at
    assert_reverts(
        stubbed,
        guarantee_id,
        errors.GuaranteeRegistryAfterDeadline,
        lambda: bind(opening_time=issued_at),
        sectionId=section.section_id,
        openingTime=issued_at,
        nowTime=issued_at,
    )

    bound = bind(opening_time=issued_at + 1)
    assert only_event(bound, "GuaranteeBound", stubbed.address) == {
        "guaranteeId": guarantee_id,
        "sectionId": section.section_id,
        "bidder": bidder.address,
    }
    assert stubbed.guarantee(guarantee_id).bound
    assert_reverts(
        stubbed, guarantee_id, errors.GuaranteeRegistryAlreadyBound, lambda: bind(), guaranteeId=guarantee_id
    )

    assert_reverts(
        stubbed, guarantee_id, errors.GuaranteeRegistryBound, partial(stubbed.cancel, guarantor, guarantee_id),
        guaranteeId=guarantee_id,
    )

    cancelled = fresh_id("guarantee")
    stubbed.issue(guarantor, cancelled, terms)
    stubbed.cancel(guarantor, cancelled)
    assert_reverts(
        stubbed,
        cancelled,
        errors.GuaranteeRegistryInvalidState,
        lambda: bind(guarantee=cancelled),
        guaranteeId=cancelled,
        state=GuaranteeState.CANCELLED,
    )


# ---------------------------------------------------------------------------------------------- cancel


def test_cancel_unbound_guarantee(platform: Platform, guarantor: Signer) -> None:
    guarantees, tenders = registry(platform), tenders_of(platform)
    section = new_section(platform)
    never_used = issue_guarantee(platform, section, platform.bidders[0])
    result = guarantees.cancel(guarantor, never_used)
    assert only_event(result, "GuaranteeCancelled", guarantees.address) == {"guaranteeId": never_used}
    assert guarantees.guarantee(never_used).state == GuaranteeState.CANCELLED

    # A bid withdrawn before the deadline never bound it: it may be cancelled too.
    freed = bound_guarantee(platform, section, platform.bidders[1])
    tenders.withdraw_bid(platform.bidders[1], section.section_id)
    guarantees.cancel(guarantor, freed)
    assert guarantees.guarantee(freed).state == GuaranteeState.CANCELLED


def test_cancel_reverts(platform: Platform, guarantor: Signer, other_guarantor: Signer, outsider: Signer) -> None:
    guarantees = registry(platform)
    section = new_section(platform)
    bidder = platform.bidders[0]
    guarantee_id = issue_guarantee(platform, section, bidder)
    for signer in (other_guarantor, platform.tenderer, bidder, outsider):
        assert_reverts(
            guarantees,
            guarantee_id,
            errors.GuaranteeRegistryNotIssuer,
            partial(guarantees.cancel, signer, guarantee_id),
            guaranteeId=guarantee_id,
            account=signer.address,
        )
    unknown = fresh_id("guarantee")
    assert_reverts(
        guarantees,
        unknown,
        errors.GuaranteeRegistryUnknownGuarantee,
        lambda: guarantees.cancel(guarantor, unknown),
        guaranteeId=unknown,
    )

    bound = bound_guarantee(platform, section, platform.bidders[1])
    pass_deadline(platform, section)
    assert_reverts(
        guarantees, bound, errors.GuaranteeRegistryBound, lambda: guarantees.cancel(guarantor, bound), guaranteeId=bound
    )

    guarantees.cancel(guarantor, guarantee_id)
    assert_reverts(
        guarantees,
        guarantee_id,
        errors.GuaranteeRegistryInvalidState,
        lambda: guarantees.cancel(guarantor, guarantee_id),
        guaranteeId=guarantee_id,
        state=GuaranteeState.CANCELLED,
    )


def test_cancel_of_claimed_or_released_guarantee(platform: Platform, guarantor: Signer) -> None:
    guarantees, tenders = registry(platform), tenders_of(platform)
    section = new_section(platform)
    claimed = bound_guarantee(platform, section, platform.bidders[0])
    released = issue_guarantee(platform, section, platform.bidders[1])
    guarantees.release(guarantor, released)
    pass_deadline(platform, section)
    tenders.record_decryption_failure(
        platform.agency, section.section_id, platform.bidders[0].address, True, random_hash()
    )
    guarantees.claim(
        platform.tenderer, claimed, section.section_id, ClaimGround.BIDDER_CAUSED_DECRYPTION_FAILURE, random_hash()
    )
    for guarantee_id, state in ((claimed, GuaranteeState.CLAIMED), (released, GuaranteeState.RELEASED)):
        assert_reverts(
            guarantees,
            guarantee_id,
            errors.GuaranteeRegistryInvalidState,
            partial(guarantees.cancel, guarantor, guarantee_id),
            guaranteeId=guarantee_id,
            state=state,
        )


# ---------------------------------------------------------------------------------------------- release


def test_beneficiary_may_waive_at_any_time(platform: Platform) -> None:
    guarantees, tenders = registry(platform), tenders_of(platform)
    tenderer = platform.tenderer
    section = new_section(platform)
    unbound = issue_guarantee(platform, section, platform.bidders[0])
    # A bid relies on it unseen: waived before the opening, that bid's cover will not reveal.
    waived_before_opening = issue_guarantee(platform, section, platform.bidders[1])
    _commit(platform, platform.bidders[1], section, waived_before_opening)
    claimable = bound_guarantee(platform, section, platform.bidders[2])

    result = guarantees.release(tenderer, unbound)
    assert only_event(result, "GuaranteeReleased", guarantees.address) == {
        "guaranteeId": unbound,
        "releasedBy": tenderer.address,
    }
    # Any section id, even none, will do for the beneficiary.
    guarantees.release(tenderer, waived_before_opening, fresh_id("section"))
    pass_deadline(platform, section)
    tenders.record_decryption_failure(
        platform.agency, section.section_id, platform.bidders[2].address, True, random_hash()
    )
    assert tenders.claim_ground_holds(
        section.section_id, platform.bidders[2].address, ClaimGround.BIDDER_CAUSED_DECRYPTION_FAILURE
    )
    guarantees.release(tenderer, claimable, section.section_id)
    for guarantee_id in (unbound, waived_before_opening, claimable):
        assert guarantees.guarantee(guarantee_id).state == GuaranteeState.RELEASED
    # Released is final: no claim afterwards.
    assert_reverts(
        guarantees,
        claimable,
        errors.GuaranteeRegistryInvalidState,
        lambda: guarantees.claim(
            tenderer, claimable, section.section_id, ClaimGround.BIDDER_CAUSED_DECRYPTION_FAILURE, random_hash()
        ),
        guaranteeId=claimable,
        state=GuaranteeState.RELEASED,
    )


def test_issuer_releases_unbound_guarantee(platform: Platform, guarantor: Signer) -> None:
    guarantees, tenders = registry(platform), tenders_of(platform)
    section = new_section(platform)
    never_used = issue_guarantee(platform, section, platform.bidders[0])
    result = guarantees.release(guarantor, never_used)
    assert only_event(result, "GuaranteeReleased", guarantees.address) == {
        "guaranteeId": never_used,
        "releasedBy": guarantor.address,
    }
    freed = bound_guarantee(platform, section, platform.bidders[1])
    tenders.withdraw_bid(platform.bidders[1], section.section_id)
    guarantees.release(guarantor, freed)
    assert guarantees.guarantee(never_used).state == GuaranteeState.RELEASED
    assert guarantees.guarantee(freed).state == GuaranteeState.RELEASED


def test_issuer_cannot_release_bound_guarantee_while_tender_runs(platform: Platform, guarantor: Signer) -> None:
    guarantees, tenders = registry(platform), tenders_of(platform)
    section = new_section(platform)
    bidders = platform.bidders[:3]
    ids = [bound_guarantee(platform, section, bidder) for bidder in bidders]
    guarantee_id = ids[0]
    sid = section.section_id

    def not_releasable() -> None:
        assert_reverts(
            guarantees,
            guarantee_id,
            errors.GuaranteeRegistryNotReleasable,
            lambda: guarantees.release(guarantor, guarantee_id, sid),
            guaranteeId=guarantee_id,
            sectionId=sid,
        )

    pass_deadline(platform, section)
    # The section id must name the section whose bid relies on the guarantee.
    for wrong in (ZERO32, new_section(platform).section_id):
        assert_reverts(
            guarantees,
            guarantee_id,
            errors.GuaranteeRegistryNotCoveringBid,
            partial(guarantees.release, guarantor, guarantee_id, wrong),
            guaranteeId=guarantee_id,
            sectionId=wrong,
        )
    not_releasable()  # deadline passed, cover revealed, bid not opened yet
    open_all(platform, section, bidders)
    not_releasable()  # opened, opening not closed
    record = random_hash()
    tenders.close_opening(platform.agency, sid, record)
    assert tenders.section(sid).status == SectionStatus.OPENED
    not_releasable()  # opening closed, not awarded
    for witness in platform.witnesses[:2]:
        tenders.attest_opening(witness, sid, record)
    not_releasable()  # witnessed, not awarded
    tenders.award(platform.agency, sid, bidders[1].address, random_hash())
    guarantees.release(guarantor, guarantee_id, sid)  # a non-winner, now
    assert guarantees.guarantee(guarantee_id).state == GuaranteeState.RELEASED


def test_release_after_award_non_winners_at_once_winner_after_signing(
    platform: Platform, guarantor: Signer, other_guarantor: Signer
) -> None:
    guarantees, tenders = registry(platform), tenders_of(platform)
    section, _ = witnessed_section(platform, bidders=3, guarantees=True)
    sid = section.section_id
    winner, *losers = platform.bidders[:3]
    winner_guarantee = cover_of(platform, section, winner)
    tenders.award(platform.agency, sid, winner.address, random_hash())

    for loser in losers:
        guarantee_id = cover_of(platform, section, loser)
        # Only the issuer (or the beneficiary): not another guarantor, not the applicant.
        for signer in (other_guarantor, loser):
            assert_reverts(
                guarantees,
                guarantee_id,
                errors.GuaranteeRegistryNotIssuer,
                partial(guarantees.release, signer, guarantee_id, sid),
                guaranteeId=guarantee_id,
                account=signer.address,
            )
        result = guarantees.release(guarantor, guarantee_id, sid)
        assert only_event(result, "GuaranteeReleased", guarantees.address) == {
            "guaranteeId": guarantee_id,
            "releasedBy": guarantor.address,
        }
        assert guarantees.guarantee(guarantee_id).state == GuaranteeState.RELEASED
        assert_reverts(
            guarantees,
            guarantee_id,
            errors.GuaranteeRegistryInvalidState,
            partial(guarantees.release, guarantor, guarantee_id, sid),
            guaranteeId=guarantee_id,
            state=GuaranteeState.RELEASED,
        )

    assert_reverts(
        guarantees,
        winner_guarantee,
        errors.GuaranteeRegistryNotReleasable,
        lambda: guarantees.release(guarantor, winner_guarantee, sid),
        guaranteeId=winner_guarantee,
        sectionId=sid,
    )
    tenders.record_contract_signed(platform.tenderer, sid, random_hash())
    assert not tenders.claim_ground_holds(sid, winner.address, ClaimGround.WINNER_REFUSED_TO_SIGN)
    guarantees.release(guarantor, winner_guarantee, sid)
    assert guarantees.guarantee(winner_guarantee).state == GuaranteeState.RELEASED


def test_release_after_failed_tender(platform: Platform, guarantor: Signer) -> None:
    """A failed tender frees every bond at once, except that of a bidder who caused its decryption failure."""
    guarantees, tenders = registry(platform), tenders_of(platform)
    section = new_section(platform, min_valid_bids=3)
    sid = section.section_id
    opened, not_caused, caused = platform.bidders[:3]
    ids = {bidder.address: bound_guarantee(platform, section, bidder) for bidder in (opened, not_caused, caused)}
    pass_deadline(platform, section)
    tenders.record_bid_opened(platform.agency, sid, opened.address, random_hash())
    tenders.record_decryption_failure(platform.agency, sid, not_caused.address, False, random_hash())
    tenders.record_decryption_failure(platform.agency, sid, caused.address, True, random_hash())
    # A failure the bidder did not cause is treated as a withdrawal, but only once the opening closed.
    assert_reverts(
        guarantees,
        ids[not_caused.address],
        errors.GuaranteeRegistryNotReleasable,
        lambda: guarantees.release(guarantor, ids[not_caused.address], sid),
        guaranteeId=ids[not_caused.address],
        sectionId=sid,
    )
    closed = tenders.close_opening(platform.agency, sid, random_hash())
    assert closed.event("TenderFailed").args["validBids"] == 1
    assert tenders.section(sid).status == SectionStatus.FAILED_TENDER

    for bidder in (opened, not_caused):
        guarantees.release(guarantor, ids[bidder.address], sid)
        assert guarantees.guarantee(ids[bidder.address]).state == GuaranteeState.RELEASED
    assert_reverts(
        guarantees,
        ids[caused.address],
        errors.GuaranteeRegistryNotReleasable,
        lambda: guarantees.release(guarantor, ids[caused.address], sid),
        guaranteeId=ids[caused.address],
        sectionId=sid,
    )


def test_release_reverts_for_strangers_and_unknown_ids(
    platform: Platform, guarantor: Signer, other_guarantor: Signer, outsider: Signer
) -> None:
    guarantees = registry(platform)
    section = new_section(platform)
    bidder = platform.bidders[0]
    guarantee_id = issue_guarantee(platform, section, bidder)
    for signer in (other_guarantor, bidder, platform.agency, outsider):
        assert_reverts(
            guarantees,
            guarantee_id,
            errors.GuaranteeRegistryNotIssuer,
            partial(guarantees.release, signer, guarantee_id),
            guaranteeId=guarantee_id,
            account=signer.address,
        )
    unknown = fresh_id("guarantee")
    assert_reverts(
        guarantees,
        unknown,
        errors.GuaranteeRegistryUnknownGuarantee,
        lambda: guarantees.release(platform.tenderer, unknown),
        guaranteeId=unknown,
    )
    guarantees.cancel(guarantor, guarantee_id)
    for signer in (guarantor, platform.tenderer):
        assert_reverts(
            guarantees,
            guarantee_id,
            errors.GuaranteeRegistryInvalidState,
            partial(guarantees.release, signer, guarantee_id),
            guaranteeId=guarantee_id,
            state=GuaranteeState.CANCELLED,
        )


# ---------------------------------------------------------------------------------------------- claim and payout


def test_claim_on_bidder_caused_decryption_failure_and_full_payout(platform: Platform, guarantor: Signer) -> None:
    guarantees, tenders = registry(platform), tenders_of(platform)
    section = new_section(platform)
    sid = section.section_id
    bidder = platform.bidders[0]
    guarantee_id = bound_guarantee(platform, section, bidder)
    pass_deadline(platform, section)
    tenders.record_decryption_failure(platform.agency, sid, bidder.address, True, random_hash())

    evidence = random_hash()
    ground = ClaimGround.BIDDER_CAUSED_DECRYPTION_FAILURE
    claimed = guarantees.claim(platform.tenderer, guarantee_id, sid, ground, evidence)
    assert only_event(claimed, "GuaranteeClaimed", guarantees.address) == {
        "guaranteeId": guarantee_id,
        "sectionId": sid,
        "ground": ground,
        "evidenceHash": evidence,
    }
    assert guarantees.guarantee(guarantee_id).state == GuaranteeState.CLAIMED
    assert guarantees.claim_of(guarantee_id) == Claim(ground, sid, evidence, 0, ZERO32)

    payment = fresh_id("payment")
    paid = guarantees.record_payout(guarantor, guarantee_id, section.terms.bid_bond, payment)
    assert only_event(paid, "GuaranteePaid", guarantees.address) == {
        "guaranteeId": guarantee_id,
        "amount": section.terms.bid_bond,
        "paymentRef": payment,
    }
    assert guarantees.guarantee(guarantee_id).state == GuaranteeState.PAID
    assert guarantees.claim_of(guarantee_id) == Claim(ground, sid, evidence, section.terms.bid_bond, payment)


def test_claim_on_withdrawal_after_deadline(platform: Platform, guarantor: Signer) -> None:
    guarantees, tenders = registry(platform), tenders_of(platform)
    section = new_section(platform)
    sid = section.section_id
    before_opening, after_opening = platform.bidders[:2]
    ids = [bound_guarantee(platform, section, bidder) for bidder in (before_opening, after_opening)]
    pass_deadline(platform, section)
    # Recorded by the agency: a bid still sealed, and one already opened.
    tenders.record_withdrawal_after_deadline(platform.agency, sid, before_opening.address, random_hash())
    tenders.record_bid_opened(platform.agency, sid, after_opening.address, random_hash())
    tenders.record_withdrawal_after_deadline(platform.agency, sid, after_opening.address, random_hash())

    ground = ClaimGround.WITHDRAWAL_AFTER_DEADLINE
    for guarantee_id in ids:
        evidence = random_hash()
        claimed = guarantees.claim(platform.tenderer, guarantee_id, sid, ground, evidence)
        assert only_event(claimed, "GuaranteeClaimed", guarantees.address) == {
            "guaranteeId": guarantee_id,
            "sectionId": sid,
            "ground": ground,
            "evidenceHash": evidence,
        }
        assert guarantees.claim_of(guarantee_id) == Claim(ground, sid, evidence, 0, ZERO32)
        assert guarantees.guarantee(guarantee_id).state == GuaranteeState.CLAIMED
    # Such a bond is never released by the issuer.
    assert_reverts(
        guarantees,
        ids[0],
        errors.GuaranteeRegistryInvalidState,
        lambda: guarantees.release(guarantor, ids[0], sid),
        guaranteeId=ids[0],
        state=GuaranteeState.CLAIMED,
    )


def test_claim_on_winner_refusing_to_sign(platform: Platform, guarantor: Signer) -> None:
    guarantees, tenders = registry(platform), tenders_of(platform)
    section, _ = witnessed_section(platform, bidders=3, guarantees=True)
    sid = section.section_id
    winner, loser = platform.bidders[0], platform.bidders[1]
    winner_guarantee, loser_guarantee = cover_of(platform, section, winner), cover_of(platform, section, loser)
    ground = ClaimGround.WINNER_REFUSED_TO_SIGN

    def ground_not_met(guarantee_id: bytes) -> None:
        assert_reverts(
            guarantees,
            guarantee_id,
            errors.GuaranteeRegistryGroundNotMet,
            lambda: guarantees.claim(platform.tenderer, guarantee_id, sid, ground, random_hash()),
            guaranteeId=guarantee_id,
            sectionId=sid,
            ground=ground,
        )

    ground_not_met(winner_guarantee)  # not awarded yet
    tenders.award(platform.agency, sid, winner.address, random_hash())
    ground_not_met(winner_guarantee)  # awarded, no refusal recorded
    tenders.record_refusal_to_sign(platform.tenderer, sid, random_hash())
    ground_not_met(loser_guarantee)  # the refusal is the winner's, not a loser's
    assert_reverts(
        guarantees,
        winner_guarantee,
        errors.GuaranteeRegistryNotReleasable,
        lambda: guarantees.release(guarantor, winner_guarantee, sid),
        guaranteeId=winner_guarantee,
        sectionId=sid,
    )

    evidence = random_hash()
    claimed = guarantees.claim(platform.tenderer, winner_guarantee, sid, ground, evidence)
    assert only_event(claimed, "GuaranteeClaimed", guarantees.address) == {
        "guaranteeId": winner_guarantee,
        "sectionId": sid,
        "ground": ground,
        "evidenceHash": evidence,
    }
    assert guarantees.claim_of(winner_guarantee) == Claim(ground, sid, evidence, 0, ZERO32)
    # A partial payout is recorded as such.
    payment = fresh_id("payment")
    paid = guarantees.record_payout(guarantor, winner_guarantee, 1, payment)
    assert only_event(paid, "GuaranteePaid", guarantees.address) == {
        "guaranteeId": winner_guarantee,
        "amount": 1,
        "paymentRef": payment,
    }
    assert guarantees.claim_of(winner_guarantee) == Claim(ground, sid, evidence, 1, payment)
    assert guarantees.guarantee(winner_guarantee).state == GuaranteeState.PAID


def test_claim_on_sealed_guarantee(platform: Platform) -> None:
    guarantees, tenders = registry(platform), tenders_of(platform)
    section = new_section(platform)
    bidder = platform.bidders[3]
    guarantee_id = bound_guarantee(platform, section, bidder, salt=random_hash())
    pass_deadline(platform, section)
    tenders.record_decryption_failure(platform.agency, section.section_id, bidder.address, True, random_hash())
    guarantees.claim(
        platform.tenderer, guarantee_id, section.section_id, ClaimGround.BIDDER_CAUSED_DECRYPTION_FAILURE, random_hash()
    )
    assert guarantees.guarantee(guarantee_id).state == GuaranteeState.CLAIMED


def test_claim_reverts(platform: Platform, guarantor: Signer, outsider: Signer) -> None:
    guarantees, tenders = registry(platform), tenders_of(platform)
    section = new_section(platform)
    sid = section.section_id
    bidder = platform.bidders[0]
    guarantee_id = bound_guarantee(platform, section, bidder)
    never_bound = issue_guarantee(platform, section, platform.bidders[1])
    caused = ClaimGround.BIDDER_CAUSED_DECRYPTION_FAILURE

    # Before the deadline the guarantee covers no bid yet (its cover is revealed at the opening).
    for ground in ClaimGround:
        assert_reverts(
            guarantees,
            guarantee_id,
            errors.GuaranteeRegistryNotCoveringBid,
            partial(guarantees.claim, platform.tenderer, guarantee_id, sid, ground, random_hash()),
            guaranteeId=guarantee_id,
            sectionId=sid,
        )
    pass_deadline(platform, section)
    tenders.record_decryption_failure(platform.agency, sid, bidder.address, True, random_hash())

    for signer in (guarantor, bidder, platform.agency, outsider):
        assert_reverts(
            guarantees,
            guarantee_id,
            errors.GuaranteeRegistryNotBeneficiary,
            partial(guarantees.claim, signer, guarantee_id, sid, caused, random_hash()),
            guaranteeId=guarantee_id,
            account=signer.address,
        )
    assert_reverts(
        guarantees,
        guarantee_id,
        errors.GuaranteeRegistryZeroValue,
        lambda: guarantees.claim(platform.tenderer, guarantee_id, sid, caused, ZERO32),
        field="evidenceHash",
    )
    # No ground, or a ground the section's record does not support.
    for ground in (ClaimGround.NONE, ClaimGround.WITHDRAWAL_AFTER_DEADLINE, ClaimGround.WINNER_REFUSED_TO_SIGN):
        assert_reverts(
            guarantees,
            guarantee_id,
            errors.GuaranteeRegistryGroundNotMet,
            partial(guarantees.claim, platform.tenderer, guarantee_id, sid, ground, random_hash()),
            guaranteeId=guarantee_id,
            sectionId=sid,
            ground=ground,
        )
    # The section must be the one whose bid relies on the guarantee.
    for wrong in (ZERO32, new_section(platform).section_id):
        assert_reverts(
            guarantees,
            guarantee_id,
            errors.GuaranteeRegistryNotCoveringBid,
            partial(guarantees.claim, platform.tenderer, guarantee_id, wrong, caused, random_hash()),
            guaranteeId=guarantee_id,
            sectionId=wrong,
        )
    # A guarantee no bid relied on covers nothing.
    assert_reverts(
        guarantees,
        never_bound,
        errors.GuaranteeRegistryNotCoveringBid,
        lambda: guarantees.claim(platform.tenderer, never_bound, sid, caused, random_hash()),
        guaranteeId=never_bound,
        sectionId=sid,
    )
    unknown = fresh_id("guarantee")
    assert_reverts(
        guarantees,
        unknown,
        errors.GuaranteeRegistryUnknownGuarantee,
        lambda: guarantees.claim(platform.tenderer, unknown, sid, caused, random_hash()),
        guaranteeId=unknown,
    )

    guarantees.claim(platform.tenderer, guarantee_id, sid, caused, random_hash())
    assert_reverts(
        guarantees,
        guarantee_id,
        errors.GuaranteeRegistryInvalidState,
        lambda: guarantees.claim(platform.tenderer, guarantee_id, sid, caused, random_hash()),
        guaranteeId=guarantee_id,
        state=GuaranteeState.CLAIMED,
    )
    # Claimed can only become Paid: neither party can release it any more.
    for signer in (platform.tenderer, guarantor):
        assert_reverts(
            guarantees,
            guarantee_id,
            errors.GuaranteeRegistryInvalidState,
            partial(guarantees.release, signer, guarantee_id, sid),
            guaranteeId=guarantee_id,
            state=GuaranteeState.CLAIMED,
        )


def test_claim_after_withdrawal_before_deadline_or_failure_not_caused(platform: Platform) -> None:
    guarantees, tenders = registry(platform), tenders_of(platform)
    section = new_section(platform)
    sid = section.section_id
    withdrawer, unlucky = platform.bidders[:2]
    withdrawn = bound_guarantee(platform, section, withdrawer)
    tenders.withdraw_bid(withdrawer, sid)
    not_caused = bound_guarantee(platform, section, unlucky)
    pass_deadline(platform, section)
    tenders.record_decryption_failure(platform.agency, sid, unlucky.address, False, random_hash())

    for ground in (ClaimGround.WITHDRAWAL_AFTER_DEADLINE, ClaimGround.BIDDER_CAUSED_DECRYPTION_FAILURE):
        assert_reverts(
            guarantees,
            withdrawn,
            errors.GuaranteeRegistryNotCoveringBid,
            partial(guarantees.claim, platform.tenderer, withdrawn, sid, ground, random_hash()),
            guaranteeId=withdrawn,
            sectionId=sid,
        )
        assert_reverts(
            guarantees,
            not_caused,
            errors.GuaranteeRegistryGroundNotMet,
            partial(guarantees.claim, platform.tenderer, not_caused, sid, ground, random_hash()),
            guaranteeId=not_caused,
            sectionId=sid,
            ground=ground,
        )


def test_record_payout_reverts(
    platform: Platform, guarantor: Signer, other_guarantor: Signer, outsider: Signer
) -> None:
    guarantees, tenders = registry(platform), tenders_of(platform)
    section = new_section(platform)
    sid = section.section_id
    bidder = platform.bidders[0]
    amount = section.terms.bid_bond + 5
    guarantee_id = bound_guarantee(platform, section, bidder, amount=amount)
    payment = fresh_id("payment")

    unknown = fresh_id("guarantee")
    assert_reverts(
        guarantees,
        unknown,
        errors.GuaranteeRegistryUnknownGuarantee,
        lambda: guarantees.record_payout(guarantor, unknown, 1, payment),
        guaranteeId=unknown,
    )
    assert_reverts(
        guarantees,
        guarantee_id,
        errors.GuaranteeRegistryInvalidState,
        lambda: guarantees.record_payout(guarantor, guarantee_id, 1, payment),
        guaranteeId=guarantee_id,
        state=GuaranteeState.ISSUED,
    )
    pass_deadline(platform, section)
    tenders.record_decryption_failure(platform.agency, sid, bidder.address, True, random_hash())
    guarantees.claim(platform.tenderer, guarantee_id, sid, ClaimGround.BIDDER_CAUSED_DECRYPTION_FAILURE, random_hash())

    for signer in (other_guarantor, platform.tenderer, bidder, outsider):
        assert_reverts(
            guarantees,
            guarantee_id,
            errors.GuaranteeRegistryNotIssuer,
            partial(guarantees.record_payout, signer, guarantee_id, 1, payment),
            guaranteeId=guarantee_id,
            account=signer.address,
        )
    for paid in (0, amount + 1):
        assert_reverts(
            guarantees,
            guarantee_id,
            errors.GuaranteeRegistryInvalidPayout,
            partial(guarantees.record_payout, guarantor, guarantee_id, paid, payment),
            guaranteeId=guarantee_id,
            paid=paid,
            amount=amount,
        )
    assert_reverts(
        guarantees,
        guarantee_id,
        errors.GuaranteeRegistryZeroValue,
        lambda: guarantees.record_payout(guarantor, guarantee_id, amount, ZERO32),
        field="paymentRef",
    )

    # The whole guaranteed amount (above the bond here) may be paid, once.
    guarantees.record_payout(guarantor, guarantee_id, amount, payment)
    assert guarantees.claim_of(guarantee_id).paid_amount == amount
    assert_reverts(
        guarantees,
        guarantee_id,
        errors.GuaranteeRegistryInvalidState,
        lambda: guarantees.record_payout(guarantor, guarantee_id, 1, fresh_id("payment")),
        guaranteeId=guarantee_id,
        state=GuaranteeState.PAID,
    )
    for action in (
        lambda: guarantees.release(platform.tenderer, guarantee_id, sid),
        lambda: guarantees.cancel(guarantor, guarantee_id),
        lambda: guarantees.expire(outsider, guarantee_id),
        lambda: guarantees.claim(
            platform.tenderer, guarantee_id, sid, ClaimGround.BIDDER_CAUSED_DECRYPTION_FAILURE, random_hash()
        ),
    ):
        assert_reverts(
            guarantees,
            guarantee_id,
            errors.GuaranteeRegistryInvalidState,
            action,
            guaranteeId=guarantee_id,
            state=GuaranteeState.PAID,
        )


# ---------------------------------------------------------------------------------------------- validity and expiry


def test_claim_until_validity_ends_then_expire(platform: Platform, guarantor: Signer, outsider: Signer) -> None:
    guarantees, tenders = registry(platform), tenders_of(platform)
    section = new_section(platform, opening_in=600, validity=600)
    sid = section.section_id
    valid_until = section.opening_time + section.terms.bid_validity_period
    early, late = platform.bidders[:2]
    early_id = bound_guarantee(platform, section, early, valid_until=valid_until)
    late_id = bound_guarantee(platform, section, late, valid_until=valid_until)
    pass_deadline(platform, section)
    for bidder in (early, late):
        tenders.record_decryption_failure(platform.agency, sid, bidder.address, True, random_hash())
    caused = ClaimGround.BIDDER_CAUSED_DECRYPTION_FAILURE

    platform.backend.advance_to(valid_until - 60)
    guarantees.claim(platform.tenderer, early_id, sid, caused, random_hash())
    caught = assert_reverts(
        guarantees,
        late_id,
        errors.GuaranteeRegistryNotExpired,
        lambda: guarantees.expire(outsider, late_id),
        guaranteeId=late_id,
        validUntil=valid_until,
        nowTime=ANY,
    )
    assert caught.values["nowTime"] <= valid_until

    platform.backend.advance_to(valid_until + 1)
    caught = assert_reverts(
        guarantees,
        late_id,
        errors.GuaranteeRegistryValidityEnded,
        lambda: guarantees.claim(platform.tenderer, late_id, sid, caused, random_hash()),
        guaranteeId=late_id,
        validUntil=valid_until,
        nowTime=ANY,
    )
    assert caught.values["nowTime"] > valid_until
    # A claim made in time is still paid after the validity ended, and it cannot expire.
    assert_reverts(
        guarantees,
        early_id,
        errors.GuaranteeRegistryInvalidState,
        lambda: guarantees.expire(outsider, early_id),
        guaranteeId=early_id,
        state=GuaranteeState.CLAIMED,
    )
    guarantees.record_payout(guarantor, early_id, section.terms.bid_bond, fresh_id("payment"))

    # Anyone may mark a bound guarantee expired once its validity ended.
    expired = guarantees.expire(outsider, late_id)
    assert only_event(expired, "GuaranteeExpired", guarantees.address) == {"guaranteeId": late_id}
    assert guarantees.guarantee(late_id).state == GuaranteeState.EXPIRED
    assert guarantees.guarantee(late_id).bound


def test_expire(platform: Platform, guarantor: Signer, outsider: Signer) -> None:
    guarantees = registry(platform)
    section = new_section(platform)
    valid_until = platform.now() + 300
    # Sealed references, so that the short validity needs no section to fit.
    short = issue_guarantee(platform, section, platform.bidders[0], valid_until=valid_until, sealed_salt=random_hash())
    cancelled = issue_guarantee(
        platform, section, platform.bidders[1], valid_until=valid_until, sealed_salt=random_hash()
    )
    guarantees.cancel(guarantor, cancelled)
    unknown = fresh_id("guarantee")
    assert_reverts(
        guarantees,
        unknown,
        errors.GuaranteeRegistryUnknownGuarantee,
        lambda: guarantees.expire(outsider, unknown),
        guaranteeId=unknown,
    )
    assert_reverts(
        guarantees,
        short,
        errors.GuaranteeRegistryNotExpired,
        lambda: guarantees.expire(guarantor, short),
        guaranteeId=short,
        validUntil=valid_until,
        nowTime=ANY,
    )

    platform.backend.advance_to(valid_until + 1)
    assert_reverts(
        guarantees,
        cancelled,
        errors.GuaranteeRegistryInvalidState,
        lambda: guarantees.expire(outsider, cancelled),
        guaranteeId=cancelled,
        state=GuaranteeState.CANCELLED,
    )
    result = guarantees.expire(platform.bidders[2], short)
    assert only_event(result, "GuaranteeExpired", guarantees.address) == {"guaranteeId": short}
    assert guarantees.guarantee(short).state == GuaranteeState.EXPIRED

    # Expired is final.
    for action in (
        lambda: guarantees.expire(outsider, short),
        lambda: guarantees.cancel(guarantor, short),
        lambda: guarantees.release(guarantor, short),
        lambda: guarantees.release(platform.tenderer, short),
        lambda: guarantees.claim(
            platform.tenderer, short, section.section_id, ClaimGround.WITHDRAWAL_AFTER_DEADLINE, random_hash()
        ),
    ):
        assert_reverts(
            guarantees,
            short,
            errors.GuaranteeRegistryInvalidState,
            action,
            guaranteeId=short,
            state=GuaranteeState.EXPIRED,
        )
    assert_reverts(
        guarantees,
        short,
        errors.GuaranteeRegistryInvalidState,
        lambda: guarantees.record_payout(guarantor, short, 1, fresh_id("payment")),
        guaranteeId=short,
        state=GuaranteeState.EXPIRED,
    )
