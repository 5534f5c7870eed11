"""The QBFT state machine of one validator: pure, driven by the node through start/step/tick/propose.

Message flow of one height (n validators, quorum q = ceil(2n/3), f = floor((n-1)/3)):

    round 0     proposer(h, 0) asks the node for a block (RequestProposal) and broadcasts PROPOSAL
    any round   a validator accepts the proposer's PROPOSAL for its current round if the payload validates
                and (round > 0) it is justified; it broadcasts PREPARE(digest)
                on q PREPAREs for the accepted digest it records a prepared certificate (round, digest,
                payload, the q PREPAREs) and broadcasts COMMIT(digest, commit seal)
                on q COMMITs of one round for one digest whose payload it knows: decided (with the seals)
    timeout     the round timer fires: move to round+1 and broadcast ROUND-CHANGE carrying the prepared
                certificate, if any
    catch-up    f+1 validators announced ROUND-CHANGEs for rounds above ours: jump to the highest round that
                f+1 of them reached (one of them is honest, so Byzantine validators cannot drag us alone)
    new round   proposer(h, r) holding q ROUND-CHANGEs for r re-proposes the value of the highest prepared
                certificate among them, or asks the node for a new block if none carries one; its PROPOSAL
                carries the q ROUND-CHANGEs and the highest certificate's PREPAREs as justification

Why no two values can be decided at one height: a decision at round r needs q COMMITs, so at least q - f
honest validators hold a prepared certificate for (r, v); any q ROUND-CHANGEs for a later round include one of
them; the justification forces the proposer to re-propose the value of the highest certificate, which by
induction over rounds is v. The prepared certificate is the lock: it travels in every ROUND-CHANGE the
validator sends. A validator never votes twice in a round and never returns to an earlier round.

Timers. Round r lasts min(base * 2**r, max) ms: growth lets validators whose clocks or starts differ meet in a
round, the cap keeps the wait bounded once a quorum is reachable again. With capped rounds a validator that is
alone at its round *holds* (re-arms its timer instead of moving on) until some validator is ahead of it or a
quorum minus itself has reached its round: otherwise a validator cut off for long would run rounds ahead and,
all rounds being equally long, never meet the others again. Every `rebroadcast_ms` the validator re-sends the
messages it sent in its current round, so lost messages cannot stall a round on a lossy network.

Persistence. Every Outbox that changes what the validator has committed itself to (its round, its prepared
certificate, the messages it sent in this round) carries `persist`; the node writes it before sending. After a
crash, `restore()` brings back that round, the certificate and the sent messages (re-sent verbatim: signatures
are deterministic), and the core refuses anything that would contradict them.

Byzantine input. Anything malformed, badly signed, from outside the validator set, or too far ahead is dropped
and counted in `stats`; per round at most one proposal, PREPARE, COMMIT and ROUND-CHANGE per validator is kept,
so memory stays bounded and duplicates are idempotent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from chain_node.consensus.crypto import address_of, commit_seal_digest, keccak, recover, sign
from chain_node.consensus.messages import (
    Commit,
    DecodeError,
    Message,
    Prepare,
    Proposal,
    RoundChange,
    Signed,
    decode_message,
    decode_signed,
    encode_message,
    encode_signed,
    sign_body,
)
from chain_node.consensus.validators import Seal, ValidatorSet
from chain_node.trie import RlpItem, int_to_rlp_bytes, rlp_decode, rlp_encode

Validate = Callable[[int, bytes], bytes | None]
"""validate(height, payload) -> digest of the block if it is a valid block for that height, else None. Pure."""

PERSIST_VERSION = 1
STAT_KEYS = (
    "received",  # messages given to step()
    "decode_error",  # not a well-formed message (or larger than max_message_bytes)
    "bad_signature",  # the sender's signature does not recover
    "non_validator",  # signed by an address outside the validator set
    "old_height",  # for a height already left
    "far_future_height",  # beyond height + max_future_heights: dropped (the sender's height is noted for sync)
    "buffered",  # for one of the next max_future_heights heights: kept until start_height
    "buffer_full",  # future-height message dropped because the buffer was full
    "old_round",  # for a round below current - max_past_rounds (or a stale proposal/round-change)
    "far_future_round",  # beyond round + max_future_rounds: dropped (a round-change is noted for catch-up)
    "duplicate",  # same content from the same sender again: ignored (idempotent)
    "equivocation",  # different content from the same sender for the same slot: the first one is kept
    "wrong_proposer",  # a proposal not from proposer(height, round)
    "invalid_payload",  # validate() rejected the payload, or it does not match the signed digest
    "invalid_justification",  # round-change or proposal justification that does not check out
    "bad_seal",  # a commit whose seal does not recover to its sender
    "after_decision",  # message for the current height after it was decided
    "stale_propose",  # propose() for a height/round no longer current
    "stale_restore",  # restore() of a state from an earlier height: ignored
    "round_timeouts",  # round timer expiries that moved to the next round
    "round_jumps",  # rounds skipped by the f+1 rule or by a justified proposal
    "round_held",  # capped round timer expiries spent waiting for peers instead of moving on
    "rebroadcasts",  # times the current round's own messages were re-sent
    "decided",  # heights decided by this core
)


class ConsensusError(Exception):
    """Base of the errors the core raises to its caller: always a misuse of the API, never network input."""


class NotStartedError(ConsensusError):
    """step/tick/propose before start() or start_height()."""


class RestoreError(ConsensusError):
    """The persisted state cannot be used (unreadable, or from a height above the one the core starts at)."""


class ProposalRejected(ConsensusError):
    """propose() was given a payload that the injected validate() rejects."""


class _InvalidJustification(Exception):
    """Internal: a round-change's prepared certificate does not check out (counted, never raised out)."""


