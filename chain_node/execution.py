"""Transaction execution: the EVM state, admission checks, block application, eth_call and gas estimates.

The EVM is revm (Rust) through `pyrevm` 0.3.7, configured for the Cancun fork that our contracts are
compiled for. pyrevm is built for simulations, so three of its behaviours shape this module:

* Its `message_call`/`deploy` run a *message*, not a transaction: no nonce check, no fee charged, no
  refund, no coinbase reward, and BASEFEE is pinned to 0. So the transaction level of Ethereum
  (nonce, up-front gas purchase at the effective gas price, refund of unused gas, priority fee to
  the proposer, base fee burnt) is done here, in Python, around each message, exactly as the
  Yellow Paper and EIP-1559 define it.
* It never finalises its journal: whatever a call loaded stays "warm", and a slot's "original value"
  (the basis of SSTORE gas, EIP-2200/3529) would stay that of the first load, for every later
  transaction. Gas would then drift away from Ethereum's and, worse, depend on what the process did
  before, so two validators could disagree. Each transaction therefore runs inside a pyrevm
  checkpoint: its effects are read out of the journal, the checkpoint is reverted (the journal is
  empty again, every account cold), and the effects are written into pyrevm's database, from which
  the next transaction loads them cold, as on Ethereum. Addresses that revm would warm without a
  journal entry (the coinbase, EIP-3651, and access-list entries, EIP-2930) are loaded through the
  journal first, so that the revert takes them away too.
* Its database can only be written (accounts, and storage through a journaled load), never listed.
  So `WorldState` keeps its own copy of the accounts and storage (a Python mirror): reads, the
  state commitment, checkpoints and export all use the mirror, and the EVM is only ever written to.

State commitment. `WorldState.state_root` is not a Merkle-Patricia state root (maintaining one in
Python for every block would cost more than executing the block). It is a hash chain from genesis:
`root_n = keccak(root_{n-1} ‖ keccak(rlp(diff_n)))`, where `diff_n` is the canonical encoding of
every account and storage slot whose value differs after block n from before it (see
`_encode_diff`); a block that changes nothing keeps the root. Two nodes have the same root iff they
applied the same state changes from the same genesis, which is what consensus needs; it cannot
prove a single account's value to a light client (receipts and their proofs serve witnesses).

Known differences from Ethereum inside contracts, all deterministic: BASEFEE and GASPRICE read 0
(pyrevm's message environment); GASLIMIT reads the WorldState's configured block gas limit;
BLOCKHASH returns revm's placeholder (keccak of the decimal block number), not our block hashes.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pyrevm

from chain_node.blocks import Log, Receipt, block_logs_bloom
from chain_node.transactions import (
    InvalidTransaction,
    Transaction,
    WrongChainId,
    intrinsic_gas,
)
from chain_node.trie import RlpItem, int_to_rlp_bytes, keccak, rlp_encode

__all__ = [
    "EMPTY_CODE_HASH",
    "MAX_INITCODE_SIZE",
    "MAX_NONCE_GAP",
    "SPEC_ID",
    "Account",
    "BlockEnv",
    "BlockResult",
    "CallResult",
    "FeeCapTooLow",
    "GasLimitExceeded",
    "InitCodeTooLarge",
    "InsufficientFunds",
    "IntrinsicGasTooLow",
    "NonceTooHigh",
    "NonceTooLow",
    "NotPermitted",
    "SenderNotEOA",
    "StateCheckpoint",
    "WorldState",
    "apply_block",
    "call",
    "check_transaction",
    "contract_address",
    "estimate_gas",
]

SPEC_ID = "CANCUN"  # the hard fork our contracts are compiled for (contracts/toolchain.py: evmVersion)
MAX_NONCE_GAP = 64  # how far ahead of the pool's next nonce a sender may queue transactions
MAX_INITCODE_SIZE = 2 * 24_576  # EIP-3860
EMPTY_CODE_HASH = keccak(b"")
DEFAULT_BLOCK_GAS_LIMIT = 60_000_000
_GENESIS_PARENT_ROOT = bytes(32)

# pyrevm reports a failed message by raising RuntimeError with revm's debug text of the result.
_REVERT_OUTPUT = re.compile(r"output: 0x([0-9a-fA-F]*)")
# In the journal's debug text: storage changes (`StorageChange { address: 0x.., key: <decimal>,
# had_value: .. }`; loads have `had_value: None`, writes `Some(..)`) and self-destructs. Writes are
# found with `str.find`/`rfind` rather than a regex: on the few kilobytes of a contract call's journal
# it is several times faster, and it runs for every transaction on every validator.
_STORAGE_CHANGE = "StorageChange { address: 0x"
_KEY_AT = 40 + len(", key: ")  # where the key starts after the address's 40 hex digits
_WRITTEN = ", had_value: Some"
_DESTROYED = re.compile(r"AccountDestroyed \{ address: 0x([0-9a-f]{40})")


# ------------------------------------------------------------------ errors


class NonceTooLow(InvalidTransaction):
    """The nonce was already used by an included transaction of this sender."""


class NonceTooHigh(InvalidTransaction):
    """The nonce leaves a gap: in a block it must be the next one; in the pool at most MAX_NONCE_GAP ahead."""


class InsufficientFunds(InvalidTransaction):
    """The sender cannot pay gas limit times fee cap plus the value."""


class IntrinsicGasTooLow(InvalidTransaction):
    """The gas limit does not even cover the intrinsic gas (base, calldata, creation, access list)."""


class GasLimitExceeded(InvalidTransaction):
    """The gas limit is above the block gas limit, or above what is left of it in this block."""


class FeeCapTooLow(InvalidTransaction):
    """The fee cap (gas price for legacy transactions) is below the block's base fee."""


