"""Deploy and wire the contracts from a consortium config, and describe the result in a manifest.

The config names the founding admins, the other members with their roles, and the admin threshold.
Organisation names stay in the config and the manifest (off chain); the chain sees only the hash of
each organisation's identifier.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3.types import Nonce
from web3.utils.address import get_create_address

from contracts.client import Chain, Deployment, Signer
from contracts.records import Role, org_id


class ConfigError(Exception):
    """The consortium config is missing something or contradicts itself."""


@dataclass(frozen=True)
class MemberConfig:
    name: str
    identifier: str
    roles: Role
    signer: Signer


@dataclass(frozen=True)
class ConsortiumConfig:
    deployer: Signer
    admin_threshold: int
    members: tuple[MemberConfig, ...]
    fund_wei: int

    def member(self, name: str) -> MemberConfig:
        for member in self.members:
            if member.name == name:
                return member
        raise KeyError(name)

    def with_role(self, role: Role) -> list[MemberConfig]:
        return [m for m in self.members if m.roles & role]


def _key(entry: dict[str, Any], where: str) -> str:
    if "key" in entry:
        return str(entry["key"])
    if "key_env" in entry:
        value = os.environ.get(str(entry["key_env"]))
        if not value:
            raise ConfigError(f"{where}: environment variable {entry['key_env']} is not set")
        return value
    raise ConfigError(f"{where}: needs `key` or `key_env`")


def load_config(path: Path) -> ConsortiumConfig:
    """Read and check a consortium config file (JSON)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path}: {error}") from error
    try:
        members = []
        for index, entry in enumerate(raw["members"]):
            where = f"members[{index}]"
            roles = Role.parse(list(entry["roles"]))
            if not roles:
                raise ConfigError(f"{where}: no roles")
            members.append(MemberConfig(entry["name"], entry["identifier"], roles, Signer.from_key(_key(entry, where))))
        config = ConsortiumConfig(
            deployer=Signer.from_key(_key(raw["deployer"], "deployer")),
            admin_threshold=int(raw["admin_threshold"]),
            members=tuple(members),
            fund_wei=int(raw.get("fund_wei", 10**20)),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"{path}: {error!r}") from error
    admins = config.with_role(Role.ADMIN)
    if not 2 <= config.admin_threshold <= len(admins):
        raise ConfigError(f"admin_threshold {config.admin_threshold} must be between 2 and {len(admins)} admins")
    addresses = [m.signer.address for m in members]
    if len(set(addresses)) != len(addresses):
        raise ConfigError("two members share a key")
    return config


def deploy(chain: Chain, config: ConsortiumConfig) -> tuple[Deployment, dict[str, Any]]:
    """Deploy Consortium, GuaranteeRegistry and TenderRegistry, add the members, return the manifest."""
    deployer = config.deployer
    for member in config.members:
        if int(chain.w3.eth.get_balance(member.signer.account.address)) == 0 and config.fund_wei:
            chain.send(deployer, member.signer.address, b"", value=config.fund_wei, gas=21_000)

    founders = config.with_role(Role.ADMIN)
    consortium_address, consortium_tx = chain.deploy(
        deployer,
        "Consortium",
        [m.signer.address for m in founders],
        [org_id(m.identifier) for m in founders],
        [int(m.roles) for m in founders],
        config.admin_threshold,
    )
    deployment = Deployment.at(chain, consortium_address, consortium_address, consortium_address)
    consortium = deployment.consortium
    admin_signers = [m.signer for m in founders][: config.admin_threshold]
    for member in config.members:
        if member.roles & Role.ADMIN:
            continue
        consortium.enact(
            admin_signers,
            lambda s, m=member: consortium.propose_add_member(s, m.signer.address, org_id(m.identifier), m.roles),
        )

    # The guarantee registry must know the tender registry's address before the latter exists:
    # it is fixed by the deployer's next nonce, so the wiring needs no privileged setter.
    nonce = int(chain.w3.eth.get_transaction_count(deployer.account.address, "pending"))
    predicted = get_create_address(deployer.account.address, Nonce(nonce + 1))
    guarantee_address, guarantee_tx = chain.deploy(deployer, "GuaranteeRegistry", consortium_address, predicted)
    tender_address, tender_tx = chain.deploy(deployer, "TenderRegistry", consortium_address, guarantee_address)
    if tender_address != predicted:
        raise ConfigError(f"tender registry landed at {tender_address}, expected {predicted}")

    deployment = Deployment.at(chain, consortium_address, tender_address, guarantee_address)
    manifest = {
        "chainId": chain.chain_id,
        "rpcUrl": chain.rpc_url,
        "deployer": deployer.address,
        "compilerVersion": chain.artifacts["Consortium"].compiler_version,
        "adminThreshold": config.admin_threshold,
        "contracts": {
            name: {
                "address": address,
                "txHash": tx.tx_hash,
                "block": tx.block_number,
                "artifactHash": chain.artifacts[name].artifact_hash,
                "sourceHash": chain.artifacts[name].source_hash,
            }
            for name, address, tx in (
                ("Consortium", consortium_address, consortium_tx),
                ("GuaranteeRegistry", guarantee_address, guarantee_tx),
                ("TenderRegistry", tender_address, tender_tx),
            )
        },
        "members": [
            {
                "name": m.name,
                "account": m.signer.address,
                "orgId": "0x" + org_id(m.identifier).hex(),
                "roles": [str(role.name).lower() for role in Role if m.roles & role],
            }
            for m in config.members
        ],
        "block": chain.block_number(),
    }
    return deployment, manifest
