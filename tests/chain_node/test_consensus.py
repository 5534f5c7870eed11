"""QBFT consensus core: unit tests of its rules and properties over a seeded simulated network.

The simulated network (simnet.py) raises SafetyViolation the moment two honest nodes decide different blocks
at one height or a decision's seals fail to verify, so every simulation test also checks safety throughout.
"""

from __future__ import annotations

import pytest
import rlp
from eth_keys.datatypes import PrivateKey as EthPrivateKey

from chain_node.consensus import (
    STAT_KEYS,
    Commit,
    Decision,
    DecodeError,
    Message,
    NotStartedError,
    Outbox,
    Prepare,
    Proposal,
    ProposalRejected,
    QbftConfig,
    QbftCore,
    RestoreError,
    RoundChange,
    SealFailure,
    Signed,
    ValidatorSet,
    address_of,
    check_commit_seals,
    commit_seal_digest,
    decode_message,
    encode_message,
    keccak,
    recover,
    sign,
    sign_body,
    verify_commit_seals,
)
from tests.chain_node.simnet import (
    TEST_CONFIG,
    Behaviour,
    Conditions,
    SafetyViolation,
    SimNet,
    block_payload,
    make_key,
    validate_block,
)

KEYS = [make_key(i) for i in range(8)]
ADDRESSES = [address_of(k) for k in KEYS]
OUTSIDER = make_key(999)


def validators(n: int) -> ValidatorSet:
    return ValidatorSet(tuple(ADDRESSES[:n]))


def core_for(index: int, n: int = 4, height: int = 1, config: QbftConfig = TEST_CONFIG) -> QbftCore:
    return QbftCore(KEYS[index], validators(n), height, validate_block, config)


def wire(
    key: bytes,
    body: Proposal | Prepare | Commit | RoundChange,
    payload: bytes = b"",
    round_changes: tuple[Signed[RoundChange], ...] = (),
    prepares: tuple[Signed[Prepare], ...] = (),
) -> bytes:
    return encode_message(Message(sign_body(key, body), payload, round_changes, prepares))


def commit_wire(key: bytes, height: int, round_: int, digest: bytes) -> bytes:
    return wire(key, Commit(height, round_, digest, sign(key, commit_seal_digest(digest))))


def sent(outbox: Outbox) -> list[Message]:
    return [decode_message(m) for m in outbox.broadcast]


def bodies_of(outbox: Outbox, kind: type) -> list[object]:
    return [m.body for m in sent(outbox) if isinstance(m.body, kind)]


def decide_height_one(n: int = 4) -> Decision:
    """Drive one core (validator 0) to a decision at height 1 by hand, with every other validator honest."""
    core = core_for(0, n)
    core.start(0)
    payload = block_payload(1, 1)
    digest = keccak(payload)
    core.step(wire(KEYS[1], Proposal(1, 0, digest), payload), 1)
    for i in range(1, n):
        core.step(wire(KEYS[i], Prepare(1, 0, digest)), 2)
    decision = None
    for i in range(1, n):
        out = core.step(commit_wire(KEYS[i], 1, 0, digest), 3)
        decision = decision or out.decided
    assert decision is not None
    return decision


