"""The execution layer against a reference: the same signed blocks on anvil and on our WorldState.

The tender platform is deployed and used by raw transactions (scripts/bench_execution.py builds
them); anvil mines them in the same order, and every receipt, root, bloom and account must be equal.
Around that: admission errors, determinism, checkpoints, calls that must not change anything.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from types import ModuleType
from typing import Any

import pytest
from eth_utils import keccak

from chain_node.blocks import (
    Block,
    Header,
    Receipt,
    block_logs_bloom,
    genesis_header,
    next_base_fee,
    receipt_proof,
    receipts_root,
    transaction_proof,
    transactions_root,
    verify_receipt_proof,
    verify_transaction_proof,
)
from chain_node.execution import (
    EMPTY_CODE_HASH,
    MAX_NONCE_GAP,
    BlockEnv,
    BlockResult,
    FeeCapTooLow,
    GasLimitExceeded,
    InitCodeTooLarge,
    InsufficientFunds,
    IntrinsicGasTooLow,
    NonceTooHigh,
    NonceTooLow,
    NotPermitted,
    SenderNotEOA,
    WorldState,
    apply_block,
    call,
    check_transaction,
    contract_address,
    estimate_gas,
)
from chain_node.transactions import InvalidTransaction, Transaction, WrongChainId, decode_transaction
from contracts.devnode import RunningNode, start_anvil
from contracts.toolchain import PROJECT_ROOT, Artifact, compile_all


def _load_bench() -> ModuleType:
    path = PROJECT_ROOT / "scripts" / "bench_execution.py"
    spec = importlib.util.spec_from_file_location("bench_execution", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_execution"] = module
    spec.loader.exec_module(module)
    return module


bench = _load_bench()
CHAIN_ID: int = bench.CHAIN_ID
GAS_LIMIT: int = bench.GAS_LIMIT
BASE_FEE: int = bench.BASE_FEE
COINBASE = bytes.fromhex("c0ffee" * 6 + "c0ff")
BENEFICIARY = b"\xbe" * 20
OPENING_TIME = 2_000_000_000


def _everyone(_sender: bytes) -> bool:
    return True


@pytest.fixture(scope="module")
def artifacts() -> dict[str, Artifact]:
    return compile_all()


def _decode(raws: list[bytes]) -> list[Transaction]:
    return [decode_transaction(raw, CHAIN_ID) for raw in raws]


def _env(number: int, *, base_fee: int = BASE_FEE, coinbase: bytes = COINBASE) -> BlockEnv:
    return BlockEnv(
        number=number, timestamp=1_700_000_000 + number, coinbase=coinbase, gas_limit=GAS_LIMIT, base_fee=base_fee
    )


def _selfdestructing_create() -> bytes:
    """Init code that self-destructs at once, sending its endowment to BENEFICIARY (EIP-6780: same-tx create)."""
    return bytes.fromhex("73") + BENEFICIARY + bytes.fromhex("ff")


def _scenario_blocks(scenario: Any) -> list[list[bytes]]:
    """Four blocks: deployment; membership and sections; bids with every kind of outcome; bids again."""
    blocks = [scenario.deploy_txs()]
    blocks.append(scenario.admit_bidders(3) + scenario.open_sections(2, OPENING_TIME))
    b0, b1, b2 = scenario.bidders
    s0, s1 = scenario.sections
    registry_slot = "0x" + "00" * 31 + "03"
    third: list[bytes] = [
        scenario.commit_bid(
            b0,
            s0,
            "a",
            tx_type=1,
            access_list=[{"address": "0x" + scenario.registry.hex(), "storageKeys": [registry_slot]}],
        ),
        scenario.commit_bid(b1, s0, "b", tx_type=0),
        scenario.commit_bid(b2, s0, "c"),
        scenario.commit_bid(b0, s1, "d"),
        scenario.commit_bid(b1, s1, "e"),
        scenario.commit_bid(b0, s0, "again"),  # reverts: TenderRegistryBidExists
        scenario.commit_bid(b2, s1, "f", gas=40_000),  # runs out of gas
        scenario.deployer.sign(b"\x77" * 20, b"", gas=21_000, value=10**18, tx_type=0),  # plain transfer, new account
        scenario.deployer.sign(None, bytes.fromhex("60006000fd"), gas=100_000),  # a creation that reverts
        scenario.deployer.sign(None, _selfdestructing_create(), gas=100_000, value=5_000),
    ]
    third += scenario.open_sections(1, OPENING_TIME)
    blocks.append(third)
    s2 = scenario.sections[2]
    blocks.append([scenario.commit_bid(b, s2, f"g{i}") for i, b in enumerate(scenario.bidders)])
    return blocks


# ------------------------------------------------------------------ anvil as the reference


def _rpc(node: RunningNode, method: str, params: list[Any]) -> Any:
    request = urllib.request.Request(
        node.rpc_url,
        data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        reply = json.loads(response.read())
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


def _rpc_error(node: RunningNode, method: str, params: list[Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        node.rpc_url,
        data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        reply = json.loads(response.read())
    assert "error" in reply, reply
    error: dict[str, Any] = reply["error"]
    return error


@pytest.fixture(scope="module")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    node = start_anvil(
        chain_id=CHAIN_ID,
        log_dir=tmp_path_factory.mktemp("anvil"),
        extra_args=(
            "--no-mining",
            "--order",
            "fifo",
            "--hardfork",
            "cancun",
            "--gas-limit",
            str(GAS_LIMIT),
            "--base-fee",
            str(BASE_FEE),
        ),
    )
    try:
        yield node
    finally:
        node.stop()


def _h(value: bytes) -> str:
    return "0x" + value.hex()


def test_blocks_execute_exactly_like_anvil(anvil: RunningNode, artifacts: dict[str, Artifact]) -> None:
    scenario = bench.TenderScenario(artifacts)
    blocks = _scenario_blocks(scenario)
    alloc = scenario.alloc()
    state = WorldState.from_genesis(alloc, chain_id=CHAIN_ID, gas_limit=GAS_LIMIT)
    for address, entry in alloc.items():
        _rpc(anvil, "anvil_setBalance", [address, hex(entry["balance"])])
    _rpc(anvil, "anvil_setCoinbase", [_h(COINBASE)])
    receipts_by_hash: dict[bytes, Receipt] = {}

    for raws in blocks:
        for raw in raws:
            _rpc(anvil, "eth_sendRawTransaction", [_h(raw)])
        _rpc(anvil, "evm_mine", [])
        reference = _rpc(anvil, "eth_getBlockByNumber", ["latest", False])
        env = BlockEnv(
            number=int(reference["number"], 16),
            timestamp=int(reference["timestamp"], 16),
            coinbase=bytes.fromhex(reference["miner"][2:]),
            gas_limit=int(reference["gasLimit"], 16),
            base_fee=int(reference["baseFeePerGas"], 16),
            prevrandao=bytes.fromhex(reference["mixHash"][2:]),
        )
        txs = _decode(raws)
        result = apply_block(state, env, txs, chain_id=CHAIN_ID, permitted=_everyone)
        receipts_by_hash.update((receipt.tx_hash, receipt) for receipt in result.receipts)
        assert result.rejected == ()
        assert [_h(tx.hash) for tx in result.included] == reference["transactions"]
        for ours, tx in zip(result.receipts, txs, strict=True):
            theirs = _rpc(anvil, "eth_getTransactionReceipt", [_h(tx.hash)])
            assert ours.status == int(theirs["status"], 16), theirs
            assert ours.gas_used == int(theirs["gasUsed"], 16), (tx.hash.hex(), theirs)
            assert ours.cumulative_gas_used == int(theirs["cumulativeGasUsed"], 16)
            assert ours.effective_gas_price == int(theirs["effectiveGasPrice"], 16)
            assert ours.tx_type == int(theirs["type"], 16)
            expected_address = theirs["contractAddress"]
            assert (_h(ours.contract_address) if ours.contract_address else None) == expected_address
            assert [(_h(log.address), [_h(t) for t in log.topics], _h(log.data)) for log in ours.logs] == [
                (log["address"], log["topics"], log["data"]) for log in theirs["logs"]
            ]
            assert _h(ours.bloom) == theirs["logsBloom"]
        assert result.gas_used == int(reference["gasUsed"], 16)
        assert _h(receipts_root(result.receipts)) == reference["receiptsRoot"]
        assert _h(transactions_root(result.included)) == reference["transactionsRoot"]
        assert _h(block_logs_bloom(result.receipts)) == reference["logsBloom"] == _h(result.logs_bloom)

    # Every account and slot we hold is what anvil holds (balances include fees, burns and tips).
    exported = state.export_alloc()
    assert _h(COINBASE) in exported and _h(BENEFICIARY) in exported
    for address, entry in exported.items():
        assert int(_rpc(anvil, "eth_getBalance", [address, "latest"]), 16) == int(entry["balance"], 16), address
        assert int(_rpc(anvil, "eth_getTransactionCount", [address, "latest"]), 16) == int(entry["nonce"], 16)
        assert _rpc(anvil, "eth_getCode", [address, "latest"]) == entry.get("code", "0x")
        for slot, value in entry.get("storage", {}).items():
            assert int(_rpc(anvil, "eth_getStorageAt", [address, slot, "latest"]), 16) == int(value, 16)
    destroyed = contract_address(scenario.deployer.address, scenario.deployer.nonce - 1)
    assert _h(destroyed) not in exported  # created and self-destructed in one transaction
    assert state.balance(BENEFICIARY) == 5_000

    # The duplicate bid's revert data is anvil's, in the receipt and through call().
    duplicate = _decode([blocks[2][5]])[0]
    receipt = receipts_by_hash[duplicate.hash]
    assert receipt.status == 0
    assert receipt.revert_data[:4] == keccak(text="TenderRegistryBidExists(bytes32,address)")[:4]
    assert duplicate.to is not None
    called = call(state, sender=duplicate.sender, to=duplicate.to, data=duplicate.data, env=_env(10))
    assert not called.success and called.error == "execution reverted"
    request = {"from": _h(duplicate.sender), "to": _h(duplicate.to), "data": _h(duplicate.data)}
    error = _rpc_error(anvil, "eth_call", [request, "latest"])
    assert _h(called.output) == error["data"] == _h(receipt.revert_data)


# ------------------------------------------------------------------ without a reference node


@pytest.fixture(scope="module")
def platform(artifacts: dict[str, Artifact]) -> tuple[Any, list[list[bytes]]]:
    """The scenario's signed blocks (signed once; each test replays them on its own state)."""
    scenario = bench.TenderScenario(artifacts)
    return scenario, _scenario_blocks(scenario)


