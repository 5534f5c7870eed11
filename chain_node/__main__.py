"""`python -m chain_node`: start a local consortium network; `validator` runs one node; `verify` checks a proof."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from chain_node.network import PROJECT_ROOT, lay_out, start_validator, stop_validators, wait_for_blocks


def _network(args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    layouts = lay_out(folder, args.validators, base_rpc_port=args.rpc_port)
    running = [start_validator(layout, folder / "logs") for layout in layouts]
    stop = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        wait_for_blocks(layouts[0].rpc_url, 1, timeout=60)
        print(f"chain_node network: {len(layouts)} validators, genesis {folder / 'genesis.json'}")
        for layout in layouts:
            print(f"  {layout.name}  0x{layout.address.hex()}  rpc {layout.rpc_url}  p2p 127.0.0.1:{layout.p2p_port}")
        sys.stdout.flush()
        while not stop and not args.once:
            if any(v.process.poll() is not None for v in running):
                print("a validator stopped; see the logs in " + str(folder / "logs"), file=sys.stderr)
                return 1
            time.sleep(0.5)
    finally:
        stop_validators(running)
    return 0


def _validator(args: argparse.Namespace) -> int:
    from chain_node.config import load_node_config
    from chain_node.node import run_validator

    run_validator(load_node_config(Path(args.config)))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from chain_node.proofs import main as verify_main

    return verify_main(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chain_node", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    net = sub.add_parser("network", help="start N local validators (the default command)")
    for target in (parser, net):
        target.add_argument("--validators", type=int, default=4)
        target.add_argument("--folder", default=str(PROJECT_ROOT / "build" / "chain"))
        target.add_argument("--rpc-port", type=int, default=None, help="first JSON-RPC port (default: free ports)")
        target.add_argument("--once", action="store_true", help="stop after the first block (for checks)")
    validator = sub.add_parser("validator", help="run one validator")
    validator.add_argument("--config", required=True)
    verify = sub.add_parser("verify", help="check a proof bundle offline against a validator set file")
    verify.add_argument("bundle")
    verify.add_argument("--validators", required=True, help="JSON file with a `validators` list")
    verify.add_argument("--event", help="event name that must be in the receipt (from the contracts' ABIs)")
    verify.add_argument("--arg", action="append", default=[], help="NAME=VALUE the event must carry")
    args = parser.parse_args(argv)
    if args.command == "validator":
        return _validator(args)
    if args.command == "verify":
        return _verify(args)
    return _network(args)


if __name__ == "__main__":
    sys.exit(main())
