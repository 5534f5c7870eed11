"""`make run`: start a local chain, deploy the contracts from the dev consortium config, print the
deployment, and keep the chain running until interrupted.

Until the consortium chain (chain_node) lands, the local chain is anvil from node_modules.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from contracts.client import Chain
from contracts.deploy import deploy, load_config
from contracts.devnode import start_anvil
from contracts.toolchain import PROJECT_ROOT, compile_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8545)
    parser.add_argument("--config", type=Path, default=PROJECT_ROOT / "scripts" / "consortium.dev.json")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "build" / "deployment.json")
    parser.add_argument("--once", action="store_true", help="stop the chain after deploying (for checks)")
    args = parser.parse_args(argv)

    artifacts = compile_all()
    node = start_anvil(args.port)
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        chain = Chain(node.rpc_url)
        _, manifest = deploy(chain, load_config(args.config))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print("Jianzheng local platform (chain: anvil from node_modules, until chain_node lands)")
        print(f"  JSON-RPC      {node.rpc_url}   chain id {manifest['chainId']}")
        print(f"  compiler      solc {manifest['compilerVersion']} (npm solc-js via py-solc-x)")
        for name, info in manifest["contracts"].items():
            size = (len(artifacts[name].deployed_bytecode) - 2) // 2
            print(f"  {name:18s}  {info['address']}  block {info['block']}  {size} bytes")
        print(f"  consortium    {len(manifest['members'])} members, admin threshold {manifest['adminThreshold']}")
        for member in manifest["members"]:
            print(f"    {member['account']}  {','.join(member['roles']):18s} {member['name']}")
        print(f"  manifest      {args.out}")
        sys.stdout.flush()
        if not args.once:
            print("Running; press Ctrl-C to stop.", flush=True)
            while not stop.wait(1.0):
                if node.process.poll() is not None:
                    print("the chain stopped unexpectedly; see " + str(node.log_path), file=sys.stderr)
                    return 1
    finally:
        node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
