"""Serving as `make run` does (scripts/run_platform.py: a gunicorn master, two gevent workers, the outbox sender
beside them): a graceful stop (SIGTERM) ends promptly and cleanly, also with viewers in an opening hall."""

from __future__ import annotations

import signal
import socket
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from contracts.deploy import ConsortiumConfig
from contracts.records import Role
from tests.backends import selected_backends
from tests.bidding_app.conftest import OPENING_KEY, PASSWORD, serve_platform
from tests.helpers import Platform


def children_of(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_a_graceful_stop_ends_the_hall_streams_and_stops_the_sender(
    tmp_path: Path, platform: Platform, dev_config: ConsortiumConfig
) -> None:
    """Before, the worker waited for its open hall streams until graceful_timeout, and then for the sender,
    which is the master's child, not its own, until the master killed it."""
    if platform.backend.name != selected_backends()[0]:
        pytest.skip("serving does not depend on the kind of chain")
    with serve_platform(tmp_path, platform, dev_config) as served:
        http = requests.Session()
        token = http.post(f"{served.url}/api/v1/token", timeout=10, json={
            "username": dev_config.with_role(Role.AGENCY)[0].identifier, "password": PASSWORD}).json()["token"]
        http.headers["Authorization"] = f"Bearer {token}"
        members = http.get(f"{served.url}/api/v1/organisations", timeout=10).json()["organisations"]
        tender = http.post(f"{served.url}/api/v1/tenders", timeout=10, json={
            "title": "停机测试", "description": "", "submission_key": uuid.uuid4().hex,
            "tenderer_id": next(m["id"] for m in members if "tenderer" in m["roles"]),
            "sections": [{"title": "第一标段", "opening_time": platform.now() + 3600, "bid_bond": 10_000,
                          "bid_validity_days": 90, "min_valid_bids": 3, "witness_quorum": 2,
                          "witness_ids": [m["id"] for m in members if "witness" in m["roles"]][:2],
                          "opening_key": OPENING_KEY}]}).json()
        stream = http.get(f"{served.url}/api/v1/sections/{tender['sections'][0]['id']}/hall/events",
                          stream=True, timeout=30)
        lines = stream.iter_lines()
        assert next(lines) == b"retry: 2000"
        # A browser also keeps an idle keep-alive connection open.
        address = urlsplit(served.url)
        idle = socket.create_connection((address.hostname or "127.0.0.1", address.port or 80))
        idle.sendall(b"GET /login HTTP/1.1\r\nHost: platform\r\n\r\n")
        assert idle.recv(64).startswith(b"HTTP/1.1 200")
        master = served.running.process.pid
        workers_and_sender = children_of(master)
        assert len(workers_and_sender) == 3

        served.running.process.send_signal(signal.SIGTERM)
        assert all(line.startswith((b"event: presence", b"data: ")) or not line for line in lines)  # it ends
        assert served.running.process.wait(timeout=20) == 0
        idle.close()

    log = (tmp_path / "server.log").read_text()
    assert "Handling signal: term" in log
    assert "graceful timeout" not in log and "SIGKILL" not in log, log[-2000:]
    assert all(not Path(f"/proc/{pid}").exists() for pid in workers_and_sender)
