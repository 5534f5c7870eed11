"""Schema from migrations equals the models; logins, rate limit, encrypted keys; the JSON API and its errors."""

from __future__ import annotations

import hashlib
import inspect
import io
import threading
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from werkzeug.security import check_password_hash

from bidding_app import create_app
from bidding_app.accounts import PASSWORD_HASH_METHOD, hash_password, seed_consortium
from bidding_app.config import file_secret
from bidding_app.db import Base, db
from bidding_app.keys import KeyDecryptionFailed, decrypt_key
from bidding_app.migrate import upgrade
from bidding_app.models import LoginAttempt, Organisation
from contracts.records import Role
from tests.bidding_app.conftest import KEK, PASSWORD, Clients, api_draft, app_config, csrf_of, login
from tests.bidding_app.test_bids import api_client
from tests.helpers import Platform


def test_migrations_give_the_models_schema(app: Flask) -> None:
    with app.app_context():
        upgrade(db.engine)  # a second run is a no-op
        with db.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}),
                                           Base.metadata)
    assert differences == []


def test_login_logout_and_rate_limit(clients: Clients) -> None:
    client = clients.app.test_client()
    username = clients.config.with_role(Role.BIDDER)[0].identifier
    wrong = login(client, username, "wrong password")
    assert wrong.status_code == 401 and "用户名或密码错误" in wrong.get_data(as_text=True)
    for _ in range(4):
        login(client, username, "wrong again")
    limited = login(client, username)  # right password, but too many failures just now
    assert limited.status_code == 429 and "登录失败次数过多" in limited.get_data(as_text=True)
    other = clients.app.test_client()
    agency = clients.config.with_role(Role.AGENCY)[0].identifier
    assert login(other, agency).status_code == 302  # another user from the same address is not locked out
    clients.app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"] = 5
    assert login(other, agency).status_code == 429  # ...until the address itself reaches its limit
    clients.app.config["LOGIN_MAX_FAILURES"] = clients.app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"] = 100
    assert login(client, username).status_code == 302
    assert client.get("/").status_code == 200
    assert client.post("/logout", data={"csrf_token": csrf_of(client, "/")}).status_code == 302
    assert client.get("/").status_code == 302