class HistoryUnavailable(Exception):
    """A block's state that this node no longer keeps in a form the EVM can run against."""


class NotPermitted(InvalidTransaction):
    """The sender is not permitted to transact on this consortium chain."""


class InitCodeTooLarge(InvalidTransaction):
    """A contract creation whose init code is larger than EIP-3860 allows."""


class SenderNotEOA(InvalidTransaction):
    """The sender's address holds code (EIP-3607): nobody can hold its key."""


# ------------------------------------------------------------------ records


@dataclass(frozen=True)
class Account:
    """One account of the mirror. Empty accounts (EIP-161) are never stored: absent means empty."""

    balance: int = 0
    nonce: int = 0
    code: bytes = b""
    code_hash: bytes = EMPTY_CODE_HASH

    def is_empty(self) -> bool:
        return self.balance == 0 and self.nonce == 0 and self.code_hash == EMPTY_CODE_HASH


_NO_ACCOUNT = Account()


@dataclass(frozen=True)
class BlockEnv:
    """What the EVM sees of the block being built or checked. `prevrandao` is what PREVRANDAO returns."""

    number: int
    timestamp: int
    coinbase: bytes
    gas_limit: int
    base_fee: int
    prevrandao: bytes = bytes(32)


@dataclass(frozen=True)
class StateChanges:
    """What a block changed: every account touched (as it is afterwards; an empty account means
    deleted) and every storage slot written (0 means cleared). Nodes persist it as the state's history."""

    accounts: Mapping[bytes, Account]
    slots: Mapping[tuple[bytes, int], int]


@dataclass(frozen=True)
class BlockResult:
    """Outcome of `apply_block`. Validators re-executing a proposal require `rejected` to be empty."""

    receipts: tuple[Receipt, ...]
    gas_used: int
    included: tuple[Transaction, ...]
    rejected: tuple[tuple[Transaction, InvalidTransaction], ...]
    state_root: bytes
    logs_bloom: bytes
    changes: StateChanges = StateChanges({}, {})


@dataclass(frozen=True)
class CallResult:
    """Outcome of `call`: the return data (or revert data), gas used, and why it failed if it did.

    `error` is None on success, "execution reverted" for a revert (with the payload in `output`),
    the halt reason (e.g. "OutOfGas(Basic)") for a halt, or the reason the call could not start.
    """

    success: bool
    output: bytes
    gas_used: int
    error: str | None = None
    logs: tuple[Log, ...] = ()


@dataclass(frozen=True)
class StateCheckpoint:
    """A point `WorldState.revert` can return to (block-level, for proposals that are not decided)."""

    token: int
    position: int
    state_root: bytes


# ------------------------------------------------------------------ helpers


def _addr_str(address: bytes) -> str:
    return "0x" + address.hex()


def contract_address(sender: bytes, nonce: int) -> bytes:
    """Address of the contract a CREATE transaction from `sender` with `nonce` deploys."""
    return keccak(rlp_encode([sender, int_to_rlp_bytes(nonce)]))[12:]


def _original_code(code: bytes, code_hash: bytes) -> bytes:
    """The deployed code without revm's analysis padding (33 zero bytes appended), checked by hash."""
    if keccak(code) == code_hash:
        return code
    if len(code) >= 33 and keccak(code[:-33]) == code_hash:
        return code[:-33]
    trimmed = code
    while trimmed and trimmed[-1] == 0:  # fall back on any padding length
        trimmed = trimmed[:-1]
        if keccak(trimmed) == code_hash:
            return trimmed
    raise RuntimeError(f"cannot recover the code of hash 0x{code_hash.hex()} from revm")


def _parse_value(value: Any) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value, 16) if value.startswith(("0x", "0X")) else int(value)
    raise ValueError(f"expected an int or a numeric string, got {value!r}")


def _parse_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return bytes.fromhex(value[2:] if value.startswith(("0x", "0X")) else value)
    raise ValueError(f"expected bytes or a hex string, got {value!r}")


def _entry_field(entry: Any, name: str, default: Any) -> Any:
    if isinstance(entry, Mapping):
        return entry.get(name, default)
    return getattr(entry, name, default)


def _parse_address(value: Any) -> bytes:
    address = _parse_bytes(value)
    if len(address) != 20:
        raise ValueError(f"address must be 20 bytes, got {len(address)}")
    return address


# ------------------------------------------------------------------ world state


