"""One validator process: storage, EVM state, transaction pool, consensus, P2P and JSON-RPC.

The consensus core is pure; this module is the shell around it: it feeds the core messages and
ticks, carries out what the core's outbox asks (persist, broadcast, build a proposal, commit a
decided block, sync), and answers JSON-RPC from the stored chain and the current state.
"""

from __future__ import annotations

import asyncio
import cProfile
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import rlp
from aiohttp import web

from chain_node import api, p2p
from chain_node.blocks import (
    Block,
    Header,
    InvalidBlock,
    block_logs_bloom,
    genesis_header,
    next_base_fee,
    receipts_root,
    transactions_root,
)
from chain_node.config import NodeConfig, load_genesis
from chain_node.consensus import Decision, Outbox, QbftConfig, QbftCore, ValidatorSet, verify_commit_seals
from chain_node.execution import (
    BlockEnv,
    BlockResult,
    CallResult,
    HistoryUnavailable,
    StateChanges,
    StateCheckpoint,
    WorldState,
    apply_block,
)
from chain_node.network import key_address
from chain_node.permissioning import member_roles
from chain_node.rpc import Dispatcher
from chain_node.storage import StorageError, Store
from chain_node.transactions import InvalidTransaction, Transaction, decode_transaction
from chain_node.trie import keccak, rlp_decode, rlp_encode
from chain_node.txpool import TxPool
from chain_node.votes import InvalidVote, Tally, Vote, check_vote, decode_vote, encode_vote

log = logging.getLogger("chain_node.node")

TICK_SECONDS = 0.02
STATUS_SECONDS = 1.0
SYNC_BATCH = 128
MAX_BLOCK_TXS = 5_000
TIMESTAMP_DRIFT = 15
MIN_BLOCK_GAP = 0.01
RECENT_TX_MEMORY = 100_000
PROPOSED_TX_MEMORY = MAX_BLOCK_TXS  # transactions decoded from proposals before their gossip arrived
DECODED_TX_MEMORY = 20_000  # decoded transactions kept for RPC reads, counted over the recent blocks kept
HEADER_MEMORY = 1024
CALL_HISTORY_BLOCKS = 128  # eth_call and eth_estimateGas run this many blocks back (state reads: any block)


@dataclass(frozen=True)
class Tentative:
    """A block executed for validation or proposal and left applied, but not final.

    Each validator executes a block once in the common case: for its proposal or its validation,
    and the decision of that block only releases the checkpoint. State reads over RPC first drop a
    tentative block (`settle`), so clients only ever see final state.
    """

    digest: bytes
    block: Block
    result: BlockResult
    checkpoint: StateCheckpoint


def encode_seals(seals: tuple[tuple[bytes, bytes], ...]) -> bytes:
    return rlp_encode([[address, signature] for address, signature in seals])


def decode_seals(data: bytes) -> tuple[tuple[bytes, bytes], ...]:
    return tuple((bytes(a), bytes(s)) for a, s in rlp.decode(data))