def test_the_login_limit_holds_for_attempts_at_once_in_two_workers(
    clients: Clients, platform: Platform, database_url: str, tmp_path: Path
) -> None:
    """Ten wrong passwords at the same moment, half to each of two apps on one database (two workers):
    only the limit's worth is checked, the rest are refused without looking at the password."""
    other = create_app(app_config(database_url, tmp_path / "other", platform))
    try:
        for app in (clients.app, other):
            app.config["LOGIN_MAX_FAILURES"] = 3
        username = clients.config.with_role(Role.BIDDER)[0].identifier
        start = threading.Barrier(10)
        codes: list[str] = []

        def attempt(app: Flask) -> None:
            client = app.test_client()
            start.wait()
            answer = client.post("/api/v1/token", json={"username": username, "password": "wrong"}).json
            assert answer is not None
            codes.append(answer["error"]["code"])

        threads = [threading.Thread(target=attempt, args=(clients.app if n % 2 else other,)) for n in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        checked = codes.count("login_failed")
        assert len(codes) == 10 and 0 <= checked <= 3 and codes.count("too_many_login_attempts") == 10 - checked
        with clients.app.app_context():  # the refused attempts took themselves back: the checked ones stand
            stored = db.session.scalar(sa.select(sa.func.count(LoginAttempt.id))
                                       .where(LoginAttempt.username == username))
        assert stored == checked
        for app in (clients.app, other):
            app.config["LOGIN_MAX_FAILURES"] = checked + 1
        right = other.test_client().post("/api/v1/token", json={"username": username, "password": PASSWORD})
        assert right.status_code == 201  # and a right password takes its own attempt back too
        with clients.app.app_context():
            assert db.session.scalar(sa.select(sa.func.count(LoginAttempt.id))
                                     .where(LoginAttempt.username == username)) == checked
    finally:
        other.extensions["jianzheng_db"].engine.dispose()


def test_secret_files_made_at_once_by_several_processes_agree(tmp_path: Path) -> None:
    """Workers starting together on a fresh folder each make a secret: one is kept, all of them read it."""
    path = tmp_path / "platform" / "secret.key"
    start = threading.Barrier(8)
    found: list[str] = []

    def make() -> str:
        start.wait()  # everyone has seen that the file is missing
        return uuid.uuid4().hex

    threads = [threading.Thread(target=lambda: found.append(file_secret(path, make))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(found) == 8 and len(set(found)) == 1 and path.read_text() == found[0]
    assert path.stat().st_mode & 0o777 == 0o600 and [p.name for p in path.parent.iterdir()] == ["secret.key"]


def test_open_redirect_after_login_is_refused(clients: Clients) -> None:
    client = clients.app.test_client()
    response = client.post("/login", data={"username": clients.config.with_role(Role.BIDDER)[0].identifier,
                                           "password": PASSWORD, "next": "//evil.example/",
                                           "csrf_token": csrf_of(client)})
    assert response.headers["Location"] == "/"


def test_chain_keys_are_encrypted_at_rest(clients: Clients) -> None:
    member = clients.config.with_role(Role.BIDDER)[0]
    key = bytes(member.signer.account.key)
    with clients.app.app_context():
        organisation = db.session.scalars(
            sa.select(Organisation).where(Organisation.identifier == member.identifier)).one()
        blob = organisation.encrypted_key
        assert blob is not None and key not in blob and key.hex().encode() not in blob
        assert decrypt_key(bytes.fromhex(KEK), member.identifier, blob) == key
        with pytest.raises(KeyDecryptionFailed):
            decrypt_key(bytes.fromhex(KEK), "91350200MA00000095", blob)  # copied onto another organisation
        with pytest.raises(KeyDecryptionFailed):
            decrypt_key(bytes(32), member.identifier, blob)


def test_the_platform_hashes_passwords_at_the_full_scrypt_cost() -> None:
    """The test databases are seeded at a lower cost (conftest); the platform's own seeding is not."""
    hashed = hash_password("口令")
    assert hashed.startswith("scrypt:32768:8:1$") and check_password_hash(hashed, "口令")
    assert inspect.signature(seed_consortium).parameters["hash_method"].default == PASSWORD_HASH_METHOD


def test_api_publish_register_bid_withdraw(clients: Clients, platform: Platform) -> None:
    client = clients.app.test_client()
    agency = api_client(clients, Role.AGENCY)
    draft = api_draft(clients, platform)
    created = client.post("/api/v1/tenders", json=draft, headers=agency)
    again = client.post("/api/v1/tenders", json=draft, headers=agency)
    assert created.status_code == 201 and again.status_code == 200
    assert created.json is not None and again.json is not None and created.json["id"] == again.json["id"]
    clients.drain()
    section_id = created.json["sections"][0]["id"]
    tender = client.get(f"/api/v1/tenders/{created.json['id']}", headers=agency).json
    assert tender is not None and tender["sections"][0]["chain_tx"]

    bidder = api_client(clients, Role.BIDDER)
    assert client.post(f"/api/v1/sections/{section_id}/registration", headers=bidder).status_code == 201
    twice = client.post(f"/api/v1/sections/{section_id}/registration", headers=bidder)
    assert twice.status_code == 409 and twice.json == {"error": {"code": "already_registered",
                                                                 "message": "贵单位已报名该标段"}}
    envelope = b"api sealed envelope"
    placed = client.post(f"/api/v1/sections/{section_id}/bid", headers=bidder, data={
        "submission_key": uuid.uuid4().hex, "commitment": "0x" + hashlib.sha256(envelope).hexdigest(),
        "cover_kind": "cash_deposit", "cover_ref": "DEP-API-1", "envelope": (io.BytesIO(envelope), "b.sealed")})
    assert placed.status_code == 201 and placed.json is not None
    clients.drain()
    bid = client.get(f"/api/v1/bids/{placed.json['id']}", headers=bidder).json
    assert bid is not None and bid["status"] == "committed" and bid["chain_tx"] and bid["chain_block"] is not None
    withdrawn = client.post(f"/api/v1/bids/{bid['id']}/withdraw", headers=bidder,
                            json={"submission_key": uuid.uuid4().hex})
    assert withdrawn.status_code == 200
    clients.drain()
    final = client.get(f"/api/v1/bids/{bid['id']}", headers=bidder).json
    assert final is not None and final["status"] == "withdrawn"


def test_api_errors_are_json_with_codes(clients: Clients, platform: Platform) -> None:
    client = clients.app.test_client()
    agency = api_client(clients, Role.AGENCY)
    assert client.get("/api/v1/tenders").json == {"error": {"code": "not_logged_in", "message": "请先登录"}}
    bad = client.post("/api/v1/tenders", data="not json", headers=agency, content_type="application/json")
    assert bad.status_code == 400 and bad.json is not None and bad.json["error"]["code"] == "invalid_input"
    draft = api_draft(clients, platform)
    draft["sections"][0]["bid_bond"] = "1e9"
    wrong = client.post("/api/v1/tenders", json=draft, headers=agency)
    assert wrong.status_code == 400 and wrong.json == {"error": {
        "code": "invalid_input", "message": "第1标段的投标保证金必须是整数", "field": "bid_bond"}}
    injected = client.get("/api/v1/tenders/1%20OR%201=1", headers=agency)
    assert injected.status_code == 404 and injected.json is not None
    assert injected.json["error"]["code"] == "not_found"
    wrong_login = client.post("/api/v1/token", json={"username": "x' OR '1'='1", "password": "' OR 1=1 --"})
    assert wrong_login.status_code == 401 and wrong_login.json is not None
    assert wrong_login.json["error"]["code"] == "login_failed"
