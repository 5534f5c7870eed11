"""The lifecycle on a real chain: application rules, underwriting, premium, and every illegal step
refused both by the library (named exception) and by the contract (its custom error)."""

from __future__ import annotations

import dataclasses

import pytest

from contracts import errors as chain_errors
from contracts.records import BidCover, ClaimGround, GuaranteeState
from guarantees import errors, lifecycle
from guarantees.records import Decision, ManualDecision, PremiumTerms, UnderwritingRules
from tests.guarantees.support import PREMIUM, application, approve_and_pay, issue
from tests.helpers import (
    Platform,
    commit_bid,
    commit_with_deposit,
    new_section,
    open_all,
    pass_deadline,
    random_hash,
)


def test_application_rules(platform: Platform) -> None:
    section = new_section(platform)
    facts = lifecycle.section_facts(platform.deployment, section.section_id)
    assert facts.tenderer == platform.tenderer.address and facts.bid_bond == section.terms.bid_bond
    now = platform.now()
    good = application(platform, section, platform.bidders[0])
    lifecycle.check_application(good, facts, now)
    cases: list[tuple[dict[str, object], type[errors.ApplicationRefused]]] = [
        ({"amount": section.terms.bid_bond - 1}, errors.AmountBelowBond),
        ({"valid_until": facts.required_valid_until - 1}, errors.ValidityTooShort),
        (
            {"beneficiary": dataclasses.replace(good.beneficiary, account=platform.agency.address)},
            errors.BeneficiaryNotTenderer,
        ),
        ({"number": "no spaces allowed"}, errors.InvalidApplication),
        ({"amount": 0}, errors.InvalidApplication),
        ({"salt": b"short"}, errors.InvalidApplication),
    ]
    for change, error in cases:
        with pytest.raises(error):
            lifecycle.check_application(dataclasses.replace(good, **change), facts, now)  # type: ignore[arg-type]
    with pytest.raises(errors.AfterDeadline):
        lifecycle.check_application(good, facts, section.opening_time)
    with pytest.raises(errors.UnknownSection):
        lifecycle.section_facts(platform.deployment, random_hash())


def test_underwriting_rules_then_a_person(platform: Platform) -> None:
    section = new_section(platform)
    facts = lifecycle.section_facts(platform.deployment, section.section_id)
    now = platform.now()
    app = application(platform, section, platform.bidders[0])
    with pytest.raises(errors.NotUnderwritten):
        lifecycle.underwrite(app, facts, UnderwritingRules(), None, now)
    refused = lifecycle.underwrite(
        app, facts, UnderwritingRules(refused_applicants=frozenset({platform.bidders[0].address})), None, now
    )
    assert refused.decision is Decision.REFUSED and "refusal list" in refused.reasons[0]
    too_big = lifecycle.underwrite(
        app, facts, UnderwritingRules(max_amount=1), ManualDecision("张", True, "", now), now
    )
    assert not too_big.approved
    below = lifecycle.underwrite(
        dataclasses.replace(app, amount=1), facts, UnderwritingRules(), ManualDecision("张", True, "", now), now
    )
    assert not below.approved and below.reasons[0].startswith("AmountBelowBond")
    declined = lifecycle.underwrite(app, facts, UnderwritingRules(), ManualDecision("张", False, "资信不足", now), now)
    assert declined.decision is Decision.REFUSED and declined.underwriter == "张"
    approved = lifecycle.underwrite(app, facts, UnderwritingRules(), ManualDecision("张", True, "", now), now)
    assert approved.approved

    with pytest.raises(errors.NotUnderwritten):
        lifecycle.record_premium(
            app, declined, PREMIUM, paid_amount=120_000, payer_account="6222", payment_ref="P", paid_at=now
        )
    with pytest.raises(errors.PremiumMismatch):
        lifecycle.record_premium(
            app, approved, PREMIUM, paid_amount=1, payer_account="6222", payment_ref="P", paid_at=now
        )
    payment = lifecycle.record_premium(
        app, approved, PREMIUM, paid_amount=120_000, payer_account="6222", payment_ref="P", paid_at=now
    )
    assert payment.amount == 120_000  # 80万元 × 0.15 %
    with pytest.raises(errors.NotUnderwritten):
        lifecycle.issue(platform.deployment, platform.guarantors[0], app, declined, payment, base_url="https://x")
    with pytest.raises(errors.WrongParty):
        lifecycle.issue(platform.deployment, platform.guarantors[1], app, approved, payment, base_url="https://x")