# --- building blocks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", range(1, 11))
def test_quorum_is_ceil_two_thirds_and_two_quorums_share_an_honest_validator(n: int) -> None:
    vs = validators(n) if n <= len(ADDRESSES) else ValidatorSet(tuple(keccak(b"%d" % i)[:20] for i in range(n)))
    f = vs.max_faulty
    assert vs.quorum == -(-2 * n // 3)
    assert 2 * vs.quorum - n >= f + 1  # intersection of two quorums holds an honest validator
    assert vs.quorum <= n - f  # the honest validators alone form a quorum


def test_validator_set_proposer_rotation_and_membership() -> None:
    vs = validators(4)
    assert [vs.proposer(5, r) for r in range(4)] == [ADDRESSES[(5 + r) % 4] for r in range(4)]
    assert vs.contains(ADDRESSES[3]) and not vs.contains(ADDRESSES[4])
    with pytest.raises(ValueError, match="duplicate"):
        ValidatorSet((ADDRESSES[0], ADDRESSES[0]))
    with pytest.raises(ValueError, match="20 bytes"):
        ValidatorSet((b"short",))


def test_signatures_recover_the_ethereum_address() -> None:
    digest = keccak(b"message")
    signature = sign(KEYS[0], digest)
    assert len(signature) == 65 and signature[64] in (0, 1)
    assert recover(digest, signature) == ADDRESSES[0]
    assert ADDRESSES[0] == EthPrivateKey(KEYS[0]).public_key.to_canonical_address()
    assert recover(keccak(b"other"), signature) != ADDRESSES[0]
    assert recover(digest, bytes(65)) is None
    assert recover(digest, signature[:64] + b"\x05") is None
    # The high-s twin of a valid signature recovers the same key: refused, so encodings stay unique.
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    s = int.from_bytes(signature[32:64], "big")
    twin = signature[:32] + (n - s).to_bytes(32, "big") + bytes([signature[64] ^ 1])
    assert recover(digest, twin) is None


def test_messages_round_trip_and_non_canonical_encodings_are_rejected() -> None:
    digest = keccak(b"x")
    prepares = tuple(sign_body(KEYS[i], Prepare(3, 1, digest)) for i in range(3))
    rcs = (sign_body(KEYS[0], RoundChange(3, 2, 1, digest)), sign_body(KEYS[1], RoundChange(3, 2)))
    samples = [
        Message(sign_body(KEYS[0], Proposal(3, 2, digest)), b"payload", rcs, prepares),
        Message(sign_body(KEYS[1], Prepare(3, 0, digest))),
        Message(sign_body(KEYS[2], Commit(3, 0, digest, sign(KEYS[2], commit_seal_digest(digest))))),
        Message(sign_body(KEYS[3], RoundChange(3, 2, 1, digest)), b"payload", (), prepares),
        Message(sign_body(KEYS[3], RoundChange(2**40, 7))),
    ]
    for message in samples:
        data = encode_message(message)
        assert decode_message(data) == message
        assert message.signed.signer() == ADDRESSES[KEYS.index(_key_of(message))]
    good = encode_message(samples[1])
    body = [1, 3, 0, digest]
    bad = [
        good + b"\x00",  # trailing bytes
        rlp.encode([[[1, b"\x00\x03", 0, digest], bytes(65)], b"", [], []]),  # leading zero in an integer
        rlp.encode([[[1, 3, 0, digest[:31]], bytes(65)], b"", [], []]),  # short digest
        rlp.encode([[[1, 3, 0, digest, b"x"], bytes(65)], b"", [], []]),  # extra field
        rlp.encode([[body, bytes(64)], b"", [], []]),  # short signature
        rlp.encode([[[9, 3, 0, digest], bytes(65)], b"", [], []]),  # unknown code
        rlp.encode([[body, bytes(65)], b"", [[body, bytes(65)]], []]),  # a PREPARE where round-changes go
        rlp.encode([[[1, b"\x01" * 9, 0, digest], bytes(65)], b"", [], []]),  # 9-byte height
        rlp.encode([[body, bytes(65)], b""]),  # missing attachments
        b"",
        b"\xff\xff",
    ]
    for data in bad:
        with pytest.raises(DecodeError):
            decode_message(data)


def _key_of(message: Message) -> bytes:
    signer = message.signed.signer()
    return next(k for k, a in zip(KEYS, ADDRESSES, strict=True) if a == signer)


def test_round_timeouts_grow_and_are_capped() -> None:
    config = QbftConfig(base_timeout_ms=1000, max_timeout_ms=8000)
    assert [config.round_timeout_ms(r) for r in range(6)] == [1000, 2000, 4000, 8000, 8000, 8000]
    assert config.round_timeout_ms(2**63) == 8000  # huge rounds cost nothing
    with pytest.raises(ValueError):
        QbftConfig(base_timeout_ms=10, max_timeout_ms=5)


# --- (7) commit seals -------------------------------------------------------------------------------------


def test_decision_seals_verify_and_fail_with_a_clear_reason() -> None:
    decision = decide_height_one()
    vs = validators(4)
    seals = list(decision.seals)
    assert len(seals) >= vs.quorum
    assert verify_commit_seals(decision.digest, seals, vs)
    assert check_commit_seals(decision.digest, seals, vs).ok

    wrong = check_commit_seals(keccak(b"another block"), seals, vs)
    assert not wrong and wrong.failure is SealFailure.WRONG_DIGEST and "does not sign this digest" in wrong.detail

    duplicate = check_commit_seals(decision.digest, [*seals, seals[0]], vs)
    assert duplicate.failure is SealFailure.DUPLICATE_SIGNER and "sealed twice" in duplicate.detail

    outsider_seal = (address_of(OUTSIDER), sign(OUTSIDER, commit_seal_digest(decision.digest)))
    outsider = check_commit_seals(decision.digest, [*seals, outsider_seal], vs)
    assert outsider.failure is SealFailure.NOT_A_VALIDATOR and "not a validator" in outsider.detail

    few = check_commit_seals(decision.digest, seals[: vs.quorum - 1], vs)
    assert few.failure is SealFailure.TOO_FEW and "quorum is 3" in few.detail

    stolen = [(seals[0][0], seals[1][1]), *seals[1:]]  # a real seal attributed to someone else
    assert check_commit_seals(decision.digest, stolen, vs).failure is SealFailure.WRONG_DIGEST

    malformed = check_commit_seals(decision.digest, [(seals[0][0], seals[0][1][:64]), *seals[1:]], vs)
    assert malformed.failure is SealFailure.MALFORMED
    assert not verify_commit_seals(decision.digest, seals, validators(7))  # 3 seals < quorum 5 of 7


def test_commit_seal_digest_is_domain_separated() -> None:
    digest = keccak(b"block")
    assert commit_seal_digest(digest) == keccak(b"jianzheng commit seal" + digest)
    assert commit_seal_digest(digest) != digest


# --- the rules of one core ----------------------------------------------------------------------------------


def test_happy_path_message_flow_of_one_core() -> None:
    core = core_for(1)  # proposer of (height 1, round 0) is validators[1]
    out = core.start(0)
    assert out.request_proposal == (1, 0) and out.persist is not None and out.next_timeout_ms == 500
    payload = block_payload(1, 1)
    out = core.propose(1, 0, payload, 5)
    proposal, prepare = sent(out)
    assert proposal.body == Proposal(1, 0, keccak(payload)) and proposal.payload == payload
    assert prepare.body == Prepare(1, 0, keccak(payload))
    assert out.persist is not None  # persisted before the node sends
    digest = keccak(payload)
    core.step(wire(KEYS[0], Prepare(1, 0, digest)), 6)
    out = core.step(wire(KEYS[2], Prepare(1, 0, digest)), 7)
    (commit,) = bodies_of(out, Commit)
    assert isinstance(commit, Commit) and recover(commit_seal_digest(digest), commit.seal) == ADDRESSES[1]
    assert core.prepared is not None and core.prepared.digest == digest and len(core.prepared.prepares) == 3
    core.step(commit_wire(KEYS[0], 1, 0, digest), 8)
    out = core.step(commit_wire(KEYS[3], 1, 0, digest), 9)
    assert out.decided is not None
    assert (out.decided.height, out.decided.round, out.decided.digest, out.decided.payload) == (1, 0, digest, payload)
    assert [a for a, _ in out.decided.seals] == [ADDRESSES[0], ADDRESSES[1], ADDRESSES[3]]
    assert out.next_timeout_ms is None  # waiting for start_height
    out = core.start_height(2, validators(4), 10)
    assert out.request_proposal is None and core.height == 2 and core.round == 0


def test_duplicates_are_idempotent_and_equivocations_keep_the_first() -> None:
    core = core_for(0)
    core.start(0)
    payload = block_payload(1, 1)
    data = wire(KEYS[1], Proposal(1, 0, keccak(payload)), payload)
    first = core.step(data, 1)
    assert len(bodies_of(first, Prepare)) == 1
    for _ in range(3):
        again = core.step(data, 2)
        assert again.broadcast == () and again.persist is None
    other = block_payload(1, 1, b"evil")
    out = core.step(wire(KEYS[1], Proposal(1, 0, keccak(other)), other), 3)
    assert out.broadcast == ()
    prepare = wire(KEYS[2], Prepare(1, 0, keccak(payload)))
    core.step(prepare, 4)
    core.step(prepare, 5)
    core.step(wire(KEYS[2], Prepare(1, 0, keccak(other))), 6)
    assert core.stats["duplicate"] == 4 and core.stats["equivocation"] == 2


def test_proposals_are_checked_proposer_payload_and_justification() -> None:
    core = core_for(0)
    core.start(0)
    payload = block_payload(1, 1)
    digest = keccak(payload)
    core.step(wire(KEYS[2], Proposal(1, 0, digest), payload), 1)  # not the proposer of round 0
    core.step(wire(KEYS[1], Proposal(1, 0, digest), b"bad:1:1"), 1)  # payload does not match the digest
    core.step(wire(KEYS[1], Proposal(1, 0, keccak(b"bad:1:1")), b"bad:1:1"), 1)  # validate() rejects it
    core.step(wire(KEYS[1], Proposal(1, 0, keccak(block_payload(2, 1))), block_payload(2, 1)), 1)  # wrong height
    # Round 1 (proposer validators[2]) without a quorum of round-changes: not justified.
    rcs = tuple(sign_body(KEYS[i], RoundChange(1, 1)) for i in (1, 2))
    p1 = block_payload(1, 2)
    core.step(wire(KEYS[2], Proposal(1, 1, keccak(p1)), p1, rcs), 1)
    assert core.stats["wrong_proposer"] == 1 and core.stats["invalid_payload"] == 3
    assert core.stats["invalid_justification"] == 1 and core.round == 0
    # With a quorum of round-changes (nothing prepared) the proposal is justified: the core jumps to round 1.
    rcs = (*rcs, sign_body(KEYS[3], RoundChange(1, 1)))
    out = core.step(wire(KEYS[2], Proposal(1, 1, keccak(p1)), p1, rcs), 2)
    assert core.round == 1 and bodies_of(out, Prepare) == [Prepare(1, 1, keccak(p1))]


def _prepared_round_change(key: bytes, round_: int, prepared_round: int, payload: bytes) -> Message:
    digest = keccak(payload)
    prepares = tuple(sign_body(KEYS[i], Prepare(1, prepared_round, digest)) for i in range(3))
    return Message(sign_body(key, RoundChange(1, round_, prepared_round, digest)), payload, (), prepares)


def test_a_proposal_after_a_prepared_round_must_repropose_the_highest_prepared_value() -> None:
    locked = block_payload(1, 1)
    other = block_payload(1, 2)
    rc_prepared = _prepared_round_change(KEYS[3], 2, 0, locked)
    rcs = (rc_prepared.signed, sign_body(KEYS[1], RoundChange(1, 2)), sign_body(KEYS[0], RoundChange(1, 2)))
    proposer = KEYS[3]  # proposer of (1, 2) is validators[(1 + 2) % 4]

    core = core_for(0)
    core.start(0)
    # Another value, with or without the certificate's prepares: rejected.
    core.step(wire(proposer, Proposal(1, 2, keccak(other)), other, rcs, rc_prepared.prepares), 1)
    core.step(wire(proposer, Proposal(1, 2, keccak(other)), other, rcs), 1)
    # The locked value without the prepares that back the claim: rejected.
    core.step(wire(proposer, Proposal(1, 2, keccak(locked)), locked, rcs), 1)
    # A certificate from a lower round does not justify a value when a higher one exists.
    low = _prepared_round_change(KEYS[1], 2, 0, other)
    high = _prepared_round_change(KEYS[0], 2, 1, locked)
    mixed = (low.signed, high.signed, sign_body(KEYS[2], RoundChange(1, 2)))
    core.step(wire(proposer, Proposal(1, 2, keccak(other)), other, mixed, low.prepares), 1)
    assert core.stats["invalid_justification"] == 4 and core.round == 0
    out = core.step(wire(proposer, Proposal(1, 2, keccak(locked)), locked, mixed, high.prepares), 2)
    assert core.round == 2 and bodies_of(out, Prepare) == [Prepare(1, 2, keccak(locked))]


def test_round_change_certificates_are_validated_on_receipt() -> None:
    core = core_for(0)
    core.start(0)
    payload = block_payload(1, 1)
    good = _prepared_round_change(KEYS[1], 1, 0, payload)
    forged = Message(good.signed, payload, (), good.prepares[:2])  # only 2 of the 3 prepares
    wrong_payload = Message(good.signed, block_payload(1, 3), (), good.prepares)
    not_below = _prepared_round_change(KEYS[2], 1, 1, payload)
    for message in (forged, wrong_payload, not_below):
        core.step(encode_message(message), 1)
    assert core.stats["invalid_justification"] == 3
    core.step(encode_message(good), 2)
    assert core.stats["invalid_justification"] == 3


def test_the_round_proposer_reproposes_the_highest_prepared_value_from_round_changes() -> None:
    core = core_for(2)  # proposer of (1, 1)
    core.start(0)
    locked = block_payload(1, 1)
    core.step(encode_message(_prepared_round_change(KEYS[0], 1, 0, locked)), 1)
    # f+1 = 2 validators at round 1: it catches up, and its own round-change completes the quorum.
    out = core.step(wire(KEYS[1], RoundChange(1, 1)), 2)
    assert core.round == 1
    assert out.request_proposal is None  # no new block: the prepared one is re-proposed
    (proposal,) = [m for m in sent(out) if isinstance(m.body, Proposal)]
    assert proposal.body == Proposal(1, 1, keccak(locked)) and proposal.payload == locked
    assert len(proposal.round_changes) == 3 and len(proposal.prepares) == 3
    assert core.step(wire(KEYS[3], RoundChange(1, 1)), 3).broadcast == ()  # proposes once per round


def test_timeout_moves_to_the_next_round_with_a_round_change_carrying_the_certificate() -> None:
    core = core_for(0)
    out = core.start(0)
    payload = block_payload(1, 1)
    digest = keccak(payload)
    core.step(wire(KEYS[1], Proposal(1, 0, digest), payload), 1)
    core.step(wire(KEYS[1], Prepare(1, 0, digest)), 2)
    core.step(wire(KEYS[2], Prepare(1, 0, digest)), 3)
    assert core.prepared is not None
    out = core.tick(999)
    assert core.round == 0
    out = core.tick(TEST_CONFIG.base_timeout_ms)
    assert core.round == 1 and core.stats["round_timeouts"] == 1
    (rc,) = [m for m in sent(out) if isinstance(m.body, RoundChange)]
    assert rc.body == RoundChange(1, 1, 0, digest) and rc.payload == payload and len(rc.prepares) == 3
    assert out.next_timeout_ms is not None and out.next_timeout_ms <= 1000 + 2 * TEST_CONFIG.base_timeout_ms


def test_f_plus_one_round_changes_for_higher_rounds_trigger_a_catch_up() -> None:
    core = core_for(0, n=7)  # f = 2
    core.start(0)
    core.step(wire(KEYS[1], RoundChange(1, 5)), 1)
    core.step(wire(KEYS[2], RoundChange(1, 5)), 1)
    assert core.round == 0  # f round-changes could all be Byzantine
    out = core.step(wire(KEYS[3], RoundChange(1, 3)), 2)
    assert core.round == 3  # highest round that f+1 of them reached, i.e. the smallest of that f+1 set
    assert bodies_of(out, RoundChange) == [RoundChange(1, 3)]
    # Far-future round-changes are dropped, yet still count as "that validator is at round r" for catch-up.
    core.step(wire(KEYS[4], RoundChange(1, 500)), 3)
    core.step(wire(KEYS[5], RoundChange(1, 400)), 3)
    core.step(wire(KEYS[6], RoundChange(1, 300)), 3)
    assert core.stats["far_future_round"] == 3 and core.round == 300


def test_a_capped_round_holds_until_another_validator_is_there() -> None:
    config = QbftConfig(base_timeout_ms=1000, max_timeout_ms=1000, rebroadcast_ms=0)
    core = QbftCore(KEYS[0], validators(4), 1, validate_block, config)
    core.start(0)
    core.tick(1000)  # round 0 -> 1 always (round 0 has nothing to wait for)
    assert core.round == 1
    for t in (2000, 3000, 4000):
        core.tick(t)
    assert core.round == 1 and core.stats["round_held"] == 3  # alone: no running away by rounds
    core.step(wire(KEYS[1], RoundChange(1, 1)), 4100)
    core.tick(5000)
    assert core.round == 1  # one other (quorum needs two others) at our round: still hold
    core.step(wire(KEYS[2], RoundChange(1, 1)), 5100)
    core.tick(6000)
    assert core.round == 2  # a quorum reached round 1 and it failed: move on
    core.step(wire(KEYS[3], RoundChange(1, 4)), 6100)
    core.tick(7000)
    assert core.round == 3  # someone is ahead: climb towards it


def test_commits_of_a_recent_round_still_decide_after_a_round_change() -> None:
    core = core_for(0)
    core.start(0)
    payload = block_payload(1, 1)
    digest = keccak(payload)
    core.step(wire(KEYS[1], Proposal(1, 0, digest), payload), 1)
    core.tick(TEST_CONFIG.base_timeout_ms)
    assert core.round == 1
    core.step(commit_wire(KEYS[1], 1, 0, digest), 1001)
    core.step(commit_wire(KEYS[2], 1, 0, digest), 1002)
    out = core.step(commit_wire(KEYS[3], 1, 0, digest), 1003)
    assert out.decided is not None and out.decided.round == 0 and out.decided.digest == digest


def test_commits_with_a_bad_seal_do_not_count() -> None:
    core = core_for(0)
    core.start(0)
    digest = keccak(block_payload(1, 1))
    wrong_seal = sign(KEYS[1], commit_seal_digest(keccak(b"other")))
    core.step(wire(KEYS[1], Commit(1, 0, digest, wrong_seal)), 1)
    core.step(wire(KEYS[2], Commit(1, 0, digest, sign(KEYS[3], commit_seal_digest(digest)))), 1)
    assert core.stats["bad_seal"] == 2


def test_an_observer_decides_without_sending_anything() -> None:
    core = QbftCore(KEYS[5], validators(4), 1, validate_block, TEST_CONFIG)
    assert not core.is_validator
    assert core.start(0).broadcast == ()
    payload = block_payload(1, 1)
    digest = keccak(payload)
    assert core.step(wire(KEYS[1], Proposal(1, 0, digest), payload), 1).broadcast == ()
    for i in range(3):
        out = core.step(commit_wire(KEYS[i], 1, 0, digest), 2)
    assert out.decided is not None and out.decided.payload == payload
    assert core.tick(10_000).broadcast == ()


def test_api_misuse_raises_named_errors() -> None:
    core = core_for(1)
    with pytest.raises(NotStartedError):
        core.step(b"", 0)
    assert core.start(0).request_proposal == (1, 0)
    with pytest.raises(ProposalRejected):
        core.propose(1, 0, b"bad:1:1", 1)
    out = core.propose(1, 3, block_payload(1, 1), 1)
    assert out.broadcast == () and core.stats["stale_propose"] == 1
    with pytest.raises(RestoreError):
        core.restore(b"")


def test_need_sync_when_validators_are_at_higher_heights() -> None:
    core = core_for(0)
    core.start(0)
    out = core.step(wire(KEYS[1], RoundChange(2, 1)), 1)  # next height: buffered, maybe we are about to decide
    assert out.need_sync is None and core.stats["buffered"] == 1
    out = core.tick(TEST_CONFIG.rebroadcast_ms)  # still behind at the next rebroadcast: fetch blocks
    assert out.need_sync == 2
    out = core.step(wire(KEYS[2], RoundChange(40, 1)), 600)  # far ahead: at once
    assert out.need_sync == 40 and core.stats["far_future_height"] == 1
    out = core.step(wire(OUTSIDER, RoundChange(90, 1)), 700)  # non-validators cannot trigger syncs
    assert out.need_sync is None


def test_buffered_future_height_messages_are_replayed_by_start_height() -> None:
    core = core_for(0)
    core.start(0)
    payload = block_payload(2, 2)  # proposer of (2, 0) is validators[2]
    digest = keccak(payload)
    core.step(wire(KEYS[2], Proposal(2, 0, digest), payload), 1)
    for i in (1, 2):
        core.step(wire(KEYS[i], Prepare(2, 0, digest)), 1)
    assert core.buffered_count == 3
    out = core.start_height(2, validators(4), 2)
    assert core.buffered_count == 0
    assert bodies_of(out, Prepare) == [Prepare(2, 0, digest)]
    assert len(bodies_of(out, Commit)) == 1  # its own prepare made the quorum with the two buffered ones


# --- (5) junk is dropped and counted ----------------------------------------------------------------------


def test_junk_is_dropped_counted_and_changes_nothing() -> None:
    core = core_for(0)
    core.start(0)
    payload = block_payload(1, 1)
    digest = keccak(payload)
    good = sign_body(KEYS[1], Proposal(1, 0, digest))
    # A validator's genuine signature of another message: recovers to an unrelated address.
    transplanted = sign_body(KEYS[1], Proposal(1, 0, keccak(b"other"))).signature
    junk = [
        b"\x00garbage",  # decode_error
        b"",  # decode_error
        encode_message(Message(Signed(good.body, bytes(65), good.signing_hash), payload)),  # bad_signature
        encode_message(Message(Signed(good.body, transplanted, good.signing_hash), payload)),  # non_validator
        wire(OUTSIDER, Prepare(1, 0, digest)),  # non_validator
        wire(KEYS[2], Prepare(1, 1 + TEST_CONFIG.max_future_rounds, digest)),  # far_future_round
        wire(KEYS[2], Prepare(1 + 1 + TEST_CONFIG.max_future_heights, 0, digest)),  # far_future_height
        wire(KEYS[2], Prepare(0, 0, digest)),  # old_height
        b"\x01" * (TEST_CONFIG.max_message_bytes + 1),  # oversized: decode_error
    ]
    before = core.round, core.prepared, core.buffered_count
    for data in junk:
        out = core.step(data, 1)
        assert out.broadcast == () and out.decided is None and out.persist is None
    assert (core.round, core.prepared, core.buffered_count) == before
    stats = core.stats
    assert stats["received"] == len(junk)
    assert stats["decode_error"] == 3 and stats["bad_signature"] == 1
    assert stats["non_validator"] == 2 and stats["far_future_round"] == 1
    assert stats["far_future_height"] == 1 and stats["old_height"] == 1
    assert set(stats) == set(STAT_KEYS)
    # ... and the real proposal still goes through.
    assert bodies_of(core.step(encode_message(Message(good, payload)), 2), Prepare) == [Prepare(1, 0, digest)]


def test_future_height_buffer_is_bounded() -> None:
    config = QbftConfig(base_timeout_ms=1000, max_timeout_ms=8000, max_buffered_messages=20)
    core = QbftCore(KEYS[0], validators(4), 1, validate_block, config)
    core.start(0)
    for height in (2, 3):
        for round_ in range(config.max_future_rounds + 1):
            for i in range(1, 4):
                core.step(wire(KEYS[i], RoundChange(height, round_ + 1)), 1)
                core.step(wire(KEYS[i], Prepare(height, round_, keccak(b"%d" % round_))), 1)
    assert core.buffered_count == 20
    assert core.stats["buffered"] == 20 and core.stats["buffer_full"] > 0


# --- (6) restart from the persisted state -------------------------------------------------------------------


def test_restart_from_persisted_state_never_contradicts_what_was_sent() -> None:
    core = core_for(0)
    persisted = core.start(0).persist
    payload = block_payload(1, 1)
    digest = keccak(payload)
    out = core.step(wire(KEYS[1], Proposal(1, 0, digest), payload), 1)
    assert bodies_of(out, Prepare) == [Prepare(1, 0, digest)]
    persisted = out.persist or persisted
    assert persisted is not None

    conflicting = block_payload(1, 1, b"evil")
    conflicting_proposal = wire(KEYS[1], Proposal(1, 0, keccak(conflicting)), conflicting)

    # A core that lost its state would prepare the equivocating proposer's other value ...
    amnesiac = core_for(0)
    amnesiac.start(0)
    assert bodies_of(amnesiac.step(conflicting_proposal, 2), Prepare) == [Prepare(1, 0, keccak(conflicting))]

    # ... a restored one re-sends its own prepare (same bytes) and refuses the other value.
    restored = core_for(0)
    restored.restore(persisted)
    out = restored.start(2)
    assert out.broadcast and bodies_of(out, Prepare) == [Prepare(1, 0, digest)]
    assert restored.step(conflicting_proposal, 3).broadcast == ()
    assert restored.stats["equivocation"] == 1

    # Prepared and committed, then restarted: the certificate survives and travels in the round-change,
    # so the next round must re-propose this value.
    restored.step(wire(KEYS[1], Proposal(1, 0, digest), payload), 4)
    restored.step(wire(KEYS[1], Prepare(1, 0, digest)), 4)
    out = restored.step(wire(KEYS[2], Prepare(1, 0, digest)), 5)
    assert len(bodies_of(out, Commit)) == 1 and out.persist is not None
    again = core_for(0)
    again.restore(out.persist)
    resent = again.start(6)
    assert len(bodies_of(resent, Commit)) == 1 and again.prepared is not None
    assert again.prepared.digest == digest
    out = again.tick(6 + TEST_CONFIG.base_timeout_ms)
    (rc,) = bodies_of(out, RoundChange)
    assert rc == RoundChange(1, 1, 0, digest)
    # A round-1 proposal of another value that counts this round-change is not justified.
    rcs = (sign_body(KEYS[0], rc), sign_body(KEYS[1], RoundChange(1, 1)), sign_body(KEYS[3], RoundChange(1, 1)))
    other = block_payload(1, 2)
    again.step(wire(KEYS[2], Proposal(1, 1, keccak(other)), other, rcs), 7)
    assert again.stats["invalid_justification"] == 1
    assert not [b for b in bodies_of(out, Prepare) if isinstance(b, Prepare) and b.digest != digest]


def test_restore_ignores_state_of_an_earlier_height_and_refuses_a_later_one() -> None:
    old = core_for(0, height=1).start(0).persist
    later = core_for(0, height=5).start(0).persist
    assert old is not None and later is not None
    core = core_for(0, height=3)
    core.restore(old)
    assert core.stats["stale_restore"] == 1
    with pytest.raises(RestoreError, match="height 5"):
        core_for(0, height=3).restore(later)
    core.start(0)
    with pytest.raises(RestoreError, match="before start"):
        core.restore(old)


# --- simulated networks: (1) safety and (2) liveness ---------------------------------------------------------


@pytest.mark.parametrize("n", [4, 7])
@pytest.mark.parametrize("seed", range(3))
def test_all_honest_network_decides_every_height(n: int, seed: int) -> None:
    net = SimNet(n, seed)
    assert net.reach(10, max_duration_ms=30_000)
    assert net.total_stats("round_timeouts") == 0
    for node in net.nodes:
        for height in range(1, 11):
            decision = node.ledger[height]
            assert verify_commit_seals(decision.digest, decision.seals, validators(n))
            assert decision.payload == block_payload(height, (height) % n)  # round 0 proposer


@pytest.mark.parametrize(("n", "crashed"), [(4, (3,)), (4, (0,)), (7, (1, 4))])
@pytest.mark.parametrize("seed", range(3))
def test_liveness_with_f_validators_crashed(n: int, crashed: tuple[int, ...], seed: int) -> None:
    net = SimNet(n, seed, conditions=Conditions(drop=0.05))
    for index in crashed:
        net.crash(index)
    alive = [i for i in range(n) if i not in crashed]
    assert net.reach(10, indices=alive, max_duration_ms=180_000)


@pytest.mark.parametrize("n", [4, 7])
@pytest.mark.parametrize("seed", range(4))
def test_liveness_with_drops_reordering_and_duplicates(n: int, seed: int) -> None:
    net = SimNet(n, seed, conditions=Conditions(drop=0.3, duplicate=0.2, min_delay_ms=1, max_delay_ms=300))
    assert net.reach(10, max_duration_ms=300_000)
    assert net.total_stats("duplicate") > 0


# --- (3) partitions ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "split"),
    [(4, "isolate 0 1"), (4, "isolate 2 3"), (4, "halves"), (7, "isolate 0 1 2"), (7, "halves")],
)
@pytest.mark.parametrize("seed", range(2))
def test_without_a_quorum_nothing_is_decided_and_healing_resumes_promptly(n: int, split: str, seed: int) -> None:
    net = SimNet(n, seed, conditions=Conditions(drop=0.1, duplicate=0.1))
    assert net.reach(3)
    if split == "halves":
        net.partition(range(n // 2), range(n // 2, n))
    else:
        net.isolate(*(int(x) for x in split.split()[1:]))
    net.run(2_000)  # what was already in flight between connected nodes settles
    heads = [node.head for node in net.nodes]
    net.run(120_000)  # far longer than the capped timeout
    assert [node.head for node in net.nodes] == heads
    assert max(node.core.round for node in net.nodes) <= 4  # nobody ran away by rounds while cut off
    net.heal()
    healed = net.now
    assert net.reach(max(heads) + 3, max_duration_ms=60_000)
    assert net.now - healed <= 2 * TEST_CONFIG.max_timeout_ms


# --- (4) Byzantine validators -------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "byzantine"), [(4, (1,)), (4, (3,)), (7, (2, 5))])
@pytest.mark.parametrize("behaviour", [Behaviour.EQUIVOCATE, Behaviour.BAD_SIGNATURES, Behaviour.INVALID_BLOCKS])
@pytest.mark.parametrize("seed", range(2))
def test_byzantine_validators_cannot_fork_or_stall_the_honest_quorum(
    n: int, byzantine: tuple[int, ...], behaviour: Behaviour, seed: int
) -> None:
    conditions = Conditions(drop=0.1, duplicate=0.1)
    net = SimNet(n, seed, conditions=conditions, behaviours=dict.fromkeys(byzantine, behaviour))
    assert net.reach(8, max_duration_ms=300_000)
    if behaviour is Behaviour.EQUIVOCATE:
        assert net.total_stats("equivocation") > 0
    elif behaviour is Behaviour.BAD_SIGNATURES:
        for key in ("bad_signature", "non_validator", "decode_error", "far_future_round", "far_future_height"):
            assert net.total_stats(key) > 0, key
    else:
        assert net.total_stats("invalid_payload") > 0
        # Blocks proposed by the Byzantine validators were never decided.
        for height, decision in net.nodes[0].ledger.items():
            assert decision.payload.startswith(b"block:%d:" % height)


@pytest.mark.parametrize(("n", "byzantine"), [(4, (1,)), (7, (2, 5))])
@pytest.mark.parametrize("seed", range(4))
def test_safety_under_chaos(n: int, byzantine: tuple[int, ...], seed: int) -> None:
    """Equivocators, lossy links, random cuts, crashes and restarts at once; then calm: it must recover."""
    net = SimNet(
        n,
        seed,
        conditions=Conditions(drop=0.2, duplicate=0.1, max_delay_ms=400),
        behaviours=dict.fromkeys(byzantine, Behaviour.EQUIVOCATE),
    )
    net.start()
    honest = [i for i in range(n) if i not in byzantine]
    crashed: set[int] = set()
    while net.now < 60_000:
        action = net.rng.random()
        if action < 0.3:
            net.heal()
            for _ in range(net.rng.randint(1, n)):
                a, b = net.rng.sample(range(n), 2)
                net.cut(a, b)
        elif action < 0.45:
            net.heal()
        elif action < 0.6:
            victim = net.rng.choice(honest)
            if victim in crashed:
                net.restart(victim)
                crashed.discard(victim)
            else:
                net.crash(victim)
                crashed.add(victim)
        net.run(net.rng.randint(100, 4_000))
    for victim in crashed:
        net.restart(victim)
    net.heal()
    assert net.reach(net.max_head() + 2, max_duration_ms=60_000)


def test_the_simulator_does_detect_a_fork() -> None:
    """Guard against a vacuous safety check: feed two different decisions for one height."""
    net = SimNet(4, 0)
    decision = decide_height_one()
    net._record(net.nodes[0], decision)
    forked = Decision(1, 0, keccak(b"block:1:2"), b"block:1:2", decision.seals)
    with pytest.raises(SafetyViolation):
        net._record(net.nodes[1], forked)


# --- (6) restarts in a running network ----------------------------------------------------------------------


@pytest.mark.parametrize("n", [4, 7])
@pytest.mark.parametrize("seed", range(2))
def test_crash_and_restart_from_persisted_state_keeps_safety_and_liveness(n: int, seed: int) -> None:
    net = SimNet(n, seed, conditions=Conditions(drop=0.15, duplicate=0.1, max_delay_ms=150))
    net.start()
    f = (n - 1) // 3
    for _ in range(20):
        victims = net.rng.sample(range(n), f)
        for victim in victims:
            net.crash(victim)
        net.run(net.rng.randint(200, 3_000))
        for victim in victims:
            net.restart(victim)
        net.run(net.rng.randint(0, 1_500))
    assert net.reach(net.max_head() + 3, max_duration_ms=60_000)
    assert net.total_stats("equivocation") == 0  # honest restarted validators never contradicted themselves


# --- (8) validator set changes ------------------------------------------------------------------------------


def test_validator_set_changes_at_height_boundaries() -> None:
    four, five, without_first = validators(4), validators(5), ValidatorSet(tuple(ADDRESSES[1:5]))

    def schedule(height: int) -> ValidatorSet:
        return four if height < 5 else five if height < 10 else without_first

    for seed in range(2):
        net = SimNet(5, seed, schedule=schedule, conditions=Conditions(drop=0.1))
        assert not net.nodes[4].core.is_validator  # follows as an observer until height 5
        assert net.reach(15, max_duration_ms=200_000)
        ledger = net.nodes[4].ledger
        for height in range(1, 16):
            decision = ledger[height]
            assert verify_commit_seals(decision.digest, decision.seals, schedule(height))
            signers = {address for address, _ in decision.seals}
            if height < 5:
                assert ADDRESSES[4] not in signers
            if height >= 10:
                assert ADDRESSES[0] not in signers
        assert any(ADDRESSES[4] in {a for a, _ in ledger[h].seals} for h in range(5, 15))
        assert ledger[9].payload == block_payload(9, 4)  # the new validator proposed in its turn
        assert not net.nodes[0].core.is_validator and net.nodes[0].head >= 14  # removed, still following
