"""`make run`: start the local consortium chain, deploy the contracts from the dev consortium config,
print the deployment, and keep the chain running until interrupted.

The chain is our own chain_node network (4 validators as separate processes) by default; `--chain
anvil` uses anvil from node_modules instead, as the independent reference.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from eth_utils import to_checksum_address

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chain_node.network import (
    NodeLayout,
    RunningValidator,
    dev_consortium_address,
    free_ports,
    lay_out,
    start_validator,
    stop_validators,
    wait_for_blocks,
)
from contracts.client import Chain
from contracts.deploy import deploy, load_config
from contracts.devnode import start_anvil
from contracts.toolchain import PROJECT_ROOT, compile_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8545, help="first JSON-RPC port; 0 picks free ports")
    parser.add_argument("--config", type=Path, default=PROJECT_ROOT / "scripts" / "consortium.dev.json")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "build" / "deployment.json")
    parser.add_argument("--once", action="store_true", help="stop the chain after deploying (for checks)")
    parser.add_argument("--chain", choices=["chain_node", "anvil"], default="chain_node")
    parser.add_argument("--validators", type=int, default=4)
    parser.add_argument("--folder", type=Path, default=PROJECT_ROOT / "build" / "chain", help="network files and data")
    parser.add_argument("--platform-port", type=int, default=8000, help="the web platform's port (0: a free one)")
    parser.add_argument("--no-platform", action="store_true", help="only the chain and the contracts")
    parser.add_argument("--platform-workers", type=int, default=2,
                        help="the platform's gunicorn worker processes (2: uploads use both cores)")
    args = parser.parse_args(argv)
    if args.port == 0 and args.platform_port == 8000:
        args.platform_port = 0

    stop = threading.Event()
    stoppers: list[subprocess.Popen[bytes]] = []

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Ctrl-C reaches only this process (the chain and the platform run in sessions of their own), which
    # then stops them in order: the platform (web and outbox sender) while the chain still answers it,
    # then the chain. A chain stopped first would make the sender's last round fail.
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    artifacts = compile_all()
    local = start_chain(args.chain, args.port, args.validators, args.folder)
    rpc_url, layouts, chain_label, logs = local.rpc_url, local.layouts, local.label, local.logs
    stop_chain, alive = local.stop, local.alive
    try:
        manifest = deploy_consortium(rpc_url, args.config, args.out)
        print(f"Jianzheng local platform (chain: {chain_label})")
        print(f"  JSON-RPC      {rpc_url}   chain id {manifest['chainId']}")
        if args.chain == "chain_node":
            for layout in layouts:
                print(f"    {layout.name}  0x{layout.address.hex()}  rpc {layout.rpc_url}  p2p {layout.p2p_port}")
        print(f"  compiler      solc {manifest['compilerVersion']} (npm solc-js via py-solc-x)")
        for name, info in manifest["contracts"].items():
            size = (len(artifacts[name].deployed_bytecode) - 2) // 2
            print(f"  {name:18s}  {info['address']}  block {info['block']}  {size} bytes")
        print(f"  consortium    {len(manifest['members'])} members, admin threshold {manifest['adminThreshold']}")
        if args.chain == "chain_node":
            named = to_checksum_address(dev_consortium_address())
            deployed = manifest["contracts"]["Consortium"]["address"]
            state = "members may transact" if named == deployed else f"NOT the deployed one ({deployed})"
            print(f"  permissioning genesis + Consortium {named}: {state}")
        for member in manifest["members"]:
            print(f"    {member['account']}  {','.join(member['roles']):18s} {member['name']}")
        print(f"  manifest      {args.out}")
        sys.stdout.flush()
        if not args.no_platform and not stop.is_set():
            platform, _ = start_platform(rpc_url, args.out, args.config, args.platform_port,
                                         workers=args.platform_workers)
            platform_alive = platform.poll
            stoppers.append(platform)
        else:
            platform_alive = lambda: None  # noqa: E731
        if not args.once:
            print("Running; press Ctrl-C to stop.", flush=True)
            while not stop.wait(1.0):
                if not alive():
                    print("the chain stopped unexpectedly; see " + logs, file=sys.stderr)
                    return 1
                if platform_alive() is not None:
                    print("the platform stopped unexpectedly; see its output above", file=sys.stderr)
                    return 1
    finally:
        for process in stoppers:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        stop_chain()
    return 0


@dataclass
class LocalChain:
    rpc_url: str
    rpc_urls: list[str]
    label: str
    logs: str
    layouts: list[NodeLayout]
    stop: Callable[[], None]
    alive: Callable[[], bool]


def start_chain(kind: str, port: int, validators: int, folder: Path) -> LocalChain:
    """A fresh local chain: `validators` chain_node processes (data under `folder`, emptied first) or anvil,
    each in a session of its own (the caller stops them: a Ctrl-C in the terminal does not)."""
    if kind == "anvil":
        anvil = start_anvil(port or None, own_session=True)
        return LocalChain(anvil.rpc_url, [anvil.rpc_url], "anvil from node_modules (reference node)",
                          str(anvil.log_path), [], anvil.stop, lambda: anvil.process.poll() is None)
    if folder.exists():
        shutil.rmtree(folder)
    layouts = lay_out(folder, validators, base_rpc_port=port or None)
    running: list[RunningValidator] = []

    def stop() -> None:
        stop_validators(running)

    try:
        for layout in layouts:
            running.append(start_validator(layout, folder / "logs", own_session=True))
        wait_for_blocks(layouts[0].rpc_url, 1, timeout=60)
    except BaseException:
        stop()  # out of our process group, nothing else would stop them
        raise

    return LocalChain(layouts[0].rpc_url, [layout.rpc_url for layout in layouts],
                      f"chain_node, {len(layouts)} QBFT validators (separate processes)", str(folder / "logs"),
                      layouts, stop, lambda: all(v.process.poll() is None for v in running))


def deploy_consortium(rpc_url: str, config: Path, out: Path) -> dict[str, Any]:
    """Deploy the consortium's contracts and write the deployment manifest to `out`."""
    _, manifest = deploy(Chain(rpc_url), load_config(config))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def start_platform(
    rpc_url: str,
    deployment: Path,
    consortium: Path,
    port: int,
    *,
    folder: Path | None = None,
    announce: bool = True,
    log: Path | None = None,
    workers: int = 2,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the web platform (scripts/run_platform.py) on a fresh database and wait until it answers;
    returns the process and its URL.

    The chain starts empty on every run, so the platform's database does too (build/platform/).
    """
    folder = folder or PROJECT_ROOT / "build" / "platform"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    port = port or free_ports(1)[0]
    command = [
        sys.executable,
        str(PROJECT_ROOT / "scripts" / "run_platform.py"),
        "--rpc-url", rpc_url,
        "--deployment", str(deployment),
        "--seed", str(consortium),
        "--port", str(port),
        "--database-url", f"sqlite:///{folder / 'jianzheng.db'}",
        "--workers", str(workers),
    ]  # fmt: skip
    output = None if log is None else open(log, "wb")  # noqa: SIM115 (the child keeps it; closed with us)
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, start_new_session=True, stdout=output,
                               stderr=subprocess.STDOUT if output else None)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the platform did not start on {url}")
        time.sleep(0.3)
    if announce:
        password = os.environ.get("JIANZHENG_DEV_PASSWORD", "jianzheng-dev")
        print(f"  platform      {url}  (log in with a member's 统一社会信用代码 as user name, password {password})")
        print(f"  guarantees    {url}guarantees/verify  (anyone checks a letter: upload it or type its number)")
        sys.stdout.flush()
    return process, url


if __name__ == "__main__":
    sys.exit(main())