@pytest.mark.parametrize(
    ("amount", "terms", "premium"),
    [
        (80_000_000, PremiumTerms(15, 300_00), 120_000),
        (1_000_000, PremiumTerms(15, 300_00), 300_00),  # the minimum
        (80_000_001, PremiumTerms(15, 0), 120_001),  # rounded up to the fen
        (80_000_000, PremiumTerms(0, 0), 0),
    ],
)
def test_premium(amount: int, terms: PremiumTerms, premium: int) -> None:
    assert lifecycle.compute_premium(amount, terms) == premium


def test_issue_after_deadline_refused_by_app_and_chain(platform: Platform) -> None:
    section = new_section(platform, opening_in=120)
    app = application(platform, section, platform.bidders[0], sealed=False)
    decision, payment = approve_and_pay(platform, app)
    pass_deadline(platform, section)
    with pytest.raises(errors.AfterDeadline):
        lifecycle.issue(platform.deployment, platform.guarantors[0], app, decision, payment, base_url="https://x")
    prepared = lifecycle.prepare_letter(
        lifecycle.letter_fields(app, platform.now(), "https://x"), bytes(platform.guarantors[0].account.key)
    )
    with pytest.raises(chain_errors.GuaranteeRegistryAfterDeadline):
        platform.guarantees.issue(
            platform.guarantors[0],
            lifecycle.guarantee_id(app.number),
            lifecycle.guarantee_terms(app, prepared.letter_hash),
        )
    with pytest.raises(chain_errors.GuaranteeRegistryAfterDeadline):  # pipelined path names the error too
        lifecycle.anchor_letters(platform.deployment, platform.guarantors[0], [(app, prepared)])
    assert platform.guarantees.guarantee(lifecycle.guarantee_id(app.number)).state == GuaranteeState.NONE


def test_issue_calldata_matches_the_contract_abi(platform: Platform) -> None:
    section = new_section(platform)
    app = application(platform, section, platform.bidders[0])
    terms = lifecycle.guarantee_terms(app, random_hash())
    gid = lifecycle.guarantee_id(app.number)
    expected = platform.guarantees._contract.encode_abi(
        "issue",
        args=[
            gid,
            (
                terms.section_ref,
                True,
                terms.applicant,
                terms.beneficiary,
                terms.amount,
                terms.valid_until,
                terms.letter_hash,
            ),
        ],
    )
    assert "0x" + lifecycle.issue_call_data(gid, terms).hex() == expected


def test_duplicate_number_refused(platform: Platform) -> None:
    section = new_section(platform)
    app = application(platform, section, platform.bidders[0])
    issue(platform, app)
    with pytest.raises(errors.IllegalTransition):
        issue(platform, app)


def test_cancel_rules(platform: Platform) -> None:
    deployment, guarantor = platform.deployment, platform.guarantors[0]
    section = new_section(platform)
    bound = issue(platform, application(platform, section, platform.bidders[0], sealed=False))
    commit_bid(platform, platform.bidders[0], section.section_id, random_hash(), BidCover.guarantee(bound.guarantee_id))
    free = issue(platform, application(platform, section, platform.bidders[1]))
    pass_deadline(platform, section)  # the reveal binds it
    with pytest.raises(errors.NotCancellable):
        lifecycle.cancel(deployment, guarantor, bound.number)
    with pytest.raises(chain_errors.GuaranteeRegistryBound):
        platform.guarantees.cancel(guarantor, bound.guarantee_id)
    with pytest.raises(errors.WrongParty):
        lifecycle.cancel(deployment, platform.guarantors[1], free.number)
    lifecycle.cancel(deployment, guarantor, free.number)
    with pytest.raises(errors.IllegalTransition):
        lifecycle.cancel(deployment, guarantor, free.number)
    with pytest.raises(errors.UnknownGuarantee):
        lifecycle.cancel(deployment, guarantor, "JZBH-NEVER-ISSUED")