class WorldState:
    """The EVM state: a pyrevm EVM (written to) plus a Python mirror of accounts and storage (read from).

    Three ways to run something without keeping its effects:
    * `call`/`estimate_gas` run inside a pyrevm checkpoint that is reverted: nothing reaches the
      database or the mirror.
    * `checkpoint()` / `revert(checkpoint)` / `release(checkpoint)` undo whole blocks: every write
      to the mirror is logged while a checkpoint is open, and reverting writes the old values back
      into both the mirror and the EVM. A node executes a proposed block after `checkpoint()` and,
      once consensus decides, `release()`s it (keep) or `revert()`s to it (drop). Cost:
      proportional to the changes, not to the state. A checkpoint left open keeps its undo log.
    * `copy()` builds an independent state with its own EVM (cost proportional to the whole state).

    Every method holds one re-entrant lock, `lock`: pyrevm's EVM must not be entered from two
    threads at once, and a reader must not see a block half-applied. A caller that executes a
    proposal and reverts it (checkpoint, apply_block, revert) holds `lock` around the three, so that
    other threads never read the tentative state.
    """

    def __init__(
        self,
        *,
        chain_id: int,
        gas_limit: int,
        accounts: Mapping[bytes, Account],
        storage: Mapping[bytes, Mapping[int, int]],
        state_root: bytes,
    ) -> None:
        self.chain_id = chain_id
        self.gas_limit = gas_limit
        self.lock = threading.RLock()
        self._accounts: dict[bytes, Account] = {a: acc for a, acc in accounts.items() if not acc.is_empty()}
        self._storage: dict[bytes, dict[int, int]] = {
            a: {k: v for k, v in slots.items() if v} for a, slots in storage.items() if any(slots.values())
        }
        self._state_root = state_root
        self._undo: list[tuple[bytes, int | None, Account | int | None]] = []
        self._open: dict[int, int] = {}  # checkpoint token -> undo-log position
        self._next_token = 0
        self._tx_env_has_access_list = False
        self._evm = pyrevm.EVM(
            env=pyrevm.Env(cfg=pyrevm.CfgEnv(chain_id=chain_id)),
            gas_limit=gas_limit,
            spec_id=SPEC_ID,
        )
        self._push_to_evm(
            {address: self._accounts[address] for address in self._accounts},
            {(address, slot): value for address, slots in self._storage.items() for slot, value in slots.items()},
        )

    # -------------------------------------------------------------- construction and export

    @classmethod
    def from_genesis(
        cls,
        alloc: Mapping[Any, Any],
        *,
        chain_id: int,
        gas_limit: int = DEFAULT_BLOCK_GAS_LIMIT,
        state_root: bytes | None = None,
    ) -> WorldState:
        """A state from a genesis allocation `{address: {balance, nonce, code, storage}}`.

        An entry is a mapping or an object with those attributes (e.g. a config dataclass);
        storage is a mapping or (key, value) pairs. Addresses, code and storage keys/values may be
        bytes/ints or hex strings (the geth genesis format). The genesis commitment is
        `keccak(0^32 ‖ keccak(rlp(diff)))` with the diff from the empty state. Pass `state_root`
        to restore a state exported with `export_alloc()` at a later block, keeping its chain.
        """
        accounts: dict[bytes, Account] = {}
        storage: dict[bytes, dict[int, int]] = {}
        for raw_address, entry in alloc.items():
            address = _parse_address(raw_address)
            code = _parse_bytes(_entry_field(entry, "code", b""))
            accounts[address] = Account(
                balance=_parse_value(_entry_field(entry, "balance", 0)),
                nonce=_parse_value(_entry_field(entry, "nonce", 0)),
                code=code,
                code_hash=keccak(code),
            )
            raw_slots = _entry_field(entry, "storage", {})
            pairs = raw_slots.items() if isinstance(raw_slots, Mapping) else raw_slots
            slots = {_parse_value(k): _parse_value(v) for k, v in pairs}
            if any(slots.values()):
                storage[address] = slots
        if state_root is None:
            diff_accounts = {a: acc for a, acc in accounts.items() if not acc.is_empty() or a in storage}
            diff_slots = {(a, k): v for a, slots in storage.items() for k, v in slots.items() if v}
            state_root = _chain_root(_GENESIS_PARENT_ROOT, diff_accounts, diff_slots) or keccak(
                _GENESIS_PARENT_ROOT + keccak(rlp_encode([]))
            )
        return cls(chain_id=chain_id, gas_limit=gas_limit, accounts=accounts, storage=storage, state_root=state_root)

    def export_alloc(self) -> dict[str, dict[str, Any]]:
        """The whole state in genesis-alloc form (hex strings), e.g. to persist it; see `from_genesis`."""
        with self.lock:
            out: dict[str, dict[str, Any]] = {}
            for address in sorted(set(self._accounts) | set(self._storage)):
                account = self._accounts.get(address, _NO_ACCOUNT)
                entry: dict[str, Any] = {"balance": hex(account.balance), "nonce": hex(account.nonce)}
                if account.code:
                    entry["code"] = "0x" + account.code.hex()
                slots = self._storage.get(address)
                if slots:
                    entry["storage"] = {f"0x{k:064x}": f"0x{v:064x}" for k, v in sorted(slots.items())}
                out["0x" + address.hex()] = entry
            return out

    def changes(self) -> StateChanges:
        """The whole state as one change set from the empty state (what a node persists at genesis)."""
        with self.lock:
            slots = {(a, k): v for a, slots in self._storage.items() for k, v in slots.items()}
            accounts = {a: self._accounts.get(a, _NO_ACCOUNT) for a in set(self._accounts) | set(self._storage)}
            return StateChanges(accounts, slots)

    @contextmanager
    def evm_view_of(self, accounts: Mapping[bytes, Account], slots: Mapping[tuple[bytes, int], int]) -> Iterator[None]:
        """Let the EVM see these values instead of the current ones while the block runs (e.g. an older
        block's state for a historical eth_call); the mirror is untouched and the EVM is put back after.
        Hold `lock` around it together with what runs inside."""
        with self.lock:
            current_slots = {key: self.storage_at(*key) for key in slots}
            current_accounts = {address: self.account(address) for address in accounts}
            self._push_to_evm(accounts, slots)
            try:
                yield
            finally:
                self._push_to_evm(current_accounts, current_slots)

    def copy(self) -> WorldState:
        """An independent state with its own EVM and the same commitment."""
        with self.lock:
            return WorldState(
                chain_id=self.chain_id,
                gas_limit=self.gas_limit,
                accounts=dict(self._accounts),
                storage={a: dict(slots) for a, slots in self._storage.items()},
                state_root=self._state_root,
            )

    # -------------------------------------------------------------- reads (from the mirror)

    @property
    def state_root(self) -> bytes:
        return self._state_root

    def account(self, address: bytes) -> Account:
        with self.lock:
            return self._accounts.get(address, _NO_ACCOUNT)

    def balance(self, address: bytes) -> int:
        return self.account(address).balance

    def nonce(self, address: bytes) -> int:
        return self.account(address).nonce

    def code(self, address: bytes) -> bytes:
        return self.account(address).code

    def storage_at(self, address: bytes, slot: int) -> int:
        with self.lock:
            slots = self._storage.get(address)
            return slots.get(slot, 0) if slots else 0

    def storage_of(self, address: bytes) -> dict[int, int]:
        """Every non-zero slot of an account (a copy)."""
        with self.lock:
            return dict(self._storage.get(address, {}))

    # -------------------------------------------------------------- block-level checkpoints

    def checkpoint(self) -> StateCheckpoint:
        with self.lock:
            token = self._next_token
            self._next_token += 1
            self._open[token] = len(self._undo)
            return StateCheckpoint(token=token, position=len(self._undo), state_root=self._state_root)

    def release(self, checkpoint: StateCheckpoint) -> None:
        """Keep everything done since `checkpoint` (it can no longer be reverted to)."""
        with self.lock:
            self._open.pop(checkpoint.token, None)
            if not self._open:
                self._undo.clear()

    def revert(self, checkpoint: StateCheckpoint) -> None:
        """Undo everything done since `checkpoint`, in the mirror and the EVM; later checkpoints are dropped."""
        with self.lock:
            if checkpoint.token not in self._open:
                raise ValueError("checkpoint was released or reverted already")
            accounts: dict[bytes, Account] = {}
            slots: dict[tuple[bytes, int], int] = {}
            for address, slot, old in reversed(self._undo[checkpoint.position :]):
                if slot is None:
                    assert old is None or isinstance(old, Account)
                    self._put_account(address, old, log=False)
                    accounts[address] = old or _NO_ACCOUNT
                else:
                    assert isinstance(old, int)
                    self._put_slot(address, slot, old, log=False)
                    slots[(address, slot)] = old
            del self._undo[checkpoint.position :]
            for token, position in list(self._open.items()):
                if position >= checkpoint.position and token != checkpoint.token:
                    del self._open[token]
            self._open.pop(checkpoint.token)
            if not self._open:
                self._undo.clear()
            self._state_root = checkpoint.state_root
            self._push_to_evm(accounts, slots)

    # -------------------------------------------------------------- writes

    def _put_account(self, address: bytes, account: Account | None, *, log: bool = True) -> None:
        if log and self._open:
            self._undo.append((address, None, self._accounts.get(address)))
        if account is None or account.is_empty():
            self._accounts.pop(address, None)
        else:
            self._accounts[address] = account

    def _put_slot(self, address: bytes, slot: int, value: int, *, log: bool = True) -> None:
        slots = self._storage.get(address)
        if log and self._open:
            self._undo.append((address, slot, slots.get(slot, 0) if slots else 0))
        if value:
            if slots is None:
                slots = self._storage[address] = {}
            slots[slot] = value
        elif slots is not None:
            slots.pop(slot, None)
            if not slots:
                del self._storage[address]

    def _push_to_evm(self, accounts: Mapping[bytes, Account], slots: Mapping[tuple[bytes, int], int]) -> None:
        """Write accounts, then storage, into pyrevm's database, leaving its journal empty (all cold).

        Account infos go straight to the database because the journal holds no account between
        transactions. pyrevm's storage insert writes to the database only while the account is not
        in the journal, and then loads it there; so each slot is written inside its own checkpoint,
        reverted right after: the database keeps the slot, the journal forgets the load.
        """
        evm = self._evm
        for address, account in accounts.items():
            evm.insert_account_info(
                _addr_str(address),
                pyrevm.AccountInfo(
                    balance=account.balance,  # type: ignore[call-arg]  # the stub omits balance
                    nonce=account.nonce,
                    code_hash=account.code_hash,
                    code=account.code or None,
                ),
            )
        for (address, slot), value in slots.items():
            checkpoint = evm.snapshot()
            evm.insert_account_storage(_addr_str(address), slot, value)
            evm.revert(checkpoint)

    def _block_env(self, env: BlockEnv) -> None:
        self._evm.set_block_env(
            pyrevm.BlockEnv(
                number=env.number,
                coinbase=_addr_str(env.coinbase),
                timestamp=env.timestamp,
                prevrandao=env.prevrandao,
                basefee=env.base_fee,
                gas_limit=self.gas_limit,
            )
        )

    def _set_access_list(self, tx_access_list: tuple[tuple[bytes, tuple[bytes, ...]], ...]) -> None:
        if tx_access_list:
            self._evm.set_tx_env(
                pyrevm.TxEnv(
                    access_list=[
                        (_addr_str(address), [int.from_bytes(key, "big") for key in keys])
                        for address, keys in tx_access_list
                    ]
                )
            )
            self._tx_env_has_access_list = True
        elif self._tx_env_has_access_list:
            self._evm.set_tx_env(pyrevm.TxEnv())
            self._tx_env_has_access_list = False

    def _warm_through_journal(
        self, coinbase: bytes, tx_access_list: tuple[tuple[bytes, tuple[bytes, ...]], ...]
    ) -> None:
        """Load the coinbase and access-list entries through the journal, so that reverting cools them."""
        evm = self._evm
        evm.basic(_addr_str(coinbase))
        for address, keys in tx_access_list:
            text = _addr_str(address)
            evm.basic(text)
            for key in keys:
                evm.storage(text, int.from_bytes(key, "big"))