@dataclass(frozen=True)
class QbftConfig:
    """Timing and resource bounds. Times are milliseconds of the node's monotonic clock."""

    base_timeout_ms: int = 2000
    """Round r lasts base_timeout_ms * 2**r ..."""
    max_timeout_ms: int = 30000
    """... but never longer than this: once a quorum is reachable again it recovers within about this long."""
    rebroadcast_ms: int = 1000
    """Re-send this round's own messages this often, so lossy links cannot stall a round (0: never)."""
    max_future_rounds: int = 10
    """Messages for rounds above current + this are dropped (their round-changes still count for catch-up)."""
    max_future_heights: int = 2
    """Messages for the next this-many heights are buffered; beyond that they are dropped."""
    max_past_rounds: int = 4
    """Commits for up to this many rounds below the current one still count towards a decision."""
    max_buffered_messages: int = 1024
    """Bound on buffered future-height messages."""
    max_message_bytes: int = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.base_timeout_ms <= 0 or self.max_timeout_ms < self.base_timeout_ms:
            raise ValueError("need 0 < base_timeout_ms <= max_timeout_ms")
        if self.rebroadcast_ms < 0 or self.max_future_rounds < 1 or self.max_future_heights < 0:
            raise ValueError("rebroadcast_ms >= 0, max_future_rounds >= 1, max_future_heights >= 0")
        if self.max_past_rounds < 0 or self.max_buffered_messages < 0 or self.max_message_bytes <= 0:
            raise ValueError("bounds must be non-negative")

    def round_timeout_ms(self, round: int) -> int:
        """base * 2**round, capped at max_timeout_ms (the exponent is clamped so huge rounds stay cheap)."""
        return min(self.base_timeout_ms << min(round, 62), self.max_timeout_ms)

    def is_capped(self, round: int) -> bool:
        return self.round_timeout_ms(round) >= self.max_timeout_ms


@dataclass(frozen=True)
class Decision:
    """A decided block: at least a quorum of commit seals over `digest`, in validator order."""

    height: int
    round: int
    digest: bytes
    payload: bytes
    seals: tuple[Seal, ...]


@dataclass(frozen=True)
class Outbox:
    """What the node must do after one input, in this order: write `persist` durably, then send `broadcast`
    to every other validator, hand `decided` to the chain, answer `request_proposal` with propose(), fetch
    decided blocks below height `need_sync`, and call tick() at `next_timeout_ms` (absolute, on the clock
    of `now_ms`; None while the core waits for start_height after a decision)."""

    broadcast: tuple[bytes, ...] = ()
    request_proposal: tuple[int, int] | None = None
    decided: Decision | None = None
    persist: bytes | None = None
    need_sync: int | None = None
    next_timeout_ms: int | None = None


@dataclass(frozen=True)
class PreparedCertificate:
    """Proof that a quorum prepared `digest` in `round`: what a ROUND-CHANGE carries and what locks the value."""

    round: int
    digest: bytes
    payload: bytes
    prepares: tuple[Signed[Prepare], ...]


@dataclass(frozen=True)
class _RoundChangeEntry:
    signed: Signed[RoundChange]
    certificate: PreparedCertificate | None


@dataclass
class _RoundState:
    """Everything received or sent for one round of the current height (at most one entry per sender)."""

    proposal: Signed[Proposal] | None = None
    proposal_payload: bytes = b""
    prepares: dict[bytes, Signed[Prepare]] = field(default_factory=dict)
    commits: dict[bytes, Signed[Commit]] = field(default_factory=dict)
    round_changes: dict[bytes, _RoundChangeEntry] = field(default_factory=dict)
    sent_proposal: bool = False
    sent_prepare: bytes | None = None
    sent_commit: bool = False


