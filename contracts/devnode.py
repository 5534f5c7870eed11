"""Start and stop an anvil node from node_modules: the independent reference chain for tests and runs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from contracts.client import Chain
from contracts.toolchain import PROJECT_ROOT

ANVIL = PROJECT_ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"

# anvil's first default dev account: a publicly known key, only ever used on local chains.
DEV_DEPLOYER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


class NodeStartFailed(Exception):
    """The node did not answer JSON-RPC in time."""


@dataclass
class RunningNode:
    process: subprocess.Popen[bytes]
    rpc_url: str
    log_path: Path
    log_file: BinaryIO

    def stop(self) -> None:
        """End the node we started (by its own pid only)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rpc_ready(rpc_url: str) -> bool:
    request = urllib.request.Request(
        rpc_url,
        data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=1) as response:
            return "result" in json.loads(response.read())
    except OSError:
        return False


def start_anvil(
    port: int | None = None,
    *,
    chain_id: int = 31337,
    block_time: float | None = None,
    prune_history: bool = True,
    log_dir: Path | None = None,
    extra_args: tuple[str, ...] = (),
    own_session: bool = False,
) -> RunningNode:
    """Start anvil on 127.0.0.1. History is pruned by default: anvil otherwise keeps every state.

    `own_session`: out of the caller's process group, so a Ctrl-C in the terminal reaches only the
    caller, which then stops the node when it is ready to (after what still talks to it)."""
    if not ANVIL.is_file():
        raise NodeStartFailed(f"{ANVIL} is missing: run `npm ci` first")
    port = port or free_port()
    args = [str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--chain-id", str(chain_id), "--silent"]
    if block_time is not None:
        args += ["--block-time", str(block_time)]
    if prune_history:
        args += ["--prune-history"]
    args += list(extra_args)
    log_dir = log_dir or PROJECT_ROOT / "build" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"anvil-{port}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - handed to the child process
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ),
                               start_new_session=own_session)
    rpc_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.close()
            raise NodeStartFailed(f"anvil exited with {process.returncode}; see {log_path}")
        if rpc_ready(rpc_url):
            return RunningNode(process, rpc_url, log_path, log)
        time.sleep(0.05)
    process.kill()
    process.wait()
    log.close()
    raise NodeStartFailed(f"anvil did not answer on {rpc_url}; see {log_path}")


def mine_at(chain: Chain, timestamp: int) -> None:
    """Have anvil mine its next block, at once, with this timestamp (its development clock)."""
    chain.w3.provider.make_request("evm_setNextBlockTimestamp", [timestamp])  # type: ignore[arg-type]
    chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