# ------------------------------------------------------------------ the commitment


def _encode_diff(accounts: Mapping[bytes, Account], slots: Mapping[tuple[bytes, int], int]) -> bytes:
    """Canonical encoding of a state change set.

    `rlp([[address, nonce, balance, code_hash, [[slot (32 bytes), value], ...]], ...])`, accounts
    sorted by address, slots by key; integers minimal big-endian; an absent account is encoded as
    the empty one (0, 0, keccak("")) and a cleared slot with value 0. Every address with a changed
    field or slot is listed with all four account fields as they are after the change.
    """
    by_address: dict[bytes, list[tuple[int, int]]] = {}
    for (address, slot), value in slots.items():
        by_address.setdefault(address, []).append((slot, value))
    items: list[RlpItem] = []
    for address in sorted(set(accounts) | set(by_address)):
        account = accounts.get(address)
        if account is None:
            raise AssertionError("every address of the diff must carry its account")
        changed = sorted(by_address.get(address, []))
        items.append(
            [
                address,
                int_to_rlp_bytes(account.nonce),
                int_to_rlp_bytes(account.balance),
                account.code_hash,
                [[slot.to_bytes(32, "big"), int_to_rlp_bytes(value)] for slot, value in changed],
            ]
        )
    return rlp_encode(items)