@dataclass
class _Out:
    broadcast: list[bytes] = field(default_factory=list)
    request_proposal: tuple[int, int] | None = None
    decided: Decision | None = None
    need_sync: int | None = None


class QbftCore:
    """One validator's QBFT state machine. No I/O, clock, thread or randomness: the node feeds it inputs and
    carries out the returned Outbox. A core whose key is not in the validator set follows as an observer: it
    decides from the commits it sees but never sends anything."""

    def __init__(
        self,
        private_key: bytes,
        validators: ValidatorSet,
        height: int,
        validate: Validate,
        config: QbftConfig | None = None,
    ) -> None:
        if height < 0:
            raise ValueError("height must be >= 0")
        self._key = bytes(private_key)
        self.address = address_of(self._key)
        self.config = config or QbftConfig()
        self._validate = validate
        self.stats: dict[str, int] = dict.fromkeys(STAT_KEYS, 0)
        self._started = False
        self._height = height
        self._validators = validators
        self._round = 0
        self._rounds: dict[int, _RoundState] = {}
        self._prepared: PreparedCertificate | None = None
        self._payloads: dict[bytes, bytes] = {}
        self._validate_cache: dict[bytes, bytes | None] = {}
        self._rc_hints: dict[bytes, int] = {}
        self._round_hints: dict[bytes, int] = {}
        self._decision: Decision | None = None
        self._awaiting_proposal: tuple[int, int] | None = None
        self._sent: list[bytes] = []
        self._round_deadline = 0
        self._next_rebroadcast = 0
        self._dirty = True
        self._future: dict[tuple[int, bytes, int, int], Message] = {}
        self._height_hints: dict[bytes, int] = {}
        self._need_sync_sent = 0
        self._now = 0
        self._reset_height(height, validators)

    # --- read-only views (for the node, tests and metrics) ----------------------------------------------------

    @property
    def height(self) -> int:
        return self._height

    @property
    def round(self) -> int:
        return self._round

    @property
    def validators(self) -> ValidatorSet:
        return self._validators

    @property
    def is_validator(self) -> bool:
        return self._validators.contains(self.address)

    @property
    def decided(self) -> Decision | None:
        return self._decision

    @property
    def prepared(self) -> PreparedCertificate | None:
        return self._prepared

    @property
    def buffered_count(self) -> int:
        return len(self._future)

    # --- inputs -----------------------------------------------------------------------------------------------

    def start(self, now_ms: int) -> Outbox:
        """Start (or, after restore(), resume) the height given at construction."""
        out = _Out()
        self._now = now_ms
        self._started = True
        self._round_deadline = now_ms + self.config.round_timeout_ms(self._round)
        self._next_rebroadcast = now_ms + self.config.rebroadcast_ms
        if self._sent:
            out.broadcast.extend(self._sent)
        self._advance(out)
        return self._finish(out)

    def start_height(self, height: int, validators: ValidatorSet, now_ms: int) -> Outbox:
        """Move to `height` (after the node persisted the blocks below it); the validator set may change here."""
        if height <= self._height and self._started:
            raise ConsensusError(f"start_height({height}) does not move forward from height {self._height}")
        out = _Out()
        self._now = now_ms
        self._started = True
        self._reset_height(height, validators)
        self._round_deadline = now_ms + self.config.round_timeout_ms(0)
        self._next_rebroadcast = now_ms + self.config.rebroadcast_ms
        self._height_hints = {a: h for a, h in self._height_hints.items() if h > height}
        buffered = sorted(
            ((key, msg) for key, msg in self._future.items() if key[0] == height),
            key=lambda item: (item[0][3], item[0][2], item[0][1]),
        )
        self._future = {key: msg for key, msg in self._future.items() if key[0] > height}
        for _, message in buffered:
            self._receive(message, out)
        self._advance(out)
        return self._finish(out)

    def step(self, message: bytes, now_ms: int) -> Outbox:
        """Process one message as received from the network. Never raises on bad input: it counts it."""
        self._require_started()
        out = _Out()
        self._now = now_ms
        self.stats["received"] += 1
        if len(message) > self.config.max_message_bytes:
            self.stats["decode_error"] += 1
            return self._finish(out)
        try:
            decoded = decode_message(message)
        except DecodeError:
            self.stats["decode_error"] += 1
            return self._finish(out)
        self._receive(decoded, out)
        self._advance(out)
        return self._finish(out)

    def tick(self, now_ms: int) -> Outbox:
        """Let time pass: fire the round timer and the rebroadcast timer if they are due."""
        self._require_started()
        out = _Out()
        self._now = now_ms
        if self._decision is None:
            if now_ms >= self._round_deadline:
                self._on_round_timeout(out)
            if self.config.rebroadcast_ms and now_ms >= self._next_rebroadcast:
                self._next_rebroadcast = now_ms + self.config.rebroadcast_ms
                if self._sent:
                    self.stats["rebroadcasts"] += 1
                    fresh = [m for m in self._sent if m not in out.broadcast]
                    out.broadcast.extend(fresh)
                target = self._sync_target()
                if target is not None:
                    out.need_sync = target
                    self._need_sync_sent = target
        self._advance(out)
        return self._finish(out)

    def propose(self, height: int, round: int, payload: bytes, now_ms: int) -> Outbox:
        """The node's answer to request_proposal=(height, round): the block to propose."""
        self._require_started()
        out = _Out()
        self._now = now_ms
        state = self._rounds.get(round)
        if (
            self._decision is not None
            or (height, round) != (self._height, self._round)
            or self._awaiting_proposal != (height, round)
            or state is None
            or state.sent_proposal
        ):
            self.stats["stale_propose"] += 1
            return self._finish(out)
        digest = self._validated(payload)
        if digest is None:
            raise ProposalRejected(f"validate() rejects the payload proposed for height {height}")
        self._awaiting_proposal = None
        justification = self._proposal_justification(round)
        if justification is None:  # round > 0 and the round-change quorum is gone: cannot happen, be safe
            self.stats["stale_propose"] += 1
            return self._finish(out)
        round_changes, certificate = justification
        if certificate is not None:  # a prepared value appeared meanwhile: it, not the node's block, is proposed
            digest, payload = certificate.digest, certificate.payload
        self._send_proposal(round, digest, payload, round_changes, certificate, out)
        self._advance(out)
        return self._finish(out)

    def restore(self, persisted_state: bytes) -> None:
        """Load the state last returned in Outbox.persist, before start(): the core resumes in the round it was
        in, knowing what it already sent there and its prepared certificate, so it cannot equivocate."""
        if self._started:
            raise RestoreError("restore() must come before start()")
        try:
            fields: Any = rlp_decode(persisted_state)
            version, height, round_ = (_int(x) for x in fields[0:3])
            certificate_fields, sent = fields[3], fields[4]
        except Exception as exc:
            raise RestoreError(f"unreadable persisted state: {exc}") from exc
        if version != PERSIST_VERSION:
            raise RestoreError(f"persisted state version {version}, expected {PERSIST_VERSION}")
        if height < self._height:
            self.stats["stale_restore"] += 1
            return
        if height > self._height:
            raise RestoreError(f"persisted state is for height {height}, the core starts at {self._height}")
        try:
            certificate = self._decode_certificate(certificate_fields)
            messages = [decode_message(bytes(m)) for m in sent]
        except (DecodeError, ValueError, TypeError, IndexError) as exc:
            raise RestoreError(f"unreadable persisted state: {exc}") from exc
        self._round = round_
        self._prepared = certificate
        if certificate is not None:
            self._remember_payload(certificate.digest, certificate.payload)
        out = _Out()
        for message in messages:
            self._receive(message, out)
        self._sent = [bytes(m) for m in sent]
        self._dirty = False

    # --- per-height state -------------------------------------------------------------------------------------

    def _reset_height(self, height: int, validators: ValidatorSet) -> None:
        self._height = height
        self._validators = validators
        self._round = 0
        self._rounds = {}
        self._prepared = None
        self._payloads = {}
        self._validate_cache = {}
        self._rc_hints = {}
        self._round_hints = {}
        self._decision = None
        self._awaiting_proposal = None
        self._sent = []
        self._round_deadline = 0
        self._next_rebroadcast = 0
        self._dirty = True

    def _require_started(self) -> None:
        if not self._started:
            raise NotStartedError("call start() or start_height() first")

    def _round_state(self, round: int) -> _RoundState:
        state = self._rounds.get(round)
        if state is None:
            state = self._rounds[round] = _RoundState()
        return state

    # --- receiving --------------------------------------------------------------------------------------------

    def _receive(self, message: Message, out: _Out) -> None:
        """Filter one decoded message (height, signature, membership, round window) and dispatch it."""
        body = message.body
        if body.height < self._height:
            self.stats["old_height"] += 1
            return
        sender = message.signed.signer()
        if sender is None:
            self.stats["bad_signature"] += 1
            return
        if body.height > self._height:
            self._receive_future_height(message, sender)
            return
        if not self._validators.contains(sender):
            self.stats["non_validator"] += 1
            return
        if self._decision is not None:
            self.stats["after_decision"] += 1
            return
        if body.round > self._round_hints.get(sender, -1):
            self._round_hints[sender] = body.round
        if isinstance(body, RoundChange) and body.round > self._rc_hints.get(sender, 0):
            self._rc_hints[sender] = body.round
        if body.round > self._round + self.config.max_future_rounds:
            self.stats["far_future_round"] += 1
            return
        if body.round < self._round - self.config.max_past_rounds:
            self.stats["old_round"] += 1
            return
        if sender == self.address:
            self._note_own(message)
        if isinstance(body, Proposal):
            self._on_proposal(message, body, sender, out)
        elif isinstance(body, Prepare):
            self._on_prepare(message.signed, body, sender)
        elif isinstance(body, Commit):
            self._on_commit(message.signed, body, sender)
        else:
            self._on_round_change(message, body, sender)

    def _receive_future_height(self, message: Message, sender: bytes) -> None:
        """Note the sender's height (for need_sync) and buffer the message if it is near enough."""
        body = message.body
        if not self._validators.contains(sender):
            self.stats["non_validator"] += 1
            return
        if body.height > self._height_hints.get(sender, 0):
            self._height_hints[sender] = body.height
        if body.height > self._height + self.config.max_future_heights:
            self.stats["far_future_height"] += 1
            return
        if body.round > self.config.max_future_rounds:
            self.stats["far_future_round"] += 1
            return
        key = (body.height, sender, int(message.code), body.round)
        if key in self._future:
            self.stats["duplicate" if self._future[key] == message else "equivocation"] += 1
            return
        if len(self._future) >= self.config.max_buffered_messages:
            self.stats["buffer_full"] += 1
            return
        self._future[key] = message
        self.stats["buffered"] += 1

    def _note_own(self, message: Message) -> None:
        """A message signed with our key counts as sent, even if we had forgotten it: never contradict it."""
        body = message.body
        state = self._round_state(body.round)
        if isinstance(body, Proposal):
            state.sent_proposal = True
        elif isinstance(body, Prepare) and state.sent_prepare is None:
            state.sent_prepare = body.digest
        elif isinstance(body, Commit):
            state.sent_commit = True

    def _on_proposal(self, message: Message, body: Proposal, sender: bytes, out: _Out) -> None:
        if sender != self._validators.proposer(body.height, body.round):
            self.stats["wrong_proposer"] += 1
            return
        state = self._round_state(body.round)
        if state.proposal is not None:
            self.stats["duplicate" if state.proposal.body == body else "equivocation"] += 1
            return
        current_or_later = body.round >= self._round
        if current_or_later and body.round > 0 and not self._proposal_is_justified(message, body):
            # Checked before validate(): signatures are cheap next to executing a block.
            self.stats["invalid_justification"] += 1
            return
        if self._validated(message.payload) != body.digest:
            self.stats["invalid_payload"] += 1
            return
        if not current_or_later:
            # Too late to vote on, but its payload may be what a commit quorum of that round decided. Kept in
            # the round's slot so that a proposer flooding variants costs one validate() per round, not each.
            state.proposal = message.signed
            state.proposal_payload = message.payload
            self._remember_payload(body.digest, message.payload)
            self.stats["old_round"] += 1
            return
        if state.sent_prepare is not None and state.sent_prepare != body.digest:
            self.stats["equivocation"] += 1  # we already prepared another value in this round (before a restart)
            return
        state.proposal = message.signed
        state.proposal_payload = message.payload
        self._remember_payload(body.digest, message.payload)
        if body.round > self._round:
            # A justified proposal proves a quorum moved to that round: follow it at once.
            self.stats["round_jumps"] += 1
            self._enter_round(body.round, out, send_round_change=False)

    def _on_prepare(self, signed: Signed[Prepare], body: Prepare, sender: bytes) -> None:
        state = self._round_state(body.round)
        known = state.prepares.get(sender)
        if known is not None:
            self.stats["duplicate" if known.body == body else "equivocation"] += 1
            return
        state.prepares[sender] = signed

    def _on_commit(self, signed: Signed[Commit], body: Commit, sender: bytes) -> None:
        state = self._round_state(body.round)
        known = state.commits.get(sender)
        if known is not None:
            self.stats["duplicate" if known.body == body else "equivocation"] += 1
            return
        if recover(commit_seal_digest(body.digest), body.seal) != sender:
            self.stats["bad_seal"] += 1
            return
        state.commits[sender] = signed

    def _on_round_change(self, message: Message, body: RoundChange, sender: bytes) -> None:
        if body.round < self._round:
            self.stats["old_round"] += 1
            return
        state = self._round_state(body.round)
        known = state.round_changes.get(sender)
        if known is not None:
            self.stats["duplicate" if known.signed.body == body else "equivocation"] += 1
            return
        try:
            certificate = self._round_change_certificate(message, body)
        except _InvalidJustification:
            self.stats["invalid_justification"] += 1
            return
        state.round_changes[sender] = _RoundChangeEntry(message.signed, certificate)
        if certificate is not None:
            self._remember_payload(certificate.digest, certificate.payload)

    # --- justification ----------------------------------------------------------------------------------------

    def _round_change_certificate(self, message: Message, body: RoundChange) -> PreparedCertificate | None:
        """The validated prepared certificate a ROUND-CHANGE carries (None if it claims none).

        Raises _InvalidJustification for a round-change to round 0, a certificate from a round not below the
        target round, fewer than a quorum of matching PREPAREs, or a payload that is not the prepared block.
        """
        if body.round < 1:
            raise _InvalidJustification("round-change to round 0")
        if body.prepared_round is None or body.prepared_digest is None:
            return None
        if body.prepared_round >= body.round:
            raise _InvalidJustification("prepared round not below the target round")
        prepares = self._prepare_quorum(message.prepares, body.height, body.prepared_round, body.prepared_digest)
        if prepares is None:
            raise _InvalidJustification("no quorum of PREPAREs for the prepared value")
        if self._validated(message.payload) != body.prepared_digest:
            raise _InvalidJustification("payload is not the prepared block")
        return PreparedCertificate(body.prepared_round, body.prepared_digest, message.payload, prepares)

    def _prepare_quorum(
        self, prepares: Iterable[Signed[Prepare]], height: int, round: int, digest: bytes
    ) -> tuple[Signed[Prepare], ...] | None:
        """The PREPAREs if they are a quorum of distinct validators for exactly (height, round, digest)."""
        expected = Prepare(height, round, digest)
        by_sender: dict[bytes, Signed[Prepare]] = {}
        for prepare in prepares:
            signer = prepare.signer()
            if prepare.body != expected or signer is None or not self._validators.contains(signer):
                return None
            if signer in by_sender:
                return None
            by_sender[signer] = prepare
        if len(by_sender) < self._validators.quorum:
            return None
        return tuple(by_sender[a] for a in self._validators.addresses if a in by_sender)

    def _proposal_is_justified(self, message: Message, body: Proposal) -> bool:
        """QBFT justification of a proposal for round > 0.

        A quorum of ROUND-CHANGEs for (height, round) from distinct validators; if any of them reports a
        prepared certificate, the proposal must carry the value of the highest one together with a quorum of
        PREPAREs for it. The individual round-changes' own certificates are not needed: the proposer only
        forwards round-changes it validated, and the highest claim must be backed here.
        """
        senders: set[bytes] = set()
        highest_round = -1
        highest_digests: set[bytes] = set()
        for round_change in message.round_changes:
            rc = round_change.body
            signer = round_change.signer()
            if rc.height != body.height or rc.round != body.round or signer is None:
                return False
            if not self._validators.contains(signer) or signer in senders:
                return False
            senders.add(signer)
            if rc.prepared_round is not None and rc.prepared_digest is not None:
                if rc.prepared_round >= body.round:
                    return False
                if rc.prepared_round > highest_round:
                    highest_round, highest_digests = rc.prepared_round, {rc.prepared_digest}
                elif rc.prepared_round == highest_round:
                    highest_digests.add(rc.prepared_digest)
        if len(senders) < self._validators.quorum:
            return False
        if highest_round < 0:
            return True
        if highest_digests != {body.digest}:
            return False
        return self._prepare_quorum(message.prepares, body.height, highest_round, body.digest) is not None

    def _proposal_justification(
        self, round: int
    ) -> tuple[tuple[Signed[RoundChange], ...], PreparedCertificate | None] | None:
        """What our proposal for `round` must carry: the round-changes and the highest certificate among them.

        None if round > 0 and we do not hold a quorum of round-changes for it yet.
        """
        if round == 0:
            return (), None
        entries = self._round_state(round).round_changes
        if len(entries) < self._validators.quorum:
            return None
        ordered = [entries[a] for a in self._validators.addresses if a in entries]
        certificate: PreparedCertificate | None = None
        for entry in ordered:
            if entry.certificate is not None and (certificate is None or entry.certificate.round > certificate.round):
                certificate = entry.certificate
        return tuple(entry.signed for entry in ordered), certificate

    # --- rules that fire on state ------------------------------------------------------------------------------

    def _advance(self, out: _Out) -> None:
        """Apply the QBFT 'upon' rules until none fires any more."""
        while self._decision is None:
            if self._try_decide(out):
                return
            fired = self._try_round_jump(out)
            fired = self._try_propose(out) or fired
            fired = self._try_prepare(out) or fired
            fired = self._try_commit(out) or fired
            if not fired:
                return

    def _try_decide(self, out: _Out) -> bool:
        """q COMMITs from one round for one digest whose payload we know: decided."""
        quorum = self._validators.quorum
        for round in sorted(self._rounds):
            commits = self._rounds[round].commits
            if len(commits) < quorum:
                continue
            tally: dict[bytes, int] = {}
            for commit in commits.values():
                tally[commit.body.digest] = tally.get(commit.body.digest, 0) + 1
            for digest, count in tally.items():
                payload = self._payloads.get(digest)
                if count >= quorum and payload is not None:
                    seals = tuple(
                        (address, commits[address].body.seal)
                        for address in self._validators.addresses
                        if address in commits and commits[address].body.digest == digest
                    )
                    self._decision = Decision(self._height, round, digest, payload, seals)
                    out.decided = self._decision
                    self.stats["decided"] += 1
                    return True
        return False

    def _try_round_jump(self, out: _Out) -> bool:
        """f+1 validators announced rounds above ours: jump to the highest round f+1 of them reached."""
        ahead = sorted(
            (r for sender, r in self._rc_hints.items() if r > self._round and sender != self.address), reverse=True
        )
        needed = self._validators.max_faulty + 1
        if len(ahead) < needed:
            return False
        self.stats["round_jumps"] += 1
        self._enter_round(ahead[needed - 1], out, send_round_change=True)
        return True

    def _try_propose(self, out: _Out) -> bool:
        round = self._round
        if not self.is_validator or self._validators.proposer(self._height, round) != self.address:
            return False
        state = self._round_state(round)
        if state.sent_proposal or self._awaiting_proposal == (self._height, round):
            return False
        justification = self._proposal_justification(round)
        if justification is None:
            return False
        round_changes, certificate = justification
        if certificate is None:
            self._awaiting_proposal = (self._height, round)
            out.request_proposal = (self._height, round)
            return False
        self._send_proposal(round, certificate.digest, certificate.payload, round_changes, certificate, out)
        return True

    def _try_prepare(self, out: _Out) -> bool:
        state = self._round_state(self._round)
        if not self.is_validator or state.proposal is None or state.sent_prepare is not None:
            return False
        digest = state.proposal.body.digest
        state.sent_prepare = digest
        self._send(Message(sign_body(self._key, Prepare(self._height, self._round, digest))), out)
        return True

    def _try_commit(self, out: _Out) -> bool:
        """q PREPAREs for the proposal we prepared in this round: prepared certificate, then COMMIT."""
        state = self._round_state(self._round)
        if not self.is_validator or state.proposal is None or state.sent_commit:
            return False
        digest = state.proposal.body.digest
        if state.sent_prepare != digest:
            return False
        matching = [p for p in state.prepares.values() if p.body.digest == digest]
        prepares = self._prepare_quorum(matching, self._height, self._round, digest)
        if prepares is None:
            return False
        self._prepared = PreparedCertificate(self._round, digest, state.proposal_payload, prepares)
        state.sent_commit = True
        seal = sign(self._key, commit_seal_digest(digest))
        self._send(Message(sign_body(self._key, Commit(self._height, self._round, digest, seal))), out)
        return True

    # --- rounds and timers ------------------------------------------------------------------------------------

    def _on_round_timeout(self, out: _Out) -> None:
        """Move to the next round, unless the timeout is capped and nobody else is at our round yet.

        Holding keeps an isolated or far-ahead validator from running away by rounds: with capped timeouts
        two validators whose rounds differ would otherwise never meet in one round. Those behind still climb
        (someone is ahead of them) and the f+1 rule pulls stragglers up, so a connected quorum converges.
        """
        round = self._round
        if self._should_hold(round):
            self.stats["round_held"] += 1
            self._round_deadline = self._now + self.config.round_timeout_ms(round)
            return
        self.stats["round_timeouts"] += 1
        self._enter_round(round + 1, out, send_round_change=True)

    def _should_hold(self, round: int) -> bool:
        if round < 1 or not self.is_validator or not self.config.is_capped(round):
            return False
        others = [r for sender, r in self._round_hints.items() if sender != self.address]
        if any(r > round for r in others):
            return False
        return sum(1 for r in others if r >= round) < self._validators.quorum - 1

    def _enter_round(self, round: int, out: _Out, *, send_round_change: bool) -> None:
        self._round = round
        self._round_deadline = self._now + self.config.round_timeout_ms(round)
        self._next_rebroadcast = self._now + self.config.rebroadcast_ms
        self._awaiting_proposal = None
        self._sent = []
        self._dirty = True
        oldest = round - self.config.max_past_rounds
        self._rounds = {r: s for r, s in self._rounds.items() if r >= oldest}
        self._round_state(round)
        if send_round_change and self.is_validator:
            certificate = self._prepared
            if certificate is None:
                body = RoundChange(self._height, round)
                self._send(Message(sign_body(self._key, body)), out)
            else:
                body = RoundChange(self._height, round, certificate.round, certificate.digest)
                self._send(
                    Message(sign_body(self._key, body), certificate.payload, (), certificate.prepares),
                    out,
                )

    # --- sending ----------------------------------------------------------------------------------------------

    def _send_proposal(
        self,
        round: int,
        digest: bytes,
        payload: bytes,
        round_changes: tuple[Signed[RoundChange], ...],
        certificate: PreparedCertificate | None,
        out: _Out,
    ) -> None:
        self._round_state(round).sent_proposal = True
        prepares = certificate.prepares if certificate is not None else ()
        signed = sign_body(self._key, Proposal(self._height, round, digest))
        self._send(Message(signed, payload, round_changes, prepares), out)

    def _send(self, message: Message, out: _Out) -> None:
        """Broadcast our own message, remember it for rebroadcast and persistence, and process it ourselves."""
        data = encode_message(message)
        self._sent.append(data)
        self._dirty = True
        out.broadcast.append(data)
        self._receive(message, out)

    def _finish(self, out: _Out) -> Outbox:
        persist = self._encode_state() if self._dirty else None
        self._dirty = False
        if out.need_sync is None:
            target = self._sync_target()
            if target is not None and target > self._need_sync_sent and target > self._height + 1:
                out.need_sync = target
                self._need_sync_sent = target
        next_timeout: int | None = None
        if self._started and self._decision is None:
            next_timeout = self._round_deadline
            if self.config.rebroadcast_ms:
                next_timeout = min(next_timeout, self._next_rebroadcast)
        return Outbox(
            broadcast=tuple(out.broadcast),
            request_proposal=out.request_proposal,
            decided=out.decided,
            persist=persist,
            need_sync=out.need_sync,
            next_timeout_ms=next_timeout,
        )

    def _sync_target(self) -> int | None:
        """The highest height a validator of our set is working on, if above ours."""
        target = max(self._height_hints.values(), default=0)
        return target if target > self._height else None

    # --- payloads ---------------------------------------------------------------------------------------------

    def _validated(self, payload: bytes) -> bytes | None:
        """validate(height, payload), memoised per height (validation may execute a whole block)."""
        key = keccak(payload)
        if key not in self._validate_cache:
            if len(self._validate_cache) >= 256:
                self._validate_cache.clear()
            self._validate_cache[key] = self._validate(self._height, payload)
        result: bytes | None = self._validate_cache[key]
        return result

    def _remember_payload(self, digest: bytes, payload: bytes) -> None:
        if digest in self._payloads:
            return
        if len(self._payloads) >= 256:
            # Bounded; the prepared certificate keeps its own copy, so what matters for safety is never lost.
            del self._payloads[next(iter(self._payloads))]
        self._payloads[digest] = payload

    # --- persistence ------------------------------------------------------------------------------------------

    def _encode_state(self) -> bytes:
        certificate: list[RlpItem] = []
        if self._prepared is not None:
            p = self._prepared
            certificate = [int_to_rlp_bytes(p.round), p.digest, p.payload, [encode_signed(s) for s in p.prepares]]
        return rlp_encode(
            [
                int_to_rlp_bytes(PERSIST_VERSION),
                int_to_rlp_bytes(self._height),
                int_to_rlp_bytes(self._round),
                certificate,
                list(self._sent),
            ]
        )

    def _decode_certificate(self, fields: Any) -> PreparedCertificate | None:
        if not fields:
            return None
        round_, digest, payload, prepares = fields
        return PreparedCertificate(
            _int(round_),
            bytes(digest),
            bytes(payload),
            tuple(decode_signed(bytes(p), Prepare) for p in prepares),
        )


def _int(item: Any) -> int:
    if not isinstance(item, bytes):
        raise ValueError("expected an integer")
    return int.from_bytes(item, "big")