def test_cancel_only_before_the_deadline(platform: Platform) -> None:
    section = new_section(platform, opening_in=120)
    late = issue(platform, application(platform, section, platform.bidders[0], sealed=False))
    pass_deadline(platform, section)
    with pytest.raises(errors.NotCancellable):
        lifecycle.cancel(platform.deployment, platform.guarantors[0], late.number)
    lifecycle.release(platform.deployment, platform.guarantors[0], late.number, section.section_id)
    assert lifecycle.on_chain(platform.deployment, late.number).state == GuaranteeState.RELEASED


def test_release_non_winners_at_once_winner_after_contract(platform: Platform) -> None:
    deployment, guarantor = platform.deployment, platform.guarantors[0]
    section = new_section(platform, opening_in=300)
    issued = []
    for bidder in platform.bidders[:3]:
        guarantee = issue(platform, application(platform, section, bidder, sealed=False))
        commit_bid(platform, bidder, section.section_id, random_hash(), BidCover.guarantee(guarantee.guarantee_id))
        issued.append(guarantee)
    winner, *losers = issued
    pass_deadline(platform, section)
    with pytest.raises(errors.NotReleasable):  # the tender is still running
        lifecycle.release(deployment, guarantor, losers[0].number, section.section_id)
    open_all(platform, section, platform.bidders[:3])
    record = random_hash()
    platform.tenders.close_opening(platform.agency, section.section_id, record)
    for witness in platform.witnesses[:2]:
        platform.tenders.attest_opening(witness, section.section_id, record)
    platform.tenders.award(platform.agency, section.section_id, platform.bidders[0].address, random_hash())
    for loser in losers:
        lifecycle.release(deployment, guarantor, loser.number, section.section_id)
        assert lifecycle.on_chain(deployment, loser.number).state == GuaranteeState.RELEASED
    with pytest.raises(errors.NotReleasable):
        lifecycle.release(deployment, guarantor, winner.number, section.section_id)
    with pytest.raises(chain_errors.GuaranteeRegistryNotReleasable):
        platform.guarantees.release(guarantor, winner.guarantee_id, section.section_id)
    with pytest.raises(errors.WrongParty):
        lifecycle.release(deployment, platform.bidders[0], winner.number, section.section_id)
    platform.tenders.record_contract_signed(platform.tenderer, section.section_id, random_hash())
    lifecycle.release(deployment, guarantor, winner.number, section.section_id)
    # Release after release (or after a claim) is an illegal step, in the app and on chain.
    with pytest.raises(errors.IllegalTransition):
        lifecycle.release(deployment, guarantor, winner.number, section.section_id)
    with pytest.raises(chain_errors.GuaranteeRegistryInvalidState):
        platform.guarantees.release(guarantor, winner.guarantee_id, section.section_id)