def _chain_root(
    parent_root: bytes, accounts: Mapping[bytes, Account], slots: Mapping[tuple[bytes, int], int]
) -> bytes | None:
    """`keccak(parent ‖ keccak(diff))`, or None when nothing changed."""
    if not accounts and not slots:
        return None
    return keccak(parent_root + keccak(_encode_diff(accounts, slots)))


def _block_diff(state: WorldState, position: int) -> tuple[dict[bytes, Account], dict[tuple[bytes, int], int]]:
    """Net changes since undo-log `position`: entries whose value now differs from the first logged one."""
    first_accounts: dict[bytes, Account | None] = {}
    first_slots: dict[tuple[bytes, int], int] = {}
    for address, slot, old in state._undo[position:]:
        if slot is None:
            if address not in first_accounts:
                first_accounts[address] = old if isinstance(old, Account) else None
        elif (address, slot) not in first_slots:
            first_slots[(address, slot)] = old if isinstance(old, int) else 0
    # Read the mirror's dicts directly: the caller holds the lock, and this runs over every write of the block.
    storage, mirror = state._storage, state._accounts
    slots: dict[tuple[bytes, int], int] = {}
    for key, old_value in first_slots.items():
        held = storage.get(key[0])
        value = held.get(key[1], 0) if held else 0
        if value != old_value:
            slots[key] = value
    accounts: dict[bytes, Account] = {}
    for address, old_account in first_accounts.items():
        now = mirror.get(address, _NO_ACCOUNT)
        if now is not old_account and now != (old_account or _NO_ACCOUNT):
            accounts[address] = now
    for address, _ in slots:
        if address not in accounts:
            accounts[address] = mirror.get(address, _NO_ACCOUNT)
    return accounts, slots


# ------------------------------------------------------------------ admission


