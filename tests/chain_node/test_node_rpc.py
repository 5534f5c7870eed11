"""chain_node as a user meets it: a real 4-validator network over JSON-RPC, bad input, proofs."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from hexbytes import HexBytes

from chain_node.network import rpc_call
from contracts.client import Signer
from contracts.deploy import ConsortiumConfig, load_config
from contracts.records import BidCover
from contracts.toolchain import PROJECT_ROOT
from tests.backends import STARTERS, TEST_ACCOUNT_KEYS, Backend
from tests.helpers import commit_bid, fresh_id, new_section, random_hash

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def net() -> Iterator[Backend]:
    with STARTERS["chain_node"]() as backend:
        yield backend


@pytest.fixture(scope="module")
def config() -> ConsortiumConfig:
    return load_config(PROJECT_ROOT / "scripts" / "consortium.dev.json")


def post(url: str, body: bytes) -> Any:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def call(net: Backend, method: str, params: list[Any]) -> Any:
    return post(net.rpc_urls[0], json.dumps({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}).encode())


# ---------------------------------------------------------------------- JSON-RPC framing


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", -32700),
        (b"[]", -32600),
        (b'"just a string"', -32600),
        (b'{"jsonrpc": "1.0", "id": 1, "method": "eth_chainId"}', -32600),
        (b'{"jsonrpc": "2.0", "id": 1, "method": 5}', -32600),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": {"a": 1}}', -32602),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "eth_doesNotExist", "params": []}', -32601),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance", "params": ["0x1234"]}', -32602),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance", "params": []}', -32602),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["soon", false]}', -32602),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["0x1", "yes"]}', -32602),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction", "params": ["0xzz"]}', -32602),
    ],
)
def test_malformed_requests_get_standard_errors(net: Backend, body: bytes, code: int) -> None:
    answer = post(net.rpc_urls[0], body)
    assert answer["error"]["code"] == code, answer
    assert answer["error"]["message"]


def test_oversized_bodies_and_batches_are_refused(net: Backend) -> None:
    huge = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":["' + b"a" * (9 * 1024 * 1024) + b'"]}'
    try:
        answer = post(net.rpc_urls[0], huge)
        assert answer["error"]["code"] in (-32005, -32600)
    except urllib.error.HTTPError as error:  # the HTTP layer may refuse it first (413)
        assert error.code == 413
    batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_chainId"} for i in range(1001)]
    assert post(net.rpc_urls[0], json.dumps(batch).encode())["error"]["code"] == -32005
    assert int(call(net, "eth_blockNumber", [])["result"], 16) >= 1  # still serving


def test_batches_answer_each_request(net: Backend) -> None:
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": 2, "method": "nope", "params": []},
        {"jsonrpc": "2.0", "method": "eth_chainId", "params": []},  # a notification: no answer
    ]
    answers = post(net.rpc_urls[0], json.dumps(batch).encode())
    assert [a["id"] for a in answers] == [1, 2]
    assert answers[0]["result"] == hex(net.chain.chain_id)
    assert answers[1]["error"]["code"] == -32601


def test_standard_methods(net: Backend, config: ConsortiumConfig) -> None:
    w3 = net.chain.w3
    assert w3.eth.chain_id == int(call(net, "net_version", [])["result"])
    assert "chain_node" in w3.client_version
    latest = w3.eth.get_block("latest")
    assert latest["number"] >= 1 and latest["timestamp"] > 1_600_000_000
    assert w3.eth.get_block(latest["hash"])["number"] == latest["number"]
    assert w3.eth.get_balance(config.deployer.account.address) > 0
    assert w3.eth.get_code(config.deployer.account.address) == b""
    assert w3.eth.gas_price > 0 and w3.eth.max_priority_fee > 0
    history = w3.eth.fee_history(3, "latest", [50])
    assert len(history["baseFeePerGas"]) == len(history["gasUsedRatio"]) + 1
    assert call(net, "eth_getBlockByNumber", ["0xffffff", False])["result"] is None
    assert call(net, "eth_getTransactionReceipt", ["0x" + "00" * 32])["result"] is None
    at_genesis = call(net, "eth_getBalance", [config.deployer.address, "0x0"])["result"]
    assert int(at_genesis, 16) == 10**24  # the development funding, before the deployer paid any fee


# A contract with one storage slot: calldata (one word) sets it, empty calldata returns it.
_SLOT_RUNTIME = "3615600c57600035600055005b60005460005260206000f3"
_SLOT_INIT = bytes.fromhex("6018600c60003960186000f3" + _SLOT_RUNTIME)


def test_older_blocks_state_is_read_and_called_as_it_was(net: Backend, config: ConsortiumConfig) -> None:
    chain = net.chain
    deployed = chain.send(config.deployer, None, _SLOT_INIT, gas=200_000)
    address = chain.w3.eth.get_transaction_receipt(HexBytes(deployed.tx_hash))["contractAddress"]
    first = chain.send(config.deployer, address, (5).to_bytes(32, "big"), gas=100_000)
    second = chain.send(config.deployer, address, (9).to_bytes(32, "big"), gas=100_000)

    def read_at(block: int | str) -> int:
        tag = block if isinstance(block, str) else hex(block)
        return int(call(net, "eth_call", [{"to": address}, tag])["result"], 16)

    assert read_at(first.block_number) == 5
    assert read_at(second.block_number) == 9 == read_at("latest")
    assert read_at(deployed.block_number) == 0
    slot_at_first = call(net, "eth_getStorageAt", [address, "0x0", hex(first.block_number)])["result"]
    assert int(slot_at_first, 16) == 5
    assert call(net, "eth_getCode", [address, hex(deployed.block_number - 1)])["result"] == "0x"
    assert call(net, "eth_getCode", [address, hex(deployed.block_number)])["result"] == "0x" + _SLOT_RUNTIME
    nonce_before = call(net, "eth_getTransactionCount", [config.deployer.address, hex(deployed.block_number - 1)])
    nonce_after = call(net, "eth_getTransactionCount", [config.deployer.address, hex(second.block_number)])
    assert int(nonce_after["result"], 16) == int(nonce_before["result"], 16) + 3
    estimate = call(net, "eth_estimateGas", [{"to": address, "data": "0x" + "00" * 31 + "07"}, hex(first.block_number)])
    assert int(estimate["result"], 16) > 21_000
    future = call(net, "eth_call", [{"to": address}, hex(10**9)])
    assert future["error"]["code"] == -32001


# ---------------------------------------------------------------------- other clients, unmodified

NODE_BIN = PROJECT_ROOT / "node_modules" / ".bin"


def test_ethers_js_deploys_sends_calls_and_reads_logs(net: Backend) -> None:
    key = "0x" + TEST_ACCOUNT_KEYS[1]
    script = Path(__file__).with_name("ethers_client.mjs")
    done = subprocess.run(
        ["node", str(script), net.rpc_urls[1], key, "0x" + _SLOT_INIT.hex()],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT_ROOT,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["chainId"] == str(net.chain.chain_id)
    assert seen["deployStatus"] == 1 and seen["setStatus"] == 1
    assert int(seen["before"], 16) == 0 and int(seen["after"], 16) == 42
    assert int(seen["estimate"]) > 21_000 and int(seen["maxFeePerGas"]) > 0
    assert seen["blockHasTx"] and seen["fetchedFrom"].lower() == seen["wallet"].lower() and seen["nonce"] >= 2
    assert seen["logs"] == 0  # the slot contract emits none; the filter itself must be answered


def test_foundry_cast_reads_and_sends(net: Backend) -> None:
    url = net.rpc_urls[2]

    def cast(*args: str) -> str:
        done = subprocess.run(
            [str(NODE_BIN / "cast"), *args, "--rpc-url", url],
            capture_output=True,
            text=True,
            timeout=120,
            env={"PATH": "/usr/bin:/bin", "HOME": str(PROJECT_ROOT / "build"), "FOUNDRY_DISABLE_NIGHTLY_WARNING": "1"},
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert int(cast("chain-id")) == net.chain.chain_id
    assert int(cast("block-number")) >= 1
    sender = Account.from_key("0x" + TEST_ACCOUNT_KEYS[0]).address
    assert int(cast("balance", sender)) > 0
    receiver = Account.create().address
    sent = json.loads(
        cast("send", "--private-key", "0x" + TEST_ACCOUNT_KEYS[0], receiver, "--value", "12345", "--json")
    )
    assert int(sent["status"], 16) == 1
    assert int(cast("balance", receiver)) == 12345
    assert cast("receipt", sent["transactionHash"], "status") in ("true", "1", "1 (success)")
    assert cast("code", receiver) == "0x"
    assert int(cast("nonce", sender)) >= 1
    assert json.loads(cast("rpc", "jz_status"))["head"].startswith("0x")


def test_every_validator_serves_the_same_chain(net: Backend) -> None:
    heights = [int(rpc_call(url, "eth_blockNumber"), 16) for url in net.rpc_urls]
    common = min(heights)
    hashes = {rpc_call(url, "eth_getBlockByNumber", [hex(common), False])["hash"] for url in net.rpc_urls}
    assert len(hashes) == 1
    validators = rpc_call(net.rpc_urls[0], "jz_validators", ["latest"])
    assert len(validators) == 4


# ---------------------------------------------------------------------- transactions refused with a reason


def _raw(config: ConsortiumConfig, net: Backend, signer: Signer, **overrides: Any) -> str:
    w3 = net.chain.w3
    tx: dict[str, Any] = {
        "to": config.deployer.address,
        "value": 1,
        "gas": 21_000,
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 10**9,
        "nonce": w3.eth.get_transaction_count(signer.account.address, "pending"),
        "chainId": net.chain.chain_id,
        "type": 2,
    }
    tx.update(overrides)
    return "0x" + bytes(Account.sign_transaction(tx, signer.account.key).raw_transaction).hex()


def test_bad_transactions_are_refused_with_the_reason(net: Backend, config: ConsortiumConfig) -> None:
    sender = config.members[7].signer
    first = call(net, "eth_sendRawTransaction", [_raw(config, net, sender)])
    net.chain.w3.eth.wait_for_transaction_receipt(HexBytes(first["result"]), timeout=30)
    cases = {
        "chain id": _raw(config, net, sender, chainId=1),
        "nonce too low": _raw(config, net, sender, nonce=0),
        "nonce too high": _raw(config, net, sender, nonce=10_000),
        "gas limit": _raw(config, net, sender, gas=10**9),
        "not permitted": _raw(config, net, Signer.from_key("0x" + "33" * 32)),
        "intrinsic gas": _raw(config, net, sender, gas=20_000),
    }
    for label, raw in cases.items():
        answer = call(net, "eth_sendRawTransaction", [raw])
        assert "error" in answer, label
        assert answer["error"]["code"] == -32003, (label, answer)
    garbage = call(net, "eth_sendRawTransaction", ["0x02" + "ff" * 40])
    assert garbage["error"]["code"] == -32003
    tampered = bytearray(bytes.fromhex(_raw(config, net, sender)[2:]))
    tampered[-5] ^= 0xFF
    assert call(net, "eth_sendRawTransaction", ["0x" + tampered.hex()])["error"]["code"] == -32003
    # The pool stays healthy: a good transaction still goes through.
    good = call(net, "eth_sendRawTransaction", [_raw(config, net, sender)])
    receipt = net.chain.w3.eth.wait_for_transaction_receipt(HexBytes(good["result"]), timeout=30)
    assert receipt["status"] == 1


# ---------------------------------------------------------------------- proofs for witnesses


def test_proof_bundle_verifies_offline_and_names_each_failure(net: Backend, tmp_path: Path) -> None:
    from contracts.deploy import deploy
    from tests.helpers import Platform

    config = load_config(PROJECT_ROOT / "scripts" / "consortium.dev.json")
    deployment, manifest = deploy(net.chain, config)
    platform = Platform.build(net, deployment, config, manifest)
    section = new_section(platform)
    bidder = platform.bidders[0]
    ciphertext = random_hash()
    result = commit_bid(platform, bidder, section.section_id, ciphertext, BidCover.deposit(fresh_id("deposit")))

    bundle = rpc_call(net.rpc_urls[2], "jz_getProof", [result.tx_hash])
    bundle_path = tmp_path / "bundle.json"
    bundle_path.write_text(json.dumps(bundle))
    validators_path = tmp_path / "validators.json"
    validators_path.write_text(json.dumps({"validators": bundle["validators"]}))

    def verify(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "chain_node", "verify", str(path), "--validators", str(validators_path), *extra],
            capture_output=True,
            text=True,
            cwd=PROJECT_ROOT,
            timeout=60,
        )

    event = [
        "--event",
        "BidCommitted",
        "--arg",
        f"bidder={bidder.address}",
        "--arg",
        f"ciphertextHash=0x{ciphertext.hex()}",
    ]
    ok = verify(bundle_path, *event)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK: BidCommitted emitted" in ok.stdout

    wrong_field = verify(bundle_path, "--event", "BidCommitted", "--arg", f"ciphertextHash=0x{'00' * 32}")
    assert wrong_field.returncode == 1 and "no BidCommitted event with those fields" in wrong_field.stdout

    def tampered(mutate: Any) -> Path:
        copy = json.loads(json.dumps(bundle))
        mutate(copy)
        path = tmp_path / f"tampered-{len(list(tmp_path.iterdir()))}.json"
        path.write_text(json.dumps(copy))
        return path

    def flip_receipt(b: dict[str, Any]) -> None:
        b["receipt"] = b["receipt"][:-2] + ("00" if b["receipt"][-2:] != "00" else "01")

    checks = {
        "receipt differs": tampered(flip_receipt),
        "not final": tampered(lambda b: b.update(commitSeals=b["commitSeals"][:2])),
        "does not hash": tampered(lambda b: b.update(blockHash="0x" + "00" * 32)),
    }
    for reason, path in checks.items():
        failed = verify(path)
        assert failed.returncode == 1, reason
        assert "FAILED" in failed.stdout and reason.split()[0] in failed.stdout, (reason, failed.stdout)

    other_set = tmp_path / "other-validators.json"
    other_set.write_text(json.dumps({"validators": ["0x" + "12" * 20, "0x" + "34" * 20, "0x" + "56" * 20]}))
    foreign = subprocess.run(
        [sys.executable, "-m", "chain_node", "verify", str(bundle_path), "--validators", str(other_set)],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=60,
    )
    assert foreign.returncode == 1 and "not final under this validator set" in foreign.stdout


def test_block_seals_are_served_for_any_final_block(net: Backend) -> None:
    """jz_getSeals: a block's header, commit seals and validator set, for explorers (blocks without a
    transaction have no jz_getProof to ask)."""
    from chain_node.blocks import Header
    from chain_node.consensus import ValidatorSet, check_commit_seals

    number = int(rpc_call(net.rpc_urls[1], "eth_blockNumber"), 16)
    answer = rpc_call(net.rpc_urls[1], "jz_getSeals", [hex(number)])
    header = Header.decode(bytes(HexBytes(answer["header"])))
    assert header.number == number and "0x" + header.hash().hex() == answer["blockHash"]
    assert answer["blockHash"] == rpc_call(net.rpc_urls[1], "eth_getBlockByNumber", [hex(number), False])["hash"]
    validators = ValidatorSet.of(bytes(HexBytes(a)) for a in answer["validators"])
    seals = [(bytes(HexBytes(s["validator"])), bytes(HexBytes(s["signature"]))) for s in answer["commitSeals"]]
    assert check_commit_seals(header.hash(), seals, validators).ok
    with pytest.raises(RuntimeError, match="not final yet"):
        rpc_call(net.rpc_urls[1], "jz_getSeals", [hex(number + 1000)])
