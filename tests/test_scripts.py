"""Operator commands: run_local (make run), deploy and the gas report end as documented."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from contracts.devnode import free_port, rpc_ready, start_anvil
from contracts.toolchain import PROJECT_ROOT

SCRIPTS = PROJECT_ROOT / "scripts"


def _run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=PROJECT_ROOT)


def test_run_local_starts_a_chain_deploys_and_prints_the_deployment(tmp_path: Path) -> None:
    out = tmp_path / "deployment.json"
    result = _run(
        str(SCRIPTS / "run_local.py"), "--once", "--port", "0", "--out", str(out), "--folder", str(tmp_path / "chain")
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads(out.read_text())
    for name in ("Consortium", "GuaranteeRegistry", "TenderRegistry"):
        assert manifest["contracts"][name]["address"] in result.stdout
    assert "chain_node, 4 QBFT validators" in result.stdout


def test_run_local_can_use_anvil_as_the_reference(tmp_path: Path) -> None:
    out = tmp_path / "deployment.json"
    args = ("--once", "--chain", "anvil", "--port", str(free_port()), "--out", str(out))
    result = _run(str(SCRIPTS / "run_local.py"), *args)
    assert result.returncode == 0, result.stderr
    assert "anvil" in result.stdout


def test_run_local_on_ctrl_c_stops_the_platform_then_the_chain_without_an_error(tmp_path: Path) -> None:
    """Ctrl-C in the terminal signals the whole foreground process group: only run_local may get it, so
    that it stops the platform (web and outbox sender) while the chain still answers, then the chain."""
    out, log = tmp_path / "deployment.json", tmp_path / "run_local.log"
    port = free_port()
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, str(SCRIPTS / "run_local.py"), "--chain", "anvil", "--port", str(port), "--out", str(out),
             "--platform-port", "0"],
            cwd=PROJECT_ROOT, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 150
            while "press Ctrl-C" not in log.read_text(errors="replace"):
                assert process.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
                time.sleep(0.2)
            time.sleep(2)  # the outbox sender is polling the chain by now
            os.killpg(process.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
            assert process.wait(timeout=60) == 0
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    text = log.read_text(errors="replace")
    assert "Handling signal: int" in text and "Shutting down: Master" in text  # the platform went down
    for word in ("ERROR", "Traceback", "WARNING", "unexpectedly"):
        assert word not in text, text[-3000:]
    assert not rpc_ready(f"http://127.0.0.1:{port}")  # and then the chain


def test_make_demo_runs_a_whole_tender_through_the_platform(tmp_path: Path) -> None:
    """`make demo`: every party through the platform's HTTP API on a 4-validator chain_node network."""
    result = _run(str(SCRIPTS / "demo.py"), "--folder", str(tmp_path / "demo"), timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert out.count("唱标  ") == 5 and "撤销（密封到错误的开标公钥）" in out
    for step in ("开标公钥上链", "保函上链", "承诺值上链", "开标记录上链", "异议（第 1 号）上链", "见证：交易",
                 "定标上链", "合同签订上链", "被索赔并赔付", "已解除", "genuine_in_force", "演示完成"):
        assert step in out, step


def test_deploy_script_writes_a_manifest(tmp_path: Path) -> None:
    node = start_anvil()
    try:
        out = tmp_path / "manifest.json"
        result = _run(str(SCRIPTS / "deploy.py"), "--rpc-url", node.rpc_url, "--out", str(out))
        assert result.returncode == 0, result.stderr
        manifest = json.loads(out.read_text())
        assert manifest["rpcUrl"] == node.rpc_url
        assert json.loads(result.stdout.strip().splitlines()[-1]) == manifest
    finally:
        node.stop()


def test_deploy_script_explains_a_missing_node(tmp_path: Path) -> None:
    result = _run(
        str(SCRIPTS / "deploy.py"), "--rpc-url", f"http://127.0.0.1:{free_port()}", "--out", str(tmp_path / "m")
    )
    assert result.returncode == 2
    assert "no JSON-RPC node answers" in result.stderr
    assert not (tmp_path / "m").exists()


def test_deploy_script_explains_a_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "bad.json"
    config.write_text('{"members": []}')
    result = _run(str(SCRIPTS / "deploy.py"), "--config", str(config), "--out", str(tmp_path / "m"))
    assert result.returncode == 2
    assert "deploy:" in result.stderr


def test_gas_report_ends_with_one_json_line_within_targets() -> None:
    result = _run(str(SCRIPTS / "gas_report.py"))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["meets_targets"] is True
    assert summary["commitBid_max"] <= 120_000
    assert summary["issueGuarantee_max"] <= 150_000
    expected_functions = {
        "addSection",
        "answerObjection",
        "attestOpening",
        "award",
        "cancel",
        "claim",
        "closeOpening",
        "createTender",
        "expire",
        "proposeAddMember",
        "proposeRemoveMember",
        "proposeSetRoles",
        "proposeSetThreshold",
        "raiseObjection",
        "recordBidOpened",
        "recordContractSigned",
        "recordDecryptionFailure",
        "recordPayout",
        "recordRefusalToSign",
        "recordWithdrawalAfterDeadline",
        "replaceBid",
        "setOpeningKey",
        "withdrawBid",
        "approve",
        "commitBid",
        "issue",
        "release",
    }
    measured = {label.split(" (")[0] for label in summary["gas"]}
    assert expected_functions <= measured