def check_transaction(
    state: WorldState,
    tx: Transaction,
    *,
    chain_id: int,
    base_fee: int,
    block_gas_limit: int,
    pending_nonce: int | None = None,
    permitted: Callable[[bytes], bool],
) -> None:
    """Raise the InvalidTransaction subclass for the first rule `tx` breaks against `state`.

    With `pending_nonce` None (block execution) the nonce must be exactly the sender's next one.
    With `pending_nonce` given (pool admission: the nonce after the sender's pooled transactions)
    a nonce up to MAX_NONCE_GAP - 1 beyond it is accepted, to be queued.
    """
    sender = "0x" + tx.sender.hex()
    if tx.chain_id != chain_id:
        raise WrongChainId(f"transaction is for chain {tx.chain_id}, this chain is {chain_id}")
    if not permitted(tx.sender):
        raise NotPermitted(f"sender {sender} is not permitted to transact on this chain")
    if tx.gas_limit > block_gas_limit:
        raise GasLimitExceeded(f"gas limit {tx.gas_limit} exceeds the block gas limit {block_gas_limit}")
    needed = intrinsic_gas(tx)
    if tx.gas_limit < needed:
        raise IntrinsicGasTooLow(f"gas limit {tx.gas_limit} is below the intrinsic gas {needed}")
    if tx.to is None and len(tx.data) > MAX_INITCODE_SIZE:
        raise InitCodeTooLarge(f"init code of {len(tx.data)} bytes exceeds {MAX_INITCODE_SIZE} (EIP-3860)")
    if tx.max_fee_per_gas < base_fee:
        raise FeeCapTooLow(f"fee cap {tx.max_fee_per_gas} wei/gas is below the base fee {base_fee} wei/gas")
    account = state.account(tx.sender)
    if tx.nonce < account.nonce:
        raise NonceTooLow(f"nonce {tx.nonce} is below the next nonce {account.nonce} of {sender}")
    if pending_nonce is None:
        if tx.nonce > account.nonce:
            raise NonceTooHigh(f"nonce {tx.nonce} is ahead of the next nonce {account.nonce} of {sender}")
    elif tx.nonce >= max(pending_nonce, account.nonce) + MAX_NONCE_GAP:
        raise NonceTooHigh(
            f"nonce {tx.nonce} is {MAX_NONCE_GAP} or more ahead of the next pending nonce {pending_nonce} of {sender}"
        )
    if account.code_hash != EMPTY_CODE_HASH:
        raise SenderNotEOA(f"sender {sender} has code (EIP-3607)")
    cost = tx.max_cost()
    if account.balance < cost:
        raise InsufficientFunds(
            f"balance {account.balance} of {sender} is below gas limit x fee cap + value = {cost} wei"
        )


# ------------------------------------------------------------------ execution


@dataclass(frozen=True)
class _Outcome:
    success: bool
    output: bytes
    gas_used: int
    logs: tuple[Log, ...]
    error: str | None
    refused: bool = False  # revm rejected the message before running it (no state change)


def _run_message(
    state: WorldState,
    *,
    sender: bytes,
    to: bytes | None,
    data: bytes,
    value: int,
    gas: int,
    coinbase: bytes,
    access_list: tuple[tuple[bytes, tuple[bytes, ...]], ...],
) -> tuple[_Outcome, bytes | None]:
    """Run one message inside the already-open pyrevm checkpoint; return its outcome and created address."""
    evm = state._evm
    evm.reset_transient_storage()
    state._set_access_list(access_list)
    state._warm_through_journal(coinbase, access_list)
    created: bytes | None = None
    try:
        if to is None:
            created_text = evm.deploy(_addr_str(sender), data, value=value, gas=gas)
            created = bytes.fromhex(created_text[2:])
            output = b""
        else:
            output = bytes(evm.message_call(_addr_str(sender), _addr_str(to), data, value=value, gas=gas))
        failure = None
    except RuntimeError as exc:
        failure = str(exc)
        output = b""
    result = evm.result
    if result is None:  # revm refused the message before running it
        return _Outcome(False, b"", 0, (), failure or "the EVM refused the message", refused=True), None
    if failure is None:
        logs = tuple(
            Log(
                address=bytes.fromhex(log.address[2:]),
                topics=tuple(bytes(topic) for topic in log.data[0]),
                data=bytes(log.data[1]),
            )
            for log in result.logs
        )
        return _Outcome(True, output, result.gas_used, logs, None), created
    if failure.startswith("Revert"):
        match = _REVERT_OUTPUT.search(failure)
        revert_data = bytes.fromhex(match.group(1)) if match else b""
        return _Outcome(False, revert_data, result.gas_used, (), "execution reverted"), None
    reason = result.reason or failure
    return _Outcome(False, b"", result.gas_used, (), str(reason)), None


def _storage_writes(journal: str) -> list[tuple[str, int]]:
    """(address hex, slot) of every storage write in the journal's text, in order, repeats included."""
    writes: list[tuple[str, int]] = []
    end = journal.find(_WRITTEN)
    while end >= 0:
        start = journal.rfind(_STORAGE_CHANGE, 0, end)
        if start < 0:
            raise RuntimeError("unexpected pyrevm journal text: a storage write without its entry")
        start += len(_STORAGE_CHANGE)
        writes.append((journal[start : start + 40], int(journal[start + _KEY_AT : end])))
        end = journal.find(_WRITTEN, end + len(_WRITTEN))
    return writes


