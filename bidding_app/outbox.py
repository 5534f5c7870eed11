"""Dependable chain writes: the durable outbox and its sender.

A business change and the chain write it needs are committed in one database transaction
(`enqueue`). The sender works in rounds over the open entries, in creation order:

1. *pending*: estimate gas (a contract refusal fails the entry with the error's name), take the
   organisation's next nonce, sign, and store the raw transaction and its hash (*signed*), committed
   BEFORE anything is broadcast; then broadcast. Entries of one organisation go out in order with
   consecutive nonces, many per round, so a burst of bids needs a few blocks, not one block per bid;
2. wait until each sent transaction is final; store tx hash and block (*confirmed*) and apply the
   result to the business rows, in one transaction.

After a crash anywhere, a *signed* entry is resumed by its tx hash: a receipt means it landed (confirm
it); no receipt and the nonce still free means it never left or is still in the pool (re-broadcast the
same bytes, which can land at most once); no receipt and the nonce used by another transaction means it
can never land (sign it again). So a crash of the app or of a node neither loses nor duplicates a write.
One sender works at a time per database (a lease row it renews; a dead sender's lease runs out).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from eth_utils import to_checksum_address
from flask import Flask
from hexbytes import HexBytes
from requests.exceptions import RequestException
from sqlalchemy.orm import Session
from web3.exceptions import TransactionNotFound, Web3RPCError

from bidding_app.chain import ChainGateway
from bidding_app.db import db
from bidding_app.keys import KeyDecryptionFailed
from bidding_app.models import Bid, OutboxEntry, OutboxLease, Section, Tender, now
from contracts import errors
from contracts.client import Chain, Deployment, sign_offline

log = logging.getLogger(__name__)

ROUND_SIZE = 200  # entries signed and sent before the sender waits for them to be final
ACTIONS = ("create_tender", "add_section", "commit_bid", "replace_bid", "withdraw_bid")
# Features that keep their own chain writes: each module has ACTIONS, encode_call, apply_confirmed and
# apply_failed (imported when first needed: they import this module to enqueue).
FEATURE_MODULES = ("bidding_app.hall_chain", "bidding_app.awards", "bidding_app.key_ceremony",
                   "bidding_app.guarantee_outbox", "bidding_app.covers", "bidding_app.amendments")


def feature_of(action: str) -> Any:
    """The feature module that owns `action`, or None for the actions of this module."""
    for name in FEATURE_MODULES:
        module = importlib.import_module(name)
        if action in module.ACTIONS:
            return module
    return None


class TransientChainError(Exception):
    """The node could not be reached or did not finish in time: try again later, in order."""


def enqueue(session: Session, organisation_id: int, action: str, key: str, payload: dict[str, Any]) -> OutboxEntry:
    """Add a chain write to the caller's transaction; it is sent only if that transaction commits."""
    if action not in ACTIONS and feature_of(action) is None:
        raise ValueError(f"unknown outbox action {action}")
    entry = OutboxEntry(
        key=key, organisation_id=organisation_id, action=action, payload=json.dumps(payload, sort_keys=True)
    )
    session.add(entry)
    return entry