def _fresh(scenario: Any) -> WorldState:
    return WorldState.from_genesis(scenario.alloc(), chain_id=CHAIN_ID, gas_limit=GAS_LIMIT)


def _run(state: WorldState, blocks: list[list[bytes]], first: int = 1) -> list[BlockResult]:
    return [
        apply_block(state, _env(number), _decode(raws), chain_id=CHAIN_ID, permitted=_everyone)
        for number, raws in enumerate(blocks, start=first)
    ]


def test_same_blocks_give_the_same_results_and_state_root(platform: tuple[Any, list[list[bytes]]]) -> None:
    scenario, blocks = platform
    first, second = _fresh(scenario), _fresh(scenario)
    assert first.state_root == second.state_root
    results_a = _run(first, blocks)
    results_b = _run(second, blocks)
    assert [r.receipts for r in results_a] == [r.receipts for r in results_b]
    assert [r.state_root for r in results_a] == [r.state_root for r in results_b]
    assert len({r.state_root for r in results_a}) == len(blocks)  # every block changed the state
    assert first.export_alloc() == second.export_alloc()
    statuses = [receipt.status for receipt in results_a[2].receipts]
    assert statuses == [1, 1, 1, 1, 1, 0, 0, 1, 0, 1, 1, 1]


def test_calls_and_estimates_change_nothing(platform: tuple[Any, list[list[bytes]]]) -> None:
    scenario, blocks = platform
    touched, untouched = _fresh(scenario), _fresh(scenario)
    _run(touched, blocks[:3])
    _run(untouched, blocks[:3])
    before = (touched.state_root, touched.export_alloc())
    bid = _decode([blocks[3][0]])[0]
    for _ in range(3):  # a call warms accounts and slots inside revm; none of it may leak into later gas
        result = call(touched, sender=bid.sender, to=bid.to, data=bid.data, env=_env(4))
        assert result.success and result.gas_used > 21_000 and len(result.logs) == 1
    estimate = estimate_gas(touched, sender=bid.sender, to=bid.to, data=bid.data, env=_env(4))
    assert estimate.success
    assert call(touched, sender=bid.sender, to=bid.to, data=bid.data, gas=estimate.gas_used, env=_env(4)).success
    assert not call(
        touched, sender=bid.sender, to=bid.to, data=bid.data, gas=estimate.gas_used - 1, env=_env(4)
    ).success
    assert (touched.state_root, touched.export_alloc()) == before
    after_calls = _run(touched, blocks[3:], first=4)
    reference = _run(untouched, blocks[3:], first=4)
    assert [r.receipts for r in after_calls] == [r.receipts for r in reference]
    assert touched.state_root == untouched.state_root


