"""Account permissioning by the `Consortium` contract, on a real (single-validator) network."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account
from eth_utils import keccak, to_canonical_address

from chain_node.network import dev_consortium_address, lay_out, rpc_call, start_validator, wait_for_blocks
from chain_node.permissioning import member_roles
from contracts import errors
from contracts.client import Chain, Signer
from contracts.deploy import ConsortiumConfig, deploy
from contracts.records import Role

pytestmark = pytest.mark.timeout(300)


class _RpcStorage:
    """Reads a node's storage over JSON-RPC, to check `member_roles` against the contract itself."""

    def __init__(self, url: str) -> None:
        self.url = url

    def storage_at(self, address: bytes, slot: int) -> int:
        return int(rpc_call(self.url, "eth_getStorageAt", ["0x" + address.hex(), hex(slot), "latest"]), 16)


def _send_nothing(chain: Chain, signer: Signer) -> None:
    chain.send(signer, signer.address, b"", gas=21_000)


def test_members_admitted_and_removed_by_vote_gain_and_lose_the_right_to_transact(
    tmp_path: Path, dev_config: ConsortiumConfig
) -> None:
    layouts = lay_out(tmp_path, 1, block_period_ms=200)
    running = [start_validator(layout, tmp_path / "logs") for layout in layouts]
    try:
        url = layouts[0].rpc_url
        wait_for_blocks(url, 1, timeout=60)
        chain = Chain(url)
        deployment, _manifest = deploy(chain, dev_config)
        consortium_address = bytes(to_canonical_address(deployment.consortium.address))
        assert consortium_address == dev_consortium_address()

        newcomer = Signer.from_key(Account.create().key.hex())
        chain.send(dev_config.deployer, newcomer.address, b"", value=10**18, gas=21_000)
        with pytest.raises(errors.TransactionFailed, match="not permitted"):
            _send_nothing(chain, newcomer)

        admins = [m.signer for m in dev_config.with_role(Role.ADMIN)]
        consortium = deployment.consortium
        org_id = keccak(b"newcomer org")
        consortium.enact(admins, lambda s: consortium.propose_add_member(s, newcomer.address, org_id, Role.BIDDER))
        _send_nothing(chain, newcomer)  # admitted: its transactions now go through

        newcomer_bytes = bytes(to_canonical_address(newcomer.address))
        assert member_roles(_RpcStorage(url), consortium_address, newcomer_bytes) == int(Role.BIDDER)
        assert member_roles(_RpcStorage(url), consortium_address, newcomer_bytes) == consortium.member_of(
            newcomer.address
        ).roles

        consortium.enact(admins, lambda s: consortium.propose_remove_member(s, newcomer.address))
        with pytest.raises(errors.TransactionFailed, match="not permitted"):
            _send_nothing(chain, newcomer)
    finally:
        for validator in running:
            validator.stop(kill=True)