class Validator:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.genesis = load_genesis(config.genesis_path)
        self.chain_id = self.genesis.chain_id
        self.address = key_address(config.private_key)
        self.store = Store(config.data_dir / "chain.sqlite")
        self.state = WorldState.from_genesis(
            dict(self.genesis.alloc), chain_id=self.chain_id, gas_limit=self.genesis.gas_limit
        )
        self.genesis_header = genesis_header(
            state_root=self.state.state_root,
            timestamp=self.genesis.timestamp,
            gas_limit=self.genesis.gas_limit,
            extra=self.genesis.hash(),
            base_fee=self.genesis.base_fee,
        )
        self._head = self.genesis_header
        self._headers: dict[int, Header] = {0: self.genesis_header}  # the most recent ones, by number
        self._recent_changes: dict[int, StateChanges] = {}  # what the most recent blocks changed
        self.validators = ValidatorSet.of(self.genesis.validators)
        self.validator_history: list[tuple[int, ValidatorSet]] = [(1, self.validators)]
        self.tally = Tally()
        self.pending_votes: dict[bytes, bool] = {}  # this operator's votes, put in the blocks it proposes
        self.permitted = set(self.genesis.permitted)
        self.pool = TxPool()
        self.time_offset = 0
        self.tentative: Tentative | None = None
        self._recently_final: dict[bytes, None] = {}  # insertion-ordered: the oldest are forgotten first
        # Transactions a proposal brought before their gossip did, by hash: the gossip reuses them
        # instead of recovering the sender a second time (see `_known_transaction`).
        self._proposed_txs: dict[bytes, Transaction] = {}
        self._decoded: dict[int, tuple[Block, int]] = {}  # recent final blocks, for RPC reads
        self._decoded_txs = 0
        self.stats: dict[str, int] = {"blocks_synced": 0, "tx_rejected": 0}
        self._resume()
        self.core = QbftCore(
            config.private_key,
            self.validators,
            self.head.number + 1,
            self._validate,
            QbftConfig(base_timeout_ms=1000, max_timeout_ms=4000, rebroadcast_ms=500),
        )
        persisted = self.store.get_meta("consensus")
        if persisted is not None:
            self.core.restore(persisted)
        self.network = p2p.Network(self.address, self.genesis.hash(), config.peers, self._on_frame)
        self._proposal_request: tuple[int, int] | None = None
        self._gossip: list[bytes] = []
        self._sync_requested_at = 0.0
        self.dispatcher = Dispatcher(api.methods(self))

    # ------------------------------------------------------------------ chain state

    @property
    def head(self) -> Header:
        return self._head

    def header_at(self, number: int) -> Header | None:
        """A final header: recent ones from memory, older ones from the store."""
        header = self._headers.get(number)
        if header is not None or number > self._head.number:
            return header
        encoded = self.store.header_of(number)
        return Header.decode(encoded) if encoded is not None else None

    def number_of(self, block_hash: bytes) -> int | None:
        if block_hash == self.genesis_header.hash():
            return 0
        return self.store.number_of(block_hash)

    def now(self) -> int:
        return int(time.time()) + self.time_offset

    def _resume(self) -> None:
        """Pick up where the data folder left off: load the state, walk the stored headers.

        The state is loaded from its stored history (latest value of every account and slot), not
        rebuilt by re-executing every block, so a restart costs the size of the state. The headers
        are walked for the validator votes they carry.
        """
        if self.store.head() is None:
            self.store.put_genesis_state(self.state.changes())
            return
        if not self.store.has_state():
            raise StorageError(
                f"{self.config.data_dir} was written by an older chain_node without state history; "
                "move it away and start with an empty data folder: the node syncs from its peers"
            )
        for number, encoded in self.store.headers_from(1):
            header = Header.decode(encoded)
            if header.parent_hash != self._head.hash() or number != self._head.number + 1:
                raise StorageError(f"stored block {number} does not extend block {self._head.number}")
            self._adopt_header(header)
        accounts, storage = self.store.load_state()
        self.state = WorldState(
            chain_id=self.chain_id,
            gas_limit=self.genesis.gas_limit,
            accounts=accounts,
            storage=storage,
            state_root=self._head.state_root,
        )

    def _env(self, header: Header) -> BlockEnv:
        return BlockEnv(
            number=header.number,
            timestamp=header.timestamp,
            coinbase=header.proposer,
            gas_limit=header.gas_limit,
            base_fee=header.base_fee_per_gas,
        )

    def _execute(self, block: Block) -> BlockResult:
        return apply_block(
            self.state, self._env(block.header), block.transactions, chain_id=self.chain_id, permitted=self.is_permitted
        )

    def _adopt_header(self, header: Header) -> None:
        self._head = header
        self._headers[header.number] = header
        while len(self._headers) > HEADER_MEMORY:
            del self._headers[next(iter(self._headers))]
        changed = self.tally.count(header, self.validators)
        if changed is not None:
            self.validators = changed
            self.validator_history.append((header.number + 1, changed))
            log.info("validator set from block %d: %s", header.number + 1, [a.hex() for a in changed.addresses])

    def _adopt(self, block: Block, changes: StateChanges) -> None:
        self._adopt_header(block.header)
        self._recent_changes[block.header.number] = changes
        while len(self._recent_changes) > CALL_HISTORY_BLOCKS:
            del self._recent_changes[next(iter(self._recent_changes))]
        for account, add in list(self.pending_votes.items()):
            if self.validators.contains(account) == add:
                del self.pending_votes[account]
        for tx in block.transactions:
            self.pool.remove_below(tx.sender, tx.nonce + 1)
            self._recently_final[tx.hash] = None
            self._proposed_txs.pop(tx.hash, None)
        while len(self._recently_final) > RECENT_TX_MEMORY:
            del self._recently_final[next(iter(self._recently_final))]

    def final_block(self, number: int) -> tuple[Block, int] | None:
        """A final block and its encoded size. Recent ones are kept decoded: receipt and log queries
        hit them constantly, and decoding a block recovers every sender's signature again."""
        if number == 0:
            block = Block(self.genesis_header, ())
            return block, len(block.encode())
        cached = self._decoded.get(number)
        if cached is not None:
            return cached
        stored = self.store.block_by_number(number)
        if stored is None:
            return None
        found = (Block.decode(stored.payload, self.chain_id), len(stored.payload))
        self._remember(number, found)
        return found

    def _remember(self, number: int, found: tuple[Block, int]) -> None:
        """Keep a decoded block; the oldest go once the kept blocks hold too many transactions."""
        if number in self._decoded:
            return
        self._decoded[number] = found
        self._decoded_txs += len(found[0].transactions)
        while self._decoded_txs > DECODED_TX_MEMORY and len(self._decoded) > 1:
            oldest = next(iter(self._decoded))
            self._decoded_txs -= len(self._decoded.pop(oldest)[0].transactions)

    def validators_at(self, height: int) -> ValidatorSet:
        """The validator set that seals block `height`."""
        current = self.validator_history[0][1]
        for start, validators in self.validator_history:
            if start <= height:
                current = validators
        return current

    def run_at(self, number: int, run: Callable[..., CallResult], **args: Any) -> CallResult:
        """Run an eth_call-like function against the state of final block `number`.

        For an older block the EVM is shown, for the duration of the run, the values that every
        account and slot changed since then had at that block (from the stored history); that
        needs the change sets of the blocks in between, which are kept for the most recent ones.
        """
        self.settle()
        header = self.header_at(number)
        if header is None:
            raise HistoryUnavailable(f"block {number} is not known")
        if number == self._head.number:
            return run(self.state, env=self._env(header), **args)
        later = range(number + 1, self._head.number + 1)
        if any(n not in self._recent_changes for n in later):
            raise HistoryUnavailable(
                f"calls run against the last {CALL_HISTORY_BLOCKS} blocks' state since this node started "
                f"(block {number} is older); balances, nonces, code and storage can be read at any block"
            )
        addresses: set[bytes] = set()
        slots: set[tuple[bytes, int]] = set()
        for n in later:
            addresses.update(self._recent_changes[n].accounts)
            slots.update(self._recent_changes[n].slots)
        old_accounts = {address: self.store.account_at(address, number) for address in addresses}
        old_slots = {key: self.store.slot_at(key[0], key[1], number) for key in slots}
        with self.state.lock, self.state.evm_view_of(old_accounts, old_slots):
            return run(self.state, env=self._env(header), **args)

    def vote(self, account: bytes, add: bool) -> None:
        """Record this operator's vote; it travels in the blocks this validator proposes."""
        check_vote(Vote(account, add), self.validators)
        self.pending_votes[account] = add

    def _vote_extra(self) -> bytes:
        for account, add in self.pending_votes.items():
            vote = Vote(account, add)
            try:
                check_vote(vote, self.validators)
            except InvalidVote:
                continue
            return encode_vote(vote)
        return b""

    def is_permitted(self, sender: bytes) -> bool:
        """Permitted in genesis, or a member of the genesis' permissioning contract (`permissioning`)."""
        if sender in self.permitted:
            return True
        consortium = self.genesis.permissioning_contract
        return consortium is not None and member_roles(self.state, consortium, sender) != 0

    # ------------------------------------------------------------------ proposals and validation

    def build_block(self, height: int) -> Block:
        self.settle()
        parent = self.head
        txs = self.pool.select(parent.gas_limit, self._pool_nonces(), MAX_BLOCK_TXS)
        header = Header(
            parent_hash=parent.hash(),
            number=height,
            timestamp=max(parent.timestamp, self.now()),
            proposer=self.address,
            transactions_root=b"\x00" * 32,
            receipts_root=b"\x00" * 32,
            state_root=b"\x00" * 32,
            logs_bloom=b"\x00" * 256,
            gas_limit=parent.gas_limit,
            gas_used=0,
            base_fee_per_gas=next_base_fee(parent),
            extra=self._vote_extra(),
        )
        checkpoint = self.state.checkpoint()
        result = apply_block(
            self.state, self._env(header), tuple(txs), chain_id=self.chain_id, permitted=self.is_permitted
        )
        for tx, _error in result.rejected:
            self.pool.remove_below(tx.sender, tx.nonce + 1)
        header = replace(
            header,
            transactions_root=transactions_root(list(result.included)),
            receipts_root=receipts_root(list(result.receipts)),
            state_root=result.state_root,
            logs_bloom=block_logs_bloom(result.receipts),
            gas_used=result.gas_used,
        )
        block = Block(header, result.included)
        self.tentative = Tentative(header.hash(), block, result, checkpoint)
        return block

    def _pool_nonces(self) -> dict[bytes, int]:
        return {sender: self.state.nonce(sender) for sender in self.pool.senders()}

    def _validate(self, height: int, payload: bytes) -> bytes | None:
        """The consensus core's check of a proposed block: decodes, re-executes, compares the roots."""
        try:
            block = Block.decode(payload, self.chain_id, self._known_transaction)
            self._keep_proposed(block)
            return self._check_and_execute(block, height)
        except (InvalidBlock, InvalidTransaction, ValueError, rlp.DecodingError) as error:
            log.info("rejecting proposal at %d: %s", height, error)
            return None

    def _known_transaction(self, tx_hash: bytes) -> Transaction | None:
        """A transaction already decoded (signature checked, sender recovered) here: pooled, or
        brought by an earlier proposal. Recovering a sender is the largest cost of decoding."""
        return self.pool.get(tx_hash) or self._proposed_txs.get(tx_hash)

    def _keep_proposed(self, block: Block) -> None:
        """Remember the proposal's transactions that are not pooled here, for their gossip to reuse.

        A proposal often overtakes the gossip of its newest transactions; without this, each of
        them would be decoded twice on this validator (once in the block, once from the gossip)."""
        for tx in block.transactions:
            if self.pool.get(tx.hash) is None:
                self._proposed_txs[tx.hash] = tx
        while len(self._proposed_txs) > PROPOSED_TX_MEMORY:
            del self._proposed_txs[next(iter(self._proposed_txs))]

    def _check_and_execute(self, block: Block, height: int) -> bytes:
        header, parent = block.header, self.head
        if header.number != height or height != parent.number + 1:
            raise InvalidBlock(f"block {header.number} does not follow head {parent.number}")
        if header.parent_hash != parent.hash():
            raise InvalidBlock("parent hash does not match the head")
        if header.timestamp < parent.timestamp or header.timestamp > self.now() + TIMESTAMP_DRIFT:
            raise InvalidBlock(f"timestamp {header.timestamp} out of range")
        if header.base_fee_per_gas != next_base_fee(parent) or header.gas_limit != parent.gas_limit:
            raise InvalidBlock("base fee or gas limit differs from the rule")
        if not self.validators.contains(header.proposer):
            raise InvalidBlock("the block's proposer is not a validator")
        try:
            vote = decode_vote(header.extra)
            if vote is not None:
                check_vote(vote, self.validators)
        except InvalidVote as error:
            raise InvalidBlock(f"bad vote: {error}") from error
        digest = header.hash()
        if self.tentative is not None and self.tentative.digest == digest:
            return digest
        self.settle()
        checkpoint = self.state.checkpoint()
        result = apply_block(
            self.state, self._env(header), block.transactions, chain_id=self.chain_id, permitted=self.is_permitted
        )
        ok = (
            len(result.included) == len(block.transactions)
            and result.state_root == header.state_root
            and receipts_root(list(result.receipts)) == header.receipts_root
            and transactions_root(list(block.transactions)) == header.transactions_root
            and result.gas_used == header.gas_used
        )
        if not ok:
            self.state.revert(checkpoint)
            raise InvalidBlock("block does not execute to its header (state, receipts or gas differ)")
        self.tentative = Tentative(digest, block, result, checkpoint)
        return digest

    def settle(self) -> None:
        """Undo a tentative (not yet final) block, so that the state is the final head's again."""
        if self.tentative is not None:
            self.state.revert(self.tentative.checkpoint)
            self.tentative = None

    # ------------------------------------------------------------------ commit and sync

    def commit(self, block: Block, seals: tuple[tuple[bytes, bytes], ...]) -> None:
        """Make a final block part of the chain: execute, store atomically, adopt."""
        digest = block.header.hash()
        problem = verify_commit_seals(digest, seals, self.validators)
        if not problem:
            raise InvalidBlock("commit seals do not prove finality")
        if block.header.parent_hash != self.head.hash():
            raise InvalidBlock("final block does not extend our head")
        if self.tentative is not None and self.tentative.digest == digest:
            result = self.tentative.result
            self.state.release(self.tentative.checkpoint)
            self.tentative = None
        else:
            self.settle()
            result = self._execute(block)
            if result.state_root != block.header.state_root:
                raise InvalidBlock("final block executes to another state root")
        records = []
        logs_before = 0
        for receipt in result.receipts:
            records.append(api.receipt_record(receipt, logs_before))
            logs_before += len(receipt.logs)
        payload = block.encode()
        self.store.put_block(
            block.header.number,
            digest,
            block.header.encode(),
            payload,
            encode_seals(seals),
            records,
            [tx.hash for tx in block.transactions],
            result.changes,
        )
        self._remember(block.header.number, (block, len(payload)))
        self._adopt(block, result.changes)

    def on_decision(self, decision: Decision) -> Outbox:
        if self.tentative is not None and self.tentative.digest == decision.digest:
            block = self.tentative.block
        else:
            block = Block.decode(decision.payload, self.chain_id, self._known_transaction)
        self.commit(block, tuple(decision.seals))
        return self.core.start_height(decision.height + 1, self.validators, _ms())

    def serve_sync(self, from_height: int) -> bytes:
        items = [[s.payload, s.seals] for s in self.store.blocks_from(from_height, SYNC_BATCH)]
        return bytes(rlp.encode(items))

    def apply_synced(self, payload: bytes) -> Outbox | None:
        advanced = False
        for block_payload, seals_bytes in rlp.decode(payload):
            # Several peers answer a lagging node with the same blocks: pass over those already held
            # before decoding their transactions, and reuse the ones already decoded (pooled).
            number = Block.decode_header(bytes(block_payload)).number
            if number <= self.head.number:
                continue
            if number != self.head.number + 1:
                break
            block = Block.decode(bytes(block_payload), self.chain_id, self._known_transaction)
            self.commit(block, decode_seals(bytes(seals_bytes)))
            self.stats["blocks_synced"] += 1
            advanced = True
        if advanced:
            return self.core.start_height(self.head.number + 1, self.validators, _ms())
        return None

    # ------------------------------------------------------------------ transactions

    def submit_raw_transaction(self, raw: bytes, gossip: bool = True) -> Transaction:
        from chain_node.execution import check_transaction

        known = self._proposed_txs.pop(keccak(raw), None) if self._proposed_txs else None
        tx = known if known is not None and known.raw == raw else decode_transaction(raw, self.chain_id)
        state_nonce = self.state.nonce(tx.sender)
        check_transaction(
            self.state,
            tx,
            chain_id=self.chain_id,
            base_fee=next_base_fee(self.head),
            block_gas_limit=self.head.gas_limit,
            pending_nonce=self.pool.pending_nonce(tx.sender, state_nonce),
            permitted=self.is_permitted,
        )
        self.pool.add(tx)
        if gossip:
            self._gossip.append(raw)
        return tx

    # ------------------------------------------------------------------ the event loop

    async def _on_frame(self, peer: bytes, frame: p2p.Frame) -> None:
        if frame.kind == p2p.Kind.CONSENSUS:
            self._handle(self.core.step(frame.payload, _ms()))
        elif frame.kind == p2p.Kind.TRANSACTIONS:
            try:
                batch = rlp_decode(frame.payload)
            except rlp.exceptions.DecodingError as error:  # a peer's bug or malice: drop its connection
                raise ValueError(f"malformed transaction gossip: {error}") from error
            if not isinstance(batch, list):
                raise ValueError("a transaction gossip frame is an RLP list of raw transactions")
            for raw in batch:
                if not isinstance(raw, bytes) or keccak(raw) in self._recently_final:
                    continue  # gossip that arrived after the block holding it: no need to recover its sender
                try:
                    self.submit_raw_transaction(bytes(raw), gossip=False)
                except Exception:  # already known, stale or invalid here: the sender was told at its node
                    self.stats["tx_rejected"] += 1
        elif frame.kind == p2p.Kind.STATUS:
            peer_height = int.from_bytes(frame.payload, "big")
            if peer_height > self.head.number:
                self._request_sync(peer)
            elif peer_height < self.head.number:
                self.network.send(peer, p2p.Kind.BLOCKS, self.serve_sync(peer_height + 1))
        elif frame.kind == p2p.Kind.SYNC_REQUEST:
            self.network.send(peer, p2p.Kind.BLOCKS, self.serve_sync(int.from_bytes(frame.payload, "big")))
        elif frame.kind == p2p.Kind.BLOCKS:
            try:
                outbox = self.apply_synced(frame.payload)
            except (InvalidBlock, ValueError, rlp.DecodingError) as error:
                log.warning("synced blocks refused: %s", error)
                return
            if outbox is not None:
                self._handle(outbox)

    def _request_sync(self, peer: bytes | None = None) -> None:
        now = time.monotonic()
        if now - self._sync_requested_at < 0.5:
            return
        self._sync_requested_at = now
        payload = (self.head.number + 1).to_bytes(8, "big")
        if peer is None:
            self.network.broadcast(p2p.Kind.SYNC_REQUEST, payload)
        else:
            self.network.send(peer, p2p.Kind.SYNC_REQUEST, payload)

    def _handle(self, outbox: Outbox) -> None:
        pending = [outbox]
        while pending:
            box = pending.pop(0)
            if box.persist is not None:
                self.store.put_meta("consensus", box.persist)
            for message in box.broadcast:
                self.network.broadcast(p2p.Kind.CONSENSUS, message)
            if box.request_proposal is not None:
                self._proposal_request = box.request_proposal
            if box.need_sync is not None:
                self._request_sync()
            if box.decided is not None:
                try:
                    pending.append(self.on_decision(box.decided))
                except InvalidBlock as error:
                    log.error("cannot commit decided block %d: %s", box.decided.height, error)

    def _maybe_propose(self) -> None:
        if self._proposal_request is None:
            return
        height, round_number = self._proposal_request
        if height != self.head.number + 1:
            self._proposal_request = None
            return
        # With transactions waiting, propose at once; otherwise an empty block keeps chain time moving
        # once per block period.
        period = self.genesis.block_period_ms / 1000 if len(self.pool) == 0 else MIN_BLOCK_GAP
        if round_number == 0 and time.time() < self._head_seen_at + period:
            return
        self._proposal_request = None
        block = self.build_block(height)
        self._handle(self.core.propose(height, round_number, block.encode(), _ms()))

    async def run(self) -> None:
        app = web.Application(client_max_size=api.MAX_BODY)
        app.router.add_post("/", self._rpc)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.config.rpc_host, self.config.rpc_port)
        await site.start()
        await self.network.start(self.config.p2p_host, self.config.p2p_port)
        self._head_seen_at = time.time()
        self._handle(self.core.start(_ms()))
        last_status = 0.0
        last_head = self.head.number
        while True:
            await asyncio.sleep(TICK_SECONDS)
            if self.head.number != last_head:
                last_head = self.head.number
                self._head_seen_at = time.time()
            self._handle(self.core.tick(_ms()))
            self._maybe_propose()
            if self._gossip:
                batch, self._gossip = self._gossip, []
                self.network.broadcast(p2p.Kind.TRANSACTIONS, bytes(rlp.encode(batch)))
            if time.monotonic() - last_status > STATUS_SECONDS:
                last_status = time.monotonic()
                self.network.broadcast(p2p.Kind.STATUS, self.head.number.to_bytes(8, "big"))

    async def _rpc(self, request: web.Request) -> web.Response:
        body = await request.read()
        answer = self.dispatcher.handle(body)
        return web.Response(body=answer or b"", content_type="application/json")


def _ms() -> int:
    return int(time.monotonic() * 1000)


def run_validator(config: NodeConfig) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    validator = Validator(config)
    log.info(
        "validator %s at height %d: rpc %s:%d p2p %s:%d",
        validator.address.hex(),
        validator.head.number,
        config.rpc_host,
        config.rpc_port,
        config.p2p_host,
        config.p2p_port,
    )
    profile_to = os.environ.get("JIANZHENG_PROFILE_DIR")
    profiler = cProfile.Profile() if profile_to else None

    def _terminate(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _terminate)
    if profiler is not None:
        profiler.enable()
    try:
        asyncio.run(validator.run())
    finally:
        if profiler is not None and profile_to:
            profiler.disable()
            profiler.dump_stats(str(Path(profile_to) / f"{config.name}.prof"))
        validator.store.close()