def _read_effects(
    state: WorldState, *, runs_code: bool = True
) -> tuple[dict[bytes, Account | None], dict[tuple[bytes, int], int]]:
    """The accounts and slots the open checkpoint changed, compared with the mirror.

    Storage writes and self-destructs are only visible in the journal's debug text, which costs a
    few microseconds per kilobyte of loaded code to produce; a message that runs no code (a plain
    transfer) can have neither, so `runs_code=False` skips it.
    """
    evm = state._evm
    accounts: dict[bytes, Account | None] = {}
    for text, info in evm.journal_state.items():
        address = bytes.fromhex(text[2:])
        before = state._accounts.get(address, _NO_ACCOUNT)
        code_hash = bytes(info.code_hash) if info.code_hash else EMPTY_CODE_HASH
        balance = int(info.balance)
        nonce = int(info.nonce)
        if balance == before.balance and nonce == before.nonce and code_hash == before.code_hash:
            continue
        code = before.code if code_hash == before.code_hash else _original_code(bytes(info.code or b""), code_hash)
        accounts[address] = Account(balance=balance, nonce=nonce, code=code, code_hash=code_hash)
    if not runs_code:
        return accounts, {}
    journal = evm.journal_str
    start = journal.rfind(", journal: [")
    tail = journal[start:] if start >= 0 else journal
    slots: dict[tuple[bytes, int], int] = {}
    for address_hex, slot in _storage_writes(tail):
        key = (bytes.fromhex(address_hex), slot)
        if key not in slots:
            slots[key] = int(evm.storage("0x" + address_hex, slot))
    for address_hex in _DESTROYED.findall(tail) if "AccountDestroyed" in tail else ():
        address = bytes.fromhex(address_hex)
        accounts[address] = None
        for slot in state._storage.get(address, {}):
            slots[(address, slot)] = 0
        for key in [k for k in slots if k[0] == address]:
            slots[key] = 0
    slots = {key: value for key, value in slots.items() if value != state.storage_at(*key)}
    return accounts, slots


def _apply_transaction(state: WorldState, env: BlockEnv, tx: Transaction, cumulative_gas: int) -> Receipt:
    """Execute a checked transaction with Ethereum's transaction-level rules around pyrevm's message."""
    evm = state._evm
    price = tx.effective_gas_price(env.base_fee)
    sender_before = state.account(tx.sender)
    # Buy the gas up front and, for a call, use the nonce (a CREATE's nonce is bumped by revm itself,
    # which derives the new address from it). Written to the database: the journal is empty.
    prepaid = Account(
        balance=sender_before.balance - tx.gas_limit * price,
        nonce=sender_before.nonce + (0 if tx.to is None else 1),
        code=sender_before.code,
        code_hash=sender_before.code_hash,
    )
    state._push_to_evm({tx.sender: prepaid}, {})
    checkpoint = evm.snapshot()
    try:
        outcome, _ = _run_message(
            state,
            sender=tx.sender,
            to=tx.to,
            data=tx.data,
            value=tx.value,
            gas=tx.gas_limit,
            coinbase=env.coinbase,
            access_list=tx.access_list,
        )
        if not outcome.refused:
            accounts, slots = _read_effects(state, runs_code=tx.to is None or bool(state.code(tx.to)))
    finally:
        evm.revert(checkpoint)
    if outcome.refused:
        # revm refused a transaction that passed check_transaction: a bug here, never a user error.
        state._push_to_evm({tx.sender: sender_before}, {})
        raise RuntimeError(f"EVM refused checked transaction 0x{tx.hash.hex()}: {outcome.error}")

    def current(address: bytes) -> Account:
        if address in accounts:
            return accounts[address] or _NO_ACCOUNT
        if address == tx.sender:
            return prepaid
        return state.account(address)

    gas_used = outcome.gas_used
    sender_after = current(tx.sender)
    accounts[tx.sender] = Account(
        balance=sender_after.balance + (tx.gas_limit - gas_used) * price,
        nonce=tx.nonce + 1,
        code=sender_after.code,
        code_hash=sender_after.code_hash,
    )
    tip = gas_used * (price - env.base_fee)
    if tip:
        miner = current(env.coinbase)
        accounts[env.coinbase] = Account(
            balance=miner.balance + tip, nonce=miner.nonce, code=miner.code, code_hash=miner.code_hash
        )
    for address, account in accounts.items():
        state._put_account(address, account)
    for (address, slot), value in slots.items():
        state._put_slot(address, slot, value)
    state._push_to_evm({address: account or _NO_ACCOUNT for address, account in accounts.items()}, slots)
    return Receipt(
        status=1 if outcome.success else 0,
        cumulative_gas_used=cumulative_gas + gas_used,
        logs=outcome.logs,
        tx_type=tx.tx_type,
        gas_used=gas_used,
        contract_address=contract_address(tx.sender, tx.nonce) if tx.to is None else None,
        effective_gas_price=price,
        tx_hash=tx.hash,
        sender=tx.sender,
        to=tx.to,
        revert_data=outcome.output if not outcome.success else b"",
    )


