"""The compiler toolchain: solc-js through py-solc-x, reproducible artifacts, rebuilt on change only."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from contracts.toolchain import (
    SOLC_SHIM,
    SOURCE_DIR,
    STAMP_NAME,
    Artifact,
    CompilationFailed,
    compile_all,
    compiler_version,
    load_artifacts,
)


def test_shim_reports_the_pinned_compiler() -> None:
    output = subprocess.run([str(SOLC_SHIM), "--version"], capture_output=True, text=True, check=True).stdout
    assert "Version: 0.8.30+commit.73712a01" in output
    assert compiler_version().startswith("0.8.30+commit.73712a01")


def test_shim_refuses_other_modes() -> None:
    result = subprocess.run([str(SOLC_SHIM), "--bin", "x.sol"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "only --version and --standard-json" in result.stderr


@pytest.fixture(scope="module")
def fresh_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Artifact]]:
    """One build from scratch of the project's sources (seconds of solc-js), for the tests below that
    only read it: they copy it before changing anything."""
    build = tmp_path_factory.mktemp("fresh") / "build"
    return build, compile_all(build, force=True)


def test_artifacts_hold_abi_bytecode_source_hash_and_compiler(fresh_build: tuple[Path, dict[str, Artifact]]) -> None:
    build, artifacts = fresh_build
    assert set(artifacts) == {"Consortium", "TenderRegistry", "GuaranteeRegistry"}
    data = json.loads((build / "TenderRegistry.json").read_text())
    assert set(data) == {
        "contractName",
        "abi",
        "bytecode",
        "deployedBytecode",
        "sourcePath",
        "sourceHash",
        "compilerVersion",
    }
    assert data["bytecode"].startswith("0x60") and len(data["deployedBytecode"]) > 1000
    assert data["compilerVersion"].startswith("0.8.30")


def test_builds_are_byte_for_byte_reproducible(fresh_build: tuple[Path, dict[str, Artifact]], tmp_path: Path) -> None:
    first, _ = fresh_build
    compile_all(tmp_path / "again", force=True)  # a second build from scratch, in another folder
    files = sorted(p.name for p in first.iterdir())
    assert files == sorted(p.name for p in (tmp_path / "again").iterdir())
    for name in files:
        assert (first / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name


def test_unchanged_sources_are_not_recompiled_and_changed_ones_are(
    fresh_build: tuple[Path, dict[str, Artifact]], tmp_path: Path
) -> None:
    sources = tmp_path / "src"
    shutil.copytree(SOURCE_DIR, sources)
    build = tmp_path / "build"
    shutil.copytree(fresh_build[0], build)  # a build of these very sources, made from scratch elsewhere
    stamp = (build / STAMP_NAME).stat().st_mtime_ns
    first = compile_all(build, source_dir=sources)
    assert (build / STAMP_NAME).stat().st_mtime_ns == stamp and first == fresh_build[1]
    again = compile_all(build, source_dir=sources)
    assert (build / STAMP_NAME).stat().st_mtime_ns == stamp  # nothing rewritten
    assert again == first

    consortium = sources / "Consortium.sol"
    consortium.write_text(consortium.read_text() + "\n// changed\n")
    changed = compile_all(build, source_dir=sources)
    assert changed["Consortium"].source_hash != first["Consortium"].source_hash
    assert changed["TenderRegistry"].source_hash == first["TenderRegistry"].source_hash
    assert load_artifacts(build)["Consortium"].source_hash == changed["Consortium"].source_hash


def test_a_compile_error_is_reported_with_the_compilers_message(tmp_path: Path) -> None:
    sources = tmp_path / "src"
    sources.mkdir()
    (sources / "Broken.sol").write_text("pragma solidity 0.8.30; contract Broken { function f() { } }")
    with pytest.raises(CompilationFailed, match=r"Broken\.sol"):
        compile_all(tmp_path / "build", source_dir=sources)
    assert not (tmp_path / "build").exists()  # nothing half-written


def test_no_sources_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CompilationFailed, match="no Solidity sources"):
        compile_all(tmp_path / "build", source_dir=tmp_path)


def test_compiler_warnings_fail_the_build(tmp_path: Path) -> None:
    sources = tmp_path / "src"
    sources.mkdir()
    (sources / "Noisy.sol").write_text(
        "// SPDX-License-Identifier: Apache-2.0\npragma solidity 0.8.30;\n"
        "contract Noisy { function f(uint256 unused) external pure returns (uint256) { return 1; } }\n"
    )
    with pytest.raises(CompilationFailed, match="compiler warnings"):
        compile_all(tmp_path / "build", source_dir=sources)
