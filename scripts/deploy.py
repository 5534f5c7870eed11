"""Deploy the Jianzheng contracts to a running chain from a consortium config; write the manifest.

    python scripts/deploy.py --rpc-url http://127.0.0.1:8545 --config scripts/consortium.dev.json \
        --out build/deployment.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from contracts.client import Chain
from contracts.deploy import ConfigError, deploy, load_config
from contracts.devnode import rpc_ready
from contracts.errors import ContractRevert, TransactionFailed
from contracts.toolchain import PROJECT_ROOT, CompilationFailed, compile_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Deploy and wire the Jianzheng contracts.")
    parser.add_argument("--rpc-url", default="http://127.0.0.1:8545")
    parser.add_argument("--config", type=Path, default=PROJECT_ROOT / "scripts" / "consortium.dev.json")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "build" / "deployment.json")
    args = parser.parse_args(argv)
    try:
        compile_all()
        config = load_config(args.config)
    except (CompilationFailed, ConfigError) as error:
        print(f"deploy: {error}", file=sys.stderr)
        return 2
    if not rpc_ready(args.rpc_url):
        print(f"deploy: no JSON-RPC node answers at {args.rpc_url}", file=sys.stderr)
        return 2
    try:
        _, manifest = deploy(Chain(args.rpc_url), config)
    except (ContractRevert, TransactionFailed, ConfigError) as error:
        print(f"deploy: failed: {error}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(manifest, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
