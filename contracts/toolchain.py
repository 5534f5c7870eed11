"""Compile the Solidity sources with py-solc-x driving the pinned npm `solc` (solc-js).

Artifacts go to `build/contracts/<Name>.json` (not committed). They are rebuilt only when a source,
the compiler or the settings change, and the same inputs always give byte-identical files, so that
anyone can rebuild a deployment's bytecode and compare it with what is on chain.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import solcx

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIR = Path(__file__).resolve().parent / "src"
SOLC_SHIM = Path(__file__).resolve().parent / "solc-shim.js"
DEFAULT_BUILD_DIR = PROJECT_ROOT / "build" / "contracts"
STAMP_NAME = "build-stamp.json"

# Fixed settings: the EVM version is pinned so that the same bytecode runs on anvil and on our own
# chain (revm), whatever the compiler's default becomes.
COMPILER_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "viaIR": False,
    "metadata": {"bytecodeHash": "ipfs"},
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "metadata"]}},
}


class CompilationFailed(Exception):
    """The compiler rejected the sources; the message carries its diagnostics."""


@dataclass(frozen=True)
class Artifact:
    """One compiled contract, as written to the build folder."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    source_path: str
    source_hash: str
    compiler_version: str

    @property
    def artifact_hash(self) -> str:
        """sha256 of the artifact's canonical JSON: what a deployment manifest pins."""
        return hashlib.sha256(_canonical_json(_artifact_to_json(self))).hexdigest()


def abi_type(item: dict[str, Any]) -> str:
    """The canonical type of an ABI parameter, as in signatures: `uint256`, `(bytes32,address)[]`."""
    if item["type"].startswith("tuple"):
        inner = ",".join(abi_type(component) for component in item["components"])
        return f"({inner}){str(item['type'])[5:]}"
    return str(item["type"])


def abi_signature(item: dict[str, Any]) -> str:
    """`Name(type,...)` of an ABI error or event: what its selector or topic hashes."""
    return f"{item['name']}({','.join(abi_type(arg) for arg in item['inputs'])})"


def _canonical_json(value: Any) -> bytes:
    return (json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def _artifact_to_json(artifact: Artifact) -> dict[str, Any]:
    return {
        "contractName": artifact.name,
        "abi": artifact.abi,
        "bytecode": artifact.bytecode,
        "deployedBytecode": artifact.deployed_bytecode,
        "sourcePath": artifact.source_path,
        "sourceHash": artifact.source_hash,
        "compilerVersion": artifact.compiler_version,
    }


def _artifact_from_json(data: dict[str, Any]) -> Artifact:
    return Artifact(
        name=data["contractName"],
        abi=data["abi"],
        bytecode=data["bytecode"],
        deployed_bytecode=data["deployedBytecode"],
        source_path=data["sourcePath"],
        source_hash=data["sourceHash"],
        compiler_version=data["compilerVersion"],
    )


def source_files(source_dir: Path = SOURCE_DIR) -> dict[str, str]:
    """Every Solidity source, keyed by its path relative to the source folder."""
    return {
        path.relative_to(source_dir).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(source_dir.rglob("*.sol"))
    }


@functools.cache
def compiler_version() -> str:
    """The full version string of the pinned solc-js, e.g. `0.8.30+commit.73712a01`.

    Asked once per process: it starts node and loads the compiler (half a second), and every `compile_all`
    needs it, also when the build is up to date."""
    if not (PROJECT_ROOT / "node_modules" / "solc").is_dir():
        raise CompilationFailed("node_modules/solc is missing: run `npm ci` first")
    version = solcx.wrapper.get_solc_version(SOLC_SHIM, with_commit_hash=True)
    return str(version)


def _input_stamp(sources: dict[str, str], version: str) -> str:
    material = {"sources": sources, "settings": COMPILER_SETTINGS, "compiler": version}
    return hashlib.sha256(_canonical_json(material)).hexdigest()


def compile_all(
    build_dir: Path = DEFAULT_BUILD_DIR, force: bool = False, source_dir: Path = SOURCE_DIR
) -> dict[str, Artifact]:
    """Compile every source unless the build folder already holds artifacts of these exact inputs."""
    sources = source_files(source_dir)
    if not sources:
        raise CompilationFailed(f"no Solidity sources in {source_dir}")
    version = compiler_version()
    stamp = _input_stamp(sources, version)
    stamp_path = build_dir / STAMP_NAME
    if not force and stamp_path.is_file():
        recorded = json.loads(stamp_path.read_text())
        if recorded.get("inputHash") == stamp:
            return load_artifacts(build_dir)

    standard_input = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": COMPILER_SETTINGS,
    }
    try:
        output = solcx.compile_standard(standard_input, solc_binary=SOLC_SHIM)
    except solcx.exceptions.SolcError as error:
        raise CompilationFailed(str(error)) from error
    # Warnings fail the build too: they are cheap to fix now and easy to miss later.
    warnings = [e["formattedMessage"] for e in output.get("errors", []) if e.get("severity") == "warning"]
    if warnings:
        raise CompilationFailed("compiler warnings:\n" + "\n".join(warnings))

    artifacts: dict[str, Artifact] = {}
    for source_path, contracts in sorted(output.get("contracts", {}).items()):
        source_hash = hashlib.sha256(sources[source_path].encode()).hexdigest()
        for name, compiled in sorted(contracts.items()):
            bytecode = compiled["evm"]["bytecode"]["object"]
            if not bytecode:
                continue  # interfaces and abstract contracts are not deployable
            artifacts[name] = Artifact(
                name=name,
                abi=compiled["abi"],
                bytecode="0x" + bytecode,
                deployed_bytecode="0x" + compiled["evm"]["deployedBytecode"]["object"],
                source_path=source_path,
                source_hash=source_hash,
                compiler_version=version,
            )

    build_dir.mkdir(parents=True, exist_ok=True)
    for stale in build_dir.glob("*.json"):
        stale.unlink()
    for artifact in artifacts.values():
        (build_dir / f"{artifact.name}.json").write_bytes(_canonical_json(_artifact_to_json(artifact)))
    stamp_record = {
        "inputHash": stamp,
        "compilerVersion": version,
        "contracts": {name: a.artifact_hash for name, a in sorted(artifacts.items())},
    }
    stamp_path.write_bytes(_canonical_json(stamp_record))
    return artifacts


def load_artifacts(build_dir: Path = DEFAULT_BUILD_DIR) -> dict[str, Artifact]:
    """Read the artifacts of the last build."""
    artifacts = {}
    for path in sorted(build_dir.glob("*.json")):
        if path.name == STAMP_NAME:
            continue
        artifact = _artifact_from_json(json.loads(path.read_text()))
        artifacts[artifact.name] = artifact
    return artifacts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compile the Jianzheng contracts from source.")
    parser.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD_DIR)
    parser.add_argument("--force", action="store_true", help="rebuild even if nothing changed")
    args = parser.parse_args(argv)
    try:
        artifacts = compile_all(args.build_dir, force=args.force)
    except CompilationFailed as error:
        print(f"compilation failed:\n{error}", file=sys.stderr)
        return 1
    for name, artifact in sorted(artifacts.items()):
        size = (len(artifact.deployed_bytecode) - 2) // 2
        print(f"{name:20s} {size:6d} bytes  sha256:{artifact.artifact_hash[:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