def test_call_of_a_creation_returns_the_runtime_code(platform: tuple[Any, list[list[bytes]]]) -> None:
    scenario, _ = platform
    state = _fresh(scenario)
    runtime = bytes.fromhex("602a60005260206000f3")
    init = bytes.fromhex("600a600c600039600a6000f3") + runtime
    result = call(state, sender=scenario.deployer.address, to=None, data=init, env=_env(1))
    assert result.success and result.output == runtime
    failing = call(state, sender=scenario.deployer.address, to=None, data=bytes.fromhex("60006000fd"), env=_env(1))
    assert not failing.success and failing.error == "execution reverted"
    broke = call(state, sender=b"\x99" * 20, to=b"\x01" * 20, value=1, env=_env(1))
    assert not broke.success and broke.error is not None and "LackOfFund" in broke.error


def test_checkpoint_revert_restores_state_and_evm(platform: tuple[Any, list[list[bytes]]]) -> None:
    scenario, blocks = platform
    state = _fresh(scenario)
    _run(state, blocks[:2])
    root, alloc = state.state_root, state.export_alloc()
    checkpoint = state.checkpoint()
    proposed = _run(state, blocks[2:3], first=3)[0]
    assert state.state_root != root
    state.revert(checkpoint)
    assert (state.state_root, state.export_alloc()) == (root, alloc)
    again = _run(state, blocks[2:], first=3)  # the EVM forgot the reverted block too
    assert again[0].receipts == proposed.receipts and again[0].state_root == proposed.state_root
    with pytest.raises(ValueError, match="released or reverted"):
        state.revert(checkpoint)


