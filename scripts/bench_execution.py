"""Throughput of the execution layer: signed bid commits decoded and applied per second, on one core.

Builds the tender platform in a fresh `WorldState` (Consortium, GuaranteeRegistry and TenderRegistry
deployed by transactions, bidders admitted by two admins, a tender with sections), then signs
`--count` `commitBid` transactions (EIP-1559, eth-account) and times what a validator does with a
proposed block: `decode_transaction` (RLP, signature check, sender recovery) and `apply_block`
(admission checks, EVM, fees, receipts, state commitment), in blocks of at most the gas limit.
Signing is not timed. Prints one JSON line, with the rate and the CPU time per transaction (the
figure to compare variants with on a busy machine):

    python scripts/bench_execution.py [--count 5000]

The scenario builders are also used by tests/chain_node/test_execution.py, which runs the same
transactions on anvil and compares receipts and roots.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eth_abi import encode as abi_encode
from eth_account import Account as EthAccount
from eth_utils import keccak, to_checksum_address

from chain_node.blocks import receipts_root, transactions_root
from chain_node.execution import BlockEnv, WorldState, apply_block, contract_address
from chain_node.transactions import decode_transaction
from contracts.toolchain import Artifact, compile_all

CHAIN_ID = 4242
GAS_LIMIT = 60_000_000
BASE_FEE = 1_000_000_000
MAX_FEE = 3_000_000_000
PRIORITY_FEE = 1_000_000_000
FUNDS = 10**24

ROLE_ADMIN = 1 << 0
ROLE_TENDERER = 1 << 1
ROLE_AGENCY = 1 << 2
ROLE_BIDDER = 1 << 3
ROLE_WITNESS = 1 << 5


def key_of(label: str) -> bytes:
    """A deterministic test key (never a real one): keccak of the label."""
    return keccak(text=f"jianzheng-bench-{label}")


def address_of(key: bytes) -> bytes:
    return bytes.fromhex(EthAccount.from_key(key).address[2:])


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def _constructor_args(artifact: Artifact) -> list[str]:
    for item in artifact.abi:
        if item.get("type") == "constructor":
            return [_abi_type(entry) for entry in item["inputs"]]
    return []


def _abi_type(entry: dict[str, Any]) -> str:
    if entry["type"].startswith("tuple"):
        inner = ",".join(_abi_type(component) for component in entry["components"])
        return f"({inner}){entry['type'][5:]}"
    return str(entry["type"])


@dataclass
class Signer:
    """A key with its own nonce counter; signs EIP-1559 transactions (or legacy / EIP-2930 on request)."""

    key: bytes
    nonce: int = 0
    address: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.address = address_of(self.key)

    def sign(
        self,
        to: bytes | None,
        data: bytes,
        *,
        gas: int,
        value: int = 0,
        tx_type: int = 2,
        access_list: list[dict[str, Any]] | None = None,
        chain_id: int = CHAIN_ID,
    ) -> bytes:
        tx: dict[str, Any] = {"chainId": chain_id, "nonce": self.nonce, "gas": gas, "value": value, "data": data}
        if to is not None:
            tx["to"] = to_checksum_address(to)
        if tx_type == 2:
            tx.update(type=2, maxFeePerGas=MAX_FEE, maxPriorityFeePerGas=PRIORITY_FEE)
        else:
            tx["gasPrice"] = MAX_FEE
            if tx_type == 1:
                tx.update(type=1, accessList=access_list or [])
        if access_list is not None and tx_type == 2:
            tx["accessList"] = access_list
        self.nonce += 1
        return bytes(EthAccount.sign_transaction(tx, self.key).raw_transaction)


@dataclass
class TenderScenario:
    """The platform deployed by transactions, and bids on it; every list holds signed raw transactions."""

    artifacts: dict[str, Artifact]
    deployer: Signer = field(default_factory=lambda: Signer(key_of("deployer")))
    admin1: Signer = field(default_factory=lambda: Signer(key_of("admin-1")))
    admin2: Signer = field(default_factory=lambda: Signer(key_of("admin-2")))
    bidders: list[Signer] = field(default_factory=list)
    sections: list[bytes] = field(default_factory=list)
    consortium: bytes = b""
    guarantees: bytes = b""
    registry: bytes = b""

    def alloc(self) -> dict[str, dict[str, Any]]:
        """Genesis allocation funding every signer."""
        signers = [self.deployer, self.admin1, self.admin2, *self.bidders]
        return {"0x" + s.address.hex(): {"balance": FUNDS} for s in signers}

    def deploy_txs(self) -> list[bytes]:
        deployer = self.deployer
        base = deployer.nonce
        self.consortium = contract_address(deployer.address, base)
        self.guarantees = contract_address(deployer.address, base + 1)
        self.registry = contract_address(deployer.address, base + 2)
        a1, a2 = self.admin1.address, self.admin2.address
        roles1 = ROLE_ADMIN | ROLE_AGENCY | ROLE_TENDERER | ROLE_BIDDER | ROLE_WITNESS
        roles2 = ROLE_ADMIN | ROLE_WITNESS
        txs = [
            self._deploy("Consortium", [[a1, a2], [keccak(text="org-1"), keccak(text="org-2")], [roles1, roles2], 2]),
            self._deploy("GuaranteeRegistry", [self.consortium, self.registry]),
            self._deploy("TenderRegistry", [self.consortium, self.guarantees]),
        ]
        return txs

    def _deploy(self, name: str, args: list[Any]) -> bytes:
        artifact = self.artifacts[name]
        data = bytes.fromhex(artifact.bytecode.removeprefix("0x")) + abi_encode(_constructor_args(artifact), args)
        return self.deployer.sign(None, data, gas=5_000_000)

    def admit_bidders(self, count: int, first_proposal: int = 1) -> list[bytes]:
        """Two admin transactions per bidder: a proposal to add it with the bidder role, and the approval."""
        txs: list[bytes] = []
        for index in range(count):
            bidder = Signer(key_of(f"bidder-{len(self.bidders)}"))
            self.bidders.append(bidder)
            propose = selector("proposeAddMember(address,bytes32,uint256)") + abi_encode(
                ["address", "bytes32", "uint256"], [bidder.address, keccak(text=f"bidder-org-{index}"), ROLE_BIDDER]
            )
            txs.append(self.admin1.sign(self.consortium, propose, gas=300_000))
            approve = selector("approve(uint256)") + abi_encode(["uint256"], [first_proposal + index])
            txs.append(self.admin2.sign(self.consortium, approve, gas=300_000))
        return txs

    def open_sections(self, count: int, opening_time: int) -> list[bytes]:
        """A tender with `count` sections, each witnessed by admin 2 and with its opening key set."""
        tender_id = keccak(text=f"tender-{len(self.sections)}")
        create = selector("createTender(bytes32,address,bytes32)") + abi_encode(
            ["bytes32", "address", "bytes32"], [tender_id, self.admin1.address, keccak(text="details")]
        )
        txs = [self.admin1.sign(self.registry, create, gas=300_000)]
        terms_type = "(uint64,uint64,uint128,uint16,uint16,address[],bytes)"
        for _ in range(count):
            section_id = keccak(text=f"section-{len(self.sections)}")
            self.sections.append(section_id)
            terms = (opening_time, 86_400, 100, 1, 1, [self.admin2.address], b"opening-key")
            data = selector(f"addSection(bytes32,bytes32,{terms_type})") + abi_encode(
                ["bytes32", "bytes32", terms_type], [tender_id, section_id, terms]
            )
            txs.append(self.admin1.sign(self.registry, data, gas=600_000))
        return txs

    def commit_bid(self, bidder: Signer, section: bytes, label: str, *, gas: int = 200_000, **kwargs: Any) -> bytes:
        data = selector("commitBid(bytes32,bytes32,bytes32)") + abi_encode(
            ["bytes32", "bytes32", "bytes32"],
            [section, keccak(text=f"ciphertext-{label}"), keccak(text=f"cover-commitment-{label}")],
        )
        return bidder.sign(self.registry, data, gas=gas, **kwargs)

    def bids(self, count: int) -> Iterator[bytes]:
        """`count` bid commits: every bidder on every section, bidder by bidder."""
        produced = 0
        for section_index, section in enumerate(self.sections):
            for bidder_index, bidder in enumerate(self.bidders):
                if produced == count:
                    return
                yield self.commit_bid(bidder, section, f"{section_index}-{bidder_index}")
                produced += 1


def _permit_all(_sender: bytes) -> bool:
    return True


def run(count: int, bidders: int = 50, block_size: int = 500) -> dict[str, Any]:
    artifacts = compile_all()
    scenario = TenderScenario(artifacts)
    sections = (count + bidders - 1) // bidders
    setup_blocks = [scenario.deploy_txs()]
    setup_blocks.append(scenario.admit_bidders(bidders))
    state = WorldState.from_genesis(scenario.alloc(), chain_id=CHAIN_ID, gas_limit=GAS_LIMIT)
    setup_blocks.append(scenario.open_sections(sections, opening_time=2_000_000_000))
    number = 0
    for raws in setup_blocks:
        number += 1
        env = BlockEnv(number, 1_700_000_000 + number, bytes(20), GAS_LIMIT, BASE_FEE)
        result = apply_block(
            state, env, [decode_transaction(r, CHAIN_ID) for r in raws], chain_id=CHAIN_ID, permitted=_permit_all
        )
        if result.rejected or not all(receipt.status for receipt in result.receipts):
            raise RuntimeError(f"setup block {number} failed: {result.rejected}")
    raw_bids = list(scenario.bids(count))
    chunks = [raw_bids[i : i + block_size] for i in range(0, len(raw_bids), block_size)]

    executed = 0
    gas_used = 0
    decode_seconds = 0.0
    started = time.perf_counter()
    cpu_started = time.process_time()  # CPU of this process: unlike the rate, not skewed by other load
    for raws in chunks:  # what a validator does with each proposed block
        number += 1
        decode_started = time.perf_counter()
        txs = [decode_transaction(raw, CHAIN_ID) for raw in raws]
        decode_seconds += time.perf_counter() - decode_started
        env = BlockEnv(number, 1_700_000_000 + number, bytes(20), GAS_LIMIT, BASE_FEE)
        result = apply_block(state, env, txs, chain_id=CHAIN_ID, permitted=_permit_all)
        if result.rejected or not all(receipt.status for receipt in result.receipts):
            raise RuntimeError(f"block {number}: rejected {result.rejected[:1]} or reverted bids")
        receipts_root(result.receipts)
        transactions_root(result.included)
        executed += len(result.included)
        gas_used += result.gas_used
    elapsed = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    return {
        "benchmark": "execution",
        "transactions": executed,
        "blocks": len(chunks),
        "seconds": round(elapsed, 3),
        "tx_per_second": round(executed / elapsed, 1),
        "cpu_us_per_tx": round(cpu_seconds / max(executed, 1) * 1e6, 1),
        "decode_share": round(decode_seconds / elapsed, 3),
        "gas_per_bid": gas_used // max(executed, 1),
        "mgas_per_second": round(gas_used / elapsed / 1e6, 2),
        "state_root": "0x" + state.state_root.hex(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=5000, help="bid commits to execute (default 5000)")
    parser.add_argument("--bidders", type=int, default=50, help="distinct bidders (default 50)")
    parser.add_argument("--block-size", type=int, default=500, help="bids per block (default 500, ~53 Mgas)")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.count, args.bidders, args.block_size)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
