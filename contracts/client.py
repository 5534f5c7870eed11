"""Typed Python client of the Jianzheng contracts, for any Ethereum JSON-RPC endpoint.

The app and the guarantees code call these functions instead of building transactions themselves:
each write is signed locally, sent, and returned only once final, as a `TxResult` with its decoded
events; each revert is raised as the exception named after the contract error (`contracts.errors`).
On our BFT consortium chain (and on anvil) a transaction is final as soon as it is in a block; a
chain with probabilistic finality can ask for `confirmations`.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

import coincurve
import requests
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ContractLogicError, TimeExhausted, Web3RPCError
from web3.types import RPCEndpoint

from chain_node.trie import RlpItem, int_to_rlp_bytes, rlp_encode
from chain_node.trie import keccak as fast_keccak
from contracts import errors
from contracts.records import (
    Bid,
    BidConfirmation,
    BidCover,
    BidStatus,
    Claim,
    ClaimGround,
    CoverKind,
    CoverState,
    Guarantee,
    GuaranteeState,
    GuaranteeTerms,
    Member,
    Objection,
    OpeningOutcome,
    Proposal,
    ProposalKind,
    Role,
    Section,
    SectionStatus,
    SectionTerms,
    Tender,
    cover_commitment,
)
from contracts.toolchain import Artifact, abi_signature, abi_type, load_artifacts

ZERO32 = b"\x00" * 32


@dataclass(frozen=True)
class Event:
    """One decoded log of a final transaction."""

    name: str
    address: str
    args: dict[str, Any]
    log_index: int


@dataclass(frozen=True)
class TxResult:
    """A final transaction: where it landed, what it cost and what it emitted."""

    tx_hash: str
    block_number: int
    block_hash: str
    gas_used: int
    events: tuple[Event, ...]
    return_value: Any = None

    def event(self, name: str) -> Event:
        """The first event called `name`; KeyError if none was emitted."""
        for event in self.events:
            if event.name == name:
                return event
        raise KeyError(f"no {name} event in {[e.name for e in self.events]}")

    def events_named(self, name: str) -> list[Event]:
        return [event for event in self.events if event.name == name]


@dataclass(frozen=True)
class SignedTx:
    """A transaction signed locally and not yet sent (`Chain.sign_call`): its hash is already known."""

    tx_hash: str
    raw: str
    tx: dict[str, Any]


@dataclass(frozen=True)
class LoggedEvent:
    """A decoded event with where it was anchored: transaction, block number and block hash."""

    event: Event
    tx_hash: str
    block_number: int
    block_hash: str


@dataclass
class Signer:
    """A local key that signs transactions; tracks its next nonce so that writes can be pipelined.

    The nonce is tracked per chain (keyed by the chain's genesis block hash), so one signer can write
    to several chains, as the tests do on anvil and chain_node, without a stale nonce from another.
    """

    account: LocalAccount
    _next_nonce: dict[bytes, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def address(self) -> str:
        return str(self.account.address)

    @classmethod
    def from_key(cls, private_key: str | bytes) -> Signer:
        return cls(Account.from_key(private_key))


@dataclass(frozen=True)
class EventSpec:
    """How to decode one event of an ABI from a log's topics and data."""

    name: str
    topic: bytes
    indexed: tuple[tuple[str, str], ...]
    plain: tuple[tuple[str, str], ...]
    order: tuple[str, ...]

    @classmethod
    def from_abi(cls, item: dict[str, Any]) -> EventSpec:
        inputs = item["inputs"]
        return cls(
            name=item["name"],
            topic=keccak(text=abi_signature(item)),
            indexed=tuple((a["name"], abi_type(a)) for a in inputs if a["indexed"]),
            plain=tuple((a["name"], abi_type(a)) for a in inputs if not a["indexed"]),
            order=tuple(a["name"] for a in inputs),
        )

    def decode(self, topics: Sequence[bytes], data: bytes) -> dict[str, Any]:
        """The event's fields in declaration order; ValueError if the log does not fit the event."""
        values: dict[str, Any] = {}
        for (name, typ), topic in zip(self.indexed, topics[1:], strict=True):
            (values[name],) = abi_decode([typ], topic)
        plain = abi_decode([t for _, t in self.plain], data)
        values.update({name: value for (name, _), value in zip(self.plain, plain, strict=True)})
        return {name: values[name] for name in self.order}


class Chain:
    """A connection to one JSON-RPC endpoint, with the knowledge to decode our contracts' output."""

    def __init__(self, rpc_url: str, *, timeout: float = 60.0, confirmations: int = 0, poll_interval: float = 0.02):
        self.rpc_url = rpc_url
        # web3's validation asks the node for eth_chainId before every eth_call and gas estimate, which
        # doubled the round trips of each read; a node's chain id does not change, so it is asked once.
        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}, cache_allowed_requests=True,
                                         cacheable_requests={RPCEndpoint("eth_chainId")}))
        self.timeout = timeout
        self.confirmations = confirmations
        self.poll_interval = poll_interval
        self.artifacts: dict[str, Artifact] = load_artifacts()
        self._events: dict[bytes, EventSpec] = {}
        for artifact in self.artifacts.values():
            errors.register_abi(artifact.abi)
            self._register_events(artifact.abi)
        self._chain_id: int | None = None
        self._identity: bytes | None = None
        self._contracts: dict[tuple[str, str], Any] = {}
        self._encoders: dict[tuple[str, str], tuple[bytes, list[str]]] = {}
        self._http = requests.Session()  # kept-alive connections for batch requests

    def _register_events(self, abi: list[dict[str, Any]]) -> None:
        for item in abi:
            if item.get("type") == "event":
                spec = EventSpec.from_abi(item)
                self._events[spec.topic] = spec

    @property
    def identity(self) -> bytes:
        """The genesis block hash: what tells this chain from any other, including one with the same id."""
        if self._identity is None:
            self._identity = bytes(self.w3.eth.get_block(0)["hash"])
        return self._identity

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self.w3.eth.chain_id)
        return self._chain_id

    def now(self) -> int:
        """The timestamp of the latest block: the chain time the contracts' deadlines use."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def block_number(self) -> int:
        return int(self.w3.eth.block_number)

    def contract(self, name: str, address: str) -> Any:
        """The web3 contract object, made once per name and address: web3 builds and validates every
        function of the ABI when it makes one, which costs more than encoding a call."""
        key = (name, address.lower())
        found = self._contracts.get(key)
        if found is None:
            found = self._contracts[key] = self.w3.eth.contract(address=to_checksum_address(address),
                                                                abi=self.artifacts[name].abi)
        return found

    def calldata(self, name: str, function: str, args: Sequence[Any]) -> bytes:
        """The calldata of `function` of contract `name` (selector and ABI-encoded arguments): what
        web3's `encode_abi` gives, without its per-call ABI lookup and validation (the sender encodes
        every outbox entry). Overloaded functions are left to web3."""
        encoder = self._encoders.get((name, function))
        if encoder is None:
            items = [item for item in self.artifacts[name].abi
                     if item.get("type") == "function" and item.get("name") == function]
            if len(items) != 1:
                raise ValueError(f"{name} has {len(items)} functions named {function}")
            types = [abi_type(arg) for arg in items[0]["inputs"]]
            encoder = self._encoders[(name, function)] = (keccak(text=abi_signature(items[0]))[:4], types)
        selector, types = encoder
        return selector + abi_encode(types, list(args))

    # -------------------------------------------------------------- decoding

    def decode_logs(self, logs: Sequence[Any]) -> tuple[Event, ...]:
        decoded = []
        for log in logs:
            topics = [bytes(t) for t in log["topics"]]
            spec = self._events.get(topics[0]) if topics else None
            if spec is None:
                continue
            args = {name: _normalise(value) for name, value in spec.decode(topics, bytes(log["data"])).items()}
            decoded.append(Event(spec.name, to_checksum_address(log["address"]), args, int(log["logIndex"])))
        return tuple(decoded)

    # -------------------------------------------------------------- calls and transactions

    def call(self, to: str, data: bytes, sender: str | None = None, block: str | int = "latest") -> bytes:
        """eth_call; a revert is raised as its contract error."""
        tx: dict[str, Any] = {"to": to_checksum_address(to), "data": HexBytes(data)}
        if sender:
            tx["from"] = to_checksum_address(sender)
        try:
            return bytes(_read_again_if_head_moved(lambda: self.w3.eth.call(tx, block)))  # type: ignore[arg-type]
        except ContractLogicError as error:
            raise _revert_from(error) from None

    def send(self, signer: Signer, to: str | None, data: bytes, *, value: int = 0, gas: int | None = None) -> TxResult:
        """Sign and send a transaction, then wait until it is final. Reverts raise their contract error."""
        tx: dict[str, Any] = {"from": signer.address, "data": HexBytes(data), "value": value, "chainId": self.chain_id}
        if to is not None:
            tx["to"] = to_checksum_address(to)
        if gas is None:
            try:
                estimate = int(self.w3.eth.estimate_gas(tx))  # type: ignore[arg-type]
            except ContractLogicError as error:
                raise _revert_from(error) from None
            gas = estimate + estimate // 5 + 10_000
        tx["gas"] = gas
        tx.update(self._fees())
        with signer._lock:
            chain = self.identity
            for attempt in (1, 2):
                tx["nonce"] = self._next_nonce(signer, chain)
                signed = signer.account.sign_transaction(tx)
                try:
                    tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
                    break
                except Web3RPCError as error:
                    signer._next_nonce.pop(chain, None)  # re-read the nonce from the node next time
                    # Another program sent from the same key meanwhile (the platform, a script): once,
                    # take the node's nonce and sign again; any other refusal is the caller's to see.
                    if attempt == 1 and _stale_nonce(str(error)):
                        continue
                    raise errors.TransactionFailed(f"node refused the transaction: {error}") from error
            signer._next_nonce[chain] += 1
        return self.wait(tx_hash.to_0x_hex(), tx)

    def _next_nonce(self, signer: Signer, chain: bytes) -> int:
        """The signer's next nonce on this chain (read from the node the first time); caller holds its lock."""
        if chain not in signer._next_nonce:
            signer._next_nonce[chain] = int(self.w3.eth.get_transaction_count(signer.account.address, "pending"))
        return signer._next_nonce[chain]

    def wait(self, tx_hash: str, replay: dict[str, Any] | None = None) -> TxResult:
        """Wait for a transaction to be final; a mined revert is replayed to name its error."""
        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(
                HexBytes(tx_hash), timeout=self.timeout, poll_latency=self.poll_interval
            )
        except TimeExhausted as error:
            raise errors.TransactionFailed(f"{tx_hash} not final after {self.timeout} s") from error
        block_number = int(receipt["blockNumber"])
        if self.confirmations:
            deadline = time.monotonic() + self.timeout
            while self.block_number() < block_number + self.confirmations:
                if time.monotonic() > deadline:
                    raise errors.TransactionFailed(f"{tx_hash} lacks {self.confirmations} confirmations")
                time.sleep(self.poll_interval)
        if receipt["status"] != 1:
            if replay is not None and replay.get("to"):
                self.raise_revert(tx_hash, replay, block_number)
            raise errors.UnknownRevert({"tx_hash": tx_hash})
        return TxResult(
            tx_hash=tx_hash,
            block_number=block_number,
            block_hash=HexBytes(receipt["blockHash"]).to_0x_hex(),
            gas_used=int(receipt["gasUsed"]),
            events=self.decode_logs(receipt["logs"]),
        )

    def raise_revert(self, tx_hash: str, tx: dict[str, Any], block_number: int) -> NoReturn:
        """Name the error of a transaction mined as reverted, by replaying its call on the parent state;
        a node that keeps only the head's state refuses that, and the head is the next best guess."""
        for block in (block_number - 1, "latest"):
            try:
                self.call(tx["to"], bytes(HexBytes(tx["data"])), tx["from"], block)
            except Web3RPCError:
                continue
            break
        raise errors.UnknownRevert({"tx_hash": tx_hash})

    def estimate_many(
        self, calls: Sequence[dict[str, Any]]
    ) -> list[int | errors.ContractRevert | errors.TransactionFailed]:
        """eth_estimateGas of many calls in one batch request: each call's gas, the contract error that
        refuses it, or `TransactionFailed` when the node will not estimate it for another reason (the
        account refused, say). Such an answer is asked again on its own first: a pruned node's head
        may just have moved under the question."""
        answers = self.rpc_batch([
            ("eth_estimateGas", [{"from": call["from"], "to": call["to"], "data": HexBytes(call["data"]).to_0x_hex(),
                                  "value": hex(int(call.get("value", 0)))}])
            for call in calls
        ])
        results: list[int | errors.ContractRevert | errors.TransactionFailed] = []
        for call, answer in zip(calls, answers, strict=True):
            if "result" in answer:
                results.append(int(answer["result"], 16))
                continue
            revert = _revert_in(answer.get("error"))
            if revert is not None:
                results.append(revert)
                continue
            try:
                results.append(int(_read_again_if_head_moved(functools.partial(self.w3.eth.estimate_gas, dict(call)))))  # type: ignore[arg-type]
            except ContractLogicError as error:
                results.append(_revert_from(error))
            except Web3RPCError as error:
                results.append(errors.TransactionFailed(f"the node will not estimate the call: {error}"))
        return results

    def _fees(self) -> dict[str, int]:
        latest = self.w3.eth.get_block("latest")
        base_fee = latest.get("baseFeePerGas")
        if base_fee is None:
            return {"gasPrice": int(self.w3.eth.gas_price)}
        priority = int(self.w3.eth.max_priority_fee)
        return {"maxFeePerGas": 2 * int(base_fee) + priority, "maxPriorityFeePerGas": priority}

    # -------------------------------------------------------------- batches (many at once)

    def rpc_batch(self, calls: Sequence[tuple[str, list[Any]]], chunk: int = 500) -> list[dict[str, Any]]:
        """Send JSON-RPC calls as batch requests; the raw answers (`result` or `error`) in call order.

        One HTTP round trip per `chunk` calls instead of one per call: what makes bulk lookups and
        pipelined sends fast. A transport failure raises `errors.TransactionFailed`.
        """
        answers: list[dict[str, Any]] = []
        for offset in range(0, len(calls), chunk):
            part = calls[offset : offset + chunk]
            body = json.dumps(
                [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(part)]
            ).encode()
            try:
                response = self._http.post(self.rpc_url, data=body, timeout=self.timeout,
                                           headers={"Content-Type": "application/json"})
                raw = json.loads(response.content)
            except (OSError, ValueError, requests.RequestException) as error:
                raise errors.TransactionFailed(f"batch request to {self.rpc_url} failed: {error}") from error
            if not isinstance(raw, list):
                raise errors.TransactionFailed(f"batch request refused: {raw}")
            by_id = {answer.get("id"): answer for answer in raw if isinstance(answer, dict)}
            answers.extend(by_id.get(i, {"error": {"message": "no answer"}}) for i in range(len(part)))
        return answers

    def sign_call(
        self, signer: Signer, to: str, data: bytes, *, gas: int, fees: dict[str, int] | None = None
    ) -> SignedTx:
        """Sign a contract call locally with the signer's next nonce, without sending it.

        Its hash is known before it is sent, so a caller can record where a fact will be anchored
        and then send many such transactions at once with `send_many`.
        """
        tx: dict[str, Any] = {
            "from": signer.address,
            "to": to_checksum_address(to),
            "data": HexBytes(data),
            "value": 0,
            "gas": gas,
            "chainId": self.chain_id,
        }
        tx.update(fees if fees is not None else self._fees())
        with signer._lock:
            chain = self.identity
            tx["nonce"] = self._next_nonce(signer, chain)
            signed = signer.account.sign_transaction(tx)
            signer._next_nonce[chain] += 1
        return SignedTx(HexBytes(signed.hash).to_0x_hex(), HexBytes(signed.raw_transaction).to_0x_hex(), tx)

    def send_many(self, signed: Sequence[SignedTx]) -> list[TxResult]:
        """Send pre-signed transactions in batches and wait until all are final, polling in batches.

        Returns their results in order. A send the node refuses raises `TransactionFailed`; a mined
        revert raises its contract error (replayed on the parent block, as `send` does).
        """
        self.send_raw_many(signed)
        return self.wait_many(signed)

    def send_raw_many(self, signed: Sequence[SignedTx]) -> None:
        """Send pre-signed transactions in batches, without waiting; `TransactionFailed` if any is refused.

        A node accepts a sender's transactions only a few nonces ahead of what it has seen: send each
        sender's transactions in nonce order, to one node.
        """
        answers = self.rpc_batch([("eth_sendRawTransaction", [tx.raw]) for tx in signed])
        refused = [(tx, a["error"]) for tx, a in zip(signed, answers, strict=True) if "error" in a]
        if refused:
            raise errors.TransactionFailed(f"node refused {len(refused)} transaction(s), first: {refused[0][1]}")

    def final_receipts(self, tx_hashes: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The raw receipts of sent transactions, once every one is final (`TransactionFailed` at the timeout)."""
        receipts: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + self.timeout
        while len(receipts) < len(tx_hashes):
            waiting = [tx_hash for tx_hash in tx_hashes if tx_hash not in receipts]
            # Probe with the last transaction until it is final: it is mined after the others of its
            # sender, so a whole batch is not polled once per interval while it waits for a block.
            probe = self.rpc_batch([("eth_getTransactionReceipt", [waiting[-1]])])[0]
            if not probe.get("result") and len(waiting) > 1:
                waiting = []
            for tx_hash, answer in zip(
                waiting, self.rpc_batch([("eth_getTransactionReceipt", [h]) for h in waiting]), strict=True
            ):
                if answer.get("result"):
                    receipts[tx_hash] = answer["result"]
            if len(receipts) < len(tx_hashes):
                if time.monotonic() > deadline:
                    raise errors.TransactionFailed(f"{len(tx_hashes) - len(receipts)} transaction(s) not final")
                time.sleep(self.poll_interval)
        if self.confirmations and receipts:  # as `wait`: that many blocks on top of the last one
            highest = max(int(receipt["blockNumber"], 16) for receipt in receipts.values())
            while self.block_number() < highest + self.confirmations:
                if time.monotonic() > deadline:
                    raise errors.TransactionFailed(f"transactions lack {self.confirmations} confirmations")
                time.sleep(self.poll_interval)
        return receipts

    def wait_many(self, signed: Sequence[SignedTx]) -> list[TxResult]:
        """Wait until sent transactions are all final; their results in order (reverts raised, named)."""
        receipts = self.final_receipts([tx.tx_hash for tx in signed])
        results = []
        for tx in signed:
            receipt = receipts[tx.tx_hash]
            if int(receipt["status"], 16) != 1:
                self.raise_revert(tx.tx_hash, tx.tx, int(receipt["blockNumber"], 16))
            logs = [
                {
                    "topics": [HexBytes(t) for t in log["topics"]],
                    "data": HexBytes(log["data"]),
                    "address": log["address"],
                    "logIndex": int(log["logIndex"], 16),
                }
                for log in receipt["logs"]
            ]
            results.append(
                TxResult(
                    tx_hash=tx.tx_hash,
                    block_number=int(receipt["blockNumber"], 16),
                    block_hash=str(receipt["blockHash"]),
                    gas_used=int(receipt["gasUsed"], 16),
                    events=self.decode_logs(logs),
                )
            )
        return results

    def logs(
        self,
        address: str,
        topics: Sequence[Any],
        from_block: int = 0,
        to_block: int | None = None,
        window: int = 10_000,
    ) -> list[LoggedEvent]:
        """Decoded logs of one contract matching `topics`, in windows a node's range limit accepts."""
        last = self.block_number() if to_block is None else to_block
        found: list[LoggedEvent] = []
        for start in range(from_block, last + 1, window):
            raw = self.w3.eth.get_logs(
                {
                    "address": to_checksum_address(address),
                    "fromBlock": start,
                    "toBlock": min(start + window - 1, last),
                    "topics": list(topics),
                }
            )
            for log in raw:
                for event in self.decode_logs([log]):
                    found.append(
                        LoggedEvent(
                            event,
                            HexBytes(log["transactionHash"]).to_0x_hex(),
                            int(log["blockNumber"]),
                            HexBytes(log["blockHash"]).to_0x_hex(),
                        )
                    )
        return found

    def deploy(self, signer: Signer, name: str, *args: Any) -> tuple[str, TxResult]:
        """Deploy the compiled contract `name` with constructor `args`; returns its address."""
        artifact = self.artifacts[name]
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        data = HexBytes(factory.constructor(*args).data_in_transaction)
        result = self.send(signer, None, bytes(data))
        receipt = self.w3.eth.get_transaction_receipt(HexBytes(result.tx_hash))
        address = receipt["contractAddress"]
        if address is None:
            raise errors.TransactionFailed(f"{result.tx_hash} created no contract")
        return to_checksum_address(address), result


_EIP1559_FIELDS = ("chainId", "nonce", "maxPriorityFeePerGas", "maxFeePerGas", "gas", "to", "value", "data")
_LEGACY_FIELDS = ("nonce", "gasPrice", "gas", "to", "value", "data")


def sign_offline(tx: dict[str, Any], private_key: bytes) -> tuple[str, str]:
    """(hash, raw) of a transaction signed without a node: the bytes `eth_account` gives, built directly
    (RLP, one keccak, libsecp256k1's RFC 6979 recoverable signature), about ten times cheaper, for
    code that signs thousands (bulk issuing, load generators).

    EIP-1559 transactions (type 2, empty access list) and EIP-155 legacy ones; anything else is
    left to `eth_account`.
    """
    fields = {name: value for name, value in tx.items() if name != "from"}
    key = _private_key(private_key)
    if set(fields) == {*_EIP1559_FIELDS}:
        body: list[RlpItem] = [_rlp_field(fields[name]) for name in _EIP1559_FIELDS] + [[]]
        signature = key.sign_recoverable(fast_keccak(b"\x02" + rlp_encode(body)), hasher=None)
        raw = b"\x02" + rlp_encode([*body, *_signature_fields(signature, signature[64])])
    elif set(fields) == {*_LEGACY_FIELDS, "chainId"}:
        body = [_rlp_field(fields[name]) for name in _LEGACY_FIELDS]
        chain_id = int(fields["chainId"])
        unsigned = rlp_encode([*body, int_to_rlp_bytes(chain_id), b"", b""])
        signature = key.sign_recoverable(fast_keccak(unsigned), hasher=None)
        raw = rlp_encode([*body, *_signature_fields(signature, signature[64] + 35 + 2 * chain_id)])
    else:
        signed = Account.sign_transaction(fields, private_key)
        return "0x" + bytes(signed.hash).hex(), "0x" + bytes(signed.raw_transaction).hex()
    return "0x" + fast_keccak(raw).hex(), "0x" + raw.hex()


def _rlp_field(value: Any) -> bytes:
    """A transaction field as RLP wants it: integers minimal big-endian, addresses and data as bytes."""
    if isinstance(value, int):
        return int_to_rlp_bytes(value)
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return bytes(value)


def _signature_fields(signature: bytes, v: int) -> list[RlpItem]:
    """v, r and s as RLP wants them (r and s without leading zero bytes)."""
    return [int_to_rlp_bytes(v), signature[:32].lstrip(b"\x00"), signature[32:64].lstrip(b"\x00")]


@functools.lru_cache(maxsize=16)
def _private_key(private_key: bytes) -> coincurve.PrivateKey:
    return coincurve.PrivateKey(private_key)


def _stale_nonce(message: str) -> bool:
    """Whether a node refused a transaction for a nonce already used (anvil's and chain_node's words)."""
    text = message.lower()
    return "nonce too low" in text or ("nonce" in text and "is below the next nonce" in text)


def _revert_in(error: Any) -> errors.ContractRevert | None:
    """The contract error in a raw JSON-RPC error answer (code 3, or "execution reverted" with its
    data), or None when the node refused for another reason."""
    if not isinstance(error, dict):
        return None
    message = str(error.get("message", ""))
    if error.get("code") != 3 and "revert" not in message.lower():
        return None
    data = error.get("data")
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x") and len(data) > 2:
        return errors.decode_revert(bytes.fromhex(data[2:]))
    return errors.UnknownRevert({"message": message})


def _revert_from(error: ContractLogicError) -> errors.ContractRevert:
    data = error.data
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        return errors.decode_revert(bytes.fromhex(data[2:]))
    return errors.UnknownRevert({"message": str(error.message)})


T = TypeVar("T")


def _read_again_if_head_moved(read: Callable[[], T]) -> T:
    """A read of the latest state, asked again when the node's head moved under it: anvil with
    --prune-history keeps the head's state only and refuses the block that has just stopped being the
    head (`BlockOutOfRangeError`), which a read racing another client's transaction meets; the next
    head answers (as the outbox's gas estimate does)."""
    for attempt in range(3):
        try:
            return read()
        except Web3RPCError as error:
            if "BlockOutOfRange" not in str(error) or attempt == 2:
                raise
    raise AssertionError("unreachable")


def _normalise(value: Any) -> Any:
    """Addresses checksummed, tuples of values kept as tuples, so events compare predictably."""
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return to_checksum_address(value)
    if isinstance(value, (list, tuple)):
        return tuple(_normalise(v) for v in value)
    return value


class _Bound:
    """A deployed contract on a chain: the base of the typed clients."""

    contract_name = ""

    def __init__(self, chain: Chain, address: str):
        self.chain = chain
        self.address = to_checksum_address(address)
        self._contract = chain.contract(self.contract_name, self.address)

    def _transact(self, signer: Signer, function: str, *args: Any) -> TxResult:
        data = HexBytes(self._contract.encode_abi(function, args=list(args)))
        return self.chain.send(signer, self.address, bytes(data))

    def _view(self, function: str, *args: Any) -> Any:
        try:
            return _read_again_if_head_moved(lambda: self._contract.functions[function](*args).call())
        except ContractLogicError as error:
            raise _revert_from(error) from None


class _Registry(_Bound):
    """A registry that takes its members and roles from a consortium."""

    def consortium_address(self) -> str:
        return str(self._view("consortium"))


class ConsortiumClient(_Bound):
    """The consortium's members and roles; every change needs a threshold of admin approvals."""

    contract_name = "Consortium"

    def propose_add_member(self, signer: Signer, account: str, org_id: bytes, roles: Role) -> TxResult:
        return self._with_proposal_id(self._transact(signer, "proposeAddMember", account, org_id, int(roles)))

    def propose_remove_member(self, signer: Signer, account: str) -> TxResult:
        return self._with_proposal_id(self._transact(signer, "proposeRemoveMember", account))

    def propose_set_roles(self, signer: Signer, account: str, roles: Role) -> TxResult:
        return self._with_proposal_id(self._transact(signer, "proposeSetRoles", account, int(roles)))

    def propose_set_threshold(self, signer: Signer, threshold: int) -> TxResult:
        return self._with_proposal_id(self._transact(signer, "proposeSetThreshold", threshold))

    def approve(self, signer: Signer, proposal_id: int) -> TxResult:
        return self._transact(signer, "approve", proposal_id)

    def has_role(self, account: str, role: Role) -> bool:
        return bool(self._view("hasRole", account, int(role)))

    def member_of(self, account: str) -> Member:
        org, roles = self._view("memberOf", account)
        return Member(to_checksum_address(account), bytes(org), Role(roles))

    def threshold(self) -> int:
        return int(self._view("threshold"))

    def admin_count(self) -> int:
        return int(self._view("adminCount"))

    def member_count(self) -> int:
        return int(self._view("memberCount"))

    def proposal(self, proposal_id: int) -> Proposal:
        kind, executed, approvals, account, org, value = self._view("proposal", proposal_id)
        return Proposal(proposal_id, ProposalKind(kind), executed, approvals, account, bytes(org), value)

    def has_approved(self, proposal_id: int, admin: str) -> bool:
        return bool(self._view("hasApproved", proposal_id, admin))

    def _with_proposal_id(self, result: TxResult) -> TxResult:
        proposal_id = result.event("ProposalCreated").args["proposalId"]
        return TxResult(**{**result.__dict__, "return_value": proposal_id})

    def enact(self, admins: Sequence[Signer], propose: Any) -> TxResult:
        """Propose with the first admin and approve with the others until the threshold is met.

        `propose` is a function of the proposing signer returning the proposal's `TxResult`.
        Returns the result of the transaction that carried the change out.
        """
        result: TxResult = propose(admins[0])
        proposal_id = int(result.return_value)
        for admin in admins[1:]:
            if any(e.name == "ProposalExecuted" for e in result.events):
                break
            result = self.approve(admin, proposal_id)
        return result


class TenderRegistryClient(_Registry):
    """Tenders, sections, sealed bid commitments and openings."""

    contract_name = "TenderRegistry"

    def create_tender(self, signer: Signer, tender_id: bytes, tenderer: str, details_hash: bytes) -> TxResult:
        return self._transact(signer, "createTender", tender_id, tenderer, details_hash)

    def add_section(self, signer: Signer, tender_id: bytes, section_id: bytes, terms: SectionTerms) -> TxResult:
        encoded = (
            terms.opening_time,
            terms.bid_validity_period,
            terms.bid_bond,
            terms.min_valid_bids,
            terms.witness_quorum,
            [to_checksum_address(w) for w in terms.witnesses],
            terms.opening_key,
        )
        return self._transact(signer, "addSection", tender_id, section_id, encoded)

    def set_opening_key(self, signer: Signer, section_id: bytes, opening_key: bytes) -> TxResult:
        return self._transact(signer, "setOpeningKey", section_id, opening_key)

    def amend_tender(self, signer: Signer, tender_id: bytes, details_hash: bytes) -> TxResult:
        """Anchor amended tender documents (as the agency, before the earliest opening time)."""
        return self._transact(signer, "amendTender", tender_id, details_hash)

    def confirm_bid(self, signer: Signer, section_id: bytes, version: int) -> TxResult:
        """Confirm, as the bidder, that one's live bid stands for the current `version` of the documents."""
        return self._transact(signer, "confirmBid", section_id, version)

    def bid_confirmation(self, section_id: bytes, bidder: str) -> BidConfirmation:
        confirmed, current = self._view("bidConfirmationOf", section_id, bidder)
        return BidConfirmation(int(confirmed), int(current))

    def bid_confirmations(self, section_id: bytes, bidders: Sequence[str]) -> dict[str, BidConfirmation]:
        """`bid_confirmation` of many bidders (keyed as given) in batch requests: an opening of an amended
        tender reads every live bid's, and on anvil 1,000 reads took 6.5 s one by one, about 1 s batched."""
        calls = [
            ("eth_call", [{"to": self.address, "data": HexBytes(self._contract.encode_abi(
                "bidConfirmationOf", args=[section_id, to_checksum_address(bidder)])).to_0x_hex()}, "latest"])
            for bidder in bidders
        ]
        found: dict[str, BidConfirmation] = {}
        for bidder, answer in zip(bidders, self.chain.rpc_batch(calls), strict=True):
            if "result" not in answer:
                revert = _revert_in(answer.get("error"))
                if revert is not None:
                    raise revert
                raise errors.TransactionFailed(f"bidConfirmationOf({bidder}) failed: {answer.get('error')}")
            confirmed, current = abi_decode(["uint32", "uint32"], HexBytes(answer["result"]))
            found[bidder] = BidConfirmation(int(confirmed), int(current))
        return found

    def sections_of(self, tender_id: bytes) -> tuple[bytes, ...]:
        return tuple(bytes(s) for s in self._view("sectionsOf", tender_id))

    def commit_bid(self, signer: Signer, section_id: bytes, ciphertext_hash: bytes, cover: BidCover) -> TxResult:
        """Commit a sealed bid as `signer`, its cover blinded (keep `cover`: the reveal needs it)."""
        commitment = cover.commitment(section_id, signer.address)
        return self.commit_bid_blinded(signer, section_id, ciphertext_hash, commitment)

    def commit_bid_blinded(
        self, signer: Signer, section_id: bytes, ciphertext_hash: bytes, commitment: bytes
    ) -> TxResult:
        """Commit a sealed bid with an already computed cover commitment (see `cover_commitment`)."""
        return self._transact(signer, "commitBid", section_id, ciphertext_hash, commitment)

    def reveal_cover(self, signer: Signer, section_id: bytes, bidder: str, cover: BidCover) -> TxResult:
        """Reveal a bid's cover from the opening time on (as the agency or the bidder); binds a guarantee."""
        return self._transact(
            signer, "revealCover", section_id, to_checksum_address(bidder), int(cover.kind), cover.cover, cover.salt
        )

    def cover_of(self, section_id: bytes, bidder: str) -> CoverState:
        commitment, revealed, kind, cover = self._view("coverOf", section_id, bidder)
        return CoverState(bytes(commitment), bool(revealed), CoverKind(kind), bytes(cover))

    def replace_bid(self, signer: Signer, section_id: bytes, ciphertext_hash: bytes) -> TxResult:
        return self._transact(signer, "replaceBid", section_id, ciphertext_hash)

    def withdraw_bid(self, signer: Signer, section_id: bytes) -> TxResult:
        return self._transact(signer, "withdrawBid", section_id)

    def record_bid_opened(self, signer: Signer, section_id: bytes, bidder: str, announced_hash: bytes) -> TxResult:
        return self._transact(signer, "recordBidOpened", section_id, bidder, announced_hash)

    def record_decryption_failure(
        self, signer: Signer, section_id: bytes, bidder: str, bidder_caused: bool, evidence_hash: bytes
    ) -> TxResult:
        return self._transact(signer, "recordDecryptionFailure", section_id, bidder, bidder_caused, evidence_hash)

    def record_withdrawal_after_deadline(
        self, signer: Signer, section_id: bytes, bidder: str, evidence_hash: bytes
    ) -> TxResult:
        return self._transact(signer, "recordWithdrawalAfterDeadline", section_id, bidder, evidence_hash)

    def close_opening(self, signer: Signer, section_id: bytes, record_hash: bytes) -> TxResult:
        return self._transact(signer, "closeOpening", section_id, record_hash)

    def attest_opening(self, signer: Signer, section_id: bytes, record_hash: bytes) -> TxResult:
        return self._transact(signer, "attestOpening", section_id, record_hash)

    def raise_objection(self, signer: Signer, section_id: bytes, objection_hash: bytes) -> TxResult:
        result = self._transact(signer, "raiseObjection", section_id, objection_hash)
        return TxResult(**{**result.__dict__, "return_value": result.event("ObjectionRaised").args["objectionId"]})

    def answer_objection(self, signer: Signer, section_id: bytes, objection_id: int, answer_hash: bytes) -> TxResult:
        return self._transact(signer, "answerObjection", section_id, objection_id, answer_hash)

    def award(self, signer: Signer, section_id: bytes, winner: str, award_hash: bytes) -> TxResult:
        return self._transact(signer, "award", section_id, winner, award_hash)

    def record_contract_signed(self, signer: Signer, section_id: bytes, contract_hash: bytes) -> TxResult:
        return self._transact(signer, "recordContractSigned", section_id, contract_hash)

    def record_refusal_to_sign(self, signer: Signer, section_id: bytes, evidence_hash: bytes) -> TxResult:
        return self._transact(signer, "recordRefusalToSign", section_id, evidence_hash)

    def tender(self, tender_id: bytes) -> Tender:
        agency, tenderer, count, version, details = self._view("tenderOf", tender_id)
        return Tender(agency, tenderer, count, version, bytes(details))

    def section(self, section_id: bytes) -> Section:
        raw = self._view("sectionOf", section_id)
        values = list(raw)
        values[2] = SectionStatus(values[2])
        values[19] = bytes(values[19])
        values[20] = bytes(values[20])
        return Section(*values)

    def bid(self, section_id: bytes, bidder: str) -> Bid:
        status, ciphertext_hash, kind, cover, announced = self._view("bidOf", section_id, bidder)
        return Bid(BidStatus(status), bytes(ciphertext_hash), CoverKind(kind), bytes(cover), bytes(announced))

    def witnesses(self, section_id: bytes) -> tuple[str, ...]:
        return tuple(self._view("witnessesOf", section_id))

    def has_attested(self, section_id: bytes, witness: str) -> bool:
        return bool(self._view("hasAttested", section_id, witness))

    def is_witnessed(self, section_id: bytes) -> bool:
        return bool(self._view("isWitnessed", section_id))

    def opening_key(self, section_id: bytes) -> bytes:
        return bytes(self._view("openingKeyOf", section_id))

    def objection(self, section_id: bytes, objection_id: int) -> Objection:
        bidder, objection_hash, answer_hash = self._view("objectionOf", section_id, objection_id)
        return Objection(bidder, bytes(objection_hash), bytes(answer_hash))

    def bid_cover(self, section_id: bytes, bidder: str) -> tuple[CoverKind, bytes]:
        """How a bid covers its bond, once revealed (a zero cover until then, or for no bid)."""
        kind, cover = self._view("bidCover", section_id, bidder)
        return CoverKind(kind), bytes(cover)

    def deadline_of(self, section_id: bytes) -> tuple[int, str]:
        """The section's opening time (= bid deadline) and tenderer; zeros for an unknown section."""
        opening_time, tenderer = self._view("deadlineOf", section_id)
        return int(opening_time), str(tenderer)

    def guarantee_registry_address(self) -> str:
        return str(self._view("guaranteeRegistry"))

    def claim_ground_holds(self, section_id: bytes, bidder: str, ground: ClaimGround) -> bool:
        return bool(self._view("claimGroundHolds", section_id, bidder, int(ground)))

    def bond_releasable(self, section_id: bytes, bidder: str) -> bool:
        return bool(self._view("bondReleasable", section_id, bidder))

    def record_outcomes(self, signer: Signer, section_id: bytes, outcomes: Sequence[OpeningOutcome]) -> TxResult:
        """Record many bids' decryption outcomes in one transaction (keep it to a few hundred per call)."""
        encoded = [(to_checksum_address(o.bidder), int(o.status), o.hash) for o in outcomes]
        return self._transact(signer, "recordOutcomes", section_id, encoded)

    def publish_decryption_shares(self, signer: Signer, section_id: bytes, shares_hash: bytes) -> TxResult:
        return self._transact(signer, "publishDecryptionShares", section_id, shares_hash)

    def report_early_access(self, signer: Signer, section_id: bytes, evidence_hash: bytes) -> TxResult:
        return self._transact(signer, "reportEarlyAccess", section_id, evidence_hash)

    def decryption_shares_hash(self, section_id: bytes, witness: str) -> bytes:
        """The hash of the decryption shares `witness` anchored for the section (zeros if none)."""
        return bytes(self._view("decryptionSharesOf", section_id, witness))

    def early_access_attempts(self, section_id: bytes) -> int:
        return int(self._view("earlyAccessAttemptsOf", section_id))

    def live_commitments(self, section_id: bytes, from_block: int = 0) -> dict[str, bytes]:
        """Every live bid's commitment by bidder (checksummed), folded from the section's bid events.

        One raw log query, read by hand (the bidder is the second topic and the commitment the first
        data word of BidCommitted and BidReplaced): an opening of a thousand bids needs no more.
        """
        names = ("BidCommitted", "BidReplaced", "BidWithdrawn")
        topics = {
            "0x" + keccak(text=abi_signature(item)).hex(): item["name"]
            for item in self._contract.abi
            if item.get("type") == "event" and item["name"] in names
        }
        query = {
            "address": self.address,
            "fromBlock": hex(from_block),
            "toBlock": "latest",
            "topics": [list(topics), "0x" + section_id.hex()],
        }
        response = self.chain.w3.provider.make_request("eth_getLogs", [query])  # type: ignore[arg-type]
        if "error" in response:
            raise errors.TransactionFailed(f"eth_getLogs failed: {response['error']}")
        logs = sorted(response["result"], key=lambda log: (int(log["blockNumber"], 16), int(log["logIndex"], 16)))
        live: dict[str, bytes] = {}
        for log in logs:
            bidder = to_checksum_address("0x" + log["topics"][2][-40:])
            if topics[log["topics"][0]] == "BidWithdrawn":
                live.pop(bidder, None)
            else:
                live[bidder] = bytes.fromhex(log["data"][2:66])
        return live


def _terms_tuple(terms: GuaranteeTerms) -> tuple[Any, ...]:
    """`GuaranteeTerms` as the ABI tuple `issue` takes."""
    return (
        terms.section_ref,
        terms.sealed_ref,
        to_checksum_address(terms.applicant),
        to_checksum_address(terms.beneficiary),
        terms.amount,
        terms.valid_until,
        terms.letter_hash,
    )


class GuaranteeRegistryClient(_Registry):
    """Electronic bid guarantees from issue to claim, payout, release, cancellation or expiry."""

    contract_name = "GuaranteeRegistry"

    def issue(self, signer: Signer, guarantee_id: bytes, terms: GuaranteeTerms) -> TxResult:
        return self._transact(signer, "issue", guarantee_id, _terms_tuple(terms))

    def cancel(self, signer: Signer, guarantee_id: bytes) -> TxResult:
        return self._transact(signer, "cancel", guarantee_id)

    def sign_issue(
        self,
        signer: Signer,
        guarantee_id: bytes,
        terms: GuaranteeTerms,
        *,
        gas: int = 200_000,
        fees: dict[str, int] | None = None,
    ) -> SignedTx:
        """An `issue` transaction signed but not sent, for pipelined issuing with `Chain.send_many`.

        Without gas estimation a revert shows only once mined; `send_many` then names the error.
        """
        data = bytes(HexBytes(self._contract.encode_abi("issue", args=[guarantee_id, _terms_tuple(terms)])))
        return self.chain.sign_call(signer, self.address, data, gas=gas, fees=fees)

    def release(self, signer: Signer, guarantee_id: bytes, section_id: bytes = ZERO32) -> TxResult:
        return self._transact(signer, "release", guarantee_id, section_id)

    def claim(
        self, signer: Signer, guarantee_id: bytes, section_id: bytes, ground: ClaimGround, evidence_hash: bytes
    ) -> TxResult:
        return self._transact(signer, "claim", guarantee_id, section_id, int(ground), evidence_hash)

    def record_payout(self, signer: Signer, guarantee_id: bytes, paid_amount: int, payment_ref: bytes) -> TxResult:
        return self._transact(signer, "recordPayout", guarantee_id, paid_amount, payment_ref)

    def expire(self, signer: Signer, guarantee_id: bytes) -> TxResult:
        return self._transact(signer, "expire", guarantee_id)

    def guarantee(self, guarantee_id: bytes) -> Guarantee:
        """The stored guarantee, with the letter hash and anchoring transaction from its issue event."""
        issuer, valid_until, state, sealed, bound, applicant, amount, beneficiary, issued_at, ref = self._view(
            "guaranteeOf", guarantee_id
        )
        issued = self.issued_event(guarantee_id) if state != GuaranteeState.NONE else None
        letter_hash, tx_hash, block = ZERO32, "", 0
        if issued is not None:
            event, tx_hash, block = issued
            letter_hash = bytes(event.args["letterHash"])
        return Guarantee(
            issuer=issuer,
            valid_until=valid_until,
            state=GuaranteeState(state),
            sealed_ref=sealed,
            bound=bound,
            applicant=applicant,
            amount=amount,
            beneficiary=beneficiary,
            issued_at=int(issued_at),
            section_ref=bytes(ref),
            letter_hash=letter_hash,
            issued_tx_hash=tx_hash,
            issued_block=block,
        )

    def issued_event(self, guarantee_id: bytes, from_block: int = 0) -> tuple[Event, str, int] | None:
        """The GuaranteeIssued event of a guarantee, with its transaction hash and block number."""
        topic = keccak(text="GuaranteeIssued(bytes32,address,address,address,bytes32,bool,uint256,uint256,bytes32)")
        logs = self.chain.w3.eth.get_logs(
            {
                "address": self.address,
                "fromBlock": from_block,
                "toBlock": "latest",
                "topics": [HexBytes(topic), HexBytes(guarantee_id)],
            }
        )
        for log in logs:
            for event in self.chain.decode_logs([log]):
                return event, HexBytes(log["transactionHash"]).to_0x_hex(), int(log["blockNumber"])
        return None

    def claim_of(self, guarantee_id: bytes) -> Claim:
        ground, section_id, evidence, paid, ref = self._view("claimOf", guarantee_id)
        return Claim(ClaimGround(ground), bytes(section_id), bytes(evidence), paid, bytes(ref))

    def sealed_reference(self, section_id: bytes, salt: bytes) -> bytes:
        return bytes(self._view("sealedReference", section_id, salt))

    def tender_registry_address(self) -> str:
        return str(self._view("tenderRegistry"))


@dataclass(frozen=True)
class Deployment:
    """The three contracts of one deployment, bound to a chain."""

    chain: Chain
    consortium: ConsortiumClient
    tenders: TenderRegistryClient
    guarantees: GuaranteeRegistryClient

    @classmethod
    def at(cls, chain: Chain, consortium: str, tender_registry: str, guarantee_registry: str) -> Deployment:
        return cls(
            chain,
            ConsortiumClient(chain, consortium),
            TenderRegistryClient(chain, tender_registry),
            GuaranteeRegistryClient(chain, guarantee_registry),
        )

    @classmethod
    def from_manifest(cls, chain: Chain, manifest: dict[str, Any]) -> Deployment:
        contracts = manifest["contracts"]
        return cls.at(
            chain,
            contracts["Consortium"]["address"],
            contracts["TenderRegistry"]["address"],
            contracts["GuaranteeRegistry"]["address"],
        )


__all__ = [
    "BidCover",
    "Chain",
    "ConsortiumClient",
    "Deployment",
    "Event",
    "GuaranteeRegistryClient",
    "GuaranteeState",
    "Signer",
    "TenderRegistryClient",
    "TxResult",
    "cover_commitment",
]
