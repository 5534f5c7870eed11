"""Issue letters end to end on a real chain and verify them: every verdict."""

from __future__ import annotations

import dataclasses

import pytest

from contracts.client import Signer
from contracts.records import BidCover, ClaimGround
from guarantees import letter, lifecycle, verify
from guarantees.errors import NotAPdf
from guarantees.records import Verdict
from tests.guarantees.support import application, issue
from tests.helpers import Platform, commit_bid, commit_with_deposit, new_section, pass_deadline, random_hash

OUTSIDER_KEY = "0x" + "11" * 32


def test_issued_letter_is_genuine_and_in_force(platform: Platform) -> None:
    section = new_section(platform)
    app = application(platform, section, platform.bidders[0])
    issued = issue(platform, app)
    result = verify.verify_letter(platform.deployment, issued.signed_pdf)
    assert result.verdict is Verdict.GENUINE_IN_FORCE, result.reason
    assert result.number == app.number
    assert result.evidence is not None
    assert result.evidence.tx_hash == issued.tx_hash
    assert result.evidence.block_number == issued.block_number
    assert result.evidence.block_hash == issued.block_hash
    assert result.letter_hash == "0x" + issued.letter_hash.hex()
    if platform.backend.name == "chain_node":
        assert result.evidence.proof is not None and result.evidence.proof["transactionHash"] == issued.tx_hash
    stored = platform.guarantees.guarantee(issued.guarantee_id)
    assert stored.letter_hash == issued.letter_hash
    assert stored.sealed_ref and stored.section_ref == lifecycle.sealed_reference(section.section_id, app.salt)
    assert stored.section_ref == platform.guarantees.sealed_reference(section.section_id, app.salt)
    by_number = verify.verify_number(platform.deployment, app.number)
    assert by_number.verdict is Verdict.GENUINE_IN_FORCE
    by_qr = verify.verify_number(platform.deployment, lifecycle.verify_url("https://x.example", app.number))
    assert by_qr.verdict is Verdict.GENUINE_IN_FORCE


