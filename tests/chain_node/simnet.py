"""A deterministic in-memory network of QBFT cores for the consensus tests.

Everything random comes from one seeded `random.Random`, and time is simulated (milliseconds), so a failing
seed replays exactly. The network can drop, delay, duplicate and reorder messages, cut links, partition and
isolate nodes, crash and restart them (from their last persisted state), and run Byzantine behaviours. Each
simulated node plays the part of the real node around its core: it persists `Outbox.persist`, broadcasts,
answers proposal requests with a trivial block, appends decisions to its ledger, syncs decided blocks from
peers it can reach when told `need_sync`, and calls tick() when asked to.

Safety is checked continuously: the first time two honest nodes hold different digests for one height,
`SafetyViolation` is raised from inside the run.
"""

from __future__ import annotations

import enum
import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from chain_node.consensus import (
    Commit,
    Decision,
    Message,
    Outbox,
    Prepare,
    Proposal,
    QbftConfig,
    QbftCore,
    RoundChange,
    ValidatorSet,
    address_of,
    check_commit_seals,
    commit_seal_digest,
    decode_message,
    encode_message,
    keccak,
    sign,
    sign_body,
)

TEST_CONFIG = QbftConfig(
    base_timeout_ms=1000,
    max_timeout_ms=8000,
    rebroadcast_ms=500,
    max_future_rounds=10,
    max_future_heights=2,
    max_past_rounds=4,
    max_buffered_messages=256,
)


class SafetyViolation(AssertionError):
    """Two honest nodes decided different blocks at one height (or a decision's seals do not verify)."""


def make_key(label: int) -> bytes:
    """A deterministic secp256k1 private key (keccak output is a valid scalar with overwhelming probability)."""
    return keccak(b"simnet validator key %d" % label)


def block_payload(height: int, proposer_index: int, tag: bytes = b"") -> bytes:
    """The trivial block of the tests: which height, which proposer, and an optional tag for variants."""
    payload = b"block:%d:%d" % (height, proposer_index)
    return payload + b":" + tag if tag else payload


def validate_block(height: int, payload: bytes) -> bytes | None:
    """Accept exactly `block:<height>:<index>[:tag]`; anything else (e.g. `bad:...`) is an invalid block."""
    parts = payload.split(b":")
    if len(parts) not in (3, 4) or parts[0] != b"block" or parts[1] != b"%d" % height or not parts[2].isdigit():
        return None
    return keccak(payload)


class Behaviour(enum.Enum):
    HONEST = "honest"
    EQUIVOCATE = "equivocate"
    """Runs a core but sends each peer its own version: other proposals, prepares, commits; lies in round-changes."""
    BAD_SIGNATURES = "bad_signatures"
    """Runs a core but corrupts every signature it sends, and adds garbage, non-validator and far-future spam."""
    INVALID_BLOCKS = "invalid_blocks"
    """Honest, except that it proposes blocks that validate() rejects."""


@dataclass(frozen=True)
class Conditions:
    """Per-message link behaviour: each copy is dropped with probability `drop`, else delivered after a
    uniform delay (which reorders), plus a duplicate with probability `duplicate`."""

    drop: float = 0.0
    duplicate: float = 0.0
    min_delay_ms: int = 5
    max_delay_ms: int = 60


@dataclass
class SimNode:
    index: int
    key: bytes
    address: bytes
    core: QbftCore
    behaviour: Behaviour = Behaviour.HONEST
    ledger: dict[int, Decision] = field(default_factory=dict)
    persisted: bytes | None = None
    crashed: bool = False
    wake_ms: int | None = None
    synced: int = 0

    @property
    def honest(self) -> bool:
        return self.behaviour in (Behaviour.HONEST, Behaviour.INVALID_BLOCKS)

    @property
    def head(self) -> int:
        """Number of consecutive decided heights from 1 (the chain length)."""
        height = 0
        while height + 1 in self.ledger:
            height += 1
        return height


ValidatorSchedule = Callable[[int], ValidatorSet]