def test_export_and_copy_keep_state_and_commitment(platform: tuple[Any, list[list[bytes]]]) -> None:
    scenario, blocks = platform
    state = _fresh(scenario)
    _run(state, blocks[:3])
    restored = WorldState.from_genesis(
        state.export_alloc(), chain_id=CHAIN_ID, gas_limit=GAS_LIMIT, state_root=state.state_root
    )
    copied = state.copy()
    results = [_run(s, blocks[3:], first=4)[0] for s in (state, restored, copied)]
    assert results[0].receipts == results[1].receipts == results[2].receipts
    assert state.state_root == restored.state_root == copied.state_root


def test_warmth_never_outlives_a_transaction() -> None:
    """EIP-2929 access costs start cold in every transaction, whatever the coinbase or access lists before."""
    signer = bench.Signer(keccak(text="warmth"))
    watched = b"\x0b" * 20
    probe = b"\xb0" * 20  # runtime: BALANCE(watched); STOP
    alloc = {
        _h(signer.address): {"balance": 10**20},
        _h(probe): {"code": "0x73" + watched.hex() + "315000"},
    }
    state = WorldState.from_genesis(alloc, chain_id=CHAIN_ID, gas_limit=GAS_LIMIT)
    cold, warm = 21_000 + 3 + 2_600 + 2, 21_000 + 3 + 100 + 2

    def gas_of(env: BlockEnv, **kwargs: Any) -> list[int]:
        txs = _decode([signer.sign(probe, b"", gas=50_000, **kwargs) for _ in range(2)])
        result = apply_block(state, env, txs, chain_id=CHAIN_ID, permitted=_everyone)
        return [receipt.gas_used for receipt in result.receipts]

    assert gas_of(_env(1, coinbase=watched)) == [warm, warm]  # the coinbase is warm (EIP-3651)
    assert gas_of(_env(2)) == [cold, cold]  # ... only in its own block
    listed = [{"address": _h(watched), "storageKeys": []}]
    with_list = _decode([signer.sign(probe, b"", gas=50_000, access_list=listed)])
    without = _decode([signer.sign(probe, b"", gas=50_000)])
    result = apply_block(state, _env(3), with_list + without, chain_id=CHAIN_ID, permitted=_everyone)
    assert [receipt.gas_used for receipt in result.receipts] == [warm + 2_400, cold]
    assert call(state, sender=signer.address, to=probe, env=_env(4, coinbase=watched)).gas_used == warm
    assert call(state, sender=signer.address, to=probe, env=_env(4)).gas_used == cold


