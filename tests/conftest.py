"""Shared fixtures: a running backend, the dev consortium deployed on it, and its members' signers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.client import Deployment, Signer
from contracts.deploy import ConsortiumConfig, deploy, load_config
from contracts.records import Role
from contracts.toolchain import PROJECT_ROOT, compile_all
from tests.backends import STARTERS, TEST_ACCOUNT_KEYS, Backend, selected_backends
from tests.helpers import Platform

DEV_CONFIG = PROJECT_ROOT / "scripts" / "consortium.dev.json"


@pytest.fixture(scope="session", autouse=True)
def _compiled() -> None:
    compile_all()


@pytest.fixture(scope="session", params=selected_backends())
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    with STARTERS[request.param]() as running:
        yield running


@pytest.fixture(scope="session")
def dev_config() -> ConsortiumConfig:
    return load_config(Path(DEV_CONFIG))


@pytest.fixture(scope="session")
def platform(backend: Backend, dev_config: ConsortiumConfig) -> Platform:
    """The three contracts deployed once per backend; tests keep apart by using fresh ids."""
    deployment, manifest = deploy(backend.chain, dev_config)
    return Platform.build(backend, deployment, dev_config, manifest)


@pytest.fixture(scope="session")
def outsider(backend: Backend, dev_config: ConsortiumConfig) -> Signer:
    """A funded account that is no member of the consortium."""
    signer = Signer.from_key("0x" + TEST_ACCOUNT_KEYS[0])
    backend.chain.send(dev_config.deployer, signer.address, b"", value=10**20, gas=21_000)
    return signer


__all__ = ["Deployment", "Role"]
