"""Genesis and node configuration files of a chain_node network.

The genesis file is shared by every validator: chain id, the initial validator set, pre-funded
accounts and the accounts permitted to send transactions. Each node has its own file: its key, data
folder, listening addresses and its peers' addresses, so that the same node runs on one machine or
across several.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_utils import keccak, to_canonical_address, to_checksum_address

from chain_node.execution import DEFAULT_BLOCK_GAS_LIMIT


class ConfigError(Exception):
    """A genesis or node file is missing something or contradicts itself."""


@dataclass(frozen=True)
class GenesisAccount:
    balance: int
    nonce: int = 0
    code: bytes = b""
    storage: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Genesis:
    chain_id: int
    validators: tuple[bytes, ...]
    alloc: tuple[tuple[bytes, GenesisAccount], ...]
    permitted: tuple[bytes, ...]
    gas_limit: int = DEFAULT_BLOCK_GAS_LIMIT
    base_fee: int = 1_000_000_000
    timestamp: int = 0
    block_period_ms: int = 250
    # A local development network may let tests move its clock forward (never backwards).
    dev_time_travel: bool = False
    permissioning_contract: bytes | None = None

    def hash(self) -> bytes:
        return keccak(json.dumps(genesis_to_json(self), sort_keys=True).encode())


def _address(value: Any, where: str) -> bytes:
    try:
        return bytes(to_canonical_address(value))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: {value!r} is not an address") from error


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a number")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 16) if value.startswith("0x") else int(value)
        except ValueError:
            pass
    raise ConfigError(f"{where}: expected a number, got {value!r}")


def genesis_from_json(raw: dict[str, Any]) -> Genesis:
    try:
        validators = tuple(_address(v, "validators") for v in raw["validators"])
        alloc = tuple(
            (
                _address(addr, "alloc"),
                GenesisAccount(
                    balance=_int(entry.get("balance", 0), f"alloc.{addr}.balance"),
                    nonce=_int(entry.get("nonce", 0), f"alloc.{addr}.nonce"),
                    code=bytes.fromhex(str(entry.get("code", "0x"))[2:]),
                    storage=tuple(
                        (_int(k, "storage key"), _int(v, "storage value"))
                        for k, v in sorted(entry.get("storage", {}).items())
                    ),
                ),
            )
            for addr, entry in sorted(raw.get("alloc", {}).items())
        )
        genesis = Genesis(
            chain_id=_int(raw["chainId"], "chainId"),
            validators=validators,
            alloc=alloc,
            permitted=tuple(_address(a, "permitted") for a in raw.get("permitted", [])),
            gas_limit=_int(raw.get("gasLimit", DEFAULT_BLOCK_GAS_LIMIT), "gasLimit"),
            base_fee=_int(raw.get("baseFee", 1_000_000_000), "baseFee"),
            timestamp=_int(raw.get("timestamp", 0), "timestamp"),
            block_period_ms=_int(raw.get("blockPeriodMs", 250), "blockPeriodMs"),
            dev_time_travel=bool(raw.get("devTimeTravel", False)),
            permissioning_contract=(
                _address(raw["permissioningContract"], "permissioningContract")
                if raw.get("permissioningContract")
                else None
            ),
        )
    except KeyError as error:
        raise ConfigError(f"genesis: missing {error}") from error
    if not genesis.validators:
        raise ConfigError("genesis: at least one validator is needed")
    if len(set(genesis.validators)) != len(genesis.validators):
        raise ConfigError("genesis: a validator is listed twice")
    if genesis.chain_id <= 0:
        raise ConfigError("genesis: chainId must be positive")
    return genesis


def genesis_to_json(genesis: Genesis) -> dict[str, Any]:
    out: dict[str, Any] = {
        "chainId": genesis.chain_id,
        "validators": [to_checksum_address(v) for v in genesis.validators],
        "alloc": {
            to_checksum_address(addr): {
                "balance": hex(acct.balance),
                "nonce": acct.nonce,
                "code": "0x" + acct.code.hex(),
                "storage": {hex(k): hex(v) for k, v in acct.storage},
            }
            for addr, acct in genesis.alloc
        },
        "permitted": [to_checksum_address(a) for a in genesis.permitted],
        "gasLimit": genesis.gas_limit,
        "baseFee": genesis.base_fee,
        "timestamp": genesis.timestamp,
        "blockPeriodMs": genesis.block_period_ms,
        "devTimeTravel": genesis.dev_time_travel,
    }
    if genesis.permissioning_contract is not None:
        out["permissioningContract"] = to_checksum_address(genesis.permissioning_contract)
    return out


def load_genesis(path: Path) -> Genesis:
    try:
        return genesis_from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path}: {error}") from error


@dataclass(frozen=True)
class Peer:
    address: bytes  # the validator's account address
    host: str
    port: int


@dataclass(frozen=True)
class NodeConfig:
    name: str
    private_key: bytes
    data_dir: Path
    genesis_path: Path
    p2p_host: str
    p2p_port: int
    rpc_host: str
    rpc_port: int
    peers: tuple[Peer, ...] = field(default_factory=tuple)


def node_config_from_json(raw: dict[str, Any], base: Path) -> NodeConfig:
    try:
        key_hex = str(raw["privateKey"])
        return NodeConfig(
            name=str(raw["name"]),
            private_key=bytes.fromhex(key_hex[2:] if key_hex.startswith("0x") else key_hex),
            data_dir=(base / raw["dataDir"]).resolve(),
            genesis_path=(base / raw["genesis"]).resolve(),
            p2p_host=str(raw.get("p2pHost", "127.0.0.1")),
            p2p_port=_int(raw["p2pPort"], "p2pPort"),
            rpc_host=str(raw.get("rpcHost", "127.0.0.1")),
            rpc_port=_int(raw["rpcPort"], "rpcPort"),
            peers=tuple(
                Peer(_address(p["address"], "peers.address"), str(p["host"]), _int(p["port"], "peers.port"))
                for p in raw.get("peers", [])
            ),
        )
    except (KeyError, ValueError) as error:
        raise ConfigError(f"node config: {error!r}") from error


def load_node_config(path: Path) -> NodeConfig:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path}: {error}") from error
    return node_config_from_json(raw, path.parent)