def apply_block(
    state: WorldState,
    env: BlockEnv,
    txs: Iterable[Transaction],
    *,
    chain_id: int,
    permitted: Callable[[bytes], bool],
) -> BlockResult:
    """Apply `txs` in order to `state` (mutating it) and return receipts and the new commitment.

    A transaction that breaks a rule against the state at its turn (see `check_transaction`, plus
    the gas left in the block) is skipped into `rejected`: a proposer uses this to build a block
    from its pool, and a validator re-executing a proposed block rejects the block if anything was
    rejected. A transaction that runs but reverts or halts is included (status 0), consumes its gas
    and its nonce. The result depends only on the state, `env` and `txs`.
    """
    if chain_id != state.chain_id:
        raise ValueError(f"state is for chain {state.chain_id}, block for chain {chain_id}")
    if env.gas_limit > state.gas_limit:
        raise ValueError(f"block gas limit {env.gas_limit} exceeds the state's configured {state.gas_limit}")
    with state.lock:
        block_checkpoint = state.checkpoint()
        try:
            state._block_env(env)
            receipts: list[Receipt] = []
            included: list[Transaction] = []
            rejected: list[tuple[Transaction, InvalidTransaction]] = []
            cumulative = 0
            for tx in txs:
                try:
                    check_transaction(
                        state,
                        tx,
                        chain_id=chain_id,
                        base_fee=env.base_fee,
                        block_gas_limit=env.gas_limit,
                        permitted=permitted,
                    )
                    if cumulative + tx.gas_limit > env.gas_limit:
                        raise GasLimitExceeded(
                            f"gas limit {tx.gas_limit} exceeds the {env.gas_limit - cumulative} gas left in the block"
                        )
                except InvalidTransaction as exc:
                    rejected.append((tx, exc))
                    continue
                receipt = _apply_transaction(state, env, tx, cumulative)
                cumulative = receipt.cumulative_gas_used
                receipts.append(receipt)
                included.append(tx)
            accounts, slots = _block_diff(state, block_checkpoint.position)
            new_root = _chain_root(state.state_root, accounts, slots)
            if new_root is not None:
                state._state_root = new_root
        except BaseException:
            state.revert(block_checkpoint)
            raise
        state.release(block_checkpoint)
        return BlockResult(
            receipts=tuple(receipts),
            gas_used=cumulative,
            included=tuple(included),
            rejected=tuple(rejected),
            state_root=state.state_root,
            logs_bloom=block_logs_bloom(receipts),
            changes=StateChanges(accounts, slots),
        )


# ------------------------------------------------------------------ eth_call and eth_estimateGas


def call(
    state: WorldState,
    *,
    sender: bytes,
    to: bytes | None,
    data: bytes = b"",
    value: int = 0,
    gas: int | None = None,
    env: BlockEnv,
) -> CallResult:
    """Run a message against the state without changing it (eth_call).

    No fee is charged and the nonce is not checked, as in geth. The sender must hold `value`. For a
    creation (`to` None) the output is the code the init code would deploy. Runs inside a pyrevm
    checkpoint that is always reverted, so neither the EVM nor the mirror changes.
    """
    gas_limit = state.gas_limit if gas is None else gas
    if gas_limit > state.gas_limit:
        return CallResult(False, b"", 0, f"gas {gas_limit} exceeds the block gas limit {state.gas_limit}")
    with state.lock:
        evm = state._evm
        state._block_env(env)
        checkpoint = evm.snapshot()
        try:
            outcome, created = _run_message(
                state,
                sender=sender,
                to=to,
                data=data,
                value=value,
                gas=gas_limit,
                coinbase=env.coinbase,
                access_list=(),
            )
            output = outcome.output
            if created is not None and outcome.success:
                deployed = bytes(evm.get_code(_addr_str(created)) or b"")
                code_hash = bytes(evm.basic(_addr_str(created)).code_hash or EMPTY_CODE_HASH)
                output = _original_code(deployed, code_hash)
        finally:
            evm.revert(checkpoint)
    return CallResult(outcome.success, output, outcome.gas_used, outcome.error, outcome.logs)


def estimate_gas(
    state: WorldState,
    *,
    sender: bytes,
    to: bytes | None,
    data: bytes = b"",
    value: int = 0,
    gas: int | None = None,
    env: BlockEnv,
) -> CallResult:
    """The lowest gas limit with which the transaction succeeds (eth_estimateGas), by binary search.

    `gas` caps the search (default: the block gas limit). On success the result's `gas_used` is the
    estimate; when the transaction fails even with the cap, the failing call's result is returned
    (revert data in `output`). The first probe is the gas used plus the EIP-150 63/64 reserve, which
    is usually enough, so the search is short.
    """
    cap = min(gas or state.gas_limit, state.gas_limit)
    with state.lock:
        first = call(state, sender=sender, to=to, data=data, value=value, gas=cap, env=env)
        if not first.success:
            return first
        low = first.gas_used - 1  # highest limit known to fail (the gas used is a lower bound)
        high = cap  # lowest limit known to succeed
        probe = min(cap, first.gas_used * 64 // 63 + 2_300)
        if probe < high and call(state, sender=sender, to=to, data=data, value=value, gas=probe, env=env).success:
            high = probe
        while high - low > 1:
            middle = (low + high) // 2
            if call(state, sender=sender, to=to, data=data, value=value, gas=middle, env=env).success:
                high = middle
            else:
                low = middle
    return CallResult(True, first.output, high, None, first.logs)