def test_fees_are_charged_burnt_and_tipped() -> None:
    sender_key = keccak(text="fee-test")
    signer = bench.Signer(sender_key)
    recipient = b"\x55" * 20
    state = WorldState.from_genesis({_h(signer.address): {"balance": 10**20}}, chain_id=CHAIN_ID, gas_limit=GAS_LIMIT)
    tx = _decode([signer.sign(recipient, b"", gas=50_000, value=7)])[0]
    base_fee = 2 * 10**9
    result = apply_block(state, _env(1, base_fee=base_fee), [tx], chain_id=CHAIN_ID, permitted=_everyone)
    receipt = result.receipts[0]
    price = min(bench.MAX_FEE, base_fee + bench.PRIORITY_FEE)
    assert receipt.gas_used == 21_000 and receipt.effective_gas_price == price
    assert state.balance(signer.address) == 10**20 - 21_000 * price - 7
    assert state.balance(recipient) == 7
    assert state.balance(COINBASE) == 21_000 * (price - base_fee)  # the tip; the base fee is burnt
    assert state.nonce(signer.address) == 1


def test_invalid_transactions_are_rejected_not_included() -> None:
    rich = bench.Signer(keccak(text="rich"))
    poor = bench.Signer(keccak(text="poor"))
    alloc = {_h(rich.address): {"balance": 10**21}, _h(poor.address): {"balance": 10}}
    state = WorldState.from_genesis(alloc, chain_id=CHAIN_ID, gas_limit=GAS_LIMIT)
    ok = rich.sign(b"\x01" * 20, b"", gas=21_000)
    gap = bench.Signer(rich.key, nonce=5).sign(b"\x01" * 20, b"", gas=21_000)
    broke = poor.sign(b"\x01" * 20, b"", gas=21_000)
    replay = ok
    txs = _decode([ok, gap, broke, replay])
    result = apply_block(state, _env(1), txs, chain_id=CHAIN_ID, permitted=_everyone)
    assert result.included == (txs[0],)
    assert [(tx, type(error)) for tx, error in result.rejected] == [
        (txs[1], NonceTooHigh),
        (txs[2], InsufficientFunds),
        (txs[3], NonceTooLow),
    ]
    assert state.nonce(poor.address) == 0 and state.balance(poor.address) == 10

    outsider = _decode([poor.sign(b"\x01" * 20, b"", gas=21_000)])
    result = apply_block(state, _env(2), outsider, chain_id=CHAIN_ID, permitted=lambda sender: sender == rich.address)
    assert isinstance(result.rejected[0][1], NotPermitted)
    assert result.state_root == state.state_root

    many = [rich.sign(b"\x01" * 20, b"", gas=21_000) for _ in range(3)]
    small = BlockEnv(number=3, timestamp=1, coinbase=COINBASE, gas_limit=50_000, base_fee=BASE_FEE)
    result = apply_block(state, small, _decode(many), chain_id=CHAIN_ID, permitted=_everyone)
    assert len(result.included) == 2
    assert isinstance(result.rejected[0][1], GasLimitExceeded)
    assert "left in the block" in str(result.rejected[0][1])