def test_claims_follow_from_chain_facts(platform: Platform) -> None:
    deployment, guarantor, tenderer = platform.deployment, platform.guarantors[0], platform.tenderer
    section = new_section(platform, opening_in=300)
    bidders = platform.bidders[:4]
    issued = {}
    for index, bidder in enumerate(bidders):
        app = application(platform, section, bidder, sealed=index % 2 == 0)
        guarantee = issue(platform, app)
        commit_bid(platform,
            bidder,
            section.section_id,
            random_hash(),
            BidCover.guarantee(guarantee.guarantee_id, app.salt or None),
        )
        issued[bidder.address] = (app, guarantee)
    commit_with_deposit(platform, section, platform.bidders[4])
    pass_deadline(platform, section)
    agency, sid = platform.agency, section.section_id
    assert lifecycle.claimable_guarantees(deployment, sid) == []
    platform.tenders.record_decryption_failure(agency, sid, bidders[0].address, True, random_hash())
    platform.tenders.record_decryption_failure(agency, sid, bidders[1].address, False, random_hash())
    platform.tenders.record_withdrawal_after_deadline(agency, sid, bidders[2].address, random_hash())
    platform.tenders.record_decryption_failure(agency, sid, platform.bidders[4].address, True, random_hash())
    claimable = lifecycle.claimable_guarantees(deployment, sid)
    assert {(c.bidder, c.ground) for c in claimable} == {
        (bidders[0].address, ClaimGround.BIDDER_CAUSED_DECRYPTION_FAILURE),
        (bidders[2].address, ClaimGround.WITHDRAWAL_AFTER_DEADLINE),
    }
    first_app, first = issued[bidders[0].address]
    # A claim must name a ground, and the ground must be the one on record.
    with pytest.raises(errors.ClaimWithoutGround):
        lifecycle.claim(deployment, tenderer, first.number, sid, ClaimGround.NONE, random_hash())
    with pytest.raises(chain_errors.GuaranteeRegistryGroundNotMet):
        platform.guarantees.claim(tenderer, first.guarantee_id, sid, ClaimGround.NONE, random_hash())
    with pytest.raises(errors.ClaimGroundNotMet):
        lifecycle.claim(deployment, tenderer, first.number, sid, ClaimGround.WITHDRAWAL_AFTER_DEADLINE, random_hash())
    with pytest.raises(errors.ClaimGroundNotMet):  # not bidder-caused: the bond is not forfeit
        lifecycle.claim(
            deployment,
            tenderer,
            issued[bidders[1].address][1].number,
            sid,
            ClaimGround.BIDDER_CAUSED_DECRYPTION_FAILURE,
            random_hash(),
        )
    with pytest.raises(errors.WrongParty):
        lifecycle.claim(
            deployment, guarantor, first.number, sid, ClaimGround.BIDDER_CAUSED_DECRYPTION_FAILURE, random_hash()
        )
    for item in claimable:
        number = next(g.number for _, g in issued.values() if g.guarantee_id == item.guarantee_id)
        lifecycle.claim(deployment, tenderer, number, sid, item.ground, random_hash())
    assert lifecycle.claimable_guarantees(deployment, sid) == []
    # After a claim: no release, no second claim; payout within the amount, by the issuer only.
    with pytest.raises(errors.IllegalTransition):
        lifecycle.release(deployment, tenderer, first.number, sid)
    with pytest.raises(chain_errors.GuaranteeRegistryInvalidState):
        platform.guarantees.release(tenderer, first.guarantee_id, sid)
    with pytest.raises(errors.InvalidPayout):
        lifecycle.record_payout(deployment, guarantor, first.number, first_app.amount + 1, random_hash())
    with pytest.raises(chain_errors.GuaranteeRegistryInvalidPayout):
        platform.guarantees.record_payout(guarantor, first.guarantee_id, first_app.amount + 1, random_hash())
    with pytest.raises(errors.WrongParty):
        lifecycle.record_payout(deployment, platform.guarantors[1], first.number, 1, random_hash())
    lifecycle.record_payout(deployment, guarantor, first.number, first_app.amount, random_hash())
    assert lifecycle.on_chain(deployment, first.number).state == GuaranteeState.PAID
    with pytest.raises(errors.IllegalTransition):
        lifecycle.record_payout(deployment, guarantor, first.number, 1, random_hash())