class SimNet:
    """N simulated nodes; node i has key make_key(i). Heights start at 1."""

    def __init__(
        self,
        n_nodes: int,
        seed: int,
        *,
        config: QbftConfig = TEST_CONFIG,
        conditions: Conditions | None = None,
        schedule: ValidatorSchedule | None = None,
        behaviours: dict[int, Behaviour] | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.config = config
        self.conditions = conditions or Conditions()
        self.now = 0
        keys = [make_key(i) for i in range(n_nodes)]
        addresses = [address_of(k) for k in keys]
        default_set = ValidatorSet(tuple(addresses))
        self.schedule: ValidatorSchedule = schedule or (lambda _height: default_set)
        behaviours = behaviours or {}
        self.nodes = [
            SimNode(i, keys[i], addresses[i], self._new_core(keys[i], 1), behaviours.get(i, Behaviour.HONEST))
            for i in range(n_nodes)
        ]
        self._queue: list[tuple[int, int, int, int, bytes]] = []
        self._seq = 0
        self._cut: set[frozenset[int]] = set()
        self.decided: dict[int, bytes] = {}
        self.delivered = 0
        self.spam_key = make_key(10_000)
        self._started = False

    # --- setup and faults -------------------------------------------------------------------------------------

    def _new_core(self, key: bytes, height: int) -> QbftCore:
        return QbftCore(key, self.schedule(height), height, validate_block, self.config)

    def start(self) -> None:
        self._started = True
        for node in self.nodes:
            if not node.crashed:
                self._handle(node, node.core.start(self.now))

    def cut(self, a: int, b: int) -> None:
        self._cut.add(frozenset((a, b)))

    def partition(self, *groups: Iterable[int]) -> None:
        """Cut every link between nodes of different groups (nodes in no group are cut from everyone)."""
        group_of: dict[int, int] = {}
        for g, members in enumerate(groups):
            for member in members:
                group_of[member] = g
        for a in range(len(self.nodes)):
            for b in range(a + 1, len(self.nodes)):
                if group_of.get(a, -1 - a) != group_of.get(b, -1 - b):
                    self.cut(a, b)

    def isolate(self, *indices: int) -> None:
        for i in indices:
            for j in range(len(self.nodes)):
                if j != i:
                    self.cut(i, j)

    def heal(self) -> None:
        self._cut.clear()

    def crash(self, index: int) -> None:
        """Stop the node: its core and anything not yet persisted are lost; messages to it are dropped."""
        node = self.nodes[index]
        node.crashed = True
        node.wake_ms = None

    def restart(self, index: int) -> None:
        """Rebuild the node's core at its chain head from its last persisted state, as a real node would."""
        node = self.nodes[index]
        node.crashed = False
        height = node.head + 1
        node.core = self._new_core(node.key, height)
        if node.persisted is not None:
            node.core.restore(node.persisted)
        self._handle(node, node.core.start(self.now))

    def linked(self, a: int, b: int) -> bool:
        return frozenset((a, b)) not in self._cut

    # --- running ----------------------------------------------------------------------------------------------

    def run(self, duration_ms: int) -> None:
        self.run_until(lambda: False, duration_ms)

    def run_until(self, done: Callable[[], bool], max_duration_ms: int) -> bool:
        """Advance simulated time until `done()` or for at most `max_duration_ms`; True iff done."""
        if not self._started:
            self.start()
        end = self.now + max_duration_ms
        while not done():
            wakes = [(n.wake_ms, n.index) for n in self.nodes if not n.crashed and n.wake_ms is not None]
            next_wake = min(wakes, default=None)
            next_message = self._queue[0][0] if self._queue else None
            if next_message is not None and (next_wake is None or next_message <= next_wake[0]):
                if next_message > end:
                    break
                at, _, src, dst, data = heapq.heappop(self._queue)
                self.now = max(self.now, at)
                self._deliver(src, dst, data)
            elif next_wake is not None:
                if next_wake[0] > end:
                    break
                self.now = max(self.now, next_wake[0])
                node = self.nodes[next_wake[1]]
                node.wake_ms = None
                self._handle(node, node.core.tick(self.now))
            else:
                break
        finished = done()
        if not finished:
            self.now = max(self.now, end)
        return finished

    def _deliver(self, src: int, dst: int, data: bytes) -> None:
        node = self.nodes[dst]
        if node.crashed or not self.linked(src, dst):
            return
        self.delivered += 1
        self._handle(node, node.core.step(data, self.now))

    def send(self, src: int, dst: int, data: bytes) -> None:
        """Put one copy on the wire, subject to the link conditions."""
        c = self.conditions
        if not self.linked(src, dst) or self.rng.random() < c.drop:
            return
        copies = 2 if self.rng.random() < c.duplicate else 1
        for _ in range(copies):
            at = self.now + self.rng.randint(c.min_delay_ms, c.max_delay_ms)
            self._seq += 1
            heapq.heappush(self._queue, (at, self._seq, src, dst, data))

    # --- the node around the core -----------------------------------------------------------------------------

    def _handle(self, node: SimNode, out: Outbox) -> None:
        if node.crashed:
            return
        if out.persist is not None:
            node.persisted = out.persist  # durably written before anything is sent
        for data in out.broadcast:
            self._broadcast(node, data)
        if out.next_timeout_ms is not None:
            node.wake_ms = out.next_timeout_ms
        if out.decided is not None:
            self._record(node, out.decided)
            height = out.decided.height + 1
            self._handle(node, node.core.start_height(height, self.schedule(height), self.now))
        if out.request_proposal is not None:
            height, round_ = out.request_proposal
            index = self.schedule(height).index(node.address)
            bad = node.behaviour == Behaviour.INVALID_BLOCKS
            payload = b"bad:%d:%d" % (height, index) if bad else block_payload(height, index)
            if bad:
                # The core refuses to propose a block its own validate() rejects; emulate a node that
                # bypasses that check by forging the proposal itself.
                self._forge_invalid_proposal(node, height, round_, payload)
            else:
                self._handle(node, node.core.propose(height, round_, payload, self.now))
        if out.need_sync is not None:
            self._sync(node, out.need_sync)

    def _record(self, node: SimNode, decision: Decision) -> None:
        """Append a decision to the node's ledger, checking seals and agreement with every honest node."""
        if node.honest:
            check = check_commit_seals(decision.digest, decision.seals, self.schedule(decision.height))
            if not check.ok:
                raise SafetyViolation(f"node {node.index} decided height {decision.height} with bad seals: {check}")
            if validate_block(decision.height, decision.payload) != decision.digest:
                raise SafetyViolation(f"node {node.index} decided an invalid block at height {decision.height}")
            known = self.decided.setdefault(decision.height, decision.digest)
            if known != decision.digest:
                raise SafetyViolation(
                    f"fork at height {decision.height}: node {node.index} decided {decision.digest.hex()[:12]}, "
                    f"another honest node {known.hex()[:12]}"
                )
        node.ledger[decision.height] = decision

    def _sync(self, node: SimNode, target: int) -> None:
        """Fetch decided blocks below `target` from reachable peers, verify their seals, then start_height."""
        height = node.core.height
        start = height
        while height < target:
            found = None
            for peer in self.nodes:
                if peer is node or peer.crashed or not self.linked(node.index, peer.index):
                    continue
                decision = peer.ledger.get(height)
                if decision is not None and check_commit_seals(
                    decision.digest, decision.seals, self.schedule(height)
                ):
                    found = decision
                    break
            if found is None:
                break
            self._record(node, found)
            height += 1
        if height > start:
            node.synced += height - start
            self._handle(node, node.core.start_height(height, self.schedule(height), self.now))

    def _broadcast(self, node: SimNode, data: bytes) -> None:
        for peer in self.nodes:
            if peer is node:
                continue
            if node.behaviour == Behaviour.EQUIVOCATE:
                self.send(node.index, peer.index, self._equivocated(node, data))
            elif node.behaviour == Behaviour.BAD_SIGNATURES:
                for spam in self._bad_variants(node, data):
                    self.send(node.index, peer.index, spam)
            else:
                self.send(node.index, peer.index, data)

    # --- Byzantine behaviours ---------------------------------------------------------------------------------

    def _equivocated(self, node: SimNode, data: bytes) -> bytes:
        """A per-recipient version of one of our messages: same slot, another value (validly signed)."""
        message = decode_message(data)
        body = message.body
        if self.rng.random() < 0.4:
            return data
        height = body.height
        index = self.schedule(height).index(node.address) if self.schedule(height).contains(node.address) else 0
        alt_payload = block_payload(height, index, b"evil%d" % self.rng.randrange(3))
        alt_digest = keccak(alt_payload)
        if isinstance(body, Proposal):
            # Justify the other value with a quorum of round-changes chosen to leave out every prepared
            # certificate, when that is possible (it is whenever no value can have been decided yet).
            quorum = self.schedule(height).quorum
            unprepared = [rc for rc in message.round_changes if rc.body.prepared_round is None]
            if body.round > 0 and len(unprepared) < quorum:
                return data
            signed = sign_body(node.key, Proposal(height, body.round, alt_digest))
            return encode_message(Message(signed, alt_payload, tuple(unprepared[:quorum]) if body.round else ()))
        if isinstance(body, Prepare):
            return encode_message(Message(sign_body(node.key, Prepare(height, body.round, alt_digest))))
        if isinstance(body, Commit):
            seal = sign(node.key, commit_seal_digest(alt_digest))
            return encode_message(Message(sign_body(node.key, Commit(height, body.round, alt_digest, seal))))
        assert isinstance(body, RoundChange)
        # Lie: claim to have prepared nothing (hiding a lock is the classic attack on re-proposal).
        return encode_message(Message(sign_body(node.key, RoundChange(height, body.round))))

    def _bad_variants(self, node: SimNode, data: bytes) -> list[bytes]:
        """Corrupted copies of a message plus spam; nothing of it should ever be accepted."""
        message = decode_message(data)
        body = message.body
        signature = bytearray(message.signed.signature)
        signature[self.rng.randrange(64)] ^= 1 << self.rng.randrange(8)
        corrupted = Message(
            type(message.signed)(body, bytes(signature), message.signed.signing_hash),
            message.payload,
            message.round_changes,
            message.prepares,
        )
        zero_sig = Message(type(message.signed)(body, bytes(65), message.signed.signing_hash))
        outsider = Message(sign_body(self.spam_key, body), message.payload, message.round_changes, message.prepares)
        far_round = Message(sign_body(node.key, RoundChange(body.height, body.round + 1000)))
        far_height = Message(sign_body(node.key, RoundChange(body.height + 1000, 1)))
        garbage = bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 80)))
        variants = [encode_message(m) for m in (corrupted, zero_sig, outsider)] + [garbage]
        if self.rng.random() < 0.2:
            variants += [encode_message(far_round), encode_message(far_height)]
        return variants

    def _forge_invalid_proposal(self, node: SimNode, height: int, round_: int, payload: bytes) -> None:
        digest = keccak(payload)
        core = node.core
        justification = core._proposal_justification(round_)  # test-only peek at the core's round-changes
        if justification is None:
            return
        round_changes, certificate = justification
        prepares = certificate.prepares if certificate is not None else ()
        message = Message(sign_body(node.key, Proposal(height, round_, digest)), payload, round_changes, prepares)
        data = encode_message(message)
        for peer in self.nodes:
            if peer is not node:
                self.send(node.index, peer.index, data)

    # --- observations -----------------------------------------------------------------------------------------

    def honest_nodes(self) -> list[SimNode]:
        return [n for n in self.nodes if n.honest]

    def min_head(self, indices: Iterable[int] | None = None) -> int:
        chosen = [self.nodes[i] for i in indices] if indices is not None else self.honest_nodes()
        return min(n.head for n in chosen)

    def max_head(self) -> int:
        return max(n.head for n in self.nodes)

    def reach(self, height: int, indices: Iterable[int] | None = None, max_duration_ms: int = 120_000) -> bool:
        """Run until the given (default: honest) nodes all have heights 1..height decided."""
        chosen = list(indices) if indices is not None else [n.index for n in self.honest_nodes()]
        return self.run_until(lambda: self.min_head(chosen) >= height, max_duration_ms)

    def total_stats(self, key: str, indices: Iterable[int] | None = None) -> int:
        chosen = [self.nodes[i] for i in indices] if indices is not None else self.honest_nodes()
        return sum(n.core.stats[key] for n in chosen)