def _check(state: WorldState, raw: bytes, **overrides: Any) -> None:
    args: dict[str, Any] = {
        "chain_id": CHAIN_ID,
        "base_fee": BASE_FEE,
        "block_gas_limit": GAS_LIMIT,
        "permitted": _everyone,
    }
    args.update(overrides)
    check_transaction(state, _decode([raw])[0], **args)


def test_admission_errors_name_the_rule() -> None:
    signer = bench.Signer(keccak(text="admission"))
    contract = b"\xcc" * 20
    alloc = {
        _h(signer.address): {"balance": 10**18, "nonce": 3},
        _h(contract): {"balance": 10**18, "code": "0x00"},
    }
    state = WorldState.from_genesis(alloc, chain_id=CHAIN_ID, gas_limit=GAS_LIMIT)
    to = b"\x01" * 20

    def signed(nonce: int = 3, **kwargs: Any) -> bytes:
        raw: bytes = bench.Signer(signer.key, nonce=nonce).sign(
            kwargs.pop("to", to), kwargs.pop("data", b""), **{"gas": 21_000, **kwargs}
        )
        return raw

    _check(state, signed())
    with pytest.raises(NonceTooLow, match="nonce 2 is below the next nonce 3"):
        _check(state, signed(2))
    with pytest.raises(NonceTooHigh, match="ahead of the next nonce 3"):
        _check(state, signed(4))
    _check(state, signed(4), pending_nonce=4)  # queued behind a pooled transaction
    _check(state, signed(3 + MAX_NONCE_GAP - 1), pending_nonce=3)
    with pytest.raises(NonceTooHigh, match=f"{MAX_NONCE_GAP} or more ahead"):
        _check(state, signed(3 + MAX_NONCE_GAP), pending_nonce=3)
    with pytest.raises(InsufficientFunds, match="gas limit x fee cap"):
        _check(state, signed(value=10**18))
    with pytest.raises(IntrinsicGasTooLow, match="below the intrinsic gas 21016"):
        _check(state, signed(gas=21_010, data=b"\x01"))
    with pytest.raises(GasLimitExceeded, match="exceeds the block gas limit"):
        _check(state, signed(gas=GAS_LIMIT + 1))
    with pytest.raises(FeeCapTooLow, match="below the base fee"):
        _check(state, signed(), base_fee=bench.MAX_FEE + 1)
    with pytest.raises(NotPermitted, match="not permitted"):
        _check(state, signed(), permitted=lambda sender: False)
    with pytest.raises(InitCodeTooLarge, match="EIP-3860"):
        _check(state, signed(to=None, data=b"\x00" * 49_153, gas=10_000_000))
    with pytest.raises(WrongChainId):
        _check(state, signed(), chain_id=CHAIN_ID + 1)
    assert state.code(contract) == b"\x00"
    fake = _decode([signed()])[0]
    impostor = Transaction(**{**fake.__dict__, "sender": contract, "nonce": 0})
    with pytest.raises(SenderNotEOA, match="has code"):
        check_transaction(
            state, impostor, chain_id=CHAIN_ID, base_fee=BASE_FEE, block_gas_limit=GAS_LIMIT, permitted=_everyone
        )
    for error in (
        NonceTooLow,
        NonceTooHigh,
        InsufficientFunds,
        IntrinsicGasTooLow,
        GasLimitExceeded,
        FeeCapTooLow,
        NotPermitted,
    ):
        assert issubclass(error, InvalidTransaction)


