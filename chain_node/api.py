"""The Ethereum JSON-RPC methods chain_node answers, plus the consortium's own (`jz_*`).

Enough of the standard API for web3.py, ethers.js and Foundry's `cast` to work unmodified. State is
kept for the head only: a finalized BFT chain has no reorgs, so `latest`, `safe`, `finalized` and
`pending` all name the head, and older block numbers are refused for state reads with a clear error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from chain_node import rpc
from chain_node.blocks import Block, Header, Receipt
from chain_node.execution import CallResult, HistoryUnavailable
from chain_node.execution import call as evm_call
from chain_node.execution import estimate_gas as evm_estimate_gas
from chain_node.rpc import RpcError, invalid_params
from chain_node.transactions import InvalidTransaction, Transaction, to_rpc_dict
from chain_node.trie import keccak, ordered_trie_proof, rlp_decode
from chain_node.votes import InvalidVote

if TYPE_CHECKING:
    from chain_node.node import Validator
    from chain_node.storage import Store

MAX_BODY = rpc.MAX_BODY_BYTES
MAX_LOG_RANGE = 10_000
MAX_LOGS = 20_000
CLIENT_VERSION = "chain_node/0.1.0 (Jianzheng consortium chain; QBFT + revm)"
EMPTY_UNCLES = keccak(bytes.fromhex("c0"))


# ---------------------------------------------------------------------- stored receipt records


def receipt_record(receipt: Receipt, first_log_index: int) -> bytes:
    """What the node stores per receipt: its consensus encoding (status, cumulative gas, bloom, logs)
    plus what RPC answers need besides (so that answering needs neither the block nor its other
    receipts): the transaction's hash, sender and recipient, and the block-wide index of its first log.

    The JSON is written directly, byte for byte what `json.dumps(record, separators=(",", ":"))`
    gives for these fields (hex strings, integers, null; tested): every validator writes one per
    transaction, and `json.dumps` costs about ten times as much."""
    to = f'"{receipt.to.hex()}"' if receipt.to is not None else "null"
    created = f'"{receipt.contract_address.hex()}"' if receipt.contract_address else "null"
    return (
        f'{{"encoded":"{receipt.encode().hex()}","txHash":"{receipt.tx_hash.hex()}",'
        f'"from":"{receipt.sender.hex()}","to":{to},"firstLogIndex":{int(first_log_index)},'
        f'"gasUsed":{int(receipt.gas_used)},"effectiveGasPrice":{int(receipt.effective_gas_price)},'
        f'"contractAddress":{created}}}'
    ).encode()


def _record(raw: bytes) -> dict[str, Any]:
    """A stored receipt with the consensus fields decoded back out of its encoding."""
    value: dict[str, Any] = json.loads(raw)
    encoded = bytes.fromhex(value["encoded"])
    tx_type = encoded[0] if encoded and encoded[0] < 0x80 else 0
    fields: Any = rlp_decode(encoded[1:] if tx_type else encoded)  # written by receipt_record: well formed
    status, cumulative, bloom, logs = fields
    value.update(
        type=tx_type,
        status=1 if status == b"\x01" else 0,
        cumulativeGasUsed=int.from_bytes(cumulative, "big"),
        bloom=bloom.hex(),
        logs=[[address.hex(), [topic.hex() for topic in topics], data.hex()] for address, topics, data in logs],
    )
    return value


# ---------------------------------------------------------------------- formatting


def _q(value: int) -> str:
    return hex(value)


def _d(value: bytes) -> str:
    return "0x" + value.hex()


def _addr(value: bytes) -> str:
    return "0x" + value.hex()


def block_json(node: Validator, block: Block, full: bool, size: int) -> dict[str, Any]:
    header = block.header
    block_hash = header.hash()
    transactions: list[Any]
    if full:
        transactions = [
            to_rpc_dict(tx, block_hash, header.number, i, header.base_fee_per_gas)
            for i, tx in enumerate(block.transactions)
        ]
    else:
        transactions = [_d(tx.hash) for tx in block.transactions]
    return {
        "number": _q(header.number),
        "hash": _d(block_hash),
        "parentHash": _d(header.parent_hash),
        "nonce": "0x0000000000000000",
        "sha3Uncles": _d(EMPTY_UNCLES),
        "logsBloom": _d(header.logs_bloom),
        "transactionsRoot": _d(header.transactions_root),
        "stateRoot": _d(header.state_root),
        "receiptsRoot": _d(header.receipts_root),
        "miner": _addr(header.proposer),
        "difficulty": "0x0",
        "totalDifficulty": "0x0",
        "extraData": _d(header.extra),
        "size": _q(size),
        "gasLimit": _q(header.gas_limit),
        "gasUsed": _q(header.gas_used),
        "timestamp": _q(header.timestamp),
        "transactions": transactions,
        "uncles": [],
        "baseFeePerGas": _q(header.base_fee_per_gas),
        "mixHash": _d(b"\x00" * 32),
    }


def log_json(header: Header, tx_hash: str, tx_index: int, log_index: int, stored_log: list[Any]) -> dict[str, Any]:
    """One stored log (`[address, topics, data]` in hex) in the shape receipts and eth_getLogs answer."""
    address, topics, data = stored_log
    return {
        "address": "0x" + address,
        "topics": ["0x" + t for t in topics],
        "data": "0x" + data,
        "blockNumber": _q(header.number),
        "blockHash": _d(header.hash()),
        "transactionHash": "0x" + tx_hash,
        "transactionIndex": _q(tx_index),
        "logIndex": _q(log_index),
        "removed": False,
    }


def receipt_json(header: Header, index: int, record: dict[str, Any]) -> dict[str, Any]:
    first = record["firstLogIndex"]
    tx_hash = record["txHash"]
    logs = [log_json(header, tx_hash, index, first + n, stored) for n, stored in enumerate(record["logs"])]
    return {
        "transactionHash": "0x" + tx_hash,
        "transactionIndex": _q(index),
        "blockHash": _d(header.hash()),
        "blockNumber": _q(header.number),
        "from": "0x" + record["from"],
        "to": ("0x" + record["to"]) if record["to"] else None,
        "cumulativeGasUsed": _q(record["cumulativeGasUsed"]),
        "gasUsed": _q(record["gasUsed"]),
        "effectiveGasPrice": _q(record["effectiveGasPrice"]),
        "contractAddress": ("0x" + record["contractAddress"]) if record["contractAddress"] else None,
        "logs": logs,
        "logsBloom": "0x" + record["bloom"],
        "status": _q(record["status"]),
        "type": _q(record["type"]),
    }


# ---------------------------------------------------------------------- lookups


def _block(node: Validator, number: int) -> tuple[Block, int] | None:
    return node.final_block(number)


def _block_number(node: Validator, tag: Any) -> int:
    if tag in ("latest", "pending", "safe", "finalized"):
        return node.head.number
    if tag == "earliest":
        return 0
    if isinstance(tag, dict):
        if "blockNumber" in tag:
            return rpc.quantity(tag["blockNumber"], "blockNumber")
        if "blockHash" in tag:
            number = node.number_of(rpc.hash32(tag["blockHash"], "blockHash"))
            if number is None:
                raise RpcError(rpc.RESOURCE_NOT_FOUND, "block not found")
            return number
    if isinstance(tag, str) and tag.startswith("0x"):
        return rpc.quantity(tag, "block")
    raise invalid_params(f"invalid block tag {tag!r}"[:120])


class StateReader(Protocol):
    def balance(self, address: bytes) -> int: ...

    def nonce(self, address: bytes) -> int: ...

    def code(self, address: bytes) -> bytes: ...

    def storage_at(self, address: bytes, slot: int) -> int: ...


@dataclass(frozen=True)
class _StoredState:
    """An older block's state, read from the node's stored state history."""

    store: Store
    number: int

    def balance(self, address: bytes) -> int:
        return self.store.account_at(address, self.number).balance

    def nonce(self, address: bytes) -> int:
        return self.store.account_at(address, self.number).nonce

    def code(self, address: bytes) -> bytes:
        return self.store.account_at(address, self.number).code

    def storage_at(self, address: bytes, slot: int) -> int:
        return self.store.slot_at(address, slot, self.number)


def _state_at(node: Validator, tag: Any) -> tuple[int, StateReader]:
    """The final state a block tag names: the head's from memory, an older block's from the store."""
    node.settle()
    number = _block_number(node, tag)
    if number > node.head.number:
        raise RpcError(rpc.RESOURCE_NOT_FOUND, f"block {number} is not final yet (head is {node.head.number})")
    if number == node.head.number:
        return number, node.state
    return number, _StoredState(node.store, number)


def _run_at(node: Validator, tag: Any, run: Callable[..., CallResult], args: dict[str, Any]) -> CallResult:
    number, _ = _state_at(node, tag)
    try:
        return node.run_at(number, run, **args)
    except HistoryUnavailable as error:
        raise RpcError(-32000, str(error)) from None


def _tx_location(node: Validator, tx_hash: bytes) -> tuple[Block, int] | None:
    location = node.store.tx_location(tx_hash)
    if location is None:
        return None
    found = _block(node, location[0])
    if found is None:
        return None
    return found[0], location[1]


# ---------------------------------------------------------------------- call arguments


def _call_args(node: Validator, params: list[Any]) -> dict[str, Any]:
    raw = rpc.param(params, 0, "transaction")
    if not isinstance(raw, dict):
        raise invalid_params("the call argument must be an object")
    data_field = raw.get("input", raw.get("data"))
    gas = rpc.quantity(raw["gas"], "gas") if raw.get("gas") is not None else node.head.gas_limit
    return {
        "sender": rpc.address(raw["from"], "from") if raw.get("from") else b"\x00" * 20,
        "to": rpc.address(raw["to"], "to") if raw.get("to") else None,
        "data": rpc.data(data_field, "input") if data_field is not None else b"",
        "value": rpc.quantity(raw["value"], "value") if raw.get("value") is not None else 0,
        "gas": min(gas, node.head.gas_limit),
    }


def _revert_error(output: bytes) -> RpcError:
    return RpcError(rpc.EXECUTION_REVERTED, "execution reverted", _d(output))


# ---------------------------------------------------------------------- the methods


def methods(node: Validator) -> dict[str, rpc.Method]:
    def client_version(params: list[Any]) -> str:
        return CLIENT_VERSION

    def net_version(params: list[Any]) -> str:
        return str(node.chain_id)

    def chain_id(params: list[Any]) -> str:
        return _q(node.chain_id)

    def block_number(params: list[Any]) -> str:
        return _q(node.head.number)

    def syncing(params: list[Any]) -> bool:
        return False

    def peer_count(params: list[Any]) -> str:
        return _q(len(node.network.connected_peers()))

    def get_block_by_number(params: list[Any]) -> dict[str, Any] | None:
        rpc.check_arity(params, 2)
        number = _block_number(node, rpc.param(params, 0, "block"))
        full = rpc.boolean(rpc.param(params, 1, "full", required=False, default=False), "full")
        found = _block(node, number)
        return block_json(node, found[0], full, found[1]) if found else None

    def get_block_by_hash(params: list[Any]) -> dict[str, Any] | None:
        rpc.check_arity(params, 2)
        block_hash = rpc.hash32(rpc.param(params, 0, "hash"), "hash")
        full = rpc.boolean(rpc.param(params, 1, "full", required=False, default=False), "full")
        number = node.number_of(block_hash)
        found = _block(node, number) if number is not None else None
        return block_json(node, found[0], full, found[1]) if found else None

    def get_transaction_by_hash(params: list[Any]) -> dict[str, Any] | None:
        rpc.check_arity(params, 1)
        tx_hash = rpc.hash32(rpc.param(params, 0, "hash"), "hash")
        located = _tx_location(node, tx_hash)
        if located is not None:
            block, index = located
            header = block.header
            return to_rpc_dict(block.transactions[index], header.hash(), header.number, index, header.base_fee_per_gas)
        pending = node.pool.get(tx_hash)
        return to_rpc_dict(pending, None, None, None, None) if pending is not None else None

    def get_transaction_receipt(params: list[Any]) -> dict[str, Any] | None:
        rpc.check_arity(params, 1)
        tx_hash = rpc.hash32(rpc.param(params, 0, "hash"), "hash")
        location = node.store.tx_location(tx_hash)
        header = node.header_at(location[0]) if location is not None else None
        stored = node.store.receipt(*location) if location is not None else None
        if header is None or stored is None or location is None:
            return None
        return receipt_json(header, location[1], _record(stored))

    def send_raw_transaction(params: list[Any]) -> str:
        rpc.check_arity(params, 1)
        raw = rpc.data(rpc.param(params, 0, "transaction"), "transaction", max_length=256 * 1024)
        try:
            tx = node.submit_raw_transaction(raw)
        except InvalidTransaction as error:
            raise RpcError(rpc.TRANSACTION_REJECTED, str(error)) from None
        except Exception as error:  # pool limits: already known, underpriced replacement, full
            raise RpcError(rpc.TRANSACTION_REJECTED, str(error)) from None
        return _d(tx.hash)

    def eth_call(params: list[Any]) -> str:
        rpc.check_arity(params, 3)
        args = _call_args(node, params)
        result = _run_at(node, rpc.param(params, 1, "block", required=False, default="latest"), evm_call, args)
        if not result.success:
            raise _revert_error(result.output)
        return _d(result.output)

    def estimate_gas(params: list[Any]) -> str:
        rpc.check_arity(params, 3)
        args = _call_args(node, params)
        result = _run_at(node, rpc.param(params, 1, "block", required=False, default="latest"), evm_estimate_gas, args)
        if not result.success:
            raise _revert_error(result.output)
        return _q(result.gas_used)

    def get_balance(params: list[Any]) -> str:
        rpc.check_arity(params, 2)
        account = rpc.address(rpc.param(params, 0, "address"), "address")
        _, state = _state_at(node, rpc.param(params, 1, "block", required=False, default="latest"))
        return _q(state.balance(account))

    def get_code(params: list[Any]) -> str:
        rpc.check_arity(params, 2)
        account = rpc.address(rpc.param(params, 0, "address"), "address")
        _, state = _state_at(node, rpc.param(params, 1, "block", required=False, default="latest"))
        return _d(state.code(account))

    def get_storage_at(params: list[Any]) -> str:
        rpc.check_arity(params, 3)
        account = rpc.address(rpc.param(params, 0, "address"), "address")
        slot = rpc.quantity(rpc.param(params, 1, "slot"), "slot")
        _, state = _state_at(node, rpc.param(params, 2, "block", required=False, default="latest"))
        return _d(state.storage_at(account, slot).to_bytes(32, "big"))

    def get_transaction_count(params: list[Any]) -> str:
        rpc.check_arity(params, 2)
        account = rpc.address(rpc.param(params, 0, "address"), "address")
        tag = rpc.param(params, 1, "block", required=False, default="latest")
        _, state = _state_at(node, "latest" if tag == "pending" else tag)
        nonce = state.nonce(account)
        return _q(node.pool.pending_nonce(account, nonce) if tag == "pending" else nonce)

    def gas_price(params: list[Any]) -> str:
        from chain_node.blocks import next_base_fee

        return _q(next_base_fee(node.head) + 1_000_000_000)

    def max_priority_fee(params: list[Any]) -> str:
        return _q(1_000_000_000)

    def fee_history(params: list[Any]) -> dict[str, Any]:
        rpc.check_arity(params, 3)
        count = min(rpc.quantity(rpc.param(params, 0, "blockCount"), "blockCount"), 1024)
        newest = _block_number(node, rpc.param(params, 1, "newestBlock"))
        percentiles = rpc.param(params, 2, "rewardPercentiles", required=False, default=[])
        if not isinstance(percentiles, list) or any(
            not isinstance(p, (int, float)) or not 0 <= p <= 100 for p in percentiles
        ):
            raise invalid_params("rewardPercentiles must be a list of numbers from 0 to 100")
        newest = min(newest, node.head.number)
        oldest = max(0, newest - count + 1)
        headers = [h for n in range(oldest, newest + 1) if (h := node.header_at(n)) is not None]
        from chain_node.blocks import next_base_fee

        base_fees = [_q(h.base_fee_per_gas) for h in headers] + [_q(next_base_fee(headers[-1]))]
        return {
            "oldestBlock": _q(oldest),
            "baseFeePerGas": base_fees,
            "gasUsedRatio": [h.gas_used / h.gas_limit if h.gas_limit else 0.0 for h in headers],
            "reward": [[_q(1_000_000_000) for _ in percentiles] for _ in headers] if percentiles else None,
        }

    def get_logs(params: list[Any]) -> list[dict[str, Any]]:
        rpc.check_arity(params, 1)
        criteria = rpc.param(params, 0, "filter")
        if not isinstance(criteria, dict):
            raise invalid_params("the filter must be an object")
        if criteria.get("blockHash") is not None:
            if criteria.get("fromBlock") is not None or criteria.get("toBlock") is not None:
                raise invalid_params("blockHash excludes fromBlock and toBlock")
            number = node.number_of(rpc.hash32(criteria["blockHash"], "blockHash"))
            if number is None:
                raise RpcError(rpc.RESOURCE_NOT_FOUND, "block not found")
            first = last = number
        else:
            first = _block_number(node, criteria.get("fromBlock") or "latest")
            last = min(_block_number(node, criteria.get("toBlock") or "latest"), node.head.number)
        if last - first + 1 > MAX_LOG_RANGE:
            raise RpcError(rpc.LIMIT_EXCEEDED, f"block range over {MAX_LOG_RANGE} blocks")
        addresses_raw = criteria.get("address")
        addresses: set[str] | None = None
        if addresses_raw is not None:
            items = addresses_raw if isinstance(addresses_raw, list) else [addresses_raw]
            addresses = {rpc.address(a, "address").hex() for a in items}
        topics_raw = criteria.get("topics") or []
        if not isinstance(topics_raw, list) or len(topics_raw) > 4:
            raise invalid_params("topics must be a list of at most 4 positions")
        topics: list[set[str] | None] = []
        for position in topics_raw:
            if position is None:
                topics.append(None)
            elif isinstance(position, list):
                topics.append({rpc.hash32(t, "topic").hex() for t in position} if position else None)
            else:
                topics.append({rpc.hash32(position, "topic").hex()})
        found: list[dict[str, Any]] = []
        for number in range(max(first, 1), last + 1):
            header = node.header_at(number)
            if header is None or header.logs_bloom == b"\x00" * 256:
                continue
            records = [_record(r) for r in node.store.receipts(number)]
            log_index = 0
            for tx_index, record in enumerate(records):
                for stored in record["logs"]:
                    address, log_topics, _data = stored
                    matches = (addresses is None or address in addresses) and all(
                        wanted is None or (i < len(log_topics) and log_topics[i] in wanted)
                        for i, wanted in enumerate(topics)
                    )
                    if matches:
                        found.append(log_json(header, record["txHash"], tx_index, log_index, stored))
                        if len(found) > MAX_LOGS:
                            raise RpcError(rpc.LIMIT_EXCEEDED, f"more than {MAX_LOGS} logs; narrow the filter")
                    log_index += 1
        return found

    def accounts(params: list[Any]) -> list[str]:
        return []

    # ------------------------------------------------------------------ consortium methods

    def validators(params: list[Any]) -> list[str]:
        rpc.check_arity(params, 1)
        number = _block_number(node, rpc.param(params, 0, "block", required=False, default="latest"))
        if number > node.head.number:
            raise RpcError(rpc.RESOURCE_NOT_FOUND, f"block {number} is not final yet")
        # The set in force after block `number`: the one that seals the next block.
        return [_addr(a) for a in node.validators_at(number + 1).addresses]

    def vote_validator(params: list[Any]) -> dict[str, Any]:
        rpc.check_arity(params, 2)
        account = rpc.address(rpc.param(params, 0, "address"), "address")
        add = rpc.boolean(rpc.param(params, 1, "add"), "add")
        if not node.validators.contains(node.address):
            raise RpcError(-32000, "this node is not a validator: its votes would not count")
        try:
            node.vote(account, add)
        except InvalidVote as error:
            raise invalid_params(str(error)) from None
        return {"pending": {_addr(a): v for a, v in node.pending_votes.items()}}

    def get_proof(params: list[Any]) -> dict[str, Any]:
        rpc.check_arity(params, 1)
        tx_hash = rpc.hash32(rpc.param(params, 0, "transactionHash"), "transactionHash")
        located = _tx_location(node, tx_hash)
        if located is None:
            raise RpcError(rpc.RESOURCE_NOT_FOUND, "transaction not in a final block")
        block, index = located
        stored = node.store.block_by_number(block.header.number)
        assert stored is not None
        records = [_record(r) for r in node.store.receipts(block.header.number)]
        encoded = [bytes.fromhex(r["encoded"]) for r in records]
        from chain_node.node import decode_seals

        return {
            "chainId": _q(node.chain_id),
            "transactionHash": _d(tx_hash),
            "transactionIndex": _q(index),
            "receipt": _d(encoded[index]),
            "receiptProof": [_d(n) for n in ordered_trie_proof(encoded, index)],
            "header": _d(block.header.encode()),
            "blockHash": _d(block.header.hash()),
            "blockNumber": _q(block.header.number),
            "commitSeals": [{"validator": _addr(a), "signature": _d(s)} for a, s in decode_seals(stored.seals)],
            "validators": [_addr(a) for a in node.validators_at(block.header.number).addresses],
        }

    def get_seals(params: list[Any]) -> dict[str, Any]:
        """A final block's header and commit seals, with the set that sealed it: what a block explorer
        shows and checks for a block with no transaction to ask `jz_getProof` about."""
        rpc.check_arity(params, 1)
        number = _block_number(node, rpc.param(params, 0, "block", required=False, default="latest"))
        stored = node.store.block_by_number(number) if number <= node.head.number else None
        located = _block(node, number)
        if stored is None or located is None:
            raise RpcError(rpc.RESOURCE_NOT_FOUND, f"block {number} is not final yet")
        from chain_node.node import decode_seals

        header = located[0].header
        return {
            "blockNumber": _q(number),
            "blockHash": _d(header.hash()),
            "header": _d(header.encode()),
            "commitSeals": [{"validator": _addr(a), "signature": _d(s)} for a, s in decode_seals(stored.seals)],
            "validators": [_addr(a) for a in node.validators_at(number).addresses],
        }

    def status(params: list[Any]) -> dict[str, Any]:
        return {
            "address": _addr(node.address),
            "head": _q(node.head.number),
            "peers": [_addr(p) for p in node.network.connected_peers()],
            "pool": len(node.pool),
            "consensus": dict(node.core.stats),
            "node": dict(node.stats),
            "permissioningContract": (
                _addr(node.genesis.permissioning_contract) if node.genesis.permissioning_contract else None
            ),
        }

    def dev_increase_time(params: list[Any]) -> str:
        if not node.genesis.dev_time_travel:
            raise RpcError(rpc.METHOD_NOT_FOUND, "jz_devIncreaseTime is only available on development networks")
        rpc.check_arity(params, 1)
        seconds = rpc.quantity(rpc.param(params, 0, "seconds"), "seconds")
        if seconds > 10 * 365 * 86400:
            raise invalid_params("seconds: at most ten years at a time")
        node.time_offset += seconds
        return _q(node.time_offset)

    return {
        "web3_clientVersion": client_version,
        "net_version": net_version,
        "net_listening": lambda params: True,
        "net_peerCount": peer_count,
        "eth_chainId": chain_id,
        "eth_syncing": syncing,
        "eth_blockNumber": block_number,
        "eth_getBlockByNumber": get_block_by_number,
        "eth_getBlockByHash": get_block_by_hash,
        "eth_getTransactionByHash": get_transaction_by_hash,
        "eth_getTransactionReceipt": get_transaction_receipt,
        "eth_sendRawTransaction": send_raw_transaction,
        "eth_call": eth_call,
        "eth_estimateGas": estimate_gas,
        "eth_getBalance": get_balance,
        "eth_getCode": get_code,
        "eth_getStorageAt": get_storage_at,
        "eth_getTransactionCount": get_transaction_count,
        "eth_gasPrice": gas_price,
        "eth_maxPriorityFeePerGas": max_priority_fee,
        "eth_feeHistory": fee_history,
        "eth_getLogs": get_logs,
        "eth_accounts": accounts,
        "jz_validators": validators,
        "jz_voteValidator": vote_validator,
        "jz_getProof": get_proof,
        "jz_getSeals": get_seals,
        "jz_status": status,
        "jz_devIncreaseTime": dev_increase_time,
    }


__all__ = ["Header", "Transaction", "methods", "receipt_record"]