def test_one_byte_changed_is_tampered(platform: Platform) -> None:
    issued = issue(platform, application(platform, new_section(platform), platform.bidders[0]))
    pdf = issued.signed_pdf
    # Every 1/97th of the file, and densely through the signature block at its end.
    positions = sorted({*range(5, len(pdf), len(pdf) // 97), *range(len(pdf) - 700, len(pdf), 3)})
    changed = []
    for position in positions:
        copy = bytearray(pdf)
        copy[position] ^= 0x01
        changed.append(bytes(copy))
    results = verify.verify_letters(platform.deployment, changed)
    assert [r.verdict for r in results] == [Verdict.TAMPERED] * len(positions)
    unsigned = pdf[: len(pdf) - 600].rsplit(b"%%EOF", 1)[0] + b"%%EOF\n"
    assert verify.verify_letter(platform.deployment, unsigned).verdict is Verdict.TAMPERED
    assert verify.verify_letter(platform.deployment, pdf + b"\n% appended\n").verdict is Verdict.TAMPERED
    assert verify.verify_letter(platform.deployment, pdf).verdict is Verdict.GENUINE_IN_FORCE
    with pytest.raises(NotAPdf):
        verify.verify_letter(platform.deployment, b"%PDX-" + pdf[5:])


def test_resigned_by_non_guarantor(platform: Platform) -> None:
    issued = issue(platform, application(platform, new_section(platform), platform.bidders[0]))
    block, unsigned = letter.read_signature(issued.signed_pdf)
    doctored = unsigned.replace(b"/Author", b"/Author", 1)
    forged = letter.sign_letter(doctored, block.number, bytes.fromhex(OUTSIDER_KEY[2:]), block.anchor_tx)
    result = verify.verify_letter(platform.deployment, forged)
    assert result.verdict is Verdict.NOT_GUARANTOR
    assert result.signer == Signer.from_key(OUTSIDER_KEY).address


def test_signed_by_another_guarantor_than_the_issuer(platform: Platform) -> None:
    issued = issue(platform, application(platform, new_section(platform), platform.bidders[0]))
    block, unsigned = letter.read_signature(issued.signed_pdf)
    other = platform.guarantors[1]
    forged = letter.sign_letter(unsigned, block.number, bytes(other.account.key), block.anchor_tx)
    assert verify.verify_letter(platform.deployment, forged).verdict is Verdict.NOT_GUARANTOR


def test_letter_for_an_unknown_number(platform: Platform) -> None:
    section = new_section(platform)
    app = application(platform, section, platform.bidders[0])
    fields = lifecycle.letter_fields(app, platform.now(), "https://x.example")
    prepared = lifecycle.prepare_letter(fields, bytes(platform.guarantors[0].account.key))
    never_anchored = letter.sign_letter(
        prepared.unsigned_pdf, app.number, bytes(platform.guarantors[0].account.key), ""
    )
    assert verify.verify_letter(platform.deployment, never_anchored).verdict is Verdict.UNKNOWN
    assert verify.verify_number(platform.deployment, "JZBH-DOES-NOT-EXIST").verdict is Verdict.UNKNOWN


def test_cancelled_released_claimed_expired(platform: Platform) -> None:
    deployment, guarantor, tenderer = platform.deployment, platform.guarantors[0], platform.tenderer
    section = new_section(platform, opening_in=600)
    cancelled = issue(platform, application(platform, section, platform.bidders[0]))
    lifecycle.cancel(deployment, guarantor, cancelled.number)
    released = issue(platform, application(platform, section, platform.bidders[1], sealed=False))
    lifecycle.release(deployment, tenderer, released.number, section.section_id)
    claimed_app = application(platform, section, platform.bidders[2], sealed=False)
    claimed = issue(platform, claimed_app)
    commit_bid(platform,
        platform.bidders[2], section.section_id, random_hash(), BidCover.guarantee(claimed.guarantee_id
    ))
    short_app = application(platform, section, platform.bidders[3], sealed=False, valid_until=section.opening_time + 60)
    facts = lifecycle.section_facts(deployment, section.section_id)
    # The short validity is below what the section needs: refused by the app, issued here directly to
    # have a guarantee that expires while the test runs.
    short = lifecycle.prepare_letter(
        lifecycle.letter_fields(short_app, platform.now(), "https://x"), bytes(guarantor.account.key)
    )
    assert facts.required_valid_until > short_app.valid_until
    (short_issued,) = lifecycle.anchor_letters(deployment, guarantor, [(short_app, short)])
    commit_with_deposit(platform, section, platform.bidders[4])
    pass_deadline(platform, section)
    platform.tenders.record_withdrawal_after_deadline(
        platform.agency, section.section_id, platform.bidders[2].address, random_hash()
    )
    (claimable,) = lifecycle.claimable_guarantees(deployment, section.section_id)
    assert claimable.guarantee_id == claimed.guarantee_id and claimable.ground is ClaimGround.WITHDRAWAL_AFTER_DEADLINE
    lifecycle.claim(deployment, tenderer, claimed.number, section.section_id, claimable.ground, random_hash())
    platform.backend.advance_to(short_app.valid_until + 1)
    verdicts = verify.verify_letters(
        deployment, [cancelled.signed_pdf, released.signed_pdf, claimed.signed_pdf, short_issued.signed_pdf]
    )
    assert [v.verdict for v in verdicts] == [Verdict.CANCELLED, Verdict.RELEASED, Verdict.CLAIMED, Verdict.EXPIRED]
    lifecycle.expire(deployment, platform.bidders[0], short_issued.number)
    assert verify.verify_letter(deployment, short_issued.signed_pdf).verdict is Verdict.EXPIRED
    lifecycle.record_payout(deployment, guarantor, claimed.number, claimed_app.amount, random_hash())
    assert verify.verify_letter(deployment, claimed.signed_pdf).verdict is Verdict.CLAIMED


def test_anchor_hint(platform: Platform) -> None:
    """Without a hint the event is found by scanning; a wrong hint is a changed letter."""
    issued = issue(platform, application(platform, new_section(platform), platform.bidders[0]))
    block, unsigned = letter.read_signature(issued.signed_pdf)
    unhinted = letter.attach_signature(unsigned, dataclasses.replace(block, anchor_tx=""))
    result = verify.verify_letter(platform.deployment, unhinted)
    assert result.verdict is Verdict.GENUINE_IN_FORCE
    assert result.evidence is not None and result.evidence.tx_hash == issued.tx_hash
    rehinted = letter.attach_signature(unsigned, dataclasses.replace(block, anchor_tx="0x" + "ab" * 32))
    assert verify.verify_letter(platform.deployment, rehinted).verdict is Verdict.TAMPERED