def test_genesis_alloc_reads_and_commitment() -> None:
    code = bytes.fromhex("600160005500")
    alloc: dict[str, dict[str, Any]] = {
        "0x" + "11" * 20: {"balance": "0x10", "nonce": 2},
        "0x" + "22" * 20: {"balance": 0, "code": "0x" + code.hex(), "storage": {"0x01": "0x2a"}},
    }
    state = WorldState.from_genesis(alloc, chain_id=CHAIN_ID)
    assert state.balance(b"\x11" * 20) == 16 and state.nonce(b"\x11" * 20) == 2
    assert state.code(b"\x22" * 20) == code and state.storage_at(b"\x22" * 20, 1) == 42
    assert state.account(b"\x33" * 20).code_hash == EMPTY_CODE_HASH
    same = WorldState.from_genesis(dict(reversed(list(alloc.items()))), chain_id=CHAIN_ID)
    assert same.state_root == state.state_root
    alloc["0x" + "11" * 20]["balance"] = "0x11"
    assert WorldState.from_genesis(alloc, chain_id=CHAIN_ID).state_root != state.state_root
    with pytest.raises(ValueError, match="chain"):
        apply_block(state, _env(1), [], chain_id=CHAIN_ID + 1, permitted=_everyone)


def test_empty_block_keeps_the_root() -> None:
    state = WorldState.from_genesis({"0x" + "11" * 20: {"balance": 1}}, chain_id=CHAIN_ID, gas_limit=GAS_LIMIT)
    root = state.state_root
    result = apply_block(state, _env(1), [], chain_id=CHAIN_ID, permitted=_everyone)
    assert result.state_root == root and result.receipts == () and result.gas_used == 0


def test_blocks_encode_decode_and_prove_receipts(platform: tuple[Any, list[list[bytes]]]) -> None:
    scenario, blocks = platform
    state = _fresh(scenario)
    parent = genesis_header(state_root=state.state_root, timestamp=1_700_000_000, gas_limit=GAS_LIMIT)
    for number, raws in enumerate(blocks, start=1):
        txs = _decode(raws)
        base_fee = next_base_fee(parent)
        result = apply_block(state, _env(number, base_fee=base_fee), txs, chain_id=CHAIN_ID, permitted=_everyone)
        header = Header(
            parent_hash=parent.hash(),
            number=number,
            timestamp=1_700_000_000 + number,
            proposer=COINBASE,
            transactions_root=transactions_root(result.included),
            receipts_root=receipts_root(result.receipts),
            state_root=result.state_root,
            logs_bloom=result.logs_bloom,
            gas_limit=GAS_LIMIT,
            gas_used=result.gas_used,
            base_fee_per_gas=base_fee,
            extra=b"round-0",
        )
        block = Block(header, result.included)
        decoded = Block.decode(block.encode(), CHAIN_ID)
        assert decoded == block and decoded.hash() == header.hash() == keccak(header.encode())
        assert Header.decode(header.encode()) == header
        for index in range(len(result.receipts)):
            proof = receipt_proof(result.receipts, index)
            assert verify_receipt_proof(header.receipts_root, index, proof) == result.receipts[index].encode()
            tx_proof = transaction_proof(result.included, index)
            assert verify_transaction_proof(header.transactions_root, index, tx_proof) == result.included[index].raw
        parent = header


def test_next_base_fee_follows_eip1559() -> None:
    def header(gas_used: int, base_fee: int) -> Header:
        genesis = genesis_header(state_root=bytes(32), timestamp=0, gas_limit=30_000_000)
        return replace(genesis, gas_used=gas_used, base_fee_per_gas=base_fee)

    assert next_base_fee(header(15_000_000, 10**10)) == 10**10
    assert next_base_fee(header(30_000_000, 10**10)) == 10**10 * 9 // 8
    assert next_base_fee(header(0, 10**10)) == 10**10 * 7 // 8
    assert next_base_fee(header(0, 10**9)) == 10**9  # the floor
    assert next_base_fee(header(0, 10**9), floor=7) == 10**9 * 7 // 8
    assert next_base_fee(header(15_000_001, 8), floor=0) == 9  # at least one wei up


def test_bench_script_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--count", "40", "--bidders", "8"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["transactions"] == 40 and line["tx_per_second"] > 0