def test_expiry(platform: Platform) -> None:
    section = new_section(platform, opening_in=120)
    app = application(platform, section, platform.bidders[0], valid_until=section.opening_time + 30)
    prepared = lifecycle.prepare_letter(
        lifecycle.letter_fields(app, platform.now(), "https://x"), bytes(platform.guarantors[0].account.key)
    )
    (short,) = lifecycle.anchor_letters(platform.deployment, platform.guarantors[0], [(app, prepared)])
    with pytest.raises(errors.NotExpired):
        lifecycle.expire(platform.deployment, platform.bidders[1], short.number)
    with pytest.raises(chain_errors.GuaranteeRegistryNotExpired):
        platform.guarantees.expire(platform.bidders[1], short.guarantee_id)
    platform.backend.advance_to(app.valid_until + 1)
    lifecycle.expire(platform.deployment, platform.bidders[1], short.number)
    assert lifecycle.on_chain(platform.deployment, short.number).state == GuaranteeState.EXPIRED


def test_sealed_guarantee_revealed_only_by_the_opening(platform: Platform) -> None:
    deployment = platform.deployment
    section = new_section(platform, opening_in=300)
    app = application(platform, section, platform.bidders[0], sealed=True)
    guarantee = issue(platform, app)
    stored = lifecycle.on_chain(deployment, app.number)
    assert stored.sealed_ref and stored.section_ref != section.section_id
    view = lifecycle.sealed_view(app, deployment)
    assert view.revealed is None and view.section_ref == stored.section_ref
    cover = BidCover.guarantee(guarantee.guarantee_id, app.salt)
    platform.tenders.commit_bid(platform.bidders[0], section.section_id, random_hash(), cover)
    assert lifecycle.reveal_section(deployment, guarantee.guarantee_id) is None  # relied on, but not yet opened
    platform.backend.advance_to(section.opening_time)
    assert lifecycle.reveal_section(deployment, guarantee.guarantee_id) is None  # nothing on chain says which
    opened = platform.tenders.reveal_cover(platform.agency, section.section_id, platform.bidders[0].address, cover)
    revealed = lifecycle.reveal_section(deployment, guarantee.guarantee_id)
    assert revealed is not None
    assert revealed.section_id == section.section_id and revealed.tender_id == section.tender_id
    assert revealed.opening_tx == opened.tx_hash
    assert lifecycle.sealed_view(app, deployment).revealed == revealed


def test_a_cover_is_checked_on_chain_before_a_bid_relies_on_it(platform: Platform) -> None:
    """The reveal's rules, read from the chain before the commit: a bid learns now that its bond is not valid."""
    from tests.helpers import issue_guarantee

    section, other = new_section(platform), new_section(platform)
    bidder, stranger = platform.bidders[0], platform.bidders[1]
    salt = random_hash()
    sealed = issue_guarantee(platform, section, bidder, sealed_salt=salt)
    lifecycle.check_cover(platform.deployment, sealed, section.section_id, bidder.address, salt)
    cases: list[tuple[bytes, bytes, str, bytes | None, type[errors.GuaranteeError]]] = [
        (random_hash(), section.section_id, bidder.address, None, errors.UnknownGuarantee),
        (sealed, section.section_id, stranger.address, salt, errors.WrongParty),
        (sealed, section.section_id, bidder.address, random_hash(), errors.InvalidApplication),
        (sealed, other.section_id, bidder.address, salt, errors.InvalidApplication),
        (sealed, section.section_id, bidder.address, None, errors.InvalidApplication),
        (issue_guarantee(platform, section, bidder, amount=section.terms.bid_bond - 1), section.section_id,
         bidder.address, None, errors.AmountBelowBond),
        (issue_guarantee(platform, section, bidder, valid_until=section.opening_time + 60), section.section_id,
         bidder.address, None, errors.ValidityTooShort),
    ]
    for guarantee, section_id, who, given_salt, refusal in cases:
        with pytest.raises(refusal):
            lifecycle.check_cover(platform.deployment, guarantee, section_id, who, given_salt)
    platform.guarantees.cancel(platform.guarantors[0], sealed)
    with pytest.raises(errors.IllegalTransition):
        lifecycle.check_cover(platform.deployment, sealed, section.section_id, bidder.address, salt)
