"""App fixtures: a throwaway database (SQLite, and PostgreSQL when its binaries are installed), the dev
consortium deployed on the test chain and seeded into the platform, and logged-in clients per role."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from bidding_app import create_app, outbox_sender
from bidding_app.accounts import seed_consortium
from bidding_app.chain import gateway
from bidding_app.db import db, make_engine
from bidding_app.launch import RunningPlatform, start_platform
from bidding_app.migrate import upgrade
from bidding_app.models import Organisation
from contracts.deploy import ConsortiumConfig
from contracts.records import Role
from opening import dkg
from tests.backends import selected_backends
from tests.helpers import Platform

PG_BIN = Path("/usr/lib/postgresql/15/bin")
MIGRATED_TEMPLATE = "jz_migrated"
PASSWORD = "测试口令-Test-2026"
KEK = "5f" * 32
# The seeded users' passwords are real scrypt hashes, at a test cost (n=2**10: milliseconds) instead of
# the platform's 0.1 s: every app test seeds a database and logs in a few times (test_platform.py checks
# that the platform itself hashes at the full cost).
TEST_PASSWORD_HASH_METHOD = "scrypt:1024:8:1"


@functools.cache
def opening_key(threshold: int, witnesses: int) -> str:
    """A real opening key of a k-of-n section (from a DKG run here): the platform checks the keys it is given."""
    return "0x" + dkg.key_dealt_in_one_place(threshold, witnesses).encode().hex()


OPENING_KEY = opening_key(2, 2)  # the sections of `api_draft`: two witnesses, both needed


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root; CI runs as root, so run its tools as the `postgres` user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class PostgresCluster:
    folder: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"

    def create_database(self, name: str, template: str = "template1") -> str:
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return f"{self.url}/{name}"

    def new_database(self) -> str:
        """A fresh database, copied from one the migrations were applied to once per session (they take a
        third of a second per database here; the app's own start then finds the schema at head)."""
        return self.create_database(f"jz_{uuid.uuid4().hex[:12]}", template=MIGRATED_TEMPLATE)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster of our own: initdb into a temporary folder, 127.0.0.1 only, stopped at the end."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL 15 binaries not installed")
    folder = Path(tempfile.mkdtemp(prefix="jz-pg-"))
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                                 "-E", "UTF8", "--locale=C"]), check=True, capture_output=True)
    port = free_port()
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                                 str(folder / "server.log"), "-w", "start"]), check=True, capture_output=True)
    try:
        cluster = PostgresCluster(folder, port)
        engine = make_engine(cluster.create_database(MIGRATED_TEMPLATE))
        try:
            upgrade(engine)
        finally:
            engine.dispose()  # a template must have no connections when it is copied
        yield cluster
    finally:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """SQLite always; PostgreSQL with the first selected chain backend only: what the database does
    does not depend on the chain, and the whole set stays within its time budget."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'platform.db'}"
    backend = getattr(request.node, "callspec", None) and request.node.callspec.params.get("backend")
    if backend and backend != selected_backends()[0]:
        pytest.skip("PostgreSQL runs with the first chain backend only")
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.new_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Like `database_url`, but with no schema at all: for the tests of the migrations themselves."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.create_database(f"jz_{uuid.uuid4().hex[:12]}")


def app_config(database_url: str, folder: Path, platform: Platform | None, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "DATABASE_URL": database_url,
        "UPLOAD_FOLDER": str(folder / "uploads"),
        "SECRET_KEY": "test-secret-" + uuid.uuid4().hex,
        "KEY_ENCRYPTION_KEY": KEK,
        "OUTBOX_THREAD": False,
        "TESTING": True,
    }
    if platform is not None:
        config["RPC_URL"] = platform.backend.chain.rpc_url
        config["DEPLOYMENT"] = platform.manifest
    config.update(extra)
    return config


def seeded(app: Flask, consortium: ConsortiumConfig) -> Flask:
    with app.app_context():
        seed_consortium(db.session, consortium, gateway().kek, PASSWORD, TEST_PASSWORD_HASH_METHOD)
    return app


@pytest.fixture
def app(database_url: str, tmp_path: Path, platform: Platform, dev_config: ConsortiumConfig) -> Iterator[Flask]:
    """The platform on a fresh database, wired to the dev consortium deployed on the test chain."""
    application = seeded(create_app(app_config(database_url, tmp_path, platform)), dev_config)
    yield application
    application.extensions["jianzheng_db"].engine.dispose()


def csrf_of(client: FlaskClient, path: str = "/login") -> str:
    page = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> Any:
    return client.post("/login", data={"username": username, "password": password, "csrf_token": csrf_of(client)})


def identifier_with(config: ConsortiumConfig, role: Role, index: int = 0) -> str:
    """The user name (identifier) of the index-th member whose roles include `role`."""
    return config.with_role(role)[index].identifier


@dataclass
class Clients:
    app: Flask
    config: ConsortiumConfig

    def logged_in(self, role: Role, index: int = 0) -> FlaskClient:
        client = self.app.test_client()
        response = login(client, identifier_with(self.config, role, index))
        assert response.status_code == 302, response.get_data(as_text=True)
        return client

    def organisation(self, role: Role, index: int = 0) -> Organisation:
        identifier = identifier_with(self.config, role, index)
        with self.app.app_context():
            found = db.session.query(Organisation).filter_by(identifier=identifier).one()
            db.session.expunge(found)
            return found

    def org_ids(self, role: Role) -> list[int]:
        return [self.organisation(role, i).id for i in range(len(self.config.with_role(role)))]

    def drain(self) -> int:
        """Run the outbox sender until every entry is confirmed or failed."""
        return outbox_sender(self.app).run_once()


@pytest.fixture
def clients(app: Flask, dev_config: ConsortiumConfig) -> Clients:
    return Clients(app, dev_config)


def section_form(clients: Clients, platform: Platform, *, opening_in: int = 3600, **overrides: str) -> dict[str, Any]:
    """The publish form of one section, opening `opening_in` seconds of chain time from now (Beijing time)."""
    import datetime as dt

    from bidding_app.web import CHINA

    opening = platform.now() + opening_in
    local = dt.datetime.fromtimestamp(opening - opening % 60 + 60, CHINA).strftime("%Y-%m-%dT%H:%M")
    witnesses = clients.org_ids(Role.WITNESS)
    form: dict[str, Any] = {
        "title": "市政道路改造工程施工招标",
        "description": "道路改造，工期 180 日历天。",
        "tenderer_id": str(clients.organisation(Role.TENDERER).id),
        "submission_key": uuid.uuid4().hex,
        "s0_title": "第一标段：土建",
        "s0_opening": local,
        "s0_bond": "800000.00",
        "s0_validity_days": "90",
        "s0_min_bids": "3",
        "s0_witnesses": [str(w) for w in witnesses[:3]],
        "s0_quorum": "2",
        "s0_opening_key": opening_key(2, 3),
    }
    form.update(overrides)
    return form


def api_draft(clients: Clients, platform: Platform, *, opening_in: int = 3600, **overrides: Any) -> dict[str, Any]:
    witnesses = clients.org_ids(Role.WITNESS)
    draft: dict[str, Any] = {
        "title": "供水管网改造工程",
        "description": "管网改造。",
        "tenderer_id": clients.organisation(Role.TENDERER).id,
        "submission_key": uuid.uuid4().hex,
        "sections": [{
            "title": "第一标段",
            "opening_time": platform.now() + opening_in,
            "bid_bond": 80_000_000,
            "bid_validity_days": 90,
            "min_valid_bids": 3,
            "witness_ids": witnesses[:2],
            "witness_quorum": 2,
            "opening_key": OPENING_KEY,
        }],
    }
    draft.update(overrides)
    return draft


def wait_until(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.1)


@dataclass(frozen=True)
class Served:
    """A platform served as `make run` serves it: its URL, its folder (database, uploads, server.log) and
    its process."""

    url: str
    folder: Path
    running: RunningPlatform


@contextmanager
def serve_platform(folder: Path, platform: Platform, dev_config: ConsortiumConfig) -> Iterator[Served]:
    """The platform as `make run` serves it (gunicorn in a subprocess, bidding_app.launch) on a free loopback
    port over a seeded SQLite database in `folder`, stopped on leaving."""
    database = f"sqlite:///{folder / 'served.db'}"
    seeded(create_app(app_config(database, folder, platform)), dev_config).extensions["jianzheng_db"].engine.dispose()
    manifest = folder / "deployment.json"
    manifest.write_text(json.dumps(platform.manifest))
    running = start_platform(
        free_port(),
        ["--rpc-url", platform.backend.chain.rpc_url, "--deployment", str(manifest), "--database-url", database],
        {"JIANZHENG_KEY_ENCRYPTION_KEY": KEK, "JIANZHENG_UPLOAD_FOLDER": str(folder / "uploads"),
         "JIANZHENG_SECRET_KEY": "served-test-secret"},
        folder / "server.log",
    )
    try:
        yield Served(running.url, folder, running)
    finally:
        running.stop()


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, launched once per module; each test opens contexts of its own (`new_page`).

    Not once per session: between calls Playwright's sync API leaves its asyncio loop marked as running,
    which would break any later `asyncio.run` and another module's own `sync_playwright()`."""
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def new_page(request: pytest.FixtureRequest) -> Iterator[Callable[..., Page]]:
    """Opens a page in a fresh browser context (its own cookies and storage: one user each), in Chinese;
    every context is closed after the test. Chromium starts with the first page, not before a fixture
    of the test had the chance to skip it."""
    contexts: list[BrowserContext] = []

    def open_page(**options: Any) -> Page:
        chromium: Browser = request.getfixturevalue("chromium")
        context = chromium.new_context(locale="zh-CN", **options)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()
