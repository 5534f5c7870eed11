"""Lay out and start a local chain_node network: N validators as separate OS processes on 127.0.0.1.

`python -m chain_node` writes a genesis file and one config per validator (key, data folder, P2P and
JSON-RPC ports, peers) under a network folder, then starts one process per validator. The same
config files run a validator on another machine: change the hosts and start `python -m chain_node
validator --config FILE` there.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from eth_account import Account
from eth_utils import keccak, to_canonical_address, to_checksum_address
from web3.types import Nonce
from web3.utils.address import get_create_address

from chain_node.config import Genesis, GenesisAccount, genesis_to_json

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CHAIN_ID = 1_350_200  # 厦门 area code flavour; any unused id works
DEV_FUNDING = 10**24


def dev_validator_key(index: int) -> bytes:
    """Deterministic keys for local development networks only (they are public by construction)."""
    return keccak(text=f"jianzheng dev validator {index}")


def key_address(private_key: bytes) -> bytes:
    return bytes.fromhex(Account.from_key(private_key).address[2:])


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _dev_config() -> dict[str, Any]:
    return dict(json.loads((PROJECT_ROOT / "scripts" / "consortium.dev.json").read_text(encoding="utf-8")))


def dev_accounts() -> list[bytes]:
    """Accounts of the development consortium (scripts/consortium.dev.json): funded and permitted."""
    config = _dev_config()
    keys = [config["deployer"]["key"], *(m["key"] for m in config["members"] if "key" in m)]
    return [key_address(bytes.fromhex(k[2:])) for k in keys]


def dev_consortium_address() -> bytes:
    """Where the development deployer's first transaction creates the `Consortium` contract.

    A local network names it as its permissioning contract, so that members the consortium admits
    later by vote may transact too (`chain_node.permissioning`).
    """
    deployer = key_address(bytes.fromhex(_dev_config()["deployer"]["key"][2:]))
    return bytes(to_canonical_address(get_create_address(to_checksum_address(deployer), Nonce(0))))


@dataclass(frozen=True)
class NodeLayout:
    name: str
    address: bytes
    private_key: bytes
    config_path: Path
    rpc_url: str
    p2p_port: int
    rpc_port: int


def lay_out(
    folder: Path,
    validators: int = 4,
    *,
    chain_id: int = DEFAULT_CHAIN_ID,
    extra_accounts: list[bytes] | None = None,
    block_period_ms: int = 1000,
    dev_time_travel: bool = True,
    base_rpc_port: int | None = None,
    genesis_validators: int | None = None,
    permissioning_contract: bytes | None = None,
) -> list[NodeLayout]:
    """Write genesis.json and node-<i>.json files for a local network; return where each node listens.

    With `genesis_validators` < `validators`, the extra nodes start as followers that the validators
    can vote in (`jz_voteValidator`). The permissioning contract defaults to the development
    consortium's (`dev_consortium_address`).
    """
    folder.mkdir(parents=True, exist_ok=True)
    keys = [dev_validator_key(i) for i in range(validators)]
    addresses = [key_address(k) for k in keys]
    if base_rpc_port is None:
        ports = free_ports(2 * validators)
        p2p_ports, rpc_ports = ports[:validators], ports[validators:]
    else:
        rpc_ports = [base_rpc_port + i for i in range(validators)]
        p2p_ports = [base_rpc_port + 100 + i for i in range(validators)]
    funded = sorted(set(dev_accounts() + (extra_accounts or [])))
    genesis = Genesis(
        chain_id=chain_id,
        validators=tuple(addresses[: genesis_validators or validators]),
        alloc=tuple((account, GenesisAccount(balance=DEV_FUNDING)) for account in funded),
        permitted=tuple(funded),
        block_period_ms=block_period_ms,
        dev_time_travel=dev_time_travel,
        timestamp=int(time.time()),
        permissioning_contract=permissioning_contract or dev_consortium_address(),
    )
    (folder / "genesis.json").write_text(json.dumps(genesis_to_json(genesis), indent=2) + "\n")
    (folder / "validators.json").write_text(
        json.dumps({"validators": [to_checksum_address(a) for a in genesis.validators]}, indent=2) + "\n"
    )
    layouts = []
    for i in range(validators):
        config: dict[str, Any] = {
            "name": f"validator-{i}",
            "privateKey": "0x" + keys[i].hex(),
            "dataDir": f"data-{i}",
            "genesis": "genesis.json",
            "p2pHost": "127.0.0.1",
            "p2pPort": p2p_ports[i],
            "rpcHost": "127.0.0.1",
            "rpcPort": rpc_ports[i],
            "peers": [
                {"address": to_checksum_address(addresses[j]), "host": "127.0.0.1", "port": p2p_ports[j]}
                for j in range(validators)
                if j != i
            ],
        }
        path = folder / f"node-{i}.json"
        path.write_text(json.dumps(config, indent=2) + "\n")
        layouts.append(
            NodeLayout(
                f"validator-{i}",
                addresses[i],
                keys[i],
                path,
                f"http://127.0.0.1:{rpc_ports[i]}",
                p2p_ports[i],
                rpc_ports[i],
            )
        )
    return layouts


@dataclass
class RunningValidator:
    layout: NodeLayout
    process: subprocess.Popen[bytes]
    log_file: BinaryIO

    def stop(self, kill: bool = False) -> None:
        stop_validators([self], kill=kill)


def stop_validators(running: Sequence[RunningValidator], kill: bool = False) -> None:
    """Stop validators together: each takes a moment to close its store and exit, so every one is signalled
    before any is waited for (a network stops in the time of one validator, not of all in turn)."""
    signalled = [validator for validator in running if validator.process.poll() is None]
    for validator in signalled:
        if kill:
            validator.process.kill()
        else:
            validator.process.terminate()
    for validator in signalled:
        try:
            validator.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            validator.process.kill()
            validator.process.wait()
    for validator in running:
        validator.log_file.close()


def start_validator(layout: NodeLayout, log_dir: Path, *, own_session: bool = False) -> RunningValidator:
    """Start one validator process; `own_session` keeps it out of the caller's process group, so a
    Ctrl-C in the terminal reaches only the caller, which stops the validator when it is ready to."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = open(log_dir / f"{layout.name}.log", "ab")  # noqa: SIM115 - handed to the child
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PROJECT_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    process = subprocess.Popen(
        [sys.executable, "-m", "chain_node", "validator", "--config", str(layout.config_path)],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=PROJECT_ROOT,
        start_new_session=own_session,
    )
    return RunningValidator(layout, process, log_file)


def rpc_call(url: str, method: str, params: list[Any] | None = None, timeout: float = 2.0) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        answer = json.loads(response.read())
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


def head_number(url: str) -> int:
    """The number of the node's latest final block."""
    return int(rpc_call(url, "eth_blockNumber"), 16)


def block_hash_at(url: str, number: int) -> str:
    return str(rpc_call(url, "eth_getBlockByNumber", [hex(number), False])["hash"])


def wait_for_blocks(url: str, at_least: int = 1, timeout: float = 60.0) -> int:
    """Wait until the node at `url` answers and has finalized `at_least` blocks after genesis."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            number = int(rpc_call(url, "eth_blockNumber"), 16)
            if number >= at_least:
                return number
        except (OSError, RuntimeError, ValueError) as error:
            last_error = error
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not reach block {at_least} in {timeout} s (last error: {last_error})")
