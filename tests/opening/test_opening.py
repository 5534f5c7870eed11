"""The threshold opening without a chain: DKG, sealing, shares and proofs, combination, art. 31 outcomes."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import random
from pathlib import Path

import pytest

from opening import dkg
from opening.ec import ORDER, Point, base_mul, lagrange_at_zero
from opening.envelope import (
    ROLE_OPENING,
    BidOpeningFailed,
    FailureCause,
    InvalidBid,
    OpeningKey,
    commitment_of,
    ephemeral_point,
    open_as_bidder,
    open_with_shared_point,
    parse_envelope,
    seal_bid,
)
from opening.opener import OpeningMismatch, OpeningResult, announced_hash, open_section, verify_opening
from opening.proofs import prove_dleq
from opening.shares import DecryptionShare, ShareBatch, combine, compute_share
from tests.opening.builders import (
    KeyedSection,
    SealedBids,
    bidder,
    open_bids,
    public_data,
    run_dkg,
    seal_bids,
    share_batch,
)


def _outcomes(result: OpeningResult) -> dict[str, str]:
    return {o.bidder: o.kind for o in result.outcomes}


def _causes(result: OpeningResult) -> dict[str, FailureCause | None]:
    return {o.bidder: o.cause for o in result.outcomes}


# ------------------------------------------------------------------------------------------ DKG


def test_dkg_gives_a_key_no_one_holds(keyed: KeyedSection) -> None:
    key = keyed.outcome.opening_key
    assert keyed.outcome.qualified == (1, 2, 3, 4, 5) and not keyed.outcome.disqualified
    assert len(key.encode()) <= 512 and OpeningKey.decode(key.encode()) == key
    for index, secret in keyed.secrets.items():
        assert base_mul(secret) == key.public_share(index)
    # The private key exists only as the interpolation of k shares; no dealer ever held it.
    indices = [1, 2, 3]
    private = sum(lagrange_at_zero(i, indices) * keyed.secrets[i] for i in indices) % ORDER
    assert base_mul(private).encode() == key.public_key


def test_cheating_dealer_is_disqualified_and_the_key_still_works(tmp_path: Path) -> None:
    keyed = run_dkg(cheat=(2, 4))
    assert keyed.outcome.qualified == (1, 3, 4, 5)
    assert keyed.outcome.disqualified == ((2, "wrong share to witness 4"),)
    bids = seal_bids(keyed, tmp_path, count=2)
    batches = [share_batch(keyed, i, bids) for i in (2, 4, 5)]
    result = open_section(public_data(keyed, bids, batches), batches, bids.envelopes, 1)
    assert set(_outcomes(result).values()) == {"opened"}


def test_false_complaint_is_rejected_and_the_dealer_stays(keyed: KeyedSection) -> None:
    honest_deal = keyed.deals[0]
    ephemeral = Point.decode(honest_deal.encrypted_shares[2][:33])
    # Witness 3 complains about a share that is fine: anyone decrypting it sees the complaint is false.
    revealed, proof = prove_dleq(keyed.transport_secrets[2], ephemeral, dkg._complaint_context(keyed.params, 1, 3))
    complaint = dkg.Complaint(1, 3, revealed.encode(), proof)
    outcome = dkg.finish(keyed.params, keyed.deals, [complaint])
    assert 1 in outcome.qualified and outcome.rejected_complaints == ((3, 1),)
    # A complaint whose proof does not hold is rejected as well.
    forged = dkg.Complaint(1, 3, base_mul(5).encode(), proof)
    assert dkg.finish(keyed.params, keyed.deals, [forged]).rejected_complaints == ((3, 1),)


def test_malformed_or_double_deals_disqualify_their_dealer(keyed: KeyedSection) -> None:
    shares = keyed.deals[0].encrypted_shares
    broken = dataclasses.replace(keyed.deals[0], encrypted_shares=(b"\x02" + b"\xff" * 80, *shares[1:]))
    second = dkg.deal(keyed.params, 3)  # dealer 3 deals twice, differently
    deals = [broken, *keyed.deals[1:], second]
    complaints = dkg.receive(keyed.params, deals, 4, keyed.transport_secrets[3])
    assert {c.dealer for c in complaints} <= {3}  # the malformed deal needs no complaint: it is public
    outcome = dkg.finish(keyed.params, deals, complaints)
    assert outcome.qualified == (2, 4, 5)
    assert [dealer for dealer, _ in outcome.disqualified] == [1, 3]


def test_too_few_honest_dealers_fail_the_dkg(keyed: KeyedSection) -> None:
    with pytest.raises(dkg.DkgFailed):
        dkg.finish(keyed.params, keyed.deals[:2], [])
    with pytest.raises(dkg.DkgFailed):
        dkg.DkgParams(keyed.section_id, 15, keyed.params.transport_keys).check()


def test_dkg_transcript_alone_does_not_decrypt(keyed: KeyedSection, tmp_path: Path) -> None:
    """Everything public about the DKG (commitments, encrypted shares, complaints) opens nothing."""
    bids = seal_bids(keyed, tmp_path, count=1)
    envelope = parse_envelope(next(iter(bids.envelopes.values())).read_bytes())
    outsider = dkg.new_transport_key()[0]
    for deal in keyed.deals:
        for recipient in range(1, 6):
            ephemeral = Point.decode(deal.encrypted_shares[recipient - 1][:33])
            assert dkg._decrypt_with(keyed.params, deal, recipient, ephemeral * outsider) is None
    # Treating the public commitments as if they were shares gives nothing either.
    fake = [(i, keyed.outcome.opening_key.public_share(i).encode()) for i in (1, 2, 3)]
    opening_key = Point.decode(keyed.outcome.opening_key.public_key).encode(compressed=False)
    with pytest.raises(BidOpeningFailed) as caught:
        open_with_shared_point(envelope, combine(fake), ROLE_OPENING, opening_key)
    assert caught.value.cause == FailureCause.KEY_WRAP_INVALID


# ------------------------------------------------------------------------------------------ thresholds


def test_k_minus_one_shares_reveal_nothing_usable(keyed: KeyedSection, tmp_path: Path) -> None:
    bids = seal_bids(keyed, tmp_path, count=2)
    batches = [share_batch(keyed, i, bids) for i in (1, 4)]
    data = public_data(keyed, bids, batches)
    result = open_section(data, batches, bids.envelopes, 1)
    assert set(_causes(result).values()) == {FailureCause.SHARES_UNAVAILABLE}
    assert set(_outcomes(result).values()) == {"withdrawn"}  # 撤回: not the bidders' fault
    # Interpolating k-1 shares as if they were enough gives a wrong point: the key does not unwrap.
    envelope = parse_envelope(bids.envelopes[bidder(0)].read_bytes())
    two = [(b.witness_index, b.shares[0].share) for b in batches]
    recipient = Point.decode(keyed.outcome.opening_key.public_key).encode(compressed=False)
    with pytest.raises(BidOpeningFailed):
        open_with_shared_point(envelope, combine(two), ROLE_OPENING, recipient)


def test_any_k_of_n_open_to_the_same_record(keyed: KeyedSection, tmp_path: Path) -> None:
    bids = seal_bids(keyed, tmp_path, count=3)
    every = {i: share_batch(keyed, i, bids) for i in range(1, 6)}
    hashes = set()
    for subset in itertools.combinations(range(1, 6), 3):
        batches = [every[i] for i in subset]
        result = open_section(public_data(keyed, bids, batches), batches, bids.envelopes, 1234)
        assert set(_outcomes(result).values()) == {"opened"}
        hashes.add(result.record_hash)
    assert len(hashes) == 1
    record = result.record
    assert record["counts"] == {"opened": 3, "revoked": 0, "withdrawn": 0}
    first = record["bids"][0]
    assert first["announced"] == {"price_fen": 100_000_00, "duration_days": 90, "quality": "合格"}
    assert first["anchored_hash"] == announced_hash(keyed.section_id, bidder(0), first["announced"]).hex()
    assert result.record_bytes == json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_opening_in_worker_processes_gives_the_same_record(keyed: KeyedSection, tmp_path: Path) -> None:
    bids = seal_bids(keyed, tmp_path, count=5)
    batches = [share_batch(keyed, i, bids) for i in (1, 2, 3)]
    data = public_data(keyed, bids, batches)
    single = open_section(data, batches, bids.envelopes, 7)
    parallel = open_section(data, batches, bids.envelopes, 7, workers=2, output_dir=tmp_path)
    assert parallel.record_bytes == single.record_bytes
    opened = (tmp_path / f"{bidder(2)}.document").read_bytes()
    assert len(opened) == 2000


# ------------------------------------------------------------------------------------------ wrong shares


def _forge(batch: ShareBatch, commitment: bytes) -> ShareBatch:
    shares = tuple(
        dataclasses.replace(s, share=base_mul(12345).encode()) if s.commitment == commitment else s
        for s in batch.shares
    )
    return dataclasses.replace(batch, shares=shares)


def test_forged_share_is_caught_and_its_witness_named(keyed: KeyedSection, tmp_path: Path) -> None:
    bids = seal_bids(keyed, tmp_path, count=3)
    target = bids.commitments[bidder(1)]
    batches = [share_batch(keyed, i, bids) for i in (1, 2, 3, 4)]
    batches[1] = _forge(batches[1], target)  # witness 2 anchors a batch with one bad share
    result = open_section(public_data(keyed, bids, batches), batches, bids.envelopes, 1)
    assert [(f.witness_index, f.witness, f.commitment) for f in result.faulty_shares] == [
        (2, "0x" + f"{0xA2:040x}", target)
    ]
    assert set(_outcomes(result).values()) == {"opened"}  # witnesses 1, 3, 4 still suffice
    assert result.record["faulty_shares"][0]["witness_index"] == 2
    # With only three batches, the forged one leaves that bid short: 撤回, not the bidder's fault.
    short = batches[:3]
    result = open_section(public_data(keyed, bids, short), short, bids.envelopes, 1)
    assert _causes(result)[bidder(1)] == FailureCause.SHARES_UNAVAILABLE
    assert _outcomes(result)[bidder(0)] == "opened"


def test_share_copied_from_another_bid_or_witness_fails_its_proof(keyed: KeyedSection, tmp_path: Path) -> None:
    bids = seal_bids(keyed, tmp_path, count=2)
    honest = share_batch(keyed, 1, bids)
    first, second = honest.shares
    # A valid share and proof for bid 0, replayed under bid 1's commitment.
    replayed = DecryptionShare(second.commitment, first.share, first.proof)
    # Witness 3's share presented as witness 1's.
    as_other = compute_share(keyed.secrets[3], keyed.section_id, 3, first.commitment, _e(bids, bidder(0)))
    batch = ShareBatch(keyed.section_id, 1, (dataclasses.replace(as_other, commitment=first.commitment), replayed))
    batches = [batch, share_batch(keyed, 2, bids), share_batch(keyed, 3, bids), share_batch(keyed, 4, bids)]
    result = open_section(public_data(keyed, bids, batches), batches, bids.envelopes, 1)
    assert {(f.witness_index, f.commitment) for f in result.faulty_shares} == {
        (1, first.commitment),
        (1, second.commitment),
    }
    assert set(_outcomes(result).values()) == {"opened"}


def _e(bids: SealedBids, account: str) -> Point:
    return ephemeral_point(parse_envelope(bids.envelopes[account].read_bytes()))


def test_replayed_reordered_or_unanchored_shares_change_nothing(keyed: KeyedSection, tmp_path: Path) -> None:
    bids = seal_bids(keyed, tmp_path, count=4)
    batches = [share_batch(keyed, i, bids) for i in (1, 3, 5)]
    data = public_data(keyed, bids, batches)
    reference = open_section(data, batches, bids.envelopes, 99)
    shuffled = []
    for batch in reversed(batches):
        shares = list(batch.shares)
        random.Random(7).shuffle(shares)
        shuffled.append(dataclasses.replace(batch, shares=tuple(shares + shares[:2])))
    other_section = dataclasses.replace(batches[0], section_id=os.urandom(32))
    unanchored = share_batch(keyed, 2, bids)
    replay = [*shuffled, *batches, other_section, unanchored]
    result = open_section(data, replay, bids.envelopes, 99)
    assert result.record_bytes == reference.record_bytes
    assert shuffled[0].digest == batches[-1].digest  # the anchored hash ignores order and repeats
    assert len(result.ignored_batches) == 2


# ------------------------------------------------------------------------------------------ art. 31


def _flip(bids: SealedBids, account: str, offset: int, *, recommit: bool) -> None:
    """Flip one bit of a stored envelope; with `recommit` the bidder committed to the altered bytes."""
    path = bids.envelopes[account]
    data = bytearray(path.read_bytes())
    data[offset] ^= 1
    path.write_bytes(bytes(data))
    if recommit:
        bids.commitments[account] = commitment_of(bytes(data))


def test_tampered_ciphertext_is_caught_and_bidder_caused(keyed: KeyedSection, tmp_path: Path) -> None:
    bids = seal_bids(keyed, tmp_path, count=4)
    _flip(bids, bidder(0), -40, recommit=False)  # altered after its commitment: does not hash to it
    _flip(bids, bidder(1), -40, recommit=True)  # the bidder committed to a corrupt ciphertext itself
    _flip(bids, bidder(2), 140, recommit=True)  # a broken key wrap, committed as such
    result = open_bids(keyed, bids)
    assert _causes(result) == {
        bidder(0): FailureCause.COMMITMENT_MISMATCH,
        bidder(1): FailureCause.CIPHERTEXT_CORRUPT,
        bidder(2): FailureCause.KEY_WRAP_INVALID,
        bidder(3): None,
    }
    assert _outcomes(result) == {bidder(0): "revoked", bidder(1): "revoked", bidder(2): "revoked", bidder(3): "opened"}
    failure = result.record["bids"][1]["failure"]
    assert failure["bidder_caused"] is True and failure["cause"] == "ciphertext_corrupt"
    assert result.record["bids"][1]["outcome_zh"] == "撤销"


def test_wrong_key_wrong_section_and_foreign_bid_are_bidder_caused(keyed: KeyedSection, tmp_path: Path) -> None:
    other = run_dkg(threshold=2, witnesses=3)
    bids = seal_bids(keyed, tmp_path, count=3)
    announced = {"price_fen": 1}
    cases = {
        bidder(0): seal_bid(keyed.section_id, other.opening_key, bidder(0), announced, b"doc"),
        bidder(1): seal_bid(os.urandom(32), keyed.opening_key, bidder(1), announced, b"doc"),
        bidder(2): seal_bid(keyed.section_id, keyed.opening_key, bidder(9), announced, b"copied"),
    }
    for account, envelope in cases.items():
        bids.envelopes[account].write_bytes(envelope)
        bids.commitments[account] = commitment_of(envelope)
    result = open_bids(keyed, bids)
    assert _causes(result) == {
        bidder(0): FailureCause.WRONG_OPENING_KEY,
        bidder(1): FailureCause.WRONG_SECTION,
        bidder(2): FailureCause.BIDDER_MISMATCH,
    }


def test_lost_envelope_is_withdrawn_not_bidder_caused_and_others_open(keyed: KeyedSection, tmp_path: Path) -> None:
    bids = seal_bids(keyed, tmp_path, count=3)
    batches = [share_batch(keyed, i, bids) for i in (1, 2, 3)]
    envelopes = dict(bids.envelopes)
    del envelopes[bidder(1)]
    result = open_section(public_data(keyed, bids, batches), batches, envelopes, 1)
    assert _outcomes(result) == {bidder(0): "opened", bidder(1): "withdrawn", bidder(2): "opened"}
    assert result.record["bids"][1]["failure"]["bidder_caused"] is False


def test_verify_opening_redoes_the_record_and_names_a_difference(keyed: KeyedSection, tmp_path: Path) -> None:
    bids = seal_bids(keyed, tmp_path, count=2)
    batches = [share_batch(keyed, i, bids) for i in (2, 3, 4)]
    data = public_data(keyed, bids, batches)
    result = open_section(data, batches, bids.envelopes, 555)
    again = verify_opening(data, list(reversed(batches)), bids.envelopes, result.record_bytes, result.record_hash)
    assert again.record_hash == result.record_hash
    doctored = result.record_bytes.replace(b'"price_fen":10000000', b'"price_fen":10000001')
    with pytest.raises(OpeningMismatch):
        verify_opening(data, batches, bids.envelopes, doctored)
    with pytest.raises(OpeningMismatch):
        verify_opening(data, batches, bids.envelopes, result.record_bytes, os.urandom(32))
    older = result.record_bytes.replace(b"opening-record/v2", b"opening-record/v1")
    with pytest.raises(OpeningMismatch, match="format 'jianzheng/opening-record/v1'"):
        verify_opening(data, batches, bids.envelopes, older)


def test_record_marks_the_bids_not_confirmed_after_the_last_amendment(keyed: KeyedSection, tmp_path: Path) -> None:
    """Twice amended: bid 0 confirmed the second amendment, bid 1 the first, bid 2 none. All three open (the
    contract does not refuse them); the record says which amendment each stands for, and a re-check that
    read other confirmations from the chain gets another record."""
    bids = seal_bids(keyed, tmp_path, count=3)
    batches = [share_batch(keyed, i, bids) for i in (1, 2, 3)]
    stood = {bidder(0): 2, bidder(1): 1, bidder(2): 0}
    data = dataclasses.replace(public_data(keyed, bids, batches), tender_amendment=2,
                               confirmed_amendments=tuple(sorted(stood.items())))
    result = open_section(data, batches, bids.envelopes, 99)
    assert result.record["tender_amendment"] == 2
    marks = {b["bidder"]: (b["outcome"], b["confirmed_amendment"], b["amendment_confirmed"])
             for b in result.record["bids"]}
    assert marks == {bidder(0): ("opened", 2, True), bidder(1): ("opened", 1, False), bidder(2): ("opened", 0, False)}
    assert result.record["counts"]["opened"] == 3
    again = verify_opening(data, batches, bids.envelopes, result.record_bytes, result.record_hash)
    assert again.record_hash == result.record_hash
    all_confirmed = dataclasses.replace(data, confirmed_amendments=tuple((b, 2) for b in sorted(stood)))
    with pytest.raises(OpeningMismatch):
        verify_opening(all_confirmed, batches, bids.envelopes, result.record_bytes)
    # The announced hashes anchored per bid do not change with it (recordOutcomes is unaffected).
    plain = open_section(public_data(keyed, bids, batches), batches, bids.envelopes, 99)
    assert [b["anchored_hash"] for b in plain.record["bids"]] == [b["anchored_hash"] for b in result.record["bids"]]
    assert plain.record["tender_amendment"] == 0 and all(
        (b["confirmed_amendment"], b["amendment_confirmed"]) == (0, True) for b in plain.record["bids"])
    # An amended section's public data must say it for every live bid, or no record is made from it.
    with pytest.raises(ValueError, match=bidder(2)):
        dataclasses.replace(data, confirmed_amendments=tuple(sorted(stood.items()))[:2])


# ------------------------------------------------------------------------------------------ sealing


def test_bidder_can_open_its_own_bid_with_its_own_key(keyed: KeyedSection) -> None:
    secret = 0x1234567
    own_key = base_mul(secret).encode(compressed=False)
    announced = {"price_fen": 88_000_00, "quality": "优良"}
    envelope = seal_bid(keyed.section_id, keyed.opening_key, bidder(0), announced, b"%PDF-1.7", bidder_key=own_key)
    bid = open_as_bidder(envelope, secret)
    assert (bid.announced, bytes(bid.document), bid.bidder) == (announced, b"%PDF-1.7", bidder(0))
    with pytest.raises(BidOpeningFailed):
        open_as_bidder(envelope, secret + 1)


@pytest.mark.parametrize(
    "announced",
    [
        {},
        {"price_fen": -1},
        {"price_fen": 1.5},
        {"price_fen": True},
        {"price_fen": 1, "x": [1]},
        {"price_fen": 1, "": 2},
    ],
)
def test_sealing_refuses_bad_announced_fields(keyed: KeyedSection, announced: dict[str, object]) -> None:
    with pytest.raises(InvalidBid):
        seal_bid(keyed.section_id, keyed.opening_key, bidder(0), announced, b"doc")


def test_malformed_envelopes_are_refused_by_name() -> None:
    for data in (b"", b"JZSEAL" + bytes(200), b"XXXXXX\x01\x00" + bytes(300)):
        with pytest.raises(BidOpeningFailed) as caught:
            parse_envelope(data)
        assert caught.value.cause == FailureCause.MALFORMED_ENVELOPE
