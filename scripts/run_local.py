"""`make run`: start the local consortium chain, deploy the contracts from the dev consortium config,
print the deployment, and keep the chain running until interrupted.

The chain is our own chain_node network (4 validators as separate processes) by default; `--chain
anvil` uses anvil from node_modules instead, as the independent reference.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from eth_utils import to_checksum_address

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chain_node.network import NodeLayout, dev_consortium_address, lay_out, start_validator, wait_for_blocks
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
    args = parser.parse_args(argv)

    artifacts = compile_all()
    stop_chain: Callable[[], None]
    alive: Callable[[], bool]
    layouts: list[NodeLayout] = []
    if args.chain == "anvil":
        anvil = start_anvil(args.port or None)
        rpc_url, stop_chain = anvil.rpc_url, anvil.stop

        def alive() -> bool:
            return anvil.process.poll() is None

        chain_label, logs = "anvil from node_modules (reference node)", str(anvil.log_path)
    else:
        folder = args.folder
        if folder.exists():
            shutil.rmtree(folder)
        layouts = lay_out(folder, args.validators, base_rpc_port=args.port or None)
        validators = [start_validator(layout, folder / "logs") for layout in layouts]
        wait_for_blocks(layouts[0].rpc_url, 1, timeout=60)
        rpc_url = layouts[0].rpc_url

        def stop_chain() -> None:
            for validator in validators:
                validator.stop()

        def alive() -> bool:
            return all(v.process.poll() is None for v in validators)

        chain_label, logs = f"chain_node, {len(layouts)} QBFT validators (separate processes)", str(folder / "logs")
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        chain = Chain(rpc_url)
        _, manifest = deploy(chain, load_config(args.config))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
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
        if not args.once:
            print("Running; press Ctrl-C to stop.", flush=True)
            while not stop.wait(1.0):
                if not alive():
                    print("the chain stopped unexpectedly; see " + logs, file=sys.stderr)
                    return 1
    finally:
        stop_chain()
    return 0


if __name__ == "__main__":
    sys.exit(main())
