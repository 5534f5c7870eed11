"""`python -m opening`: a DKG and a sealed bid through the command line, and clear refusals of bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from opening.cli import main as cli
from opening.envelope import OpeningKey, commitment_of, parse_envelope
from opening.witness import load_share

PASS = ["--passphrase-env", "JZ_TEST_CLI_PASSPHRASE"]


@pytest.fixture(autouse=True)
def _passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JZ_TEST_CLI_PASSPHRASE", "见证 passphrase")


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = cli([*PASS, *args])
    captured = capsys.readouterr()
    return status, captured.out.strip(), captured.err.strip()


def test_dkg_and_sealing_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    section = "0x" + os.urandom(32).hex()
    publics = []
    for j in (1, 2, 3):
        status, out, _ = _run(capsys, "transport-key", "--out", str(tmp_path / f"transport-{j}.json"))
        assert status == 0
        publics.append(out)
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"section_id": section, "threshold": 2, "transport_keys": publics}))
    deals = [str(tmp_path / f"deal-{j}.json") for j in (1, 2, 3)]
    for j in (1, 2, 3):
        assert _run(capsys, "deal", "--params", str(params), "--index", str(j), "--out", deals[j - 1])[0] == 0
    for j in (1, 2, 3):
        status, out, _ = _run(
            capsys, "complain", "--params", str(params), "--index", str(j),
            "--transport-key", str(tmp_path / f"transport-{j}.json"), "--deals", *deals,
            "--out", str(tmp_path / f"complaints-{j}.json"),
        )  # fmt: skip
        assert (status, out) == (0, "0 complaint(s)")
    keys = set()
    for j in (1, 2, 3):
        status, out, _ = _run(
            capsys, "finish-dkg", "--params", str(params), "--deals", *deals,
            "--complaints", *[str(tmp_path / f"complaints-{i}.json") for i in (1, 2, 3)],
            "--index", str(j), "--transport-key", str(tmp_path / f"transport-{j}.json"),
            "--share-out", str(tmp_path / f"share-{j}.json"),
        )  # fmt: skip
        assert status == 0
        summary = json.loads(out)
        assert summary["qualified"] == [1, 2, 3]
        keys.add(summary["opening_key"])
        share = load_share(tmp_path / f"share-{j}.json", "见证 passphrase")
        assert share.index == j
    (opening_key,) = keys
    assert OpeningKey.decode(bytes.fromhex(opening_key)).threshold == 2

    document = tmp_path / "投标文件.pdf"
    document.write_bytes(b"%PDF-1.7 document")
    out_file = tmp_path / "bid.jzb"
    status, out, _ = _run(
        capsys, "seal", "--section", section, "--opening-key", opening_key, "--bidder", "0x" + "ab" * 20,
        "--announced", '{"price_fen": 9900, "duration_days": 30}', "--document", str(document),
        "--out", str(out_file),
    )  # fmt: skip
    assert status == 0
    envelope = out_file.read_bytes()
    assert out == "0x" + commitment_of(envelope).hex()
    assert parse_envelope(envelope).section_id.hex() == section[2:]


def test_bad_input_is_refused_with_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"section_id": "0x12", "threshold": 2, "transport_keys": []}))
    status, _, err = _run(capsys, "deal", "--params", str(params), "--index", "1", "--out", str(tmp_path / "d"))
    assert status == 2 and err.startswith("error:") and "section_id" in err
    status, _, err = _run(capsys, "deal", "--params", str(tmp_path / "missing.json"), "--index", "1", "--out", "x")
    assert status == 2 and "missing.json" in err
    status, _, err = _run(
        capsys, "seal", "--section", "0x" + "00" * 32, "--opening-key", "0102", "--bidder", "0x" + "ab" * 20,
        "--announced", '{"price_fen": 1}', "--document", str(params), "--out", str(tmp_path / "x"),
    )  # fmt: skip
    assert status == 2 and "opening key" in err
    (tmp_path / "t.json").write_text("{}")
    status, _, err = _run(capsys, "finish-dkg", "--params", str(params), "--deals", str(tmp_path / "t.json"))
    assert status == 2
    assert _run(capsys, "transport-key", "--out", str(tmp_path / "t1.json"))[0] == 0
    assert cli(["--passphrase-env", "JZ_NOT_SET_ANYWHERE", "transport-key", "--out", "x"]) == 2
    assert "JZ_NOT_SET_ANYWHERE" in capsys.readouterr().err


def test_chain_commands_refuse_missing_or_unreachable_nodes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    opening = ["open", "--section", "0x" + "11" * 32, "--envelopes", str(tmp_path), "--shares", "s.json", "--out", "r"]
    status, _, err = _run(capsys, *opening)
    assert status == 2 and "--rpc-url" in err
    unreachable = ["--rpc-url", "http://127.0.0.1:9", "--registry", "0x" + "22" * 20]
    status, _, err = _run(capsys, *unreachable, *opening)
    assert status == 2 and err.startswith("error:")
    status, _, err = _run(capsys, *unreachable, "verify-opening", "--section", "0x12", "--envelopes", str(tmp_path),
                          "--shares", "s.json", "--record", "r")  # fmt: skip
    assert status == 2 and "--section" in err


def test_module_entry_point_answers_help() -> None:
    done = subprocess.run([sys.executable, "-m", "opening", "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "verify-opening" in done.stdout
    done = subprocess.run([sys.executable, "-m", "opening", "nonsense"], capture_output=True, text=True, check=False)
    assert done.returncode == 2