def _b32(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def encode_call(deployment: Deployment, action: str, payload: dict[str, Any]) -> tuple[str, bytes]:
    """The contract address and calldata of an outbox entry."""
    feature = feature_of(action)
    if feature is not None:
        return feature.encode_call(deployment, action, payload)  # type: ignore[no-any-return]
    registry = deployment.tenders
    if action == "create_tender":
        args: list[Any] = [_b32(payload["tender_id"]), to_checksum_address(payload["tenderer"]),
                           _b32(payload["details_hash"])]
        function = "createTender"
    elif action == "add_section":
        terms = (
            int(payload["opening_time"]),
            int(payload["bid_validity_period"]),
            int(payload["bid_bond"]),
            int(payload["min_valid_bids"]),
            int(payload["witness_quorum"]),
            [to_checksum_address(w) for w in payload["witnesses"]],
            _b32(payload["opening_key"]),
        )
        args, function = [_b32(payload["tender_id"]), _b32(payload["section_id"]), terms], "addSection"
    elif action == "commit_bid":
        args = [_b32(payload[name]) for name in ("section_id", "ciphertext_hash", "cover_commitment")]
        function = "commitBid"
    elif action == "replace_bid":
        args, function = [_b32(payload["section_id"]), _b32(payload["ciphertext_hash"])], "replaceBid"
    elif action == "withdraw_bid":
        args, function = [_b32(payload["section_id"])], "withdrawBid"
    else:
        raise ValueError(f"unknown outbox action {action}")
    return registry.address, deployment.chain.calldata("TenderRegistry", function, args)


# ---------------------------------------------------------------- effects on the business rows


def _bid(session: Session, payload: dict[str, Any]) -> Bid:
    return session.get_one(Bid, int(payload["bid_id"]))


def apply_confirmed(session: Session, entry: OutboxEntry, payload: dict[str, Any]) -> None:
    feature = feature_of(entry.action)
    if feature is not None:
        feature.apply_confirmed(session, entry, payload)
    elif entry.action == "create_tender":
        tender = session.scalars(sa.select(Tender).where(Tender.chain_id == payload["tender_id"])).one()
        tender.chain_tx, tender.chain_block = entry.tx_hash, entry.block_number
    elif entry.action == "add_section":
        section = session.scalars(sa.select(Section).where(Section.chain_id == payload["section_id"])).one()
        section.chain_tx, section.chain_block = entry.tx_hash, entry.block_number
    else:
        bid = _bid(session, payload)
        bid.status = "withdrawn" if entry.action == "withdraw_bid" else "committed"
        if entry.action != "withdraw_bid":
            bid.commitment = payload["ciphertext_hash"]
        bid.chain_tx, bid.chain_block, bid.error_code = entry.tx_hash, entry.block_number, None
        bid.updated_at = now()


def apply_failed(session: Session, entry: OutboxEntry, payload: dict[str, Any]) -> None:
    feature = feature_of(entry.action)
    if feature is not None:
        feature.apply_failed(session, entry, payload)
    elif entry.action in ("commit_bid", "replace_bid", "withdraw_bid"):
        bid = _bid(session, payload)
        # A refused first commit leaves no bid; a refused replace or withdrawal leaves the committed one.
        bid.status = "failed" if entry.action == "commit_bid" else "committed"
        bid.error_code = entry.error_code
        bid.updated_at = now()


# ---------------------------------------------------------------- the sender


class OutboxSender:
    """Sends the entries of one app's outbox, one at a time in creation order. Run only one per database."""

    def __init__(self, app: Flask, gateway: ChainGateway) -> None:
        self.app = app
        self.gateway = gateway
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_seconds = int(2 * float(app.config["CHAIN_TIMEOUT"])) + 30
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # A hook the crash tests use to stop the sender between two steps.
        self.after_step: Callable[[str, OutboxEntry], None] = lambda _step, _entry: None
        # Background work that runs where the one sender runs (the opening hall's driver); True if it moved.
        self.after_round: Callable[[], bool] = lambda: False

    # -------------------------------------------------------------- entry points

    def run_once(self) -> int:
        """Work through every open entry; returns how many reached confirmed or failed."""
        chain, deployment = self.gateway.require()
        done = 0
        with self.app.app_context():
            while self._hold_lease():
                finished, more = self._round(chain, deployment)
                done += finished
                # Asked to stop (SIGTERM, the platform shutting down): the backlog waits for the next start.
                if self._stop.is_set() or (not more and not self.after_round()):
                    break
        return done

    def _hold_lease(self) -> bool:
        """Take or renew the sender lease; False while another live sender holds it."""
        moment = now()
        with db.new_session() as session:
            renewed = session.execute(
                sa.update(OutboxLease)
                .where(OutboxLease.name == "sender",
                       sa.or_(OutboxLease.holder == self.holder, OutboxLease.expires_at < moment))
                .values(holder=self.holder, expires_at=moment + self.lease_seconds)
            )
            if renewed.rowcount == 1:  # type: ignore[attr-defined]
                session.commit()
                return True
            if session.get(OutboxLease, "sender") is not None:
                return False
            session.add(OutboxLease(name="sender", holder=self.holder, expires_at=moment + self.lease_seconds))
            try:
                session.commit()
            except sa.exc.IntegrityError:
                return False
            return True

    def start(self, poll_interval: float) -> None:
        """Run in a daemon thread (a greenlet under gevent) until `stop`."""

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.run_once()
                except TransientChainError as error:
                    log.warning("outbox: chain not reachable, will retry: %s", error)
                except Exception:
                    log.exception("outbox: sender round failed")
                self.wake.wait(poll_interval)
                self.wake.clear()

        self._thread = threading.Thread(target=loop, name="outbox-sender", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current round and give the lease up, so that a sender started next (the
        platform restarted) works at once instead of waiting for the lease to run out."""
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            if self._thread.is_alive():
                return  # still inside a round: its lease must stand until it ends or runs out
        with self.app.app_context(), db.new_session() as session:
            session.execute(sa.update(OutboxLease).where(OutboxLease.name == "sender",
                                                         OutboxLease.holder == self.holder).values(expires_at=0))
            session.commit()

    # -------------------------------------------------------------- one round

    def _round(self, chain: Chain, deployment: Deployment) -> tuple[int, bool]:
        """Sign and send every open entry that can go now (pipelined, in order per organisation), then
        wait until each is final. Returns how many finished and whether open entries remain.

        The node is asked in batches (one request estimates, one asks the nonces, one per wave of
        organisations' writes sends, a few poll the receipts), and the round's signatures are committed
        together before any is broadcast: a burst of bids costs the sender a few requests and commits
        per round, not several per bid.
        """
        with db.new_session() as session:
            entries = session.scalars(
                sa.select(OutboxEntry)
                .where(OutboxEntry.status.in_(("pending", "signed")))
                .order_by(OutboxEntry.id)
                .limit(ROUND_SIZE)
            ).all()
            if not entries:
                return 0, False
            finished = 0
            try:
                calls: list[tuple[OutboxEntry, dict[str, Any], dict[str, Any]]] = []
                stuck: set[int] = set()  # organisations with an earlier write the node will not take now
                for entry in entries:
                    payload = json.loads(entry.payload)
                    try:
                        to, data = encode_call(deployment, entry.action, payload)
                        sender = self.gateway.signer_for(entry.organisation).address
                    except (LookupError, KeyDecryptionFailed, ValueError) as error:
                        self._fail(session, entry, payload, "OutboxEntryUnsendable", repr(error))
                        finished += 1
                        continue
                    call = {"from": sender, "to": to, "data": HexBytes(data), "value": 0, "chainId": chain.chain_id}
                    if (entry.status == "signed" and entry.organisation_id not in stuck
                            and not self._resume(session, chain, entry, call)):
                        stuck.add(entry.organisation_id)
                    calls.append((entry, payload, call))
                in_flight, deferred, failed = self._sign_round(session, chain, calls, stuck)
                finished += failed
                finished += self._settle_round(session, chain, in_flight)
            except (RequestException, OSError, errors.TransactionFailed, Web3RPCError) as error:
                session.rollback()
                raise TransientChainError(str(error)) from error
            # Deferred writes can go now that the ones before them are final; writes the node refused
            # wait for the next poll rather than asking it again at once.
            return finished, bool(deferred) or (len(entries) == ROUND_SIZE and finished > 0)

    def _sign_round(
        self,
        session: Session,
        chain: Chain,
        calls: list[tuple[OutboxEntry, dict[str, Any], dict[str, Any]]],
        stuck: set[int],
    ) -> tuple[list[tuple[OutboxEntry, dict[str, Any], dict[str, Any]]], set[int], int]:
        """Estimate, sign with each organisation's next nonces, commit, then broadcast the round's pending
        entries; returns the entries now in flight, the organisations whose writes were deferred until
        those are final, and how many entries failed.

        An organisation's writes land in the order they were made, or not at all: one with an earlier
        write the node would not take (`stuck`) signs nothing new this round, and its new writes go out
        one per batch request (waves), so that a refused one stops the ones after it.

        A refusal at estimation is final only when nothing is in flight before it: otherwise the write
        may depend on one still on its way (a bid on a section being added), so it waits for the next
        round, and so do the organisation's later entries (their nonces follow it).
        """
        held_back = set(stuck)
        deferred: set[int] = set()
        pending = [(entry, call) for entry, _payload, call in calls
                   if entry.status == "pending" and entry.organisation_id not in held_back]
        estimates = dict(zip((id(entry) for entry, _call in pending),
                             chain.estimate_many([call for _entry, call in pending]) if pending else [], strict=True))
        senders = sorted({call["from"] for _entry, call in pending})
        counts = chain.rpc_batch([("eth_getTransactionCount", [address, "pending"]) for address in senders])
        nonces: dict[str, int] = {}
        for address, answer in zip(senders, counts, strict=True):
            if "result" not in answer:
                raise errors.TransactionFailed(f"the node did not give {address}'s nonce: {answer.get('error')}")
            nonces[address] = int(answer["result"], 16)
        # A node counts only the unbroken run of pooled transactions: never reuse a nonce a write of
        # ours still in flight holds.
        for entry, _payload, call in calls:
            if entry.status == "signed" and entry.nonce is not None and call["from"] in nonces:
                nonces[call["from"]] = max(nonces[call["from"]], entry.nonce + 1)
        fees = chain._fees() if pending else {}
        in_flight: list[tuple[OutboxEntry, dict[str, Any], dict[str, Any]]] = []
        signed_now: list[tuple[OutboxEntry, dict[str, Any], dict[str, Any]]] = []
        busy: set[int] = set()  # organisations with a write of this round in flight
        failed = 0
        for entry, payload, call in calls:
            if entry.organisation_id in held_back:
                continue
            if entry.status == "signed":  # resumed from an earlier round or process
                in_flight.append((entry, payload, call))
                busy.add(entry.organisation_id)
                continue
            estimate = estimates[id(entry)]
            if isinstance(estimate, errors.TransactionFailed):  # the node refuses the account, say
                log.warning("outbox: entry %s not estimated: %s", entry.id, estimate)
                held_back.add(entry.organisation_id)
                continue
            if isinstance(estimate, errors.ContractRevert):
                if in_flight or signed_now:
                    held_back.add(entry.organisation_id)
                    deferred.add(entry.organisation_id)
                else:
                    self._fail(session, entry, payload, type(estimate).__name__, str(estimate))
                    failed += 1
                continue
            # An estimate made before the organisation's earlier writes of this round land did not see
            # their effects (a tender's amendment visits the sections added just before it): more room.
            if entry.organisation_id in busy:
                gas = estimate + estimate // 2 + 50_000
            else:
                gas = estimate + estimate // 5 + 10_000
            tx = {key: value for key, value in call.items() if key != "from"}
            tx |= fees | {"gas": gas, "nonce": nonces[call["from"]]}
            nonces[call["from"]] += 1
            key = bytes(self.gateway.signer_for(entry.organisation).account.key)
            entry.tx_hash, entry.raw_tx = sign_offline(tx, key)
            entry.nonce = int(tx["nonce"])
            entry.status, entry.updated_at = "signed", now()
            entry.attempts += 1
            signed_now.append((entry, payload, call))
            busy.add(entry.organisation_id)
        session.commit()  # durable before any of these transactions can exist anywhere else
        for entry, _payload, _call in signed_now:
            self.after_step("signed", entry)
        sent = self._broadcast_in_waves(chain, [entry for entry, _payload, _call in signed_now])
        in_flight += [item for item in signed_now if id(item[0]) in sent]
        return in_flight, deferred, failed

    def _broadcast_in_waves(self, chain: Chain, signed: list[OutboxEntry]) -> set[int]:
        """Send each organisation's first new write, then (in the next batch request) its second, and so
        on; an organisation whose write the node refuses sends nothing after it this round. Returns the
        ids (`id()`) of the entries sent; the rest stay signed, and the next round finds out by hash and
        nonce whether they can still land."""
        queues: dict[int, list[OutboxEntry]] = {}
        for entry in signed:
            queues.setdefault(entry.organisation_id, []).append(entry)
        sent: set[int] = set()
        refused: set[int] = set()
        for wave in range(max((len(queue) for queue in queues.values()), default=0)):
            batch = [queue[wave] for organisation, queue in queues.items()
                     if organisation not in refused and wave < len(queue)]
            if not batch:
                break
            for entry, answer in zip(batch, chain.rpc_batch([("eth_sendRawTransaction", [entry.raw_tx])
                                                             for entry in batch]), strict=True):
                if "error" in answer:
                    log.warning("outbox: node refused %s: %s", entry.tx_hash, answer["error"])
                    refused.add(entry.organisation_id)
                    continue
                sent.add(id(entry))
                self.after_step("broadcast", entry)
        return sent

    def _settle_round(
        self, session: Session, chain: Chain, in_flight: list[tuple[OutboxEntry, dict[str, Any], dict[str, Any]]]
    ) -> int:
        """Wait until every transaction in flight is final and record each outcome with its business
        effect, in one transaction. The reverted ones are replayed to name their errors first, so that no
        question to the node waits inside an open database write."""
        if not in_flight:
            return 0
        receipts = chain.final_receipts([str(entry.tx_hash) for entry, _payload, _call in in_flight])
        reverts: dict[int, errors.ContractRevert] = {}
        for entry, _payload, call in in_flight:
            receipt = receipts[str(entry.tx_hash)]
            if int(receipt["status"], 16) != 1:
                try:
                    chain.raise_revert(str(entry.tx_hash), call, int(receipt["blockNumber"], 16))
                except errors.ContractRevert as revert:
                    reverts[id(entry)] = revert
        for entry, payload, _call in in_flight:
            refusal = reverts.get(id(entry))
            if refusal is not None:
                self._fail(session, entry, payload, type(refusal).__name__, str(refusal))
                continue
            entry.status, entry.updated_at = "confirmed", now()
            entry.block_number = int(receipts[str(entry.tx_hash)]["blockNumber"], 16)
            apply_confirmed(session, entry, payload)
        session.commit()
        return len(in_flight)

    def _resume(self, session: Session, chain: Chain, entry: OutboxEntry, call: dict[str, Any]) -> bool:
        """A signed entry from an earlier round or process: landed, still sendable, or never landable.
        False while it can still land but the node will not take it now (it stays signed)."""
        assert entry.tx_hash is not None and entry.raw_tx is not None and entry.nonce is not None
        if self._has_receipt(chain, entry.tx_hash):
            return True
        if int(chain.w3.eth.get_transaction_count(call["from"], "latest")) > entry.nonce:
            if not self._has_receipt(chain, entry.tx_hash):
                # Its nonce went to another transaction: this one can never land, so sign it again.
                entry.status, entry.raw_tx, entry.tx_hash, entry.nonce = "pending", None, None, None
                session.commit()
            return True
        try:
            chain.w3.eth.send_raw_transaction(HexBytes(entry.raw_tx))
        except Web3RPCError as error:
            # "already known" (sent before the crash, waiting in the pool) is fine; anything else
            # (the organisation's account refused, say) keeps it, and its organisation, back.
            try:
                chain.w3.eth.get_transaction(HexBytes(entry.tx_hash))
            except TransactionNotFound:
                log.warning("outbox: node refuses %s again: %s", entry.tx_hash, error)
                return False
        return True

    @staticmethod
    def _has_receipt(chain: Chain, tx_hash: str) -> bool:
        try:
            chain.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
        except TransactionNotFound:
            return False
        return True

    @staticmethod
    def _fail(session: Session, entry: OutboxEntry, payload: dict[str, Any], code: str, message: str) -> None:
        entry.status, entry.updated_at = "failed", now()
        entry.error_code = code
        entry.error_message = message[:2000]
        apply_failed(session, entry, payload)
        session.commit()
